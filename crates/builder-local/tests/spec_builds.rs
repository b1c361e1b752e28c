//! Specs built end to end through the build plan on the real engines: a Python package from
//! PyPI, a push to the dev registry, a secret mount that must not leak, a failing command, and
//! the engine's build-only-if-missing flow. Needs `scripts/dev-env.sh`; fails without it.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use imagespec_builder_local::{EngineChoice, LocalBuilder};
use imagespec_core::build::{
    Action, BuildErrorKind, BuildRequest, BuilderRegistry, Engine, EngineOptions, EventSink,
    Existence, ExistsQuery, ImageBuilder,
};
use imagespec_core::{LoadedSpec, resolve_image};
use tokio_util::sync::CancellationToken;

/// The test spec: the dev Python image, uv from the local uv image, `six` from PyPI.
fn spec_text(name: &str, extra: &str) -> String {
    format!(
        "name: {name}\n\
         base_image: {PYTHON_IMAGE}\n\
         platform: linux/amd64\n\
         packages: [six]\n\
         builder_config:\n  uv_image: {UV_IMAGE}\n\
         {extra}"
    )
}

fn load(text: &str, root: &std::path::Path) -> LoadedSpec {
    // No Flyte runtime: these tests are about the engines, not flytekit (a large install).
    LoadedSpec::from_text(text, None, root)
        .unwrap_or_else(|e| panic!("invalid test spec: {e}\n{text}"))
        .with_runtime(imagespec_core::plan::runtime::Runtime::None)
}

fn request(spec: &LoadedSpec, push: bool, events: EventSink) -> BuildRequest {
    let image = resolve_image(spec).expect("image name");
    BuildRequest {
        base_image: image.base_reference(&spec.spec),
        spec: spec.clone(),
        image,
        push,
        events,
        cancel: CancellationToken::new(),
        secrets: Default::default(),
    }
}

