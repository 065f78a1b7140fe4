//! Settings of the runtime, with Fabric's defaults.

use std::time::Duration;

/// Whether the peer starts chaincode itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The peer starts chaincode through its executors (Fabric's `net`).
    #[default]
    Net,
    /// The developer runs the chaincode; the peer never starts one and
    /// accepts a REGISTER of any name (Fabric's `dev`).
    Dev,
}

/// Settings of a [`crate::ChaincodeSupport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportConfig {
    /// How long a launch may take from its first request to READY, image
    /// builds included (default 300 s; never below [`Self::MIN_STARTUP_TIMEOUT`]).
    pub startup_timeout: Duration,
    /// How long a transaction may take (default 30 s).
    pub execute_timeout: Duration,
    /// KEEPALIVE interval while ready; zero = off (the default).
    pub keepalive: Duration,
    /// `net` or `dev`.
    pub mode: Mode,
    /// `host:port` the chaincode dials (the address `serve` listens on).
    pub peer_address: String,
    /// The peer's id (names containers, labels orphans).
    pub peer_id: String,
    /// The network's id (names containers).
    pub network_id: String,
    /// Extra environment for every chaincode the peer starts (Fabric passes
    /// `CORE_CHAINCODE_LOGGING_LEVEL` and friends this way).
    pub chaincode_env: Vec<(String, String)>,
    /// How long a stopping runtime may take before the stop is reported as
    /// failed (the executor's own grace comes first).
    pub stop_timeout: Duration,

    // Registry limits: what the runtime keeps per chaincode name is bounded.
    /// How long an idle entry (nothing running, nobody waiting) stays known
    /// before it is forgotten: its driver, `status()` row and metric series
    /// go (default 10 min; zero = kept until shutdown). A later launch of the
    /// name starts afresh at generation 1.
    pub idle_eviction: Duration,
    /// How many chaincode names the runtime knows at once (default 10,000).
    /// A launch of a new name beyond it fails at once with
    /// [`crate::SupportError::TooManyChaincodes`]; names already known are
    /// unaffected.
    pub max_chaincodes: usize,
}

impl SupportConfig {
    /// Fabric's floor for the startup timeout.
    pub const MIN_STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

    /// The startup timeout actually used: never below the minimum.
    pub fn effective_startup_timeout(&self) -> Duration {
        self.startup_timeout.max(Self::MIN_STARTUP_TIMEOUT)
    }

    /// The idle eviction delay, `None` when idle entries are kept.
    pub fn idle_eviction_after(&self) -> Option<Duration> {
        (!self.idle_eviction.is_zero()).then_some(self.idle_eviction)
    }

    /// The keepalive interval, `None` when off.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        (!self.keepalive.is_zero()).then_some(self.keepalive)
    }
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            startup_timeout: Duration::from_secs(300),
            execute_timeout: Duration::from_secs(30),
            keepalive: Duration::ZERO,
            mode: Mode::Net,
            peer_address: "127.0.0.1:7052".to_owned(),
            peer_id: "peer0".to_owned(),
            network_id: "dev".to_owned(),
            chaincode_env: Vec::new(),
            stop_timeout: Duration::from_secs(30),
            idle_eviction: Duration::from_secs(600),
            max_chaincodes: 10_000,
        }
    }
}
