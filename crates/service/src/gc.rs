//! Garbage collection of blobs, builds and logs, by age and by size (`gc:` in the
//! configuration). It runs every `interval_seconds` in the service, and once on demand with
//! `imagespec serve --gc-once` (while no service holds the data directory).
//!
//! What goes, in this order:
//! 1. finished builds (rows and logs) that ended more than `keep_builds_days` ago;
//! 2. while the stored logs exceed `max_log_bytes`: the logs of the oldest finished builds
//!    (their status stays, and a log stream of one ends at once with it);
//! 3. blobs not used for `keep_blobs_days`;
//! 4. while the blobs exceed `max_blob_bytes`: the least recently used blobs first.
//!
//! What never goes: a queued or running build, its log, or a blob such a build references;
//! nor a blob used in the last [`RECENTLY_USED`] (a client that was just told the service has
//! it is about to submit a build that references it). Size caps can therefore be exceeded for
//! a while, never at the cost of a build in flight.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use imagespec_protocol::SubmitBuild;
use marked_yaml::Spanned;
use serde::Deserialize;

use crate::blobs::BlobStore;
use crate::config::{ConfigError, ServiceConfig, spanned_at_least};
use crate::state::Shared;
use crate::store::{Store, StoreError};

/// Blobs used more recently than this are kept whatever the caps say.
pub const RECENTLY_USED: Duration = Duration::from_secs(10 * 60);

const DAY: u64 = 24 * 60 * 60;

/// The configured collection; `None` switches that part off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcConfig {
    /// Between runs in the service; `None`: only on demand.
    pub interval: Option<Duration>,
    pub keep_builds: Option<Duration>,
    pub keep_blobs: Option<Duration>,
    pub max_blob_bytes: Option<u64>,
    pub max_log_bytes: Option<u64>,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval: Some(Duration::from_secs(3600)),
            keep_builds: Some(Duration::from_secs(30 * DAY)),
            keep_blobs: Some(Duration::from_secs(30 * DAY)),
            max_blob_bytes: None,
            max_log_bytes: None,
        }
    }
}

/// `gc:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGc {
    #[serde(default)]
    interval_seconds: Option<Spanned<String>>,
    #[serde(default)]
    keep_builds_days: Option<Spanned<String>>,
    #[serde(default)]
    keep_blobs_days: Option<Spanned<String>>,
    #[serde(default)]
    max_blob_bytes: Option<Spanned<String>>,
    #[serde(default)]
    max_log_bytes: Option<Spanned<String>>,
}

impl RawGc {
    /// `0` switches a part off (written out, so it is a choice, not a default); a size cap
    /// must leave room for at least one file.
    pub(crate) fn check(self, path: &std::path::Path) -> Result<GcConfig, ConfigError> {
        let d = GcConfig::default();
        let off_or =
            |v: Option<Spanned<String>>, default: Option<Duration>, unit: u64, field: &str| {
                Ok::<_, ConfigError>(match v {
                    None => default,
                    Some(v) => match spanned_at_least(path, &v, 0, &format!("gc.{field}"))? {
                        0 => None,
                        n => Some(Duration::from_secs(n.saturating_mul(unit))),
                    },
                })
            };
        let bytes = |v: Option<Spanned<String>>, field: &str| {
            v.map(|v| spanned_at_least(path, &v, 1024 * 1024, &format!("gc.{field}")))
                .transpose()
        };
        Ok(GcConfig {
            interval: off_or(self.interval_seconds, d.interval, 1, "interval_seconds")?,
            keep_builds: off_or(
                self.keep_builds_days,
                d.keep_builds,
                DAY,
                "keep_builds_days",
            )?,
            keep_blobs: off_or(self.keep_blobs_days, d.keep_blobs, DAY, "keep_blobs_days")?,
            max_blob_bytes: bytes(self.max_blob_bytes, "max_blob_bytes")?,
            max_log_bytes: bytes(self.max_log_bytes, "max_log_bytes")?,
        })
    }
}

/// What one run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Finished builds removed for age (with their logs).
    pub builds: u64,
    /// Finished builds whose log was removed for size.
    pub logs: u64,
    pub log_bytes: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// Why a run stopped (what it removed before that stays removed).
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
    #[error("blob store task failed: {0}")]
    Join(String),
    #[error(transparent)]
    Start(#[from] crate::ServiceError),
}

