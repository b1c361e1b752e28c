//! The engine: picks a builder, computes the image name, checks whether the image exists, and
//! builds only when it is missing (or forced). A spec-valued base image is handled first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::builder::{
    BuildError, BuildErrorKind, BuildOutput, BuildRequest, BuilderKind, EventSink, Existence,
    ExistsQuery, ImageBuilder,
};
use super::registry::{BuilderRegistry, UnknownBuilder};
use super::variant::Variant;
use crate::hash::{HashError, ResolvedImage, resolve_image};
use crate::plan::PlanError;
use crate::spec::{BaseImage, LoadedSpec, SpecField};

/// What to do when an image's existence cannot be determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExistencePolicy {
    /// Stop with an error that says why the check failed (the default: no silent guesses).
    #[default]
    Fail,
    /// Build the image anyway.
    Build,
    /// Assume it exists and say so (flytekit's silent behaviour, made explicit).
    Assume,
}

impl std::str::FromStr for ExistencePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fail" => Ok(ExistencePolicy::Fail),
            "build" => Ok(ExistencePolicy::Build),
            "assume" => Ok(ExistencePolicy::Assume),
            other => Err(format!(
                "unknown existence policy `{other}`; use fail, build or assume"
            )),
        }
    }
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub variant: Variant,
    /// A builder name that overrides the spec's `builder` (the `--builder` flag).
    pub builder: Option<String>,
    pub policy: ExistencePolicy,
    /// Rebuild even when the image exists.
    pub force: bool,
    /// Push to the registry (`false`: keep the image in the local engine).
    pub push: bool,
    pub events: EventSink,
    pub cancel: CancellationToken,
    /// `FLYTE_IMG_FAST_FAIL` forced the `fail` policy (see [`EngineOptions::apply_env`]), so an
    /// unknown existence is not fixed with `--if-unknown`.
    pub fast_fail: bool,
    /// Where an image whose spec names no `registry` goes: a build service's namespace for the
    /// project. Unlike the spec's `registry` it is not part of the name (the client computed
    /// the name without it), so it only qualifies the planned names.
    pub default_registry: Option<String>,
    /// Where the builder takes the values of `pip_secret_mounts` from.
    pub secrets: super::secrets::SecretValues,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            variant: Variant::default(),
            builder: None,
            policy: ExistencePolicy::default(),
            force: false,
            push: true,
            events: EventSink::discard(),
            cancel: CancellationToken::new(),
            fast_fail: false,
            default_registry: None,
            secrets: Default::default(),
        }
    }
}

impl EngineOptions {
    /// Applies flytekit's environment switches: `FLYTE_FORCE_PUSH_IMAGE_SPEC` forces a rebuild,
    /// `FLYTE_IMG_FAST_FAIL` turns an undeterminable existence check into an error whatever the
    /// configured policy, and `FLYTE_PUSH_IMAGE_SPEC` set to a false value (`0`, `false`, `no`,
    /// `off`) builds without pushing. flytekit pushes unless the variable is `true` or `1`; an
    /// unrecognised value keeps imagespec's default (push), so a typo never drops a push.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let truthy = |v: Option<String>| {
            v.is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            })
        };
        if truthy(get("FLYTE_FORCE_PUSH_IMAGE_SPEC")) {
            self.force = true;
        }
        if truthy(get("FLYTE_IMG_FAST_FAIL")) {
            self.policy = ExistencePolicy::Fail;
            self.fast_fail = true;
        }
        let falsy = |v: Option<String>| {
            v.is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "0" | "false" | "no" | "off"
                )
            })
        };
        if falsy(get("FLYTE_PUSH_IMAGE_SPEC")) {
            self.push = false;
        }
    }
}

/// What the engine did for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The image was built (and pushed, if asked).
    Built,
    /// The image already existed; nothing was built.
    Exists,
    /// Existence was unknown and the `assume` policy was in force.
    AssumedExists,
    /// A pass-through builder: the image is the base image.
    Passthrough,
    /// Dry run: the image is missing (or forced) and would be built.
    WouldBuild,
}

/// The result for one spec (and its base spec).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The fully qualified image name to use.
    pub image: String,
    pub builder: String,
    pub action: Action,
    /// The existence check's answer, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existence: Option<Existence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<BuildOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<Box<Outcome>>,
}

