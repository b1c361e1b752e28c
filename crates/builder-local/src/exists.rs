//! Whether an image already exists where this builder would put it.
//!
//! When pushing, the registry is the truth (the engine's store says nothing about what a
//! cluster can pull), so the check asks the registry with the same credentials a push would
//! use. When not pushing, the engine's own store is asked. Either way the answer is never a
//! guess: rejected credentials are `Denied` (naming the credential source), anything else that
//! prevents a clear answer (engine down, registry error, no answer in time) is `Unknown` with
//! a reason.

use std::path::Path;

use imagespec_core::build::Existence;
use imagespec_core::hash::ImageName;
use imagespec_registry::{
    CredentialSources, ImageReference, MissingReason, Platform, RegistryClient,
};

use crate::discovery::ConnectedEngine;

/// Asks the image's registry.
pub(crate) async fn in_registry(
    image: &ImageName,
    platforms: &[String],
    sources: CredentialSources,
    registry_config: Option<&Path>,
) -> Existence {
    let name = image.to_string();
    let reference = match ImageReference::parse(&name) {
        Ok(r) => r,
        Err(e) => {
            return Existence::Unknown {
                reason: format!("`{name}` is not a valid image reference: {e}"),
            };
        }
    };
    let platforms = match parse_platforms(platforms) {
        Ok(p) => p,
        Err(reason) => return Existence::Unknown { reason },
    };
    let sources = match registry_config {
        Some(path) => sources.with_explicit_file(path),
        None => sources,
    };
    let client = match RegistryClient::builder().credentials(sources).build() {
        Ok(c) => c,
        Err(e) => {
            return Existence::Unknown {
                reason: format!("cannot create a registry client: {e}"),
            };
        }
    };
    match client.check(&reference, &platforms).await {
        imagespec_registry::Existence::Exists { .. } => Existence::Exists,
        imagespec_registry::Existence::Missing { reason } => {
            if let MissingReason::Platforms { .. } = &reason {
                tracing::info!(image = %name, "{reason}");
            }
            Existence::Missing
        }
        imagespec_registry::Existence::Unknown { reason } => Existence::Unknown { reason },
        imagespec_registry::Existence::Denied { reason } => Existence::Denied { reason },
    }
}

fn parse_platforms(platforms: &[String]) -> Result<Vec<Platform>, String> {
    platforms
        .iter()
        .map(|p| Platform::parse(p).map_err(|e| format!("invalid platform `{p}`: {e}")))
        .collect()
}

/// Asks the engine's image store: the tag must be there, built for every requested platform
/// (a store holds one platform per tag, so with several platforms it can only be missing).
pub(crate) async fn in_engine(
    engine: &ConnectedEngine,
    image: &ImageName,
    platforms: &[String],
) -> Existence {
    let name = image.to_string();
    let wanted = match parse_platforms(platforms) {
        Ok(p) => p,
        Err(reason) => return Existence::Unknown { reason },
    };
    match engine.docker.inspect_image(&name).await {
        Ok(info) => {
            let have = Platform::new(
                info.os.as_deref().unwrap_or("linux"),
                info.architecture.as_deref().unwrap_or_default(),
                info.variant.as_deref().filter(|v| !v.is_empty()),
            );
            let missing: Vec<String> = wanted
                .iter()
                .filter(|w| !w.is_satisfied_by(&have))
                .map(ToString::to_string)
                .collect();
            if missing.is_empty() {
                Existence::Exists
            } else {
                tracing::info!(image = %name, have = %have, "the local image lacks {}", missing.join(", "));
                Existence::Missing
            }
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Existence::Missing,
        Err(e) => Existence::Unknown {
            reason: format!(
                "cannot inspect {name} in {} at {}: {e}",
                engine.kind, engine.endpoint
            ),
        },
    }
}
