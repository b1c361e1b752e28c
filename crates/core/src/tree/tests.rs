//! Tests of selection, hashing and the digest's stability properties.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::*;

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn tree(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for (rel, content) in files {
        write(dir.path(), rel, content.as_bytes());
    }
    dir
}

fn paths_with(root: &Path, opts: &TreeOptions) -> Vec<String> {
    select_files(root, opts)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

fn paths(root: &Path) -> Vec<String> {
    paths_with(root, &TreeOptions::default())
}

fn digest(root: &Path) -> [u8; 32] {
    digest_tree(root, &TreeOptions::default()).unwrap().digest
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------- filtering

#[test]
fn gitignore_at_root_excludes_matching_files_at_any_depth() {
    let t = tree(&[
        (".gitignore", "*.log\ntarget/\n"),
        ("a.txt", "a"),
        ("a.log", "x"),
        ("src/deep/b.log", "x"),
        ("target/out.bin", "x"),
        ("src/target/also.bin", "x"),
    ]);
    assert_eq!(paths(t.path()), [".gitignore", "a.txt"]);
}

#[test]
fn nested_gitignore_applies_only_below_its_directory() {
    let t = tree(&[
        ("top.txt", "x"),
        ("sub/.gitignore", "*.txt\n/anchored.md\n"),
        ("sub/a.txt", "x"),
        ("sub/deep/b.txt", "x"),
        ("sub/anchored.md", "x"),
        ("sub/deep/anchored.md", "x"),
    ]);
    assert_eq!(
        paths(t.path()),
        ["sub/.gitignore", "sub/deep/anchored.md", "top.txt"]
    );
}

#[test]
fn gitignore_applies_without_a_git_repository() {
    // No `.git` anywhere: `require_git(false)` must still honour it.
    let t = tree(&[(".gitignore", "x\n"), ("x", "1"), ("y", "2")]);
    assert!(!t.path().join(".git").exists());
    assert_eq!(paths(t.path()), [".gitignore", "y"]);
}

#[test]
fn negation_reincludes_but_not_under_an_excluded_directory() {
    let t = tree(&[
        (".gitignore", "*.log\n!keep.log\nbuild/\n!build/keep.txt\n"),
        ("a.log", "x"),
        ("keep.log", "x"),
        ("sub/keep.log", "x"),
        ("build/keep.txt", "x"),
    ]);
    // Git's rule: a file whose parent directory is excluded cannot be
    // re-included, so build/keep.txt stays out.
    assert_eq!(paths(t.path()), [".gitignore", "keep.log", "sub/keep.log"]);
}

#[test]
fn dockerignore_is_honoured_with_gitignore_rules() {
    let t = tree(&[
        (".dockerignore", "*.log\nsecrets/\n"),
        ("app.py", "x"),
        ("debug.log", "x"),
        ("sub/debug.log", "x"), // gitignore semantics: any depth (Docker: root only)
        ("secrets/key", "x"),
    ]);
    assert_eq!(paths(t.path()), [".dockerignore", "app.py"]);
}

#[test]
fn dockerignore_negation_overrides_gitignore() {
    let t = tree(&[
        (".gitignore", "*.bin\n"),
        (".dockerignore", "!keep.bin\n"),
        ("drop.bin", "x"),
        ("keep.bin", "x"),
    ]);
    assert_eq!(paths(t.path()), [".dockerignore", ".gitignore", "keep.bin"]);
}

#[test]
fn nested_dockerignore_is_honoured_too() {
    // Docker reads only the root .dockerignore; we read them at any depth.
    let t = tree(&[
        ("sub/.dockerignore", "*.bin\n"),
        ("sub/a.bin", "x"),
        ("b.bin", "x"),
    ]);
    assert_eq!(paths(t.path()), ["b.bin", "sub/.dockerignore"]);
}

#[test]
fn a_nested_repository_does_not_change_which_rules_apply() {
    // Unlike git, a subdirectory holding `.git` (a submodule or vendored
    // clone) stays under its parents' .gitignore rules: with
    // `require_git(false)` the `ignore` crate never looks for `.git`, so an
    // entry that is not hashed cannot change the selection either.
    let files = [
        (".gitignore", "*.gen\n"),
        ("a.gen", "x"),
        ("sub/b.gen", "x"),
        ("sub/c.rs", "x"),
    ];
    let plain = tree(&files);
    let with_repo = tree(&files);
    write(with_repo.path(), "sub/.git/HEAD", b"ref: refs/heads/main\n");
    let with_gitfile = tree(&files);
    write(
        with_gitfile.path(),
        "sub/.git",
        b"gitdir: ../.git/modules/sub\n",
    );
    for t in [&plain, &with_repo, &with_gitfile] {
        assert_eq!(paths(t.path()), [".gitignore", "sub/c.rs"]);
    }
    assert_eq!(digest(with_repo.path()), digest(plain.path()));
    assert_eq!(digest(with_gitfile.path()), digest(plain.path()));
}

#[test]
fn ignore_files_can_be_switched_off() {
    let t = tree(&[
        (".gitignore", "a\n"),
        (".dockerignore", "b\n"),
        ("a", "x"),
        ("b", "x"),
    ]);
    let no_git = TreeOptions {
        gitignore: false,
        ..TreeOptions::default()
    };
    assert_eq!(
        paths_with(t.path(), &no_git),
        [".dockerignore", ".gitignore", "a"]
    );
    let no_docker = TreeOptions {
        dockerignore: false,
        ..TreeOptions::default()
    };
    assert_eq!(
        paths_with(t.path(), &no_docker),
        [".dockerignore", ".gitignore", "b"]
    );
}

#[test]
fn hidden_files_are_included() {
    let t = tree(&[
        (".env", "x"),
        (".config/app.toml", "x"),
        (".github/workflows/ci.yml", "x"),
        ("visible", "x"),
    ]);
    assert_eq!(
        paths(t.path()),
        [
            ".config/app.toml",
            ".env",
            ".github/workflows/ci.yml",
            "visible"
        ]
    );
}

#[test]
fn git_dirs_and_git_files_are_excluded_and_info_exclude_is_not_read() {
    let t = tree(&[
        (".git/HEAD", "ref: refs/heads/main\n"),
        (".git/info/exclude", "excluded-by-info\n"),
        ("excluded-by-info", "x"),
        (
            "vendor/lib/.git",
            "gitdir: /home/someone/repo/.git/modules/lib\n",
        ),
        ("vendor/lib/code.c", "x"),
        (".gitattributes", "x"),
        (".gitkeep", "x"),
    ]);
    assert_eq!(
        paths(t.path()),
        [
            ".gitattributes",
            ".gitkeep",
            "excluded-by-info",
            "vendor/lib/code.c"
        ]
    );
}

#[test]
fn gitignore_in_parent_of_root_is_not_honoured() {
    let t = tree(&[
        (".gitignore", "*.txt\n"),
        (".dockerignore", "*.md\n"),
        ("root/a.txt", "x"),
        ("root/b.md", "x"),
    ]);
    // Even when the parent is a git repository.
    fs::create_dir(t.path().join(".git")).unwrap();
    assert_eq!(paths(&t.path().join("root")), ["a.txt", "b.md"]);
}

#[test]
fn extra_excludes_apply_on_top_of_ignore_files() {
    let t = tree(&[
        (".gitignore", "!important.tmp\n"),
        ("a.tmp", "x"),
        ("important.tmp", "x"),
        ("docs/guide.md", "x"),
        ("keep.md", "x"),
        ("src/main.rs", "x"),
    ]);
    let opts = TreeOptions {
        extra_excludes: vec![
            "*.tmp".into(),
            "/docs".into(),
            "*.md".into(),
            "!keep.md".into(),
        ],
        ..TreeOptions::default()
    };
    let expected = [".gitignore", "keep.md", "src/main.rs"];
    assert_eq!(paths_with(t.path(), &opts), expected);
    // The root's spelling does not matter.
    assert_eq!(paths_with(&t.path().join("."), &opts), expected);
    assert_eq!(paths_with(&t.path().join("src/.."), &opts), expected);
}

// ---------------------------------------------------------------- built-in excludes

/// A tree with every built-in exclude, at the top and deeper down.
fn python_checkout(extra: &[(&str, &str)]) -> TempDir {
    let mut files = vec![
        ("app.py", "x"),
        ("__pycache__/app.cpython-311.pyc", "x"),
        ("pkg/__pycache__/m.cpython-311.pyc", "x"),
        ("pkg/m.py", "x"),
        ("legacy.pyc", "x"),
        (".venv/bin/activate", "x"),
        (".venv/lib/site.py", "x"),
        ("pkg/.venv/pyvenv.cfg", "x"),
        (".DS_Store", "x"),
        ("pkg/.DS_Store", "x"),
    ];
    files.extend_from_slice(extra);
    tree(&files)
}

#[test]
fn builtin_excludes_drop_caches_venvs_and_finder_files_at_any_depth() {
    let t = python_checkout(&[("venv.txt", "a file, not a venv"), ("src.pyc.d/keep", "x")]);
    assert_eq!(
        paths(t.path()),
        ["app.py", "pkg/m.py", "src.pyc.d/keep", "venv.txt"]
    );
    // `__pycache__/` and `.venv/` are directory patterns: a file of that name stays.
    let f = tree(&[("__pycache__", "file"), (".venv", "file")]);
    assert_eq!(paths(f.path()), [".venv", "__pycache__"]);
}

#[test]
fn a_negation_in_an_ignore_file_keeps_a_builtin_exclude() {
    let t = python_checkout(&[
        (".dockerignore", "!.venv/\n"),
        ("pkg/.gitignore", "!.DS_Store\n"),
    ]);
    assert_eq!(
        paths(t.path()),
        [
            ".dockerignore",
            ".venv/bin/activate",
            ".venv/lib/site.py",
            "app.py",
            "pkg/.DS_Store", // only below pkg/.gitignore
            "pkg/.gitignore",
            "pkg/.venv/pyvenv.cfg", // `!.venv/` is unanchored: any depth
            "pkg/m.py",
        ]
    );
    // A negation keeps what it matches, not what the other built-ins match inside it.
    let v = tree(&[
        (".dockerignore", "!.venv/\n"),
        (".venv/lib/__pycache__/site.pyc", "x"),
        (".venv/lib/site.py", "x"),
    ]);
    assert_eq!(paths(v.path()), [".dockerignore", ".venv/lib/site.py"]);
}

#[test]
fn an_ignore_file_that_excludes_a_builtin_is_not_a_negation() {
    // `.gitignore` naming `.venv/` excludes it; it must not count as "the user kept it".
    let t = python_checkout(&[(".gitignore", ".venv/\n__pycache__/\n")]);
    assert_eq!(paths(t.path()), [".gitignore", "app.py", "pkg/m.py"]);
}

#[test]
fn builtin_excludes_can_be_switched_off() {
    let t = python_checkout(&[]);
    let opts = TreeOptions {
        builtin_excludes: false,
        ..TreeOptions::default()
    };
    assert_eq!(paths_with(t.path(), &opts).len(), 10);
}

#[test]
fn a_root_of_a_builtin_name_is_walked() {
    // `copy: [.venv]` names the directory: it is copied (its own caches still go).
    let t = python_checkout(&[(".venv/lib/__pycache__/x.pyc", "x")]);
    assert_eq!(
        paths(&t.path().join(".venv")),
        ["bin/activate", "lib/site.py"]
    );
}

#[test]
fn changing_only_an_excluded_file_keeps_the_digest() {
    let t = python_checkout(&[]);
    let before = digest(t.path());
    write(t.path(), ".venv/lib/site.py", b"changed");
    write(t.path(), "pkg/__pycache__/new.pyc", b"new");
    write(t.path(), ".DS_Store", b"changed");
    assert_eq!(digest(t.path()), before);
    write(t.path(), "pkg/m.py", b"changed");
    assert_ne!(digest(t.path()), before);
}

// ---------------------------------------------------------------- the outer .dockerignore

/// `project/.dockerignore` and a source tree `project/src`; returns the options for `src`.
fn project(dockerignore: &str, files: &[(&str, &str)]) -> (TempDir, TreeOptions) {
    let t = tree(files);
    write(t.path(), ".dockerignore", dockerignore.as_bytes());
    let opts = TreeOptions {
        outer_dockerignore: Some(t.path().join(".dockerignore")),
        ..TreeOptions::default()
    };
    (t, opts)
}

#[test]
fn outer_dockerignore_patterns_are_relative_to_its_directory() {
    let (t, opts) = project(
        "*.log\n/src/secret.txt\n/secret2.txt\nsrc/data/\n",
        &[
            ("src/app.py", "x"),
            ("src/debug.log", "x"),
            ("src/deep/more.log", "x"),
            ("src/secret.txt", "x"),
            ("src/secret2.txt", "x"), // `/secret2.txt` is the project's, not src's
            ("src/data/big.bin", "x"),
            ("src/deep/secret.txt", "x"),
        ],
    );
    assert_eq!(
        paths_with(&t.path().join("src"), &opts),
        ["app.py", "deep/secret.txt", "secret2.txt"]
    );
    // Without it, everything is there.
    assert_eq!(paths(&t.path().join("src")).len(), 7);
}

#[test]
fn the_trees_own_ignore_files_win_over_the_outer_dockerignore() {
    let (t, opts) = project(
        "*.log\n!keep.bin\n",
        &[
            ("src/.gitignore", "!keep.log\n*.bin\n"),
            ("src/a.log", "x"),
            ("src/keep.log", "x"),
            ("src/keep.bin", "x"),
        ],
    );
    assert_eq!(
        paths_with(&t.path().join("src"), &opts),
        [".gitignore", "keep.log"]
    );
}

#[test]
fn a_negation_in_the_outer_dockerignore_keeps_a_builtin_exclude() {
    let (t, opts) = project(
        "!.venv/\n",
        &[
            ("src/.venv/pyvenv.cfg", "x"),
            ("src/__pycache__/a.pyc", "x"),
        ],
    );
    assert_eq!(
        paths_with(&t.path().join("src"), &opts),
        [".venv/pyvenv.cfg"]
    );
}

#[test]
fn an_outer_dockerignore_at_the_trees_top_is_the_trees_own_too() {
    let (t, opts) = project("*.log\n", &[("a.log", "x"), ("b.py", "x")]);
    assert_eq!(paths_with(t.path(), &opts), [".dockerignore", "b.py"]);
}

#[test]
fn invalid_pattern_in_the_outer_dockerignore_names_file_and_line() {
    let (t, opts) = project("ok\n[z-a]\n", &[("src/a", "x")]);
    let err = select_files(&t.path().join("src"), &opts).unwrap_err();
    match &err {
        TreeError::InvalidPattern { path, line, .. } => {
            assert_eq!(path, &t.path().join(".dockerignore"));
            assert_eq!(*line, Some(2));
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn empty_directories_are_not_entries() {
    let t = tree(&[("a", "x")]);
    let before = digest(t.path());
    fs::create_dir_all(t.path().join("empty/nested")).unwrap();
    assert_eq!(paths(t.path()), ["a"]);
    assert_eq!(digest(t.path()), before);
}

#[test]
fn entries_are_sorted_by_path_bytes() {
    // '-' (0x2d) < '/' (0x2f) < '0' (0x30): a per-directory walk order would
    // put "a/b" before or after both; byte order interleaves it.
    let t = tree(&[("a0", "x"), ("a/b", "x"), ("a-b", "x"), ("B", "x")]);
    assert_eq!(paths(t.path()), ["B", "a-b", "a/b", "a0"]);
    let d = digest_tree(t.path(), &TreeOptions::default()).unwrap();
    let entry_paths: Vec<_> = d.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(entry_paths, ["B", "a-b", "a/b", "a0"]);
}

// ------------------------------------------------------ digest sensitivity

#[test]
fn editing_an_ignore_file_to_change_the_set_changes_the_digest() {
    let t = tree(&[(".gitignore", "*.log\n"), ("a.txt", "x"), ("b.txt", "y")]);
    let before = digest(t.path());
    write(t.path(), ".gitignore", b"*.log\nb.txt\n");
    assert_eq!(paths(t.path()), [".gitignore", "a.txt"]);
    assert_ne!(digest(t.path()), before);
}

#[test]
fn editing_an_ignore_file_without_changing_the_set_still_changes_the_digest() {
    // The ignore file is part of the tree and hashed like any other file, so
    // *any* edit to it changes the digest, even one that selects the same
    // files. (Cheap and honest: Docker would copy the edited file too.)
    let t = tree(&[(".gitignore", "*.log\n"), ("a.txt", "x")]);
    let before_paths = paths(t.path());
    let before = digest(t.path());
    write(t.path(), ".gitignore", b"*.log\n*.nothing-matches\n");
    assert_eq!(paths(t.path()), before_paths);
    assert_ne!(digest(t.path()), before);
}

#[test]
fn a_self_ignoring_ignore_file_only_matters_through_the_set() {
    let t = tree(&[
        (".gitignore", ".gitignore\n*.log\n"),
        ("a.txt", "x"),
        ("b.txt", "y"),
    ]);
    let before = digest(t.path());
    assert_eq!(paths(t.path()), ["a.txt", "b.txt"]);
    write(
        t.path(),
        ".gitignore",
        b".gitignore\n*.log\n*.nothing-matches\n",
    );
    assert_eq!(digest(t.path()), before, "same set, same digest");
    write(t.path(), ".gitignore", b".gitignore\n*.log\nb.txt\n");
    assert_ne!(digest(t.path()), before, "smaller set, new digest");
}

#[test]
fn content_change_changes_digest() {
    let t = tree(&[("a", "hello"), ("b", "world")]);
    let before = digest(t.path());
    write(t.path(), "b", b"World");
    assert_ne!(digest(t.path()), before);
}

#[test]
fn rename_changes_digest() {
    let t = tree(&[("dir/a", "hello")]);
    let before = digest(t.path());
    fs::rename(t.path().join("dir/a"), t.path().join("dir/b")).unwrap();
    assert_ne!(digest(t.path()), before);
    // Moving across directories with the same file name too.
    fs::create_dir(t.path().join("other")).unwrap();
    let mid = digest(t.path());
    fs::rename(t.path().join("dir/b"), t.path().join("other/b")).unwrap();
    assert_ne!(digest(t.path()), mid);
}

#[test]
fn adding_or_removing_a_file_changes_digest() {
    let t = tree(&[("a", "x")]);
    let before = digest(t.path());
    write(t.path(), "empty", b"");
    let with_empty = digest(t.path());
    assert_ne!(with_empty, before);
    fs::remove_file(t.path().join("empty")).unwrap();
    assert_eq!(digest(t.path()), before);
}

#[cfg(unix)]
#[test]
fn executable_bit_changes_digest_other_mode_bits_do_not() {
    let t = tree(&[("run.sh", "#!/bin/sh\n")]);
    let file = t.path().join("run.sh");
    set_mode(&file, 0o644);
    let plain = digest_tree(t.path(), &TreeOptions::default()).unwrap();
    assert!(!plain.entries[0].executable);
    set_mode(&file, 0o664);
    assert_eq!(
        digest(t.path()),
        plain.digest,
        "group write is not recorded"
    );
    set_mode(&file, 0o755);
    let exec = digest_tree(t.path(), &TreeOptions::default()).unwrap();
    assert!(exec.entries[0].executable);
    assert_ne!(exec.digest, plain.digest);
    set_mode(&file, 0o701);
    assert_eq!(digest(t.path()), exec.digest, "any x bit counts, same kind");
}

#[test]
fn mtime_change_does_not_change_digest() {
    let t = tree(&[("a", "x"), ("d/b", "y")]);
    let before = digest(t.path());
    for rel in ["a", "d/b"] {
        let f = fs::File::options()
            .write(true)
            .open(t.path().join(rel))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    }
    assert_eq!(digest(t.path()), before);
}

#[test]
fn same_tree_in_two_places_gives_same_digest() {
    let files = [
        (".gitignore", "*.o\n"),
        ("src/main.c", "int main(){}"),
        ("src/main.o", "obj"),
        ("README", "hi"),
    ];
    let a = tree(&files);
    // Created in the opposite order, with an extra ignored file and an extra
    // empty directory: still the same tree.
    let b = TempDir::new().unwrap();
    for (rel, content) in files.iter().rev() {
        write(b.path(), rel, content.as_bytes());
    }
    write(b.path(), "other.o", b"ignored");
    fs::create_dir(b.path().join("empty")).unwrap();
    assert_eq!(digest(a.path()), digest(b.path()));
}

#[test]
fn digest_reports_entries_and_total_bytes() {
    let t = tree(&[("a", "12345"), ("b/c", "")]);
    let d = digest_tree(t.path(), &TreeOptions::default()).unwrap();
    assert_eq!(d.total_bytes, 5);
    assert_eq!(d.entries.len(), 2);
    assert_eq!(
        d.entries[0].digest,
        <[u8; 32]>::from(Sha256::digest(b"12345"))
    );
    assert_eq!(d.entries[1].size, 0);
    assert_eq!(d.hex().len(), 64);
}

// ----------------------------------------------------------------- symlinks

#[cfg(unix)]
#[test]
fn symlinks_are_recorded_not_followed() {
    use std::os::unix::fs::symlink;
    let t = tree(&[("real/data.txt", "payload"), ("top.txt", "x")]);
    symlink("real", t.path().join("dirlink")).unwrap();
    symlink("top.txt", t.path().join("filelink")).unwrap();
    symlink("does/not/exist", t.path().join("dangling")).unwrap();
    let d = digest_tree(t.path(), &TreeOptions::default()).unwrap();
    let entry_paths: Vec<_> = d.entries.iter().map(|e| e.path.as_str()).collect();
    // dirlink's contents are not listed a second time.
    assert_eq!(
        entry_paths,
        [
            "dangling",
            "dirlink",
            "filelink",
            "real/data.txt",
            "top.txt"
        ]
    );
    let dirlink = &d.entries[1];
    assert_eq!(dirlink.kind, EntryKind::Symlink);
    assert!(!dirlink.executable);
    assert_eq!(dirlink.size, 4);
    assert_eq!(dirlink.digest, <[u8; 32]>::from(Sha256::digest(b"real")));

    // Retargeting a link changes the digest.
    fs::remove_file(t.path().join("filelink")).unwrap();
    symlink("real/data.txt", t.path().join("filelink")).unwrap();
    assert_ne!(digest(t.path()), d.digest);
}

#[cfg(unix)]
#[test]
fn symlink_and_file_with_target_as_content_differ() {
    let a = tree(&[("link", "target")]);
    let b = TempDir::new().unwrap();
    std::os::unix::fs::symlink("target", b.path().join("link")).unwrap();
    let da = digest_tree(a.path(), &TreeOptions::default()).unwrap();
    let db = digest_tree(b.path(), &TreeOptions::default()).unwrap();
    assert_eq!(da.entries[0].digest, db.entries[0].digest);
    assert_ne!(da.digest, db.digest, "the kind byte tells them apart");
}

#[cfg(unix)]
#[test]
fn ignore_file_linking_outside_the_tree_is_an_error() {
    use std::os::unix::fs::symlink;
    let t = tree(&[
        ("outside.ignore", "*.txt\n"),
        ("root/sub/a.txt", "x"),
        ("root/b.md", "x"),
    ]);
    let root = t.path().join("root");
    let link = root.join("sub/.gitignore");
    symlink("../../outside.ignore", &link).unwrap();
    let err = select_files(&root, &TreeOptions::default()).unwrap_err();
    assert!(
        matches!(&err, TreeError::ExternalIgnoreFile { path, .. } if path == &link),
        "{err}"
    );
    // Not read as an ignore file, but still a link that leaves the tree.
    let no_git = TreeOptions {
        gitignore: false,
        ..TreeOptions::default()
    };
    assert!(matches!(
        select_files(&root, &no_git),
        Err(TreeError::LinkLeavesTree { .. })
    ));

    // A link within the tree is fine (e.g. `.dockerignore -> .gitignore`).
    fs::remove_file(&link).unwrap();
    write(&root, "rules", b"*.txt\n");
    symlink("../rules", &link).unwrap();
    symlink("rules", root.join(".dockerignore")).unwrap();
    assert_eq!(
        paths(&root),
        [".dockerignore", "b.md", "rules", "sub/.gitignore"]
    );
    // Also when the root is reached through a symlink.
    symlink("root", t.path().join("alias")).unwrap();
    assert_eq!(paths(&t.path().join("alias")).len(), 4);
}

#[cfg(unix)]
#[test]
fn root_may_be_a_symlink_to_a_directory() {
    let t = tree(&[("real/a", "x"), ("real/b/c", "y")]);
    std::os::unix::fs::symlink("real", t.path().join("alias")).unwrap();
    assert_eq!(
        paths(&t.path().join("alias")),
        paths(&t.path().join("real"))
    );
    assert_eq!(
        digest(&t.path().join("alias")),
        digest(&t.path().join("real"))
    );
}

// ------------------------------------------------------------------- errors

#[test]
fn missing_root_is_not_found() {
    let t = TempDir::new().unwrap();
    let missing = t.path().join("nope");
    let err = digest_tree(&missing, &TreeOptions::default()).unwrap_err();
    assert!(
        matches!(&err, TreeError::NotFound { path } if path == &missing),
        "{err}"
    );
    assert!(err.to_string().contains("nope"));
}

#[test]
fn file_root_is_not_a_directory() {
    let t = tree(&[("file", "x")]);
    let err = select_files(&t.path().join("file"), &TreeOptions::default()).unwrap_err();
    assert!(matches!(err, TreeError::NotADirectory { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn non_utf8_file_name_is_an_error_naming_the_path() {
    use std::os::unix::ffi::OsStrExt;
    let t = tree(&[("ok", "x")]);
    let bad = t
        .path()
        .join("sub")
        .join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
    fs::create_dir(t.path().join("sub")).unwrap();
    fs::write(&bad, b"x").unwrap();
    let err = digest_tree(t.path(), &TreeOptions::default()).unwrap_err();
    assert!(
        matches!(&err, TreeError::NonUtf8Path { path } if path == &bad),
        "{err}"
    );
    assert_eq!(err.path(), bad);

    // An excluded non-UTF-8 name is never looked at.
    write(t.path(), ".gitignore", b"sub/\n");
    assert_eq!(paths(t.path()), [".gitignore", "ok"]);
}

#[cfg(unix)]
#[test]
fn non_utf8_symlink_target_is_an_error() {
    use std::os::unix::ffi::OsStrExt;
    let t = TempDir::new().unwrap();
    let link = t.path().join("link");
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(b"\xfe"), &link).unwrap();
    let err = digest_tree(t.path(), &TreeOptions::default()).unwrap_err();
    assert!(
        matches!(&err, TreeError::NonUtf8LinkTarget { path } if path == &link),
        "{err}"
    );
}

#[test]
fn invalid_pattern_in_ignore_file_names_file_and_line() {
    let t = tree(&[("sub/.gitignore", "ok\n[z-a]\n"), ("sub/a", "x")]);
    let err = select_files(t.path(), &TreeOptions::default()).unwrap_err();
    match &err {
        TreeError::InvalidPattern {
            path,
            line,
            pattern,
            ..
        } => {
            assert_eq!(path, &t.path().join("sub/.gitignore"));
            assert_eq!(*line, Some(2));
            assert_eq!(pattern, "[z-a]");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains(".gitignore:2"), "{err}");
}

#[test]
fn invalid_extra_exclude_is_an_error() {
    let t = tree(&[("a", "x")]);
    let opts = TreeOptions {
        extra_excludes: vec!["[z-a]".into()],
        ..TreeOptions::default()
    };
    let err = select_files(t.path(), &opts).unwrap_err();
    assert!(
        matches!(&err, TreeError::InvalidPattern { path, pattern, .. } if path == t.path() && pattern == "[z-a]"),
        "{err:?}"
    );
}

#[cfg(unix)]
#[test]
fn fifo_is_refused_without_blocking_unless_ignored() {
    let t = tree(&[("a", "x")]);
    let status = std::process::Command::new("mkfifo")
        .arg(t.path().join("pipe"))
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable; skipping");
        return;
    }
    let err = select_files(t.path(), &TreeOptions::default()).unwrap_err();
    assert!(
        matches!(&err, TreeError::SpecialFile { path, what, .. }
            if path.ends_with("pipe") && what.contains("FIFO")),
        "{err}"
    );
    assert!(err.to_string().contains(".dockerignore"), "{err}");
    write(t.path(), ".dockerignore", b"pipe\n");
    assert_eq!(paths(t.path()), [".dockerignore", "a"]);
    digest(t.path());
}

#[cfg(unix)]
#[test]
fn links_that_leave_the_tree_are_refused_with_the_fix() {
    use std::os::unix::fs::symlink;
    let t = tree(&[("outside.txt", "x"), ("root/sub/a.txt", "x")]);
    let root = t.path().join("root");
    symlink("../../outside.txt", root.join("sub/up")).unwrap();
    let err = select_files(&root, &TreeOptions::default()).unwrap_err();
    assert!(
        matches!(&err, TreeError::LinkLeavesTree { target, .. } if target == "../../outside.txt"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("sub/up") && text.contains("replace the link"),
        "{text}"
    );
    fs::remove_file(root.join("sub/up")).unwrap();
    symlink("/etc/hostname", root.join("abs")).unwrap();
    assert!(matches!(
        select_files(&root, &TreeOptions::default()),
        Err(TreeError::LinkLeavesTree { .. })
    ));
    // Ignored, it is not looked at.
    write(&root, ".dockerignore", b"abs\n");
    assert_eq!(paths(&root), [".dockerignore", "sub/a.txt"]);
}

// ----------------------------------------------------- hashing and encoding

#[test]
fn digest_file_is_plain_sha256_of_content() {
    let t = TempDir::new().unwrap();
    let empty = t.path().join("empty");
    fs::write(&empty, b"").unwrap();
    assert_eq!(
        hex::encode(digest_file(&empty).unwrap()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let abc = t.path().join("abc");
    fs::write(&abc, b"abc").unwrap();
    assert_eq!(
        hex::encode(digest_file(&abc).unwrap()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Several buffers' worth, not a multiple of the buffer size.
    let big: Vec<u8> = (0..(3 * 1024 * 1024 + 7))
        .map(|i: u32| (i % 251) as u8)
        .collect();
    let big_path = t.path().join("big");
    fs::write(&big_path, &big).unwrap();
    assert_eq!(
        digest_file(&big_path).unwrap(),
        <[u8; 32]>::from(Sha256::digest(&big))
    );
    let err = digest_file(&t.path().join("missing")).unwrap_err();
    assert!(matches!(err, TreeError::Io { .. }));
}

#[test]
fn encoding_matches_the_documented_format() {
    let entries = vec![
        TreeEntry {
            path: "bin/run".into(),
            kind: EntryKind::File,
            executable: true,
            size: 3,
            digest: [7; 32],
        },
        TreeEntry {
            path: "link".into(),
            kind: EntryKind::Symlink,
            executable: false,
            size: 3,
            digest: [8; 32],
        },
        TreeEntry {
            path: "x".into(),
            kind: EntryKind::File,
            executable: false,
            size: 0,
            digest: [9; 32],
        },
    ];
    let mut expected = Vec::new();
    expected.extend_from_slice(&17u64.to_le_bytes());
    expected.extend_from_slice(b"imagespec-tree-v1");
    expected.extend_from_slice(&3u64.to_le_bytes());
    for (kind, path, digest) in [(2u8, "bin/run", 7u8), (3, "link", 8), (1, "x", 9)] {
        expected.push(kind);
        expected.extend_from_slice(&(path.len() as u64).to_le_bytes());
        expected.extend_from_slice(path.as_bytes());
        expected.extend_from_slice(&[digest; 32]);
    }
    assert_eq!(
        encode::tree_digest(&entries),
        <[u8; 32]>::from(Sha256::digest(&expected))
    );
}

#[test]
fn known_tree_has_a_stable_digest() {
    // Guards against accidental format changes (value cross-checked with an
    // independent Python implementation). If this fails on purpose,
    // bump FORMAT_VERSION.
    let t = tree(&[
        ("a.txt", "hello\n"),
        ("dir/b", ""),
        (".gitignore", "*.o\n"),
        ("x.o", "no"),
    ]);
    let empty = TempDir::new().unwrap();
    assert_eq!(
        hex::encode(digest(empty.path())),
        hex::encode(Sha256::digest(
            [
                &17u64.to_le_bytes()[..],
                b"imagespec-tree-v1",
                &0u64.to_le_bytes()
            ]
            .concat()
        ))
    );
    assert_eq!(
        hex::encode(digest(t.path())),
        "8b6e127153fdd20ea93b3540b79cf1f66ecf97fd9b4077eb4965a61fe69cc0bd"
    );
}

#[test]
fn digest_files_does_not_depend_on_input_order() {
    let t = tree(&[("a", "1"), ("b/c", "2"), ("d", "3")]);
    let mut files = select_files(t.path(), &TreeOptions::default()).unwrap();
    let forward = digest_files(&files).unwrap();
    files.reverse();
    assert_eq!(digest_files(&files).unwrap(), forward);
}

#[test]
fn hashing_errors_are_reported_for_the_first_path() {
    let t = tree(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let files = select_files(t.path(), &TreeOptions::default()).unwrap();
    fs::remove_file(t.path().join("b")).unwrap();
    fs::remove_file(t.path().join("c")).unwrap();
    let err = digest_files(&files).unwrap_err();
    assert_eq!(err.path(), t.path().join("b"));
}

// ---------------------------------------------------------------- proptest

mod proptests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    /// Relative paths whose directory names ("d…") and file names ("f…")
    /// cannot collide, so any set of them is a valid tree.
    fn rel_path() -> impl Strategy<Value = String> {
        (
            prop::collection::vec("d[a-c]{1,2}", 0..3),
            "f[a-z0-9._-]{0,6}",
        )
            .prop_map(|(dirs, file)| {
                let mut p = dirs.join("/");
                if !p.is_empty() {
                    p.push('/');
                }
                p.push_str(&file);
                p
            })
    }

    fn small_tree() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
        prop::collection::btree_map(rel_path(), prop::collection::vec(any::<u8>(), 0..48), 1..10)
    }

    fn materialise(files: &BTreeMap<String, Vec<u8>>) -> TempDir {
        let dir = TempDir::new().unwrap();
        for (rel, content) in files {
            write(dir.path(), rel, content);
        }
        dir
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn copies_agree_and_any_byte_change_is_seen(
            files in small_tree(),
            which_file in any::<Index>(),
            which_byte in any::<Index>(),
            flip in 1u8..=255,
        ) {
            let a = materialise(&files);
            let b = materialise(&files);
            let da = digest(a.path());
            prop_assert_eq!(da, digest(b.path()));

            let (rel, content) = files.iter().nth(which_file.index(files.len())).unwrap();
            let mut changed = content.clone();
            if changed.is_empty() {
                changed.push(flip);
            } else {
                changed[which_byte.index(content.len())] ^= flip;
            }
            write(b.path(), rel, &changed);
            prop_assert_ne!(da, digest(b.path()));
        }
    }
}
