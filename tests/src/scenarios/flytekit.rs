//! A flytekit-style spec, as a Flyte user writes it: a requirements file, a `source_root` with
//! the workflow code, a command that reads the source, an `env` variable that steers the
//! install, and the Flyte runtime on (the default for users). The image must run what Flyte runs
//! in it: `pyflyte-execute`, and the task module.
//!
//! One build per backend: flytekit comes from PyPI through the dev environment's proxy.

use anyhow::{Result, ensure};
use imagespec_core::plan::runtime::{DEFAULT_FLYTEKIT_VERSION, Runtime};

use crate::backend::Backend;
use crate::case::Case;

const TASK_MODULE: &str = r#"from flytekit import task, workflow


@task
def greet(name: str) -> str:
    return f"hello {name}"


@workflow
def wf(name: str = "flyte") -> str:
    return greet(name=name)


if __name__ == "__main__":
    print(wf(name="imagespec"))
"#;

pub async fn flytekit_task(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "flytekit_task")?;
    case.set_runtime(Runtime::default());
    // `six>=1.10` resolves to the newest six, unless the install sees `UV_RESOLUTION` from `env`.
    case.write("requirements.txt", "six>=1.10\n")?;
    case.write("src/workflows/__init__.py", "")?;
    case.write("src/workflows/hello.py", TASK_MODULE)?;
    let spec = case
        .spec("")
        .with_requirements("requirements.txt")
        .with_source_root("src")
        .with_env([("UV_RESOLUTION", "lowest-direct")])
        // Runs after the source files are in place, so it finds them.
        .with_commands(["python -m compileall -q /root/workflows"]);
    let image = case.build(spec).await?;
    let out = case
        .runner()
        .sh(
            &image,
            "pyflyte-execute --help >/dev/null && echo help-ok; \
             python -c 'import flytekit, six; print(\"versions\", flytekit.__version__, six.__version__)'; \
             test -f /root/workflows/__pycache__/hello.cpython-311.pyc && echo compiled; \
             python -m workflows.hello",
        )
        .await?;
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    for expected in [
        "help-ok".to_string(),
        format!("versions {DEFAULT_FLYTEKIT_VERSION} 1.10.0"),
        "compiled".to_string(),
        "hello imagespec".to_string(),
    ] {
        ensure!(
            lines.contains(&expected.as_str()),
            "the flytekit image did not print `{expected}`; it printed:\n{out}"
        );
    }
    Ok(())
}
