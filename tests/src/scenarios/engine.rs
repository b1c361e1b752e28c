//! The engine's contract with a builder: no build when the image exists, a rebuild when forced,
//! and bad input refused before the builder is asked anything.

use anyhow::{Result, bail, ensure};
use imagespec_core::build::{Action, BuilderKind, EngineError, EngineOptions, Existence};
use imagespec_core::spec::SpecField;

use crate::backend::Backend;
use crate::case::Case;

/// A second `ensure` of an unchanged spec finds the image and builds nothing.
pub async fn exists_skips_build(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "exists_skips_build")?;
    let spec = case.spec("").with_env([("CONF_ID", case.id())]);
    let first = case.ensure(spec.clone()).await?;
    ensure!(
        first.action == Action::Built,
        "first ensure: {:?}",
        first.action
    );
    let second = case.ensure(spec).await?;
    ensure!(
        second.action == Action::Exists && second.existence == Some(Existence::Exists),
        "second ensure: {:?} ({:?})",
        second.action,
        second.existence
    );
    ensure!(
        second.image == first.image,
        "the name changed: {} then {}",
        first.image,
        second.image
    );
    let (builds, checks) = (case.recorder().builds().len(), case.recorder().checks());
    ensure!(
        builds == 1 && checks == 2,
        "expected 1 build and 2 existence checks, got {builds} and {checks}"
    );
    Ok(())
}

/// `force` (and a spec's `force_push`) rebuilds an existing image without asking whether it
/// exists.
pub async fn force_rebuilds(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "force_rebuilds")?;
    let spec = case.spec("").with_env([("CONF_ID", case.id())]);
    ensure!(
        case.ensure(spec.clone()).await?.action == Action::Built,
        "first ensure did not build"
    );
    let forced = EngineOptions {
        force: true,
        ..case.options()
    };
    let again = case.ensure_with(spec.clone(), &forced).await?;
    ensure!(
        again.action == Action::Built && again.existence.is_none(),
        "forced ensure: {:?}",
        again.action
    );
    let pushed = case.ensure(spec.force_push()).await?;
    ensure!(
        pushed.action == Action::Built,
        "ensure of a force_push spec: {:?}",
        pushed.action
    );
    let (builds, checks) = (case.recorder().builds().len(), case.recorder().checks());
    ensure!(
        builds == 3 && checks == 1,
        "expected 3 builds and 1 existence check, got {builds} and {checks}"
    );
    case.fetch(&pushed.image).await?;
    Ok(())
}

/// Several platforms, for a builder that builds one at a time, fail in planning: the engine
/// names the field and never calls the builder.
pub async fn unsupported_platforms(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "unsupported_platforms")?;
    let spec = case.spec("").with_platform("linux/amd64,linux/arm64");
    if case.capabilities().multi_platform {
        // Nothing to refuse; the engine must at least accept the spec without building.
        let loaded = case.load(spec)?;
        case.engine().plan(&loaded, &case.options())?;
    } else {
        match case.try_ensure(spec, &case.options()).await? {
            Err(EngineError::Unsupported {
                field: SpecField::Platform,
                ..
            }) => {}
            other => bail!("expected the platform to be refused, got {other:?}"),
        }
    }
    nothing_asked(&case)
}

/// A local build that pushes needs a `registry`: refused before any work.
pub async fn missing_registry(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "missing_registry")?;
    let mut spec = case.spec("");
    spec.registry = None;
    let options = EngineOptions {
        push: true,
        ..case.options()
    };
    if case.capabilities().kind == BuilderKind::Local {
        match case.try_ensure(spec, &options).await? {
            Err(EngineError::RegistryRequired { .. }) => {}
            other => bail!("expected RegistryRequired, got {other:?}"),
        }
    } else {
        // Builders with their own registry need none from the spec.
        let loaded = case.load(spec)?;
        case.engine().plan(&loaded, &options)?;
    }
    nothing_asked(&case)
}

fn nothing_asked(case: &Case<'_>) -> Result<()> {
    let (builds, checks) = (case.recorder().builds().len(), case.recorder().checks());
    ensure!(
        builds == 0 && checks == 0,
        "bad input reached the builder: {builds} builds, {checks} existence checks"
    );
    Ok(())
}
