//! The image name: deterministic, independent of formatting, and changed by every hashed input.

use std::fs;
use std::path::Path;

use imagespec_core::hash::{HASH_LEN, resolve_image};
use imagespec_core::spec::{ImageSpec, LoadedSpec};
use proptest::prelude::*;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::write(root.join("requirements.txt"), "numpy==2.1.0\n").expect("write");
    fs::create_dir_all(root.join("proj")).expect("mkdir");
    fs::write(root.join("proj/uv.lock"), "version = 1\n").expect("write");
    fs::write(root.join("proj/pyproject.toml"), "[project]\nname='x'\n").expect("write");
    fs::create_dir_all(root.join("src/pkg")).expect("mkdir");
    fs::write(root.join("src/pkg/a.py"), "A = 1\n").expect("write");
    fs::write(root.join("src/b.py"), "B = 2\n").expect("write");
    fs::write(root.join("src/.gitignore"), "*.log\n").expect("write");
    fs::write(root.join("src/debug.log"), "noise\n").expect("write");
    fs::write(root.join("extra.txt"), "extra\n").expect("write");
    dir
}

fn tag_of_text(root: &Path, text: &str) -> String {
    let loaded = LoadedSpec::from_text(text, None, root).expect("valid spec");
    resolve_image(&loaded).expect("hash").name.to_string()
}

fn tag_of(root: &Path, spec: ImageSpec) -> String {
    let loaded = LoadedSpec::from_spec(spec, root).expect("valid spec");
    resolve_image(&loaded).expect("hash").name.to_string()
}

fn full_spec() -> ImageSpec {
    ImageSpec::new("app")
        .with_registry("127.0.0.1:5000/team")
        .with_python_version("3.11")
        .with_packages(["numpy", "pandas"])
        .with_apt_packages(["git"])
        .with_requirements("requirements.txt")
        .with_commands(["echo one"])
        .with_copy(["extra.txt"])
        .with_env([("A", "1")])
        .with_source_root("src")
        .with_base_image("python:3.11-slim")
}

