//! Symlinks and special files in a spec's trees: every command agrees on what they mean.

use std::os::unix::fs::symlink;

mod common;

use common::imagespec;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    std::fs::create_dir_all(root.join("src/app")).expect("mkdir");
    std::fs::write(root.join("src/app/main.py"), "print(1)\n").expect("write");
    std::fs::write(
        root.join("spec.yaml"),
        "name: links\nregistry: 127.0.0.1:9/none\nsource_root: src\n",
    )
    .expect("write");
    dir
}

/// Every command that reads the spec's files, with its arguments.
const COMMANDS: &[&[&str]] = &[
    &["validate", "spec.yaml"],
    &["tag", "spec.yaml"],
    &["dockerfile", "spec.yaml"],
    &["context", "spec.yaml", "--out", "ctx.tar"],
    &["build", "spec.yaml", "--dry-run"],
    &["build", "spec.yaml", "--no-push"],
];

#[test]
fn a_link_inside_the_tree_passes_every_command() {
    let dir = project();
    symlink("app/main.py", dir.path().join("src/run.py")).expect("link");
    for args in COMMANDS.iter().take(4) {
        let out = imagespec(dir.path()).args(*args).output().expect("run");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tar = std::fs::read(dir.path().join("ctx.tar")).expect("context written");
    let mut archive = tar::Archive::new(tar.as_slice());
    let link = archive
        .entries()
        .expect("tar")
        .filter_map(Result::ok)
        .find(|e| e.path().is_ok_and(|p| p.ends_with("run.py")))
        .expect("the link is in the context");
    assert!(link.header().entry_type().is_symlink());
}

#[test]
fn a_link_leaving_the_tree_is_refused_by_every_command_with_the_file_and_the_fix() {
    let dir = project();
    symlink("/etc/hostname", dir.path().join("src/app/host")).expect("link");
    for args in COMMANDS {
        let out = imagespec(dir.path()).args(*args).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains("src/app/host") && stderr.contains("outside the tree"),
            "{args:?} names the link: {stderr}"
        );
        assert!(
            stderr.contains(".dockerignore"),
            "{args:?} gives the fix: {stderr}"
        );
        assert!(!stderr.contains("changed while"), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("ctx.tar").exists(), "nothing half-written");
}

#[test]
fn a_fifo_in_the_tree_is_refused_at_once() {
    let dir = project();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("src/pipe"))
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable; skipping");
        return;
    }
    for args in COMMANDS.iter().take(2) {
        let out = imagespec(dir.path())
            .args(*args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("FIFO"), "{args:?}: {stderr}");
    }
}
