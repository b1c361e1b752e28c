//! The Python environment and the Python dependencies.
//!
//! Which interpreter (first match wins):
//! 1. `python_exec`: the base image's interpreter at that path. A check step fails the build
//!    early if it is missing or is not `python_version`. As flytekit 1.16 does (its answer to
//!    PEP 668's externally-managed system Pythons, e.g. NVIDIA's images), uv creates the virtual
//!    environment `/opt/venv` over that interpreter with `--system-site-packages`, so the base
//!    image's packages stay importable, and packages are installed into the venv, never into the
//!    base image's own Python (no `--break-system-packages`).
//! 2. `conda_packages` or `conda_channels`: micromamba creates the conda environment `/opt/conda`
//!    with `python=<python_version>` (any Python 3 when unset) and the conda packages, from
//!    `conda-forge` first and then the spec's channels in order (flytekit's priority). micromamba is not installed: its image
//!    (`builder_config.micromamba_image`, default [`DEFAULT_MICROMAMBA_IMAGE`]) is bind-mounted
//!    for that one step, which also lends its CA bundle when the base image has none.
//! 3. Otherwise uv (copied from `builder_config.uv_image`, default [`DEFAULT_UV_IMAGE`], into
//!    `/bin`) creates the virtual environment `/opt/venv` with `--python <python_version>` (or
//!    `3`). uv uses an interpreter of the base image when one matches and downloads a managed
//!    CPython only otherwise (uv's default `python-downloads = automatic`, kept so a bare base
//!    works), into `/opt/python` so the runtime user can read it (uv's default lives under
//!    `/root`).
//!
//! The environment's `bin` comes first on `PATH`, with `VIRTUAL_ENV` (venv) or `CONDA_PREFIX`
//! (conda) set so that `uv pip install` at run time targets it. An existing environment (a base
//! spec built by imagespec) is extended, never replaced (`uv venv --allow-existing`,
//! `micromamba install`, `uv sync --inexact`).
//!
//! Dependencies, in one `RUN` with the uv cache mounted and the secrets of `pip_secret_mounts`
//! mounted (so they exist only during that step):
//! - `packages` and a requirements list or `pyproject.toml`: `uv pip install -r <file> <packages>`;
//! - `uv.lock`: `uv sync --locked --no-dev --no-install-project --inexact` in the directory holding
//!   it and its `pyproject.toml`, with `UV_PROJECT_ENVIRONMENT` set to the environment;
//! - `poetry.lock`: poetry 2 is installed with uv into its own environment `/opt/poetry` (so its
//!   own dependencies never mix with the application's) and runs
//!   `poetry install --no-root --only main` with `POETRY_VIRTUALENVS_CREATE=false` and
//!   `VIRTUAL_ENV` pointing at the environment. `pip_index`/`pip_extra_index_url` are used to
//!   install poetry; the application's packages come from the sources the lock file pins.
//!
//! `pip_index` becomes `--index-url`, each `pip_extra_index_url` an `--extra-index-url`,
//! `pip_extra_args` is split like a shell would and appended to the installer's command line.
//! uv links with `--link-mode=copy` (the cache is a different file system, hard links cannot
//! cross it) and compiles bytecode (`--compile-bytecode`) so the first import in a container
//! is not slowed down; both are flags of the install commands, not `ENV`, so they do not leak
//! into the runtime environment.

use super::error::PlanError;
use super::instruction::{Copy, EnvValue, Instruction, Mount, Run};
use super::secrets::SecretRef;
use super::shell::{join, quote, split};
use crate::spec::{ImageSpec, RequirementsKind};

/// uv's image when `builder_config.uv_image` is not set.
/// A minor-version tag: patch releases (fixes) are picked up, behaviour changes are not.
pub const DEFAULT_UV_IMAGE: &str = "ghcr.io/astral-sh/uv:0.13";
/// micromamba's image when `builder_config.micromamba_image` is not set (major-version tag).
pub const DEFAULT_MICROMAMBA_IMAGE: &str = "mambaorg/micromamba:2";
/// The virtual environment uv creates.
pub const VENV: &str = "/opt/venv";
/// The conda environment micromamba creates.
pub const CONDA_PREFIX: &str = "/opt/conda";
/// Where uv puts a Python it downloads.
pub const PYTHON_INSTALL_DIR: &str = "/opt/python";
/// poetry's own environment.
pub const POETRY_HOME: &str = "/opt/poetry";
/// Where the dependency files are copied in the image.
pub const DEPS_IN_IMAGE: &str = "/opt/imagespec/deps";
/// The version range of poetry installed for `poetry.lock`.
pub const POETRY_REQUIREMENT: &str = "poetry>=2,<3";

