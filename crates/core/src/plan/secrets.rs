//! Build secrets: what the Python install step mounts, named by id and never by content.
//!
//! A secret reaches the build only as `RUN --mount=type=secret,id=<id>,target=<dst>` on the one
//! install step: it is not in the context, not in `ENV`/`ARG`/`LABEL`, not in a layer, and not in
//! the image name. The builder supplies each [`SecretRef`] to the engine under its `id`, reading
//! the content from `source` at build time.

use std::path::PathBuf;

use serde::Serialize;

use super::error::PlanError;
use crate::spec::LoadedSpec;

/// Where the builder reads a secret's content from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum SecretSource {
    /// A file on the build machine: the spec's path resolved against the root, made absolute.
    File(PathBuf),
    /// An environment variable of the build process (`env:NAME` in the spec).
    Env(String),
}

/// One secret the build needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    /// The id used in the Dockerfile and given to the engine: `pip_secret_<index>`, by position in
    /// `pip_secret_mounts`, so the Dockerfile does not depend on where secrets live.
    pub id: String,
    pub source: SecretSource,
    /// The absolute path the secret is mounted at during the install step.
    pub target: String,
}

/// The secrets of `pip_secret_mounts`, in order (what [`super::BuildPlan::secrets`] returns,
/// without planning: builders read them before contacting an engine).
pub fn from_spec(loaded: &LoadedSpec) -> Result<Vec<SecretRef>, PlanError> {
    loaded
        .spec
        .pip_secret_mounts
        .iter()
        .enumerate()
        .map(|(index, mount)| {
            let target = &mount.dst;
            // One rule for destinations, shared with validation.
            crate::spec::validate::check_secret_destination(target)
                .map_err(|problem| PlanError::InvalidSecret { index, problem })?;
            let source = match mount.src.strip_prefix("env:") {
                Some(name) => SecretSource::Env(name.to_string()),
                // Absolute, so the builder does not depend on its working directory.
                None => {
                    let path = loaded.path(&mount.src);
                    SecretSource::File(std::path::absolute(&path).unwrap_or(path))
                }
            };
            Ok(SecretRef {
                id: format!("pip_secret_{index}"),
                source,
                target: target.clone(),
            })
        })
        .collect()
}
