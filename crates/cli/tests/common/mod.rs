//! Helpers of the CLI's test files (a module of each, so not a test target itself).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// The `imagespec` binary run in `dir`, isolated from the user's configuration and variant.
pub fn isolated(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("imagespec"));
    cmd.current_dir(dir)
        .env("IMAGESPEC_CONFIG", "/nonexistent/imagespec-config.yaml")
        .env_remove("IMAGESPEC_VARIANT")
        .env_remove("FLYTE_FORCE_PUSH_IMAGE_SPEC")
        .env_remove("FLYTE_IMG_FAST_FAIL")
        .env_remove("RUST_LOG");
    cmd
}

/// [`isolated`] as an `assert_cmd` command.
pub fn imagespec(dir: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(isolated(dir))
}

/// The dev environment's registry variables (`IMAGESPEC_REGISTRY`, `..._USER`, `..._PASSWORD`),
/// or a failure that says how to get them. `IMAGESPEC_DEV_DIR` (set by `.dev-env/env`) lets a
/// git worktree use the one dev environment.
pub fn registry_env() -> Vec<(String, String)> {
    let dev_dir = std::env::var_os("IMAGESPEC_DEV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".dev-env"));
    let path = dev_dir.join("registry.env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `bash scripts/dev-env.sh` first",
            path.display()
        )
    });
    text.lines()
        .filter_map(|l| l.trim_start_matches("export ").split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// One of [`registry_env`]'s variables, or empty.
pub fn registry_var(env: &[(String, String)], key: &str) -> String {
    env.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The flytekit 1.16.31 reference venv's interpreter, or a failure saying how to create it
/// (never a skip).
pub fn flytekit_python() -> PathBuf {
    let python = std::env::var_os("IMAGESPEC_FLYTEKIT_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("IMAGESPEC_DEV_DIR")
                .map(|d| PathBuf::from(d).join("flytekit-venv/bin/python"))
        })
        .unwrap_or_else(|| repo().join(".dev-env/flytekit-venv/bin/python"));
    assert!(
        python.is_file(),
        "{} is missing: the flytekit 1.16.31 reference venv is created by `bash scripts/dev-env.sh` \
         (or only it: `bash scripts/dev-env.sh --flytekit`), then `source .dev-env/env`",
        python.display()
    );
    python
}

/// `(file, name)` for each of `specs`: flytekit's `image_name()` (or `ERROR: ...`) for spec files
/// in `dir`, as pyflyte reads them (`tests/flytekit/name.py`).
pub fn flytekit_names(dir: &Path, specs: &[String]) -> Vec<(String, String)> {
    let out = std::process::Command::new(flytekit_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flytekit/name.py"))
        .args(specs)
        .current_dir(dir)
        .output()
        .expect("run the flytekit reference");
    assert!(
        out.status.success(),
        "name.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(f, n)| (f.to_string(), n.to_string()))
        .collect()
}

/// flytekit's `image_name()` (or `ERROR: ...`) for one spec file in `dir`.
pub fn flytekit_name(dir: &Path, spec: &str) -> String {
    flytekit_names(dir, &[spec.to_string()])
        .into_iter()
        .next()
        .map(|(_, name)| name)
        .unwrap_or_default()
}

/// The stdout of an `imagespec` run that had to succeed (the panic shows its stderr).
pub fn stdout_of(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The last line of a successful `--output json build`: its `result` event, parsed.
pub fn json_result(cmd: &mut assert_cmd::Command) -> serde_json::Value {
    let stdout = stdout_of(cmd);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).expect("json result line")
}

/// Writes `text` to `dir/name`, making its directories.
pub fn write(dir: &Path, name: &str, text: &str) {
    if let Some(parent) = dir.join(name).parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(dir.join(name), text).expect("write");
}

/// A Docker config directory whose `config.json` logs in to `registry` as `user:password`.
pub fn docker_login(registry: &str, user: &str, password: &str) -> tempfile::TempDir {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = serde_json::json!({"auths": {registry: {"auth": auth}}});
    std::fs::write(dir.path().join("config.json"), config.to_string()).expect("write");
    dir
}

/// The dev environment's registry login as a Docker config directory, and the registry.
pub fn registry_login() -> (tempfile::TempDir, String) {
    let env = registry_env();
    let registry = registry_var(&env, "IMAGESPEC_REGISTRY");
    let login = docker_login(
        &registry,
        &registry_var(&env, "IMAGESPEC_REGISTRY_USER"),
        &registry_var(&env, "IMAGESPEC_REGISTRY_PASSWORD"),
    );
    (login, registry)
}

/// A value of this run only (process id and clock), so a build runs its steps and names its
/// own image.
pub fn nonce() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// An engine CLI command (`docker`, `podman`) that must succeed; its standard output.
pub fn engine_cli(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .expect("engine CLI");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `imagespec serve --config service.yaml` with `text` as that file, which must stop it at once
/// with exit 3 (configuration that cannot work); its stderr.
pub fn serve_refusing(dir: &Path, text: &str) -> String {
    let file = dir.join("service.yaml");
    std::fs::write(&file, text).expect("write");
    let out = imagespec(dir)
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{text}: {stderr}");
    stderr
}
