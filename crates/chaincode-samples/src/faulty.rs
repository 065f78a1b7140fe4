//! The `faulty` sample: a chaincode that misbehaves in a chosen way.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chaincode_shim::{BoxFuture, Chaincode, Response, Stub};

use crate::chaincodes::joined;

/// Exit codes of the sample binaries.
pub mod exit_code {
    /// A shim error (connect, handshake, stream).
    pub const SHIM_ERROR: u8 = 1;
    /// A configuration error (env, args, mode).
    pub const CONFIG_ERROR: u8 = 2;
    /// `faulty --mode=crash-before-register`.
    pub const CRASH_BEFORE_REGISTER: u8 = 3;
    /// `faulty --mode=crash-after-ready`.
    pub const CRASH_AFTER_READY: u8 = 4;
    /// `faulty --mode=never-register` gave up waiting to be killed.
    pub const NEVER_REGISTER_GAVE_UP: u8 = 5;
    /// The chaincode panicked (Rust's own exit code for a panic).
    pub const PANICKED: u8 = 101;
}

/// How `faulty` misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultyMode {
    /// Exit 3 before connecting.
    CrashBeforeRegister,
    /// Register, then exit 4 as soon as READY arrives.
    CrashAfterReady,
    /// Connect and open the stream, never send REGISTER; exit 5 after 10 minutes.
    NeverRegister,
    /// Invoke panics with `faulty: panic in invoke`.
    PanicInInvoke,
    /// Invoke sleeps `FAULTY_DELAY_MS` (default 2000) ms, then answers 200.
    Slow,
    /// Echo chaincode.
    Ok,
}

/// An unknown `faulty` mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "faulty: unknown mode {0:?}: expected crash-before-register, crash-after-ready, \
     never-register, panic-in-invoke, slow or ok"
)]
pub struct ModeError(pub String);

impl FaultyMode {
    /// Every mode, in the order of the docs.
    pub const ALL: [FaultyMode; 6] = [
        Self::CrashBeforeRegister,
        Self::CrashAfterReady,
        Self::NeverRegister,
        Self::PanicInInvoke,
        Self::Slow,
        Self::Ok,
    ];

    /// The mode's name as written in `--mode=` and `FAULTY_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CrashBeforeRegister => "crash-before-register",
            Self::CrashAfterReady => "crash-after-ready",
            Self::NeverRegister => "never-register",
            Self::PanicInInvoke => "panic-in-invoke",
            Self::Slow => "slow",
            Self::Ok => "ok",
        }
    }

    /// The mode from the first `--mode=` argument, else `FAULTY_MODE`, else `ok`.
    pub fn from_parts<I, A>(
        env: impl Fn(&str) -> Option<String>,
        args: I,
    ) -> Result<Self, ModeError>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<str>,
    {
        let from_args = args
            .into_iter()
            .find_map(|arg| arg.as_ref().strip_prefix("--mode=").map(str::to_owned));
        match from_args.or_else(|| env("FAULTY_MODE")) {
            Some(mode) => mode.parse(),
            None => Ok(Self::Ok),
        }
    }
}

impl fmt::Display for FaultyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultyMode {
    type Err = ModeError;
    fn from_str(text: &str) -> Result<Self, ModeError> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| ModeError(text.to_owned()))
    }
}

/// The chaincode `faulty` serves in the modes that get that far.
#[derive(Debug, Clone, Copy)]
pub struct Faulty {
    mode: FaultyMode,
    delay: Duration,
}

impl Faulty {
    /// Default delay of the `slow` mode.
    pub const DEFAULT_DELAY: Duration = Duration::from_millis(2000);

    /// A faulty chaincode in `mode`; `delay` is used by `slow`.
    pub fn new(mode: FaultyMode, delay: Duration) -> Self {
        Self { mode, delay }
    }

    /// `slow`'s delay from `FAULTY_DELAY_MS`, default 2000 ms.
    pub fn delay_from_env(env: impl Fn(&str) -> Option<String>) -> Result<Duration, String> {
        match env("FAULTY_DELAY_MS") {
            None => Ok(Self::DEFAULT_DELAY),
            Some(ms) => ms
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|e| {
                    format!("faulty: FAULTY_DELAY_MS={ms:?} is not a number of milliseconds: {e}")
                }),
        }
    }
}

impl Chaincode for Faulty {
    fn init<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move { Response::ok(joined(stub)) })
    }

    fn invoke<'a>(&'a self, stub: &'a mut Stub) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            match self.mode {
                FaultyMode::PanicInInvoke => panic!("faulty: panic in invoke"),
                FaultyMode::Slow => {
                    tokio::time::sleep(self.delay).await;
                    Response::ok(joined(stub))
                }
                _ => Response::ok(joined(stub)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_from_args_env_and_default() {
        let env = |value: Option<&'static str>| move |_: &str| value.map(str::to_owned);
        let none: [&str; 0] = [];
        assert_eq!(FaultyMode::from_parts(env(None), none), Ok(FaultyMode::Ok));
        assert_eq!(
            FaultyMode::from_parts(env(Some("slow")), none),
            Ok(FaultyMode::Slow)
        );
        assert_eq!(
            FaultyMode::from_parts(
                env(Some("slow")),
                ["-peer.address=h:1", "--mode=panic-in-invoke"]
            ),
            Ok(FaultyMode::PanicInInvoke)
        );
        let err = FaultyMode::from_parts(env(Some("explode")), none).unwrap_err();
        assert!(
            err.to_string().contains("unknown mode \"explode\""),
            "{err}"
        );
        for mode in FaultyMode::ALL {
            assert_eq!(mode.as_str().parse::<FaultyMode>(), Ok(mode));
        }
    }

    #[test]
    fn delay_from_env() {
        assert_eq!(Faulty::delay_from_env(|_| None), Ok(Faulty::DEFAULT_DELAY));
        assert_eq!(
            Faulty::delay_from_env(|_| Some("15".into())),
            Ok(Duration::from_millis(15))
        );
        assert!(Faulty::delay_from_env(|_| Some("soon".into())).is_err());
    }
}
