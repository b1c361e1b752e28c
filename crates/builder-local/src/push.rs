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

use base64::Engine as _;
use http::Method;
use imagespec_core::build::{BuildEvent, EventSink};
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
    aux: Option<serde_json::Value>,
}

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

/// Pushes `image` (a full name with tag); returns the pushed manifest digest when known.
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
    let work = async {
        let response = engine
            .http
            .send(
                "the push request",
                Method::POST,
                &uri,
                &[("X-Registry-Auth", header)],
                api::empty(),
            )
            .await
            .map_err(|e| match e {
                LocalError::EngineStatus {
                    status, message, ..
                } => {
                    let message = redactor.redact(&message);
                    let auth = status == 401 || is_auth_failure(&message);
                    push_error(message, auth)
                }
                other => push_error(redactor.redact(&other.to_string()), false),
            })?;
        let mut stream = JsonStream::new(response);
        let mut digest = None;
        let mut last_status: Option<String> = None;
        while let Some(message) = stream.next::<PushMessage>().await {
            let m = match message {
                Ok(m) => m,
                Err(raw) => {
                    tracing::debug!(line = %redactor.redact(&raw), "unparsed push output");
                    continue;
                }
            };
            if let Some(error) = m.error_detail.and_then(|d| d.message).or(m.error) {
                let message = redactor.redact(&error);
                let auth = is_auth_failure(&message);
                return Err(push_error(message, auth));
            }
            if let Some(d) = m
                .aux
                .as_ref()
                .and_then(|a| a.get("Digest"))
                .and_then(|d| d.as_str())
            {
                digest = Some(d.to_string());
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
    };
    let digest = tokio::select! {
        _ = cancel.cancelled() => return Err(LocalError::Cancelled),
        r = work => r?,
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
    fn auth_failures() {
        assert!(is_auth_failure("unauthorized: authentication required"));
        assert!(is_auth_failure(
            "denied: requested access to the resource is denied"
        ));
        assert!(!is_auth_failure("connection refused"));
    }
}
