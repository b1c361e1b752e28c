//! Issue 14, registry build caches for CI: `builder_options.cache_from` / `cache_to` and the
//! `--cache-from` / `--cache-to` flags. The settings are not part of imagespec's image name (and
//! count in flytekit's, as flytekit counts them); what an engine cannot do is refused; and a
//! second CI "runner" with an empty engine reuses the first one's layers through the registry.
//!
//! The runners are two Podman services of this test's own (`podman --root` in a temporary
//! directory, on their own sockets), so that "empty" is real without pruning the engines other
//! builds share; their base images come from the dev environment's registry.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::{
    docker_login, flytekit_name, imagespec, nonce, registry_env, registry_login, registry_var,
    stdout_of, write,
};

const SPEC: &str =
    "name: cached\nbase_image: localhost/imagespec/python:3.11-bookworm\ncommands: [echo one]\n";

#[test]
fn cache_settings_are_not_part_of_the_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "plain.yaml", SPEC);
    write(
        dir.path(),
        "cached.yaml",
        &format!(
            "{SPEC}builder_options:\n  cache_from: [\"127.0.0.1:5000/ci/cache\"]\n  cache_to: type=registry,ref=127.0.0.1:5000/ci/cache,mode=max\n"
        ),
    );
    let tag = |args: &[&str]| {
        stdout_of(imagespec(dir.path()).arg("tag").args(args))
            .trim()
            .to_string()
    };
    let plain = tag(&["plain.yaml"]);
    assert_eq!(tag(&["cached.yaml"]), plain, "builder_options cache keys");
    // flytekit hashes `builder_options` whole: its scheme gives flytekit's own name.
    let flytekit = tag(&["cached.yaml", "--tag-scheme", "flytekit"]);
    assert_eq!(flytekit, flytekit_name(dir.path(), "cached.yaml"));
    assert_ne!(flytekit, tag(&["plain.yaml", "--tag-scheme", "flytekit"]));
    // No warning about unknown keys: imagespec reads them.
    let out = imagespec(dir.path())
        .args(["validate", "cached.yaml"])
        .output()
        .expect("validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("builder_options.cache"), "{stderr}");
}

#[test]
fn a_bad_cache_value_is_named_with_its_line_and_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "spec.yaml",
        &format!("{SPEC}builder_options:\n  cache_to: type=local,dest=/tmp/c\n"),
    );
    let out = imagespec(dir.path())
        .args(["validate", "spec.yaml"])
        .output()
        .expect("validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("builder_options.cache_to")
            && stderr.contains("spec.yaml:5")
            && stderr.contains("type=registry"),
        "{stderr}"
    );
    // A bad flag value is a usage error naming the flag.
    let out = imagespec(dir.path())
        .args([
            "build",
            "spec.yaml",
            "--no-push",
            "--cache-from",
            "type=inline",
        ])
        .output()
        .expect("build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--cache-from"), "{stderr}");
}

/// Docker's `/build` has no cache export: a registry `cache_to` is refused before any step,
/// with the inline cache as the fix, rather than dropped.
#[test]
fn docker_refuses_a_registry_cache_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "spec.yaml", SPEC);
    let out = imagespec(dir.path())
        .args([
            "build",
            "spec.yaml",
            "--builder",
            "docker",
            "--no-push",
            "--force",
            "--cache-to",
            "type=registry,ref=127.0.0.1:5000/ci/cache,mode=max",
        ])
        .output()
        .expect("build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot export a cache to a registry") && stderr.contains("type=inline"),
        "{stderr}"
    );
    assert!(!stderr.contains("#1 "), "a step ran: {stderr}");
}

/// The build service builds on its own engine: a cache flag would not reach it, so it is
/// refused (exit 4) before the service is contacted (nothing answers at its address).
#[test]
fn cache_flags_are_refused_for_the_build_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "spec.yaml", SPEC);
    let out = imagespec(dir.path())
        .env("IMAGESPEC_REMOTE_URL", "http://127.0.0.1:9")
        .env("IMAGESPEC_REMOTE_TOKEN", "t")
        .args(["build", "spec.yaml", "--builder", "union"])
        .args(["--cache-from", "127.0.0.1:5000/ci/cache"])
        .output()
        .expect("build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("--cache-from") && stderr.contains("builder_options"),
        "{stderr}"
    );
}

/// A Podman service on its own storage (a fresh CI runner), stopped and removed on drop.
struct Runner {
    dir: tempfile::TempDir,
    service: Child,
}

