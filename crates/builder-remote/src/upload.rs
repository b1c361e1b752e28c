//! Content-addressed upload: ask which blobs the service lacks, send only those.
//!
//! A second build after editing one file therefore sends about that file's bytes, whatever the
//! size of the project (flyte-sdk re-uploads a tarball of everything every time).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::RemoteError;
use crate::files::{LocalFile, Selection};
use crate::http::{Api, Body};
use crate::protocol::{BlobStored, MissingBlobsRequest, MissingBlobsResponse, blob_digest};

/// Uploads in flight at once.
const PARALLEL_UPLOADS: usize = 4;

/// What one synchronisation sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UploadStats {
    /// Distinct blobs the build needs.
    pub blobs: usize,
    /// Blobs sent.
    pub uploaded: usize,
    /// Their bytes.
    pub uploaded_bytes: u64,
    /// Bytes of every file the build needs (what a full upload would send).
    pub total_bytes: u64,
}

/// Makes sure the service holds every blob of `selection`.
pub async fn sync_blobs(
    api: &Api,
    selection: &Selection,
    cancel: &CancellationToken,
) -> Result<UploadStats, RemoteError> {
    let mut by_digest: BTreeMap<String, &LocalFile> = BTreeMap::new();
    // A link is sent as its target in the manifest; it has no blob.
    for file in selection.files.values().filter(|f| f.symlink.is_none()) {
        by_digest.entry(blob_digest(&file.digest)).or_insert(file);
    }
    let request = serde_json::to_value(MissingBlobsRequest {
        digests: by_digest.keys().cloned().collect(),
    })
    .map_err(|e| RemoteError::Protocol(e.to_string()))?;
    let missing: MissingBlobsResponse = api
        .call(
            Method::POST,
            "/blobs/missing",
            Body::Json(&request),
            Duration::from_secs(60),
        )
        .await?;
    let mut stats = UploadStats {
        blobs: by_digest.len(),
        total_bytes: selection.total_bytes(),
        ..UploadStats::default()
    };
    let wanted: Vec<(String, PathBuf)> = missing
        .missing
        .into_iter()
        .filter_map(|d| by_digest.get(&d).map(|f| (d, f.source.clone())))
        .collect();
    let uploads = futures::stream::iter(wanted)
        .map(|(digest, source)| upload_one(api, digest, source))
        .buffer_unordered(PARALLEL_UPLOADS);
    tokio::pin!(uploads);
    loop {
        let next = tokio::select! {
            next = uploads.next() => next,
            () = cancel.cancelled() => return Err(RemoteError::Cancelled),
        };
        match next {
            None => break,
            Some(result) => {
                stats.uploaded += 1;
                stats.uploaded_bytes += result?;
            }
        }
    }
    Ok(stats)
}

async fn upload_one(api: &Api, digest: String, source: PathBuf) -> Result<u64, RemoteError> {
    let path = format!("/blobs/{digest}");
    let stored: BlobStored = api
        .call(
            Method::PUT,
            &path,
            Body::File(&source),
            Duration::from_secs(600),
        )
        .await?;
    Ok(stored.size)
}
