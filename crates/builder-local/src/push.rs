//! Pushing a built image from the engine's store to its registry.
//!
//! Credentials come from `imagespec_registry` (the spec's `registry_config`, Docker's
//! `config.json` with `credHelpers`/`credsStore`/`auths`, Podman's `auth.json`), the same places
//! the existence check reads, so "exists" and "push" agree on who the user is. They travel to the
//! engine only in the `X-Registry-Auth` header of this one request; no message built here
//! contains them, and the engine's own messages are scrubbed of them too.
//!
//! The push goes through `/images/{name}/push` directly rather than bollard's `push_image`
//! because the final `aux` message (the pushed manifest digest) is dropped by bollard's type.

use std::time::Duration;

use base64::Engine as _;
use http::Method;
use imagespec_core::build::{BuildEvent, EventSink, TransferDirection};
use imagespec_registry::{Credential, CredentialSources, ImageReference, RegistryClient};
use tokio_util::sync::CancellationToken;

use crate::discovery::{ConnectedEngine, EngineKind};
use crate::engine_http::{self as api, JsonStream};
use crate::error::LocalError;
use crate::secrets::{Redactor, SecretValue};

#[derive(Debug, serde::Deserialize)]
struct PushMessage {
    id: Option<String>,
    status: Option<String>,
    error: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<bollard::models::ErrorDetail>,
    #[serde(rename = "progressDetail")]
    progress_detail: Option<ProgressDetail>,
    aux: Option<serde_json::Value>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ProgressDetail {
    current: Option<u64>,
    total: Option<u64>,
}

/// Tries of one push in all: the engine skips layers the registry already has, so a retry
/// repeats only what failed.
const PUSH_ATTEMPTS: u32 = 4;
/// The wait before the second try, doubled for each further one.
const PUSH_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Whether an engine's push error means the registry refused our identity.
fn is_auth_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "unauthorized",
        "authentication required",
        "denied",
        "401",
        "403",
        "no basic auth credentials",
        "authorization failed",
        "invalid username/password",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// Whether the connection to the registry broke (as opposed to the registry answering).
fn is_connection_lost(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.trim_end().ends_with("eof")
        || [
            "connection reset",
            "broken pipe",
            "connection closed",
            "unexpected eof",
        ]
        .iter()
        .any(|k| m.contains(k))
}

/// Whether a push error is worth another try: the registry's bad moment (5xx, 429), a blob it
/// does not see yet right after a concurrent push of the same layers, a dropped connection.
/// Refused credentials never are.
fn is_transient(message: &str) -> bool {
    if is_auth_failure(message) {
        return false;
    }
    let m = message.to_ascii_lowercase();
    is_connection_lost(message)
        || [
            "500 internal server error",
            "502 bad gateway",
            "503 service unavailable",
            "504 gateway timeout",
            "unexpected http status: 5",
            "toomanyrequests",
            "too many requests",
            "429",
            "blob unknown",
            "blob upload unknown",
            "i/o timeout",
            "tls handshake timeout",
        ]
        .iter()
        .any(|k| m.contains(k))
}

/// How far a push got, from the engine's per-layer messages.
#[derive(Debug, Default)]
struct Progress {
    /// Layer id -> done.
    layers: std::collections::BTreeMap<String, bool>,
    /// The layer last reported uploading, with its bytes sent and size.
    current: Option<(String, u64, Option<u64>)>,
}

impl Progress {
    fn record(&mut self, id: &str, status: &str, detail: Option<&ProgressDetail>) {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return; // a tag or a summary line, not a layer
        }
        let done = status == "Pushed"
            || status == "Layer already exists"
            || status.starts_with("Mounted from");
        let entry = self.layers.entry(id.to_string()).or_insert(false);
        *entry |= done;
        if done {
            if self.current.as_ref().is_some_and(|(c, ..)| c == id) {
                self.current = None;
            }
        } else if status == "Pushing"
            && let Some(d) = detail
        {
            self.current = Some((id.to_string(), d.current.unwrap_or(0), d.total));
        }
    }

