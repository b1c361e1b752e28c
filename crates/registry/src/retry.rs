//! Bounded retries with exponential backoff for transient failures.
//!
//! Registries rate-limit (429) and have bad minutes (502/503/504); a single such answer should
//! not turn into "could not tell whether the image exists". But an existence check sits on the
//! critical path of every build, so retries are few and short: a registry that refuses
//! connections is reported as [`crate::Existence::Unknown`] within about a second by default,
//! one that accepts and never answers after `max_attempts` times the first-byte timeout.
//! Retries are never silent: each is a `tracing` warning naming operation, registry, attempt
//! and wait.

use std::time::{Duration, SystemTime};

use imagespec_core::net::{NetworkTimeouts, seconds};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use crate::error::RegistryError;

/// How often and how long to retry transient failures (connection errors, timeouts, 408, 429,
/// 500, 502, 503, 504).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, including the first (at least 1).
    pub max_attempts: u32,
    /// The wait before the second try; doubled for each further try.
    pub base_delay: Duration,
    /// The longest single wait, also the cap on a server's `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A single try, no retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait after failed try number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// A response, how many tries it took, and how long reading a document from it may take.
pub(crate) struct Sent {
    pub response: Response,
    pub attempts: u32,
    /// The limit on reading a small document (manifest, token, error) from `response`.
    pub within: Duration,
}

fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` as seconds or an HTTP date; `None` when absent or unreadable.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// A short description of a transport error: its kind and innermost cause (e.g.
/// "connection failed: Connection refused (os error 111)"), without repeating the URL.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if std::ptr::addr_eq(cause, error) {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

/// What a request does, in words, for messages: "checking manifest team/app:v1".
pub(crate) fn operation(method: &Method, url: &Url) -> String {
    let path = url.path();
    let Some(rest) = path.strip_prefix("/v2/") else {
        return format!("{method} {path}");
    };
    if let Some((repository, reference)) = rest.rsplit_once("/manifests/") {
        let sep = if reference.contains(':') { "@" } else { ":" };
        let verb = match *method {
            Method::PUT => "pushing",
            Method::GET => "reading",
            _ => "checking",
        };
        return format!("{verb} manifest {repository}{sep}{reference}");
    }
    if let Some((repository, _)) = rest.split_once("/blobs/uploads") {
        return format!("uploading a blob to {repository}");
    }
    if let Some((repository, digest)) = rest.rsplit_once("/blobs/") {
        let verb = if *method == Method::GET {
            "reading"
        } else {
            "checking"
        };
        let short = digest.get(..19).unwrap_or(digest);
        return format!("{verb} blob {short}… of {repository}");
    }
    format!("{method} {path}")
}

/// Sends the request built by `build` (called once per try), retrying transient failures:
/// connection errors, no answer within `timeouts.first_byte`, and retryable statuses. Every
/// retry is a warning naming the operation, the registry, the attempt and the wait.
/// A final retryable status is returned as a response (the caller reports it); a final
/// transport error becomes [`RegistryError::Unreachable`], a final silence
/// [`RegistryError::TimedOut`].
pub(crate) async fn send(
    policy: &RetryPolicy,
    timeouts: &NetworkTimeouts,
    registry: &str,
    build: impl Fn() -> RequestBuilder,
) -> Result<Sent, RegistryError> {
    let max = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let (client, request) = build().build_split();
        let request = request.map_err(|e| RegistryError::Client {
            reason: describe(&e),
        })?;
        let (method, url) = (request.method().clone(), request.url().clone());
        let what = operation(&method, &url);
        let answer = match tokio::time::timeout(timeouts.first_byte, client.execute(request)).await
        {
            // The client's idle limit can fire first while waiting for the head: the same
            // silence, reported the same way.
            Ok(Err(error)) if error.is_timeout() => Err(()),
            Ok(result) => Ok(result),
            Err(_elapsed) => Err(()),
        };
        let silence = timeouts.first_byte.min(timeouts.idle);
        let (failure, wait) = match answer {
            Ok(Ok(response)) => {
                let status = response.status();
                tracing::debug!(%method, %url, status = status.as_u16(), attempt, "registry response");
                if !is_retryable(status) || attempt >= max {
                    return Ok(Sent {
                        response,
                        attempts: attempt,
                        within: timeouts.first_byte,
                    });
                }
                let wait = retry_after(response.headers(), SystemTime::now())
                    .map(|d| d.min(policy.max_delay))
                    .unwrap_or_else(|| policy.backoff(attempt));
                (format!("answered {}", status.as_u16()), wait)
            }
            Ok(Err(error)) if error.is_builder() || attempt >= max => {
                return Err(RegistryError::Unreachable {
                    registry: registry.to_string(),
                    attempts: attempt,
                    reason: format!("{what}: {}", describe(&error)),
                });
            }
            Ok(Err(error)) => (describe(&error), policy.backoff(attempt)),
            Err(()) if attempt >= max => {
                return Err(RegistryError::TimedOut {
                    registry: registry.to_string(),
                    operation: what,
                    limit: silence,
                    attempts: attempt,
                });
            }
            Err(()) => (
                format!("no answer within {}", seconds(silence)),
                policy.backoff(attempt),
            ),
        };
        tracing::warn!(
            "{registry}: {what}: {failure}; retrying in {} (attempt {attempt} of {max})",
            seconds(wait)
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(2), Duration::from_millis(400));
        assert_eq!(p.backoff(3), Duration::from_millis(800));
        assert_eq!(p.backoff(4), Duration::from_secs(1));
        assert_eq!(p.backoff(60), Duration::from_secs(1));
    }

    #[test]
    fn operations_in_words() {
        let op = |m: Method, u: &str| operation(&m, &Url::parse(u).expect("url"));
        assert_eq!(
            op(Method::HEAD, "http://r:5000/v2/team/app/manifests/v1"),
            "checking manifest team/app:v1"
        );
        assert_eq!(
            op(Method::PUT, "http://r/v2/a/manifests/sha256:abc"),
            "pushing manifest a@sha256:abc"
        );
        assert_eq!(
            op(Method::POST, "http://r/v2/a/b/blobs/uploads/"),
            "uploading a blob to a/b"
        );
        assert_eq!(
            op(
                Method::HEAD,
                "http://r/v2/a/blobs/sha256:0123456789abcdef0123"
            ),
            "checking blob sha256:0123456789ab… of a"
        );
        assert_eq!(op(Method::GET, "http://r/token"), "GET /token");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            if let Ok(v) = reqwest::header::HeaderValue::from_str(v) {
                h.insert(RETRY_AFTER, v);
            }
            h
        };
        assert_eq!(
            retry_after(&headers("3"), now),
            Some(Duration::from_secs(3))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            retry_after(&headers(&date), now),
            Some(Duration::from_secs(7))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(retry_after(&headers(&past), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
