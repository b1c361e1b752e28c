//! Two projects on one service, tried as an attacker would (issue 11, "Holes" 1 to 5): each test
//! is an attack that used to work against a service with an in-memory `TestBuilder` worker.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use imagespec_core::resolve_image;
use imagespec_core::spec::{ImageSpec, LoadedSpec};
use imagespec_protocol::{BuildInfo, BuildState, FileEntry, SubmitBuild};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

/// A hand-made submission of `spec` as is (its paths not rewritten, no files uploaded), with
/// the name a client computes for it at `root`.
fn raw_submission(spec: &ImageSpec, root: &Path) -> SubmitBuild {
    let loaded = LoadedSpec::from_spec(spec.clone(), root)
        .expect("valid spec")
        .with_runtime(imagespec_core::plan::runtime::Runtime::None);
    SubmitBuild {
        spec: serde_json::to_value(spec).expect("json"),
        files: Default::default(),
        target: resolve_image(&loaded).expect("hash").name.to_string(),
        platforms: vec!["linux/amd64".into()],
        force: true,
        base_image: None,
        flytekit_version: Some("none".into()),
        union_version: None,
        secrets: Default::default(),
    }
}

fn link(target: &str) -> FileEntry {
    FileEntry {
        digest: format!(
            "sha256:{}",
            hex(Sha256::digest(target.as_bytes()).as_slice())
        ),
        executable: false,
        symlink: Some(target.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn refused(url: &str, token: &str, body: &SubmitBuild) -> (StatusCode, String, String) {
    let (status, p) = problem(submit(url, token, body).await).await;
    (
        status,
        p.kind
            .trim_start_matches("urn:imagespec:problem:")
            .to_string(),
        p.detail,
    )
}

#[tokio::test]
async fn a_spec_path_outside_the_upload_is_refused_before_anything_is_read() {
    let builder = test_builder(Duration::ZERO);
    let svc = TestService::start(builder.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    // A file planted on the service's host, which the attacker's own machine has too.
    write(tmp.path(), "planted/secret.txt", "host secret\n");
    let planted = tmp.path().join("planted");
    let absolute = ImageSpec::new("steal").with_source_root(planted.to_str().expect("utf-8"));
    let (s, kind, detail) =
        refused(&svc.url, TOKEN_A, &raw_submission(&absolute, tmp.path())).await;
    assert_eq!(
        (s, kind.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "path-outside-upload"),
        "{detail}"
    );
    assert!(detail.contains("source_root"), "names the field: {detail}");

    // `..` towards the service's database, in the spec and in a base spec.
    let climbing = raw_submission(&absolute, tmp.path());
    for (field, spec) in [
        (
            "requirements",
            serde_json::json!({"name": "x", "requirements": "../../requirements.txt"}),
        ),
        (
            "copy[0]",
            serde_json::json!({"name": "x", "copy": ["a/../../../blobs"]}),
        ),
        (
            "base_image.source_root",
            serde_json::json!({"name": "x", "base_image": {"name": "b", "source_root": "../.."}}),
        ),
    ] {
        let body = SubmitBuild {
            spec,
            ..climbing.clone()
        };
        let (s, kind, detail) = refused(&svc.url, TOKEN_A, &body).await;
        assert_eq!(
            (s, kind.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "path-outside-upload"),
            "{field}: {detail}"
        );
        assert!(detail.contains(field), "{field}: {detail}");
    }

    // Links whose text each stays inside, but `here/..` is the workspace's parent (the other
    // builds' workspaces).
    let mut linked = SubmitBuild {
        spec: serde_json::json!({"name": "x", "source_root": "up"}),
        ..climbing.clone()
    };
    linked.files.insert("here".into(), link("."));
    linked.files.insert("up".into(), link("here/.."));
    let (s, kind, detail) = refused(&svc.url, TOKEN_A, &linked).await;
    assert_eq!(
        (s, kind.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "path-outside-upload"),
        "{detail}"
    );

    // A credentials file of the spec would be the service host's file.
    let with_config = SubmitBuild {
        spec: serde_json::json!({"name": "x", "registry_config": "auth.json"}),
        ..climbing
    };
    let (s, _, detail) = refused(&svc.url, TOKEN_A, &with_config).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("registry_config"), "{detail}");
    assert!(builder.builds().is_empty(), "nothing was built");
}

#[tokio::test]
async fn projects_have_their_own_namespaces_and_cannot_write_into_another() {
    let builder = test_builder(Duration::ZERO);
    let svc = TestService::start(builder.clone()).await;
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let a = prepared_submission(&svc.url, TOKEN_A, dir_a.path(), "shared-app").await;
    let b = prepared_submission(&svc.url, TOKEN_B, dir_b.path(), "shared-app").await;
    assert_eq!(a.target, b.target, "the same content, the same name");
    let mut images = Vec::new();
    for (token, body) in [(TOKEN_A, &a), (TOKEN_B, &b)] {
        let r = submit(&svc.url, token, body).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let id = r.json::<BuildInfo>().await.expect("info").id;
        let info = wait_finished(&svc.url, token, &id).await;
        assert_eq!(info.status, BuildState::Succeeded);
        images.push(info.image);
    }
    assert_eq!(
        images,
        [
            format!("{NAMESPACE_A}/{}", a.target),
            format!("{NAMESPACE_B}/{}", b.target)
        ]
    );

    // B names A's namespace (or the registry's root) as its spec's registry.
    for registry in [NAMESPACE_A, SERVICE_REGISTRY] {
        let mut poison = b.clone();
        poison.spec["registry"] = registry.into();
        poison.target = format!("{registry}/{}", b.target);
        let (s, kind, detail) = refused(&svc.url, TOKEN_B, &poison).await;
        assert_eq!(
            (s, kind.as_str()),
            (StatusCode::FORBIDDEN, "outside-scope"),
            "{registry}: {detail}"
        );
    }
    // B's unchanged spec with a base image the name does not describe.
    let poison = SubmitBuild {
        base_image: Some(format!("{NAMESPACE_B}/poison:1")),
        ..b.clone()
    };
    let (s, kind, _) = refused(&svc.url, TOKEN_B, &poison).await;
    assert_eq!(
        (s, kind.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "base-mismatch")
    );
    assert_eq!(builder.builds().len(), 2, "only the two honest builds ran");
    assert!(builder.builds().iter().all(|b| b.base_image.is_none()));
}

#[tokio::test]
async fn pushes_go_only_where_the_configuration_allows_with_its_credentials() {
    let builder = test_builder(Duration::ZERO);
    let data = tempfile::tempdir().expect("tmp");
    let mut config = config(Path::new("."));
    config
        .allowed_registries
        .insert("project-a".into(), vec!["127.0.0.1:5001/team-a".into()]);
    let svc = TestService::start_with(data, config, builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let to = |mut body: SubmitBuild, registry: &str| {
        body.spec["registry"] = registry.into();
        body.target = format!("{registry}/{}", body.target);
        body
    };
    let a = prepared_submission(&svc.url, TOKEN_A, dir.path(), "pusher").await;
    let allowed = submit(&svc.url, TOKEN_A, &to(a.clone(), "127.0.0.1:5001/team-a")).await;
    assert_eq!(allowed.status(), StatusCode::ACCEPTED);
    for registry in [
        "127.0.0.1:5001/elsewhere",
        "127.0.0.1:5002",
        "registry.example.com/x",
    ] {
        let (s, kind, _) = refused(&svc.url, TOKEN_A, &to(a.clone(), registry)).await;
        assert_eq!(
            (s, kind.as_str()),
            (StatusCode::FORBIDDEN, "outside-scope"),
            "{registry}"
        );
    }
    let b = prepared_submission(&svc.url, TOKEN_B, dir.path(), "pusher").await;
    let (s, _, _) = refused(&svc.url, TOKEN_B, &to(b, "127.0.0.1:5001/team-a")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "A's allowance is not B's");

    // The credentials: the configured file only, never the home directory's config.json
    // (which `from_env` would consult: the operator's, not the service's).
    assert!(
        std::env::var_os("HOME").is_some(),
        "the test needs a HOME to be ignored"
    );
    let mut config = common::config(Path::new("."));
    let none = config.push_credentials().describe();
    assert!(!none.contains(".docker"), "{none}");
    let dir = tempfile::tempdir().expect("tmp");
    config.registry_credentials = Some(dir.path().join("service-auth.json"));
    let explicit = config.push_credentials().describe();
    assert!(
        explicit.contains("service-auth.json") && !explicit.contains(".docker"),
        "{explicit}"
    );
}

#[tokio::test]
async fn the_existence_check_asks_only_about_the_projects_own_registries() {
    let builder = test_builder(Duration::ZERO);
    let svc = TestService::start(builder.clone()).await;
    let ask = |token: &'static str, image: String| {
        let url = svc.url.clone();
        async move {
            http()
                .get(format!("{url}/v1/images/exists"))
                .query(&[("image", image.as_str())])
                .bearer_auth(token)
                .send()
                .await
                .expect("send")
        }
    };
    for (token, image) in [
        (TOKEN_A, "127.0.0.1:22/probe:t".to_string()),
        (TOKEN_A, "127.0.0.1:5000/other/app:t".to_string()),
        (TOKEN_B, format!("{NAMESPACE_A}/app:t")),
    ] {
        let (s, p) = problem(ask(token, image.clone()).await).await;
        assert_eq!(
            (s, p.kind.as_str()),
            (StatusCode::FORBIDDEN, "urn:imagespec:problem:outside-scope"),
            "{image}"
        );
    }
    assert_eq!(builder.checks(), 0, "no registry was contacted");
    let own = ask(TOKEN_A, "app:t".into()).await;
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(builder.checks(), 1);
}

#[tokio::test]
async fn builds_pull_only_the_projects_images_or_the_allowed_bases() {
    let builder = test_builder(Duration::ZERO);
    // The test configuration allows `localhost/imagespec/*` (the dev environment's bases).
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let submission = |extra: &'static str| {
        let url = svc.url.clone();
        let dir = dir.path().join(hex(&Sha256::digest(extra.as_bytes())[..4]));
        async move { prepared_submission_with(&url, TOKEN_A, &dir, "puller", extra).await }
    };
    for extra in [
        "base_image: 127.0.0.1:5000/service/project-b/private:1\n",
        "base_image: anything-in-the-local-store:1\n",
        "builder_config: {uv_image: '127.0.0.1:5000/service/project-b/uv:1'}\n",
    ] {
        let (s, kind, detail) = refused(&svc.url, TOKEN_A, &submission(extra).await).await;
        assert_eq!(
            (s, kind.as_str()),
            (StatusCode::FORBIDDEN, "base-not-allowed"),
            "{extra}: {detail}"
        );
    }
    for extra in [
        "",
        "base_image: localhost/imagespec/python:3.11-bookworm\n",
        "base_image: 127.0.0.1:5000/service/project-a/base:1\n",
    ] {
        let r = submit(&svc.url, TOKEN_A, &submission(extra).await).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{extra}");
    }
}

/// The spec's registry cache is a push (`cache_to`) and a pull (`cache_from`) the worker makes
/// with the service's engine: it stays in the project's registries like the image does.
#[tokio::test]
async fn a_build_cache_goes_only_where_the_project_may_push_or_pull() {
    let builder = test_builder(Duration::ZERO);
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let submission = |extra: String| {
        let url = svc.url.clone();
        let dir = dir.path().join(hex(&Sha256::digest(extra.as_bytes())[..4]));
        async move { prepared_submission_with(&url, TOKEN_A, &dir, "cached", &extra).await }
    };
    for (extra, hint) in [
        (
            format!("builder_options: {{cache_to: '{NAMESPACE_B}/cache'}}\n"),
            "",
        ),
        (
            format!(
                "builder_options: {{cache_to: 'type=registry,ref={NAMESPACE_B}/c:1,mode=max'}}\n"
            ),
            "",
        ),
        (
            "builder_options: {cache_to: '127.0.0.1:5002/anywhere'}\n".to_string(),
            "",
        ),
        (
            "builder_options: {cache_to: 'app-cache'}\n".to_string(),
            NAMESPACE_A,
        ),
        (
            format!("builder_options: {{cache_from: ['{NAMESPACE_A}/c', '{NAMESPACE_B}/c']}}\n"),
            "",
        ),
    ] {
        let (s, kind, detail) = refused(&svc.url, TOKEN_A, &submission(extra.clone()).await).await;
        assert_eq!(
            (s, kind.as_str()),
            (StatusCode::FORBIDDEN, "cache-not-allowed"),
            "{extra}: {detail}"
        );
        assert!(detail.contains("builder_options.cache_"), "{detail}");
        assert!(detail.contains(hint), "{detail}");
    }
    for extra in [
        format!(
            "builder_options: {{cache_to: '{NAMESPACE_A}/cache', cache_from: '{NAMESPACE_A}/cache'}}\n"
        ),
        "builder_options: {cache_to: 'type=inline'}\n".to_string(),
    ] {
        let r = submit(&svc.url, TOKEN_A, &submission(extra.clone()).await).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{extra}");
    }
}

#[tokio::test]
async fn unknown_request_fields_are_refused_and_a_mismatch_does_not_reveal_the_name() {
    let svc = TestService::start(test_builder(Duration::ZERO)).await;
    let dir = tempfile::tempdir().expect("tmp");
    let good = prepared_submission(&svc.url, TOKEN_A, dir.path(), "strict").await;
    let mut body = serde_json::to_value(&good).expect("json");
    body["push_to"] = "127.0.0.1:5001/x".into();
    let r = http()
        .post(format!("{}/v1/builds", svc.url))
        .bearer_auth(TOKEN_A)
        .json(&body)
        .send()
        .await
        .expect("send");
    let (s, p) = problem(r).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(p.detail.contains("push_to"), "{}", p.detail);

    let (name, tag) = good.target.split_once(':').expect("name:tag");
    let wrong = SubmitBuild {
        target: format!("{name}:{}", "0".repeat(tag.len())),
        ..good.clone()
    };
    let (s, kind, detail) = refused(&svc.url, TOKEN_A, &wrong).await;
    assert_eq!(
        (s, kind.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "tag-mismatch")
    );
    assert!(
        !detail.contains(tag),
        "the computed tag is not revealed: {detail}"
    );
}
