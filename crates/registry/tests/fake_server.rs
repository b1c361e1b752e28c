//! Behaviour against a FAKE registry (see `support/fake.rs`): only faults and flows a real
//! `docker-registry` cannot be made to produce on demand — 503 storms, `Retry-After`, a hung
//! server, and a Bearer token service. Every test here says `fake` in its name.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imagespec_registry::{
    CredentialSources, Existence, ImageReference, RegistryClient, RetryPolicy,
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

#[tokio::test]
async fn fake_server_that_hangs_times_out_as_unknown() {
    let server = FakeServer::start(|_| Reply::hang()).await;
    let client = RegistryClient::builder()
        .request_timeout(Duration::from_millis(300))
        .retry(fast_retry(2))
        .build()
        .expect("client");
    let started = Instant::now();
    let existence = client.check(&reference(&server), &[]).await;
    let Existence::Unknown { reason } = &existence else {
        panic!("expected Unknown, got {existence:?}");
    };
    assert!(
        reason.contains("timed out") && reason.contains("2 attempt(s)"),
        "{reason}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
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
async fn fake_server_bearer_with_wrong_password_is_unknown() {
    let server = bearer_registry(false).await;
    let dir = tempfile::tempdir().expect("tmp");
    let client = client_with_config(
        &dir,
        serde_json::json!({"auths": {(server.host()): {"username": "user", "password": "Not-The-Pass"}}}),
    );
    let existence = client.check(&reference(&server), &[]).await;
    let Existence::Unknown { reason } = &existence else {
        panic!("expected Unknown, got {existence:?}");
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
