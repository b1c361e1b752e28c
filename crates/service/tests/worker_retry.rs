//! A build whose worker is lost before its push moves to another worker that answers (issue
//! 11, hole 7), and engines on other machines serve the service over TLS.
//!
//! The first tests use test builders (the loss is a builder's `Unavailable` error). The last
//! one is real: a FAKE engine that dies mid-build (`dying_engine.rs`: a proxy to the real
//! Docker socket that cuts every build's answer) and the real Docker engine behind a TLS
//! front that requires client certificates (`tls_proxy.rs`), both configured as the service
//! configures workers; the image is pushed to the dev registry. Needs `scripts/dev-env.sh`.

mod common;
#[path = "../../builder-local/tests/support/dying_engine.rs"]
mod dying_engine;
#[path = "../../builder-local/tests/support/tls_proxy.rs"]
mod tls_proxy;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use imagespec_builder_local::{EngineChoice, LocalBuilder, TlsFiles};
use imagespec_core::build::{
    BuildError, BuildErrorKind, BuildEvent, BuildOutput, BuildRequest, BuilderKind, Capabilities,
    Existence, ExistsQuery, ImageBuilder, TransferDirection,
};
use imagespec_core::hash::ImageName;
use imagespec_protocol::{BuildInfo, BuildState, ErrorKind};
use imagespec_service::config::WorkerConfig;
use imagespec_service::{Service, ServiceConfig, Worker};

const LOST: &str =
    "lost the connection to the engine at tcp://10.0.0.9:2376 during the build: connection reset";

fn lost() -> BuildError {
    BuildError::new(BuildErrorKind::Unavailable, LOST)
}

/// The build's stored events, as the log endpoint replays them once it has finished.
async fn log_text(url: &str, id: &str) -> String {
    let r = get(url, &format!("/v1/builds/{id}/logs"), TOKEN_A).await;
    tokio::time::timeout(Duration::from_secs(30), r.text())
        .await
        .expect("the finished build's log ends")
        .expect("log body")
}

async fn service_with(
    workers: Vec<Worker>,
) -> (tempfile::TempDir, imagespec_service::RunningService) {
    let data = tempfile::tempdir().expect("tmp");
    let service = Service::new(config(data.path()))
        .with_workers(workers)
        .start()
        .await
        .expect("service starts");
    (data, service)
}

async fn submit_and_wait(url: &str, name: &str) -> BuildInfo {
    let dir = tempfile::tempdir().expect("tmp");
    let body = prepared_submission(url, TOKEN_A, dir.path(), name).await;
    let info: BuildInfo = submit(url, TOKEN_A, &body)
        .await
        .json()
        .await
        .expect("info");
    wait_finished(url, TOKEN_A, &info.id).await
}

#[tokio::test]
async fn a_build_whose_worker_is_lost_runs_again_on_another_worker() {
    let flaky = test_builder(Duration::ZERO);
    flaky.fail_builds(Some(lost()));
    let good = test_builder(Duration::ZERO);
    let (_data, svc) = service_with(vec![
        Worker::new("flaky", flaky.clone(), 1),
        Worker::new("good", good.clone(), 1),
    ])
    .await;
    let info = submit_and_wait(&svc.url(), "retried").await;
    assert_eq!(info.status, BuildState::Succeeded, "{:?}", info.error);
    assert_eq!((flaky.builds().len(), good.builds().len()), (1, 1));
    assert_eq!(
        info.worker.as_deref(),
        Some("good"),
        "the build is recorded on the worker that built it"
    );
    let log = log_text(&svc.url(), &info.id).await;
    assert!(
        log.contains(&format!(
            "worker flaky lost: {LOST}; retrying on worker good"
        )),
        "{log}"
    );
    svc.crash();
}

