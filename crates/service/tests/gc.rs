//! Garbage collection on real files in a temporary data directory: builds and logs by age and
//! size, blobs least recently used first, and never what a queued or running build needs.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use imagespec_protocol::{BuildState, WireEvent};
use imagespec_service::ServiceConfig;
use imagespec_service::blobs::BlobStore;
use imagespec_service::gc::{self, GcConfig};
use imagespec_service::store::{BuildRow, Store};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn off() -> GcConfig {
    GcConfig {
        interval: None,
        keep_builds: None,
        keep_blobs: None,
        max_blob_bytes: None,
        max_log_bytes: None,
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

fn row(id: &str, request: &str, created: SystemTime) -> BuildRow {
    BuildRow {
        id: id.into(),
        project: "p".into(),
        target: format!("{id}:t"),
        image: format!("r/p/{id}:t"),
        status: BuildState::Queued,
        request: request.into(),
        worker: None,
        digest: None,
        error: None,
        events: 0,
        created_at: unix(created),
        started_at: None,
        finished_at: None,
    }
}

/// A build with a log of `lines` 100-byte lines, finished at `finished` unless `None`
/// (then it is running).
async fn build_with_log(store: &Store, id: &str, lines: usize, finished: Option<SystemTime>) {
    let created = finished.unwrap_or_else(SystemTime::now) - HOUR;
    store.insert(row(id, "{}", created)).await.expect("insert");
    store
        .set_running(id, "w", unix(created))
        .await
        .expect("running");
    let log = (0..lines)
        .map(|_| WireEvent::Log {
            line: "x".repeat(100),
        })
        .collect();
    store.append_events(id, 0, log).await.expect("events");
    if let Some(at) = finished {
        store
            .finish(id, BuildState::Succeeded, None, None, unix(at))
            .await
            .expect("finish");
    }
}

async fn log_len(store: &Store, id: &str) -> usize {
    store
        .events_from(id, 0, 10_000)
        .await
        .expect("events")
        .len()
}

#[tokio::test]
async fn old_builds_go_with_their_logs_and_oversized_logs_go_oldest_first_never_a_running_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("service.db")).expect("db");
    let blobs = BlobStore::new(dir.path().join("blobs"), dir.path().join("tmp"));
    let now = SystemTime::now();
    build_with_log(&store, "ancient", 5, Some(now - 40 * DAY)).await;
    // Started 40 days ago and still running: neither it nor its log ever goes.
    build_with_log(&store, "running", 50, None).await;
    store
        .insert(row("queued-old", "{}", now - 40 * DAY))
        .await
        .expect("queued");
    build_with_log(&store, "f1", 10, Some(now - 3 * DAY)).await;
    build_with_log(&store, "f2", 10, Some(now - 2 * DAY)).await;
    build_with_log(&store, "f3", 10, Some(now - DAY)).await;

    let by_age = GcConfig {
        keep_builds: Some(30 * DAY),
        ..off()
    };
    let report = gc::collect(&store, &blobs, &by_age, now).await.expect("gc");
    assert_eq!(report.builds, 1);
    assert!(store.get("ancient", None).await.expect("get").is_none());
    assert_eq!(log_len(&store, "ancient").await, 0);
    for active in ["running", "queued-old"] {
        assert!(
            store.get(active, None).await.expect("get").is_some(),
            "{active}"
        );
    }

    // Over the log cap by a little more than f1's log: f1 and f2 (the oldest finished) go.
    let f1 = store
        .finished_logs()
        .await
        .expect("logs")
        .into_iter()
        .find(|l| l.build_id == "f1")
        .expect("f1 has a log");
    let total = store.log_bytes().await.expect("bytes");
    let by_size = GcConfig {
        max_log_bytes: Some(total - f1.bytes - 1),
        ..off()
    };
    let report = gc::collect(&store, &blobs, &by_size, now)
        .await
        .expect("gc");
    assert_eq!((report.logs, report.builds), (2, 0));
    assert_eq!(log_len(&store, "f1").await, 0);
    assert_eq!(log_len(&store, "f2").await, 0);
    assert_eq!(log_len(&store, "f3").await, 10);
    assert_eq!(
        log_len(&store, "running").await,
        50,
        "the biggest log is running"
    );
    let f1 = store
        .get("f1", None)
        .await
        .expect("get")
        .expect("f1's status stays");
    assert_eq!(f1.status, BuildState::Succeeded);

    // A cap below the running build's log alone: every finished log goes, the running one not.
    let tiny = GcConfig {
        max_log_bytes: Some(1),
        ..off()
    };
    gc::collect(&store, &blobs, &tiny, now).await.expect("gc");
    assert_eq!(log_len(&store, "f3").await, 0);
    assert_eq!(log_len(&store, "running").await, 50);
}

fn set_used(blobs: &BlobStore, digest: &str, at: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(blobs.path("p", digest))
        .expect("blob")
        .set_modified(at)
        .expect("mtime");
}

async fn put(blobs: &BlobStore, n: u8) -> String {
    let content = vec![n; 1000];
    let digest = digest_of(&content);
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(content))]);
    blobs.put("p", &digest, body, 10_000).await.expect("put");
    digest
}

