//! Several platforms under one name: the registry holds an index with every platform, each
//! platform's image runs (under qemu for a foreign one) and has the spec's packages, a second
//! build is a no-op, an index that lacks a platform is built again, and a single foreign
//! platform works too. Lean on purpose (one small pure-Python package, no Flyte runtime):
//! an emulated install is slow.

use anyhow::{Context, Result, bail, ensure};
use imagespec_core::build::Action;
use imagespec_core::spec::ImageSpec;
use imagespec_registry::manifest::ParsedManifest;
use imagespec_registry::{ImageReference, Platform, RegistryClient};

use crate::backend::Backend;
use crate::case::Case;
use crate::devenv::{MULTI_PYTHON_IMAGE, MULTI_UV_IMAGE};
use crate::registry::DevRegistry;
use crate::runner::Runner;

const BOTH: &str = "linux/amd64,linux/arm64";

/// A spec of this case from the dev environment's amd64+arm64 base and uv images.
fn multi_spec(case: &Case<'_>, registry: &DevRegistry, platform: &str) -> ImageSpec {
    let at = |path: &str| format!("{}/{path}", registry.address());
    case.spec("")
        .with_base_image(at(MULTI_PYTHON_IMAGE))
        .with_builder_config("uv_image", at(MULTI_UV_IMAGE))
        .with_packages(["six==1.16.0"])
        .with_platform(platform)
}

/// What the registry holds under `image`: the index's entries (`name@digest`, platform), or
/// the one image and its platform.
async fn registry_entries(
    client: &RegistryClient,
    image: &str,
) -> Result<(bool, Vec<(String, Platform)>)> {
    let reference = ImageReference::parse(image)?;
    let manifest = client
        .get_manifest(&reference)
        .await
        .with_context(|| format!("the registry has no {image}"))?;
    match manifest.parse().map_err(anyhow::Error::msg)? {
        ParsedManifest::Index(index) => Ok((
            true,
            index
                .manifests
                .into_iter()
                .map(|m| {
                    let platform = m
                        .platform
                        .clone()
                        .context("an index entry has no platform")?;
                    Ok((format!("{}@{}", reference.name(), m.digest), platform))
                })
                .collect::<Result<_>>()?,
        )),
        ParsedManifest::Image(_) => {
            let (_, platforms) = client.platforms(&reference).await?;
            let platform = platforms.into_iter().next().context("no platform")?;
            Ok((false, vec![(image.to_string(), platform)]))
        }
    }
}

/// Pulls `image` (a `name@digest` of one platform) into Docker and checks that it runs as
/// `uname` says it should and imports the spec's package.
async fn runs_as(runner: &Runner, image: &str, platform: &Platform) -> Result<()> {
    let arch = match platform.normalized().architecture.as_str() {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => bail!("no `uname -m` known for {other}"),
    };
    runner.fetch(image).await?;
    let p = platform.to_string();
    let script = "uname -m && /opt/venv/bin/python -c 'import six; print(six.__version__)'";
    let out = runner
        .cmd(&[
            "run",
            "--rm",
            "--network=none",
            "--pull=never",
            "--platform",
            &p,
            "--entrypoint",
            "/bin/sh",
            image,
            "-c",
            script,
        ])
        .await
        .with_context(|| format!("running {image} ({p})"))?;
    super::expect_output(
        &format!("{p}: uname -m and six"),
        &out,
        &format!("{arch}\n1.16.0"),
    )
}

/// The per-platform tags a multi-platform build leaves in the engine's store next to the
/// index it pushed: removed when the scenario ends (with the store lock, like every removal).
struct PlatformTags<'a> {
    runner: &'a Runner,
    tags: Vec<String>,
}

impl<'a> PlatformTags<'a> {
    fn of(case: &'a Case<'_>, image: &str, platforms: &str) -> PlatformTags<'a> {
        let suffix = |p: &str| p.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        PlatformTags {
            runner: case.runner(),
            tags: platforms
                .split(',')
                .map(|p| format!("{image}-{}", suffix(p)))
                .collect(),
        }
    }
}

impl Drop for PlatformTags<'_> {
    fn drop(&mut self) {
        self.runner.remove_now(&self.tags);
    }
}

fn platforms_of(entries: &[(String, Platform)]) -> Vec<String> {
    let mut all: Vec<String> = entries
        .iter()
        .map(|(_, p)| p.normalized().to_string())
        .collect();
    all.sort();
    all
}

