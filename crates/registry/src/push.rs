//! A minimal push: monolithic blob uploads and manifest PUTs.
//!
//! Enough to put a small image (config, a layer, a manifest, an index) into a registry without
//! a container engine — for tests against a real registry, and for re-tagging or assembling
//! multi-platform indexes. Large layers belong to the engine's own push (chunked, resumable).

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use crate::client::{RegistryClient, expect_success};
use crate::error::RegistryError;
use crate::manifest::sha256_digest;
use crate::reference::ImageReference;
use crate::transport::Target;

impl RegistryClient {
    /// Uploads `data` as a blob of `reference`'s repository (tag and digest are ignored) and
    /// returns its digest. Skips the upload when the registry already has it.
    pub async fn push_blob(
        &self,
        reference: &ImageReference,
        data: Vec<u8>,
    ) -> Result<String, RegistryError> {
        let endpoint = self.endpoint(reference)?;
        let target = Target::push(&endpoint, &reference.repository);
        let digest = sha256_digest(&data);
        let what = format!("blob `{digest}` of `{}`", reference.name());
        let blob_url = endpoint.url(&format!("v2/{}/blobs/{digest}", reference.repository))?;
        let head = self
            .transport
            .send(&target, Method::HEAD, &blob_url, |b| b)
            .await?;
        if head.response.status().is_success() {
            tracing::debug!(%digest, "blob already present");
            return Ok(digest);
        }
        match expect_success(&endpoint, &what, head).await {
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
            Ok(_) => return Ok(digest),
        }

        let start = endpoint.url(&format!("v2/{}/blobs/uploads/", reference.repository))?;
        let sent = self
            .transport
            .send(&target, Method::POST, &start, |b| b)
            .await?;
        let started = expect_success(&endpoint, &format!("upload of {what}"), sent).await?;
        let location = started
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::InvalidResponse {
                registry: endpoint.registry.clone(),
                what: format!("upload of {what}"),
                reason: "the answer has no Location header".to_string(),
            })?;
        let mut upload = endpoint.url(location)?;
        upload.query_pairs_mut().append_pair("digest", &digest);

        let sent = self
            .transport
            .send(&target, Method::PUT, &upload, |b| {
                b.header(CONTENT_TYPE, "application/octet-stream")
                    .body(data.clone())
            })
            .await?;
        let done = expect_success(&endpoint, &format!("upload of {what}"), sent).await?;
        if done.status() != StatusCode::CREATED {
            tracing::debug!(
                status = done.status().as_u16(),
                "upload finished with a non-201 success"
            );
        }
        Ok(digest)
    }

    /// PUTs a manifest (or index) of `media_type` under `reference`'s tag (or, without a tag,
    /// under its own digest) and returns its digest. Every blob or manifest it refers to must
    /// already be in the repository.
    pub async fn put_manifest(
        &self,
        reference: &ImageReference,
        media_type: &str,
        body: Vec<u8>,
    ) -> Result<String, RegistryError> {
        let endpoint = self.endpoint(reference)?;
        let target = Target::push(&endpoint, &reference.repository);
        let digest = sha256_digest(&body);
        let name = reference.tag.as_deref().unwrap_or(&digest);
        let url = endpoint.url(&format!("v2/{}/manifests/{name}", reference.repository))?;
        let what = format!("manifest `{reference}`");
        let max = self.transport.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let sent = self
                .transport
                .send(&target, Method::PUT, &url, |b| {
                    b.header(CONTENT_TYPE, media_type).body(body.clone())
                })
                .await?;
            match expect_success(&endpoint, &what, sent).await {
                Ok(_) => return Ok(digest),
                // Right after a blob upload (ours or a concurrent pusher's), a registry may not
                // see the blob yet; the manifest is fine, so wait and send it again.
                Err(e) if e.is_blob_unknown() && attempt < max => {
                    let wait = self.transport.retry.backoff(attempt);
                    tracing::warn!(
                        "{}: pushing {what}: a blob it names is not visible yet ({e}); retrying in {} (attempt {attempt} of {max})",
                        endpoint.registry,
                        imagespec_core::net::seconds(wait)
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