async fn builds_the_six_spec(choice: EngineChoice) {
    let b = builder(choice).await;
    let root = tempfile::tempdir().expect("tempdir");
    // A unique working directory changes every layer after the base image, so this is a real
    // build (only uv's download cache, a cache mount, may be warm), not a cache hit.
    let id = unique();
    let extra = format!("builder_options:\n  workdir: /w-{id}\n");
    let spec = load(
        &spec_text(&format!("imagespec-test/six-{id}"), &extra),
        root.path(),
    );
    let _cleanup = Cleanup(choice, resolve_image(&spec).expect("name").name.to_string());
    let (events, seen) = recorder();
    let started = Instant::now();
    let out = b
        .build(request(&spec, false, events))
        .await
        .unwrap_or_else(|e| panic!("{choice:?} build failed: {e}"));
    eprintln!("{choice:?}: six spec built in {:?}", started.elapsed());
    assert!(!out.pushed);
    assert!(
        out.digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{out:?}"
    );
    let printed = run(
        cli(choice),
        &[
            "run",
            "--rm",
            &out.image,
            "python",
            "-c",
            "import six, sys; print(six.__name__, sys.prefix)",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&printed).trim(), "six /opt/venv");
    let cached = seen
        .lock()
        .expect("events")
        .iter()
        .filter(|e| {
            matches!(
                e,
                imagespec_core::build::BuildEvent::StepDone { cached: true, .. }
            )
        })
        .count();
    eprintln!("{choice:?}: {cached} cached steps");
    {
        let events = seen.lock().expect("events");
        assert!(
            events.iter().any(|e| matches!(e, imagespec_core::build::BuildEvent::Step { name, .. } if name.contains("uv pip install"))),
            "no install step in the events: {events:?}"
        );
    }
    let name = resolve_image(&spec).expect("name").name;
    let query = ExistsQuery {
        platforms: vec!["linux/amd64".into()],
        push: false,
        registry_config: None,
    };
    assert_eq!(b.exists(&name, &query).await, Existence::Exists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_builds_the_six_spec() {
    builds_the_six_spec(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_builds_the_six_spec() {
    builds_the_six_spec(EngineChoice::Podman).await;
}

async fn builds_and_pushes(choice: EngineChoice) {
    let (registry, user, password) = registry();
    let config = docker_config(&registry, &user, &password);
    let b = builder(choice)
        .await
        .with_credentials(credentials_in(config.path()));
    let root = tempfile::tempdir().expect("tempdir");
    let text = spec_text(
        &format!("imagespec-test/pushed-{}", unique()),
        &format!("registry: {registry}\ncommands: [\"echo pushed > /tmp/marker\"]\n"),
    );
    let spec = load(&text, root.path());
    let _cleanup = Cleanup(choice, resolve_image(&spec).expect("name").name.to_string());
    let (events, seen) = recorder();
    let out = b
        .build(request(&spec, true, events))
        .await
        .unwrap_or_else(|e| panic!("{choice:?} build+push failed: {e}"));
    assert!(out.pushed);
    assert!(
        out.image
            .starts_with(&format!("{registry}/imagespec-test/pushed-")),
        "{}",
        out.image
    );
    assert!(
        out.digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{out:?}"
    );
    assert!(!format!("{:?}", seen.lock().expect("events")).contains(&password));
    let name = resolve_image(&spec).expect("name").name;
    let query = ExistsQuery {
        platforms: vec!["linux/amd64".into()],
        push: true,
        registry_config: None,
    };
    assert_eq!(b.exists(&name, &query).await, Existence::Exists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_builds_and_pushes() {
    builds_and_pushes(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_builds_and_pushes() {
    builds_and_pushes(EngineChoice::Podman).await;
}

async fn pip_secret_does_not_leak(choice: EngineChoice) {
    let b = builder(choice).await;
    let root = tempfile::tempdir().expect("tempdir");
    let secret = format!("imagespec-spec-secret-{}-{}", unique(), unique());
    std::fs::write(root.path().join("token.txt"), &secret).expect("write secret");
    let text = spec_text(
        &format!("imagespec-test/secret-{}", unique()),
        "pip_secret_mounts:\n  - [token.txt, /run/secrets/tok]\n",
    );
    let spec = load(&text, root.path());
    let _cleanup = Cleanup(choice, resolve_image(&spec).expect("name").name.to_string());
    let (events, seen) = recorder();
    let out = b
        .build(request(&spec, false, events))
        .await
        .unwrap_or_else(|e| panic!("{choice:?} build failed: {e}"));
    let cli = cli(choice);
    let contains = |hay: &[u8]| hay.windows(secret.len()).any(|w| w == secret.as_bytes());
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("image.tar");
    run(
        cli,
        &["save", "-o", archive.to_str().expect("utf-8"), &out.image],
    );
    assert!(
        !contains(&std::fs::read(&archive).expect("saved")),
        "the secret is in `{cli} save`"
    );
    assert!(!contains(&run(cli, &["history", "--no-trunc", &out.image])));
    assert!(!contains(&run(cli, &["inspect", &out.image])));
    assert!(!format!("{:?}", seen.lock().expect("events")).contains(&secret));
    let listing = run(
        cli,
        &[
            "run",
            "--rm",
            &out.image,
            "sh",
            "-c",
            "ls -A /run/secrets 2>/dev/null | wc -l",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&listing).trim(),
        "0",
        "the secret mount point has content"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pip_secret_does_not_leak() {
    pip_secret_does_not_leak(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_pip_secret_does_not_leak() {
    pip_secret_does_not_leak(EngineChoice::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_fails_before_building() {
    let b = LocalBuilder::new(
        EngineChoice::Any,
        Some("unix:///nonexistent/engine.sock".into()),
    );
    let root = tempfile::tempdir().expect("tempdir");
    let var = format!("IMAGESPEC_TEST_UNSET_{}", unique().to_uppercase());
    let text = spec_text(
        "imagespec-test/nosecret",
        &format!("pip_secret_mounts:\n  - [\"env:{var}\", /run/secrets/tok]\n"),
    );
    let spec = load(&text, root.path());
    let err = b
        .build(request(&spec, false, EventSink::discard()))
        .await
        .expect_err("no secret");
    assert!(err.message.contains(&var), "{err}");
}

async fn failing_command_names_the_step(choice: EngineChoice) {
    let b = builder(choice).await;
    let root = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "name: imagespec-test/failing-{}\nbase_image: {PYTHON_IMAGE}\nplatform: linux/amd64\n\
         builder_config:\n  uv_image: {UV_IMAGE}\n\
         commands: [\"echo about to fail {}\", \"for i in $(seq 1 25); do echo out-$i; done; exit 7\"]\n",
        unique(),
        unique()
    );
    let spec = load(&text, root.path());
    let _cleanup = Cleanup(choice, resolve_image(&spec).expect("name").name.to_string());
    let err = b
        .build(request(&spec, false, EventSink::discard()))
        .await
        .expect_err("the command fails");
    assert_eq!(err.kind, BuildErrorKind::StepFailed, "{err}");
    let step = err.step.clone().unwrap_or_default();
    assert!(step.starts_with("RUN") && step.contains("exit 7"), "{step}");
    assert_eq!(
        err.log_tail.last().map(String::as_str),
        Some("out-25"),
        "{:?}",
        err.log_tail
    );
    assert!(err.log_tail.len() <= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_failing_command_names_the_step() {
    failing_command_names_the_step(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_failing_command_names_the_step() {
    failing_command_names_the_step(EngineChoice::Podman).await;
}

/// Several platforms are built one by one and joined by an index in the registry, so without a
/// push they are refused, before the engine is even contacted (this one does not exist: asking
/// it would fail as `Unavailable`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_platforms_without_a_push_are_refused_before_any_work() {
    let b = LocalBuilder::new(
        EngineChoice::Any,
        Some("unix:///nonexistent/engine.sock".into()),
    );
    assert!(b.capabilities().multi_platform);
    let root = tempfile::tempdir().expect("tempdir");
    let text = spec_text("imagespec-test/multi", "")
        .replace("platform: linux/amd64", "platform: linux/amd64,linux/arm64");
    let spec = load(&text, root.path());
    let err = b
        .build(request(&spec, false, EventSink::discard()))
        .await
        .expect_err("refused");
    assert_eq!(err.kind, BuildErrorKind::Unsupported, "{err}");
    assert!(
        err.message.contains("--no-push") && err.message.contains("linux/amd64,linux/arm64"),
        "{err}"
    );
    // The engine plans it (the builder's capabilities allow several platforms; the push is
    // the builder's to require, as above).
    let mut registry = BuilderRegistry::new();
    registry.register(Arc::new(b));
    let engine = Engine::new(registry);
    let options = EngineOptions {
        push: false,
        ..EngineOptions::default()
    };
    engine.plan(&spec, &options).expect("planned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_builds_only_when_missing() {
    let b = builder(EngineChoice::Docker).await;
    let mut registry = BuilderRegistry::new();
    registry.register(Arc::new(b));
    let engine = Engine::new(registry);
    let root = tempfile::tempdir().expect("tempdir");
    let spec = load(
        &spec_text(
            &format!("imagespec-test/flow-{}", unique()),
            "builder: docker\n",
        ),
        root.path(),
    );
    let _cleanup = Cleanup(
        EngineChoice::Docker,
        resolve_image(&spec).expect("name").name.to_string(),
    );
    let options = EngineOptions {
        push: false,
        ..EngineOptions::default()
    };
    let first = engine
        .ensure(&spec, &options)
        .await
        .unwrap_or_else(|e| panic!("first ensure: {e}"));
    assert_eq!(first.action, Action::Built);
    assert_eq!(first.existence, Some(Existence::Missing));
    let second = engine
        .ensure(&spec, &options)
        .await
        .unwrap_or_else(|e| panic!("second ensure: {e}"));
    assert_eq!(second.action, Action::Exists);
}

/// A `uv_image` the engine cannot pull (a repository the dev registry does not have) fails the
/// build with an error that names the `builder_config` key to set.
async fn unpullable_helper_image_names_its_key(choice: EngineChoice) {
    let b = builder(choice).await;
    let root = tempfile::tempdir().expect("tempdir");
    let missing = format!("127.0.0.1:5000/imagespec-test/no-such-uv-{}:0", unique());
    let text = format!(
        "name: imagespec-test/nouv-{}\nbase_image: {PYTHON_IMAGE}\nplatform: linux/amd64\n\
         packages: [six]\nbuilder_config:\n  uv_image: {missing}\n",
        unique()
    );
    let spec = load(&text, root.path());
    let _cleanup = Cleanup(choice, resolve_image(&spec).expect("name").name.to_string());
    let err = b
        .build(request(&spec, false, EventSink::discard()))
        .await
        .expect_err("the helper image does not exist");
    let text = err.to_string();
    assert!(
        text.contains("builder_config: {uv_image: <image>}") && text.contains(&missing),
        "{choice:?}: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_unpullable_helper_image_names_its_key() {
    unpullable_helper_image_names_its_key(EngineChoice::Docker).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_unpullable_helper_image_names_its_key() {
    unpullable_helper_image_names_its_key(EngineChoice::Podman).await
}
