//! A validated spec together with the root its relative paths resolve against.

use std::path::{Path, PathBuf};

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
}

impl LoadedSpec {
    /// Reads, decodes, normalises and validates a YAML or JSON spec file.
    pub fn from_file(path: &Path, root: &Path) -> Result<LoadedSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            diagnostics: vec![Diagnostic {
                file: Some(path.to_path_buf()),
                ..Diagnostic::new(
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        DiagnosticKind::Syntax
                    } else {
                        DiagnosticKind::MissingFile
                    },
                    "",
                    format!("cannot read the spec file: {e}"),
                )
                .with_help("check the path; spec files are YAML or JSON")
            }],
        })?;
        Self::from_text(&text, Some(path), root)
    }

    /// Decodes, normalises and validates spec text; `file` is only used in messages.
    pub fn from_text(
        text: &str,
        file: Option<&Path>,
        root: &Path,
    ) -> Result<LoadedSpec, SpecError> {
        let decoded = decode_spec(text, file);
        if decoded
            .diagnostics
            .iter()
            .any(|d| d.kind == DiagnosticKind::Syntax)
        {
            return Err(SpecError {
                diagnostics: decoded.diagnostics,
            });
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
        diags.into_result(LoadedSpec {
            spec,
            root: root.to_path_buf(),
            file: file.map(Path::to_path_buf),
            locations: decoded.locations,
        })
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
        self.spec.base_spec().map(|base| LoadedSpec {
            spec: base.clone(),
            root: self.root.clone(),
            file: self.file.clone(),
            locations: FieldLocations::default(),
        })
    }

    /// Resolves a spec path against the root.
    pub fn path(&self, relative: &str) -> PathBuf {
        super::validate::resolve(&self.root, relative)
    }
}
