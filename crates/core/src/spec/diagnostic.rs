//! Problems found in a spec, each with the file, line, column and field it concerns and a fix.
//!
//! Loading and validation collect every problem of a file before failing, so a user fixes them
//! in one round instead of one per run.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// Where in a spec file a value starts (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// What kind of problem a diagnostic reports; stable for programs and tests to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticKind {
    /// The file is not valid YAML/JSON.
    Syntax,
    /// A key that no spec field has.
    UnknownKey,
    /// A value of the wrong type (a string where a list is needed, ...).
    WrongType,
    /// A required field is absent.
    MissingField,
    /// A value of the right type that is not allowed.
    InvalidValue,
    /// A referenced file or directory does not exist or cannot be read.
    MissingFile,
    /// Two fields that cannot be used together.
    Conflict,
}

/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub kind: DiagnosticKind,
    /// The spec file, when the spec came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Where the offending value (or key) starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The field path, e.g. `packages[2]` or `base_image.registry`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(kind: DiagnosticKind, field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            kind,
            file: None,
            location: None,
            field: field.into(),
            message: message.into(),
            help: None,
        }
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.location) {
            (Some(file), Some(loc)) => {
                write!(f, "{}:{}:{}: ", file.display(), loc.line, loc.column)?
            }
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(loc)) => write!(f, "line {}, column {}: ", loc.line, loc.column)?,
            (None, None) => {}
        }
        if !self.field.is_empty() {
            write!(f, "`{}`: ", self.field)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n    help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in one spec (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub struct SpecError {
    pub diagnostics: Vec<Diagnostic>,
}

impl SpecError {
    /// Whether any diagnostic is of `kind`.
    pub fn has(&self, kind: DiagnosticKind) -> bool {
        self.diagnostics.iter().any(|d| d.kind == kind)
    }

    /// Whether any diagnostic concerns `field` (exactly, or a path below it).
    pub fn mentions(&self, field: &str) -> bool {
        self.diagnostics.iter().any(|d| {
            d.field == field
                || d.field.starts_with(&format!("{field}."))
                || d.field.starts_with(&format!("{field}["))
        })
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        writeln!(
            f,
            "invalid image spec: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for d in &self.diagnostics {
            writeln!(f, "  - {d}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics while loading and validating.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    items: Vec<Diagnostic>,
    /// The file is JSON, so help lines show JSON (`"packages": ["numpy"]`), not YAML.
    pub(crate) json: bool,
}

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub(crate) fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub(crate) fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }

    pub(crate) fn into_result<T>(self, value: T) -> Result<T, SpecError> {
        if self.items.is_empty() {
            Ok(value)
        } else {
            Err(SpecError {
                diagnostics: self.items,
            })
        }
    }
}
