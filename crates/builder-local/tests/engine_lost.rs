//! A build whose engine connection is lost is a lost engine, not a finished build (issue 11,
//! hole 7). A FAKE fault proxy on 127.0.0.1 (port 0) forwards bytes to the real Docker socket
//! and cuts the connection of the build request once its answer has started: the fault a real
//! engine does not produce on demand (a worker machine dying, a daemon restart). Needs
//! `scripts/dev-env.sh`.

mod common;
#[path = "support/dying_engine.rs"]
mod dying_engine;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use common::*;
use imagespec_builder_local::{BuildJob, EngineChoice, LocalBuilder};
use imagespec_core::build::BuildErrorKind;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_engine_connection_is_an_unavailable_engine_not_a_finished_build() {
    // The real engine must be there: the proxy only cuts.
    builder(EngineChoice::Docker).await;
    let (endpoint, cuts) = dying_engine::start(DOCKER.trim_start_matches("unix://")).await;
    let b = LocalBuilder::new(EngineChoice::Docker, Some(endpoint.clone()));
    b.engine()
        .await
        .unwrap_or_else(|e| panic!("the proxy forwards to Docker: {e}"));
    let tag = format!("localhost/imagespec-test/lost-{}:t", unique());
    let dockerfile = format!("FROM {DEBIAN_IMAGE}\nRUN echo {tag} && sleep 20\n");
    let (events, _) = recorder();
    let job = BuildJob {
        tag: tag.clone(),
        dockerfile: "Dockerfile".into(),
        context: context(vec![("Dockerfile", dockerfile.into_bytes())]),
        secrets: Vec::new(),
        platform: Some("linux/amd64".into()),
        labels: BTreeMap::new(),
        events,
        cancel: CancellationToken::new(),
    };
    let err = b
        .build_job(job)
        .await
        .expect_err("a cut build cannot succeed");
    assert!(
        cuts.load(Ordering::SeqCst) >= 1,
        "the proxy cut the build's answer"
    );
    assert_eq!(err.kind, BuildErrorKind::Unavailable, "{err}");
    assert!(
        err.message.contains("lost the connection to the engine")
            && err.message.contains(&endpoint),
        "{err}"
    );
    remove_image(EngineChoice::Docker, &tag);
}
