//! Finding a container engine: which sockets to try, in which order, and which engine answered.
//!
//! The order follows what users already configure for their tools ([`candidates`]): an
//! explicit endpoint (the `--engine` flag or the config file's `engine`) wins outright;
//! otherwise `DOCKER_HOST` or the current Docker context ([`crate::docker_context`]), and
//! `CONTAINER_HOST` (Podman's variable). An engine the user named is used or the build fails
//! (kind `Unavailable`, exit 4) saying what was tried and what answered; the well-known sockets
//! of Docker, rootful Podman and rootless Podman are tried only when nothing is named. Each
//! candidate is pinged, and `/version` says whether it is Docker or Podman (Podman lists a
//! `Podman Engine` component), because the two differ in how builds get secrets and which API
//! carries them.
//!
//! A `tcp://` engine speaks TLS ([`crate::tls`]) when the builder was given certificates (a
//! build service's worker `tls`) or, as for the docker CLI, when `DOCKER_TLS_VERIFY` is set
//! (files in `DOCKER_CERT_PATH`). TLS is then required: there is no fallback to plain TCP.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;

use crate::docker_context;
use crate::engine_http::EngineHttp;
use crate::error::LocalError;
use crate::tls::TlsFiles;

/// How long one candidate may take to answer `/_ping`: whether anything listens at all. A
/// hung engine (or something else listening there) fails discovery after this long.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an engine that answered `/_ping` may take to answer `/version`. Longer: a busy
/// Podman answers it only once its image store is free, which can take a while when it
/// commits layers for several builds.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Timeout of the bollard client's requests (inspect, version); builds and pushes go through
/// [`EngineHttp`], which has no overall timeout (they are bounded by cancellation instead).
const CLIENT_TIMEOUT_SECS: u64 = 120;

/// Which engines a builder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// The first engine that answers.
    Any,
    /// Docker only (a Podman socket is skipped).
    Docker,
    /// Podman only (a Docker socket is skipped).
    Podman,
}

impl EngineChoice {
    fn accepts(self, kind: EngineKind) -> bool {
        match self {
            EngineChoice::Any => true,
            EngineChoice::Docker => kind == EngineKind::Docker,
            EngineChoice::Podman => kind == EngineKind::Podman,
        }
    }
}

/// The engine that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Docker,
    Podman,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Docker => "Docker",
            EngineKind::Podman => "Podman",
        })
    }
}

/// Where an engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// Plain HTTP over TCP, `host:port` (engines exposed on TCP without TLS are local
    /// development setups).
    Tcp(String),
    /// HTTP over TLS to `host:port`, both sides presenting certificates (Docker's
    /// `--tlsverify`, port 2376).
    Tls { addr: String, files: TlsFiles },
}

impl Endpoint {
    /// Parses `unix:///path`, a bare absolute path, `tcp://host:port` or `http://host:port`.
    pub fn parse(input: &str) -> Result<Endpoint, String> {
        let s = input.trim();
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(
                    "a unix endpoint needs an absolute path, e.g. unix:///var/run/docker.sock"
                        .into(),
                );
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(s)));
        }
        for scheme in ["tcp://", "http://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                let authority = rest.trim_end_matches('/');
                if authority.is_empty() || authority.contains('/') {
                    return Err(format!("expected {scheme}host:port"));
                }
                let with_port = if authority
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                {
                    authority.to_string()
                } else {
                    format!("{authority}:2375")
                };
                return Ok(Endpoint::Tcp(with_port));
            }
        }
        if s.starts_with("https://") {
            return Err("write a TLS engine as tcp://host:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), or a service worker's `tls`".into());
        }
        if s.starts_with("ssh://") {
            return Err("ssh endpoints are not supported; forward the socket (ssh -L) and use unix:// or tcp://".into());
        }
        Err("expected unix:///path/to.sock, tcp://host:port or http://host:port".into())
    }

    /// This endpoint over TLS with `files`, when it is a TCP one (TLS does not apply to a unix
    /// socket, as for the docker CLI).
    pub fn with_tls(self, files: Option<&TlsFiles>) -> Endpoint {
        match (self, files) {
            (Endpoint::Tcp(addr), Some(files)) => Endpoint::Tls {
                addr,
                files: files.clone(),
            },
            (other, _) => other,
        }
    }

    pub(crate) fn unix_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(p) => Some(p),
            Endpoint::Tcp(_) | Endpoint::Tls { .. } => None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
            Endpoint::Tls { addr, .. } => write!(f, "tcp://{addr} (TLS)"),
        }
    }
}

