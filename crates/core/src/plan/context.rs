//! The build context: which files it holds, and the byte-for-byte reproducible tar it is sent as.
//!
//! Layout (our files are namespaced, so no user file can collide with them or with each other):
//!
//! | path in the tar                 | content                                                   |
//! |---------------------------------|-----------------------------------------------------------|
//! | `.imagespec/Dockerfile`         | the rendered Dockerfile                                   |
//! | `.imagespec/deps/<file name>`   | the `requirements` file (and the `pyproject.toml` beside a lock file) |
//! | `copy/<entry>[/<file>]`         | each `copy` entry: a file, or a directory's selected files |
//! | `source/<file>`                 | the selected files of `source_root`                       |
//!
//! The files are exactly the ones [`crate::inputs::select`] chose for the image name, so the
//! context holds the files that were hashed and nothing else: ignore files act on both at once.
//! A symlink inside a tree is written as a symlink entry (mode 0777, its target as on disk).
//!
//! The tar is a function of the selected files' paths, bytes and executable bits only: entries
//! sorted by path, explicit directory entries, GNU headers with mtime 0, uid/gid 0, no user or
//! group names, mode 0644 (0755 for executables and directories). Paths over 100 bytes use the
//! GNU long-name entry, itself written with fixed fields. Each file's bytes are checked against
//! the digest recorded when the plan was made while they are streamed, so a file edited during
//! the build fails the build instead of shipping content the image name does not describe.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::PlanError;
use crate::inputs::{PathInput, SpecInputs};

/// Path of the Dockerfile inside the context.
pub const DOCKERFILE_PATH: &str = ".imagespec/Dockerfile";
/// Directory of the dependency files inside the context.
pub const DEPS_DIR: &str = ".imagespec/deps";
/// Directory of the `copy` entries inside the context.
pub const COPY_DIR: &str = "copy";
/// Directory of the `source_root` files inside the context.
pub const SOURCE_DIR: &str = "source";

/// One file of the build context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextFile {
    /// Path inside the context tar (always `/`-separated).
    pub path: String,
    /// The file on disk (its directory canonicalised).
    pub source: PathBuf,
    /// Written with mode 0755 instead of 0644.
    pub executable: bool,
    /// SHA-256 of the bytes, as hashed for the image name.
    #[serde(serialize_with = "hex_digest")]
    pub digest: [u8; 32],
    /// The spec field that brought the file in (`requirements`, `copy[0]`, `source_root`).
    pub field: String,
    /// A symlink inside a tree: written as a link (to the target it has on disk, which stays
    /// inside the tree), `digest` being that of the target's text.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub symlink: bool,
}

fn hex_digest<S: serde::Serializer>(d: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(d))
}

/// What [`super::BuildPlan::write_context`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextSummary {
    /// Tar entries, directories included.
    pub entries: usize,
    /// Regular files, the Dockerfile included.
    pub files: usize,
    /// Length of the tar stream in bytes.
    pub bytes: u64,
    /// `sha256:<hex>` of the tar stream.
    pub digest: String,
}

