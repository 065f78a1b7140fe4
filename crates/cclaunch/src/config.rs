//! The peer's configuration file (TOML), with keys that mirror Fabric's
//! `core.yaml` where Fabric has them.
//!
//! Every section and key is optional; an unknown key or a bad value is an
//! error that names it. Command-line flags override the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chaincode_support::{Mode, SupportConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::CliError;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    /// `[peer]`.
    pub peer: PeerSection,
    /// `[chaincode]`.
    pub chaincode: ChaincodeSection,
    /// `[vm]`: the Docker executor.
    pub vm: VmSection,
    /// `[admin]`: cclaunch's own admin API.
    pub admin: AdminSection,
    /// `[metrics]`: Prometheus text over HTTP.
    pub metrics: MetricsSection,
}

/// `[peer]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerSection {
    /// `peer.id`: names containers and labels them.
    pub id: String,
    /// `peer.networkId`: names containers.
    #[serde(rename = "networkId")]
    pub network_id: String,
    /// `peer.fileSystemPath`: the state directory (admin socket, CA). When
    /// set, packages are also read from `{fileSystemPath}/chaincodes`
    /// (Fabric's layout) and local processes run under
    /// `{fileSystemPath}/runtimes`. Unset: the default state directory
    /// ([`crate::state::default_state_dir`]) and `./packages`.
    #[serde(rename = "fileSystemPath", skip_serializing_if = "Option::is_none")]
    pub file_system_path: Option<PathBuf>,
    /// `[peer.tls]`: TLS on the chaincode listener.
    pub tls: PeerTlsSection,
}

impl Default for PeerSection {
    fn default() -> Self {
        Self {
            id: "peer0".to_owned(),
            network_id: "dev".to_owned(),
            file_system_path: None,
            tls: PeerTlsSection::default(),
        }
    }
}

/// `[peer.tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerTlsSection {
    /// `peer.tls.enabled`: the chaincode listener speaks mutual TLS and each
    /// launch gets its own client certificate bound to the chaincode.
    /// Unset: on in `net` mode, off in `dev` mode (as Fabric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// How chaincode runs: `net` (the peer starts it) or `dev` (you do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    /// The peer starts chaincode through its executor.
    #[default]
    Net,
    /// The peer never starts chaincode; it accepts registrations of any name.
    Dev,
}

/// Which executor runs user chaincode in `net` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorName {
    /// A local child process per chaincode.
    #[default]
    Process,
    /// A container per chaincode on the Docker Engine.
    Docker,
}

impl fmt::Display for ExecutorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExecutorName::Process => "process",
            ExecutorName::Docker => "docker",
        })
    }
}

/// `[chaincode]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaincodeSection {
    /// `chaincode.listenAddress`: where chaincode registers.
    #[serde(rename = "listenAddress")]
    pub listen_address: String,
    /// `chaincode.mode`: `net` or `dev`.
    pub mode: ModeName,
    /// `chaincode.executor`: `process` or `docker` (cclaunch's own key).
    pub executor: ExecutorName,
    /// `chaincode.startuptimeout`.
    pub startuptimeout: ConfigDuration,
    /// `chaincode.executetimeout`.
    pub executetimeout: ConfigDuration,
    /// `chaincode.keepalive` (`"0"` = off).
    pub keepalive: ConfigDuration,
    /// `chaincode.maxConnections`: connections the chaincode listener holds
    /// at once, TLS handshakes included; more are closed at once.
    #[serde(rename = "maxConnections")]
    pub max_connections: usize,
    /// `chaincode.handshakeTimeout`: how long a TLS handshake may take.
    #[serde(rename = "handshakeTimeout")]
    pub handshake_timeout: ConfigDuration,
    /// `chaincode.firstMessageTimeout`: how long a connection may stay open
    /// before a REGISTER on it is accepted.
    #[serde(rename = "firstMessageTimeout")]
    pub first_message_timeout: ConfigDuration,
    /// `chaincode.maxMessageSize`: the largest chaincode message in bytes,
    /// either way; a larger one ends the stream with RESOURCE_EXHAUSTED.
    #[serde(rename = "maxMessageSize")]
    pub max_message_size: usize,
    /// `chaincode.idleEviction`: how long an idle name stays known (`"0"` =
    /// until shutdown).
    #[serde(rename = "idleEviction")]
    pub idle_eviction: ConfigDuration,
    /// `chaincode.maxChaincodes`: how many names the peer knows at once; a
    /// launch of a new name beyond it fails at once.
    #[serde(rename = "maxChaincodes")]
    pub max_chaincodes: usize,
}

