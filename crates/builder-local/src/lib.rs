//! imagespec's local builder: builds images on this machine with Docker or Podman through the
//! Docker Engine API, and pushes them with the user's registry credentials.
//!
//! Three builders are registered ([`register_local_builders`]):
//! - `default` (alias `envd`): the first engine that answers ([`discovery`] says where it looks);
//! - `docker`: Docker only; `podman`: Podman only.
//!
//! They connect lazily, on the first existence check or build, so listing builders or computing
//! a tag never needs an engine. An engine is a unix socket, plain `tcp://`, or `tcp://` over TLS
//! with client certificates ([`tls`]: `DOCKER_TLS_VERIFY`, or [`LocalBuilder::with_tls`]).
//!
//! What each engine does with a spec:
//! - Docker: BuildKit (`RUN --mount=type=cache|secret`, multi-stage, `COPY --from=<image>`);
//!   secrets are served over a BuildKit client session from this process (module `session`).
//! - Podman: Buildah through the libpod build endpoint (cache and secret mounts are native to
//!   Buildah); secrets travel as files inside the uploaded context, which the service moves out
//!   of the context before building ([`secrets`]).
//! - Several platforms ([`platforms`]): each platform is built on its own (foreign ones under
//!   qemu emulation) and pushed under its own tag, then the index naming them all is put under
//!   the image's name with the registry client. Docker 20.10's classic store cannot hold an
//!   index, and Podman 4.3's libpod build endpoint misreads a list of platforms, so both
//!   engines take this one path; it needs a push (`--no-push` with several platforms is
//!   refused before any work).

pub mod build;
mod cache;
pub mod discovery;
pub mod docker_context;
mod engine_http;
pub mod error;
pub mod exists;
pub mod platforms;
pub mod progress;
pub mod proxy;
mod pull_auth;
pub mod push;
pub mod secrets;
mod session;
mod session_auth;
pub mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use imagespec_core::build::{
    BuildCache, BuildError, BuildErrorKind, BuildEvent, BuildOutput, BuildRequest, BuilderKind,
    BuilderRegistry, Capabilities, EventSink, Existence, ExistsQuery, ImageBuilder,
};
use imagespec_core::hash::ImageName;
use imagespec_core::plan::{BuildPlan, PlanError};
use imagespec_core::spec::{LoadedSpec, SpecField};
use imagespec_registry::{CredentialSources, ImageReference, Platform, RegistryClient};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

pub use build::{BuildJob, BuiltImage, ContextWriter};
pub use discovery::{ConnectedEngine, Endpoint, EngineChoice, EngineKind};
pub use error::LocalError;
pub use secrets::{BuildSecret, Redactor, SecretSource, SecretValue};
pub use tls::TlsFiles;

/// Where credentials are looked up: the process environment, or a fixed set (tests, embedders).
type CredentialLookup = Arc<dyn Fn() -> CredentialSources + Send + Sync>;

/// A builder backed by a local Docker or Podman engine.
pub struct LocalBuilder {
    name: &'static str,
    aliases: &'static [&'static str],
    choice: EngineChoice,
    endpoint: Option<String>,
    /// Certificates for a `tcp://` engine; `None`: as `DOCKER_TLS_VERIFY` says.
    tls: Option<TlsFiles>,
    temp_dir: Option<PathBuf>,
    credentials: CredentialLookup,
    /// The `--cache-from` / `--cache-to` flags, which replace the spec's cache keys.
    cache_flags: BuildCache,
    engine: OnceCell<ConnectedEngine>,
}

impl std::fmt::Debug for LocalBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBuilder")
            .field("name", &self.name)
            .field("choice", &self.choice)
            .field("endpoint", &self.endpoint)
            .field("tls", &self.tls)
            .field(
                "engine",
                &self.engine.get().map(|e| (e.kind, e.endpoint.to_string())),
            )
            .finish_non_exhaustive()
    }
}

