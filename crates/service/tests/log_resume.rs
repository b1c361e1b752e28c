//! Log streaming survives dropped connections: a small **fake** proxy (`CuttingProxy`) cuts
//! the log stream in the middle of an event, twice; the client resumes from the last offset it
//! saw, and gets every line exactly once, in order.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use imagespec_core::build::{BuildEvent, EngineOptions};

#[tokio::test]
async fn fake_proxy_cuts_the_log_stream_mid_event_and_the_client_resumes_without_loss() {
    let builder = Arc::new(ChattyBuilder {
        lines: 300,
        pause: Duration::from_millis(2),
    });
    let svc = TestService::start(builder).await;
    let proxy = proxy::CuttingProxy::start(svc.running().addr(), 2, 3000).await;
    let dir = tempfile::tempdir().expect("tmp");
    let loaded = project(dir.path(), "chatty");
    let (sink, events) = collecting_sink();
    let outcome = engine(remote(&proxy.url(), TOKEN_A))
        .ensure(
            &loaded,
            &EngineOptions {
                events: sink,
                ..options()
            },
        )
        .await
        .expect("builds despite the cuts");
    assert_eq!(
        outcome.output.expect("output").digest.as_deref(),
        Some("sha256:feed")
    );
    assert_eq!(
        proxy.stats.cuts.load(Ordering::SeqCst),
        2,
        "the proxy did cut the stream"
    );
    let lines: Vec<String> = events
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Log { line } => Some(line.clone()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..300).map(|i| format!("line {i:04}")).collect();
    assert_eq!(lines, expected, "every line once, in order");
}

#[tokio::test]
async fn the_stream_resumes_from_last_event_id_or_offset() {
    let svc = TestService::start(Arc::new(ChattyBuilder {
        lines: 20,
        pause: Duration::ZERO,
    }))
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let loaded = project(dir.path(), "offsets");
    let (sink, events) = collecting_sink();
    engine(remote(&svc.url, TOKEN_A))
        .ensure(
            &loaded,
            &EngineOptions {
                events: sink,
                ..options()
            },
        )
        .await
        .expect("builds");
    let id = events
        .lock()
        .expect("lock")
        .iter()
        .find_map(|e| match e {
            BuildEvent::Status { message } if message.starts_with("build ") => {
                message.split(' ').nth(1).map(str::to_string)
            }
            _ => None,
        })
        .expect("id");
    let read = |query: &'static str, last: Option<&'static str>| {
        let mut r = http()
            .get(format!("{}/v1/builds/{id}/logs{query}", svc.url))
            .bearer_auth(TOKEN_A);
        if let Some(l) = last {
            r = r.header("last-event-id", l);
        }
        async move { r.send().await.expect("send").text().await.expect("body") }
    };
    let all = read("", None).await;
    let from_offset = read("?offset=10", None).await;
    let from_header = read("", Some("9")).await;
    assert!(all.contains("id: 0\n") && all.contains("event: end\n"));
    assert!(from_offset.starts_with("id: 10\n"), "{from_offset}");
    assert_eq!(from_offset, from_header);
    assert!(
        all.ends_with(&from_offset),
        "a resumed stream is the tail of the full one"
    );
    let bad = http()
        .get(format!("{}/v1/builds/{id}/logs?offset=-1", svc.url))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST);
}
