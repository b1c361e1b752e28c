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
//! workers:                           # one engine each; default: one, discovered
//!   - {name: docker, endpoint: unix:///var/run/docker.sock, slots: 1}
//!   - name: build-2                  # an engine on another machine, over TLS (dockerd
//!     endpoint: tcp://build-2.internal:2376    # --tlsverify): its CA, our client pair
//!     tls: {ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}
//! concurrency: 2                     # builds at once over all workers (default: all slots)
//! max_running_per_project: 1         # optional: builds of one project at once (fair share)
//! keep_alive_seconds: 10            # between keep-alive comments on log streams
//! cancel_grace_seconds: 20          # a cancelled builder's time to clean up
//! metrics_token_env: METRICS_TOKEN  # optional: `GET /metrics` then needs this bearer token
//! log_format: json                   # `text` (default) or `json` (one object per line)
//! limits:
//!   max_blob_bytes: 536870912        # one uploaded file
//!   max_request_bytes: 8388608       # a JSON request (the build manifest)
//!   requests_per_minute: 6000        # per token (one upload = one request); 429 with
//!   burst: 1000                      # Retry-After beyond it, which the client waits out
//! connections:                       # slow or idle clients (see `connections.rs`)
//!   header_read_seconds: 20          # a request's headers must arrive within this
//!   body_idle_seconds: 30            # a body (upload) that sends nothing this long is aborted
//!   max: 1024                        # open connections; more are answered 503 and closed
//!   max_per_ip: 256                  # open connections from one address
//! gc:                                # garbage collection (see `gc.rs`); 0 switches a part off
//!   interval_seconds: 3600           # between runs (0: only `imagespec serve --gc-once`)
//!   keep_builds_days: 30             # finished builds and their logs, by age
//!   keep_blobs_days: 30              # uploaded files not used for this long
//!   max_blob_bytes: 107374182400     # optional: beyond it, least recently used blobs go
//!   max_log_bytes: 1073741824        # optional: beyond it, the oldest finished builds' logs go
//! ```
//!
//! Parsed with `marked-yaml`, so errors carry a line and column; unknown keys are errors, so a
//! typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use imagespec_builder_local::TlsFiles;
use imagespec_core::config::Secret;
use marked_yaml::Spanned;
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
    /// A value at a known line of the file.
    #[error("{path}:{line}: {message}")]
    InvalidAt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl ConfigError {
    /// A refusal of the value at `span` (its line, where the parser knows it).
    pub(crate) fn at(path: &Path, span: &marked_yaml::Span, message: String) -> ConfigError {
        match span.start() {
            Some(start) => ConfigError::InvalidAt {
                path: path.to_path_buf(),
                line: start.line(),
                message,
            },
            None => ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            },
        }
    }
}

/// A whole number of at least `min`, else a refusal naming `field` and its line. Numbers of
/// the newer sections are read as text and parsed here, so that a wrong one is reported with
/// its key and line (the YAML layer reports only "invalid digit").
pub(crate) fn spanned_at_least(
    path: &Path,
    value: &marked_yaml::Spanned<String>,
    min: u64,
    field: &str,
) -> Result<u64, ConfigError> {
    let refuse = |message: String| Err(ConfigError::at(path, value.span(), message));
    match value.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        Ok(n) => refuse(format!("`{field}` must be at least {min}, not {n}")),
        Err(_) => refuse(format!(
            "`{field}`: `{}` is not a whole number; write e.g. {}",
            value.as_str(),
            min.max(1)
        )),
    }
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

