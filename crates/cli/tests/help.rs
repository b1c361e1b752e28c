//! Help lines that are right: the fix offered for a mistake is one that works, in the syntax of
//! the file it is for.

mod common;

use common::imagespec;

/// `imagespec validate` of a spec with `text` in a file `name`: its exit code and stderr.
fn validate(name: &str, text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(name), text).expect("write spec");
    let out = imagespec(dir.path())
        .args(["validate", name])
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn an_entrypoint_string_is_offered_as_its_words() {
    let (code, stderr) = validate("spec.yaml", "name: app\nentrypoint: python -m app\n");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(r#"write `entrypoint: ["python", "-m", "app"]`"#),
        "{stderr}"
    );
    assert!(!stderr.contains(r#"["python -m app"]"#), "{stderr}");
}

#[test]
fn a_json_spec_gets_json_help() {
    let (code, stderr) = validate(
        "spec.json",
        r#"{"name": "app", "packages": "numpy", "env": ["A=1"]}"#,
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(r#"write `"packages": ["numpy"]`"#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"write `"env": {"KEY": "value"}`"#),
        "{stderr}"
    );
    assert!(
        !stderr.contains("YAML"),
        "YAML help for a JSON file: {stderr}"
    );
}

#[test]
fn a_misspelt_builder_is_refused_by_validate_with_the_name_meant() {
    let (code, stderr) = validate("spec.yaml", "name: app\nbuilder: dokcer\n");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("spec.yaml:2:"), "located: {stderr}");
    assert!(stderr.contains("did you mean `docker`?"), "{stderr}");
    // The CLI ships a fixed set of builders: a name unlike all of them is refused too, listing
    // them, with no guess.
    let (code, stderr) = validate("spec.yaml", "name: app\nbuilder: kaniko\n");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("available builders: default, docker"),
        "{stderr}"
    );
    assert!(!stderr.contains("did you mean"), "{stderr}");
}

/// `imagespec builders` says which builders are set up (the dev environment's Docker answers,
/// no build service is configured) and that `serverless` refuses local builds.
#[test]
fn builders_say_whether_each_is_set_up_and_what_the_variant_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |variant: &str| {
        let out = imagespec(dir.path())
            .env("DOCKER_HOST", "unix:///var/run/docker.sock")
            .env_remove("IMAGESPEC_REMOTE_URL")
            .env_remove("IMAGESPEC_REMOTE_TOKEN")
            .args(["builders", "--variant", variant])
            .output()
            .expect("run");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let flyte = run("flyte");
    let line_after = |text: &str, name: &str| {
        let mut lines = text.lines();
        lines.find(|l| l.get(2..).is_some_and(|l| l.starts_with(name)));
        lines.next().unwrap_or_default().trim().to_string()
    };
    assert!(
        line_after(&flyte, "docker ").starts_with("ready: Docker"),
        "{flyte}"
    );
    assert!(
        line_after(&flyte, "union ").starts_with("not set up:"),
        "{flyte}"
    );
    assert!(!flyte.contains("refused"), "{flyte}");
    let serverless = run("serverless");
    assert!(
        serverless.contains("local builds are refused under the serverless variant"),
        "{serverless}"
    );
    assert_eq!(
        line_after(&serverless, "docker "),
        "refused by the serverless variant"
    );
}

/// `--help` lists every environment variable the sources read (found by name in `crates/*/src`).
#[test]
fn help_lists_every_environment_variable_read() {
    let out = imagespec(&common::repo())
        .arg("--help")
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let mut read = std::collections::BTreeSet::new();
    let crates = common::repo().join("crates");
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(&crates)
        .expect("crates")
        .flatten()
        .map(|e| e.path().join("src"))
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                // Every quoted name of imagespec's, Docker's, Podman's, flytekit's variables
                // (read directly or through an `env(name)` lookup).
                for quoted in text.split('"').skip(1).step_by(2) {
                    let is_name = !quoted.is_empty()
                        && quoted
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                    let ours = [
                        "IMAGESPEC_",
                        "DOCKER_",
                        "CONTAINER_",
                        "FLYTE_",
                        "XDG_",
                        "REGISTRY_AUTH",
                    ]
                    .iter()
                    .any(|p| quoted.starts_with(p))
                        || ["NO_COLOR", "RUST_LOG"].contains(&quoted);
                    if is_name && ours {
                        read.insert(quoted.to_string());
                    }
                }
            }
        }
    }
    // Set inside images, or read only by unit tests: not configuration.
    read.retain(|v| v != "IMAGESPEC_SPEC_HASH" && !v.starts_with("IMAGESPEC_TEST_"));
    assert!(
        read.contains("DOCKER_HOST") && read.contains("NO_COLOR"),
        "{read:?}"
    );
    for var in read {
        assert!(
            help.contains(&var),
            "`{var}` is read but not in --help:\n{help}"
        );
    }
}
