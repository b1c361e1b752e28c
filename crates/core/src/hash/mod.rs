//! The content-derived image name: `[registry/]name:tag`, where the tag is a hash of everything
//! that changes the image.
//!
//! Scheme `imagespec-tag-v1`:
//! - each hashed field is encoded canonically ([`encoder`]) into its own SHA-256 digest, and those
//!   digests are recorded as [`HashInputs`] (so a tool can say *which* field changed a tag);
//! - the spec hash is SHA-256 over the scheme name and the (field, digest) pairs in field order,
//!   truncated to 128 bits and written as 32 lower-case hex digits;
//! - files are hashed by their bytes: the requirements file (and the `pyproject.toml` beside a lock
//!   file), every `copy` entry, the `source_root` tree after ignore-file filtering;
//! - a spec-valued base image contributes its full image name, so a change to the base changes
//!   the child;
//! - the build recipe's version ([`crate::plan::PLAN_VERSION`]) is an input, so a change to how
//!   specs become Dockerfiles (a new default helper image, say) changes every tag instead of
//!   leaving stale images under current names;
//! - not hashed: `name` and `registry` (they are the rest of the image name), `builder`,
//!   `registry_config`, `runtime_packages`, `pip_secret_mounts` (nothing about a secret may reach
//!   the hash), `tag_format` (it wraps the hash).
//!
//! Unset fields are skipped, so a later version that adds a field keeps existing tags; a change
//! to how an existing field is encoded must bump the scheme name.

pub mod encoder;
pub mod flytekit;

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::inputs::{self, SpecInputs};
use crate::spec::{BaseImage, ImageSpec, LoadedSpec};
use crate::tree::TreeError;
use encoder::CanonicalEncoder;

/// The name of the hashing scheme; part of every hash.
pub const HASH_SCHEME: &str = "imagespec-tag-v1";

/// Length of the spec hash in characters.
pub const HASH_LEN: usize = 32;

/// Which naming scheme gives the tag: imagespec's own (the default) or flytekit 1.16's
/// (`ImageSpec.image_name()`, so a build finds and makes the images pyflyte looks for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagScheme {
    #[default]
    Imagespec,
    Flytekit,
}

impl std::str::FromStr for TagScheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "imagespec" => Ok(TagScheme::Imagespec),
            "flytekit" => Ok(TagScheme::Flytekit),
            other => Err(format!(
                "unknown tag scheme `{other}`; use imagespec or flytekit"
            )),
        }
    }
}

/// A fully qualified image name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ImageName {
    /// `host[:port][/namespace]`, without scheme.
    pub registry: Option<String>,
    /// The spec's name.
    pub repository: String,
    pub tag: String,
}

impl ImageName {
    /// `[registry/]repository` without the tag.
    pub fn repository_path(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository_path(), self.tag)
    }
}

/// One field's contribution to the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashInput {
    pub field: String,
    /// Hex SHA-256 of the field's canonical encoding.
    pub digest: String,
    /// A short human-readable form of the value (never a secret).
    pub summary: String,
}

/// Everything that went into a spec hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashInputs {
    pub scheme: &'static str,
    pub inputs: Vec<HashInput>,
}

/// A spec's computed image name and what it was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedImage {
    pub name: ImageName,
    pub spec_hash: String,
    pub inputs: HashInputs,
    /// The resolved base spec, when `base_image` is a spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<Box<ResolvedImage>>,
}

impl ResolvedImage {
    /// The base image reference to build from: the base spec's name, or the `base_image` string.
    pub fn base_reference<'a>(&'a self, spec: &'a ImageSpec) -> Option<String> {
        match (&self.base, &spec.base_image) {
            (Some(base), _) => Some(base.name.to_string()),
            (None, Some(BaseImage::Reference(r))) => Some(r.clone()),
            _ => None,
        }
    }
}

