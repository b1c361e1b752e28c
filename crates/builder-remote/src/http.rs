//! The HTTP side of the client: bearer auth, bounded retries with exponential backoff for
//! transient failures (connection errors, no answer in time, 5xx, 429 with its `Retry-After`),
//! and problem+json errors turned into [`RemoteError`]s.
//!
//! Timeouts come from [`NetworkTimeouts`] (`IMAGESPEC_NETWORK_TIMEOUT`): connecting, the
//! answer's headers (except for uploads, whose answer only comes once the body is sent; the
//! caller's per-request limit bounds those), and silence mid-body. Every retry is a warning
//! naming the request, the service and the attempt.
//!
//! Retrying `POST /v1/builds` is safe: the service gives identical concurrent submissions the
//! same build.

use std::time::Duration;

use imagespec_core::config::Secret;
use imagespec_core::net::{NetworkTimeouts, seconds};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::RemoteError;
use crate::protocol::{API_PREFIX, Problem, problem_type};

/// How many `429 Too Many Requests` answers one request waits out before giving up.
const MAX_RATE_WAITS: u32 = 120;

/// Tries that end in silence (no answer within the first-byte timeout) a request gets in all:
/// fewer than other failures, because each one already cost a whole timeout.
const MAX_SILENT_TRIES: u32 = 3;

/// How often and how patiently transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all (the first one included).
    pub attempts: u32,
    /// The first wait; doubled after every failure, up to `max_delay`.
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured on a 429.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// About 30 s in all: long enough for a service restart, short enough not to look hung.
    fn default() -> Self {
        RetryPolicy {
            attempts: 10,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th consecutive failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }
}

/// A connection to one build service.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Secret,
    pub retry: RetryPolicy,
    pub timeouts: NetworkTimeouts,
}

