//! Loading spec files: flytekit compatibility, JSON, normalisation, and every rejection rule with
//! its file, line, column, field and fix.

use std::fs;
use std::path::Path;

use imagespec_core::spec::{
    BaseImage, DiagnosticKind, LoadedSpec, Location, SourceCopyMode, SpecError,
};

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::write(root.join("requirements.txt"), "numpy==2.1.0\n").expect("write");
    fs::create_dir_all(root.join("uvproj")).expect("mkdir");
    fs::write(root.join("uvproj/uv.lock"), "version = 1\n").expect("write");
    fs::write(root.join("uvproj/pyproject.toml"), "[project]\nname='x'\n").expect("write");
    fs::create_dir_all(root.join("lonely")).expect("mkdir");
    fs::write(root.join("lonely/uv.lock"), "version = 1\n").expect("write");
    fs::create_dir_all(root.join("src")).expect("mkdir");
    fs::write(root.join("src/app.py"), "print('hi')\n").expect("write");
    dir
}

fn load(root: &Path, text: &str) -> Result<LoadedSpec, SpecError> {
    LoadedSpec::from_text(text, Some(Path::new("spec.yaml")), root)
}

fn errors(root: &Path, text: &str) -> SpecError {
    load(root, text).expect_err("the spec should be rejected")
}

#[test]
fn a_flytekit_spec_file_loads_unchanged() {
    let dir = project();
    let text = r#"
name: Say-Hello-Image
python_version: 3.10
builder: envd
registry: https://ghcr.io/My-Org/
packages:
  - pandas>=2
  - "scikit-learn"
apt_packages: [git, curl]
env:
  DEBUG: "1"
  MODE: prod
requirements: requirements.txt
base_image: python:3.11-slim
platform: linux/amd64, linux/arm64
pip_index: https://pypi.org/simple
pip_extra_index_url: https://example.com/simple
pip_extra_args: --no-build-isolation
pip_secret_mounts:
  - ["env:PIP_TOKEN", "/run/secrets/pip_token"]
entrypoint: []
commands:
  - echo built
tag_format: "{spec_hash}-dev"
source_copy_mode: all
copy: [src/app.py]
source_root: src
runtime_packages: [rich]
builder_options:
  cache: true
  retries: 3
builder_config:
  uv_image: localhost/imagespec/uv:latest
cuda: "12.4"
cudnn: "9"
conda_channels: [conda-forge]
"#;
    let loaded = load(dir.path(), text).expect("valid spec");
    let s = &loaded.spec;
    assert_eq!(s.name, "say-hello-image");
    // YAML would read 3.10 as the float 3.1; we keep the text as written.
    assert_eq!(s.python_version.as_deref(), Some("3.10"));
    assert_eq!(s.builder.as_deref(), Some("envd"));
    assert_eq!(s.registry.as_deref(), Some("ghcr.io/my-org"));
    assert_eq!(s.packages, ["pandas>=2", "scikit-learn"]);
    assert_eq!(s.apt_packages, ["git", "curl"]);
    assert_eq!(s.env.get("DEBUG").map(String::as_str), Some("1"));
    assert_eq!(s.platform, "linux/amd64,linux/arm64");
    assert_eq!(s.pip_extra_index_url, ["https://example.com/simple"]);
    assert_eq!(s.pip_secret_mounts[0].src, "env:PIP_TOKEN");
    assert_eq!(s.entrypoint, Some(vec![]));
    assert_eq!(s.source_copy_mode, Some(SourceCopyMode::All));
    assert_eq!(
        s.builder_options.get("retries"),
        Some(&serde_json::json!(3))
    );
    assert_eq!(
        s.builder_options.get("cache"),
        Some(&serde_json::json!(true))
    );
    assert_eq!(
        s.base_image,
        Some(BaseImage::Reference("python:3.11-slim".into()))
    );
}

