//! The `ImageBuilder` trait: what every backend (local engine, remote service, no-op) implements.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::hash::{ImageName, ResolvedImage};
use crate::spec::{LoadedSpec, SpecField};

/// Where a builder's images go, which decides the rules the engine applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuilderKind {
    /// Builds on this machine and pushes to the user's registry (needs `registry` to push).
    Local,
    /// Builds in a service that stores the image in its own registry.
    Remote,
    /// Builds nothing: the image is `base_image` as is.
    Passthrough,
}

/// What a builder can honour; the engine refuses a spec that needs more, before any work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub kind: BuilderKind,
    /// Spec fields this builder honours.
    pub fields: Vec<SpecField>,
    /// Whether a spec may name several platforms.
    pub multi_platform: bool,
    /// Whether images can be pushed to a registry.
    pub push: bool,
    /// Whether `pip_secret_mounts` are supported (with the guarantee that secrets never reach a layer).
    pub secrets: bool,
}

impl Capabilities {
    /// A builder that honours every field.
    pub fn full(kind: BuilderKind) -> Self {
        Capabilities {
            kind,
            fields: SpecField::ALL.to_vec(),
            multi_platform: true,
            push: true,
            secrets: true,
        }
    }

    pub fn supports(&self, field: SpecField) -> bool {
        self.fields.contains(&field)
    }
}

/// Whether an image exists where a builder would put it: never a silent guess.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Existence {
    Exists,
    Missing,
    /// The check could not tell (engine down, registry error, ...).
    Unknown {
        reason: String,
    },
    /// The registry refused the credentials (or wants some and none were found). Not a kind
    /// of "unknown": no `--if-unknown` policy applies, because building or assuming would
    /// only hide a set-up problem the push would hit anyway. `reason` names the registry and
    /// the credential source used (a file, a helper, or none), never a secret.
    Denied {
        reason: String,
    },
    /// The builder itself cannot be reached: no engine answered (or not the one the user
    /// named), the build service is down or refuses the connection. Not "unknown" either: the
    /// build would fail the same way, so no policy applies.
    Unavailable {
        reason: String,
    },
}

/// The answer of [`ImageBuilder::locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub existence: Existence,
    /// The fully qualified name the image has, when it differs from the requested one.
    pub image: Option<String>,
}

impl Located {
    /// An answer about the requested name itself.
    pub fn at_requested_name(existence: Existence) -> Located {
        Located {
            existence,
            image: None,
        }
    }
}

/// What the caller wants from an existence check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistsQuery {
    /// Every platform that must be present.
    pub platforms: Vec<String>,
    /// Whether the image is meant to be in a registry (`true`) or only in the local engine.
    pub push: bool,
    /// The spec's `registry_config`, resolved against the root.
    pub registry_config: Option<std::path::PathBuf>,
}

/// A progress event from a build, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BuildEvent {
    /// A build step started (`index` from 1): `name` is the instruction as the engine shows it,
    /// `label` what the step is for ("apt packages", "source", "command 1", ...) when the
    /// builder knows the plan (see [`crate::plan::StepLabels`]).
    Step {
        index: usize,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// A step ended: served from the engine's build cache (`cached`, the step did not run) or
    /// run in `duration_ms`. A step that failed has no such event.
    StepDone {
        index: usize,
        cached: bool,
        duration_ms: u64,
    },
    /// A line of build output.
    Log { line: String },
    /// A phase outside the steps (pushing, exporting, ...).
    Status { message: String },
    /// Bytes of one layer moved to or from a registry so far (`total` when the engine knows it).
    Transfer {
        direction: TransferDirection,
        layer: String,
        current: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
}

/// Which way a [`BuildEvent::Transfer`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferDirection {
    /// Pulling a base or helper image during the build.
    Pull,
    /// Pushing the built image.
    Push,
}

impl BuildEvent {
    /// A started step without a label.
    pub fn step(index: usize, name: impl Into<String>) -> BuildEvent {
        BuildEvent::Step {
            index,
            name: name.into(),
            label: None,
        }
    }
}

/// One step of a build as its events report it: the engine's cache report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub name: String,
    /// Served from the build cache (the step did not run).
    pub cached: bool,
}

