//! The service's state in an embedded SQLite database (`<data_dir>/service.db`): builds and
//! their log events, so that a restart loses nothing.
//!
//! Every query is scoped by project where a client can reach it, so one project's builds are
//! invisible to another. Calls run on the blocking pool behind one connection: SQLite
//! serialises writers anyway, and builds write their logs in batches.

use std::path::Path;
use std::sync::{Arc, Mutex};

use imagespec_protocol::{BuildInfo, BuildState, WireBuildError, WireEvent};
use rusqlite::{Connection, OptionalExtension, params};

/// A database failure (always a service bug or a broken disk: reported as 500).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Corrupt(String),
    #[error("database task failed: {0}")]
    Join(String),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS builds (
    id          TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    target      TEXT NOT NULL,
    image       TEXT NOT NULL,
    status      TEXT NOT NULL,
    request     TEXT NOT NULL,
    worker      TEXT,
    digest      TEXT,
    error       TEXT,
    events      INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS builds_by_image ON builds (project, image, status);
CREATE INDEX IF NOT EXISTS builds_by_status ON builds (status);
CREATE TABLE IF NOT EXISTS events (
    build_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (build_id, seq)
) WITHOUT ROWID;
";

/// A build row.
#[derive(Debug, Clone)]
pub struct BuildRow {
    pub id: String,
    pub project: String,
    pub target: String,
    pub image: String,
    pub status: BuildState,
    /// The accepted submission (spec, files, platforms, base image) as JSON.
    pub request: String,
    pub worker: Option<String>,
    pub digest: Option<String>,
    pub error: Option<WireBuildError>,
    pub events: u64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl BuildRow {
    pub fn info(&self) -> BuildInfo {
        BuildInfo {
            id: self.id.clone(),
            status: self.status,
            target: self.target.clone(),
            image: self.image.clone(),
            digest: self.digest.clone(),
            error: self.error.clone(),
            worker: self.worker.clone(),
            events: self.events,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

/// The database.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the blocking pool with the connection.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Marks the builds in one of `states` as failed, with an event saying why; returns their
    /// ids. At start, before serving, for the builds a dead service left running; at shutdown,
    /// for everything still active.
    pub async fn fail_interrupted(
        &self,
        now: i64,
        message: &str,
        states: &[BuildState],
    ) -> Result<Vec<String>, StoreError> {
        let wanted: Vec<&'static str> = states.iter().map(|s| s.as_str()).collect();
        self.fail_where(now, message, move |status, _| wanted.contains(&status))
            .await
    }

    /// Marks one queued build failed, with an event saying why (a queued build a restart could
    /// not take up again).
    pub async fn fail_queued(&self, id: &str, now: i64, message: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.fail_where(now, message, move |status, row| {
            status == "queued" && row == id
        })
        .await
        .map(|_| ())
    }

    /// The builds left queued, oldest first, as (id, project).
    pub async fn queued(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.string_pairs(
            "SELECT id, project FROM builds WHERE status = 'queued' ORDER BY created_at, rowid",
        )
        .await
    }

    /// The rows of a two-text-column query.
    async fn string_pairs(&self, sql: &'static str) -> Result<Vec<(String, String)>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn fail_where(
        &self,
        now: i64,
        message: &str,
        matches: impl Fn(&str, &str) -> bool + Send + 'static,
    ) -> Result<Vec<String>, StoreError> {
        let error = serde_json::to_string(&WireBuildError {
            kind: imagespec_protocol::ErrorKind::Unavailable,
            message: message.to_string(),
            step: None,
            log_tail: Vec::new(),
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let event = serde_json::to_string(&WireEvent::Status {
            message: message.to_string(),
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let ids: Vec<(String, i64)> = {
                let mut stmt = tx.prepare(
                    "SELECT id, events, status FROM builds WHERE status IN ('queued', 'running')",
                )?;
                let rows: Vec<(String, i64, String)> = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                rows.into_iter()
                    .filter(|(id, _, status)| matches(status, id))
                    .map(|(id, events, _)| (id, events))
                    .collect()
            };
            for (id, events) in &ids {
                tx.execute(
                    "INSERT OR IGNORE INTO events (build_id, seq, data) VALUES (?1, ?2, ?3)",
                    params![id, events, event],
                )?;
                tx.execute(
                    "UPDATE builds SET status = 'failed', error = ?2, finished_at = ?3, events = events + 1 WHERE id = ?1",
                    params![id, error, now],
                )?;
            }
            tx.commit()?;
            Ok(ids.into_iter().map(|(id, _)| id).collect())
        })
        .await
    }

    pub async fn insert(&self, row: BuildRow) -> Result<(), StoreError> {
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO builds (id, project, target, image, status, request, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![row.id, row.project, row.target, row.image, row.status.as_str(), row.request, row.created_at],
            )?;
            Ok(())
        })
        .await
    }

    /// The queued or running build of `image` for `project`, if any.
    pub async fn active_for(
        &self,
        project: &str,
        image: &str,
    ) -> Result<Option<BuildRow>, StoreError> {
        let (project, image) = (project.to_string(), image.to_string());
        self.call(move |conn| {
            let id: Option<String> = conn
                .query_row(
                    "SELECT id FROM builds WHERE project = ?1 AND image = ?2 AND status IN ('queued', 'running') ORDER BY created_at, rowid LIMIT 1",
                    params![project, image],
                    |r| r.get(0),
                )
                .optional()?;
            match id {
                Some(id) => get(conn, &id, None),
                None => Ok(None),
            }
        })
        .await
    }

    /// A build, only if it belongs to `project` (`None` reads any project: internal use).
    pub async fn get(
        &self,
        id: &str,
        project: Option<&str>,
    ) -> Result<Option<BuildRow>, StoreError> {
        let (id, project) = (id.to_string(), project.map(str::to_string));
        self.call(move |conn| get(conn, &id, project.as_deref()))
            .await
    }

    pub async fn set_running(&self, id: &str, worker: &str, now: i64) -> Result<(), StoreError> {
        let (id, worker) = (id.to_string(), worker.to_string());
        self.call(move |conn| {
            conn.execute(
                "UPDATE builds SET status = 'running', worker = ?2, started_at = ?3 WHERE id = ?1 AND status = 'queued'",
                params![id, worker, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the worker a running build moved to (a retry after its worker was lost).
    pub async fn set_worker(&self, id: &str, worker: &str) -> Result<(), StoreError> {
        let (id, worker) = (id.to_string(), worker.to_string());
        self.call(move |conn| {
            conn.execute(
                "UPDATE builds SET worker = ?2 WHERE id = ?1 AND status = 'running'",
                params![id, worker],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the end of a build.
    pub async fn finish(
        &self,
        id: &str,
        status: BuildState,
        digest: Option<String>,
        error: Option<WireBuildError>,
        now: i64,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let error = error
            .map(|e| serde_json::to_string(&e))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.call(move |conn| {
            conn.execute(
                "UPDATE builds SET status = ?2, digest = ?3, error = ?4, finished_at = ?5 WHERE id = ?1",
                params![id, status.as_str(), digest, error, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Appends events with offsets `first..`, in one transaction.
    pub async fn append_events(
        &self,
        id: &str,
        first: u64,
        events: Vec<WireEvent>,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let encoded: Vec<String> = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.call(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO events (build_id, seq, data) VALUES (?1, ?2, ?3)",
                )?;
                for (i, data) in encoded.iter().enumerate() {
                    stmt.execute(params![id, first + i as u64, data])?;
                }
            }
            tx.execute(
                "UPDATE builds SET events = ?2 WHERE id = ?1",
                params![id, first + encoded.len() as u64],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Events from `offset` on, at most `limit`.
    pub async fn events_from(
        &self,
        id: &str,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<(u64, WireEvent)>, StoreError> {
        let id = id.to_string();
        self.call(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT seq, data FROM events WHERE build_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3")?;
            let rows = stmt.query_map(params![id, offset, limit as i64], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, data) = row?;
                let event = serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("event {seq}: {e}")))?;
                out.push((seq, event));
            }
            Ok(out)
        })
        .await
    }
}

/// A finished build's stored log, for garbage collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLog {
    pub build_id: String,
    pub finished_at: i64,
    pub bytes: u64,
}

/// What garbage collection asks of the database. Only finished builds are ever removed: a
/// queued or running build, and its log, are not touched.
impl Store {
    /// The `(project, accepted submission JSON)` of every queued or running build.
    pub async fn active_requests(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.string_pairs(
            "SELECT project, request FROM builds WHERE status IN ('queued', 'running')",
        )
        .await
    }

    /// Removes finished builds (rows and events) that ended before `cutoff`; returns how many.
    pub async fn remove_finished_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let finished =
                "status NOT IN ('queued', 'running') AND COALESCE(finished_at, created_at) < ?1";
            tx.execute(
                &format!(
                    "DELETE FROM events WHERE build_id IN (SELECT id FROM builds WHERE {finished})"
                ),
                params![cutoff],
            )?;
            let n = tx.execute(
                &format!("DELETE FROM builds WHERE {finished}"),
                params![cutoff],
            )?;
            tx.commit()?;
            Ok(n as u64)
        })
        .await
    }

    /// Bytes of all stored events, of active builds too.
    pub async fn log_bytes(&self) -> Result<u64, StoreError> {
        self.call(|conn| {
            let n: i64 = conn.query_row(
                "SELECT COALESCE(SUM(length(data)), 0) FROM events",
                [],
                |r| r.get(0),
            )?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    /// The logs of finished builds that still have one, oldest first.
    pub async fn finished_logs(&self) -> Result<Vec<StoredLog>, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare(
                "SELECT b.id, COALESCE(b.finished_at, b.created_at), SUM(length(e.data))
                 FROM builds b JOIN events e ON e.build_id = b.id
                 WHERE b.status NOT IN ('queued', 'running')
                 GROUP BY b.id ORDER BY 2, b.rowid",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(StoredLog {
                        build_id: r.get(0)?,
                        finished_at: r.get(1)?,
                        bytes: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Removes the events of these builds if they are finished (the rows stay: their status is
    /// still answered, and a log stream of one ends at once with its final status).
    pub async fn remove_logs(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            for id in &ids {
                tx.execute(
                    "DELETE FROM events WHERE build_id = ?1 AND build_id IN (SELECT id FROM builds WHERE status NOT IN ('queued', 'running'))",
                    params![id],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

fn get(conn: &Connection, id: &str, project: Option<&str>) -> Result<Option<BuildRow>, StoreError> {
    let row = conn
        .query_row(
            "SELECT id, project, target, image, status, request, worker, digest, error, events, created_at, started_at, finished_at
             FROM builds WHERE id = ?1 AND (?2 IS NULL OR project = ?2)",
            params![id, project],
            |r| {
                Ok((
                    BuildRowRaw {
                        id: r.get(0)?,
                        project: r.get(1)?,
                        target: r.get(2)?,
                        image: r.get(3)?,
                        status: r.get(4)?,
                        request: r.get(5)?,
                        worker: r.get(6)?,
                        digest: r.get(7)?,
                        error: r.get(8)?,
                    },
                    (r.get::<_, u64>(9)?, r.get(10)?, r.get(11)?, r.get(12)?),
                ))
            },
        )
        .optional()?;
    let Some((raw, (events, created_at, started_at, finished_at))) = row else {
        return Ok(None);
    };
    let status = raw
        .status
        .parse::<BuildState>()
        .map_err(StoreError::Corrupt)?;
    let error = raw
        .error
        .map(|e| serde_json::from_str::<WireBuildError>(&e))
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(BuildRow {
        id: raw.id,
        project: raw.project,
        target: raw.target,
        image: raw.image,
        status,
        request: raw.request,
        worker: raw.worker,
        digest: raw.digest,
        error,
        events,
        created_at,
        started_at,
        finished_at,
    }))
}

struct BuildRowRaw {
    id: String,
    project: String,
    target: String,
    image: String,
    status: String,
    request: String,
    worker: Option<String>,
    digest: Option<String>,
    error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, project: &str) -> BuildRow {
        BuildRow {
            id: id.into(),
            project: project.into(),
            target: "app:t".into(),
            image: "r/app:t".into(),
            status: BuildState::Queued,
            request: "{}".into(),
            worker: None,
            digest: None,
            error: None,
            events: 0,
            created_at: 1,
            started_at: None,
            finished_at: None,
        }
    }

    #[tokio::test]
    async fn rows_events_and_recovery_survive_reopening() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("db");
        {
            let s = Store::open(&path).expect("open");
            s.insert(row("b1", "p")).await.expect("insert");
            s.insert(row("b2", "p")).await.expect("insert");
            s.set_running("b1", "w0", 2).await.expect("running");
            s.append_events(
                "b1",
                0,
                vec![
                    WireEvent::Log { line: "a".into() },
                    WireEvent::Log { line: "b".into() },
                ],
            )
            .await
            .expect("events");
            assert!(s.get("b1", Some("other")).await.expect("get").is_none());
            assert_eq!(
                s.active_for("p", "r/app:t")
                    .await
                    .expect("active")
                    .map(|r| r.id),
                Some("b1".into())
            );
        }
        let s = Store::open(&path).expect("reopen");
        assert_eq!(
            s.queued().await.expect("queued"),
            [("b2".to_string(), "p".to_string())]
        );
        let failed = s
            .fail_interrupted(3, "restarted", &[BuildState::Running])
            .await
            .expect("recover");
        assert_eq!(failed, ["b1"], "the queued build is left queued");
        s.fail_queued("b2", 3, "restarted").await.expect("fail b2");
        let b1 = s.get("b1", Some("p")).await.expect("get").expect("found");
        assert_eq!(b1.status, BuildState::Failed);
        assert_eq!(b1.events, 3);
        assert_eq!(b1.error.expect("error").message, "restarted");
        let events = s.events_from("b1", 1, 10).await.expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1],
            (
                2,
                WireEvent::Status {
                    message: "restarted".into()
                }
            )
        );
        assert!(
            s.active_for("p", "r/app:t")
                .await
                .expect("active")
                .is_none()
        );
    }
}
