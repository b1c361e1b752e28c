//! One selection of a spec's files (`imagespec_core::inputs`): the name, the context and every
//! other consumer see the same files, symlinks included, and refuse the same ones.
#![allow(clippy::unwrap_used)]

#[path = "fixtures/plan/support.rs"]
mod support;

use std::os::unix::fs::symlink;

use imagespec_core::hash::HashError;
use imagespec_core::inputs::{self, PathContent};
use imagespec_core::plan::{BuildPlan, PlanError};
use imagespec_core::resolve_image;
use imagespec_core::tree::TreeError;
use sha2::{Digest, Sha256};
use support::{context_bytes, load};

fn write(root: &std::path::Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const SPEC: &str = "name: links\nsource_root: src\ncopy: [conf]\n";

#[test]
fn a_link_inside_the_tree_stays_a_link_in_the_name_and_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "src/app/main.py", "print(1)\n");
    write(root, "conf/a.toml", "a = 1\n");
    symlink("app/main.py", root.join("src/entry.py")).unwrap();
    symlink("missing.toml", root.join("conf/dangling.toml")).unwrap();
    let spec = load(root, SPEC);

    // The selection: the link is an entry of its own, hashed by its target's text.
    let selected = inputs::select(&spec).unwrap();
    let source = selected.source_root.as_ref().unwrap();
    let files = source.files();
    let link = files.iter().find(|f| f.rel == "entry.py").unwrap();
    assert!(link.symlink);
    assert_eq!(
        link.digest,
        <[u8; 32]>::from(Sha256::digest(b"app/main.py"))
    );
    assert!(matches!(source.content, PathContent::Dir(_)));

    // `tag` and the context agree: a plan is made and the tar holds the links as links.
    let image = resolve_image(&spec).unwrap();
    let plan = BuildPlan::new(&spec, &image, None).unwrap();
    let bytes = context_bytes(&plan);
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut links = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.header().entry_type().is_symlink() {
            links.push((
                entry.path().unwrap().to_string_lossy().into_owned(),
                entry
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            ));
        }
    }
    assert_eq!(
        links,
        [
            (
                "copy/conf/dangling.toml".to_string(),
                "missing.toml".to_string()
            ),
            ("source/entry.py".to_string(), "app/main.py".to_string()),
        ]
    );

    // Retargeting the link changes the name.
    std::fs::remove_file(root.join("src/entry.py")).unwrap();
    symlink("app/../app/main.py", root.join("src/entry.py")).unwrap();
    assert_ne!(resolve_image(&load(root, SPEC)).unwrap().name, image.name);
}

#[test]
fn a_link_that_leaves_the_tree_is_refused_by_the_name_and_the_plan_alike() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "src/app/main.py", "print(1)\n");
    write(root, "conf/a.toml", "a = 1\n");
    write(root, "secret.txt", "not for the image\n");
    // Inside the root, but outside the `source_root` tree the link belongs to.
    symlink("../../secret.txt", root.join("src/app/leak")).unwrap();
    let spec = load(root, SPEC);
    let from_tag = resolve_image(&spec).unwrap_err();
    assert!(
        matches!(&from_tag, HashError::Tree { field, source: TreeError::LinkLeavesTree { .. } }
            if field == "source_root"),
        "{from_tag}"
    );
    let text = from_tag.to_string();
    assert!(text.contains("src/app/leak"), "names the file: {text}");
    assert!(text.contains(".dockerignore"), "says how to fix it: {text}");
    assert!(!text.contains("changed while"), "{text}");

    // Ignoring it is the fix.
    write(root, "src/.dockerignore", "app/leak\n");
    let spec = load(root, SPEC);
    let image = resolve_image(&spec).unwrap();
    BuildPlan::new(&spec, &image, None).unwrap();
}

#[test]
fn special_files_and_pseudo_file_systems_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "src/a.py", "x\n");
    let fifo = root.join("requirements.txt");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable; skipping");
        return;
    }
    // A FIFO as the requirements file would block `open` forever: refused when the spec loads.
    let err = imagespec_core::LoadedSpec::from_text(
        "name: fifo\nrequirements: requirements.txt\n",
        None,
        root,
    )
    .unwrap_err();
    assert_eq!(err.diagnostics[0].field, "requirements", "{err:?}");
    // And by the selection itself, for a library user who builds a `LoadedSpec` another way.
    let mut spec = load(root, "name: fifo\n");
    spec.spec.requirements = Some("requirements.txt".into());
    let err = resolve_image(&spec).unwrap_err();
    assert!(
        matches!(&err, HashError::NotARegularFile { field, what, .. }
            if field == "requirements" && what.contains("FIFO")),
        "{err}"
    );

    // `source_root: /proc/self` reaches the whole machine.
    let spec = load(root, "name: proc\nsource_root: /proc/self\n");
    let err = resolve_image(&spec).unwrap_err();
    assert!(
        matches!(
            &err,
            HashError::Tree {
                source: TreeError::PseudoFileSystem { fs: "proc", .. },
                ..
            }
        ),
        "{err}"
    );
    let spec = load(root, "name: proc\nrequirements: /proc/self/status\n");
    let err = resolve_image(&spec).unwrap_err();
    assert!(
        matches!(&err, HashError::Tree { field, source: TreeError::PseudoFileSystem { .. } }
            if field == "requirements"),
        "{err}"
    );
}

#[test]
fn the_plan_reports_the_same_refusal_as_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "src/a.py", "x\n");
    let spec = load(root, "name: late\nsource_root: src\n");
    let image = resolve_image(&spec).unwrap();
    // A link that leaves the tree appears after the name was computed.
    symlink("/etc/hostname", root.join("src/host")).unwrap();
    let err = BuildPlan::new(&spec, &image, None).unwrap_err();
    assert!(
        matches!(
            &err,
            PlanError::Hash(HashError::Tree {
                source: TreeError::LinkLeavesTree { .. },
                ..
            })
        ),
        "{err:?}"
    );
}
