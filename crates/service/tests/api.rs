//! The HTTP API against a service with an in-memory `TestBuilder` worker: auth, problem+json
//! errors, project isolation, limits, de-duplicated submissions.

mod common;

use std::time::Duration;

use common::*;
use imagespec_protocol::{BuildInfo, BuildState, FileEntry, SubmitBuild};
use imagespec_service::{Service, Worker};
use reqwest::StatusCode;

#[tokio::test]
async fn a_wrong_or_missing_token_is_refused_with_401_problem_json() {
    let svc = TestService::start(test_builder(Duration::ZERO)).await;
    for auth in [
        Some("Bearer not-a-valid-token-at-all"),
        Some("Basic abc"),
        None,
    ] {
        let mut request = http()
            .post(format!("{}/v1/blobs/missing", svc.url))
            .json(&serde_json::json!({"digests": []}));
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        let response = request.send().await.expect("send");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"imagespec\"")
        );
        let (status, body) = problem(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            !body.detail.contains("not-a-valid-token"),
            "the token is never echoed"
        );
    }
    let health = http()
        .get(format!("{}/v1/health", svc.url))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK, "health needs no token");
}

#[tokio::test]
async fn bad_requests_get_problem_json_that_says_what_to_fix() {
    let svc = TestService::start(test_builder(Duration::ZERO)).await;
    let url = &svc.url;
    let post = |path: &str, body: &'static str| {
        http()
            .post(format!("{url}{path}"))
            .bearer_auth(TOKEN_A)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (s, p) = problem(post("/v1/builds", "{not json").await.expect("send")).await;
    assert_eq!(
        (s, p.title.as_str()),
        (StatusCode::BAD_REQUEST, "Bad request")
    );
    let (s, p) = problem(
        post("/v1/blobs/missing", r#"{"digests":["md5:abc"]}"#)
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(p.detail.contains("md5:abc"));
    let (s, _) = problem(get(url, "/v1/nothing-here", TOKEN_A).await).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = problem(
        authed(reqwest::Method::DELETE, url, "/v1/builds", TOKEN_A)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);

    // An upload whose bytes do not match its digest.
    let (s, p) = problem(
        http()
            .put(format!("{url}/v1/blobs/{}", digest_of(b"one")))
            .bearer_auth(TOKEN_A)
            .body("two")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (s, p.kind.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "urn:imagespec:problem:digest-mismatch"
        )
    );

    let dir = tempfile::tempdir().expect("tmp");
    let good = prepared_submission(url, TOKEN_A, dir.path(), "bad-requests").await;

    // A file the service never received.
    let mut missing = good.clone();
    let ghost = digest_of(b"never uploaded");
    missing.files.insert(
        "src/ghost.py".into(),
        FileEntry {
            digest: ghost.clone(),
            executable: false,
            symlink: None,
        },
    );
    let (s, p) = problem(submit(url, TOKEN_A, &missing).await).await;
    assert_eq!(
        (s, p.missing.clone()),
        (StatusCode::BAD_REQUEST, vec![ghost])
    );

    // The service computes another name from the content than the client claims.
    let mut mismatch = good.clone();
    mismatch.target = format!("bad-requests:{}", "0".repeat(32));
    let (s, p) = problem(submit(url, TOKEN_A, &mismatch).await).await;
    assert_eq!(
        (s, p.kind.as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "urn:imagespec:problem:tag-mismatch"
        )
    );

    // An extra file changes the source tree, so the name too.
    let mut extra = good.clone();
    let first = extra.files.values().next().expect("a file").clone();
    extra.files.insert("src/app/extra.py".into(), first);
    let (s, p) = problem(submit(url, TOKEN_A, &extra).await).await;
    assert_eq!(
        (s, p.kind.as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "urn:imagespec:problem:tag-mismatch"
        )
    );

    // A path that would leave the workspace.
    let mut escape = good.clone();
    let first = escape.files.values().next().expect("a file").clone();
    escape.files.insert("../../etc/cron.d/x".into(), first);
    let (s, p) = problem(submit(url, TOKEN_A, &escape).await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(p.detail.contains("plain relative path"));

    // An invalid spec: every problem listed.
    let mut invalid = good.clone();
    invalid.spec["packages"] = serde_json::json!("numpy");
    invalid.spec["python_version"] = serde_json::json!("three");
    let (s, p) = problem(submit(url, TOKEN_A, &invalid).await).await;
    assert_eq!(
        (s, p.kind.as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "urn:imagespec:problem:invalid-spec"
        )
    );
    assert!(p.errors.len() >= 2, "{:?}", p.errors);

    // Platforms that are not the spec's.
    let mut platform = good.clone();
    platform.platforms = vec!["linux/arm64".into()];
    let (s, p) = problem(submit(url, TOKEN_A, &platform).await).await;
    assert_eq!(
        (s, p.kind.as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "urn:imagespec:problem:platform-mismatch"
        )
    );

    // Bad offsets and ids.
    let (s, _) = problem(get(url, "/v1/builds/zzz/logs", TOKEN_A).await).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = problem(get(url, "/v1/images/exists?image=Not%20An%20Image", TOKEN_A).await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // The good one still works.
    assert_eq!(
        submit(url, TOKEN_A, &good).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn uploads_and_requests_over_the_limits_are_refused() {
    let data = tempfile::tempdir().expect("tmp");
    let mut config = config(data.path());
    config.limits.max_blob_bytes = 1000;
    config.limits.max_request_bytes = 4096;
    config.limits.requests_per_minute = 60;
    config.limits.burst = 5;
    let svc = TestService::start_with(data, config, test_builder(Duration::ZERO)).await;
    let big = vec![b'x'; 1001];
    let (s, p) = problem(
        http()
            .put(format!("{}/v1/blobs/{}", svc.url, digest_of(&big)))
            .bearer_auth(TOKEN_A)
            .body(big)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (s, p.kind.as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "urn:imagespec:problem:too-large"
        )
    );
    let huge = serde_json::json!({"digests": vec![digest_of(b"x"); 100]});
    let (s, _) = problem(
        http()
            .post(format!("{}/v1/blobs/missing", svc.url))
            .bearer_auth(TOKEN_A)
            .json(&huge)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // The burst of 5 is spent (2 above); the rest of a quick series is rate limited.
    let mut limited = None;
    for _ in 0..6 {
        let r = http()
            .post(format!("{}/v1/blobs/missing", svc.url))
            .bearer_auth(TOKEN_A)
            .json(&serde_json::json!({"digests": []}))
            .send()
            .await
            .expect("send");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("rate limited within the burst");
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry_after));
    let (_, p) = problem(limited).await;
    assert_eq!(p.kind, "urn:imagespec:problem:rate-limited");
    // Another token has its own budget.
    let other = http()
        .post(format!("{}/v1/blobs/missing", svc.url))
        .bearer_auth(TOKEN_B)
        .json(&serde_json::json!({"digests": []}))
        .send()
        .await
        .expect("send");
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_projects_cannot_see_each_others_blobs_builds_or_logs() {
    let svc = TestService::start(test_builder(Duration::from_millis(200))).await;
    let url = &svc.url;
    let dir = tempfile::tempdir().expect("tmp");
    let submission = prepared_submission(url, TOKEN_A, dir.path(), "isolated").await;
    let digests: Vec<String> = submission
        .files
        .values()
        .map(|f| f.digest.clone())
        .collect();
    // A's blobs are missing for B...
    let missing_for = |token: &'static str| {
        let digests = digests.clone();
        async move {
            let r: serde_json::Value = http()
                .post(format!("{url}/v1/blobs/missing"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "digests": digests }))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            r["missing"].as_array().expect("list").len()
        }
    };
    assert_eq!(missing_for(TOKEN_A).await, 0);
    assert_eq!(
        missing_for(TOKEN_B).await,
        digests
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    // ...and B cannot build from them.
    let (s, p) = problem(submit(url, TOKEN_B, &submission).await).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(!p.missing.is_empty());
    // A's build is invisible to B: 404, like a build that does not exist.
    let info: BuildInfo = submit(url, TOKEN_A, &submission)
        .await
        .json()
        .await
        .expect("info");
    for path in [
        format!("/v1/builds/{}", info.id),
        format!("/v1/builds/{}/logs", info.id),
    ] {
        let r = http()
            .get(format!("{url}{path}"))
            .bearer_auth(TOKEN_B)
            .send()
            .await
            .expect("send");
        let (s, p) = problem(r).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(p.detail, format!("no build `{}`", info.id));
    }
    let r = http()
        .post(format!("{url}/v1/builds/{}/cancel", info.id))
        .bearer_auth(TOKEN_B)
        .send()
        .await
        .expect("send");
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
    let mine = http()
        .get(format!("{url}/v1/builds/{}", info.id))
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .expect("send");
    assert_eq!(mine.status(), StatusCode::OK);
}

#[tokio::test]
async fn identical_concurrent_submissions_share_one_build() {
    let builder = test_builder(Duration::from_millis(800));
    let svc = TestService::start(builder.clone()).await;
    let dir = tempfile::tempdir().expect("tmp");
    let submission = prepared_submission(&svc.url, TOKEN_A, dir.path(), "shared").await;
    let (a, b, c) = tokio::join!(
        submit(&svc.url, TOKEN_A, &submission),
        submit(&svc.url, TOKEN_A, &submission),
        submit(&svc.url, TOKEN_A, &submission)
    );
    let mut ids = Vec::new();
    for r in [a, b, c] {
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert!(r.headers().get("location").is_some());
        ids.push(r.json::<BuildInfo>().await.expect("info").id);
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    // Wait for it; then the image exists and a non-forced submission finishes at once.
    let info = wait_finished(&svc.url, TOKEN_A, &ids[0]).await;
    assert_eq!(info.status, BuildState::Succeeded);
    assert_eq!(info.image, format!("{NAMESPACE_A}/{}", submission.target));
    assert_eq!(builder.builds().len(), 1);
    let again = SubmitBuild {
        force: false,
        ..submission.clone()
    };
    let r = submit(&svc.url, TOKEN_A, &again).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<BuildInfo>().await.expect("info").status,
        BuildState::Succeeded
    );
    assert_eq!(builder.builds().len(), 1, "nothing rebuilt");
    let exists: serde_json::Value = http()
        .get(format!("{}/v1/images/exists", svc.url))
        .query(&[("image", submission.target.as_str())])
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(exists["state"], "exists");
    assert_eq!(exists["image"], info.image);
}

#[tokio::test]
async fn existence_is_tri_state_with_a_reason() {
    let builder = test_builder(Duration::ZERO);
    builder.force_existence(Some(imagespec_core::build::Existence::Unknown {
        reason: "registry answered 503".into(),
    }));
    let svc = TestService::start(builder.clone()).await;
    let ask = |image: &'static str| {
        http()
            .get(format!("{}/v1/images/exists", svc.url))
            .query(&[("image", image)])
            .bearer_auth(TOKEN_A)
            .send()
    };
    let v: serde_json::Value = ask("app:abc")
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        v,
        serde_json::json!({"image": format!("{NAMESPACE_A}/app:abc"), "state": "unknown", "reason": "registry answered 503"})
    );
    builder.force_existence(None);
    let v: serde_json::Value = ask("127.0.0.1:5000/service/project-a/app:abc")
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["state"], "missing");
    assert_eq!(v["image"], "127.0.0.1:5000/service/project-a/app:abc");
}

#[tokio::test]
async fn a_service_needs_a_worker() {
    let data = tempfile::tempdir().expect("tmp");
    let result = Service::new(config(data.path()))
        .with_workers(Vec::<Worker>::new())
        .start()
        .await;
    assert!(result.is_err());
}