#[tokio::test]
async fn blobs_go_least_recently_used_first_except_referenced_or_just_used_ones() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&dir.path().join("service.db")).expect("db");
    let blobs = BlobStore::new(dir.path().join("blobs"), dir.path().join("tmp"));
    let now = SystemTime::now();
    let mut d = Vec::new();
    for n in 0..6 {
        d.push(put(&blobs, n).await);
    }
    // d0: the oldest, but a queued build references it.
    // d1, d2, d3: old, in that order. d4: older still, but just asked about. d5: fresh.
    for (i, age) in [
        (0, 6 * HOUR),
        (1, 4 * HOUR),
        (2, 3 * HOUR),
        (3, 2 * HOUR),
        (4, 5 * HOUR),
    ] {
        set_used(&blobs, &d[i], now - age);
    }
    assert!(blobs.has("p", &d[4]).await, "asking about a blob uses it");
    let request = serde_json::json!({
        "spec": {"name": "x"},
        "target": "x:t",
        "files": {"requirements.txt": {"digest": d[0]}},
    })
    .to_string();
    store
        .insert(row("queued", &request, now))
        .await
        .expect("queued build");

    // 6000 bytes, cap 4000: the two least recently used unprotected blobs go (d1, d2).
    let cap = GcConfig {
        max_blob_bytes: Some(4000),
        ..off()
    };
    let report = gc::collect(&store, &blobs, &cap, now).await.expect("gc");
    assert_eq!((report.blobs, report.blob_bytes), (2, 2000));
    let kept: Vec<bool> = futures::future::join_all(d.iter().map(|x| blobs.has("p", x))).await;
    assert_eq!(kept, [true, false, false, true, true, true]);

    // Once the build is over, age alone removes what was not used for long enough (d0, 6 h);
    // d3 (2 h) was just asked about by the check above, so it stays.
    store
        .finish("queued", BuildState::Cancelled, None, None, unix(now))
        .await
        .expect("finish");
    set_used(&blobs, &d[0], now - 6 * HOUR);
    set_used(&blobs, &d[3], now - 2 * HOUR);
    let age = GcConfig {
        keep_blobs: Some(5 * HOUR),
        ..off()
    };
    let report = gc::collect(&store, &blobs, &age, now).await.expect("gc");
    assert_eq!(report.blobs, 1);
    assert!(!blobs.path("p", &d[0]).exists());
    assert!(blobs.path("p", &d[3]).exists());
}

#[tokio::test]
async fn the_service_collects_periodically_but_never_a_running_builds_blobs() {
    let config = ServiceConfig {
        gc: GcConfig {
            interval: Some(Duration::from_secs(1)),
            keep_blobs: Some(DAY),
            ..off()
        },
        ..config(Path::new("."))
    };
    let builder = std::sync::Arc::new(ChattyBuilder {
        lines: 100_000,
        pause: Duration::from_millis(10),
    });
    let svc = TestService::start_with(tempfile::tempdir().expect("tmp"), config, builder).await;
    let project = tempfile::tempdir().expect("tmp");
    let body = prepared_submission(&svc.url, TOKEN_A, project.path(), "app").await;
    let info: imagespec_protocol::BuildInfo = submit(&svc.url, TOKEN_A, &body)
        .await
        .json()
        .await
        .expect("json");
    let stray = b"uploaded, never used by a build".to_vec();
    let stray_digest = digest_of(&stray);
    let r = authed(
        reqwest::Method::PUT,
        &svc.url,
        &format!("/v1/blobs/{stray_digest}"),
        TOKEN_A,
    )
    .body(stray)
    .send()
    .await
    .expect("put");
    assert_eq!(r.status(), 201);
    // Everything last used two days ago.
    let blobs = BlobStore::new(svc.data.path().join("blobs"), svc.data.path().join("tmp"));
    let two_days_ago = SystemTime::now() - 2 * DAY;
    let used: Vec<String> = body.files.values().map(|f| f.digest.clone()).collect();
    for digest in used.iter().chain([&stray_digest]) {
        std::fs::File::options()
            .write(true)
            .open(blobs.path("project-a", digest))
            .expect("blob")
            .set_modified(two_days_ago)
            .expect("mtime");
    }
    let removed = metric_until(
        &svc.url,
        "imagespec_gc_removed_total{kind=\"blobs\"}",
        |v| v >= 1.0,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(removed, 1.0, "the stray blob, and only it");
    assert!(!blobs.path("project-a", &stray_digest).exists());
    for digest in &used {
        assert!(
            blobs.path("project-a", digest).exists(),
            "{digest} is the running build's"
        );
    }
    assert_eq!(
        build_info(&svc.url, TOKEN_A, &info.id).await.status,
        BuildState::Running
    );
}

#[tokio::test]
async fn gc_once_refuses_while_a_service_holds_the_data_directory() {
    let svc = TestService::start(test_builder(Duration::ZERO)).await;
    let config = ServiceConfig::new(svc.data.path());
    let err = gc::run_once(&config).await.expect_err("locked").to_string();
    assert!(err.contains("in use by another imagespec service"), "{err}");
    let TestService { data, service, .. } = svc;
    service.expect("running").shutdown().await;
    let report = gc::run_once(&ServiceConfig::new(data.path()))
        .await
        .expect("runs once the service stopped");
    assert_eq!(report, gc::GcReport::default(), "nothing old yet");
}