#[test]
fn json_specs_load_too() {
    let dir = project();
    let text = r#"{"name": "app", "packages": ["numpy"], "base_image": {"name": "base", "apt_packages": ["git"]}}"#;
    let loaded =
        LoadedSpec::from_text(text, Some(Path::new("spec.json")), dir.path()).expect("valid");
    assert_eq!(loaded.spec.packages, ["numpy"]);
    let base = loaded.spec.base_spec().expect("base spec");
    assert_eq!(base.apt_packages, ["git"]);
}

#[test]
fn defaults_platform_to_linux_amd64() {
    let dir = project();
    let loaded = load(dir.path(), "name: a\n").expect("valid");
    assert_eq!(loaded.spec.platform, "linux/amd64");
}

#[test]
fn unknown_key_names_line_column_and_closest_key() {
    let dir = project();
    let err = errors(dir.path(), "name: a\npackges: [numpy]\n");
    let d = &err.diagnostics[0];
    assert_eq!(d.kind, DiagnosticKind::UnknownKey);
    assert_eq!(d.field, "packges");
    assert_eq!(d.location, Some(Location { line: 2, column: 1 }));
    assert_eq!(d.file.as_deref(), Some(Path::new("spec.yaml")));
    assert!(
        d.help.as_deref().unwrap_or_default().contains("`packages`"),
        "{d}"
    );
}

