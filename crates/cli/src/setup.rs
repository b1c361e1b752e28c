//! What every command needs: the root, the configuration, the variant, the builders, the spec.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use imagespec_builder_remote::{RemoteBuilder, RemoteConfig};
use imagespec_core::build::{
    BuildCache, BuilderRegistry, NoopBuilder, Variant, VariantSource, resolve_variant,
};
use imagespec_core::check::{Checked, check_file_with_runtime, with_tag_scheme};
use imagespec_core::config::{Config, Secret};
use imagespec_core::hash::TagScheme;
use imagespec_core::plan::runtime::Runtime;

use crate::args::{Cli, SpecArgs, TagSchemeArg, VariantArg};

/// The environment variable naming the deployment variant.
pub const VARIANT_ENV: &str = "IMAGESPEC_VARIANT";

pub struct Setup {
    pub root: PathBuf,
    pub config: Config,
}

impl Setup {
    pub fn new(cli: &Cli) -> anyhow::Result<Setup> {
        let root = match &cli.root {
            Some(r) => r.clone(),
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        let env = |k: &str| std::env::var(k).ok();
        let config = match &cli.config {
            Some(path) => Config::load(path, true)?,
            None => match Config::default_path(env) {
                Some(path) => Config::load(&path, false)?,
                None => Config::default(),
            },
        };
        Ok(Setup { root, config })
    }

    /// `--variant`, then `IMAGESPEC_VARIANT`, then the config file, then `flyte`.
    pub fn variant(&self, flag: Option<VariantArg>) -> anyhow::Result<(Variant, VariantSource)> {
        let env = std::env::var(VARIANT_ENV).ok();
        // clap checked the flag; core still decides the order (and checks the environment).
        let flag = flag.map(|v| Variant::from(v).as_str());
        // A parsed flag and a config value cannot be unknown: an unknown one came from the
        // environment, so the error names the variable.
        resolve_variant(flag, env.as_deref(), self.config.variant)
            .with_context(|| format!("{VARIANT_ENV} is not a deployment variant"))
    }

    /// Loads a spec file, applying a `--registry` override, and runs every check on it
    /// ([`imagespec_core::check`]): every command goes through here, so they all agree.
    pub fn check_spec(&self, spec: &SpecArgs, registry: Option<&str>) -> anyhow::Result<Checked> {
        self.check_spec_for(spec, registry, None)
    }

    /// [`Setup::check_spec`] on the variant a `--variant` flag names (`build`), which picks the
    /// Flyte runtime.
    pub fn check_spec_for(
        &self,
        spec: &SpecArgs,
        registry: Option<&str>,
        variant: Option<VariantArg>,
    ) -> anyhow::Result<Checked> {
        let runtime = self.runtime_for(spec, variant)?;
        Ok(check_file_with_runtime(
            &spec.spec, &self.root, registry, runtime,
        )?)
    }

    /// `--no-flytekit` / `--flytekit-version` / `--union-version`, then the config file
    /// (`flytekit: false` or `flytekit_version`, then `union_version` on a Union variant), then
    /// the variant's pinned release (`union` on Union's variants, as Union's builder adds it;
    /// flytekit on `flyte`). The variant is `IMAGESPEC_VARIANT`'s or the config file's unless
    /// `variant` (a `--variant` flag) names one.
    pub fn runtime_for(
        &self,
        spec: &SpecArgs,
        variant: Option<VariantArg>,
    ) -> anyhow::Result<Runtime> {
        if spec.no_flytekit {
            return Ok(Runtime::None);
        }
        if let Some(r) = spec.flytekit_version.clone().or(spec.union_version.clone()) {
            return Ok(r);
        }
        if let Some(r) = self.config.runtime.clone() {
            return Ok(r);
        }
        let (variant, _) = self.variant(variant)?;
        Ok(match variant {
            Variant::Flyte => Runtime::default(),
            _ => self
                .config
                .union_runtime
                .clone()
                .unwrap_or_else(|| Runtime::default_for(variant)),
        })
    }

    /// [`Setup::runtime_for`] without a `--variant` flag.
    pub fn runtime(&self, spec: &SpecArgs) -> anyhow::Result<Runtime> {
        self.runtime_for(spec, None)
    }

    /// [`Setup::check_spec`] named by a tag scheme: `--tag-scheme` (or `IMAGESPEC_TAG_SCHEME`),
    /// then the config file's `tag_scheme`, then imagespec's own.
    pub fn check_spec_named(
        &self,
        spec: &SpecArgs,
        registry: Option<&str>,
        scheme: Option<TagSchemeArg>,
    ) -> anyhow::Result<Checked> {
        self.check_spec_named_for(spec, registry, scheme, None)
    }

    /// [`Setup::check_spec_named`] on the variant a `--variant` flag names.
    pub fn check_spec_named_for(
        &self,
        spec: &SpecArgs,
        registry: Option<&str>,
        scheme: Option<TagSchemeArg>,
        variant: Option<VariantArg>,
    ) -> anyhow::Result<Checked> {
        Ok(with_tag_scheme(
            self.check_spec_for(spec, registry, variant)?,
            self.tag_scheme(scheme),
        )?)
    }

    /// `--tag-scheme` (or `IMAGESPEC_TAG_SCHEME`), then the config file, then imagespec's own.
    pub fn tag_scheme(&self, flag: Option<TagSchemeArg>) -> TagScheme {
        flag.map(TagScheme::from)
            .or(self.config.tag_scheme)
            .unwrap_or_default()
    }

    /// Every builder this program knows.
    pub fn builders(&self, engine: Option<&str>) -> BuilderRegistry {
        self.builders_with_cache(engine, &BuildCache::default())
    }

    /// [`Setup::builders`], the local ones with the `--cache-from` / `--cache-to` flags.
    pub fn builders_with_cache(&self, engine: Option<&str>, cache: &BuildCache) -> BuilderRegistry {
        let mut registry = BuilderRegistry::new();
        let endpoint = engine
            .map(str::to_string)
            .or_else(|| self.config.engine.clone());
        imagespec_builder_local::register_local_builders(&mut registry, endpoint, cache);
        let remote = RemoteConfig {
            url: std::env::var("IMAGESPEC_REMOTE_URL")
                .ok()
                .or_else(|| self.config.remote_url.clone()),
            token: std::env::var("IMAGESPEC_REMOTE_TOKEN")
                .ok()
                .map(Secret::new)
                .or_else(|| self.config.remote_token.clone()),
        };
        registry.register(Arc::new(RemoteBuilder::new(remote)));
        registry.register(Arc::new(NoopBuilder));
        registry
    }
}
