//! `imagespec man`: the man page generated from the CLI definition (clap_mangen), so it says
//! what `--help` says.

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory;

use crate::args::{Cli, ManArgs};
use crate::output;

pub fn run(args: &ManArgs) -> anyhow::Result<()> {
    // Each command's page carries the release, as the top page does.
    let command = Cli::command().propagate_version(true);
    match &args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("cannot render the man page")?;
            let _ = std::io::stdout().lock().write_all(&page);
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write the man pages in {}", dir.display()))?;
            output::text_line(format!("wrote the man pages in {}", dir.display()));
        }
    }
    Ok(())
}
