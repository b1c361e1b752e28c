//! `imagespec validate SPEC`.

use anyhow::Context;
use imagespec_core::hash::resolve_image;
use imagespec_core::plan::BuildPlan;

use crate::args::{OutputFormat, SpecArgs};
use crate::output;
use crate::setup::Setup;

pub fn run(setup: &Setup, args: &SpecArgs, format: OutputFormat) -> anyhow::Result<()> {
    let loaded = setup.load_spec(&args.spec, None)?;
    // Hashing reads every file the spec names (requirements, copy entries, the filtered source
    // tree), so a problem there (an unreadable file, an ignore file pointing outside the tree, a
    // `tag_format` giving an invalid tag) is found by `validate` too, not first by `build`.
    let resolved = resolve_image(&loaded)?;
    // What planning can refuse without files (an impossible CUDA version, an unknown
    // `builder_options` key, ...), for the spec and each base spec.
    let mut current = Some(loaded.clone());
    while let Some(spec) = current {
        BuildPlan::check(&spec).with_context(|| format!("spec `{}`", spec.spec.name))?;
        current = spec.base();
    }
    match format {
        OutputFormat::Json => output::json_line(&serde_json::json!({
            "valid": true,
            "file": args.spec,
            "image": resolved.name.to_string(),
            "spec": loaded.spec,
        })),
        OutputFormat::Text => output::text_line(format!("{}: valid", args.spec.display())),
    }
    Ok(())
}