/// The steps of one build, in order of start, each with whether the engine's cache served it
/// (from the typed [`BuildEvent::StepDone`]).
pub fn step_reports(events: &[BuildEvent]) -> Vec<StepReport> {
    let mut steps: Vec<(usize, StepReport)> = Vec::new();
    for event in events {
        match event {
            BuildEvent::Step { index, name, .. } => steps.push((
                *index,
                StepReport {
                    name: name.clone(),
                    cached: false,
                },
            )),
            BuildEvent::StepDone { index, cached, .. } => {
                // A retried build restarts its indices: the latest step with the index is meant.
                if let Some((_, step)) = steps.iter_mut().rev().find(|(i, _)| i == index) {
                    step.cached = *cached;
                }
            }
            _ => {}
        }
    }
    steps.into_iter().map(|(_, s)| s).collect()
}

/// Where a builder sends its events; cheap to clone.
#[derive(Clone)]
pub struct EventSink(Arc<dyn Fn(BuildEvent) + Send + Sync>);

impl EventSink {
    pub fn new(f: impl Fn(BuildEvent) + Send + Sync + 'static) -> Self {
        EventSink(Arc::new(f))
    }

    /// Discards events.
    pub fn discard() -> Self {
        EventSink::new(|_| {})
    }

    pub fn emit(&self, event: BuildEvent) {
        (self.0)(event);
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventSink")
    }
}

/// Everything a builder needs to build one image.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub spec: LoadedSpec,
    /// The computed name and hash inputs.
    pub image: ResolvedImage,
    /// The image to build from (a base spec's built name, or `base_image`), if any.
    pub base_image: Option<String>,
    /// Push to the registry (`true`) or keep the image in the local engine.
    pub push: bool,
    pub events: EventSink,
    /// Cancelled on Ctrl-C; a builder stops and cleans up.
    pub cancel: CancellationToken,
    /// Where the values of `pip_secret_mounts` come from (a build service supplies them).
    pub secrets: super::secrets::SecretValues,
}

/// A finished build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildOutput {
    /// The fully qualified image name.
    pub image: String,
    /// The manifest or image digest, when the builder knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub pushed: bool,
}

/// The kind of a build failure, for programs to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildErrorKind {
    /// The spec needs something this builder cannot do.
    Unsupported,
    /// The builder is not configured (no engine, no service URL, ...).
    Unavailable,
    /// A build step failed.
    StepFailed,
    /// Registry authentication failed.
    Auth,
    /// Pushing failed.
    Push,
    /// The build was cancelled.
    Cancelled,
    /// Anything else.
    Internal,
}

/// The error a [`BuildError`] was made from, shared so the error stays cheap to clone.
pub type BuildErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A build failure: what failed, which step, and the tail of its log.
///
/// A backend keeps its own error as the [`std::error::Error::source`] (set with
/// [`BuildError::with_source`]), so a caller can walk the chain down to the I/O or HTTP error
/// that started it, or downcast to the backend's error type. The `message` says what failed in
/// this backend's words; the chain says why.
#[derive(Debug, Clone, Serialize)]
pub struct BuildError {
    pub kind: BuildErrorKind,
    pub message: String,
    /// The failing step, e.g. `RUN pip install ...`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The last lines of the failing step's output.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// The backend error behind this one.
    #[serde(skip)]
    pub source: Option<BuildErrorSource>,
}

impl BuildError {
    pub fn new(kind: BuildErrorKind, message: impl Into<String>) -> Self {
        BuildError {
            kind,
            message: message.into(),
            step: None,
            log_tail: Vec::new(),
            source: None,
        }
    }

    /// Keeps `source` as the cause of this error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The first error in this error's source chain that is an `E` (the backend's own error
    /// type, an `std::io::Error`, ...).
    pub fn find_source<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let mut next: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<E>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(step) = &self.step {
            write!(f, "\n  failing step: {step}")?;
        }
        if !self.log_tail.is_empty() {
            write!(f, "\n  last lines of its output:")?;
            for line in &self.log_tail {
                write!(f, "\n    | {line}")?;
            }
        }
        Ok(())
    }
}

