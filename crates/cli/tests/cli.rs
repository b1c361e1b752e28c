//! The `imagespec` binary on the bundled examples: output, JSON, exit codes, and a real build.

use std::path::Path;

use predicates::prelude::*;

mod common;

use common::{example, imagespec, json_result, registry_login, repo, serve_refusing, stdout_of};

#[test]
fn every_example_validates() {
    for name in ["requirements", "uv-project", "base-spec"] {
        imagespec(&example(name))
            .args(["validate", "spec.yaml"])
            .assert()
            .success()
            .stdout(predicate::str::contains("valid"));
    }
}

#[test]
fn tag_is_deterministic_and_independent_of_the_working_directory() {
    let here = stdout_of(imagespec(&example("requirements")).args(["tag", "spec.yaml"]));
    let elsewhere = stdout_of(
        imagespec(&repo())
            .args(["--root", "examples/requirements", "tag"])
            .arg(example("requirements").join("spec.yaml")),
    );
    assert_eq!(here, elsewhere);
    let name = here.trim();
    assert!(
        name.starts_with("127.0.0.1:5000/examples/hello-requirements:"),
        "{name}"
    );
    assert_eq!(name.rsplit(':').next().map(str::len), Some(32));
}

#[test]
fn tag_json_and_explain() {
    let json =
        stdout_of(imagespec(&example("base-spec")).args(["--output", "json", "tag", "spec.yaml"]));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let image = v["image"].as_str().expect("image");
    assert!(image.starts_with("127.0.0.1:5000/examples/trainer:"));
    let base = v["resolved"]["base"]["name"]["repository"].as_str();
    assert_eq!(base, Some("trainer-base"));
    let explain =
        stdout_of(imagespec(&example("uv-project")).args(["tag", "--explain", "spec.yaml"]));
    for field in ["requirements", "copy", "recipe", "imagespec-tag-v1"] {
        assert!(explain.contains(field), "{field} missing from:\n{explain}");
    }
}

#[test]
fn registry_override_changes_only_the_registry() {
    let plain = stdout_of(imagespec(&example("requirements")).args(["tag", "spec.yaml"]));
    let moved = stdout_of(imagespec(&example("requirements")).args([
        "tag",
        "spec.yaml",
        "--registry",
        "https://ghcr.io/acme/",
    ]));
    let tag = |s: &str| s.trim().rsplit(':').next().map(str::to_string);
    assert_eq!(tag(&plain), tag(&moved));
    assert!(
        moved.starts_with("ghcr.io/acme/hello-requirements:"),
        "{moved}"
    );
}

#[test]
fn an_invalid_spec_exits_3_and_names_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "name: app\npackages: numpy\npackges: [x]\n",
    )
    .expect("write");
    imagespec(dir.path())
        .args(["validate", "bad.yaml"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("bad.yaml:2:11: `packages`"))
        .stderr(predicate::str::contains("did you mean `packages`?"));
    let out = imagespec(dir.path())
        .args(["--output", "json", "validate", "bad.yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json error on stdout");
    assert_eq!(v["error"]["kind"], "invalid_spec");
    assert_eq!(v["error"]["diagnostics"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["error"]["diagnostics"][0]["location"]["line"], 2);
}

#[test]
fn a_source_tree_problem_is_found_by_validate_and_exits_3_with_one_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("rules"), "*.log\n").expect("write");
    std::fs::create_dir(dir.path().join("src")).expect("mkdir");
    std::fs::write(dir.path().join("src/app.py"), "print(1)\n").expect("write");
    // Rules from a file outside the tree would select files by content that is not hashed.
    std::os::unix::fs::symlink(
        outside.path().join("rules"),
        dir.path().join("src/.gitignore"),
    )
    .expect("symlink");
    std::fs::write(
        dir.path().join("spec.yaml"),
        "name: app\nsource_root: src\n",
    )
    .expect("write");
    for command in ["validate", "tag"] {
        let out = imagespec(dir.path())
            .args([command, "spec.yaml"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(3), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("`source_root`"), "{command}: {stderr}");
        let first_line = stderr.lines().next().unwrap_or_default();
        let words: Vec<&str> = first_line.split(": ").collect();
        let mut unique = words.clone();
        unique.dedup();
        assert_eq!(words, unique, "a cause is printed twice: {first_line}");
    }
}

#[test]
fn what_planning_refuses_is_refused_by_validate_and_dry_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("spec.yaml"),
        "name: app\nregistry: 127.0.0.1:5000\nbase_image:\n  name: base\n  cuda: \"12.7\"\n",
    )
    .expect("write");
    for args in [
        &["validate", "spec.yaml"][..],
        &["build", "spec.yaml", "--dry-run"],
    ] {
        imagespec(dir.path())
            .args(args)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("12.7"));
    }
}

