//! The imagespec build service (`imagespec serve`): builds ImageSpec images for remote clients
//! (the `union`/`remote` builder of `imagespec-builder-remote`) and pushes them to the
//! project's namespace of its own registry, or to a registry the operator allowed the project
//! ([`naming::Scope`]: one rule for pushes, existence checks and base images).
//!
//! How a build goes:
//! 1. the client asks which of its files' blobs the service lacks for its project
//!    (`POST /v1/blobs/missing`) and uploads only those (`PUT /v1/blobs/{digest}`, verified);
//! 2. it submits the spec, a manifest (relative path → digest) and the name it computed
//!    (`POST /v1/builds`); the service lays the files out in a fresh workspace, loads the spec
//!    there, recomputes the name and refuses a mismatch, plans it through the core engine for
//!    its workers ([`planning`]: the engine's capability checks, preflight, base image and
//!    existence check), then queues the build with its plan and build secrets held in memory
//!    ([`held`]; an identical request while one is active gets the same build);
//! 3. a free worker (a local Docker/Podman engine) builds and pushes it; the events are stored
//!    and streamed live (`GET /v1/builds/{id}/logs`, resumable server-sent events).
//!
//! State lives in `<data_dir>` (locked by one service at a time, [`data_lock`]): `service.db`
//! (SQLite: builds, events), `blobs/<project>/`,
//! `workspaces/<build>/` (only while a build is active) and `tmp/` (uploads in progress).
//! See [`server`] for what happens to interrupted builds on restart.
//!
//! Operating it: `/v1/health` (liveness), `/v1/ready` (a worker's engine answers),
//! `/metrics` ([`metrics`]), and an access log line per request ([`logging`]). Slow clients are
//! cut off ([`connections`]); projects share the workers fairly ([`scheduler`]); old builds,
//! logs and blobs are collected ([`gc`]).

pub mod api;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod connections;
pub mod data_lock;
pub mod events;
pub mod gc;
pub mod held;
pub mod ids;
pub mod logging;
pub mod metrics;
pub mod naming;
pub mod planning;
pub mod runner;
pub mod scheduler;
pub mod server;
pub mod state;
pub mod store;
pub mod workspace;

pub use config::{ConfigError, ServiceConfig};
pub use server::{RESTARTED, RunningService, STOPPED, Service, ServiceError};
pub use state::Worker;
