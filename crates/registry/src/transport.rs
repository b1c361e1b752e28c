//! Authenticated requests: send, and on `401` answer the registry's challenge (a Bearer token
//! from its token service, or Basic credentials) and send once more.
//!
//! Credentials are looked up lazily, only when a registry asks for them, so anonymous pulls
//! from public registries never run a credential helper. Tokens are cached per registry and
//! scope until shortly before they expire; a registry that asked for Basic once gets it up
//! front afterwards, saving a round trip per request.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use imagespec_core::net::NetworkTimeouts;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode, Url};

use crate::auth::{Challenge, TokenResponse};
use crate::body::{error_summary, read_limited};
use crate::credentials::{Credential, CredentialSources, ResolvedCredential};
use crate::endpoint::Endpoint;
use crate::error::RegistryError;
use crate::retry::{self, RetryPolicy, Sent};

/// Who we are to token services (OAuth2 `client_id`).
const CLIENT_ID: &str = "imagespec";

/// What a request is about: its repository and whether it writes.
pub(crate) struct Target<'a> {
    pub endpoint: &'a Endpoint,
    pub repository: &'a str,
    pub push: bool,
}

impl<'a> Target<'a> {
    /// Reading `repository`.
    pub fn pull(endpoint: &'a Endpoint, repository: &'a str) -> Self {
        Target {
            endpoint,
            repository,
            push: false,
        }
    }

    /// Writing to `repository` (token scope `pull,push`).
    pub fn push(endpoint: &'a Endpoint, repository: &'a str) -> Self {
        Target {
            endpoint,
            repository,
            push: true,
        }
    }

    fn scope(&self) -> String {
        let actions = if self.push { "pull,push" } else { "pull" };
        format!("repository:{}:{actions}", self.repository)
    }
}

struct CachedToken {
    value: String,
    expires: Instant,
}

#[derive(Default)]
struct State {
    credentials: HashMap<(String, String), Option<ResolvedCredential>>,
    basic_registries: HashSet<String>,
    tokens: HashMap<(String, String), CachedToken>,
}

pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
    pub timeouts: NetworkTimeouts,
    pub sources: CredentialSources,
    state: Mutex<State>,
}

