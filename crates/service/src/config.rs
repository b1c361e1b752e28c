//! The service's configuration file (`imagespec serve --config service.yaml`).
//!
//! ```yaml
//! listen: 127.0.0.1:8080             # loopback only unless `allow_non_loopback: true`
//! tls_terminated: true               # a TLS proxy is in front: build secrets are accepted on a
//!                                    # non-loopback `listen` (refused otherwise)
//! data_dir: ./service-data           # SQLite database, blobs, workspaces (relative to this file)
//! registry: 127.0.0.1:5000/service   # project P's images without a registry go to <registry>/P/
//! registry_credentials: auth.json    # a Docker config.json (`auths`): the only credentials used
//! allowed_registries:                # optional: where else a project may push (and check)
//!   team-a: [registry.example.com/team-a]
//! base_images:                       # what builds may pull (FROM, COPY --from) besides the
//!   - debian:bookworm-slim           # project's own images; a trailing `*` is a prefix
//!   - "localhost/imagespec/*"        # (default: imagespec's own default images)
//! tokens:
//!   - {project: team-a, token_env: TEAM_A_TOKEN}   # or `token: ...` inline
//!   - {project: team-b, token: "..."}
//! workers:                           # one local engine each; default: one, discovered
//!   - {name: docker, endpoint: unix:///var/run/docker.sock, slots: 1}
//! concurrency: 2                     # builds at once over all workers (default: all slots)
//! keep_alive_seconds: 10            # between keep-alive comments on log streams
//! cancel_grace_seconds: 20          # a cancelled builder's time to clean up
//! metrics_token_env: METRICS_TOKEN  # optional: `GET /metrics` then needs this bearer token
//! log_format: json                   # `text` (default) or `json` (one object per line)
//! limits:
//!   max_blob_bytes: 536870912        # one uploaded file
//!   max_request_bytes: 8388608       # a JSON request (the build manifest)
//!   requests_per_minute: 6000        # per token (one upload = one request); 429 with
//!   burst: 1000                      # Retry-After beyond it, which the client waits out
//! ```
//!
//! Parsed with `marked-yaml`, so errors carry a line and column; unknown keys are errors, so a
//! typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use imagespec_core::config::Secret;
use serde::Deserialize;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// One token and the project it acts for.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub project: String,
    pub token: Secret,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("project", &self.project)
            .field("token", &self.token)
            .finish()
    }
}

/// A local engine that runs builds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Shown in build status; defaults to `worker-<n>`.
    #[serde(default)]
    pub name: Option<String>,
    /// `unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375`, ...; none: discover one.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Builds this engine runs at once.
    #[serde(default = "one")]
    pub slots: usize,
}

fn one() -> usize {
    1
}

/// Request and upload limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_blob_bytes: u64,
    pub max_request_bytes: usize,
    pub requests_per_minute: u32,
    pub burst: u32,
    /// Files one build may reference.
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blob_bytes: 512 * 1024 * 1024,
            max_request_bytes: 8 * 1024 * 1024,
            requests_per_minute: 6000,
            burst: 1000,
            max_files: 50_000,
        }
    }
}

/// The whole configuration, paths resolved.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub registry: Option<String>,
    pub registry_credentials: Option<PathBuf>,
    /// Per project: registries or namespaces (`host[:port][/path]`) it may push to besides its
    /// namespace in `registry`.
    pub allowed_registries: BTreeMap<String, Vec<String>>,
    /// Images builds may pull besides the project's own: exact references or `prefix*`.
    pub base_images: Vec<String>,
    pub tokens: Vec<TokenEntry>,
    pub workers: Vec<WorkerConfig>,
    pub concurrency: Option<usize>,
    pub limits: Limits,
    /// Seconds between keep-alive comments on a log stream.
    pub keep_alive_seconds: u64,
    /// Seconds a cancelled builder gets to stop and clean up before it is abandoned.
    pub cancel_grace_seconds: u64,
    /// The bearer token `GET /metrics` needs; `None`: metrics are open to whoever reaches the
    /// listen address (they name projects and counts, never tokens or images).
    pub metrics_token: Option<Secret>,
    /// How the service's log lines look (`--log-format` overrides it).
    pub log_format: crate::logging::LogFormat,
    /// The operator says a TLS proxy terminates every connection in front of `listen`; without
    /// it, build secrets are refused unless `listen` is a loopback address (the service cannot
    /// see a proxy).
    pub tls_terminated: bool,
}

