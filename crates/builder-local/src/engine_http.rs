//! A minimal HTTP/1.1 client for the engine calls bollard does not cover the way we need:
//! `/build` (BuildKit with a client session; Podman's `secrets` parameter), `/session` (an
//! `h2c` upgrade that carries the BuildKit session), and `/images/{name}/push` (whose final
//! `aux` message carries the pushed digest, which bollard's push type drops).
//!
//! Over TLS (`tcp://host:2376` with certificates, [`crate::tls`]) this client carries every
//! call, bollard's too ([`EngineHttp::forward`]): one place connects and handshakes.
//!
//! Requests stream their bodies (a build context can be large) and responses are read as a
//! stream of JSON messages, as the Engine API sends them.
//!
//! Bounded phases ([`LocalError::Timeout`], exit 4, naming the endpoint and the operation): the
//! connection (with the HTTP handshake) within [`CONNECT_TIMEOUT`], and the answer's head within
//! [`FIRST_BYTE_TIMEOUT`] of the request body being sent (a build's context upload itself is
//! not bounded: it may be large). What follows the head (a build's or a push's output) is not
//! bounded in time: it ends with the work, or with cancellation.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::oneshot;

use crate::discovery::Endpoint;
use crate::error::LocalError;

/// How long connecting to an engine may take (an engine on this machine connects at once).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an engine may take to start answering once the request is sent. Generous: Podman
/// answers a build only after unpacking its context, and only once its image store is free.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(120);

/// A request body.
pub(crate) type Body = BoxBody<Bytes, io::Error>;

/// An empty body.
pub(crate) fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// The engine's API over one endpoint; every call opens its own connection (the engine
/// serves concurrent builds on separate connections anyway).
#[derive(Debug, Clone)]
pub(crate) struct EngineHttp {
    endpoint: Endpoint,
    api_version: String,
    /// For an [`Endpoint::Tls`]: the checked certificates and the name the engine's
    /// certificate must carry.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl EngineHttp {
    pub(crate) fn new(endpoint: Endpoint, api_version: String) -> Self {
        EngineHttp {
            endpoint,
            api_version,
            tls: None,
        }
    }

    /// The same connection rule, for another API version (known once negotiated).
    pub(crate) fn with_api_version(mut self, api_version: String) -> Self {
        self.api_version = api_version;
        self
    }

