//! Docker contexts (`docker context use NAME`), read as the docker CLI reads them, so that a
//! Docker user's current context is the engine imagespec builds on.
//!
//! - The context's name: `DOCKER_CONTEXT`, else `currentContext` in `config.json` (in
//!   `$DOCKER_CONFIG`, else `~/.docker`). `default` (or nothing) means no context: the
//!   engine is then found the usual way.
//! - Its endpoint: `Endpoints.docker.Host` in `contexts/meta/<sha256 of the name>/meta.json`
//!   in the same directory.
//!
//! `DOCKER_HOST` beats a context, as with the docker CLI; that precedence is decided by the
//! caller (`crate::discovery::candidates`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The context the user selected, and where the selection came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedContext {
    pub name: String,
    /// `DOCKER_CONTEXT`, or the `config.json` that names it.
    pub selected_by: String,
    /// The endpoint, or why it cannot be read (an unknown context, a broken `meta.json`).
    pub endpoint: Result<String, String>,
}

/// The Docker configuration directory: `$DOCKER_CONFIG`, else `$HOME/.docker`.
fn config_dir(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let non_empty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    non_empty("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| Path::new(&h).join(".docker")))
}

/// The selected context; `None` when none is (or `default` is).
pub fn selected(env: &impl Fn(&str) -> Option<String>) -> Option<SelectedContext> {
    let dir = config_dir(env)?;
    let (name, selected_by) = match env("DOCKER_CONTEXT").filter(|v| !v.trim().is_empty()) {
        Some(name) => (name.trim().to_string(), "DOCKER_CONTEXT".to_string()),
        None => {
            let path = dir.join("config.json");
            let text = std::fs::read_to_string(&path).ok()?;
            let config: serde_json::Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cannot read `currentContext`: {e}");
                    return None;
                }
            };
            let name = config.get("currentContext")?.as_str()?.trim().to_string();
            (name, format!("`currentContext` in {}", path.display()))
        }
    };
    if name.is_empty() || name == "default" {
        return None;
    }
    let endpoint = endpoint_of(&dir, &name);
    Some(SelectedContext {
        name,
        selected_by,
        endpoint,
    })
}

/// `Endpoints.docker.Host` of context `name`.
fn endpoint_of(dir: &Path, name: &str) -> Result<String, String> {
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let meta = dir
        .join("contexts")
        .join("meta")
        .join(digest)
        .join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|e| {
        format!(
            "no Docker context `{name}` ({}: {e}); list them with `docker context ls`, or select another with `docker context use`",
            meta.display()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", meta.display()))?;
    value
        .pointer("/Endpoints/docker/Host")
        .and_then(|h| h.as_str())
        .filter(|h| !h.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("{} has no `Endpoints.docker.Host`", meta.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_context(dir: &Path, name: &str, host: &str) {
        let digest = hex::encode(Sha256::digest(name.as_bytes()));
        let meta = dir.join("contexts/meta").join(digest);
        std::fs::create_dir_all(&meta).expect("mkdir");
        let json = serde_json::json!({"Name": name, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
        std::fs::write(meta.join("meta.json"), json.to_string()).expect("write");
    }

    #[test]
    fn reads_contexts_as_the_docker_cli() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_context(dir.path(), "podman", "unix:///run/podman/podman.sock");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {}, "currentContext": "podman"}"#,
        )
        .expect("write");
        let d = dir.path().to_string_lossy().to_string();
        let env = |k: &str| (k == "DOCKER_CONFIG").then(|| d.clone());
        let c = selected(&env).expect("a context");
        assert_eq!(c.name, "podman");
        assert_eq!(c.endpoint.as_deref(), Ok("unix:///run/podman/podman.sock"));
        assert!(c.selected_by.contains("config.json"));

        // DOCKER_CONTEXT wins over config.json; an unknown one says how to list them.
        let env = |k: &str| match k {
            "DOCKER_CONFIG" => Some(d.clone()),
            "DOCKER_CONTEXT" => Some("nope".to_string()),
            _ => None,
        };
        let c = selected(&env).expect("a context");
        assert_eq!(c.selected_by, "DOCKER_CONTEXT");
        assert!(
            c.endpoint
                .expect_err("unknown")
                .contains("docker context ls")
        );

        // `default` is no context.
        let env = |k: &str| match k {
            "DOCKER_CONFIG" => Some(d.clone()),
            "DOCKER_CONTEXT" => Some("default".to_string()),
            _ => None,
        };
        assert_eq!(selected(&env), None);
    }
}
