//! The OCI / Docker manifest documents, only the fields imagespec reads or writes.
//!
//! Deserialisation ignores unknown fields (annotations, history, …) so new registry features
//! do not break the existence check; serialisation writes the OCI field names so the same
//! types can build a small image for tests or for a minimal push.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::platform::Platform;

/// Media types the client asks for and understands.
pub mod media_types {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// The `Accept` header for manifest requests: every kind we can interpret. Without it,
    /// registries fall back to the legacy schema 1 format or refuse multi-arch indexes.
    pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.docker.distribution.manifest.v2+json";
}

/// `sha256:<hex>` of `bytes`: the content address registries use.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A reference to content: media type, digest and size (and a platform in an index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// The descriptor of `bytes` with this media type.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
            platform: None,
        }
    }
}

/// An OCI image index or Docker manifest list: one manifest per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// An OCI image manifest or Docker v2 manifest: one platform's config and layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The platform fields of an image config blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfigPlatform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl From<ImageConfigPlatform> for Platform {
    fn from(c: ImageConfigPlatform) -> Self {
        Platform {
            os: c.os,
            architecture: c.architecture,
            variant: c.variant.filter(|v| !v.is_empty()),
        }
    }
}

/// A manifest as fetched: its bytes, the media type it was served as, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    /// `sha256:` of `bytes` (what a `name@digest` reference pins).
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// A fetched manifest, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedManifest {
    Index(ImageIndex),
    Image(ImageManifest),
}

impl Manifest {
    /// Interprets the manifest by media type, falling back to its shape when the registry sent
    /// a generic `Content-Type` (some do for OCI documents without `mediaType`).
    pub fn parse(&self) -> Result<ParsedManifest, String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            schema_version: Option<u32>,
            media_type: Option<String>,
            manifests: Option<serde::de::IgnoredAny>,
            config: Option<serde::de::IgnoredAny>,
        }
        let probe: Probe = serde_json::from_slice(&self.bytes)
            .map_err(|e| format!("it is not JSON (line {}, column {})", e.line(), e.column()))?;
        let media_type = probe.media_type.as_deref().unwrap_or(&self.media_type);
        let is_index = match media_type {
            media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST => true,
            media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST => false,
            _ if probe.schema_version == Some(1) => {
                return Err("it is a legacy schema 1 manifest, which is not supported".into());
            }
            _ if probe.manifests.is_some() => true,
            _ if probe.config.is_some() => false,
            other => return Err(format!("unsupported media type `{other}`")),
        };
        let shape = |e: serde_json::Error| format!("unexpected structure: {e}");
        if is_index {
            serde_json::from_slice(&self.bytes)
                .map(ParsedManifest::Index)
                .map_err(shape)
        } else {
            serde_json::from_slice(&self.bytes)
                .map(ParsedManifest::Image)
                .map_err(shape)
        }
    }
}