    /// Speaks TLS with `config` (an [`Endpoint::Tls`] needs it): the engine's certificate
    /// must name the endpoint's host (a DNS name or an IP address in its SANs).
    pub(crate) fn with_tls(mut self, config: Arc<ClientConfig>) -> Result<Self, String> {
        let addr = match &self.endpoint {
            Endpoint::Tls { addr, .. } => addr,
            other => return Err(format!("{other} is not a TLS endpoint")),
        };
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("`{host}` cannot be checked against a certificate: {e}"))?;
        self.tls = Some((config, name));
        Ok(self)
    }

    /// Sends a request bollard made (a TLS endpoint's bollard client goes through here), on
    /// a connection of its own, and returns the answer whatever its status (bollard reads it).
    pub(crate) async fn forward(
        &self,
        request: bollard::BollardRequest,
    ) -> Result<Response<Incoming>, LocalError> {
        let (mut parts, body) = request.into_parts();
        // bollard writes an absolute URI; on our own connection the request line carries the
        // path, and the Host header the authority.
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let what = format!("{} {path}", parts.method);
        parts.uri = path
            .parse()
            .map_err(|e: http::uri::InvalidUri| LocalError::Transport {
                what: what.clone(),
                source: e.into(),
            })?;
        // bollard's calls here (ping, version, inspect) carry no or small bodies; builds and
        // pushes stream through this client's own calls. Collected, the body is `Sync`.
        let bytes = body
            .collect()
            .await
            .map_err(|e| LocalError::Transport {
                what: what.clone(),
                source: e,
            })?
            .to_bytes();
        let body: Body = if bytes.is_empty() {
            empty()
        } else {
            http_body_util::Full::new(bytes)
                .map_err(|never| match never {})
                .boxed()
        };
        let mut request = self.request(parts.method.clone(), &path, &[], body)?;
        for (name, value) in &parts.headers {
            if name != http::header::HOST {
                request.headers_mut().append(name, value.clone());
            }
        }
        self.exchange(&what, request).await
    }

    /// `/v{api}{path}` for the Docker-compatible API.
    pub(crate) fn compat(&self, path: &str) -> String {
        format!("/v{}{path}", self.api_version)
    }

    /// `/v4.0.0/libpod{path}` for Podman's own API (any 4.x or later service accepts it).
    pub(crate) fn libpod(&self, path: &str) -> String {
        format!("/v4.0.0/libpod{path}")
    }

    async fn connect(
        &self,
        what: &str,
    ) -> Result<hyper::client::conn::http1::SendRequest<Body>, LocalError> {
        let endpoint = self.endpoint.to_string();
        let connect = async {
            let stream = match &self.endpoint {
                Endpoint::Unix(p) => UnixStream::connect(p).await.map(EngineStream::Unix),
                Endpoint::Tcp(a) => TcpStream::connect(a).await.map(EngineStream::Tcp),
                Endpoint::Tls { addr, files } => self.tls_connect(addr, files).await,
            }
            .map_err(|e| LocalError::Connect {
                endpoint: endpoint.clone(),
                source: e.into(),
            })?;
            hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| LocalError::Connect {
                    endpoint: endpoint.clone(),
                    source: e.into(),
                })
        };
        let (sender, conn) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| LocalError::Timeout {
                endpoint: endpoint.clone(),
                what: format!("the connection for {what}"),
                after: CONNECT_TIMEOUT,
            })??;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("engine connection ended: {e}");
            }
        });
        Ok(sender)
    }

    /// A TCP connection and the TLS handshake; a failed handshake names the files in use.
    async fn tls_connect(
        &self,
        addr: &str,
        files: &crate::tls::TlsFiles,
    ) -> io::Result<EngineStream> {
        let (config, name) = self.tls.clone().ok_or_else(|| {
            io::Error::other("no TLS configuration for a TLS endpoint (a bug: report it)")
        })?;
        let tcp = TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map(|s| EngineStream::Tls(Box::new(s)))
            .map_err(|e| io::Error::other(format!("TLS handshake failed ({files}): {e}")))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Request<Body>, LocalError> {
        let host = match &self.endpoint {
            Endpoint::Unix(_) => "docker".to_string(),
            Endpoint::Tcp(a) | Endpoint::Tls { addr: a, .. } => a.clone(),
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, host);
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        builder.body(body).map_err(|e| LocalError::Transport {
            what: format!("building the request {path}"),
            source: e.into(),
        })
    }

    /// Sends a request; a non-2xx answer becomes [`LocalError::EngineStatus`] with the
    /// engine's `message`.
    pub(crate) async fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<Incoming>, LocalError> {
        let request = self.request(method, path, headers, body)?;
        let response = self.exchange(what, request).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(status_error(what, response).await)
        }
    }

    /// One request on a new connection; any answer (whatever its status) is returned. The
    /// answer's head must come within [`FIRST_BYTE_TIMEOUT`] of the body being sent.
    async fn exchange(
        &self,
        what: &str,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, LocalError> {
        let mut sender = self.connect(what).await?;
        let (parts, body) = request.into_parts();
        let (sent_tx, sent_rx) = oneshot::channel::<()>();
        let request = Request::from_parts(parts, signal_end(body, sent_tx));
        let response = sender.send_request(request);
        tokio::pin!(response);
        let transport = |e: hyper::Error| LocalError::Transport {
            what: what.to_string(),
            source: e.into(),
        };
        // Unbounded while the body is still being sent (a dropped sender also counts as
        // sent: the request is then complete or failed, and the answer is all that is left).
        tokio::select! {
            r = &mut response => return r.map_err(transport),
            _ = sent_rx => {}
        }
        match tokio::time::timeout(FIRST_BYTE_TIMEOUT, response).await {
            Ok(r) => r.map_err(transport),
            Err(_) => Err(LocalError::Timeout {
                endpoint: self.endpoint.to_string(),
                what: what.to_string(),
                after: FIRST_BYTE_TIMEOUT,
            }),
        }
    }

    /// Sends an upgrade request (`Connection: Upgrade`) and returns the upgraded connection.
    pub(crate) async fn upgrade(
        &self,
        what: &str,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>, LocalError> {
        let request = self.request(Method::POST, path, headers, empty())?;
        let response = self.exchange(what, request).await?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(status_error(what, response).await);
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| LocalError::Transport {
                what: what.to_string(),
                source: e.into(),
            })?;
        Ok(TokioIo::new(upgraded))
    }
}

/// `body`, followed by a signal on `sent` once its last frame has been handed over.
fn signal_end(body: Body, sent: oneshot::Sender<()>) -> Body {
    use http_body_util::BodyStream;
    use hyper::body::Body as _;
    if body.is_end_stream() {
        // An empty body stays one (no chunked encoding: an upgrade request must not send any).
        let _ = sent.send(());
        return body;
    }
    let mut sent = Some(sent);
    let frames = BodyStream::new(body).chain(futures::stream::poll_fn(move |_| {
        if let Some(tx) = sent.take() {
            let _ = tx.send(());
        }
        std::task::Poll::Ready(None)
    }));
    BodyExt::boxed(http_body_util::StreamBody::new(frames))
}

