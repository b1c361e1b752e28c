//! Pushing to the real dev registry (htpasswd auth on 127.0.0.1:5000) and the tri-state
//! existence checks, on Docker and Podman. Needs `scripts/dev-env.sh`; fails without it.

mod common;

use std::collections::BTreeMap;

use common::*;
use imagespec_builder_local::{BuildJob, EngineChoice, EngineKind, LocalBuilder};
use imagespec_core::build::{BuildErrorKind, Existence, ExistsQuery, ImageBuilder};
use imagespec_core::hash::ImageName;
use tokio_util::sync::CancellationToken;

fn name(registry: &str, repository: &str, tag: &str) -> ImageName {
    ImageName {
        registry: Some(registry.to_string()),
        repository: repository.to_string(),
        tag: tag.to_string(),
    }
}

fn query(push: bool, platforms: &[&str]) -> ExistsQuery {
    ExistsQuery {
        platforms: platforms.iter().map(|p| p.to_string()).collect(),
        push,
        registry_config: None,
    }
}

async fn build_small(b: &LocalBuilder, tag: &str) {
    let (events, _) = recorder();
    let job = BuildJob {
        tag: tag.to_string(),
        dockerfile: "Dockerfile".into(),
        context: context(vec![(
            "Dockerfile",
            format!("FROM {DEBIAN_IMAGE}\nRUN echo {tag} > /tag\n").into_bytes(),
        )]),
        secrets: Vec::new(),
        platform: Some("linux/amd64".into()),
        labels: BTreeMap::new(),
        events,
        cancel: CancellationToken::new(),
    };
    b.build_job(job)
        .await
        .unwrap_or_else(|e| panic!("build of {tag} failed: {e}"));
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn push_and_check(choice: EngineChoice) {
    let (registry, user, password) = registry();
    let good = docker_config(&registry, &user, &password);
    let wrong_password = format!("wrong-{}", unique());
    let bad = docker_config(&registry, &user, &wrong_password);
    let b = builder(choice)
        .await
        .with_credentials(credentials_in(good.path()));
    let repo = format!("imagespec-test/push-{}", unique());
    let image = name(&registry, &repo, "t1");
    let full = image.to_string();
    let _cleanup = Cleanup(choice, full.clone());
    build_small(&b, &full).await;

    assert_eq!(
        b.exists(&image, &query(true, &["linux/amd64"])).await,
        Existence::Missing,
        "before the push"
    );
    let (events, seen) = recorder();
    let digest = b
        .push_image(&full, None, &events, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("push failed: {e}"));
    let digest = digest.expect("a digest after the push");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let client = imagespec_registry::RegistryClient::builder()
        .credentials(credentials_in(good.path()))
        .build()
        .expect("registry client");
    let reference = imagespec_registry::ImageReference::parse(&full).expect("reference");
    assert_eq!(
        client
            .manifest_digest(&reference)
            .await
            .expect("HEAD manifest"),
        digest,
        "not the registry's digest"
    );
    let printed = format!("{:?}", seen.lock().expect("events"));
    assert!(
        !printed.contains(&password),
        "the password is in the push events"
    );

    assert_eq!(
        b.exists(&image, &query(true, &["linux/amd64"])).await,
        Existence::Exists
    );
    assert_eq!(b.exists(&image, &query(true, &[])).await, Existence::Exists);
    assert_eq!(
        b.exists(
            &name(&registry, &repo, "other"),
            &query(true, &["linux/amd64"])
        )
        .await,
        Existence::Missing
    );
    assert_eq!(
        b.exists(&image, &query(true, &["linux/arm64"])).await,
        Existence::Missing,
        "wrong platform"
    );

    // Wrong credentials: denied (never unknown, which a policy could skip), naming the file
    // the credentials came from, and the password is nowhere in the reason.
    let wrong = builder(choice)
        .await
        .with_credentials(credentials_in(bad.path()));
    match wrong.exists(&image, &query(true, &["linux/amd64"])).await {
        Existence::Denied { reason } => {
            assert!(
                !reason.contains(&wrong_password),
                "the password is in the reason: {reason}"
            );
            assert!(
                reason.contains("were rejected")
                    && reason.contains(&bad.path().join("config.json").display().to_string()),
                "{reason}"
            );
        }
        other => panic!("wrong credentials must give Denied, got {other:?}"),
    }
    let err = wrong
        .push_image(&full, None, &events, &CancellationToken::new())
        .await
        .expect_err("push with a wrong password");
    assert_eq!(err.kind, BuildErrorKind::Auth, "{err}");
    assert!(
        !err.to_string().contains(&wrong_password),
        "the password is in the error: {err}"
    );

    // No registry listening.
    let closed = name(&format!("127.0.0.1:{}", closed_port()), &repo, "t1");
    match b.exists(&closed, &query(true, &["linux/amd64"])).await {
        Existence::Unknown { reason } => assert!(!reason.is_empty()),
        other => panic!("a closed port must give Unknown, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_push_and_registry_existence() {
    push_and_check(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_push_and_registry_existence() {
    push_and_check(EngineChoice::Podman).await;
}

async fn local_existence(choice: EngineChoice) {
    let b = builder(choice).await;
    let image = name(
        "localhost",
        &format!("imagespec-test/local-{}", unique()),
        "t",
    );
    let _cleanup = Cleanup(choice, image.to_string());
    assert_eq!(
        b.exists(&image, &query(false, &["linux/amd64"])).await,
        Existence::Missing
    );
    build_small(&b, &image.to_string()).await;
    assert_eq!(
        b.exists(&image, &query(false, &["linux/amd64"])).await,
        Existence::Exists
    );
    assert_eq!(
        b.exists(&image, &query(false, &["linux/arm64"])).await,
        Existence::Missing
    );
    let other = ImageName {
        tag: "other".into(),
        ..image.clone()
    };
    assert_eq!(
        b.exists(&other, &query(false, &["linux/amd64"])).await,
        Existence::Missing
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_local_existence() {
    local_existence(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_local_existence() {
    local_existence(EngineChoice::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_down_is_unavailable_for_the_check_and_the_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = format!("unix://{}/nothing.sock", dir.path().display());
    let b = LocalBuilder::new(EngineChoice::Any, Some(sock.clone()));
    let image = name("localhost", "imagespec-test/down", "t");
    match b.exists(&image, &query(false, &["linux/amd64"])).await {
        Existence::Unavailable { reason } => {
            assert!(reason.contains(&sock), "{reason}");
            assert!(reason.contains("scripts/dev-env.sh"), "{reason}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let (events, _) = recorder();
    let err = b
        .build_job(BuildJob {
            tag: "localhost/imagespec-test/down:t".into(),
            dockerfile: "Dockerfile".into(),
            context: context(vec![]),
            secrets: Vec::new(),
            platform: None,
            labels: BTreeMap::new(),
            events,
            cancel: CancellationToken::new(),
        })
        .await
        .expect_err("no engine");
    assert_eq!(err.kind, BuildErrorKind::Unavailable);
    assert!(err.message.contains("sudo dockerd"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_are_told_apart() {
    let d = builder(EngineChoice::Docker).await;
    assert_eq!(d.engine().await.expect("docker").kind, EngineKind::Docker);
    let p = builder(EngineChoice::Podman).await;
    assert_eq!(p.engine().await.expect("podman").kind, EngineKind::Podman);
    let wrong = LocalBuilder::new(EngineChoice::Docker, Some(PODMAN.to_string()));
    let err = wrong.engine().await.expect_err("podman is not docker");
    assert!(err.to_string().contains("answered as Podman"), "{err}");
    let any = LocalBuilder::new(EngineChoice::Any, Some(PODMAN.to_string()));
    assert_eq!(any.engine().await.expect("any").kind, EngineKind::Podman);
}
