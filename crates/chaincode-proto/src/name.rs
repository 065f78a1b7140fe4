//! Canonical chaincode names: `name:version`, as Fabric 1.x writes them.

use std::fmt;
use std::str::FromStr;

/// Why a canonical chaincode name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The text had no `:` between name and version.
    #[error("chaincode name {0:?} has no version: expected name:version")]
    MissingVersion(String),
    /// The part before `:` was empty.
    #[error("chaincode name {0:?} has an empty name: expected name:version")]
    EmptyName(String),
    /// The part after `:` was empty.
    #[error("chaincode name {0:?} has an empty version: expected name:version")]
    EmptyVersion(String),
}

/// A chaincode's canonical identity: its name and its (required) version.
///
/// ```
/// use chaincode_proto::ChaincodeName;
/// let cc: ChaincodeName = "mycc:1.0".parse().unwrap();
/// assert_eq!(cc.name(), "mycc");
/// assert_eq!(cc.version(), "1.0");
/// assert_eq!(cc.to_string(), "mycc:1.0");
/// assert!("mycc".parse::<ChaincodeName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChaincodeName {
    name: String,
    version: String,
}

impl ChaincodeName {
    /// Builds a name from its two parts; both must be non-empty.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Result<Self, NameError> {
        let (name, version) = (name.into(), version.into());
        let whole = format!("{name}:{version}");
        if name.is_empty() {
            return Err(NameError::EmptyName(whole));
        }
        if version.is_empty() {
            return Err(NameError::EmptyVersion(whole));
        }
        Ok(Self { name, version })
    }

    /// Parses `name:version`. The version is everything after the first `:`
    /// (2.x package ids, `label:sha256hex`, parse the same way).
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let (name, version) = text
            .split_once(':')
            .ok_or_else(|| NameError::MissingVersion(text.to_owned()))?;
        Self::new(name, version)
    }

    /// The chaincode's name, without the version.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chaincode's version.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl fmt::Display for ChaincodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.version)
    }
}

impl FromStr for ChaincodeName {
    type Err = NameError;
    fn from_str(text: &str) -> Result<Self, NameError> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(ChaincodeName::parse("a:b").unwrap().to_string(), "a:b");
        assert_eq!(
            ChaincodeName::parse("lbl:ab:cd").unwrap().version(),
            "ab:cd"
        );
        assert_eq!(
            ChaincodeName::parse("mycc"),
            Err(NameError::MissingVersion("mycc".into()))
        );
        assert_eq!(
            ChaincodeName::parse(":1"),
            Err(NameError::EmptyName(":1".into()))
        );
        assert_eq!(
            ChaincodeName::parse("a:"),
            Err(NameError::EmptyVersion("a:".into()))
        );
    }
}
