//! A real build: the service with a `LocalBuilder` worker on Docker, pushing to the dev
//! registry (127.0.0.1:5000, htpasswd auth) with a credentials file, driven by the remote
//! builder through `Engine::ensure`; compared with a local build of the same spec.
//!
//! Needs the environment of `scripts/dev-env.sh` (Docker, the registry, the local base
//! images); without it the test says so and does nothing.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use imagespec_builder_local::{EngineChoice, LocalBuilder};
use imagespec_core::build::{Action, BuilderRegistry, Engine, EngineOptions};
use imagespec_core::spec::LoadedSpec;
use imagespec_registry::CredentialSources;
use imagespec_service::config::WorkerConfig;
use imagespec_service::{Service, ServiceConfig};

const DOCKER: &str = "unix:///var/run/docker.sock";

/// `examples/requirements` without its registry (so the service's registry is used) and with a
/// marker that makes the tag new.
fn example(dir: &Path, marker: &str) -> LoadedSpec {
    copy_tree(&repo_root().join("examples/requirements"), dir);
    let spec = std::fs::read_to_string(dir.join("spec.yaml")).expect("spec");
    let spec: String = spec
        .lines()
        .filter(|l| !l.starts_with("registry:"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "APP_MODE: production",
            &format!("APP_MODE: production\n  RUN_MARKER: \"{marker}\""),
        );
    std::fs::write(dir.join("spec.yaml"), spec).expect("write spec");
    // No Flyte runtime: the test is about the service, not flytekit (a large install).
    LoadedSpec::from_file(&dir.join("spec.yaml"), dir)
        .expect("example spec")
        .with_runtime(imagespec_core::plan::runtime::Runtime::None)
}

#[tokio::test]
async fn a_remote_build_on_docker_pushes_to_the_service_registry() {
    // A missing environment is a failure, not a pass: run `bash scripts/dev-env.sh`.
    let (user, pass) =
        registry_credentials().expect("no dev registry credentials: run `bash scripts/dev-env.sh`");
    assert!(
        Path::new("/var/run/docker.sock").exists(),
        "no Docker socket: run `bash scripts/dev-env.sh`"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let auth = docker_config(tmp.path(), &user, &pass);
    let marker = imagespec_service::ids::new_id();
    let namespace = format!("service-test-{}", &marker[..8]);

    // The service: one Docker worker, its own registry namespace, credentials from a file.
    let mut config = ServiceConfig::new(tmp.path().join("data"))
        .with_token("project-a", TOKEN_A)
        .with_registry(&format!("127.0.0.1:5000/{namespace}"));
    config.registry_credentials = Some(auth.clone());
    // The example builds FROM the dev environment's local Python image.
    config.base_images.push("localhost/imagespec/*".into());
    config.workers = vec![WorkerConfig {
        name: Some("docker".into()),
        endpoint: Some(DOCKER.into()),
        slots: 1,
        tls: None,
    }];
    let service = Service::new(config).start().await.expect("service");

    let project_dir = tmp.path().join("remote-project");
    std::fs::create_dir_all(&project_dir).expect("mkdir");
    let loaded = example(&project_dir, &format!("remote-{marker}"));
    let client = remote(&service.url(), TOKEN_A);
    let engine = common::engine(client.clone());
    let (sink, events) = collecting_sink();
    let started = Instant::now();
    let outcome = engine
        .ensure(
            &loaded,
            &EngineOptions {
                events: sink,
                ..options()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("remote build: {e}"));
    let remote_time = started.elapsed();
    assert_eq!(outcome.action, Action::Built);
    assert!(
        outcome.image.starts_with(&format!(
            "127.0.0.1:5000/{namespace}/project-a/hello-requirements:"
        )),
        "{}",
        outcome.image
    );
    let logs = events.lock().expect("lock").len();
    assert!(
        logs > 5,
        "the engine's output streamed back ({logs} events)"
    );
    let again = engine.ensure(&loaded, &options()).await.expect("exists");
    assert_eq!(
        again.action,
        Action::Exists,
        "the service finds the pushed image in its registry"
    );

    // The same spec built locally, for comparison.
    let local_dir = tmp.path().join("local-project");
    std::fs::create_dir_all(&local_dir).expect("mkdir");
    let local_spec = example(&local_dir, &format!("local-{marker}"))
        .with_registry(&format!("127.0.0.1:5000/{namespace}-local"))
        .expect("registry");
    let local = LocalBuilder::new(EngineChoice::Docker, Some(DOCKER.into()))
        .with_credentials(CredentialSources::none().with_explicit_file(&auth));
    let mut registry = BuilderRegistry::new();
    registry.register(Arc::new(local));
    let started = Instant::now();
    let local_outcome = Engine::new(registry)
        .ensure(
            &local_spec,
            &EngineOptions {
                builder: Some("docker".into()),
                ..EngineOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("local build: {e}"));
    let local_time = started.elapsed();
    assert_eq!(local_outcome.action, Action::Built);
    eprintln!(
        "examples/requirements end to end: remote build {:.1} s (upload {:?}), local build {:.1} s",
        remote_time.as_secs_f64(),
        client.last_upload(),
        local_time.as_secs_f64()
    );
    assert!(remote_time < Duration::from_secs(600));
    service.shutdown().await;
}
