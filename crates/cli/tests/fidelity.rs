//! Issue 10 ("flytekit fidelity"): validation as strict as flytekit's, `builder_options` keys of
//! other builders, through the `imagespec` binary.

use std::path::Path;

mod common;

use common::{imagespec, stdout_of, write};

fn validate_json(dir: &Path, file: &str) -> (Option<i32>, serde_json::Value) {
    let out = imagespec(dir)
        .args(["--output", "json", "validate", file])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    (out.status.code(), v)
}

fn fields(diagnostics: &serde_json::Value) -> Vec<String> {
    diagnostics
        .as_array()
        .unwrap_or_else(|| panic!("no diagnostics: {diagnostics}"))
        .iter()
        .filter_map(|d| d["field"].as_str().map(str::to_string))
        .collect()
}

/// Point 10: a number or a boolean in any list of strings is refused, located, with the quoted
/// spelling as the fix (flytekit: "packages must be a list of strings or None"); quoted, it is
/// the text.
#[test]
fn non_string_items_of_every_list_field_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "numbers.yaml",
        "name: app\n\
         packages: [1, 2, 3]\n\
         apt_packages: [true]\n\
         conda_packages: [1.5]\n\
         conda_channels: [2]\n\
         pip_extra_index_url: [3]\n\
         commands: [4]\n\
         entrypoint: [5]\n\
         runtime_packages: [off]\n\
         copy: [7]\n",
    );
    let (code, v) = validate_json(dir.path(), "numbers.yaml");
    assert_eq!(code, Some(3), "{v}");
    let diagnostics = &v["error"]["diagnostics"];
    assert_eq!(
        fields(diagnostics),
        [
            "packages[0]",
            "packages[1]",
            "packages[2]",
            "apt_packages[0]",
            "conda_packages[0]",
            "conda_channels[0]",
            "pip_extra_index_url[0]",
            "commands[0]",
            "entrypoint[0]",
            "runtime_packages[0]",
            "copy[0]",
        ]
    );
    let first = &diagnostics[0];
    assert_eq!(first["kind"], "wrong_type");
    assert_eq!(first["location"]["line"], 2);
    assert_eq!(first["location"]["column"], 12);
    assert!(
        first["help"].as_str().is_some_and(|h| h.contains("\"1\"")),
        "{first}"
    );
    let off = &diagnostics[9];
    assert!(
        off["message"]
            .as_str()
            .is_some_and(|m| m.contains("boolean")),
        "`off` is a YAML 1.1 boolean, as PyYAML (pyflyte) reads it: {off}"
    );
    // JSON spec files too.
    write(
        dir.path(),
        "numbers.json",
        "{\"name\": \"app\", \"packages\": [1]}",
    );
    let (code, v) = validate_json(dir.path(), "numbers.json");
    assert_eq!(code, Some(3), "{v}");
    assert_eq!(fields(&v["error"]["diagnostics"]), ["packages[0]"]);
    // Quoted, they are text; unquoted names stay names.
    write(
        dir.path(),
        "quoted.yaml",
        "name: app\npackages: [\"1\", numpy, 'off']\ncommands: [\"4\"]\n",
    );
    let (code, v) = validate_json(dir.path(), "quoted.yaml");
    assert_eq!(code, Some(0), "{v}");
}

/// Point 10: flytekit refuses a copy mode that copies without a `source_root`; `none` is fine.
#[test]
fn source_copy_mode_without_source_root_is_refused_unless_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in ["all", "loaded_modules"] {
        write(
            dir.path(),
            "spec.yaml",
            &format!("name: app\nsource_copy_mode: {mode}\n"),
        );
        let (code, v) = validate_json(dir.path(), "spec.yaml");
        assert_eq!(code, Some(3), "{mode}: {v}");
        let d = &v["error"]["diagnostics"][0];
        assert_eq!(d["field"], "source_copy_mode", "{d}");
        assert_eq!(d["location"]["line"], 2, "{d}");
        assert!(
            d["help"]
                .as_str()
                .is_some_and(|h| h.contains("source_root")),
            "{d}"
        );
    }
    write(
        dir.path(),
        "spec.yaml",
        "name: app\nsource_copy_mode: none\n",
    );
    let (code, v) = validate_json(dir.path(), "spec.yaml");
    assert_eq!(code, Some(0), "{v}");
}

