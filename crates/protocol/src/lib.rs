//! The wire types of the build service's HTTP API (`/v1`), shared by the client
//! (`imagespec-builder-remote`) and the service (`imagespec-service`), so both sides cannot drift
//! apart, and so the server does not depend on an HTTP client to speak its own protocol. The API itself is
//! documented in `crates/service/openapi.yaml`.
//!
//! Kept free of HTTP-library types on purpose: a program that only wants to talk to the service
//! needs nothing but `serde` to use them.

use std::collections::BTreeMap;

use imagespec_core::build::{BuildError, BuildErrorKind, BuildEvent, TransferDirection};
use serde::{Deserialize, Serialize};

/// Every path starts with this.
pub const API_PREFIX: &str = "/v1";

/// The content type of error bodies (RFC 9457).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// `sha256:<64 lower-case hex digits>`, the only digest form the service accepts.
pub fn is_blob_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// Formats a SHA-256 digest as a blob digest.
pub fn blob_digest(sha256: &[u8; 32]) -> String {
    format!("sha256:{}", hex::encode(sha256))
}

/// `POST /v1/blobs/missing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingBlobsRequest {
    pub digests: Vec<String>,
}

/// The digests of the request the service does not hold for this project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingBlobsResponse {
    pub missing: Vec<String>,
}

/// `PUT /v1/blobs/{digest}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobStored {
    pub digest: String,
    pub size: u64,
    /// `false` when the service already had the blob (the upload was verified and dropped).
    pub created: bool,
}

/// One file of a build's workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// `sha256:<hex>` of the file's bytes; the blob must have been uploaded. For a symlink,
    /// of the target's text (no blob).
    pub digest: String,
    #[serde(default)]
    pub executable: bool,
    /// The entry is a symlink to this target: relative, and inside the tree it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symlink: Option<String>,
}

/// `POST /v1/builds`. Unknown fields are refused: a field the service does not know is one it
/// would silently ignore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBuild {
    /// The ImageSpec as JSON (flytekit's keys); its paths are relative to the workspace.
    pub spec: serde_json::Value,
    /// Workspace-relative `/`-separated path → file.
    #[serde(default)]
    pub files: BTreeMap<String, FileEntry>,
    /// The image name the client computed: `name:tag` (the service's own registry) or
    /// `registry/name:tag` (pushed there). The service recomputes it and refuses a mismatch.
    pub target: String,
    /// The platforms the image must have; they must be the spec's.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Build even when the target already exists (otherwise the service checks first).
    #[serde(default)]
    pub force: bool,
    /// The image to build from: a base spec's built image (the engine builds it first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// The Flyte runtime the install adds: a flytekit version, or `none`; absent means the
    /// pinned default. Part of the name, so the service must plan with the client's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flytekit_version: Option<String>,
    /// Union's runtime instead (`union==<version>`, the Union variants): a union version. When
    /// set, `flytekit_version` is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub union_version: Option<String>,
    /// The values of the spec's `pip_secret_mounts`, by the plan's secret id
    /// (`pip_secret_<index>`), base64. Never stored: the service takes them out of the request
    /// before anything is written, holds them in memory for this build only, and refuses them
    /// over a plain connection that is not loopback. The spec sent names no secret source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, imagespec_core::build::SecretBytes>,
}

/// Where a build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl BuildState {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::Queued => "queued",
            BuildState::Running => "running",
            BuildState::Succeeded => "succeeded",
            BuildState::Failed => "failed",
            BuildState::Cancelled => "cancelled",
        }
    }

    /// Finished, one way or another: nothing will change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BuildState::Succeeded | BuildState::Failed | BuildState::Cancelled
        )
    }
}

impl std::str::FromStr for BuildState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => BuildState::Queued,
            "running" => BuildState::Running,
            "succeeded" => BuildState::Succeeded,
            "failed" => BuildState::Failed,
            "cancelled" => BuildState::Cancelled,
            other => return Err(format!("unknown build state `{other}`")),
        })
    }
}

/// Mirrors [`BuildErrorKind`] on the wire (which only serialises).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Unsupported,
    Unavailable,
    StepFailed,
    Auth,
    Push,
    Cancelled,
    Internal,
}

impl From<BuildErrorKind> for ErrorKind {
    fn from(k: BuildErrorKind) -> Self {
        match k {
            BuildErrorKind::Unsupported => ErrorKind::Unsupported,
            BuildErrorKind::Unavailable => ErrorKind::Unavailable,
            BuildErrorKind::StepFailed => ErrorKind::StepFailed,
            BuildErrorKind::Auth => ErrorKind::Auth,
            BuildErrorKind::Push => ErrorKind::Push,
            BuildErrorKind::Cancelled => ErrorKind::Cancelled,
            BuildErrorKind::Internal => ErrorKind::Internal,
        }
    }
}

impl From<ErrorKind> for BuildErrorKind {
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::Unsupported => BuildErrorKind::Unsupported,
            ErrorKind::Unavailable => BuildErrorKind::Unavailable,
            ErrorKind::StepFailed => BuildErrorKind::StepFailed,
            ErrorKind::Auth => BuildErrorKind::Auth,
            ErrorKind::Push => BuildErrorKind::Push,
            ErrorKind::Cancelled => BuildErrorKind::Cancelled,
            ErrorKind::Internal => BuildErrorKind::Internal,
        }
    }
}

/// Why a build failed: the builder's error, step and log tail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBuildError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