#[test]
fn a_string_where_a_list_is_needed_is_a_type_error_with_a_fix() {
    let dir = project();
    let err = errors(dir.path(), "name: a\npackages: numpy\n");
    let d = &err.diagnostics[0];
    assert_eq!(d.kind, DiagnosticKind::WrongType);
    assert_eq!(d.field, "packages");
    assert_eq!(
        d.location,
        Some(Location {
            line: 2,
            column: 11
        })
    );
    assert!(d.message.contains("list"), "{d}");
    assert!(
        d.help
            .as_deref()
            .unwrap_or_default()
            .contains(r#"["numpy"]"#),
        "{d}"
    );
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let dir = project();
    let text = "name: Bad Name\nregistry: 'ghcr.io/Org Name'\npackages: numpy\ncopy: [/etc/passwd, ../up]\nplatform: linux/amd65\nunknown_thing: 1\n";
    let err = errors(dir.path(), text);
    let fields: Vec<&str> = err.diagnostics.iter().map(|d| d.field.as_str()).collect();
    for expected in [
        "name",
        "registry",
        "packages",
        "copy[0]",
        "copy[1]",
        "platform",
        "unknown_thing",
    ] {
        assert!(
            fields.contains(&expected),
            "missing {expected} in {fields:?}\n{err}"
        );
    }
    // Every diagnostic points into the file.
    for d in &err.diagnostics {
        assert!(d.location.is_some(), "no location: {d}");
    }
    let copy0 = err
        .diagnostics
        .iter()
        .find(|d| d.field == "copy[0]")
        .expect("copy[0]");
    assert_eq!(copy0.location, Some(Location { line: 4, column: 8 }));
    assert!(copy0.message.contains("absolute"));
    let copy1 = err
        .diagnostics
        .iter()
        .find(|d| d.field == "copy[1]")
        .expect("copy[1]");
    assert!(copy1.message.contains(".."));
}

#[test]
fn invalid_registry_and_name_are_rejected() {
    let dir = project();
    let err = errors(dir.path(), "name: 'my image'\nregistry: 'ghcr.io:/x'\n");
    assert!(err.mentions("name") && err.mentions("registry"), "{err}");
    assert!(
        err.diagnostics
            .iter()
            .all(|d| d.kind == DiagnosticKind::InvalidValue)
    );
}

#[test]
fn lock_file_with_packages_is_a_conflict() {
    let dir = project();
    let err = errors(
        dir.path(),
        "name: a\nrequirements: uvproj/uv.lock\npackages: [numpy]\n",
    );
    assert!(err.has(DiagnosticKind::Conflict), "{err}");
    let d = err
        .diagnostics
        .iter()
        .find(|d| d.kind == DiagnosticKind::Conflict)
        .expect("conflict");
    assert_eq!(
        d.location,
        Some(Location {
            line: 3,
            column: 11
        })
    );
}

#[test]
fn lock_file_without_pyproject_is_rejected() {
    let dir = project();
    let err = errors(dir.path(), "name: a\nrequirements: lonely/uv.lock\n");
    let d = &err.diagnostics[0];
    assert_eq!(d.kind, DiagnosticKind::MissingFile);
    assert!(d.message.contains("pyproject.toml"), "{d}");
    assert_eq!(
        d.location,
        Some(Location {
            line: 2,
            column: 15
        })
    );
}

#[test]
fn missing_files_are_reported() {
    let dir = project();
    let err = errors(
        dir.path(),
        "name: a\nrequirements: nope.txt\ncopy: [missing.py]\nsource_root: nodir\nregistry_config: none.json\n",
    );
    for f in ["requirements", "copy[0]", "source_root", "registry_config"] {
        assert!(
            err.diagnostics
                .iter()
                .any(|d| d.field == f && d.kind == DiagnosticKind::MissingFile),
            "{f}: {err}"
        );
    }
}

#[test]
fn tag_format_must_contain_the_hash_and_yield_a_valid_tag() {
    let dir = project();
    let err = errors(dir.path(), "name: a\ntag_format: latest\n");
    assert!(err.diagnostics[0].message.contains("{spec_hash}"));
    let err = errors(dir.path(), "name: a\ntag_format: 'v/{spec_hash}'\n");
    assert!(err.diagnostics[0].message.contains("invalid tag"), "{err}");
    let err = errors(dir.path(), "name: a\ntag_format: '{spec_hash}-{user}'\n");
    assert!(err.diagnostics[0].message.contains("placeholder"), "{err}");
    assert!(load(dir.path(), "name: a\ntag_format: '{spec_hash}-dev'\n").is_ok());
}

#[test]
fn nested_base_spec_errors_carry_the_nested_path_and_position() {
    let dir = project();
    let err = errors(
        dir.path(),
        "name: a\nbase_image:\n  name: base\n  apt_packages: git\n",
    );
    let d = &err.diagnostics[0];
    assert_eq!(d.field, "base_image.apt_packages");
    assert_eq!(
        d.location,
        Some(Location {
            line: 4,
            column: 17
        })
    );
}

#[test]
fn a_missing_name_is_flytekits_default_and_an_empty_one_is_reported_with_a_fix() {
    let dir = project();
    let loaded = LoadedSpec::from_text("packages: [numpy]\n", None, dir.path()).expect("valid");
    assert_eq!(loaded.spec.name, imagespec_core::spec::DEFAULT_NAME);
    assert_eq!(loaded.spec.name, "flytekit");
    let err = errors(dir.path(), "name: \"\"\npackages: [numpy]\n");
    assert!(err.has(DiagnosticKind::MissingField));
    assert!(err.to_string().contains("name: my-image"), "{err}");
}

#[test]
fn syntax_errors_have_a_position() {
    let dir = project();
    let err = errors(dir.path(), "name: a\npackages: [numpy\n");
    let d = &err.diagnostics[0];
    assert_eq!(d.kind, DiagnosticKind::Syntax);
    assert!(d.location.is_some());
    let err = errors(dir.path(), "name: a\nname: b\n");
    assert!(
        err.diagnostics[0].message.contains("duplicate key"),
        "{err}"
    );
    let err = errors(dir.path(), "");
    assert!(err.diagnostics[0].message.contains("empty"), "{err}");
    let err = errors(dir.path(), "- a\n- b\n");
    assert!(!err.diagnostics.is_empty());
}

#[test]
fn secret_mounts_accept_pairs_and_mappings_and_reject_others() {
    let dir = project();
    fs::write(dir.path().join("netrc"), "machine x login y password z\n").expect("write");
    let ok = load(
        dir.path(),
        "name: a\npip_secret_mounts:\n  - [netrc, /root/.netrc]\n  - {src: 'env:TOKEN', dst: /run/secrets/token}\n",
    )
    .expect("valid");
    assert_eq!(ok.spec.pip_secret_mounts.len(), 2);
    let err = errors(
        dir.path(),
        "name: a\npip_secret_mounts:\n  - [only-one]\n  - [netrc, ../dst]\n",
    );
    // A relative destination is accepted (flytekit's `secret_dst_2`), one that climbs is not.
    load(
        dir.path(),
        "name: a\npackages: [x]\npip_secret_mounts: [[netrc, secret_dst_2]]\n",
    )
    .expect("a relative destination is valid");
    assert!(
        err.diagnostics
            .iter()
            .any(|d| d.field == "pip_secret_mounts[0]" && d.kind == DiagnosticKind::WrongType)
    );
    assert!(
        err.diagnostics
            .iter()
            .any(|d| d.field == "pip_secret_mounts[1]" && d.message.contains("`..`"))
    );
}

#[test]
fn secret_contents_never_appear_in_errors() {
    let dir = project();
    fs::write(dir.path().join("token"), "s3cr3t-value").expect("write");
    let err = errors(
        dir.path(),
        "name: a\npip_secret_mounts: [[token, not-absolute]]\npackages: x\n",
    );
    assert!(!err.to_string().contains("s3cr3t-value"));
}

#[test]
fn other_value_rules() {
    let dir = project();
    let err = errors(
        dir.path(),
        "name: a\npython_version: three\nenv: {'1BAD': x}\ncudnn: '9'\npip_index: ftp://x\nbuilder_config: {uvimage: x}\nsource_copy_mode: some\nbase_image: 'Not/Valid'\n",
    );
    for f in [
        "python_version",
        "env.1BAD",
        "cudnn",
        "pip_index",
        "builder_config.uvimage",
        "source_copy_mode",
        "base_image",
    ] {
        assert!(err.mentions(f), "{f} not reported:\n{err}");
    }
}

#[test]
fn messages_render_file_line_column_field_and_help() {
    let dir = project();
    let err = errors(dir.path(), "name: a\npackages: numpy\n");
    let text = err.to_string();
    assert!(
        text.contains("spec.yaml:2:11: `packages`: expected a list of strings, found a string"),
        "{text}"
    );
    assert!(text.contains("help:"), "{text}");
}

#[test]
fn relative_paths_resolve_against_the_given_root() {
    let dir = project();
    // From another root the same file is missing: the root decides, not the process's directory.
    let other = tempfile::tempdir().expect("tempdir");
    assert!(load(dir.path(), "name: a\nrequirements: requirements.txt\n").is_ok());
    assert!(load(other.path(), "name: a\nrequirements: requirements.txt\n").is_err());
}

#[test]
fn from_file_reports_an_unreadable_file() {
    let dir = project();
    let err =
        LoadedSpec::from_file(&dir.path().join("nope.yaml"), dir.path()).expect_err("missing");
    assert_eq!(err.diagnostics[0].kind, DiagnosticKind::MissingFile);
    assert!(err.to_string().contains("nope.yaml"));
}

/// A line break inside a value that lands in one Dockerfile line would start an instruction of
/// the spec author's choosing (e.g. a `RUN --network=host` on the build service).
#[test]
fn line_breaks_are_refused_wherever_they_would_reach_a_dockerfile_line() {
    let dir = project();
    let text = r#"
name: app
python_exec: "/usr/bin/python3\nRUN --network=host echo injected"
packages: ["numpy\nRUN echo injected"]
env: {A: "1\nRUN echo injected"}
commands: ["echo one\necho two"]
"#;
    let err = errors(dir.path(), text);
    let fields: Vec<&str> = err.diagnostics.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["python_exec", "packages[0]", "env.A"], "{err}");
    assert!(
        err.to_string().contains("write the value on one line"),
        "{err}"
    );
}

