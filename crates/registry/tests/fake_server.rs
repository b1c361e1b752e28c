//! Behaviour against a FAKE registry (see `support/fake.rs`): only faults and flows a real
//! `docker-registry` cannot be made to produce on demand — 503 storms, `Retry-After`, a hung
//! server, one that answers byte by byte or drops a transfer, a 500 or `BLOB_UNKNOWN` before
//! success, a 401 for good credentials, and a Bearer token service. Every test here says
//! `fake` in its name, and each is bounded in time by short configured timeouts.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imagespec_core::net::NetworkTimeouts;
use imagespec_registry::{
    CredentialSources, Existence, ImageReference, RegistryClient, RegistryError, RetryPolicy,
};
use support::fake::{FakeServer, Reply};

const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn reference(server: &FakeServer) -> ImageReference {
    ImageReference::parse(&format!("{}/team/app:v1", server.host())).expect("reference")
}

fn client(retry: RetryPolicy) -> RegistryClient {
    RegistryClient::builder()
        .retry(retry)
        .build()
        .expect("client")
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(500),
    }
}

fn found() -> Reply {
    Reply::status(200).header("Docker-Content-Digest", DIGEST)
}

/// Answers the first `n` requests with `first`, the rest with `then`.
fn sequence(n: usize, first: Reply, then: Reply) -> impl Fn(&support::fake::Seen) -> Reply {
    let count = Arc::new(AtomicUsize::new(0));
    move |_| {
        if count.fetch_add(1, Ordering::SeqCst) < n {
            first.clone()
        } else {
            then.clone()
        }
    }
}

#[tokio::test]
async fn fake_server_503_storm_then_success_is_retried() {
    let server = FakeServer::start(sequence(2, Reply::status(503), found())).await;
    let existence = client(fast_retry(3)).check(&reference(&server), &[]).await;
    assert_eq!(
        existence,
        Existence::Exists {
            digest: DIGEST.into()
        }
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| {
        r.method == "HEAD"
            && r.path() == "/v2/team/app/manifests/v1"
            && r.header("accept").is_some_and(|a| {
                a.contains("application/vnd.oci.image.index.v1+json")
                    && a.contains("application/vnd.docker.distribution.manifest.v2+json")
            })
    }));
}

