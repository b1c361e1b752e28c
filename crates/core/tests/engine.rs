//! The engine's decisions: builder selection, variant rules, existence policy, force, base-spec
//! chaining, capability checks and single-flight builds.

use std::sync::Arc;
use std::time::Duration;

use imagespec_core::build::{
    Action, BuildError, BuildErrorKind, BuilderKind, BuilderRegistry, Capabilities, Engine,
    EngineError, EngineOptions, Existence, ExistencePolicy, NoopBuilder, Variant,
    testing::TestBuilder,
};
use imagespec_core::spec::{ImageSpec, LoadedSpec, SpecField};

struct Fixture {
    engine: Arc<Engine>,
    local: Arc<TestBuilder>,
    remote: Arc<TestBuilder>,
    root: tempfile::TempDir,
}

fn fixture_with(local: TestBuilder) -> Fixture {
    let local = Arc::new(local.with_aliases(&["envd"]));
    let remote = Arc::new(TestBuilder::new("union", BuilderKind::Remote).with_aliases(&["remote"]));
    let mut registry = BuilderRegistry::new();
    registry.register(local.clone());
    registry.register(remote.clone());
    registry.register(Arc::new(NoopBuilder));
    Fixture {
        engine: Arc::new(Engine::new(registry)),
        local,
        remote,
        root: tempfile::tempdir().expect("tempdir"),
    }
}

fn fixture() -> Fixture {
    fixture_with(TestBuilder::new("default", BuilderKind::Local))
}

impl Fixture {
    fn load(&self, spec: ImageSpec) -> LoadedSpec {
        LoadedSpec::from_spec(spec, self.root.path()).expect("valid spec")
    }
}

fn spec() -> ImageSpec {
    ImageSpec::new("app")
        .with_registry("127.0.0.1:5000")
        .with_packages(["numpy"])
}

#[tokio::test]
async fn builds_when_missing_and_not_when_it_exists() {
    let f = fixture();
    let loaded = f.load(spec());
    let first = f
        .engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect("build");
    assert_eq!(first.action, Action::Built);
    assert_eq!(first.builder, "default");
    assert!(first.image.starts_with("127.0.0.1:5000/app:"));
    let second = f
        .engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect("no-op");
    assert_eq!(second.action, Action::Exists);
    assert_eq!(second.image, first.image);
    assert_eq!(f.local.builds().len(), 1, "the second call must not build");
    assert_eq!(f.local.checks(), 2);
}

#[tokio::test]
async fn force_rebuilds_from_the_option_the_env_var_and_the_spec() {
    let f = fixture();
    let loaded = f.load(spec());
    f.engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect("build");
    let forced = EngineOptions {
        force: true,
        ..EngineOptions::default()
    };
    assert_eq!(
        f.engine
            .ensure(&loaded, &forced)
            .await
            .expect("forced")
            .action,
        Action::Built
    );
    let mut from_env = EngineOptions::default();
    from_env.apply_env(|k| (k == "FLYTE_FORCE_PUSH_IMAGE_SPEC").then(|| "true".to_string()));
    assert_eq!(
        f.engine
            .ensure(&loaded, &from_env)
            .await
            .expect("forced")
            .action,
        Action::Built
    );
    let force_pushed = f.load(spec().force_push());
    assert_eq!(
        f.engine
            .ensure(&force_pushed, &EngineOptions::default())
            .await
            .expect("forced")
            .action,
        Action::Built
    );
    assert_eq!(f.local.builds().len(), 4);
}

#[tokio::test]
async fn unknown_existence_follows_the_policy_and_is_never_silent() {
    let f = fixture();
    let loaded = f.load(spec());
    f.local.force_existence(Some(Existence::Unknown {
        reason: "registry answered 500".into(),
    }));
    let err = f
        .engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect_err("fail policy");
    assert!(matches!(err, EngineError::ExistenceUnknown { .. }));
    let text = err.to_string();
    assert!(
        text.contains("registry answered 500") && text.contains("--if-unknown"),
        "{text}"
    );
    assert!(f.local.builds().is_empty());

    let assume = EngineOptions {
        policy: ExistencePolicy::Assume,
        ..EngineOptions::default()
    };
    let out = f.engine.ensure(&loaded, &assume).await.expect("assume");
    assert_eq!(out.action, Action::AssumedExists);
    assert!(matches!(out.existence, Some(Existence::Unknown { .. })));
    assert!(f.local.builds().is_empty());

    let build = EngineOptions {
        policy: ExistencePolicy::Build,
        ..EngineOptions::default()
    };
    assert_eq!(
        f.engine
            .ensure(&loaded, &build)
            .await
            .expect("build")
            .action,
        Action::Built
    );

    // FLYTE_IMG_FAST_FAIL overrides a permissive policy.
    let mut fast_fail = assume.clone();
    fast_fail.apply_env(|k| (k == "FLYTE_IMG_FAST_FAIL").then(|| "1".to_string()));
    assert!(f.engine.ensure(&loaded, &fast_fail).await.is_err());
}

