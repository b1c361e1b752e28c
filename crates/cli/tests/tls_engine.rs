//! `imagespec build --engine tcp://host:2376` with `DOCKER_TLS_VERIFY=1` and
//! `DOCKER_CERT_PATH`, as the docker CLI reads them: the build runs on the real Docker engine
//! behind a TLS front that requires client certificates (builder-local's
//! `tests/support/tls_proxy.rs`, real certificates from the openssl CLI); without the
//! variables the same endpoint is refused (exit 4). Needs `scripts/dev-env.sh`.

#[path = "../../builder-local/tests/support/tls_proxy.rs"]
mod tls_proxy;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/requirements")
}

fn build(docker_config: &Path, engine: &str) -> Command {
    let mut cmd = Command::cargo_bin("imagespec").expect("binary");
    cmd.current_dir(example())
        .env("IMAGESPEC_CONFIG", "/nonexistent/imagespec-config.yaml")
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("DOCKER_HOST")
        .env_remove("CONTAINER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("IMAGESPEC_VARIANT")
        .env_remove("FLYTE_FORCE_PUSH_IMAGE_SPEC")
        .env_remove("FLYTE_IMG_FAST_FAIL")
        .timeout(Duration::from_secs(900))
        .args([
            "build",
            "--force",
            "--no-push",
            "spec.yaml",
            "--engine",
            engine,
        ]);
    cmd
}

#[test]
fn a_build_on_a_tls_engine_with_docker_tls_verify_and_docker_cert_path() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let certs = tls_proxy::certificates();
    let proxy = runtime.block_on(tls_proxy::start(&certs, "/var/run/docker.sock"));
    let config = tempfile::tempdir().expect("tempdir");

    let out = build(config.path(), &proxy.endpoint)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", certs.client())
        .output()
        .expect("run imagespec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr:\n{stderr}");
    assert!(
        proxy.accepted() >= 3,
        "the build went through the TLS front"
    );

    // The same endpoint without the variables: plain HTTP, which a TLS engine never answers.
    let out = build(config.path(), &proxy.endpoint)
        .output()
        .expect("run imagespec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "stderr:\n{stderr}");
    assert!(stderr.contains(&proxy.endpoint), "{stderr}");
}