/// A request body that can be rebuilt for every attempt.
pub enum Body<'a> {
    None,
    Json(&'a serde_json::Value),
    File(&'a std::path::Path),
}

impl Api {
    /// Fails on a bad URL or an unusable `IMAGESPEC_NETWORK_TIMEOUT`.
    pub fn new(url: &str, token: Secret, retry: RetryPolicy) -> Result<Api, RemoteError> {
        Self::with_timeouts(url, token, retry, NetworkTimeouts::from_env()?)
    }

    pub fn with_timeouts(
        url: &str,
        token: Secret,
        retry: RetryPolicy,
        timeouts: NetworkTimeouts,
    ) -> Result<Api, RemoteError> {
        let base = url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|e| RemoteError::BadUrl {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RemoteError::BadUrl {
                url: base,
                reason: "use an http:// or https:// URL".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.idle)
            .build()
            .map_err(|e| RemoteError::BadUrl {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(Api {
            http,
            base,
            token,
            retry,
            timeouts,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// A request to `/v1{path}` with the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{API_PREFIX}{path}", self.base))
            .bearer_auth(self.token.expose())
    }

    /// Sends a request, retrying transient failures, and decodes a JSON answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Body<'_>,
        timeout: Duration,
    ) -> Result<T, RemoteError> {
        let response = self.send(method, path, &body, timeout).await?;
        response
            .json::<T>()
            .await
            .map_err(|e| RemoteError::Protocol(format!("{path}: {e}")))
    }

    /// Sends a request, retrying transient failures; any non-success answer is an error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: &Body<'_>,
        timeout: Duration,
    ) -> Result<Response, RemoteError> {
        let mut failures = 0u32;
        let mut silent = 0u32;
        let mut rate_waits = 0u32;
        loop {
            let mut request = self.request(method.clone(), path).timeout(timeout);
            request = match body {
                Body::None => request,
                Body::Json(v) => request.json(v),
                Body::File(p) => {
                    let file =
                        tokio::fs::File::open(p)
                            .await
                            .map_err(|source| RemoteError::Read {
                                path: p.to_path_buf(),
                                source,
                            })?;
                    let len = file.metadata().await.map(|m| m.len()).ok();
                    let stream = tokio_util::io::ReaderStream::new(file);
                    let request =
                        request.header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
                    let request = match len {
                        Some(len) => request.header(reqwest::header::CONTENT_LENGTH, len),
                        None => request,
                    };
                    request.body(reqwest::Body::wrap_stream(stream))
                }
            };
            // An upload's answer comes only after its body: the caller's limit bounds it.
            let first_byte = match body {
                Body::File(_) => timeout,
                _ => self.timeouts.first_byte.min(timeout),
            };
            let outcome = match tokio::time::timeout(first_byte, request.send()).await {
                Ok(Ok(response)) => classify(response, &self.base).await,
                // The client's idle limit fired while waiting for the head: the same silence.
                Ok(Err(e)) if e.is_timeout() && !matches!(body, Body::File(_)) => {
                    silent += 1;
                    Err(Attempt::Transient {
                        reason: format!(
                            "no answer within {}",
                            seconds(first_byte.min(self.timeouts.idle))
                        ),
                        status: None,
                        wait: None,
                    })
                }
                Ok(Err(e)) => Err(Attempt::Transient {
                    reason: describe(&e),
                    status: None,
                    wait: None,
                }),
                Err(_elapsed) => {
                    silent += 1;
                    Err(Attempt::Transient {
                        reason: format!("no answer within {}", seconds(first_byte)),
                        status: None,
                        wait: None,
                    })
                }
            };
            let operation = format!(
                "{method} {API_PREFIX}{}",
                path.split('?').next().unwrap_or(path)
            );
            match outcome {
                Ok(response) => return Ok(response),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Transient {
                    reason,
                    status,
                    wait,
                }) => {
                    // Being rate limited is the service working as configured, not a failure:
                    // wait as told, for longer than the failure budget allows.
                    if status == Some(429) && rate_waits < MAX_RATE_WAITS {
                        rate_waits += 1;
                        let delay = wait
                            .unwrap_or(Duration::from_secs(1))
                            .min(self.retry.max_retry_after);
                        tracing::warn!(
                            "build service {}: {operation}: rate limited; waiting {}",
                            self.base,
                            seconds(delay)
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    failures += 1;
                    if failures >= self.retry.attempts || silent >= MAX_SILENT_TRIES {
                        return Err(match status {
                            Some(status) => RemoteError::Server {
                                status,
                                attempts: failures,
                                detail: format!("{operation}: {reason}"),
                            },
                            None => RemoteError::Unreachable {
                                url: self.base.clone(),
                                attempts: failures,
                                reason: format!("{operation}: {reason}"),
                            },
                        });
                    }
                    let delay = wait
                        .map(|w| w.min(self.retry.max_retry_after))
                        .unwrap_or_else(|| self.retry.delay(failures));
                    tracing::warn!(
                        "build service {}: {operation}: {reason}; retrying in {} (attempt {failures} of {})",
                        self.base,
                        seconds(delay),
                        self.retry.attempts
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// The outcome of one try.
pub enum Attempt {
    Transient {
        reason: String,
        status: Option<u16>,
        wait: Option<Duration>,
    },
    Fatal(RemoteError),
}

/// Sorts an answer: success, worth retrying, or final.
pub async fn classify(response: Response, url: &str) -> Result<Response, Attempt> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let problem = read_problem(response, status).await;
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(Attempt::Transient {
            reason: format!("rate limited: {}", problem.detail),
            status: Some(status.as_u16()),
            wait: Some(retry_after.unwrap_or(Duration::from_secs(1))),
        });
    }
    if status.is_server_error() {
        return Err(Attempt::Transient {
            reason: format!("{} {}: {}", status.as_u16(), problem.title, problem.detail),
            status: Some(status.as_u16()),
            wait: retry_after,
        });
    }
    if status == StatusCode::UNAUTHORIZED {
        return Err(Attempt::Fatal(RemoteError::Unauthorized {
            url: url.to_string(),
            detail: problem.detail,
        }));
    }
    Err(Attempt::Fatal(RemoteError::Rejected {
        problem: Box::new(problem),
    }))
}

/// The problem+json body of an error answer, or one made up from the status.
async fn read_problem(response: Response, status: StatusCode) -> Problem {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<Problem>(&text).unwrap_or_else(|_| Problem {
        kind: problem_type("http"),
        title: status.canonical_reason().unwrap_or("error").to_string(),
        status: status.as_u16(),
        detail: text.chars().take(500).collect(),
        missing: Vec::new(),
        errors: Vec::new(),
    })
}

/// A transport error without the URL's query or anything secret (reqwest never prints headers).
pub fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "the connection broke"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        let p = RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(1),
        };
        let delays: Vec<u128> = (1..=6).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(60).as_millis(), 1000);
    }

    /// A FAKE build service on 127.0.0.1 that accepts connections and never answers.
    async fn silent_fake() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream); // keep it open, say nothing
            }
        });
        (url, task)
    }

    #[tokio::test]
    async fn fake_service_that_never_answers_fails_after_three_silent_tries_naming_request_and_host()
     {
        let (url, task) = silent_fake().await;
        let retry = RetryPolicy {
            attempts: 10,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(20),
        };
        let api = Api::with_timeouts(
            &url,
            Secret::new("t0ken"),
            retry,
            NetworkTimeouts::uniform(Duration::from_millis(300)),
        )
        .expect("api");
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            api.send(
                Method::GET,
                "/images/exists?image=x",
                &Body::None,
                Duration::from_secs(60),
            ),
        )
        .await
        .expect("bounded");
        task.abort();
        let err = result.expect_err("no answer");
        let text = err.to_string();
        assert!(
            matches!(err, RemoteError::Unreachable { attempts: 3, .. }),
            "{err:?}"
        );
        assert!(
            text.contains(&url)
                && text.contains("GET /v1/images/exists: no answer within 0.3 s")
                && !text.contains("t0ken"),
            "{text}"
        );
    }

    #[test]
    fn an_unusable_timeout_setting_is_refused() {
        assert!(matches!(
            NetworkTimeouts::from_value(Some("later")).map_err(RemoteError::from),
            Err(RemoteError::Timeouts(_))
        ));
    }

    #[test]
    fn urls_are_checked_and_the_token_stays_hidden() {
        let api = Api::new(
            "http://127.0.0.1:1/",
            Secret::new("s3cret"),
            RetryPolicy::default(),
        )
        .expect("valid");
        assert_eq!(api.url(), "http://127.0.0.1:1");
        assert!(!format!("{api:?}").contains("s3cret"));
        assert!(matches!(
            Api::new("ftp://x", Secret::new("t"), RetryPolicy::default()),
            Err(RemoteError::BadUrl { .. })
        ));
    }
}
