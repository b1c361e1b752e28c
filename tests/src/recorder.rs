//! A decorator that counts what the engine asks of the builder under test.
//!
//! "The second `ensure` built nothing" cannot be seen from the outside (a cached build looks like
//! no build); counting `build` calls at the trait boundary can, for every backend alike.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use imagespec_core::build::{
    BuildError, BuildOutput, BuildRequest, Capabilities, Existence, ExistsQuery, ImageBuilder,
    Located,
};
use imagespec_core::hash::ImageName;

/// Wraps a builder, forwarding every call and recording `exists` and `build` calls.
pub struct Recorder {
    inner: Arc<dyn ImageBuilder>,
    checks: AtomicUsize,
    builds: Mutex<Vec<String>>,
    outputs: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("builder", &self.inner.name())
            .field("checks", &self.checks())
            .field("builds", &self.builds())
            .finish()
    }
}

impl Recorder {
    pub fn new(inner: Arc<dyn ImageBuilder>) -> Recorder {
        Recorder {
            inner,
            checks: AtomicUsize::new(0),
            builds: Mutex::default(),
            outputs: Mutex::default(),
        }
    }

    /// How many existence checks were made.
    pub fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }

    /// The images the builder was asked to build, in order (failed builds included).
    pub fn builds(&self) -> Vec<String> {
        self.builds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The images builds reported, in order: what a test must clean up.
    pub fn outputs(&self) -> Vec<String> {
        self.outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl ImageBuilder for Recorder {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[&str] {
        self.inner.aliases()
    }

    fn priority(&self) -> i32 {
        self.inner.priority()
    }

    fn description(&self) -> &str {
        self.inner.description()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn exists(&self, image: &ImageName, query: &ExistsQuery) -> Existence {
        self.checks.fetch_add(1, Ordering::SeqCst);
        self.inner.exists(image, query).await
    }

    async fn locate(&self, image: &ImageName, query: &ExistsQuery) -> Located {
        self.checks.fetch_add(1, Ordering::SeqCst);
        self.inner.locate(image, query).await
    }

    async fn platforms(&self) -> Option<Vec<String>> {
        self.inner.platforms().await
    }

    async fn build(&self, request: BuildRequest) -> Result<BuildOutput, BuildError> {
        let image = request.image.name.to_string();
        self.builds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(image.clone());
        let result = self.inner.build(request).await;
        // A failed build may still have left a tagged image behind.
        let left = result.as_ref().map_or(image, |o| o.image.clone());
        self.outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(left);
        result
    }
}
