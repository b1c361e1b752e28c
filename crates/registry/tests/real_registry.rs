//! Existence checks and pushes against a REAL registry (`docker-registry`, started by each
//! test on 127.0.0.1 with htpasswd auth). Not mocked: these tests pin our behaviour to what a
//! real registry answers.

mod support;

use std::time::Duration;

use imagespec_registry::{
    CredentialSources, Existence, ImageReference, MissingReason, Platform, RegistryClient,
    RetryPolicy,
};
use support::image::{Format, push_image, push_index};
use support::registry::TestRegistry;

fn platform(s: &str) -> Platform {
    Platform::parse(s).expect("platform")
}

/// A client whose only credential source is an explicit config file with `password`.
fn client_with_password(registry: &TestRegistry, password: &str) -> RegistryClient {
    let config = registry
        .dir()
        .join(format!("config-{}.json", password.len()));
    registry.write_config(&config, password);
    RegistryClient::builder()
        .credentials(CredentialSources::none().with_explicit_file(config))
        .retry(fast_retry())
        .build()
        .expect("client")
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    }
}

/// Refused or missing credentials are `Denied`: never `Unknown` (which a policy could turn into
/// "assume it exists"), never `Missing`.
fn assert_denied_without_secret(existence: &Existence, secret: &str) -> String {
    let Existence::Denied { reason } = existence else {
        panic!("expected Denied, got {existence:?}");
    };
    assert!(
        !reason.contains(secret),
        "reason leaks the password: {reason}"
    );
    assert!(!format!("{existence:?}").contains(secret));
    reason.clone()
}

#[tokio::test]
async fn exists_and_missing_with_correct_credentials() {
    let registry = TestRegistry::start();
    let client = client_with_password(&registry, &registry.password);
    let app = registry.reference("team/app:v1");
    let pushed = push_image(&client, &app, &platform("linux/amd64"), Format::Docker).await;

    assert_eq!(
        client.check(&app, &[]).await,
        Existence::Exists {
            digest: pushed.digest.clone()
        }
    );
    // Same image by digest.
    let by_digest = registry.reference(&format!("team/app@{}", pushed.digest));
    assert!(client.check(&by_digest, &[]).await.exists());
    // Unknown tag, unknown repository, unknown digest: Missing (the registry answered).
    for missing in [
        registry.reference("team/app:v2"),
        registry.reference("team/nothing-here:v1"),
        registry.reference(&format!("team/app@sha256:{}", "0".repeat(64))),
    ] {
        assert_eq!(
            client.check(&missing, &[]).await,
            Existence::Missing {
                reason: MissingReason::NotFound
            },
            "{missing}"
        );
    }
}

#[tokio::test]
async fn wrong_password_is_denied_not_missing_and_never_leaks() {
    let registry = TestRegistry::start();
    let good = client_with_password(&registry, &registry.password);
    let app = registry.reference("team/app:v1");
    push_image(&good, &app, &platform("linux/amd64"), Format::Oci).await;

    let wrong_password = "Wr0ng-Passw0rd-do-not-print";
    let bad = client_with_password(&registry, wrong_password);
    for reference in [app.clone(), registry.reference("team/app:absent")] {
        let existence = bad.check(&reference, &[]).await;
        let reason = assert_denied_without_secret(&existence, wrong_password);
        assert!(
            reason.contains(&format!("credentials for {} ", registry.addr))
                && reason.contains("were rejected"),
            "{reason}"
        );
        // With platforms, the GET path must behave the same.
        let existence = bad.check(&reference, &[platform("linux/amd64")]).await;
        assert_denied_without_secret(&existence, wrong_password);
    }
}

#[tokio::test]
async fn no_credentials_is_denied_and_says_how_to_log_in() {
    let registry = TestRegistry::start();
    let anonymous = RegistryClient::builder().build().expect("client");
    let existence = anonymous
        .check(&registry.reference("team/app:v1"), &[])
        .await;
    let reason = assert_denied_without_secret(&existence, &registry.password);
    assert!(reason.contains("requires authentication"), "{reason}");
    assert!(reason.contains("docker login"), "{reason}");
}

#[tokio::test]
async fn registry_down_is_unknown() {
    // A port that was free a moment ago and has nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let client = RegistryClient::builder()
        .retry(fast_retry())
        .build()
        .expect("client");
    let reference = ImageReference::parse(&format!("127.0.0.1:{port}/team/app:v1")).expect("ref");
    let existence = client.check(&reference, &[]).await;
    let Existence::Unknown { reason } = &existence else {
        panic!("expected Unknown, got {existence:?}");
    };
    assert!(
        reason.contains(&format!(
            "could not reach 127.0.0.1:{port} after 3 attempt(s)"
        )),
        "{reason}"
    );
}

