//! The service dies in the middle of a build and comes back: nothing is lost, the interrupted
//! build is recorded as failed with the reason, and the waiting client gets that outcome
//! (it resumes its log stream after the restart) instead of hanging.

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
    let addr = svc.running().addr();
    let dir = tempfile::tempdir().expect("tmp");
    let (task, events) = ensure_in_background(&svc.url, dir.path(), "restart");
    // Wait until the build runs on the worker.
    let mut id = None;
    for _ in 0..200 {
        let evs = events.lock().expect("lock").clone();
        let running = evs.iter().any(
            |e| matches!(e, BuildEvent::Status { message } if message.starts_with("running on")),
        );
        id = evs.iter().find_map(|e| match e {
            BuildEvent::Status { message } if message.starts_with("build ") => {
                message.split(' ').nth(1).map(str::to_string)
            }
            _ => None,
        });
        if running && id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let id = id.expect("submitted");
    let before = events.lock().expect("lock").len();

    // Kill it (every connection and task dropped, nothing recorded), then start again on the
    // same address from the same data directory.
    svc.service.take().expect("running").crash();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let config = imagespec_service::ServiceConfig {
        listen: addr,
        ..config(svc.data.path())
    };
    let restarted = Service::new(config)
        .with_workers(vec![Worker::new(
            "test-worker",
            test_builder(Duration::ZERO),
            1,
        )])
        .start()
        .await
        .expect("restarts on the same address");

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
    for _ in 0..200 {
        let running = events.lock().expect("lock").iter().any(
            |e| matches!(e, BuildEvent::Status { message } if message.starts_with("running on")),
        );
        if running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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
