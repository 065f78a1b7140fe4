//! Canonical chaincode names: `name:version`, as Fabric 1.x writes them, and
//! Fabric 2.x package ids, `label:sha256hex`.
//!
//! Names reach file paths (`{dir}/{name}.{version}`), process arguments and
//! container names, so every way in validates them with Fabric's own rules
//! (the `lifecycle` and `persistence` packages):
//!
//! | part | rule |
//! |------|------|
//! | name | [`NAME_RULE`] |
//! | version | [`VERSION_RULE`] |
//! | package-id label | [`LABEL_RULE`], when the version is 64 lowercase hex digits |
//!
//! and the whole `name:version` is at most [`MAX_LEN`] bytes.

use std::fmt;
use std::str::FromStr;

/// Fabric's rule for a chaincode name.
pub const NAME_RULE: &str = "^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$";
/// Fabric's rule for a chaincode version.
pub const VERSION_RULE: &str = "^[A-Za-z0-9_.+-]+$";
/// Fabric 2.x's rule for the label of a package id (`label:sha256hex`).
pub const LABEL_RULE: &str = "^[[:alnum:]][[:alnum:]_.+-]*$";
/// The longest accepted `name:version`, in bytes: the spec file
/// `{name}.{version}` then fits one path component (`NAME_MAX`).
pub const MAX_LEN: usize = 255;

/// Length of the hex sha256 that ends a package id.
const PACKAGE_HASH_LEN: usize = 64;

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
    /// The whole name was longer than [`MAX_LEN`] (not echoed: it may be huge).
    #[error("chaincode name is {len} bytes long: at most {max} are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// [`MAX_LEN`].
        max: usize,
    },
    /// The name part broke [`NAME_RULE`].
    #[error("chaincode name {0:?} is invalid: a name must match {NAME_RULE}")]
    InvalidName(String),
    /// The version part broke [`VERSION_RULE`].
    #[error("chaincode version {0:?} is invalid: a version must match {VERSION_RULE}")]
    InvalidVersion(String),
    /// The label of a package id broke [`LABEL_RULE`].
    #[error("package label {0:?} is invalid: a package label must match {LABEL_RULE}")]
    InvalidLabel(String),
}

/// Checks `name` against [`NAME_RULE`]: runs of ASCII letters and digits
/// joined by single `-` or `_`.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.len() > MAX_LEN {
        return Err(NameError::TooLong {
            len: name.len(),
            max: MAX_LEN,
        });
    }
    if matches_name_rule(name) {
        Ok(())
    } else {
        Err(NameError::InvalidName(name.to_owned()))
    }
}

/// `^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$`: split at every separator, each
/// piece must be a non-empty run of alphanumerics.
fn matches_name_rule(name: &str) -> bool {
    name.split(['-', '_'])
        .all(|run| !run.is_empty() && run.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `^[A-Za-z0-9_.+-]+$`.
fn matches_version_rule(version: &str) -> bool {
    !version.is_empty() && version.bytes().all(is_version_byte)
}

/// `^[[:alnum:]][[:alnum:]_.+-]*$` (`[:alnum:]` is ASCII, as in Go's regexp).
fn matches_label_rule(label: &str) -> bool {
    match label.as_bytes().split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphanumeric() && rest.iter().all(|&b| is_version_byte(b))
        }
        None => false,
    }
}

/// `[A-Za-z0-9_.+-]`, the same class as `[[:alnum:]_.+-]`.
fn is_version_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-')
}

/// A 2.x package id's hash: exactly 64 lowercase hex digits.
fn is_package_hash(version: &str) -> bool {
    version.len() == PACKAGE_HASH_LEN
        && version
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A chaincode's canonical identity: its name and its (required) version.
///
/// Either `name:version` (name by [`NAME_RULE`], version by
/// [`VERSION_RULE`]) or a package id `label:hash` (label by [`LABEL_RULE`],
/// hash 64 lowercase hex digits), which parses as name = label,
/// version = hash. The label rule is a superset of the name rule, so a name
/// that passes one way never fails the other.
///
/// ```
/// use chaincode_proto::ChaincodeName;
/// let cc: ChaincodeName = "mycc:1.0".parse().unwrap();
/// assert_eq!(cc.name(), "mycc");
/// assert_eq!(cc.version(), "1.0");
/// assert_eq!(cc.to_string(), "mycc:1.0");
/// assert!("mycc".parse::<ChaincodeName>().is_err());
/// assert!("../x:1".parse::<ChaincodeName>().is_err());
/// let id = format!("my.cc+v1:{}", "ab".repeat(32));
/// assert_eq!(id.parse::<ChaincodeName>().unwrap().name(), "my.cc+v1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChaincodeName {
    name: String,
    version: String,
}