#[tokio::test]
async fn builder_selection_flag_then_spec_then_variant() {
    let f = fixture();
    let plain = f.load(spec());
    let serverless = EngineOptions {
        variant: Variant::Serverless,
        ..EngineOptions::default()
    };
    assert_eq!(
        f.engine
            .ensure(&plain, &serverless)
            .await
            .expect("remote")
            .builder,
        "union"
    );
    for v in [
        Variant::Flyte,
        Variant::Byoc,
        Variant::Byok,
        Variant::Selfmanaged,
    ] {
        let opts = EngineOptions {
            variant: v,
            force: true,
            ..EngineOptions::default()
        };
        assert_eq!(
            f.engine.ensure(&plain, &opts).await.expect("local").builder,
            "default",
            "{v}"
        );
    }
    let named = f.load(spec().with_builder("remote"));
    assert_eq!(
        f.engine
            .ensure(&named, &EngineOptions::default())
            .await
            .expect("alias")
            .builder,
        "union"
    );
    let flag = EngineOptions {
        builder: Some("union".into()),
        ..EngineOptions::default()
    };
    let legacy = f.load(spec().with_builder("envd"));
    assert_eq!(
        f.engine
            .ensure(&legacy, &flag)
            .await
            .expect("flag wins")
            .builder,
        "union"
    );
    assert_eq!(
        f.engine
            .ensure(&legacy, &EngineOptions::default())
            .await
            .expect("envd alias")
            .builder,
        "default"
    );
    assert_eq!(
        f.remote.builds().len(),
        1,
        "the second request for the same image exists already"
    );
}

#[tokio::test]
async fn serverless_rejects_local_builds_with_a_clear_error() {
    let f = fixture();
    let local = f.load(spec().with_builder("default"));
    let opts = EngineOptions {
        variant: Variant::Serverless,
        ..EngineOptions::default()
    };
    let err = f.engine.ensure(&local, &opts).await.expect_err("rejected");
    assert!(matches!(err, EngineError::LocalBuildNotAllowed { .. }));
    assert!(err.to_string().contains("serverless"), "{err}");
    assert!(f.local.builds().is_empty() && f.local.checks() == 0);
}

#[tokio::test]
async fn an_unknown_builder_lists_the_available_ones() {
    let f = fixture();
    let loaded = f.load(spec().with_builder("kaniko"));
    let err = f
        .engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect_err("unknown");
    let text = err.to_string();
    assert!(
        text.contains("kaniko") && text.contains("default, noop, union"),
        "{text}"
    );
}

#[tokio::test]
async fn a_local_build_that_pushes_needs_a_registry() {
    let f = fixture();
    let loaded = f.load(ImageSpec::new("app"));
    let err = f
        .engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect_err("needs registry");
    assert!(matches!(err, EngineError::RegistryRequired { .. }));
    assert!(err.to_string().contains("--no-push"));
    let no_push = EngineOptions {
        push: false,
        ..EngineOptions::default()
    };
    let out = f
        .engine
        .ensure(&loaded, &no_push)
        .await
        .expect("local only");
    assert_eq!(out.action, Action::Built);
    assert!(!f.local.builds()[0].push);
    // The remote builder stores images in its own registry: no registry needed.
    let remote = EngineOptions {
        variant: Variant::Serverless,
        ..EngineOptions::default()
    };
    assert!(f.engine.ensure(&loaded, &remote).await.is_ok());
}

