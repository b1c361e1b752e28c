//! The existence check: does this image (for these platforms) already exist in its registry?
//!
//! The answer is tri-state on purpose. Tools that collapse "could not tell" into "exists" skip
//! the build and leave users with `ImagePullBackOff` hours later; tools that collapse it into
//! "missing" rebuild and push over a registry outage. [`Existence::Unknown`] lets the caller
//! decide, and its reason says what to fix.

use std::fmt;

use crate::client::RegistryClient;
use crate::error::RegistryError;
use crate::platform::Platform;
use crate::reference::ImageReference;

/// Whether an image exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existence {
    /// The image exists (with every requested platform); `digest` is its manifest's digest.
    Exists { digest: String },
    /// The registry answered, and the image (or a requested platform) is not there.
    Missing { reason: MissingReason },
    /// The registry could not be asked or would not answer; `reason` says why and never
    /// contains a secret.
    Unknown { reason: String },
    /// The registry refused our credentials, or wants some and none were found. `reason` names
    /// the registry and the credential source used (file, helper, or none), never a secret.
    /// Kept apart from `Unknown` so that no "build or assume when unknown" policy can turn a
    /// refused login into a success.
    Denied { reason: String },
}

/// Why an image counts as missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingReason {
    /// No manifest for the tag or digest (or no such repository).
    NotFound,
    /// The image exists but lacks some requested platforms.
    Platforms {
        /// The digest of the image that was found.
        digest: String,
        missing: Vec<Platform>,
        available: Vec<Platform>,
    },
}

impl Existence {
    pub fn exists(&self) -> bool {
        matches!(self, Existence::Exists { .. })
    }
    pub fn is_missing(&self) -> bool {
        matches!(self, Existence::Missing { .. })
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Existence::Unknown { .. })
    }
}

impl fmt::Display for Existence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Existence::Exists { digest } => write!(f, "exists ({digest})"),
            Existence::Missing { reason } => write!(f, "missing: {reason}"),
            Existence::Unknown { reason } => write!(f, "unknown: {reason}"),
            Existence::Denied { reason } => write!(f, "denied: {reason}"),
        }
    }
}

impl fmt::Display for MissingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |ps: &[Platform]| {
            ps.iter()
                .map(Platform::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            MissingReason::NotFound => f.write_str("no such tag or digest in the registry"),
            MissingReason::Platforms {
                missing, available, ..
            } => write!(
                f,
                "the image has no {} variant (it has: {})",
                list(missing),
                if available.is_empty() {
                    "no platforms".to_string()
                } else {
                    list(available)
                }
            ),
        }
    }
}

impl RegistryClient {
    /// Checks whether `reference` exists, and, if `platforms` is not empty, has every one of
    /// them. Never fails: refused credentials become [`Existence::Denied`], other problems
    /// [`Existence::Unknown`].
    ///
    /// Without platforms this is one `HEAD`. With platforms the manifest is fetched: an index
    /// must list each platform; a single-platform manifest's config blob must match.
    pub async fn check(&self, reference: &ImageReference, platforms: &[Platform]) -> Existence {
        let result = if platforms.is_empty() {
            self.manifest_digest(reference)
                .await
                .map(|digest| Existence::Exists { digest })
        } else {
            self.check_platforms(reference, platforms).await
        };
        let existence = match result {
            Ok(existence) => existence,
            Err(e) if e.is_not_found() => Existence::Missing {
                reason: MissingReason::NotFound,
            },
            Err(e) if e.is_auth() => Existence::Denied {
                reason: e.to_string(),
            },
            Err(e) => Existence::Unknown {
                reason: e.to_string(),
            },
        };
        tracing::debug!(reference = %reference, %existence, "existence check");
        existence
    }

    async fn check_platforms(
        &self,
        reference: &ImageReference,
        platforms: &[Platform],
    ) -> Result<Existence, RegistryError> {
        let (manifest, available) = self.platforms(reference).await?;
        let missing: Vec<Platform> = platforms
            .iter()
            .filter(|want| !available.iter().any(|have| want.is_satisfied_by(have)))
            .cloned()
            .collect();
        Ok(if missing.is_empty() {
            Existence::Exists {
                digest: manifest.digest,
            }
        } else {
            Existence::Missing {
                reason: MissingReason::Platforms {
                    digest: manifest.digest,
                    missing,
                    available,
                },
            }
        })
    }
}
