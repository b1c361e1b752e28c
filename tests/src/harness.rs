//! Runs one scenario as a test: its own runtime, a timing line, and, for the scenario that reads
//! a secret from an environment variable, a child process that has the variable.
//!
//! Why a child process: the variable must exist before the build reads it, and setting one in a
//! running multi-threaded test process is unsound (`std::env::set_var` is `unsafe` in Rust 2024
//! and the workspace forbids `unsafe`). The test re-runs itself (`<binary> <test> --exact`) with
//! a fresh random value, which works the same under `cargo test` and `cargo nextest`.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::names::unique;
use crate::scenarios::secrets::{ENV_SECRET_SCENARIO, ENV_SECRET_VAR};

/// How long one scenario may take before it fails (`IMAGESPEC_CONFORMANCE_TIMEOUT_SECS`).
/// Generous for a cold cache; its point is to turn a build stuck in an engine into a failure
/// that says so, before the test runner kills the process without a word.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(240);

/// A failed scenario, shown as its error chain (not a backtrace: the chain says what the image
/// did wrong, a backtrace only where the assertion is).
pub struct Failure(anyhow::Error);

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure(e)
    }
}

/// Runs `test` (a scenario against a backend) on a fresh multi-threaded runtime, within
/// [`DEFAULT_TIMEOUT`] (or the configured timeout).
///
/// `module` is the caller's `module_path!()` and `scenario` the test function's name; together
/// they name the test for a re-run in a child process.
pub fn run_test<F, Fut>(module: &str, scenario: &str, test: F) -> Result<(), Failure>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    if scenario == ENV_SECRET_SCENARIO && std::env::var_os(ENV_SECRET_VAR).is_none() {
        return Ok(rerun_with_env_secret(module, scenario)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    let limit = timeout();
    let started = Instant::now();
    let result = runtime.block_on(async {
        tokio::time::timeout(limit, test()).await.unwrap_or_else(|_| {
            Err(anyhow!(
                "{scenario} did not finish within {limit:?}: a build or a container is probably stuck in the engine \
                 (set IMAGESPEC_CONFORMANCE_TIMEOUT_SECS to wait longer)"
            ))
        })
    });
    eprintln!(
        "conformance: {scenario} {} in {:.1?}",
        if result.is_ok() { "passed" } else { "FAILED" },
        started.elapsed()
    );
    Ok(result?)
}

fn timeout() -> Duration {
    std::env::var("IMAGESPEC_CONFORMANCE_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}

/// The libtest name of `scenario` declared in `module` (the crate's root module is not part of
/// test names).
fn test_name(module: &str, scenario: &str) -> String {
    match module.split_once("::") {
        Some((_, rest)) => format!("{rest}::{scenario}"),
        None => scenario.to_string(),
    }
}

fn rerun_with_env_secret(module: &str, scenario: &str) -> Result<()> {
    let name = test_name(module, scenario);
    let exe = std::env::current_exe().context("cannot find the test binary to re-run")?;
    let value = format!("imagespec-conformance-env-secret-{}-{}", unique(), unique());
    let out = std::process::Command::new(&exe)
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV_SECRET_VAR, &value)
        .output()
        .with_context(|| format!("cannot re-run {}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    print!("{stdout}");
    if !out.status.success() {
        bail!("{name} failed in its child process ({})", out.status);
    }
    if !stdout.contains("1 passed") {
        bail!("the child process did not run {name} (no `1 passed` in its output)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::test_name;

    #[test]
    fn test_names_drop_the_crate() {
        assert_eq!(test_name("docker", "secret_mounts"), "secret_mounts");
        assert_eq!(
            test_name("docker::inner", "secret_mounts"),
            "inner::secret_mounts"
        );
    }
}
