//! A cross-process build lock, keyed by image name.
//!
//! Several `imagespec build` processes on one machine asked for the same new image all built
//! (and pushed) it. The engine takes this lock before it checks existence, so a second process
//! waits while the first builds, then finds the image the first pushed and builds nothing.
//! The in-process deduplication in the engine covers one process; this covers a machine.
//!
//! The lock is an advisory file lock (`flock` on Unix) on a file whose name is a hash of the
//! image name (never the name itself, which is harmless, and never anything secret), in
//! `$XDG_RUNTIME_DIR/imagespec/locks` or, without it, `<temp dir>/imagespec-locks`. The
//! operating system releases it when the process exits, however it exits, so a crashed
//! builder never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// How often a waiting process tries the lock again. `flock` has no async wait, and a
/// blocking wait in a thread could not be cancelled by Ctrl-C; polling can.
const POLL: Duration = Duration::from_millis(200);

/// Held while an image is checked and built; released when dropped.
#[derive(Debug)]
pub(crate) struct BuildLock {
    // Closing the file releases the lock.
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// The lock directory or file cannot be created or locked; the build goes on unlocked.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Cancelled (Ctrl-C) while waiting for another process.
    Cancelled,
}

/// The directory lock files live in.
pub(crate) fn lock_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("imagespec").join("locks"),
        None => std::env::temp_dir().join("imagespec-locks"),
    }
}

/// The lock file for `image` in `dir`.
pub(crate) fn lock_path(dir: &Path, image: &str) -> PathBuf {
    let digest = Sha256::digest(image.as_bytes());
    dir.join(format!("{}.lock", hex::encode(&digest[..16])))
}

/// Takes the build lock for `image`, waiting (visibly, cancellably) while another process
/// holds it.
pub(crate) async fn acquire(
    dir: &Path,
    image: &str,
    cancel: &CancellationToken,
) -> Result<BuildLock, LockError> {
    let path = lock_path(dir, image);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let mut announced = false;
    loop {
        match file.try_lock() {
            Ok(()) => {
                if announced {
                    tracing::info!("the other imagespec process building {image} is done");
                }
                return Ok(BuildLock { _file: file });
            }
            Err(TryLockError::WouldBlock) => {
                if !announced {
                    tracing::warn!(
                        lock = %path.display(),
                        "waiting for another imagespec process building {image} (Ctrl-C to stop)"
                    );
                    announced = true;
                }
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(LockError::Cancelled),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_is_a_hash_of_the_image_name() {
        let dir = Path::new("/locks");
        let a = lock_path(dir, "127.0.0.1:5000/app:abc");
        assert_eq!(a, lock_path(dir, "127.0.0.1:5000/app:abc"));
        assert_ne!(a, lock_path(dir, "127.0.0.1:5000/app:abd"));
        let name = a.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(!name.contains("app"), "{name}");
        assert_eq!(name.len(), 32 + ".lock".len(), "{name}");
    }

    #[tokio::test]
    async fn a_second_holder_waits_until_the_first_releases_and_can_be_cancelled() {
        let dir = tempfile::tempdir().expect("tmp");
        let never = CancellationToken::new();
        let first = acquire(dir.path(), "x:1", &never).await.expect("first");
        // A second open file description conflicts even within one process (flock semantics),
        // so one test process can stand in for two.
        let cancel = CancellationToken::new();
        let waiting = {
            let (dir, cancel) = (dir.path().to_path_buf(), cancel.clone());
            tokio::spawn(async move { acquire(&dir, "x:1", &cancel).await })
        };
        // Another image is not blocked.
        let other = acquire(dir.path(), "x:2", &never)
            .await
            .expect("other image");
        drop(other);
        cancel.cancel();
        let cancelled = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the waiter stops when cancelled")
            .expect("task");
        assert!(matches!(cancelled, Err(LockError::Cancelled)));
        let patient = {
            let (dir, never) = (dir.path().to_path_buf(), never.clone());
            tokio::spawn(async move { acquire(&dir, "x:1", &never).await })
        };
        tokio::task::yield_now().await;
        assert!(!patient.is_finished(), "the lock is still held");
        drop(first);
        let got = tokio::time::timeout(Duration::from_secs(10), patient)
            .await
            .expect("the waiter gets the lock once it is released")
            .expect("task");
        assert!(got.is_ok());
    }
}
