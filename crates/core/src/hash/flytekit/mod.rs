//! flytekit's image name (`ImageSpec.image_name()` of flytekit 1.16), for `--tag-scheme flytekit`.
//!
//! flytekit's tag is `md5(str(asdict(spec)))` (urlsafe base64, no padding, `-` → `_`) over the
//! dataclass fields in declaration order, `None` values and `pip_secret_mounts`, `builder`,
//! `runtime_packages` left out, after `ImageSpec.tag` replaced `base_image` (a spec) by its
//! image name, `source_root` by the `ls_files` digest, `copy` by `compute_digest(copy)`,
//! `requirements` by the sha1 of its stripped bytes and `registry_config` by `None`.
//!
//! pyflyte reads a spec file with `yaml.safe_load` and `ImageSpec(**values)`, so the values are
//! taken from the file as written ([`LoadedSpec::document`]): its key order, and YAML 1.1's
//! reading of plain scalars (`python_version: 3.10` is the float `3.1` there). `source_copy_mode`
//! is read as the `CopyFileDetection` member it names and a spec-valued `base_image` as an
//! `ImageSpec`, as the equivalent Python definition holds them. Where flytekit's name depends on
//! the Python process (the loaded-modules copy mode), imagespec refuses with the fix.

mod digest;
pub mod pyrepr;
pub(crate) mod yaml11;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use marked_yaml::types::Node;
use md5::{Digest, Md5};

use super::{HashInput, HashInputs, ImageName, ResolvedImage};
use crate::spec::LoadedSpec;
use pyrepr::PyValue;

/// The name of this scheme in [`HashInputs::scheme`].
pub const FLYTEKIT_SCHEME: &str = "flytekit-1.16";

/// flytekit's `ImageSpec` fields, in declaration order (the order of `asdict`).
const FIELDS: [&str; 29] = [
    "name",
    "python_version",
    "builder",
    "source_root",
    "env",
    "registry",
    "packages",
    "conda_packages",
    "conda_channels",
    "requirements",
    "apt_packages",
    "cuda",
    "cudnn",
    "base_image",
    "platform",
    "pip_index",
    "pip_extra_index_url",
    "pip_secret_mounts",
    "pip_extra_args",
    "registry_config",
    "entrypoint",
    "commands",
    "tag_format",
    "source_copy_mode",
    "copy",
    "python_exec",
    "runtime_packages",
    "builder_options",
    "builder_config",
];

/// Left out of `ImageSpec.id`.
const EXCLUDED: [&str; 3] = ["pip_secret_mounts", "builder", "runtime_packages"];

/// The list fields `ImageSpec.__post_init__` requires to hold strings only.
const STR_LISTS: [&str; 8] = [
    "packages",
    "conda_channels",
    "conda_packages",
    "apt_packages",
    "pip_extra_index_url",
    "entrypoint",
    "commands",
    "runtime_packages",
];

