//! The local builder's errors, and how they map onto the engine-neutral [`BuildError`].
//!
//! Every message here may reach a terminal or a CI log, so none of them carries a secret: secret
//! values never enter an error (only secret ids and variable names do), engine output is passed
//! through the build's redactor before it lands in a message, and registry credentials are only
//! ever referred to by where they came from.

use imagespec_core::build::{BuildError, BuildErrorKind};

use crate::discovery::{Attempt, EngineChoice, START_HINT};

/// A failure of the local builder.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{}", no_engine_message(*choice, attempts))]
    NoEngine {
        choice: EngineChoice,
        attempts: Vec<Attempt>,
    },

    #[error("the container engine at {endpoint} cannot be reached: {reason}")]
    Connect { endpoint: String, reason: String },

    #[error("{what} failed: the engine answered {status}: {message}")]
    EngineStatus {
        what: String,
        status: u16,
        message: String,
    },

    #[error("{what} failed: {reason}")]
    Transport { what: String, reason: String },

    #[error("build secret `{id}`: {reason}")]
    Secret { id: String, reason: String },

    #[error("cannot write the build context: {reason}")]
    Context { reason: String },

    #[error("cannot plan the build: {0}")]
    Plan(String),

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

fn no_engine_message(choice: EngineChoice, attempts: &[Attempt]) -> String {
    let wanted = match choice {
        EngineChoice::Any => "no container engine (Docker or Podman) answered",
        EngineChoice::Docker => "no Docker engine answered",
        EngineChoice::Podman => "no Podman engine answered",
    };
    let mut s = format!("{wanted}; tried:");
    for a in attempts {
        s.push_str(&format!("\n  - {a}"));
    }
    s.push_str(&format!("\n  {START_HINT}"));
    s
}

impl LocalError {
    pub fn kind(&self) -> BuildErrorKind {
        match self {
            LocalError::NoEngine { .. } | LocalError::Connect { .. } => BuildErrorKind::Unavailable,
            // A spec the plan cannot express is something this builder cannot do.
            LocalError::Unsupported(_) | LocalError::Plan(_) => BuildErrorKind::Unsupported,
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
