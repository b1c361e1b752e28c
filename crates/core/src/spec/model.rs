//! The `ImageSpec` data model: every field of flytekit's `ImageSpec`, with the same names, so an
//! existing flytekit spec file loads unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The platform used when a spec does not name one (flytekit's default).
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// The name of a spec file that gives none (flytekit's default).
pub const DEFAULT_NAME: &str = "flytekit";

/// A declarative description of a container image.
///
/// Paths (`requirements`, `copy`, `source_root`, `registry_config`) are relative to a root
/// directory that is not part of the spec: see [`crate::LoadedSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Image name without registry or tag (lower-cased on normalisation).
    pub name: String,
    /// Python version to install or expect in the image, e.g. `3.11`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_version: Option<String>,
    /// Name of the builder that builds this image (`default`, `union`, `noop`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// A directory whose files (after ignore-file filtering) are copied into the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_root: Option<String>,
    /// Environment variables set in the image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Registry (and optional namespace) the image is pushed to, e.g. `ghcr.io/org`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Python packages (pip requirement specifiers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// Conda packages (installed with micromamba).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conda_packages: Vec<String>,
    /// Conda channels for `conda_packages`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conda_channels: Vec<String>,
    /// A `requirements.txt`, `uv.lock`, `poetry.lock` or `pyproject.toml` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<String>,
    /// Debian packages installed with apt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apt_packages: Vec<String>,
    /// CUDA version, e.g. `12.4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda: Option<String>,
    /// cuDNN major version, e.g. `9`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cudnn: Option<String>,
    /// The image to start from: a reference or another spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<BaseImage>,
    /// Target platform(s), comma-separated (`linux/amd64,linux/arm64`).
    #[serde(default = "default_platform")]
    pub platform: String,
    /// Primary Python package index URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pip_index: Option<String>,
    /// Extra Python package index URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pip_extra_index_url: Vec<String>,
    /// Secrets available to the Python install step only, as `[source, destination]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pip_secret_mounts: Vec<SecretMount>,
    /// Extra arguments for the Python installer, e.g. `--no-build-isolation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pip_extra_args: Option<String>,
    /// A Docker-style `config.json` with registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_config: Option<String>,
    /// Image entrypoint; `Some(vec![])` clears the base image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Shell commands run at build time, each its own step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// Tag template containing `{spec_hash}`, e.g. `{spec_hash}-dev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_format: Option<String>,
    /// Which source files are copied (flytekit's `CopyFileDetection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_copy_mode: Option<SourceCopyMode>,
    /// Files or directories (relative paths) copied into the image at the same path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy: Vec<String>,
    /// Path of the Python interpreter of the base image to use instead of installing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_exec: Option<String>,
    /// Packages installed at task start, not at build time (not part of the image identity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_packages: Vec<String>,
    /// Builder-specific options (free-form; part of the image identity).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub builder_options: BTreeMap<String, serde_json::Value>,
    /// Builder configuration: `uv_image`, `micromamba_image`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub builder_config: BTreeMap<String, String>,
    /// Rebuild and push even when the image exists (set with [`ImageSpec::force_push`]).
    #[serde(skip)]
    pub force_push: bool,
}

fn default_platform() -> String {
    DEFAULT_PLATFORM.to_string()
}

/// `base_image`: an image reference, or another spec that is built first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BaseImage {
    /// An image reference such as `python:3.11-slim`.
    Reference(String),
    /// Another spec; its image name becomes this spec's base.
    Spec(Box<ImageSpec>),
}

/// A build secret mounted during the Python install step only.
///
/// `src` names where the secret comes from (a file path relative to the root, or `env:NAME`);
/// `dst` is where it is mounted in the build step. Neither the secret's content nor its source
/// is part of the image identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMount {
    pub src: String,
    pub dst: String,
}

/// flytekit's `CopyFileDetection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceCopyMode {
    /// Copy every selected file of `source_root`.
    All,
    /// flytekit copies only the modules a Python process loaded; outside a Python process we
    /// cannot know them, so imagespec copies the whole filtered tree (a superset).
    LoadedModules,
    /// Copy no source files.
    None,
}

/// Names of every spec field, used by capabilities, diagnostics and the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecField {
    Name,
    PythonVersion,
    Builder,
    SourceRoot,
    Env,
    Registry,
    Packages,
    CondaPackages,
    CondaChannels,
    Requirements,
    AptPackages,
    Cuda,
    Cudnn,
    BaseImage,
    Platform,
    PipIndex,
    PipExtraIndexUrl,
    PipSecretMounts,
    PipExtraArgs,
    RegistryConfig,
    Entrypoint,
    Commands,
    TagFormat,
    SourceCopyMode,
    Copy,
    PythonExec,
    RuntimePackages,
    BuilderOptions,
    BuilderConfig,
}

impl SpecField {
    /// Every field, in declaration order.
    pub const ALL: [SpecField; 29] = [
        SpecField::Name,
        SpecField::PythonVersion,
        SpecField::Builder,
        SpecField::SourceRoot,
        SpecField::Env,
        SpecField::Registry,
        SpecField::Packages,
        SpecField::CondaPackages,
        SpecField::CondaChannels,
        SpecField::Requirements,
        SpecField::AptPackages,
        SpecField::Cuda,
        SpecField::Cudnn,
        SpecField::BaseImage,
        SpecField::Platform,
        SpecField::PipIndex,
        SpecField::PipExtraIndexUrl,
        SpecField::PipSecretMounts,
        SpecField::PipExtraArgs,
        SpecField::RegistryConfig,
        SpecField::Entrypoint,
        SpecField::Commands,
        SpecField::TagFormat,
        SpecField::SourceCopyMode,
        SpecField::Copy,
        SpecField::PythonExec,
        SpecField::RuntimePackages,
        SpecField::BuilderOptions,
        SpecField::BuilderConfig,
    ];

