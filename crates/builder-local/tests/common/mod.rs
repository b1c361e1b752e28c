//! Helpers for the tests against the real engines and registry started by `scripts/dev-env.sh`.
//! A test that needs an engine fails (never skips) when it is not there.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use imagespec_builder_local::{ContextWriter, EngineChoice, LocalBuilder};
use imagespec_core::build::{BuildEvent, EventSink};

pub const DOCKER: &str = "unix:///var/run/docker.sock";
pub const PODMAN: &str = "unix:///run/podman/podman.sock";
pub const PYTHON_IMAGE: &str = "localhost/imagespec/python:3.11-bookworm";
pub const UV_IMAGE: &str = "localhost/imagespec/uv:latest";
pub const DEBIAN_IMAGE: &str = "localhost/imagespec/debian:bookworm-slim";

const HINT: &str = "start the development environment with `bash scripts/dev-env.sh` (as root)";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A connected builder for one engine, or a panic that says how to get one.
pub async fn builder(choice: EngineChoice) -> LocalBuilder {
    let endpoint = match choice {
        EngineChoice::Podman => PODMAN,
        _ => DOCKER,
    };
    let b = LocalBuilder::new(choice, Some(endpoint.to_string()));
    if let Err(e) = b.engine().await {
        panic!("this test needs {choice:?} at {endpoint}: {e}\n{HINT}");
    }
    b
}

/// The CLI of an engine, for checks on the result (`docker run`, `podman save`, ...).
pub fn cli(choice: EngineChoice) -> &'static str {
    match choice {
        EngineChoice::Podman => "podman",
        _ => "docker",
    }
}

/// Runs a command; panics with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}\n{HINT}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

/// Removes an image, ignoring errors (cleanup).
pub fn remove_image(choice: EngineChoice, image: &str) {
    let _ = Command::new(cli(choice))
        .args(["rmi", "-f", image])
        .output();
}

/// A unique suffix for image names, so tests can run in parallel.
pub fn unique() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// A context writer for a tar holding these files.
pub fn context(files: Vec<(&'static str, Vec<u8>)>) -> ContextWriter {
    Box::new(move |w| {
        let mut b = tar::Builder::new(w);
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, name, &data[..])
                .map_err(|e| e.to_string())?;
        }
        b.finish().map_err(|e| e.to_string())
    })
}

/// An event sink that records.
pub fn recorder() -> (EventSink, Arc<Mutex<Vec<BuildEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    (
        EventSink::new(move |ev| e.lock().unwrap_or_else(|p| p.into_inner()).push(ev)),
        events,
    )
}

/// The dev registry's address, user and password from `.dev-env/registry.env`.
pub fn registry() -> (String, String, String) {
    let dir = std::env::var("IMAGESPEC_DEV_DIR")
        .map_or_else(|_| repo_root().join(".dev-env"), PathBuf::from);
    let path = dir.join("registry.env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}\n{HINT}", path.display()));
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{key} missing from {}\n{HINT}", path.display()))
    };
    (
        get("IMAGESPEC_REGISTRY"),
        get("IMAGESPEC_REGISTRY_USER"),
        get("IMAGESPEC_REGISTRY_PASSWORD"),
    )
}

/// A temporary `DOCKER_CONFIG` directory whose `config.json` logs into `registry`.
pub fn docker_config(registry: &str, user: &str, password: &str) -> tempfile::TempDir {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = serde_json::json!({ "auths": { registry: { "auth": auth } } });
    std::fs::write(dir.path().join("config.json"), config.to_string()).expect("write config.json");
    dir
}

/// Credential sources as the environment would give them with `DOCKER_CONFIG=<dir>` (and no
/// Podman auth files), without touching this process's environment.
pub fn credentials_in(dir: &Path) -> imagespec_registry::CredentialSources {
    let dir = dir.as_os_str().to_owned();
    imagespec_registry::CredentialSources::from_vars(move |k| {
        (k == "DOCKER_CONFIG").then(|| dir.clone())
    })
}

/// Removes an image when dropped, so a failing test leaves nothing behind either.
pub struct Cleanup(pub EngineChoice, pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_image(self.0, &self.1);
    }
}
