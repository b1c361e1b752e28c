//! Helpers for the service tests: an in-process service on 127.0.0.1:0 with test workers, a
//! client for it, and small spec projects.
#![allow(dead_code)]

pub mod proxy;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imagespec_builder_remote::files;
use imagespec_builder_remote::{RemoteBuilder, RemoteConfig, RetryPolicy};
use imagespec_core::build::testing::TestBuilder;
use imagespec_core::build::{
    BuildError, BuildErrorKind, BuildEvent, BuildOutput, BuildRequest, BuilderKind,
    BuilderRegistry, Capabilities, Engine, EngineOptions, EventSink, Existence, ExistsQuery,
    ImageBuilder,
};
use imagespec_core::config::Secret;
use imagespec_core::hash::ImageName;
use imagespec_core::resolve_image;
use imagespec_core::spec::LoadedSpec;
use imagespec_protocol::{BuildInfo, FileEntry, Problem, SubmitBuild, blob_digest};
use imagespec_service::{RunningService, Service, ServiceConfig, Worker};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

pub const TOKEN_A: &str = "token-for-project-a-0123456789";
pub const TOKEN_B: &str = "token-for-project-b-0123456789";
pub const SERVICE_REGISTRY: &str = "127.0.0.1:5000/service";
/// Each project's namespace in the service's registry.
pub const NAMESPACE_A: &str = "127.0.0.1:5000/service/project-a";
pub const NAMESPACE_B: &str = "127.0.0.1:5000/service/project-b";

/// A service under test and its data directory.
pub struct TestService {
    pub data: tempfile::TempDir,
    pub service: Option<RunningService>,
    pub url: String,
}

pub fn config(data: &Path) -> ServiceConfig {
    let mut config = ServiceConfig::new(data)
        .with_token("project-a", TOKEN_A)
        .with_token("project-b", TOKEN_B)
        .with_registry(SERVICE_REGISTRY);
    // The dev environment's local base images are the operator's allowed bases.
    config.base_images.push("localhost/imagespec/*".into());
    config.cancel_grace_seconds = 1;
    config.keep_alive_seconds = 1;
    config
}

impl TestService {
    /// A service with one worker running `builder`.
    pub async fn start(builder: Arc<dyn ImageBuilder>) -> TestService {
        let data = tempfile::tempdir().expect("tmp");
        Self::start_with(data, config(Path::new(".")), builder).await
    }

    pub async fn start_with(
        data: tempfile::TempDir,
        config: ServiceConfig,
        builder: Arc<dyn ImageBuilder>,
    ) -> TestService {
        let config = ServiceConfig {
            data_dir: data.path().to_path_buf(),
            ..config
        };
        let service = Service::new(config)
            .with_workers(vec![Worker::new("test-worker", builder, 1)])
            .start()
            .await
            .expect("service starts");
        let url = service.url();
        TestService {
            data,
            service: Some(service),
            url,
        }
    }

    pub fn running(&self) -> &RunningService {
        self.service.as_ref().expect("running")
    }
}

/// A test builder that takes `delay` per build.
pub fn test_builder(delay: Duration) -> Arc<TestBuilder> {
    Arc::new(TestBuilder::new("test", BuilderKind::Local).with_build_delay(delay))
}

/// A fast retry policy so failure tests finish quickly.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 8,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        max_retry_after: Duration::from_secs(2),
    }
}

pub fn remote(url: &str, token: &str) -> RemoteBuilder {
    RemoteBuilder::new(RemoteConfig {
        url: Some(url.to_string()),
        token: Some(Secret::new(token)),
    })
    .with_retry(fast_retry())
}

/// An engine that knows only `builder` (as `union`/`remote`).
pub fn engine(builder: RemoteBuilder) -> Engine {
    let mut registry = BuilderRegistry::new();
    registry.register(Arc::new(builder));
    Engine::new(registry)
}

pub fn options() -> EngineOptions {
    EngineOptions {
        builder: Some("remote".into()),
        ..EngineOptions::default()
    }
}