#[test]
fn a_copy_entry_through_a_link_that_leaves_the_root_is_refused() {
    let dir = project();
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("hostname"), "host\n").expect("write");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("esc")).expect("symlink");
    let err = errors(dir.path(), "name: app\ncopy: [esc/hostname]\n");
    assert_eq!(err.diagnostics[0].field, "copy[0]", "{err}");
    assert!(err.to_string().contains("outside the root"), "{err}");
    // A link that stays inside the root is fine.
    std::os::unix::fs::symlink(dir.path().join("src"), dir.path().join("inside")).expect("symlink");
    load(dir.path(), "name: app\ncopy: [inside/app.py]\n").expect("a link inside the root");
}

/// The one diagnostic of a rejected spec, with its line.
fn only(err: &SpecError) -> (&imagespec_core::spec::Diagnostic, usize) {
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    (d, d.location.map(|l| l.line).unwrap_or(0))
}

#[test]
fn content_after_the_first_document_is_refused_with_its_line() {
    let dir = project();
    let err = errors(dir.path(), "name: a\n---\nname: b\n");
    let (d, line) = only(&err);
    assert_eq!((d.kind, line), (DiagnosticKind::Syntax, 2), "{err}");
    assert!(d.message.contains("second YAML document"), "{err}");
    let err = errors(dir.path(), "{\"name\": \"x\"} garbage\n");
    let (d, line) = only(&err);
    assert_eq!((d.kind, line), (DiagnosticKind::Syntax, 1), "{err}");
    let err = errors(dir.path(), "{\"name\": \"x\"}\n{\"name\": \"y\"}\n");
    assert_eq!(only(&err).1, 2, "{err}");
    // A document end marker or a lone trailing `---` holds nothing: nothing is dropped.
    assert!(load(dir.path(), "name: a\n...\n").is_ok());
    assert!(load(dir.path(), "---\nname: a\n---\n").is_ok());
}

