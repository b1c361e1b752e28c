//! A lock across test processes on one engine's image store: builds share it, image removals
//! take it alone.
//!
//! Why: removing an image (`rmi --force`, which also removes the build's now-dangling
//! intermediate images) while another build runs on the same Podman store makes that build
//! fail with `layer not known` (Buildah walks the store's images for its layer cache and reads
//! layers of images being removed, at any step, `COPY --from` included). nextest runs every
//! scenario in its own process, so an in-process lock is not enough: this is an advisory
//! `flock` on a file in the temporary directory, one per engine CLI. Waiting is bounded: after
//! [`MAX_WAIT`] the caller goes on without the lock (and says so), so a stuck process cannot
//! hang the suite; the builder's own retry on that error is then the safety net.

use std::fs::File;

use rustix::fs::{FlockOperation, flock};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a build or a removal waits for the lock before going on without it.
pub const MAX_WAIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(100);

/// Held until dropped (closing the file releases the `flock`).
#[derive(Debug)]
pub struct StoreLock(#[allow(dead_code)] Option<File>);

fn path(engine: &str) -> PathBuf {
    std::env::temp_dir().join(format!("imagespec-tests-{engine}-store.lock"))
}

fn open(engine: &str) -> Option<File> {
    let p = path(engine);
    match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
    {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!(
                "warning: cannot open {}: {e}; going on without the store lock",
                p.display()
            );
            None
        }
    }
}

fn try_take(file: &File, exclusive: bool) -> Result<bool, std::io::Error> {
    let op = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    match flock(file, op) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn gave_up(engine: &str, why: &str) -> StoreLock {
    eprintln!("warning: {engine} store lock: {why}; going on without it");
    StoreLock(None)
}

/// The shared lock, for a build (async: waiting must not block the runtime).
pub async fn for_build(engine: &str) -> StoreLock {
    let Some(file) = open(engine) else {
        return StoreLock(None);
    };
    let start = Instant::now();
    loop {
        match try_take(&file, false) {
            Ok(true) => return StoreLock(Some(file)),
            Ok(false) if start.elapsed() < MAX_WAIT => tokio::time::sleep(POLL).await,
            Ok(false) => return gave_up(engine, "still held after the maximum wait"),
            Err(e) => return gave_up(engine, &e.to_string()),
        }
    }
}

/// The exclusive lock, for removing images (synchronous: it runs from `Drop`).
pub fn for_removal(engine: &str) -> StoreLock {
    let Some(file) = open(engine) else {
        return StoreLock(None);
    };
    let start = Instant::now();
    loop {
        match try_take(&file, true) {
            Ok(true) => return StoreLock(Some(file)),
            Ok(false) if start.elapsed() < MAX_WAIT => std::thread::sleep(POLL),
            Ok(false) => return gave_up(engine, "still held after the maximum wait"),
            Err(e) => return gave_up(engine, &e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn removal_excludes_builds_and_builds_share() {
        let engine = format!("unit-{}", std::process::id());
        let a = for_build(&engine).await;
        let b = for_build(&engine).await;
        assert!(a.0.is_some() && b.0.is_some(), "builds share the lock");
        let probe = open(&engine).expect("open");
        assert!(
            !try_take(&probe, true).expect("try"),
            "a removal waits for builds"
        );
        drop((a, b));
        assert!(
            try_take(&probe, true).expect("try"),
            "and proceeds once they are done"
        );
        let _ = std::fs::remove_file(path(&engine));
    }
}
