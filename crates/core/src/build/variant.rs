//! Deployment variants and the builder each defaults to (from the source documents).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The product a spec is deployed with; it decides the default builder and what is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Flyte OSS: local builds by default.
    #[default]
    Flyte,
    /// Union Serverless: always the cloud builder; local builds are not supported.
    Serverless,
    /// Union BYOC: local by default (backward compatibility), `union` on request.
    Byoc,
    /// Union BYOK: as BYOC.
    Byok,
    /// Union Self-managed: as BYOC.
    Selfmanaged,
}

/// The local builder's name.
pub const LOCAL_BUILDER: &str = "default";
/// The remote (cloud) builder's name.
pub const REMOTE_BUILDER: &str = "union";

impl Variant {
    pub const ALL: [Variant; 5] = [
        Variant::Flyte,
        Variant::Serverless,
        Variant::Byoc,
        Variant::Byok,
        Variant::Selfmanaged,
    ];

    /// The builder used when neither the spec nor the command line names one.
    pub fn default_builder(self) -> &'static str {
        match self {
            Variant::Serverless => REMOTE_BUILDER,
            _ => LOCAL_BUILDER,
        }
    }

    /// Whether images may be built on this machine.
    pub fn allows_local_builds(self) -> bool {
        self != Variant::Serverless
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Flyte => "flyte",
            Variant::Serverless => "serverless",
            Variant::Byoc => "byoc",
            Variant::Byok => "byok",
            Variant::Selfmanaged => "selfmanaged",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown variant name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown deployment variant `{0}`; use one of: flyte, serverless, byoc, byok, selfmanaged")]
pub struct UnknownVariant(pub String);

impl FromStr for Variant {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let lower = lower.replace(['-', '_'], "");
        Variant::ALL
            .into_iter()
            .find(|v| v.as_str() == lower)
            .ok_or_else(|| UnknownVariant(s.to_string()))
    }
}

/// Where the variant in force came from (shown by `imagespec builders`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantSource {
    Flag,
    Environment,
    ConfigFile,
    Default,
}

/// Picks the variant: `--variant`, then `IMAGESPEC_VARIANT`, then the config file, then `flyte`.
pub fn resolve_variant(
    flag: Option<&str>,
    env: Option<&str>,
    config: Option<Variant>,
) -> Result<(Variant, VariantSource), UnknownVariant> {
    if let Some(v) = flag {
        return Ok((v.parse()?, VariantSource::Flag));
    }
    if let Some(v) = env.filter(|v| !v.trim().is_empty()) {
        return Ok((v.parse()?, VariantSource::Environment));
    }
    if let Some(v) = config {
        return Ok((v, VariantSource::ConfigFile));
    }
    Ok((Variant::Flyte, VariantSource::Default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_source_documents() {
        assert_eq!(Variant::Flyte.default_builder(), "default");
        assert_eq!(Variant::Serverless.default_builder(), "union");
        for v in [Variant::Byoc, Variant::Byok, Variant::Selfmanaged] {
            assert_eq!(v.default_builder(), "default");
            assert!(v.allows_local_builds());
        }
        assert!(!Variant::Serverless.allows_local_builds());
    }

    #[test]
    fn precedence_flag_env_config_default() {
        let r = |f, e, c| resolve_variant(f, e, c).expect("valid");
        assert_eq!(
            r(Some("byoc"), Some("serverless"), Some(Variant::Byok)),
            (Variant::Byoc, VariantSource::Flag)
        );
        assert_eq!(
            r(None, Some("serverless"), Some(Variant::Byok)),
            (Variant::Serverless, VariantSource::Environment)
        );
        assert_eq!(
            r(None, None, Some(Variant::Byok)),
            (Variant::Byok, VariantSource::ConfigFile)
        );
        assert_eq!(
            r(None, Some(""), None),
            (Variant::Flyte, VariantSource::Default)
        );
    }

    #[test]
    fn parsing_is_lenient_about_case_and_dashes() {
        assert_eq!("Self-Managed".parse::<Variant>(), Ok(Variant::Selfmanaged));
        let err = "cloud".parse::<Variant>().expect_err("unknown");
        assert!(err.to_string().contains("serverless"));
    }
}
