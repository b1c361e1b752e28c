//! Running builds: the dispatcher hands queued builds to free workers, and each build runs
//! through its worker's `ImageBuilder` with its events streamed into the store.

use std::sync::Arc;
use std::time::Duration;

use imagespec_core::build::{
    BuildError, BuildErrorKind, BuildOutput, EngineError, EngineOptions, Outcome, Planned,
    SecretValues,
};
use imagespec_core::resolve_image;
use imagespec_protocol::{BuildState, ErrorKind, SubmitBuild, WireBuildError, WireEvent};
use tokio_util::sync::CancellationToken;

use crate::events::LogWriter;
use crate::held::Held;
use crate::ids::now;
use crate::naming::Scope;
use crate::scheduler::Assignment;
use crate::state::Shared;
use crate::store::BuildRow;
use crate::workspace;

/// Starts queued builds whenever a worker is free, until the service is killed.
pub async fn dispatch(shared: Arc<Shared>) {
    loop {
        while let Some(job) = shared.scheduler.next() {
            let s = shared.clone();
            tokio::spawn(async move {
                let (id, worker) = (job.build_id.clone(), job.worker);
                tokio::select! {
                    () = run(&s, job) => {}
                    () = s.kill.cancelled() => {}
                }
                s.scheduler.done(&id, worker);
            });
        }
        tokio::select! {
            () = shared.scheduler.wake.notified() => {}
            () = shared.kill.cancelled() => return,
        }
    }
}

async fn run(shared: &Shared, job: Assignment) {
    let id = job.build_id.as_str();
    let row = match shared.store.get(id, None).await {
        Ok(Some(row)) if row.status == BuildState::Queued => row,
        Ok(_) => return,
        Err(e) => {
            tracing::error!(build = id, "cannot read the build: {e}");
            return;
        }
    };
    let worker = &shared.workers[job.worker];
    let writer = LogWriter::start(
        shared.store.clone(),
        shared.hub.clone(),
        id.to_string(),
        row.events,
        shared.kill.clone(),
    );
    if let Err(e) = shared.store.set_running(id, &worker.name, now()).await {
        tracing::error!(build = id, "cannot mark the build running: {e}");
    }
    writer.emit(WireEvent::Status {
        message: format!("running on worker {}", worker.name),
    });
    shared.hub.bump(id);
    shared.metrics.started(&row.project, id);
    let started = std::time::Instant::now();
    let (result, last) = build_on_workers(shared, &row, id, job.worker, &writer, &job.cancel).await;
    let worker = &shared.workers[last];
    let (status, digest, error) = match result {
        Ok(out) => (BuildState::Succeeded, out.digest, None),
        Err(_) if job.cancel.is_cancelled() && shared.is_stopping() => (
            BuildState::Failed,
            None,
            Some(wire(
                ErrorKind::Unavailable,
                "the service stopped during the build",
            )),
        ),
        Err(_) if job.cancel.is_cancelled() => (
            BuildState::Cancelled,
            None,
            Some(wire(ErrorKind::Cancelled, "cancelled")),
        ),
        // The worker's engine went away mid-build (`Unavailable` from a builder that had
        // started): the worker is lost, and that is the cause the client is told, not a
        // build failure of its spec.
        Err(e) if e.kind == BuildErrorKind::Unavailable => {
            tracing::warn!(build = id, worker = %worker.name, "worker lost: {}", e.message);
            (
                BuildState::Failed,
                None,
                Some(WireBuildError {
                    kind: ErrorKind::Unavailable,
                    message: format!("worker `{}` lost: {}", worker.name, e.message),
                    step: e.step.clone(),
                    log_tail: e.log_tail.clone(),
                }),
            )
        }
        Err(e) => (BuildState::Failed, None, Some(WireBuildError::from(&e))),
    };
    writer.emit(WireEvent::Status {
        message: match &error {
            None => format!("built {}", row.image),
            Some(e) => format!("build {}: {}", status.as_str(), e.message),
        },
    });
    writer.flush().await;
    if let Err(e) = shared.store.finish(id, status, digest, error, now()).await {
        tracing::error!(build = id, "cannot record the end of the build: {e}");
    }
    shared
        .metrics
        .finished(&row.project, id, status.as_str(), Some(started.elapsed()));
    shared.hub.bump(id);
    shared.hub.forget(id);
    workspace::remove(&shared.workspace(id));
    tracing::info!(build = id, status = status.as_str(), image = %row.image, "build finished");
}

/// Workers one build is tried on at most when its worker is lost: the first and two others.
pub const MAX_WORKER_ATTEMPTS: usize = 3;