/// A default registry (a build service's project namespace) stands in for a spec's `registry`:
/// it qualifies the planned names, the base spec's too, without changing the tag the client
/// computed, and the build goes FROM the base's qualified name.
#[tokio::test]
async fn a_default_registry_qualifies_names_without_entering_the_hash() {
    let f = fixture();
    let base = ImageSpec::new("base").with_apt_packages(["git"]);
    let loaded = f.load(ImageSpec::new("app").with_base_spec(base));
    let bare = imagespec_core::resolve_image(&loaded).expect("name");
    let options = EngineOptions {
        default_registry: Some("127.0.0.1:5000/service/team-a".into()),
        ..EngineOptions::default()
    };
    let planned = f
        .engine
        .plan(&loaded, &options)
        .expect("no `registry` needed");
    assert_eq!(
        planned.resolved.name.to_string(),
        format!("127.0.0.1:5000/service/team-a/{bare}", bare = bare.name)
    );
    assert_eq!(planned.resolved.spec_hash, bare.spec_hash);
    let base_name = planned
        .base
        .as_ref()
        .expect("base")
        .resolved
        .name
        .to_string();
    assert!(base_name.starts_with("127.0.0.1:5000/service/team-a/base:"));
    assert_eq!(planned.base_image.as_deref(), Some(base_name.as_str()));
    let out = f.engine.ensure(&loaded, &options).await.expect("builds");
    let builds = f.local.builds();
    assert_eq!(builds[1].base_image.as_deref(), Some(base_name.as_str()));
    assert_eq!(out.image, planned.resolved.name.to_string());
    // A spec's own registry is kept.
    let own = f.load(ImageSpec::new("app").with_registry("registry.example.com/x"));
    let planned = f.engine.plan(&own, &options).expect("plans");
    assert!(
        planned
            .resolved
            .name
            .to_string()
            .starts_with("registry.example.com/x/app:")
    );
}

#[tokio::test]
async fn a_base_spec_is_built_first_and_chained() {
    let f = fixture();
    let base = ImageSpec::new("base").with_apt_packages(["git"]);
    let loaded = f.load(spec().with_base_spec(base));
    let out = f
        .engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect("build");
    let builds = f.local.builds();
    assert_eq!(builds.len(), 2);
    let base_out = out.base.as_ref().expect("base outcome");
    assert_eq!(builds[0].image, base_out.image, "the base is built first");
    assert!(
        base_out.image.starts_with("127.0.0.1:5000/base:"),
        "the base inherits the registry"
    );
    assert_eq!(
        builds[1].base_image.as_deref(),
        Some(base_out.image.as_str())
    );
    // Again: both exist, nothing is built.
    let again = f
        .engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect("no-op");
    assert_eq!(again.action, Action::Exists);
    assert_eq!(again.base.as_ref().map(|b| b.action), Some(Action::Exists));
    assert_eq!(f.local.builds().len(), 2);
}

#[tokio::test]
async fn a_failing_base_build_names_the_base() {
    let f = fixture();
    f.local.fail_builds(Some(BuildError::new(
        BuildErrorKind::StepFailed,
        "apt-get failed",
    )));
    let loaded = f.load(spec().with_base_spec(ImageSpec::new("base")));
    let err = f
        .engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect_err("fails");
    let text = err.to_string();
    assert!(
        text.contains("base image spec `base`") && text.contains("apt-get failed"),
        "{text}"
    );
    assert_eq!(
        f.local.builds().len(),
        1,
        "the child is not built after its base failed"
    );
}

#[tokio::test]
async fn concurrent_requests_for_one_image_build_it_once() {
    let f = fixture_with(
        TestBuilder::new("default", BuilderKind::Local)
            .with_build_delay(Duration::from_millis(200)),
    );
    let loaded = f.load(spec());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let engine = f.engine.clone();
        let loaded = loaded.clone();
        tasks.push(tokio::spawn(async move {
            engine.ensure(&loaded, &EngineOptions::default()).await
        }));
    }
    let mut images = Vec::new();
    for t in tasks {
        images.push(t.await.expect("join").expect("ensure").image);
    }
    images.dedup();
    assert_eq!(images.len(), 1);
    assert_eq!(f.local.builds().len(), 1);
}

