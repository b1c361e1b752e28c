//! `imagespec completions SHELL`: a completion script generated from the CLI definition, so it
//! knows every command, flag and closed set of values the parser does.

use std::io::Write as _;

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    // Into memory first: the generator panics on a write error (`| head` closing the pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    let _ = std::io::stdout().lock().write_all(&script);
    Ok(())
}
