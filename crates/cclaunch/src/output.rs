//! How commands print: plain lines for people, JSON for machines, and a
//! spinner only when stderr is a terminal.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::error::CliError;

/// Writes one line to stdout. A closed pipe (`cclaunch ps | head -1`) is
/// [`CliError::broken_pipe`]: the command stops quietly and exits 0.
pub fn write_line(args: fmt::Arguments<'_>) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => CliError::broken_pipe(),
            _ => CliError::new(format!("cannot write to stdout: {e}")),
        })
}

/// `println!` through [`write_line`]: evaluates to `Result<(), CliError>`.
macro_rules! outln {
    () => { $crate::output::write_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::write_line(format_args!($($arg)*)) };
}
pub(crate) use outln;

/// Where a command's results go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Machine-readable JSON instead of text.
    pub json: bool,
}

impl Output {
    /// Prints one JSON value on its own line.
    pub fn json_line(&self, value: &serde_json::Value) -> Result<(), CliError> {
        outln!("{value}")
    }

    /// Tells the developer how their chaincode reaches a dev peer with TLS on.
    pub fn dev_tls(&self, identity: &crate::state::DevIdentity) {
        let env = identity.env();
        if self.json {
            let vars: serde_json::Map<String, serde_json::Value> = env
                .into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                .collect();
            let _ = self.json_line(&json!({"event": "dev_tls", "env": vars}));
        } else {
            let line: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = outln!(
                "dev mode with TLS: start your chaincode with {}",
                line.join(" ")
            );
        }
    }

    /// The peer is serving.
    pub fn peer_started(
        &self,
        chaincode: &str,
        admin_socket: &str,
        admin_tls: Option<&str>,
        metrics: Option<&str>,
        executor: &str,
        packages: &Path,
    ) {
        if self.json {
            let _ = self.json_line(&json!({
                "event": "listening",
                "chaincode_address": chaincode,
                "admin_socket": admin_socket,
                "admin_tls_address": admin_tls,
                "metrics_address": metrics,
                "executor": executor,
                "packages": packages.display().to_string(),
            }));
        } else {
            let _ = outln!(
                "peer listening: chaincode on {chaincode}, admin API on unix:{admin_socket}"
            );
            if let Some(tls) = admin_tls {
                let _ = outln!("admin API with mutual TLS on https://{tls}");
            }
            if let Some(metrics) = metrics {
                let _ = outln!("metrics on http://{metrics}/metrics");
            }
            let _ = outln!("executor: {executor}; packages from {}", packages.display());
            let _ = outln!("stop with Ctrl-C (SIGINT) or SIGTERM");
        }
    }

    /// A signal arrived.
    pub fn peer_stopping(&self, signal: &str) {
        if self.json {
            let _ = self.json_line(&json!({"event": "stopping", "signal": signal}));
        } else {
            let _ = outln!("{signal}: stopping every chaincode");
        }
    }

    /// Everything stopped.
    pub fn peer_stopped(&self) {
        if self.json {
            let _ = self.json_line(&json!({"event": "stopped"}));
        } else {
            let _ = outln!("peer stopped");
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

    /// Prints a line above the spinner (or plainly without one). A closed
    /// stdout is ignored here: the caller carries on (and cleans up).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => {
                let _ = outln!("{line}");
            }
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
