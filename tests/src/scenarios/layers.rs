//! Editing one source file rebuilds only the source layer: the spec orders layers from the
//! least to the most often changed, so an engine with a working cache reuses every step below
//! the source files. The identity (LABEL/ENV) is metadata, not a layer. The spec has no
//! `commands`: they run after the source files (as in flytekit), so an edit reruns them too.
//!
//! Two witnesses: the engine's cache report (every step before the source files served from
//! the cache, the source step not), and the layer digests of the two images.

use anyhow::{Result, ensure};
use imagespec_core::build::step_reports;

use super::expect_output;
use crate::backend::Backend;
use crate::case::Case;
use crate::runner::Cli;

/// The plan's source step, `COPY --chown=<uid> source/ ./`.
fn is_source_step(step: &str) -> bool {
    step.starts_with("COPY") && step.contains(" source/ ")
}

pub async fn source_edit_rebuilds_only_source_layer(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "source_edit_rebuilds_only_source_layer")?;
    case.write(
        "src/app/main.py",
        "from app import util\nprint(util.VALUE)\n",
    )?;
    case.write("src/app/__init__.py", "")?;
    case.write("src/app/util.py", "VALUE = 'before'\n")?;
    let spec = case
        .spec("")
        .with_packages(["six==1.17.0"])
        .with_env([("CONF_ID", case.id())])
        .with_source_root("src");
    let first = case.build(spec.clone()).await?;
    case.write("src/app/util.py", "VALUE = 'after'\n")?;
    case.take_events();
    let second = case.build(spec).await?;
    let steps = step_reports(&case.take_events());
    ensure!(
        first != second,
        "the edit did not change the image name ({first})"
    );

    let out = case
        .runner()
        .exec(&second, "python", &["-m", "app.main"])
        .await?;
    expect_output("the edited source", &out, "after")?;

    // The cache report: FROM has nothing to cache; every other step up to the source files
    // must be a cache hit, the source step must run.
    let source = steps
        .iter()
        .position(|s| is_source_step(&s.name))
        .ok_or_else(|| anyhow::anyhow!("the second build reported no source step: {steps:?}"))?;
    let rebuilt: Vec<&str> = steps[..source]
        .iter()
        .filter(|s| !s.cached && !s.name.starts_with("FROM"))
        .map(|s| s.name.as_str())
        .collect();
    ensure!(
        rebuilt.is_empty(),
        "steps below the source files ran again instead of coming from the cache: {rebuilt:?}"
    );
    ensure!(
        !steps[source].cached,
        "the engine reported the edited source step as cached: {steps:?}"
    );

    let before = case.runner().layers(&first).await?;
    let after = case.runner().layers(&second).await?;
    ensure!(
        before.len() == after.len(),
        "the layer count changed from {} to {}:\n  {before:?}\n  {after:?}",
        before.len(),
        after.len()
    );
    ensure!(
        before.last() != after.last(),
        "the source layer did not change: {before:?}"
    );
    // BuildKit keys its cache by content, so a cache hit is the very same layer. Buildah may
    // answer a cache lookup with an equivalent layer that a concurrent build of the same steps
    // committed (other scenarios share the first steps), so on Podman the cache report above
    // is the witness and equal digests are not required.
    if case.runner().cli() == Cli::Docker {
        let differing: Vec<usize> = (0..before.len())
            .filter(|&i| before[i] != after[i])
            .collect();
        ensure!(
            differing == [before.len() - 1],
            "expected only the last layer (the source files) to differ, but layers {differing:?} of {} differ:\n  {before:?}\n  {after:?}",
            before.len()
        );
    }
    Ok(())
}
