//! A validated spec together with the root its relative paths resolve against.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use marked_yaml::types::Node;

use super::decode::{FieldLocations, decode_spec};
use super::diagnostic::{Diagnostic, DiagnosticKind, Diagnostics, SpecError};
use super::model::ImageSpec;
use super::normalize::normalize;
use super::validate::validate;

/// A normalised, validated spec and the directory its relative paths are resolved against.
///
/// The CLI's root is the directory it is invoked in (or `--root`), as the source documents say;
/// a library user passes it explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSpec {
    pub spec: ImageSpec,
    pub root: PathBuf,
    /// The spec file, when the spec came from one.
    pub file: Option<PathBuf>,
    /// Positions of the fields in `file`.
    pub locations: FieldLocations,
    /// The spec file's mapping as written (key order, quoting), when the spec came from one:
    /// imagespec's own name ignores spelling, flytekit's depends on it (`crate::hash::flytekit`).
    pub document: Option<Arc<Node>>,
    /// The Flyte runtime the Python install adds (flytekit by default; see
    /// [`crate::plan::runtime`]). Not a spec field: it comes from the configuration or a flag.
    pub runtime: crate::plan::runtime::Runtime,
    /// A directory of the root holding files brought in from outside it, as a build service's
    /// workspace holds a client's `../` paths ([`crate::inputs::RELOCATED_DIR`]): a tree inside
    /// it is outside the root for the root's `.dockerignore`, and a tree at the root leaves it
    /// out. `None` for a spec loaded where its files are.
    pub relocated_dir: Option<String>,
}

impl LoadedSpec {
    /// Reads, decodes, normalises and validates a YAML or JSON spec file.
    pub fn from_file(path: &Path, root: &Path) -> Result<LoadedSpec, SpecError> {
        Self::from_text(&Self::read_file(path)?, Some(path), root)
    }

    /// The text of a spec file (see [`super::source::read_text_file`] for what is refused).
    pub(crate) fn read_file(path: &Path) -> Result<String, SpecError> {
        super::source::read_text_file(path, "spec file")
    }

    /// Decodes, normalises and validates spec text; `file` is only used in messages.
    pub fn from_text(
        text: &str,
        file: Option<&Path>,
        root: &Path,
    ) -> Result<LoadedSpec, SpecError> {
        let (loaded, diagnostics, _) = Self::load_text(text, file, root);
        match loaded {
            Some(loaded) if diagnostics.is_empty() => Ok(loaded),
            _ => Err(SpecError { diagnostics }),
        }
    }

    /// [`LoadedSpec::from_text`] keeping what decoded even when there are problems, so the
    /// checks that come after validation ([`crate::check`]) can report theirs in the same
    /// round. The spec is `None` when the text is not a spec at all (bad syntax); `complete` is
    /// false when the decoder had to leave something out (a value of the wrong type), so checks
    /// on the partial spec would report consequences, not causes.
    pub(crate) fn load_text(
        text: &str,
        file: Option<&Path>,
        root: &Path,
    ) -> (Option<LoadedSpec>, Vec<Diagnostic>, bool) {
        let decoded = decode_spec(text, file);
        if decoded
            .diagnostics
            .iter()
            .any(|d| d.kind == DiagnosticKind::Syntax)
        {
            return (None, decoded.diagnostics, false);
        }
        let mut spec = decoded.spec;
        normalize(&mut spec);
        // Validate what did decode, so every problem of the file is reported in one round; a
        // field the decoder already complained about is not reported twice.
        let reported: Vec<String> = decoded
            .diagnostics
            .iter()
            .map(|d| d.field.clone())
            .collect();
        let complete = decoded.diagnostics.is_empty();
        let mut diags = Diagnostics::default();
        diags.extend(decoded.diagnostics);
        for mut d in validate(&spec, root, "") {
            if reported
                .iter()
                .any(|f| d.field == *f || d.field.starts_with(&format!("{f}.")))
            {
                continue;
            }
            d.file = file.map(Path::to_path_buf);
            d.location = decoded.locations.find(&d.field);
            diags.push(d);
        }
        let loaded = LoadedSpec {
            spec,
            root: root.to_path_buf(),
            file: file.map(Path::to_path_buf),
            locations: decoded.locations,
            document: decoded.document.map(Arc::new),
            runtime: Default::default(),
            relocated_dir: None,
        };
        (Some(loaded), diags.into_vec(), complete)
    }

    /// Normalises and validates a spec built in code.
    pub fn from_spec(
        mut spec: ImageSpec,
        root: impl Into<PathBuf>,
    ) -> Result<LoadedSpec, SpecError> {
        let root = root.into();
        normalize(&mut spec);
        let mut diags = Diagnostics::default();
        diags.extend(validate(&spec, &root, ""));
        diags.into_result(LoadedSpec {
            spec,
            root,
            file: None,
            locations: FieldLocations::default(),
            document: None,
            runtime: Default::default(),
            relocated_dir: None,
        })
    }

    /// The same spec pushed to another registry (a `--registry` override); the registry is
    /// validated like the field, and a base spec without its own registry follows.
    pub fn with_registry(mut self, registry: &str) -> Result<LoadedSpec, SpecError> {
        fn set(spec: &mut ImageSpec, registry: &str, old: &Option<String>) {
            if let Some(super::model::BaseImage::Spec(base)) = &mut spec.base_image
                && &base.registry == old
            {
                set(base, registry, old);
            }
            spec.registry = Some(registry.to_string());
        }
        let old = self.spec.registry.clone();
        set(&mut self.spec, registry, &old);
        normalize(&mut self.spec);
        let mut diags = Diagnostics::default();
        for mut d in validate(&self.spec, &self.root, "") {
            if d.field.ends_with("registry") {
                d.message = format!("{} (from --registry)", d.message);
            }
            d.file = self.file.clone();
            d.location = self.locations.find(&d.field);
            diags.push(d);
        }
        diags.into_result(self)
    }

    /// The base spec (when `base_image` is a spec), sharing this spec's root and file.
    pub fn base(&self) -> Option<LoadedSpec> {
        let document = self
            .document
            .as_deref()
            .and_then(|d| d.as_mapping())
            .and_then(|m| m.get_node("base_image"))
            .filter(|n| n.as_mapping().is_some())
            .map(|n| Arc::new(n.clone()));
        self.spec.base_spec().map(|base| LoadedSpec {
            spec: base.clone(),
            root: self.root.clone(),
            file: self.file.clone(),
            locations: FieldLocations::default(),
            document,
            runtime: self.runtime.clone(),
            relocated_dir: self.relocated_dir.clone(),
        })
    }

    /// The same spec with another Flyte runtime (`--flytekit-version`, `--no-flytekit`).
    pub fn with_runtime(mut self, runtime: crate::plan::runtime::Runtime) -> LoadedSpec {
        self.runtime = runtime;
        self
    }

    /// Marks `dir` (relative to the root) as holding files from outside the root
    /// ([`LoadedSpec::relocated_dir`]).
    #[must_use]
    pub fn with_relocated_dir(mut self, dir: &str) -> LoadedSpec {
        self.relocated_dir = Some(dir.to_string());
        self
    }

    /// Resolves a spec path against the root.
    pub fn path(&self, relative: &str) -> PathBuf {
        super::validate::resolve(&self.root, relative)
    }
}
