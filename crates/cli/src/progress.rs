//! Showing build events: on a terminal one line per finished step under a live status line,
//! plain lines otherwise, JSON lines (each with its time) with `--output json`, nothing with
//! `--quiet`. What the text views show is decided in [`crate::view`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagespec_core::build::{BuildEvent, EventSink};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::args::OutputFormat;
use crate::output;
use crate::view::{Mode, Totals, View};

/// A build's view: the sink the engine emits into, and what is left to do when it ends.
pub struct Progress {
    pub events: EventSink,
    bar: Option<ProgressBar>,
    view: Option<Arc<Mutex<View>>>,
}

/// A JSON event with the time it was shown (RFC 3339, UTC).
#[derive(Serialize)]
struct Timed<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a BuildEvent,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Progress {
    /// The view for `format`; `quiet` shows nothing (errors are still reported).
    pub fn new(format: OutputFormat, quiet: bool) -> Progress {
        use std::io::IsTerminal;
        if quiet {
            return Progress {
                events: EventSink::discard(),
                bar: None,
                view: None,
            };
        }
        if format == OutputFormat::Json {
            return Progress {
                events: EventSink::new(|e| {
                    output::json_line(&Timed {
                        time: now_rfc3339(),
                        event: &e,
                    })
                }),
                bar: None,
                view: None,
            };
        }
        let colour = crate::view::colour_stderr();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {prefix} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            let view = Arc::new(Mutex::new(View::new(Mode::Terminal, colour)));
            let (shared, state) = (bar.clone(), view.clone());
            let events = EventSink::new(move |e| {
                let mut view = state.lock().unwrap_or_else(|p| p.into_inner());
                for line in view.event(&e) {
                    shared.println(line);
                }
                let (prefix, message) = view.status();
                shared.set_prefix(prefix);
                shared.set_message(message);
            });
            return Progress {
                events,
                bar: Some(bar),
                view: Some(view),
            };
        }
        let view = Arc::new(Mutex::new(View::new(Mode::Plain, colour)));
        let state = view.clone();
        let events = EventSink::new(move |e| {
            use std::io::Write;
            let mut view = state.lock().unwrap_or_else(|p| p.into_inner());
            let mut err = std::io::stderr().lock();
            for line in view.event(&e) {
                let _ = writeln!(err, "{line}");
            }
        });
        Progress {
            events,
            bar: None,
            view: Some(view),
        }
    }

    /// Clears the live line; the build's totals when a text view counted them.
    pub fn finish(self) -> Option<Totals> {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        let view = self.view?;
        let view = view.lock().unwrap_or_else(|p| p.into_inner());
        Some(view.totals())
    }
}
