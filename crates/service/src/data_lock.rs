//! One service per data directory: an exclusive `flock` on `<data_dir>/service.lock`, held for
//! the service's life, with the holder's pid written in it.
//!
//! Two services on one data directory would each take the other's running builds for
//! interrupted ones (and fail them while they still push), and race on the workspaces. The lock
//! is released by the kernel when the process dies, so a crash never leaves it stale.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// Held until dropped.
#[derive(Debug)]
pub struct DataDirLock(#[allow(dead_code)] File);

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the data directory {path} is in use by another imagespec service (pid {holder}); stop it or give this one another `data_dir`"
    )]
    InUse { path: PathBuf, holder: String },
    #[error("cannot lock the data directory with {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Takes the lock or says who holds it.
pub fn lock(data_dir: &Path) -> Result<DataDirLock, LockError> {
    let path = data_dir.join("service.lock");
    let io = |source: std::io::Error| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::InUse {
                path: data_dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "unknown".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(e) => return Err(io(e.into())),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(DataDirLock(file))
}
