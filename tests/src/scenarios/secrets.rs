//! `pip_secret_mounts`: the install step reads each secret (one from an environment variable,
//! one from a file mounted at a relative destination, as in flytekit's test), and neither value
//! is anywhere in the image, its history, its metadata or the build's events.
//!
//! The proof that the step *read* them: the install step builds a local probe package whose
//! build backend stores each secret's SHA-256 in the package (see [`crate::probe`]); the image
//! must carry those digests, and never the values. Nor may the backend's own state (a build
//! service's data directory) or its log.

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use imagespec_core::build::EngineError;
use imagespec_core::spec::SpecField;
use sha2::{Digest, Sha256};

use super::expect_output;
use crate::backend::Backend;
use crate::case::Case;
use crate::names::unique;
use crate::probe;

/// The variable the environment-sourced secret is read from; the harness sets it (to a fresh
/// random value) in a child test process, see [`crate::harness`].
pub const ENV_SECRET_VAR: &str = "IMAGESPEC_CONFORMANCE_ENV_SECRET";
/// The scenario that needs [`ENV_SECRET_VAR`].
pub const ENV_SECRET_SCENARIO: &str = "secret_mounts";

pub async fn secret_mounts(backend: &Backend) -> Result<()> {
    let env_value = std::env::var(ENV_SECRET_VAR).with_context(|| {
        format!("{ENV_SECRET_VAR} is not set (the conformance! harness sets it in a child process)")
    })?;
    let case = Case::new(backend, ENV_SECRET_SCENARIO)?;
    let file_value = format!(
        "imagespec-conformance-file-secret-{}-{}",
        unique(),
        unique()
    );
    case.write("token.txt", &file_value)?;
    let probe_dir = format!("probe-{}", case.id());
    probe::write(&case.root().join(&probe_dir))?;

    // The probe project reaches the install step through the base image: the context of the
    // install step holds only the dependency files.
    let base = case.spec("probe").with_copy([probe_dir.clone()]);
    let spec = case
        .spec("")
        .with_base_spec(base)
        .with_packages([format!(
            "{} @ file:///root/{probe_dir}",
            probe::DISTRIBUTION
        )])
        .with_pip_secret_mount(format!("env:{ENV_SECRET_VAR}"), probe::ENV_TARGET)
        .with_pip_secret_mount("token.txt", probe::FILE_TARGET_RELATIVE);
    if !case.capabilities().secrets {
        return match case.try_ensure(spec, &case.options()).await? {
            Err(EngineError::Unsupported {
                field: SpecField::PipSecretMounts,
                ..
            }) => Ok(()),
            other => bail!(
                "the builder does not support secrets, yet the engine did not refuse them: {other:?}"
            ),
        };
    }
    let image = case.build(spec).await?;
    let runner = case.runner();

    let digests = runner
        .exec(
            &image,
            "python",
            &[
                "-c",
                &format!(
                    "import {m}; print({m}.ENV_SHA256); print({m}.FILE_SHA256)",
                    m = probe::MODULE
                ),
            ],
        )
        .await?;
    let sha = |v: &str| hex::encode(Sha256::digest(v.as_bytes()));
    expect_output(
        "the digests the install step stored",
        &digests,
        &format!("{}\n{}", sha(&env_value), sha(&file_value)),
    )?;

    let mounts = runner
        .sh(&image, "ls -A /run/secrets 2>/dev/null | wc -l")
        .await?;
    expect_output("files left at the secret mount points", &mounts, "0")?;

    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("image.tar");
    runner.save(&image, &archive).await?;
    let saved = std::fs::read(&archive)?;
    let history = runner.history(&image).await?;
    let inspect = runner.inspect(&image).await?.to_string();
    let events = case.events_text();
    for (source, value) in [("environment", &env_value), ("file", &file_value)] {
        let found = |hay: &[u8]| memchr::memmem::find(hay, value.as_bytes()).is_some();
        for (place, hay) in [
            ("the saved image", saved.as_slice()),
            ("history --no-trunc", history.as_bytes()),
            ("inspect", inspect.as_bytes()),
            ("the build events", events.as_bytes()),
        ] {
            ensure!(!found(hay), "the {source} secret's value is in {place}");
        }
        // A backend's own state (a build service's database and blobs) and its log, in plain
        // or base64 (the form secrets travel in to a service).
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        for needle in [value.as_str(), encoded.as_str()] {
            for dir in case.backend().state_dirs() {
                let files = files_containing(dir, needle.as_bytes())?;
                ensure!(
                    files.is_empty(),
                    "the {source} secret's value is in the backend's state: {files:?}"
                );
            }
            if let Some(log) = case.backend().log() {
                let text = log.text();
                ensure!(!text.is_empty(), "the backend's log was not captured");
                ensure!(
                    !text.contains(needle),
                    "the {source} secret's value is in the backend's log"
                );
            }
        }
    }
    Ok(())
}

/// The files below `dir` that contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && memchr::memmem::find(&bytes, needle).is_some()
            {
                found.push(path);
            }
        }
    }
    Ok(found)
}
