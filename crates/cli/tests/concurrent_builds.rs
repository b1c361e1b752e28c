//! The `imagespec` binary against the real Docker engine and the dev environment's
//! password-protected registry: concurrent builds of one new spec on one machine build it once,
//! and refused registry credentials are an error whatever `--if-unknown` says.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::{
    docker_login, isolated as imagespec, nonce, registry_env as dev_registry_env, registry_var,
};

/// The dev environment's registry, user and password.
fn registry_env() -> (String, String, String) {
    let env = dev_registry_env();
    (
        registry_var(&env, "IMAGESPEC_REGISTRY"),
        registry_var(&env, "IMAGESPEC_REGISTRY_USER"),
        registry_var(&env, "IMAGESPEC_REGISTRY_PASSWORD"),
    )
}

/// A spec no registry has seen: its command is unique to this run.
fn new_spec(dir: &Path, marker: &str) {
    std::fs::write(
        dir.join("spec.yaml"),
        format!(
            "name: concurrent\n\
             base_image: localhost/imagespec/python:3.11-bookworm\n\
             builder_config: {{uv_image: localhost/imagespec/uv:latest}}\n\
             commands: ['echo {marker}']\n"
        ),
    )
    .expect("write spec");
}

#[test]
fn six_concurrent_builds_of_one_new_spec_build_it_once_and_all_succeed() {
    const N: usize = 6;
    let (registry, user, password) = registry_env();
    let config = docker_login(&registry, &user, &password);
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = nonce();
    new_spec(dir.path(), &marker);
    let namespace = format!("{registry}/concurrent-{marker}");

    let mut children: Vec<_> = (0..N)
        .map(|_| {
            imagespec(dir.path())
                .env("DOCKER_CONFIG", config.path())
                .args([
                    "--output",
                    "json",
                    "build",
                    "spec.yaml",
                    "--builder",
                    "docker",
                ])
                .args(["--registry", &namespace])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn imagespec")
        })
        .collect();
    // Bounded: a process that is not done within the deadline fails the test (and is killed).
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut done = [false; N];
    while done.iter().any(|d| !d) {
        for (i, child) in children.iter_mut().enumerate() {
            if !done[i] && child.try_wait().expect("wait").is_some() {
                done[i] = true;
            }
        }
        if Instant::now() > deadline {
            for child in &mut children {
                let _ = child.kill();
            }
            panic!("the builds did not finish within 600 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut built = 0;
    let mut images = Vec::new();
    let mut waited = 0;
    for child in children {
        let out = child.wait_with_output().expect("output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "exit {:?}: {stderr}",
            out.status.code()
        );
        let result: serde_json::Value = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["event"] == "result")
            .unwrap_or_else(|| panic!("no result line: {stdout}"));
        match result["outcome"]["action"].as_str() {
            Some("built") => built += 1,
            Some("exists") => {}
            other => panic!("unexpected action {other:?}: {result}"),
        }
        images.push(
            result["outcome"]["image"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        if stderr.contains("waiting for another imagespec process building") {
            waited += 1;
        }
    }
    assert_eq!(built, 1, "exactly one process built the image");
    assert!(
        images
            .iter()
            .all(|i| i == &images[0] && i.starts_with(&namespace)),
        "{images:?}"
    );
    // The build takes seconds and all six start at once, so the others waited, visibly.
    assert!(waited >= 1, "no process said it was waiting");
}

#[test]
fn refused_registry_credentials_exit_4_even_with_if_unknown_assume() {
    let (registry, user, _) = registry_env();
    let wrong = "Wr0ng-Passw0rd-never-printed";
    let config = docker_login(&registry, &user, wrong);
    let dir = tempfile::tempdir().expect("tempdir");
    new_spec(dir.path(), &nonce());
    let namespace = format!("{registry}/refused");
    for policy in ["fail", "build", "assume"] {
        let out = imagespec(dir.path())
            .env("DOCKER_CONFIG", config.path())
            .args([
                "build",
                "spec.yaml",
                "--builder",
                "docker",
                "--registry",
                &namespace,
            ])
            .args(["--if-unknown", policy])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{policy}: {stderr}");
        let config_file = config.path().join("config.json");
        assert!(
            stderr.contains("were rejected") && stderr.contains(&config_file.display().to_string()),
            "{policy}: names the refused credentials' source: {stderr}"
        );
        assert!(
            !stderr.contains(wrong),
            "{policy}: leaks the password: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{policy}: no image reported");
    }
}

#[test]
fn an_unusable_network_timeout_is_refused_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    new_spec(dir.path(), &nonce());
    let out = imagespec(dir.path())
        .env("IMAGESPEC_NETWORK_TIMEOUT", "soon")
        .args([
            "build",
            "spec.yaml",
            "--builder",
            "docker",
            "--registry",
            "127.0.0.1:1/x",
        ])
        .args(["--if-unknown", "assume"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("IMAGESPEC_NETWORK_TIMEOUT=`soon`") && stderr.contains("number of seconds"),
        "{stderr}"
    );
}
