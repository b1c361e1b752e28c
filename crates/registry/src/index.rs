//! Multi-platform images: what platforms a manifest provides, and assembling an index.
//!
//! An engine whose image store holds one platform per tag (Docker 20.10's classic store)
//! cannot push a multi-platform image itself; each platform's image is pushed under its own
//! tag, and the index that names them all is put under the image's name here. Each entry's
//! platform is read from the pushed image's config, not assumed from what was asked for, so an
//! engine that built the wrong platform cannot produce an index that lies.

use crate::body::MAX_DOCUMENT;
use crate::client::RegistryClient;
use crate::error::RegistryError;
use crate::manifest::{
    Descriptor, ImageConfigPlatform, ImageIndex, ImageManifest, Manifest, ParsedManifest,
    media_types,
};
use crate::platform::Platform;
use crate::reference::ImageReference;

impl RegistryClient {
    /// The manifest of `reference` and the platforms it provides: an index's entries, or the
    /// one platform of an image's config.
    pub async fn platforms(
        &self,
        reference: &ImageReference,
    ) -> Result<(Manifest, Vec<Platform>), RegistryError> {
        let manifest = self.get_manifest(reference).await?;
        let platforms = match parse(reference, &manifest)? {
            ParsedManifest::Index(index) => index
                .manifests
                .into_iter()
                .filter_map(|m| m.platform)
                .collect(),
            ParsedManifest::Image(image) => vec![self.config_platform(reference, &image).await?],
        };
        Ok((manifest, platforms))
    }

    async fn config_platform(
        &self,
        reference: &ImageReference,
        image: &ImageManifest,
    ) -> Result<Platform, RegistryError> {
        let config = self
            .get_blob(reference, &image.config.digest, MAX_DOCUMENT)
            .await?;
        let platform: ImageConfigPlatform =
            serde_json::from_slice(&config).map_err(|_| RegistryError::InvalidResponse {
                registry: reference.registry.clone(),
                what: format!("config of `{reference}`"),
                reason: "it has no `os` and `architecture`".to_string(),
            })?;
        Ok(platform.into())
    }

    /// Puts an index under `target` naming the single-platform images `images` (already
    /// pushed, in `target`'s repository: a registry accepts an index only when every manifest
    /// it names is in the same repository), each with the platform its config declares, which
    /// must be the one it was built for (else [`RegistryError::InvalidResponse`]). Returns the
    /// index's digest. A Docker manifest list when every image is a Docker v2 manifest (what
    /// Docker pushes), an OCI index otherwise.
    pub async fn push_index(
        &self,
        target: &ImageReference,
        images: &[(ImageReference, Platform)],
    ) -> Result<String, RegistryError> {
        let mut manifests = Vec::with_capacity(images.len());
        for (image, wanted) in images {
            let manifest = self.get_manifest(image).await?;
            let ParsedManifest::Image(parsed) = parse(image, &manifest)? else {
                return Err(RegistryError::InvalidResponse {
                    registry: image.registry.clone(),
                    what: format!("manifest `{image}`"),
                    reason: "it is an index; an index entry must be one platform's image"
                        .to_string(),
                });
            };
            let platform = self.config_platform(image, &parsed).await?;
            if !wanted.is_satisfied_by(&platform) {
                return Err(RegistryError::InvalidResponse {
                    registry: image.registry.clone(),
                    what: format!("image `{image}`"),
                    reason: format!("it was built for {wanted} but its config says {platform}"),
                });
            }
            let media_type = parsed
                .media_type
                .clone()
                .unwrap_or_else(|| manifest.media_type.clone());
            manifests.push(Descriptor {
                media_type,
                digest: manifest.digest.clone(),
                size: manifest.bytes.len() as u64,
                platform: Some(platform),
            });
        }
        let media_type = if manifests
            .iter()
            .all(|m| m.media_type == media_types::DOCKER_MANIFEST)
        {
            media_types::DOCKER_MANIFEST_LIST
        } else {
            media_types::OCI_INDEX
        };
        let index = ImageIndex {
            schema_version: 2,
            media_type: Some(media_type.to_string()),
            manifests,
        };
        let body = serde_json::to_vec(&index).map_err(|e| RegistryError::InvalidResponse {
            registry: target.registry.clone(),
            what: format!("index `{target}`"),
            reason: format!("cannot encode it: {e}"),
        })?;
        self.put_manifest(target, media_type, body).await
    }
}

fn parse(reference: &ImageReference, manifest: &Manifest) -> Result<ParsedManifest, RegistryError> {
    manifest
        .parse()
        .map_err(|reason| RegistryError::InvalidResponse {
            registry: reference.registry.clone(),
            what: format!("manifest `{reference}`"),
            reason,
        })
}
