//! A spec-valued `base_image`: the base is built first, the child is built FROM it, and the
//! base's packages are still there in the child.

use anyhow::{Context, Result, ensure};

use super::expect_output;
use crate::backend::Backend;
use crate::case::Case;

pub async fn base_spec(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "base_spec")?;
    let base = case.spec("base").with_packages(["six==1.17.0"]);
    let child = case
        .spec("child")
        .with_base_spec(base)
        .with_packages(["idna==3.10"]);
    let outcome = case.ensure(child).await?;
    let base = outcome.base.as_deref().context("the outcome has no base")?;
    // What the builds returned (a build service qualifies names with its own registry).
    let built = case.recorder().outputs();
    ensure!(
        built.len() == 2 && built[0] == base.image && built[1] == outcome.image,
        "expected the base, then the child, to be built; the builds returned {built:?}"
    );
    case.fetch(&outcome.image).await?;
    let out = case
        .runner()
        .exec(
            &outcome.image,
            "python",
            &[
                "-c",
                "import six, idna; print(six.__version__, idna.__version__)",
            ],
        )
        .await?;
    expect_output("the base's and the child's packages", &out, "1.17.0 3.10")?;
    let inspect = case.runner().inspect(&outcome.image).await?;
    let inputs = inspect
        .pointer("/Config/Labels/dev.imagespec.inputs")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    // The identity carries the base's content-derived name; a build service may have put the
    // base under its own registry, so only the last path component must match.
    let base_name = base.image.rsplit('/').next().unwrap_or(&base.image);
    ensure!(
        inputs.contains(&format!("\"{base_name}\"")) || inputs.contains(&format!("/{base_name}\"")),
        "the child's identity does not name its base {}: {inputs}",
        base.image
    );
    Ok(())
}