#[test]
fn builders_marks_the_variant_default() {
    let text = stdout_of(imagespec(&repo()).args(["builders"]));
    assert!(text.lines().any(|l| l.starts_with("* default")), "{text}");
    let json = stdout_of(imagespec(&repo()).args([
        "--output",
        "json",
        "builders",
        "--variant",
        "serverless",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["default_builder"], "union");
    assert_eq!(v["local_builds_allowed"], false);
    let from_env = stdout_of(
        imagespec(&repo())
            .env("IMAGESPEC_VARIANT", "byoc")
            .args(["--output", "json", "builders"]),
    );
    let v: serde_json::Value = serde_json::from_str(&from_env).expect("json");
    assert_eq!(
        (v["variant"].as_str(), v["variant_source"].as_str()),
        (Some("byoc"), Some("environment"))
    );
    imagespec(&repo())
        .args(["builders", "--variant", "cloud"])
        .assert()
        .code(2);
    imagespec(&example("requirements"))
        .args(["build", "spec.yaml", "--dry-run", "--if-unknown", "maybe"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("fail, build, assume"));
}

#[test]
fn builder_problems_exit_4_before_any_work() {
    let spec = example("requirements");
    imagespec(&spec)
        .args(["build", "spec.yaml", "--builder", "kaniko"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "available builders: default, docker, noop, podman, union",
        ));
    imagespec(&spec)
        .args([
            "build",
            "spec.yaml",
            "--variant",
            "serverless",
            "--builder",
            "default",
        ])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("does not support local builds"));
    // Serverless's default builder without a build service: what to set, not "unknown".
    imagespec(&spec)
        .env_remove("IMAGESPEC_REMOTE_URL")
        .env_remove("IMAGESPEC_REMOTE_TOKEN")
        .args(["build", "spec.yaml", "--variant", "serverless"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("IMAGESPEC_REMOTE_URL"));
}

#[test]
fn dockerfile_and_context_are_reproducible() {
    let spec = example("requirements");
    let dockerfile = stdout_of(imagespec(&spec).args(["dockerfile", "spec.yaml"]));
    assert!(dockerfile.starts_with("# Generated by imagespec"));
    assert!(dockerfile.contains("FROM localhost/imagespec/python:3.11-bookworm"));
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["a.tar", "b.tar"] {
        imagespec(&spec)
            .args(["context", "spec.yaml", "--out"])
            .arg(dir.path().join(name))
            .assert()
            .success();
    }
    let a = std::fs::read(dir.path().join("a.tar")).expect("a");
    let b = std::fs::read(dir.path().join("b.tar")).expect("b");
    assert_eq!(a, b);
    assert!(
        !a.windows(b"todo.txt".len()).any(|w| w == b"todo.txt"),
        ".dockerignore'd file in the context"
    );
}

#[test]
fn build_pushes_then_is_a_no_op_and_reports_json() {
    let config = registry_login().0;
    let namespace = format!("127.0.0.1:5000/cli-test-{}", std::process::id());
    let spec = example("requirements");
    let mut first = imagespec(&spec);
    first.env("DOCKER_CONFIG", config.path()).args([
        "build",
        "spec.yaml",
        "--registry",
        &namespace,
    ]);
    let image = stdout_of(&mut first);
    assert!(
        image
            .trim()
            .starts_with(&format!("{namespace}/hello-requirements:")),
        "{image}"
    );

    let v = json_result(imagespec(&spec).env("DOCKER_CONFIG", config.path()).args([
        "--output",
        "json",
        "build",
        "spec.yaml",
        "--registry",
        &namespace,
    ]));
    assert_eq!(v["event"], "result");
    assert_eq!(v["outcome"]["action"], "exists");
    assert_eq!(v["outcome"]["image"].as_str(), Some(image.trim()));
}

/// `build --tag`: the caller's tag names the image (the registry and name stay the spec's); a tag
/// that is not one, or a naming scheme beside it, is a usage error.
#[test]
fn build_with_a_given_tag_uses_it_and_refuses_a_scheme_beside_it() {
    let config = registry_login().0;
    let namespace = format!("127.0.0.1:5000/cli-tag-{}", std::process::id());
    let spec = example("requirements");
    let v = json_result(
        imagespec(&spec)
            .env("DOCKER_CONFIG", config.path())
            .args(["--output", "json", "build", "spec.yaml", "--dry-run"])
            .args(["--registry", &namespace, "--tag", "given_Tag-1.0"]),
    );
    assert_eq!(
        v["outcome"]["image"].as_str(),
        Some(format!("{namespace}/hello-requirements:given_Tag-1.0").as_str())
    );
    assert_eq!(v["outcome"]["action"], "would_build");

    for bad in [
        vec!["--tag", "-starts-with-a-dash"],
        vec!["--tag", "has:colon"],
        vec!["--tag", "ok", "--tag-scheme", "flytekit"],
    ] {
        let out = imagespec(&spec)
            .args(["build", "spec.yaml", "--dry-run", "--registry", &namespace])
            .args(&bad)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

/// A real build whose command fails: exit 6, the failing step and its last output lines named.
#[test]
fn a_failing_command_exits_6_and_names_the_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("spec.yaml"),
        "name: failing-step\n\
         base_image: localhost/imagespec/python:3.11-bookworm\n\
         builder_config: {uv_image: localhost/imagespec/uv:latest}\n\
         commands:\n  - echo about to fail\n  - 'echo no such luck >&2 && exit 7'\n",
    )
    .expect("write");
    let out = imagespec(dir.path())
        .args(["build", "spec.yaml", "--builder", "docker", "--no-push"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("exit 7"),
        "the failing step is named: {stderr}"
    );
    assert!(
        stderr.contains("no such luck"),
        "its output is shown: {stderr}"
    );
    assert!(out.stdout.is_empty(), "no image name on stdout");
}

#[test]
fn an_unreachable_registry_is_unknown_and_exits_5_unless_the_policy_says_otherwise() {
    let spec = example("requirements");
    imagespec(&spec)
        .args(["build", "spec.yaml", "--registry", "127.0.0.1:1/nowhere"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("cannot tell whether"))
        .stderr(predicate::str::contains("--if-unknown"));
    imagespec(&spec)
        .args([
            "build",
            "spec.yaml",
            "--registry",
            "127.0.0.1:1/nowhere",
            "--if-unknown",
            "assume",
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("assumed to exist"));
    // FLYTE_IMG_FAST_FAIL overrides --if-unknown: the advice is to unset it, not to pass the
    // flag the user already passed.
    let out = imagespec(&spec)
        .env("FLYTE_IMG_FAST_FAIL", "1")
        .args([
            "build",
            "spec.yaml",
            "--registry",
            "127.0.0.1:1/nowhere",
            "--if-unknown",
            "assume",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("because FLYTE_IMG_FAST_FAIL is set"),
        "{stderr}"
    );
    assert!(stderr.contains("unset FLYTE_IMG_FAST_FAIL"), "{stderr}");
}

#[test]
fn dry_run_reports_without_building() {
    let spec = example("requirements");
    let config = registry_login().0;
    let namespace = format!("127.0.0.1:5000/cli-dry-{}", std::process::id());
    imagespec(&spec)
        .env("DOCKER_CONFIG", config.path())
        .args(["build", "spec.yaml", "--dry-run", "--registry", &namespace])
        .assert()
        .success()
        .stderr(predicate::str::contains("missing: would build"));
    // Forced: no existence check is made, and the dry run says so rather than "missing".
    imagespec(&spec)
        .env("DOCKER_CONFIG", config.path())
        .args(["build", "spec.yaml", "--dry-run", "--force"])
        .args(["--registry", &namespace])
        .assert()
        .success()
        .stderr(predicate::str::contains("forced: would build"))
        .stderr(predicate::str::contains("missing").not());
    // Unknown under the `build` policy: the dry run gives the reason, not "missing".
    imagespec(&spec)
        .args(["build", "spec.yaml", "--dry-run", "--if-unknown", "build"])
        .args(["--registry", "127.0.0.1:1/nowhere"])
        .assert()
        .success()
        .stderr(predicate::str::contains("unknown: "))
        .stderr(predicate::str::contains(
            "would build (dry run, policy `build`)",
        ))
        .stderr(predicate::str::contains("missing").not());
}

/// Under `serverless` only the remote builder is allowed: its "not set up" error must not
/// suggest `--builder default`, which that variant refuses; under `byoc` it may.
#[test]
fn an_unconfigured_remote_builder_suggests_only_what_the_variant_allows() {
    let spec = example("requirements");
    let out = imagespec(&spec)
        .env_remove("IMAGESPEC_REMOTE_URL")
        .env_remove("IMAGESPEC_REMOTE_TOKEN")
        .args(["build", "spec.yaml", "--dry-run", "--variant", "serverless"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("IMAGESPEC_REMOTE_URL"), "{stderr}");
    assert!(!stderr.contains("--builder default"), "{stderr}");
    assert!(stderr.contains("builds only remotely"), "{stderr}");
    let out = imagespec(&spec)
        .env_remove("IMAGESPEC_REMOTE_URL")
        .env_remove("IMAGESPEC_REMOTE_TOKEN")
        .args(["build", "spec.yaml", "--dry-run", "--variant", "byoc"])
        .args(["--builder", "union"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--builder default"), "{stderr}");
}

/// Bad specs, one per kind of refusal: loading, validation, planning (of the spec and of a base
/// spec) and hashing. `src/secret.txt` and `src/app.py` exist in the project.
const BAD_SPECS: &[(&str, &str)] = &[
    ("unknown_key", "name: app\npackges: [numpy]\n"),
    ("wrong_type", "name: app\npackages: numpy\n"),
    ("second_document", "name: app\n---\nname: other\n"),
    ("trailing_garbage", "{\"name\": \"app\"} garbage\n"),
    ("nan_name", "name: NaN\n"),
    ("blank_package", "name: app\npackages: [numpy, ' ']\n"),
    ("unknown_cuda", "name: app\ncuda: \"11.0\"\n"),
    // An unknown key is a warning (`builder_options_unknown_keys_warn_and_pass`); a known
    // key's bad value is refused.
    (
        "bad_builder_option",
        "name: app\nbuilder_options: {workdir: app}\n",
    ),
    (
        "planning_and_validation_together",
        "name: app\nplatform: linux/z80\ncuda: \"11.0\"\nbuilder_options: {non_root_user: maybe}\n",
    ),
    // flytekit: "packages must be a list of strings or None" (YAML reads `1` as a number).
    ("number_in_packages", "name: app\npackages: [numpy, 1]\n"),
    ("bool_in_commands", "name: app\ncommands: [yes]\n"),
    ("number_in_copy", "name: app\ncopy: [2]\n"),
    // flytekit: "Field source_root ... must be set when copy is set".
    (
        "copy_mode_without_root",
        "name: app\nsource_copy_mode: all\n",
    ),
    (
        "base_cuda",
        "name: app\nbase_image:\n  name: base\n  cuda: \"12.7\"\n",
    ),
    (
        "python_version_at_odds_with_the_base_spec",
        "name: app\npython_version: \"3.12\"\npackages: [rich]\nbase_image:\n  name: base\n  python_version: \"3.11\"\n  packages: [numpy]\n",
    ),
    (
        "empty_command",
        "name: app\ncommands: [\"echo hi\", \"\"]\n",
    ),
    // Secrets without packages are valid now (the Flyte runtime is installed, flytekit's case);
    // without the runtime they are refused by the plan (core's plan tests).
    (
        "secret_climbs",
        "name: app\npackages: [six]\npip_secret_mounts: [[\"env:T\", ../t]]\n",
    ),
    (
        "secret_backslash",
        "name: app\npackages: [numpy]\npip_secret_mounts: [[\"env:T\", '/run/secrets/t\\']]\n",
    ),
    (
        "bad_pip_extra_args",
        "name: app\npackages: [numpy]\npip_extra_args: \"--x 'open\"\n",
    ),
    (
        "secret_in_source_root",
        "name: app\npackages: [numpy]\nsource_root: src\npip_secret_mounts: [[src/secret.txt, /run/secrets/t]]\n",
    ),
    (
        "missing_requirements",
        "name: app\nrequirements: nope.txt\n",
    ),
];

/// Runs `args` with `--output json` and returns the exit code and the error's diagnostics.
fn json_failure(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = imagespec(dir)
        // Should a bad spec get past the checks, no engine is there to build it.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("CONTAINER_HOST", "unix:///nonexistent/podman.sock")
        .args(["--output", "json"])
        .args(args)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}"));
    (out.status.code(), v["error"]["diagnostics"].clone())
}

/// Point 5 of issue 9: `validate`, `tag`, `dockerfile`, `context` and `build` (dry run or not)
/// run one set of checks, so they refuse the same specs with the same diagnostics, each located
/// in the file.
#[test]
fn every_command_refuses_a_bad_spec_with_the_same_diagnostics() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
    std::fs::write(dir.path().join("src/app.py"), "print('hi')\n").expect("write");
    std::fs::write(dir.path().join("src/secret.txt"), "s3cr3t\n").expect("write");
    for (name, text) in BAD_SPECS {
        let file = format!("{name}.yaml");
        std::fs::write(dir.path().join(&file), text).expect("write");
        let tar = dir.path().join(format!("{name}.tar"));
        let tar = tar.to_str().expect("utf-8");
        let (code, expected) = json_failure(dir.path(), &["validate", &file]);
        assert_eq!(code, Some(3), "{name}: validate");
        let diagnostics = expected
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {expected}"));
        assert!(!diagnostics.is_empty(), "{name}");
        for d in diagnostics {
            assert_eq!(d["file"], file.as_str(), "{name}: {d}");
            assert!(
                d["location"]["line"].as_u64().is_some_and(|l| l >= 1),
                "{name}: {d}"
            );
        }
        for args in [
            &["tag", &file][..],
            &["dockerfile", &file],
            &["context", &file, "--out", tar],
            &["build", &file, "--dry-run", "--registry", "127.0.0.1:5000"],
            &["build", &file, "--no-push"],
        ] {
            let (code, diagnostics) = json_failure(dir.path(), args);
            assert_eq!(code, Some(3), "{name}: {args:?}");
            assert_eq!(diagnostics, expected, "{name}: {args:?}");
        }
    }
}

#[test]
fn problems_of_validation_and_planning_are_reported_in_one_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("spec.yaml"),
        "name: app\nplatform: linux/z80\ncuda: \"11.0\"\nbuilder_options: {non_root_user: maybe}\n",
    )
    .expect("write");
    let (code, diagnostics) = json_failure(dir.path(), &["tag", "spec.yaml"]);
    assert_eq!(code, Some(3));
    let fields: Vec<&str> = diagnostics
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["platform", "cuda", "builder_options.non_root_user"]
    );
    let out = imagespec(dir.path())
        .args(["tag", "spec.yaml"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("spec.yaml:3:7: `cuda`:"), "{stderr}");
    assert!(stderr.contains("spec.yaml:4:"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "tag printed a name for a refused spec"
    );
}

/// The Flyte runtime: on by default (`flytekit==1.16.31` in the install), another release with
/// `--flytekit-version` or the config's `flytekit_version`, off with `--no-flytekit` or
/// `flytekit: false`; each is another image name, and a bad version is a usage error.
#[test]
fn flytekit_runtime_flags_and_config() {
    let dir = example("requirements");
    let tag = |args: &[&str], config: Option<&Path>| {
        let mut cmd = imagespec(&dir);
        if let Some(config) = config {
            cmd.env("IMAGESPEC_CONFIG", config);
        }
        stdout_of(cmd.arg("tag").args(args).arg("spec.yaml"))
    };
    let default = tag(&[], None);
    let off = tag(&["--no-flytekit"], None);
    let other = tag(&["--flytekit-version", "1.15.0"], None);
    assert_ne!(default, off);
    assert_ne!(default, other);
    assert_ne!(off, other);
    assert_eq!(tag(&["--flytekit-version", "none"], None), off);
    let configs = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = configs.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    assert_eq!(tag(&[], Some(&write("off.yaml", "flytekit: false\n"))), off);
    let pinned = write("pinned.yaml", "flytekit_version: \"1.15.0\"\n");
    assert_eq!(tag(&[], Some(&pinned)), other);
    // The flag wins over the configuration.
    assert_eq!(tag(&["--no-flytekit"], Some(&pinned)), off);

    let dockerfile = stdout_of(imagespec(&dir).args(["dockerfile", "spec.yaml"]));
    assert!(
        dockerfile.contains("idna flytekit==1.16.31") || dockerfile.contains("flytekit==1.16.31"),
        "{dockerfile}"
    );
    let without = stdout_of(imagespec(&dir).args(["dockerfile", "--no-flytekit", "spec.yaml"]));
    assert!(!without.contains("flytekit"), "{without}");
    for command in ["validate", "context"] {
        let mut cmd = imagespec(&dir);
        cmd.args([command, "--flytekit-version", "latest", "spec.yaml"]);
        if command == "context" {
            cmd.args(["--out", "/dev/null"]);
        }
        cmd.assert()
            .code(2)
            .stderr(predicate::str::contains("not a flytekit version"));
    }
}

/// A service configuration that cannot work stops `imagespec serve` at once (exit 3), naming the
/// file and the line, and is not called an invalid image spec.
#[test]
fn serve_refuses_a_configuration_that_cannot_work() {
    let dir = tempfile::tempdir().expect("tmp");
    for (text, needle) in [
        ("listen: 127.0.0.1:0\nlisten: 127.0.0.1:1\n", "2:1"),
        (
            "tokens:\n  - {project: a, token: aaaaaaaaaaaaaaaaaaaa}\n  - {project: b, token: aaaaaaaaaaaaaaaaaaaa}\n",
            "already given to project `a`",
        ),
        ("registry_credentials: nowhere.json\n", "nowhere.json"),
    ] {
        let stderr = serve_refusing(dir.path(), text);
        assert!(stderr.contains(needle), "{text}: {stderr}");
        assert!(stderr.contains("service.yaml"), "{stderr}");
        assert!(!stderr.contains("invalid image spec"), "{stderr}");
    }
}

/// `imagespec serve --log-format json` writes timestamped JSON lines to stderr, one access
/// line per request, without the query string or the token, and no colour codes (stderr is
/// a pipe here).
#[test]
fn serve_logs_json_access_lines_without_secrets() {
    use std::io::{BufRead as _, Read as _, Write as _};
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("service.yaml");
    let token = "serve-log-test-token-0123456789";
    std::fs::write(
        &file,
        format!("listen: 127.0.0.1:0\ndata_dir: data\ntokens:\n  - {{project: team-a, token: {token}}}\n"),
    )
    .expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_imagespec"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&file)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("listening line");
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .expect("an address")
        .to_string();
    let request = |path: &str| {
        let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        conn.read_to_string(&mut answer).expect("answer");
        answer
    };
    let answer = request("/v1/builds/nope?password=hunter2");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    child.kill().expect("kill");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let _ = child.wait();
    assert!(!stderr.contains(token), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes on a pipe: {stderr}"
    );
    let access = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"] == "imagespec_service::access")
        .unwrap_or_else(|| panic!("an access line in JSON: {stderr}"));
    assert_eq!(access["path"], "/v1/builds/nope");
    assert_eq!(access["status"], 404);
    assert_eq!(access["project"], "team-a");
    assert!(access["timestamp"].is_string(), "{access}");
}