/// Why flytekit's name cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum FlytekitError {
    #[error(
        "`{field}`: the plain value `{value}` is a date or sexagesimal number to flytekit's YAML loader, which imagespec does not reproduce; quote it (`\"{value}\"`)"
    )]
    UnsupportedScalar { field: String, value: String },
    #[error(
        "`source_root` without `source_copy_mode` (or with `loaded_modules`): flytekit then hashes the Python modules its process has loaded, which only that process knows; set `source_copy_mode: all` to hash the whole filtered tree (or `none` to copy nothing)"
    )]
    LoadedModules,
    #[error(
        "`source_copy_mode` is set but `source_root` is not; flytekit refuses this spec: add `source_root` or remove `source_copy_mode`"
    )]
    CopyModeWithoutRoot,
    #[error(
        "{path}: flytekit filters `source_root` with docker-py's .dockerignore matcher, which imagespec's flytekit scheme does not reproduce; remove the .dockerignore (flytekit also honours .gitignore) or use the imagespec tag scheme"
    )]
    DockerIgnore { path: PathBuf },
    #[error("`{field}` must be a list of strings or None (flytekit's check): {found}")]
    NotStringList { field: String, found: String },
    #[error("`{field}` must be a string for flytekit, found {found}")]
    NotString { field: String, found: String },
    #[error(
        "`registry` `{registry}` is refused by flytekit (expected `localhost:30000`, `ghcr.io/username` or `docker.io/username`)"
    )]
    InvalidRegistry { registry: String },
    #[error(
        "`tag_format` `{format}`: flytekit formats it with `str.format(spec_hash=...)`; only `{{spec_hash}}`, `{{{{` and `}}}}` are supported"
    )]
    TagFormat { format: String },
    #[error("`tag_format` `{format}` yields the invalid tag `{tag}`")]
    InvalidTag { format: String, tag: String },
    #[error("cannot read {path} (`{field}`): {source}")]
    Io {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl FlytekitError {
    fn io(field: &'static str, path: &Path, source: std::io::Error) -> FlytekitError {
        FlytekitError::Io {
            field,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The spec field the problem is about, for located diagnostics.
    pub fn field(&self) -> &str {
        match self {
            FlytekitError::UnsupportedScalar { field, .. }
            | FlytekitError::NotStringList { field, .. }
            | FlytekitError::NotString { field, .. } => field,
            FlytekitError::LoadedModules | FlytekitError::DockerIgnore { .. } => "source_root",
            FlytekitError::CopyModeWithoutRoot => "source_copy_mode",
            FlytekitError::InvalidRegistry { .. } => "registry",
            FlytekitError::TagFormat { .. } | FlytekitError::InvalidTag { .. } => "tag_format",
            FlytekitError::Io { field, .. } => field,
        }
    }
}

/// flytekit's image name for a loaded spec (and, for a spec-valued `base_image`, its base's).
///
/// The registry is the one imagespec pushes to (the spec's, or `--registry`): flytekit's
/// `registry` is part of its hash, so an override changes the tag as it would in flytekit.
pub fn resolve(loaded: &LoadedSpec) -> Result<ResolvedImage, FlytekitError> {
    let mut values = values_of(loaded)?;
    // `--registry` (or a base spec that inherits its child's registry) replaces the written value.
    let written = values
        .iter()
        .find(|(k, _)| k == "registry")
        .and_then(|(_, v)| v.as_str().map(str::to_lowercase));
    if written.as_deref() != loaded.spec.registry.as_deref()
        && let Some(r) = &loaded.spec.registry
    {
        set(&mut values, "registry", PyValue::Str(r.clone()));
    }
    let name = image_name(&values, &loaded.root)?;
    let base = match loaded.base() {
        Some(base) => Some(Box::new(resolve(&base)?)),
        None => None,
    };
    Ok(ResolvedImage {
        spec_hash: name.spec_hash.clone(),
        name: name.name,
        inputs: HashInputs {
            scheme: FLYTEKIT_SCHEME,
            inputs: vec![HashInput {
                field: "str(asdict(spec))".into(),
                digest: name.spec_hash,
                summary: name.repr,
            }],
        },
        base,
    })
}

/// The spec's values as flytekit holds them, a spec-valued `base_image` replaced by the base's
/// flytekit name (computed from the base as written: its own `registry`, not an inherited one).
fn values_of(loaded: &LoadedSpec) -> Result<Vec<(String, PyValue)>, FlytekitError> {
    let mut values = match loaded.document.as_deref() {
        Some(doc) => document_values(doc)?,
        None => spec_values(loaded),
    };
    if let Some(base) = loaded.base() {
        let base_values = values_of(&base)?;
        let base_name = image_name(&base_values, &loaded.root)?;
        set(
            &mut values,
            "base_image",
            PyValue::Str(base_name.name.to_string()),
        );
    }
    Ok(values)
}

fn set(values: &mut Vec<(String, PyValue)>, key: &str, value: PyValue) {
    match values.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => values.push((key.to_string(), value)),
    }
}

/// The keyword arguments `ImageSpec(**yaml.safe_load(file))` receives, in the file's order.
fn document_values(doc: &Node) -> Result<Vec<(String, PyValue)>, FlytekitError> {
    let Some(map) = doc.as_mapping() else {
        return Ok(Vec::new());
    };
    map.iter()
        .map(|(k, v)| {
            let field = k.as_str().to_string();
            let value = match (field.as_str(), v) {
                // Replaced by the base's name in `values_of`.
                ("base_image", Node::Mapping(_)) => PyValue::None,
                _ => yaml11::to_py(v).map_err(|e| FlytekitError::UnsupportedScalar {
                    field: field.clone(),
                    value: e.0,
                })?,
            };
            Ok((field, value))
        })
        .collect()
}

/// The same for a spec built in code: its serde form (maps in key order).
fn spec_values(loaded: &LoadedSpec) -> Vec<(String, PyValue)> {
    fn py(v: &serde_json::Value) -> PyValue {
        match v {
            serde_json::Value::Null => PyValue::None,
            serde_json::Value::Bool(b) => PyValue::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => PyValue::Int(i.into()),
                None => PyValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => PyValue::Str(s.clone()),
            serde_json::Value::Array(a) => PyValue::List(a.iter().map(py).collect()),
            serde_json::Value::Object(o) => PyValue::Dict(
                o.iter()
                    .map(|(k, v)| (PyValue::Str(k.clone()), py(v)))
                    .collect(),
            ),
        }
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&loaded.spec) else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| k.as_str() != "pip_secret_mounts")
        .map(|(k, v)| (k.clone(), py(v)))
        .collect()
}

struct FlytekitName {
    name: ImageName,
    spec_hash: String,
    repr: String,
}

/// `ImageSpec(**values).image_name()`.
fn image_name(values: &[(String, PyValue)], root: &Path) -> Result<FlytekitName, FlytekitError> {
    let get = |k: &str| {
        values
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or(PyValue::None)
    };
    // `__post_init__`.
    let name = match get("name") {
        PyValue::None if !values.iter().any(|(k, _)| k == "name") => "flytekit".to_string(),
        PyValue::Str(s) => s.to_lowercase(),
        other => {
            return Err(FlytekitError::NotString {
                field: "name".into(),
                found: other.repr(),
            });
        }
    };
    let registry = match get("registry") {
        PyValue::Str(s) if !s.is_empty() => {
            let lowered = s.to_lowercase();
            if !valid_registry(&lowered) {
                return Err(FlytekitError::InvalidRegistry { registry: lowered });
            }
            PyValue::Str(lowered)
        }
        other => other,
    };
    let platform = match get("platform") {
        PyValue::None => {
            let local = registry
                .as_str()
                .is_some_and(|r| r.starts_with("localhost:"));
            // flytekit asks `platform.machine()` of the process; this process runs on the same
            // machine, so the answer is the same.
            if local && std::env::consts::ARCH == "aarch64" {
                PyValue::Str("linux/arm64".into())
            } else {
                PyValue::Str("linux/amd64".into())
            }
        }
        other => other,
    };
    let source_root = get("source_root");
    let copy_mode = match get("source_copy_mode") {
        PyValue::Str(s) => Some(copy_mode(&s)),
        PyValue::None => None,
        other => {
            return Err(FlytekitError::NotString {
                field: "source_copy_mode".into(),
                found: other.repr(),
            });
        }
    };
    // `self.source_copy_mode = self.source_copy_mode or CopyFileDetection.LOADED_MODULES`.
    let copy_mode = match (&source_root, copy_mode) {
        (PyValue::None, mode) => mode,
        (_, Some(mode)) => Some(mode),
        (_, None) => Some(("LOADED_MODULES", 1)),
    };
    for field in STR_LISTS {
        match get(field) {
            PyValue::None => {}
            PyValue::List(items) if items.iter().all(|i| matches!(i, PyValue::Str(_))) => {}
            other => {
                return Err(FlytekitError::NotStringList {
                    field: field.into(),
                    found: other.repr(),
                });
            }
        }
    }
    // `tag`.
    let mut dict: Vec<(String, PyValue)> = Vec::new();
    for field in FIELDS {
        let value = match field {
            "name" => PyValue::Str(name.clone()),
            "registry" => registry.clone(),
            "platform" => platform.clone(),
            "source_copy_mode" => match copy_mode {
                Some((n, v)) => PyValue::Enum(n, v),
                None => PyValue::None,
            },
            "registry_config" => PyValue::None,
            _ => get(field),
        };
        dict.push((field.to_string(), value));
    }
    if let Some((mode, _)) = copy_mode
        && mode != "NO_COPY"
    {
        if mode == "LOADED_MODULES" {
            return Err(FlytekitError::LoadedModules);
        }
        let root_dir = match &source_root {
            PyValue::Str(s) if !s.is_empty() => s.clone(),
            PyValue::None | PyValue::Str(_) => return Err(FlytekitError::CopyModeWithoutRoot),
            other => {
                return Err(FlytekitError::NotString {
                    field: "source_root".into(),
                    found: other.repr(),
                });
            }
        };
        let digest = digest::source_digest(root, &root_dir)?;
        set_dict(&mut dict, "source_root", PyValue::Str(digest));
    }
    let copy = get("copy");
    if copy.truthy() {
        let entries = string_list("copy", &copy)?;
        set_dict(
            &mut dict,
            "copy",
            PyValue::Str(digest::copy_digest(root, &entries)?),
        );
    }
    match get("requirements") {
        PyValue::Str(r) if !r.is_empty() => {
            let sha = digest::requirements_sha1(&root.join(&r))?;
            set_dict(&mut dict, "requirements", PyValue::Str(sha));
        }
        _ => {}
    }
    let repr = PyValue::Dict(
        dict.into_iter()
            .filter(|(k, v)| *v != PyValue::None && !EXCLUDED.contains(&k.as_str()))
            .map(|(k, v)| (PyValue::Str(k), v))
            .collect(),
    )
    .repr();
    let digest = Md5::digest(repr.as_bytes());
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    let spec_hash = id.replace('-', "_");
    let tag = match get("tag_format") {
        PyValue::Str(format) if !format.is_empty() => {
            let tag = format_tag(&format, &spec_hash)?;
            if !crate::reference::is_tag(&tag) {
                return Err(FlytekitError::InvalidTag { format, tag });
            }
            tag
        }
        _ => spec_hash.clone(),
    };
    let registry = registry
        .as_str()
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    Ok(FlytekitName {
        name: ImageName {
            registry,
            repository: name,
            tag,
        },
        spec_hash,
        repr,
    })
}

fn set_dict(dict: &mut [(String, PyValue)], key: &str, value: PyValue) {
    if let Some(slot) = dict.iter_mut().find(|(k, _)| k == key) {
        slot.1 = value;
    }
}

fn string_list(field: &str, value: &PyValue) -> Result<Vec<String>, FlytekitError> {
    match value {
        PyValue::List(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| FlytekitError::NotStringList {
                        field: field.into(),
                        found: value.repr(),
                    })
            })
            .collect(),
        other => Err(FlytekitError::NotStringList {
            field: field.into(),
            found: other.repr(),
        }),
    }
}