impl Transport {
    pub(crate) fn new(
        http: reqwest::Client,
        retry: RetryPolicy,
        timeouts: NetworkTimeouts,
        sources: CredentialSources,
    ) -> Self {
        Self {
            http,
            retry,
            timeouts,
            sources,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the caches inconsistent in a way that
        // matters (worst case: one more token request), so a poisoned lock is recovered.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `method url` (with `extra` applied: headers, body), authenticating as needed.
    /// Returns any response other than 401/403, after retries of transient failures.
    pub(crate) async fn send(
        &self,
        target: &Target<'_>,
        method: Method,
        url: &Url,
        extra: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Sent, RegistryError> {
        let registry = &target.endpoint.registry;
        let scope = target.scope();
        let mut authorization =
            sensitive(registry, self.cached_authorization(target, &scope).await?)?;
        let mut answered_challenge = false;
        // Credentials go only to the registry itself (an upload `Location` may be elsewhere).
        let attach = target.endpoint.same_origin(url);
        loop {
            let sent = retry::send(&self.retry, &self.timeouts, registry, || {
                let builder = self.http.request(method.clone(), url.clone());
                let builder = match (&authorization, attach) {
                    (Some(value), true) => builder.header(AUTHORIZATION, value),
                    _ => builder,
                };
                extra(builder)
            })
            .await?;
            match sent.response.status() {
                StatusCode::UNAUTHORIZED if !answered_challenge => {
                    answered_challenge = true;
                    let challenge =
                        Challenge::from_headers(sent.response.headers()).map_err(|reason| {
                            RegistryError::Challenge {
                                registry: registry.clone(),
                                reason,
                            }
                        })?;
                    let value = self.answer(target, &scope, challenge).await?;
                    authorization = sensitive(registry, Some(value))?;
                }
                StatusCode::UNAUTHORIZED => return Err(self.rejected(target).await?),
                StatusCode::FORBIDDEN => {
                    let origin = match self.credential(target).await? {
                        Some(found) => found.origin.to_string(),
                        None => "anonymous access".to_string(),
                    };
                    return Err(RegistryError::Denied {
                        registry: registry.clone(),
                        repository: target.repository.to_string(),
                        action: if target.push { "push" } else { "pull" },
                        origin,
                    });
                }
                _ => return Ok(sent),
            }
        }
    }

    /// The error for a 401 that persists after answering the challenge.
    async fn rejected(&self, target: &Target<'_>) -> Result<RegistryError, RegistryError> {
        let registry = target.endpoint.registry.clone();
        self.state()
            .tokens
            .remove(&(registry.clone(), target.scope()));
        Ok(match self.credential(target).await? {
            Some(found) => RegistryError::AuthRejected {
                registry,
                origin: found.origin.to_string(),
            },
            None => RegistryError::AuthRequired {
                registry,
                repository: target.repository.to_string(),
                searched: self.sources.describe(),
            },
        })
    }

    async fn credential(
        &self,
        target: &Target<'_>,
    ) -> Result<Option<ResolvedCredential>, RegistryError> {
        let key = (
            target.endpoint.registry.clone(),
            target.repository.to_string(),
        );
        if let Some(found) = self.state().credentials.get(&key) {
            return Ok(found.clone());
        }
        let found = self.sources.resolve(&key.0, &key.1).await?;
        self.state().credentials.insert(key, found.clone());
        Ok(found)
    }

    /// An `Authorization` value usable without a round trip, if we have one.
    async fn cached_authorization(
        &self,
        target: &Target<'_>,
        scope: &str,
    ) -> Result<Option<String>, RegistryError> {
        let registry = &target.endpoint.registry;
        let basic = {
            let mut state = self.state();
            let key = (registry.clone(), scope.to_string());
            match state.tokens.get(&key) {
                Some(token) if token.expires > Instant::now() => {
                    return Ok(Some(format!("Bearer {}", token.value)));
                }
                Some(_) => {
                    state.tokens.remove(&key);
                }
                None => {}
            }
            state.basic_registries.contains(registry)
        };
        if basic && let Some(found) = self.credential(target).await? {
            return Ok(basic_header(&found.credential));
        }
        Ok(None)
    }

    /// Answers a challenge with an `Authorization` value.
    async fn answer(
        &self,
        target: &Target<'_>,
        scope: &str,
        challenge: Challenge,
    ) -> Result<String, RegistryError> {
        let registry = &target.endpoint.registry;
        let found = self.credential(target).await?;
        match challenge {
            Challenge::Basic => {
                let Some(found) = found else {
                    return Err(RegistryError::AuthRequired {
                        registry: registry.clone(),
                        repository: target.repository.to_string(),
                        searched: self.sources.describe(),
                    });
                };
                let Some(header) = basic_header(&found.credential) else {
                    return Err(RegistryError::Challenge {
                        registry: registry.clone(),
                        reason: format!(
                            "it asks for a username and password, but the credential from {} is an {}",
                            found.origin, found.credential
                        ),
                    });
                };
                self.state().basic_registries.insert(registry.clone());
                Ok(header)
            }
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                if let Some(ResolvedCredential {
                    credential: Credential::RegistryToken(token),
                    ..
                }) = &found
                {
                    return Ok(format!("Bearer {}", token.expose()));
                }
                let mut scopes = vec![scope.to_string()];
                scopes.extend(asked.filter(|s| s != scope));
                let token = self
                    .fetch_token(target, &realm, service.as_deref(), &scopes, found.as_ref())
                    .await?;
                let header = format!("Bearer {}", token.value);
                self.state()
                    .tokens
                    .insert((registry.clone(), scope.to_string()), token);
                Ok(header)
            }
        }
    }

    /// Gets a token from the registry's token service: GET with Basic credentials (or none),
    /// or, for an identity token, the OAuth2 refresh-token POST.
    async fn fetch_token(
        &self,
        target: &Target<'_>,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        found: Option<&ResolvedCredential>,
    ) -> Result<CachedToken, RegistryError> {
        let registry = &target.endpoint.registry;
        let token_error = |reason: String| RegistryError::Token {
            registry: registry.clone(),
            realm: realm.to_string(),
            reason,
        };
        let url = Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| token_error("the realm is not an http(s) URL".to_string()))?;
        if found.is_some() && !target.endpoint.may_send_credentials_to(&url) {
            return Err(RegistryError::PlainHttpCredentials {
                registry: registry.clone(),
                url: url.to_string(),
            });
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            query.push(("service", service));
        }
        for scope in scopes {
            query.push(("scope", scope));
        }
        let sent = retry::send(&self.retry, &self.timeouts, registry, || {
            match found.map(|f| &f.credential) {
                Some(Credential::IdentityToken(token)) => {
                    let mut form = query.clone();
                    form.extend([
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token.expose()),
                        ("client_id", CLIENT_ID),
                    ]);
                    self.http.post(url.clone()).form(&form)
                }
                Some(Credential::Basic { username, password }) => self
                    .http
                    .get(url.clone())
                    .query(&query)
                    .basic_auth(username, Some(password.expose())),
                _ => self.http.get(url.clone()).query(&query),
            }
        })
        .await?;
        let status = sent.response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(match found {
                Some(found) => RegistryError::AuthRejected {
                    registry: registry.clone(),
                    origin: found.origin.to_string(),
                },
                None => RegistryError::AuthRequired {
                    registry: registry.clone(),
                    repository: target.repository.to_string(),
                    searched: self.sources.describe(),
                },
            });
        }
        if !status.is_success() {
            let (_, message) = error_summary(sent.response, sent.within).await;
            return Err(token_error(format!(
                "it answered {status} after {} attempt(s): {message}",
                sent.attempts
            )));
        }
        let within = sent.within;
        let bytes =
            read_limited(sent.response, 1024 * 1024, registry, "token answer", within).await?;
        let answer: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|_| token_error("the answer is not JSON with a `token`".to_string()))?;
        let value = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_error("the answer has no `token`".to_string()))?;
        // Refresh a little early so a token does not expire between cache and use.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).max(10));
        Ok(CachedToken {
            value,
            expires: Instant::now() + lifetime - Duration::from_secs(5),
        })
    }
}

/// An `Authorization` header value marked sensitive, so `Debug` of the headers hides it.
fn sensitive(registry: &str, value: Option<String>) -> Result<Option<HeaderValue>, RegistryError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let mut header = HeaderValue::from_str(&value).map_err(|_| RegistryError::Challenge {
        registry: registry.to_string(),
        reason: "the token or credential contains characters not allowed in an HTTP header"
            .to_string(),
    })?;
    header.set_sensitive(true);
    Ok(Some(header))
}

fn basic_header(credential: &Credential) -> Option<String> {
    use base64::Engine as _;
    match credential {
        Credential::Basic { username, password } => {
            let raw = format!("{username}:{}", password.expose());
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ))
        }
        _ => None,
    }
}
