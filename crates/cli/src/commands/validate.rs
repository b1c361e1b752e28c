//! `imagespec validate SPEC`: every check every command runs (see `imagespec_core::check`),
//! including hashing, which reads every file the spec names.

use crate::args::{OutputFormat, SpecArgs};
use crate::output;
use crate::setup::Setup;

pub fn run(setup: &Setup, args: &SpecArgs, format: OutputFormat) -> anyhow::Result<()> {
    let checked = setup.check_spec(args, None)?;
    match format {
        OutputFormat::Json => output::json_line(&serde_json::json!({
            "valid": true,
            "file": args.spec,
            "image": checked.resolved.name.to_string(),
            "spec": checked.loaded.spec,
        })),
        OutputFormat::Text => output::text_line(format!("{}: valid", args.spec.display())),
    }
    Ok(())
}