/// A retry builds what the first attempt was given: the plan held since submission and the
/// client's secrets (they are only in memory; a plan recovered from the database would have
/// none and fail as "lost with the service restart").
#[tokio::test]
async fn a_retried_build_keeps_its_secrets() {
    use imagespec_core::build::{SecretBytes, SecretValues};
    let flaky = test_builder(Duration::ZERO);
    flaky.fail_builds(Some(lost()));
    let good = test_builder(Duration::ZERO);
    let (_data, svc) = service_with(vec![
        Worker::new("flaky", flaky.clone(), 1),
        Worker::new("good", good.clone(), 1),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let body = prepared_submission_with(
        &svc.url(),
        TOKEN_A,
        dir.path(),
        "retried-secret",
        "pip_secret_mounts:\n  - [env:PIP_TOKEN, /run/secrets/tok]\n",
    )
    .await;
    let secrets = std::collections::BTreeMap::from([(
        "pip_secret_0".to_string(),
        SecretBytes::new(b"retry-s3cret"),
    )]);
    let body = imagespec_protocol::SubmitBuild {
        secrets: secrets.clone(),
        ..body
    };
    let info: BuildInfo = submit(&svc.url(), TOKEN_A, &body)
        .await
        .json()
        .await
        .expect("info");
    let info = wait_finished(&svc.url(), TOKEN_A, &info.id).await;
    assert_eq!(info.status, BuildState::Succeeded, "{:?}", info.error);
    let (first, second) = (flaky.builds(), good.builds());
    assert_eq!((first.len(), second.len()), (1, 1));
    let expected = SecretValues::Supplied(Arc::new(secrets));
    assert_eq!(first[0].secrets, expected);
    assert_eq!(
        second[0].secrets, expected,
        "the retry got the same secrets"
    );
    svc.crash();
}

#[tokio::test]
async fn without_another_answering_worker_the_build_fails_as_lost() {
    let flaky = test_builder(Duration::ZERO);
    flaky.fail_builds(Some(lost()));
    // A real client of an engine that is not there: its probe fails, so it is no retry target.
    let absent = LocalBuilder::new(
        EngineChoice::Docker,
        Some("unix:///nonexistent/docker.sock".into()),
    );
    let (_data, svc) = service_with(vec![
        Worker::new("flaky", flaky.clone(), 1),
        Worker::new("absent", Arc::new(absent), 1),
    ])
    .await;
    let info = submit_and_wait(&svc.url(), "no-retry-target").await;
    assert_eq!(info.status, BuildState::Failed);
    let error = info.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(
        error.message.starts_with("worker `flaky` lost: "),
        "{}",
        error.message
    );
    assert!(!log_text(&svc.url(), &info.id).await.contains("retrying"));
    svc.crash();
}

#[tokio::test]
async fn every_worker_lost_is_tried_once_at_most() {
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let b = test_builder(Duration::ZERO);
            b.fail_builds(Some(lost()));
            b
        })
        .collect();
    let (_data, svc) = service_with(
        workers
            .iter()
            .enumerate()
            .map(|(i, b)| Worker::new(format!("w{i}"), b.clone(), 1))
            .collect(),
    )
    .await;
    let info = submit_and_wait(&svc.url(), "all-lost").await;
    assert_eq!(info.status, BuildState::Failed);
    let attempts: Vec<usize> = workers.iter().map(|b| b.builds().len()).collect();
    assert_eq!(
        attempts.iter().sum::<usize>(),
        imagespec_service::runner::MAX_WORKER_ATTEMPTS,
        "{attempts:?}"
    );
    assert!(attempts.iter().all(|&n| n <= 1), "{attempts:?}");
    svc.crash();
}

/// A builder whose engine goes away after the push began.
struct LostWhilePushing;

#[async_trait]
impl ImageBuilder for LostWhilePushing {
    fn name(&self) -> &str {
        "lost-while-pushing"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::full(BuilderKind::Local)
    }

    async fn exists(&self, _image: &ImageName, _query: &ExistsQuery) -> Existence {
        Existence::Missing
    }

    async fn build(&self, request: BuildRequest) -> Result<BuildOutput, BuildError> {
        request.events.emit(BuildEvent::Transfer {
            direction: TransferDirection::Push,
            layer: "sha256:aaaa".into(),
            current: 1024,
            total: Some(4096),
        });
        Err(lost())
    }
}

