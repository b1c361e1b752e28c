//! Reading response bodies: with a size limit (a manifest or config is small; anything huge is
//! a misbehaving server, not something to buffer), and decoding the registry's error format.

use reqwest::Response;
use serde::Deserialize;

use crate::error::RegistryError;
use crate::retry::describe;

/// The largest manifest or image config read into memory.
pub(crate) const MAX_DOCUMENT: usize = 8 * 1024 * 1024;

/// Reads the whole body, failing if it is larger than `limit` bytes.
pub(crate) async fn read_limited(
    mut response: Response,
    limit: usize,
    registry: &str,
    what: &str,
    within: std::time::Duration,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::InvalidResponse {
        registry: registry.to_string(),
        what: what.to_string(),
        reason: format!("it is larger than {limit} bytes"),
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    // A document is small: a server that trickles it byte by byte is as stuck as a silent one.
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
        let Ok(chunk) = chunk else {
            return Err(RegistryError::TimedOut {
                registry: registry.to_string(),
                operation: format!("reading {what}"),
                limit: within,
                attempts: 1,
            });
        };
        match chunk {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(RegistryError::Unreachable {
                    registry: registry.to_string(),
                    attempts: 1,
                    reason: format!("reading {what}: {}", describe(&e)),
                });
            }
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The registry's `{"errors":[{"code","message"}]}` answer, as `(first code, summary)`.
/// Falls back to the status text when the body is not in that format.
pub(crate) async fn error_summary(
    response: Response,
    within: std::time::Duration,
) -> (Option<String>, String) {
    let status = response.status();
    let fallback = status
        .canonical_reason()
        .unwrap_or("no explanation")
        .to_string();
    let Ok(bytes) = read_limited(response, 64 * 1024, "", "error body", within).await else {
        return (None, fallback);
    };
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) if !body.errors.is_empty() => {
            let code = Some(body.errors[0].code.clone()).filter(|c| !c.is_empty());
            let summary = body
                .errors
                .iter()
                .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                    (false, false) => format!("{}: {}", e.code, e.message),
                    (false, true) => e.code.clone(),
                    _ => e.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            (code, summary)
        }
        _ => (None, fallback),
    }
}
