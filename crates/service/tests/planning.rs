//! The service plans every build through the core engine: a rule it applies is the engine's
//! (in the engine's words), and the files are read and hashed once, at submission.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use imagespec_core::build::testing::TestBuilder;
use imagespec_core::build::{
    BuildError, BuildOutput, BuildRequest, BuilderKind, Capabilities, Existence, ExistsQuery,
    ImageBuilder,
};
use imagespec_core::hash::ImageName;
use imagespec_core::spec::SpecField;
use imagespec_protocol::BuildState;
use reqwest::StatusCode;
use tokio::sync::Semaphore;

/// A field the worker's builder does not implement is refused at submission with the core
/// engine's capability message, before anything is queued.
#[tokio::test]
async fn a_field_the_workers_builder_refuses_is_refused_in_the_engines_words() {
    let builder = Arc::new(
        TestBuilder::new("test", BuilderKind::Local).with_capabilities(Capabilities {
            fields: SpecField::ALL
                .iter()
                .copied()
                .filter(|f| *f != SpecField::AptPackages)
                .collect(),
            ..Capabilities::full(BuilderKind::Local)
        }),
    );
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let body = prepared_submission_with(
        &svc.url,
        TOKEN_A,
        dir.path(),
        "apt",
        "apt_packages: [git]\n",
    )
    .await;
    let (status, p) = problem(submit(&svc.url, TOKEN_A, &body).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.detail);
    assert!(p.kind.ends_with(":unsupported"), "{}", p.kind);
    // `EngineError::Unsupported`, the message `imagespec build` gives for the same spec.
    assert!(
        p.detail
            .contains("builder `test` cannot honour `apt_packages`")
            && p.detail
                .contains("remove the field or choose another builder"),
        "{}",
        p.detail
    );
    assert!(builder.builds().is_empty());
}

/// Builds wait for a permit, so a test decides when a queued build may run.
struct Gated {
    inner: Arc<TestBuilder>,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl ImageBuilder for Gated {
    fn name(&self) -> &str {
        "gated"
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn exists(&self, image: &ImageName, query: &ExistsQuery) -> Existence {
        self.inner.exists(image, query).await
    }

    async fn build(&self, request: BuildRequest) -> Result<BuildOutput, BuildError> {
        let _permit = self.gate.acquire().await.expect("gate open");
        self.inner.build(request).await
    }
}

/// A queued build runs with the name computed at submission: a workspace file that changes
/// while it waits is not read again (before, the runner loaded and hashed the spec a second
/// time and built under another name).
#[tokio::test]
async fn a_queued_build_is_not_hashed_again_when_it_runs() {
    let inner = test_builder(std::time::Duration::ZERO);
    let gate = Arc::new(Semaphore::new(0));
    let svc = TestService::start(Arc::new(Gated {
        inner: inner.clone(),
        gate: gate.clone(),
    }))
    .await;
    let (one, two) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let first = prepared_submission(&svc.url, TOKEN_A, one.path(), "first").await;
    let second = prepared_submission(&svc.url, TOKEN_A, two.path(), "second").await;
    let id = |r: reqwest::Response| async move {
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        r.json::<imagespec_protocol::BuildInfo>()
            .await
            .expect("info")
            .id
    };
    let first_id = id(submit(&svc.url, TOKEN_A, &first).await).await;
    // The one slot is taken: the second build waits in the queue.
    for _ in 0..200 {
        if build_info(&svc.url, TOKEN_A, &first_id).await.status == BuildState::Running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let second_id = id(submit(&svc.url, TOKEN_A, &second).await).await;
    assert_eq!(
        build_info(&svc.url, TOKEN_A, &second_id).await.status,
        BuildState::Queued
    );
    let changed = svc
        .data
        .path()
        .join("workspaces")
        .join(&second_id)
        .join("src/app/main.py");
    assert!(changed.is_file(), "{}", changed.display());
    std::fs::write(&changed, "print('changed while queued')\n").expect("change");

    gate.add_permits(2);
    for id in [&first_id, &second_id] {
        let info = wait_finished(&svc.url, TOKEN_A, id).await;
        assert_eq!(info.status, BuildState::Succeeded, "{info:?}");
    }
    let built: Vec<String> = inner.builds().into_iter().map(|b| b.image).collect();
    assert_eq!(
        built,
        [
            format!("{NAMESPACE_A}/{}", first.target),
            format!("{NAMESPACE_A}/{}", second.target)
        ],
        "built under the names computed at submission"
    );
}
