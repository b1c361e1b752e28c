//! `imagespec serve --config service.yaml`: run the build service that the `union` (remote)
//! builder talks to, until Ctrl-C or SIGTERM; then stop gracefully (running builds are
//! recorded as failed, log streams get their final event). `--gc-once` collects garbage once
//! instead and exits.

use anyhow::Context as _;
use imagespec_service::{Service, ServiceConfig};

use crate::args::{Cli, OutputFormat, ServeArgs};
use crate::output;

pub fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    let path = cli
        .config
        .as_deref()
        .context("`imagespec serve` needs the service configuration: --config service.yaml")?;
    // A bad configuration exits with code 3, naming the file (and line, where the YAML
    // parser knows it); it is not called an invalid image spec (`exit::classify`).
    let config = ServiceConfig::load(path)?;
    if args.check_config {
        // Before an upgrade or a restart (`ExecStartPre=`): what start would refuse, without
        // taking the data directory's lock from a running service.
        output::text_line(format!(
            "{}: ok ({} worker(s), {} token(s), data_dir {})",
            path.display(),
            config.workers.len(),
            config.tokens.len(),
            config.data_dir.display()
        ));
        return Ok(());
    }
    // Info by default: the access log and build outcomes are what an operator reads.
    let level = match cli.verbose {
        0 if cli.quiet => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    imagespec_service::logging::init(args.log_format.unwrap_or(config.log_format), level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.gc_once {
        return gc_once(cli, &config, &runtime);
    }
    runtime.block_on(async {
        let service = Service::new(config).start().await?;
        match cli.output {
            OutputFormat::Json => {
                output::json_line(&serde_json::json!({"event": "listening", "url": service.url()}))
            }
            OutputFormat::Text => output::text_line(format!(
                "imagespec build service listening on {}",
                service.url()
            )),
        }
        stop_signal().await;
        eprintln!("stopping: running builds are recorded as failed");
        service.shutdown().await;
        Ok(())
    })
}

/// `--gc-once`: one collection of the data directory, reported on stdout.
fn gc_once(
    cli: &Cli,
    config: &ServiceConfig,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let report = runtime.block_on(imagespec_service::gc::run_once(config))?;
    match cli.output {
        OutputFormat::Json => {
            output::json_line(&serde_json::json!({"event": "gc", "removed": report}))
        }
        OutputFormat::Text => output::text_line(format!(
            "removed {} finished build(s), the logs of {} more ({} bytes), {} blob(s) ({} bytes)",
            report.builds, report.logs, report.log_bytes, report.blobs, report.blob_bytes
        )),
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