#[tokio::test]
async fn capabilities_are_checked_before_any_work() {
    let mut caps = Capabilities::full(BuilderKind::Local);
    caps.fields.retain(|f| *f != SpecField::CondaPackages);
    caps.multi_platform = false;
    caps.secrets = false;
    let f = fixture_with(TestBuilder::new("default", BuilderKind::Local).with_capabilities(caps));
    let mut conda = spec();
    conda.conda_packages = vec!["numpy".into()];
    let err = f
        .engine
        .ensure(&f.load(conda), &EngineOptions::default())
        .await
        .expect_err("conda");
    assert!(
        matches!(
            err,
            EngineError::Unsupported {
                field: SpecField::CondaPackages,
                ..
            }
        ),
        "{err}"
    );
    let multi = f.load(spec().with_platform("linux/amd64,linux/arm64"));
    let err = f
        .engine
        .ensure(&multi, &EngineOptions::default())
        .await
        .expect_err("multi");
    assert!(
        matches!(
            err,
            EngineError::Unsupported {
                field: SpecField::Platform,
                ..
            }
        ),
        "{err}"
    );
    let secret = f.load(spec().with_pip_secret_mount("env:TOKEN", "/run/secrets/t"));
    let err = f
        .engine
        .ensure(&secret, &EngineOptions::default())
        .await
        .expect_err("secret");
    assert!(
        matches!(
            err,
            EngineError::Unsupported {
                field: SpecField::PipSecretMounts,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(f.local.checks(), 0, "nothing was checked or built");
}

#[tokio::test]
async fn a_builder_that_cannot_push_is_refused_when_pushing_is_asked() {
    let mut caps = Capabilities::full(BuilderKind::Local);
    caps.push = false;
    let f = fixture_with(TestBuilder::new("default", BuilderKind::Local).with_capabilities(caps));
    let err = f
        .engine
        .ensure(&f.load(spec()), &EngineOptions::default())
        .await
        .expect_err("push");
    assert!(
        matches!(
            err,
            EngineError::Unsupported {
                field: SpecField::Registry,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(f.local.checks(), 0, "nothing was checked or built");
    let local_only = EngineOptions {
        push: false,
        ..EngineOptions::default()
    };
    f.engine
        .ensure(&f.load(spec()), &local_only)
        .await
        .expect("a build that does not push");
}

/// A spec the builder cannot plan (a bad value of a known builder option, an impossible CUDA
/// version) fails before anything is checked or built, not after a long base build.
#[tokio::test]
async fn a_child_that_cannot_be_planned_fails_before_its_base_is_built() {
    let f = fixture();
    let mut child = spec().with_base_spec(ImageSpec::new("base").with_apt_packages(["git"]));
    child
        .builder_options
        .insert("workdir".into(), serde_json::json!("relative/dir"));
    let err = f
        .engine
        .ensure(&f.load(child), &EngineOptions::default())
        .await
        .expect_err("unplannable child");
    assert!(matches!(err, EngineError::Plan { .. }), "{err}");
    assert!(err.to_string().contains("workdir"), "{err}");
    let mut base = ImageSpec::new("base");
    base.cuda = Some("12.7".into());
    let err = f
        .engine
        .ensure(
            &f.load(spec().with_base_spec(base)),
            &EngineOptions::default(),
        )
        .await
        .expect_err("unplannable base");
    assert!(matches!(err, EngineError::Base { .. }), "{err}");
    assert!(err.to_string().contains("12.7"), "{err}");
    assert_eq!(f.local.checks(), 0, "nothing was checked");
    assert!(f.local.builds().is_empty(), "nothing was built");
}

#[tokio::test]
async fn noop_uses_the_base_image_as_is() {
    let f = fixture();
    let loaded = f.load(
        ImageSpec::new("app")
            .with_builder("noop")
            .with_base_image("python:3.11-slim"),
    );
    let out = f
        .engine
        .ensure(&loaded, &EngineOptions::default())
        .await
        .expect("noop");
    assert_eq!(out.action, Action::Passthrough);
    assert_eq!(out.image, "python:3.11-slim");
    let bad = f.load(
        ImageSpec::new("app")
            .with_builder("noop")
            .with_packages(["numpy"])
            .with_base_image("x"),
    );
    assert!(matches!(
        f.engine.ensure(&bad, &EngineOptions::default()).await,
        Err(EngineError::Unsupported { .. })
    ));
}

#[tokio::test]
async fn dry_run_checks_but_never_builds() {
    let f = fixture();
    let loaded = f.load(spec());
    let out = f
        .engine
        .dry_run(&loaded, &EngineOptions::default())
        .await
        .expect("dry run");
    assert_eq!(out.action, Action::WouldBuild);
    assert_eq!(out.existence, Some(Existence::Missing));
    assert!(f.local.builds().is_empty());
}

#[test]
fn policy_parses() {
    assert_eq!(
        "Build".parse::<ExistencePolicy>(),
        Ok(ExistencePolicy::Build)
    );
    assert!("sometimes".parse::<ExistencePolicy>().is_err());
}

/// flytekit reads `FLYTE_PUSH_IMAGE_SPEC` as "push unless false"; `0` and `false` mean no push,
/// and an unset or unrecognised value keeps the push.
#[test]
fn flyte_push_image_spec_false_means_no_push() {
    for (value, push) in [
        ("0", false),
        ("false", false),
        ("False", false),
        ("1", true),
        ("true", true),
        ("maybe", true),
    ] {
        let mut options = EngineOptions::default();
        options.apply_env(|k| (k == "FLYTE_PUSH_IMAGE_SPEC").then(|| value.to_string()));
        assert_eq!(options.push, push, "FLYTE_PUSH_IMAGE_SPEC={value}");
    }
    let mut unset = EngineOptions::default();
    unset.apply_env(|_| None);
    assert!(unset.push);
}
