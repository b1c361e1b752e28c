//! Flags that were renamed: the old spelling is a usage error that names the new one, instead of
//! clap's "unexpected argument". The old flags are not declared (not even hidden), so `--help`,
//! completions and the man page never offer them.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};

use crate::args::{Cli, Command};

/// [`Cli::parse`], with the renamed spellings explained.
pub fn parse() -> Cli {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(err) => {
            let explained = (err.kind() == ErrorKind::UnknownArgument)
                .then(|| match err.get(ContextKind::InvalidArg) {
                    Some(ContextValue::String(arg)) => context_out(&argv, arg),
                    _ => None,
                })
                .flatten();
            match explained {
                Some(message) => usage_error("context", message).exit(),
                None => err.exit(),
            }
        }
    }
}

/// `context -o FILE` / `--output-file FILE` (renamed `--out`: `-o` read like the global
/// `--output` format): the message, with the file the user gave. Only when the command line
/// with `--out` in its place is a `context` command (not, say, `tag context -o x`).
fn context_out(argv: &[OsString], invalid: &str) -> Option<String> {
    if invalid != "-o" && invalid != "--output-file" {
        return None;
    }
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let at = words.iter().position(|w| w.starts_with(invalid))?;
    let word = &words[at];
    let inline = if word == invalid {
        None
    } else if invalid == "-o" {
        Some(word[2..].trim_start_matches('='))
    } else {
        Some(word.split_once('=')?.1)
    };
    let (file, taken) = match inline {
        Some(file) => (Some(file.to_string()), 1),
        None => (words.get(at + 1).cloned(), 2),
    };
    let file = file.unwrap_or_else(|| "FILE".to_string());
    let mut corrected = words.clone();
    corrected.splice(
        at..(at + taken).min(words.len()),
        ["--out".to_string(), file.clone()],
    );
    match Cli::try_parse_from(&corrected) {
        Ok(Cli {
            command: Command::Context(_),
            ..
        }) => Some(format!(
            "`{invalid}` was renamed `--out` (so it is not read as the global `--output` \
             format): write `--out {file}`"
        )),
        _ => None,
    }
}

/// A usage error of a subcommand, as clap prints its own (exit 2, the subcommand's usage line).
fn usage_error(subcommand: &str, message: String) -> clap::Error {
    let mut command = Cli::command();
    command.build();
    let kind = ErrorKind::ArgumentConflict;
    match command.find_subcommand_mut(subcommand) {
        Some(sub) => sub.error(kind, message),
        None => Cli::command().error(kind, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_old_spelling_names_the_file_given() {
        for words in [
            &["imagespec", "context", "s.yaml", "-o", "c.tar"][..],
            &["imagespec", "context", "s.yaml", "-oc.tar"],
            &["imagespec", "context", "s.yaml", "-o=c.tar"],
            &["imagespec", "context", "-o", "c.tar", "s.yaml"],
        ] {
            let message = context_out(&argv(words), "-o");
            assert!(
                message
                    .as_deref()
                    .is_some_and(|m| m.ends_with("write `--out c.tar`")),
                "{words:?}: {message:?}"
            );
        }
        for words in [
            &["imagespec", "context", "s.yaml", "--output-file", "c.tar"][..],
            &["imagespec", "context", "s.yaml", "--output-file=c.tar"],
        ] {
            let message = context_out(&argv(words), "--output-file");
            assert!(
                message
                    .as_deref()
                    .is_some_and(|m| m.ends_with("write `--out c.tar`")),
                "{words:?}: {message:?}"
            );
        }
    }

    #[test]
    fn other_commands_and_flags_keep_clap_s_error() {
        assert_eq!(
            context_out(&argv(&["imagespec", "tag", "s.yaml", "-o", "x"]), "-o"),
            None
        );
        // A spec file named `context` is not the command.
        assert_eq!(
            context_out(&argv(&["imagespec", "tag", "context", "-o", "x"]), "-o"),
            None
        );
        assert_eq!(
            context_out(
                &argv(&["imagespec", "context", "s.yaml", "--bogus"]),
                "--bogus"
            ),
            None
        );
    }
}
