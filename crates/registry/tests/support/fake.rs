//! A FAKE registry: a tiny HTTP/1.1 server on 127.0.0.1 whose answers the test scripts.
//!
//! Used only for behaviour a real registry cannot be made to show on demand (a burst of 503s,
//! `Retry-After`, a hang, a Bearer token service). Every test using it has `fake` in its name.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A request as the fake saw it (header names lower-cased).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What the fake answers. `hang` keeps the connection open without answering; `drop` closes
/// it without answering; `truncate` sends the headers (with the full `Content-Length`) and
/// only that many body bytes, then closes; `trickle_head` / `trickle_body` send the head or
/// the body one byte at a time with that pause between bytes.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub hang: bool,
    pub drop: bool,
    pub truncate: Option<usize>,
    pub trickle_head: Option<std::time::Duration>,
    pub trickle_body: Option<std::time::Duration>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    pub fn hang() -> Self {
        Self {
            hang: true,
            ..Self::default()
        }
    }
    pub fn dropped() -> Self {
        Self {
            drop: true,
            ..Self::default()
        }
    }
    pub fn truncate(mut self, bytes: usize) -> Self {
        self.truncate = Some(bytes);
        self
    }
    pub fn trickle_head(mut self, pause: std::time::Duration) -> Self {
        self.trickle_head = Some(pause);
        self
    }
    pub fn trickle_body(mut self, pause: std::time::Duration) -> Self {
        self.trickle_body = Some(pause);
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

pub struct FakeServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Serves every request with `handler` until dropped.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
        let addr = listener.local_addr().expect("fake addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (seen, handler) = (seen.clone(), handler.clone());
                    tokio::spawn(async move { serve(stream, seen, handler).await });
                }
            })
        };
        Self { addr, seen, task }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<Seen>>>, handler: Arc<Handler>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let request = Seen {
        method,
        target,
        headers,
        body,
    };
    let reply = handler(&request);
    if let Ok(mut s) = seen.lock() {
        s.push(request.clone());
    }
    if reply.hang {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        return;
    }
    if reply.drop {
        return;
    }
    let mut out = format!("HTTP/1.1 {} Fake\r\nConnection: close\r\n", reply.status);
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if request.method != "HEAD" || !reply.body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    out.push_str("\r\n");
    let head = out.into_bytes();
    let mut body = if request.method != "HEAD" {
        reply.body.clone()
    } else {
        Vec::new()
    };
    if let Some(n) = reply.truncate {
        body.truncate(n);
    }
    if write(&mut stream, &head, reply.trickle_head).await.is_err() {
        return;
    }
    let _ = write(&mut stream, &body, reply.trickle_body).await;
    let _ = stream.shutdown().await;
}

/// Writes `bytes`, all at once or one byte per `pause`.
async fn write(
    stream: &mut TcpStream,
    bytes: &[u8],
    pause: Option<std::time::Duration>,
) -> std::io::Result<()> {
    let Some(pause) = pause else {
        return stream.write_all(bytes).await;
    };
    for byte in bytes {
        stream.write_all(std::slice::from_ref(byte)).await?;
        stream.flush().await?;
        tokio::time::sleep(pause).await;
    }
    Ok(())
}
