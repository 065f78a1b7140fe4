//! The one error type of the CLI: a readable message, an optional hint, and
//! the exit code.

use std::fmt;

/// What the user sees when a command fails: `error: <message>` and, when
/// there is one, `hint: <hint>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What failed (for which chaincode, in which phase).
    pub message: String,
    /// What to try.
    pub hint: Option<String>,
    /// The process exit code (1: the operation failed; 2: usage; 0: stopped
    /// quietly, see [`CliError::broken_pipe`]).
    pub code: u8,
}

impl CliError {
    /// An operation failure (exit code 1).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code: 1,
        }
    }

    /// Adds what to try.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Stdout was closed by its reader (`| head`): stop quietly, exit 0.
    pub fn broken_pipe() -> Self {
        Self {
            message: String::new(),
            hint: None,
            code: 0,
        }
    }

    /// Whether this is [`CliError::broken_pipe`]: nothing to report.
    pub fn is_quiet(&self) -> bool {
        self.code == 0
    }

    /// A usage error (exit code 2), as clap gives for bad flags.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            ..Self::new(message)
        }
    }
}

impl CliError {
    /// The error as `--json` prints it, one line on stderr of a stable
    /// shape: `{"error": MESSAGE, "hint": HINT or null, "exit_code": CODE}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "error": self.message,
            "hint": self.hint,
            "exit_code": self.code,
        })
        .to_string()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The innermost cause of an error chain, lowercased where it is an OS
/// message: `connection refused` rather than `transport error`.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    let mut depth = 0;
    // Bounded: error chains are short, but a cycle must not hang us.
    while let Some(next) = current.source() {
        current = next;
        depth += 1;
        if depth > 32 {
            break;
        }
    }
    let text = current.to_string();
    // "Connection refused (os error 111)" -> "connection refused"
    let text = match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_stable() {
        let plain = CliError::new("launch of kv:1.0 failed");
        let parsed: serde_json::Value = serde_json::from_str(&plain.to_json()).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"error": "launch of kv:1.0 failed", "hint": null, "exit_code": 1})
        );
        let hinted = CliError::usage("bad \"x\"\nline").with_hint("try y");
        let parsed: serde_json::Value = serde_json::from_str(&hinted.to_json()).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"error": "bad \"x\"\nline", "hint": "try y", "exit_code": 2})
        );
        assert!(!hinted.to_json().contains('\n'), "one line");
    }
}
