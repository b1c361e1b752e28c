//! The HTTP API, versioned under `/v1` and documented in `crates/service/openapi.yaml`.
//!
//! [`routes`] is the single list of endpoints: the router is built from it, and a test checks
//! it against the OpenAPI file both ways, so the document cannot drift from the code.

mod blobs;
pub(crate) mod builds;
pub(crate) mod capabilities;
mod images;
mod logs;
mod operate;
pub mod problem;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};

use crate::state::Shared;
use problem::ApiError;

/// One endpoint.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    /// Whether a bearer token is needed.
    pub authenticated: bool,
    pub handler: MethodRouter<Arc<Shared>>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<Arc<Shared>>) -> Route {
    Route {
        method,
        path,
        authenticated: true,
        handler,
    }
}

/// Every endpoint of the service.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            authenticated: false,
            ..route(Method::GET, "/v1/health", get(operate::health))
        },
        Route {
            authenticated: false,
            ..route(Method::GET, "/v1/ready", get(operate::ready))
        },
        // Not under a project's token: its own optional `metrics_token` (checked there).
        Route {
            authenticated: false,
            ..route(Method::GET, "/metrics", get(operate::metrics))
        },
        route(Method::POST, "/v1/blobs/missing", post(blobs::missing)),
        route(Method::PUT, "/v1/blobs/{digest}", put(blobs::upload)),
        route(Method::POST, "/v1/builds", post(builds::submit)),
        route(Method::GET, "/v1/builds/{id}", get(builds::status)),
        route(Method::GET, "/v1/builds/{id}/logs", get(logs::stream)),
        route(Method::POST, "/v1/builds/{id}/cancel", post(builds::cancel)),
        route(Method::GET, "/v1/images/exists", get(images::exists)),
        route(
            Method::GET,
            "/v1/capabilities",
            get(capabilities::capabilities),
        ),
    ]
}

/// The router over [`routes`], with auth, rate limiting and body limits.
pub fn router(shared: Arc<Shared>) -> Router {
    let mut public = Router::new();
    let mut private = Router::new();
    for r in routes() {
        if r.authenticated {
            private = private.route(r.path, r.handler);
        } else {
            public = public.route(r.path, r.handler);
        }
    }
    let private = private.route_layer(middleware::from_fn_with_state(shared.clone(), authenticate));
    public
        .merge(private)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(access_log))
        .layer(DefaultBodyLimit::max(
            shared.config.limits.max_request_bytes,
        ))
        .with_state(shared)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see openapi.yaml")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not take that method",
    )
}

/// Checks the bearer token, applies the rate limit, and tells the handler the project.
async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return ApiError::unauthorized("send `Authorization: Bearer <token>`").into_response();
    };
    let Some(project) = shared.auth.project(token) else {
        // Wrong tokens share one bucket, so guessing is as slow as one client's request rate
        // (valid tokens keep their own buckets and are not slowed by it).
        if let Err(limited) = shared.auth.admit_failure() {
            return rate_limited(limited, "too many requests with invalid tokens");
        }
        return ApiError::unauthorized("the token is not valid for this service").into_response();
    };
    if let Err(limited) = shared.auth.admit(token) {
        return rate_limited(limited, "this token is over its request rate");
    }
    request.extensions_mut().insert(project.clone());
    let mut response = next.run(request).await;
    // For the access log, which runs outside this middleware.
    response.extensions_mut().insert(project);
    response
}

/// One line per request: method, path (never the query, which is where a careless client
/// would put a secret; never a header, so never the token), status, duration and project.
async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let project = response
        .extensions()
        .get::<crate::auth::Project>()
        .map(|p| p.0.as_str())
        .unwrap_or("-");
    tracing::info!(
        target: crate::logging::ACCESS_TARGET,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        project,
        "request"
    );
    response
}

pub(crate) fn rate_limited(limited: crate::auth::RateLimited, what: &str) -> Response {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!("{what}; retry in {} s", limited.retry_after.as_secs()),
    );
    e.retry_after = Some(limited.retry_after.as_secs());
    e.into_response()
}
