//! `GET /v1/capabilities`: the platforms this service's workers can build, so that a client
//! refuses a spec the service cannot build before it uploads anything.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use imagespec_protocol::ServiceCapabilities;

use crate::state::{Shared, Worker};

/// The platforms every worker that can tell builds: a build may land on any worker, so only
/// what they all build is promised.
pub async fn capabilities(State(shared): State<Arc<Shared>>) -> Json<ServiceCapabilities> {
    Json(ServiceCapabilities {
        platforms: common_platforms(&shared.workers).await,
    })
}

/// The platforms every worker that can tell builds (`None`: none can tell). The one rule for
/// what the service promises and for what a submission may ask.
pub(crate) async fn common_platforms(workers: &[Worker]) -> Option<Vec<String>> {
    let mut common: Option<Vec<String>> = None;
    for worker in workers {
        let Some(theirs) = worker.builder.platforms().await else {
            continue;
        };
        common = Some(match common {
            None => theirs,
            Some(ours) => ours.into_iter().filter(|p| theirs.contains(p)).collect(),
        });
    }
    common
}
