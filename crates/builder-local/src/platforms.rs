//! Several platforms, and platforms other than the engine's own: what must hold before a
//! build starts, and the per-platform names a multi-platform build pushes under.
//!
//! Everything here runs before the first build step, so a spec the machine cannot build
//! fails at once with what to do, instead of after minutes of emulated work:
//! - a foreign platform needs a binfmt_misc handler (qemu-user-static) registered with the
//!   fix-binary flag `F`, which makes the kernel open the interpreter at registration, so it
//!   also works inside containers whose root file system does not have it;
//! - every image the Dockerfile pulls (`FROM`, `COPY --from`) must provide every platform.

use std::path::Path;

use imagespec_core::hash::ImageName;
use imagespec_registry::{CredentialSources, ImageReference, Platform, RegistryClient};

use crate::discovery::{ConnectedEngine, Endpoint};
use crate::error::LocalError;

/// Where the kernel lists its binfmt_misc handlers.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The name under which platform `platform` of a multi-platform `image` is pushed before the
/// index is put under `image` itself: the tag with the platform appended
/// (`<tag>-linux-arm64`), in the same repository, as a registry requires for an index.
pub fn platform_image(image: &ImageName, platform: &str) -> ImageName {
    let suffix: String = platform
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    ImageName {
        tag: format!("{}-{suffix}", image.tag),
        ..image.clone()
    }
}

/// Whether a build for `platforms` needs more than the engine's own platform.
pub fn needs_checks(engine: &ConnectedEngine, platforms: &[String]) -> bool {
    platforms.len() > 1 || platforms.iter().any(|p| !is_native(engine, p))
}

fn is_native(engine: &ConnectedEngine, platform: &str) -> bool {
    match (
        Platform::parse(platform),
        Platform::parse(&engine.native_platform),
    ) {
        (Ok(want), Ok(native)) => want.is_satisfied_by(&native),
        _ => false,
    }
}

/// The name qemu and binfmt_misc use for an OCI architecture.
fn qemu_arch(architecture: &str) -> &str {
    match architecture {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i386",
        "mips64le" => "mips64el",
        other => other,
    }
}

/// Refuses a foreign platform that this engine's kernel cannot run: no binfmt_misc handler
/// for its architecture, or one without the flag `F`. Only an engine on a unix socket shares
/// this machine's kernel; for an engine over TCP nothing can be seen from here, so the build
/// itself will tell.
pub fn check_emulation(engine: &ConnectedEngine, platforms: &[String]) -> Result<(), LocalError> {
    if !matches!(engine.endpoint, Endpoint::Unix(_)) {
        return Ok(());
    }
    for platform in platforms.iter().filter(|p| !is_native(engine, p)) {
        check_handler(Path::new(BINFMT_DIR), platform, &engine.native_platform)?;
    }
    Ok(())
}

/// [`check_emulation`] for one foreign platform, against the handlers listed in `dir`.
pub fn check_handler(dir: &Path, platform: &str, native: &str) -> Result<(), LocalError> {
    let parsed = Platform::parse(platform)
        .map_err(|e| LocalError::Unsupported(format!("invalid platform `{platform}`: {e}")))?
        .normalized();
    let arch = qemu_arch(&parsed.architecture);
    let fix = format!(
        "install qemu-user-static and register it with the fix-binary flag F (`docker run --privileged --rm tonistiigi/binfmt --install {}`, or see the README, \"Several platforms\"), or build {platform} on a {platform} machine",
        parsed.architecture
    );
    let refuse = |why: String| {
        LocalError::Unsupported(format!(
            "platform {platform} needs emulation on this {native} engine, but {why}: {fix}"
        ))
    };
    if !dir.join("register").exists() {
        return Err(refuse(format!(
            "binfmt_misc is not mounted on {}",
            dir.display()
        )));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| refuse(format!("{} cannot be read ({e})", dir.display())))?;
    let mut without_fix = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "register" || name == "status" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let interpreter = field(&text, "interpreter").unwrap_or_default();
        let handles = name == format!("qemu-{arch}")
            || interpreter.contains(&format!("qemu-{arch}"))
            || interpreter.contains(&format!("/{arch}-binfmt"));
        if !handles {
            continue;
        }
        if text.lines().next().map(str::trim) != Some("enabled") {
            without_fix = Some(format!("the handler `{name}` is disabled"));
            continue;
        }
        if !field(&text, "flags").is_some_and(|f| f.contains('F')) {
            without_fix = Some(format!(
                "the handler `{name}` ({interpreter}) is registered without the flag F, so containers cannot find its interpreter"
            ));
            continue;
        }
        return Ok(());
    }
    Err(refuse(without_fix.unwrap_or_else(|| {
        format!("no binfmt_misc handler for {arch} is registered")
    })))
}

/// The platforms an engine can build: its own, and, for an engine on this machine's kernel
/// (a unix socket), every architecture with a usable binfmt_misc handler among the common
/// ones. `None` for an engine over TCP, whose kernel cannot be seen from here.
pub fn buildable(engine: &ConnectedEngine) -> Option<Vec<String>> {
    if !matches!(engine.endpoint, Endpoint::Unix(_)) {
        return None;
    }
    let native = Platform::parse(&engine.native_platform).ok()?.normalized();
    let mut all = vec![native.to_string()];
    for arch in [
        "amd64", "arm64", "arm/v7", "386", "ppc64le", "s390x", "riscv64",
    ] {
        let platform = format!("{}/{arch}", native.os);
        if !all.contains(&platform)
            && check_handler(Path::new(BINFMT_DIR), &platform, &engine.native_platform).is_ok()
        {
            all.push(platform);
        }
    }
    Some(all)
}

