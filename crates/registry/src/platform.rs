//! Platforms (`os/architecture[/variant]`) and the matching rules used by the existence check.
//!
//! Registries and engines spell the same platform several ways (`aarch64` vs `arm64`,
//! `arm64/v8` vs `arm64`, `arm` vs `arm/v7`). Comparing strings would report a multi-arch
//! image as missing a platform it has, and trigger a pointless rebuild, so both sides are
//! normalised the way containerd does before comparing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::PlatformError;

/// A target platform, e.g. `linux/amd64` or `linux/arm64/v8`.
///
/// Serialises with the OCI field names (`os`, `architecture`, `variant`), so it can be used
/// directly as the `platform` of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A platform from its parts (not normalised: see [`Self::normalized`]).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Parses `os/architecture[/variant]`.
    pub fn parse(input: &str) -> Result<Self, PlatformError> {
        let err = |reason| PlatformError {
            input: input.to_string(),
            reason,
        };
        let parts: Vec<&str> = input.trim().split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            [_] => return Err(err("it has no architecture")),
            _ => return Err(err("it has too many `/`-separated parts")),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        };
        if !valid(os) || !valid(arch) || variant.is_some_and(|v| !valid(v)) {
            return Err(err("each part must be a non-empty word"));
        }
        Ok(Self::new(
            &os.to_ascii_lowercase(),
            &arch.to_ascii_lowercase(),
            variant.map(str::to_ascii_lowercase).as_deref(),
        ))
    }

    /// Parses a comma-separated list such as a spec's `platform` field
    /// (`linux/amd64,linux/arm64`); blank entries are ignored.
    pub fn parse_list(input: &str) -> Result<Vec<Self>, PlatformError> {
        input
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect()
    }

    /// The canonical spelling: architecture aliases resolved and default variants applied
    /// (`arm64/v8` → `arm64`, `arm` → `arm/v7`, `x86_64` → `amd64`).
    pub fn normalized(&self) -> Self {
        let os = self.os.to_ascii_lowercase();
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase);
        let (arch, variant) = match (arch.as_str(), variant.as_deref()) {
            ("x86_64" | "x86-64" | "amd64", Some("v1")) | ("x86_64" | "x86-64" | "amd64", None) => {
                ("amd64", None)
            }
            ("x86_64" | "x86-64", v) => ("amd64", v.map(str::to_string)),
            ("i386" | "i686", v) => ("386", v.map(str::to_string)),
            ("aarch64" | "arm64", Some("v8" | "8") | None) => ("arm64", None),
            ("aarch64", v) => ("arm64", v.map(str::to_string)),
            ("armhf", _) => ("arm", Some("v7".to_string())),
            ("armel", _) => ("arm", Some("v6".to_string())),
            ("arm", None) => ("arm", Some("v7".to_string())),
            ("arm", Some(v)) if v.len() == 1 => ("arm", Some(format!("v{v}"))),
            (a, v) => (a, v.map(str::to_string)),
        };
        Self {
            os,
            architecture: arch.to_string(),
            variant,
        }
    }

    /// Whether an image built for `available` satisfies a request for `self`.
    ///
    /// A request without a variant accepts any variant of the architecture (the user did not
    /// ask for one); a request with one needs the same variant after normalisation.
    pub fn is_satisfied_by(&self, available: &Platform) -> bool {
        let want = self.normalized();
        let have = available.normalized();
        want.os == have.os
            && want.architecture == have.architecture
            && (want.variant.is_none() || want.variant == have.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).expect("valid platform")
    }

    #[test]
    fn parses_and_displays() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("Linux/ARM64/V8").to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/v1/x").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        assert_eq!(
            Platform::parse_list(" linux/amd64, linux/arm64 ,").expect("list"),
            vec![p("linux/amd64"), p("linux/arm64")]
        );
    }

    #[test]
    fn matching_table() {
        let cases = [
            // (requested, available, satisfied)
            ("linux/amd64", "linux/amd64", true),
            ("linux/amd64", "linux/x86_64", true),
            ("linux/arm64", "linux/arm64/v8", true),
            ("linux/arm64/v8", "linux/arm64", true),
            ("linux/arm64/v8", "linux/aarch64", true),
            ("linux/arm", "linux/arm/v7", true),
            ("linux/arm/v7", "linux/arm", true),
            ("linux/arm/v6", "linux/arm/v7", false),
            ("linux/arm64", "linux/amd64", false),
            ("linux/s390x", "linux/amd64", false),
            ("windows/amd64", "linux/amd64", false),
            ("linux/amd64", "unknown/unknown", false),
        ];
        for (want, have, expected) in cases {
            assert_eq!(
                p(want).is_satisfied_by(&p(have)),
                expected,
                "{want} satisfied by {have}"
            );
        }
    }
}
