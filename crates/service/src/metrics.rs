//! The service's Prometheus metrics, rendered at `GET /metrics` in the text exposition format
//! (version 0.0.4). Hand-written: a few counters and two histograms, fed by the API and the
//! runner; gauges (queue depth, running builds) are read from the scheduler when scraped.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the build-duration buckets: a cached build takes seconds, a cold
/// one with a large install many minutes.
const BUILD_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];
/// Upper bounds (seconds) of the queue-wait buckets.
const QUEUE_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Builds accepted into the queue, per project.
    submitted: BTreeMap<String, u64>,
    /// Builds that ended, per (project, state).
    finished: BTreeMap<(String, String), u64>,
    /// Bytes of newly stored uploads, per project.
    uploaded: BTreeMap<String, u64>,
    build_seconds: BTreeMap<String, Histogram>,
    queue_seconds: BTreeMap<String, Histogram>,
    /// When each queued build was queued, for its wait.
    queued_at: HashMap<String, Instant>,
    /// Connections refused, per limit (`max`, `max_per_ip`).
    refused: BTreeMap<&'static str, u64>,
    /// Connections cut off by a timeout, per phase (`header`, `body`, `idle`).
    timed_out: BTreeMap<&'static str, u64>,
    /// What garbage collection removed, per kind (builds, logs, log_bytes, blobs, blob_bytes).
    collected: BTreeMap<&'static str, u64>,
    gc_runs: u64,
    gc_failures: u64,
}

struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative (made cumulative when rendered).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, project: &str) {
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{project=\"{}\",le=\"{bound}\"}} {cumulative}",
                escape(project)
            );
        }
        let p = escape(project);
        let _ = writeln!(
            out,
            "{name}_bucket{{project=\"{p}\",le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{project=\"{p}\"}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{project=\"{p}\"}} {}", self.count);
    }
}

/// What the scheduler and the connection gate say when scraped.
#[derive(Default)]
pub struct Gauges {
    pub queued: usize,
    pub running: usize,
    /// Queued builds per project (projects with none left out).
    pub queued_by_project: BTreeMap<String, usize>,
    pub connections: usize,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn queued(&self, project: &str, build_id: &str) {
        let mut m = self.lock();
        *m.submitted.entry(project.to_string()).or_default() += 1;
        m.queued_at.insert(build_id.to_string(), Instant::now());
    }

    /// A queued build starts (or leaves the queue): its wait is recorded.
    pub fn started(&self, project: &str, build_id: &str) {
        let mut m = self.lock();
        if let Some(at) = m.queued_at.remove(build_id) {
            m.queue_seconds
                .entry(project.to_string())
                .or_insert_with(|| Histogram::new(QUEUE_BUCKETS))
                .observe(at.elapsed().as_secs_f64());
        }
    }

    /// A build ended in `state`; `ran` is how long it ran on a worker, if it did.
    pub fn finished(&self, project: &str, build_id: &str, state: &str, ran: Option<Duration>) {
        let mut m = self.lock();
        m.queued_at.remove(build_id);
        *m.finished
            .entry((project.to_string(), state.to_string()))
            .or_default() += 1;
        if let Some(ran) = ran {
            m.build_seconds
                .entry(project.to_string())
                .or_insert_with(|| Histogram::new(BUILD_BUCKETS))
                .observe(ran.as_secs_f64());
        }
    }

    pub fn uploaded(&self, project: &str, bytes: u64) {
        *self.lock().uploaded.entry(project.to_string()).or_default() += bytes;
    }

    pub fn connection_refused(&self, limit: &'static str) {
        *self.lock().refused.entry(limit).or_default() += 1;
    }

    /// A connection was cut off: a request's headers (`header`) or body (`body`) did not
    /// arrive in time, or a kept-alive connection sent no new request (`idle`).
    pub fn timed_out(&self, phase: &'static str) {
        *self.lock().timed_out.entry(phase).or_default() += 1;
    }

    pub fn collected(&self, report: &crate::gc::GcReport) {
        let mut m = self.lock();
        m.gc_runs += 1;
        for (kind, n) in [
            ("builds", report.builds),
            ("logs", report.logs),
            ("log_bytes", report.log_bytes),
            ("blobs", report.blobs),
            ("blob_bytes", report.blob_bytes),
        ] {
            *m.collected.entry(kind).or_default() += n;
        }
    }

    pub fn gc_failed(&self) {
        self.lock().gc_failures += 1;
    }