/// One place discovery looks, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub endpoint: String,
    /// `--engine / config`, `DOCKER_HOST`, `CONTAINER_HOST`, `Docker context ...`,
    /// `default Docker socket`, ...
    pub source: String,
    /// Whether the user named this engine (flag, config, variable, context): a named engine
    /// is used or the build fails; it is never silently replaced by another one.
    pub named: bool,
    /// Why the endpoint could not even be determined (an unknown Docker context).
    pub problem: Option<String>,
}

impl Candidate {
    fn named(endpoint: impl Into<String>, source: impl Into<String>) -> Candidate {
        Candidate {
            endpoint: endpoint.into(),
            source: source.into(),
            named: true,
            problem: None,
        }
    }
}

/// The endpoints to try, in order, for a builder that accepts `choice`.
///
/// When the user names an engine, only what they named is tried:
/// - `explicit` (the `--engine` flag or the config's `engine`) alone;
/// - else, for Docker, `DOCKER_HOST`, else the current Docker context (the docker CLI's
///   precedence); for Podman, `CONTAINER_HOST` (Podman's own variable; its tools ignore
///   `DOCKER_HOST`); for `default`, both of these, Docker's first.
///
/// Only when nothing is named are the well-known sockets tried ([`well_known_sockets`]).
pub fn candidates(
    choice: EngineChoice,
    explicit: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Vec<Candidate> {
    if let Some(e) = explicit.map(str::trim).filter(|e| !e.is_empty()) {
        return vec![Candidate::named(e, "--engine / config `engine`")];
    }
    let non_empty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let mut named: Vec<Candidate> = Vec::new();
    if choice != EngineChoice::Podman {
        if let Some(v) = non_empty("DOCKER_HOST") {
            named.push(Candidate::named(v.trim(), "DOCKER_HOST"));
        } else if let Some(c) = docker_context::selected(&env) {
            let source = format!("Docker context `{}`, selected by {}", c.name, c.selected_by);
            named.push(match c.endpoint {
                Ok(endpoint) => Candidate::named(endpoint, source),
                Err(problem) => Candidate {
                    problem: Some(problem),
                    ..Candidate::named(format!("docker context `{}`", c.name), source)
                },
            });
        }
    }
    if choice != EngineChoice::Docker
        && let Some(v) = non_empty("CONTAINER_HOST")
        && !named.iter().any(|c| c.endpoint == v.trim())
    {
        named.push(Candidate::named(v.trim(), "CONTAINER_HOST"));
    }
    if !named.is_empty() {
        return named;
    }
    well_known_sockets(choice, &non_empty)
        .into_iter()
        .map(|(path, source)| Candidate {
            endpoint: format!("unix://{path}"),
            source: source.to_string(),
            named: false,
            problem: None,
        })
        .collect()
}

/// The sockets tried when no engine is named, in order, each with what it is for the "no
/// engine" message: Linux's first (the system Docker socket, rootful Podman, rootless Podman in
/// `$XDG_RUNTIME_DIR`), then those the desktop engines create under the home directory, on
/// macOS above all: Docker Desktop (`~/.docker/run`, and `~/.docker/desktop` of Docker Desktop
/// for Linux), colima's default profile (`$COLIMA_HOME`, else `~/.colima`), and podman
/// machine's API socket (podman 5: `$TMPDIR/podman/<machine>-api.sock`; podman 4.5 to 4.9:
/// `machine/qemu/podman.sock`; before: `machine/<machine>/podman.sock`, all for the default
/// machine `podman-machine-default`, as `podman machine inspect` reports it in
/// `ConnectionInfo.PodmanSocket.Path`). Docker's before Podman's within each group, as on
/// Linux. A path that does not exist costs one `stat`.
pub fn well_known_sockets(
    choice: EngineChoice,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, &'static str)> {
    const MACHINE: &str = "podman-machine-default";
    let docker = choice != EngineChoice::Podman;
    let podman = choice != EngineChoice::Docker;
    let dir = |name: &str| env(name).map(|d| d.trim_end_matches('/').to_string());
    let home = dir("HOME").filter(|h| !h.is_empty());
    let mut out = Vec::new();
    if docker {
        out.push(("/var/run/docker.sock".to_string(), "default Docker socket"));
    }
    if podman {
        out.push((
            "/run/podman/podman.sock".to_string(),
            "rootful Podman socket",
        ));
        if let Some(run) = dir("XDG_RUNTIME_DIR") {
            out.push((
                format!("{run}/podman/podman.sock"),
                "rootless Podman socket",
            ));
        }
    }
    if docker && let Some(home) = &home {
        out.push((
            format!("{home}/.docker/run/docker.sock"),
            "Docker Desktop socket",
        ));
        out.push((
            format!("{home}/.docker/desktop/docker.sock"),
            "Docker Desktop for Linux socket",
        ));
    }
    if docker {
        let colima = dir("COLIMA_HOME").or_else(|| home.as_ref().map(|h| format!("{h}/.colima")));
        if let Some(colima) = colima {
            out.push((format!("{colima}/default/docker.sock"), "colima socket"));
        }
    }
    if podman {
        if let Some(tmp) = dir("TMPDIR") {
            out.push((
                format!("{tmp}/podman/{MACHINE}-api.sock"),
                "podman machine socket (podman 5)",
            ));
        }
        if let Some(home) = &home {
            let machine = format!("{home}/.local/share/containers/podman/machine");
            out.push((
                format!("{machine}/qemu/podman.sock"),
                "podman machine socket (podman 4)",
            ));
            out.push((
                format!("{machine}/{MACHINE}/podman.sock"),
                "podman machine socket (podman 4 before 4.5)",
            ));
        }
    }
    out
}

/// What happened at one candidate, for the "no engine" message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub candidate: Candidate,
    pub outcome: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.candidate.endpoint, self.candidate.source, self.outcome
        )
    }
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct ConnectedEngine {
    pub kind: EngineKind,
    pub endpoint: Endpoint,
    /// The engine's own version (`20.10.24`, `4.3.1`).
    pub version: String,
    /// The Docker API version both sides speak (`1.41`).
    pub api_version: String,
    /// The engine's own platform (`linux/amd64`), what it builds without emulation.
    pub native_platform: String,
    pub(crate) docker: Docker,
    pub(crate) http: EngineHttp,
}

