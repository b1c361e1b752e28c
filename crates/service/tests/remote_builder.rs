//! The remote builder (client) end to end against an in-process service with a `TestBuilder`
//! worker: `Engine::ensure`, upload de-duplication, cancellation, base specs, failures.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use imagespec_core::build::{
    Action, BuildError, BuildErrorKind, BuildEvent, EngineError, EngineOptions,
};
use imagespec_core::spec::LoadedSpec;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn engine_ensure_builds_remotely_then_finds_the_image() {
    let builder = test_builder(Duration::from_millis(100));
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let loaded = project(dir.path(), "e2e");
    let engine = engine(remote(&svc.url, TOKEN_A));
    let (sink, events) = collecting_sink();
    let first = engine
        .ensure(
            &loaded,
            &EngineOptions {
                events: sink,
                ..options()
            },
        )
        .await
        .expect("first build");
    assert_eq!(first.action, Action::Built);
    assert!(
        first.image.starts_with(&format!("{NAMESPACE_A}/e2e:")),
        "{}",
        first.image
    );
    let events = events.lock().expect("lock").clone();
    assert!(
        events.iter().any(
            |e| matches!(e, BuildEvent::Step { name, .. } if name.starts_with("test build of"))
        ),
        "the worker's events stream back: {events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, BuildEvent::Status { message } if message.starts_with("uploaded 5 of 5 files"))));
    let second = engine.ensure(&loaded, &options()).await.expect("second");
    assert_eq!(second.action, Action::Exists);
    assert_eq!(
        second.image, first.image,
        "an existing image is reported under the service's name for it"
    );
    assert_eq!(builder.builds().len(), 1, "the second call builds nothing");
}

#[tokio::test]
async fn a_one_file_change_uploads_about_that_file_only() {
    // The example's spec names its registry: the operator allows the project to push there.
    let mut config = config(std::path::Path::new("."));
    config
        .allowed_registries
        .insert("project-a".into(), vec!["127.0.0.1:5000/examples".into()]);
    let data = tempfile::tempdir().expect("tmp");
    let svc = TestService::start_with(data, config, test_builder(Duration::ZERO)).await;
    let proxy = proxy::CuttingProxy::start(svc.running().addr(), 0, 0).await;
    let dir = tempfile::tempdir().expect("tmp");
    copy_tree(&repo_root().join("examples/requirements"), dir.path());
    let spec_path = dir.path().join("spec.yaml");
    let client = remote(&proxy.url(), TOKEN_A);
    let engine = engine(client.clone());

    let loaded = LoadedSpec::from_file(&spec_path, dir.path()).expect("example spec");
    engine
        .ensure(&loaded, &options())
        .await
        .expect("first build");
    let first = client.last_upload().expect("stats");
    let first_wire = proxy.sent();

    let changed = dir.path().join("src/hello/main.py");
    let mut text = std::fs::read_to_string(&changed).expect("read");
    text.push_str("# one more line\n");
    std::fs::write(&changed, &text).expect("write");
    proxy.reset_sent();
    let loaded = LoadedSpec::from_file(&spec_path, dir.path()).expect("example spec");
    let outcome = engine
        .ensure(&loaded, &options())
        .await
        .expect("second build");
    assert_eq!(
        outcome.action,
        Action::Built,
        "a changed file changes the tag"
    );
    let second = client.last_upload().expect("stats");
    let second_wire = proxy.sent();
    eprintln!(
        "examples/requirements: first build uploaded {} files / {} bytes of blobs ({} bytes on the wire in all); \
         one-file-changed build uploaded {} file / {} bytes of blobs ({} bytes on the wire in all)",
        first.uploaded,
        first.uploaded_bytes,
        first_wire,
        second.uploaded,
        second.uploaded_bytes,
        second_wire
    );
    assert_eq!(first.uploaded, first.blobs);
    assert_eq!(first.uploaded_bytes, first.total_bytes);
    assert_eq!(second.uploaded, 1);
    assert_eq!(second.uploaded_bytes, text.len() as u64);
    // On the wire: the file plus the fixed cost of a few small JSON requests.
    assert!(second_wire < first_wire, "{second_wire} vs {first_wire}");
}

#[tokio::test]
async fn in_a_one_mib_tree_a_one_file_change_sends_kilobytes() {
    let svc = TestService::start(test_builder(Duration::ZERO)).await;
    let proxy = proxy::CuttingProxy::start(svc.running().addr(), 0, 0).await;
    let dir = tempfile::tempdir().expect("tmp");
    project(dir.path(), "big-tree");
    for i in 0..256 {
        write(
            dir.path(),
            &format!("src/pkg/module_{i:03}.py"),
            &format!("# module {i}\n{}", "x = 1\n".repeat(680)),
        );
    }
    let client = remote(&proxy.url(), TOKEN_A);
    let engine = engine(client.clone());
    let spec = dir.path().join("spec.yaml");
    engine
        .ensure(
            &LoadedSpec::from_file(&spec, dir.path()).expect("spec"),
            &options(),
        )
        .await
        .expect("first");
    let (first, first_wire) = (client.last_upload().expect("stats"), proxy.sent());
    write(dir.path(), "src/pkg/module_007.py", "# changed\n");
    proxy.reset_sent();
    engine
        .ensure(
            &LoadedSpec::from_file(&spec, dir.path()).expect("spec"),
            &options(),
        )
        .await
        .expect("second");
    let (second, second_wire) = (client.last_upload().expect("stats"), proxy.sent());
    eprintln!(
        "1 MiB tree: first build {} blobs / {} bytes ({first_wire} on the wire); one-file change {} blob / {} bytes ({second_wire} on the wire)",
        first.uploaded, first.uploaded_bytes, second.uploaded, second.uploaded_bytes
    );
    assert!(first.uploaded_bytes > 1_000_000);
    assert_eq!((second.uploaded, second.uploaded_bytes), (1, 10));
    // The rest is the manifest and a few small requests, not the tree.
    assert!(
        second_wire < first_wire / 10,
        "{second_wire} vs {first_wire}"
    );
}

#[tokio::test]
async fn a_rate_limited_client_waits_as_told_and_succeeds() {
    let data = tempfile::tempdir().expect("tmp");
    let mut config = config(data.path());
    config.limits.requests_per_minute = 600;
    config.limits.burst = 3;
    let svc = TestService::start_with(data, config, test_builder(Duration::ZERO)).await;
    let dir = tempfile::tempdir().expect("tmp");
    let loaded = project(dir.path(), "throttled");
    let outcome = engine(remote(&svc.url, TOKEN_A))
        .ensure(&loaded, &options())
        .await
        .expect("builds despite 429s");
    assert_eq!(outcome.action, Action::Built);
}

#[tokio::test]
async fn cancelling_the_client_cancels_the_remote_build() {
    let builder = test_builder(Duration::from_secs(30));
    let svc = TestService::start(builder).await;
    let dir = tempfile::tempdir().expect("tmp");
    let loaded = project(dir.path(), "cancel-me");
    let engine = Arc::new(engine(remote(&svc.url, TOKEN_A)));
    let (sink, events) = collecting_sink();
    let cancel = CancellationToken::new();
    let opts = EngineOptions {
        events: sink,
        cancel: cancel.clone(),
        ..options()
    };
    let task = tokio::spawn({
        let engine = engine.clone();
        async move { engine.ensure(&loaded, &opts).await }
    });
    let id = wait_for_running(&events).await;
    cancel.cancel();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("no hang")
        .expect("join")
        .expect_err("cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the 30 s build was not waited for"
    );
    assert_eq!(build_error(&err).kind, BuildErrorKind::Cancelled, "{err}");
    let info = wait_finished(&svc.url, TOKEN_A, &id).await;
    assert_eq!(info.status.as_str(), "cancelled");
}

#[tokio::test]
async fn a_failed_remote_build_keeps_its_step_and_log_tail() {
    let builder = test_builder(Duration::ZERO);
    builder.fail_builds(Some(BuildError {
        step: Some("RUN pip install -r requirements.txt".into()),
        log_tail: vec!["ERROR: No matching distribution found for six==99".into()],
        ..BuildError::new(
            BuildErrorKind::StepFailed,
            "RUN pip install failed with exit code 1",
        )
    }));
    let svc = TestService::start(builder).await;
    let dir = tempfile::tempdir().expect("tmp");
    let loaded = project(dir.path(), "failing");
    let err = engine(remote(&svc.url, TOKEN_A))
        .ensure(&loaded, &options())
        .await
        .expect_err("fails");
    let e = build_error(&err);
    assert_eq!(e.kind, BuildErrorKind::StepFailed);
    assert_eq!(
        e.step.as_deref(),
        Some("RUN pip install -r requirements.txt")
    );
    assert_eq!(
        e.log_tail,
        ["ERROR: No matching distribution found for six==99"]
    );
    assert!(e.message.contains("failed"), "{}", e.message);
}

#[tokio::test]
async fn a_base_spec_is_built_first_and_the_child_builds_from_it() {
    let builder = test_builder(Duration::ZERO);
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "app/train.py", "print('train')\n");
    write(dir.path(), "base-reqs.txt", "six\n");
    write(
        dir.path(),
        "spec.yaml",
        "name: trainer\nbase_image:\n  name: trainer-base\n  requirements: base-reqs.txt\n  apt_packages: [git]\ncopy: [app/train.py]\n",
    );
    let loaded = LoadedSpec::from_file(&dir.path().join("spec.yaml"), dir.path()).expect("spec");
    let outcome = engine(remote(&svc.url, TOKEN_A))
        .ensure(&loaded, &options())
        .await
        .expect("builds");
    let base = outcome.base.as_ref().expect("base outcome");
    assert_eq!(base.action, Action::Built);
    let builds = builder.builds();
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[0].image, base.image);
    assert_eq!(
        builds[1].base_image.as_deref(),
        Some(base.image.as_str()),
        "FROM the base's qualified name"
    );
    assert!(base.image.starts_with(NAMESPACE_A));
}

