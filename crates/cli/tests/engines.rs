//! `imagespec build` and the engine the user names: used, or exit 4 (the builder cannot be
//! used) saying what was tried — never a silent build on another engine. Real engines (the
//! dev environment's Podman socket) and faults a real engine cannot produce: a unix path that
//! does not exist, and a FAKE engine on 127.0.0.1 that accepts connections and never answers.
//! Every build is `--force --no-push`, so a wrong fallback would build (and exit 0), never push.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

const PODMAN: &str = "unix:///run/podman/podman.sock";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/requirements")
}

/// `imagespec build --force --no-push spec.yaml` with no engine named by the environment:
/// no `DOCKER_HOST`, `CONTAINER_HOST`, `DOCKER_CONTEXT`, and an empty Docker config directory.
fn build(docker_config: &Path) -> Command {
    let mut cmd = Command::cargo_bin("imagespec").expect("binary");
    cmd.current_dir(example())
        .env("IMAGESPEC_CONFIG", "/nonexistent/imagespec-config.yaml")
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("DOCKER_HOST")
        .env_remove("CONTAINER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("IMAGESPEC_VARIANT")
        .env_remove("FLYTE_FORCE_PUSH_IMAGE_SPEC")
        .env_remove("FLYTE_IMG_FAST_FAIL")
        // Bounds the test should a regression make it hang (the fake never answers).
        .timeout(Duration::from_secs(120))
        .args(["build", "--force", "--no-push", "spec.yaml"]);
    cmd
}

/// Runs `cmd`; asserts exit 4 and returns stderr.
fn exits_4(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run imagespec");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(4), "stderr:\n{stderr}");
    stderr
}

/// A FAKE engine: accepts TCP connections on 127.0.0.1 and never answers.
fn silent_engine() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    format!("tcp://{addr}")
}

#[test]
fn no_engine_at_the_engine_flag_exits_4() {
    let config = tempfile::tempdir().expect("tempdir");
    let dead = format!("unix://{}/no-engine.sock", config.path().display());
    let stderr = exits_4(build(config.path()).args(["--engine", &dead]));
    assert!(stderr.contains(&dead), "{stderr}");
}

#[test]
fn a_dead_docker_host_exits_4_without_falling_back() {
    let config = tempfile::tempdir().expect("tempdir");
    let dead = format!("unix://{}/no-engine.sock", config.path().display());
    let stderr = exits_4(build(config.path()).env("DOCKER_HOST", &dead));
    assert!(
        stderr.contains(&dead) && stderr.contains("DOCKER_HOST"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("/var/run/docker.sock"),
        "another engine was tried:\n{stderr}"
    );
}

#[test]
fn a_hanging_container_host_exits_4() {
    let config = tempfile::tempdir().expect("tempdir");
    let fake = silent_engine();
    let stderr = exits_4(build(config.path()).env("CONTAINER_HOST", &fake));
    assert!(
        stderr.contains(&fake) && stderr.contains("/_ping"),
        "{stderr}"
    );
}

#[test]
fn the_docker_builder_with_docker_host_at_podman_exits_4() {
    let config = tempfile::tempdir().expect("tempdir");
    let stderr = exits_4(
        build(config.path())
            .env("DOCKER_HOST", PODMAN)
            .args(["--builder", "docker"]),
    );
    assert!(stderr.contains("answered as Podman"), "{stderr}");
}

#[test]
fn a_docker_context_that_does_not_exist_exits_4() {
    let config = tempfile::tempdir().expect("tempdir");
    let stderr = exits_4(build(config.path()).env("DOCKER_CONTEXT", "no-such-context"));
    assert!(
        stderr.contains("no-such-context") && stderr.contains("docker context ls"),
        "{stderr}"
    );
}

#[test]
fn without_force_the_existence_check_of_a_dead_engine_exits_4_not_5() {
    let config = tempfile::tempdir().expect("tempdir");
    let dead = format!("unix://{}/no-engine.sock", config.path().display());
    let mut cmd = Command::cargo_bin("imagespec").expect("binary");
    cmd.current_dir(example())
        .env("IMAGESPEC_CONFIG", "/nonexistent/imagespec-config.yaml")
        .env("DOCKER_CONFIG", config.path())
        .env_remove("DOCKER_HOST")
        .env_remove("CONTAINER_HOST")
        .env_remove("IMAGESPEC_VARIANT")
        .timeout(Duration::from_secs(120))
        // `--no-push`: the image would be looked for in the engine's own store.
        .args(["build", "--no-push", "--if-unknown", "assume", "spec.yaml"])
        .args(["--engine", &dead]);
    let stderr = exits_4(&mut cmd);
    assert!(stderr.contains(&dead), "{stderr}");
    assert!(!stderr.contains("assum"), "no policy applies: {stderr}");
}

#[test]
fn an_unreachable_build_service_exits_4_not_5() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::cargo_bin("imagespec").expect("binary");
    cmd.current_dir(example())
        .env("IMAGESPEC_CONFIG", "/nonexistent/imagespec-config.yaml")
        .env("IMAGESPEC_REMOTE_URL", &url)
        .env("IMAGESPEC_REMOTE_TOKEN", "t0ken-for-nothing")
        .env("IMAGESPEC_NETWORK_TIMEOUT", "2")
        .env_remove("IMAGESPEC_VARIANT")
        .timeout(Duration::from_secs(120))
        .args([
            "build",
            "--builder",
            "union",
            "--if-unknown",
            "build",
            "spec.yaml",
        ]);
    let stderr = exits_4(&mut cmd);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(
        !stderr.contains("t0ken"),
        "the token never appears: {stderr}"
    );
}
