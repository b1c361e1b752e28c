//! The dev registry (`127.0.0.1:5000`, htpasswd auth) and a private `DOCKER_CONFIG` that logs
//! into it, so that neither the builder nor a CLI depends on (or changes) the user's own config.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use imagespec_registry::CredentialSources;

use crate::devenv::{HINT, dev_dir};

/// A registry with credentials, written into a temporary `config.json`.
#[derive(Clone)]
pub struct DevRegistry {
    address: String,
    config: Arc<tempfile::TempDir>,
}

impl std::fmt::Debug for DevRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevRegistry")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl DevRegistry {
    /// Reads `registry.env` (`IMAGESPEC_REGISTRY`, `_USER`, `_PASSWORD`) from the dev
    /// environment's directory.
    pub fn from_dev_env() -> Result<DevRegistry> {
        let path = dev_dir().join("registry.env");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}; {HINT}", path.display()))?;
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map(|v| v.trim().trim_matches('"').to_string())
                .ok_or_else(|| anyhow!("{key} is missing from {}; {HINT}", path.display()))
        };
        DevRegistry::new(
            &get("IMAGESPEC_REGISTRY")?,
            &get("IMAGESPEC_REGISTRY_USER")?,
            &get("IMAGESPEC_REGISTRY_PASSWORD")?,
        )
    }

    /// A registry at `address` (`host:port`) logged into with `user`/`password`.
    pub fn new(address: &str, user: &str, password: &str) -> Result<DevRegistry> {
        let dir = tempfile::Builder::new()
            .prefix("imagespec-conformance-auth-")
            .tempdir()
            .context("cannot create a temporary DOCKER_CONFIG")?;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = serde_json::json!({ "auths": { address: { "auth": auth } } });
        std::fs::write(dir.path().join("config.json"), config.to_string())
            .context("cannot write the temporary config.json")?;
        Ok(DevRegistry {
            address: address.to_string(),
            config: Arc::new(dir),
        })
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The spec `registry` the conformance images go to: `<address>/imagespec-conformance`.
    pub fn namespace(&self) -> String {
        format!("{}/{}", self.address, crate::devenv::NAMESPACE)
    }

    /// The directory to use as `DOCKER_CONFIG` (for a CLI that pulls).
    pub fn docker_config(&self) -> &Path {
        self.config.path()
    }

    /// Credential sources as the environment would give them with `DOCKER_CONFIG=<dir>`, without
    /// touching this process's environment.
    pub fn credentials(&self) -> CredentialSources {
        let dir = self.config.path().as_os_str().to_owned();
        CredentialSources::from_vars(move |k| (k == "DOCKER_CONFIG").then(|| dir.clone()))
    }
}
