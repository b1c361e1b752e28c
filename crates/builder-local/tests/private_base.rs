//! A base image that lives only in a password-protected registry (the dev registry, htpasswd
//! on 127.0.0.1:5000) and not in the engine's store: the build pulls it with the credentials of
//! the builder's sources — over the BuildKit session on Docker, in `X-Registry-Config` on
//! Podman — and a wrong password fails the build without showing up in the error.
//! Needs `scripts/dev-env.sh`; fails without it.

mod common;

use std::collections::BTreeMap;

use common::*;
use imagespec_builder_local::{BuildJob, EngineChoice, LocalBuilder};
use tokio_util::sync::CancellationToken;

fn job(tag: &str, dockerfile: String) -> BuildJob {
    let (events, _) = recorder();
    BuildJob {
        tag: tag.to_string(),
        dockerfile: "Dockerfile".into(),
        context: context(vec![("Dockerfile", dockerfile.into_bytes())]),
        secrets: Vec::new(),
        platform: Some("linux/amd64".into()),
        labels: BTreeMap::new(),
        events,
        cancel: CancellationToken::new(),
    }
}

fn in_store(choice: EngineChoice, image: &str) -> bool {
    std::process::Command::new(cli(choice))
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn builds_from_a_private_base(choice: EngineChoice) {
    let (registry, user, password) = registry();
    let good = docker_config(&registry, &user, &password);
    let wrong_password = format!("wrong-{}", unique());
    let bad = docker_config(&registry, &user, &wrong_password);
    let id = unique();
    let base = format!("{registry}/imagespec-test/private-base-{id}:b1");
    let child = format!("localhost/imagespec-test/private-child-{id}:c1");
    let _cleanup = (
        Cleanup(choice, child.clone()),
        Cleanup(choice, base.clone()),
    );

    // The base: built, pushed with the good credentials, then removed from the engine.
    let b = builder(choice)
        .await
        .with_credentials(credentials_in(good.path()));
    b.build_job(job(
        &base,
        format!("FROM {DEBIAN_IMAGE}\nRUN echo {id} > /marker\n"),
    ))
    .await
    .unwrap_or_else(|e| panic!("building the base failed: {e}"));
    let (events, _) = recorder();
    b.push_image(&base, None, &events, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("pushing the base failed: {e}"));
    remove_image(choice, &base);
    assert!(!in_store(choice, &base), "{base} is still in the store");

    let child_df = format!("FROM {base}\nRUN test \"$(cat /marker)\" = {id}\n");

    // A wrong password: the pull is refused, and the password is nowhere in the error.
    let wrong = LocalBuilder::new(choice, Some(endpoint(choice).to_string()))
        .with_credentials(credentials_in(bad.path()));
    let e = wrong
        .build_job(job(&child, child_df.clone()))
        .await
        .expect_err("a pull with a wrong password must fail");
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains(&wrong_password),
        "the password leaked: {text}"
    );
    assert!(
        !in_store(choice, &base),
        "{base} was pulled with a wrong password"
    );

    // The right one: the base is pulled and the build runs on it.
    b.build_job(job(&child, child_df))
        .await
        .unwrap_or_else(|e| panic!("building FROM the private base failed: {e}"));
    assert!(in_store(choice, &child), "{child} was not built");
}

fn endpoint(choice: EngineChoice) -> &'static str {
    match choice {
        EngineChoice::Podman => PODMAN,
        _ => DOCKER,
    }
}

#[tokio::test]
async fn docker_builds_from_a_private_base() {
    builds_from_a_private_base(EngineChoice::Docker).await;
}

#[tokio::test]
async fn podman_builds_from_a_private_base() {
    builds_from_a_private_base(EngineChoice::Podman).await;
}