/// Reads an error answer: the Engine API puts `{"message": "..."}` in the body.
async fn status_error(what: &str, response: Response<Incoming>) -> LocalError {
    let status = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    let message = serde_json::from_slice::<Message>(&body)
        .map(|m| m.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
    LocalError::EngineStatus {
        what: what.to_string(),
        status,
        message,
    }
}

/// The JSON messages of a streaming answer (`/build`, `/push`), one at a time. The engine
/// writes one JSON document per message, but a message may be split across (or share) body
/// frames, so the bytes are buffered until a whole document is there.
pub(crate) struct JsonStream {
    body: Incoming,
    buffer: BytesMut,
    done: bool,
    /// Why the answer ended before the engine finished it (the connection was lost).
    broken: Option<String>,
}

impl JsonStream {
    pub(crate) fn new(response: Response<Incoming>) -> Self {
        JsonStream {
            body: response.into_body(),
            buffer: BytesMut::new(),
            done: false,
            broken: None,
        }
    }

    /// After the end: why the answer broke off, when it did not end as the engine ended it.
    /// A caller must not take such an end for a finished operation.
    pub(crate) fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// The next message; `None` at the end. A message that is not valid JSON yields
    /// `Some(Err(raw text))` so the caller can decide (the text may need redaction).
    pub(crate) async fn next<T: DeserializeOwned>(&mut self) -> Option<Result<T, String>> {
        loop {
            // Skip whitespace between documents.
            let start = self
                .buffer
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(self.buffer.len());
            let _ = self.buffer.split_to(start);
            if !self.buffer.is_empty() {
                let mut it = serde_json::Deserializer::from_slice(&self.buffer)
                    .into_iter::<serde_json::Value>();
                match it.next() {
                    Some(Ok(value)) => {
                        let used = it.byte_offset();
                        let _ = self.buffer.split_to(used);
                        return Some(
                            serde_json::from_value::<T>(value.clone())
                                .map_err(|_| value.to_string()),
                        );
                    }
                    Some(Err(e)) if e.is_eof() && !self.done => {}
                    Some(Err(_)) | None => {
                        // Not JSON: hand back the rest of the line and carry on after it.
                        let end = self
                            .buffer
                            .iter()
                            .position(|b| *b == b'\n')
                            .map_or(self.buffer.len(), |i| i + 1);
                        if end == self.buffer.len() && !self.done {
                            // Maybe an incomplete line; wait for more.
                        } else {
                            let raw = self.buffer.split_to(end);
                            return Some(Err(String::from_utf8_lossy(&raw).trim().to_string()));
                        }
                    }
                }
            } else if self.done {
                return None;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    self.broken = Some(e.to_string());
                    return Some(Err(format!("the engine's answer broke off: {e}")));
                }
                None => self.done = true,
            }
        }
    }
}

/// A connection to a unix, TCP or TLS endpoint.
enum EngineStream {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for EngineStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            EngineStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            EngineStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            EngineStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for EngineStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            EngineStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            EngineStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            EngineStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            EngineStream::Unix(s) => Pin::new(s).poll_flush(cx),
            EngineStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            EngineStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            EngineStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            EngineStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            EngineStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of query parameters.
pub(crate) fn query(params: &[(&str, String)]) -> String {
    fn encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAKE engine: a unix socket that accepts connections and never answers. With the
    /// clock paused, the first-byte timeout fires as soon as everything else is idle.
    #[tokio::test(start_paused = true)]
    async fn a_silent_engine_times_out_naming_endpoint_and_operation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fake-engine.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((c, _)) = listener.accept().await {
                conns.push(c);
            }
        });
        let http = EngineHttp::new(Endpoint::Unix(path.clone()), "1.41".into());
        let e = http
            .send("the ping", Method::GET, "/_ping", &[], empty())
            .await
            .expect_err("a silent engine");
        assert!(matches!(e, LocalError::Timeout { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("the ping"), "{text}");
        assert_eq!(
            imagespec_core::build::BuildError::from(e).kind,
            imagespec_core::build::BuildErrorKind::Unavailable
        );
        held.abort();
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            query(&[
                ("t", "127.0.0.1:5000/a:b".into()),
                ("labels", "{\"k\":\"v w\"}".into())
            ]),
            "t=127.0.0.1%3A5000%2Fa%3Ab&labels=%7B%22k%22%3A%22v%20w%22%7D"
        );
    }
}
