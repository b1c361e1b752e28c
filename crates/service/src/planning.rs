//! Planning a build through the core engine, so the service applies the engine's rules (builder
//! capabilities, the builder's `preflight`, base images, the existence check) rather than its
//! own copies of them. What stays here is the service's part: which workers, which namespace.
//!
//! Each worker is an engine with one builder (workers may share a builder name, `docker` twice),
//! selected by that builder's name whatever the spec's `builder` says: the spec's `builder`
//! chose the build service on the client's machine.

use std::sync::Arc;

use imagespec_core::build::{
    Action, BuilderRegistry, Engine, EngineError, EngineOptions, ExistencePolicy, ImageBuilder,
    Planned, SecretValues,
};
use imagespec_core::hash::ResolvedImage;
use imagespec_core::spec::LoadedSpec;

use crate::naming::Scope;
use crate::state::Worker;

/// The engine options of a build for a project: pushed, names without a registry in the
/// project's namespace, and an existence that cannot be told means "build" (the image would be
/// pushed over whatever is there, under its content-derived name).
pub fn options(scope: &Scope, builder: &dyn ImageBuilder, secrets: SecretValues) -> EngineOptions {
    EngineOptions {
        builder: Some(builder.name().to_string()),
        policy: ExistencePolicy::Build,
        push: true,
        default_registry: scope.namespace.clone(),
        secrets,
        ..EngineOptions::default()
    }
}

/// An engine that builds with this (a worker's) builder only.
pub fn engine(builder: Arc<dyn ImageBuilder>) -> Engine {
    let mut builders = BuilderRegistry::new();
    builders.register(builder);
    Engine::new(builders)
}

/// Plans `spec` (already resolved: its files are not hashed again) for `worker`.
pub fn plan_on(
    worker: &Worker,
    scope: &Scope,
    spec: &LoadedSpec,
    resolved: &ResolvedImage,
) -> Result<Planned, EngineError> {
    engine(worker.builder.clone()).plan_resolved(
        spec,
        resolved,
        &options(scope, worker.builder.as_ref(), SecretValues::default()),
    )
}

/// Plans `spec` for every worker: the plan of the first that accepts it, and the indices of all
/// that do; when none does, the first worker's refusal, in the engine's words.
pub fn plan(
    workers: &[Worker],
    scope: &Scope,
    spec: &LoadedSpec,
    resolved: &ResolvedImage,
) -> Result<(Planned, Vec<usize>), EngineError> {
    let mut first_error = None;
    let mut accepted = None;
    let mut able = Vec::new();
    for (i, worker) in workers.iter().enumerate() {
        match plan_on(worker, scope, spec, resolved) {
            Ok(planned) => {
                accepted.get_or_insert(planned);
                able.push(i);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match accepted {
        Some(planned) => Ok((planned, able)),
        None => Err(first_error.unwrap_or(EngineError::Unconfigured {
            builder: "(none)".into(),
            reason: "the service has no workers".into(),
        })),
    }
}

/// Whether the planned image is already there, by the engine's existence rule (asked of the
/// builder the plan chose). The base spec is not looked at: the client builds it first, and
/// the service builds one image per request.
pub async fn exists(planned: &Planned, scope: &Scope) -> Result<bool, EngineError> {
    let top = Planned {
        base: None,
        ..planned.clone()
    };
    let options = options(scope, planned.builder.as_ref(), SecretValues::default());
    let outcome = engine(planned.builder.clone())
        .ensure_planned(&top, &options, true)
        .await?;
    Ok(outcome.action == Action::Exists)
}
