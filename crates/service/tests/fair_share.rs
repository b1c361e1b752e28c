//! Fair share between projects, through the real API and dispatcher: with one worker slot,
//! project A queues five builds and B one after them; B's build starts second, not sixth.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::*;
use imagespec_core::build::{
    BuildError, BuildOutput, BuildRequest, BuilderKind, Capabilities, Existence, ExistsQuery,
    ImageBuilder,
};
use imagespec_core::hash::ImageName;
use tokio::sync::Semaphore;

/// Records the order builds start in, and finishes one build per permit the test adds (so
/// the order does not depend on how fast anything is).
struct GatedBuilder {
    started: Mutex<Vec<String>>,
    gate: Semaphore,
}

impl GatedBuilder {
    fn new() -> Self {
        GatedBuilder {
            started: Mutex::default(),
            gate: Semaphore::new(0),
        }
    }

    fn started(&self) -> Vec<String> {
        self.started.lock().expect("lock").clone()
    }
}

#[async_trait]
impl ImageBuilder for GatedBuilder {
    fn name(&self) -> &str {
        "gated"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::full(BuilderKind::Local)
    }

    async fn exists(&self, _image: &ImageName, _query: &ExistsQuery) -> Existence {
        Existence::Missing
    }

    async fn build(&self, request: BuildRequest) -> Result<BuildOutput, BuildError> {
        let image = request.image.name.to_string();
        self.started.lock().expect("lock").push(image.clone());
        if let Ok(permit) = self.gate.acquire().await {
            permit.forget();
        }
        Ok(BuildOutput {
            image,
            digest: Some("sha256:feed".into()),
            pushed: true,
        })
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{what}");
}

#[tokio::test]
async fn a_later_project_starts_second_not_after_the_first_projects_queue() {
    let builder = Arc::new(GatedBuilder::new());
    let svc = TestService::start(builder.clone()).await;
    let dirs: Vec<tempfile::TempDir> = (0..6).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let mut a_ids = Vec::new();
    for (i, dir) in dirs[..5].iter().enumerate() {
        let body = prepared_submission(&svc.url, TOKEN_A, dir.path(), &format!("a{i}")).await;
        let info: imagespec_protocol::BuildInfo = submit(&svc.url, TOKEN_A, &body)
            .await
            .json()
            .await
            .expect("json");
        a_ids.push(info.id);
        if i == 0 {
            until("A's first build starts", || builder.started().len() == 1).await;
        }
    }
    let body = prepared_submission(&svc.url, TOKEN_B, dirs[5].path(), "b0").await;
    let b: imagespec_protocol::BuildInfo = submit(&svc.url, TOKEN_B, &body)
        .await
        .json()
        .await
        .expect("json");
    // Queue depth per project, while A's first build holds the only slot.
    let metrics = scrape(&svc.url, None).await.1;
    assert!(
        metrics.contains("imagespec_project_queue_depth{project=\"project-a\"} 4\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("imagespec_project_queue_depth{project=\"project-b\"} 1\n"),
        "{metrics}"
    );
    builder.gate.add_permits(6);
    for id in &a_ids {
        wait_finished(&svc.url, TOKEN_A, id).await;
    }
    wait_finished(&svc.url, TOKEN_B, &b.id).await;
    let started = builder.started();
    assert_eq!(started.len(), 6, "{started:?}");
    assert!(started[0].contains("/project-a/a0:"), "{started:?}");
    assert!(
        started[1].contains("/project-b/b0:"),
        "B's build starts second: {started:?}"
    );
    assert!(started[2..].iter().all(|s| s.contains("/project-a/")));
}

/// A pool that mixes a worker without emulation and one with it: an arm64 build goes to the one
/// that builds arm64 (though the other is first and idle), an amd64 build to either, and the
/// service advertises what some worker builds.
#[tokio::test]
async fn a_build_goes_to_a_worker_that_builds_its_platforms() {
    use imagespec_core::build::testing::TestBuilder;
    let native =
        Arc::new(TestBuilder::new("test", BuilderKind::Local).with_platforms(&["linux/amd64"]));
    let emulating = Arc::new(
        TestBuilder::new("test", BuilderKind::Local)
            .with_platforms(&["linux/amd64", "linux/arm64"]),
    );
    let data = tempfile::tempdir().expect("tmp");
    let svc = imagespec_service::Service::new(config(data.path()))
        .with_workers(vec![
            imagespec_service::Worker::new("native", native.clone(), 1),
            imagespec_service::Worker::new("emulating", emulating.clone(), 1),
        ])
        .start()
        .await
        .expect("service starts");
    let url = svc.url();
    let answer: serde_json::Value = get(&url, "/v1/capabilities", TOKEN_A)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        answer,
        serde_json::json!({"platforms": ["linux/amd64", "linux/arm64"]})
    );
    let dir = tempfile::tempdir().expect("tmp");
    for (name, platform, worker) in [
        ("arm", "linux/arm64", "emulating"),
        ("both", "linux/amd64,linux/arm64", "emulating"),
    ] {
        let body = prepared_submission_with(
            &url,
            TOKEN_A,
            &dir.path().join(name),
            name,
            &format!("platform: {platform}\n"),
        )
        .await;
        let body = imagespec_protocol::SubmitBuild {
            platforms: platform.split(',').map(str::to_string).collect(),
            ..body
        };
        let info: imagespec_protocol::BuildInfo = submit(&url, TOKEN_A, &body)
            .await
            .json()
            .await
            .expect("accepted");
        let info = wait_finished(&url, TOKEN_A, &info.id).await;
        assert_eq!(
            info.worker.as_deref(),
            Some(worker),
            "{name}: {:?}",
            info.error
        );
    }
    assert!(
        native.builds().is_empty(),
        "the worker without arm64 built nothing"
    );
    assert_eq!(emulating.builds().len(), 2);
    svc.crash();
}
