//! `imagespec build SPEC`: build and push unless the image exists.

use imagespec_core::build::{
    Action, BuilderKind, Engine, EngineError, EngineOptions, Existence, ExistencePolicy, Outcome,
    Planned,
};
use imagespec_core::hash::TagScheme;
use imagespec_core::spec::SpecField;
use tokio_util::sync::CancellationToken;

use crate::args::{BuildArgs, OutputFormat, TagSchemeArg};
use crate::output;
use crate::progress;
use crate::setup::Setup;
use crate::view::{self, Totals};

pub async fn run(
    setup: &Setup,
    args: &BuildArgs,
    format: OutputFormat,
    quiet: bool,
) -> anyhow::Result<()> {
    // The same checks as `validate`, before any engine or registry is contacted; the name they
    // computed is the one built (the engine does not hash the files again).
    // An explicit `--tag` replaces the naming scheme: the files are checked (and the hash inputs
    // labelled) as always, and the image is named `[registry/]name:TAG`.
    let scheme = match &args.tag {
        Some(_) => Some(TagSchemeArg::Imagespec),
        None => args.tag_scheme,
    };
    let mut checked = setup.check_spec_named_for(
        &args.spec,
        args.registry.as_deref(),
        scheme,
        args.variant.variant,
    )?;
    if let Some(tag) = &args.tag {
        checked.resolved.name.tag = tag.clone();
    }
    if format == OutputFormat::Json {
        // Already on stderr (tracing); JSON readers get them as events too.
        for warning in &checked.warnings {
            output::json_line(&serde_json::json!({ "event": "warning", "warning": warning }));
        }
    }
    let (variant, _) = setup.variant(args.variant.variant)?;
    let policy = match args.if_unknown {
        Some(p) => ExistencePolicy::from(p),
        None => setup.config.if_unknown.unwrap_or(ExistencePolicy::Fail),
    };
    let cancel = CancellationToken::new();
    let progress = progress::Progress::new(format, quiet);
    let events = progress.events.clone();
    let mut options = EngineOptions {
        variant,
        builder: args.builder.clone(),
        policy,
        force: args.force,
        push: !args.no_push,
        events,
        cancel: cancel.clone(),
        ..EngineOptions::default()
    };
    options.apply_env(|k| std::env::var(k).ok());
    let cache = args.cache();
    let engine = Engine::new(setup.builders_with_cache(args.engine.as_deref(), &cache));

    // Ctrl-C cancels the build; the builder stops and removes its temporary files.
    let on_interrupt = cancel.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let scheme = setup.tag_scheme(args.tag_scheme);
    let result = match engine.plan_resolved(&checked.loaded, &checked.resolved, &options) {
        Ok(planned)
            if (scheme == TagScheme::Flytekit || args.tag.is_some()) && uses_remote(&planned) =>
        {
            watcher.abort();
            // The build service names images itself, by imagespec's scheme: it would push under
            // another name than the one asked for.
            return Err(EngineError::Unsupported {
                builder: planned.builder.name().to_string(),
                field: SpecField::Name,
                reason: "the build service names images by imagespec's scheme, so it cannot push under flytekit's name (--tag-scheme flytekit) or a given --tag; build locally (`--builder default`) or use the imagespec scheme".into(),
            }
            .into());
        }
        Ok(planned) if !cache.is_empty() && uses_remote(&planned) => {
            watcher.abort();
            // The service builds on its own engine and network, with its own cache settings:
            // the spec's `builder_options` travel with the spec, flags do not.
            return Err(EngineError::Unsupported {
                builder: planned.builder.name().to_string(),
                field: SpecField::BuilderOptions,
                reason: "--cache-from / --cache-to (IMAGESPEC_CACHE_FROM / IMAGESPEC_CACHE_TO) configure a local engine's build; the build service is given the spec only: put `cache_from` / `cache_to` in the spec's `builder_options`, or build locally (`--builder default`)".into(),
            }
            .into());
        }
        Ok(planned) => {
            engine
                .ensure_planned(&planned, &options, args.dry_run)
                .await
        }
        Err(e) => Err(e),
    };
    watcher.abort();
    let totals = progress.finish();
    let outcome = result?;
    report(&outcome, format, totals.filter(|_| !quiet));
    Ok(())
}

fn report(outcome: &Outcome, format: OutputFormat, totals: Option<Totals>) {
    match format {
        OutputFormat::Json => {
            output::json_line(&serde_json::json!({ "event": "result", "outcome": outcome }))
        }
        OutputFormat::Text => {
            if let Some(totals) = totals {
                if let Some(base) = &outcome.base {
                    eprintln!("base: {}", describe(base));
                }
                eprintln!(
                    "{} in {}",
                    describe(outcome),
                    view::duration(totals.elapsed)
                );
                for line in summary(outcome, &totals) {
                    eprintln!("  {line}");
                }
            }
            // The image name alone on stdout, for scripts: IMAGE=$(imagespec build spec.yaml)
            output::text_line(&outcome.image);
        }
    }
}

/// The lines under the outcome: digest, pushed and pulled bytes, steps.
fn summary(outcome: &Outcome, totals: &Totals) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(digest) = outcome.output.as_ref().and_then(|o| o.digest.as_deref()) {
        lines.push(format!("digest: {digest}"));
    }
    if outcome.output.as_ref().is_some_and(|o| o.pushed) {
        lines.push(match (totals.pushed_layers, totals.present_layers) {
            (0, 0) => "pushed (the engine reported no layer sizes)".to_string(),
            (0, had) => format!("pushed: no new layers (the registry had all {had})"),
            (n, _) => format!(
                "pushed: {} in {n} layer{}",
                indicatif::HumanBytes(totals.pushed_bytes),
                if n == 1 { "" } else { "s" }
            ),
        });
    }
    if totals.pulled_layers > 0 {
        lines.push(format!(
            "pulled: {} in {} layer{}",
            indicatif::HumanBytes(totals.pulled_bytes),
            totals.pulled_layers,
            if totals.pulled_layers == 1 { "" } else { "s" }
        ));
    }
    if totals.steps > 0 {
        lines.push(format!("steps: {}, {} cached", totals.steps, totals.cached));
    }
    lines
}

fn describe(o: &Outcome) -> String {
    let what = match o.action {
        Action::Built => "built".to_string(),
        Action::Exists => "exists, nothing to build".to_string(),
        Action::AssumedExists => {
            "assumed to exist (existence unknown, policy `assume`)".to_string()
        }
        Action::Passthrough => "used as is (noop builder)".to_string(),
        // Why it would be built: the engine makes no existence check when the build is forced,
        // and builds an image of unknown existence only under the `build` policy.
        Action::WouldBuild => match &o.existence {
            None => "forced: would build (dry run; existence not checked)".to_string(),
            Some(Existence::Unknown { reason }) => {
                format!("unknown: {reason}: would build (dry run, policy `build`)")
            }
            Some(_) => "missing: would build (dry run)".to_string(),
        },
    };
    format!("{} [{}] {what}", o.image, o.builder)
}

/// Whether the spec or a base spec is built by the build service.
fn uses_remote(planned: &Planned) -> bool {
    planned.builder.capabilities().kind == BuilderKind::Remote
        || planned.base.as_deref().is_some_and(uses_remote)
}