    /// "2 of 5 layers pushed; layer 3f2a… was at 1.2 MB of 20.0 MB".
    fn describe(&self) -> String {
        if self.layers.is_empty() {
            return "before any layer was sent".to_string();
        }
        let done = self.layers.values().filter(|d| **d).count();
        let mut text = format!("{done} of {} layers pushed", self.layers.len());
        if let Some((id, sent, total)) = &self.current {
            let short = id.get(..12).unwrap_or(id);
            text.push_str(&format!("; layer {short} was at {}", megabytes(*sent)));
            if let Some(total) = total {
                text.push_str(&format!(" of {}", megabytes(*total)));
            }
        }
        text
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// What the engine reported when a push failed (already scrubbed of secrets); kept as the
/// `source` of the push error.
#[derive(Debug, thiserror::Error)]
#[error("the engine reported: {0}")]
struct EngineReport(String);

/// One failed try.
struct Failure {
    message: String,
    auth: bool,
    transient: bool,
    cause: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl Failure {
    /// A failure the engine reported in words, with the progress made so far.
    fn reported(raw: String, registry: &str, progress: &Progress) -> Failure {
        let auth = is_auth_failure(&raw);
        let message = if is_connection_lost(&raw) {
            format!(
                "the connection to {registry} closed mid-push ({}): {raw}",
                progress.describe()
            )
        } else {
            format!("{raw} ({})", progress.describe())
        };
        Failure {
            message,
            auth,
            transient: is_transient(&raw),
            cause: Box::new(EngineReport(raw)),
        }
    }
}

/// Pushes `image` (a full name with tag); returns the pushed manifest digest when known.
///
/// Transient failures (see [`is_transient`]) are retried up to [`PUSH_ATTEMPTS`] times with
/// exponential backoff, each retry a warning; Ctrl-C stops the push and the waits.
pub(crate) async fn push(
    engine: &ConnectedEngine,
    image: &str,
    sources: &CredentialSources,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<Option<String>, LocalError> {
    let push_error = |message: String, auth: bool| LocalError::Push {
        image: image.to_string(),
        message,
        auth,
        cause: None,
    };
    let reference = ImageReference::parse(image).map_err(|e| push_error(e.to_string(), false))?;
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
    let credential = sources
        .resolve(&reference.registry, &reference.repository)
        .await
        .map_err(|e| LocalError::Credentials {
            registry: reference.registry.clone(),
            reason: e.to_string(),
        })?;
    let mut secrets = Vec::new();
    let auth = match &credential {
        None => serde_json::json!({}),
        Some(found) => {
            tracing::debug!(registry = %reference.registry, origin = %found.origin, "pushing with stored credentials");
            match &found.credential {
                Credential::Basic { username, password } => {
                    secrets.push(SecretValue::new(password.expose().as_bytes()));
                    serde_json::json!({"username": username, "password": password.expose(), "serveraddress": reference.registry})
                }
                Credential::IdentityToken(t) => {
                    secrets.push(SecretValue::new(t.expose().as_bytes()));
                    serde_json::json!({"identitytoken": t.expose(), "serveraddress": reference.registry})
                }
                Credential::RegistryToken(t) => {
                    secrets.push(SecretValue::new(t.expose().as_bytes()));
                    serde_json::json!({"registrytoken": t.expose(), "serveraddress": reference.registry})
                }
                other => {
                    return Err(LocalError::Credentials {
                        registry: reference.registry.clone(),
                        reason: format!("unsupported credential kind ({other})"),
                    });
                }
            }
        }
    };
    let redactor = Redactor::new(&secrets);
    let header = base64::engine::general_purpose::URL_SAFE.encode(auth.to_string());

    let name = image.strip_suffix(&format!(":{tag}")).unwrap_or(image);
    let mut params = vec![("tag", tag.clone())];
    if engine.kind == EngineKind::Podman && is_loopback(&reference.registry) {
        // Podman (containers/image) does not fall back to plain HTTP for loopback registries
        // the way Docker does; a local registry is plain HTTP by nature.
        params.push(("tlsVerify", "false".into()));
    }
    let uri = format!(
        "{}?{}",
        engine.http.compat(&format!("/images/{name}/push")),
        api::query(&params)
    );
    events.emit(BuildEvent::Status {
        message: format!("pushing {image}"),
    });
    let registry = reference.registry.as_str();
    let once = || push_once(engine, &uri, &header, &redactor, registry, events);
    let mut attempt = 1;
    let digest = loop {
        let result = tokio::select! {
            _ = cancel.cancelled() => return Err(LocalError::Cancelled),
            r = once() => r,
        };
        let failure = match result {
            Ok(digest) => break digest,
            Err(failure) => failure,
        };
        if !failure.transient || attempt >= PUSH_ATTEMPTS {
            let message = if attempt > 1 {
                format!("{} (after {attempt} attempts)", failure.message)
            } else {
                failure.message
            };
            return Err(LocalError::Push {
                image: image.to_string(),
                message,
                auth: failure.auth,
                cause: Some(failure.cause),
            });
        }
        let wait = PUSH_RETRY_DELAY.saturating_mul(2u32.saturating_pow(attempt - 1));
        tracing::warn!(
            "{registry}: pushing {image}: {}; retrying in {} (attempt {attempt} of {PUSH_ATTEMPTS})",
            failure.message,
            imagespec_core::net::seconds(wait)
        );
        events.emit(BuildEvent::Status {
            message: format!(
                "retrying the push of {image} (attempt {} of {PUSH_ATTEMPTS})",
                attempt + 1
            ),
        });
        tokio::select! {
            _ = cancel.cancelled() => return Err(LocalError::Cancelled),
            _ = tokio::time::sleep(wait) => {}
        }
        attempt += 1;
    };
    if digest.is_some() {
        return Ok(digest);
    }
    // The engine did not say; ask the registry (best effort: the push itself succeeded).
    let client = RegistryClient::builder()
        .credentials(sources.clone())
        .build();
    match client {
        Ok(client) => match client.manifest_digest(&reference).await {
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                tracing::warn!("pushed {image}, but could not read its digest back: {e}");
                Ok(None)
            }
        },
        Err(e) => {
            tracing::warn!("pushed {image}, but could not read its digest back: {e}");
            Ok(None)
        }
    }
}

/// One push request and its JSON progress stream.
async fn push_once(
    engine: &ConnectedEngine,
    uri: &str,
    header: &str,
    redactor: &Redactor,
    registry: &str,
    events: &EventSink,
) -> Result<Option<String>, Failure> {
    let response = engine
        .http
        .send(
            "the push request",
            Method::POST,
            uri,
            &[("X-Registry-Auth", header.to_string())],
            api::empty(),
        )
        .await
        .map_err(|e| match e {
            LocalError::EngineStatus {
                status, message, ..
            } => {
                let message = redactor.redact(&message);
                Failure {
                    auth: status == 401 || is_auth_failure(&message),
                    transient: is_transient(&message),
                    cause: Box::new(EngineReport(message.clone())),
                    message,
                }
            }
            // The engine itself did not answer: not the registry's moment, no retry.
            other => Failure {
                message: redactor.redact(&other.to_string()),
                auth: false,
                transient: false,
                cause: Box::new(other),
            },
        })?;
    let mut stream = JsonStream::new(response);
    let mut digest = None;
    let mut last_status: Option<String> = None;
    let mut progress = Progress::default();
    let mut transfers = Transfers::default();
    while let Some(message) = stream.next::<PushMessage>().await {
        let m = match message {
            Ok(m) => m,
            Err(raw) => {
                tracing::debug!(line = %redactor.redact(&raw), "unparsed push output");
                continue;
            }
        };
        if let Some(error) = m.error_detail.and_then(|d| d.message).or(m.error) {
            return Err(Failure::reported(
                redactor.redact(&error),
                registry,
                &progress,
            ));
        }
        if let Some(d) = m
            .aux
            .as_ref()
            .and_then(|a| a.get("Digest"))
            .and_then(|d| d.as_str())
        {
            digest = Some(d.to_string());
        }
        if let (Some(id), Some(status)) = (&m.id, &m.status) {
            progress.record(id, status, m.progress_detail.as_ref());
            if let Some(event) = transfers.record(id, status, m.progress_detail.as_ref()) {
                events.emit(event);
            }
        }
        if let Some(status) = m
            .status
            .filter(|s| !s.trim().is_empty() && s != "Pushing" && s != "Waiting")
        {
            let line = match m.id {
                Some(id) if !id.is_empty() => format!("{id}: {status}"),
                _ => status,
            };
            if last_status.as_deref() != Some(line.as_str()) {
                events.emit(BuildEvent::Status {
                    message: redactor.redact(&line),
                });
                last_status = Some(line);
            }
        }
    }
    Ok(digest)
}

/// The byte progress of each layer as [`BuildEvent::Transfer`]s: at most one event per layer
/// every [`TRANSFER_EVERY`] while it uploads (the engine reports every few kilobytes), and one
/// when it is pushed.
#[derive(Debug, Default)]
struct Transfers {
    /// Layer id -> when its last event went out, and its size as last reported.
    layers: std::collections::HashMap<String, (std::time::Instant, Option<u64>)>,
}

const TRANSFER_EVERY: Duration = Duration::from_millis(200);

impl Transfers {
    fn record(
        &mut self,
        id: &str,
        status: &str,
        detail: Option<&ProgressDetail>,
    ) -> Option<BuildEvent> {
        let event = |current, total| BuildEvent::Transfer {
            direction: TransferDirection::Push,
            layer: id.to_string(),
            current,
            total,
        };
        match status {
            "Pushing" => {
                let d = detail?;
                let current = d.current?;
                let now = std::time::Instant::now();
                match self.layers.get_mut(id) {
                    Some((last, total)) => {
                        *total = d.total.or(*total);
                        if now.duration_since(*last) < TRANSFER_EVERY {
                            return None;
                        }
                        *last = now;
                    }
                    None => {
                        self.layers.insert(id.to_string(), (now, d.total));
                    }
                }
                Some(event(current, d.total))
            }
            // A layer that uploaded (not one the registry had): its full size.
            "Pushed" => {
                let (_, total) = self.layers.remove(id)?;
                let total = total?;
                Some(event(total, Some(total)))
            }
            _ => None,
        }
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("ghcr.io"));
    }

    #[test]
    fn transient_push_errors_are_retried_and_refusals_are_not() {
        for transient in [
            "received unexpected HTTP status: 500 Internal Server Error",
            "manifest blob unknown: blob unknown to registry",
            "blob upload unknown",
            "toomanyrequests: retry later",
            "Put \"http://127.0.0.1:5000/v2/x/blobs/uploads/1\": EOF",
            "read tcp 127.0.0.1:1->127.0.0.1:5000: read: connection reset by peer",
        ] {
            assert!(is_transient(transient), "{transient}");
        }
        for fatal in [
            "unauthorized: authentication required",
            "denied: requested access to the resource is denied",
            "name invalid: invalid repository name",
            "received unexpected HTTP status: 401 Unauthorized",
        ] {
            assert!(!is_transient(fatal), "{fatal}");
        }
    }

    #[test]
    fn a_dropped_push_says_where_and_how_far() {
        let mut progress = Progress::default();
        let detail = |current, total| ProgressDetail {
            current: Some(current),
            total: Some(total),
        };
        progress.record("aaaaaaaaaaaa", "Preparing", None);
        progress.record("bbbbbbbbbbbb", "Preparing", None);
        progress.record("latest", "Preparing", None); // not a layer
        progress.record("aaaaaaaaaaaa", "Layer already exists", None);
        progress.record(
            "bbbbbbbbbbbb",
            "Pushing",
            Some(&detail(1_500_000, 20_000_000)),
        );
        let failure = Failure::reported("EOF".into(), "127.0.0.1:5000", &progress);
        assert_eq!(
            failure.message,
            "the connection to 127.0.0.1:5000 closed mid-push (1 of 2 layers pushed; layer \
             bbbbbbbbbbbb was at 1.5 MB of 20.0 MB): EOF"
        );
        assert!(failure.transient && !failure.auth);
        assert_eq!(failure.cause.to_string(), "the engine reported: EOF");
        let empty = Failure::reported("EOF".into(), "r", &Progress::default());
        assert!(
            empty.message.contains("before any layer was sent"),
            "{}",
            empty.message
        );
    }

    #[test]
    fn auth_failures() {
        assert!(is_auth_failure("unauthorized: authentication required"));
        assert!(is_auth_failure(
            "denied: requested access to the resource is denied"
        ));
        assert!(!is_auth_failure("connection refused"));
    }
}
