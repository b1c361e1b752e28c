//! `GET /v1/images/exists?image=...&platforms=...`: tri-state, with a reason when unknown.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use imagespec_core::build::{Existence, ExistsQuery};
use imagespec_core::spec::DEFAULT_PLATFORM;
use imagespec_protocol::{ExistsResponse, ExistsState};

use super::problem::ApiError;
use crate::auth::Project;
use crate::naming::{self, Scope};
use crate::state::Shared;

pub async fn exists(
    State(shared): State<Arc<Shared>>,
    Extension(project): Extension<Project>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let image = query
        .get("image")
        .ok_or_else(|| ApiError::bad_request("give the image as `?image=name:tag`"))?;
    let name = naming::parse(image).ok_or_else(|| {
        ApiError::bad_request(format!("`{image}` is not an image name (name:tag)"))
    })?;
    let scope = Scope::of(&shared.config, &project.0);
    let name = scope.qualify(&name).ok_or_else(|| {
        ApiError::unprocessable(
            "no-registry",
            "No registry",
            "this service has no registry of its own; name the image with its registry",
        )
    })?;
    // Only what the project may push to is asked about (with the service's credentials): no
    // other project's images, and no arbitrary host and port.
    if !scope.may_write(&name) {
        return Err(super::builds::outside_scope(&name.to_string()));
    }
    let platforms: Vec<String> = match query
        .get("platforms")
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
    {
        Some(p) => p.split(',').map(|s| s.trim().to_string()).collect(),
        None => vec![DEFAULT_PLATFORM.to_string()],
    };
    let answer = match shared.workers.first() {
        Some(worker) => {
            let query = ExistsQuery {
                platforms,
                push: true,
                registry_config: None,
            };
            worker.builder.exists(&name, &query).await
        }
        None => Existence::Unknown {
            reason: "the service has no worker to ask".into(),
        },
    };
    let (state, reason) = match answer {
        Existence::Exists => (ExistsState::Exists, None),
        Existence::Missing => (ExistsState::Missing, None),
        // The worker's engine being unreachable is the service's problem: to the client the
        // answer is "cannot tell".
        Existence::Unknown { reason } | Existence::Unavailable { reason } => {
            (ExistsState::Unknown, Some(reason))
        }
        Existence::Denied { reason } => (ExistsState::Denied, Some(reason)),
    };
    Ok(axum::Json(ExistsResponse {
        image: name.to_string(),
        state,
        reason,
    })
    .into_response())
}