#[tokio::test]
async fn an_unreachable_service_is_a_clear_error_not_a_hang() {
    let dir = tempfile::tempdir().expect("tmp");
    let loaded = project(dir.path(), "nowhere");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let engine = engine(remote(&url, TOKEN_A));
    let err = engine
        .ensure(&loaded, &options())
        .await
        .expect_err("an unreachable service fails");
    assert!(matches!(err, EngineError::Unavailable { .. }), "{err}");
    let forced = EngineOptions {
        force: true,
        ..options()
    };
    let err = engine
        .ensure(&loaded, &forced)
        .await
        .expect_err("unreachable");
    let e = build_error(&err);
    assert_eq!(e.kind, BuildErrorKind::Unavailable);
    assert!(
        e.message.contains("unreachable") && e.message.contains(&url),
        "{}",
        e.message
    );
    assert!(!e.message.contains(TOKEN_A));
}

#[tokio::test]
async fn a_wrong_token_is_an_auth_error_without_the_token() {
    let svc = TestService::start(test_builder(Duration::ZERO)).await;
    let dir = tempfile::tempdir().expect("tmp");
    let loaded = project(dir.path(), "wrong-token");
    let forced = EngineOptions {
        force: true,
        ..options()
    };
    let err = engine(remote(&svc.url, "wrong-token-wrong-token"))
        .ensure(&loaded, &forced)
        .await
        .expect_err("refused");
    let e = build_error(&err);
    assert_eq!(e.kind, BuildErrorKind::Auth);
    assert!(!format!("{err:?}").contains("wrong-token-wrong-token"));
}