    /// The text exposition of everything.
    pub fn render(&self, gauges: &Gauges) -> String {
        let m = self.lock();
        let mut out = String::new();
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        header(
            &mut out,
            "imagespec_builds_queued_total",
            "counter",
            "Builds accepted into the queue.",
        );
        for (project, n) in &m.submitted {
            let _ = writeln!(
                out,
                "imagespec_builds_queued_total{{project=\"{}\"}} {n}",
                escape(project)
            );
        }
        header(
            &mut out,
            "imagespec_builds_finished_total",
            "counter",
            "Builds that ended, by final state (succeeded, failed, cancelled; exists: found in the registry, nothing built).",
        );
        for ((project, state), n) in &m.finished {
            let _ = writeln!(
                out,
                "imagespec_builds_finished_total{{project=\"{}\",state=\"{state}\"}} {n}",
                escape(project)
            );
        }
        header(
            &mut out,
            "imagespec_queue_depth",
            "gauge",
            "Builds waiting for a worker.",
        );
        let _ = writeln!(out, "imagespec_queue_depth {}", gauges.queued);
        header(
            &mut out,
            "imagespec_project_queue_depth",
            "gauge",
            "Builds waiting for a worker, per project (fair share between projects).",
        );
        for (project, n) in &gauges.queued_by_project {
            let _ = writeln!(
                out,
                "imagespec_project_queue_depth{{project=\"{}\"}} {n}",
                escape(project)
            );
        }
        header(
            &mut out,
            "imagespec_builds_running",
            "gauge",
            "Builds running on workers.",
        );
        let _ = writeln!(out, "imagespec_builds_running {}", gauges.running);
        header(
            &mut out,
            "imagespec_build_duration_seconds",
            "histogram",
            "Time a build ran on a worker.",
        );
        for (project, h) in &m.build_seconds {
            h.render(&mut out, "imagespec_build_duration_seconds", project);
        }
        header(
            &mut out,
            "imagespec_queue_duration_seconds",
            "histogram",
            "Time a build waited in the queue before a worker took it.",
        );
        for (project, h) in &m.queue_seconds {
            h.render(&mut out, "imagespec_queue_duration_seconds", project);
        }
        header(
            &mut out,
            "imagespec_uploaded_bytes_total",
            "counter",
            "Bytes of uploaded files newly stored (uploads of blobs already held are not counted).",
        );
        for (project, n) in &m.uploaded {
            let _ = writeln!(
                out,
                "imagespec_uploaded_bytes_total{{project=\"{}\"}} {n}",
                escape(project)
            );
        }
        header(
            &mut out,
            "imagespec_connections_open",
            "gauge",
            "Client connections open.",
        );
        let _ = writeln!(out, "imagespec_connections_open {}", gauges.connections);
        header(
            &mut out,
            "imagespec_connections_refused_total",
            "counter",
            "Connections answered 503 and closed, by the limit they hit (max, max_per_ip).",
        );
        for (limit, n) in &m.refused {
            let _ = writeln!(
                out,
                "imagespec_connections_refused_total{{limit=\"{limit}\"}} {n}"
            );
        }
        header(
            &mut out,
            "imagespec_requests_timed_out_total",
            "counter",
            "Connections cut off by a timeout (phase: header, a request's headers were too slow; body, a request body stalled; idle, a kept-alive connection sent no new request).",
        );
        for (phase, n) in &m.timed_out {
            let _ = writeln!(
                out,
                "imagespec_requests_timed_out_total{{phase=\"{phase}\"}} {n}"
            );
        }
        header(
            &mut out,
            "imagespec_gc_runs_total",
            "counter",
            "Garbage collection runs that completed.",
        );
        let _ = writeln!(out, "imagespec_gc_runs_total {}", m.gc_runs);
        header(
            &mut out,
            "imagespec_gc_failures_total",
            "counter",
            "Garbage collection runs that stopped on an error.",
        );
        let _ = writeln!(out, "imagespec_gc_failures_total {}", m.gc_failures);
        header(
            &mut out,
            "imagespec_gc_removed_total",
            "counter",
            "What garbage collection removed (kind: builds, logs, log_bytes, blobs, blob_bytes).",
        );
        for (kind, n) in &m.collected {
            let _ = writeln!(out, "imagespec_gc_removed_total{{kind=\"{kind}\"}} {n}");
        }
        out
    }
}

/// A label value as the exposition format wants it (project names are already restricted to
/// `[a-z0-9._-]`, so this is belt and braces).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counters_labelled() {
        let m = Metrics::default();
        m.queued("team-a", "b1");
        m.started("team-a", "b1");
        m.finished("team-a", "b1", "succeeded", Some(Duration::from_secs(3)));
        m.finished("team-a", "b2", "succeeded", Some(Duration::from_secs(7000)));
        m.uploaded("team-a", 42);
        m.collected(&crate::gc::GcReport {
            blobs: 3,
            blob_bytes: 300,
            ..Default::default()
        });
        m.timed_out("body");
        m.connection_refused("max_per_ip");
        let text = m.render(&Gauges {
            queued: 2,
            running: 1,
            queued_by_project: BTreeMap::from([("team-a".into(), 2)]),
            connections: 4,
        });
        assert!(text.contains("imagespec_project_queue_depth{project=\"team-a\"} 2\n"));
        assert!(text.contains("imagespec_gc_removed_total{kind=\"blob_bytes\"} 300\n"));
        assert!(text.contains("imagespec_gc_runs_total 1\n"));
        assert!(text.contains("imagespec_requests_timed_out_total{phase=\"body\"} 1\n"));
        assert!(text.contains("imagespec_connections_refused_total{limit=\"max_per_ip\"} 1\n"));
        assert!(text.contains("imagespec_connections_open 4\n"));
        assert!(text.contains("imagespec_builds_queued_total{project=\"team-a\"} 1\n"));
        assert!(text.contains(
            "imagespec_builds_finished_total{project=\"team-a\",state=\"succeeded\"} 2\n"
        ));
        assert!(
            text.contains(
                "imagespec_build_duration_seconds_bucket{project=\"team-a\",le=\"1\"} 0\n"
            )
        );
        assert!(
            text.contains(
                "imagespec_build_duration_seconds_bucket{project=\"team-a\",le=\"5\"} 1\n"
            )
        );
        assert!(text.contains(
            "imagespec_build_duration_seconds_bucket{project=\"team-a\",le=\"3600\"} 1\n"
        ));
        assert!(text.contains(
            "imagespec_build_duration_seconds_bucket{project=\"team-a\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("imagespec_build_duration_seconds_count{project=\"team-a\"} 2\n"));
        assert!(text.contains("imagespec_queue_depth 2\n"));
        assert!(text.contains("imagespec_uploaded_bytes_total{project=\"team-a\"} 42\n"));
    }
}
