//! The deployment recipes and the README's team configuration (issue 11, "Operating it"):
//! the configuration in "Running the service for a team" passes `imagespec serve
//! --check-config` with the files it names (real certificates from the openssl CLI), and a
//! missing one is refused naming the file and line; the systemd unit passes `systemd-analyze
//! verify`. The container recipe is built and run by `scripts/check-deploy.sh`.

#[path = "../../builder-local/tests/support/tls_proxy.rs"]
mod tls_proxy;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The YAML block after the README's `service-config-example` marker.
fn readme_config() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let after = readme
        .split_once("<!-- service-config-example")
        .expect("the marker in README.md")
        .1;
    let block = after
        .split_once("```yaml\n")
        .expect("a yaml block after the marker")
        .1;
    block
        .split_once("```")
        .expect("the block's end")
        .0
        .to_string()
}

fn check_config(dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imagespec"))
        .current_dir(dir)
        .args(["serve", "--config", "serve.yaml", "--check-config"])
        .env(
            "IMAGESPEC_TOKEN_ML_RESEARCH",
            "ml-research-token-0123456789",
        )
        .env("IMAGESPEC_TOKEN_DATA_ENG", "data-eng-token-0123456789ab")
        .env(
            "IMAGESPEC_TOKEN_DATA_ENG_NEXT",
            "data-eng-next-token-0123456789",
        )
        .env("IMAGESPEC_METRICS_TOKEN", "metrics-token-0123456789abcd")
        .output()
        .expect("run imagespec")
}

#[test]
fn the_readme_team_configuration_passes_check_config_and_a_missing_key_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = readme_config();
    std::fs::write(dir.path().join("serve.yaml"), &config).expect("write");
    std::fs::write(dir.path().join("auth.json"), r#"{"auths": {}}"#).expect("auth");
    let certs = tls_proxy::certificates();
    std::fs::create_dir_all(dir.path().join("certs")).expect("mkdir");
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(certs.client().join(f), dir.path().join("certs").join(f)).expect("copy");
    }
    let out = check_config(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok (2 worker(s), 3 token(s)"), "{stdout}");

    std::fs::remove_file(dir.path().join("certs/key.pem")).expect("rm");
    let out = check_config(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let line = config
        .lines()
        .position(|l| l.contains("key: certs/key.pem"))
        .expect("the tls line")
        + 1;
    assert!(
        stderr.contains(&format!(
            "serve.yaml:{line}: `workers[1].tls.key`: cannot read"
        )),
        "{stderr}"
    );
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("systemd-analyze is not installed: apt-get install systemd");
    };
    assert!(probe.status.success());
    let unit =
        std::fs::read_to_string(repo().join("deploy/imagespec-serve.service")).expect("unit");
    assert!(unit.contains("StateDirectory=imagespec") && unit.contains("User=imagespec"));
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("imagespec-serve.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/imagespec", env!("CARGO_BIN_EXE_imagespec")),
    )
    .expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    // The units it is ordered after may be absent on a build machine (docker.service).
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("docker.service"))
        .collect();
    assert!(problems.is_empty(), "{text}");
}
