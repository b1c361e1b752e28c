//! Finding a container engine: which sockets to try, in which order, and which engine answered.
//!
//! The order follows what users already configure for their tools: an explicit endpoint (the
//! `--engine` flag or the config file's `engine`) wins outright; otherwise `DOCKER_HOST`, then
//! `CONTAINER_HOST` (Podman's variable), then the well-known sockets of Docker, rootful Podman
//! and rootless Podman. Each candidate is pinged, and `/version` says whether it is Docker or
//! Podman (Podman lists a `Podman Engine` component), because the two differ in how builds get
//! secrets and which API carries them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;

use crate::engine_http::EngineHttp;
use crate::error::LocalError;

/// How long one candidate may take to answer `/_ping`: whether anything listens at all.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an engine that answered `/_ping` may take to answer `/version`. Longer: a busy
/// Podman answers it only once its image store is free, which can take a while when it
/// commits layers for several builds.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Plain HTTP over TCP, `host:port` (no TLS: engines exposed on TCP without TLS are
    /// local development setups; a TLS endpoint is refused with a message).
    Tcp(String),
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
            return Err("TLS endpoints are not supported; use a unix socket or plain tcp:// on a trusted host".into());
        }
        if s.starts_with("ssh://") {
            return Err("ssh endpoints are not supported; forward the socket (ssh -L) and use unix:// or tcp://".into());
        }
        Err("expected unix:///path/to.sock, tcp://host:port or http://host:port".into())
    }

    pub(crate) fn unix_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(p) => Some(p),
            Endpoint::Tcp(_) => None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// One place discovery looks, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub endpoint: String,
    /// `--engine / config`, `DOCKER_HOST`, `CONTAINER_HOST`, `default Docker socket`, ...
    pub source: &'static str,
}

/// The endpoints to try, in order. An explicit endpoint is the only candidate: the user said
/// where the engine is, so silently using another one would build in the wrong place.
pub fn candidates(explicit: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Vec<Candidate> {
    if let Some(e) = explicit.map(str::trim).filter(|e| !e.is_empty()) {
        return vec![Candidate {
            endpoint: e.to_string(),
            source: "--engine / config `engine`",
        }];
    }
    let mut out: Vec<Candidate> = Vec::new();
    let mut push = |endpoint: String, source| {
        if !out.iter().any(|c| c.endpoint == endpoint) {
            out.push(Candidate { endpoint, source });
        }
    };
    let non_empty = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(v) = non_empty("DOCKER_HOST") {
        push(v, "DOCKER_HOST");
    }
    if let Some(v) = non_empty("CONTAINER_HOST") {
        push(v, "CONTAINER_HOST");
    }
    push(
        "unix:///var/run/docker.sock".into(),
        "default Docker socket",
    );
    push(
        "unix:///run/podman/podman.sock".into(),
        "rootful Podman socket",
    );
    if let Some(dir) = non_empty("XDG_RUNTIME_DIR") {
        push(
            format!("unix://{}/podman/podman.sock", dir.trim_end_matches('/')),
            "rootless Podman socket",
        );
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
    pub(crate) docker: Docker,
    pub(crate) http: EngineHttp,
}

/// Tries the candidates in order and returns the first engine `choice` accepts.
pub async fn discover(
    choice: EngineChoice,
    explicit: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ConnectedEngine, LocalError> {
    let mut attempts = Vec::new();
    for candidate in candidates(explicit, env) {
        let outcome = match try_connect(&candidate.endpoint).await {
            Ok(engine) if choice.accepts(engine.kind) => {
                tracing::debug!(endpoint = %engine.endpoint, kind = %engine.kind, version = %engine.version, "container engine found");
                return Ok(engine);
            }
            Ok(engine) => format!(
                "answered as {} {}, but this builder needs {}",
                engine.kind,
                engine.version,
                match choice {
                    EngineChoice::Docker => "Docker",
                    _ => "Podman",
                }
            ),
            Err(reason) => reason,
        };
        tracing::debug!(endpoint = %candidate.endpoint, %outcome, "engine candidate skipped");
        attempts.push(Attempt { candidate, outcome });
    }
    Err(LocalError::NoEngine { choice, attempts })
}

/// Connects to one endpoint: ping, version, API negotiation.
pub async fn try_connect(endpoint: &str) -> Result<ConnectedEngine, String> {
    let endpoint = Endpoint::parse(endpoint)?;
    if let Some(path) = endpoint.unix_path()
        && !path.exists()
    {
        return Err("no such socket".into());
    }
    let docker = match &endpoint {
        Endpoint::Unix(p) => Docker::connect_with_unix(
            &p.to_string_lossy(),
            CLIENT_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        ),
        Endpoint::Tcp(a) => {
            Docker::connect_with_http(a, CLIENT_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        }
    }
    .map_err(|e| format!("cannot create a client: {e}"))?;
    tokio::time::timeout(PING_TIMEOUT, docker.ping())
        .await
        .map_err(|_| format!("no answer within {}s", PING_TIMEOUT.as_secs()))?
        .map_err(|e| format!("no answer to /_ping: {e}"))?;
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
    let http = EngineHttp::new(endpoint.clone(), api_version.clone());
    Ok(ConnectedEngine {
        kind,
        endpoint,
        version: engine_version,
        api_version,
        docker,
        http,
    })
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

    #[test]
    fn candidate_order() {
        let env = |k: &str| match k {
            "DOCKER_HOST" => Some("unix:///a.sock".to_string()),
            "CONTAINER_HOST" => Some("unix:///var/run/docker.sock".to_string()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1000".to_string()),
            _ => None,
        };
        let c: Vec<String> = candidates(None, env)
            .into_iter()
            .map(|c| c.endpoint)
            .collect();
        assert_eq!(
            c,
            [
                "unix:///a.sock",
                "unix:///var/run/docker.sock",
                "unix:///run/podman/podman.sock",
                "unix:///run/user/1000/podman/podman.sock"
            ]
        );
        let only = candidates(Some("tcp://h:1"), env);
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].endpoint, "tcp://h:1");
    }
}