/// The value of a `key: value` or `key value` line of a binfmt_misc entry.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?;
        Some(rest.trim_start_matches(':').trim())
    })
}

/// Refuses a build whose pulled images (`FROM`, `COPY --from`) do not provide every platform,
/// naming the image and the missing platforms. An image in the engine's store counts for the
/// one platform it holds; otherwise its registry is asked with the builder's credentials. An
/// image whose registry cannot be asked is left to the build (a warning says so): only a
/// definite "it lacks this platform" stops it here.
pub async fn check_pulled_images(
    engine: &ConnectedEngine,
    images: &[String],
    platforms: &[String],
    sources: &CredentialSources,
) -> Result<(), LocalError> {
    let wanted: Vec<Platform> = platforms
        .iter()
        .map(|p| {
            Platform::parse(p)
                .map_err(|e| LocalError::Unsupported(format!("invalid platform `{p}`: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let client = RegistryClient::builder()
        .credentials(sources.clone())
        .build()
        .map_err(|e| LocalError::Unsupported(format!("cannot create a registry client: {e}")))?;
    for image in images {
        let local = engine.docker.inspect_image(image).await.ok().map(|info| {
            Platform::new(
                info.os.as_deref().unwrap_or("linux"),
                info.architecture.as_deref().unwrap_or_default(),
                info.variant.as_deref().filter(|v| !v.is_empty()),
            )
        });
        if let Some(have) = &local
            && wanted.iter().all(|w| w.is_satisfied_by(have))
        {
            continue;
        }
        let remote = match ImageReference::parse(image) {
            Ok(reference) => client.platforms(&reference).await.map(|(_, p)| p),
            Err(e) => {
                tracing::warn!("cannot check the platforms of `{image}`: {e}");
                continue;
            }
        };
        let available = match (remote, &local) {
            (Ok(available), _) => available,
            (Err(_), Some(have)) => vec![have.clone()],
            (Err(e), None) => {
                tracing::warn!(
                    "cannot check that `{image}` provides {}: {e}; the build will tell",
                    platforms.join(", ")
                );
                continue;
            }
        };
        let missing: Vec<String> = wanted
            .iter()
            .filter(|w| !available.iter().any(|have| w.is_satisfied_by(have)))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            let have: Vec<String> = available.iter().map(ToString::to_string).collect();
            return Err(LocalError::Unsupported(format!(
                "the image `{image}` that the build uses has no {} variant (it has: {}); use an image whose index provides every platform of `platform`, or build fewer platforms",
                missing.join(", "),
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binfmt(entries: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("register"), "").expect("register");
        std::fs::write(dir.path().join("status"), "enabled\n").expect("status");
        for (name, text) in entries {
            std::fs::write(dir.path().join(name), text).expect("entry");
        }
        dir
    }

    const DEBIAN: &str =
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\n";
    const NO_FIX: &str = "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: P\noffset 0\n";

    #[test]
    fn a_handler_with_flag_f_allows_the_platform() {
        let dir = binfmt(&[("qemu-aarch64", DEBIAN)]);
        check_handler(dir.path(), "linux/arm64", "linux/amd64").expect("arm64 runs");
        // Under another name (binfmt-support's), found by its interpreter.
        let dir = binfmt(&[("arm64-emu", NO_FIX.replace("flags: P", "flags: F").as_str())]);
        check_handler(dir.path(), "linux/arm64/v8", "linux/amd64").expect("arm64 runs");
    }

    #[test]
    fn a_missing_disabled_or_unfixed_handler_is_refused_with_the_fix() {
        let none = binfmt(&[]);
        let e = check_handler(none.path(), "linux/arm64", "linux/amd64").expect_err("none");
        let m = e.to_string();
        assert!(m.contains("no binfmt_misc handler for aarch64"), "{m}");
        assert!(
            m.contains("qemu-user-static") && m.contains("flag F"),
            "{m}"
        );

        let unfixed = binfmt(&[("qemu-aarch64", NO_FIX)]);
        let m = check_handler(unfixed.path(), "linux/arm64", "linux/amd64")
            .expect_err("no F")
            .to_string();
        assert!(m.contains("without the flag F"), "{m}");

        let disabled = binfmt(&[("qemu-aarch64", &DEBIAN.replace("enabled", "disabled"))]);
        let m = check_handler(disabled.path(), "linux/arm64", "linux/amd64")
            .expect_err("disabled")
            .to_string();
        assert!(m.contains("is disabled"), "{m}");

        let unmounted = tempfile::tempdir().expect("tempdir");
        let m = check_handler(unmounted.path(), "linux/arm64", "linux/amd64")
            .expect_err("unmounted")
            .to_string();
        assert!(m.contains("not mounted"), "{m}");
    }

    #[test]
    fn a_handler_for_another_architecture_does_not_count() {
        let dir = binfmt(&[("qemu-aarch64", DEBIAN)]);
        let m = check_handler(dir.path(), "linux/s390x", "linux/amd64")
            .expect_err("s390x")
            .to_string();
        assert!(m.contains("s390x"), "{m}");
    }

    #[test]
    fn platform_images_are_tags_of_the_same_repository() {
        let image = ImageName {
            registry: Some("127.0.0.1:5000/team".into()),
            repository: "app".into(),
            tag: "0123abcd".into(),
        };
        let arm = platform_image(&image, "linux/arm64/v8");
        assert_eq!(
            arm.to_string(),
            "127.0.0.1:5000/team/app:0123abcd-linux-arm64-v8"
        );
        assert_eq!(arm.repository_path(), image.repository_path());
    }
}