impl ServiceConfig {
    /// Whether build secrets may reach this service: only when they cannot have crossed a
    /// network unencrypted (a loopback listener, or TLS in front as the operator states).
    pub fn accepts_secrets(&self) -> bool {
        self.listen.ip().is_loopback() || self.tls_terminated
    }

    /// A configuration for tests and embedders: loopback on a free port, no tokens.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServiceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            registry: None,
            registry_credentials: None,
            allowed_registries: BTreeMap::new(),
            base_images: default_base_images(),
            tokens: Vec::new(),
            workers: Vec::new(),
            concurrency: None,
            limits: Limits::default(),
            keep_alive_seconds: 10,
            cancel_grace_seconds: 20,
            metrics_token: None,
            log_format: crate::logging::LogFormat::Text,
            tls_terminated: false,
        }
    }

    #[must_use]
    pub fn with_token(mut self, project: &str, token: &str) -> Self {
        self.tokens.push(TokenEntry {
            project: project.to_string(),
            token: Secret::new(token),
        });
        self
    }

    /// The credentials pushes and existence checks use: the configured file, and nothing else
    /// (never a home directory's `~/.docker/config.json`, which is the operator's, not the
    /// service's).
    pub fn push_credentials(&self) -> imagespec_registry::CredentialSources {
        match &self.registry_credentials {
            Some(file) => imagespec_registry::CredentialSources::none().with_explicit_file(file),
            None => imagespec_registry::CredentialSources::none(),
        }
    }

    #[must_use]
    pub fn with_registry(mut self, registry: &str) -> Self {
        self.registry = Some(registry.to_string());
        self
    }

    /// Reads and checks a configuration file; relative paths resolve against its directory.
    pub fn load(path: &Path) -> Result<ServiceConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, |k| std::env::var(k).ok())
    }

    /// Parses configuration text; `path` is used in messages and to resolve relative paths,
    /// `env` to read `token_env` variables.
    pub fn parse(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServiceConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
        let raw: RawConfig = marked_yaml::from_yaml_with_options(0, text, options)
            .map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let listen: SocketAddr = raw
            .listen
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .map_err(|e| invalid(format!("`listen`: {e}; write e.g. 127.0.0.1:8080")))?;
        if !listen.ip().is_loopback() && !raw.allow_non_loopback {
            return Err(invalid(format!(
                "`listen`: {listen} is not a loopback address; set `allow_non_loopback: true` to serve other machines (put TLS in front)"
            )));
        }
        let mut tokens = Vec::new();
        for (i, t) in raw.tokens.into_iter().enumerate() {
            if !is_project_name(&t.project) {
                return Err(invalid(format!(
                    "`tokens[{i}].project`: `{}` is not a valid project name (lower-case letters, digits, `-`, `_`, `.`)",
                    t.project
                )));
            }
            let token = match (t.token, t.token_env) {
                (Some(token), None) => token,
                (None, Some(var)) => env(&var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    invalid(format!(
                        "`tokens[{i}].token_env`: the environment variable {var} is not set"
                    ))
                })?,
                _ => {
                    return Err(invalid(format!(
                        "`tokens[{i}]`: give exactly one of `token` and `token_env`"
                    )));
                }
            };
            if token.len() < 16 {
                return Err(invalid(format!(
                    "`tokens[{i}]`: a token needs at least 16 characters"
                )));
            }
            if let Some(other) = tokens
                .iter()
                .find(|e: &&TokenEntry| e.token.expose() == token.as_str())
            {
                return Err(invalid(format!(
                    "`tokens[{i}]`: the same token is already given to project `{}`; every token belongs to one project",
                    other.project
                )));
            }
            tokens.push(TokenEntry {
                project: t.project,
                token: Secret::new(token),
            });
        }
        if let Some(registry) = &raw.registry {
            imagespec_core::reference::check_registry(registry)
                .map_err(|e| invalid(format!("`registry`: {e}")))?;
        }
        for (project, prefixes) in &raw.allowed_registries {
            if !tokens.iter().any(|t| &t.project == project) {
                return Err(invalid(format!(
                    "`allowed_registries.{project}`: no token belongs to project `{project}`"
                )));
            }
            for p in prefixes {
                imagespec_core::reference::check_registry(p)
                    .map_err(|e| invalid(format!("`allowed_registries.{project}`: {e}")))?;
            }
        }
        let registry_credentials = raw.registry_credentials.map(|p| base.join(p));
        if let Some(file) = &registry_credentials
            && !file.is_file()
        {
            return Err(invalid(format!(
                "`registry_credentials`: {} is not a file; give the Docker config.json the service pushes with",
                file.display()
            )));
        }
        for (i, w) in raw.workers.iter().enumerate() {
            if let Some(endpoint) = &w.endpoint
                && !(endpoint.starts_with("unix://") || endpoint.starts_with("tcp://"))
            {
                return Err(invalid(format!(
                    "`workers[{i}].endpoint`: `{endpoint}` is not `unix:///path` or `tcp://host:port` (TLS workers are not supported)"
                )));
            }
        }
        let workers = if raw.workers.is_empty() {
            vec![WorkerConfig {
                name: None,
                endpoint: None,
                slots: 1,
            }]
        } else {
            raw.workers
        };
        if workers.iter().any(|w| w.slots == 0) || raw.concurrency == Some(0) {
            return Err(invalid(
                "`slots` and `concurrency` must be at least 1".into(),
            ));
        }
        let metrics_token = match (raw.metrics_token, raw.metrics_token_env) {
            (None, None) => None,
            (Some(t), None) => Some(t),
            (None, Some(var)) => Some(env(&var).filter(|v| !v.is_empty()).ok_or_else(|| {
                invalid(format!(
                    "`metrics_token_env`: the environment variable {var} is not set"
                ))
            })?),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give at most one of `metrics_token` and `metrics_token_env`".into(),
                ));
            }
        };
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(invalid(
                "`metrics_token`: a token needs at least 16 characters".into(),
            ));
        }
        if let Some(m) = &metrics_token
            && tokens.iter().any(|t| t.token.expose() == m.as_str())
        {
            return Err(invalid(
                "`metrics_token`: it is also a project's token; give the metrics scraper its own"
                    .into(),
            ));
        }
        let log_format = match raw.log_format.as_deref() {
            None => crate::logging::LogFormat::default(),
            Some(f) => f
                .parse()
                .map_err(|e: String| invalid(format!("`log_format`: {e}")))?,
        };
        Ok(ServiceConfig {
            listen,
            data_dir: base.join(
                raw.data_dir
                    .unwrap_or_else(|| PathBuf::from("imagespec-service-data")),
            ),
            registry: raw.registry,
            registry_credentials,
            allowed_registries: raw.allowed_registries,
            base_images: raw.base_images.unwrap_or_else(default_base_images),
            tokens,
            workers,
            concurrency: raw.concurrency,
            limits: raw.limits,
            keep_alive_seconds: raw.keep_alive_seconds.unwrap_or(10).max(1),
            cancel_grace_seconds: raw.cancel_grace_seconds.unwrap_or(20),
            metrics_token: metrics_token.map(Secret::new),
            log_format,
            tls_terminated: raw.tls_terminated,
        })
    }
}

