//! The build context: reproducible bytes, exactly the hashed files, no secrets, no drift.
#![allow(clippy::unwrap_used)]

#[path = "fixtures/plan/support.rs"]
mod support;

use std::collections::BTreeMap;

use imagespec_core::plan::{BuildPlan, DOCKERFILE_PATH, PlanError};
use imagespec_core::resolve_image;
use imagespec_core::tree::{TreeOptions, digest_file, digest_tree};
use sha2::{Digest, Sha256};
use support::{context_bytes, load, plan, project, tar_entries};

/// Uses every kind of context file: a lock file with its pyproject, copy entries (a directory
/// and an executable file), a source tree with an ignore file, and a file secret.
const SPEC: &str = r#"
name: ctx
python_version: "3.11"
requirements: uvproj/uv.lock
copy: [data, tools/bootstrap.sh]
source_root: src
pip_secret_mounts: [[secrets/netrc, /root/.netrc]]
commands: [echo done]
"#;

const SECRET: &str = "FIXTURE-SECRET-7f3a9c";

#[test]
fn plan_context_is_byte_identical_across_runs_and_directories() {
    let one = project();
    let two = project();
    // Noise that must not matter: different mtimes, and an ignored file in one copy only.
    std::fs::write(two.path().join("src/run.log"), "ignored").unwrap();
    let (_, image_one, plan_one) = plan(one.path(), SPEC);
    let (_, image_two, plan_two) = plan(two.path(), SPEC);
    assert_eq!(image_one.name, image_two.name);

    let a = context_bytes(&plan_one);
    let b = context_bytes(&plan_one);
    let c = context_bytes(&plan_two);
    assert_eq!(a, b, "two runs");
    assert_eq!(a, c, "two directories");
    let mut summary_out = Vec::new();
    let summary = plan_two.write_context(&mut summary_out).unwrap();
    assert_eq!(
        summary.digest,
        format!("sha256:{}", hex::encode(Sha256::digest(&a)))
    );
    assert_eq!(summary.bytes, a.len() as u64);
}

#[test]
fn plan_tar_format_is_normalised() {
    let dir = project();
    let (_, _, plan) = plan(dir.path(), SPEC);
    let bytes = context_bytes(&plan);
    let entries = tar_entries(&bytes);
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries sorted by path");
    // Executable bits: the tree walker's for directory entries, the file's own for a single file.
    let mut executable: BTreeMap<String, bool> = BTreeMap::new();
    for e in digest_tree(&dir.path().join("src"), &TreeOptions::default())
        .unwrap()
        .entries
    {
        executable.insert(format!("source/{}", e.path), e.executable);
    }
    executable.insert("copy/tools/bootstrap.sh".into(), true);
    for e in &entries {
        assert_eq!((e.mtime, e.uid, e.gid), (0, 0, 0), "{}", e.path);
        assert!(e.names_empty, "{}: no user or group names", e.path);
        let exec = e.dir || executable.get(&e.path).copied().unwrap_or(false);
        assert_eq!(e.mode, if exec { 0o755 } else { 0o644 }, "{}", e.path);
    }
    // Every directory has its own entry, before its contents.
    for e in entries.iter().filter(|e| !e.dir) {
        let mut parent = e.path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            let pos = paths
                .iter()
                .position(|x| *x == p)
                .unwrap_or_else(|| panic!("no entry for {p}"));
            assert!(pos < paths.iter().position(|x| *x == e.path).unwrap());
            assert!(entries[pos].dir);
            parent = p;
        }
    }
    // The Dockerfile is inside, where the plan says.
    let dockerfile = entries.iter().find(|e| e.path == DOCKERFILE_PATH).unwrap();
    assert_eq!(plan.dockerfile_path(), DOCKERFILE_PATH);
    assert_eq!(
        String::from_utf8(dockerfile.content.clone()).unwrap(),
        plan.dockerfile()
    );
}

