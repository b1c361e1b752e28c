//! What a conformance run needs to know about one backend.

use std::any::Any;
use std::sync::Arc;

use imagespec_core::build::ImageBuilder;

use crate::devenv::{PYTHON_IMAGE, UV_IMAGE};
use crate::runner::Runner;

/// One backend under test: the builder, where its images go, and how to run them.
///
/// Build one with [`Backend::new`] and the `with_*`/`pushing*` methods; the builder is wrapped
/// in a [`crate::Recorder`] per scenario, so it needs no test hooks of its own.
#[derive(Clone)]
pub struct Backend {
    pub(crate) name: String,
    pub(crate) builder: Arc<dyn ImageBuilder>,
    pub(crate) runner: Runner,
    pub(crate) push: bool,
    pub(crate) registry: Option<String>,
    pub(crate) python_image: String,
    pub(crate) uv_image: String,
    pub(crate) skips: Vec<(String, String)>,
    /// Where the backend keeps state (a build service's data directory), and its log: build
    /// secrets must reach neither.
    pub(crate) state_dirs: Vec<std::path::PathBuf>,
    pub(crate) log: Option<crate::log_capture::LogCapture>,
    _keep: Vec<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("builder", &self.builder.name())
            .field("runner", &self.runner)
            .field("push", &self.push)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend that keeps images in the engine `runner` talks to (no push, no registry).
    pub fn new(name: impl Into<String>, builder: Arc<dyn ImageBuilder>, runner: Runner) -> Backend {
        Backend {
            name: name.into(),
            builder,
            runner,
            push: false,
            registry: None,
            python_image: PYTHON_IMAGE.to_string(),
            uv_image: UV_IMAGE.to_string(),
            skips: Vec::new(),
            state_dirs: Vec::new(),
            log: None,
            _keep: Vec::new(),
        }
    }

    /// Pushes every image under `registry` (a spec `registry`: `host[:port]/namespace`).
    #[must_use]
    pub fn pushing_to(mut self, registry: impl Into<String>) -> Backend {
        self.push = true;
        self.registry = Some(registry.into());
        self
    }

    /// Pushes (`EngineOptions::push`) without a spec `registry`: for builders that choose where
    /// images go themselves (a remote service with its own registry).
    #[must_use]
    pub fn pushing(mut self) -> Backend {
        self.push = true;
        self
    }

    /// The base image scenarios build from (default: the dev environment's Python 3.11 image).
    #[must_use]
    pub fn with_python_image(mut self, image: impl Into<String>) -> Backend {
        self.python_image = image.into();
        self
    }

    /// uv's image, set as `builder_config.uv_image` (default: the dev environment's).
    #[must_use]
    pub fn with_uv_image(mut self, image: impl Into<String>) -> Backend {
        self.uv_image = image.into();
        self
    }

    /// Declares that this backend does not support `scenario`, and why. The test then passes
    /// with a printed note: an explicit, reviewed exception, never a silent one.
    #[must_use]
    pub fn skipping(mut self, scenario: &str, reason: impl Into<String>) -> Backend {
        self.skips.push((scenario.to_string(), reason.into()));
        self
    }

    /// Keeps `resource` (a server handle, a temporary directory) alive as long as the backend.
    #[must_use]
    pub fn keep_alive(mut self, resource: impl Any + Send + Sync) -> Backend {
        self._keep.push(Arc::new(resource));
        self
    }

    /// Declares a directory the backend keeps its state in (a build service's data directory),
    /// and the captured log of the backend's process: scenarios check no secret reaches them.
    #[must_use]
    pub fn keeping_state_in(
        mut self,
        dir: impl Into<std::path::PathBuf>,
        log: Option<crate::log_capture::LogCapture>,
    ) -> Backend {
        self.state_dirs.push(dir.into());
        self.log = log.or(self.log);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn state_dirs(&self) -> &[std::path::PathBuf] {
        &self.state_dirs
    }

    pub fn log(&self) -> Option<&crate::log_capture::LogCapture> {
        self.log.as_ref()
    }

    pub fn builder(&self) -> &Arc<dyn ImageBuilder> {
        &self.builder
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    pub fn push(&self) -> bool {
        self.push
    }

    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// Why `scenario` is skipped on this backend, if it is.
    pub fn skip_reason(&self, scenario: &str) -> Option<&str> {
        self.skips
            .iter()
            .find(|(s, _)| s == scenario)
            .map(|(_, r)| r.as_str())
    }
}
