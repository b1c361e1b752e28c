//! Registry credentials from Docker's `config.json`, credential helpers, Podman's `auth.json`
//! and an explicit file — the places a user's `docker login` / `podman login` already wrote to,
//! so imagespec needs no login of its own.
//!
//! Secrets live in [`Secret`], whose `Debug` and `Display` print `<redacted>`: a credential can
//! then be logged, put in an error or `dbg!`-ed by a future maintainer without leaking.
//! All paths are held in [`CredentialSources`] instead of being read from the environment at
//! lookup time, so tests (and callers) decide exactly which files are consulted.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::error::CredentialError;
use crate::helper;
use crate::reference::{DEFAULT_REGISTRY, normalise_registry};

/// The project's one secret-string type: `Debug` and `Display` never show the value.
pub use imagespec_core::config::Secret;

/// What we authenticate with. Printing it shows the kind and username, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// Username and password (or a personal access token used as one).
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken(Secret),
    /// A bearer token sent to the registry as is (`registrytoken`).
    RegistryToken(Secret),
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "username `{username}` and password"),
            Credential::IdentityToken(_) => f.write_str("identity token"),
            Credential::RegistryToken(_) => f.write_str("registry token"),
        }
    }
}

/// Where a credential was found, for messages such as "credentials from `…` were rejected".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialOrigin {
    File(PathBuf),
    Helper { program: String, config: PathBuf },
}

impl fmt::Display for CredentialOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialOrigin::File(path) => write!(f, "`{}`", path.display()),
            CredentialOrigin::Helper { program, config } => {
                write!(f, "`{program}` (configured in `{}`)", config.display())
            }
        }
    }
}

/// A credential and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCredential {
    pub credential: Credential,
    pub origin: CredentialOrigin,
}

/// The files (and helper search path) consulted for credentials, in lookup order:
/// `explicit_file`, then `docker_config`, then each of `podman_auth_files`.
#[derive(Debug, Clone)]
pub struct CredentialSources {
    /// The spec's `registry_config`. Unlike the others, it is an error for it to be missing.
    pub explicit_file: Option<PathBuf>,
    /// Docker's `config.json`.
    pub docker_config: Option<PathBuf>,
    /// Podman's `auth.json` candidates, most specific first.
    pub podman_auth_files: Vec<PathBuf>,
    /// The search path (`PATH` syntax) used to find `docker-credential-*` helpers; `None` uses
    /// this process's `PATH`. Helpers themselves run with this process's environment, so a
    /// helper that calls other tools (`gcloud`, `aws`) still finds them.
    pub helper_path: Option<OsString>,
    /// How long a helper may take (it may be unlocking a keychain).
    pub helper_timeout: Duration,
}

impl Default for CredentialSources {
    /// No files at all: anonymous access only.
    fn default() -> Self {
        Self {
            explicit_file: None,
            docker_config: None,
            podman_auth_files: Vec::new(),
            helper_path: None,
            helper_timeout: Duration::from_secs(30),
        }
    }
}

impl CredentialSources {
    /// No sources: anonymous access only.
    pub fn none() -> Self {
        Self::default()
    }

