//! The local builder's errors, and how they map onto the engine-neutral [`BuildError`].
//!
//! Every message here may reach a terminal or a CI log, so none of them carries a secret: secret
//! values never enter an error (only secret ids and variable names do), engine output is passed
//! through the build's redactor before it lands in a message, and registry credentials are only
//! ever referred to by where they came from.

use imagespec_core::build::{BuildError, BuildErrorKind};

/// A cause kept as the error's `source`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

use crate::discovery::{Attempt, EngineChoice, START_HINT};

/// A failure of the local builder.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{}", no_engine_message(*choice, attempts))]
    NoEngine {
        choice: EngineChoice,
        attempts: Vec<Attempt>,
    },

    #[error("the container engine at {endpoint} cannot be reached: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: BoxError,
    },

    /// An engine that accepted the connection but did not answer in time: a hung daemon, or
    /// something that is not an engine listening there.
    #[error(
        "the container engine at {endpoint} did not answer {what} within {}s; is it hung, or is something else listening there?",
        after.as_secs()
    )]
    Timeout {
        endpoint: String,
        what: String,
        after: std::time::Duration,
    },

    #[error("{what} failed: the engine answered {status}: {message}")]
    EngineStatus {
        what: String,
        status: u16,
        message: String,
    },

    #[error("{what} failed: {source}")]
    Transport {
        what: String,
        #[source]
        source: BoxError,
    },

    #[error("build secret `{id}`: {reason}")]
    Secret { id: String, reason: String },

    /// Writing or reading back the build context; `what` says which step, `source` why.
    #[error("cannot write the build context: {}", with_cause(what, source.as_deref()))]
    Context {
        what: String,
        #[source]
        source: Option<BoxError>,
    },

    #[error("cannot plan the build: {0}")]
    Plan(#[from] imagespec_core::plan::PlanError),

    /// The plan and the secrets read for it disagree (a bug, not bad input).
    #[error("cannot plan the build: {0}")]
    PlanMismatch(String),

    #[error("{0}")]
    Unsupported(String),

    #[error("the build was cancelled")]
    Cancelled,

    #[error("registry credentials for {registry}: {reason}")]
    Credentials { registry: String, reason: String },

    #[error("pushing {image} failed: {message}")]
    Push {
        image: String,
        message: String,
        auth: bool,
        /// What the engine reported, or the engine API error.
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

/// `what: cause`, or `what` alone.
fn with_cause(
    what: &str,
    source: Option<&(dyn std::error::Error + Send + Sync + 'static)>,
) -> String {
    match source {
        Some(e) => format!("{what}: {e}"),
        None => what.to_string(),
    }
}

impl LocalError {
    /// A context error with a cause.
    pub(crate) fn context(what: impl Into<String>, source: impl Into<BoxError>) -> LocalError {
        LocalError::Context {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

fn no_engine_message(choice: EngineChoice, attempts: &[Attempt]) -> String {
    let wanted = match choice {
        EngineChoice::Any => "no container engine (Docker or Podman) answered",
        EngineChoice::Docker => "no Docker engine answered",
        EngineChoice::Podman => "no Podman engine answered",
    };
    let named = !attempts.is_empty() && attempts.iter().all(|a| a.candidate.named);
    let mut s = if named {
        format!("{wanted} where you pointed imagespec; tried:")
    } else {
        format!("{wanted}; tried:")
    };
    for a in attempts {
        s.push_str(&format!("\n  - {a}"));
    }
    if named {
        // The user named the engine: say why no other one was used, and how to choose.
        s.push_str("\n  imagespec builds only on the engine you name: fix the value, or unset it (DOCKER_HOST, CONTAINER_HOST, `docker context use default`, --engine) to use the default sockets");
    }
    s.push_str(&format!("\n  {START_HINT}"));
    s
}

impl LocalError {
    pub fn kind(&self) -> BuildErrorKind {
        match self {
            LocalError::NoEngine { .. }
            | LocalError::Connect { .. }
            | LocalError::Timeout { .. } => BuildErrorKind::Unavailable,
            // A spec the plan cannot express is something this builder cannot do.
            LocalError::Unsupported(_) | LocalError::Plan(_) => BuildErrorKind::Unsupported,
            LocalError::PlanMismatch(_) => BuildErrorKind::Internal,
            LocalError::Cancelled => BuildErrorKind::Cancelled,
            LocalError::Credentials { .. } => BuildErrorKind::Auth,
            LocalError::Push { auth: true, .. } => BuildErrorKind::Auth,
            LocalError::Push { auth: false, .. } => BuildErrorKind::Push,
            LocalError::EngineStatus { .. }
            | LocalError::Transport { .. }
            | LocalError::Secret { .. }
            | LocalError::Context { .. } => BuildErrorKind::Internal,
        }
    }
}

impl From<LocalError> for BuildError {
    fn from(e: LocalError) -> Self {
        BuildError::new(e.kind(), e.to_string()).with_source(e)
    }
}
