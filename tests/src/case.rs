//! One scenario's run against one backend: a fresh root directory, a fresh engine around a
//! recording builder, unique image names, and cleanup of every image it made, even on failure.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, ensure};
use imagespec_core::build::{
    Action, BuildEvent, BuilderRegistry, Capabilities, Engine, EngineError, EngineOptions,
    EventSink, Outcome,
};
use imagespec_core::plan::runtime::Runtime;
use imagespec_core::spec::{ImageSpec, LoadedSpec};

use crate::backend::Backend;
use crate::names::{component, unique};
use crate::recorder::Recorder;
use crate::runner::Runner;

/// The state of one scenario; dropping it removes the images it built or pulled.
pub struct Case<'b> {
    backend: &'b Backend,
    scenario: &'static str,
    id: String,
    root: tempfile::TempDir,
    recorder: Arc<Recorder>,
    engine: Engine,
    events: Arc<Mutex<Vec<BuildEvent>>>,
    fetched: Mutex<Vec<String>>,
    runtime: Mutex<Runtime>,
}

impl<'b> Case<'b> {
    pub fn new(backend: &'b Backend, scenario: &'static str) -> Result<Case<'b>> {
        let recorder = Arc::new(Recorder::new(backend.builder.clone()));
        let mut builders = BuilderRegistry::new();
        builders.register(recorder.clone());
        let root = tempfile::Builder::new()
            .prefix(&format!("imagespec-conformance-{}-", component(scenario)))
            .tempdir()
            .context("cannot create the scenario's root directory")?;
        Ok(Case {
            backend,
            scenario,
            id: unique(),
            root,
            recorder,
            engine: Engine::new(builders),
            events: Arc::default(),
            fetched: Mutex::default(),
            // Off unless the scenario is about it: flytekit is a large install, and the other
            // scenarios test what the spec asks for.
            runtime: Mutex::new(Runtime::None),
        })
    }

    /// This run's unique suffix.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The root directory the specs' relative paths resolve against.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn backend(&self) -> &Backend {
        self.backend
    }

    pub fn runner(&self) -> &Runner {
        &self.backend.runner
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn capabilities(&self) -> Capabilities {
        self.backend.builder.capabilities()
    }

    /// Writes a file under the root, creating its directories.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> Result<()> {
        let path = self.root().join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Makes `link` (relative to the root) a symlink to `target`, written as given.
    pub fn symlink(&self, target: &str, link: &str) -> Result<()> {
        let path = self.root().join(link);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::os::unix::fs::symlink(target, &path)
            .with_context(|| format!("cannot link {} to {target}", path.display()))
    }

    /// A spec named `<scenario>[-<part>]-<id>`, from the backend's Python image with its uv
    /// image, pushed to the backend's registry (if any).
    pub fn spec(&self, part: &str) -> ImageSpec {
        let scenario = component(self.scenario);
        let name = if part.is_empty() {
            format!("{scenario}-{}", self.id)
        } else {
            format!("{scenario}-{part}-{}", self.id)
        };
        let spec = ImageSpec::new(name)
            .with_base_image(&self.backend.python_image)
            .with_python_version("3.11")
            .with_builder_config("uv_image", &self.backend.uv_image);
        match &self.backend.registry {
            Some(registry) => spec.with_registry(registry),
            None => spec,
        }
    }

    /// The Flyte runtime the following specs get (off by default in scenarios).
    pub fn set_runtime(&self, runtime: Runtime) {
        *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = runtime;
    }

    /// Validates a spec against this case's root, with this case's Flyte runtime.
    pub fn load(&self, spec: ImageSpec) -> Result<LoadedSpec> {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        LoadedSpec::from_spec(spec, self.root())
            .map(|l| l.with_runtime(runtime))
            .map_err(|e| anyhow!("the scenario's spec is invalid: {e}"))
    }

    /// The engine options every scenario starts from: this backend's builder and push setting,
    /// the `fail` policy, events recorded.
    pub fn options(&self) -> EngineOptions {
        let events = self.events.clone();
        EngineOptions {
            builder: Some(self.backend.builder.name().to_string()),
            push: self.backend.push,
            events: EventSink::new(move |e| {
                events.lock().unwrap_or_else(|p| p.into_inner()).push(e)
            }),
            ..EngineOptions::default()
        }
    }

    /// `Engine::ensure` with [`Case::options`], keeping the engine's error for matching.
    pub async fn try_ensure(
        &self,
        spec: ImageSpec,
        options: &EngineOptions,
    ) -> Result<Result<Outcome, EngineError>> {
        let loaded = self.load(spec)?;
        // Shared with other builds, exclusive of image removals (see `store_lock`).
        let _lock = crate::store_lock::for_build(self.backend.runner.store()).await;
        Ok(self.engine.ensure(&loaded, options).await)
    }

    /// `Engine::ensure` with [`Case::options`].
    pub async fn ensure(&self, spec: ImageSpec) -> Result<Outcome> {
        self.ensure_with(spec, &self.options()).await
    }

    /// `Engine::ensure` with the given options.
    pub async fn ensure_with(&self, spec: ImageSpec, options: &EngineOptions) -> Result<Outcome> {
        self.try_ensure(spec, options).await?.map_err(|e| {
            anyhow!(
                "{} on the {} backend: {e}",
                self.scenario,
                self.backend.name
            )
        })
    }

    /// Ensures a spec that must be new: it (and its base spec) must be `Built`; returns the
    /// image, made available to the runner.
    pub async fn build(&self, spec: ImageSpec) -> Result<String> {
        let outcome = self.ensure(spec).await?;
        let mut level = Some(&outcome);
        while let Some(o) = level {
            ensure!(
                o.action == Action::Built,
                "{} was not built: {:?}",
                o.image,
                o.action
            );
            level = o.base.as_deref();
        }
        self.fetch(&outcome.image).await?;
        Ok(outcome.image)
    }

    /// Makes an image available to the runner (pulls it for a pulling runner).
    pub async fn fetch(&self, image: &str) -> Result<()> {
        if self.backend.runner.pulls() {
            self.fetched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(image.to_string());
        }
        self.backend.runner.fetch(image).await
    }

    /// The events reported since the last call (or since the case began), removing them.
    pub fn take_events(&self) -> Vec<BuildEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Everything the build reported, as one text (to search for leaked secrets).
    pub fn events_text(&self) -> String {
        format!(
            "{:?}",
            self.events.lock().unwrap_or_else(|p| p.into_inner())
        )
    }
}

impl Drop for Case<'_> {
    fn drop(&mut self) {
        // Newest first: a child goes before the base it was built from.
        let mut images = self.recorder.outputs();
        images.extend(
            self.fetched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..),
        );
        images.reverse();
        images.dedup();
        self.backend.runner.remove_now(&images);
    }
}
