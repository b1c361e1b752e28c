//! The client: configuration, and the read operations (manifests, blobs) the existence check
//! and callers build on.

use imagespec_core::net::NetworkTimeouts;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use crate::body::{MAX_DOCUMENT, error_summary, read_limited};
use crate::credentials::CredentialSources;
use crate::endpoint::Endpoint;
use crate::error::RegistryError;
use crate::manifest::{Manifest, media_types, sha256_digest};
use crate::reference::ImageReference;
use crate::retry::{RetryPolicy, Sent};
use crate::transport::{Target, Transport};

/// Header carrying a manifest's or blob's digest.
pub(crate) const DIGEST_HEADER: &str = "docker-content-digest";

/// An OCI Distribution client. Cheap to share (`&self` everywhere); it caches credentials and
/// tokens, so one client per program run is the intended use.
pub struct RegistryClient {
    pub(crate) transport: Transport,
    pub(crate) insecure: Vec<String>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("insecure", &self.insecure)
            .field("retry", &self.transport.retry)
            .field("credentials", &self.transport.sources)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RegistryClient`].
#[derive(Debug, Clone)]
pub struct RegistryClientBuilder {
    credentials: CredentialSources,
    insecure: Vec<String>,
    /// `None`: the defaults, or `IMAGESPEC_NETWORK_TIMEOUT` when set.
    timeouts: Option<NetworkTimeouts>,
    retry: RetryPolicy,
}

impl Default for RegistryClientBuilder {
    fn default() -> Self {
        Self {
            credentials: CredentialSources::none(),
            insecure: Vec::new(),
            timeouts: None,
            retry: RetryPolicy::default(),
        }
    }
}

impl RegistryClientBuilder {
    /// Where credentials come from (default: none, i.e. anonymous).
    pub fn credentials(mut self, sources: CredentialSources) -> Self {
        self.credentials = sources;
        self
    }

    /// A registry (`host[:port]`, or `host` for any port) reached over plain HTTP.
    /// Loopback registries need no entry.
    pub fn insecure_registry(mut self, registry: impl Into<String>) -> Self {
        self.insecure.push(registry.into());
        self
    }

    /// The limits on connecting, on waiting for an answer, and on silence mid-body. Without
    /// this, [`NetworkTimeouts::from_env`] decides (`IMAGESPEC_NETWORK_TIMEOUT`, else 10 s /
    /// 15 s / 30 s). There is no limit on a whole transfer: a large blob may take its time
    /// as long as bytes keep coming.
    pub fn timeouts(mut self, timeouts: NetworkTimeouts) -> Self {
        self.timeouts = Some(timeouts);
        self
    }

    /// Retries of transient failures (default: 3 tries, 200 ms base backoff).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Fails when the HTTP client cannot be set up, or `IMAGESPEC_NETWORK_TIMEOUT` is not a
    /// usable duration (a value the user set is used or refused, never ignored).
    pub fn build(self) -> Result<RegistryClient, RegistryError> {
        let timeouts = match self.timeouts {
            Some(t) => t,
            None => NetworkTimeouts::from_env().map_err(|e| RegistryError::Client {
                reason: e.to_string(),
            })?,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.idle)
            .user_agent(concat!("imagespec/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistryError::Client {
                reason: crate::retry::describe(&e),
            })?;
        Ok(RegistryClient {
            transport: Transport::new(http, self.retry, timeouts, self.credentials),
            insecure: self.insecure,
        })
    }
}

impl RegistryClient {
    pub fn builder() -> RegistryClientBuilder {
        RegistryClientBuilder::default()
    }

    pub(crate) fn endpoint(&self, reference: &ImageReference) -> Result<Endpoint, RegistryError> {
        Endpoint::new(reference, &self.insecure)
    }

    /// Sends `method` for the manifest of `reference`, accepting every manifest and index type;
    /// returns the endpoint, what was asked for (for errors) and the successful response.
    async fn request_manifest(
        &self,
        reference: &ImageReference,
        method: Method,
    ) -> Result<(Endpoint, String, reqwest::Response), RegistryError> {
        let endpoint = self.endpoint(reference)?;
        let target = Target::pull(&endpoint, &reference.repository);
        let url = manifest_url(&endpoint, reference)?;
        let sent = self
            .transport
            .send(&target, method, &url, |b| {
                b.header(ACCEPT, media_types::MANIFEST_ACCEPT)
            })
            .await?;
        let what = format!("manifest `{reference}`");
        let response = expect_success(&endpoint, &what, sent).await?;
        Ok((endpoint, what, response))
    }

    /// `HEAD` the manifest: its digest, or [`RegistryError::NotFound`].
    pub async fn manifest_digest(
        &self,
        reference: &ImageReference,
    ) -> Result<String, RegistryError> {
        let (_, _, response) = self.request_manifest(reference, Method::HEAD).await?;
        let header = response
            .headers()
            .get(DIGEST_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|d| crate::reference::check_digest(d).is_ok())
            .map(str::to_string);
        match header {
            Some(digest) => Ok(digest),
            // Some registries omit the header on HEAD: compute it from the document.
            None => Ok(self.get_manifest(reference).await?.digest),
        }
    }

    /// `GET` the manifest. When the reference pins a digest, the content is verified against it.
    pub async fn get_manifest(
        &self,
        reference: &ImageReference,
    ) -> Result<Manifest, RegistryError> {
        let (endpoint, what, response) = self.request_manifest(reference, Method::GET).await?;
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
            .unwrap_or_default();
        let within = self.transport.timeouts.first_byte;
        let bytes = read_limited(response, MAX_DOCUMENT, &endpoint.registry, &what, within).await?;
        let digest = sha256_digest(&bytes);
        if let Some(expected) = &reference.digest
            && expected.starts_with("sha256:")
            && *expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                registry: endpoint.registry.clone(),
                what,
                expected: expected.clone(),
                actual: digest,
            });
        }
        Ok(Manifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// `GET` a blob of `reference`'s repository (at most `limit` bytes), verifying its digest.
    pub async fn get_blob(
        &self,
        reference: &ImageReference,
        digest: &str,
        limit: usize,
    ) -> Result<Vec<u8>, RegistryError> {
        let endpoint = self.endpoint(reference)?;
        let what = format!("blob `{digest}` of `{}`", reference.name());
        crate::reference::check_digest(digest).map_err(|_| RegistryError::InvalidResponse {
            registry: endpoint.registry.clone(),
            what: what.clone(),
            reason: "the digest is malformed".to_string(),
        })?;
        let target = Target::pull(&endpoint, &reference.repository);
        let url = endpoint.url(&format!("v2/{}/blobs/{digest}", reference.repository))?;
        let sent = self
            .transport
            .send(&target, Method::GET, &url, |b| b)
            .await?;
        let response = expect_success(&endpoint, &what, sent).await?;
        let within = self.transport.timeouts.first_byte;
        let bytes = read_limited(response, limit, &endpoint.registry, &what, within).await?;
        let actual = sha256_digest(&bytes);
        if digest.starts_with("sha256:") && actual != digest {
            return Err(RegistryError::DigestMismatch {
                registry: endpoint.registry.clone(),
                what,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }
}

pub(crate) fn manifest_url(
    endpoint: &Endpoint,
    reference: &ImageReference,
) -> Result<reqwest::Url, RegistryError> {
    endpoint.url(&format!(
        "v2/{}/manifests/{}",
        reference.repository,
        reference.manifest_reference()
    ))
}

/// Turns a non-2xx answer into the matching error: 404 and the registry's "unknown" codes
/// are [`RegistryError::NotFound`]; 5xx/429 that outlasted the retries are
/// [`RegistryError::ServerError`]; anything else is [`RegistryError::UnexpectedStatus`].
pub(crate) async fn expect_success(
    endpoint: &Endpoint,
    what: &str,
    sent: Sent,
) -> Result<reqwest::Response, RegistryError> {
    let status = sent.response.status();
    if status.is_success() {
        return Ok(sent.response);
    }
    let registry = endpoint.registry.clone();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(RegistryError::ServerError {
            registry,
            status: status.as_u16(),
            what: what.to_string(),
            attempts: sent.attempts,
        });
    }
    let (code, message) = error_summary(sent.response, sent.within).await;
    let unknown = code
        .as_deref()
        .is_some_and(|c| matches!(c, "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "BLOB_UNKNOWN"));
    if status == StatusCode::NOT_FOUND || unknown {
        return Err(RegistryError::NotFound {
            registry,
            what: what.to_string(),
            code,
        });
    }
    Err(RegistryError::UnexpectedStatus {
        registry,
        status: status.as_u16(),
        what: what.to_string(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    /// The lead spawns checks on a multi-threaded runtime: the client and its futures must be
    /// shareable and `Send` (no lock held across an `.await`).
    #[test]
    fn client_and_futures_are_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let client = RegistryClient::builder().build().expect("client");
        send_sync(&client);
        let reference = ImageReference::parse("ghcr.io/o/a:v1").expect("reference");
        let platforms: Vec<Platform> = Vec::new();
        send(client.check(&reference, &platforms));
        send(client.push_blob(&reference, Vec::new()));
        send(client.put_manifest(&reference, "x", Vec::new()));
    }
}
