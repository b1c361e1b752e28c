//! What every part of a running service shares.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use imagespec_core::build::ImageBuilder;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::blobs::BlobStore;
use crate::config::ServiceConfig;
use crate::events::Hub;
use crate::metrics::Metrics;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// A builder that runs builds, with how many at once.
#[derive(Clone)]
pub struct Worker {
    pub name: String,
    pub builder: Arc<dyn ImageBuilder>,
    pub slots: usize,
}

impl Worker {
    pub fn new(name: impl Into<String>, builder: Arc<dyn ImageBuilder>, slots: usize) -> Self {
        Worker {
            name: name.into(),
            builder,
            slots: slots.max(1),
        }
    }
}

/// How long one worker's engine gets to answer a probe: longer than a healthy engine's ping,
/// shorter than a load balancer's probe timeout.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Worker {
    /// Whether this worker can take a build now (its engine answers), with what it found or
    /// why not: the one rule for `/v1/ready` and for picking a worker to retry on.
    pub async fn probe(&self) -> Result<String, String> {
        match tokio::time::timeout(PROBE_TIMEOUT, self.builder.readiness()).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "the engine did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            )),
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("builder", &self.builder.name())
            .field("slots", &self.slots)
            .finish()
    }
}

pub struct Shared {
    pub config: ServiceConfig,
    pub store: Store,
    pub blobs: BlobStore,
    pub hub: Arc<Hub>,
    pub scheduler: Scheduler,
    /// Open connections, against the configured caps.
    pub gate: crate::connections::Gate,
    pub workers: Vec<Worker>,
    pub auth: Auth,
    pub metrics: Metrics,
    /// Fired to stop everything at once without recording anything (a crash, as far as the
    /// stored state is concerned).
    pub kill: CancellationToken,
    /// Set during a graceful shutdown: interrupted builds are recorded as failed, not cancelled.
    pub stopping: AtomicBool,
    /// Serialises "is this image already being built? if not, queue it".
    pub submit_lock: tokio::sync::Mutex<()>,
    /// Queued builds' plans and secrets, in memory only ([`crate::held`]).
    pub held: crate::held::HeldBuilds,
}

impl Shared {
    pub fn workspace(&self, build_id: &str) -> PathBuf {
        self.config.data_dir.join("workspaces").join(build_id)
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Holds a queued build's plan and secrets, then queues it for the workers that can run it
    /// (held first: the dispatcher takes them as it starts the build).
    pub fn queue(&self, project: &str, id: &str, held: crate::held::Held) {
        let workers = held.workers.clone();
        self.held.hold(id, held);
        self.metrics.queued(project, id);
        self.scheduler.enqueue_for(project, id, &workers);
    }
}