/// Why a hash could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("cannot hash `{field}`: {source}")]
    Tree {
        field: String,
        #[source]
        source: TreeError,
    },
    #[error("cannot hash `{field}`: {path} is neither a file nor a directory")]
    NotAFileOrDirectory { field: String, path: PathBuf },
    #[error("`{field}`: {path} is a {what}, not a regular file; name a file")]
    NotARegularFile {
        field: String,
        path: PathBuf,
        what: &'static str,
    },
    #[error("`tag_format` `{format}` yields the invalid tag `{tag}`")]
    InvalidTag { format: String, tag: String },
}

/// Computes the image name of a spec (and of its base spec first).
pub fn resolve_image(loaded: &LoadedSpec) -> Result<ResolvedImage, HashError> {
    let base = match loaded.base() {
        Some(base) => Some(Box::new(resolve_image(&base)?)),
        None => None,
    };
    let inputs = hash_inputs(loaded, base.as_deref())?;
    let spec_hash = combine(&inputs);
    let spec = &loaded.spec;
    let tag = match &spec.tag_format {
        Some(format) => format.replace("{spec_hash}", &spec_hash),
        None => spec_hash.clone(),
    };
    if !crate::reference::is_tag(&tag) {
        return Err(HashError::InvalidTag {
            format: spec.tag_format.clone().unwrap_or_default(),
            tag,
        });
    }
    Ok(ResolvedImage {
        name: ImageName {
            registry: spec.registry.clone(),
            repository: spec.name.clone(),
            tag,
        },
        spec_hash,
        inputs,
        base,
    })
}

fn combine(inputs: &HashInputs) -> String {
    let mut e = CanonicalEncoder::new();
    e.str(inputs.scheme).u64(inputs.inputs.len() as u64);
    for input in &inputs.inputs {
        e.str(&input.field).str(&input.digest);
    }
    hex::encode(&e.finish()[..HASH_LEN / 2])
}

/// The Flyte runtime ([`crate::plan::runtime`]): its own input, unset when it is off.
fn runtime_input(c: &mut Collector, runtime: &crate::plan::runtime::Runtime) {
    if let Some(requirement) = runtime.requirement() {
        c.add("flyte_runtime", requirement.clone(), |e| {
            e.str(&requirement);
        });
    }
}

struct Collector {
    inputs: Vec<HashInput>,
}

impl Collector {
    fn add(&mut self, field: &str, summary: String, encode: impl FnOnce(&mut CanonicalEncoder)) {
        let mut e = CanonicalEncoder::new();
        encode(&mut e);
        self.inputs.push(HashInput {
            field: field.to_string(),
            digest: hex::encode(e.finish()),
            summary,
        });
    }

    fn opt_str(&mut self, field: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.add(field, v.clone(), |e| {
                e.str(v);
            });
        }
    }

    fn list(&mut self, field: &str, items: &[String]) {
        if !items.is_empty() {
            self.add(field, items.join(" "), |e| {
                e.list(items);
            });
        }
    }
}

/// The per-field digests of a spec, reading its files ([`crate::inputs::select`]).
pub fn hash_inputs(
    loaded: &LoadedSpec,
    base: Option<&ResolvedImage>,
) -> Result<HashInputs, HashError> {
    let files = inputs::select(loaded)?;
    Ok(hash_inputs_of(loaded, &files, base))
}

