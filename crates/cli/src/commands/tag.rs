//! `imagespec tag SPEC`: the image name, computed without touching any engine or registry.

use imagespec_core::hash::ResolvedImage;

use crate::args::{OutputFormat, TagArgs};
use crate::output;
use crate::setup::Setup;

pub fn run(setup: &Setup, args: &TagArgs, format: OutputFormat) -> anyhow::Result<()> {
    // The same checks as `validate`: a name is only printed for a spec that can be built.
    let resolved = setup
        .check_spec(&args.spec, args.registry.as_deref())?
        .resolved;
    match format {
        OutputFormat::Json => output::json_line(&serde_json::json!({
            "image": resolved.name.to_string(),
            "spec_hash": resolved.spec_hash,
            "resolved": resolved,
        })),
        OutputFormat::Text => {
            output::text_line(&resolved.name);
            if args.explain {
                explain(&resolved, "");
            }
        }
    }
    Ok(())
}

fn explain(resolved: &ResolvedImage, indent: &str) {
    output::text_line(format!("{indent}  scheme {}", resolved.inputs.scheme));
    for input in &resolved.inputs.inputs {
        output::text_line(format!(
            "{indent}  {:<20} {}  {}",
            input.field,
            &input.digest[..12],
            input.summary
        ));
    }
    if let Some(base) = &resolved.base {
        output::text_line(format!("{indent}  base spec {}:", base.name));
        explain(base, &format!("{indent}  "));
    }
}
