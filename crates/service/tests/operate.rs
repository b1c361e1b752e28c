//! Operating the service: readiness that reflects the workers' engines, and Prometheus
//! metrics that count builds under their project.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use imagespec_builder_local::{EngineChoice, LocalBuilder};
use imagespec_service::{Service, ServiceConfig, Worker};

const DOCKER: &str = "unix:///var/run/docker.sock";

/// A worker whose engine endpoint is a socket path where nothing listens.
fn dead_worker(dir: &Path) -> Worker {
    let endpoint = format!("unix://{}", dir.join("nothing-listens.sock").display());
    Worker::new(
        "dead",
        Arc::new(LocalBuilder::new(EngineChoice::Any, Some(endpoint))),
        1,
    )
}

async fn start(
    data: &Path,
    workers: Vec<Worker>,
    config: ServiceConfig,
) -> imagespec_service::RunningService {
    let config = ServiceConfig {
        data_dir: data.to_path_buf(),
        ..config
    };
    Service::new(config)
        .with_workers(workers)
        .start()
        .await
        .expect("service starts")
}

async fn readiness(url: &str) -> (u16, serde_json::Value) {
    let r = http()
        .get(format!("{url}/v1/ready"))
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.json().await.expect("json"))
}

fn worker<'a>(body: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    body["workers"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("worker {name} listed: {body}"))
}

#[tokio::test]
async fn not_ready_naming_the_worker_and_why_when_no_engine_answers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let service = start(
        &tmp.path().join("data"),
        vec![dead_worker(tmp.path())],
        config(Path::new(".")),
    )
    .await;
    let (status, body) = readiness(&service.url()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not ready");
    let dead = worker(&body, "dead");
    assert_eq!(dead["ready"], false);
    let why = dead["detail"].as_str().expect("detail");
    assert!(
        why.contains("nothing-listens.sock"),
        "names the endpoint: {why}"
    );
    // Liveness is not readiness: the process itself answers.
    let health = http()
        .get(format!("{}/v1/health", service.url()))
        .send()
        .await
        .expect("send");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn ready_when_the_real_docker_worker_answers_even_if_another_does_not() {
    assert!(
        Path::new("/var/run/docker.sock").exists(),
        "no Docker socket: run `bash scripts/dev-env.sh`"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let docker = Worker::new(
        "docker",
        Arc::new(LocalBuilder::new(EngineChoice::Any, Some(DOCKER.into()))),
        1,
    );
    let service = start(
        &tmp.path().join("data"),
        vec![dead_worker(tmp.path()), docker],
        config(Path::new(".")),
    )
    .await;
    let (status, body) = readiness(&service.url()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(worker(&body, "docker")["ready"], true);
    assert!(
        worker(&body, "docker")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("/var/run/docker.sock")),
        "{body}"
    );
    assert_eq!(worker(&body, "dead")["ready"], false, "{body}");
}

#[tokio::test]
async fn metrics_count_a_build_under_its_project() {
    let svc = TestService::start(test_builder(Duration::from_millis(50))).await;
    let dir = tempfile::tempdir().expect("tmp");
    let body = prepared_submission(&svc.url, TOKEN_A, dir.path(), "metered").await;
    let id = submit(&svc.url, TOKEN_A, &body)
        .await
        .json::<imagespec_protocol::BuildInfo>()
        .await
        .expect("info")
        .id;
    let info = wait_finished(&svc.url, TOKEN_A, &id).await;
    assert_eq!(info.status.as_str(), "succeeded", "{info:?}");
    // Submitted again unforced: the image is there, answered at once, nothing built.
    let again = imagespec_protocol::SubmitBuild {
        force: false,
        ..body.clone()
    };
    assert_eq!(
        submit(&svc.url, TOKEN_A, &again).await.status().as_u16(),
        200
    );

    let (status, text) = scrape(&svc.url, None).await;
    assert_eq!(status, 200);
    let a = "project=\"project-a\"";
    assert_eq!(
        sample(&text, &format!("imagespec_builds_queued_total{{{a}}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("imagespec_builds_finished_total{{{a},state=\"succeeded\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("imagespec_builds_finished_total{{{a},state=\"exists\"}}")
        ),
        Some(1.0),
        "a submission answered at once counts as `exists`: {text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("imagespec_build_duration_seconds_count{{{a}}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("imagespec_queue_duration_seconds_count{{{a}}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, &format!("imagespec_uploaded_bytes_total{{{a}}}"))
            .is_some_and(|b| b > 4096.0),
        "the project's upload (a 4 KiB file among others) is counted: {text}"
    );
    assert!(
        !text.contains("project-b"),
        "nothing is counted for the project that did nothing: {text}"
    );
    assert_eq!(sample(&text, "imagespec_queue_depth"), Some(0.0));
    assert_eq!(sample(&text, "imagespec_builds_running"), Some(0.0));
}

#[tokio::test]
async fn metrics_need_the_metrics_token_when_one_is_configured() {
    let data = tempfile::tempdir().expect("tmp");
    let mut cfg = config(Path::new("."));
    let metrics_token = "metrics-scraper-token-0123456789";
    cfg.metrics_token = Some(imagespec_core::config::Secret::new(metrics_token));
    let svc = TestService::start_with(data, cfg, test_builder(Duration::ZERO)).await;
    assert_eq!(scrape(&svc.url, None).await.0, 401);
    assert_eq!(
        scrape(&svc.url, Some(TOKEN_A)).await.0,
        401,
        "a project's token is not the metrics token"
    );
    let (status, text) = scrape(&svc.url, Some(metrics_token)).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE imagespec_queue_depth gauge"),
        "{text}"
    );
}
