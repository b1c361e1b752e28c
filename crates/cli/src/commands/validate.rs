//! `imagespec validate SPEC`: every check every command runs (see `imagespec_core::check`),
//! including hashing, which reads every file the spec names, and what the builder the spec would
//! use (its `builder`, else the variant's default) refuses in it, all reported at once.

use imagespec_core::build::{Engine, EngineError, EngineOptions};
use imagespec_core::check::check_file_with;
use imagespec_core::spec::{Diagnostic, DiagnosticKind, LoadedSpec};

use crate::args::{OutputFormat, SpecArgs};
use crate::output;
use crate::setup::Setup;

pub fn run(setup: &Setup, args: &SpecArgs, format: OutputFormat) -> anyhow::Result<()> {
    let (variant, _) = setup.variant(None)?;
    let engine = Engine::new(setup.builders(None));
    let options = EngineOptions {
        variant,
        push: false,
        ..EngineOptions::default()
    };
    let builder_checks = |loaded: &LoadedSpec| -> Vec<Diagnostic> {
        engine
            .spec_problems(loaded, &options)
            .into_iter()
            .map(|(prefix, e)| builder_diagnostic(&prefix, &e))
            .collect()
    };
    let checked = check_file_with(
        &args.spec,
        &setup.root,
        None,
        setup.runtime(args)?,
        &builder_checks,
    )?;
    match format {
        OutputFormat::Json => output::json_line(&serde_json::json!({
            "valid": true,
            "file": args.spec,
            "image": checked.resolved.name.to_string(),
            "spec": checked.loaded.spec,
            "warnings": checked.warnings,
        })),
        OutputFormat::Text => output::text_line(format!("{}: valid", args.spec.display())),
    }
    Ok(())
}

/// A builder's refusal as a diagnostic at the field it concerns (`builder` for the choice of
/// builder itself), below the spec at `prefix`.
fn builder_diagnostic(prefix: &str, e: &EngineError) -> Diagnostic {
    let (field, kind) = match e {
        EngineError::Unsupported { field, .. } => (field.key(), DiagnosticKind::Conflict),
        EngineError::LocalBuildNotAllowed { .. } => ("builder", DiagnosticKind::Conflict),
        _ => ("builder", DiagnosticKind::InvalidValue),
    };
    let field = if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    };
    Diagnostic::new(kind, field, e.to_string())
}
