//! Starting and stopping the service.
//!
//! On start, builds that a previous process left `running` are marked `failed` ("the service
//! restarted during the build") rather than run again: the engine may still be running or
//! pushing them, and the client that asked gets a clear outcome on its (resumed) log stream and
//! decides itself whether to build again. Builds left `queued` never started, so they are taken
//! up again, in their order, planned anew from the stored request and the kept workspace; the
//! client's resumed stream simply goes on. One that cannot be (its secrets were only ever in the
//! dead process's memory) is failed, saying why. Other workspaces and partial uploads are
//! removed. A graceful shutdown fails everything still active ("the service stopped").
//!
//! Connections are served by our own accept loop so that [`RunningService::crash`] can drop
//! every connection and task at once, as a killed process would (the restart tests need it);
//! [`RunningService::shutdown`] is the graceful way. The loop also enforces the connection
//! limits of [`crate::connections`]: HTTP/1.1 only (TLS in front may speak HTTP/2 to clients),
//! so hyper's header-read timeout covers every request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use imagespec_builder_local::{EngineChoice, LocalBuilder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::blobs::BlobStore;
use crate::config::ServiceConfig;
use crate::connections::{ConnectionLimits, Gate};
use crate::events::Hub;
use crate::ids::now;
use crate::scheduler::Scheduler;
use crate::state::{Shared, Worker};
use crate::store::{Store, StoreError};
use crate::{api, runner};
use imagespec_protocol::BuildState;

/// The message on builds interrupted by a restart.
pub const RESTARTED: &str = "the service restarted during the build";
/// The message on builds interrupted by a graceful shutdown.
pub const STOPPED: &str = "the service stopped during the build";

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the service needs at least one worker")]
    NoWorkers,
    #[error(transparent)]
    Locked(#[from] crate::data_lock::LockError),
}

/// A service to start.
pub struct Service {
    config: ServiceConfig,
    workers: Option<Vec<Worker>>,
}

impl Service {
    pub fn new(config: ServiceConfig) -> Self {
        Service {
            config,
            workers: None,
        }
    }

    /// Uses these workers instead of the configured engines (tests plug in a `TestBuilder`).
    #[must_use]
    pub fn with_workers(mut self, workers: Vec<Worker>) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Opens the state, recovers from a previous run, and starts serving.
    pub async fn start(self) -> Result<RunningService, ServiceError> {
        let config = self.config;
        let data = &config.data_dir;
        let dir_err = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| ServiceError::DataDir { path, source }
        };
        std::fs::create_dir_all(data).map_err(dir_err(data))?;
        // Before anything in the directory is touched: another service may be using it.
        let lock = crate::data_lock::lock(data)?;
        let _ = std::fs::remove_dir_all(data.join("tmp"));
        for sub in ["blobs", "tmp", "workspaces"] {
            let p = data.join(sub);
            std::fs::create_dir_all(&p).map_err(dir_err(&p))?;
        }
        let store = Store::open(&data.join("service.db"))?;
        let interrupted = store
            .fail_interrupted(now(), RESTARTED, &[BuildState::Running])
            .await?;
        if !interrupted.is_empty() {
            tracing::warn!(
                count = interrupted.len(),
                "marked builds interrupted by a restart as failed"
            );
        }
        let queued = store.queued().await?;
        remove_workspaces_but(&data.join("workspaces"), &queued);
        let workers = match self.workers {
            Some(w) => w,
            None => local_workers(&config),
        };
        if workers.is_empty() {
            return Err(ServiceError::NoWorkers);
        }
        let slots: Vec<usize> = workers.iter().map(|w| w.slots).collect();
        let concurrency = config.concurrency.unwrap_or_else(|| slots.iter().sum());
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServiceError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServiceError::Listen {
                addr: config.listen,
                source,
            })?;
        let shared = Arc::new(Shared {
            auth: Auth::new(&config.tokens, &config.limits),
            blobs: BlobStore::new(data.join("blobs"), data.join("tmp")),
            store,
            hub: Arc::new(Hub::default()),
            scheduler: Scheduler::new(slots, concurrency)
                .with_project_cap(config.max_running_per_project),
            gate: Gate::new(&config.connections),
            workers,
            kill: CancellationToken::new(),
            stopping: Default::default(),
            submit_lock: tokio::sync::Mutex::new(()),
            held: Default::default(),
            metrics: Default::default(),
            config,
        });
        runner::take_up_queued(&shared, queued).await;
        tokio::spawn(runner::dispatch(shared.clone()));
        tokio::spawn(crate::gc::periodic(shared.clone()));
        let stop_accepting = CancellationToken::new();
        let app = api::router(shared.clone()).layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            crate::connections::idle_body,
        ));
        tokio::spawn(accept(
            listener,
            app,
            shared.clone(),
            stop_accepting.clone(),
        ));
        tracing::info!(%addr, "imagespec build service listening");
        Ok(RunningService {
            addr,
            shared,
            stop_accepting,
            _lock: lock,
        })
    }
}