/// Tries the candidates in order and returns the first engine `choice` accepts; a `tcp://`
/// candidate speaks TLS when `DOCKER_TLS_VERIFY` says so.
pub async fn discover(
    choice: EngineChoice,
    explicit: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ConnectedEngine, LocalError> {
    discover_with_tls(choice, explicit, None, env).await
}

/// [`discover`], a `tcp://` candidate speaking TLS with `tls`, or else with the files
/// `DOCKER_TLS_VERIFY` selects.
pub async fn discover_with_tls(
    choice: EngineChoice,
    explicit: Option<&str>,
    tls: Option<&TlsFiles>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ConnectedEngine, LocalError> {
    let tls = tls.cloned().or_else(|| TlsFiles::from_env(&env));
    let mut attempts = Vec::new();
    for candidate in candidates(choice, explicit, env) {
        if let Some(problem) = &candidate.problem {
            attempts.push(Attempt {
                outcome: problem.clone(),
                candidate,
            });
            continue;
        }
        let outcome = match try_connect(&candidate.endpoint, tls.as_ref()).await {
            Ok(engine) if choice.accepts(engine.kind) => {
                tracing::debug!(endpoint = %engine.endpoint, kind = %engine.kind, version = %engine.version, "container engine found");
                return Ok(engine);
            }
            Ok(engine) => {
                let (needs, builder) = match choice {
                    EngineChoice::Docker => ("Docker", "docker"),
                    _ => ("Podman", "podman"),
                };
                format!(
                    "answered as {} {}, but builder `{builder}` builds only on {needs}: choose the builder of that engine (`--builder {}` or `default`), or point it at a {needs} engine",
                    engine.kind,
                    engine.version,
                    engine.kind.to_string().to_ascii_lowercase(),
                )
            }
            Err(reason) => reason,
        };
        tracing::debug!(endpoint = %candidate.endpoint, %outcome, "engine candidate skipped");
        attempts.push(Attempt { candidate, outcome });
    }
    Err(LocalError::NoEngine { choice, attempts })
}

/// Connects to one endpoint (over TLS with `tls` when it is a TCP one): ping, version, API
/// negotiation.
pub async fn try_connect(
    endpoint: &str,
    tls: Option<&TlsFiles>,
) -> Result<ConnectedEngine, String> {
    let endpoint = Endpoint::parse(endpoint)?.with_tls(tls);
    if let Some(path) = endpoint.unix_path()
        && !path.exists()
    {
        return Err("no such socket".into());
    }
    // Over TLS every request, bollard's included, goes through our client (one handshake
    // rule); the certificates are read once, here, so a bad file fails discovery by name.
    let tls_http = match &endpoint {
        Endpoint::Tls { files, .. } => Some(
            EngineHttp::new(endpoint.clone(), String::new()).with_tls(files.client_config()?)?,
        ),
        _ => None,
    };
    let docker = match &endpoint {
        Endpoint::Unix(p) => Docker::connect_with_unix(
            &p.to_string_lossy(),
            CLIENT_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        ),
        Endpoint::Tcp(a) => {
            Docker::connect_with_http(a, CLIENT_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        }
        Endpoint::Tls { addr, .. } => {
            let http = tls_http.clone().ok_or("no TLS client for a TLS endpoint")?;
            Docker::connect_with_custom_transport(
                move |request: bollard::BollardRequest| {
                    let http = http.clone();
                    async move {
                        http.forward(request)
                            .await
                            .map_err(|e| bollard::errors::Error::IOError {
                                err: std::io::Error::other(with_causes(&e)),
                            })
                    }
                },
                Some(format!("https://{addr}")),
                CLIENT_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            )
        }
    }
    .map_err(|e| format!("cannot create a client: {e}"))?;
    tokio::time::timeout(PING_TIMEOUT, docker.ping())
        .await
        .map_err(|_| {
            format!(
                "no answer to /_ping within {}s (a hung engine, or not an engine)",
                PING_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| ping_failure(&endpoint, &e.to_string()))?;
    let probe = async {
        let version = docker
            .version()
            .await
            .map_err(|e| format!("no answer to /version: {e}"))?;
        let docker = docker
            .clone()
            .negotiate_version()
            .await
            .map_err(|e| format!("API version negotiation failed: {e}"))?;
        Ok::<_, String>((version, docker))
    };
    let (version, docker) = tokio::time::timeout(VERSION_TIMEOUT, probe)
        .await
        .map_err(|_| {
            format!(
                "answered /_ping but not /version within {}s",
                VERSION_TIMEOUT.as_secs()
            )
        })??;
    let components = version.components.unwrap_or_default();
    let podman = components
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case("Podman Engine"));
    let kind = if podman.is_some() {
        EngineKind::Podman
    } else {
        EngineKind::Docker
    };
    let engine_version = podman
        .map(|c| c.version.clone())
        .or(version.version)
        .unwrap_or_else(|| "unknown".into());
    let api_version = docker.client_version().to_string();
    let http = match tls_http {
        Some(tls) => tls.with_api_version(api_version.clone()),
        None => EngineHttp::new(endpoint.clone(), api_version.clone()),
    };
    let native_platform = format!(
        "{}/{}",
        version.os.as_deref().unwrap_or("linux"),
        version.arch.as_deref().unwrap_or(std::env::consts::ARCH)
    );
    Ok(ConnectedEngine {
        kind,
        endpoint,
        version: engine_version,
        api_version,
        native_platform,
        docker,
        http,
    })
}

/// Why `/_ping` failed, with what to check: over TLS, which files were used and how they must
/// relate to the engine's own; an engine that speaks TLS to a plain client, how to turn it on.
fn ping_failure(endpoint: &Endpoint, error: &str) -> String {
    match endpoint {
        // A failed handshake already names the files.
        Endpoint::Tls { .. } if error.contains("TLS handshake failed") => format!(
            "no answer to /_ping over TLS: {error}; the CA must be the one that signed the engine's certificate (dockerd --tlscacert)"
        ),
        Endpoint::Tls { files, .. } => format!(
            "no answer to /_ping over TLS: {error}; with {files}: the CA must be the one that signed the engine's certificate (dockerd --tlscacert), and the engine must trust the CA of the client certificate"
        ),
        Endpoint::Tcp(_) if error.contains("HTTPS server") => format!(
            "no answer to /_ping: {error}; the engine speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory with ca.pem, cert.pem and key.pem"
        ),
        _ => format!("no answer to /_ping: {error}"),
    }
}

/// An error and its causes (hyper's own message is just "connection error"; the TLS alert
/// that explains it is a cause).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// How to start an engine, for messages.
pub const START_HINT: &str = "start one: `sudo dockerd &` (Docker), or `podman system service --time=0 unix:///run/podman/podman.sock &` (Podman), or in this repository `bash scripts/dev-env.sh`; or point --engine / DOCKER_HOST at a running engine";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("unix:///run/podman/podman.sock"),
            Ok(Endpoint::Unix("/run/podman/podman.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("/var/run/docker.sock"),
            Ok(Endpoint::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375"),
            Ok(Endpoint::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(
            Endpoint::parse("http://localhost"),
            Ok(Endpoint::Tcp("localhost:2375".into()))
        );
        assert!(Endpoint::parse("ssh://host").is_err());
        assert!(Endpoint::parse("https://host:2376").is_err());
        assert!(Endpoint::parse("unix://relative").is_err());
        assert!(Endpoint::parse("docker").is_err());
    }

    fn endpoints(c: Vec<Candidate>) -> Vec<String> {
        c.into_iter().map(|c| c.endpoint).collect()
    }

    #[test]
    fn a_named_engine_is_the_only_candidate() {
        let env = |k: &str| match k {
            "DOCKER_HOST" => Some("unix:///a.sock".to_string()),
            "CONTAINER_HOST" => Some("unix:///b.sock".to_string()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1000".to_string()),
            _ => None,
        };
        assert_eq!(
            endpoints(candidates(EngineChoice::Any, None, env)),
            ["unix:///a.sock", "unix:///b.sock"]
        );
        assert_eq!(
            endpoints(candidates(EngineChoice::Docker, None, env)),
            ["unix:///a.sock"]
        );
        assert_eq!(
            endpoints(candidates(EngineChoice::Podman, None, env)),
            ["unix:///b.sock"]
        );
        let only = candidates(EngineChoice::Any, Some("tcp://h:1"), env);
        assert_eq!(endpoints(only.clone()), ["tcp://h:1"]);
        assert!(only[0].named);
    }

    /// A macOS user's environment: a fake HOME and the per-user TMPDIR.
    fn mac_env(k: &str) -> Option<String> {
        match k {
            "HOME" => Some("/Users/ana/".to_string()),
            "TMPDIR" => Some("/var/folders/7b/f9yh/T/".to_string()),
            _ => None,
        }
    }

    #[test]
    fn desktop_engines_sockets_come_after_the_linux_ones() {
        let all = candidates(EngineChoice::Any, None, mac_env);
        assert!(all.iter().all(|c| !c.named));
        assert_eq!(
            endpoints(all),
            [
                "unix:///var/run/docker.sock",
                "unix:///run/podman/podman.sock",
                "unix:///Users/ana/.docker/run/docker.sock",
                "unix:///Users/ana/.docker/desktop/docker.sock",
                "unix:///Users/ana/.colima/default/docker.sock",
                "unix:///var/folders/7b/f9yh/T/podman/podman-machine-default-api.sock",
                "unix:///Users/ana/.local/share/containers/podman/machine/qemu/podman.sock",
                "unix:///Users/ana/.local/share/containers/podman/machine/podman-machine-default/podman.sock",
            ]
        );
        // Each builder tries only its engine's sockets.
        let docker = endpoints(candidates(EngineChoice::Docker, None, mac_env));
        assert_eq!(docker.len(), 4);
        assert!(
            docker.iter().all(|e| e.ends_with("docker.sock")),
            "{docker:?}"
        );
        let podman = endpoints(candidates(EngineChoice::Podman, None, mac_env));
        assert_eq!(podman.len(), 4);
        assert!(podman.iter().all(|e| e.contains("podman")), "{podman:?}");
    }

    #[test]
    fn colima_home_moves_colimas_socket() {
        let env = |k: &str| match k {
            "COLIMA_HOME" => Some("/opt/colima".to_string()),
            other => mac_env(other),
        };
        let all = endpoints(candidates(EngineChoice::Docker, None, env));
        assert!(
            all.contains(&"unix:///opt/colima/default/docker.sock".to_string()),
            "{all:?}"
        );
        assert!(!all.iter().any(|e| e.contains(".colima")), "{all:?}");
    }

    #[test]
    fn what_was_tried_is_listed_with_what_each_socket_is() {
        let sources: Vec<String> = candidates(EngineChoice::Any, None, mac_env)
            .into_iter()
            .map(|c| c.source)
            .collect();
        for s in [
            "Docker Desktop socket",
            "colima socket",
            "podman machine socket (podman 5)",
        ] {
            assert!(sources.iter().any(|x| x == s), "{s}: {sources:?}");
        }
    }

    #[test]
    fn well_known_sockets_only_when_nothing_is_named() {
        let env = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "/run/user/1000".to_string());
        let all = candidates(EngineChoice::Any, None, env);
        assert!(all.iter().all(|c| !c.named));
        assert_eq!(
            endpoints(all),
            [
                "unix:///var/run/docker.sock",
                "unix:///run/podman/podman.sock",
                "unix:///run/user/1000/podman/podman.sock"
            ]
        );
        assert_eq!(
            endpoints(candidates(EngineChoice::Docker, None, env)),
            ["unix:///var/run/docker.sock"]
        );
    }

    #[test]
    fn docker_host_beats_the_context() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext": "gone"}"#,
        )
        .expect("write");
        let d = dir.path().to_string_lossy().to_string();
        let with_host = |k: &str| match k {
            "DOCKER_CONFIG" => Some(d.clone()),
            "DOCKER_HOST" => Some("unix:///a.sock".to_string()),
            _ => None,
        };
        assert_eq!(
            endpoints(candidates(EngineChoice::Docker, None, with_host)),
            ["unix:///a.sock"]
        );
        // Without DOCKER_HOST, the unknown context is named, and fails; no fallback.
        let without = |k: &str| (k == "DOCKER_CONFIG").then(|| d.clone());
        let c = candidates(EngineChoice::Any, None, without);
        assert_eq!(c.len(), 1);
        assert!(c[0].named && c[0].problem.is_some(), "{c:?}");
    }
}