/// `platform: linux/amd64,linux/arm64`: one name, an index with both, each runs.
pub async fn several_platforms(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "several_platforms")?;
    let registry = DevRegistry::from_dev_env()?;
    let client = RegistryClient::builder()
        .credentials(registry.credentials())
        .build()?;
    // The registry is the truth here, whichever engine built: run with a pulling Docker.
    let runner = Runner::docker().pulling(&registry);
    let spec = multi_spec(&case, &registry, BOTH);
    let first = case.ensure(spec.clone()).await?;
    ensure!(
        first.action == Action::Built,
        "first ensure: {:?}",
        first.action
    );
    let (is_index, entries) = registry_entries(&client, &first.image).await?;
    ensure!(is_index, "{} is a single image, not an index", first.image);
    ensure!(
        platforms_of(&entries) == ["linux/amd64", "linux/arm64"],
        "the index of {} has {:?}",
        first.image,
        platforms_of(&entries)
    );
    let pulled: Vec<String> = entries.iter().map(|(r, _)| r.clone()).collect();
    let _left = PlatformTags::of(&case, &first.image, BOTH);
    let checked = async {
        for (image, platform) in &entries {
            runs_as(&runner, image, platform).await?;
        }
        // Unchanged: a no-op.
        let second = case.ensure(spec.clone()).await?;
        ensure!(
            second.action == Action::Exists,
            "second ensure: {:?}",
            second.action
        );
        ensure!(second.image == first.image, "the name changed");

        // An index without arm64 under the name: missing, so built again, with both.
        let amd64 = entries
            .iter()
            .find(|(_, p)| p.normalized().architecture == "amd64")
            .context("no amd64 entry")?;
        let target = ImageReference::parse(&first.image)?;
        client
            .push_index(
                &target,
                &[(ImageReference::parse(&amd64.0)?, amd64.1.clone())],
            )
            .await?;
        let (_, only) = registry_entries(&client, &first.image).await?;
        ensure!(
            platforms_of(&only) == ["linux/amd64"],
            "the test index has {:?}",
            platforms_of(&only)
        );
        let third = case.ensure(spec).await?;
        ensure!(
            third.action == Action::Built,
            "an index without arm64 was not rebuilt: {:?}",
            third.action
        );
        let (_, again) = registry_entries(&client, &first.image).await?;
        ensure!(
            platforms_of(&again) == ["linux/amd64", "linux/arm64"],
            "after the rebuild the index has {:?}",
            platforms_of(&again)
        );
        let builds = case.recorder().builds().len();
        ensure!(builds == 2, "expected 2 builds, got {builds}");
        Ok(())
    }
    .await;
    runner.remove_now(&pulled);
    checked
}

/// `platform: linux/arm64` alone on an amd64 machine: built under emulation, runs as aarch64.
pub async fn foreign_platform(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "foreign_platform")?;
    let registry = DevRegistry::from_dev_env()?;
    let client = RegistryClient::builder()
        .credentials(registry.credentials())
        .build()?;
    let runner = Runner::docker().pulling(&registry);
    let outcome = case
        .ensure(multi_spec(&case, &registry, "linux/arm64"))
        .await?;
    ensure!(
        outcome.action == Action::Built,
        "ensure: {:?}",
        outcome.action
    );
    let (_, entries) = registry_entries(&client, &outcome.image).await?;
    ensure!(
        platforms_of(&entries) == ["linux/arm64"],
        "{} has {:?}",
        outcome.image,
        platforms_of(&entries)
    );
    let pulled: Vec<String> = entries.iter().map(|(r, _)| r.clone()).collect();
    let checked = async {
        for (image, platform) in &entries {
            runs_as(&runner, image, platform).await?;
        }
        Ok(())
    }
    .await;
    runner.remove_now(&pulled);
    checked
}

/// A base image without one of the platforms fails before any build, naming the image and the
/// platform.
pub async fn base_without_platform(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "base_without_platform")?;
    let registry = DevRegistry::from_dev_env()?;
    // The amd64-only base (the uv image is multi-platform, so only the base lacks arm64).
    let spec = multi_spec(&case, &registry, BOTH).with_base_image(backend_python(backend));
    match case.try_ensure(spec, &case.options()).await? {
        Err(e) => {
            let m = e.to_string();
            ensure!(
                m.contains("linux/arm64"),
                "the error does not name the platform: {m}"
            );
            ensure!(
                m.contains(&backend_python(backend)),
                "the error does not name the image: {m}"
            );
        }
        Ok(o) => bail!("a base without arm64 was accepted: {:?}", o.action),
    }
    let builds = case.recorder().builds().len();
    ensure!(
        builds <= 1,
        "expected at most the refused build call, got {builds}"
    );
    Ok(())
}

fn backend_python(_backend: &Backend) -> String {
    crate::devenv::PYTHON_IMAGE.to_string()
}
