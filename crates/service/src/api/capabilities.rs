//! `GET /v1/capabilities`: the platforms this service's workers can build, so that a client
//! refuses a spec the service cannot build before it uploads anything; and the rule that sends
//! a build only to workers that build its platforms (a pool may mix workers with and without
//! emulation).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use imagespec_protocol::ServiceCapabilities;

use crate::state::{Shared, Worker};

/// The platforms some worker builds (a build goes to a worker that builds all of its platforms:
/// [`building`]).
pub async fn capabilities(State(shared): State<Arc<Shared>>) -> Json<ServiceCapabilities> {
    Json(ServiceCapabilities {
        platforms: known_platforms(&shared.workers).await,
    })
}

/// The platforms the workers that can tell build, together (`None`: none can tell).
pub(crate) async fn known_platforms(workers: &[Worker]) -> Option<Vec<String>> {
    let mut known: Option<BTreeSet<String>> = None;
    for worker in workers {
        if let Some(theirs) = worker.builder.platforms().await {
            known.get_or_insert_default().extend(theirs);
        }
    }
    known.map(|k| k.into_iter().collect())
}

/// Which of the workers `among` build every one of `platforms` (a worker that cannot tell is
/// trusted: its build says). The one rule for where a build may go.
pub(crate) async fn building(
    workers: &[Worker],
    among: &[usize],
    platforms: &BTreeSet<&str>,
) -> Vec<usize> {
    let mut able = Vec::new();
    for &i in among {
        let builds_all = match workers[i].builder.platforms().await {
            Some(theirs) => platforms.iter().all(|p| theirs.iter().any(|t| t == p)),
            None => true,
        };
        if builds_all {
            able.push(i);
        }
    }
    able
}