const UV_CACHE: &str = "/root/.cache/uv";
const POETRY_CACHE: &str = "/root/.cache/pypoetry";
const MICROMAMBA_ROOT: &str = "/opt/micromamba";
const MICROMAMBA_MOUNT: &str = "/opt/imagespec/micromamba";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The Python environment packages are installed into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonEnv {
    /// uv's virtual environment [`VENV`].
    Venv,
    /// micromamba's environment [`CONDA_PREFIX`].
    Conda,
    /// `python_exec`: the venv [`VENV`] over the base image's interpreter at this path, with the
    /// interpreter's own packages visible (`--system-site-packages`).
    ExecVenv(String),
    /// An environment a base spec made, installed into directly through this interpreter (a
    /// conda base's `/opt/conda/bin/python`, a `python_exec` base's `/opt/venv/bin/python`).
    Exec(String),
}

impl PythonEnv {
    /// The spec's environment.
    ///
    /// A spec built on a base spec extends the base's environment: unless it asks for its own
    /// (`python_exec`, conda packages), it installs into the base's interpreter (a conda or
    /// `python_exec` base: that interpreter, as if `python_exec` named it; a venv base: the same
    /// `/opt/venv`). A `python_version` that differs from the base spec's is refused, because the
    /// base's packages live in an environment of the base's version.
    pub fn of(spec: &ImageSpec) -> Result<PythonEnv, PlanError> {
        if let (Some(want), Some(base)) = (&spec.python_version, base_python_version(spec))
            && !same_version(want, base)
        {
            return Err(PlanError::BasePythonVersion {
                version: want.clone(),
                base: base.to_string(),
            });
        }
        let own = Self::own(spec)?;
        if own != PythonEnv::Venv {
            return Ok(own);
        }
        Ok(match spec.base_spec().map(PythonEnv::of).transpose()? {
            Some(PythonEnv::Conda) => PythonEnv::Exec(format!("{CONDA_PREFIX}/bin/python")),
            // Not `uv venv` again: recreating the venv would drop `--system-site-packages`.
            Some(PythonEnv::ExecVenv(_)) => PythonEnv::Exec(format!("{VENV}/bin/python")),
            Some(PythonEnv::Exec(exec)) => PythonEnv::Exec(exec),
            _ => PythonEnv::Venv,
        })
    }

    /// The environment the spec's own fields ask for.
    fn own(spec: &ImageSpec) -> Result<PythonEnv, PlanError> {
        match (&spec.python_exec, !conda_free(spec)) {
            (Some(_), true) => Err(PlanError::Conflict {
                field: "python_exec",
                other: if spec.conda_packages.is_empty() {
                    "conda_channels"
                } else {
                    "conda_packages"
                },
                help: "conda packages need micromamba's own Python; remove `python_exec`, or install the packages with `packages`",
            }),
            (Some(exec), false) => {
                check_line("python_exec", exec)?;
                Ok(PythonEnv::ExecVenv(exec.clone()))
            }
            (None, true) => Ok(PythonEnv::Conda),
            (None, false) => Ok(PythonEnv::Venv),
        }
    }

    /// The interpreter, as a shell word.
    fn python(&self) -> String {
        match self {
            PythonEnv::Venv | PythonEnv::ExecVenv(_) => format!("{VENV}/bin/python"),
            PythonEnv::Conda => format!("{CONDA_PREFIX}/bin/python"),
            PythonEnv::Exec(exec) => quote(exec).into_owned(),
        }
    }

    /// The environment's prefix, as a shell word (computed at build time for `python_exec`).
    fn prefix(&self) -> String {
        match self {
            PythonEnv::Venv | PythonEnv::ExecVenv(_) => VENV.to_string(),
            PythonEnv::Conda => CONDA_PREFIX.to_string(),
            PythonEnv::Exec(exec) => {
                format!("\"$({} -c 'import sys; print(sys.prefix)')\"", quote(exec))
            }
        }
    }
}

fn conda_free(spec: &ImageSpec) -> bool {
    spec.conda_packages.is_empty() && spec.conda_channels.is_empty()
}

/// The `python_version` of the nearest base spec that sets one.
fn base_python_version(spec: &ImageSpec) -> Option<&str> {
    let mut base = spec.base_spec();
    while let Some(b) = base {
        if let Some(v) = &b.python_version {
            return Some(v);
        }
        base = b.base_spec();
    }
    None
}