#[test]
fn non_finite_numbers_where_text_is_wanted_are_refused_unless_quoted() {
    let dir = project();
    for (text, field) in [
        ("name: NaN\n", "name"),
        ("name: a\npython_version: .nan\n", "python_version"),
        ("name: a\napt_packages: [git, .inf]\n", "apt_packages[1]"),
        ("name: a\nenv: {X: -.Inf}\n", "env.X"),
        ("{\"name\": \"a\", \"registry\": Infinity}\n", "registry"),
    ] {
        let err = errors(dir.path(), text);
        let (d, line) = only(&err);
        assert_eq!(
            (d.kind, d.field.as_str()),
            (DiagnosticKind::WrongType, field),
            "{err}"
        );
        assert!(line >= 1, "{err}");
        assert!(
            d.help.as_deref().is_some_and(|h| h.contains("quote")),
            "{err}"
        );
    }
    let loaded = load(dir.path(), "name: \"NaN\"\nenv: {X: \".inf\"}\n").expect("quoted is text");
    assert_eq!(loaded.spec.name, "nan");
    assert_eq!(loaded.spec.env["X"], ".inf");
    // Kept on purpose, as flytekit formats them into text: numbers for versions and env values.
    let loaded = load(
        dir.path(),
        "name: a\npython_version: 3.11\ncuda: 12.4\nenv: {N: 1}\n",
    )
    .expect("numbers for versions");
    assert_eq!(loaded.spec.python_version.as_deref(), Some("3.11"));
    // flytekit lower-cases the name, which fails on a number.
    let err = errors(dir.path(), "name: 123\n");
    assert_eq!(only(&err).0.field, "name", "{err}");
    assert!(load(dir.path(), "name: \"123\"\n").is_ok());
}