#[tokio::test]
async fn a_worker_lost_after_its_push_started_is_not_retried() {
    let good = test_builder(Duration::ZERO);
    let (_data, svc) = service_with(vec![
        Worker::new("pusher", Arc::new(LostWhilePushing), 1),
        Worker::new("good", good.clone(), 1),
    ])
    .await;
    let info = submit_and_wait(&svc.url(), "pushing").await;
    assert_eq!(info.status, BuildState::Failed);
    assert!(
        good.builds().is_empty(),
        "a started push is not repeated elsewhere"
    );
    let error = info.error.expect("an error");
    assert!(
        error.message.starts_with("worker `pusher` lost: "),
        "{}",
        error.message
    );
    svc.crash();
}

/// A service pushing to its own namespace of the dev registry with a credentials file.
fn real_config(
    dir: &Path,
    namespace: &str,
    auth: &Path,
    workers: Vec<WorkerConfig>,
) -> ServiceConfig {
    let mut config = ServiceConfig::new(dir.join("data"))
        .with_token("project-a", TOKEN_A)
        .with_registry(&format!("127.0.0.1:5000/{namespace}"));
    config.registry_credentials = Some(auth.to_path_buf());
    config.base_images.push("localhost/imagespec/*".into());
    config.workers = workers;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_on_a_dying_engine_moves_to_a_tls_worker_and_is_pushed() {
    let (user, pass) =
        registry_credentials().expect("no dev registry credentials: run `bash scripts/dev-env.sh`");
    let socket = "/var/run/docker.sock";
    assert!(
        Path::new(socket).exists(),
        "no Docker socket: run `bash scripts/dev-env.sh`"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let auth = docker_config(tmp.path(), &user, &pass);
    let (dying, cuts) = dying_engine::start(socket).await;
    let certs = tls_proxy::certificates();
    let tls = tls_proxy::start(&certs, socket).await;
    let marker = imagespec_service::ids::new_id();
    let namespace = format!("service-test-{}", &marker[..8]);
    // Both workers as an operator configures them: the service makes their engine clients.
    let config = real_config(
        tmp.path(),
        &namespace,
        &auth,
        vec![
            WorkerConfig {
                name: Some("dying".into()),
                endpoint: Some(dying.clone()),
                slots: 1,
                tls: None,
            },
            WorkerConfig {
                name: Some("tls".into()),
                endpoint: Some(tls.endpoint.clone()),
                slots: 1,
                tls: Some(TlsFiles::in_dir(&certs.client())),
            },
        ],
    );
    let service = Service::new(config).start().await.expect("service");
    let url = service.url();
    let info = submit_and_wait_long(&url, &format!("retry-{}", &marker[..8])).await;
    assert_eq!(info.status, BuildState::Succeeded, "{:?}", info.error);
    assert!(
        cuts.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the dying engine cut a build"
    );
    assert!(
        tls.accepted() >= 3,
        "the TLS worker built: {}",
        tls.accepted()
    );
    assert!(
        info.image
            .starts_with(&format!("127.0.0.1:5000/{namespace}/project-a/")),
        "{}",
        info.image
    );
    let log = log_text(&url, &info.id).await;
    let moved = log
        .lines()
        .find(|l| l.contains("worker dying lost: "))
        .unwrap_or_else(|| panic!("no retry event in {log}"));
    assert!(
        moved.contains("lost the connection to the engine at")
            && moved.contains(&dying)
            && moved.contains("; retrying on worker tls"),
        "{moved}"
    );
    service.shutdown().await;
}

/// [`submit_and_wait`] for a real build (minutes, not the test builders' milliseconds).
async fn submit_and_wait_long(url: &str, name: &str) -> BuildInfo {
    let dir = tempfile::tempdir().expect("tmp");
    // The dev environment's local Python and uv images: nothing can be pulled from a public
    // registry here.
    let extra = "base_image: localhost/imagespec/python:3.11-bookworm\nbuilder_config:\n  uv_image: localhost/imagespec/uv:latest\n";
    let body = prepared_submission_with(url, TOKEN_A, dir.path(), name, extra).await;
    let info: BuildInfo = submit(url, TOKEN_A, &body)
        .await
        .json()
        .await
        .expect("info");
    for _ in 0..600 {
        let now = build_info(url, TOKEN_A, &info.id).await;
        if now.status.is_terminal() {
            return now;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("build {} did not finish in 10 minutes", info.id);
}
