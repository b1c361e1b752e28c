//! The client's errors, and how they map to the engine's [`BuildError`] kinds.
//!
//! Messages name the service URL and the build id, never the token: the token only ever lives
//! in a [`imagespec_core::config::Secret`] and in the `Authorization` header.

use imagespec_core::build::{BuildError, BuildErrorKind};

use crate::protocol::{BuildState, Problem, WireBuildError, problem_type};

/// Why a call to the build service failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        // The alternative (a local builder, where the variant allows one) is the engine's to add.
        "the remote builder needs a build service: set IMAGESPEC_REMOTE_URL (or `remote.url` in the config file)"
    )]
    NotConfigured,
    #[error(
        "the build service at {url} needs a token: set IMAGESPEC_REMOTE_TOKEN (or `remote.token` in the config file)"
    )]
    NoToken { url: String },
    #[error("`{url}` is not a valid build service URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(transparent)]
    Timeouts(#[from] imagespec_core::net::TimeoutError),
    #[error("the build service at {url} is unreachable after {attempts} attempts: {reason}")]
    Unreachable {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("the build service at {url} refused the token: {detail}")]
    Unauthorized { url: String, detail: String },
    #[error("the build service rejected the request ({}, {}): {}{}", problem.status, problem.title, problem.detail, details(problem))]
    Rejected { problem: Box<Problem> },
    #[error("the build service failed after {attempts} attempts (HTTP {status}): {detail}")]
    Server {
        status: u16,
        attempts: u32,
        detail: String,
    },
    #[error("cannot select the files to send: {0}")]
    Selection(String),
    /// The service cannot build what the spec asks for (said by `GET /v1/capabilities`).
    #[error("{0}")]
    Unsupported(String),
    /// The spec's files could not be selected (they changed since the name was computed).
    #[error("cannot select the files to send: {0}")]
    Inputs(#[source] imagespec_core::hash::HashError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the build service sent an unexpected answer: {0}")]
    Protocol(String),
    #[error(
        "lost the log stream of build {id} on {url} after {attempts} attempts ({reason}); the build may still be running there"
    )]
    StreamLost {
        id: String,
        url: String,
        attempts: u32,
        reason: String,
    },
    /// A build secret could not be read on this machine (the message names its source).
    #[error("build secret `{id}`: {reason}")]
    Secret { id: String, reason: String },
    /// Build secrets would cross the network unencrypted.
    #[error(
        "build secrets are sent only over https:// or to a loopback address, and {url} is neither; use the service's https:// address (TLS in front of it), or build locally with `--builder default`"
    )]
    InsecureSecrets { url: String },
    #[error("cancelled")]
    Cancelled,
    #[error("build {id} on {url} {}{}", status.as_str(), error.as_ref().map(|e| format!(": {}", e.message)).unwrap_or_default())]
    Failed {
        id: String,
        url: String,
        status: BuildState,
        error: Option<Box<WireBuildError>>,
    },
}

fn details(problem: &Problem) -> String {
    let mut out = String::new();
    if !problem.missing.is_empty() {
        out.push_str(&format!(
            "\n  missing blobs: {}",
            problem.missing.join(", ")
        ));
    }
    for e in &problem.errors {
        out.push_str(&format!("\n  - {e}"));
    }
    out
}

impl RemoteError {
    /// The engine's kind for this error.
    pub fn kind(&self) -> BuildErrorKind {
        match self {
            RemoteError::NotConfigured
            | RemoteError::NoToken { .. }
            | RemoteError::BadUrl { .. }
            | RemoteError::Timeouts(_) => BuildErrorKind::Unavailable,
            RemoteError::Unreachable { .. }
            | RemoteError::Server { .. }
            | RemoteError::StreamLost { .. } => BuildErrorKind::Unavailable,
            RemoteError::Unauthorized { .. } => BuildErrorKind::Auth,
            RemoteError::Rejected { problem } if problem.kind == problem_type("unsupported") => {
                BuildErrorKind::Unsupported
            }
            RemoteError::Cancelled => BuildErrorKind::Cancelled,
            RemoteError::Unsupported(_) | RemoteError::InsecureSecrets { .. } => {
                BuildErrorKind::Unsupported
            }
            RemoteError::Failed {
                status: BuildState::Cancelled,
                ..
            } => BuildErrorKind::Cancelled,
            RemoteError::Failed { error, .. } => error
                .as_ref()
                .map_or(BuildErrorKind::Internal, |e| e.kind.into()),
            RemoteError::Rejected { .. }
            | RemoteError::Selection(_)
            | RemoteError::Secret { .. }
            | RemoteError::Inputs(_)
            | RemoteError::Read { .. }
            | RemoteError::Protocol(_) => BuildErrorKind::Internal,
        }
    }

    /// Whether trying again may help (the service restarting, a proxy hiccup).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RemoteError::Unreachable { .. }
                | RemoteError::Server { .. }
                | RemoteError::StreamLost { .. }
        )
    }
}

impl From<RemoteError> for BuildError {
    /// A failed remote build keeps the service's failing step and log tail.
    fn from(e: RemoteError) -> Self {
        let mut out = BuildError::new(e.kind(), e.to_string());
        if let RemoteError::Failed {
            error: Some(wire), ..
        } = &e
        {
            out.step = wire.step.clone();
            out.log_tail = wire.log_tail.clone();
        }
        out.with_source(e)
    }
}