/// An engine that runs builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Shown in build status; defaults to `worker-<n>`.
    pub name: Option<String>,
    /// `unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375`, ...; none: discover one.
    pub endpoint: Option<String>,
    /// Builds this engine runs at once.
    pub slots: usize,
    /// For a `tcp://` engine with `--tlsverify`: the CA that signed its certificate and the
    /// service's client certificate and key (read and checked at start).
    pub tls: Option<TlsFiles>,
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
    /// Most builds of one project running at once (`None`: no cap beyond fair share).
    pub max_running_per_project: Option<usize>,
    /// Timeouts and caps for client connections.
    pub connections: crate::connections::ConnectionLimits,
    /// Garbage collection.
    pub gc: crate::gc::GcConfig,
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
            max_running_per_project: None,
            connections: Default::default(),
            gc: Default::default(),
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
        let invalid_at =
            |span: &marked_yaml::Span, message: String| ConfigError::at(path, span, message);
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
                return Err(invalid_at(
                    t.project.span(),
                    format!(
                        "`tokens[{i}].project`: `{}` is not a valid project name: it names the project's namespace in the registry, so it is one registry path component (lower-case letters and digits, with single `.`, `-` runs, `_` or `__` between them; e.g. `team-a`, `ml.research`)",
                        *t.project
                    ),
                ));
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
                project: t.project.to_string(),
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
        if let Some(registry) = &raw.registry {
            crate::naming::check_namespaces(registry, &tokens, &raw.allowed_registries)
                .map_err(|e| invalid(format!("`allowed_registries`: {e}")))?;
        }
        let mut workers = Vec::new();
        for (i, w) in raw.workers.into_iter().enumerate() {
            workers.push(w.check(i, base, &invalid_at)?);
        }
        if workers.is_empty() {
            workers.push(WorkerConfig {
                name: None,
                endpoint: None,
                slots: 1,
                tls: None,
            });
        }
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
        let max_running_per_project = raw
            .max_running_per_project
            .map(|v| spanned_at_least(path, &v, 1, "max_running_per_project"))
            .transpose()?
            .map(|v| v as usize);
        let connections = raw.connections.check(path)?;
        let gc = raw.gc.check(path)?;
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
            max_running_per_project,
            connections,
            gc,
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

/// A project name is one component of a registry path (its namespace is
/// `<registry>/<project>`, [`crate::naming::namespace`]) and a directory name: the OCI
/// grammar for a path component (which also keeps `.`, `..` and trailing separators out),
/// at most 64 bytes.
pub fn is_project_name(s: &str) -> bool {
    s.len() <= 64 && imagespec_core::reference::is_path_component(s)
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
    workers: Vec<RawWorker>,
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
    #[serde(default)]
    max_running_per_project: Option<marked_yaml::Spanned<String>>,
    #[serde(default)]
    connections: crate::connections::RawConnections,
    #[serde(default)]
    gc: crate::gc::RawGc,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    endpoint: Option<Spanned<String>>,
    #[serde(default = "one")]
    slots: usize,
    #[serde(default)]
    tls: Option<Spanned<RawTls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca: Spanned<PathBuf>,
    cert: Spanned<PathBuf>,
    key: Spanned<PathBuf>,
}