pub fn build_error(err: &EngineError) -> &BuildError {
    match err {
        EngineError::Build { source, .. } => source,
        EngineError::Base { source, .. } => build_error(source),
        other => panic!("not a build error: {other}"),
    }
}

/// Waits until the client reports the build submitted; returns its id.
async fn wait_for_running(events: &std::sync::Mutex<Vec<BuildEvent>>) -> String {
    for _ in 0..200 {
        let found = events.lock().expect("lock").iter().find_map(|e| match e {
            BuildEvent::Status { message } if message.starts_with("running on worker") => Some(()),
            _ => None,
        });
        let id = events.lock().expect("lock").iter().find_map(|e| match e {
            BuildEvent::Status { message } if message.starts_with("build ") => {
                message.split(' ').nth(1).map(str::to_string)
            }
            _ => None,
        });
        if let (Some(()), Some(id)) = (found, id) {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the build never started");
}

/// Issue 10.7 and 10.1: the remote builder passes `builder_options` whole (Union's
/// `imagepull_secret_name`, which imagespec's plan does not read) and the Union runtime to the
/// service, whose worker receives both.
#[tokio::test]
async fn builder_options_and_the_union_runtime_reach_the_worker() {
    use imagespec_core::plan::runtime::Runtime;
    let builder = test_builder(Duration::ZERO);
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    project(dir.path(), "union-options");
    std::fs::write(
        dir.path().join("spec.yaml"),
        "name: union-options\nrequirements: requirements.txt\nbuilder_options: {imagepull_secret_name: pull-secret}\n",
    )
    .expect("write");
    let loaded = LoadedSpec::from_file(&dir.path().join("spec.yaml"), dir.path())
        .expect("valid spec")
        .with_runtime(Runtime::Union("0.1.204".into()));
    let engine = engine(remote(&svc.url, TOKEN_A));
    let outcome = engine.ensure(&loaded, &options()).await.expect("build");
    assert_eq!(outcome.action, Action::Built);
    let builds = builder.builds();
    assert_eq!(builds.len(), 1);
    assert_eq!(
        builds[0].builder_options.get("imagepull_secret_name"),
        Some(&serde_json::json!("pull-secret"))
    );
    assert_eq!(builds[0].runtime, Runtime::Union("0.1.204".into()));
}

/// A worker that builds linux/amd64 only (as an engine without emulation does).
struct AmdOnly;

#[async_trait::async_trait]
impl imagespec_core::build::ImageBuilder for AmdOnly {
    fn name(&self) -> &str {
        "amd64-only"
    }

    fn capabilities(&self) -> imagespec_core::build::Capabilities {
        imagespec_core::build::Capabilities::full(imagespec_core::build::BuilderKind::Local)
    }

    async fn platforms(&self) -> Option<Vec<String>> {
        Some(vec!["linux/amd64".into()])
    }

    async fn exists(
        &self,
        _image: &imagespec_core::hash::ImageName,
        _query: &imagespec_core::build::ExistsQuery,
    ) -> imagespec_core::build::Existence {
        imagespec_core::build::Existence::Missing
    }

    async fn build(
        &self,
        _request: imagespec_core::build::BuildRequest,
    ) -> Result<imagespec_core::build::BuildOutput, BuildError> {
        panic!("the service must not be asked to build a platform it cannot")
    }
}

/// The service publishes what its workers build; the client refuses another platform before
/// uploading a single file, naming the platform and what the service builds.
#[tokio::test]
async fn a_platform_the_service_cannot_build_is_refused_before_the_upload() {
    let svc = TestService::start(Arc::new(AmdOnly)).await;
    let answer: serde_json::Value = get(&svc.url, "/v1/capabilities", TOKEN_A)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer, serde_json::json!({"platforms": ["linux/amd64"]}));

    let dir = tempfile::tempdir().expect("tmp");
    let mut loaded = project(dir.path(), "arm");
    loaded.spec.platform = "linux/amd64,linux/arm64".into();
    let client = remote(&svc.url, TOKEN_A);
    let err = engine(client.clone())
        .ensure(&loaded, &options())
        .await
        .expect_err("refused");
    let e = build_error(&err);
    assert_eq!(e.kind, BuildErrorKind::Unsupported, "{e}");
    assert!(
        e.message.contains("cannot build linux/arm64") && e.message.contains("linux/amd64"),
        "{e}"
    );
    assert!(client.last_upload().is_none(), "files were uploaded");

    // A client that skips the check (the raw API) is refused at submission all the same.
    let body = prepared_submission_with(
        &svc.url,
        TOKEN_A,
        &dir.path().join("raw"),
        "arm-raw",
        "platform: linux/amd64,linux/arm64\n",
    )
    .await;
    let body = imagespec_protocol::SubmitBuild {
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        ..body
    };
    let (status, p) = problem(submit(&svc.url, TOKEN_A, &body).await).await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.kind.ends_with(":unsupported") && p.detail.contains("cannot build linux/arm64"),
        "{}",
        p.detail
    );
}

