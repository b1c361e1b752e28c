//! The checks every command runs, in one place: `validate`, `tag`, `dockerfile`, `context` and
//! `build` (with or without `--dry-run`) all load a spec through [`check_file`], so a spec one of
//! them refuses is refused by all of them, with the same diagnostics.
//!
//! In order: reading the file ([`crate::spec::read_text_file`]), decoding, validation, a
//! `--registry` override, what planning refuses without reading files ([`BuildPlan::check`],
//! which is what every builder's `ImageBuilder::preflight` runs) for the spec and each base spec,
//! and hashing, which reads every file the spec names. The problems of the steps before hashing
//! are reported together; hashing needs a valid spec, so it runs only when there are none.
//! Every problem is a [`Diagnostic`] with the file, line, column and field when the spec came
//! from a file.

use std::path::Path;

use crate::hash::flytekit::FlytekitError;
use crate::hash::{HashError, ResolvedImage, TagScheme, resolve_image};
use crate::plan::options::{BUILDER_OPTION_KEYS, unknown_builder_options};
use crate::plan::runtime::Runtime;
use crate::plan::{BuildPlan, PlanError};
use crate::spec::{Diagnostic, DiagnosticKind, LoadedSpec, SpecError};
use crate::tree::TreeError;

/// A spec that passed every check, and its computed name.
#[derive(Debug, Clone)]
pub struct Checked {
    pub loaded: LoadedSpec,
    pub resolved: ResolvedImage,
    /// What is accepted but has no effect here, located like the problems (for now: the
    /// `builder_options` keys imagespec does not read, which are passed on to the builder).
    /// Already logged once (`tracing::warn`) by the check; a caller may also print them.
    pub warnings: Vec<Diagnostic>,
}

/// Reads and checks a spec file; `registry` is a `--registry` override.
pub fn check_file(path: &Path, root: &Path, registry: Option<&str>) -> Result<Checked, SpecError> {
    check_file_with_runtime(path, root, registry, Runtime::default())
}

/// [`check_file`] with the Flyte runtime the install adds (`--flytekit-version`, `--no-flytekit`,
/// the configuration's `flytekit_version`); it changes the plan and the name.
pub fn check_file_with_runtime(
    path: &Path,
    root: &Path,
    registry: Option<&str>,
    runtime: Runtime,
) -> Result<Checked, SpecError> {
    let text = LoadedSpec::read_file(path)?;
    check_text_with_runtime(&text, Some(path), root, registry, runtime)
}

/// Checks spec text; `file` is used in messages.
pub fn check_text(
    text: &str,
    file: Option<&Path>,
    root: &Path,
    registry: Option<&str>,
) -> Result<Checked, SpecError> {
    check_text_with_runtime(text, file, root, registry, Runtime::default())
}

/// [`check_text`] with a Flyte runtime (see [`check_file_with_runtime`]).
pub fn check_text_with_runtime(
    text: &str,
    file: Option<&Path>,
    root: &Path,
    registry: Option<&str>,
    runtime: Runtime,
) -> Result<Checked, SpecError> {
    check_text_with(text, file, root, registry, runtime, &|_| Vec::new())
}

/// What a caller adds to the checks of a loaded spec: problems (field paths from the top spec,
/// no position) reported with the others, each located in the file. `validate` passes what the
/// builder the spec would use refuses ([`crate::build::Engine::spec_problems`]).
pub type ExtraChecks<'a> = &'a dyn Fn(&LoadedSpec) -> Vec<Diagnostic>;

/// [`check_file_with_runtime`] plus the caller's own checks ([`ExtraChecks`]).
pub fn check_file_with(
    path: &Path,
    root: &Path,
    registry: Option<&str>,
    runtime: Runtime,
    extra: ExtraChecks<'_>,
) -> Result<Checked, SpecError> {
    let text = LoadedSpec::read_file(path)?;
    check_text_with(&text, Some(path), root, registry, runtime, extra)
}

