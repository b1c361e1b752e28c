//! The Dockerfile a plan renders, one snapshot per case, and the specs a plan must refuse.
#![allow(clippy::unwrap_used)]

#[path = "fixtures/plan/support.rs"]
mod support;

use imagespec_core::plan::cuda::cuda_base_image;
use imagespec_core::plan::{
    BuildPlan, DEFAULT_BASE_IMAGE, EngineTraits, Instruction, LABEL_INPUTS, PlanError, PythonEnv,
    SecretSource,
};
use imagespec_core::resolve_image;
use support::{
    load, plan, plan_error, plan_error_without_runtime, plan_with_base, plan_with_runtime, project,
    redacted,
};

/// Plans `yaml` in a copy of the fixture project and snapshots the (redacted) Dockerfile.
fn snapshot(name: &str, yaml: &str) {
    let dir = project();
    let (_, image, plan) = plan(dir.path(), yaml);
    insta::assert_snapshot!(name, redacted(&plan, &image));
}

#[test]
fn plan_minimal_spec() {
    snapshot("minimal", "name: minimal\n");
}

#[test]
fn plan_apt_packages() {
    snapshot(
        "apt_packages",
        "name: apt\napt_packages: [git, curl, 'libpq5=15.*']\n",
    );
}

/// Podman's Buildah cannot be trusted with `sharing=locked`: the same packages, no cache
/// mounts, lists and archives removed in the step.
#[test]
fn plan_apt_packages_without_locked_cache_mounts() {
    let dir = project();
    let spec = load(dir.path(), "name: apt\napt_packages: [git, curl]\n");
    let image = resolve_image(&spec).unwrap();
    let traits = EngineTraits {
        locked_cache_mounts: false,
    };
    let plan = BuildPlan::for_engine(&spec, &image, None, traits).unwrap();
    let dockerfile = plan.dockerfile();
    assert!(!dockerfile.contains("sharing=locked"), "{dockerfile}");
    insta::assert_snapshot!("apt_packages_unlocked", redacted(&plan, &image));
    assert_eq!(
        BuildPlan::new(&spec, &image, None)
            .unwrap()
            .instructions()
            .len(),
        plan.instructions().len(),
        "the same steps either way"
    );
}

#[test]
fn plan_python_version_and_packages_with_uv() {
    snapshot(
        "uv_packages",
        r#"
name: uv-packages
python_version: "3.11"
packages: [numpy==1.26.4, "pandas[parquet]>=2", "scikit-learn~=1.5"]
"#,
    );
}

#[test]
fn plan_python_exec_uses_the_base_interpreter() {
    snapshot(
        "python_exec",
        r#"
name: exec
base_image: pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime
python_exec: /opt/conda/bin/python
python_version: "3.11"
packages: [flytekit]
"#,
    );
}

#[test]
fn plan_python_exec_without_version_only_checks_it_runs() {
    snapshot(
        "python_exec_no_version",
        "name: exec\nbase_image: python:3.12-slim\npython_exec: /usr/local/bin/python\n",
    );
}

#[test]
fn plan_conda_packages_with_micromamba() {
    snapshot(
        "conda",
        r#"
name: conda
python_version: "3.11"
conda_channels: [pytorch, nvidia]
conda_packages: [pytorch=2.4, pytorch-cuda=12.4]
packages: [flytekit]
builder_config:
  micromamba_image: mambaorg/micromamba:2.0.5
"#,
    );
}