impl RawWorker {
    /// The worker as the service uses it: the endpoint one the engine client accepts, TLS
    /// only with a `tcp://` endpoint, its three files readable and a usable client identity
    /// (relative paths resolve against the configuration file's directory).
    fn check(
        self,
        i: usize,
        base: &Path,
        invalid_at: &dyn Fn(&marked_yaml::Span, String) -> ConfigError,
    ) -> Result<WorkerConfig, ConfigError> {
        if let Some(endpoint) = &self.endpoint {
            let refuse = |why: String| {
                invalid_at(
                    endpoint.span(),
                    format!("`workers[{i}].endpoint`: `{}` {why}", endpoint.as_str()),
                )
            };
            if !(endpoint.starts_with("unix://") || endpoint.starts_with("tcp://")) {
                return Err(refuse(
                    "is not `unix:///path` or `tcp://host:port` (an engine over TLS is `tcp://host:2376` with `tls: {ca, cert, key}`)".into(),
                ));
            }
            imagespec_builder_local::Endpoint::parse(endpoint)
                .map_err(|e| refuse(format!("is not an engine endpoint: {e}")))?;
        }
        let tls = match &self.tls {
            None => None,
            Some(raw) => {
                if !self
                    .endpoint
                    .as_ref()
                    .is_some_and(|e| e.starts_with("tcp://"))
                {
                    return Err(invalid_at(
                        raw.span(),
                        format!(
                            "`workers[{i}].tls`: TLS needs a `tcp://host:2376` endpoint (a unix socket is local and speaks no TLS); set `endpoint`"
                        ),
                    ));
                }
                for (field, file) in [("ca", &raw.ca), ("cert", &raw.cert), ("key", &raw.key)] {
                    let resolved = base.join(file.as_path());
                    if let Err(e) = std::fs::File::open(&resolved) {
                        return Err(invalid_at(
                            file.span(),
                            format!(
                                "`workers[{i}].tls.{field}`: cannot read {}: {e}",
                                resolved.display()
                            ),
                        ));
                    }
                }
                let files = TlsFiles {
                    ca: base.join(raw.ca.as_path()),
                    cert: base.join(raw.cert.as_path()),
                    key: base.join(raw.key.as_path()),
                };
                files
                    .client_config()
                    .map_err(|e| invalid_at(raw.span(), format!("`workers[{i}].tls`: {e}")))?;
                Some(files)
            }
        };
        Ok(WorkerConfig {
            name: self.name,
            endpoint: self.endpoint.map(|e| e.to_string()),
            slots: self.slots,
            tls,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    project: Spanned<String>,
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
    fn connections_gc_and_fair_share_sections() {
        let p = Path::new("s.yaml");
        let none = |_: &str| None;
        let text = "max_running_per_project: 2\nconnections:\n  header_read_seconds: 2\n  body_idle_seconds: 3\n  max: 10\n  max_per_ip: 4\ngc:\n  interval_seconds: 0\n  keep_builds_days: 7\n  keep_blobs_days: 0\n  max_blob_bytes: 2097152\n";
        let c = ServiceConfig::parse(text, p, none).expect("valid");
        assert_eq!(c.max_running_per_project, Some(2));
        assert_eq!(
            c.connections,
            crate::connections::ConnectionLimits {
                header_read: std::time::Duration::from_secs(2),
                body_idle: std::time::Duration::from_secs(3),
                max: 10,
                max_per_ip: 4,
            }
        );
        assert_eq!(c.gc.interval, None, "0 switches the periodic run off");
        assert_eq!(
            c.gc.keep_builds,
            Some(std::time::Duration::from_secs(7 * 86400))
        );
        assert_eq!(c.gc.keep_blobs, None);
        assert_eq!(c.gc.max_blob_bytes, Some(2097152));
        assert_eq!(c.gc.max_log_bytes, None);
        let d = ServiceConfig::parse("{}\n", p, none).expect("defaults");
        assert_eq!(d.gc, crate::gc::GcConfig::default());
        assert_eq!(
            d.connections,
            crate::connections::ConnectionLimits::default()
        );
        // Refusals name the file, the line and the key.
        for (text, needle) in [
            (
                "listen: 127.0.0.1:1\nconnections:\n  header_read_seconds: 0\n",
                "s.yaml:3: `connections.header_read_seconds` must be at least 1",
            ),
            (
                "gc:\n  max_log_bytes: 5\n",
                "s.yaml:2: `gc.max_log_bytes` must be at least 1048576",
            ),
            (
                "connections: {max: 2, max_per_ip: 3}\n",
                "s.yaml:1: `connections.max_per_ip` (3) is more than",
            ),
            (
                "max_running_per_project: 0\n",
                "s.yaml:1: `max_running_per_project`",
            ),
            ("gc:\n  intervall_seconds: 1\n", "intervall_seconds"),
            (
                "connections:\n  max: -1\n",
                "s.yaml:2: `connections.max`: `-1` is not a whole number",
            ),
        ] {
            let err = ServiceConfig::parse(text, p, none)
                .expect_err(text)
                .to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn project_names_that_are_not_one_registry_path_component_are_refused_with_the_line() {
        let p = Path::new("s.yaml");
        for name in ["a..b", "a_", "team.", "a___b", "-a", "a/b", "A"] {
            let text = format!(
                "registry: 127.0.0.1:5000/service\ntokens:\n  - {{project: ok, token: aaaaaaaaaaaaaaaaaaaa}}\n  - {{project: '{name}', token: bbbbbbbbbbbbbbbbbbbb}}\n"
            );
            let err = ServiceConfig::parse(&text, p, |_| None)
                .expect_err(name)
                .to_string();
            assert!(
                err.starts_with("s.yaml:4: `tokens[1].project`") && err.contains("path component"),
                "{name}: {err}"
            );
        }
        for name in ["ml.research", "team_a", "a__b", "a--b", "7"] {
            let text = format!("tokens:\n  - {{project: '{name}', token: aaaaaaaaaaaaaaaaaaaa}}\n");
            let c = ServiceConfig::parse(&text, p, |_| None).expect(name);
            assert_eq!(
                crate::naming::Scope::of(&c.with_registry("r.io/svc"), name).namespace,
                Some(format!("r.io/svc/{name}"))
            );
        }
    }

    #[test]
    fn an_allowed_registry_inside_another_projects_namespace_is_refused() {
        let p = Path::new("s.yaml");
        let tokens = "tokens:\n  - {project: a, token: aaaaaaaaaaaaaaaaaaaa}\n  - {project: b, token: bbbbbbbbbbbbbbbbbbbb}\nregistry: 127.0.0.1:5000/service\n";
        for prefix in [
            "127.0.0.1:5000/service/b",
            "127.0.0.1:5000/service",
            "127.0.0.1:5000/service/b/sub",
        ] {
            let text = format!("{tokens}allowed_registries:\n  a: ['{prefix}']\n");
            let err = ServiceConfig::parse(&text, p, |_| None)
                .expect_err(prefix)
                .to_string();
            assert!(err.contains("project `b`'s namespace"), "{prefix}: {err}");
        }
        let text = format!(
            "{tokens}allowed_registries:\n  a: ['127.0.0.1:5000/service/a', 'registry.example.com/a']\n"
        );
        ServiceConfig::parse(&text, p, |_| None).expect("own namespace and elsewhere");
    }

    #[test]
    fn worker_tls_needs_tcp_and_readable_files_named_with_their_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("service.yaml");
        let none = |_: &str| None;
        let err = ServiceConfig::parse(
            "workers:\n  - endpoint: tcp://10.0.0.2:2376\n    tls:\n      ca: certs/ca.pem\n      cert: certs/cert.pem\n      key: certs/key.pem\n",
            &file,
            none,
        )
        .expect_err("missing files")
        .to_string();
        let ca = dir.path().join("certs/ca.pem").display().to_string();
        assert!(
            err.starts_with(&format!(
                "{}:4: `workers[0].tls.ca`: cannot read {ca}",
                file.display()
            )),
            "{err}"
        );
        std::fs::create_dir_all(dir.path().join("certs")).expect("mkdir");
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join("certs").join(f), "junk").expect("write");
        }
        let err = ServiceConfig::parse(
            "workers:\n  - endpoint: tcp://10.0.0.2:2376\n    tls: {ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}\n",
            &file,
            none,
        )
        .expect_err("not certificates")
        .to_string();
        assert!(
            err.contains(":3: `workers[0].tls`")
                && err.contains(&ca)
                && err.contains("no PEM certificate"),
            "{err}"
        );
        let err = ServiceConfig::parse(
            "workers:\n  - endpoint: unix:///var/run/docker.sock\n    tls: {ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}\n",
            &file,
            none,
        )
        .expect_err("tls on a socket")
        .to_string();
        assert!(
            err.contains(":3: `workers[0].tls`: TLS needs a `tcp://host:2376` endpoint"),
            "{err}"
        );
        let err = ServiceConfig::parse(
            "workers:\n  - {endpoint: 'https://build:2376'}\n",
            &file,
            none,
        )
        .expect_err("https")
        .to_string();
        assert!(
            err.contains(":2: `workers[0].endpoint`") && err.contains("tls: {ca, cert, key}"),
            "{err}"
        );
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