#[test]
fn empty_or_blank_names_are_refused_in_every_list_of_names() {
    let dir = project();
    for key in [
        "packages",
        "apt_packages",
        "conda_packages",
        "conda_channels",
        "runtime_packages",
        "pip_extra_index_url",
    ] {
        let err = errors(dir.path(), &format!("name: a\n{key}:\n  - ''\n  - ' '\n"));
        let fields: Vec<&str> = err.diagnostics.iter().map(|d| d.field.as_str()).collect();
        let first = format!("{key}[0]");
        let second = format!("{key}[1]");
        assert!(fields.contains(&first.as_str()), "{err}");
        assert!(fields.contains(&second.as_str()), "{err}");
        let d = err
            .diagnostics
            .iter()
            .find(|d| d.field == first)
            .expect("first");
        assert_eq!(d.location.map(|l| l.line), Some(3), "{err}");
    }
}

#[test]
fn a_bom_is_accepted_as_flytekit_does() {
    let dir = project();
    let path = dir.path().join("bom.yaml");
    fs::write(&path, "\u{feff}name: a\npackages: [numpy]\n").expect("write");
    let loaded = LoadedSpec::from_file(&path, dir.path()).expect("a BOM is fine");
    assert_eq!(loaded.spec.name, "a");
}

#[test]
fn the_spec_file_is_limited_to_1_mib_and_named_in_the_error() {
    let dir = project();
    let path = dir.path().join("big.yaml");
    let mut text = String::from("name: a\n");
    while text.len() as u64 <= imagespec_core::spec::MAX_SPEC_FILE_BYTES {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    fs::write(&path, &text).expect("write");
    let err = LoadedSpec::from_file(&path, dir.path()).expect_err("too big");
    let (d, _) = only(&err);
    assert!(d.message.contains("1048576 bytes"), "{err}");
    assert_eq!(d.file.as_deref(), Some(path.as_path()));
}

/// None of these may block or read much: each is refused from its type, before reading.
#[cfg(target_os = "linux")]
#[test]
fn special_files_are_refused_at_once_as_spec_and_configuration_files() {
    let dir = project();
    let fifo = dir.path().join("fifo.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    for (path, what) in [
        (fifo.as_path(), "FIFO"),
        (Path::new("/dev/zero"), "character device"),
        (dir.path(), "directory"),
        (Path::new("/proc/self/status"), "proc"),
    ] {
        let err = LoadedSpec::from_file(path, dir.path()).expect_err("refused");
        let (d, _) = only(&err);
        assert!(d.message.contains(what), "{path:?}: {err}");
        assert_eq!(d.file.as_deref(), Some(path));
        let err = imagespec_core::config::Config::load(path, true).expect_err("refused");
        assert!(err.to_string().contains(what), "{path:?}: {err}");
        assert!(err.to_string().contains("configuration file"), "{err}");
    }
}

#[test]
fn a_configuration_file_with_a_second_document_is_refused() {
    let err = imagespec_core::config::Config::parse(
        "variant: byoc\n---\nif_unknown: build\n",
        Path::new("c.yaml"),
    )
    .expect_err("second document");
    assert!(err.to_string().contains("c.yaml:2:1"), "{err}");
}

#[test]
fn a_trailing_backslash_in_a_secret_destination_is_refused_not_eaten() {
    let dir = project();
    let err = errors(
        dir.path(),
        "name: a\npackages: [numpy]\npip_secret_mounts: [[\"env:T\", '/run/secrets/t\\']]\n",
    );
    let (d, line) = only(&err);
    assert_eq!(
        (d.field.as_str(), line),
        ("pip_secret_mounts[0]", 3),
        "{err}"
    );
    assert!(d.message.contains("backslash"), "{err}");
    assert!(d.message.contains("/run/secrets/t\\`"), "{err}");
}

#[test]
fn base_specs_nest_at_most_16_deep() {
    let dir = project();
    let mut text = String::from("name: a0\n");
    for depth in 1..=20 {
        text.push_str(&format!(
            "{}base_image:\n{}  name: a{depth}\n",
            "  ".repeat(depth - 1),
            "  ".repeat(depth - 1)
        ));
    }
    let err = errors(dir.path(), &text);
    assert!(
        err.to_string().contains("nested more than 16 deep"),
        "{err}"
    );
}
