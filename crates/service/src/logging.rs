//! The service's log lines: timestamped (UTC, RFC 3339), as text or one JSON object per line,
//! coloured only on a terminal and never with `NO_COLOR`. `imagespec serve` installs it; tests
//! build the same subscriber over a buffer to read the access log.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The target of the access log, one line per request (see [`crate::api`]).
pub const ACCESS_TARGET: &str = "imagespec_service::access";

/// `log_format` in the configuration, `--log-format` on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("`{other}`: the log format is `text` or `json`")),
        }
    }
}

/// The subscriber for `format`, writing to `writer`, filtered by `filter` (an `EnvFilter`
/// directive such as `info`). `ansi` only matters for text.
pub fn subscriber<W>(
    format: LogFormat,
    filter: &str,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::new(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(true);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        // Fields at the top level, so `jq .status` works on an access line.
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .finish(),
        ),
    }
}

/// Installs [`subscriber`] on stderr for the process: `RUST_LOG` overrides `default_filter`;
/// colour only when stderr is a terminal and `NO_COLOR` is unset. Does nothing if a
/// subscriber is already installed.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| default_filter.to_string());
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ =
        tracing::subscriber::set_global_default(subscriber(format, &filter, ansi, std::io::stderr));
}