/// The root `.dockerignore` shapes the trees below the root, so the service must see it to
/// select (and name) the same files: a `!` that keeps a file the built-in excludes drop, a
/// pattern that drops one, in a `source_root` below the root and in one that is the root.
#[tokio::test]
async fn the_root_dockerignore_reaches_the_service() {
    let builder = test_builder(Duration::ZERO);
    let svc = TestService::start(builder.clone()).await;
    let engine = engine(remote(&svc.url, TOKEN_A));
    for (name, source_root, ignore) in [
        ("below", "src", "*.log\n!src/keep.pyc\n"),
        ("root", ".", ".dockerignore\n*.log\n!src/keep.pyc\n"),
        ("root-kept", ".", "*.log\n!src/keep.pyc\n"),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("root");
        write(&root, "src/app.py", "print('app')\n");
        write(&root, "src/keep.pyc", "kept\n");
        write(&root, "src/drop.pyc", "dropped\n");
        write(&root, "src/debug.log", "dropped\n");
        write(&root, ".dockerignore", ignore);
        write(dir.path(), "outside/reqs.txt", "six\n");
        write(
            &root,
            "spec.yaml",
            &format!(
                "name: {name}\nsource_root: {source_root}\nrequirements: ../outside/reqs.txt\n"
            ),
        );
        let loaded = LoadedSpec::from_file(&root.join("spec.yaml"), &root).expect("spec");
        let outcome = engine
            .ensure(&loaded, &options())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(outcome.action, Action::Built, "{name}");
    }
    assert_eq!(builder.builds().len(), 3);
}
