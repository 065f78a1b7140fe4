//! How commands print: plain lines for people, JSON for machines, and a
//! spinner only when stderr is a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Where a command's results go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Machine-readable JSON instead of text.
    pub json: bool,
}

impl Output {
    /// Prints one JSON value on its own line.
    pub fn json_line(&self, value: &serde_json::Value) {
        println!("{value}");
    }

    /// The peer is serving.
    pub fn peer_started(
        &self,
        chaincode: &str,
        admin: &str,
        metrics: Option<&str>,
        executor: &str,
        packages: &Path,
    ) {
        if self.json {
            self.json_line(&json!({
                "event": "listening",
                "chaincode_address": chaincode,
                "admin_address": admin,
                "metrics_address": metrics,
                "executor": executor,
                "packages": packages.display().to_string(),
            }));
        } else {
            println!("peer listening: chaincode on {chaincode}, admin API on {admin}");
            if let Some(metrics) = metrics {
                println!("metrics on http://{metrics}/metrics");
            }
            println!("executor: {executor}; packages from {}", packages.display());
            println!("stop with Ctrl-C (SIGINT) or SIGTERM");
        }
    }

    /// A signal arrived.
    pub fn peer_stopping(&self, signal: &str) {
        if self.json {
            self.json_line(&json!({"event": "stopping", "signal": signal}));
        } else {
            println!("{signal}: stopping every chaincode");
        }
    }

    /// Everything stopped.
    pub fn peer_stopped(&self) {
        if self.json {
            self.json_line(&json!({"event": "stopped"}));
        } else {
            println!("peer stopped");
        }
    }
}

/// A spinner on stderr while something slow runs, when stderr is a
/// terminal; nothing otherwise (plain lines are printed by the caller).
#[derive(Debug)]
pub struct Spinner {
    bar: Option<ProgressBar>,
}

impl Spinner {
    /// Starts a spinner with `message` (only on a terminal, never for JSON).
    pub fn start(message: impl Into<String>, json: bool) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(message.into());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar }
    }

    /// Changes the message.
    pub fn set_message(&self, message: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.into());
        }
    }

    /// Prints a line above the spinner (or plainly without one).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// Whether a spinner is shown.
    pub fn is_shown(&self) -> bool {
        self.bar.is_some()
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