/// Why the engine stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    UnknownBuilder(#[from] UnknownBuilder),
    #[error(
        "the {variant} variant does not support local builds (builder `{builder}`); remove `builder` from the spec or set it to `union`"
    )]
    LocalBuildNotAllowed { variant: Variant, builder: String },
    #[error(
        "builder `{builder}` builds locally and pushes, so the spec needs a `registry`; add `registry: <host>/<namespace>` (e.g. ghcr.io/my-org), pass --registry, or use --no-push"
    )]
    RegistryRequired { builder: String },
    #[error("builder `{builder}` is not set up: {reason}")]
    Unconfigured { builder: String, reason: String },
    #[error("builder `{builder}` cannot honour `{field}`: {reason}")]
    Unsupported {
        builder: String,
        field: SpecField,
        reason: String,
    },
    #[error(transparent)]
    Hash(Arc<HashError>),
    #[error("builder `{builder}` cannot build this spec: {source}")]
    Plan {
        builder: String,
        #[source]
        source: Arc<PlanError>,
    },
    #[error("cannot tell whether {image} exists: {reason}\n  {}", unknown_fix(*.fast_fail))]
    ExistenceUnknown {
        image: String,
        reason: String,
        /// The `fail` policy came from `FLYTE_IMG_FAST_FAIL`, not from the user's choice.
        fast_fail: bool,
    },
    /// The registry refused the credentials during the existence check; whatever the
    /// existence policy, this is an error.
    #[error(
        "cannot check whether {image} exists: {reason}\n  fix the credentials (`docker login`, the credential helper, or the spec's `registry_config`); --if-unknown does not apply to refused credentials"
    )]
    Denied { image: String, reason: String },
    /// The builder could not be reached to check whether the image exists.
    #[error(
        "builder `{builder}` cannot be reached to check whether {image} exists: {reason}\n  --if-unknown does not apply: the build would need the same builder"
    )]
    Unavailable {
        image: String,
        builder: String,
        reason: String,
    },
    #[error(transparent)]
    NetworkTimeout(crate::net::TimeoutError),
    #[error("building {image} with `{builder}` failed: {source}")]
    Build {
        image: String,
        builder: String,
        #[source]
        source: Box<BuildError>,
    },
    #[error("the base image spec `{name}` failed: {source}")]
    Base {
        name: String,
        #[source]
        source: Box<EngineError>,
    },
}

/// What to do about an unknown existence under the `fail` policy: `--if-unknown` does not help
/// when `FLYTE_IMG_FAST_FAIL` forced the policy over it.
fn unknown_fix(fast_fail: bool) -> &'static str {
    if fast_fail {
        "the existence policy is `fail` because FLYTE_IMG_FAST_FAIL is set, which overrides --if-unknown and `if_unknown` in the config; fix the cause, or unset FLYTE_IMG_FAST_FAIL (`unset FLYTE_IMG_FAST_FAIL`) and pass --if-unknown build (build anyway) or --if-unknown assume (use it as is)"
    } else {
        "the existence policy is `fail`; fix the cause, or pass --if-unknown build (build anyway) or --if-unknown assume (use it as is)"
    }
}

/// Where a builder that is not set up can be replaced: the local builder, unless the variant
/// forbids local builds (then suggesting `--builder default` would only earn another refusal).
fn unconfigured_alternative(kind: BuilderKind, variant: Variant) -> &'static str {
    match kind {
        BuilderKind::Remote if variant.allows_local_builds() => {
            "; or build locally with `--builder default`"
        }
        BuilderKind::Remote => {
            "; the serverless variant builds only remotely, so the build service must be set up (or choose another variant with --variant or IMAGESPEC_VARIANT)"
        }
        _ => "",
    }
}

/// A spec with its builder chosen and its name computed; nothing built yet.
#[derive(Clone)]
pub struct Planned {
    pub spec: LoadedSpec,
    pub builder: Arc<dyn ImageBuilder>,
    pub resolved: ResolvedImage,
    /// The image this spec is built from: its base spec's planned name (where that build puts
    /// it), or its `base_image` reference; `None` leaves the choice to the plan (the default
    /// base, or the CUDA table's). Kept apart from `base`, so a caller that builds the base
    /// elsewhere (a build service: the client built it) still knows it.
    pub base_image: Option<String>,
    pub base: Option<Box<Planned>>,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("builder", &self.builder.name())
            .field("image", &self.resolved.name.to_string())
            .field("base", &self.base)
            .finish()
    }
}

type Shared = Arc<OnceCell<Result<Outcome, EngineError>>>;
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Builds specs with the registered builders. Cheap to share (`Arc<Engine>`); concurrent
/// requests for the same image share one build.
pub struct Engine {
    builders: BuilderRegistry,
    in_flight: Mutex<HashMap<String, Shared>>,
}

