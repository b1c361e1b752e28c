//! The local backends: Docker and Podman through `LocalBuilder`, pushing to the dev registry.

use std::sync::Arc;

use anyhow::{Context, Result};
use imagespec_builder_local::{EngineChoice, LocalBuilder};

use crate::backend::Backend;
use crate::devenv::{DOCKER_ENDPOINT, HINT, PODMAN_ENDPOINT};
use crate::registry::DevRegistry;
use crate::runner::Runner;

/// Docker (BuildKit) at `/var/run/docker.sock`, run with the Docker CLI.
pub async fn docker() -> Result<Backend> {
    local(EngineChoice::Docker, DOCKER_ENDPOINT, Runner::docker()).await
}

/// Podman (Buildah) at `/run/podman/podman.sock`, run with the Podman CLI (same store).
pub async fn podman() -> Result<Backend> {
    local(EngineChoice::Podman, PODMAN_ENDPOINT, Runner::podman()).await
}

/// A local backend for `choice` at `endpoint`, pushing to the dev registry with private
/// credentials. Fails (pointing at `scripts/dev-env.sh`) when the engine, the registry
/// credentials or the base images are missing.
pub async fn local(choice: EngineChoice, endpoint: &str, runner: Runner) -> Result<Backend> {
    let registry = DevRegistry::from_dev_env()?;
    let builder = LocalBuilder::new(choice, Some(endpoint.to_string()))
        .with_credentials(registry.credentials());
    builder
        .engine()
        .await
        .with_context(|| format!("{choice:?} is not answering at {endpoint}; {HINT}"))?;
    runner.require_dev_images().await?;
    let name = format!("{choice:?}").to_ascii_lowercase();
    Ok(Backend::new(name, Arc::new(builder), runner)
        .pushing_to(registry.namespace())
        .keep_alive(registry))
}
