//! A FAKE engine that dies mid-build: a proxy on 127.0.0.1 (port 0) that forwards bytes to
//! the real Docker socket and cuts the connection of every build request once its answer has
//! started, as a worker machine dying or a daemon restarting would (a fault a real engine
//! does not produce on demand). Everything else (ping, version, inspect) passes through, so
//! the engine looks healthy until it builds. Shared by the builder-local and service tests
//! (`#[path]`).
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};

/// Starts the FAKE proxy; returns its `tcp://` endpoint and how many build answers it cut.
pub async fn start(docker_socket: &str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cuts = Arc::new(AtomicUsize::new(0));
    let counter = cuts.clone();
    let socket = docker_socket.to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (counter, socket) = (counter.clone(), socket.clone());
            tokio::spawn(async move {
                let Ok(engine) = UnixStream::connect(&socket).await else {
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
