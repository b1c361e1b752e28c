//! `--tag-scheme flytekit` against real flytekit 1.16.31 (installed by `scripts/dev-env.sh` in
//! `$IMAGESPEC_DEV_DIR/flytekit-venv`, named by `IMAGESPEC_FLYTEKIT_PYTHON`): every spec of
//! `tests/flytekit/corpus` must get flytekit's `image_name()` byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;

mod common;

use common::{flytekit_names, json_result, registry_login, stdout_of};

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flytekit")
}

fn imagespec(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("imagespec").expect("binary");
    cmd.current_dir(dir)
        .env("IMAGESPEC_CONFIG", "/nonexistent/imagespec-config.yaml")
        .env_remove("IMAGESPEC_VARIANT")
        .env_remove("IMAGESPEC_TAG_SCHEME");
    cmd
}

/// The corpus copied into a fresh directory (outside any git work tree), with the files a
/// repository would not hold: compiled Python that flytekit's standard ignores leave out.
fn corpus() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&here().join("corpus"), dir.path());
    let src = dir.path().join("files/src");
    std::fs::create_dir_all(src.join("__pycache__")).expect("mkdir");
    std::fs::write(src.join("__pycache__/main.cpython-311.pyc"), b"\x00pyc").expect("write");
    std::fs::write(src.join("pkg/old.pyc"), b"\x00pyc").expect("write");
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read corpus") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn imagespec_name(dir: &Path, spec: &str) -> String {
    let out = imagespec(dir)
        .args(["tag", "--tag-scheme", "flytekit", spec])
        .output()
        .expect("run");
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        format!("ERROR: {}", String::from_utf8_lossy(&out.stderr).trim())
    }
}

#[test]
fn every_corpus_spec_gets_flytekits_exact_name() {
    let dir = corpus();
    let mut specs: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".json"))
        .collect();
    specs.sort();
    assert!(specs.len() >= 22, "corpus: {specs:?}");
    let reference = flytekit_names(dir.path(), &specs);
    assert_eq!(reference.len(), specs.len(), "{reference:?}");
    let mut mismatches = Vec::new();
    for (spec, expected) in &reference {
        assert!(
            !expected.starts_with("ERROR"),
            "flytekit refused {spec}: {expected}"
        );
        let got = imagespec_name(dir.path(), spec);
        if &got != expected {
            mismatches.push(format!("{spec}: imagespec {got} != flytekit {expected}"));
        }
    }
    eprintln!(
        "{} of {} corpus specs get flytekit's exact name",
        specs.len() - mismatches.len(),
        specs.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// flytekit's `.gitignore` filter (`git ls-files -io --exclude-standard` in `source_root`),
/// reproduced with its quirk: the walked paths keep a relative root as a prefix, so the
/// pattern `secret.txt` leaves the file out of `source_root: .` but not of `source_root: src`.
#[test]
fn gitignored_source_files_count_exactly_where_flytekit_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let run = |args: &[&str]| {
        let out = Process::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}");
    };
    run(&["init", "-q"]);
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::write(root.join(".gitignore"), "secret.txt\n").expect("write");
    std::fs::write(root.join("src/main.py"), "print(1)\n").expect("write");
    let dot = "dot.yaml".to_string();
    let sub = "sub.yaml".to_string();
    std::fs::write(
        root.join(&dot),
        "name: dot\nsource_root: .\nsource_copy_mode: all\n",
    )
    .expect("write");
    std::fs::write(
        root.join(&sub),
        "name: sub\nsource_root: src\nsource_copy_mode: all\n",
    )
    .expect("write");
    let names = || (imagespec_name(root, &dot), imagespec_name(root, &sub));
    let before = names();
    std::fs::write(root.join("secret.txt"), "ignored").expect("write");
    std::fs::write(root.join("src/secret.txt"), "counted by flytekit").expect("write");
    let after = names();
    assert_eq!(before.0, after.0, "ignored in the `.` root");
    assert_ne!(
        before.1, after.1,
        "counted under `src`, as flytekit counts it"
    );
    let reference = flytekit_names(root, &[dot.clone(), sub.clone()]);
    assert_eq!((reference[0].1.clone(), reference[1].1.clone()), after);
    std::fs::write(root.join("kept.txt"), "kept").expect("write");
    let changed = imagespec_name(root, &dot);
    assert_ne!(
        changed, after.0,
        "a file that is not ignored changes the name"
    );
    assert_eq!(flytekit_names(root, &[dot])[0].1, changed);
}