#[test]
fn name_has_registry_name_and_a_hash_tag() {
    let dir = project();
    let name = tag_of(dir.path(), full_spec());
    let (repo, tag) = name.rsplit_once(':').expect("tag");
    assert_eq!(repo, "127.0.0.1:5000/team/app");
    assert_eq!(tag.len(), HASH_LEN);
    assert!(tag.bytes().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn tag_format_wraps_the_hash() {
    let dir = project();
    let plain = tag_of(dir.path(), full_spec());
    let dev = tag_of(dir.path(), full_spec().with_tag_format("{spec_hash}-dev"));
    assert_eq!(dev, format!("{plain}-dev"));
}

#[test]
fn formatting_key_order_comments_and_json_do_not_change_the_tag() {
    let dir = project();
    let block = "name: app\npackages:\n  - numpy\n  - pandas\nenv:\n  A: '1'\n  B: two\nrequirements: requirements.txt\n";
    let flow = "# a comment\nrequirements: \"requirements.txt\"\nenv: {B: two, A: \"1\"}\npackages: [numpy, pandas]\nname: APP\n";
    let json = r#"{"env": {"A": "1", "B": "two"}, "name": "app", "requirements": "requirements.txt", "packages": ["numpy", "pandas"]}"#;
    let a = tag_of_text(dir.path(), block);
    assert_eq!(a, tag_of_text(dir.path(), flow));
    assert_eq!(a, tag_of_text(dir.path(), json));
}

#[test]
fn the_tag_is_the_same_in_another_directory_with_the_same_files() {
    let one = project();
    let two = project();
    assert_eq!(
        tag_of(one.path(), full_spec()),
        tag_of(two.path(), full_spec())
    );
}

#[test]
fn a_registry_scheme_does_not_change_the_name() {
    let dir = project();
    assert_eq!(
        tag_of(
            dir.path(),
            full_spec().with_registry("https://127.0.0.1:5000/team/")
        ),
        tag_of(dir.path(), full_spec())
    );
}

#[test]
fn fields_that_do_not_change_the_image_do_not_change_the_tag() {
    let dir = project();
    fs::write(dir.path().join("secret"), "token").expect("write");
    let base = tag_of(dir.path(), full_spec());
    let mut with_builder = full_spec().with_builder("noop");
    with_builder.registry_config = Some("requirements.txt".into());
    assert_eq!(tag_of(dir.path(), with_builder), base);
    assert_eq!(
        tag_of(dir.path(), full_spec().with_runtime_packages(["rich"])),
        base
    );
    assert_eq!(
        tag_of(
            dir.path(),
            full_spec().with_pip_secret_mount("secret", "/run/s")
        ),
        base
    );
    assert_eq!(tag_of(dir.path(), full_spec().force_push()), base);
    // The secret's content is never read for the hash.
    fs::write(dir.path().join("secret"), "another token").expect("write");
    assert_eq!(
        tag_of(
            dir.path(),
            full_spec().with_pip_secret_mount("secret", "/run/s")
        ),
        base
    );
}

#[test]
fn every_hashed_field_changes_the_tag() {
    let dir = project();
    let base = tag_of(dir.path(), full_spec());
    let variants: Vec<(&str, ImageSpec)> = vec![
        ("python_version", full_spec().with_python_version("3.12")),
        ("packages", full_spec().with_packages(["scipy"])),
        ("apt_packages", full_spec().with_apt_packages(["curl"])),
        ("commands", full_spec().with_commands(["echo two"])),
        ("env", full_spec().with_env([("A", "2")])),
        (
            "base_image",
            full_spec().with_base_image("python:3.12-slim"),
        ),
        ("platform", full_spec().with_platform("linux/arm64")),
        (
            "entrypoint",
            full_spec().with_entrypoint(Vec::<String>::new()),
        ),
        (
            "builder_config",
            full_spec().with_builder_config("uv_image", "localhost/uv:1"),
        ),
        ("copy", full_spec().with_copy(["requirements.txt"])),
        ("source_root", full_spec().with_source_root("src/pkg")),
        (
            "requirements",
            full_spec()
                .with_requirements("proj/uv.lock")
                .with_packages(Vec::<String>::new()),
        ),
    ];
    for (field, spec) in variants {
        let spec = if field == "requirements" {
            let mut s = spec;
            s.packages.clear();
            s
        } else {
            spec
        };
        assert_ne!(
            tag_of(dir.path(), spec),
            base,
            "changing `{field}` must change the tag"
        );
    }
    let mut s = full_spec();
    s.pip_index = Some("https://mirror.example/simple".into());
    assert_ne!(tag_of(dir.path(), s), base, "pip_index");
    let mut s = full_spec();
    s.pip_extra_args = Some("--pre".into());
    assert_ne!(tag_of(dir.path(), s), base, "pip_extra_args");
    let mut s = full_spec();
    s.cuda = Some("12.4".into());
    assert_ne!(tag_of(dir.path(), s), base, "cuda");
    let mut s = full_spec();
    s.builder_options.insert("k".into(), serde_json::json!(1));
    assert_ne!(tag_of(dir.path(), s), base, "builder_options");
    let mut s = full_spec();
    s.pip_extra_index_url = vec!["https://extra.example/simple".into()];
    assert_ne!(tag_of(dir.path(), s), base, "pip_extra_index_url");
    let mut s = full_spec();
    s.python_exec = Some("/usr/bin/python3".into());
    assert_ne!(tag_of(dir.path(), s), base, "python_exec");
    let mut s = full_spec();
    s.conda_packages = vec!["pytorch".into()];
    let with_conda = tag_of(dir.path(), s.clone());
    assert_ne!(with_conda, base, "conda_packages");
    s.conda_channels = vec!["conda-forge".into()];
    assert_ne!(tag_of(dir.path(), s), with_conda, "conda_channels");
    let mut s = full_spec();
    s.cuda = Some("12.4".into());
    let with_cuda = tag_of(dir.path(), s.clone());
    s.cudnn = Some("9".into());
    assert_ne!(tag_of(dir.path(), s), with_cuda, "cudnn");
    let mut s = full_spec();
    s.source_copy_mode = Some(imagespec_core::spec::SourceCopyMode::None);
    assert_ne!(tag_of(dir.path(), s), base, "source_copy_mode: none");
}

#[test]
fn spellings_of_the_same_copy_path_give_the_same_tag() {
    let dir = project();
    let tag = |entry: &str| tag_of(dir.path(), ImageSpec::new("a").with_copy([entry]));
    let plain = tag("src/pkg/a.py");
    for spelling in ["./src/pkg/a.py", "src//pkg/a.py", "src/./pkg/a.py"] {
        assert_eq!(tag(spelling), plain, "{spelling}");
    }
    assert_eq!(tag("src/"), tag("src"));
    assert_eq!(tag("./"), tag("."));
}

#[test]
fn list_items_are_not_concatenated() {
    let dir = project();
    let a = tag_of(dir.path(), ImageSpec::new("a").with_packages(["ab", "c"]));
    let b = tag_of(dir.path(), ImageSpec::new("a").with_packages(["a", "bc"]));
    assert_ne!(a, b);
}

#[test]
fn file_bytes_change_the_tag() {
    let dir = project();
    let before = tag_of(dir.path(), full_spec());
    fs::write(dir.path().join("requirements.txt"), "numpy==2.1.1\n").expect("write");
    let after_requirements = tag_of(dir.path(), full_spec());
    assert_ne!(before, after_requirements);
    fs::write(dir.path().join("extra.txt"), "changed\n").expect("write");
    let after_copy = tag_of(dir.path(), full_spec());
    assert_ne!(after_requirements, after_copy);
    fs::write(dir.path().join("src/pkg/a.py"), "A = 2\n").expect("write");
    assert_ne!(after_copy, tag_of(dir.path(), full_spec()));
}

#[test]
fn the_executable_bit_of_a_copied_file_changes_the_tag() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project();
    let before = tag_of(dir.path(), full_spec());
    fs::set_permissions(
        dir.path().join("extra.txt"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    assert_ne!(before, tag_of(dir.path(), full_spec()));
}

#[test]
fn the_pyproject_beside_a_lock_file_is_hashed() {
    let dir = project();
    let spec = ImageSpec::new("a").with_requirements("proj/uv.lock");
    let before = tag_of(dir.path(), spec.clone());
    fs::write(
        dir.path().join("proj/pyproject.toml"),
        "[project]\nname='y'\n",
    )
    .expect("write");
    assert_ne!(before, tag_of(dir.path(), spec));
}

#[test]
fn ignored_files_do_not_change_the_tag_but_ignore_rules_that_change_the_set_do() {
    let dir = project();
    let before = tag_of(dir.path(), full_spec());
    fs::write(dir.path().join("src/debug.log"), "more noise\n").expect("write");
    assert_eq!(
        before,
        tag_of(dir.path(), full_spec()),
        "an ignored file changed the tag"
    );
    fs::write(dir.path().join("src/.gitignore"), "*.log\nb.py\n").expect("write");
    assert_ne!(
        before,
        tag_of(dir.path(), full_spec()),
        "a changed selection must change the tag"
    );
}

#[test]
fn a_dockerignore_that_changes_the_selection_changes_the_tag() {
    let dir = project();
    let before = tag_of(dir.path(), full_spec());
    // Ignore files are ordinary (hashed) files unless they exclude themselves.
    fs::write(
        dir.path().join("src/.dockerignore"),
        "*.md\n.dockerignore\n",
    )
    .expect("write");
    assert_eq!(
        before,
        tag_of(dir.path(), full_spec()),
        "the rule selects nothing new, yet the tag changed"
    );
    fs::write(
        dir.path().join("src/.dockerignore"),
        "pkg/\n.dockerignore\n",
    )
    .expect("write");
    assert_ne!(
        before,
        tag_of(dir.path(), full_spec()),
        "excluding pkg/ must change the tag"
    );
}

#[test]
fn a_base_spec_chains_into_the_child_name() {
    let dir = project();
    let base = ImageSpec::new("base").with_apt_packages(["git"]);
    let child = ImageSpec::new("child")
        .with_packages(["numpy"])
        .with_base_spec(base.clone());
    let loaded = LoadedSpec::from_spec(child.clone(), dir.path()).expect("valid");
    let resolved = resolve_image(&loaded).expect("hash");
    let base_name = resolved
        .base
        .as_ref()
        .expect("base resolved")
        .name
        .to_string();
    assert!(
        resolved
            .inputs
            .inputs
            .iter()
            .any(|i| i.field == "base_image" && i.summary == base_name)
    );
    let changed_base = child.with_base_spec(base.with_apt_packages(["curl"]));
    assert_ne!(resolved.name.to_string(), tag_of(dir.path(), changed_base));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Any list of packages gives the same tag however the YAML is laid out.
    #[test]
    fn stable_under_reformatting(packages in proptest::collection::vec("[a-z][a-z0-9_-]{0,8}", 0..6), env in proptest::collection::btree_map("[A-Z][A-Z0-9_]{0,5}", "[a-z0-9 ]{0,6}", 0..4)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let block = {
            let mut t = String::from("name: app\n");
            if !packages.is_empty() {
                t.push_str("packages:\n");
                for p in &packages { t.push_str(&format!("  - {p}\n")); }
            }
            if !env.is_empty() {
                t.push_str("env:\n");
                for (k, v) in &env { t.push_str(&format!("  {k}: \"{v}\"\n")); }
            }
            t
        };
        let json = serde_json::json!({"name": "app", "packages": packages, "env": env}).to_string();
        let flow = {
            let items: Vec<String> = packages.iter().map(|p| format!("'{p}'")).collect();
            let vars: Vec<String> = env.iter().rev().map(|(k, v)| format!("{k}: \"{v}\"")).collect();
            format!("env: {{{}}}\npackages: [{}]\nname: 'APP'\n", vars.join(", "), items.join(", "))
        };
        let a = tag_of_text(dir.path(), &block);
        prop_assert_eq!(&a, &tag_of_text(dir.path(), &json));
        prop_assert_eq!(&a, &tag_of_text(dir.path(), &flow));
    }

    /// Changing any one package, command or env value changes the tag.
    #[test]
    fn changes_under_every_hashed_change(packages in proptest::collection::vec("[a-z]{1,6}", 1..5), idx in 0usize..5, suffix in "[a-z0-9]{1,3}") {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = ImageSpec::new("app").with_packages(packages.clone()).with_commands(packages.clone());
        let base = tag_of(dir.path(), spec.clone());
        let i = idx % packages.len();
        let mut changed_pkg = spec.clone();
        changed_pkg.packages[i].push_str(&suffix);
        prop_assert_ne!(&base, &tag_of(dir.path(), changed_pkg));
        let mut changed_cmd = spec.clone();
        changed_cmd.commands[i].push_str(&suffix);
        prop_assert_ne!(&base, &tag_of(dir.path(), changed_cmd));
        let mut moved = spec.clone();
        moved.commands.rotate_left(1);
        if moved.commands != spec.commands {
            prop_assert_ne!(&base, &tag_of(dir.path(), moved));
        }
    }
}

/// Pinned value: a change to the hashing scheme must be deliberate (bump `HASH_SCHEME`, or
/// `plan::PLAN_VERSION` for a recipe change, and update this value), never an accident of
/// refactoring.
#[test]
fn the_scheme_is_pinned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = ImageSpec::new("pinned")
        .with_packages(["numpy==2.1.0"])
        .with_apt_packages(["git"])
        .with_env([("A", "1")])
        .with_base_image("debian:bookworm-slim");
    let name = tag_of(dir.path(), spec);
    insta::assert_snapshot!(name, @"pinned:f58b645861226a495743c3e93a9073ba");
}

/// The Flyte runtime is a hash input of its own: another flytekit version, or none, is another
/// image; the default is the pinned release.
#[test]
fn the_flyte_runtime_changes_the_tag() {
    use imagespec_core::plan::runtime::Runtime;
    let dir = tempfile::tempdir().expect("tempdir");
    let name = |runtime: Runtime| {
        let loaded = imagespec_core::LoadedSpec::from_spec(
            ImageSpec::new("rt").with_packages(["six"]),
            dir.path(),
        )
        .expect("valid")
        .with_runtime(runtime);
        let resolved = imagespec_core::resolve_image(&loaded).expect("hash");
        let input = resolved
            .inputs
            .inputs
            .iter()
            .find(|i| i.field == "flyte_runtime")
            .map(|i| i.summary.clone());
        (resolved.name.to_string(), input)
    };
    let pinned = name(Runtime::default());
    let other = name(Runtime::Flytekit("1.15.0".into()));
    let none = name(Runtime::None);
    assert_eq!(pinned.1.as_deref(), Some("flytekit==1.16.31"));
    assert_eq!(none.1, None);
    assert_ne!(pinned.0, other.0);
    assert_ne!(pinned.0, none.0);
    assert_ne!(other.0, none.0);
}