fn check_text_with(
    text: &str,
    file: Option<&Path>,
    root: &Path,
    registry: Option<&str>,
    runtime: Runtime,
    extra: ExtraChecks<'_>,
) -> Result<Checked, SpecError> {
    let (loaded, mut diagnostics, complete) = LoadedSpec::load_text(text, file, root);
    let Some(loaded) = loaded else {
        return Err(SpecError { diagnostics });
    };
    let mut loaded = loaded.with_runtime(runtime);
    if let Some(registry) = registry
        && diagnostics.is_empty()
    {
        match loaded.clone().with_registry(registry) {
            Ok(overridden) => loaded = overridden,
            Err(e) => diagnostics.extend(e.diagnostics),
        }
    }
    // On a partly decoded spec (a value of the wrong type left out), planning would report the
    // consequences of the hole (say, "secrets but nothing installed"), not what to fix.
    if complete {
        for d in plan_diagnostics(&loaded) {
            if !diagnostics.iter().any(|r| overlaps(&r.field, &d.field)) {
                diagnostics.push(d);
            }
        }
    }
    for d in extra(&loaded) {
        let d = locate(&loaded, "", d);
        if !diagnostics.iter().any(|r| overlaps(&r.field, &d.field)) {
            diagnostics.push(d);
        }
    }
    if !diagnostics.is_empty() {
        return Err(SpecError { diagnostics });
    }
    let resolved = check_loaded_files(&loaded)?;
    let warnings = unknown_option_warnings(&loaded);
    if !warnings.is_empty() {
        let keys: Vec<&str> = warnings.iter().map(|w| w.field.as_str()).collect();
        tracing::warn!(
            "{}: passed to the builder, not read by imagespec's own build plan (known keys: {})",
            keys.join(", "),
            BUILDER_OPTION_KEYS.join(", ")
        );
    }
    Ok(Checked {
        loaded,
        resolved,
        warnings,
    })
}