impl LocalBuilder {
    /// A builder for `choice`; `endpoint_override` (the `--engine` flag or the config's
    /// `engine`) is then the only endpoint tried. Named `default`, `docker` or `podman` after
    /// the choice.
    pub fn new(choice: EngineChoice, endpoint_override: Option<String>) -> Self {
        let (name, aliases): (&'static str, &'static [&'static str]) = match choice {
            EngineChoice::Any => ("default", &["envd"]),
            EngineChoice::Docker => ("docker", &[]),
            EngineChoice::Podman => ("podman", &[]),
        };
        LocalBuilder {
            name,
            aliases,
            choice,
            endpoint: endpoint_override.filter(|e| !e.trim().is_empty()),
            tls: None,
            temp_dir: None,
            credentials: Arc::new(CredentialSources::from_env),
            cache_flags: BuildCache::default(),
            engine: OnceCell::new(),
        }
    }

    /// Puts build contexts under `dir` instead of the system temporary directory.
    #[must_use]
    pub fn with_temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = Some(dir.into());
        self
    }

    /// Speaks TLS with these certificates to a `tcp://` engine, whatever `DOCKER_TLS_VERIFY`
    /// says (a build service's worker).
    #[must_use]
    pub fn with_tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// Uses these credential sources instead of the standard locations from the environment.
    #[must_use]
    pub fn with_credentials(mut self, sources: CredentialSources) -> Self {
        self.credentials = Arc::new(move || sources.clone());
        self
    }

    /// Uses this registry cache in place of the spec's `builder_options.cache_from` and
    /// `cache_to`, key by key (the `--cache-from` / `--cache-to` flags).
    #[must_use]
    pub fn with_cache(mut self, cache: BuildCache) -> Self {
        self.cache_flags = cache;
        self
    }

    /// The registry cache of a build of `spec`: its `builder_options`, then the flags.
    fn cache_of(&self, spec: &imagespec_core::spec::ImageSpec) -> Result<BuildCache, BuildError> {
        let from_spec =
            BuildCache::from_builder_options(&spec.builder_options).map_err(|(key, problem)| {
                LocalError::Plan(PlanError::InvalidBuilderOption { key, problem })
            })?;
        Ok(from_spec.overridden_by(&self.cache_flags))
    }

    /// The engine, connecting on first use. A failure is not cached: the next call tries again
    /// (an engine may have been started in between).
    pub async fn engine(&self) -> Result<&ConnectedEngine, LocalError> {
        self.engine
            .get_or_try_init(|| {
                discovery::discover_with_tls(
                    self.choice,
                    self.endpoint.as_deref(),
                    self.tls.as_ref(),
                    |k| std::env::var(k).ok(),
                )
            })
            .await
    }

