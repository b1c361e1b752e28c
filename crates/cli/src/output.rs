//! Printing results and errors as text or JSON.

use std::io::Write;

use serde::Serialize;

use crate::args::OutputFormat;

/// Prints a JSON value on one line of standard output.
pub fn json_line(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not an error worth a panic.
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
}

/// Prints a line of text on standard output.
pub fn text_line(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// Reports an error: JSON on stdout (so a program reads one stream) or text on stderr.
pub fn error(format: OutputFormat, kind: &str, code: u8, err: &anyhow::Error) {
    match format {
        OutputFormat::Json => {
            let diagnostics = err
                .downcast_ref::<imagespec_core::spec::SpecError>()
                .map(|e| e.diagnostics.clone());
            json_line(&serde_json::json!({
                "event": "error",
                "error": {
                    "kind": kind,
                    "exit_code": code,
                    "message": format!("{err:#}"),
                    "diagnostics": diagnostics,
                }
            }));
        }
        OutputFormat::Text => {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "error: {err:#}");
        }
    }
}