/// `3.11` and `3.11.4` agree (as far as both go); `3.11` and `3.12` do not.
fn same_version(a: &str, b: &str) -> bool {
    a.split('.').zip(b.split('.')).all(|(x, y)| x == y)
}

/// Helper images from `builder_config`.
fn uv_image(spec: &ImageSpec) -> &str {
    spec.builder_config
        .get("uv_image")
        .map_or(DEFAULT_UV_IMAGE, String::as_str)
}

fn micromamba_image(spec: &ImageSpec) -> &str {
    spec.builder_config
        .get("micromamba_image")
        .map_or(DEFAULT_MICROMAMBA_IMAGE, String::as_str)
}

/// Whether there is an install step: packages, a requirements file, or the Flyte runtime
/// (`runtime`, what [`super::runtime`] appends).
/// When a failed build's `message` names one of the spec's helper images (`uv_image`,
/// `micromamba_image`), the advice to give: the image could not be pulled, and the
/// `builder_config` key that chooses another (a mirror, a local copy). The engines name the
/// reference as the Dockerfile has it (BuildKit may prefix `docker.io/`, Podman `docker://`),
/// so the reference appearing in the message is the test.
pub fn helper_image_hint(spec: &ImageSpec, message: &str) -> Option<String> {
    [("uv_image", uv_image(spec)), ("micromamba_image", micromamba_image(spec))]
        .into_iter()
        .find(|(_, reference)| message.contains(reference))
        .map(|(key, reference)| {
            format!(
                "the helper image `{reference}` could not be used; set `builder_config: {{{key}: <image>}}` in the spec to a {key} the engine can pull (a mirror or a local copy)"
            )
        })
}

fn has_dependencies(spec: &ImageSpec, runtime: Option<&str>) -> bool {
    !spec.packages.is_empty() || spec.requirements.is_some() || runtime.is_some()
}

fn copy_uv(spec: &ImageSpec) -> Instruction {
    Instruction::Copy(Copy {
        from: Some(uv_image(spec).to_string()),
        chown: None,
        sources: vec!["/uv".into(), "/uvx".into()],
        dest: "/bin/".into(),
    })
}

fn uv_cache() -> Mount {
    Mount::Cache {
        target: UV_CACHE.into(),
        locked: false,
    }
}

