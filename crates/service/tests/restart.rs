//! The service dies in the middle of a build and comes back: nothing is lost, the interrupted
//! build is recorded as failed with the reason, and the waiting client gets that outcome
//! (it resumes its log stream after the restart) instead of hanging; builds that were only
//! queued run after the restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use imagespec_core::build::{BuildErrorKind, BuildEvent, EngineError, EngineOptions, Outcome};
use imagespec_protocol::BuildState;
use imagespec_service::{RESTARTED, Service, Worker};

type Events = Arc<std::sync::Mutex<Vec<BuildEvent>>>;

/// Starts `Engine::ensure` of a small project against the service, collecting its events.
fn ensure_in_background(
    url: &str,
    dir: &std::path::Path,
    name: &str,
) -> (
    tokio::task::JoinHandle<Result<Outcome, EngineError>>,
    Events,
) {
    let loaded = project(dir, name);
    let engine = engine(remote(url, TOKEN_A));
    let (sink, events) = collecting_sink();
    let opts = EngineOptions {
        events: sink,
        ..options()
    };
    let task = tokio::spawn(async move { engine.ensure(&loaded, &opts).await });
    (task, events)
}

#[tokio::test]
async fn a_restart_mid_build_fails_the_build_clearly_and_keeps_the_rest() {
    let builder = test_builder(Duration::from_secs(60));
    let mut svc = TestService::start(builder).await;
    let dir = tempfile::tempdir().expect("tmp");
    let (task, events) = ensure_in_background(&svc.url, dir.path(), "restart");
    // Wait until the build runs on the worker.
    status_starting(&events, "running on").await;
    let id = status_starting(&events, "build ")
        .await
        .split(' ')
        .nth(1)
        .map(str::to_string)
        .expect("submitted");
    let before = events.lock().expect("lock").len();

    // Kill it (every connection and task dropped, nothing recorded), then start again on the
    // same address from the same data directory.
    let restarted = crash_and_restart(&mut svc, test_builder(Duration::ZERO)).await;

    let err = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the client does not hang")
        .expect("join")
        .expect_err("the build failed");
    let EngineError::Build { source, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(source.kind, BuildErrorKind::Unavailable);
    assert!(source.message.contains(RESTARTED), "{}", source.message);
    // The events from before the crash were delivered once; the restart note followed.
    let evs = events.lock().expect("lock").clone();
    assert!(evs.len() > before);
    assert!(
        evs.iter()
            .any(|e| matches!(e, BuildEvent::Status { message } if message == RESTARTED))
    );
    let steps = evs
        .iter()
        .filter(|e| matches!(e, BuildEvent::Step { .. }))
        .count();
    assert_eq!(steps, 1, "nothing replayed twice: {evs:?}");

    // The stored state survived: the build, its log, and the blobs (nothing to upload again).
    let info = build_info(&restarted.url(), TOKEN_A, &id).await;
    assert_eq!(info.status, BuildState::Failed);
    assert_eq!(info.error.expect("error").message, RESTARTED);
    let client = remote(&restarted.url(), TOKEN_A);
    let loaded = project(dir.path(), "restart");
    let outcome = common::engine(client.clone())
        .ensure(&loaded, &options())
        .await
        .expect("builds after the restart");
    assert_eq!(outcome.action, imagespec_core::build::Action::Built);
    assert_eq!(
        client.last_upload().expect("stats").uploaded,
        0,
        "the blobs survived the restart"
    );
}

#[tokio::test]
async fn a_graceful_shutdown_ends_streams_with_a_failed_build() {
    let svc = TestService::start(test_builder(Duration::from_secs(60))).await;
    let dir = tempfile::tempdir().expect("tmp");
    let (task, events) = ensure_in_background(&svc.url, dir.path(), "shutdown");
    status_starting(&events, "running on").await;
    let mut svc = svc;
    svc.service.take().expect("running").shutdown().await;
    let err = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("no hang")
        .expect("join")
        .expect_err("failed");
    assert!(
        err.to_string().contains(imagespec_service::STOPPED),
        "{err}"
    );
}

/// Kills the service (every connection and task dropped, nothing recorded) and starts it again
/// on the same address from the same data directory, with one worker of `builder`.
async fn crash_and_restart(
    svc: &mut TestService,
    builder: Arc<imagespec_core::build::testing::TestBuilder>,
) -> imagespec_service::RunningService {
    let addr = svc.running().addr();
    svc.service.take().expect("running").crash();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Service::new(imagespec_service::ServiceConfig {
        listen: addr,
        ..config(svc.data.path())
    })
    .with_workers(vec![Worker::new("test-worker", builder, 1)])
    .start()
    .await
    .expect("restarts on the same address")
}

/// Waits until `events` has a status line starting with `prefix`; returns it.
async fn status_starting(events: &Events, prefix: &str) -> String {
    for _ in 0..400 {
        let found = events.lock().expect("lock").iter().find_map(|e| match e {
            BuildEvent::Status { message } if message.starts_with(prefix) => Some(message.clone()),
            _ => None,
        });
        if let Some(message) = found {
            return message;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no status starting with {prefix:?}");
}

/// Builds that were only queued when the service died never started: the restarted service
/// takes them up and the waiting client gets its image, its stream simply going on. One that
/// mounts secrets (held only in the dead process's memory) fails, saying so.
#[tokio::test]
async fn queued_builds_are_taken_up_after_a_restart() {
    use imagespec_core::build::SecretBytes;
    let mut svc = TestService::start(test_builder(Duration::from_secs(60))).await;
    let dir = tempfile::tempdir().expect("tmp");
    // One worker slot: the first build holds it, the next two wait.
    let (_holder, holding) = ensure_in_background(&svc.url, &dir.path().join("a"), "holder");
    status_starting(&holding, "running on").await;
    let (waiting_task, waiting) = ensure_in_background(&svc.url, &dir.path().join("b"), "waiter");
    status_starting(&waiting, "build ").await;
    let body = prepared_submission_with(
        &svc.url,
        TOKEN_A,
        &dir.path().join("c"),
        "secret-waiter",
        "pip_secret_mounts:\n  - [env:PIP_TOKEN, /run/secrets/tok]\n",
    )
    .await;
    let body = imagespec_protocol::SubmitBuild {
        secrets: [("pip_secret_0".to_string(), SecretBytes::new(b"s3cret"))].into(),
        ..body
    };
    let secret_build: imagespec_protocol::BuildInfo = submit(&svc.url, TOKEN_A, &body)
        .await
        .json()
        .await
        .expect("queued");
    assert_eq!(secret_build.status, BuildState::Queued);

    let after = test_builder(Duration::ZERO);
    let restarted = crash_and_restart(&mut svc, after.clone()).await;

    let outcome = tokio::time::timeout(Duration::from_secs(20), waiting_task)
        .await
        .expect("the client does not hang")
        .expect("join")
        .expect("the queued build ran after the restart");
    assert_eq!(outcome.action, imagespec_core::build::Action::Built);
    let built: Vec<String> = after.builds().into_iter().map(|b| b.image).collect();
    assert_eq!(
        built.len(),
        1,
        "only the queued build without secrets: {built:?}"
    );
    assert!(built[0].contains("/waiter:"), "{built:?}");
    let info = wait_finished(&restarted.url(), TOKEN_A, &secret_build.id).await;
    assert_eq!(info.status, BuildState::Failed);
    let message = info.error.expect("error").message;
    assert!(
        message.contains("queued when the service restarted") && message.contains("secrets"),
        "{message}"
    );
}
