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

    // The chaincode listener (`serve`): what a connection may cost the peer.
    /// How many connections the listener holds at once, TLS handshakes
    /// included (default 512); beyond it new connections are closed at once.
    pub max_connections: usize,
    /// How long a TLS handshake may take (default 10 s).
    pub handshake_timeout: Duration,
    /// How long a connection may stay open before a REGISTER on it is
    /// accepted (default 10 s; counted from the accept, handshake included).
    /// Separate from the startup timeout, which bounds a whole launch.
    pub first_message_timeout: Duration,
    /// The largest chaincode message, received or sent, in bytes (default
    /// 100 MiB, Fabric's peer default; a larger one ends the stream with
    /// RESOURCE_EXHAUSTED).
    pub max_message_size: usize,
    /// HTTP/2 ping interval and TCP keepalive idle time on connections, so a
    /// dead chaincode is noticed; zero = off (default 60 s).
    pub connection_keepalive: Duration,
    /// How long a ping may go unanswered before the connection is closed
    /// (default 20 s).
    pub connection_keepalive_timeout: Duration,
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

    /// Fabric's peer default for the largest chaincode message (100 MiB).
    pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 100 * 1024 * 1024;

    /// The connection keepalive interval, `None` when off.
    pub fn connection_keepalive_interval(&self) -> Option<Duration> {
        (!self.connection_keepalive.is_zero()).then_some(self.connection_keepalive)
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
            max_connections: 512,
            handshake_timeout: Duration::from_secs(10),
            first_message_timeout: Duration::from_secs(10),
            max_message_size: Self::DEFAULT_MAX_MESSAGE_SIZE,
            connection_keepalive: Duration::from_secs(60),
            connection_keepalive_timeout: Duration::from_secs(20),
        }
    }
}
