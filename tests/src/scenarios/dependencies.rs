//! Dependencies: apt packages, a requirements file, a uv lock file, and `packages` from an
//! explicit index. Each is proven by running what was installed.

use anyhow::{Context, Result, ensure};

use super::expect_output;
use crate::backend::Backend;
use crate::case::Case;
use crate::devenv::examples_dir;

/// `apt_packages`: a tiny Debian package is installed and runs.
pub async fn apt_packages(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "apt_packages")?;
    let image = case
        .build(case.spec("").with_apt_packages(["tini"]))
        .await?;
    let version = case.runner().exec(&image, "tini", &["--version"]).await?;
    ensure!(
        version.starts_with("tini version"),
        "`tini --version` printed {version:?}"
    );
    Ok(())
}

/// `requirements` as a pinned `requirements.txt`: exactly those versions import.
pub async fn requirements_txt(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "requirements_txt")?;
    case.write("requirements.txt", "six==1.17.0\nidna==3.10\n")?;
    let image = case
        .build(case.spec("").with_requirements("requirements.txt"))
        .await?;
    let out = case
        .runner()
        .exec(
            &image,
            "python",
            &[
                "-c",
                "import six, idna; print(six.__version__, idna.__version__)",
            ],
        )
        .await?;
    expect_output("pinned requirements", &out, "1.17.0 3.10")
}

/// `requirements: uv.lock` (the `examples/uv-project` files): the locked versions, no dev group,
/// and the project's own package shipped through `copy` runs as the entrypoint.
pub async fn uv_lock(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "uv_lock")?;
    let project = examples_dir().join("uv-project");
    for file in ["pyproject.toml", "uv.lock", "src/greeter/__init__.py"] {
        let bytes = std::fs::read(project.join(file))
            .with_context(|| format!("cannot read examples/uv-project/{file}"))?;
        case.write(file, bytes)?;
    }
    let spec = case
        .spec("")
        .with_requirements("uv.lock")
        .with_copy(["src/greeter"])
        .with_env([("PYTHONPATH", "/root/src")])
        .with_entrypoint([
            "python",
            "-c",
            "from greeter import greet; print(greet('conformance'))",
        ]);
    let image = case.build(spec).await?;
    let out = case.runner().run(&image, &[]).await?;
    expect_output(
        "the uv project's entrypoint",
        &out,
        "hello conformance (six 1.17.0)",
    )?;
    let dev = case
        .runner()
        .exec(
            &image,
            "python",
            &[
                "-c",
                "import importlib.util as u; print(u.find_spec('pytest') is None)",
            ],
        )
        .await?;
    expect_output("the dev group (pytest) is not installed", &dev, "True")
}

/// `packages` with `pip_index`: installed from that index (the flag reaches the install step).
pub async fn pip_index(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "pip_index")?;
    let mut spec = case.spec("").with_packages(["idna==3.10"]);
    spec.pip_index = Some("https://pypi.org/simple".into());
    let image = case.build(spec).await?;
    let out = case
        .runner()
        .exec(
            &image,
            "python",
            &["-c", "import idna; print(idna.__version__)"],
        )
        .await?;
    expect_output("a package from pip_index", &out, "3.10")?;
    let history = case.runner().history(&image).await?;
    ensure!(
        history.contains("--index-url https://pypi.org/simple"),
        "the install step does not name the index:\n{history}"
    );
    Ok(())
}