/// The instructions that provide the interpreter and point the environment at it.
pub(crate) fn environment(
    spec: &ImageSpec,
    env: &PythonEnv,
    workdir: &str,
    runtime: Option<&str>,
) -> Result<Vec<Instruction>, PlanError> {
    let mut out = Vec::new();
    let pythonpath = (
        "PYTHONPATH".to_string(),
        EnvValue::Literal(workdir.to_string()),
    );
    match env {
        PythonEnv::Venv => {
            out.push(Instruction::Comment(format!(
                "Python: virtual environment {VENV} (a matching interpreter of the base image, else a uv-managed one)"
            )));
            out.push(copy_uv(spec));
            let request = spec.python_version.as_deref().unwrap_or("3");
            out.push(Instruction::Run(Run::shell(
                vec![uv_cache()],
                [format!(
                    "UV_PYTHON_INSTALL_DIR={PYTHON_INSTALL_DIR} uv venv --allow-existing --python {} {VENV}",
                    quote(request)
                )],
            )));
            out.push(Instruction::Env(vec![
                ("VIRTUAL_ENV".into(), EnvValue::Literal(VENV.into())),
                ("PATH".into(), EnvValue::Expand(format!("{VENV}/bin:$PATH"))),
                pythonpath,
            ]));
        }
        PythonEnv::Conda => {
            out.push(Instruction::Comment(format!(
                "Python: conda environment {CONDA_PREFIX} (micromamba is mounted for this step only)"
            )));
            for (i, value) in spec.conda_channels.iter().enumerate() {
                check_line(&format!("conda_channels[{i}]"), value)?;
            }
            for (i, value) in spec.conda_packages.iter().enumerate() {
                check_line(&format!("conda_packages[{i}]"), value)?;
            }
            let mut args = vec![
                "--yes".to_string(),
                "--prefix".into(),
                CONDA_PREFIX.into(),
                "--root-prefix".into(),
                MICROMAMBA_ROOT.into(),
                "--always-copy".into(),
            ];
            // flytekit's priority: `-c conda-forge` first, then the spec's channels in order.
            let mut channels = vec!["conda-forge"];
            channels.extend(
                spec.conda_channels
                    .iter()
                    .map(String::as_str)
                    .filter(|c| *c != "conda-forge"),
            );
            for channel in channels {
                args.push("-c".into());
                args.push(channel.to_string());
            }
            args.push(match &spec.python_version {
                Some(v) => format!("python={v}"),
                None => "python=3".into(),
            });
            args.extend(spec.conda_packages.iter().cloned());
            let mounted = format!("{MICROMAMBA_MOUNT}{CA_BUNDLE}");
            out.push(Instruction::Run(Run::shell(
                vec![
                    Mount::Cache {
                        target: format!("{MICROMAMBA_ROOT}/pkgs"),
                        locked: true,
                    },
                    Mount::Bind {
                        from: micromamba_image(spec).to_string(),
                        target: MICROMAMBA_MOUNT.into(),
                    },
                ],
                [
                    format!("if [ -d {CONDA_PREFIX}/conda-meta ]; then verb=install; else verb=create; fi"),
                    format!("ca={CA_BUNDLE}"),
                    format!("if [ ! -f \"$ca\" ]; then ca={mounted}; fi"),
                    format!(
                        "MAMBA_SSL_VERIFY=\"$ca\" {MICROMAMBA_MOUNT}/usr/bin/micromamba \"$verb\" {}",
                        join(&args)
                    ),
                ],
            )));
            if has_dependencies(spec, runtime) {
                out.push(copy_uv(spec));
            }
            out.push(Instruction::Env(vec![
                (
                    "CONDA_PREFIX".into(),
                    EnvValue::Literal(CONDA_PREFIX.into()),
                ),
                (
                    "PATH".into(),
                    EnvValue::Expand(format!("{CONDA_PREFIX}/bin:$PATH")),
                ),
                pythonpath,
            ]));
        }
        PythonEnv::ExecVenv(exec) => {
            out.push(Instruction::Comment(format!(
                "Python: virtual environment {VENV} over the base image's interpreter {exec} (python_exec), its packages visible"
            )));
            let check = match &spec.python_version {
                Some(v) => {
                    let want = v.split('.').collect::<Vec<_>>().join(", ");
                    let code = format!(
                        "import sys; want = ({want},); sys.exit(0 if sys.version_info[:len(want)] == want else \
                         \"python_exec %s is Python %s, but python_version is {v}\" % (sys.executable, sys.version.split()[0]))"
                    );
                    format!("{} -c {}", quote(exec), quote(&code))
                }
                None => format!("{} --version", quote(exec)),
            };
            out.push(Instruction::Run(Run::shell(Vec::new(), [check])));
            out.push(copy_uv(spec));
            out.push(Instruction::Run(Run::shell(
                vec![uv_cache()],
                [format!(
                    "uv venv --allow-existing --python {} --system-site-packages {VENV}",
                    quote(exec)
                )],
            )));
            out.push(Instruction::Env(vec![
                ("VIRTUAL_ENV".into(), EnvValue::Literal(VENV.into())),
                ("PATH".into(), EnvValue::Expand(format!("{VENV}/bin:$PATH"))),
                pythonpath,
            ]));
        }
        PythonEnv::Exec(exec) => {
            out.push(Instruction::Comment(format!(
                "Python: the base spec's environment, through {exec}"
            )));
            if has_dependencies(spec, runtime) {
                out.push(copy_uv(spec));
            }
            out.push(Instruction::Env(vec![pythonpath]));
        }
    }
    Ok(out)
}

