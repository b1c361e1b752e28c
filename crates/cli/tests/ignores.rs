//! What stays out of an image: the root's `.dockerignore` and the built-in excludes
//! (`__pycache__/`, `*.pyc`, `.venv/`, `.DS_Store`), checked in a real image built by the real
//! Docker engine, and in the name (`imagespec tag`), which must not move when only an ignored
//! file changes. One selection decides both (`imagespec_core::inputs`).

use std::path::Path;
use std::process::Command;

mod common;

use common::{imagespec, stdout_of};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A project whose `src` holds everything a Python checkout grows; the root's `.dockerignore`
/// leaves out logs and keeps one virtualenv (`!src/tools/.venv/`).
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    let base = std::env::var("IMAGESPEC_PYTHON_IMAGE")
        .unwrap_or_else(|_| "localhost/imagespec/python:3.11-bookworm".into());
    let uv = std::env::var("IMAGESPEC_UV_IMAGE")
        .unwrap_or_else(|_| "localhost/imagespec/uv:latest".into());
    write(
        root,
        "spec.yaml",
        &format!(
            "name: imagespec-test-ignores\npython_version: \"3.11\"\nbase_image: {base}\n\
             builder_config: {{uv_image: {uv}}}\nsource_root: src\n"
        ),
    );
    write(root, ".dockerignore", "*.log\n!src/tools/.venv/\n");
    write(root, "src/app.py", "print('app')\n");
    write(root, "src/debug.log", "noise\n");
    write(root, "src/__pycache__/app.cpython-311.pyc", "bytecode");
    write(root, "src/pkg/__pycache__/m.cpython-311.pyc", "bytecode");
    write(root, "src/pkg/m.py", "X = 1\n");
    write(root, "src/pkg/legacy.pyc", "bytecode");
    write(root, "src/.venv/pyvenv.cfg", "home = /usr/local/bin\n");
    write(root, "src/.DS_Store", "finder");
    write(root, "src/pkg/.DS_Store", "finder");
    write(root, "src/tools/.venv/pyvenv.cfg", "kept on purpose\n");
    dir
}

fn tag(root: &Path) -> String {
    stdout_of(imagespec(root).args(["tag", "--no-flytekit", "spec.yaml"]))
        .trim()
        .to_string()
}

#[test]
fn the_name_does_not_move_when_only_an_ignored_file_changes() {
    let dir = project();
    let root = dir.path();
    let before = tag(root);
    write(root, "src/.venv/pyvenv.cfg", "home = /opt/elsewhere\n");
    write(root, "src/pkg/__pycache__/new.cpython-311.pyc", "more");
    write(root, "src/.DS_Store", "finder, again");
    write(root, "src/debug.log", "more noise\n");
    assert_eq!(tag(root), before, "only ignored files changed");
    // The kept virtualenv is part of the image, so of the name.
    write(root, "src/tools/.venv/pyvenv.cfg", "edited\n");
    let kept = tag(root);
    assert_ne!(kept, before, "a negated file counts");
    // Without the root's .dockerignore the logs count again.
    std::fs::remove_file(root.join(".dockerignore")).expect("rm");
    assert_ne!(
        tag(root),
        kept,
        "the root's .dockerignore decides the selection"
    );
}

#[test]
fn a_built_image_holds_the_selection_and_nothing_ignored() {
    let dir = project();
    let root = dir.path();
    // Run from elsewhere with `--root`: the `.dockerignore` read is the root's.
    let elsewhere = tempfile::tempdir().expect("tmp");
    let out = imagespec(elsewhere.path())
        .arg("--root")
        .arg(root)
        .args([
            "build",
            "--builder",
            "docker",
            "--no-push",
            "--force",
            "--no-flytekit",
        ])
        .arg(root.join("spec.yaml"))
        .output()
        .expect("run imagespec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build failed:\n{stderr}");
    let image = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(image.starts_with("imagespec-test-ignores:"), "{image}");

    let listing = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--entrypoint",
            "find",
            &image,
            ".",
            "-type",
            "f",
        ])
        .output()
        .expect("docker run");
    // The image is this test's own (a fresh tag of a temporary project): remove it either way.
    let removed = Command::new("docker")
        .args(["image", "rm", &image])
        .output()
        .expect("docker image rm");
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect();
    for kept in ["app.py", "pkg/m.py", "tools/.venv/pyvenv.cfg"] {
        assert!(files.iter().any(|f| f == kept), "{kept} missing: {files:?}");
    }
    for f in &files {
        let ignored = f.contains("__pycache__")
            || f.ends_with(".pyc")
            || f.ends_with(".DS_Store")
            || f.ends_with(".log")
            || (f.contains(".venv/") && !f.starts_with("tools/.venv/"));
        assert!(!ignored, "{f} is in the image: {files:?}");
    }
}
