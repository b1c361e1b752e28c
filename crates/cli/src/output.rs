//! Printing results and errors as text or JSON.

use std::io::Write;

use imagespec_core::build::EngineError;
use imagespec_core::check::{hash_problem, plan_problem};
use imagespec_core::spec::{Diagnostic, SpecError};
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
            let diagnostics = diagnostics(err);
            json_line(&serde_json::json!({
                "event": "error",
                "error": {
                    "kind": kind,
                    "exit_code": code,
                    "message": message(err),
                    "diagnostics": diagnostics,
                }
            }));
        }
        OutputFormat::Text => {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "error: {}", message(err));
        }
    }
}

/// The diagnostics of a spec problem: a `SpecError`'s, or, for a planning or hashing refusal
/// that came back from the engine (the checks every command runs passed, the builder refused),
/// one naming the field (`base_image.` before a base spec's).
fn diagnostics(err: &anyhow::Error) -> Option<Vec<Diagnostic>> {
    if let Some(e) = err.downcast_ref::<SpecError>() {
        return Some(e.diagnostics.clone());
    }
    let mut engine = err.chain().find_map(|c| c.downcast_ref::<EngineError>())?;
    let mut prefix = String::new();
    let mut d = loop {
        match engine {
            EngineError::Base { source, .. } => {
                prefix.push_str("base_image.");
                engine = source;
            }
            EngineError::Plan { source, .. } => break plan_problem(source),
            EngineError::Hash(source) => break hash_problem(source),
            _ => return None,
        }
    };
    d.field = format!("{prefix}{}", d.field)
        .trim_end_matches('.')
        .to_string();
    Some(vec![d])
}

/// The error and its causes on one line, `outer: cause: root`. Many library errors already
/// print their cause in their own message (so `{}` alone is useful to a library user); such a
/// cause is not repeated.
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prints its cause in its own message, as many library errors do.
    #[derive(Debug)]
    struct Outer {
        source: std::io::Error,
    }

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot hash `src`: {}", self.source)
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_planning_refusal_from_the_engine_has_diagnostics_naming_the_field() {
        use imagespec_core::plan::PlanError;
        let plan = EngineError::Plan {
            builder: "docker".into(),
            source: std::sync::Arc::new(PlanError::UnknownCuda {
                version: "9.9".into(),
                valid: "12.4".into(),
            }),
        };
        let err = anyhow::Error::new(EngineError::Base {
            name: "base".into(),
            source: Box::new(plan),
        });
        let d = diagnostics(&err).expect("diagnostics");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "base_image.cuda");
        assert!(d[0].message.contains("9.9"), "{}", d[0].message);
        let other = anyhow::Error::new(std::io::Error::other("disk on fire"));
        assert_eq!(diagnostics(&other), None);
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let err = anyhow::Error::new(Outer {
            source: std::io::Error::other("disk on fire"),
        });
        assert_eq!(message(&err), "cannot hash `src`: disk on fire");
        let wrapped = err.context("tag failed");
        assert_eq!(
            message(&wrapped),
            "tag failed: cannot hash `src`: disk on fire"
        );
    }
}