/// Collects events for assertions.
pub fn collecting_sink() -> (EventSink, Arc<std::sync::Mutex<Vec<BuildEvent>>>) {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let e = events.clone();
    (
        EventSink::new(move |ev| e.lock().expect("lock").push(ev)),
        events,
    )
}

pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// A small requirements project: `spec.yaml`, `requirements.txt`, `src/` with a few files.
pub fn project(dir: &Path, name: &str) -> LoadedSpec {
    project_with(dir, name, "")
}

/// [`project`] with `extra` YAML lines in the spec.
pub fn project_with(dir: &Path, name: &str, extra: &str) -> LoadedSpec {
    write(dir, "requirements.txt", "six==1.17.0\n");
    write(dir, "src/app/__init__.py", "");
    write(dir, "src/app/main.py", "print('hello')\n");
    write(dir, "src/app/data.txt", &"x".repeat(4096));
    write(dir, "src/.gitignore", "*.log\n");
    write(dir, "src/debug.log", "ignored\n");
    let spec = format!(
        "name: {name}\npython_version: '3.11'\nrequirements: requirements.txt\nsource_root: src\n{extra}"
    );
    write(dir, "spec.yaml", &spec);
    // No Flyte runtime: these tests are about the service, not flytekit (a large install).
    LoadedSpec::from_file(&dir.join("spec.yaml"), dir)
        .expect("valid spec")
        .with_runtime(imagespec_core::plan::runtime::Runtime::None)
}

/// Copies a directory tree (for examples).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A raw HTTP client for API-level tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// An authenticated request to `url` + `path` (e.g. `/v1/builds/{id}`) as `token`'s project.
pub fn authed(
    method: reqwest::Method,
    url: &str,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    http()
        .request(method, format!("{url}{path}"))
        .bearer_auth(token)
}

/// `GET` [`authed`], sent.
pub async fn get(url: &str, path: &str, token: &str) -> reqwest::Response {
    authed(reqwest::Method::GET, url, path, token)
        .send()
        .await
        .expect("send")
}

/// A build's status as `token`'s project sees it.
pub async fn build_info(url: &str, token: &str, id: &str) -> BuildInfo {
    get(url, &format!("/v1/builds/{id}"), token)
        .await
        .json()
        .await
        .expect("json")
}

/// Polls a build until it reaches a terminal state.
pub async fn wait_finished(url: &str, token: &str, id: &str) -> BuildInfo {
    for _ in 0..200 {
        let info = build_info(url, token, id).await;
        if info.status.is_terminal() {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("build {id} did not finish");
}

/// A builder that talks a lot, slowly: `lines` log lines, `pause` apart.
pub struct ChattyBuilder {
    pub lines: usize,
    pub pause: Duration,
}

#[async_trait]
impl ImageBuilder for ChattyBuilder {
    fn name(&self) -> &str {
        "chatty"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::full(BuilderKind::Local)
    }

    async fn exists(&self, _image: &ImageName, _query: &ExistsQuery) -> Existence {
        Existence::Missing
    }

    async fn build(&self, request: BuildRequest) -> Result<BuildOutput, BuildError> {
        request.events.emit(BuildEvent::step(1, "RUN talk"));
        for i in 0..self.lines {
            if request.cancel.is_cancelled() {
                return Err(BuildError::new(BuildErrorKind::Cancelled, "cancelled"));
            }
            request.events.emit(BuildEvent::Log {
                line: format!("line {i:04}"),
            });
            tokio::time::sleep(self.pause).await;
        }
        Ok(BuildOutput {
            image: request.image.name.to_string(),
            digest: Some("sha256:feed".into()),
            pushed: true,
        })
    }
}

pub fn digest_of(bytes: &[u8]) -> String {
    blob_digest(&Sha256::digest(bytes).into())
}

pub async fn problem(response: reqwest::Response) -> (StatusCode, Problem) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/problem+json", "status {status}");
    let body: Problem = response.json().await.expect("problem body");
    assert_eq!(body.status, status.as_u16());
    assert!(body.kind.starts_with("urn:imagespec:problem:"));
    (status, body)
}

/// Uploads a project's files as `token` and returns the submission for it.
pub async fn prepared_submission(
    url: &str,
    token: &str,
    dir: &std::path::Path,
    name: &str,
) -> SubmitBuild {
    prepared_submission_with(url, token, dir, name, "").await
}

/// [`prepared_submission`] of [`project_with`]`(.., extra)`.
pub async fn prepared_submission_with(
    url: &str,
    token: &str,
    dir: &std::path::Path,
    name: &str,
    extra: &str,
) -> SubmitBuild {
    let loaded = project_with(dir, name, extra);
    let selection = files::select(&loaded).expect("select");
    for file in selection.files.values() {
        let bytes = std::fs::read(&file.source).expect("read");
        let r = http()
            .put(format!("{url}/v1/blobs/{}", blob_digest(&file.digest)))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success(), "{}", r.status());
    }
    SubmitBuild {
        spec: serde_json::to_value(&selection.spec).expect("json"),
        files: selection
            .files
            .iter()
            .map(|(p, f)| {
                (
                    p.clone(),
                    FileEntry {
                        digest: blob_digest(&f.digest),
                        executable: f.executable,
                        symlink: f.symlink.clone(),
                    },
                )
            })
            .collect(),
        target: resolve_image(&loaded).expect("hash").name.to_string(),
        platforms: vec!["linux/amd64".into()],
        force: true,
        base_image: None,
        flytekit_version: Some("none".into()),
        union_version: None,
        secrets: Default::default(),
    }
}

