//! The Engine-API push against registry faults: a FAKE fault proxy on 127.0.0.1 (port 0) in
//! front of the real dev registry (htpasswd auth), used only for the fault a real registry
//! cannot produce on demand: a `500` to a manifest PUT, as the dev registry gave 3 of 16
//! concurrent pushes. The push goes through the real Docker engine. Needs `scripts/dev-env.sh`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use common::*;
use imagespec_builder_local::{BuildJob, EngineChoice, LocalBuilder};
use imagespec_core::build::BuildEvent;
use tokio_util::sync::CancellationToken;

/// The FAKE proxy's state: where the real registry is, and how many manifest PUTs still fail.
struct Proxy {
    upstream: String,
    listen: String,
    fail_manifest_puts: AtomicUsize,
    manifest_puts: AtomicUsize,
    http: reqwest::Client,
}

const HOP_BY_HOP: [&str; 5] = [
    "host",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "content-length",
];

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if parts.method == Method::PUT && path.contains("/manifests/") {
        proxy.manifest_puts.fetch_add(1, Ordering::SeqCst);
        let left = proxy.fail_manifest_puts.load(Ordering::SeqCst);
        if left > 0 {
            proxy.fail_manifest_puts.store(left - 1, Ordering::SeqCst);
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"errors":[{"code":"UNKNOWN","message":"fake: injected failure"}]}"#,
                ))
                .unwrap_or_default();
        }
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut upstream = proxy
        .http
        .request(method, format!("http://{}{path}", proxy.upstream))
        .body(bytes.to_vec());
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    let Ok(answer) = upstream.send().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        // Upload locations point at the registry itself; keep the client on the proxy.
        let value =
            String::from_utf8_lossy(value.as_bytes()).replace(&proxy.upstream, &proxy.listen);
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response = response.header(n, v);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(body)).unwrap_or_default()
}

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .unwrap_or_default()
}

async fn start_proxy(upstream: &str, fail_manifest_puts: usize) -> Arc<Proxy> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake proxy");
    let listen = listener.local_addr().expect("addr").to_string();
    let proxy = Arc::new(Proxy {
        upstream: upstream.to_string(),
        listen,
        fail_manifest_puts: AtomicUsize::new(fail_manifest_puts),
        manifest_puts: AtomicUsize::new(0),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client"),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    proxy
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_proxy_docker_push_retries_a_500_on_the_manifest_and_succeeds() {
    let (registry, user, password) = registry();
    let proxy = start_proxy(&registry, 1).await;
    // Credentials for the proxy's address: Docker answers its Basic challenge (passed
    // through from the real registry) with them.
    let login = docker_config(&proxy.listen, &user, &password);
    let b = builder(EngineChoice::Docker)
        .await
        .with_credentials(credentials_in(login.path()));
    let image = format!("{}/imagespec-test/push-retry-{}:t1", proxy.listen, unique());
    let _cleanup = Cleanup(EngineChoice::Docker, image.clone());
    build_small(&b, &image).await;

    let (events, seen) = recorder();
    let digest = tokio::time::timeout(
        Duration::from_secs(300),
        b.push_image(&image, None, &events, &CancellationToken::new()),
    )
    .await
    .expect("the push finishes within the bound")
    .unwrap_or_else(|e| panic!("the push failed despite the retry: {e}"));
    assert!(
        digest.is_some_and(|d| d.starts_with("sha256:")),
        "a digest after the push"
    );
    assert_eq!(
        proxy.manifest_puts.load(Ordering::SeqCst),
        2,
        "the manifest PUT failed once, then was sent again"
    );
    let retried = seen.lock().expect("events").iter().any(
        |e| matches!(e, BuildEvent::Status { message } if message.contains("retrying the push")),
    );
    assert!(retried, "the retry was imagespec's and it was reported");

    // The image is really in the registry (asked directly, not through the proxy).
    let direct = docker_config(&registry, &user, &password);
    let client = imagespec_registry::RegistryClient::builder()
        .credentials(credentials_in(direct.path()))
        .build()
        .expect("registry client");
    let reference =
        imagespec_registry::ImageReference::parse(&image.replacen(&proxy.listen, &registry, 1))
            .expect("reference");
    assert!(client.check(&reference, &[]).await.exists());
}
