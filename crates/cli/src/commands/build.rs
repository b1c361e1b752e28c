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

pub async fn run(setup: &Setup, args: &BuildArgs, format: OutputFormat) -> anyhow::Result<()> {
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
        args.variant.variant.as_deref(),
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
    let (variant, _) = setup.variant(args.variant.variant.as_deref())?;
    let policy = match &args.if_unknown {
        Some(p) => p.parse().map_err(anyhow::Error::msg)?,
        None => setup.config.if_unknown.unwrap_or(ExistencePolicy::Fail),
    };
    let cancel = CancellationToken::new();
    let (events, bar) = progress::sink(format);
    let mut options = EngineOptions {
        variant,
        builder: args.builder.clone(),
        policy,
        force: args.force,
        push: !args.no_push,
        events,
        cancel: cancel.clone(),
        fast_fail: false,
    };
    options.apply_env(|k| std::env::var(k).ok());
    let engine = Engine::new(setup.builders(args.engine.as_deref()));

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
        Ok(planned) => {
            engine
                .ensure_planned(&planned, &options, args.dry_run)
                .await
        }
        Err(e) => Err(e),
    };
    watcher.abort();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let outcome = result?;
    report(&outcome, format);
    Ok(())
}

fn report(outcome: &Outcome, format: OutputFormat) {
    match format {
        OutputFormat::Json => {
            output::json_line(&serde_json::json!({ "event": "result", "outcome": outcome }))
        }
        OutputFormat::Text => {
            if let Some(base) = &outcome.base {
                eprintln!("base: {}", describe(base));
            }
            eprintln!("{}", describe(outcome));
            // The image name alone on stdout, for scripts: IMAGE=$(imagespec build spec.yaml)
            output::text_line(&outcome.image);
        }
    }
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