impl From<&BuildError> for WireBuildError {
    fn from(e: &BuildError) -> Self {
        WireBuildError {
            kind: e.kind.into(),
            message: e.message.clone(),
            step: e.step.clone(),
            log_tail: e.log_tail.clone(),
        }
    }
}

impl From<WireBuildError> for BuildError {
    fn from(e: WireBuildError) -> Self {
        BuildError {
            step: e.step,
            log_tail: e.log_tail,
            ..BuildError::new(e.kind.into(), e.message)
        }
    }
}

/// A build as `GET /v1/builds/{id}` shows it (also the answer to a submission and the data of
/// the log stream's final `end` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub id: String,
    pub status: BuildState,
    /// The target as submitted.
    pub target: String,
    /// The fully qualified image name the build produces.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireBuildError>,
    /// The worker running (or that ran) it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// How many log events the build has recorded so far (the next event's offset).
    pub events: u64,
    /// Unix seconds.
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
}

/// `GET /v1/images/exists` answer: tri-state, never a silent guess.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistsResponse {
    /// The fully qualified name that was checked.
    pub image: String,
    pub state: ExistsState,
    /// Why the answer is `unknown` or `denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExistsState {
    Exists,
    Missing,
    Unknown,
    /// The registry refused the service's credentials; `reason` says which.
    Denied,
}

/// A log event on the wire: the SSE `event` field is its kind, `data` this JSON.
/// Mirrors [`BuildEvent`] (which only serialises).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WireEvent {
    Step {
        index: usize,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    StepDone {
        index: usize,
        cached: bool,
        duration_ms: u64,
    },
    Log {
        line: String,
    },
    Status {
        message: String,
    },
    Transfer {
        direction: TransferDirection,
        layer: String,
        current: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
}

impl WireEvent {
    /// The SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            WireEvent::Step { .. } => "step",
            WireEvent::StepDone { .. } => "step_done",
            WireEvent::Log { .. } => "log",
            WireEvent::Status { .. } => "status",
            WireEvent::Transfer { .. } => "transfer",
        }
    }
}

impl From<BuildEvent> for WireEvent {
    fn from(e: BuildEvent) -> Self {
        match e {
            BuildEvent::Step { index, name, label } => WireEvent::Step { index, name, label },
            BuildEvent::StepDone {
                index,
                cached,
                duration_ms,
            } => WireEvent::StepDone {
                index,
                cached,
                duration_ms,
            },
            BuildEvent::Log { line } => WireEvent::Log { line },
            BuildEvent::Status { message } => WireEvent::Status { message },
            BuildEvent::Transfer {
                direction,
                layer,
                current,
                total,
            } => WireEvent::Transfer {
                direction,
                layer,
                current,
                total,
            },
        }
    }
}

impl From<WireEvent> for BuildEvent {
    fn from(e: WireEvent) -> Self {
        match e {
            WireEvent::Step { index, name, label } => BuildEvent::Step { index, name, label },
            WireEvent::StepDone {
                index,
                cached,
                duration_ms,
            } => BuildEvent::StepDone {
                index,
                cached,
                duration_ms,
            },
            WireEvent::Log { line } => BuildEvent::Log { line },
            WireEvent::Status { message } => BuildEvent::Status { message },
            WireEvent::Transfer {
                direction,
                layer,
                current,
                total,
            } => BuildEvent::Transfer {
                direction,
                layer,
                current,
                total,
            },
        }
    }
}

/// The SSE event name of the final event, whose data is the [`BuildInfo`].
pub const END_EVENT: &str = "end";

/// An error body (`application/problem+json`, RFC 9457) with imagespec's extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Blobs a build referenced that the service lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Every problem of an invalid spec (`file:line:col: field: message` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The `type` URI of a problem slug, e.g. `not-found`.
pub fn problem_type(slug: &str) -> String {
    format!("urn:imagespec:problem:{slug}")
}

/// `GET /v1/capabilities` answer: what the service's workers can build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCapabilities {
    /// The platforms (`linux/amd64`) the workers that can tell build, natively or under
    /// emulation, together (a build goes to a worker that builds all of its platforms); `None`
    /// when no worker can tell (the build itself will say).
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_strict() {
        let hex = "a".repeat(64);
        assert!(is_blob_digest(&format!("sha256:{hex}")));
        assert!(!is_blob_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_blob_digest(&format!("sha512:{hex}")));
        assert!(!is_blob_digest("sha256:abc"));
        assert!(!is_blob_digest(&format!("sha256:../{}", &hex[3..])));
    }

    #[test]
    fn events_round_trip_with_the_core_shape() {
        for core in [
            BuildEvent::Step {
                index: 2,
                name: "RUN x".into(),
                label: Some("command 1".into()),
            },
            BuildEvent::step(3, "COPY a b"),
            BuildEvent::StepDone {
                index: 2,
                cached: true,
                duration_ms: 0,
            },
            BuildEvent::Transfer {
                direction: imagespec_core::build::TransferDirection::Push,
                layer: "ab".into(),
                current: 1,
                total: None,
            },
        ] {
            let wire: WireEvent = core.clone().into();
            let json = serde_json::to_value(&wire).expect("json");
            assert_eq!(json, serde_json::to_value(&core).expect("json"));
            assert_eq!(json["event"], wire.kind());
            let back: WireEvent = serde_json::from_value(json).expect("parse");
            assert_eq!(BuildEvent::from(back), core);
        }
    }

    #[test]
    fn states_parse_and_print() {
        for s in [
            BuildState::Queued,
            BuildState::Running,
            BuildState::Succeeded,
            BuildState::Failed,
            BuildState::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<BuildState>(), Ok(s));
        }
    }
}