/// Runs the build on worker `first`; when that worker is lost (`Unavailable`) before the push
/// started and another worker's engine answers, runs it again there, each worker at most once
/// and at most [`MAX_WORKER_ATTEMPTS`] in all, recording each move as a status event. Returns
/// the last attempt's result and worker. After a push started nothing is retried: the
/// registry may hold part of it, and a second build's push would race what the first left.
///
/// The retry runs in the lost worker's scheduler slot (that worker cannot build anyway), so
/// the service's concurrency holds; the worker it moves to may run one build over its slots.
async fn build_on_workers(
    shared: &Shared,
    row: &BuildRow,
    id: &str,
    first: usize,
    writer: &LogWriter,
    cancel: &CancellationToken,
) -> (Result<BuildOutput, BuildError>, usize) {
    // Taken once for every attempt: a retry builds the same plan with the same secrets (they
    // are dropped when the last attempt ends), not a plan recovered from the database.
    let held = match shared.held.take(id) {
        Some(held) => held,
        None => match recover(shared, row, id).await {
            Ok(held) => held,
            Err(e) => return (Err(e), first),
        },
    };
    let mut tried = vec![first];
    loop {
        let worker = tried[tried.len() - 1];
        let result = build(shared, row, worker, writer, cancel, &held).await;
        let lost = match &result {
            Err(e) if e.kind == BuildErrorKind::Unavailable && !cancel.is_cancelled() => e,
            _ => return (result, worker),
        };
        if tried.len() >= MAX_WORKER_ATTEMPTS || push_started(shared, row, writer).await {
            return (result, worker);
        }
        let Some(next) = answering_worker(shared, &held.workers, &tried).await else {
            return (result, worker);
        };
        let (from, to) = (&shared.workers[worker].name, &shared.workers[next].name);
        tracing::warn!(build = id, worker = %from, retry_on = %to, "worker lost: {}", lost.message);
        writer.emit(WireEvent::Status {
            message: format!(
                "worker {from} lost: {}; retrying on worker {to}",
                lost.message
            ),
        });
        if let Err(e) = shared.store.set_worker(id, to).await {
            tracing::error!(build = id, "cannot record the build's new worker: {e}");
        }
        tried.push(next);
    }
}

/// Whether any attempt of this build reached its push: a push transfer, or the status line a
/// builder writes as it starts pushing (`pushing <image>`, `pushing the index of ...`).
async fn push_started(shared: &Shared, row: &BuildRow, writer: &LogWriter) -> bool {
    writer.flush().await;
    match shared
        .store
        .events_from(&row.id, row.events, usize::MAX >> 1)
        .await
    {
        Ok(events) => events.iter().any(|(_, e)| match e {
            WireEvent::Transfer { direction, .. } => {
                *direction == imagespec_core::build::TransferDirection::Push
            }
            WireEvent::Status { message } => message.to_ascii_lowercase().starts_with("pushing"),
            _ => false,
        }),
        // Unknown is not safe.
        Err(e) => {
            tracing::error!(build = %row.id, "cannot read the build's events: {e}");
            true
        }
    }
}

/// The first worker not tried yet that can run the build (`able`) and whose engine answers a
/// probe.
async fn answering_worker(shared: &Shared, able: &[usize], tried: &[usize]) -> Option<usize> {
    for (i, w) in shared.workers.iter().enumerate() {
        if tried.contains(&i) || !able.contains(&i) {
            continue;
        }
        match w.probe().await {
            Ok(_) => return Some(i),
            Err(why) => tracing::debug!(worker = %w.name, "not a retry target: {why}"),
        }
    }
    None
}

fn wire(kind: ErrorKind, message: &str) -> WireBuildError {
    WireBuildError {
        kind,
        message: message.to_string(),
        step: None,
        log_tail: Vec::new(),
    }
}

/// What a build whose secrets a restart lost fails with (they were only ever in memory).
pub const SECRETS_LOST: &str =
    "the build's secrets were lost with the service restart; submit again";

/// Takes up the builds a dead service left queued (oldest first): each planned again from its
/// stored request and workspace and queued for the workers that can run it, or failed, saying
/// why, when it cannot be (its secrets were lost with the process).
pub(crate) async fn take_up_queued(shared: &Shared, queued: Vec<(String, String)>) {
    for (id, project) in queued {
        let row = match shared.store.get(&id, None).await {
            Ok(Some(row)) => row,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(build = %id, "cannot read a queued build: {e}");
                continue;
            }
        };
        match recover(shared, &row, &id).await {
            Ok(held) => {
                shared.queue(&project, &id, held);
                tracing::info!(build = %id, %project, "queued build taken up after a restart");
            }
            Err(e) => {
                let message = format!(
                    "the build was queued when the service restarted, and cannot run: {}",
                    e.message
                );
                tracing::warn!(build = %id, %project, "{message}");
                if let Err(e) = shared.store.fail_queued(&id, now(), &message).await {
                    tracing::error!(build = %id, "cannot record the failed build: {e}");
                }
                workspace::remove(&shared.workspace(&id));
            }
        }
    }
}

