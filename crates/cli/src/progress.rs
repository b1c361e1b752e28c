//! Showing build events: a live spinner on a terminal, plain lines otherwise, JSON lines with
//! `--output json`.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagespec_core::build::{BuildEvent, EventSink};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::OutputFormat;
use crate::output;

/// Creates the event sink for a build and, on a terminal, the spinner it drives.
pub fn sink(format: OutputFormat) -> (EventSink, Option<ProgressBar>) {
    match format {
        OutputFormat::Json => (EventSink::new(|e| output::json_line(&e)), None),
        OutputFormat::Text if std::io::stderr().is_terminal() => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {prefix} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            let shared = bar.clone();
            let sink = EventSink::new(move |e| match e {
                BuildEvent::Step { index, name } => {
                    shared.println(format!("#{index} {name}"));
                    shared.set_prefix(format!("#{index}"));
                    shared.set_message(String::new());
                }
                BuildEvent::Log { line } => shared.set_message(line),
                BuildEvent::Status { message } => shared.println(message),
            });
            (sink, Some(bar))
        }
        OutputFormat::Text => {
            let lock = Arc::new(Mutex::new(()));
            let sink = EventSink::new(move |e| {
                let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                let mut err = std::io::stderr().lock();
                let _ = match e {
                    BuildEvent::Step { index, name } => writeln!(err, "#{index} {name}"),
                    BuildEvent::Log { line } => writeln!(err, "  | {line}"),
                    BuildEvent::Status { message } => writeln!(err, "{message}"),
                };
            });
            (sink, None)
        }
    }
}