    /// The key used in spec files.
    pub fn key(self) -> &'static str {
        match self {
            SpecField::Name => "name",
            SpecField::PythonVersion => "python_version",
            SpecField::Builder => "builder",
            SpecField::SourceRoot => "source_root",
            SpecField::Env => "env",
            SpecField::Registry => "registry",
            SpecField::Packages => "packages",
            SpecField::CondaPackages => "conda_packages",
            SpecField::CondaChannels => "conda_channels",
            SpecField::Requirements => "requirements",
            SpecField::AptPackages => "apt_packages",
            SpecField::Cuda => "cuda",
            SpecField::Cudnn => "cudnn",
            SpecField::BaseImage => "base_image",
            SpecField::Platform => "platform",
            SpecField::PipIndex => "pip_index",
            SpecField::PipExtraIndexUrl => "pip_extra_index_url",
            SpecField::PipSecretMounts => "pip_secret_mounts",
            SpecField::PipExtraArgs => "pip_extra_args",
            SpecField::RegistryConfig => "registry_config",
            SpecField::Entrypoint => "entrypoint",
            SpecField::Commands => "commands",
            SpecField::TagFormat => "tag_format",
            SpecField::SourceCopyMode => "source_copy_mode",
            SpecField::Copy => "copy",
            SpecField::PythonExec => "python_exec",
            SpecField::RuntimePackages => "runtime_packages",
            SpecField::BuilderOptions => "builder_options",
            SpecField::BuilderConfig => "builder_config",
        }
    }

    /// Looks a field up by its spec-file key.
    pub fn from_key(key: &str) -> Option<SpecField> {
        SpecField::ALL.into_iter().find(|f| f.key() == key)
    }
}

impl std::fmt::Display for SpecField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

impl ImageSpec {
    /// A spec with just a name; every other field at its default.
    pub fn new(name: impl Into<String>) -> Self {
        ImageSpec {
            name: name.into(),
            platform: default_platform(),
            ..ImageSpec::default()
        }
    }

    /// The requested platforms, split on commas and trimmed.
    pub fn platforms(&self) -> Vec<&str> {
        self.platform
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// The fields this spec sets (non-empty), so a builder can refuse what it cannot honour.
    pub fn used_fields(&self) -> Vec<SpecField> {
        // Every field, by name and without `..`: a new field does not compile until it says
        // when it is used.
        let ImageSpec {
            name: _,
            python_version,
            builder,
            source_root,
            env,
            registry,
            packages,
            conda_packages,
            conda_channels,
            requirements,
            apt_packages,
            cuda,
            cudnn,
            base_image,
            platform: _,
            pip_index,
            pip_extra_index_url,
            pip_secret_mounts,
            pip_extra_args,
            registry_config,
            entrypoint,
            commands,
            tag_format,
            source_copy_mode,
            copy,
            python_exec,
            runtime_packages,
            builder_options,
            builder_config,
            // Not a spec field: how the spec is built, not what it is.
            force_push: _,
        } = self;
        let set = |f: SpecField, used: bool| used.then_some(f);
        [
            // A spec always has a name and a platform (flytekit's defaults).
            set(SpecField::Name, true),
            set(SpecField::PythonVersion, python_version.is_some()),
            set(SpecField::Builder, builder.is_some()),
            set(SpecField::SourceRoot, source_root.is_some()),
            set(SpecField::Env, !env.is_empty()),
            set(SpecField::Registry, registry.is_some()),
            set(SpecField::Packages, !packages.is_empty()),
            set(SpecField::CondaPackages, !conda_packages.is_empty()),
            set(SpecField::CondaChannels, !conda_channels.is_empty()),
            set(SpecField::Requirements, requirements.is_some()),
            set(SpecField::AptPackages, !apt_packages.is_empty()),
            set(SpecField::Cuda, cuda.is_some()),
            set(SpecField::Cudnn, cudnn.is_some()),
            set(SpecField::BaseImage, base_image.is_some()),
            set(SpecField::Platform, true),
            set(SpecField::PipIndex, pip_index.is_some()),
            set(SpecField::PipExtraIndexUrl, !pip_extra_index_url.is_empty()),
            set(SpecField::PipSecretMounts, !pip_secret_mounts.is_empty()),
            set(SpecField::PipExtraArgs, pip_extra_args.is_some()),
            set(SpecField::RegistryConfig, registry_config.is_some()),
            set(SpecField::Entrypoint, entrypoint.is_some()),
            set(SpecField::Commands, !commands.is_empty()),
            set(SpecField::TagFormat, tag_format.is_some()),
            set(SpecField::SourceCopyMode, source_copy_mode.is_some()),
            set(SpecField::Copy, !copy.is_empty()),
            set(SpecField::PythonExec, python_exec.is_some()),
            set(SpecField::RuntimePackages, !runtime_packages.is_empty()),
            set(SpecField::BuilderOptions, !builder_options.is_empty()),
            set(SpecField::BuilderConfig, !builder_config.is_empty()),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The base spec, when `base_image` is another spec.
    pub fn base_spec(&self) -> Option<&ImageSpec> {
        match &self.base_image {
            Some(BaseImage::Spec(spec)) => Some(spec),
            _ => None,
        }
    }
}
