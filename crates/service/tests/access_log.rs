//! The access log: one line per request with method, path (no query), status, duration and
//! project, never the token; read through the service's own JSON log subscriber.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use imagespec_service::logging::{ACCESS_TARGET, LogFormat, subscriber};

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

// A current-thread runtime: the service's tasks run on this thread, under the test's
// subscriber.
#[tokio::test(flavor = "current_thread")]
async fn every_request_gets_an_access_line_without_query_or_token() {
    let buffer = Buffer::default();
    let _guard = tracing::subscriber::set_default(subscriber(
        LogFormat::Json,
        "info",
        false,
        buffer.clone(),
    ));
    let svc = TestService::start(test_builder(Duration::ZERO)).await;
    let r = get(
        &svc.url,
        "/v1/builds/no-such-build?secret=hunter2-in-the-query",
        TOKEN_A,
    )
    .await;
    assert_eq!(r.status().as_u16(), 404);
    let r = http()
        .get(format!("{}/v1/health", svc.url))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let r = get(&svc.url, "/v1/builds/x", "not-a-valid-token-at-all").await;
    assert_eq!(r.status().as_u16(), 401);

    let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(!text.contains(TOKEN_A), "the token never lands in a log");
    assert!(!text.contains("not-a-valid-token"), "nor a wrong one");
    assert!(!text.contains("hunter2"), "nor the query");
    assert!(!text.contains('\u{1b}'), "no colour codes");
    let access: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON object per line"))
        .filter(|v| v["target"] == ACCESS_TARGET)
        .collect();
    let line = |path: &str| {
        access
            .iter()
            .find(|v| v["path"] == path)
            .unwrap_or_else(|| panic!("an access line for {path}: {text}"))
    };
    let build = line("/v1/builds/no-such-build");
    assert_eq!(build["method"], "GET");
    assert_eq!(build["status"], 404);
    assert_eq!(build["project"], "project-a");
    assert!(build["duration_ms"].is_u64(), "{build}");
    assert!(
        build["timestamp"].as_str().is_some_and(|t| t.contains('T')),
        "timestamped: {build}"
    );
    assert_eq!(line("/v1/health")["project"], "-");
    let refused = line("/v1/builds/x");
    assert_eq!(
        (refused["status"].as_u64(), refused["project"].as_str()),
        (Some(401), Some("-"))
    );
}