/// A build's plan and secrets: held since its submission, or, when a restart lost them, planned
/// again from the stored request (the files hashed a second time, the only case they are).
async fn recover(shared: &Shared, row: &BuildRow, id: &str) -> Result<Held, BuildError> {
    let internal = |m: String| BuildError::new(BuildErrorKind::Internal, m);
    let submitted: SubmitBuild = serde_json::from_str(&row.request)
        .map_err(|e| internal(format!("stored request unreadable: {e}")))?;
    if mounts_secrets(&submitted) {
        // Never built without them (nor with this machine's environment instead).
        return Err(internal(SECRETS_LOST.to_string()));
    }
    let loaded = crate::api::builds::load(&submitted, &shared.workspace(id))
        .map_err(|e| internal(e.problem().detail))?;
    let resolved = resolve_image(&loaded).map_err(|e| internal(e.to_string()))?;
    let scope = Scope::of(&shared.config, &row.project);
    let (planned, accepting) =
        crate::planning::plan(&shared.workers, &scope, &loaded, &resolved)
            .map_err(|e| BuildError::new(BuildErrorKind::Unsupported, e.to_string()))?;
    let platforms = loaded.spec.platforms().into_iter().collect();
    let workers = crate::api::capabilities::building(&shared.workers, &accepting, &platforms).await;
    Ok(Held {
        planned,
        secrets: Default::default(),
        workers,
    })
}

/// Whether a stored request's spec, or a base spec in it, mounts secrets (whose values were only
/// ever in memory).
fn mounts_secrets(submitted: &SubmitBuild) -> bool {
    let mut spec = imagespec_core::spec::decode_spec(&submitted.spec.to_string(), None).spec;
    imagespec_core::spec::normalize(&mut spec);
    let mut chain = Some(&spec);
    while let Some(s) = chain {
        if !s.pip_secret_mounts.is_empty() {
            return true;
        }
        chain = s.base_spec();
    }
    false
}

/// Runs the build's plan on the worker through the core engine (forced: the existence was
/// checked at submission), honouring cancellation.
async fn build(
    shared: &Shared,
    row: &BuildRow,
    worker: usize,
    writer: &LogWriter,
    cancel: &CancellationToken,
    held: &Held,
) -> Result<BuildOutput, BuildError> {
    let scope = Scope::of(&shared.config, &row.project);
    let worker = &shared.workers[worker];
    // The worker the scheduler chose must accept the spec too: the engine's checks again, on
    // the kept name (nothing is hashed).
    let planned =
        crate::planning::plan_on(worker, &scope, &held.planned.spec, &held.planned.resolved)
            .map_err(|e| BuildError::new(BuildErrorKind::Unsupported, e.to_string()))?;
    // One image per build: a base spec was the client's build before this one.
    let top = Planned {
        base: None,
        ..planned
    };
    let builder = worker.builder.clone();
    let options = EngineOptions {
        force: true,
        events: writer.sink(),
        cancel: cancel.clone(),
        // Only the client's values: the worker reads no secret from this machine.
        ..crate::planning::options(
            &scope,
            builder.as_ref(),
            SecretValues::Supplied(held.secrets.clone()),
        )
    };
    let engine = crate::planning::engine(builder);
    let grace = Duration::from_secs(shared.config.cancel_grace_seconds);
    let fut = engine.ensure_planned(&top, &options, false);
    tokio::pin!(fut);
    let result = tokio::select! {
        r = &mut fut => r,
        // A cancelled builder gets a grace period to stop and clean up, then it is dropped.
        () = cancel.cancelled() => match tokio::time::timeout(grace, &mut fut).await {
            Ok(Ok(out)) => Ok(out),
            _ => return Err(BuildError::new(BuildErrorKind::Cancelled, "cancelled")),
        },
    };
    match result {
        Ok(Outcome {
            output: Some(output),
            ..
        }) => Ok(output),
        Ok(outcome) => Err(BuildError::new(
            BuildErrorKind::Internal,
            format!("the engine built nothing ({:?})", outcome.action),
        )),
        Err(EngineError::Build { source, .. }) => Err(*source),
        Err(e) => Err(BuildError::new(BuildErrorKind::Unsupported, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_request_that_mounts_secrets_cannot_be_recovered() {
        let request = |spec: serde_json::Value| SubmitBuild {
            spec,
            files: Default::default(),
            target: "x:1".into(),
            platforms: Vec::new(),
            force: false,
            base_image: None,
            flytekit_version: None,
            union_version: None,
            secrets: Default::default(),
        };
        let mounts = serde_json::json!([["env:PIP_TOKEN", "/run/secrets/t"]]);
        assert!(mounts_secrets(&request(
            serde_json::json!({"name": "x", "pip_secret_mounts": mounts})
        )));
        assert!(mounts_secrets(&request(serde_json::json!({
            "name": "x",
            "base_image": {"name": "b", "pip_secret_mounts": mounts}
        }))));
        assert!(!mounts_secrets(&request(serde_json::json!({"name": "x"}))));
        assert!(SECRETS_LOST.contains("submit again"));
    }
}