#[test]
fn plan_context_holds_exactly_the_hashed_files_and_the_tag_does_not_move() {
    let dir = project();
    std::fs::write(
        dir.path().join("src/debug.log"),
        "ignored by src/.gitignore",
    )
    .unwrap();
    let spec = load(dir.path(), SPEC);
    let before = resolve_image(&spec).unwrap();
    let plan = BuildPlan::new(&spec, &before, None).unwrap();
    let bytes = context_bytes(&plan);
    let after = resolve_image(&spec).unwrap();
    assert_eq!(
        before, after,
        "writing the context changes nothing the tag depends on"
    );

    let files: BTreeMap<String, Vec<u8>> = tar_entries(&bytes)
        .into_iter()
        .filter(|e| !e.dir && e.path != DOCKERFILE_PATH)
        .map(|e| (e.path, e.content))
        .collect();

    // What the hash selects, with the same walker and options.
    let mut expected: BTreeMap<String, [u8; 32]> = BTreeMap::new();
    let root = dir.path();
    for (name, rel) in [
        ("uv.lock", "uvproj/uv.lock"),
        ("pyproject.toml", "uvproj/pyproject.toml"),
    ] {
        expected.insert(
            format!(".imagespec/deps/{name}"),
            digest_file(&root.join(rel)).unwrap(),
        );
    }
    for e in digest_tree(&root.join("data"), &TreeOptions::default())
        .unwrap()
        .entries
    {
        expected.insert(format!("copy/data/{}", e.path), e.digest);
    }
    expected.insert(
        "copy/tools/bootstrap.sh".into(),
        digest_file(&root.join("tools/bootstrap.sh")).unwrap(),
    );
    for e in digest_tree(&root.join("src"), &TreeOptions::default())
        .unwrap()
        .entries
    {
        expected.insert(format!("source/{}", e.path), e.digest);
    }

    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, content) in &files {
        let digest: [u8; 32] = Sha256::digest(content).into();
        assert_eq!(
            &digest, &expected[path],
            "{path}: the bytes that were hashed"
        );
    }
    assert!(
        !files.contains_key("source/debug.log"),
        "ignored files are neither hashed nor shipped"
    );
    assert!(files.contains_key("source/app/main.py"));
    // The plan's own listing is the same set.
    let listed: Vec<&str> = plan
        .context_files()
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(listed, files.keys().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn plan_file_digests_are_sha256_of_the_bytes() {
    // The context checks each file against the tree's digest while streaming it; that only
    // works if the tree module's digest is SHA-256 of the bytes.
    let dir = project();
    let path = dir.path().join("src/app/main.py");
    let bytes = std::fs::read(&path).unwrap();
    let want: [u8; 32] = Sha256::digest(&bytes).into();
    assert_eq!(digest_file(&path).unwrap(), want);
    let tree = digest_tree(&dir.path().join("src"), &TreeOptions::default()).unwrap();
    let entry = tree
        .entries
        .iter()
        .find(|e| e.path == "app/main.py")
        .unwrap();
    assert_eq!(entry.digest, want);
}

#[test]
fn plan_secret_content_never_reaches_the_dockerfile_or_the_context() {
    let dir = project();
    // Prove the fixture really holds the secret, then look for it.
    assert!(
        std::fs::read_to_string(dir.path().join("secrets/netrc"))
            .unwrap()
            .contains(SECRET)
    );
    let (_, _, plan) = plan(dir.path(), SPEC);
    let text = plan.dockerfile();
    assert!(!text.contains(SECRET));
    assert!(
        !text.contains("secrets/netrc"),
        "not even the secret's location"
    );
    assert!(text.contains("--mount=type=secret,id=pip_secret_0,target=/root/.netrc"));
    let bytes = context_bytes(&plan);
    assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    assert!(
        tar_entries(&bytes)
            .iter()
            .all(|e| !e.path.contains("netrc"))
    );
}

#[test]
fn plan_editing_a_source_file_changes_only_the_source_part() {
    let dir = project();
    let (_, image_a, plan_a) = plan(dir.path(), SPEC);
    let a = context_bytes(&plan_a);
    std::fs::write(
        dir.path().join("src/app/util.py"),
        "def double(x: int) -> int:\n    return x + x\n",
    )
    .unwrap();
    let (_, image_b, plan_b) = plan(dir.path(), SPEC);
    let b = context_bytes(&plan_b);
    assert_ne!(image_a.spec_hash, image_b.spec_hash);

    let map = |bytes: &[u8]| -> BTreeMap<String, Vec<u8>> {
        tar_entries(bytes)
            .into_iter()
            .map(|e| (e.path, e.content))
            .collect()
    };
    let (a, b) = (map(&a), map(&b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let changed: Vec<&String> = a.keys().filter(|k| a[*k] != b[*k]).collect();
    assert_eq!(changed, [DOCKERFILE_PATH, "source/app/util.py"]);

    // In the Dockerfile only the identity at the end differs, so every layer above stays cached.
    let before_identity = |text: &str| {
        text.split("LABEL dev.imagespec.spec-hash")
            .next()
            .unwrap()
            .to_string()
    };
    let (da, db) = (plan_a.dockerfile(), plan_b.dockerfile());
    assert_ne!(da, db);
    assert_eq!(before_identity(&da), before_identity(&db));
}

#[test]
fn plan_files_changed_after_naming_are_drift() {
    let dir = project();
    let spec = load(dir.path(), SPEC);
    let image = resolve_image(&spec).unwrap();
    std::fs::write(dir.path().join("src/app/new_module.py"), "X = 1\n").unwrap();
    std::fs::write(
        dir.path().join("uvproj/pyproject.toml"),
        "[project]\nname = \"changed\"\n",
    )
    .unwrap();
    match BuildPlan::new(&spec, &image, None) {
        Err(PlanError::Drift { fields }) => assert_eq!(fields, ["requirements", "source_root"]),
        other => panic!("expected drift, got {other:?}"),
    }
}

#[test]
fn plan_files_changed_while_writing_fail_the_context() {
    let dir = project();
    let (_, _, plan) = plan(dir.path(), SPEC);
    let path = dir.path().join("src/app/main.py");
    // Same length, different bytes: only the digest check can see it.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let err = plan.write_context(Vec::new()).unwrap_err();
    assert!(matches!(err, PlanError::ContextChanged { .. }), "{err}");
    // Longer and shorter files too.
    std::fs::write(
        &path,
        "longer content than before, much longer than the original file was",
    )
    .unwrap();
    assert!(plan.write_context(Vec::new()).is_err());
    std::fs::write(&path, "").unwrap();
    assert!(matches!(
        plan.write_context(Vec::new()).unwrap_err(),
        PlanError::ContextChanged { .. }
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        plan.write_context(Vec::new()).unwrap_err(),
        PlanError::Read { .. }
    ));
}

#[test]
fn plan_long_paths_are_reproducible() {
    let one = project();
    let two = project();
    let deep = "a-rather-long-directory-name/another-long-directory-name/yet-another-directory";
    for dir in [&one, &two] {
        let d = dir.path().join("src").join(deep);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("with-a-long-file-name-that-goes-past-one-hundred-bytes.py"),
            "x = 1\n",
        )
        .unwrap();
    }
    let spec = "name: long\nsource_root: src\n";
    let (_, _, p1) = plan(one.path(), spec);
    let (_, _, p2) = plan(two.path(), spec);
    let a = context_bytes(&p1);
    assert_eq!(a, context_bytes(&p2));
    let long = format!("source/{deep}/with-a-long-file-name-that-goes-past-one-hundred-bytes.py");
    assert!(long.len() > 100);
    let entry = tar_entries(&a)
        .into_iter()
        .find(|e| e.path == long)
        .unwrap();
    assert_eq!(entry.content, b"x = 1\n");
}

#[test]
fn plan_copy_entries_keep_their_relative_paths() {
    let dir = project();
    let (_, _, plan) = plan(
        dir.path(),
        "name: c\ncopy: [./data/, tools/bootstrap.sh, data/config.yaml]\n",
    );
    let paths: Vec<&str> = plan
        .context_files()
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "copy/data/config.yaml",
            "copy/data/nested/table.csv",
            "copy/tools/bootstrap.sh"
        ],
        "overlapping entries are shipped once"
    );
    let bootstrap = plan
        .context_files()
        .iter()
        .find(|f| f.path.ends_with(".sh"))
        .unwrap();
    assert!(bootstrap.executable);
}