/// The instructions that install `packages` and `requirements`; empty when there are none.
///
/// `deps` are the context paths of the dependency files (below [`super::context::DEPS_DIR`]).
pub(crate) fn dependencies(
    spec: &ImageSpec,
    env: &PythonEnv,
    secrets: &[SecretRef],
    runtime: Option<&str>,
) -> Result<Vec<Instruction>, PlanError> {
    if !has_dependencies(spec, runtime) {
        if !secrets.is_empty() {
            return Err(PlanError::UnusedSecrets);
        }
        return Ok(Vec::new());
    }
    let index_args = index_args(spec)?;
    let extra_args = match &spec.pip_extra_args {
        Some(text) => {
            check_line("pip_extra_args", text)?;
            split(text).map_err(|problem| PlanError::PipExtraArgs { problem })?
        }
        None => Vec::new(),
    };
    for (i, value) in spec.packages.iter().enumerate() {
        check_line(&format!("packages[{i}]"), value)?;
    }

    let mut out = vec![Instruction::Comment("Python dependencies".into())];
    let mut mounts = vec![uv_cache()];
    let tail = |words: &[String]| {
        if words.is_empty() {
            String::new()
        } else {
            format!(" {}", join(words))
        }
    };
    let steps = match &spec.requirements {
        Some(req) => {
            out.push(Instruction::Copy(Copy {
                from: None,
                chown: None,
                sources: vec![format!("{}/", super::context::DEPS_DIR)],
                dest: format!("{DEPS_IN_IMAGE}/"),
            }));
            check_line("requirements", req)?;
            let file_name = std::path::Path::new(req)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match RequirementsKind::of(req) {
                RequirementsKind::RequirementsTxt | RequirementsKind::Pyproject => {
                    let mut words = vec!["-r".to_string(), format!("{DEPS_IN_IMAGE}/{file_name}")];
                    words.extend(spec.packages.iter().cloned());
                    words.extend(runtime.map(str::to_string));
                    words.extend(extra_args);
                    vec![uv_pip_install(env, &index_args, &words)]
                }
                RequirementsKind::UvLock => {
                    let mut words = index_args;
                    words.extend(extra_args);
                    vec![
                        format!("cd {DEPS_IN_IMAGE}"),
                        format!(
                            "UV_PROJECT_ENVIRONMENT={} UV_PYTHON_INSTALL_DIR={PYTHON_INSTALL_DIR} uv sync --locked \
                             --no-dev --no-install-project --inexact --link-mode=copy --compile-bytecode{}",
                            env.prefix(),
                            tail(&words)
                        ),
                    ]
                }
                RequirementsKind::PoetryLock => {
                    mounts.push(Mount::Cache {
                        target: POETRY_CACHE.into(),
                        locked: false,
                    });
                    vec![
                        format!(
                            "uv venv --allow-existing --python {} {POETRY_HOME}",
                            env.python()
                        ),
                        format!(
                            "uv pip install --python {POETRY_HOME}/bin/python --link-mode=copy{} {}",
                            tail(&index_args),
                            quote(POETRY_REQUIREMENT)
                        ),
                        format!("cd {DEPS_IN_IMAGE}"),
                        format!(
                            "POETRY_VIRTUALENVS_CREATE=false VIRTUAL_ENV={} {POETRY_HOME}/bin/poetry install \
                             --no-root --only main --no-interaction{}",
                            env.prefix(),
                            tail(&extra_args)
                        ),
                    ]
                }
            }
        }
        None => {
            let mut words = spec.packages.clone();
            words.extend(runtime.map(str::to_string));
            words.extend(extra_args);
            vec![uv_pip_install(env, &index_args, &words)]
        }
    };
    mounts.extend(secrets.iter().map(|s| Mount::Secret {
        id: s.id.clone(),
        target: s.target.clone(),
    }));
    out.push(Instruction::Run(Run::shell(mounts, steps)));
    Ok(out)
}

fn uv_pip_install(env: &PythonEnv, index_args: &[String], words: &[String]) -> String {
    let mut all = index_args.to_vec();
    all.extend(words.iter().cloned());
    format!(
        "uv pip install --python {} --link-mode=copy --compile-bytecode {}",
        env.python(),
        join(&all)
    )
}

fn index_args(spec: &ImageSpec) -> Result<Vec<String>, PlanError> {
    let mut args = Vec::new();
    if let Some(url) = &spec.pip_index {
        check_line("pip_index", url)?;
        args.push("--index-url".to_string());
        args.push(url.clone());
    }
    for (i, url) in spec.pip_extra_index_url.iter().enumerate() {
        check_line(&format!("pip_extra_index_url[{i}]"), url)?;
        args.push("--extra-index-url".to_string());
        args.push(url.clone());
    }
    Ok(args)
}

/// Rejects values no single Dockerfile line can carry.
pub(crate) fn check_line(field: &str, value: &str) -> Result<(), PlanError> {
    if value.chars().any(char::is_control) {
        Err(PlanError::ControlCharacter {
            field: field.to_string(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_helper_image_names_its_builder_config_key() {
        let spec = ImageSpec::new("a");
        let uv = helper_image_hint(
            &spec,
            "failed to solve: ghcr.io/astral-sh/uv:0.13: failed to resolve source metadata",
        )
        .expect("uv");
        assert!(uv.contains("builder_config: {uv_image: <image>}"), "{uv}");
        let mamba = helper_image_hint(
            &spec,
            "initializing source docker://mambaorg/micromamba:2: pinging container registry",
        )
        .expect("micromamba");
        assert!(mamba.contains("micromamba_image"), "{mamba}");
        let mirrored = spec.with_builder_config("uv_image", "127.0.0.1:5000/uv:1");
        assert!(helper_image_hint(&mirrored, "127.0.0.1:5000/uv:1: not found").is_some());
        assert_eq!(
            helper_image_hint(&spec, "RUN pip install: exit code 1"),
            None
        );
    }
}
