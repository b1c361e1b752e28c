//! Turning an engine's build output into [`BuildEvent`]s and, on failure, a [`BuildError`] that
//! names the failing step and shows its last lines.
//!
//! Two formats arrive on `/build`:
//! - BuildKit (Docker): `{"id":"moby.buildkit.trace","aux":"<base64 StatusResponse>"}` messages,
//!   decoded by bollard into vertexes (steps), statuses and logs. A vertex is a step when its
//!   name looks like `[stage 2/5] RUN ...`; `[internal] ...` and `exporting ...` vertexes are
//!   phases and become `Status` events. Logs arrive per vertex, in chunks that may split lines.
//! - Classic / Podman: `{"stream":"..."}` text where `Step 2/5 : RUN ...` (Docker) or
//!   `STEP 2/5: RUN ...` (Podman/Buildah) starts a step.
//!
//! Every line passes through the build's [`Redactor`] before it is emitted or kept.

use std::collections::{HashMap, VecDeque};

use bollard::moby::buildkit::v1::StatusResponse;
use bollard::models::{BuildInfoAux, ErrorDetail};
use imagespec_core::build::{BuildError, BuildErrorKind, BuildEvent, EventSink, TransferDirection};

use crate::secrets::Redactor;

/// One message of the `/build` stream. bollard's `BuildInfo` lacks the top-level `error`
/// string that Podman (and older Docker) send, so the message is read with this type.
#[derive(Debug, Default, serde::Deserialize)]
pub struct BuildMessage {
    pub id: Option<String>,
    pub stream: Option<String>,
    pub status: Option<String>,
    pub error: Option<String>,
    #[serde(rename = "errorDetail")]
    pub error_detail: Option<ErrorDetail>,
    /// A BuildKit trace (base64 protobuf, decoded by bollard) or `{"ID": "sha256:..."}`.
    pub aux: Option<BuildInfoAux>,
}

/// How many lines of a failing step are kept for the error.
pub const TAIL_LINES: usize = 20;

#[derive(Debug, Default)]
struct Vertex {
    name: String,
    announced: bool,
    /// The step index, when the vertex is a step.
    step: Option<usize>,
    /// Its [`BuildEvent::StepDone`] was emitted.
    done: bool,
    partial: Vec<u8>,
    tail: VecDeque<String>,
    error: Option<String>,
}

/// The state of one build's output.
#[derive(Debug)]
pub struct Progress {
    events: EventSink,
    redactor: Redactor,
    steps: usize,
    // BuildKit
    vertices: HashMap<String, Vertex>,
    failed_vertex: Option<String>,
    // Classic / Podman text
    partial: String,
    current_step: Option<String>,
    step_tail: VecDeque<String>,
    /// The running text step: its index, when it started, whether the cache served it.
    open_step: Option<(usize, std::time::Instant, bool)>,
    // Results
    image_id: Option<String>,
    error: Option<String>,
}

fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// `[stage-1 2/5] RUN x` -> `Some("RUN x")`; `[internal] load ...` -> `None`.
fn step_name(vertex_name: &str) -> Option<&str> {
    let rest = vertex_name.strip_prefix('[')?;
    let (inside, after) = rest.split_once("] ")?;
    let counter = inside.rsplit(' ').next()?;
    let (n, m) = counter.split_once('/')?;
    (n.parse::<u32>().is_ok() && m.parse::<u32>().is_ok()).then_some(after)
}

/// Buildah's `--> Using cache <id>` and classic Docker's ` ---> Using cache`: the step's
/// result came from the build cache.
fn is_cache_hit_line(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("--> Using cache") || line.starts_with("---> Using cache")
}

/// `Step 2/5 : RUN x` or `STEP 2/5: RUN x` -> `Some("RUN x")`.
fn text_step(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("Step ")
        .or_else(|| line.strip_prefix("STEP "))?;
    let (counter, name) = rest.split_once(':')?;
    let counter = counter.trim();
    let (n, m) = counter.split_once('/')?;
    (n.parse::<u32>().is_ok() && m.parse::<u32>().is_ok()).then(|| name.trim())
}

impl Progress {
    pub fn new(events: EventSink, redactor: Redactor) -> Self {
        Progress {
            events,
            redactor,
            steps: 0,
            vertices: HashMap::new(),
            failed_vertex: None,
            partial: String::new(),
            current_step: None,
            step_tail: VecDeque::new(),
            open_step: None,
            image_id: None,
            error: None,
        }
    }

    fn step(&mut self, name: String) -> usize {
        self.steps += 1;
        self.events.emit(BuildEvent::step(self.steps, name));
        self.steps
    }