/// Where flytekit's name depends on the Python process (the loaded-modules copy mode, the
/// default with `source_root`), imagespec refuses with the fix, in the file's position.
#[test]
fn loaded_modules_is_refused_with_the_fix() {
    let dir = corpus();
    std::fs::write(
        dir.path().join("auto.yaml"),
        "name: auto\nsource_root: files/src\n",
    )
    .expect("write");
    let out = imagespec(dir.path())
        .args(["tag", "--tag-scheme", "flytekit", "auto.yaml"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("auto.yaml:2:"), "located: {stderr}");
    assert!(
        stderr.contains("source_copy_mode: all"),
        "the fix: {stderr}"
    );
    // imagespec's own scheme names the same spec.
    imagespec(dir.path())
        .args(["tag", "auto.yaml"])
        .assert()
        .success();
}

/// The scheme comes from the flag, then `IMAGESPEC_TAG_SCHEME`, then the config file; the
/// default stays imagespec's (32 hex digits).
#[test]
fn the_scheme_comes_from_flag_env_or_config_and_defaults_to_imagespec() {
    let dir = corpus();
    let spec = "01-minimal.yaml";
    let tag = |cmd: &mut Command| {
        let out = cmd.output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let default = tag(imagespec(dir.path()).args(["tag", spec]));
    let hex = default.rsplit(':').next().unwrap_or_default();
    assert!(
        hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{default}"
    );
    let flag = tag(imagespec(dir.path()).args(["tag", "--tag-scheme", "flytekit", spec]));
    assert_ne!(flag, default);
    let env = tag(imagespec(dir.path())
        .env("IMAGESPEC_TAG_SCHEME", "flytekit")
        .args(["tag", spec]));
    assert_eq!(env, flag);
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "tag_scheme: flytekit\n").expect("write");
    let from_config = tag(imagespec(dir.path())
        .env("IMAGESPEC_CONFIG", &config)
        .args(["tag", spec]));
    assert_eq!(from_config, flag);
    let overridden = tag(imagespec(dir.path())
        .env("IMAGESPEC_CONFIG", &config)
        .args(["tag", "--tag-scheme", "imagespec", spec]));
    assert_eq!(overridden, default);
    std::fs::write(&config, "tag_scheme: pyflyte\n").expect("write");
    let out = imagespec(dir.path())
        .env("IMAGESPEC_CONFIG", &config)
        .args(["tag", spec])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("tag_scheme") && stderr.contains("imagespec or flytekit"),
        "{stderr}"
    );
}

/// `build --tag-scheme flytekit` checks for and pushes the image flytekit names, so a second
/// build (and pyflyte) finds it.
#[test]
fn build_pushes_under_flytekits_name_and_then_finds_it() {
    let (config, registry) = registry_login();
    let dir = corpus();
    let spec = "build.yaml";
    std::fs::write(
        dir.path().join(spec),
        format!(
            "name: fk-build-{pid}\nregistry: {registry}/flytekit-scheme\n\
             base_image: localhost/imagespec/python:3.11-bookworm\n\
             builder_config: {{uv_image: localhost/imagespec/uv:latest}}\n\
             env: {{TEST_RUN: \"{pid}\"}}\n\
             source_root: files/src\nsource_copy_mode: all\n",
            pid = std::process::id()
        ),
    )
    .expect("write");
    let expected = flytekit_names(dir.path(), &[spec.to_string()])[0].1.clone();
    let build = |dir: &Path| {
        json_result(imagespec(dir).env("DOCKER_CONFIG", config.path()).args([
            "--output",
            "json",
            "build",
            "--tag-scheme",
            "flytekit",
            spec,
        ]))
    };
    let first = build(dir.path());
    assert_eq!(first["outcome"]["image"].as_str(), Some(expected.as_str()));
    assert_eq!(first["outcome"]["action"], "built");
    let second = build(dir.path());
    assert_eq!(second["outcome"]["image"].as_str(), Some(expected.as_str()));
    assert_eq!(second["outcome"]["action"], "exists");
}

/// `--explain` shows the text whose md5 is flytekit's tag, as flytekit builds it.
#[test]
fn explain_shows_the_text_flytekit_hashes() {
    let dir = corpus();
    let stdout = stdout_of(imagespec(dir.path()).args([
        "tag",
        "--tag-scheme",
        "flytekit",
        "--explain",
        "01-minimal.yaml",
    ]));
    assert!(
        stdout.contains("md5 of {'name': 'minimal', 'platform': 'linux/amd64'}"),
        "{stdout}"
    );
}

/// The build service names images by imagespec's scheme, so a remote build under flytekit's
/// name is refused before anything is sent (no server is contacted: the URL has none).
#[test]
fn the_remote_builder_is_refused_under_the_flytekit_scheme() {
    let dir = corpus();
    let out = imagespec(dir.path())
        .env("IMAGESPEC_REMOTE_URL", "http://127.0.0.1:9")
        .env("IMAGESPEC_REMOTE_TOKEN", "unused")
        .args([
            "build",
            "--tag-scheme",
            "flytekit",
            "--builder",
            "union",
            "01-minimal.yaml",
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("--tag-scheme flytekit") && stderr.contains("--builder default"),
        "{stderr}"
    );
}
