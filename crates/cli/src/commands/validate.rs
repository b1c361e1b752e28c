//! `imagespec validate SPEC`.

use crate::args::{OutputFormat, SpecArgs};
use crate::output;
use crate::setup::Setup;

pub fn run(setup: &Setup, args: &SpecArgs, format: OutputFormat) -> anyhow::Result<()> {
    let loaded = setup.load_spec(&args.spec, None)?;
    match format {
        OutputFormat::Json => output::json_line(&serde_json::json!({
            "valid": true,
            "file": args.spec,
            "spec": loaded.spec,
        })),
        OutputFormat::Text => output::text_line(format!("{}: valid", args.spec.display())),
    }
    Ok(())
}