    /// Ends the running text step: the next one started, or the build ended well.
    fn close_text_step(&mut self) {
        if let Some((index, started, cached)) = self.open_step.take() {
            self.events.emit(BuildEvent::StepDone {
                index,
                cached,
                duration_ms: if cached { 0 } else { millis(started.elapsed()) },
            });
        }
    }

    /// Handles one message of the `/build` stream.
    pub fn handle(&mut self, info: BuildMessage) {
        if let Some(stream) = info.stream {
            self.text(&stream);
        }
        if let Some(status) = info.status.filter(|s| !s.trim().is_empty()) {
            let message = self.redactor.redact(status.trim());
            self.events.emit(BuildEvent::Status { message });
        }
        match info.aux {
            Some(BuildInfoAux::BuildKit(trace)) => self.trace(trace),
            Some(BuildInfoAux::Default(id)) => {
                if let Some(id) = id.id.filter(|i| !i.is_empty()) {
                    self.image_id = Some(id);
                }
            }
            None => {}
        }
        let error = info.error_detail.and_then(|d| d.message).or(info.error);
        if let Some(error) = error.filter(|e| !e.trim().is_empty()) {
            self.error = Some(self.redactor.redact(error.trim()));
        }
    }

    /// A line that was not JSON (already passed through nothing): logged, redacted.
    pub fn raw(&mut self, text: &str) {
        let line = self.redactor.redact(text);
        tracing::debug!(line = %line, "unparsed engine output");
    }