/// Removes every build workspace but those of the builds in `keep` (a dead service's leftovers).
fn remove_workspaces_but(dir: &std::path::Path, keep: &[(String, String)]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !keep
            .iter()
            .any(|(id, _)| name.to_str() == Some(id.as_str()))
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// One `LocalBuilder` per configured engine, pushing with the configured credentials only.
fn local_workers(config: &ServiceConfig) -> Vec<Worker> {
    let credentials = config.push_credentials();
    config
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut builder = LocalBuilder::new(EngineChoice::Any, w.endpoint.clone())
                .with_temp_dir(config.data_dir.join("tmp"))
                .with_credentials(credentials.clone());
            if let Some(tls) = &w.tls {
                builder = builder.with_tls(tls.clone());
            }
            Worker::new(
                w.name.clone().unwrap_or_else(|| format!("worker-{i}")),
                Arc::new(builder),
                w.slots,
            )
        })
        .collect()
}

async fn accept(listener: TcpListener, app: Router, shared: Arc<Shared>, stop: CancellationToken) {
    let kill = shared.kill.clone();
    let limits: ConnectionLimits = shared.config.connections;
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
            () = kill.cancelled() => return,
        };
        let admitted = match shared.gate.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(why) => {
                shared.metrics.connection_refused(why.as_str());
                tracing::warn!(%peer, limit = why.as_str(), "connection refused: too many open");
                tokio::spawn(crate::connections::refuse(stream, why));
                continue;
            }
        };
        let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let service = crate::connections::NoteRequests {
            inner: TowerToHyperService::new(app.clone()),
            seen: seen.clone(),
        };
        let (kill, shared) = (kill.clone(), shared.clone());
        tokio::spawn(async move {
            let _admitted = admitted;
            let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    if e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
                        let idle = seen.load(Ordering::Relaxed);
                        shared.metrics.timed_out(if idle { "idle" } else { "header" });
                    }
                    tracing::debug!(%peer, "connection ended: {e}");
                },
                () = kill.cancelled() => {}
            }
        });
    }
}

/// A started service.
pub struct RunningService {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop_accepting: CancellationToken,
    /// The data directory's lock, released when the service is dropped (or crashes).
    _lock: crate::data_lock::DataDirLock,
}

impl RunningService {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops as a killed process would: every connection and build dropped at once, nothing
    /// recorded. The next start marks the interrupted builds failed.
    pub fn crash(self) {
        self.stop_accepting.cancel();
        self.shared.kill.cancel();
    }

    /// Stops accepting, cancels running builds (recorded as failed: "the service stopped
    /// during the build"), fails queued ones, lets log streams send their final event, then
    /// closes everything.
    pub async fn shutdown(self) {
        self.stop_accepting.cancel();
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.scheduler.cancel_all_running();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.shared.scheduler.running() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match self
            .shared
            .store
            .fail_interrupted(now(), STOPPED, &[BuildState::Queued, BuildState::Running])
            .await
        {
            Ok(ids) => ids.iter().for_each(|id| self.shared.hub.bump(id)),
            Err(e) => tracing::error!("cannot record the interrupted builds: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.shared.kill.cancel();
    }
}
