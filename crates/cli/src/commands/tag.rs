//! `imagespec tag SPEC`: the image name, computed without touching any engine or registry.

use imagespec_core::hash::{ResolvedImage, TagScheme, flytekit};

use crate::args::{OutputFormat, TagArgs};
use crate::output;
use crate::setup::Setup;

pub fn run(setup: &Setup, args: &TagArgs, format: OutputFormat) -> anyhow::Result<()> {
    // The same checks as `validate`: a name is only printed for a spec that can be built.
    let checked = setup.check_spec_named(&args.spec, args.registry.as_deref(), args.tag_scheme)?;
    let resolved = checked.resolved;
    match format {
        OutputFormat::Json => output::json_line(&serde_json::json!({
            "image": resolved.name.to_string(),
            "spec_hash": resolved.spec_hash,
            "resolved": resolved,
            "warnings": checked.warnings,
        })),
        OutputFormat::Text => {
            output::text_line(&resolved.name);
            if args.explain {
                match setup.tag_scheme(args.tag_scheme) {
                    // flytekit's tag is the md5 of one text: show that text (the image's
                    // contents are still checked against imagespec's inputs, listed after it).
                    TagScheme::Flytekit => {
                        let flytekit = flytekit::resolve(&checked.loaded)?;
                        explain_flytekit(&flytekit, "");
                        output::text_line("  contents (checked at build time):");
                        explain(&resolved, "  ");
                    }
                    TagScheme::Imagespec => explain(&resolved, ""),
                }
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

fn explain_flytekit(resolved: &ResolvedImage, indent: &str) {
    output::text_line(format!("{indent}  scheme {}", resolved.inputs.scheme));
    for input in &resolved.inputs.inputs {
        output::text_line(format!("{indent}  md5 of {}", input.summary));
    }
    if let Some(base) = &resolved.base {
        output::text_line(format!("{indent}  base spec {}:", base.name));
        explain_flytekit(base, &format!("{indent}  "));
    }
}