/// One collection at `now` (a parameter, so tests need no clock).
pub async fn collect(
    store: &Store,
    blobs: &BlobStore,
    config: &GcConfig,
    now: SystemTime,
) -> Result<GcReport, GcError> {
    let mut report = GcReport::default();
    let unix = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    if let Some(keep) = config.keep_builds {
        report.builds = store
            .remove_finished_before(unix(now) - keep.as_secs() as i64)
            .await?;
    }
    if let Some(cap) = config.max_log_bytes {
        let mut total = store.log_bytes().await?;
        if total > cap {
            let mut doomed = Vec::new();
            for log in store.finished_logs().await? {
                if total <= cap {
                    break;
                }
                total -= log.bytes.min(total);
                report.log_bytes += log.bytes;
                doomed.push(log.build_id);
            }
            report.logs = doomed.len() as u64;
            store.remove_logs(doomed).await?;
        }
    }
    // Read after the builds: a build queued from here on references blobs that were just
    // used, which the recent-use rule keeps.
    let protected = referenced(store).await?;
    let (blobs, config) = (blobs.clone(), *config);
    let removed =
        tokio::task::spawn_blocking(move || remove_blobs(&blobs, &config, &protected, now))
            .await
            .map_err(|e| GcError::Join(e.to_string()))??;
    (report.blobs, report.blob_bytes) = removed;
    Ok(report)
}

/// `(project, digest)` of every blob a queued or running build references.
async fn referenced(store: &Store) -> Result<HashSet<(String, String)>, GcError> {
    let mut out = HashSet::new();
    for (project, request) in store.active_requests().await? {
        // The runner reads the same JSON the same way; one it cannot read protects nothing,
        // and that build fails on its own.
        let Ok(submitted) = serde_json::from_str::<SubmitBuild>(&request) else {
            tracing::warn!(%project, "gc: an active build's request is unreadable");
            continue;
        };
        out.extend(
            submitted
                .files
                .into_values()
                .map(|f| (project.clone(), f.digest)),
        );
    }
    Ok(out)
}

/// Steps 3 and 4; returns (blobs, bytes) removed.
fn remove_blobs(
    blobs: &BlobStore,
    config: &GcConfig,
    protected: &HashSet<(String, String)>,
    now: SystemTime,
) -> Result<(u64, u64), GcError> {
    let mut entries = blobs.entries()?;
    let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
    // Least recently used first.
    entries.sort_by_key(|e| e.used);
    let age = |e: &crate::blobs::BlobEntry| now.duration_since(e.used).unwrap_or_default();
    let (mut count, mut bytes) = (0, 0);
    for e in &entries {
        if protected.contains(&(e.project.clone(), e.digest.clone())) || age(e) < RECENTLY_USED {
            continue;
        }
        let too_old = config.keep_blobs.is_some_and(|keep| age(e) >= keep);
        let over = config.max_blob_bytes.is_some_and(|cap| total > cap);
        if !(too_old || over) {
            continue;
        }
        blobs.remove(&e.project, &e.digest)?;
        total -= e.bytes;
        count += 1;
        bytes += e.bytes;
    }
    Ok((count, bytes))
}

/// Collects every `interval` in a running service, until it is killed.
pub async fn periodic(shared: Arc<Shared>) {
    let Some(interval) = shared.config.gc.interval else {
        return;
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shared.kill.cancelled() => return,
        }
        run_logged(&shared).await;
    }
}

async fn run_logged(shared: &Shared) {
    match collect(
        &shared.store,
        &shared.blobs,
        &shared.config.gc,
        SystemTime::now(),
    )
    .await
    {
        Ok(report) => {
            shared.metrics.collected(&report);
            tracing::info!(
                builds = report.builds,
                logs = report.logs,
                log_bytes = report.log_bytes,
                blobs = report.blobs,
                blob_bytes = report.blob_bytes,
                "garbage collection done"
            );
        }
        Err(e) => {
            shared.metrics.gc_failed();
            tracing::error!("garbage collection failed: {e}");
        }
    }
}

/// `imagespec serve --gc-once`: one collection of `config`'s data directory, holding its lock
/// (so it refuses while a service runs there, naming that service's pid).
pub async fn run_once(config: &ServiceConfig) -> Result<GcReport, GcError> {
    let data = &config.data_dir;
    let _lock = crate::data_lock::lock(data).map_err(crate::ServiceError::from)?;
    let store = Store::open(&data.join("service.db"))?;
    let blobs = BlobStore::new(data.join("blobs"), data.join("tmp"));
    collect(&store, &blobs, &config.gc, SystemTime::now()).await
}
