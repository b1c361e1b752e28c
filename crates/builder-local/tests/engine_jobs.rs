//! Dockerfile jobs on the real engines: secrets, cache mounts, failures, cancellation.
//! Needs `scripts/dev-env.sh`; fails (does not skip) without it.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use imagespec_builder_local::{BuildJob, BuildSecret, EngineChoice, SecretSource, SecretValue};
use imagespec_core::build::{BuildErrorKind, BuildEvent};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

fn job(
    tag: &str,
    dockerfile: String,
    extra: Vec<(&'static str, Vec<u8>)>,
) -> (BuildJob, std::sync::Arc<std::sync::Mutex<Vec<BuildEvent>>>) {
    let (events, seen) = recorder();
    let mut files = vec![("Dockerfile", dockerfile.into_bytes())];
    files.extend(extra);
    (
        BuildJob {
            tag: tag.to_string(),
            dockerfile: "Dockerfile".into(),
            context: context(files),
            secrets: Vec::new(),
            platform: Some("linux/amd64".into()),
            labels: BTreeMap::from([("dev.imagespec.test".to_string(), "1".to_string())]),
            events,
            cancel: CancellationToken::new(),
        },
        seen,
    )
}

async fn secret_stays_out_of_the_image(choice: EngineChoice) {
    let b = builder(choice).await;
    let tag = format!("localhost/imagespec-test/secret-{}:t", unique());
    let _cleanup = Cleanup(choice, tag.clone());
    let secret = format!("imagespec-test-secret-{}-{}", unique(), unique());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token.txt"), &secret).expect("write secret");
    let dockerfile = format!(
        "FROM {DEBIAN_IMAGE}\n\
         RUN --mount=type=secret,id=token,target=/run/secrets/token \\\n\
             echo {tag} && sha256sum /run/secrets/token | cut -d' ' -f1 > /proof && echo \"read: $(cat /run/secrets/token)\"\n\
         COPY . /ctx\n"
    );
    // The tag in the RUN line makes the step unique: BuildKit's cache key ignores secret
    // values, so an identical step from an earlier run would be reused without reading it.
    let (mut job, seen) = job(&tag, dockerfile, vec![("hello.txt", b"hi".to_vec())]);
    job.secrets = vec![
        BuildSecret::load("token", &SecretSource::File("token.txt".into()), dir.path())
            .expect("secret loads"),
    ];
    let started = Instant::now();
    let built = b
        .build_job(job)
        .await
        .unwrap_or_else(|e| panic!("build failed: {e}"));
    eprintln!("{choice:?}: secret build took {:?}", started.elapsed());
    assert_eq!(built.tag, tag);

    let cli = cli(choice);
    let proof = run(cli, &["run", "--rm", &tag, "cat", "/proof"]);
    let expected = hex::encode(sha2::Sha256::digest(secret.as_bytes()));
    assert_eq!(
        String::from_utf8_lossy(&proof).trim(),
        expected,
        "the RUN step could not read the secret"
    );
    let listing = run(cli, &["run", "--rm", &tag, "ls", "-A", "/ctx"]);
    assert_eq!(
        String::from_utf8_lossy(&listing).trim(),
        "Dockerfile\nhello.txt",
        "the context held extra files"
    );

    let contains = |hay: &[u8]| hay.windows(secret.len()).any(|w| w == secret.as_bytes());
    let save_dir = tempfile::tempdir().expect("tempdir");
    let archive = save_dir.path().join("image.tar");
    run(
        cli,
        &["save", "-o", archive.to_str().expect("utf-8 path"), &tag],
    );
    let saved = std::fs::read(&archive).expect("read saved image");
    assert!(!saved.is_empty());
    assert!(
        !contains(&saved),
        "the secret is in a layer or the config (`{cli} save`)"
    );
    assert!(
        !contains(&run(cli, &["history", "--no-trunc", &tag])),
        "the secret is in `{cli} history`"
    );
    assert!(
        !contains(&run(cli, &["inspect", &tag])),
        "the secret is in `{cli} inspect`"
    );
    let events = format!("{:?}", seen.lock().expect("events"));
    assert!(
        !events.contains(&secret),
        "the secret is in the build events"
    );
    assert!(
        events.contains("read: ****"),
        "the step's output line was not seen (redacted): {events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_secret_stays_out_of_the_image() {
    secret_stays_out_of_the_image(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_secret_stays_out_of_the_image() {
    secret_stays_out_of_the_image(EngineChoice::Podman).await;
}

async fn failing_step_is_named_with_its_tail(choice: EngineChoice) {
    let b = builder(choice).await;
    let tag = format!("localhost/imagespec-test/fail-{}:t", unique());
    let dockerfile = format!(
        "FROM {DEBIAN_IMAGE}\nRUN echo {tag}; for i in $(seq 1 30); do echo line-$i; done; exit 3\n"
    );
    let (job, seen) = job(&tag, dockerfile, Vec::new());
    let err = b.build_job(job).await.expect_err("the build must fail");
    assert_eq!(err.kind, BuildErrorKind::StepFailed, "{err}");
    let step = err.step.clone().unwrap_or_default();
    assert!(
        step.starts_with("RUN echo") && step.contains("exit 3"),
        "step: {step:?}"
    );
    assert!(
        err.log_tail.len() <= 20 && err.log_tail.len() >= 10,
        "tail: {:?}",
        err.log_tail
    );
    assert_eq!(
        err.log_tail.last().map(String::as_str),
        Some("line-30"),
        "tail: {:?}",
        err.log_tail
    );
    let events = seen.lock().expect("events");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BuildEvent::Step { name, .. } if name.starts_with("RUN echo")))
    );
    assert!(events.contains(&BuildEvent::Log {
        line: "line-15".into()
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_failing_step_is_named_with_its_tail() {
    failing_step_is_named_with_its_tail(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_failing_step_is_named_with_its_tail() {
    failing_step_is_named_with_its_tail(EngineChoice::Podman).await;
}

async fn cache_mount_persists_between_builds(choice: EngineChoice) {
    let b = builder(choice).await;
    let id = unique();
    let tag1 = format!("localhost/imagespec-test/cache-a-{id}:t");
    let tag2 = format!("localhost/imagespec-test/cache-b-{id}:t");
    let _cleanup = (Cleanup(choice, tag1.clone()), Cleanup(choice, tag2.clone()));
    let write = format!(
        "FROM {DEBIAN_IMAGE}\nRUN --mount=type=cache,id=t-{id},target=/cache echo {id} > /cache/marker\n"
    );
    let (j, _) = job(&tag1, write, Vec::new());
    b.build_job(j)
        .await
        .unwrap_or_else(|e| panic!("first build failed: {e}"));
    let read = format!(
        "FROM {DEBIAN_IMAGE}\nRUN --mount=type=cache,id=t-{id},target=/cache cp /cache/marker /seen\n"
    );
    let (j, _) = job(&tag2, read, Vec::new());
    b.build_job(j)
        .await
        .unwrap_or_else(|e| panic!("second build failed: {e}"));
    let seen = run(cli(choice), &["run", "--rm", &tag2, "cat", "/seen"]);
    assert_eq!(String::from_utf8_lossy(&seen).trim(), id);
    let ls = run(
        cli(choice),
        &[
            "run",
            "--rm",
            &tag2,
            "sh",
            "-c",
            "ls -A /cache 2>/dev/null | wc -l",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&ls).trim(),
        "0",
        "the cache leaked into the image"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cache_mount_persists_between_builds() {
    cache_mount_persists_between_builds(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_cache_mount_persists_between_builds() {
    cache_mount_persists_between_builds(EngineChoice::Podman).await;
}

async fn cancel_stops_and_cleans_up(choice: EngineChoice) {
    let temp = tempfile::tempdir().expect("tempdir");
    let b = builder(choice).await.with_temp_dir(temp.path());
    // with_temp_dir consumed the connected builder; connect again.
    b.engine().await.expect("engine");
    let tag = format!("localhost/imagespec-test/cancel-{}:t", unique());
    let _cleanup = Cleanup(choice, tag.clone());
    let dockerfile = format!("FROM {DEBIAN_IMAGE}\nRUN echo {tag} started && sleep 45\n");
    let (j, seen) = job(&tag, dockerfile, Vec::new());
    let cancel = j.cancel.clone();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        // Cancel once the long step is running (or after 30 s at the latest).
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let running = seen2
                .lock()
                .expect("events")
                .iter()
                .any(|e| matches!(e, BuildEvent::Log { line } if line.ends_with("started")));
            if running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cancel.cancel();
    });
    let started = Instant::now();
    let err = b.build_job(j).await.expect_err("cancelled");
    assert_eq!(err.kind, BuildErrorKind::Cancelled, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "cancellation took {:?}",
        started.elapsed()
    );
    let left: Vec<_> = std::fs::read_dir(temp.path()).expect("read temp").collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
    assert!(
        format!("{:?}", seen.lock().expect("events")).contains("started"),
        "the build never reached the long step"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cancel_stops_and_cleans_up() {
    cancel_stops_and_cleans_up(EngineChoice::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_cancel_stops_and_cleans_up() {
    cancel_stops_and_cleans_up(EngineChoice::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_never_print() {
    let v = SecretValue::new(b"hunter2-hunter2".to_vec());
    assert!(!format!("{v:?}").contains("hunter2"));
}
