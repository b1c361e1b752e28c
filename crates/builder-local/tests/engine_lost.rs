//! A build whose engine connection is lost is a lost engine, not a finished build (issue 11,
//! hole 7). A FAKE fault proxy on 127.0.0.1 (port 0) forwards bytes to the real Docker socket
//! and cuts the connection of the build request once its answer has started: the fault a real
//! engine does not produce on demand (a worker machine dying, a daemon restart). Needs
//! `scripts/dev-env.sh`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use imagespec_builder_local::{BuildJob, EngineChoice, LocalBuilder};
use imagespec_core::build::BuildErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};
use tokio_util::sync::CancellationToken;

/// Starts the FAKE proxy; returns its `tcp://` endpoint and how many build answers it cut.
async fn cutting_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cuts = Arc::new(AtomicUsize::new(0));
    let counter = cuts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let socket = DOCKER.trim_start_matches("unix://");
                let Ok(engine) = UnixStream::connect(socket).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut engine_read, mut engine_write) = engine.into_split();
                let mut first = vec![0u8; 64 * 1024];
                let Ok(n) = client_read.read(&mut first).await else {
                    return;
                };
                let is_build = first[..n].starts_with(b"POST ")
                    && String::from_utf8_lossy(&first[..n]).contains("/build?");
                if engine_write.write_all(&first[..n]).await.is_err() {
                    return;
                }
                let upstream = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut engine_write).await;
                });
                if is_build {
                    // Forward the answer's head and first bytes, then drop the connection.
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut seen = Vec::new();
                    while let Ok(n) = engine_read.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        let head_end = seen.windows(4).position(|w| w == b"\r\n\r\n");
                        if head_end.is_some_and(|end| seen.len() > end + 4) {
                            let cut = head_end.map_or(0, |end| end + 5);
                            let _ = client_write.write_all(&seen[..cut]).await;
                            counter.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                    upstream.abort();
                } else {
                    let _ = tokio::io::copy(&mut engine_read, &mut client_write).await;
                    upstream.abort();
                }
            });
        }
    });
    (format!("tcp://{addr}"), cuts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_engine_connection_is_an_unavailable_engine_not_a_finished_build() {
    // The real engine must be there: the proxy only cuts.
    builder(EngineChoice::Docker).await;
    let (endpoint, cuts) = cutting_proxy().await;
    let b = LocalBuilder::new(EngineChoice::Docker, Some(endpoint.clone()));
    b.engine()
        .await
        .unwrap_or_else(|e| panic!("the proxy forwards to Docker: {e}"));
    let tag = format!("localhost/imagespec-test/lost-{}:t", unique());
    let dockerfile = format!("FROM {DEBIAN_IMAGE}\nRUN echo {tag} && sleep 20\n");
    let (events, _) = recorder();
    let job = BuildJob {
        tag: tag.clone(),
        dockerfile: "Dockerfile".into(),
        context: context(vec![("Dockerfile", dockerfile.into_bytes())]),
        secrets: Vec::new(),
        platform: Some("linux/amd64".into()),
        labels: BTreeMap::new(),
        events,
        cancel: CancellationToken::new(),
    };
    let err = b
        .build_job(job)
        .await
        .expect_err("a cut build cannot succeed");
    assert!(
        cuts.load(Ordering::SeqCst) >= 1,
        "the proxy cut the build's answer"
    );
    assert_eq!(err.kind, BuildErrorKind::Unavailable, "{err}");
    assert!(
        err.message.contains("lost the connection to the engine")
            && err.message.contains(&endpoint),
        "{err}"
    );
    remove_image(EngineChoice::Docker, &tag);
}
