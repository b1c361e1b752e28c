//! A builder for testing the engine and programs built on it: it keeps an in-memory image store,
//! records every existence check and build, and can be told to answer `unknown`, fail, or be slow.
//! It builds no image; tests of real builds use the local and remote builders.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::builder::{
    BuildError, BuildEvent, BuildOutput, BuildRequest, BuilderKind, Capabilities, Existence,
    ExistsQuery, ImageBuilder,
};
use crate::hash::ImageName;

/// An in-memory builder that records what the engine asked of it.
#[derive(Debug)]
pub struct TestBuilder {
    name: String,
    aliases: Vec<&'static str>,
    capabilities: Capabilities,
    store: Mutex<HashSet<String>>,
    builds: Mutex<Vec<BuildRecord>>,
    checks: AtomicUsize,
    forced_existence: Mutex<Option<Existence>>,
    failure: Mutex<Option<BuildError>>,
    build_delay: Duration,
    platforms: Option<Vec<String>>,
}

/// One build the test builder was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRecord {
    pub image: String,
    pub base_image: Option<String>,
    pub push: bool,
    /// The spec's `builder_options`, as the builder received them (keys it does not read too).
    pub builder_options: std::collections::BTreeMap<String, serde_json::Value>,
    /// The Flyte runtime the build was asked to add.
    pub runtime: crate::plan::runtime::Runtime,
    /// Where the build was told to take its secrets' values from.
    pub secrets: super::secrets::SecretValues,
}

impl TestBuilder {
    /// A builder of the given name and kind that supports every field.
    pub fn new(name: &str, kind: BuilderKind) -> Self {
        TestBuilder {
            name: name.to_string(),
            aliases: Vec::new(),
            capabilities: Capabilities::full(kind),
            store: Mutex::default(),
            builds: Mutex::default(),
            checks: AtomicUsize::new(0),
            forced_existence: Mutex::default(),
            failure: Mutex::default(),
            build_delay: Duration::ZERO,
            platforms: None,
        }
    }

    #[must_use]
    pub fn with_aliases(mut self, aliases: &[&'static str]) -> Self {
        self.aliases = aliases.to_vec();
        self
    }

    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Says it builds these platforms ([`ImageBuilder::platforms`]; default: cannot tell).
    #[must_use]
    pub fn with_platforms(mut self, platforms: &[&str]) -> Self {
        self.platforms = Some(platforms.iter().map(|p| p.to_string()).collect());
        self
    }

    /// Makes every build take this long (to overlap concurrent requests).
    #[must_use]
    pub fn with_build_delay(mut self, delay: Duration) -> Self {
        self.build_delay = delay;
        self
    }

    /// Puts an image in the store, as if built earlier.
    pub fn insert(&self, image: &str) {
        self.lock_store().insert(image.to_string());
    }

    /// Makes every existence check answer `existence` (e.g. `Unknown`) until cleared with `None`.
    pub fn force_existence(&self, existence: Option<Existence>) {
        *self
            .forced_existence
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = existence;
    }

    /// Makes the next builds fail with `error`.
    pub fn fail_builds(&self, error: Option<BuildError>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    /// The builds made so far, in order.
    pub fn builds(&self) -> Vec<BuildRecord> {
        self.builds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many existence checks were made.
    pub fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }

    fn lock_store(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ImageBuilder for TestBuilder {
    fn name(&self) -> &str {
        &self.name
    }

    fn aliases(&self) -> &[&str] {
        &self.aliases
    }

    fn description(&self) -> &str {
        "in-memory builder for tests"
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    async fn platforms(&self) -> Option<Vec<String>> {
        self.platforms.clone()
    }

    async fn exists(&self, image: &ImageName, _query: &ExistsQuery) -> Existence {
        self.checks.fetch_add(1, Ordering::SeqCst);
        if let Some(forced) = self
            .forced_existence
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return forced;
        }
        if self.lock_store().contains(&image.to_string()) {
            Existence::Exists
        } else {
            Existence::Missing
        }
    }

    /// Stands in for the Dockerfile builders, so it refuses what they refuse.
    fn preflight(&self, spec: &crate::spec::LoadedSpec) -> Result<(), crate::plan::PlanError> {
        crate::plan::BuildPlan::check(spec)
    }

    async fn build(&self, request: BuildRequest) -> Result<BuildOutput, BuildError> {
        let image = request.image.name.to_string();
        request
            .events
            .emit(BuildEvent::step(1, format!("test build of {image}")));
        if !self.build_delay.is_zero() {
            tokio::time::sleep(self.build_delay).await;
        }
        self.builds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(BuildRecord {
                image: image.clone(),
                base_image: request.base_image.clone(),
                push: request.push,
                builder_options: request.spec.spec.builder_options.clone(),
                runtime: request.spec.runtime.clone(),
                secrets: request.secrets.clone(),
            });
        if let Some(err) = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(err);
        }
        self.lock_store().insert(image.clone());
        Ok(BuildOutput {
            image,
            digest: None,
            pushed: request.push,
        })
    }
}