pub async fn submit(url: &str, token: &str, body: &SubmitBuild) -> reqwest::Response {
    http()
        .post(format!("{url}/v1/builds"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("submit")
}

/// The registry user and password from the environment or `.dev-env/registry.env`.
pub fn registry_credentials() -> Option<(String, String)> {
    if let (Ok(u), Ok(p)) = (
        std::env::var("IMAGESPEC_REGISTRY_USER"),
        std::env::var("IMAGESPEC_REGISTRY_PASS"),
    ) {
        return Some((u, p));
    }
    // `IMAGESPEC_DEV_DIR` (set by `.dev-env/env`) lets another checkout use the one environment.
    let dev_dir = std::env::var_os("IMAGESPEC_DEV_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".dev-env"));
    let text = std::fs::read_to_string(dev_dir.join("registry.env")).ok()?;
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    let pass = get("IMAGESPEC_REGISTRY_PASSWORD").or_else(|| get("IMAGESPEC_REGISTRY_PASS"))?;
    Some((get("IMAGESPEC_REGISTRY_USER")?, pass))
}

/// A Docker config.json logging into the dev registry (127.0.0.1:5000).
pub fn docker_config(dir: &Path, user: &str, pass: &str) -> PathBuf {
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{user}:{pass}"),
    );
    let path = dir.join("auth.json");
    let json = serde_json::json!({"auths": {"127.0.0.1:5000": {"auth": auth}}});
    std::fs::write(&path, json.to_string()).expect("write auth");
    path
}

/// `GET /metrics`, with the metrics token when given: the status and the text.
pub async fn scrape(url: &str, bearer: Option<&str>) -> (u16, String) {
    let mut r = http().get(format!("{url}/metrics"));
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("send");
    (r.status().as_u16(), r.text().await.expect("text"))
}

/// The value of the series `name{labels}` (exact label text), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The series' value now (0 when absent).
pub async fn metric(url: &str, series: &str) -> f64 {
    sample(&scrape(url, None).await.1, series).unwrap_or(0.0)
}

/// The series' value once `done` holds of it, or its last value after `within` (counters set
/// as a connection closes or a collection runs are polled a little).
pub async fn metric_until(
    url: &str,
    series: &str,
    done: impl Fn(f64) -> bool,
    within: Duration,
) -> f64 {
    let deadline = std::time::Instant::now() + within;
    loop {
        let got = metric(url, series).await;
        if done(got) || std::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