#[tokio::test]
async fn platforms_of_a_multi_arch_index() {
    let registry = TestRegistry::start();
    let client = client_with_password(&registry, &registry.password);
    let multi = registry.reference("team/multi:v1");
    let digest = push_index(
        &client,
        &multi,
        &[platform("linux/amd64"), platform("linux/arm64/v8")],
    )
    .await;

    let exists = Existence::Exists {
        digest: digest.clone(),
    };
    assert_eq!(client.check(&multi, &[]).await, exists);
    assert_eq!(
        client
            .check(&multi, &[platform("linux/amd64"), platform("linux/arm64")])
            .await,
        exists
    );
    assert_eq!(
        client.check(&multi, &[platform("linux/arm64/v8")]).await,
        exists
    );

    let existence = client
        .check(&multi, &[platform("linux/amd64"), platform("linux/s390x")])
        .await;
    match &existence {
        Existence::Missing {
            reason:
                MissingReason::Platforms {
                    digest: found,
                    missing,
                    available,
                },
        } => {
            assert_eq!(found, &digest);
            assert_eq!(missing, &vec![platform("linux/s390x")]);
            assert_eq!(
                available,
                &vec![platform("linux/amd64"), platform("linux/arm64/v8")]
            );
        }
        other => panic!("expected missing platforms, got {other:?}"),
    }
    assert!(
        existence.to_string().contains("no linux/s390x variant"),
        "{existence}"
    );
}

#[tokio::test]
async fn platforms_of_a_single_platform_manifest() {
    let registry = TestRegistry::start();
    let client = client_with_password(&registry, &registry.password);
    let single = registry.reference("team/single:v1");
    let pushed = push_image(&client, &single, &platform("linux/arm64"), Format::Docker).await;

    assert_eq!(
        client.check(&single, &[platform("linux/arm64/v8")]).await,
        Existence::Exists {
            digest: pushed.digest.clone()
        }
    );
    let existence = client.check(&single, &[platform("linux/amd64")]).await;
    assert!(
        matches!(
            &existence,
            Existence::Missing { reason: MissingReason::Platforms { missing, .. } }
                if missing == &vec![platform("linux/amd64")]
        ),
        "{existence:?}"
    );
    // A missing tag with platforms asked is still plain NotFound.
    assert_eq!(
        client
            .check(
                &registry.reference("team/single:v9"),
                &[platform("linux/amd64")]
            )
            .await,
        Existence::Missing {
            reason: MissingReason::NotFound
        }
    );
}

#[tokio::test]
async fn push_blob_is_idempotent_and_get_blob_round_trips() {
    let registry = TestRegistry::start();
    let client = client_with_password(&registry, &registry.password);
    let repo = registry.reference("team/blobs");
    let data = b"hello blob".to_vec();
    let first = client.push_blob(&repo, data.clone()).await.expect("push");
    let second = client
        .push_blob(&repo, data.clone())
        .await
        .expect("push again");
    assert_eq!(first, second);
    let back = client.get_blob(&repo, &first, 1024).await.expect("get");
    assert_eq!(back, data);
    let err = client
        .get_blob(&repo, &format!("sha256:{}", "1".repeat(64)), 1024)
        .await
        .expect_err("unknown blob");
    assert!(err.is_not_found(), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn credentials_from_a_helper_work_end_to_end() {
    use std::os::unix::fs::PermissionsExt;
    let registry = TestRegistry::start();
    let bin = registry.dir().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let helper = bin.join("docker-credential-e2e");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r server\necho \"{{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"{}\\\",\\\"Secret\\\":\\\"{}\\\"}}\"\n",
            registry.user, registry.password
        ),
    )
    .expect("write helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = registry.dir().join("helper-config.json");
    std::fs::write(
        &config,
        serde_json::json!({ "credHelpers": { (registry.addr.clone()): "e2e" } }).to_string(),
    )
    .expect("config");
    let sources = CredentialSources {
        docker_config: Some(config),
        helper_path: Some(bin.into_os_string()),
        ..CredentialSources::none()
    };
    let client = RegistryClient::builder()
        .credentials(sources)
        .build()
        .expect("client");
    let app = registry.reference("team/helper:v1");
    let pushed = push_image(&client, &app, &platform("linux/amd64"), Format::Oci).await;
    assert_eq!(
        client.check(&app, &[]).await,
        Existence::Exists {
            digest: pushed.digest
        }
    );
}
