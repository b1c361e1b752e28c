//! Exit codes (documented in the README) and how errors map to them.

use imagespec_core::build::{BuildErrorKind, EngineError, UnknownBuilder};
use imagespec_core::hash::HashError;
use imagespec_core::plan::PlanError;
use imagespec_core::spec::SpecError;

/// Success.
pub const OK: u8 = 0;
/// An unexpected failure (I/O, a bug).
pub const FAILURE: u8 = 1;
/// Bad command-line usage (clap's code too).
pub const USAGE: u8 = 2;
/// The spec, a file it names, or the configuration file is invalid.
pub const INVALID_SPEC: u8 = 3;
/// The builder cannot be used for this spec (unknown, not set up, not allowed by the variant,
/// missing registry, unsupported field).
pub const BUILDER: u8 = 4;
/// Whether the image exists could not be determined and the policy is `fail`.
pub const EXISTENCE_UNKNOWN: u8 = 5;
/// The build or push failed.
pub const BUILD_FAILED: u8 = 6;
/// Interrupted (Ctrl-C).
pub const CANCELLED: u8 = 130;

/// The exit code and a stable kind name for an error.
pub fn classify(err: &anyhow::Error) -> (u8, &'static str) {
    // A hash or plan error is a problem with the spec or its inputs: a file that cannot be read,
    // an ignore file pointing outside the tree, a CUDA version with no image, an unknown
    // `builder_options` key.
    if err.downcast_ref::<SpecError>().is_some()
        || err.downcast_ref::<HashError>().is_some()
        || err.downcast_ref::<PlanError>().is_some()
    {
        return (INVALID_SPEC, "invalid_spec");
    }
    // The service's configuration file: the same exit code, its own kind.
    if err
        .downcast_ref::<imagespec_service::ConfigError>()
        .is_some()
    {
        return (INVALID_SPEC, "invalid_config");
    }
    if err.downcast_ref::<UnknownBuilder>().is_some() {
        return (BUILDER, "builder");
    }
    if err
        .downcast_ref::<imagespec_core::build::variant::UnknownVariant>()
        .is_some()
    {
        return (USAGE, "usage");
    }
    if let Some(e) = err.downcast_ref::<EngineError>() {
        return classify_engine(e);
    }
    (FAILURE, "failure")
}

fn classify_engine(e: &EngineError) -> (u8, &'static str) {
    match e {
        EngineError::Base { source, .. } => classify_engine(source),
        EngineError::ExistenceUnknown { .. } => (EXISTENCE_UNKNOWN, "existence_unknown"),
        // Refused registry credentials during the existence check: a set-up problem.
        EngineError::Denied { .. } => (BUILDER, "auth"),
        EngineError::Unavailable { .. } => (BUILDER, "builder"),
        EngineError::Build { source, .. } if source.kind == BuildErrorKind::Cancelled => {
            (CANCELLED, "cancelled")
        }
        // No engine answered, or the build service is unreachable or refuses the token: the
        // builder cannot be used, which is not the same as a build that ran and failed.
        EngineError::Build { source, .. } if source.kind == BuildErrorKind::Unavailable => {
            (BUILDER, "builder")
        }
        // Refused credentials (a registry's, the build service's token) are set-up problems too.
        EngineError::Build { source, .. } if source.kind == BuildErrorKind::Auth => {
            (BUILDER, "auth")
        }
        EngineError::Build { .. } => (BUILD_FAILED, "build_failed"),
        EngineError::Hash(_) | EngineError::Plan { .. } => (INVALID_SPEC, "invalid_spec"),
        // An unusable IMAGESPEC_NETWORK_TIMEOUT is invalid configuration.
        EngineError::NetworkTimeout(_) => (INVALID_SPEC, "invalid_config"),
        EngineError::UnknownBuilder(_)
        | EngineError::Unconfigured { .. }
        | EngineError::LocalBuildNotAllowed { .. }
        | EngineError::RegistryRequired { .. }
        | EngineError::Unsupported { .. } => (BUILDER, "builder"),
    }
}
