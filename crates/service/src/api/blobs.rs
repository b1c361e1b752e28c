//! `POST /v1/blobs/missing` and `PUT /v1/blobs/{digest}`: content-addressed uploads, per project.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use imagespec_protocol::{BlobStored, MissingBlobsRequest, MissingBlobsResponse, is_blob_digest};

use super::builds::parse_json;
use super::problem::ApiError;
use crate::auth::Project;
use crate::blobs::BlobError;
use crate::state::Shared;

/// Most digests one `missing` request may ask about.
const MAX_DIGESTS: usize = 100_000;

pub async fn missing(
    State(shared): State<Arc<Shared>>,
    Extension(project): Extension<Project>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: MissingBlobsRequest = parse_json(body)?;
    if request.digests.len() > MAX_DIGESTS {
        return Err(ApiError::bad_request(format!(
            "ask about at most {MAX_DIGESTS} digests at once"
        )));
    }
    if let Some(bad) = request.digests.iter().find(|d| !is_blob_digest(d)) {
        return Err(ApiError::bad_request(format!(
            "`{bad}` is not a sha256:<hex> digest"
        )));
    }
    let mut missing = Vec::new();
    for digest in request.digests {
        if !shared.blobs.has(&project.0, &digest).await && !missing.contains(&digest) {
            missing.push(digest);
        }
    }
    Ok(axum::Json(MissingBlobsResponse { missing }).into_response())
}

pub async fn upload(
    State(shared): State<Arc<Shared>>,
    Extension(project): Extension<Project>,
    Path(digest): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = shared.config.limits.max_blob_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let stored = shared
        .blobs
        .put(&project.0, &digest, body.into_data_stream(), limit)
        .await
        .map_err(|e| match e {
            BlobError::InvalidDigest(_) => ApiError::bad_request(e.to_string()),
            BlobError::Mismatch { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "digest-mismatch",
                "Digest mismatch",
                e.to_string(),
            ),
            BlobError::TooLarge { limit } => too_large(limit),
            BlobError::Body(_) => ApiError::bad_request(e.to_string()),
            BlobError::Io(e) => ApiError::internal(e),
        })?;
    let (size, created) = stored;
    if created {
        shared.metrics.uploaded(&project.0, size);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(BlobStored {
            digest,
            size,
            created,
        }),
    )
        .into_response())
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Upload too large",
        format!("one file may be at most {limit} bytes on this service"),
    )
}