/// A warning per `builder_options` key of the spec and each base spec that imagespec's plan does
/// not read (flytekit hands the dict to its builder; Union's builder reads
/// `imagepull_secret_name`).
fn unknown_option_warnings(loaded: &LoadedSpec) -> Vec<Diagnostic> {
    levels(loaded)
        .iter()
        .flat_map(|(prefix, spec)| {
            unknown_builder_options(&spec.spec.builder_options)
                .into_iter()
                .map(|key| {
                    let d = Diagnostic::new(
                        DiagnosticKind::UnknownKey,
                        format!("builder_options.{key}"),
                        format!(
                            "`builder_options.{key}` is passed to the builder as is; imagespec's own build plan does not read it"
                        ),
                    )
                    .with_help(format!(
                        "keys imagespec reads: {}; keep it if your builder (such as Union's) reads it",
                        BUILDER_OPTION_KEYS.join(", ")
                    ));
                    locate(loaded, prefix, d)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The checks after validation for a spec that is already loaded (one built in code, say):
/// planning for the spec and each base spec, then hashing. Returns the image name.
pub fn check_loaded(loaded: &LoadedSpec) -> Result<ResolvedImage, SpecError> {
    let diagnostics = plan_diagnostics(loaded);
    if !diagnostics.is_empty() {
        return Err(SpecError { diagnostics });
    }
    check_loaded_files(loaded)
}

fn check_loaded_files(loaded: &LoadedSpec) -> Result<ResolvedImage, SpecError> {
    let resolved = hash(loaded)?;
    secrets_outside_context(loaded, &resolved)?;
    Ok(resolved)
}

/// A checked spec named by `scheme`: imagespec's name (already computed by the checks, which
/// also read every file the spec names) or flytekit's ([`crate::hash::flytekit`]), whose
/// refusals are located in the file like every other problem.
///
/// Only the name changes: the hash inputs stay imagespec's, because they are what the build
/// plan checks the files against (a file edited after naming is refused, whatever the scheme).
pub fn with_tag_scheme(mut checked: Checked, scheme: TagScheme) -> Result<Checked, SpecError> {
    if scheme == TagScheme::Flytekit {
        let flytekit = crate::hash::flytekit::resolve(&checked.loaded).map_err(|e| SpecError {
            diagnostics: vec![flytekit_diagnostic(&checked.loaded, &e)],
        })?;
        checked.resolved = renamed(checked.resolved, &flytekit);
    }
    Ok(checked)
}

/// `own` (and its base) under the names of `other`.
fn renamed(mut own: ResolvedImage, other: &ResolvedImage) -> ResolvedImage {
    own.name = other.name.clone();
    own.spec_hash = other.spec_hash.clone();
    own.base = match (own.base, &other.base) {
        (Some(base), Some(other_base)) => Some(Box::new(renamed(*base, other_base))),
        (base, _) => base,
    };
    own
}

fn flytekit_diagnostic(top: &LoadedSpec, e: &FlytekitError) -> Diagnostic {
    let kind = match e {
        FlytekitError::Io { .. } => DiagnosticKind::MissingFile,
        FlytekitError::CopyModeWithoutRoot => DiagnosticKind::MissingField,
        FlytekitError::NotString { .. } | FlytekitError::NotStringList { .. } => {
            DiagnosticKind::WrongType
        }
        _ => DiagnosticKind::InvalidValue,
    };
    let help = match e {
        FlytekitError::LoadedModules => Some("add `source_copy_mode: all`"),
        FlytekitError::UnsupportedScalar { .. } => Some("quote the value"),
        FlytekitError::DockerIgnore { .. } => Some("or run without `--tag-scheme flytekit`"),
        _ => None,
    };
    let d = Diagnostic::new(kind, e.field(), format!("--tag-scheme flytekit: {e}"));
    let d = match help {
        Some(h) => d.with_help(h),
        None => d,
    };
    locate(top, "", d)
}

/// The spec and each base spec, with the field path of each (`""`, `base_image`, ...).
fn levels(loaded: &LoadedSpec) -> Vec<(String, LoadedSpec)> {
    let mut out = Vec::new();
    let mut prefix = String::new();
    let mut current = Some(loaded.clone());
    while let Some(spec) = current {
        current = spec.base();
        out.push((prefix.clone(), spec));
        prefix = join(&prefix, "base_image");
    }
    out
}

fn plan_diagnostics(loaded: &LoadedSpec) -> Vec<Diagnostic> {
    levels(loaded)
        .iter()
        .flat_map(|(prefix, spec)| {
            BuildPlan::problems(spec)
                .into_iter()
                .map(|e| plan_diagnostic(loaded, prefix, &e))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Hashes the spec; a failure is attributed to the spec or base spec whose own inputs failed.
fn hash(loaded: &LoadedSpec) -> Result<ResolvedImage, SpecError> {
    let err = match resolve_image(loaded) {
        Ok(resolved) => return Ok(resolved),
        Err(e) => e,
    };
    // Only on failure: hash from the innermost base outwards to find whose input failed.
    for (prefix, spec) in levels(loaded).iter().rev() {
        if let Err(e) = resolve_image(spec) {
            return Err(SpecError {
                diagnostics: vec![hash_diagnostic(loaded, prefix, &e)],
            });
        }
    }
    Err(SpecError {
        diagnostics: vec![hash_diagnostic(loaded, "", &err)],
    })
}

/// A secret file that `copy` or `source_root` would put into the image is refused by planning
/// once the files are selected; that selection costs as much as hashing, so it runs only for
/// the specs where it can fail (a file secret and something copied).
fn secrets_outside_context(loaded: &LoadedSpec, resolved: &ResolvedImage) -> Result<(), SpecError> {
    let mut image = Some(resolved);
    for (prefix, spec) in levels(loaded) {
        let Some(current) = image else { break };
        image = current.base.as_deref();
        let s = &spec.spec;
        let file_secret = s
            .pip_secret_mounts
            .iter()
            .any(|m| !m.src.starts_with("env:"));
        if !file_secret || (s.copy.is_empty() && s.source_root.is_none()) {
            continue;
        }
        let base = current.base.as_ref().map(|b| b.name.to_string());
        if let Err(e) = BuildPlan::new(&spec, current, base.as_deref()) {
            return Err(SpecError {
                diagnostics: vec![plan_diagnostic(loaded, &prefix, &e)],
            });
        }
    }
    Ok(())
}

/// A planning refusal as a diagnostic at the field it concerns, located in `top`'s file.
pub fn plan_diagnostic(top: &LoadedSpec, prefix: &str, e: &PlanError) -> Diagnostic {
    locate(top, prefix, plan_problem(e))
}

/// A hashing failure as a diagnostic at the field whose files failed, located in `top`'s file.
pub fn hash_diagnostic(top: &LoadedSpec, prefix: &str, e: &HashError) -> Diagnostic {
    locate(top, prefix, hash_problem(e))
}

/// A planning refusal as a diagnostic naming its field, without a file or position (for an
/// error that comes back from the engine, which has no spec file).
pub fn plan_problem(e: &PlanError) -> Diagnostic {
    let (field, kind) = match e {
        PlanError::UnknownCuda { .. } => ("cuda".to_string(), DiagnosticKind::InvalidValue),
        PlanError::UnknownCudnn { .. } => ("cudnn".to_string(), DiagnosticKind::InvalidValue),
        PlanError::Conflict { field, .. } => (field.to_string(), DiagnosticKind::Conflict),
        PlanError::BasePythonVersion { .. } => {
            ("python_version".to_string(), DiagnosticKind::Conflict)
        }
        PlanError::BasePlatforms { .. } => ("platform".to_string(), DiagnosticKind::Conflict),
        PlanError::InvalidBuilderOption { key, .. } => (
            format!("builder_options.{key}"),
            DiagnosticKind::InvalidValue,
        ),
        PlanError::ControlCharacter { field } => (field.clone(), DiagnosticKind::InvalidValue),
        PlanError::EmptyCommand { index } => {
            (format!("commands[{index}]"), DiagnosticKind::InvalidValue)
        }
        PlanError::PipExtraArgs { .. } => {
            ("pip_extra_args".to_string(), DiagnosticKind::InvalidValue)
        }
        PlanError::InvalidSecret { index, .. } | PlanError::SecretInContext { index, .. } => (
            format!("pip_secret_mounts[{index}]"),
            DiagnosticKind::InvalidValue,
        ),
        PlanError::UnusedSecrets => ("pip_secret_mounts".to_string(), DiagnosticKind::Conflict),
        PlanError::Drift { fields } => (
            fields.first().cloned().unwrap_or_default(),
            DiagnosticKind::InvalidValue,
        ),
        PlanError::Tree { field, .. } | PlanError::Read { field, .. } => {
            (field.clone(), DiagnosticKind::MissingFile)
        }
        PlanError::Hash(h) => return hash_problem(h),
        PlanError::ContextChanged { .. } | PlanError::Write(_) => {
            (String::new(), DiagnosticKind::InvalidValue)
        }
    };
    Diagnostic::new(kind, field, e.to_string())
}

/// A hashing failure as a diagnostic naming its field, without a file or position.
pub fn hash_problem(e: &HashError) -> Diagnostic {
    let (field, kind) = match e {
        HashError::Tree {
            field,
            source: TreeError::NotFound { .. },
        }
        | HashError::NotAFileOrDirectory { field, .. } => {
            (field.clone(), DiagnosticKind::MissingFile)
        }
        // A link that leaves its tree, a FIFO, `/proc`: the file exists but cannot be used.
        HashError::Tree { field, .. } | HashError::NotARegularFile { field, .. } => {
            (field.clone(), DiagnosticKind::InvalidValue)
        }
        HashError::InvalidTag { .. } => ("tag_format".to_string(), DiagnosticKind::InvalidValue),
    };
    Diagnostic::new(kind, field, e.to_string())
}

/// `d` for the spec at `prefix` (a base spec's field path) of `top`, at its position in the file.
fn locate(top: &LoadedSpec, prefix: &str, d: Diagnostic) -> Diagnostic {
    let field = if d.field.is_empty() {
        prefix.to_string()
    } else {
        join(prefix, &d.field)
    };
    Diagnostic {
        file: top.file.clone(),
        location: top.locations.find(&field),
        field,
        ..d
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Whether two field paths concern the same value (one is the other or below it).
fn overlaps(a: &str, b: &str) -> bool {
    let below = |x: &str, y: &str| {
        x == y || x.starts_with(&format!("{y}.")) || x.starts_with(&format!("{y}["))
    };
    below(a, b) || below(b, a)
}