/// Point 10: `validate` reports what the builder would refuse (an unknown builder name) and what
/// planning refuses in a base spec (its `cuda`) with the spec's other problems, at once, located.
#[test]
fn validate_reports_builder_refusals_with_the_other_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "spec.yaml",
        "name: app\n\
         builder: nope\n\
         copy: [missing.txt]\n\
         base_image:\n  name: base\n  cuda: \"11.0\"\n",
    );
    let (code, v) = validate_json(dir.path(), "spec.yaml");
    assert_eq!(code, Some(3), "{v}");
    let diagnostics = &v["error"]["diagnostics"];
    let mut got = fields(diagnostics);
    got.sort();
    assert_eq!(
        got,
        ["base_image.cuda", "builder", "copy[0]"],
        "{diagnostics}"
    );
    for d in diagnostics.as_array().expect("list") {
        assert_eq!(d["file"], "spec.yaml", "{d}");
        assert!(d["location"]["line"].as_u64().is_some(), "{d}");
    }
    let builder = diagnostics
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["field"] == "builder"))
        .expect("builder diagnostic");
    assert_eq!(builder["location"]["line"], 2);
    assert!(
        builder["message"]
            .as_str()
            .is_some_and(|m| m.contains("available builders")),
        "{builder}"
    );
}

/// Point 7: Union's `imagepull_secret_name` (and any key imagespec does not read) is not fatal:
/// one warning naming it, on stderr and in the JSON answer, and the spec validates and plans.
#[test]
fn builder_options_unknown_keys_warn_and_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "spec.yaml",
        "name: app\nbuilder_options:\n  imagepull_secret_name: pull-secret\n  workdir: /app\n",
    );
    let out = imagespec(dir.path())
        .args(["validate", "spec.yaml"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("builder_options.imagepull_secret_name")
            .count(),
        1,
        "warned once: {stderr}"
    );
    assert!(stderr.contains("WARN"), "{stderr}");
    let (code, v) = validate_json(dir.path(), "spec.yaml");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        fields(&v["warnings"]),
        ["builder_options.imagepull_secret_name"]
    );
    assert_eq!(v["warnings"][0]["location"]["line"], 3, "{v}");
    assert_eq!(
        v["spec"]["builder_options"]["imagepull_secret_name"], "pull-secret",
        "the whole dict stays in the spec the builders receive"
    );
    let dockerfile = imagespec(dir.path())
        .args(["dockerfile", "spec.yaml"])
        .output()
        .expect("run");
    assert!(dockerfile.status.success());
    assert!(String::from_utf8_lossy(&dockerfile.stdout).contains("WORKDIR /app"));
    // A known key is still checked.
    write(
        dir.path(),
        "bad.yaml",
        "name: app\nbuilder_options: {imagepull_secret_name: s, workdir: app}\n",
    );
    let (code, v) = validate_json(dir.path(), "bad.yaml");
    assert_eq!(code, Some(3), "{v}");
    assert_eq!(
        fields(&v["error"]["diagnostics"]),
        ["builder_options.workdir"]
    );
}

/// Point 7: a spec with Union's key builds (a real Docker build, no push).
#[test]
fn a_spec_with_imagepull_secret_name_builds() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "spec.yaml",
        "name: union-pull-secret\n\
         base_image: localhost/imagespec/python:3.11-bookworm\n\
         builder_config: {uv_image: localhost/imagespec/uv:latest}\n\
         builder_options: {imagepull_secret_name: pull-secret}\n\
         commands: [\"echo built\"]\n",
    );
    let stdout = stdout_of(
        imagespec(dir.path())
            .args(["--output", "json", "build", "spec.yaml"])
            .args([
                "--builder",
                "docker",
                "--no-push",
                "--no-flytekit",
                "--force",
            ]),
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        lines.first().map(|l| l["event"].clone()),
        Some("warning".into())
    );
    assert_eq!(
        lines.first().map(|l| l["warning"]["field"].clone()),
        Some("builder_options.imagepull_secret_name".into())
    );
    let last = lines.last().expect("result line");
    assert_eq!(last["event"], "result", "{stdout}");
    assert_eq!(last["outcome"]["action"], "built", "{stdout}");
}

