//! The `imagespec` command.

mod args;
mod commands;
mod exit;
mod output;
mod progress;
mod renamed;
mod setup;
mod view;

use std::process::ExitCode;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = renamed::parse();
    // `serve` logs as its configuration says (timestamps, `log_format`), once it has read it.
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging(cli.verbose, cli.quiet);
    }
    let format = cli.output;
    // `serve` reads its own configuration file (--config), not the user's; completions and the
    // man page come from the CLI definition alone.
    let result = match &cli.command {
        Command::Serve(a) => commands::serve::run(&cli, a),
        Command::Completions(a) => commands::completions::run(a),
        Command::Man(a) => commands::man::run(a),
        _ => setup::Setup::new(&cli).and_then(|setup| dispatch(&cli, &setup)),
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            let (code, kind) = exit::classify(&err);
            output::error(format, kind, code, &err);
            ExitCode::from(code)
        }
    }
}

fn dispatch(cli: &Cli, setup: &setup::Setup) -> anyhow::Result<()> {
    match &cli.command {
        Command::Validate(a) => commands::validate::run(setup, a, cli.output),
        Command::Tag(a) => commands::tag::run(setup, a, cli.output),
        Command::Builders(a) => commands::builders::run(setup, a, cli.output),
        Command::Dockerfile(a) => commands::plan::dockerfile(setup, a, cli.output),
        Command::Context(a) => commands::plan::context(setup, a, cli.output),
        Command::Serve(a) => commands::serve::run(cli, a),
        Command::Completions(a) => commands::completions::run(a),
        Command::Man(a) => commands::man::run(a),
        Command::Build(a) => {
            // Only `build` talks to engines and registries, so only it pays for a runtime.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(commands::build::run(setup, a, cli.output, cli.quiet))
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the `-v`/`--quiet` level. Colour only on a
/// terminal, never with `NO_COLOR`.
fn init_logging(verbose: u8, quiet: bool) {
    let default = match verbose {
        0 if quiet => "error",
        0 => "warn",
        1 => "info,imagespec=debug",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(view::colour_stderr())
        .without_time()
        .init();
}