    /// The standard locations, from this process's environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// The standard locations, from the given environment lookup: `$DOCKER_CONFIG/config.json`
    /// or `$HOME/.docker/config.json`; `$REGISTRY_AUTH_FILE`,
    /// `$XDG_RUNTIME_DIR/containers/auth.json`, then `$XDG_CONFIG_HOME` (or `$HOME/.config`)
    /// `/containers/auth.json`.
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Self {
        let non_empty = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = non_empty("HOME");
        let docker_config = non_empty("DOCKER_CONFIG")
            .map(|dir| dir.join("config.json"))
            .or_else(|| home.as_ref().map(|h| h.join(".docker").join("config.json")));
        let mut podman = Vec::new();
        podman.extend(non_empty("REGISTRY_AUTH_FILE"));
        podman.extend(non_empty("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
        podman.extend(
            non_empty("XDG_CONFIG_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".config")))
                .map(|d| d.join("containers/auth.json")),
        );
        Self {
            docker_config,
            podman_auth_files: podman,
            helper_path: var("PATH"),
            ..Self::default()
        }
    }

    /// Sets the explicit file (the spec's `registry_config`), consulted first.
    pub fn with_explicit_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.explicit_file = Some(path.into());
        self
    }

    /// The files consulted, for messages ("searched: …").
    pub fn describe(&self) -> String {
        let files: Vec<String> = self
            .files()
            .map(|(p, _)| format!("`{}`", p.display()))
            .collect();
        if files.is_empty() {
            "no credential files configured".to_string()
        } else {
            files.join(", ")
        }
    }

    fn files(&self) -> impl Iterator<Item = (&Path, bool)> {
        let explicit = self.explicit_file.iter().map(|p| (p.as_path(), true));
        let others = self
            .docker_config
            .iter()
            .chain(&self.podman_auth_files)
            .map(|p| (p.as_path(), false));
        explicit.chain(others)
    }

    /// Finds the credential for `repository` on `registry` (as in [`crate::ImageReference`]).
    /// `Ok(None)` means "anonymous": no source has anything for this registry.
    pub async fn resolve(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Option<ResolvedCredential>, CredentialError> {
        let registry = normalise_registry(registry);
        for (path, required) in self.files() {
            let Some(file) = read_config(path, required).await? else {
                continue;
            };
            if let Some(found) = self.lookup(path, &file, &registry, repository).await? {
                tracing::debug!(registry, origin = %found.origin, "using registry credentials");
                return Ok(Some(found));
            }
        }
        tracing::debug!(registry, "no registry credentials found");
        Ok(None)
    }

    /// One file: `credHelpers` for this registry, then `credsStore`, then `auths` — Docker's
    /// order, because a helper configured for a registry is the user's explicit choice.
    async fn lookup(
        &self,
        path: &Path,
        file: &ConfigFile,
        registry: &str,
        repository: &str,
    ) -> Result<Option<ResolvedCredential>, CredentialError> {
        let server = helper_server_url(registry);
        let specific = file
            .cred_helpers
            .iter()
            .flatten()
            .find(|(key, _)| parse_key(key).0 == registry)
            .map(|(_, name)| name);
        if let Some(name) = specific {
            let found = self.run_helper(name, &server, path).await?;
            if found.is_some() {
                return Ok(found);
            }
        } else if let Some(name) = file.creds_store.as_deref().filter(|n| !n.is_empty()) {
            // A default store that is not installed (a config copied from a desktop into CI)
            // must not hide the plain `auths` entries, so it only warns.
            match self.run_helper(name, &server, path).await {
                Ok(Some(found)) => return Ok(Some(found)),
                Ok(None) => {}
                Err(CredentialError::HelperNotFound { program, .. }) => {
                    tracing::warn!(program, config = %path.display(), "credsStore helper not found; using `auths` only");
                }
                Err(other) => return Err(other),
            }
        }
        find_auth_entry(path, file, registry, repository)
    }

    async fn run_helper(
        &self,
        name: &str,
        server: &str,
        config: &Path,
    ) -> Result<Option<ResolvedCredential>, CredentialError> {
        let path_var = self
            .helper_path
            .clone()
            .or_else(|| std::env::var_os("PATH"));
        let found = helper::get(
            name,
            server,
            config,
            path_var.as_deref(),
            self.helper_timeout,
        )
        .await?;
        Ok(found.map(|(credential, program)| ResolvedCredential {
            credential,
            origin: CredentialOrigin::Helper {
                program,
                config: config.to_path_buf(),
            },
        }))
    }
}

/// The server URL helpers are asked about: what `docker login` stored the entry under.
fn helper_server_url(registry: &str) -> String {
    if registry == DEFAULT_REGISTRY {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

/// The subset of Docker's `config.json` (and Podman's `auth.json`) that holds credentials.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    auths: Option<BTreeMap<String, AuthEntry>>,
    #[serde(rename = "credHelpers")]
    cred_helpers: Option<BTreeMap<String, String>>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

async fn read_config(path: &Path, required: bool) -> Result<Option<ConfigFile>, CredentialError> {
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| CredentialError::Parse {
            path: path.to_path_buf(),
            problem: match e.classify() {
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "unexpected value",
                serde_json::error::Category::Eof => "unexpected end of file",
                serde_json::error::Category::Io => "read error",
            },
            line: e.line(),
            column: e.column(),
        })
}

/// Normalises an `auths`/`credHelpers` key to `(host, namespace)`: `https://host/v1/`,
/// `http://host`, `host` all give `(host, None)`; Podman's `host/org/repo` keys give
/// `(host, Some("org/repo"))`, scoping the credential to that namespace.
pub(crate) fn parse_key(key: &str) -> (String, Option<String>) {
    let key = key.trim();
    let lower = key.to_ascii_lowercase();
    let key = if lower.starts_with("https://") {
        &key["https://".len()..]
    } else if lower.starts_with("http://") {
        &key["http://".len()..]
    } else {
        key
    };
    let (host, path) = key.split_once('/').unwrap_or((key, ""));
    let path = path.trim_matches('/');
    let namespace = match path {
        "" | "v1" | "v2" => None,
        p => Some(p.to_string()),
    };
    (normalise_registry(host), namespace)
}

/// The most specific `auths` entry for the repository that holds a credential.
fn find_auth_entry(
    path: &Path,
    file: &ConfigFile,
    registry: &str,
    repository: &str,
) -> Result<Option<ResolvedCredential>, CredentialError> {
    let mut candidates: Vec<(usize, &String, &AuthEntry)> = file
        .auths
        .iter()
        .flatten()
        .filter_map(|(key, entry)| {
            let (host, namespace) = parse_key(key);
            if host != registry {
                return None;
            }
            match namespace {
                None => Some((0, key, entry)),
                Some(ns) if repository == ns || repository.starts_with(&format!("{ns}/")) => {
                    Some((ns.len(), key, entry))
                }
                Some(_) => None,
            }
        })
        .collect();
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (_, key, entry) in candidates {
        if let Some(credential) = entry_credential(path, key, entry)? {
            return Ok(Some(ResolvedCredential {
                credential,
                origin: CredentialOrigin::File(path.to_path_buf()),
            }));
        }
    }
    Ok(None)
}

fn entry_credential(
    path: &Path,
    key: &str,
    entry: &AuthEntry,
) -> Result<Option<Credential>, CredentialError> {
    let present = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(token) = present(&entry.identitytoken) {
        return Ok(Some(Credential::IdentityToken(Secret::new(token))));
    }
    if let Some(token) = present(&entry.registrytoken) {
        return Ok(Some(Credential::RegistryToken(Secret::new(token))));
    }
    if let Some(auth) = present(&entry.auth) {
        let invalid = |problem| CredentialError::InvalidEntry {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem,
        };
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let decoded = engine
            .decode(auth.trim())
            .map_err(|_| invalid("`auth` is not valid base64"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| invalid("`auth` does not decode to text"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| invalid("`auth` must be base64 of `username:password`"))?;
        return Ok(Some(Credential::Basic {
            username: username.to_string(),
            password: Secret::new(password.to_string()),
        }));
    }
    match (present(&entry.username), present(&entry.password)) {
        (Some(username), Some(password)) => Ok(Some(Credential::Basic {
            username,
            password: Secret::new(password),
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_normalisation_table() {
        let cases = [
            ("https://index.docker.io/v1/", "docker.io", None),
            ("index.docker.io", "docker.io", None),
            ("registry-1.docker.io", "docker.io", None),
            ("docker.io", "docker.io", None),
            ("https://ghcr.io", "ghcr.io", None),
            ("HTTP://GHCR.IO/", "ghcr.io", None),
            ("ghcr.io/v2/", "ghcr.io", None),
            ("127.0.0.1:5000", "127.0.0.1:5000", None),
            ("http://localhost:5000/v1/", "localhost:5000", None),
            ("quay.io/org/repo", "quay.io", Some("org/repo")),
            (" quay.io/org/ ", "quay.io", Some("org")),
        ];
        for (key, host, ns) in cases {
            assert_eq!(
                parse_key(key),
                (host.to_string(), ns.map(str::to_string)),
                "{key}"
            );
        }
    }

    #[test]
    fn secret_is_redacted() {
        let c = Credential::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{c:?} {c}").contains("hunter2"));
        assert_eq!(Secret::new("x").expose(), "x");
    }
}