impl Default for ChaincodeSection {
    fn default() -> Self {
        let support = SupportConfig::default();
        Self {
            listen_address: "127.0.0.1:7052".to_owned(),
            mode: ModeName::Net,
            executor: ExecutorName::Process,
            startuptimeout: ConfigDuration(support.startup_timeout),
            executetimeout: ConfigDuration(support.execute_timeout),
            keepalive: ConfigDuration(support.keepalive),
            max_connections: support.max_connections,
            handshake_timeout: ConfigDuration(support.handshake_timeout),
            first_message_timeout: ConfigDuration(support.first_message_timeout),
            max_message_size: support.max_message_size,
            idle_eviction: ConfigDuration(support.idle_eviction),
            max_chaincodes: support.max_chaincodes,
        }
    }
}

/// `[vm]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VmSection {
    /// `vm.endpoint`: the Docker Engine (`unix:///var/run/docker.sock`);
    /// unset = `DOCKER_HOST`, else the local socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `[vm.docker]`.
    pub docker: DockerSection,
}

/// `[vm.docker]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerSection {
    /// `vm.docker.networkMode` (Fabric: `vm.docker.hostConfig.NetworkMode`).
    #[serde(rename = "networkMode")]
    pub network_mode: String,
    /// `vm.docker.baseImage`; unset = `FROM scratch` (static binaries).
    #[serde(rename = "baseImage", skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
}