#[tokio::test]
async fn fake_server_endless_503_is_unknown_after_bounded_retries() {
    let server = FakeServer::start(|_| Reply::status(503)).await;
    let existence = client(fast_retry(3)).check(&reference(&server), &[]).await;
    let Existence::Unknown { reason } = &existence else {
        panic!("expected Unknown, got {existence:?}");
    };
    assert!(
        reason.contains("503") && reason.contains("3 attempt(s)"),
        "{reason}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn fake_server_404_is_missing_and_400_is_unknown() {
    let server = FakeServer::start(|_| {
        Reply::status(404)
            .body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#)
    })
    .await;
    let c = client(fast_retry(3));
    assert!(c.check(&reference(&server), &[]).await.is_missing());
    // GET path (platforms asked) sees the error body too.
    let amd64 = imagespec_registry::Platform::parse("linux/amd64").expect("platform");
    assert!(c.check(&reference(&server), &[amd64]).await.is_missing());

    let server = FakeServer::start(|_| Reply::status(400)).await;
    assert!(c.check(&reference(&server), &[]).await.is_unknown());
    assert_eq!(server.requests().len(), 1, "4xx is not retried");
}

#[tokio::test]
async fn fake_server_retry_after_is_honoured_up_to_the_cap() {
    let server = FakeServer::start(sequence(
        1,
        Reply::status(429).header("Retry-After", "1"),
        found(),
    ))
    .await;
    let started = Instant::now();
    let patient = RetryPolicy {
        max_delay: Duration::from_secs(2),
        ..fast_retry(3)
    };
    let existence = client(patient).check(&reference(&server), &[]).await;
    assert!(existence.exists(), "{existence:?}");
    // Waited the server's 1 s, not the 10 ms backoff.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );

    let server = FakeServer::start(sequence(
        1,
        Reply::status(503).header("Retry-After", "3600"),
        found(),
    ))
    .await;
    let started = Instant::now();
    let existence = client(fast_retry(3)).check(&reference(&server), &[]).await;
    assert!(existence.exists(), "{existence:?}");
    // An hour is capped at max_delay (500 ms).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Short limits for tests: a fault shows within a second, not after the 15 s default.
fn quick() -> NetworkTimeouts {
    NetworkTimeouts::uniform(Duration::from_millis(300))
}

fn quick_client(retry: RetryPolicy) -> RegistryClient {
    RegistryClient::builder()
        .timeouts(quick())
        .retry(retry)
        .build()
        .expect("client")
}

/// Bounds a test's wait: a hang fails the test instead of stalling the suite.
async fn bounded<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .expect("finished within the bound")
}

#[tokio::test]
async fn fake_server_that_accepts_and_never_answers_times_out_naming_operation_and_host() {
    let server = FakeServer::start(|_| Reply::hang()).await;
    let logs = support::logs::capture();
    let existence = bounded(quick_client(fast_retry(2)).check(&reference(&server), &[])).await;
    let Existence::Unknown { reason } = &existence else {
        panic!("expected Unknown, got {existence:?}");
    };
    let expected = format!(
        "checking manifest team/app:v1 on {}: no answer within 0.3 s, 2 attempt(s)",
        server.host()
    );
    assert!(reason.contains(&expected), "{reason}");
    assert!(reason.contains("IMAGESPEC_NETWORK_TIMEOUT"), "{reason}");
    assert_eq!(server.requests().len(), 2);
    // The retry was visible: a warning naming host, operation, attempt and wait.
    let warnings = logs.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&format!(
            "{}: checking manifest team/app:v1: no answer within 0.3 s; retrying in 0.01 s (attempt 1 of 2)",
            server.host()
        )),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn fake_server_answering_byte_by_byte_times_out() {
    // Headers one byte every 50 ms: about 5 s for the head, far beyond the 0.3 s limit.
    let server = FakeServer::start(|_| found().trickle_head(Duration::from_millis(50))).await;
    let existence = bounded(quick_client(fast_retry(1)).check(&reference(&server), &[])).await;
    let Existence::Unknown { reason } = &existence else {
        panic!("expected Unknown, got {existence:?}");
    };
    assert!(reason.contains("no answer within 0.3 s"), "{reason}");

    // A document body trickled byte by byte is stuck too, even though bytes keep coming.
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let server = FakeServer::start(move |_| {
        Reply::status(200)
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
            .body(manifest.to_vec())
            .trickle_body(Duration::from_millis(50))
    })
    .await;
    let err = bounded(quick_client(fast_retry(1)).get_manifest(&reference(&server)))
        .await
        .expect_err("trickled body");
    let text = err.to_string();
    assert!(
        text.contains("reading manifest `") && text.contains("no answer within 0.3 s"),
        "{text}"
    );
    assert!(matches!(err, RegistryError::TimedOut { .. }), "{err:?}");
}

#[tokio::test]
async fn fake_server_500_then_ok_on_manifest_put_is_retried() {
    let server = FakeServer::start(sequence(
        1,
        Reply::status(500),
        Reply::status(201).header("Docker-Content-Digest", DIGEST),
    ))
    .await;
    let logs = support::logs::capture();
    let digest = bounded(quick_client(fast_retry(3)).put_manifest(
        &reference(&server),
        "application/vnd.oci.image.manifest.v1+json",
        b"{}".to_vec(),
    ))
    .await
    .expect("pushed on the second try");
    assert!(digest.starts_with("sha256:"));
    assert_eq!(server.requests().len(), 2);
    let warnings = logs.warnings();
    assert!(
        warnings.len() == 1
            && warnings[0].contains("pushing manifest team/app:v1: answered 500; retrying"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn fake_server_manifest_blob_unknown_right_after_a_push_is_retried() {
    let unknown = Reply::status(400).body(
        r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
    );
    let server = FakeServer::start(sequence(2, unknown.clone(), Reply::status(201))).await;
    bounded(quick_client(fast_retry(3)).put_manifest(
        &reference(&server),
        "application/vnd.oci.image.manifest.v1+json",
        b"{}".to_vec(),
    ))
    .await
    .expect("pushed once the blob is visible");
    assert_eq!(server.requests().len(), 3);

    // Bounded: a blob that never appears is an error after the policy's tries.
    let server = FakeServer::start(move |_| unknown.clone()).await;
    let err = bounded(quick_client(fast_retry(2)).put_manifest(
        &reference(&server),
        "application/vnd.oci.image.manifest.v1+json",
        b"{}".to_vec(),
    ))
    .await
    .expect_err("never visible");
    assert!(err.is_blob_unknown(), "{err:?}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn fake_server_that_drops_mid_blob_names_the_blob_and_host() {
    let blob = vec![7u8; 4096];
    let digest = imagespec_registry::manifest::sha256_digest(&blob);
    let server =
        FakeServer::start(move |_| Reply::status(200).body(blob.clone()).truncate(1000)).await;
    let err = bounded(quick_client(fast_retry(1)).get_blob(&reference(&server), &digest, 1 << 20))
        .await
        .expect_err("dropped");
    let text = err.to_string();
    assert!(
        text.contains(&server.host()) && text.contains(&format!("reading blob `{digest}`")),
        "{text}"
    );

    // An upload the server drops without answering: the operation and host are named.
    let server = FakeServer::start(|req| {
        if req.method == "HEAD" {
            Reply::status(404)
        } else if req.method == "POST" {
            Reply::status(202).header("Location", "/v2/team/app/blobs/uploads/1")
        } else {
            Reply::dropped()
        }
    })
    .await;
    let err = bounded(quick_client(fast_retry(2)).push_blob(&reference(&server), vec![1u8; 2048]))
        .await
        .expect_err("dropped upload");
    let text = err.to_string();
    assert!(
        text.contains(&server.host())
            && text.contains("uploading a blob to team/app")
            && text.contains("2 attempt(s)"),
        "{text}"
    );
}

#[tokio::test]
async fn fake_server_401_on_good_credentials_is_denied_naming_the_source() {
    // The fake refuses everyone, with the right password too: as a registry whose htpasswd
    // file lost the user would.
    let server = FakeServer::start(|_| {
        Reply::status(401).header("WWW-Authenticate", r#"Basic realm="fake""#)
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let client = client_with_config(
        &dir,
        serde_json::json!({"auths": {(server.host()): {"username": "user", "password": "S3cret-Pass"}}}),
    );
    let existence = bounded(client.check(&reference(&server), &[])).await;
    let Existence::Denied { reason } = &existence else {
        panic!("expected Denied, got {existence:?}");
    };
    let config = dir.path().join("config.json");
    assert!(
        reason.contains("were rejected")
            && reason.contains(&config.display().to_string())
            && !reason.contains("S3cret-Pass"),
        "{reason}"
    );

    // No credentials at all: denied too, saying none were found and where it looked.
    let existence = bounded(quick_client(fast_retry(1)).check(&reference(&server), &[])).await;
    let Existence::Denied { reason } = &existence else {
        panic!("expected Denied, got {existence:?}");
    };
    assert!(reason.contains("no credentials were found"), "{reason}");
}

/// A fake registry with a Bearer token service at `/token` on the same server. The token
/// service accepts Basic `user:pass` (or anyone, if `anonymous`) or the OAuth2 refresh-token
/// grant with `refresh-me`, and hands out `tok-123`.
async fn bearer_registry(anonymous: bool) -> FakeServer {
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("user:pass")
    );
    let realm_holder: Arc<std::sync::Mutex<String>> = Arc::default();
    let realm = realm_holder.clone();
    let server = FakeServer::start(move |req| {
        if req.path() == "/token" {
            let body = String::from_utf8_lossy(&req.body);
            let ok = anonymous
                || req.header("authorization") == Some(basic.as_str())
                || (req.method == "POST"
                    && body.contains("grant_type=refresh_token")
                    && body.contains("refresh_token=refresh-me"));
            return if ok {
                Reply::status(200).body(r#"{"token":"tok-123","expires_in":300}"#)
            } else {
                Reply::status(401)
            };
        }
        if req.header("authorization") == Some("Bearer tok-123") {
            return found();
        }
        let realm = realm.lock().map(|r| r.clone()).unwrap_or_default();
        Reply::status(401).header(
            "WWW-Authenticate",
            &format!(
                r#"Bearer realm="{realm}",service="fake-registry",scope="repository:team/app:pull""#
            ),
        )
    })
    .await;
    if let Ok(mut r) = realm_holder.lock() {
        *r = format!("http://{}/token", server.host());
    }
    server
}

fn client_with_config(dir: &tempfile::TempDir, json: serde_json::Value) -> RegistryClient {
    let path = dir.path().join("config.json");
    std::fs::write(&path, json.to_string()).expect("config");
    RegistryClient::builder()
        .credentials(CredentialSources::none().with_explicit_file(path))
        .retry(fast_retry(2))
        .build()
        .expect("client")
}

#[tokio::test]
async fn fake_server_bearer_token_flow_with_basic_credentials() {
    let server = bearer_registry(false).await;
    let dir = tempfile::tempdir().expect("tmp");
    let client = client_with_config(
        &dir,
        serde_json::json!({"auths": {(server.host()): {"username": "user", "password": "pass"}}}),
    );
    let existence = client.check(&reference(&server), &[]).await;
    assert_eq!(
        existence,
        Existence::Exists {
            digest: DIGEST.into()
        }
    );
    // The token is cached: a second check costs one request.
    let before = server.requests().len();
    assert!(client.check(&reference(&server), &[]).await.exists());
    assert_eq!(server.requests().len(), before + 1);

    let token_request = server
        .requests()
        .into_iter()
        .find(|r| r.path() == "/token")
        .expect("token requested");
    assert_eq!(token_request.method, "GET");
    assert!(
        token_request.target.contains("service=fake-registry"),
        "{}",
        token_request.target
    );
    assert!(
        token_request
            .target
            .contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{}",
        token_request.target
    );
}

#[tokio::test]
async fn fake_server_bearer_with_wrong_password_is_denied() {
    let server = bearer_registry(false).await;
    let dir = tempfile::tempdir().expect("tmp");
    let client = client_with_config(
        &dir,
        serde_json::json!({"auths": {(server.host()): {"username": "user", "password": "Not-The-Pass"}}}),
    );
    let existence = client.check(&reference(&server), &[]).await;
    let Existence::Denied { reason } = &existence else {
        panic!("expected Denied, got {existence:?}");
    };
    assert!(
        reason.contains("were rejected") && !reason.contains("Not-The-Pass"),
        "{reason}"
    );
}

#[tokio::test]
async fn fake_server_bearer_anonymous_token() {
    let server = bearer_registry(true).await;
    let existence = client(fast_retry(2)).check(&reference(&server), &[]).await;
    assert!(existence.exists(), "{existence:?}");
    let token_request = server
        .requests()
        .into_iter()
        .find(|r| r.path() == "/token")
        .expect("token requested");
    assert!(token_request.header("authorization").is_none());
}

#[tokio::test]
async fn fake_server_identity_token_uses_refresh_grant() {
    let server = bearer_registry(false).await;
    let dir = tempfile::tempdir().expect("tmp");
    let client = client_with_config(
        &dir,
        serde_json::json!({"auths": {(server.host()): {"identitytoken": "refresh-me"}}}),
    );
    let existence = client.check(&reference(&server), &[]).await;
    assert!(existence.exists(), "{existence:?}");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path() == "/token" && r.method == "POST")
    );
}

#[tokio::test]
async fn fake_server_head_without_digest_header_falls_back_to_get() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},"layers":[]}"#;
    let server = FakeServer::start(move |_| {
        Reply::status(200)
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.to_vec())
    })
    .await;
    let existence = client(fast_retry(2)).check(&reference(&server), &[]).await;
    assert_eq!(
        existence,
        Existence::Exists {
            digest: imagespec_registry::manifest::sha256_digest(manifest)
        }
    );
}
