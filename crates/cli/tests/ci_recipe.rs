//! The CI recipe (`examples/ci/`): `build-images.sh` run for real against the dev environment's
//! registry (a login through `--password-stdin` into a private Docker config, a build and push,
//! a second run that builds nothing, a bad spec's exit code), and the GitHub Actions workflow
//! parsed and checked to run that script with the variables the script documents.

use std::path::Path;
use std::process::{Command, Output};

use yaml_rust2::{Yaml, YamlLoader};

mod common;

use common::{example, registry_env, registry_var, repo};

fn script() -> std::path::PathBuf {
    repo().join("examples/ci/build-images.sh")
}

/// `build-images.sh SPECS` with the dev registry's credentials in the environment (as CI
/// secrets would be) and a Docker config of its own, so no shared login file is touched.
fn run(work: &Path, specs: &[&Path]) -> Output {
    let env = registry_env();
    Command::new("bash")
        .arg(script())
        .args(specs)
        .current_dir(work)
        .env("IMAGESPEC", assert_cmd::cargo::cargo_bin("imagespec"))
        .env("IMAGESPEC_CONFIG", "/nonexistent/imagespec-config.yaml")
        .env("DOCKER_CONFIG", work.join("docker"))
        .env("REGISTRY", registry_var(&env, "IMAGESPEC_REGISTRY"))
        .env(
            "REGISTRY_USER",
            registry_var(&env, "IMAGESPEC_REGISTRY_USER"),
        )
        .env(
            "REGISTRY_PASSWORD",
            registry_var(&env, "IMAGESPEC_REGISTRY_PASSWORD"),
        )
        .env("IMAGES_FILE", work.join("images.tsv"))
        .env_remove("IMAGESPEC_VARIANT")
        .env_remove("FLYTE_FORCE_PUSH_IMAGE_SPEC")
        .output()
        .expect("run build-images.sh")
}

/// `(spec, image, action)` lines the script appended to `IMAGES_FILE`.
fn images(work: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(work.join("images.tsv"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut f = l.split('\t').map(str::to_string);
            let mut next = || f.next().unwrap_or_default();
            (next(), next(), next())
        })
        .collect()
}

#[test]
fn build_images_builds_pushes_and_then_builds_nothing() {
    let env = registry_env();
    let registry = registry_var(&env, "IMAGESPEC_REGISTRY");
    let password = registry_var(&env, "IMAGESPEC_REGISTRY_PASSWORD");
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path();
    // A spec no other run has built (a fresh `env` value), next to the shipped example.
    std::fs::create_dir_all(root.join("app")).expect("mkdir");
    let marker = format!("{}-{}", std::process::id(), root.display()).replace('/', "_");
    let python = std::env::var("IMAGESPEC_PYTHON_IMAGE")
        .unwrap_or_else(|_| "localhost/imagespec/python:3.11-bookworm".into());
    let uv = std::env::var("IMAGESPEC_UV_IMAGE")
        .unwrap_or_else(|_| "localhost/imagespec/uv:latest".into());
    std::fs::write(
        root.join("app/spec.yaml"),
        format!(
            "name: ci-recipe\npython_version: \"3.11\"\nregistry: {registry}/ci-recipe\n\
             base_image: {python}\nbuilder_config: {{uv_image: {uv}}}\n\
             packages: [six]\nenv: {{RUN: \"{marker}\"}}\n"
        ),
    )
    .expect("write");
    let app = root.join("app/spec.yaml");
    let shipped = example("requirements").join("spec.yaml");
    let specs = [app.as_path(), shipped.as_path()];

    let first = run(root, &specs);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "first run:\n{stderr}");
    assert!(stderr.contains("logged in to"), "{stderr}");
    assert!(!stderr.contains(&password), "the password reached the log");
    let built = images(root);
    assert_eq!(built.len(), 2, "{built:?}");
    assert_eq!(built[0].2, "built", "a new spec is built: {built:?}");
    assert!(
        built[0]
            .1
            .starts_with(&format!("{registry}/ci-recipe/ci-recipe:")),
        "{built:?}"
    );
    assert!(
        ["built", "exists"].contains(&built[1].2.as_str()),
        "{built:?}"
    );
    assert!(stderr.contains("#1 "), "progress is printed: {stderr}");

    std::fs::remove_file(root.join("images.tsv")).expect("rm");
    let second = run(root, &specs);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "second run:\n{stderr}");
    let again = images(root);
    assert_eq!(again.len(), 2, "{again:?}");
    for ((_, image, action), (_, before, _)) in again.iter().zip(&built) {
        assert_eq!(image, before, "the same names");
        assert_eq!(action, "exists", "a second run builds nothing: {again:?}");
    }
    assert!(!stderr.contains("#1 "), "nothing was built: {stderr}");
    // The local copy of this test's own image (the registry keeps the pushed one).
    let _ = Command::new("docker")
        .args(["image", "rm", &built[0].1])
        .output();
}

#[test]
fn build_images_exits_with_imagespecs_code_after_trying_every_spec() {
    let work = tempfile::tempdir().expect("tmp");
    let root = work.path();
    std::fs::write(root.join("bad.yaml"), "name: x\npackges: [a]\n").expect("write");
    let shipped = example("requirements").join("spec.yaml");
    let out = run(root, &[&root.join("bad.yaml"), &shipped]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "invalid spec: {stderr}");
    assert!(
        stderr.contains("bad.yaml: FAILED (exit 3) invalid_spec"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `packages`"), "{stderr}");
    // The good spec after it was still handled.
    assert_eq!(images(root).len(), 1, "{stderr}");
}

#[test]
fn the_workflow_parses_and_runs_the_script_with_the_variables_it_documents() {
    let text =
        std::fs::read_to_string(repo().join("examples/ci/github-actions.yml")).expect("read");
    let docs = YamlLoader::load_from_str(&text).expect("the workflow is YAML");
    assert_eq!(docs.len(), 1);
    let workflow = &docs[0];
    assert!(!workflow["on"]["push"].is_badvalue(), "runs on every push");
    let steps = workflow["jobs"]["images"]["steps"]
        .as_vec()
        .expect("jobs.images.steps");
    let build = steps
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("build-images.sh"))
        })
        .expect("a step runs build-images.sh");
    let script = std::fs::read_to_string(script()).expect("read the script");
    let Yaml::Hash(env) = &build["env"] else {
        panic!("the build step has an env map")
    };
    for (key, value) in env {
        let key = key.as_str().expect("env key");
        assert!(
            script.contains(&format!("#   {key} ")),
            "`{key}` is not one of the variables build-images.sh documents"
        );
        if key == "REGISTRY_PASSWORD" {
            assert!(
                value
                    .as_str()
                    .is_some_and(|v| v.starts_with("${{ secrets.")),
                "the password comes from the secrets"
            );
        }
    }
    // The script's exit codes are imagespec's (crates/cli/src/exit.rs).
    for code in [
        "3 invalid spec",
        "4 builder",
        "5 existence unknown",
        "6 build or push failed",
    ] {
        assert!(script.contains(code), "the script documents exit {code}");
    }
}