impl Default for DockerSection {
    fn default() -> Self {
        Self {
            network_mode: "host".to_owned(),
            base_image: None,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// `admin.listenAddress`: also serve the admin API on this TCP
    /// `host:port`, always with mutual TLS; unset = the Unix socket only.
    #[serde(rename = "listenAddress", skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// `metrics.listenAddress`: serve `GET /metrics` here; unset = off.
    #[serde(rename = "listenAddress", skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
}

impl PeerConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::new(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks the text of a config file; `origin` names it in
    /// errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, CliError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let place = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    let shown = text.lines().nth(line - 1).unwrap_or("").trim();
                    format!(" line {line} (`{shown}`)")
                }
                None => String::new(),
            };
            CliError::new(format!(
                "bad config file {origin}{place}: {}",
                e.message().trim()
            ))
            .with_hint("see docs/cli.md for every key and its default; `cclaunch peer --print-config` shows the effective config")
        })?;
        config.check(text, origin)?;
        Ok(config)
    }

    /// Refuses values the peer could not honour, naming the key, its line
    /// and the reason: limits that would stop it from serving any chaincode,
    /// timeouts below Fabric's floors, and listen addresses that are not
    /// `HOST:PORT` (refused here rather than when the peer binds them).
    fn check(&self, text: &str, origin: &str) -> Result<(), CliError> {
        let chaincode = &self.chaincode;
        let raise = |key: &str| {
            format!("raise chaincode.{key}, or remove it for the default (see docs/cli.md)")
        };
        let mut problems: Vec<(&str, &str, bool, String, String)> = vec![
            (
                "chaincode",
                "maxConnections",
                chaincode.max_connections == 0,
                "0 connections: the listener would close every chaincode connection".to_owned(),
                raise("maxConnections"),
            ),
            (
                "chaincode",
                "handshakeTimeout",
                chaincode.handshake_timeout.0.is_zero(),
                "\"0\": every TLS handshake would time out at once".to_owned(),
                raise("handshakeTimeout"),
            ),
            (
                "chaincode",
                "firstMessageTimeout",
                chaincode.first_message_timeout.0.is_zero(),
                "\"0\": every connection would be closed before its REGISTER".to_owned(),
                raise("firstMessageTimeout"),
            ),
            (
                "chaincode",
                "maxMessageSize",
                chaincode.max_message_size < MIN_MESSAGE_SIZE,
                format!(
                    "{} bytes: below {MIN_MESSAGE_SIZE}, ordinary chaincode messages would be refused",
                    chaincode.max_message_size
                ),
                raise("maxMessageSize"),
            ),
            (
                "chaincode",
                "maxChaincodes",
                chaincode.max_chaincodes == 0,
                "0 chaincodes: every launch and registration would be refused".to_owned(),
                raise("maxChaincodes"),
            ),
            (
                "chaincode",
                "startuptimeout",
                chaincode.startuptimeout.0 < MIN_STARTUP_TIMEOUT,
                format!(
                    "{:?}: below Fabric's minimum of {}, which Fabric would silently use instead",
                    format_duration(chaincode.startuptimeout.0),
                    format_duration(MIN_STARTUP_TIMEOUT)
                ),
                format!(
                    "write at least {:?}, or remove chaincode.startuptimeout for the default (see docs/cli.md)",
                    format_duration(MIN_STARTUP_TIMEOUT)
                ),
            ),
            (
                "chaincode",
                "executetimeout",
                chaincode.executetimeout.0 < MIN_EXECUTE_TIMEOUT,
                format!(
                    "{:?}: below {}, which Fabric would replace with {} without saying so",
                    format_duration(chaincode.executetimeout.0),
                    format_duration(MIN_EXECUTE_TIMEOUT),
                    format_duration(FABRIC_EXECUTE_TIMEOUT_FALLBACK)
                ),
                format!(
                    "write {:?} for what Fabric would do, or at least {:?}",
                    format_duration(FABRIC_EXECUTE_TIMEOUT_FALLBACK),
                    format_duration(MIN_EXECUTE_TIMEOUT)
                ),
            ),
        ];
        for (table, address) in [
            ("chaincode", Some(chaincode.listen_address.as_str())),
            ("metrics", self.metrics.listen_address.as_deref()),
        ] {
            if let Some(reason) = address.and_then(|a| host_port_problem(a).err()) {
                problems.push((
                    table,
                    "listenAddress",
                    true,
                    format!("{:?}: {reason}", address.unwrap_or_default()),
                    format!(
                        "write HOST:PORT, e.g. \"127.0.0.1:7052\" (port 0 picks a free one), for {table}.listenAddress"
                    ),
                ));
            }
        }
        let Some((table, key, _, reason, hint)) = problems.into_iter().find(|p| p.2) else {
            return Ok(());
        };
        let place = line_of(text, table, key)
            .map(|line| format!(" line {line}"))
            .unwrap_or_default();
        Err(CliError::new(format!(
            "bad config file {origin}{place}: {table}.{key} = {reason}"
        ))
        .with_hint(hint))
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        // Serialising plain strings and numbers cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// Whether the chaincode listener speaks TLS: `peer.tls.enabled`, else
    /// on in `net` mode and off in `dev` mode.
    pub fn tls_enabled(&self) -> bool {
        self.peer
            .tls
            .enabled
            .unwrap_or(self.chaincode.mode == ModeName::Net)
    }

    /// Where packages (`{name}.{version}` deployment specs) are read from.
    pub fn packages_dir(&self) -> PathBuf {
        match &self.peer.file_system_path {
            Some(root) => root.join("chaincodes"),
            None => PathBuf::from("packages"),
        }
    }

    /// The state directory: `peer.fileSystemPath`, else the default one.
    pub fn state_dir(&self) -> Result<PathBuf, CliError> {
        match &self.peer.file_system_path {
            Some(dir) => Ok(dir.clone()),
            None => crate::state::require_default_state_dir(),
        }
    }

    /// Where the process executor unpacks and runs chaincode, if configured.
    pub fn runtimes_dir(&self) -> Option<PathBuf> {
        self.peer
            .file_system_path
            .as_ref()
            .map(|root| root.join("runtimes"))
    }

    /// The runtime's settings.
    pub fn support_config(&self, peer_address: String) -> SupportConfig {
        SupportConfig {
            startup_timeout: self.chaincode.startuptimeout.0,
            execute_timeout: self.chaincode.executetimeout.0,
            keepalive: self.chaincode.keepalive.0,
            mode: match self.chaincode.mode {
                ModeName::Net => Mode::Net,
                ModeName::Dev => Mode::Dev,
            },
            peer_address,
            peer_id: self.peer.id.clone(),
            network_id: self.peer.network_id.clone(),
            max_connections: self.chaincode.max_connections,
            handshake_timeout: self.chaincode.handshake_timeout.0,
            first_message_timeout: self.chaincode.first_message_timeout.0,
            max_message_size: self.chaincode.max_message_size,
            idle_eviction: self.chaincode.idle_eviction.0,
            max_chaincodes: self.chaincode.max_chaincodes,
            ..SupportConfig::default()
        }
    }
}