impl Runner {
    fn start() -> Runner {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = Command::new("podman")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", Self::socket_of(dir.path()).display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start a podman service");
        let runner = Runner { dir, service };
        for _ in 0..100 {
            if std::os::unix::net::UnixStream::connect(runner.socket()).is_ok() {
                return runner;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the podman service at {} did not start", runner.engine());
    }

    fn socket_of(dir: &Path) -> PathBuf {
        dir.join("podman.sock")
    }

    fn socket(&self) -> PathBuf {
        Self::socket_of(self.dir.path())
    }

    fn engine(&self) -> String {
        format!("unix://{}", self.socket().display())
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.service.kill();
        let _ = self.service.wait();
        // Podman bind-mounts its overlay directory onto itself.
        let _ = Command::new("umount")
            .arg(self.dir.path().join("root/overlay"))
            .status();
    }
}

/// `(label, cached)` of every finished step of a `--output json` build.
fn steps(stdout: &str) -> Vec<(String, bool)> {
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    events
        .iter()
        .filter(|e| e["event"] == "step_done")
        .map(|done| {
            let label = events
                .iter()
                .rev()
                .find(|e| e["event"] == "step" && e["index"] == done["index"])
                .and_then(|e| e["label"].as_str().or(e["name"].as_str()))
                .unwrap_or_default()
                .to_string();
            (label, done["cached"].as_bool().unwrap_or(false))
        })
        .collect()
}

#[test]
fn a_fresh_podman_runner_reuses_the_first_runners_layers_from_the_registry() {
    let (login, registry) = registry_login();
    let python = std::env::var("IMAGESPEC_MULTI_PYTHON_IMAGE")
        .unwrap_or_else(|_| format!("{registry}/imagespec/multi/python:3.11-bookworm"));
    let uv = std::env::var("IMAGESPEC_MULTI_UV_IMAGE")
        .unwrap_or_else(|_| format!("{registry}/imagespec/multi/uv:latest"));
    let nonce = nonce();
    let cache = format!("{registry}/build-cache-test/{}", nonce.replace('-', "x"));
    let dir = tempfile::tempdir().expect("tempdir");
    // The cache export is the spec's; the import is the second runner's flag.
    write(
        dir.path(),
        "spec.yaml",
        &format!(
            "name: build-cache\nbase_image: {python}\nplatform: linux/amd64\n\
             builder_config: {{uv_image: {uv}}}\npackages: [six]\n\
             commands: [\"echo {nonce} > /nonce\"]\n\
             builder_options: {{cache_to: \"{cache}\"}}\n"
        ),
    );
    let build = |runner: &Runner, extra: &[&str]| {
        stdout_of(
            imagespec(dir.path())
                .env("DOCKER_CONFIG", login.path())
                .args(["--output", "json", "build", "spec.yaml", "--no-flytekit"])
                .args(["--builder", "podman", "--engine", &runner.engine()])
                .args(["--no-push", "--force"])
                .args(extra),
        )
    };

    let first = steps(&build(&Runner::start(), &[]));
    // Whether any step whose label has `label` ran (was not served from a cache).
    let ran = |s: &[(String, bool)], label: &str| {
        let matching: Vec<bool> = s
            .iter()
            .filter(|(l, _)| l.contains(label))
            .map(|(_, cached)| !cached)
            .collect();
        assert!(!matching.is_empty(), "no `{label}` step in {s:?}");
        matching.contains(&true)
    };
    assert!(
        ran(&first, "command 1"),
        "an empty engine ran it: {first:?}"
    );

    // A second runner starts empty; without a cache import it would run every step again.
    let second = steps(&build(&Runner::start(), &["--cache-from", &cache]));
    for label in ["python env", "dependencies", "command 1"] {
        assert!(
            !ran(&second, label),
            "`{label}` ran again on the second runner: {second:?}"
        );
    }
}

/// The config blob of `image` (`REGISTRY/REPO:TAG`) in the dev environment's registry.
fn image_config(image: &str, user: &str, password: &str) -> String {
    let (registry, rest) = image.split_once('/').expect("registry/repo");
    let (repo, tag) = rest.rsplit_once(':').expect("repo:tag");
    let get = |path: &str, accept: &str| {
        let out = Command::new("curl")
            .args(["-sf", "-u", &format!("{user}:{password}"), "-H"])
            .arg(format!("Accept: {accept}"))
            .arg(format!("http://{registry}/v2/{repo}/{path}"))
            .output()
            .expect("curl");
        assert!(out.status.success(), "GET {path}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let manifest: serde_json::Value = serde_json::from_str(&get(
        &format!("manifests/{tag}"),
        "application/vnd.docker.distribution.manifest.v2+json",
    ))
    .expect("manifest");
    let digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    get(&format!("blobs/{digest}"), "*/*")
}

/// Docker: `cache_to: type=inline` puts BuildKit's cache metadata in the pushed image's config,
/// and `--cache-from IMAGE` makes BuildKit import it (with the image's registry credentials).
#[test]
fn docker_exports_an_inline_cache_and_imports_it() {
    let env = registry_env();
    let registry = registry_var(&env, "IMAGESPEC_REGISTRY");
    let (user, password) = (
        registry_var(&env, "IMAGESPEC_REGISTRY_USER"),
        registry_var(&env, "IMAGESPEC_REGISTRY_PASSWORD"),
    );
    let login = docker_login(&registry, &user, &password);
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "spec.yaml",
        &format!(
            "{SPEC}registry: {registry}/build-cache-inline\n\
             builder_config: {{uv_image: localhost/imagespec/uv:latest}}\n\
             env: {{RUN_NONCE: \"{}\"}}\n",
            nonce()
        ),
    );
    let run = |args: &[&str]| {
        stdout_of(
            imagespec(dir.path())
                .env("DOCKER_CONFIG", login.path())
                .args(["--output", "json", "build", "spec.yaml", "--no-flytekit"])
                .args(["--builder", "docker"])
                .args(args),
        )
    };
    run(&["--cache-to", "type=inline"]);
    let image = stdout_of(
        imagespec(dir.path())
            .env("DOCKER_CONFIG", login.path())
            .args(["tag", "spec.yaml", "--no-flytekit"]),
    )
    .trim()
    .to_string();
    // The forced rebuild below retags the name: the first image would be left dangling.
    let first_id = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let config = image_config(&image, &user, &password);
    assert!(
        config.contains("moby.buildkit.cache.v0"),
        "no inline cache in the pushed config: {config}"
    );

    let again = run(&["--no-push", "--force", "--cache-from", &image]);
    // This test's own images only (the engine is shared).
    let _ = Command::new("docker").args(["rmi", &image]).output();
    if !first_id.is_empty() {
        let _ = Command::new("docker").args(["rmi", &first_id]).output();
    }
    assert!(
        again.contains(&format!("importing cache manifest from {image}")),
        "BuildKit did not import the cache: {again}"
    );
}
