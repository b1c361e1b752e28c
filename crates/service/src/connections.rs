//! Limits on connections and request bodies, so that slow or idle clients cannot hold the
//! service's connections, tasks and temporary files (`connections:` in the configuration).
//!
//! - A request's headers must arrive within `header_read_seconds` of the connection opening
//!   (or of the previous response, on a kept-alive connection): hyper's header-read timeout,
//!   which also closes idle keep-alive connections (counted apart, as `idle`).
//! - A request body that sends nothing for `body_idle_seconds` is aborted ([`idle_body`]): a
//!   stalled upload fails, and the blob store removes its temporary file. A slow upload that
//!   keeps sending is never cut off, however long it takes.
//! - At most `max` connections are open at once, `max_per_ip` from one address ([`Gate`]);
//!   beyond that a connection is answered 503 and closed at once, so a flood from one address
//!   cannot take the slots of everyone else. (Behind a TLS proxy every connection has the
//!   proxy's address: `max_per_ip` should then be `max`, and the proxy limits per client.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use marked_yaml::Spanned;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::config::{ConfigError, spanned_at_least};
use crate::state::Shared;

/// The configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read: Duration,
    pub body_idle: Duration,
    pub max: usize,
    pub max_per_ip: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            // Generous for a CI job on a slow link; far below what a slow-loris needs.
            header_read: Duration::from_secs(20),
            body_idle: Duration::from_secs(30),
            max: 1024,
            // CI runners behind one NAT address share it: leave them room.
            max_per_ip: 256,
        }
    }
}

/// `connections:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnections {
    #[serde(default)]
    header_read_seconds: Option<Spanned<String>>,
    #[serde(default)]
    body_idle_seconds: Option<Spanned<String>>,
    #[serde(default)]
    max: Option<Spanned<String>>,
    #[serde(default)]
    max_per_ip: Option<Spanned<String>>,
}

impl RawConnections {
    pub(crate) fn check(self, path: &std::path::Path) -> Result<ConnectionLimits, ConfigError> {
        let d = ConnectionLimits::default();
        let at_least_one = |v: &Option<Spanned<String>>, field: &str| {
            v.as_ref()
                .map(|v| spanned_at_least(path, v, 1, &format!("connections.{field}")))
                .transpose()
        };
        let seconds = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
        let limits = ConnectionLimits {
            header_read: seconds(
                at_least_one(&self.header_read_seconds, "header_read_seconds")?,
                d.header_read,
            ),
            body_idle: seconds(
                at_least_one(&self.body_idle_seconds, "body_idle_seconds")?,
                d.body_idle,
            ),
            max: at_least_one(&self.max, "max")?.map_or(d.max, |v| v as usize),
            max_per_ip: at_least_one(&self.max_per_ip, "max_per_ip")?
                .map_or(d.max_per_ip, |v| v as usize),
        };
        if limits.max_per_ip > limits.max
            && let Some(v) = self.max_per_ip.as_ref()
        {
            return Err(ConfigError::at(
                path,
                v.span(),
                format!(
                    "`connections.max_per_ip` ({}) is more than `connections.max` ({}); lower it or raise `max`",
                    limits.max_per_ip, limits.max
                ),
            ));
        }
        Ok(limits)
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max` connections are open.
    Full,
    /// `max_per_ip` connections are open from this address.
    PerIp,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Full => "max",
            Refused::PerIp => "max_per_ip",
        }
    }
}

/// Counts open connections, in all and per address.
#[derive(Debug)]
pub struct Gate {
    max: usize,
    max_per_ip: usize,
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted {
    ip: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

impl Gate {
    pub fn new(limits: &ConnectionLimits) -> Self {
        Gate {
            max: limits.max,
            max_per_ip: limits.max_per_ip,
            open: Default::default(),
        }
    }

    pub fn admit(&self, ip: IpAddr) -> Result<Admitted, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max {
            return Err(Refused::Full);
        }
        let from_ip = open.per_ip.entry(ip).or_default();
        if *from_ip >= self.max_per_ip {
            return Err(Refused::PerIp);
        }
        *from_ip += 1;
        open.total += 1;
        Ok(Admitted {
            ip,
            open: self.open.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// Answers a refused connection with a 503 problem and closes it; a client that does not read
/// it within a second is just dropped.
pub async fn refuse(mut stream: tokio::net::TcpStream, why: Refused) {
    let body = format!(
        r#"{{"type":"urn:imagespec:problem:too-many-connections","title":"Too many connections","status":503,"detail":"this service already has its limit of open connections{}; retry later"}}"#,
        match why {
            Refused::Full => "",
            Refused::PerIp => " from your address",
        }
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// A connection's service that notes whether a request arrived on it: a header timeout after
/// the last response is a kept-alive connection left idle (`idle`), not a slow client
/// (`header`).
pub struct NoteRequests<S> {
    pub inner: S,
    pub seen: Arc<AtomicBool>,
}

impl<S, R> hyper::service::Service<R> for NoteRequests<S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: R) -> S::Future {
        self.seen.store(true, Ordering::Relaxed);
        self.inner.call(request)
    }
}

/// The message of a stalled body (what the handler reports).
#[derive(Debug, thiserror::Error)]
#[error(
    "nothing was received for {} s; the request body stalled (the service's `connections.body_idle_seconds`)",
    .0.as_secs()
)]
pub struct BodyStalled(pub Duration);

/// Middleware: a request body fails with [`BodyStalled`] when no data arrives for `idle`.
pub async fn idle_body(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let idle = shared.config.connections.body_idle;
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let mut data = body.into_data_stream();
    let guarded = async_stream::stream! {
        loop {
            match tokio::time::timeout(idle, data.next()).await {
                Ok(Some(chunk)) => yield chunk,
                Ok(None) => break,
                Err(_) => {
                    shared.metrics.timed_out("body");
                    tracing::info!("a request body stalled for {} s; aborting it", idle.as_secs());
                    yield Err(axum::Error::new(BodyStalled(idle)));
                    break;
                }
            }
        }
    };
    next.run(Request::from_parts(parts, Body::from_stream(guarded)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_counts_in_all_and_per_address() {
        let gate = Gate::new(&ConnectionLimits {
            max: 3,
            max_per_ip: 2,
            ..ConnectionLimits::default()
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = gate.admit(a).expect("a1");
        let _a2 = gate.admit(a).expect("a2");
        assert_eq!(gate.admit(a).expect_err("a3"), Refused::PerIp);
        let _b1 = gate.admit(b).expect("b1");
        assert_eq!(gate.admit(b).expect_err("full"), Refused::Full);
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _a3 = gate.admit(a).expect("a's place again");
    }
}