/// The smallest `chaincode.startuptimeout` accepted: Fabric's own minimum
/// (below it, Fabric's peer uses 5 s).
pub const MIN_STARTUP_TIMEOUT: Duration = SupportConfig::MIN_STARTUP_TIMEOUT;

/// The smallest `chaincode.executetimeout` accepted: below 1 s, Fabric's
/// peer uses [`FABRIC_EXECUTE_TIMEOUT_FALLBACK`] instead; cclaunch refuses
/// the value rather than change it behind the user's back.
pub const MIN_EXECUTE_TIMEOUT: Duration = Duration::from_secs(1);

/// What Fabric's peer uses for an `executetimeout` below 1 s.
pub const FABRIC_EXECUTE_TIMEOUT_FALLBACK: Duration = Duration::from_secs(30);

/// The 1-based line that sets `key` inside `[table]`, when the file sets it
/// there (`listenAddress` appears in several tables).
fn line_of(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            current = header
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            continue;
        }
        let sets_key = line
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if current == table && sets_key {
            return Some(index + 1);
        }
    }
    None
}

/// Why `address` is not `HOST:PORT` (`[::1]:PORT` for IPv6), if it is not.
pub fn host_port_problem(address: &str) -> Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("not HOST:PORT (no port)".to_owned());
    };
    if host.is_empty() {
        return Err("not HOST:PORT (no host; write 0.0.0.0:PORT for every interface)".to_owned());
    }
    if host.contains("://") || host.contains('/') {
        return Err("not HOST:PORT (a URL or path; write the host and port only)".to_owned());
    }
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.contains(':') && !bracketed {
        return Err("not HOST:PORT (an IPv6 host goes in brackets: [::1]:PORT)".to_owned());
    }
    if host.chars().any(char::is_whitespace) {
        return Err("not HOST:PORT (the host contains whitespace)".to_owned());
    }
    match port.parse::<u16>() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "not HOST:PORT (port {port:?} is not a number from 0 to 65535)"
        )),
    }
}

/// The smallest `chaincode.maxMessageSize` accepted, in bytes: a REGISTER
/// and a small PUT_STATE fit with room to spare.
pub const MIN_MESSAGE_SIZE: usize = 1024;

/// A duration written as Fabric writes them: `"300s"`, `"30s"`, `"500ms"`,
/// `"5m"`, `"1h"`, `"0"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfigDuration(pub Duration);

