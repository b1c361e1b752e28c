//! Operating the service (issue 11, "Holes" 6 and 8): one service per data directory, and
//! configuration that cannot work fails at start.

mod common;

use std::time::Duration;

use common::*;
use imagespec_service::data_lock::LockError;
use imagespec_service::{Service, ServiceConfig, ServiceError, Worker};

#[tokio::test]
async fn a_second_service_on_the_same_data_directory_refuses_to_start_naming_the_holder() {
    let data = tempfile::tempdir().expect("tmp");
    let first = Service::new(config(data.path()))
        .with_workers(vec![Worker::new("w", test_builder(Duration::ZERO), 1)])
        .start()
        .await
        .expect("first starts");
    let second = Service::new(config(data.path()))
        .with_workers(vec![Worker::new("w", test_builder(Duration::ZERO), 1)])
        .start()
        .await;
    match second {
        Err(ServiceError::Locked(LockError::InUse { holder, .. })) => {
            assert_eq!(holder, std::process::id().to_string());
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a second service started on the same data directory"),
    }
    first.shutdown().await;
    let third = Service::new(config(data.path()))
        .with_workers(vec![Worker::new("w", test_builder(Duration::ZERO), 1)])
        .start()
        .await
        .expect("starts once the first has stopped");
    third.crash();
}

#[test]
fn configuration_that_cannot_work_fails_at_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("service.yaml");
    let none = |_: &str| None;
    for (text, needle) in [
        (
            "tokens:\n  - {project: a, token: aaaaaaaaaaaaaaaaaaaa}\n  - {project: b, token: aaaaaaaaaaaaaaaaaaaa}\n",
            "already given to project `a`",
        ),
        ("registry_credentials: missing.json\n", "missing.json"),
        (
            "workers:\n  - {endpoint: 'https://build.example.com'}\n",
            "workers[0].endpoint",
        ),
        (
            "tokens:\n  - {project: a, token: aaaaaaaaaaaaaaaaaaaa}\nallowed_registries:\n  ghost: [x.io]\n",
            "ghost",
        ),
    ] {
        let err = ServiceConfig::parse(text, &file, none)
            .expect_err(text)
            .to_string();
        assert!(err.contains(needle), "{text}: {err}");
        assert!(
            err.starts_with(&file.display().to_string()),
            "names the file: {err}"
        );
    }
}

#[tokio::test]
async fn a_worker_whose_engine_went_away_is_reported_lost_with_the_cause() {
    let builder = test_builder(Duration::ZERO);
    builder.fail_builds(Some(imagespec_core::build::BuildError::new(
        imagespec_core::build::BuildErrorKind::Unavailable,
        "lost the connection to the engine at unix:///x during the build: connection reset",
    )));
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let body = prepared_submission(&svc.url, TOKEN_A, dir.path(), "lost").await;
    let r = submit(&svc.url, TOKEN_A, &body).await;
    let id = r
        .json::<imagespec_protocol::BuildInfo>()
        .await
        .expect("info")
        .id;
    let info = wait_finished(&svc.url, TOKEN_A, &id).await;
    let error = info.error.expect("an error");
    assert_eq!(error.kind, imagespec_protocol::ErrorKind::Unavailable);
    assert!(
        error.message.starts_with("worker `test-worker` lost: ")
            && error.message.contains("connection reset"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn wrong_tokens_are_rate_limited_and_valid_ones_are_not_slowed_by_them() {
    let data = tempfile::tempdir().expect("tmp");
    let mut config = config(std::path::Path::new("."));
    config.limits.burst = 3;
    config.limits.requests_per_minute = 1;
    let svc = TestService::start_with(data, config, test_builder(Duration::ZERO)).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = get(&svc.url, "/v1/builds/x", &format!("guess-{i:020}")).await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    let r = get(&svc.url, "/v1/images/exists?image=app:t", TOKEN_A).await;
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "a valid token has its own bucket"
    );
}
