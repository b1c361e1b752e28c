//! Issue 14, proxies: the proxy variables of the environment and of `config.json`'s `proxies`
//! reach every `RUN` step as build args (the Docker CLI's way), on Docker and on Podman, and
//! stay out of the image (its `Env` and history) and out of its name. Real engines; the proxy
//! addresses are never contacted (the steps only compare them), so no proxy server is needed.

mod common;

use std::path::Path;

use common::{engine_cli, imagespec, json_result, nonce, stdout_of};

/// ROT13, so that the step can compare a value without the image's history holding it.
fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            _ => c,
        })
        .collect()
}

/// The spec: one step fails unless it sees the proxies the test expects, in both cases.
fn write_spec(dir: &Path, nonce: &str) {
    let check = [
        ("HTTP_PROXY", "http://env-proxy.invalid:3128"),
        ("http_proxy", "http://env-proxy.invalid:3128"),
        ("HTTPS_PROXY", "http://file-proxy.invalid:3129"),
        ("https_proxy", "http://file-proxy.invalid:3129"),
        ("NO_PROXY", "internal.example"),
        ("no_proxy", "internal.example"),
    ]
    .iter()
    .map(|(k, v)| {
        format!(
            "test \"$(echo \"${k}\" | tr a-z n-za-m)\" = \"{}\"",
            rot13(v)
        )
    })
    .collect::<Vec<_>>()
    .join(" && ");
    std::fs::write(
        dir.join("spec.yaml"),
        format!(
            "name: proxies\n\
             base_image: localhost/imagespec/python:3.11-bookworm\n\
             builder_config: {{uv_image: localhost/imagespec/uv:latest}}\n\
             commands:\n  - echo {nonce}\n  - '{check}'\n"
        ),
    )
    .expect("write spec");
}

/// A Docker config directory whose `config.json` has `proxies`: `default` for HTTPS and
/// NO_PROXY, and an HTTP proxy the environment overrides.
fn docker_config(dir: &Path) {
    let config = serde_json::json!({"proxies": {"default": {
        "httpProxy": "http://overridden.invalid:1",
        "httpsProxy": "http://file-proxy.invalid:3129",
        "noProxy": "internal.example",
    }}});
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write config");
}

fn proxies_reach_the_steps_but_not_the_image(builder: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = tempfile::tempdir().expect("tempdir");
    docker_config(config.path());
    let nonce = nonce();
    write_spec(dir.path(), &nonce);

    let tag = |with_proxy: bool| {
        let mut cmd = imagespec(dir.path());
        cmd.env("DOCKER_CONFIG", config.path())
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy");
        if with_proxy {
            cmd.env("HTTP_PROXY", "http://env-proxy.invalid:3128");
        }
        stdout_of(cmd.args(["tag", "spec.yaml", "--no-flytekit"]))
            .trim()
            .to_string()
    };
    let name = tag(false);
    assert_eq!(tag(true), name, "a proxy changed the image name");

    // The engine-API calls go over a unix socket, so the dead proxy addresses are never used.
    let result = json_result(
        imagespec(dir.path())
            .env("DOCKER_CONFIG", config.path())
            .env("HTTP_PROXY", "http://env-proxy.invalid:3128")
            .env_remove("http_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .args([
                "--output",
                "json",
                "build",
                "spec.yaml",
                "--builder",
                builder,
                "--no-push",
                "--force",
                // Installing flytekit would go through the (dead) proxy.
                "--no-flytekit",
            ]),
    );
    assert_eq!(result["outcome"]["image"].as_str(), Some(name.as_str()));

    let config_env = engine_cli(
        builder,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Env}}",
            &name,
        ],
    );
    let history = engine_cli(builder, &["history", "--no-trunc", &name]);
    engine_cli(builder, &["rmi", &name]);
    for leak in ["_PROXY=", "_proxy="] {
        assert!(
            !config_env.contains(leak),
            "{builder}: `{leak}` baked into Config.Env: {config_env}"
        );
    }
    for leak in ["proxy.invalid", "internal.example"] {
        assert!(
            !history.contains(leak),
            "{builder}: `{leak}` kept in the history:\n{history}"
        );
    }
}

#[test]
fn docker_steps_see_the_proxies_and_the_image_keeps_none() {
    proxies_reach_the_steps_but_not_the_image("docker");
}

#[test]
fn podman_steps_see_the_proxies_and_the_image_keeps_none() {
    proxies_reach_the_steps_but_not_the_image("podman");
}