    fn text(&mut self, chunk: &str) {
        self.partial.push_str(chunk);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end_matches(['\n', '\r']));
        }
    }

    fn line(&mut self, line: &str) {
        let line = self.redactor.redact(line);
        if let Some(name) = text_step(&line) {
            let name = name.to_string();
            self.close_text_step();
            self.current_step = Some(name.clone());
            self.step_tail.clear();
            let index = self.step(name);
            self.open_step = Some((index, std::time::Instant::now(), false));
            return;
        }
        if line.trim().is_empty() {
            return;
        }
        push_tail(&mut self.step_tail, line.clone());
        if is_cache_hit_line(&line)
            && let Some((_, _, cached)) = &mut self.open_step
        {
            *cached = true;
        }
        self.events.emit(BuildEvent::Log { line });
    }

    fn trace(&mut self, trace: StatusResponse) {
        for v in trace.vertexes {
            let entry = self.vertices.entry(v.digest.clone()).or_default();
            if entry.name.is_empty() {
                entry.name = self.redactor.redact(&v.name);
            }
            let name = entry.name.clone();
            if !entry.announced && (v.started.is_some() || v.cached || v.completed.is_some()) {
                entry.announced = true;
                match step_name(&name) {
                    Some(step) => {
                        let step = step.to_string();
                        let index = self.step(step);
                        if let Some(entry) = self.vertices.get_mut(&v.digest) {
                            entry.step = Some(index);
                        }
                    }
                    None => self.events.emit(BuildEvent::Status {
                        message: name.clone(),
                    }),
                }
            }
            if let Some(entry) = self.vertices.get_mut(&v.digest)
                && let (Some(index), false, Some(completed)) = (entry.step, entry.done, v.completed)
                && v.error.is_empty()
            {
                entry.done = true;
                let duration_ms = match v.started {
                    Some(started) if !v.cached => {
                        timestamp_millis(completed.seconds, completed.nanos)
                            .saturating_sub(timestamp_millis(started.seconds, started.nanos))
                    }
                    _ => 0,
                };
                self.events.emit(BuildEvent::StepDone {
                    index,
                    cached: v.cached,
                    duration_ms,
                });
            }
            if !v.error.is_empty() {
                let entry = self.vertices.entry(v.digest.clone()).or_default();
                if entry.error.is_none() {
                    entry.error = Some(self.redactor.redact(&v.error));
                }
                // The first step to fail is the one to report; later ones are usually
                // cancellations caused by it.
                if self.failed_vertex.is_none() && !v.error.contains("context canceled") {
                    self.failed_vertex = Some(v.digest.clone());
                }
            }
        }
        for status in trace.statuses {
            // Layers of an image being pulled are `sha256:` ids with a size; other statuses
            // (context transfer, export) are phases already shown by their vertex.
            if status.id.starts_with("sha256:") && status.total > 0 {
                self.events.emit(BuildEvent::Transfer {
                    direction: TransferDirection::Pull,
                    layer: status.id,
                    current: u64::try_from(status.current).unwrap_or(0),
                    total: u64::try_from(status.total).ok(),
                });
            }
        }
        for log in trace.logs {
            let redactor = self.redactor.clone();
            let entry = self.vertices.entry(log.vertex.clone()).or_default();
            entry.partial.extend_from_slice(&log.msg);
            let mut lines = Vec::new();
            while let Some(i) = entry.partial.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = entry.partial.drain(..=i).collect();
                let text = String::from_utf8_lossy(&raw);
                let line = redactor.redact(text.trim_end_matches(['\n', '\r']));
                push_tail(&mut entry.tail, line.clone());
                lines.push(line);
            }
            for line in lines {
                self.events.emit(BuildEvent::Log { line });
            }
        }
    }

    /// The failing step and its tail, if a step failed.
    fn failed_step(&mut self) -> Option<(String, Vec<String>)> {
        if let Some(digest) = &self.failed_vertex {
            let v = self.vertices.get_mut(digest)?;
            if !v.partial.is_empty() {
                let rest = String::from_utf8_lossy(&v.partial).to_string();
                push_tail(&mut v.tail, self.redactor.redact(rest.trim_end()));
                v.partial.clear();
            }
            let name = step_name(&v.name).unwrap_or(&v.name).to_string();
            return Some((name, v.tail.iter().cloned().collect()));
        }
        let step = self.current_step.clone()?;
        let mut tail: Vec<String> = self.step_tail.iter().cloned().collect();
        if !self.partial.trim().is_empty() {
            tail.push(self.redactor.redact(self.partial.trim_end()));
        }
        Some((step, tail))
    }

    /// The build's outcome once the stream has ended: the image id, or the error.
    pub fn finish(mut self) -> Result<Option<String>, BuildError> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(rest.trim_end());
        }
        match self.error.take() {
            None => {
                self.close_text_step();
                Ok(self.image_id)
            }
            Some(message) => {
                let failed = self.failed_step();
                let is_step = failed.is_some()
                    && (self.failed_vertex.is_some()
                        || message.contains("STEP")
                        || message.contains("returned a non-zero code")
                        || message.contains("exit status")
                        || message.contains("exit code"));
                Err(match failed.filter(|_| is_step) {
                    Some((step, log_tail)) => BuildError {
                        step: Some(step),
                        log_tail,
                        ..BuildError::new(
                            BuildErrorKind::StepFailed,
                            format!("the build failed: {message}"),
                        )
                    },
                    None => BuildError::new(
                        BuildErrorKind::StepFailed,
                        format!("the build failed: {message}"),
                    ),
                })
            }
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A BuildKit timestamp in milliseconds since the epoch (0 before it).
fn timestamp_millis(seconds: i64, nanos: i32) -> u64 {
    let ms = seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(nanos / 1_000_000));
    u64::try_from(ms).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bollard::moby::buildkit::v1::{Vertex as PbVertex, VertexLog};

    use super::*;
    use crate::secrets::SecretValue;

    fn sink() -> (EventSink, Arc<Mutex<Vec<BuildEvent>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let e = events.clone();
        (
            EventSink::new(move |ev| e.lock().expect("lock").push(ev)),
            events,
        )
    }

    #[test]
    fn names() {
        assert_eq!(step_name("[stage-1 2/5] RUN x"), Some("RUN x"));
        assert_eq!(step_name("[2/3] COPY a b"), Some("COPY a b"));
        assert_eq!(
            step_name("[internal] load build definition from Dockerfile"),
            None
        );
        assert_eq!(text_step("STEP 2/5: RUN x"), Some("RUN x"));
        assert_eq!(text_step("Step 1/2 : FROM a"), Some("FROM a"));
        assert_eq!(text_step("Stepping"), None);
    }

    #[test]
    fn podman_text_failure_names_the_step() {
        let (events, seen) = sink();
        let mut p = Progress::new(
            events,
            Redactor::new([&SecretValue::new(b"s3cr3t-value".to_vec())]),
        );
        for chunk in [
            "STEP 1/2: FROM base\n",
            "STEP 2/2: RUN echo hi && exit 3\n",
            "hi s3cr3t-value\n",
        ] {
            p.handle(BuildMessage {
                stream: Some(chunk.into()),
                ..Default::default()
            });
        }
        p.handle(BuildMessage {
            error: Some("building at STEP \"RUN echo hi && exit 3\": exit status 3".into()),
            ..Default::default()
        });
        let err = p.finish().expect_err("fails");
        assert_eq!(err.kind, BuildErrorKind::StepFailed);
        assert_eq!(err.step.as_deref(), Some("RUN echo hi && exit 3"));
        assert_eq!(err.log_tail, ["hi ****"]);
        let seen = seen.lock().expect("lock");
        assert!(seen.contains(&BuildEvent::step(2, "RUN echo hi && exit 3")));
        // The first step ended when the second started; the failed one never did.
        assert!(matches!(
            seen[1],
            BuildEvent::StepDone {
                index: 1,
                cached: false,
                ..
            }
        ));
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e, BuildEvent::StepDone { index: 2, .. }))
        );
        assert!(!format!("{seen:?}").contains("s3cr3t"));
    }

    #[test]
    fn buildah_cache_hits_are_reported_as_cached_steps() {
        let (events, seen) = sink();
        let mut p = Progress::new(events, Redactor::default());
        for chunk in [
            "STEP 1/3: FROM base\n",
            "STEP 2/3: RUN make\n--> Using cache 0a1b2c\n",
            "--> 0a1b2c\nSTEP 3/3: COPY source/ ./\n--> 9f8e7d\n",
        ] {
            p.handle(BuildMessage {
                stream: Some(chunk.into()),
                ..Default::default()
            });
        }
        let seen = seen.lock().expect("lock");
        let cached: Vec<(String, bool)> = imagespec_core::build::step_reports(&seen)
            .into_iter()
            .map(|s| (s.name, s.cached))
            .collect();
        assert_eq!(
            cached,
            [
                ("FROM base".to_string(), false),
                ("RUN make".to_string(), true),
                ("COPY source/ ./".to_string(), false)
            ]
        );
    }

    #[test]
    fn buildkit_trace_failure_names_the_vertex() {
        let (events, seen) = sink();
        let mut p = Progress::new(events, Redactor::default());
        let started = Some(Default::default());
        p.trace(StatusResponse {
            vertexes: vec![
                PbVertex {
                    digest: "d0".into(),
                    name: "[internal] load build definition from Dockerfile".into(),
                    started,
                    ..Default::default()
                },
                PbVertex {
                    digest: "d1".into(),
                    name: "[2/2] RUN seq 1 30; exit 4".into(),
                    started,
                    ..Default::default()
                },
            ],
            logs: (1..=30)
                .map(|i| VertexLog {
                    vertex: "d1".into(),
                    msg: format!("{i}\n").into_bytes(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        p.trace(StatusResponse {
            vertexes: vec![PbVertex {
                digest: "d1".into(),
                name: "[2/2] RUN seq 1 30; exit 4".into(),
                error: "exit code: 4".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        p.handle(BuildMessage {
            error: Some(
                "executor failed running [/bin/sh -c seq 1 30; exit 4]: exit code: 4".into(),
            ),
            ..Default::default()
        });
        let err = p.finish().expect_err("fails");
        assert_eq!(err.step.as_deref(), Some("RUN seq 1 30; exit 4"));
        assert_eq!(err.log_tail.len(), TAIL_LINES);
        assert_eq!(err.log_tail.last().map(String::as_str), Some("30"));
        let seen = seen.lock().expect("lock");
        assert_eq!(
            seen[0],
            BuildEvent::Status {
                message: "[internal] load build definition from Dockerfile".into()
            }
        );
        assert_eq!(seen[1], BuildEvent::step(1, "RUN seq 1 30; exit 4"));
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e, BuildEvent::StepDone { .. })),
            "a failed step is not done"
        );
    }

    #[test]
    fn buildkit_completed_vertices_are_done_with_their_duration_or_cached() {
        let (events, seen) = sink();
        let mut p = Progress::new(events, Redactor::default());
        // bollard does not re-export the protobuf Timestamp type: take it from a Vertex.
        let at = |seconds, nanos| {
            Some(
                bollard::moby::buildkit::v1::Vertex::default()
                    .started
                    .unwrap_or_default(),
            )
            .map(|mut t| {
                t.seconds = seconds;
                t.nanos = nanos;
                t
            })
        };
        p.trace(StatusResponse {
            vertexes: vec![
                PbVertex {
                    digest: "d1".into(),
                    name: "[1/3] RUN make".into(),
                    started: at(100, 0),
                    completed: at(102, 500_000_000),
                    ..Default::default()
                },
                PbVertex {
                    digest: "d2".into(),
                    name: "[2/3] COPY a b".into(),
                    cached: true,
                    started: at(103, 0),
                    completed: at(103, 0),
                    ..Default::default()
                },
                PbVertex {
                    digest: "d3".into(),
                    name: "[3/3] RUN slow".into(),
                    started: at(103, 0),
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let seen = seen.lock().expect("lock");
        let done: Vec<&BuildEvent> = seen
            .iter()
            .filter(|e| matches!(e, BuildEvent::StepDone { .. }))
            .collect();
        assert_eq!(
            done,
            [
                &BuildEvent::StepDone {
                    index: 1,
                    cached: false,
                    duration_ms: 2500
                },
                &BuildEvent::StepDone {
                    index: 2,
                    cached: true,
                    duration_ms: 0
                }
            ]
        );
    }
}