/// A backend that builds images from specs.
///
/// Object safe (`Arc<dyn ImageBuilder>`), so builders are chosen at run time by name.
#[async_trait]
pub trait ImageBuilder: Send + Sync {
    /// The name a spec's `builder` field selects this builder by.
    fn name(&self) -> &str;

    /// Other names that select this builder (a legacy name, say).
    fn aliases(&self) -> &[&str] {
        &[]
    }

    /// When no name is given and no variant decides, the highest priority wins.
    fn priority(&self) -> i32 {
        0
    }

    /// A one-line description for `imagespec builders`.
    fn description(&self) -> &str {
        ""
    }

    fn capabilities(&self) -> Capabilities;

    /// Whether `image` already exists where this builder puts images.
    async fn exists(&self, image: &ImageName, query: &ExistsQuery) -> Existence;

    /// [`ImageBuilder::exists`], and the name the image is stored under when the builder, not
    /// the spec, decides it (a build service that names images in its own registry). The engine
    /// calls this, so an existing image is reported under the same name its build returned.
    ///
    /// The default asks `exists` and reports the requested name; wrappers that forward to
    /// another builder should forward this too.
    async fn locate(&self, image: &ImageName, query: &ExistsQuery) -> Located {
        Located::at_requested_name(self.exists(image, query).await)
    }

    /// Whether this builder is set up to work at all (a build service's URL and token, say),
    /// answered without contacting anything. The engine asks before any existence check, so an
    /// unconfigured builder says what to set instead of "cannot tell whether the image exists".
    fn configured(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether this builder can work now, for `imagespec builders`: what it found (an engine's
    /// kind, version and endpoint) or why it cannot. Unlike [`ImageBuilder::configured`] this
    /// may contact things (an engine's `/_ping`). The default answers `configured`.
    async fn readiness(&self) -> Result<String, String> {
        self.configured().map(|()| "configured".to_string())
    }

    /// Checks, without reading files or contacting anything, that this builder can build
    /// `spec`. The engine calls it for a spec and each of its base specs before any existence
    /// check or build, so a child spec that cannot be built fails before its base is built.
    ///
    /// Builders that build from a [`crate::plan::BuildPlan`] return
    /// [`crate::plan::BuildPlan::check`]; the default accepts everything.
    fn preflight(&self, spec: &LoadedSpec) -> Result<(), crate::plan::PlanError> {
        let _ = spec;
        Ok(())
    }

    /// The platforms (`linux/amd64`) this builder can build here, natively or emulated, or
    /// `None` when it cannot tell (the default). A build service publishes its workers' answer,
    /// so a client refuses what it cannot build before uploading anything.
    async fn platforms(&self) -> Option<Vec<String>> {
        None
    }

    /// Builds (and, if asked, pushes) the image.
    async fn build(&self, request: BuildRequest) -> Result<BuildOutput, BuildError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_reports_take_the_cache_report_of_each_step_by_index() {
        let done = |index, cached| BuildEvent::StepDone {
            index,
            cached,
            duration_ms: 7,
        };
        let events = [
            done(9, true), // of no step
            BuildEvent::step(1, "FROM base"),
            BuildEvent::step(2, "RUN apt-get install"),
            BuildEvent::step(3, "COPY source/ ./"),
            done(2, true),
            BuildEvent::Log {
                line: "copying".into(),
            },
            done(3, false),
            BuildEvent::Status {
                message: "pushing".into(),
            },
        ];
        let reports = step_reports(&events);
        let cached: Vec<bool> = reports.iter().map(|r| r.cached).collect();
        assert_eq!(cached, [false, true, false]);
        assert_eq!(reports[2].name, "COPY source/ ./");
    }

    #[test]
    fn events_serialise_with_typed_fields() {
        let json = serde_json::to_value(BuildEvent::StepDone {
            index: 2,
            cached: true,
            duration_ms: 0,
        })
        .expect("json");
        assert_eq!(
            json,
            serde_json::json!({"event": "step_done", "index": 2, "cached": true, "duration_ms": 0})
        );
        let json = serde_json::to_value(BuildEvent::Transfer {
            direction: TransferDirection::Push,
            layer: "ab12".into(),
            current: 10,
            total: Some(20),
        })
        .expect("json");
        assert_eq!(json["direction"], "push");
        assert_eq!(json["total"], 20);
    }
}
