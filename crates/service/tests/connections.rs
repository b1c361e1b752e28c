//! Slow and idle clients: a slow-loris header, an upload that stalls, a flood of connections
//! from one address. Raw TCP clients against the real service, with short configured timeouts
//! (1 s); nothing here asserts how fast anything is, only what happens.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use imagespec_service::ServiceConfig;
use imagespec_service::connections::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A guard against a hang, far above the 1 s timeouts under test (not a speed assertion).
const HANG: Duration = Duration::from_secs(60);

fn limits(header_read: u64, body_idle: u64, max_per_ip: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_read: Duration::from_secs(header_read),
        body_idle: Duration::from_secs(body_idle),
        max: 64,
        max_per_ip,
    }
}

async fn start(limits: ConnectionLimits) -> TestService {
    let config = ServiceConfig {
        connections: limits,
        ..config(Path::new("."))
    };
    let data = tempfile::tempdir().expect("tmp");
    TestService::start_with(data, config, test_builder(Duration::ZERO)).await
}

/// Everything the service sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(HANG, stream.read_to_end(&mut out))
        .await
        .expect("the service closes the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

fn uploads_in_progress(svc: &TestService) -> usize {
    std::fs::read_dir(svc.data.path().join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn upload_head(digest: &str, length: usize) -> String {
    format!(
        "PUT /v1/blobs/{digest} HTTP/1.1\r\nhost: service\r\nauthorization: Bearer {TOKEN_A}\r\ncontent-length: {length}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_half_sent_header_is_closed_after_the_header_timeout() {
    let svc = start(limits(1, 30, 16)).await;
    let mut loris = TcpStream::connect(svc.running().addr())
        .await
        .expect("connect");
    loris
        .write_all(b"GET /v1/health HTTP/1.1\r\nhost: service\r\nx-slow: ")
        .await
        .expect("half a header");
    // It never sends the rest; the service must hang up on it.
    read_until_closed(&mut loris).await;
    assert_eq!(
        metric_until(
            &svc.url,
            "imagespec_requests_timed_out_total{phase=\"header\"}",
            |v| v == 1.0,
            Duration::from_secs(2)
        )
        .await,
        1.0
    );
    assert_eq!(uploads_in_progress(&svc), 0);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_and_counted_apart() {
    let svc = start(limits(1, 30, 16)).await;
    let mut idle = TcpStream::connect(svc.running().addr())
        .await
        .expect("connect");
    idle.write_all(b"GET /v1/health HTTP/1.1\r\nhost: service\r\n\r\n")
        .await
        .expect("a whole request");
    // The answer, then nothing more from the client: the service closes the connection.
    let answer = read_until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let series = |phase: &str| format!("imagespec_requests_timed_out_total{{phase=\"{phase}\"}}");
    assert_eq!(
        metric_until(
            &svc.url,
            &series("idle"),
            |v| v == 1.0,
            Duration::from_secs(2)
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(&svc.url, &series("header")).await,
        0.0,
        "not counted as a slow client"
    );
}

#[tokio::test]
async fn an_upload_that_stalls_is_aborted_and_leaves_no_temporary_file() {
    let svc = start(limits(5, 1, 16)).await;
    let content = vec![b'x'; 100_000];
    let digest = digest_of(&content);
    let mut slow = TcpStream::connect(svc.running().addr())
        .await
        .expect("connect");
    slow.write_all(upload_head(&digest, content.len()).as_bytes())
        .await
        .expect("head");
    slow.write_all(&content[..1000]).await.expect("a little");
    // The upload is under way (its temporary file exists) ...
    for _ in 0..200 {
        if uploads_in_progress(&svc) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(uploads_in_progress(&svc), 1, "the upload started");
    // ... then the client stalls: the service answers, hangs up and removes the file.
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("stalled"), "{answer}");
    assert!(answer.contains("body_idle_seconds"), "{answer}");
    assert_eq!(uploads_in_progress(&svc), 0, "the temporary file is gone");
    let has = authed(
        reqwest::Method::POST,
        &svc.url,
        "/v1/blobs/missing",
        TOKEN_A,
    )
    .json(&serde_json::json!({"digests": [digest]}))
    .send()
    .await
    .expect("missing")
    .json::<serde_json::Value>()
    .await
    .expect("json");
    assert_eq!(has["missing"][0], digest.as_str(), "nothing was stored");
    assert_eq!(
        metric_until(
            &svc.url,
            "imagespec_requests_timed_out_total{phase=\"body\"}",
            |v| v == 1.0,
            Duration::from_secs(2)
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_slow_upload_that_keeps_sending_succeeds() {
    // Each pause is below the 1 s idle limit; the whole upload takes longer than both limits.
    let svc = start(limits(1, 1, 16)).await;
    let content: Vec<u8> = (0..8000u32).map(|i| (i % 251) as u8).collect();
    let digest = digest_of(&content);
    let mut slow = TcpStream::connect(svc.running().addr())
        .await
        .expect("connect");
    slow.write_all(upload_head(&digest, content.len()).as_bytes())
        .await
        .expect("head");
    for chunk in content.chunks(1000) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        slow.write_all(chunk).await.expect("chunk");
    }
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(HANG, slow.read(&mut answer))
        .await
        .expect("an answer")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(uploads_in_progress(&svc), 0);
    let hex = &digest["sha256:".len()..];
    let stored = svc
        .data
        .path()
        .join("blobs/project-a/sha256")
        .join(&hex[..2])
        .join(hex);
    assert_eq!(std::fs::read(stored).expect("stored"), content);
}

#[tokio::test]
async fn connections_beyond_the_per_address_cap_are_refused_with_503() {
    let svc = start(limits(30, 30, 2)).await;
    let addr = svc.running().addr();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        // A request under way keeps the connection open (and admitted).
        c.write_all(b"GET /v1/health HTTP/1.1\r\nhost: s\r\n")
            .await
            .expect("half");
        held.push(c);
    }
    // Accepted in order: both held connections are counted before this one.
    let mut third = TcpStream::connect(addr).await.expect("connect");
    let answer = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too-many-connections"), "{answer}");
    assert!(answer.contains("from your address"), "{answer}");
    // A freed place is taken again.
    drop(held);
    let mut ok = false;
    for _ in 0..100 {
        if let Ok(r) = http().get(format!("{}/v1/health", svc.url)).send().await
            && r.status() == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "a new connection is admitted once the held ones closed");
    assert!(
        metric(
            &svc.url,
            "imagespec_connections_refused_total{limit=\"max_per_ip\"}"
        )
        .await
            >= 1.0
    );
}
