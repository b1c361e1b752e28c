//! `imagespec builders`: the registered builders, the variant's default, whether the variant
//! allows local builds, and whether each builder is set up (its engine answers, the build
//! service is configured).

use imagespec_core::build::BuilderKind;

use crate::args::{OutputFormat, VariantArgs};
use crate::output;
use crate::setup::Setup;

pub fn run(setup: &Setup, args: &VariantArgs, format: OutputFormat) -> anyhow::Result<()> {
    let (variant, source) = setup.variant(args.variant)?;
    let registry = setup.builders(None);
    let default = registry.get(variant.default_builder())?.name().to_string();
    let list = registry.list();
    let local_allowed = variant.allows_local_builds();
    // Every builder is asked at once: an engine that does not answer costs its timeout once.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let readiness: Vec<Result<String, String>> = runtime.block_on(async {
        let checks = list.iter().map(|b| {
            let builder = registry.get(&b.name);
            async move {
                match builder {
                    Ok(builder) => builder.readiness().await,
                    Err(e) => Err(e.to_string()),
                }
            }
        });
        futures::future::join_all(checks).await
    });
    match format {
        OutputFormat::Json => {
            let builders: Vec<serde_json::Value> = list
                .iter()
                .zip(&readiness)
                .map(|(b, ready)| {
                    let mut v = serde_json::to_value(b).unwrap_or_default();
                    v["allowed"] = (local_allowed || b.kind != BuilderKind::Local).into();
                    v["ready"] = ready.is_ok().into();
                    v["readiness"] = match ready {
                        Ok(s) | Err(s) => s.clone().into(),
                    };
                    v
                })
                .collect();
            output::json_line(&serde_json::json!({
                "variant": variant,
                "variant_source": source,
                "default_builder": default,
                "local_builds_allowed": local_allowed,
                "builders": builders,
            }))
        }
        OutputFormat::Text => {
            output::text_line(format!("variant: {variant} (from {source:?})").to_lowercase());
            if !local_allowed {
                output::text_line(format!(
                    "local builds are refused under the {variant} variant: use `union`"
                ));
            }
            for (b, ready) in list.iter().zip(&readiness) {
                let marker = if b.name == default { "*" } else { " " };
                let aliases = if b.aliases.is_empty() {
                    String::new()
                } else {
                    format!(" (alias: {})", b.aliases.join(", "))
                };
                let state = match ready {
                    _ if !local_allowed && b.kind == BuilderKind::Local => {
                        format!("refused by the {variant} variant")
                    }
                    Ok(found) => format!("ready: {found}"),
                    Err(why) => format!("not set up: {why}"),
                };
                output::text_line(format!(
                    "{marker} {:<8} {}{aliases}\n           {state}",
                    b.name, b.description
                ));
            }
            output::text_line("* = default for this variant");
        }
    }
    Ok(())
}
