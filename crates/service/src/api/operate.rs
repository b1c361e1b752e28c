//! Operator endpoints: `/v1/health` (liveness: the process answers), `/v1/ready` (readiness:
//! at least one worker's engine answers) and `/metrics` (Prometheus).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::problem::ApiError;
use crate::metrics::Gauges;
use crate::state::Shared;

pub async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// 200 when at least one worker's engine answers, else 503; either way every worker is
/// listed with what it found or why it cannot build.
pub async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let probes = shared.workers.iter().map(|w| async move {
        let answer = w.probe().await;
        (w.name.clone(), answer)
    });
    let answers = futures::future::join_all(probes).await;
    let ready = answers.iter().any(|(_, a)| a.is_ok());
    let workers: Vec<serde_json::Value> = answers
        .iter()
        .map(|(name, a)| match a {
            Ok(detail) => serde_json::json!({"name": name, "ready": true, "detail": detail}),
            Err(why) => serde_json::json!({"name": name, "ready": false, "detail": why}),
        })
        .collect();
    if !ready {
        let why: Vec<String> = answers
            .iter()
            .filter_map(|(name, a)| a.as_ref().err().map(|e| format!("worker `{name}`: {e}")))
            .collect();
        tracing::warn!("not ready: {}", why.join("; "));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "workers": workers,
    });
    (status, axum::Json(body)).into_response()
}

/// The Prometheus text exposition; with `metrics_token` configured, only for that bearer.
pub async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(expected) = &shared.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| crate::auth::same_secret(g, expected.expose())) {
            // Wrong metrics tokens are guessed as slowly as wrong project tokens.
            if let Err(limited) = shared.auth.admit_failure() {
                return super::rate_limited(limited, "too many requests with invalid tokens");
            }
            return ApiError::unauthorized(
                "`/metrics` needs `Authorization: Bearer <metrics_token>`",
            )
            .into_response();
        }
    }
    let text = shared.metrics.render(&Gauges {
        queued: shared.scheduler.queued(),
        running: shared.scheduler.running(),
        queued_by_project: shared.scheduler.queued_by_project(),
        connections: shared.gate.open(),
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
