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

/// BuildKit refuses secrets above 500 KiB; the same limit applies on every engine and on the
/// way to a build service.
pub const MAX_SECRET_SIZE: u64 = 500 * 1024;

impl SecretSource {
    /// Reads the secret's value now (the one rule for it: the local builder reads it before a
    /// build, the remote client before sending it). The error names the source and why, never
    /// the value.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            SecretSource::File(path) => {
                let meta = std::fs::metadata(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if !meta.is_file() {
                    return Err(format!("{} is not a file", path.display()));
                }
                if meta.len() > MAX_SECRET_SIZE {
                    return Err(format!(
                        "{} is {} bytes; build secrets are limited to {MAX_SECRET_SIZE} bytes",
                        path.display(),
                        meta.len()
                    ));
                }
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            SecretSource::Env(var) => {
                let v = std::env::var_os(var)
                    .ok_or_else(|| format!("the environment variable `{var}` is not set"))?;
                let bytes = v.into_encoded_bytes();
                if bytes.len() as u64 > MAX_SECRET_SIZE {
                    return Err(format!("`{var}` is longer than {MAX_SECRET_SIZE} bytes"));
                }
                Ok(bytes)
            }
        }
    }
}

/// One secret the build needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    /// The id used in the Dockerfile and given to the engine: `pip_secret_<index>`, by position in
    /// `pip_secret_mounts`, so the Dockerfile does not depend on where secrets live.
    pub id: String,
    pub source: SecretSource,
    /// The absolute path the secret is mounted at during the install step (a relative
    /// destination resolved against the working directory, as BuildKit resolves a relative
    /// `target=`: so Podman, which is given the absolute path, mounts it at the same place).
    pub target: String,
}

/// The id of the `index`-th mount of `pip_secret_mounts`: the Dockerfile's `id=`, and the key a
/// build service receives its value under.
pub fn secret_id(index: usize) -> String {
    format!("pip_secret_{index}")
}

/// The secrets of `pip_secret_mounts`, in order (what [`super::BuildPlan::secrets`] returns,
/// without planning: builders read them before contacting an engine).
pub fn from_spec(loaded: &LoadedSpec) -> Result<Vec<SecretRef>, PlanError> {
    // The install step runs in the image's working directory; a bad `builder_options` is
    // reported by the options' own check, the default stands in meanwhile.
    let workdir = super::options::PlanOptions::from_builder_options(&loaded.spec.builder_options)
        .map(|o| o.workdir)
        .unwrap_or_else(|_| super::options::DEFAULT_WORKDIR.to_string());
    loaded
        .spec
        .pip_secret_mounts
        .iter()
        .enumerate()
        .map(|(index, mount)| {
            // One rule for destinations, shared with validation.
            crate::spec::validate::check_secret_destination(&mount.dst)
                .map_err(|problem| PlanError::InvalidSecret { index, problem })?;
            let target = &absolute_target(&mount.dst, &workdir);
            let source = match mount.src.strip_prefix("env:") {
                Some(name) => SecretSource::Env(name.to_string()),
                // Absolute, so the builder does not depend on its working directory.
                None => {
                    let path = loaded.path(&mount.src);
                    SecretSource::File(std::path::absolute(&path).unwrap_or(path))
                }
            };
            Ok(SecretRef {
                id: secret_id(index),
                source,
                target: target.clone(),
            })
        })
        .collect()
}

/// BuildKit's rule for a relative mount target: `filepath.Join("/", workdir, target)`.
fn absolute_target(dst: &str, workdir: &str) -> String {
    if dst.starts_with('/') {
        return dst.to_string();
    }
    let mut out = workdir.trim_end_matches('/').to_string();
    for part in dst.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push('/');
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::absolute_target;

    #[test]
    fn a_relative_target_is_below_the_working_directory() {
        assert_eq!(
            absolute_target("secret_dst_2", "/root"),
            "/root/secret_dst_2"
        );
        assert_eq!(absolute_target("./a//b", "/app/"), "/app/a/b");
        assert_eq!(absolute_target("/run/secrets/x", "/root"), "/run/secrets/x");
    }
}