impl ChaincodeName {
    /// Builds a name from its two parts, checked as the type says.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Result<Self, NameError> {
        let (name, version) = (name.into(), version.into());
        // +1 for the ':' of the canonical form.
        let len = name.len() + 1 + version.len();
        if len > MAX_LEN {
            return Err(NameError::TooLong { len, max: MAX_LEN });
        }
        if name.is_empty() {
            return Err(NameError::EmptyName(format!("{name}:{version}")));
        }
        if version.is_empty() {
            return Err(NameError::EmptyVersion(format!("{name}:{version}")));
        }
        if is_package_hash(&version) {
            if !matches_label_rule(&name) {
                return Err(NameError::InvalidLabel(name));
            }
        } else {
            if !matches_name_rule(&name) {
                return Err(NameError::InvalidName(name));
            }
            if !matches_version_rule(&version) {
                return Err(NameError::InvalidVersion(version));
            }
        }
        Ok(Self { name, version })
    }

    /// Parses `name:version`, split at the first `:` (so a `:` in the
    /// version is refused by the version rule).
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.len() > MAX_LEN {
            return Err(NameError::TooLong {
                len: text.len(),
                max: MAX_LEN,
            });
        }
        let (name, version) = text
            .split_once(':')
            .ok_or_else(|| NameError::MissingVersion(text.to_owned()))?;
        Self::new(name, version)
    }

    /// The chaincode's name (a package id's label), without the version.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chaincode's version (a package id's hash).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether this is a Fabric 2.x package id (`label:sha256hex`).
    pub fn is_package_id(&self) -> bool {
        is_package_hash(&self.version)
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
    use proptest::prelude::*;

    fn hash() -> String {
        "0123456789abcdef".repeat(4)
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(ChaincodeName::parse("a:b").unwrap().to_string(), "a:b");
        assert_eq!(
            ChaincodeName::parse("lbl:ab:cd"),
            Err(NameError::InvalidVersion("ab:cd".into()))
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

    #[test]
    fn fabric_names_and_versions_pass() {
        for ok in [
            "mycc:1.0",
            "My_CC-2:v1.0.0+build-7_rc",
            "a1-b2_c3:_",
            "x:1",
            "UPPER:.",
        ] {
            let cc = ChaincodeName::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(cc.to_string(), ok);
            assert!(!cc.is_package_id());
        }
    }

    #[test]
    fn traversal_and_absolute_paths_are_refused_quoting_the_rule() {
        for (text, name) in [
            ("../x:1", "../x"),
            ("/tmp/evil:1", "/tmp/evil"),
            ("a/b:1", "a/b"),
        ] {
            let err = ChaincodeName::parse(text).unwrap_err();
            assert_eq!(err, NameError::InvalidName(name.into()));
            assert_eq!(
                err.to_string(),
                format!("chaincode name {name:?} is invalid: a name must match {NAME_RULE}")
            );
        }
        // A version must not smuggle a path either: `{name}.{version}`.
        assert_eq!(
            ChaincodeName::parse("x:1/../../y"),
            Err(NameError::InvalidVersion("1/../../y".into()))
        );
        assert!(
            ChaincodeName::parse("x:1/2")
                .unwrap_err()
                .to_string()
                .contains(VERSION_RULE)
        );
    }

    #[test]
    fn name_rule_edges() {
        for bad in [
            "-a", "a-", "a--b", "a_-b", "_a", "a.b", "a+b", "a b", " a", "a\n", "café", "a\0",
            "ａ", "",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} passed");
            assert!(!matches_name_rule(bad), "{bad:?} passed");
        }
        for good in ["a", "A9", "a-b_c", "a_b-c-d9"] {
            assert_eq!(validate_name(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn spaces_unicode_and_control_bytes_are_refused() {
        for text in [
            "my cc:1", "mycc:1 0", "café:1", "mycc:1é", "my\tcc:1", "mycc:1\n",
        ] {
            assert!(ChaincodeName::parse(text).is_err(), "{text:?} passed");
        }
    }

    #[test]
    fn too_long_is_refused_without_echoing_it() {
        let long = format!("{}:1", "a".repeat(MAX_LEN));
        let err = ChaincodeName::parse(&long).unwrap_err();
        assert_eq!(
            err,
            NameError::TooLong {
                len: MAX_LEN + 2,
                max: MAX_LEN
            }
        );
        assert!(!err.to_string().contains("aaaa"), "{err}");
        assert!(matches!(
            ChaincodeName::new("a".repeat(200), "1".repeat(100)),
            Err(NameError::TooLong { .. })
        ));
        assert!(matches!(
            validate_name(&"a".repeat(MAX_LEN + 1)),
            Err(NameError::TooLong { .. })
        ));
        // Exactly at the cap is fine.
        let at_cap = format!("{}:1", "a".repeat(MAX_LEN - 2));
        assert_eq!(ChaincodeName::parse(&at_cap).unwrap().to_string(), at_cap);
    }

    #[test]
    fn package_ids_use_the_label_rule() {
        let id = format!("my.cc+v1_2-x:{}", hash());
        let cc = ChaincodeName::parse(&id).unwrap();
        assert_eq!(cc.name(), "my.cc+v1_2-x");
        assert_eq!(cc.version(), hash());
        assert!(cc.is_package_id());

        for label in [".cc", "-cc", "../x", "/tmp/evil", "a/b", "a b", "é"] {
            assert_eq!(
                ChaincodeName::parse(&format!("{label}:{}", hash())),
                Err(NameError::InvalidLabel(label.into())),
                "{label:?}"
            );
        }
        let err = ChaincodeName::parse(&format!("../x:{}", hash())).unwrap_err();
        assert!(err.to_string().contains(LABEL_RULE), "{err}");

        // Not a package hash (upper case, short, long): the name rule applies.
        for version in [
            hash().to_uppercase(),
            hash()[1..].to_owned(),
            format!("{}0", hash()),
        ] {
            assert_eq!(
                ChaincodeName::parse(&format!("my.cc:{version}")),
                Err(NameError::InvalidName("my.cc".into()))
            );
        }
    }

    fn full(rule: &str) -> regex::Regex {
        regex::Regex::new(rule).unwrap()
    }

    proptest! {
        #[test]
        fn hand_written_rules_equal_the_regexes(text in "[-_.+a-zA-Z0-9:/ é]{0,12}") {
            prop_assert_eq!(matches_name_rule(&text), full(NAME_RULE).is_match(&text));
            prop_assert_eq!(matches_version_rule(&text), full(VERSION_RULE).is_match(&text));
            // regex's [[:alnum:]] is ASCII, like Go's.
            prop_assert_eq!(matches_label_rule(&text), full(LABEL_RULE).is_match(&text));
        }

        #[test]
        fn parse_agrees_with_the_rules(name in "[-_.+a-zA-Z0-9/]{0,8}", version in "[-_.+a-f0-9/:]{0,8}") {
            let parsed = ChaincodeName::parse(&format!("{name}:{version}"));
            let expected = full(NAME_RULE).is_match(&name) && full(VERSION_RULE).is_match(&version);
            prop_assert_eq!(parsed.is_ok(), expected, "{:?}", parsed);
        }

        #[test]
        fn package_ids_agree_with_the_label_rule(label in "[-_.+a-zA-Z0-9/]{0,8}", hash in "[0-9a-f]{64}") {
            let parsed = ChaincodeName::parse(&format!("{label}:{hash}"));
            prop_assert_eq!(parsed.is_ok(), full(LABEL_RULE).is_match(&label), "{:?}", parsed);
        }
    }
}
