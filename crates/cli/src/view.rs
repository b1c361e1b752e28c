//! What a text build view shows for each [`BuildEvent`]: the lines that stay (one per step),
//! the live status line of a terminal (the running step and its last output line, or the bytes
//! of a push), and the totals for the final summary. Pure: no terminal, no clock reads besides
//! the step timers, so it is tested directly.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use console::Style;
use imagespec_core::build::{BuildEvent, TransferDirection};
use indicatif::HumanBytes;

/// Where the view is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A live status line under the finished steps; logs only as the status line.
    Terminal,
    /// Plain lines, every log line kept (CI logs, pipes).
    Plain,
}

/// Whether to colour stderr: a terminal, and `NO_COLOR` unset or empty (<https://no-color.org>).
pub fn colour_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// How long an instruction may be in a step line before it is cut (a generated `RUN` is long,
/// Podman's identity `LABEL` is kilobytes of JSON).
const INSTRUCTION_WIDTH: usize = 72;

#[derive(Debug)]
struct Running {
    title: String,
    last_line: Option<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Layer {
    current: u64,
    total: Option<u64>,
}

/// The state of one build's text view.
#[derive(Debug)]
pub struct View {
    mode: Mode,
    dim: Style,
    cached_style: Style,
    done_style: Style,
    started: Instant,
    titles: BTreeMap<usize, String>,
    running: BTreeMap<usize, Running>,
    /// Steps in the order they started (the latest running one is shown).
    order: Vec<usize>,
    phase: Option<String>,
    steps: usize,
    cached: usize,
    pushes: BTreeMap<String, Layer>,
    pulls: BTreeMap<String, Layer>,
    /// Layers the push found in the registry already (`Layer already exists`, `Mounted from`).
    present: std::collections::BTreeSet<String>,
}

/// The totals of a build, for its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub steps: usize,
    pub cached: usize,
    /// Bytes of the layers the push uploaded (not those the registry had).
    pub pushed_bytes: u64,
    pub pushed_layers: usize,
    /// Layers the registry had already.
    pub present_layers: usize,
    /// Bytes of the layers the build pulled (base and helper images the engine lacked).
    pub pulled_bytes: u64,
    pub pulled_layers: usize,
    pub elapsed: Duration,
}

/// `#3 apt packages`, or the instruction itself (cut) when the step's purpose is unknown.
fn title(index: usize, name: &str, label: Option<&str>) -> String {
    match label {
        Some(label) => format!("#{index} {label}"),
        None => format!("#{index} {}", cut(name, INSTRUCTION_WIDTH)),
    }
}