/// The per-field digests of a spec whose files were already selected.
pub fn hash_inputs_of(
    loaded: &LoadedSpec,
    files: &SpecInputs,
    base: Option<&ResolvedImage>,
) -> HashInputs {
    let spec = &loaded.spec;
    // Every field, by name and without `..`: a new field does not compile until it is hashed
    // here or declared unhashed (and the README's list of unhashed fields says why).
    let ImageSpec {
        // Hashed below, each its own input.
        base_image,
        platform: _, // as `spec.platforms()`, sorted and deduplicated
        python_version,
        python_exec,
        cuda,
        cudnn,
        apt_packages,
        conda_channels,
        conda_packages,
        pip_index,
        pip_extra_index_url,
        pip_extra_args,
        packages,
        env,
        commands,
        entrypoint,
        copy,
        builder_options,
        builder_config,
        // Hashed by what they select (`files`): the bytes of the files, not only their names;
        // `source_copy_mode` decides whether `source_root` selects anything.
        requirements: _,
        source_root: _,
        source_copy_mode: _,
        // Not hashed: the rest of the image name, how and where it is built and pushed, what is
        // installed at task start, and the secrets (neither their contents nor their sources).
        name: _,
        registry: _,
        tag_format: _,
        builder: _,
        registry_config: _,
        runtime_packages: _,
        pip_secret_mounts: _,
        force_push: _,
    } = spec;
    let mut c = Collector { inputs: Vec::new() };
    c.add(
        "recipe",
        format!("plan v{}", crate::plan::PLAN_VERSION),
        |e| {
            e.str(crate::plan::PLAN_VERSION);
        },
    );

    match (base_image, base) {
        (_, Some(base)) => {
            let name = base.name.to_string();
            c.add("base_image", name.clone(), |e| {
                e.tag(b'S').str(&name);
            });
        }
        (Some(BaseImage::Reference(r)), None) => c.add("base_image", r.clone(), |e| {
            e.tag(b'R').str(r);
        }),
        _ => {}
    }
    let mut platforms: Vec<String> = spec.platforms().into_iter().map(str::to_string).collect();
    platforms.sort();
    platforms.dedup();
    c.add("platform", platforms.join(","), |e| {
        e.list(&platforms);
    });
    c.opt_str("python_version", python_version);
    c.opt_str("python_exec", python_exec);
    c.opt_str("cuda", cuda);
    c.opt_str("cudnn", cudnn);
    c.list("apt_packages", apt_packages);
    c.list("conda_channels", conda_channels);
    c.list("conda_packages", conda_packages);
    c.opt_str("pip_index", pip_index);
    c.list("pip_extra_index_url", pip_extra_index_url);
    c.opt_str("pip_extra_args", pip_extra_args);
    c.list("packages", packages);
    runtime_input(&mut c, &loaded.runtime);
    if let Some(req) = &files.requirements {
        let kind = req.kind;
        let digest = req.file.digest;
        let companion = req.companion.as_ref().map(|pp| pp.digest);
        let file_name = std::path::Path::new(&req.spec_path)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        c.add(
            "requirements",
            format!("{file_name} sha256:{}", &hex::encode(digest)[..12]),
            |e| {
                // The kind (decided by the file name) changes the install command, so it counts;
                // the directory the file sits in does not.
                e.str(kind.hash_name()).bytes(&digest);
                if let Some(pp) = companion {
                    e.bytes(&pp);
                }
            },
        );
    }
    if !env.is_empty() {
        let summary = env.keys().cloned().collect::<Vec<_>>().join(",");
        c.add("env", summary, |e| {
            e.map(env);
        });
    }
    c.list("commands", commands);
    if let Some(entrypoint) = entrypoint {
        // `Some([])` (clear the entrypoint) differs from unset (inherit it).
        c.add("entrypoint", format!("{entrypoint:?}"), |e| {
            e.tag(b'E').list(entrypoint);
        });
    }
    if !files.copy.is_empty() {
        c.add("copy", copy.join(" "), |e| {
            e.u64(files.copy.len() as u64);
            for entry in &files.copy {
                e.str(&entry.spec_path).bytes(&entry.digest());
            }
        });
    }
    if let Some(src) = &files.source_root {
        let digest = src.digest();
        c.add(
            "source_root",
            format!("{}, sha256:{}", src.summary(), &hex::encode(digest)[..12]),
            |e| {
                e.bytes(&digest);
            },
        );
    }
    // Where the build cache is kept is how the image is built, not what it is.
    let builder_options: Vec<(&String, &serde_json::Value)> = builder_options
        .iter()
        .filter(|(k, _)| !crate::build::cache::is_cache_option(k))
        .collect();
    if !builder_options.is_empty() {
        let summary = builder_options
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(",");
        c.add("builder_options", summary, |e| {
            e.u64(builder_options.len() as u64);
            for (k, v) in &builder_options {
                e.str(k).json(v);
            }
        });
    }
    if !builder_config.is_empty() {
        let summary = spec
            .builder_config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        c.add("builder_config", summary, |e| {
            e.map(builder_config);
        });
    }
    HashInputs {
        scheme: HASH_SCHEME,
        inputs: c.inputs,
    }
}
