//! Engine decisions that reach beyond one engine: refused credentials (never "unknown", so no
//! policy can skip them) and the machine-wide build lock (two engines, as two processes would
//! be, build a new image once).

use std::sync::Arc;
use std::time::Duration;

use imagespec_core::build::{
    Action, BuilderKind, BuilderRegistry, Engine, EngineError, EngineOptions, Existence,
    ExistencePolicy, testing::TestBuilder,
};
use imagespec_core::spec::{ImageSpec, LoadedSpec};

fn engine_with(builder: Arc<TestBuilder>) -> Engine {
    let mut registry = BuilderRegistry::new();
    registry.register(builder);
    Engine::new(registry)
}

fn load(root: &tempfile::TempDir, spec: ImageSpec) -> LoadedSpec {
    LoadedSpec::from_spec(spec, root.path()).expect("valid spec")
}

#[tokio::test]
async fn refused_credentials_fail_whatever_the_policy_and_build_nothing() {
    let builder = Arc::new(TestBuilder::new("default", BuilderKind::Local));
    let engine = engine_with(builder.clone());
    let root = tempfile::tempdir().expect("tmp");
    let spec = load(
        &root,
        ImageSpec::new("denied-app")
            .with_registry("127.0.0.1:5000")
            .with_packages(["numpy"]),
    );
    builder.force_existence(Some(Existence::Denied {
        reason: "credentials for 127.0.0.1:5000 (from `/home/u/.docker/config.json`) were rejected"
            .into(),
    }));
    for policy in [
        ExistencePolicy::Fail,
        ExistencePolicy::Build,
        ExistencePolicy::Assume,
    ] {
        let options = EngineOptions {
            policy,
            ..EngineOptions::default()
        };
        for dry_run in [false, true] {
            let result = if dry_run {
                engine.dry_run(&spec, &options).await
            } else {
                engine.ensure(&spec, &options).await
            };
            let err = result.expect_err("refused credentials are an error");
            assert!(
                matches!(err, EngineError::Denied { .. }),
                "{policy:?}: {err:?}"
            );
            let text = err.to_string();
            assert!(
                text.contains("/home/u/.docker/config.json")
                    && text.contains("were rejected")
                    && text.contains("--if-unknown does not apply"),
                "{text}"
            );
        }
    }
    assert!(builder.builds().is_empty(), "nothing was built");
}

#[tokio::test]
async fn two_engines_building_one_new_image_build_it_once() {
    // One store, two engines: like two processes sharing a registry. Each engine's own
    // in-process deduplication cannot see the other, so only the file lock can make the
    // second wait; the build takes long enough that, unlocked, both would check "missing".
    let builder = Arc::new(
        TestBuilder::new("default", BuilderKind::Local)
            .with_build_delay(Duration::from_millis(500)),
    );
    let (first, second) = (engine_with(builder.clone()), engine_with(builder.clone()));
    let root = tempfile::tempdir().expect("tmp");
    let unique = format!(
        "lock-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let spec = load(
        &root,
        ImageSpec::new(&unique)
            .with_registry("127.0.0.1:5000")
            .with_packages(["numpy"]),
    );
    let options = EngineOptions::default();
    let (a, b) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(
            first.ensure(&spec, &options),
            second.ensure(&spec, &options)
        )
    })
    .await
    .expect("both finish");
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(builder.builds().len(), 1, "built once");
    let mut actions = [a.action, b.action];
    actions.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(actions, [Action::Built, Action::Exists]);
    assert_eq!(a.image, b.image);
}