#[test]
fn plan_indexes_extra_args_and_secrets() {
    snapshot(
        "pip_options_and_secrets",
        r#"
name: private
python_version: "3.12"
packages: [internal-lib==1.4.0, requests]
pip_index: https://pypi.internal.example/simple
pip_extra_index_url: [https://pypi.org/simple, https://download.pytorch.org/whl/cpu]
pip_extra_args: --no-build-isolation --config-settings "editable mode=compat"
pip_secret_mounts:
  - [secrets/netrc, /root/.netrc]
  - ["env:PIP_TOKEN", /run/secrets/pip_token]
builder_config:
  uv_image: registry.internal.example/astral-sh/uv:0.9.5
"#,
    );
}

#[test]
fn plan_requirements_txt() {
    snapshot(
        "requirements_txt",
        r#"
name: wf
python_version: "3.11"
requirements: requirements.txt
packages: [flytekitplugins-pandera]
"#,
    );
}

#[test]
fn plan_uv_lock() {
    snapshot(
        "uv_lock",
        "name: wf\npython_version: \"3.11\"\nrequirements: uvproj/uv.lock\npip_index: https://pypi.org/simple\n",
    );
}

#[test]
fn plan_poetry_lock() {
    snapshot(
        "poetry_lock",
        "name: wf\npython_version: \"3.11\"\nrequirements: poetryproj/poetry.lock\npip_extra_args: --all-extras\n",
    );
}

#[test]
fn plan_pyproject_toml() {
    snapshot(
        "pyproject",
        "name: wf\npython_version: \"3.10\"\nrequirements: pyproj/pyproject.toml\n",
    );
}

#[test]
fn plan_uv_lock_into_python_exec() {
    snapshot(
        "uv_lock_python_exec",
        "name: wf\nbase_image: python:3.11-slim\npython_exec: /usr/local/bin/python\nrequirements: uvproj/uv.lock\n",
    );
}

#[test]
fn plan_env_values_are_quoted_and_expand_like_docker_env() {
    snapshot(
        "env",
        r#"
name: env
env:
  GREETING: hello world
  QUOTED: say "hi"
  DOLLAR: $HOME/${USER}
  LITERAL_DOLLAR: costs \$5
  PATH: /opt/tools/bin:$PATH
  BACKSLASH: C:\temp\
  EMPTY: ""
  EQUALS: a=b
"#,
    );
}

#[test]
fn plan_commands_each_in_their_own_run() {
    snapshot(
        "commands",
        r#"
name: cmds
commands:
  - echo "built at $(date)" > /built.txt
  - |
    set -e
    mkdir -p /data
    touch /data/ready
  - '[ -d /data ] && echo ok'
  - --weird
  - cat <<EOF > /motd
"#,
    );
}

#[test]
fn plan_copy_entries() {
    snapshot("copy", "name: copy\ncopy: [data, tools/bootstrap.sh]\n");
}

#[test]
fn plan_source_root() {
    snapshot("source_root", "name: src\nsource_root: src\n");
}

#[test]
fn plan_source_copy_mode_none_copies_no_source() {
    snapshot(
        "source_copy_mode_none",
        "name: src\nsource_root: src\nsource_copy_mode: none\n",
    );
}

#[test]
fn plan_entrypoint() {
    snapshot(
        "entrypoint",
        "name: ep\nentrypoint: [python, -m, app.main, \"--name=a b\"]\n",
    );
}

#[test]
fn plan_entrypoint_empty_clears_it() {
    snapshot("entrypoint_empty", "name: ep\nentrypoint: []\n");
}

#[test]
fn plan_cuda_chooses_a_base_image() {
    snapshot(
        "cuda",
        "name: gpu\ncuda: \"12.4\"\ncudnn: \"9\"\npython_version: \"3.11\"\npackages: [torch]\n",
    );
}

#[test]
fn plan_cuda_with_a_base_image_trusts_the_base() {
    let dir = project();
    let (_, image, plan) = plan(
        dir.path(),
        "name: gpu\nbase_image: my.registry/cuda-base:7\ncuda: \"10.0\"\ncudnn: \"7\"\n",
    );
    assert_eq!(plan.base_image(), "my.registry/cuda-base:7");
    let inputs = serde_json::to_string(&image.inputs).unwrap();
    assert!(
        inputs.contains("\"cuda\"") && inputs.contains("\"cudnn\""),
        "recorded: {inputs}"
    );
}

#[test]
fn plan_base_image_from_a_base_spec() {
    let dir = project();
    let yaml =
        "name: child\npackages: [flytekit]\nbase_image:\n  name: base\n  apt_packages: [git]\n";
    let (spec, image, from_image) = plan(dir.path(), yaml);
    // The base spec's name, as the engine resolved it.
    assert_eq!(
        from_image.base_image(),
        image.base.as_ref().unwrap().name.to_string()
    );
    // Or as the caller passes it.
    let given = BuildPlan::new(&spec, &image, Some("registry.example/base:abc")).unwrap();
    assert_eq!(given.base_image(), "registry.example/base:abc");
    let text = redacted(&given, &image);
    insta::assert_snapshot!("base_spec", text);
}

/// A child spec installs into its base spec's environment: a conda base's interpreter, a
/// `python_exec` base's interpreter, or the same venv; never a fresh venv that hides the base's
/// packages.
#[test]
fn plan_a_child_extends_its_base_specs_python_environment() {
    let dir = project();
    let child = |base: &str| {
        let yaml = format!("name: child\npackages: [six]\nbase_image:\n  name: base\n{base}");
        plan(dir.path(), &yaml).2
    };
    let conda = child("  python_version: \"3.11\"\n  conda_packages: [numpy]\n");
    assert_eq!(
        conda.python(),
        &PythonEnv::Exec("/opt/conda/bin/python".into())
    );
    let text = conda.dockerfile();
    assert!(
        !text.contains("uv venv"),
        "a venv would hide numpy:\n{text}"
    );
    assert!(
        text.contains("uv pip install --python /opt/conda/bin/python"),
        "{text}"
    );
    // A `python_exec` base made the venv /opt/venv over its interpreter: the child installs
    // into that venv, never recreating it (which would drop `--system-site-packages`).
    let exec = child("  python_exec: /usr/local/bin/python3\n");
    assert_eq!(
        exec.python(),
        &PythonEnv::Exec("/opt/venv/bin/python".into())
    );
    assert!(
        !exec.dockerfile().contains("uv venv"),
        "{}",
        exec.dockerfile()
    );
    let venv = child("  packages: [numpy]\n");
    assert_eq!(venv.python(), &PythonEnv::Venv);
    // A grandchild inherits through the chain.
    let (_, _, grandchild) = plan(
        dir.path(),
        "name: gc\nbase_image:\n  name: child\n  base_image:\n    name: base\n    conda_packages: [numpy]\n",
    );
    assert_eq!(
        grandchild.python(),
        &PythonEnv::Exec("/opt/conda/bin/python".into())
    );
}

#[test]
fn plan_a_python_version_other_than_the_base_specs_is_refused() {
    let dir = project();
    let msg = plan_error(
        dir.path(),
        "name: child\npython_version: \"3.12\"\nbase_image:\n  name: base\n  python_version: \"3.11\"\n",
    );
    assert!(msg.contains("differs from the base spec's 3.11"), "{msg}");
    // A more precise version of the same Python is fine.
    plan(
        dir.path(),
        "name: child\npython_version: \"3.11.9\"\nbase_image:\n  name: base\n  python_version: \"3.11\"\n",
    );
}

#[test]
fn plan_platforms_the_base_spec_lacks_are_refused() {
    let dir = project();
    let msg = plan_error(
        dir.path(),
        "name: child\nplatform: linux/amd64,linux/arm64\nbase_image:\n  name: base\n  platform: linux/amd64\n",
    );
    assert!(
        msg.contains("asks for linux/arm64") && msg.contains("`platform: linux/amd64`"),
        "{msg}"
    );
    // The base built for both: fine.
    plan(
        dir.path(),
        "name: child\nplatform: linux/amd64,linux/arm64\nbase_image:\n  name: base\n  platform: linux/amd64,linux/arm64\n",
    );
}

#[test]
fn plan_builder_options_root_and_workdir() {
    snapshot(
        "builder_options",
        r#"
name: opts
source_root: src
packages: [flytekit]
builder_options:
  non_root_user: false
  workdir: /app
"#,
    );
}

#[test]
fn plan_platforms_are_carried_not_rendered() {
    let dir = project();
    let (_, _, plan) = plan(
        dir.path(),
        "name: multi\nplatform: linux/arm64,linux/amd64\n",
    );
    assert_eq!(plan.platforms(), ["linux/amd64", "linux/arm64"]);
    // Only the identity label (the hash inputs) mentions them.
    let text = plan.dockerfile();
    let build_steps = text.split("LABEL dev.imagespec.spec-hash").next().unwrap();
    assert!(
        !build_steps.contains("platform")
            && !build_steps.contains("amd64")
            && !build_steps.contains("arm64")
    );
}

#[test]
fn plan_realistic_full_spec() {
    snapshot(
        "full",
        r#"
name: say-hello
registry: ghcr.io/my-org
python_version: "3.11"
apt_packages: [git, build-essential]
requirements: requirements.txt
packages: [flytekitplugins-deck-standard]
pip_extra_index_url: [https://download.pytorch.org/whl/cpu]
pip_secret_mounts: [[secrets/netrc, /root/.netrc]]
env:
  FLYTE_SDK_RICH_TRACEBACKS: "0"
  MODE: production
copy: [data]
commands: ["python -c 'import flytekit'"]
source_root: src
entrypoint: [python, -m, app.main]
platform: linux/amd64,linux/arm64
tag_format: "{spec_hash}-dev"
runtime_packages: [rich]
"#,
    );
}

// ---- structure ----------------------------------------------------------------------------

#[test]
fn plan_no_syntax_directive_and_identity_last() {
    let dir = project();
    let (_, image, plan) = plan(
        dir.path(),
        "name: wf\npackages: [numpy]\nsource_root: src\n",
    );
    let text = plan.dockerfile();
    assert!(!text.to_lowercase().contains("syntax="), "{text}");
    let instructions = plan.instructions();
    let n = instructions.len();
    assert!(matches!(&instructions[n - 2], Instruction::Label(_)));
    assert!(matches!(&instructions[n - 1], Instruction::Env(_)));
    assert!(text.ends_with(&format!(
        "ENV IMAGESPEC_SPEC_HASH=\"{}\"\n",
        image.spec_hash
    )));
    // The label carries the hash inputs exactly, as JSON a tool can read back.
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(LABEL_INPUTS))
        .unwrap()
        .trim_start();
    let quoted = &line[LABEL_INPUTS.len() + 1..];
    let unescaped = quoted[1..quoted.len() - 1]
        .replace("\\\"", "\"")
        .replace("\\$", "$")
        .replace("\\\\", "\\");
    let parsed: serde_json::Value = serde_json::from_str(&unescaped).unwrap();
    assert_eq!(parsed, serde_json::to_value(&image.inputs).unwrap());
}

#[test]
fn plan_layer_order_is_least_to_most_frequently_changed() {
    let dir = project();
    let (_, _, plan) = plan(
        dir.path(),
        "name: order\napt_packages: [git]\npackages: [numpy]\nenv: {A: b}\ncopy: [data]\ncommands: [echo hi]\nsource_root: src\n",
    );
    let text = plan.dockerfile();
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("missing {needle}:\n{text}"))
    };
    let order = [
        "FROM ",
        "apt-get install",
        "useradd",
        "uv venv",
        // flytekit's order: `env` steers the install, `commands` see the copied and source files.
        "ENV A=",
        "uv pip install",
        "COPY --chown=1000 copy/",
        "COPY --chown=1000 source/",
        "RUN echo hi",
        "USER 1000",
        "LABEL dev.imagespec.spec-hash",
    ];
    for pair in order.windows(2) {
        assert!(
            at(pair[0]) < at(pair[1]),
            "`{}` must come before `{}`",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn plan_secrets_are_listed_by_id() {
    let dir = project();
    let (_, _, plan) = plan(
        dir.path(),
        "name: s\npackages: [a]\npip_secret_mounts: [[secrets/netrc, /root/.netrc], [\"env:TOKEN\", /run/secrets/t]]\n",
    );
    let secrets = plan.secrets();
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[0].id, "pip_secret_0");
    assert_eq!(secrets[0].target, "/root/.netrc");
    assert_eq!(
        secrets[0].source,
        SecretSource::File(dir.path().join("secrets/netrc"))
    );
    assert_eq!(secrets[1].id, "pip_secret_1");
    assert_eq!(secrets[1].source, SecretSource::Env("TOKEN".into()));
    // Mounted on the install step only.
    let text = plan.dockerfile();
    assert_eq!(text.matches("type=secret").count(), 2);
    let install = plan
        .instructions()
        .iter()
        .filter(|i| matches!(i, Instruction::Run(r) if r.mounts.iter().any(|m| matches!(m, imagespec_core::plan::Mount::Secret { .. }))))
        .count();
    assert_eq!(install, 1);
    assert!(
        !text.contains("TOKEN"),
        "the env var name stays with the builder: {text}"
    );
}

// ---- CUDA ---------------------------------------------------------------------------------

#[test]
fn plan_cuda_table_accepts_known_combinations() {
    assert_eq!(
        cuda_base_image("12.4", Some("9")).unwrap(),
        "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
    );
    assert_eq!(
        cuda_base_image("12.4.1", None).unwrap(),
        "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    );
    assert_eq!(
        cuda_base_image("11.8", Some("8")).unwrap(),
        "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"
    );
    assert_eq!(
        cuda_base_image("12.1", Some("8")).unwrap(),
        "nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"
    );
    assert_eq!(
        cuda_base_image("12.3", Some("9")).unwrap(),
        "nvidia/cuda:12.3.2-cudnn9-runtime-ubuntu22.04"
    );
    assert_eq!(
        cuda_base_image("12.8", None).unwrap(),
        "nvidia/cuda:12.8.1-runtime-ubuntu22.04"
    );
}

#[test]
fn plan_cuda_table_rejects_impossible_combinations() {
    let e = cuda_base_image("10.2", None).unwrap_err();
    assert!(matches!(e, PlanError::UnknownCuda { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("`cuda: \"10.2\"`")
            && msg.contains("11.8 (11.8.0), 12.0 (12.0.0, 12.0.1), 12.1 (12.1.0, 12.1.1)")
            && msg.contains("base_image"),
        "{msg}"
    );
    assert!(
        cuda_base_image("12.4.2", None).is_err(),
        "only published patch versions"
    );

    let e = cuda_base_image("11.8", Some("9")).unwrap_err();
    assert!(matches!(e, PlanError::UnknownCudnn { .. }));
    assert!(
        e.to_string().contains("valid cudnn values for it: 8"),
        "{e}"
    );
    assert!(cuda_base_image("12.4", Some("8")).is_err());
    assert!(cuda_base_image("12.4", Some("9.1")).is_err());

    let dir = project();
    let msg = plan_error(dir.path(), "name: gpu\ncuda: \"12.7\"\n");
    assert!(msg.contains("no known nvidia/cuda base image"), "{msg}");
}

#[test]
fn plan_default_base_without_cuda() {
    let dir = project();
    let (_, _, plan) = plan(dir.path(), "name: plain\n");
    assert_eq!(plan.base_image(), DEFAULT_BASE_IMAGE);
    let (_, _, plan) = plan_with_base(dir.path(), "name: plain\ncuda: \"12.4\"\n", Some("given:1"));
    assert_eq!(
        plan.base_image(),
        "given:1",
        "a given base wins over the CUDA table"
    );
}

// ---- refusals -----------------------------------------------------------------------------

#[test]
fn plan_unknown_builder_options_pass_and_known_ones_are_checked() {
    let dir = project();
    // Union's real-world key, and any other builder's: not read here, not fatal (issue 10.7).
    let (_, _, with_unknown) = plan(
        dir.path(),
        "name: o\nbuilder_options: {imagepull_secret_name: pull, cache: true}\n",
    );
    let (_, _, without) = plan(dir.path(), "name: o\n");
    let steps = |p: &BuildPlan| {
        let dockerfile = p.dockerfile();
        dockerfile
            .lines()
            .take_while(|l| !l.starts_with("# Identity"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        steps(&with_unknown),
        steps(&without),
        "an unknown key changes no step, only the recorded inputs (and so the name)"
    );
    assert!(with_unknown.dockerfile().contains("imagepull_secret_name"));
    let msg = plan_error(
        dir.path(),
        "name: o\nbuilder_options: {workdir: relative}\n",
    );
    assert!(msg.contains("builder_options.workdir"), "{msg}");
}

#[test]
fn plan_python_exec_and_conda_conflict() {
    let dir = project();
    let msg = plan_error(
        dir.path(),
        "name: c\npython_exec: /usr/bin/python3\nconda_packages: [numpy]\n",
    );
    assert!(
        msg.contains("`python_exec` cannot be combined with `conda_packages`"),
        "{msg}"
    );
}

#[test]
fn plan_values_that_cannot_be_one_line_are_rejected() {
    // Validation refuses these already (`spec_files.rs`); the plan refuses them again for a
    // library user who edits a loaded spec.
    let dir = project();
    let edited = |edit: &dyn Fn(&mut imagespec_core::ImageSpec)| {
        let mut spec = load(dir.path(), "name: e\nrequirements: requirements.txt\n");
        edit(&mut spec.spec);
        let image = resolve_image(&spec).unwrap();
        match BuildPlan::new(&spec, &image, None) {
            Ok(plan) => panic!("planned:\n{}", plan.dockerfile()),
            Err(e) => e.to_string(),
        }
    };
    let msg = edited(&|s| {
        s.env.insert("MULTI".into(), "a\nRUN echo injected".into());
    });
    assert!(msg.contains("`env.MULTI`"), "{msg}");
    let msg = edited(&|s| s.packages = vec!["a\nRUN echo injected".into()]);
    assert!(msg.contains("`packages[0]`"), "{msg}");
    let msg = edited(&|s| s.python_exec = Some("/usr/bin/python3\nRUN echo injected".into()));
    assert!(msg.contains("`python_exec`"), "{msg}");
}

#[test]
fn plan_empty_commands_and_bad_extra_args_are_rejected() {
    let dir = project();
    let msg = plan_error(dir.path(), "name: e\ncommands: [echo a, \"  \"]\n");
    assert!(msg.contains("`commands[1]` is empty"), "{msg}");
    let msg = plan_error(
        dir.path(),
        "name: e\npackages: [a]\npip_extra_args: \"--foo 'bar\"\n",
    );
    assert!(msg.contains("unterminated single quote"), "{msg}");
}

#[test]
fn plan_secrets_without_an_install_step_are_rejected() {
    let dir = project();
    let msg = plan_error_without_runtime(
        dir.path(),
        "name: e\npip_secret_mounts: [[secrets/netrc, /root/.netrc]]\n",
    );
    assert!(msg.contains("nothing is installed"), "{msg}");
}

/// flytekit's `test_create_docker_context_with_secrets`-style spec: secrets and no packages.
/// flytekit always installs flytekit, so there is an install step to mount them on; and a
/// relative target means, as in BuildKit, a path below the install step's working directory.
#[test]
fn plan_secrets_without_packages_mount_on_the_flytekit_install() {
    let dir = project();
    let (_, _, plan) = plan(
        dir.path(),
        "name: e\npip_secret_mounts: [[secrets/netrc, /root/.netrc], ['env:TOKEN', secret_dst_2]]\n",
    );
    let text = plan.dockerfile();
    let install = text
        .lines()
        .position(|l| l.contains("uv pip install"))
        .unwrap_or_else(|| panic!("no install step:\n{text}"));
    let lines: Vec<&str> = text.lines().collect();
    let run = &lines[..install];
    assert!(
        run.iter()
            .any(|l| l.contains("--mount=type=secret,id=pip_secret_0,target=/root/.netrc")),
        "{text}"
    );
    assert!(
        run.iter()
            .any(|l| l.contains("--mount=type=secret,id=pip_secret_1,target=/root/secret_dst_2")),
        "{text}"
    );
    assert!(lines[install].ends_with("flytekit==1.16.31"), "{text}");
    assert_eq!(plan.secrets()[1].target, "/root/secret_dst_2");
    // `builder_options.workdir` moves the install step, and the relative target with it.
    let (_, _, plan) = plan_with_runtime(
        dir.path(),
        "name: e\nbuilder_options: {workdir: /app}\npip_secret_mounts: [['env:TOKEN', sub/dst]]\n",
        Default::default(),
    );
    assert_eq!(plan.secrets()[0].target, "/app/sub/dst");
}

/// The Flyte runtime: `flytekit==<pinned>` is appended to the install unless the packages or the
/// requirements name flytekit (or union, which brings it); never with a lock file; off with
/// `Runtime::None`. Ported from flytekit's `test_create_docker_context` family.
#[test]
fn plan_appends_the_flyte_runtime_unless_the_spec_names_it() {
    use imagespec_core::plan::runtime::{DEFAULT_FLYTEKIT_VERSION, Runtime};
    let dir = project();
    let install = |yaml: &str, runtime: Runtime| {
        let (_, _, plan) = plan_with_runtime(dir.path(), yaml, runtime);
        let text = plan.dockerfile();
        text.lines()
            .find(|l| {
                l.contains("uv pip install --python /opt/venv")
                    || l.contains("uv sync")
                    || l.contains("poetry install")
            })
            .map(str::to_string)
            .unwrap_or_default()
    };
    let pinned = format!("flytekit=={DEFAULT_FLYTEKIT_VERSION}");
    // No packages at all: flytekit is still installed, so `pyflyte-execute` exists.
    assert!(install("name: a\n", Runtime::default()).ends_with(&pinned));
    assert!(
        install("name: a\npackages: [numpy]\n", Runtime::default())
            .ends_with(&format!("numpy {pinned}"))
    );
    assert!(
        install(
            "name: a\npackages: [numpy]\n",
            Runtime::Flytekit("1.15.0".into())
        )
        .ends_with("numpy flytekit==1.15.0")
    );
    for named in [
        "flytekit==1.14.0",
        "Flytekit>=1.10",
        "union",
        "unionai==0.1.0",
    ] {
        let line = install(
            &format!("name: a\npackages: ['{named}']\n"),
            Runtime::default(),
        );
        assert!(!line.contains(&pinned), "{named}: {line}");
    }
    // flytekit's rule: a plugin still gets flytekit pinned.
    assert!(
        install(
            "name: a\npackages: [flytekitplugins-pandas]\n",
            Runtime::default()
        )
        .ends_with(&pinned)
    );
    // A requirements file that names it.
    std::fs::write(dir.path().join("fk.txt"), "numpy\nflytekit>=1.10 # ours\n").unwrap();
    assert!(!install("name: a\nrequirements: fk.txt\n", Runtime::default()).contains(&pinned));
    // The fixture's requirements.txt pins `flytekit>=1.13,<2` itself.
    assert!(
        !install(
            "name: a\nrequirements: requirements.txt\n",
            Runtime::default()
        )
        .contains(&pinned)
    );
    std::fs::write(
        dir.path().join("plain.txt"),
        "numpy\n# flytekit is not named here\n",
    )
    .unwrap();
    assert!(install("name: a\nrequirements: plain.txt\n", Runtime::default()).ends_with(&pinned));
    // Lock files: what the lock pins, nothing added (as flytekit).
    assert!(
        !install(
            "name: a\nrequirements: uvproj/uv.lock\n",
            Runtime::default()
        )
        .contains("flytekit")
    );
    // Off: no install step at all for a spec without packages.
    assert_eq!(install("name: a\n", Runtime::None), "");
    assert!(!install("name: a\npackages: [numpy]\n", Runtime::None).contains("flytekit"));
}

/// `env` is set before the dependency install, so it steers uv (`UV_*`, `PIP_*`, `CFLAGS`).
#[test]
fn plan_env_comes_before_the_install() {
    let dir = project();
    let (_, _, plan) = plan(
        dir.path(),
        "name: a\npackages: [numpy]\nenv: {UV_INDEX_STRATEGY: unsafe-best-match}\n",
    );
    let text = plan.dockerfile();
    let env = text.find("ENV UV_INDEX_STRATEGY=").expect("env");
    let install = text.find("uv pip install").expect("install");
    let identity = text
        .find("LABEL dev.imagespec.spec-hash")
        .expect("identity");
    assert!(env < install && install < identity, "{text}");
}

/// Conda channels: `-c conda-forge` first, then `conda_channels` in order (flytekit's priority).
#[test]
fn plan_conda_forge_comes_first() {
    let dir = project();
    let (_, _, plan) = plan(
        dir.path(),
        "name: a\nconda_channels: [pytorch, conda-forge, nvidia]\nconda_packages: [pytorch]\n",
    );
    let text = plan.dockerfile();
    assert!(
        text.contains("-c conda-forge -c pytorch -c nvidia python=3"),
        "{text}"
    );
}

/// `python_exec`: a venv over that interpreter with its site packages visible (flytekit 1.16),
/// never `--break-system-packages` into the base image's Python.
#[test]
fn plan_python_exec_is_a_venv_with_system_site_packages() {
    let dir = project();
    let (_, _, plan) = plan(
        dir.path(),
        "name: a\nbase_image: python:3.11-slim\npython_exec: /usr/local/bin/python3\npackages: [six]\n",
    );
    let text = plan.dockerfile();
    assert!(text.contains("uv venv --allow-existing --python /usr/local/bin/python3 --system-site-packages /opt/venv"), "{text}");
    assert!(
        text.contains("uv pip install --python /opt/venv/bin/python"),
        "{text}"
    );
    assert!(!text.contains("--break-system-packages"), "{text}");
    assert!(text.contains("PATH=\"/opt/venv/bin:$PATH\""), "{text}");
}

#[test]
fn plan_a_secret_inside_the_copied_files_is_rejected() {
    let dir = project();
    std::fs::write(dir.path().join("src/.netrc"), "machine x password p").unwrap();
    let msg = plan_error(
        dir.path(),
        "name: e\npackages: [a]\nsource_root: src\npip_secret_mounts: [[src/.netrc, /root/.netrc]]\n",
    );
    assert!(msg.contains("inside `source_root`"), "{msg}");
}

#[test]
fn plan_a_resolved_image_of_another_spec_is_drift() {
    let dir = project();
    let a = load(dir.path(), "name: a\npackages: [numpy]\n");
    let b = load(dir.path(), "name: a\npackages: [pandas]\n");
    let image_b = resolve_image(&b).unwrap();
    let e = BuildPlan::new(&a, &image_b, None).unwrap_err();
    assert!(
        matches!(&e, PlanError::Drift { fields } if fields == &["packages".to_string()]),
        "{e}"
    );
}

// ---- the bundled examples ---------------------------------------------------------------------

/// The Dockerfiles of `examples/`, as `imagespec dockerfile` prints them (for a spec-valued base,
/// the child is planned FROM the base's name; its hash is redacted like the spec hash).
#[test]
fn plan_examples() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for name in ["requirements", "uv-project", "base-spec"] {
        let root = examples.join(name);
        let spec = imagespec_core::LoadedSpec::from_file(&root.join("spec.yaml"), &root)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let image = resolve_image(&spec).unwrap();
        let mut plans = vec![(name.to_string(), spec.clone(), image.clone())];
        if let (Some(base_spec), Some(base_image)) = (spec.base(), image.base.as_deref()) {
            plans.push((format!("{name}_base"), base_spec, base_image.clone()));
        }
        for (snapshot_name, spec, image) in plans {
            let base = image.base.as_ref().map(|b| b.name.to_string());
            let plan = BuildPlan::new(&spec, &image, base.as_deref()).unwrap();
            let mut text = redacted(&plan, &image);
            if let Some(b) = &image.base {
                text = text.replace(&b.spec_hash, "<base-spec-hash>");
            }
            insta::assert_snapshot!(format!("example_{snapshot_name}"), text);
        }
    }
}
