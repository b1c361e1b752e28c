//! A **fake** TCP proxy for fault injection: it forwards bytes between a client and the
//! service, counts what the client sends, and can cut a log-stream connection in the middle of
//! its response — a fault a real server does not produce on demand.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
pub struct ProxyStats {
    /// Bytes from the client to the service.
    pub sent: AtomicU64,
    /// Log-stream connections cut so far.
    pub cuts: AtomicUsize,
}

/// A proxy in front of `upstream`; `cuts` log streams are cut after `cut_after` response bytes.
pub struct CuttingProxy {
    pub addr: SocketAddr,
    pub stats: Arc<ProxyStats>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    pub async fn start(upstream: SocketAddr, cuts: usize, cut_after: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let stats = Arc::new(ProxyStats::default());
        let s = stats.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        pipe(client, server, s, cuts, cut_after).await;
                    }
                });
            }
        });
        CuttingProxy { addr, stats, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn sent(&self) -> u64 {
        self.stats.sent.load(Ordering::SeqCst)
    }

    pub fn reset_sent(&self) {
        self.stats.sent.store(0, Ordering::SeqCst);
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    stats: Arc<ProxyStats>,
    cuts: usize,
    cut_after: usize,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let streaming = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = streaming.clone();
    let up_stats = stats.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            up_stats.sent.fetch_add(n as u64, Ordering::SeqCst);
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("GET ") && text.contains("/logs") {
                st.store(true, Ordering::SeqCst);
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut streamed = 0usize;
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if streaming.load(Ordering::SeqCst) {
                streamed += n;
                if streamed > cut_after && stats.cuts.load(Ordering::SeqCst) < cuts {
                    stats.cuts.fetch_add(1, Ordering::SeqCst);
                    // Forward part of this chunk, then drop both sides: a cut mid-event.
                    let keep = n.saturating_sub(streamed - cut_after).max(1).min(n);
                    let _ = cw.write_all(&buf[..keep]).await;
                    return;
                }
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Whichever side ends first ends the connection.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}
