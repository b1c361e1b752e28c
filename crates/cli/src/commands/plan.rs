//! `imagespec dockerfile SPEC` and `imagespec context SPEC -o FILE`.

use std::io::Write;

use anyhow::Context as _;
use imagespec_core::check::{Checked, plan_diagnostic};
use imagespec_core::plan::BuildPlan;
use imagespec_core::spec::SpecError;

use crate::args::{ContextArgs, OutputFormat, PlanArgs};
use crate::output;
use crate::setup::Setup;

fn plan(setup: &Setup, args: &PlanArgs) -> anyhow::Result<BuildPlan> {
    let Checked {
        loaded, resolved, ..
    } = setup.check_spec(&args.spec, args.registry.as_deref())?;
    let base = resolved.base.as_ref().map(|b| b.name.to_string());
    // What still fails here (a file changed since it was hashed) is located like the checks'.
    BuildPlan::new(&loaded, &resolved, base.as_deref()).map_err(|e| {
        anyhow::Error::new(SpecError {
            diagnostics: vec![plan_diagnostic(&loaded, "", &e)],
        })
    })
}

pub fn dockerfile(setup: &Setup, args: &PlanArgs, format: OutputFormat) -> anyhow::Result<()> {
    let plan = plan(setup, args)?;
    match format {
        OutputFormat::Json => {
            output::json_line(&serde_json::json!({ "dockerfile": plan.dockerfile() }))
        }
        OutputFormat::Text => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(plan.dockerfile().as_bytes());
        }
    }
    Ok(())
}

pub fn context(setup: &Setup, args: &ContextArgs, format: OutputFormat) -> anyhow::Result<()> {
    let out = &args.out;
    let plan = plan(setup, &args.plan)?;
    let summary = if out.as_os_str() == "-" {
        plan.write_context(std::io::stdout().lock())?
    } else {
        // Write next to the target and rename, so a failure never leaves half a tar behind.
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        let summary = plan.write_context(&mut tmp)?;
        tmp.persist(out)
            .with_context(|| format!("cannot write {}", out.display()))?;
        summary
    };
    if out.as_os_str() != "-" {
        match format {
            OutputFormat::Json => {
                output::json_line(&serde_json::json!({ "context": out, "summary": summary }))
            }
            OutputFormat::Text => output::text_line(format!("wrote {}", out.display())),
        }
    }
    Ok(())
}
