//! A build's workspace: `<data_dir>/workspaces/<build id>/`, the client's files laid out as the
//! manifest says, so that `LoadedSpec::from_spec(spec, workspace)` sees what the client saw.
//!
//! Manifest paths come from the network: only plain relative paths are accepted (no absolute
//! path, `..`, `.`, empty component or backslash), so nothing is written outside the workspace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imagespec_core::tree::filesystem::link_stays_inside;
use imagespec_protocol::FileEntry;
use sha2::{Digest, Sha256};

use crate::blobs::BlobStore;

/// Why a workspace could not be laid out.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(
        "`{0}` is not a plain relative path (no `..`, `.`, empty parts, backslashes or leading `/`)"
    )]
    BadPath(String),
    #[error("`{0}` is both a file and a directory in the manifest")]
    Conflict(String),
    #[error(
        "`{path}` is a symlink to `{target}`, which leaves the workspace, or whose digest is not that of its target"
    )]
    BadLink { path: String, target: String },
    #[error("cannot write the workspace: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks a manifest path.
pub fn check_path(path: &str) -> Result<(), WorkspaceError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if ok {
        Ok(())
    } else {
        Err(WorkspaceError::BadPath(path.to_string()))
    }
}

/// Checks a manifest symlink: its target stays inside the workspace (the client's selection
/// refuses links that leave their tree: the rule is core's, `link_stays_inside`), and its digest
/// is that of the target's text, as the image name was hashed from.
pub fn check_link(path: &str, entry: &FileEntry) -> Result<(), WorkspaceError> {
    let Some(target) = &entry.symlink else {
        return Ok(());
    };
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(target.as_bytes())));
    if target.contains('\0')
        || digest != entry.digest
        || !link_stays_inside(path, Path::new(target))
    {
        return Err(WorkspaceError::BadLink {
            path: path.to_string(),
            target: target.clone(),
        });
    }
    Ok(())
}

/// Writes every manifest file from the blob store into `dir` (created fresh).
pub fn materialise(
    blobs: &BlobStore,
    project: &str,
    files: &BTreeMap<String, FileEntry>,
    dir: &Path,
) -> Result<(), WorkspaceError> {
    for (path, entry) in files {
        check_path(path)?;
        check_link(path, entry)?;
    }
    // `a` as a file and `a/b` in one manifest cannot both exist.
    for (path, _) in files.range::<str, _>(..) {
        let prefix = format!("{path}/");
        if files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
        {
            return Err(WorkspaceError::Conflict(path.clone()));
        }
    }
    std::fs::create_dir_all(dir)?;
    for (path, entry) in files {
        let dest: PathBuf = dir.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match &entry.symlink {
            Some(target) => std::os::unix::fs::symlink(target, &dest)?,
            None => blobs.copy_to(project, &entry.digest, &dest, entry.executable)?,
        }
    }
    Ok(())
}

/// Removes a workspace; a missing one is fine.
pub fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove the workspace {}: {e}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths() {
        for ok in ["a", "a/b.txt", ".gitignore", "src/.dockerignore", "..a"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
            "a/.",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_cannot_also_be_a_directory() {
        let dir = tempfile::tempdir().expect("tmp");
        let blobs = BlobStore::new(dir.path().join("b"), dir.path().join("t"));
        let entry = FileEntry {
            digest: format!("sha256:{}", "0".repeat(64)),
            executable: false,
            symlink: None,
        };
        let files: BTreeMap<String, FileEntry> =
            [("a".to_string(), entry.clone()), ("a/b".to_string(), entry)]
                .into_iter()
                .collect();
        assert!(matches!(
            materialise(&blobs, "p", &files, &dir.path().join("w")),
            Err(WorkspaceError::Conflict(_))
        ));
    }

    #[test]
    fn links_must_stay_inside_and_match_their_digest() {
        let link = |target: &str| FileEntry {
            digest: format!("sha256:{}", hex::encode(Sha256::digest(target.as_bytes()))),
            executable: false,
            symlink: Some(target.to_string()),
        };
        assert!(check_link("src/run.py", &link("app/main.py")).is_ok());
        assert!(check_link("src/run.py", &link("../reqs/r.txt")).is_ok());
        for bad in ["/etc/passwd", "../../x", "../../../data/state.db"] {
            assert!(
                matches!(
                    check_link("src/run.py", &link(bad)),
                    Err(WorkspaceError::BadLink { .. })
                ),
                "{bad}"
            );
        }
        let mut lying = link("app/main.py");
        lying.symlink = Some("app/other.py".into());
        assert!(
            check_link("src/run.py", &lying).is_err(),
            "digest must be the target's"
        );

        let dir = tempfile::tempdir().expect("tmp");
        let blobs = BlobStore::new(dir.path().join("b"), dir.path().join("t"));
        let files: BTreeMap<String, FileEntry> = [("src/run.py".to_string(), link("app/main.py"))]
            .into_iter()
            .collect();
        let ws = dir.path().join("w");
        materialise(&blobs, "p", &files, &ws).expect("materialise");
        assert_eq!(
            std::fs::read_link(ws.join("src/run.py")).expect("a link"),
            Path::new("app/main.py")
        );
    }
}
