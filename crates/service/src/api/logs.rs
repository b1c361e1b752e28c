//! `GET /v1/builds/{id}/logs`: the build's events as server-sent events, live.
//!
//! Each event's SSE `id` is its offset (0, 1, 2, ...), so a client resumes exactly where it
//! broke off with `Last-Event-ID: <last seen>` (the standard browser behaviour) or
//! `?offset=<next wanted>`. Past events come from the database, so a stream can start or
//! resume at any time, also after a restart. When the build has finished and every event was
//! sent, a final `end` event carries the build's status and the stream closes. Keep-alive
//! comments keep idle connections open and let clients detect dead ones.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use imagespec_protocol::END_EVENT;

use super::builds::find;
use super::problem::ApiError;
use crate::auth::Project;
use crate::state::Shared;

/// Events read from the database per query.
const PAGE: usize = 500;

pub async fn stream(
    State(shared): State<Arc<Shared>>,
    Extension(project): Extension<Project>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    find(&shared, &project, &id).await?;
    let from_query = match query.get("offset") {
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("`offset` `{v}` is not a non-negative integer"))
        })?),
        None => None,
    };
    let from_header = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(v) if !v.trim().is_empty() => Some(
            v.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "`Last-Event-ID` `{v}` is not an event id of this stream"
                ))
            })? + 1,
        ),
        _ => None,
    };
    let start = from_query.or(from_header).unwrap_or(0);
    let keep_alive = Duration::from_secs(shared.config.keep_alive_seconds);
    Ok(Sse::new(events(shared, id, start, keep_alive))
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response())
}

fn events(
    shared: Arc<Shared>,
    id: String,
    start: u64,
    poll: Duration,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        let mut next = start;
        let mut rechecked = false;
        loop {
            // Subscribe before reading, so a write after the read wakes us.
            let mut changes = shared.hub.subscribe(&id);
            let page = match shared.store.events_from(&id, next, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(build = %id, "cannot read events: {e}");
                    break;
                }
            };
            if !page.is_empty() {
                for (seq, event) in page {
                    let data = serde_json::to_string(&event).unwrap_or_default();
                    yield Ok(Event::default().id(seq.to_string()).event(event.kind()).data(data));
                    next = seq + 1;
                }
                continue;
            }
            let row = match shared.store.get(&id, None).await {
                Ok(Some(row)) => row,
                _ => break,
            };
            // Events are stored before the final status, so a finished build with nothing
            // left to read past `next` is complete.
            if row.status.is_terminal() {
                if row.events <= next || rechecked {
                    let data = serde_json::to_string(&row.info()).unwrap_or_default();
                    yield Ok(Event::default().event(END_EVENT).data(data));
                    break;
                }
                rechecked = true;
                continue;
            }
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(poll) => {}
                () = shared.kill.cancelled() => break,
            }
        }
    }
}
