//! Tiny images pushed without an engine: a config blob, one layer blob, a manifest; and an
//! index over several of them. The registry only checks that referenced blobs exist, so the
//! "layer" is a few bytes rather than a real tarball.

use imagespec_registry::manifest::{Descriptor, ImageIndex, ImageManifest, media_types};
use imagespec_registry::{ImageReference, Platform, RegistryClient};

/// Which manifest format to write.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    Oci,
    Docker,
}

/// Pushes a one-layer image for `platform` under `reference`'s tag (or untagged if the
/// reference has none) and returns the manifest's descriptor, with the platform set.
pub async fn push_image(
    client: &RegistryClient,
    reference: &ImageReference,
    platform: &Platform,
    format: Format,
) -> Descriptor {
    let (manifest_type, config_type, layer_type) = match format {
        Format::Oci => (
            media_types::OCI_MANIFEST,
            media_types::OCI_CONFIG,
            media_types::OCI_LAYER_GZIP,
        ),
        Format::Docker => (
            media_types::DOCKER_MANIFEST,
            media_types::DOCKER_CONFIG,
            media_types::DOCKER_LAYER_GZIP,
        ),
    };
    let layer = format!("layer for {platform}").into_bytes();
    let mut config = serde_json::json!({
        "os": platform.os,
        "architecture": platform.architecture,
        "rootfs": { "type": "layers", "diff_ids": [] },
        "config": {},
    });
    if let Some(variant) = &platform.variant {
        config["variant"] = serde_json::json!(variant);
    }
    let config = serde_json::to_vec(&config).expect("config json");
    let config_digest = client
        .push_blob(reference, config.clone())
        .await
        .expect("push config");
    let layer_digest = client
        .push_blob(reference, layer.clone())
        .await
        .expect("push layer");
    let config_desc = Descriptor::of(config_type, &config);
    let layer_desc = Descriptor::of(layer_type, &layer);
    assert_eq!(config_desc.digest, config_digest);
    assert_eq!(layer_desc.digest, layer_digest);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(manifest_type.to_string()),
        config: config_desc,
        layers: vec![layer_desc],
    };
    let bytes = serde_json::to_vec(&manifest).expect("manifest json");
    let digest = client
        .put_manifest(reference, manifest_type, bytes.clone())
        .await
        .expect("put manifest");
    let mut descriptor = Descriptor::of(manifest_type, &bytes);
    assert_eq!(descriptor.digest, digest);
    descriptor.platform = Some(platform.clone());
    descriptor
}

/// Pushes one image per platform (untagged) and an OCI index over them under `reference`'s
/// tag; returns the index digest.
pub async fn push_index(
    client: &RegistryClient,
    reference: &ImageReference,
    platforms: &[Platform],
) -> String {
    let untagged = ImageReference {
        tag: None,
        ..reference.clone()
    };
    let mut manifests = Vec::new();
    for platform in platforms {
        manifests.push(push_image(client, &untagged, platform, Format::Oci).await);
    }
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(media_types::OCI_INDEX.to_string()),
        manifests,
    };
    let bytes = serde_json::to_vec(&index).expect("index json");
    client
        .put_manifest(reference, media_types::OCI_INDEX, bytes)
        .await
        .expect("put index")
}
