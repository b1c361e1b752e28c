//! Following a build's log stream to its end, resuming where it broke off.
//!
//! Every event carries its offset as the SSE `id`; the follower remembers the next offset it
//! needs and reconnects with `?offset=N` after a dropped connection, a proxy cut or a service
//! restart, so no event is lost or shown twice. Reconnection is bounded (the [`RetryPolicy`](crate::RetryPolicy));
//! any progress resets the count. A stream that stays silent longer than the idle timeout (the
//! service sends keep-alives well within it) counts as dropped, so a half-open connection
//! cannot hang the client.

use std::time::Duration;

use futures::StreamExt;
use imagespec_core::build::EventSink;
use reqwest::Method;

use crate::error::RemoteError;
use crate::http::{Api, Attempt, classify, describe};
use crate::protocol::{BuildInfo, END_EVENT, WireEvent};
use crate::sse::SseParser;

/// Follows one build's log stream.
#[derive(Debug)]
pub struct LogFollower {
    pub build_id: String,
    /// The offset of the next event wanted.
    pub next: u64,
    /// How many times the stream was re-opened after a break.
    pub reconnects: u32,
    pub idle_timeout: Duration,
}

/// How one connection ended.
enum StreamEnd {
    Finished(Box<BuildInfo>),
    Broke(String),
}

impl LogFollower {
    pub fn new(build_id: impl Into<String>) -> Self {
        LogFollower {
            build_id: build_id.into(),
            next: 0,
            reconnects: 0,
            idle_timeout: Duration::from_secs(45),
        }
    }

    /// Streams events to `sink` until the build ends; returns its final state.
    pub async fn follow(&mut self, api: &Api, sink: &EventSink) -> Result<BuildInfo, RemoteError> {
        let mut failures = 0u32;
        loop {
            let before = self.next;
            let reason = match self.connect(api, sink).await {
                Ok(StreamEnd::Finished(info)) => return Ok(*info),
                Ok(StreamEnd::Broke(reason)) => reason,
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Transient { reason, .. }) => reason,
            };
            if self.next > before {
                failures = 0;
            }
            failures += 1;
            if failures >= api.retry.attempts {
                return Err(RemoteError::StreamLost {
                    id: self.build_id.clone(),
                    url: api.url().to_string(),
                    attempts: failures,
                    reason,
                });
            }
            self.reconnects += 1;
            let delay = api.retry.delay(failures);
            tracing::debug!(build = %self.build_id, next = self.next, %reason, ?delay, "log stream broke; resuming");
            tokio::time::sleep(delay).await;
        }
    }

    async fn connect(&mut self, api: &Api, sink: &EventSink) -> Result<StreamEnd, Attempt> {
        let path = format!("/builds/{}/logs?offset={}", self.build_id, self.next);
        let response = match api
            .request(Method::GET, &path)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
        {
            Ok(r) => classify(r, api.url()).await?,
            Err(e) => {
                return Err(Attempt::Transient {
                    reason: describe(&e),
                    status: None,
                    wait: None,
                });
            }
        };
        let mut body = response.bytes_stream();
        let mut parser = SseParser::new();
        loop {
            let chunk = match tokio::time::timeout(self.idle_timeout, body.next()).await {
                Err(_) => {
                    return Ok(StreamEnd::Broke(format!(
                        "no data for {:?}",
                        self.idle_timeout
                    )));
                }
                Ok(None) => {
                    return Ok(StreamEnd::Broke(
                        "the stream ended before the build did".into(),
                    ));
                }
                Ok(Some(Err(e))) => return Ok(StreamEnd::Broke(describe(&e))),
                Ok(Some(Ok(chunk))) => chunk,
            };
            for event in parser.feed(&chunk) {
                if event.event == END_EVENT {
                    let info = serde_json::from_str::<BuildInfo>(&event.data).map_err(|e| {
                        Attempt::Fatal(RemoteError::Protocol(format!("bad end event: {e}")))
                    })?;
                    return Ok(StreamEnd::Finished(Box::new(info)));
                }
                let Some(offset) = event.id.as_deref().and_then(|id| id.parse::<u64>().ok()) else {
                    continue;
                };
                if offset < self.next {
                    continue;
                }
                match serde_json::from_str::<WireEvent>(&event.data) {
                    Ok(e) => sink.emit(e.into()),
                    Err(e) => tracing::debug!(offset, "skipping an unknown log event: {e}"),
                }
                self.next = offset + 1;
            }
        }
    }
}
