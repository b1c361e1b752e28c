//! Build secrets on the service: the client sends their values with the build request, the
//! service hands exactly those to the worker's builder and writes them nowhere (not the
//! database, the blob store, the events, its log), and refuses a request whose values do not
//! match the spec's mounts.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use imagespec_core::build::{SecretBytes, SecretValues};
use imagespec_protocol::{BuildState, SubmitBuild};
use reqwest::StatusCode;

/// Every file below `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Collects every log line of the service (all levels) while the guard lives; the tests run
/// on one thread, where the service's tasks run too.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn secrets_reach_the_worker_and_are_written_nowhere() {
    let (logs, _guard) = capture_logs();
    let builder = test_builder(std::time::Duration::ZERO);
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let value = format!("s3cret-{}-value", std::process::id());
    write(dir.path(), "token.txt", &value);
    let loaded = project_with(
        dir.path(),
        "with-secret",
        "pip_secret_mounts:\n  - [token.txt, /run/secrets/tok]\n",
    )
    .with_runtime(imagespec_core::plan::runtime::Runtime::None);
    let (sink, events) = collecting_sink();
    let outcome = engine(remote(&svc.url, TOKEN_A))
        .ensure(
            &loaded,
            &imagespec_core::build::EngineOptions {
                events: sink,
                ..options()
            },
        )
        .await
        .expect("builds with its secret");
    assert!(outcome.image.starts_with(NAMESPACE_A), "{}", outcome.image);

    let builds = builder.builds();
    assert_eq!(builds.len(), 1);
    assert_eq!(
        builds[0].secrets,
        SecretValues::Supplied(Arc::new(BTreeMap::from([(
            "pip_secret_0".to_string(),
            SecretBytes::new(value.as_bytes())
        )]))),
        "the client's value, and only the service's supplied values"
    );

    // Nowhere on the service's disk (database, blobs, anything), in plain or base64.
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&value);
    for needle in [value.as_str(), encoded.as_str()] {
        let found = files_containing(svc.data.path(), needle.as_bytes());
        assert!(found.is_empty(), "the secret is in {found:?}");
        let text = String::from_utf8_lossy(&logs.0.lock().expect("lock")).to_string();
        assert!(!text.is_empty(), "the log was captured");
        assert!(!text.contains(needle), "the secret is in the service's log");
        let events = format!("{:?}", events.lock().expect("lock"));
        assert!(!events.contains(needle), "the secret is in the events");
    }
    // The file was not uploaded either: the spec the service got names the secret by id.
    assert!(
        !files_containing(svc.data.path(), b"token.txt")
            .iter()
            .any(|f| f.contains("blobs")),
        "a blob names the secret file"
    );
}

/// A raw submission of a spec that mounts one secret, with `secrets` as given.
async fn with_secrets(
    svc: &TestService,
    dir: &Path,
    secrets: &[(&str, &str)],
) -> reqwest::Response {
    let body = prepared_submission_with(
        &svc.url,
        TOKEN_A,
        dir,
        "mounts",
        "pip_secret_mounts:\n  - [env:PIP_TOKEN, /run/secrets/tok]\n",
    )
    .await;
    let body = SubmitBuild {
        secrets: secrets
            .iter()
            .map(|(k, v)| (k.to_string(), SecretBytes::new(v.as_bytes())))
            .collect(),
        ..body
    };
    submit(&svc.url, TOKEN_A, &body).await
}

#[tokio::test]
async fn a_missing_or_unmounted_secret_value_is_refused_naming_it() {
    let builder = test_builder(std::time::Duration::ZERO);
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");

    let (status, p) = problem(with_secrets(&svc, dir.path(), &[]).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.detail.contains("`pip_secret_mounts[0]`") && p.detail.contains("secrets.pip_secret_0"),
        "{}",
        p.detail
    );

    let extra = [("pip_secret_0", "value-0"), ("pip_secret_7", "value-7")];
    let (status, p) = problem(with_secrets(&svc, dir.path(), &extra).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.detail.contains("`secrets.pip_secret_7`"), "{}", p.detail);
    assert!(!p.detail.contains("value-"), "{}", p.detail);
    assert!(builder.builds().is_empty());

    // Exactly the mounted ones: queued and built, and the stored request holds no value.
    let r = with_secrets(&svc, dir.path(), &[("pip_secret_0", "value-0")]).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r
        .json::<imagespec_protocol::BuildInfo>()
        .await
        .expect("info")
        .id;
    assert_eq!(
        wait_finished(&svc.url, TOKEN_A, &id).await.status,
        BuildState::Succeeded
    );
    assert!(files_containing(svc.data.path(), b"value-0").is_empty());
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode("value-0");
    assert!(files_containing(svc.data.path(), encoded.as_bytes()).is_empty());
}