/// Parses `"300s"`, `"1m30s"`, `"250ms"`, `"0"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {text:?}: expected a number with a unit (ms, s, m, h), e.g. \"30s\", or \"0\""
        )
    };
    let text_trimmed = text.trim();
    if text_trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if text_trimmed.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text_trimmed;
    // Each round eats one `<digits><unit>` group; a bounded loop by length.
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(number.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        "0".to_owned()
    } else if duration.subsec_millis() == 0 && duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                parse_duration(text).map(ConfigDuration).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<Self::Value, E> {
                u64::try_from(secs)
                    .map(|secs| ConfigDuration(Duration::from_secs(secs)))
                    .map_err(|_| {
                        E::custom(format!("invalid duration {secs}: must not be negative"))
                    })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_fabric_writes_them() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "s", "30", "30x", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for d in [
            Duration::ZERO,
            Duration::from_secs(30),
            Duration::from_millis(1500),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn file_keys_mirror_core_yaml_and_round_trip() {
        let text = r#"
            [peer]
            id = "p1"
            networkId = "net1"
            fileSystemPath = "/tmp/x"
            [chaincode]
            listenAddress = "127.0.0.1:9000"
            mode = "dev"
            startuptimeout = "10s"
            executetimeout = "5s"
            keepalive = "0"
            maxConnections = 64
            handshakeTimeout = "2s"
            firstMessageTimeout = "1s"
            maxMessageSize = 65536
            idleEviction = "0"
            maxChaincodes = 100
            [vm]
            endpoint = "unix:///var/run/docker.sock"
            [vm.docker]
            networkMode = "bridge"
            [admin]
            listenAddress = "127.0.0.1:9001"
            [metrics]
            listenAddress = "127.0.0.1:9002"
        "#;
        let config = PeerConfig::parse(text, "test").unwrap();
        assert_eq!(config.peer.id, "p1");
        assert_eq!(config.chaincode.mode, ModeName::Dev);
        assert_eq!(config.chaincode.startuptimeout.0, Duration::from_secs(10));
        assert_eq!(config.vm.docker.network_mode, "bridge");
        assert_eq!(config.packages_dir(), PathBuf::from("/tmp/x/chaincodes"));
        let support = config.support_config("127.0.0.1:9000".to_owned());
        assert_eq!(support.max_connections, 64);
        assert_eq!(support.handshake_timeout, Duration::from_secs(2));
        assert_eq!(support.first_message_timeout, Duration::from_secs(1));
        assert_eq!(support.max_message_size, 65536);
        assert_eq!(support.idle_eviction_after(), None);
        assert_eq!(support.max_chaincodes, 100);
        let again = PeerConfig::parse(&config.to_toml(), "again").unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn limits_default_to_the_runtime_s_and_are_printed() {
        let support = PeerConfig::default().support_config("127.0.0.1:7052".to_owned());
        let defaults = SupportConfig::default();
        assert_eq!(support, defaults);
        // The defaults are printed, so `--print-config` shows them.
        let printed = PeerConfig::default().to_toml();
        for key in [
            "maxConnections = 512",
            "firstMessageTimeout = \"10s\"",
            "maxMessageSize = 104857600",
            "idleEviction = \"600s\"",
            "maxChaincodes = 10000",
        ] {
            assert!(printed.contains(key), "{key} not in {printed}");
        }
    }

    #[test]
    fn limits_that_would_stop_all_service_are_refused_with_key_and_reason() {
        for (line, key, reason) in [
            (
                "maxConnections = 0",
                "maxConnections",
                "close every chaincode connection",
            ),
            (
                "handshakeTimeout = \"0\"",
                "handshakeTimeout",
                "would time out at once",
            ),
            (
                "firstMessageTimeout = \"0\"",
                "firstMessageTimeout",
                "closed before its REGISTER",
            ),
            ("maxMessageSize = 100", "maxMessageSize", "below 1024"),
            ("maxChaincodes = 0", "maxChaincodes", "would be refused"),
        ] {
            let text = format!("[chaincode]\nmode = \"dev\"\n{line}\n");
            let err = PeerConfig::parse(&text, "f.toml").unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("bad config file f.toml line 3: ")
                    && message.contains(&format!("chaincode.{key} = "))
                    && message.contains(reason),
                "{message}"
            );
            assert!(err.hint.unwrap().contains(key));
        }
        // Negative numbers are type errors, named by toml.
        let err = PeerConfig::parse("[chaincode]\nmaxConnections = -1\n", "f.toml").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        // The smallest accepted values load.
        let ok = "[chaincode]\nmaxConnections = 1\nmaxMessageSize = 1024\nmaxChaincodes = 1\nidleEviction = \"0\"\n";
        assert!(PeerConfig::parse(ok, "f.toml").is_ok());
    }

    #[test]
    fn timeouts_below_fabric_s_floors_are_refused_with_the_rule() {
        for (line, key, reason, hint) in [
            (
                "executetimeout = \"0\"",
                "executetimeout",
                "replace with 30s",
                "\"30s\"",
            ),
            (
                "executetimeout = \"999ms\"",
                "executetimeout",
                "below 1s",
                "\"1s\"",
            ),
            (
                "startuptimeout = \"4s\"",
                "startuptimeout",
                "minimum of 5s",
                "\"5s\"",
            ),
            (
                "startuptimeout = \"0\"",
                "startuptimeout",
                "minimum of 5s",
                "\"5s\"",
            ),
        ] {
            let text = format!("[chaincode]\nmode = \"dev\"\n{line}\n");
            let err = PeerConfig::parse(&text, "f.toml").unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("bad config file f.toml line 3: ")
                    && message.contains(&format!("chaincode.{key} = "))
                    && message.contains(reason),
                "{line}: {message}"
            );
            assert!(err.hint.as_deref().unwrap_or("").contains(hint), "{err:?}");
        }
        // The floors themselves load.
        let ok = "[chaincode]\nstartuptimeout = \"5s\"\nexecutetimeout = \"1s\"\n";
        let config = PeerConfig::parse(ok, "f.toml").unwrap();
        assert_eq!(config.chaincode.startuptimeout.0, Duration::from_secs(5));
    }

    #[test]
    fn listen_addresses_that_are_not_host_port_are_refused_at_load() {
        for (text, line, key, reason) in [
            (
                "[chaincode]\nlistenAddress = \"7052\"\n",
                2,
                "chaincode.listenAddress",
                "no port",
            ),
            (
                "[chaincode]\nlistenAddress = \"127.0.0.1:http\"\n",
                2,
                "chaincode.listenAddress",
                "\"http\" is not a number",
            ),
            (
                "[chaincode]\nlistenAddress = \"127.0.0.1:70520\"\n",
                2,
                "chaincode.listenAddress",
                "not a number from 0 to 65535",
            ),
            (
                "[chaincode]\nlistenAddress = \":7052\"\n",
                2,
                "chaincode.listenAddress",
                "no host",
            ),
            (
                "[chaincode]\nlistenAddress = \"::1:7052\"\n",
                2,
                "chaincode.listenAddress",
                "brackets",
            ),
            // The line is found in its own table, not in [chaincode].
            (
                "[chaincode]\nlistenAddress = \"127.0.0.1:0\"\n[metrics]\nlistenAddress = \"http://127.0.0.1:9443\"\n",
                4,
                "metrics.listenAddress",
                "a URL",
            ),
            (
                "[metrics]\nlistenAddress = \"localhost\"\n",
                2,
                "metrics.listenAddress",
                "no port",
            ),
        ] {
            let err = PeerConfig::parse(text, "f.toml").unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("bad config file f.toml line {line}: {key} = "))
                    && message.contains(reason),
                "{text}: {message}"
            );
            assert!(
                err.hint.as_deref().unwrap_or("").contains("HOST:PORT"),
                "{err:?}"
            );
        }
        for good in [
            "127.0.0.1:0",
            "localhost:7052",
            "[::1]:7052",
            "0.0.0.0:9443",
        ] {
            let text = format!(
                "[chaincode]\nlistenAddress = \"{good}\"\n[metrics]\nlistenAddress = \"{good}\"\n"
            );
            assert!(PeerConfig::parse(&text, "f.toml").is_ok(), "{good}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = PeerConfig::parse("[chaincode]\nstartuptimeut = \"3s\"\n", "f.toml").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("startuptimeut") && text.contains("line 2"),
            "{text}"
        );
        let err = PeerConfig::parse("[chaincode]\nkeepalive = \"soon\"\n", "f.toml").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("keepalive") && text.contains("invalid duration"),
            "{text}"
        );
        let err = PeerConfig::parse("[chaincode]\nmode = \"fast\"\n", "f.toml").unwrap_err();
        assert!(err.to_string().contains("mode"), "{err}");
    }
}