/// The context files of a spec, sorted by context path, from its selected inputs.
pub(crate) fn files(inputs: &SpecInputs) -> Vec<ContextFile> {
    let mut files = BTreeMap::new();
    if let Some(req) = &inputs.requirements {
        // The requirements file keeps the name the spec gives it (the install command names it),
        // not its link target's; the companion is always `pyproject.toml`.
        let name = Path::new(&req.spec_path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let companion = req
            .companion
            .as_ref()
            .map(|file| ("pyproject.toml".to_string(), file));
        for (name, file) in std::iter::once((name, &req.file)).chain(companion) {
            let context_file = ContextFile {
                path: format!("{DEPS_DIR}/{name}"),
                source: file.fs_path.clone(),
                // Dependency lists are data, whatever their mode on disk.
                executable: false,
                digest: file.digest,
                field: "requirements".to_string(),
                symlink: false,
            };
            files.insert(context_file.path.clone(), context_file);
        }
    }
    for entry in &inputs.copy {
        add_path(
            entry,
            &join(COPY_DIR, &normalize(&entry.spec_path)),
            &mut files,
        );
    }
    if let Some(src) = &inputs.source_root {
        add_path(src, SOURCE_DIR, &mut files);
    }
    files.into_values().collect()
}

/// Adds a `copy` entry or `source_root`: a file at `prefix`, or a directory's selection below it.
fn add_path(entry: &PathInput, prefix: &str, files: &mut BTreeMap<String, ContextFile>) {
    for file in entry.files() {
        let context_file = ContextFile {
            path: join(prefix, &slash_path(&file.rel)),
            source: file.source,
            executable: file.executable,
            digest: file.digest,
            field: entry.field.clone(),
            symlink: file.symlink,
        };
        files.insert(context_file.path.clone(), context_file);
    }
}

/// A spec-relative path as `/`-separated components, without `.` (`./data/` → `data`).
fn normalize(rel: &str) -> String {
    Path::new(rel)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn slash_path(path: &str) -> String {
    if std::path::MAIN_SEPARATOR == '/' {
        path.to_string()
    } else {
        path.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

fn join(prefix: &str, rel: &str) -> String {
    if rel.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

/// One tar entry, in the order they are written.
enum Item<'a> {
    Dir,
    Bytes(&'a [u8]),
    File(&'a ContextFile),
}

/// Writes the context tar: the Dockerfile, `files`, and every directory above them.
pub(crate) fn write_tar<W: Write>(
    out: W,
    dockerfile: &str,
    files: &[ContextFile],
) -> Result<ContextSummary, PlanError> {
    let mut items: BTreeMap<String, Item<'_>> = BTreeMap::new();
    let mut dirs = BTreeSet::new();
    let all_paths = files
        .iter()
        .map(|f| f.path.as_str())
        .chain([DOCKERFILE_PATH]);
    for path in all_paths {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i + 1;
            dirs.insert(path[..end].to_string());
        }
    }
    for dir in dirs {
        items.insert(dir, Item::Dir);
    }
    items.insert(
        DOCKERFILE_PATH.to_string(),
        Item::Bytes(dockerfile.as_bytes()),
    );
    for file in files {
        items.insert(file.path.clone(), Item::File(file));
    }

    let mut builder = tar::Builder::new(DigestWriter::new(out));
    let mut summary_files = 0;
    for (path, item) in &items {
        match item {
            Item::Dir => {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                builder
                    .append_data(&mut h, path, io::empty())
                    .map_err(PlanError::Write)?;
            }
            Item::Bytes(bytes) => {
                let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
                builder
                    .append_data(&mut h, path, *bytes)
                    .map_err(PlanError::Write)?;
                summary_files += 1;
            }
            Item::File(file) if file.symlink => append_link(&mut builder, path, file)?,
            Item::File(file) => {
                append_file(&mut builder, path, file)?;
                summary_files += 1;
            }
        }
    }
    let mut writer = builder.into_inner().map_err(PlanError::Write)?;
    writer.flush().map_err(PlanError::Write)?;
    Ok(ContextSummary {
        entries: items.len(),
        files: summary_files,
        bytes: writer.count,
        digest: format!("sha256:{}", hex::encode(writer.hasher.finalize())),
    })
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Writes one symlink, checking it still points where it pointed when it was hashed.
fn append_link<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    file: &ContextFile,
) -> Result<(), PlanError> {
    let target = std::fs::read_link(&file.source).map_err(|source| PlanError::Read {
        field: file.field.clone(),
        path: file.source.clone(),
        source,
    })?;
    let target = target.to_string_lossy();
    let digest: [u8; 32] = Sha256::digest(target.as_bytes()).into();
    if digest != file.digest {
        return Err(PlanError::ContextChanged {
            path: file.source.clone(),
        });
    }
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    builder
        .append_link(&mut h, path, target.as_ref())
        .map_err(PlanError::Write)?;
    Ok(())
}

/// Streams one file into the tar, checking it is still the file that was hashed.
fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    file: &ContextFile,
) -> Result<(), PlanError> {
    let read_err = |source| PlanError::Read {
        field: file.field.clone(),
        path: file.source.clone(),
        source,
    };
    let changed = || PlanError::ContextChanged {
        path: file.source.clone(),
    };
    let handle = File::open(&file.source).map_err(read_err)?;
    let size = handle.metadata().map_err(read_err)?.len();
    let mode = if file.executable { 0o755 } else { 0o644 };
    let mut h = header(tar::EntryType::Regular, mode, size);
    let mut reader = CheckedReader {
        file: handle,
        remaining: size,
        hasher: Sha256::new(),
        error: None,
    };
    if let Err(e) = builder.append_data(&mut h, path, &mut reader) {
        return Err(match reader.error.take() {
            Some(ReadFailure::Shrank) => changed(),
            Some(ReadFailure::Io(source)) => read_err(source),
            None => PlanError::Write(e),
        });
    }
    let mut extra = [0u8; 1];
    let grew = reader.file.read(&mut extra).map_err(read_err)? != 0;
    let digest: [u8; 32] = reader.hasher.finalize().into();
    if grew || digest != file.digest {
        return Err(changed());
    }
    Ok(())
}

enum ReadFailure {
    Shrank,
    Io(io::Error),
}

/// Reads exactly `remaining` bytes, hashing them; ending early is an error, not a short entry.
struct CheckedReader {
    file: File,
    remaining: u64,
    hasher: Sha256,
    error: Option<ReadFailure>,
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = match self.file.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error = Some(ReadFailure::Io(e));
                return Err(copy);
            }
        };
        if n == 0 {
            self.error = Some(ReadFailure::Shrank);
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being read",
            ));
        }
        self.remaining -= n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Counts and hashes everything written through it.
struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> DigestWriter<W> {
    fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_entries() {
        assert_eq!(normalize("./data/"), "data");
        assert_eq!(normalize("a/./b"), "a/b");
        assert_eq!(normalize("."), "");
        assert_eq!(join(COPY_DIR, ""), "copy");
        assert_eq!(join(COPY_DIR, "a/b"), "copy/a/b");
    }
}
