//! An engine on another machine over TLS (issue 11): Docker's `tcp://host:2376` with CA,
//! client certificate and key. The engine is the real Docker daemon behind a TLS-terminating
//! proxy that requires client certificates (`support/tls_proxy.rs`, real certificates from
//! the openssl CLI). Needs `scripts/dev-env.sh`.

mod common;
#[path = "support/tls_proxy.rs"]
mod tls_proxy;

use std::collections::BTreeMap;

use common::*;
use imagespec_builder_local::discovery::discover;
use imagespec_builder_local::{BuildJob, EngineChoice, LocalBuilder, TlsFiles};
use imagespec_core::build::BuildErrorKind;
use tokio_util::sync::CancellationToken;

fn socket() -> &'static str {
    DOCKER.trim_start_matches("unix://")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_through_a_tls_engine_with_client_certificates() {
    builder(EngineChoice::Docker).await;
    let certs = tls_proxy::certificates();
    let proxy = tls_proxy::start(&certs, socket()).await;
    let b = LocalBuilder::new(EngineChoice::Docker, Some(proxy.endpoint.clone()))
        .with_tls(TlsFiles::in_dir(&certs.client()));
    let engine = b
        .engine()
        .await
        .unwrap_or_else(|e| panic!("the TLS proxy forwards to Docker: {e}"));
    assert_eq!(
        engine.endpoint.to_string(),
        format!("{} (TLS)", proxy.endpoint)
    );
    let tag = format!("localhost/imagespec-test/tls-{}:t", unique());
    let (events, _) = recorder();
    let job = BuildJob {
        tag: tag.clone(),
        dockerfile: "Dockerfile".into(),
        context: context(vec![(
            "Dockerfile",
            format!("FROM {DEBIAN_IMAGE}\nRUN echo built over TLS {tag} > /over-tls\n")
                .into_bytes(),
        )]),
        secrets: Vec::new(),
        platform: Some("linux/amd64".into()),
        labels: BTreeMap::new(),
        events,
        cancel: CancellationToken::new(),
    };
    let built = b
        .build_job(job)
        .await
        .unwrap_or_else(|e| panic!("a build over TLS: {e}"));
    assert_eq!(built.tag, tag);
    // The image is in the daemon behind the proxy, and every call went through the handshake.
    let out = run("docker", &["run", "--rm", &tag, "cat", "/over-tls"]);
    assert!(String::from_utf8_lossy(&out).contains("built over TLS"));
    assert!(
        proxy.accepted() >= 3,
        "ping, version, build: {}",
        proxy.accepted()
    );
    assert_eq!(proxy.refused(), 0);
    remove_image(EngineChoice::Docker, &tag);
}

#[tokio::test]
async fn docker_tls_verify_and_docker_cert_path_select_the_certificates() {
    builder(EngineChoice::Docker).await;
    let certs = tls_proxy::certificates();
    let proxy = tls_proxy::start(&certs, socket()).await;
    let dir = certs.client().display().to_string();
    let env = |k: &str| match k {
        "DOCKER_TLS_VERIFY" => Some("1".to_string()),
        "DOCKER_CERT_PATH" => Some(dir.clone()),
        _ => None,
    };
    let engine = discover(EngineChoice::Docker, Some(&proxy.endpoint), env)
        .await
        .unwrap_or_else(|e| panic!("DOCKER_TLS_VERIFY with the client files: {e}"));
    assert!(
        engine
            .version
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    );
    // Without DOCKER_TLS_VERIFY the same endpoint is plain TCP, which the TLS engine refuses.
    let plain = discover(EngineChoice::Docker, Some(&proxy.endpoint), |_| None)
        .await
        .expect_err("plain HTTP to a TLS engine");
    assert_eq!(
        imagespec_core::build::BuildError::from(plain).kind,
        BuildErrorKind::Unavailable
    );
}

#[tokio::test]
async fn a_wrong_ca_or_a_missing_or_unknown_client_certificate_fails_naming_the_files() {
    builder(EngineChoice::Docker).await;
    let certs = tls_proxy::certificates();
    let proxy = tls_proxy::start(&certs, socket()).await;
    let connect = |files: TlsFiles| {
        let endpoint = proxy.endpoint.clone();
        async move {
            LocalBuilder::new(EngineChoice::Docker, Some(endpoint))
                .with_tls(files)
                .engine()
                .await
                .map(|_| ())
                .expect_err("refused")
                .to_string()
        }
    };

    // No client certificate file: named before anything is sent.
    let missing = tempfile::tempdir().expect("tmp");
    std::fs::copy(certs.client().join("ca.pem"), missing.path().join("ca.pem")).expect("copy");
    let e = connect(TlsFiles::in_dir(missing.path())).await;
    let cert = missing.path().join("cert.pem").display().to_string();
    assert!(e.contains(&cert) && e.contains("client certificate"), "{e}");
    assert_eq!(proxy.refused(), 0, "nothing reached the engine");

    // The wrong CA: the engine's certificate cannot be verified.
    let wrong_ca = TlsFiles {
        ca: certs.stranger().join("ca.pem"),
        ..TlsFiles::in_dir(&certs.client())
    };
    let e = connect(wrong_ca.clone()).await;
    assert!(
        e.contains(&wrong_ca.ca.display().to_string()) && e.contains("certificate"),
        "{e}"
    );

    // A client certificate the engine does not trust (another CA): refused by the engine.
    let stranger = TlsFiles {
        ca: certs.client().join("ca.pem"),
        ..TlsFiles::in_dir(&certs.stranger())
    };
    let e = connect(stranger.clone()).await;
    assert!(
        e.contains(&stranger.cert.display().to_string()) && e.contains("TLS"),
        "{e}"
    );
    assert!(proxy.refused() >= 1, "the proxy refused the unknown client");
    assert_eq!(proxy.accepted(), 0, "no refused client was let through");
}