/// The images imagespec's recipe pulls when a spec names none: its default base and helpers.
pub fn default_base_images() -> Vec<String> {
    use imagespec_core::plan::{DEFAULT_BASE_IMAGE, python};
    [
        DEFAULT_BASE_IMAGE,
        python::DEFAULT_UV_IMAGE,
        python::DEFAULT_MICROMAMBA_IMAGE,
    ]
    .map(str::to_string)
    .to_vec()
}

/// Project names become directory names: keep them plain.
pub fn is_project_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    allow_non_loopback: bool,
    #[serde(default)]
    tls_terminated: bool,
    #[serde(default)]
    data_dir: Option<PathBuf>,
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    registry_credentials: Option<PathBuf>,
    #[serde(default)]
    allowed_registries: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    base_images: Option<Vec<String>>,
    #[serde(default)]
    tokens: Vec<RawToken>,
    #[serde(default)]
    workers: Vec<WorkerConfig>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    keep_alive_seconds: Option<u64>,
    #[serde(default)]
    cancel_grace_seconds: Option<u64>,
    #[serde(default)]
    metrics_token: Option<String>,
    #[serde(default)]
    metrics_token_env: Option<String>,
    #[serde(default)]
    log_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    project: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_env: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "listen: 127.0.0.1:0\ndata_dir: data\nregistry: 127.0.0.1:5000/service\nregistry_credentials: auth.json\ntokens:\n  - {project: team-a, token: aaaaaaaaaaaaaaaaaaaa}\n  - {project: team-b, token_env: B_TOKEN}\nworkers:\n  - {name: docker, endpoint: 'unix:///var/run/docker.sock', slots: 2}\nconcurrency: 1\nlimits:\n  max_blob_bytes: 1024\n  requests_per_minute: 60\n";

    #[test]
    fn parses_every_key_and_hides_tokens() {
        let env = |k: &str| (k == "B_TOKEN").then(|| "bbbbbbbbbbbbbbbbbbbb".to_string());
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("auth.json"), "{}").expect("write");
        let c = ServiceConfig::parse(FULL, &dir.path().join("service.yaml"), env).expect("valid");
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(c.registry_credentials, Some(dir.path().join("auth.json")));
        assert_eq!(c.tokens[1].project, "team-b");
        assert_eq!(c.tokens[1].token.expose(), "bbbbbbbbbbbbbbbbbbbb");
        assert_eq!(c.workers[0].slots, 2);
        assert_eq!(c.limits.max_blob_bytes, 1024);
        assert_eq!(c.limits.burst, Limits::default().burst);
        assert!(!format!("{c:?}").contains("aaaaaaaa"));
    }

    #[test]
    fn refuses_what_would_be_a_silent_mistake() {
        let p = Path::new("s.yaml");
        let none = |_: &str| None;
        for (text, needle) in [
            ("listen: 0.0.0.0:80\n", "loopback"),
            ("listne: 127.0.0.1:1\n", "listne"),
            ("tokens:\n  - {project: a, token_env: NOPE}\n", "NOPE"),
            (
                "tokens:\n  - {project: Bad/Name, token: aaaaaaaaaaaaaaaaaaaa}\n",
                "project name",
            ),
            ("tokens:\n  - {project: a, token: short}\n", "16"),
            ("registry: 'http://x'\n", "registry"),
        ] {
            let err = ServiceConfig::parse(text, p, none)
                .expect_err(text)
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        for (text, needle) in [
            ("metrics_token: short\n", "16"),
            ("metrics_token_env: NOPE\n", "NOPE"),
            (
                "tokens:\n  - {project: a, token: aaaaaaaaaaaaaaaaaaaa}\nmetrics_token: aaaaaaaaaaaaaaaaaaaa\n",
                "project's token",
            ),
            ("log_format: xml\n", "log_format"),
        ] {
            let err = ServiceConfig::parse(text, p, none)
                .expect_err(text)
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let env = |k: &str| (k == "M").then(|| "mmmmmmmmmmmmmmmmmmmm".to_string());
        let c = ServiceConfig::parse("metrics_token_env: M\nlog_format: json\n", p, env)
            .expect("metrics and logs");
        assert_eq!(
            c.metrics_token.as_ref().map(Secret::expose),
            Some("mmmmmmmmmmmmmmmmmmmm")
        );
        assert_eq!(c.log_format, crate::logging::LogFormat::Json);
        let c = ServiceConfig::parse("{}\n", p, none).expect("defaults");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.workers.len(), 1);
    }

    #[test]
    fn secrets_need_a_loopback_listener_or_tls_in_front() {
        let parse = |text: &str| {
            ServiceConfig::parse(text, Path::new("/nowhere/service.yaml"), |_| None).expect(text)
        };
        assert!(parse("listen: 127.0.0.1:8080\n").accepts_secrets());
        let open = "listen: 0.0.0.0:8080\nallow_non_loopback: true\n";
        assert!(!parse(open).accepts_secrets());
        assert!(parse(&format!("{open}tls_terminated: true\n")).accepts_secrets());
    }
}