    fn temp_root(&self) -> PathBuf {
        self.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// Builds a Dockerfile job on the engine (what [`ImageBuilder::build`] does after planning;
    /// public for callers that bring their own Dockerfile). Images the build pulls use the
    /// builder's credential sources.
    pub async fn build_job(&self, job: BuildJob) -> Result<BuiltImage, BuildError> {
        self.build_job_with(job, None, &self.cache_flags).await
    }

    /// [`Self::build_job`], with the spec's `registry_config` consulted first for the pulls,
    /// and the registry cache `cache`.
    async fn build_job_with(
        &self,
        job: BuildJob,
        registry_config: Option<&Path>,
        cache: &BuildCache,
    ) -> Result<BuiltImage, BuildError> {
        if let Some(p) = &job.platform
            && p.contains(',')
        {
            return Err(LocalError::Unsupported(format!(
                "a build job is for one platform, not `{p}`: build a job per platform (as `ImageBuilder::build` does for a spec)"
            ))
            .into());
        }
        let engine = self.engine().await?;
        build::run(
            engine,
            job,
            &self.temp_root(),
            self.credential_sources(registry_config),
            cache,
        )
        .await
    }

    /// The credential sources for one image: the spec's `registry_config` first, then the
    /// builder's (one rule for pulls and pushes).
    fn credential_sources(&self, registry_config: Option<&Path>) -> CredentialSources {
        let sources = (self.credentials)();
        match registry_config {
            Some(p) => sources.with_explicit_file(p),
            None => sources,
        }
    }

    /// Pushes an image from the engine's store to its registry; returns the manifest digest
    /// when known. `registry_config` is the spec's `registry_config` (consulted first).
    pub async fn push_image(
        &self,
        image: &str,
        registry_config: Option<&Path>,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, BuildError> {
        let engine = self.engine().await?;
        let sources = self.credential_sources(registry_config);
        Ok(push::push(engine, image, &sources, events, cancel).await?)
    }
}

impl LocalBuilder {
    /// Builds and pushes each platform of `req` under its own tag ([`platforms::platform_image`]),
    /// then puts the index naming them under the image's name. `first` is the request's job,
    /// reused for the first platform.
    async fn build_platforms(
        &self,
        req: &BuildRequest,
        first: BuildJob,
        platforms: &[String],
        registry_config: Option<&Path>,
        cache: &BuildCache,
    ) -> Result<BuildOutput, BuildError> {
        let image = req.image.name.to_string();
        let invalid = |what: &str, e: String| {
            BuildError::from(LocalError::Push {
                image: image.clone(),
                message: format!("{what}: {e}"),
                auth: false,
                cause: None,
            })
        };
        let mut first = Some(first);
        let mut parts = Vec::with_capacity(platforms.len());
        for (n, platform) in platforms.iter().enumerate() {
            let mut job = match first.take() {
                Some(job) => job,
                None => {
                    let secrets = build::load_secrets(req)?;
                    let kind = self.engine().await?.kind;
                    build::job_from_request(req, kind, secrets, BTreeMap::new())?.0
                }
            };
            let name = platforms::platform_image(&req.image.name, platform).to_string();
            job.tag = name.clone();
            job.platform = Some(platform.clone());
            req.events.emit(BuildEvent::Status {
                message: format!(
                    "building {platform} ({} of {}) as {name}",
                    n + 1,
                    platforms.len()
                ),
            });
            let built = self
                .build_job_with(job, registry_config, cache)
                .await
                .map_err(|e| with_helper_hint(&req.spec.spec, e))?;
            tracing::info!(image = %built.tag, id = ?built.image_id, %platform, "built");
            self.push_image(&name, registry_config, &req.events, &req.cancel)
                .await?;
            let reference =
                ImageReference::parse(&name).map_err(|e| invalid(&name, e.to_string()))?;
            let platform =
                Platform::parse(platform).map_err(|e| invalid(platform, e.to_string()))?;
            parts.push((reference, platform));
        }
        let target = ImageReference::parse(&image).map_err(|e| invalid(&image, e.to_string()))?;
        let client = RegistryClient::builder()
            .credentials(self.credential_sources(registry_config))
            .build()
            .map_err(|e| invalid("creating a registry client", e.to_string()))?;
        let digest = client.push_index(&target, &parts).await.map_err(|e| {
            BuildError::from(LocalError::Push {
                image: image.clone(),
                message: format!("pushing the index of {}: {e}", platforms.join(", ")),
                auth: e.is_auth(),
                cause: Some(Box::new(e)),
            })
        })?;
        req.events.emit(BuildEvent::Status {
            message: format!("pushed {image} (an index of {})", platforms.join(", ")),
        });
        Ok(BuildOutput {
            image,
            digest: Some(digest),
            pushed: true,
        })
    }
}

fn multi_platform_needs_push(builder: &str, platforms: &[String]) -> String {
    format!(
        "builder `{builder}` cannot build {} without pushing: the engine's image store holds one platform per name, so the index that joins them is assembled in the registry; drop --no-push (FLYTE_PUSH_IMAGE_SPEC=0), or build one platform",
        platforms.join(",")
    )
}

/// A helper image that cannot be pulled fails the build at its step; say which
/// `builder_config` key picks another. BuildKit names the image in the failing step
/// (`FROM <uv_image>`), Podman in the message.
fn with_helper_hint(spec: &imagespec_core::spec::ImageSpec, mut e: BuildError) -> BuildError {
    let said = format!("{} {}", e.message, e.step.as_deref().unwrap_or_default());
    if let Some(hint) = imagespec_core::plan::python::helper_image_hint(spec, &said) {
        e.message = format!("{}\n  help: {hint}", e.message);
    }
    e
}

/// Registers `default` (alias `envd`), `docker` and `podman`, all using `endpoint` if given,
/// and `cache` ([`LocalBuilder::with_cache`]).
pub fn register_local_builders(
    registry: &mut BuilderRegistry,
    endpoint: Option<String>,
    cache: &BuildCache,
) {
    for choice in [
        EngineChoice::Any,
        EngineChoice::Docker,
        EngineChoice::Podman,
    ] {
        registry.register(Arc::new(
            LocalBuilder::new(choice, endpoint.clone()).with_cache(cache.clone()),
        ));
    }
}

#[async_trait]
impl ImageBuilder for LocalBuilder {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[&str] {
        self.aliases
    }

    fn priority(&self) -> i32 {
        match self.choice {
            EngineChoice::Any => 1,
            _ => 0,
        }
    }

    fn description(&self) -> &str {
        match self.choice {
            EngineChoice::Any => {
                "builds with the local Docker (BuildKit) or Podman engine, whichever answers first"
            }
            EngineChoice::Docker => "builds with the local Docker engine (BuildKit)",
            EngineChoice::Podman => "builds with the local Podman engine (Buildah)",
        }
    }

    fn preflight(&self, spec: &LoadedSpec) -> Result<(), PlanError> {
        BuildPlan::check(spec)
    }

    async fn readiness(&self) -> Result<String, String> {
        let engine = self.engine().await.map_err(|e| e.to_string())?;
        // The connection is discovered once and kept; ping it every time, so an engine that
        // went away since (a build service's readiness probe) is reported, not remembered.
        engine.docker.ping().await.map_err(|e| {
            format!(
                "the {} engine at {} does not answer /_ping: {e}",
                engine.kind, engine.endpoint
            )
        })?;
        Ok(format!(
            "{} {} at {}",
            engine.kind, engine.version, engine.endpoint
        ))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            kind: BuilderKind::Local,
            fields: SpecField::ALL.to_vec(),
            multi_platform: true,
            push: true,
            secrets: true,
        }
    }

    async fn exists(&self, image: &ImageName, query: &ExistsQuery) -> Existence {
        if query.push {
            return exists::in_registry(
                image,
                &query.platforms,
                (self.credentials)(),
                query.registry_config.as_deref(),
            )
            .await;
        }
        match self.engine().await {
            Ok(engine) => exists::in_engine(engine, image, &query.platforms).await,
            // No engine to look in is no engine to build with either.
            Err(e) if e.kind() == BuildErrorKind::Unavailable => Existence::Unavailable {
                reason: e.to_string(),
            },
            Err(e) => Existence::Unknown {
                reason: e.to_string(),
            },
        }
    }

    async fn platforms(&self) -> Option<Vec<String>> {
        platforms::buildable(self.engine().await.ok()?)
    }

    async fn build(&self, req: BuildRequest) -> Result<BuildOutput, BuildError> {
        let platforms: Vec<String> = req
            .spec
            .spec
            .platforms()
            .into_iter()
            .map(str::to_string)
            .collect();
        let image = req.image.name.to_string();
        if req.push && req.image.name.registry.is_none() {
            return Err(BuildError::new(
                BuildErrorKind::Unsupported,
                format!("cannot push {image}: the spec has no `registry`"),
            ));
        }
        if platforms.len() > 1 && !req.push {
            return Err(BuildError::new(
                BuildErrorKind::Unsupported,
                multi_platform_needs_push(self.name, &platforms),
            ));
        }
        // The plan labels the image itself (spec hash and hash inputs).
        let secrets = build::load_secrets(&req)?;
        let cache = self.cache_of(&req.spec.spec)?;
        let engine = self.engine().await?;
        let registry_config = req
            .spec
            .spec
            .registry_config
            .as_deref()
            .map(|p| req.spec.path(p));
        let (job, pulled) = build::job_from_request(&req, engine.kind, secrets, BTreeMap::new())?;
        // What this machine cannot build fails now, before any step runs.
        if platforms::needs_checks(engine, &platforms) {
            platforms::check_emulation(engine, &platforms)?;
            let sources = self.credential_sources(registry_config.as_deref());
            platforms::check_pulled_images(engine, &pulled, &platforms, &sources).await?;
        }
        if platforms.len() > 1 {
            return self
                .build_platforms(&req, job, &platforms, registry_config.as_deref(), &cache)
                .await;
        }
        let built = self
            .build_job_with(job, registry_config.as_deref(), &cache)
            .await
            .map_err(|e| with_helper_hint(&req.spec.spec, e))?;
        tracing::info!(image = %built.tag, id = ?built.image_id, "built");
        if !req.push {
            return Ok(BuildOutput {
                image,
                digest: built.image_id,
                pushed: false,
            });
        }
        let digest = self
            .push_image(&image, registry_config.as_deref(), &req.events, &req.cancel)
            .await?;
        req.events.emit(BuildEvent::Status {
            message: format!("pushed {image}"),
        });
        Ok(BuildOutput {
            image,
            digest,
            pushed: true,
        })
    }
}