impl Engine {
    pub fn new(builders: BuilderRegistry) -> Self {
        Engine {
            builders,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    pub fn builders(&self) -> &BuilderRegistry {
        &self.builders
    }

    /// Chooses the builder for a spec: the `--builder` override, the spec's `builder`, or the
    /// variant's default, and applies the variant's rules.
    pub fn select(
        &self,
        spec: &LoadedSpec,
        options: &EngineOptions,
    ) -> Result<Arc<dyn ImageBuilder>, EngineError> {
        let name = options
            .builder
            .as_deref()
            .or(spec.spec.builder.as_deref())
            .unwrap_or(options.variant.default_builder());
        let builder = self.builders.get(name)?;
        if self.builders.is_alias(name) {
            tracing::warn!(
                "builder name `{name}` is deprecated; use `{}`",
                builder.name()
            );
        }
        let caps = builder.capabilities();
        if caps.kind == BuilderKind::Local && !options.variant.allows_local_builds() {
            return Err(EngineError::LocalBuildNotAllowed {
                variant: options.variant,
                builder: builder.name().to_string(),
            });
        }
        Ok(builder)
    }

    /// What the builder chosen for a spec (and for each base spec) refuses in the spec itself,
    /// without contacting it: an unknown builder name, a local builder on a remote-only variant,
    /// a field it does not implement, several platforms. `validate` reports these with the
    /// spec's other problems; each comes with the field path of its spec (`""`,
    /// `base_image`, ...). Pushing and registry questions are left to [`Engine::plan`].
    pub fn spec_problems(
        &self,
        spec: &LoadedSpec,
        options: &EngineOptions,
    ) -> Vec<(String, EngineError)> {
        let mut out = Vec::new();
        let mut prefix = String::new();
        let mut current = Some(spec.clone());
        while let Some(level) = current {
            let result = self
                .select(&level, options)
                .and_then(|b| Self::check_spec_capabilities(b.as_ref(), &level));
            if let Err(e) = result {
                out.push((prefix.clone(), e));
            }
            current = level.base();
            prefix = if prefix.is_empty() {
                "base_image".to_string()
            } else {
                format!("{prefix}.base_image")
            };
        }
        out
    }

    /// Checks that a builder can honour everything a spec asks for.
    fn check_capabilities(
        builder: &dyn ImageBuilder,
        spec: &LoadedSpec,
        options: &EngineOptions,
    ) -> Result<(), EngineError> {
        Self::check_spec_capabilities(builder, spec)?;
        let caps = builder.capabilities();
        let unsupported = |field, reason: &str| EngineError::Unsupported {
            builder: builder.name().to_string(),
            field,
            reason: reason.to_string(),
        };
        // A pass-through builder makes no image, so it has nothing to push.
        if options.push && !caps.push && caps.kind != BuilderKind::Passthrough {
            return Err(unsupported(
                SpecField::Registry,
                "it cannot push images; pass --no-push (EngineOptions::push = false) or choose another builder",
            ));
        }
        match caps.kind {
            BuilderKind::Local
                if options.push
                    && spec.spec.registry.is_none()
                    && options.default_registry.is_none() =>
            {
                Err(EngineError::RegistryRequired {
                    builder: builder.name().to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The part of [`Engine::check_capabilities`] that depends on the spec alone.
    fn check_spec_capabilities(
        builder: &dyn ImageBuilder,
        spec: &LoadedSpec,
    ) -> Result<(), EngineError> {
        let caps = builder.capabilities();
        let unsupported = |field, reason: &str| EngineError::Unsupported {
            builder: builder.name().to_string(),
            field,
            reason: reason.to_string(),
        };
        for field in spec.spec.used_fields() {
            if !caps.supports(field) {
                return Err(unsupported(
                    field,
                    "this builder does not implement it; remove the field or choose another builder",
                ));
            }
        }
        if spec.spec.platforms().len() > 1 && !caps.multi_platform {
            return Err(unsupported(
                SpecField::Platform,
                "it cannot build several platforms at once; build one platform per spec",
            ));
        }
        if !spec.spec.pip_secret_mounts.is_empty() && !caps.secrets {
            return Err(unsupported(
                SpecField::PipSecretMounts,
                "it cannot keep build secrets out of the image",
            ));
        }
        match caps.kind {
            BuilderKind::Passthrough
                if !matches!(spec.spec.base_image, Some(BaseImage::Reference(_))) =>
            {
                Err(unsupported(
                    SpecField::BaseImage,
                    "the no-op builder uses `base_image` as the image, so it must be an image reference",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Selects builders and computes names for a spec and its base spec, failing before any build.
    pub fn plan(&self, spec: &LoadedSpec, options: &EngineOptions) -> Result<Planned, EngineError> {
        self.plan_with(spec, None, options)
    }

    /// [`Engine::plan`] for a spec whose name is already computed (by [`crate::check`], which
    /// every command runs first), so its files are not read and hashed a second time.
    pub fn plan_resolved(
        &self,
        spec: &LoadedSpec,
        resolved: &ResolvedImage,
        options: &EngineOptions,
    ) -> Result<Planned, EngineError> {
        self.plan_with(spec, Some(resolved), options)
    }

    fn plan_with(
        &self,
        spec: &LoadedSpec,
        resolved: Option<&ResolvedImage>,
        options: &EngineOptions,
    ) -> Result<Planned, EngineError> {
        // Every backend's network client reads IMAGESPEC_NETWORK_TIMEOUT; a value it cannot use
        // is refused here, before any work, rather than turned into "existence unknown".
        crate::net::NetworkTimeouts::from_env().map_err(EngineError::NetworkTimeout)?;
        let base = match spec.base() {
            Some(base_spec) => Some(Box::new(
                self.plan_with(
                    &base_spec,
                    resolved.and_then(|r| r.base.as_deref()),
                    options,
                )
                .map_err(|e| EngineError::Base {
                    name: base_spec.spec.name.clone(),
                    source: Box::new(e),
                })?,
            )),
            None => None,
        };
        let builder = self.select(spec, options)?;
        builder
            .configured()
            .map_err(|reason| EngineError::Unconfigured {
                builder: builder.name().to_string(),
                reason: reason
                    + unconfigured_alternative(builder.capabilities().kind, options.variant),
            })?;
        Self::check_capabilities(builder.as_ref(), spec, options)?;
        builder.preflight(spec).map_err(|e| EngineError::Plan {
            builder: builder.name().to_string(),
            source: Arc::new(e),
        })?;
        let mut resolved = match resolved {
            Some(resolved) => resolved.clone(),
            None => resolve_image(spec).map_err(|e| EngineError::Hash(Arc::new(e)))?,
        };
        // Only the name: the hash inputs (the base spec's unqualified name among them) stay as
        // the client computed them.
        if let (Some(registry), None) = (&options.default_registry, &resolved.name.registry) {
            resolved.name.registry = Some(registry.clone());
        }
        let base_image = match &base {
            Some(base) => Some(base.resolved.name.to_string()),
            None => resolved.base_reference(&spec.spec),
        };
        Ok(Planned {
            base_image,
            spec: spec.clone(),
            builder,
            resolved,
            base,
        })
    }

    /// Makes sure the image of `spec` exists, building it (and its base spec) only if needed.
    pub async fn ensure(
        &self,
        spec: &LoadedSpec,
        options: &EngineOptions,
    ) -> Result<Outcome, EngineError> {
        let planned = self.plan(spec, options)?;
        self.ensure_planned(&planned, options, false).await
    }

    /// Like [`Engine::ensure`] but builds nothing: reports what would be done.
    pub async fn dry_run(
        &self,
        spec: &LoadedSpec,
        options: &EngineOptions,
    ) -> Result<Outcome, EngineError> {
        let planned = self.plan(spec, options)?;
        self.ensure_planned(&planned, options, true).await
    }

    /// Makes sure the image of a planned spec exists ([`Engine::ensure`]), or with `dry_run`
    /// reports what would be done ([`Engine::dry_run`]).
    pub fn ensure_planned<'a>(
        &'a self,
        planned: &'a Planned,
        options: &'a EngineOptions,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Outcome, EngineError>> {
        Box::pin(async move {
            let base = match &planned.base {
                Some(base) => Some(Box::new(
                    self.ensure_planned(base, options, dry_run)
                        .await
                        .map_err(|e| EngineError::Base {
                            name: base.spec.spec.name.clone(),
                            source: Box::new(e),
                        })?,
                )),
                None => None,
            };
            let key = format!(
                "{}|{}|{}",
                planned.builder.name(),
                planned.resolved.name,
                dry_run
            );
            let cell = {
                let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                map.entry(key.clone()).or_default().clone()
            };
            let result = cell
                .get_or_init(|| self.ensure_one(planned, base.as_deref(), options, dry_run))
                .await
                .clone();
            self.in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            result.map(|mut outcome| {
                outcome.base = base;
                outcome
            })
        })
    }

    /// The cross-process build lock for `image` (see [`super::lock`]). A lock that cannot be
    /// set up is not worth failing a build for: the names are content-derived, so an
    /// unlocked build is only wasted work, and the warning says so.
    async fn lock_for_build(
        &self,
        image: &str,
        builder: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<super::lock::BuildLock>, EngineError> {
        use super::lock::{LockError, acquire, lock_dir};
        match acquire(&lock_dir(), image, cancel).await {
            Ok(lock) => Ok(Some(lock)),
            Err(LockError::Cancelled) => Err(EngineError::Build {
                image: image.to_string(),
                builder: builder.to_string(),
                source: Box::new(BuildError::new(
                    BuildErrorKind::Cancelled,
                    format!(
                        "cancelled while waiting for another imagespec process building {image}"
                    ),
                )),
            }),
            Err(LockError::Io { path, source }) => {
                tracing::warn!(
                    "cannot take the build lock {} ({source}); building {image} without it, so \
                     another imagespec process may build it too",
                    path.display()
                );
                Ok(None)
            }
        }
    }

    async fn ensure_one(
        &self,
        planned: &Planned,
        base: Option<&Outcome>,
        options: &EngineOptions,
        dry_run: bool,
    ) -> Result<Outcome, EngineError> {
        let builder = &planned.builder;
        let spec = &planned.spec;
        let image = planned.resolved.name.to_string();
        let outcome = |action, existence, output| Outcome {
            image: image.clone(),
            builder: builder.name().to_string(),
            action,
            existence,
            output,
            base: None,
        };
        if builder.capabilities().kind == BuilderKind::Passthrough {
            let reference = planned
                .resolved
                .base_reference(&spec.spec)
                .unwrap_or_default();
            return Ok(Outcome {
                image: reference,
                ..outcome(Action::Passthrough, None, None)
            });
        }
        let forced = options.force || spec.spec.force_push;
        // Build once per machine: held from before the existence check until the build is
        // done, so a peer process that waited finds the image this one pushed.
        let _lock = if forced || dry_run {
            None
        } else {
            self.lock_for_build(&image, builder.name(), &options.cancel)
                .await?
        };
        let existence = if forced {
            None
        } else {
            let query = ExistsQuery {
                platforms: spec
                    .spec
                    .platforms()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                push: options.push,
                registry_config: spec.spec.registry_config.as_deref().map(|p| spec.path(p)),
            };
            let located = builder.locate(&planned.resolved.name, &query).await;
            tracing::debug!(image = %image, ?located, "existence check");
            let answer = located.existence;
            match &answer {
                Existence::Exists => {
                    return Ok(Outcome {
                        image: located.image.unwrap_or_else(|| image.clone()),
                        ..outcome(Action::Exists, Some(answer), None)
                    });
                }
                Existence::Missing => {}
                Existence::Denied { reason } => {
                    return Err(EngineError::Denied {
                        image,
                        reason: reason.clone(),
                    });
                }
                Existence::Unavailable { reason } => {
                    return Err(EngineError::Unavailable {
                        image,
                        builder: builder.name().to_string(),
                        reason: reason.clone(),
                    });
                }
                Existence::Unknown { reason } => match options.policy {
                    ExistencePolicy::Fail => {
                        return Err(EngineError::ExistenceUnknown {
                            image,
                            reason: reason.clone(),
                            fast_fail: options.fast_fail,
                        });
                    }
                    ExistencePolicy::Assume => {
                        tracing::warn!(
                            "cannot tell whether {image} exists ({reason}); assuming it does (policy `assume`)"
                        );
                        return Ok(outcome(Action::AssumedExists, Some(answer), None));
                    }
                    ExistencePolicy::Build => {
                        tracing::warn!(
                            "cannot tell whether {image} exists ({reason}); building it (policy `build`)"
                        );
                    }
                },
            }
            Some(answer)
        };
        if dry_run {
            return Ok(outcome(Action::WouldBuild, existence, None));
        }
        let request = BuildRequest {
            spec: spec.clone(),
            image: planned.resolved.clone(),
            base_image: base
                .map(|b| b.image.clone())
                .or_else(|| planned.base_image.clone()),
            push: options.push,
            events: options.events.clone(),
            cancel: options.cancel.clone(),
            secrets: options.secrets.clone(),
        };
        let output = builder
            .build(request)
            .await
            .map_err(|source| EngineError::Build {
                image: image.clone(),
                builder: builder.name().to_string(),
                source: Box::new(source),
            })?;
        Ok(Outcome {
            image: output.image.clone(),
            ..outcome(Action::Built, existence, Some(output))
        })
    }
}
