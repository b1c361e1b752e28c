//! Uploaded files, content-addressed and per project: `<data_dir>/blobs/<project>/sha256/<ab>/<hex>`.
//!
//! Per-project directories keep projects apart without any lookup table: a project can only
//! ever name, test or use its own blobs. An upload streams into `<data_dir>/tmp`, is hashed on
//! the way, and only lands (atomically renamed) when its digest and size check out, so a blob
//! in the store is always exactly its name.
//!
//! A blob's modification time is when it was last used (uploaded, asked about, or laid out
//! into a build), which is what garbage collection ([`crate::gc`]) removes the least recently
//! used by.

use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use imagespec_protocol::is_blob_digest;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::ids;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("`{0}` is not a blob digest; use sha256:<64 lower-case hex digits>")]
    InvalidDigest(String),
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the uploaded bytes hash to {actual}, not {expected}")]
    Mismatch { expected: String, actual: String },
    #[error("the upload broke off: {0}")]
    Body(String),
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
}

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    pub fn new(root: PathBuf, tmp: PathBuf) -> Self {
        BlobStore { root, tmp }
    }

    /// Where a project's blob lives (the digest must be valid).
    pub fn path(&self, project: &str, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.root
            .join(project)
            .join("sha256")
            .join(&hex[..2])
            .join(hex)
    }

    /// Whether the project has the blob; one it has counts as used now.
    pub async fn has(&self, project: &str, digest: &str) -> bool {
        if !is_blob_digest(digest) {
            return false;
        }
        let path = self.path(project, digest);
        tokio::task::spawn_blocking(move || touch(&path).is_ok())
            .await
            .unwrap_or(false)
    }

    /// Streams an upload into the store; returns its size and whether it was new.
    pub async fn put<S, E>(
        &self,
        project: &str,
        digest: &str,
        mut body: S,
        limit: u64,
    ) -> Result<(u64, bool), BlobError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if !is_blob_digest(digest) {
            return Err(BlobError::InvalidDigest(digest.to_string()));
        }
        tokio::fs::create_dir_all(&self.tmp).await?;
        // Removed however the upload ends: an error, or the request dropped mid-way (the
        // client went away, or the connection was closed).
        let tmp = TempFile(self.tmp.join(format!("upload-{}", ids::new_id())));
        let result = async {
            let mut file = tokio::fs::File::create(&tmp.0).await?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            file.sync_data().await?;
            let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
            if actual != digest {
                return Err(BlobError::Mismatch {
                    expected: digest.to_string(),
                    actual,
                });
            }
            Ok(size)
        }
        .await;
        let size = result?;
        let dest = self.path(project, digest);
        if self.has(project, digest).await {
            return Ok((size, false));
        }
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(&tmp.0, &dest).await?;
        Ok((size, true))
    }

    /// Copies a blob to `dest` (a build workspace), with the mode the manifest asks for.
    pub fn copy_to(
        &self,
        project: &str,
        digest: &str,
        dest: &Path,
        executable: bool,
    ) -> std::io::Result<()> {
        let source = self.path(project, digest);
        std::fs::copy(&source, dest)?;
        let _ = touch(&source);
        set_mode(dest, executable)
    }

    /// Every stored blob of every project, for garbage collection.
    pub fn entries(&self) -> std::io::Result<Vec<BlobEntry>> {
        let mut out = Vec::new();
        let projects = match std::fs::read_dir(&self.root) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for project in projects {
            let project = project?;
            let Some(name) = project.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(prefixes) = std::fs::read_dir(project.path().join("sha256")) else {
                continue;
            };
            for prefix in prefixes {
                for blob in std::fs::read_dir(prefix?.path())? {
                    let blob = blob?;
                    let digest = format!("sha256:{}", blob.file_name().to_string_lossy());
                    let meta = blob.metadata()?;
                    if !meta.is_file() || !is_blob_digest(&digest) {
                        continue;
                    }
                    out.push(BlobEntry {
                        project: name.clone(),
                        digest,
                        bytes: meta.len(),
                        used: meta.modified()?,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Removes one blob (gone already is fine).
    pub fn remove(&self, project: &str, digest: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(project, digest)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub project: String,
    pub digest: String,
    pub bytes: u64,
    /// When it was last used.
    pub used: std::time::SystemTime,
}

/// Marks a blob used now (its modification time); fails if it is not there.
fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.set_modified(std::time::SystemTime::now())
}

/// An upload's temporary file, removed when dropped unless it was renamed into the store.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        // After a successful rename there is nothing left to remove.
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        path,
        std::fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 }),
    )
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _executable: bool) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(bytes::Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn verifies_limits_and_separates_projects() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = BlobStore::new(dir.path().join("blobs"), dir.path().join("tmp"));
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(b"hello world")));
        assert_eq!(
            store
                .put("a", &digest, body(&[b"hello ", b"world"]), 100)
                .await
                .expect("put"),
            (11, true)
        );
        assert_eq!(
            store
                .put("a", &digest, body(&[b"hello world"]), 100)
                .await
                .expect("put"),
            (11, false)
        );
        assert!(store.has("a", &digest).await);
        assert!(!store.has("b", &digest).await);
        assert!(matches!(
            store.put("b", &digest, body(&[b"hello there"]), 100).await,
            Err(BlobError::Mismatch { .. })
        ));
        assert!(matches!(
            store.put("b", &digest, body(&[b"hello world"]), 5).await,
            Err(BlobError::TooLarge { limit: 5 })
        ));
        assert!(matches!(
            store.put("b", "sha256:../../x", body(&[]), 5).await,
            Err(BlobError::InvalidDigest(_))
        ));
        assert!(!store.has("b", &digest).await);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("tmp")
                .count(),
            0
        );
    }
}
