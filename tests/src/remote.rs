//! The remote backend: imagespec's own build service, started in this process on 127.0.0.1
//! with one Docker worker, driven through `RemoteBuilder` (the `remote`/`union` builder).
//!
//! The service names images in its own registry (a namespace of the dev registry, with one
//! namespace per project below it), so specs carry no `registry`; images are pulled into Docker
//! to be run and inspected.

use std::sync::Arc;

use anyhow::{Context, Result};
use imagespec_builder_remote::{RemoteBuilder, RemoteConfig};
use imagespec_core::config::Secret;
use imagespec_service::config::WorkerConfig;
use imagespec_service::{Service, ServiceConfig};

use crate::backend::Backend;
use crate::devenv::{DOCKER_ENDPOINT, HINT, NAMESPACE};
use crate::names::unique;
use crate::registry::DevRegistry;
use crate::runner::Runner;

/// The project the conformance client's token belongs to.
const PROJECT: &str = "conformance";

/// A fresh service (its own data directory and token) with a Docker worker, and a client of it.
pub async fn remote() -> Result<Backend> {
    // Before the service starts, so its every line is captured.
    let log = crate::log_capture::capture();
    let registry = DevRegistry::from_dev_env()?;
    let runner = Runner::docker().pulling(&registry);
    runner.require_dev_images().await?;

    let data = tempfile::Builder::new()
        .prefix("imagespec-conformance-service-")
        .tempdir()
        .context("cannot create the service's data directory")?;
    let token = format!("conformance-token-{}-{}", unique(), unique());
    let mut config = ServiceConfig::new(data.path())
        .with_token(PROJECT, &token)
        .with_registry(&format!("{}/{NAMESPACE}-remote", registry.address()));
    config.registry_credentials = Some(registry.docker_config().join("config.json"));
    // The dev environment's local base and helper images (`scripts/dev-env.sh`) are the
    // operator's allowed bases; anything else a scenario pulls is refused.
    config.base_images.push("localhost/imagespec/*".into());
    // The multi-platform bases are indexes in the dev registry (`imagespec/multi/...`).
    config
        .base_images
        .push(format!("{}/imagespec/multi/*", registry.address()));
    config.workers = vec![WorkerConfig {
        name: Some("docker".into()),
        endpoint: Some(DOCKER_ENDPOINT.into()),
        slots: 1,
        tls: None,
    }];
    let service = Service::new(config)
        .start()
        .await
        .with_context(|| format!("the build service did not start; {HINT}"))?;

    let builder = RemoteBuilder::new(RemoteConfig {
        url: Some(service.url()),
        token: Some(Secret::new(token)),
    });
    Ok(Backend::new("remote", Arc::new(builder), runner)
        .pushing()
        .keeping_state_in(data.path(), log)
        .keep_alive(service)
        .keep_alive(data)
        .keep_alive(registry))
}