/// The `CopyFileDetection` member a spec file's `source_copy_mode` names (imagespec's spellings).
fn copy_mode(text: &str) -> (&'static str, i64) {
    let n = text
        .trim()
        .to_ascii_lowercase()
        .replace("copyfiledetection.", "");
    match n.as_str() {
        "all" => ("ALL", 2),
        "none" | "no_copy" => ("NO_COPY", 3),
        _ => ("LOADED_MODULES", 1),
    }
}

/// `tag_format.format(spec_hash=tag)` for the replacement fields flytekit documents.
fn format_tag(format: &str, spec_hash: &str) -> Result<String, FlytekitError> {
    let err = || FlytekitError::TagFormat {
        format: format.to_string(),
    };
    let mut out = String::new();
    let mut rest = format;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(r) = tail.strip_prefix("{{") {
            out.push('{');
            rest = r;
        } else if let Some(r) = tail.strip_prefix("}}") {
            out.push('}');
            rest = r;
        } else if let Some(r) = tail.strip_prefix("{spec_hash}") {
            out.push_str(spec_hash);
            rest = r;
        } else {
            return Err(err());
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `validate_container_registry_name`:
/// `^(localhost:\d{1,5}|([a-z\d\._-]+)(:\d{1,5})?)(/[\w\.-]+)*$`.
fn valid_registry(name: &str) -> bool {
    let (host, path) = match name.find('/') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    let port_ok = |p: &str| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    let host_ok = match host.split_once(':') {
        Some((h, port)) => {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && port_ok(port)
        }
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        }
    };
    host_ok
        && path.split('/').skip(1).all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-')
        })
}
