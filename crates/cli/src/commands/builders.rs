//! `imagespec builders`: the registered builders and the variant's default.

use crate::args::{OutputFormat, VariantArgs};
use crate::output;
use crate::setup::Setup;

pub fn run(setup: &Setup, args: &VariantArgs, format: OutputFormat) -> anyhow::Result<()> {
    let (variant, source) = setup.variant(args.variant.as_deref())?;
    let registry = setup.builders(None);
    let default = registry.get(variant.default_builder())?.name().to_string();
    let list = registry.list();
    match format {
        OutputFormat::Json => output::json_line(&serde_json::json!({
            "variant": variant,
            "variant_source": source,
            "default_builder": default,
            "local_builds_allowed": variant.allows_local_builds(),
            "builders": list,
        })),
        OutputFormat::Text => {
            output::text_line(format!("variant: {variant} (from {source:?})").to_lowercase());
            for b in list {
                let marker = if b.name == default { "*" } else { " " };
                let aliases = if b.aliases.is_empty() {
                    String::new()
                } else {
                    format!(" (alias: {})", b.aliases.join(", "))
                };
                output::text_line(format!("{marker} {:<8} {}{aliases}", b.name, b.description));
            }
            output::text_line("* = default for this variant");
        }
    }
    Ok(())
}