/// The first line of `text`, at most `width` characters (an ellipsis marks a cut).
/// Runs of whitespace count as one space (engines keep a continuation line's indentation).
pub fn cut(text: &str, width: usize) -> String {
    let first_line = text.lines().next().unwrap_or("");
    let first = first_line.split_whitespace().collect::<Vec<_>>().join(" ");
    if first.chars().count() <= width && first_line.len() == text.trim_end().len() {
        return first;
    }
    let kept: String = first.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// `0.4s`, `12.3s`, `2m05s`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A layer status of a push (`3f2a9c1b: Pushed`): shown as bytes, not as a line.
fn is_layer_status(message: &str) -> bool {
    message
        .split_once(": ")
        .is_some_and(|(id, _)| id.len() >= 6 && id.chars().all(|c| c.is_ascii_hexdigit()))
}

impl View {
    pub fn new(mode: Mode, colour: bool) -> View {
        let style = |s: Style| s.force_styling(colour);
        View {
            mode,
            dim: style(Style::new().dim()),
            cached_style: style(Style::new().cyan()),
            done_style: style(Style::new().green()),
            started: Instant::now(),
            titles: BTreeMap::new(),
            running: BTreeMap::new(),
            order: Vec::new(),
            phase: None,
            steps: 0,
            cached: 0,
            pushes: BTreeMap::new(),
            pulls: BTreeMap::new(),
            present: std::collections::BTreeSet::new(),
        }
    }

    /// Takes one event; returns the lines to print for good.
    pub fn event(&mut self, event: &BuildEvent) -> Vec<String> {
        match event {
            BuildEvent::Step { index, name, label } => {
                let title = title(*index, name, label.as_deref());
                self.steps = self.steps.max(*index);
                self.titles.insert(*index, title.clone());
                self.running.insert(
                    *index,
                    Running {
                        title: title.clone(),
                        last_line: None,
                    },
                );
                self.order.retain(|i| i != index);
                self.order.push(*index);
                match (self.mode, label) {
                    (Mode::Terminal, _) => Vec::new(),
                    // The instruction too, cut: a CI log reader wants to see what ran.
                    (Mode::Plain, Some(_)) => vec![format!(
                        "{title}: {}",
                        self.dim.apply_to(cut(name, INSTRUCTION_WIDTH))
                    )],
                    (Mode::Plain, None) => vec![title],
                }
            }
            BuildEvent::StepDone {
                index,
                cached,
                duration_ms,
            } => {
                self.running.remove(index);
                self.order.retain(|i| i != index);
                if *cached {
                    self.cached += 1;
                }
                let outcome = if *cached {
                    self.cached_style.apply_to("CACHED".to_string())
                } else {
                    self.done_style
                        .apply_to(duration(Duration::from_millis(*duration_ms)))
                };
                match self.mode {
                    Mode::Terminal => {
                        let title = self
                            .titles
                            .get(index)
                            .cloned()
                            .unwrap_or_else(|| format!("#{index}"));
                        vec![format!("{title:<28} {outcome}")]
                    }
                    Mode::Plain if *cached => vec![format!("#{index} {outcome}")],
                    Mode::Plain => vec![format!("#{index} DONE {outcome}")],
                }
            }
            BuildEvent::Log { line } => {
                if let Some(step) = self.order.last().and_then(|i| self.running.get_mut(i)) {
                    step.last_line = Some(line.clone());
                }
                match self.mode {
                    Mode::Terminal => Vec::new(),
                    Mode::Plain => vec![format!("  | {line}")],
                }
            }
            BuildEvent::Status { message } => {
                if let Some((id, what)) = message.split_once(": ")
                    && is_layer_status(message)
                    && (what == "Layer already exists" || what.starts_with("Mounted from"))
                {
                    self.present.insert(id.to_string());
                }
                self.phase = Some(message.clone());
                match self.mode {
                    // Phases show on the status line; a push's per-layer chatter as its bytes.
                    Mode::Terminal => Vec::new(),
                    Mode::Plain if is_layer_status(message) => Vec::new(),
                    Mode::Plain => vec![message.clone()],
                }
            }
            BuildEvent::Transfer {
                direction,
                layer,
                current,
                total,
            } => {
                let layers = match direction {
                    TransferDirection::Push => &mut self.pushes,
                    TransferDirection::Pull => &mut self.pulls,
                };
                let entry = layers.entry(layer.clone()).or_default();
                entry.current = entry.current.max(*current);
                entry.total = total.or(entry.total);
                let complete = total.is_some_and(|t| *current >= t);
                match (self.mode, complete) {
                    (Mode::Plain, true) => {
                        let verb = match direction {
                            TransferDirection::Push => "pushed",
                            TransferDirection::Pull => "pulled",
                        };
                        let short: String = layer
                            .trim_start_matches("sha256:")
                            .chars()
                            .take(12)
                            .collect();
                        vec![format!("  {verb} layer {short} ({})", HumanBytes(*current))]
                    }
                    _ => Vec::new(),
                }
            }
        }
    }

    /// The live line of a terminal: (what is happening, its detail).
    pub fn status(&self) -> (String, String) {
        if let Some(step) = self.order.last().and_then(|i| self.running.get(i)) {
            let detail = match transfer_line("pulling", &self.pulls) {
                Some(bytes) => bytes,
                None => step.last_line.clone().unwrap_or_default(),
            };
            return (step.title.clone(), detail);
        }
        if let Some(bytes) = transfer_line("pushing", &self.pushes) {
            return (bytes, String::new());
        }
        // Cut: a status line longer than the terminal wraps and redraws badly.
        let phase = self.phase.as_deref().unwrap_or_default();
        (cut(phase, INSTRUCTION_WIDTH), String::new())
    }

    pub fn totals(&self) -> Totals {
        let pushed: Vec<&Layer> = self
            .pushes
            .values()
            .filter(|l| l.total.is_some_and(|t| l.current >= t))
            .collect();
        // A pull reports each layer's bytes as it downloads; what was reported is what came.
        let pulled: Vec<&Layer> = self.pulls.values().filter(|l| l.current > 0).collect();
        Totals {
            steps: self.steps,
            cached: self.cached,
            pushed_bytes: pushed.iter().map(|l| l.current).sum(),
            pushed_layers: pushed.len(),
            present_layers: self.present.len(),
            pulled_bytes: pulled.iter().map(|l| l.current).sum(),
            pulled_layers: pulled.len(),
            elapsed: self.started.elapsed(),
        }
    }
}

/// `pushing 12.3 MiB / 40.0 MiB (2 of 3 layers)` while some layer is not complete.
fn transfer_line(verb: &str, layers: &BTreeMap<String, Layer>) -> Option<String> {
    let complete = |l: &Layer| l.total.is_some_and(|t| l.current >= t);
    if layers.values().all(complete) {
        return None;
    }
    let current: u64 = layers.values().map(|l| l.current).sum();
    let total: u64 = layers.values().filter_map(|l| l.total).sum();
    let done = layers.values().filter(|l| complete(l)).count();
    Some(format!(
        "{verb} {} / {} ({done} of {} layers)",
        HumanBytes(current),
        HumanBytes(total),
        layers.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(index: usize, name: &str, label: Option<&str>) -> BuildEvent {
        BuildEvent::Step {
            index,
            name: name.into(),
            label: label.map(str::to_string),
        }
    }

    fn done(index: usize, cached: bool, duration_ms: u64) -> BuildEvent {
        BuildEvent::StepDone {
            index,
            cached,
            duration_ms,
        }
    }

    #[test]
    fn a_terminal_prints_one_line_per_finished_step_and_shows_the_running_one() {
        let mut v = View::new(Mode::Terminal, false);
        assert!(
            v.event(&step(1, "RUN apt-get update", Some("apt packages")))
                .is_empty()
        );
        assert!(
            v.event(&BuildEvent::Log {
                line: "Get:1 http://deb".into()
            })
            .is_empty()
        );
        assert_eq!(
            v.status(),
            (
                "#1 apt packages".to_string(),
                "Get:1 http://deb".to_string()
            )
        );
        assert_eq!(
            v.event(&done(1, true, 0)),
            [format!("{:<28} CACHED", "#1 apt packages")]
        );
        v.event(&step(2, "LABEL a=\"{\\\"x\\\"...\"\nmore", None));
        assert_eq!(
            v.event(&done(2, false, 2345)),
            [format!("{:<28} 2.3s", "#2 LABEL a=\"{\\\"x\\\"...\"…")]
        );
        let totals = v.totals();
        assert_eq!((totals.steps, totals.cached), (2, 1));
    }

    #[test]
    fn a_push_shows_bytes_and_counts_only_uploaded_layers() {
        let mut v = View::new(Mode::Terminal, false);
        let push = |layer: &str, current, total| BuildEvent::Transfer {
            direction: TransferDirection::Push,
            layer: layer.into(),
            current,
            total,
        };
        v.event(&push("aa", 512, Some(2048)));
        v.event(&push("bb", 1024, Some(1024)));
        assert_eq!(v.status().0, "pushing 1.50 KiB / 3.00 KiB (1 of 2 layers)");
        v.event(&push("aa", 2048, Some(2048)));
        let totals = v.totals();
        assert_eq!((totals.pushed_bytes, totals.pushed_layers), (3072, 2));
        assert!(
            v.event(&BuildEvent::Status {
                message: "3f2a9c1b: Layer already exists".into()
            })
            .is_empty()
        );
        assert_eq!(v.totals().present_layers, 1);
    }

    #[test]
    fn a_pull_shows_bytes_while_running_and_in_the_totals() {
        let mut v = View::new(Mode::Terminal, false);
        v.event(&step(1, "FROM base", Some("base image")));
        let pull = |layer: &str, current, total| BuildEvent::Transfer {
            direction: TransferDirection::Pull,
            layer: layer.into(),
            current,
            total,
        };
        v.event(&pull("sha256:aa", 1024, Some(4096)));
        assert_eq!(v.status().1, "pulling 1.00 KiB / 4.00 KiB (0 of 1 layers)");
        v.event(&pull("sha256:aa", 4096, Some(4096)));
        let totals = v.totals();
        assert_eq!((totals.pulled_bytes, totals.pulled_layers), (4096, 1));
    }

    #[test]
    fn plain_lines_keep_the_logs_and_say_cached_or_done() {
        let mut v = View::new(Mode::Plain, false);
        assert_eq!(
            v.event(&step(3, "COPY source/ ./", Some("source"))),
            ["#3 source: COPY source/ ./"]
        );
        assert_eq!(v.event(&BuildEvent::Log { line: "x".into() }), ["  | x"]);
        assert_eq!(v.event(&done(3, true, 0)), ["#3 CACHED"]);
        assert_eq!(v.event(&done(4, false, 61_000)), ["#4 DONE 1m01s"]);
    }

    #[test]
    fn no_colour_codes_without_colour() {
        let mut v = View::new(Mode::Terminal, false);
        v.event(&step(1, "RUN x", Some("command 1")));
        assert!(!v.event(&done(1, true, 0))[0].contains('\u{1b}'));
        let mut v = View::new(Mode::Terminal, true);
        v.event(&step(1, "RUN x", Some("command 1")));
        assert!(v.event(&done(1, true, 0))[0].contains('\u{1b}'));
    }
}