/// The install line of `imagespec dockerfile` for `spec` on `variant`, with `extra` flags.
fn install_line(dir: &Path, variant: &str, extra: &[&str]) -> String {
    stdout_of(
        imagespec(dir)
            .env("IMAGESPEC_VARIANT", variant)
            .args(["dockerfile", "spec.yaml"])
            .args(extra),
    )
    .lines()
    .find(|l| l.contains("uv pip install"))
    .unwrap_or_default()
    .to_string()
}

fn tag_on(dir: &Path, variant: &str) -> String {
    stdout_of(
        imagespec(dir)
            .env("IMAGESPEC_VARIANT", variant)
            .args(["tag", "spec.yaml"]),
    )
    .trim()
    .to_string()
}

/// Point 1 (Union variants): as Union's builder (union 0.1.204), the Union variants add
/// `union==<pinned>` unless `union`/`unionai` is named; naming flytekit does not stop it. The
/// version is overridable by flag and config, and is part of the name.
#[test]
fn union_variants_add_the_pinned_union_as_unions_builder_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "spec.yaml", "name: app\npackages: [numpy]\n");
    assert!(install_line(dir.path(), "flyte", &[]).ends_with("numpy flytekit==1.16.31"));
    for variant in ["serverless", "byoc", "byok", "selfmanaged"] {
        let line = install_line(dir.path(), variant, &[]);
        assert!(line.ends_with("numpy union==0.1.204"), "{variant}: {line}");
        assert!(!line.contains("flytekit"), "{variant}: {line}");
    }
    assert_ne!(tag_on(dir.path(), "flyte"), tag_on(dir.path(), "byoc"));
    assert_eq!(tag_on(dir.path(), "byoc"), tag_on(dir.path(), "serverless"));
    let line = install_line(dir.path(), "byoc", &["--union-version", "0.1.190"]);
    assert!(line.ends_with("numpy union==0.1.190"), "{line}");
    let line = install_line(dir.path(), "byoc", &["--no-flytekit"]);
    assert!(line.is_empty() || !line.contains("union"), "{line}");
    // An explicit flytekit version is used, whatever the variant.
    let line = install_line(dir.path(), "byoc", &["--flytekit-version", "1.15.0"]);
    assert!(line.ends_with("numpy flytekit==1.15.0"), "{line}");
    // The configuration file's `union_version`.
    write(dir.path(), "config.yaml", "union_version: \"0.1.199\"\n");
    let config = dir.path().join("config.yaml");
    let out = imagespec(dir.path())
        .env("IMAGESPEC_VARIANT", "byok")
        .env("IMAGESPEC_CONFIG", &config)
        .args(["dockerfile", "spec.yaml"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("numpy union==0.1.199"));

    // union or unionai named: nothing added; flytekit named: union still added.
    write(
        dir.path(),
        "spec.yaml",
        "name: app\npackages: [unionai>=0.1]\n",
    );
    let line = install_line(dir.path(), "byoc", &[]);
    assert!(line.ends_with("'unionai>=0.1'"), "{line}");
    write(
        dir.path(),
        "spec.yaml",
        "name: app\nrequirements: requirements.txt\n",
    );
    write(dir.path(), "requirements.txt", "union==0.1.180\n");
    let line = install_line(dir.path(), "selfmanaged", &[]);
    assert!(!line.contains("union=="), "{line}");
    write(
        dir.path(),
        "spec.yaml",
        "name: app\npackages: [flytekit==1.16.0]\n",
    );
    let line = install_line(dir.path(), "serverless", &[]);
    assert!(line.ends_with("flytekit==1.16.0 union==0.1.204"), "{line}");
}
