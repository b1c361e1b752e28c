//! The files that make an image: which files each spec field brings in, selected once.
//!
//! Every consumer takes its files from [`select`]: the image name's hash ([`crate::hash`]), the
//! build context ([`crate::plan`]), `imagespec validate` (which hashes), and the remote builder's
//! upload (`imagespec-builder-remote`). So a file is either in the name, the context and the
//! upload alike, or refused by all of them with the same error, before any work.
//!
//! The rules:
//! - `requirements` (and the `pyproject.toml` beside a lock file) and a `copy` entry that names
//!   a file are read through symlinks: their content counts. They must be regular files: a FIFO
//!   or a device is refused (reading a FIFO would wait forever).
//! - `copy` entries that name a directory and `source_root` are trees, selected by
//!   [`crate::tree::select_files`] after `.gitignore`/`.dockerignore` filtering, the root's
//!   `.dockerignore` ([`ROOT_DOCKERIGNORE`]) and the built-in excludes
//!   ([`crate::tree::BUILTIN_EXCLUDES`]). Inside a tree a symlink stays a symlink (as in
//!   Docker's build context and in git) and must point inside that tree; special files are
//!   refused.
//! - Nothing is read from a kernel pseudo file system (`/proc`, `/sys`, ...).
//! - `source_copy_mode: none` brings no source files in.

use std::path::{Component, Path, PathBuf};

use crate::hash::HashError;
use crate::hash::encoder::CanonicalEncoder;
use crate::spec::{LoadedSpec, RequirementsKind, SourceCopyMode};
use crate::tree::{self, EntryKind, TreeDigest, TreeEntry, TreeError, TreeOptions, filesystem};

/// The project's ignore file: `<root>/.dockerignore`, the root being where the spec's relative
/// paths start (the CLI's `--root`, else the directory it runs in; usually the spec file's
/// directory). It filters every tree below the root, with patterns relative to the root, as
/// Docker's `.dockerignore` is relative to the build context. Not read for a tree outside the
/// root (an absolute path or one with `..`), whose paths its patterns cannot name.
pub const ROOT_DOCKERIGNORE: &str = ".dockerignore";

/// Where a build service's workspace puts the files a spec names outside its root (`../x`, an
/// absolute path): the client moves them there and the service loads the spec with
/// [`LoadedSpec::with_relocated_dir`], so both select the same files.
pub const RELOCATED_DIR: &str = ".imagespec-remote";

/// The input files of one spec (not of its base spec: select that one from [`LoadedSpec::base`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecInputs {
    pub requirements: Option<RequirementsInput>,
    /// One per `copy` entry, in spec order.
    pub copy: Vec<PathInput>,
    /// `source_root`, unless `source_copy_mode` is `none`.
    pub source_root: Option<PathInput>,
}

/// The `requirements` file and, for a lock file, the `pyproject.toml` beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementsInput {
    /// As written in the spec.
    pub spec_path: String,
    pub kind: RequirementsKind,
    pub file: FileInput,
    /// The `pyproject.toml` beside a `uv.lock` or `poetry.lock`.
    pub companion: Option<FileInput>,
}

/// One regular file, read through symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInput {
    /// The file, its symlinks resolved.
    pub fs_path: PathBuf,
    /// Any `x` bit set.
    pub executable: bool,
    pub size: u64,
    /// SHA-256 of the bytes.
    pub digest: [u8; 32],
}

/// A `copy` entry or `source_root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInput {
    /// `copy[0]`, `source_root`.
    pub field: String,
    /// As written in the spec.
    pub spec_path: String,
    /// The path, its symlinks resolved.
    pub fs_path: PathBuf,
    pub content: PathContent,
}

/// What a `copy` entry or `source_root` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathContent {
    File(FileInput),
    /// The selected files and links of a directory, paths relative to [`PathInput::fs_path`].
    Dir(TreeDigest),
}

/// One file or link of a [`PathInput`], flattened: what the context and the upload iterate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFile {
    /// Path below the entry, `/`-separated; empty when the entry is a file.
    pub rel: String,
    /// Where to read it (for a link: the link itself).
    pub source: PathBuf,
    pub executable: bool,
    pub size: u64,
    /// SHA-256 of the bytes, or of the link target's text for a link.
    pub digest: [u8; 32],
    /// `true` for a symlink, which is copied as a link.
    pub symlink: bool,
}

impl PathInput {
    /// This entry's contribution to the image name: a file by its bytes and executable bit, a
    /// directory by its tree digest.
    pub fn digest(&self) -> [u8; 32] {
        match &self.content {
            PathContent::Dir(tree) => tree.digest,
            PathContent::File(file) => {
                let mut e = CanonicalEncoder::new();
                e.tag(b'F')
                    .tag(u8::from(file.executable))
                    .bytes(&file.digest);
                e.finish()
            }
        }
    }

    /// A few words for `tag --explain`.
    pub fn summary(&self) -> String {
        match &self.content {
            PathContent::Dir(tree) => format!("dir, {} files", tree.entries.len()),
            PathContent::File(_) => "file".to_string(),
        }
    }

    /// Every file and link of the entry, sorted by path.
    pub fn files(&self) -> Vec<PathFile> {
        match &self.content {
            PathContent::File(file) => vec![PathFile {
                rel: String::new(),
                source: file.fs_path.clone(),
                executable: file.executable,
                size: file.size,
                digest: file.digest,
                symlink: false,
            }],
            PathContent::Dir(tree) => tree
                .entries
                .iter()
                .map(|entry| self.dir_file(entry))
                .collect(),
        }
    }

    fn dir_file(&self, entry: &TreeEntry) -> PathFile {
        PathFile {
            rel: entry.path.clone(),
            source: self.fs_path.join(&entry.path),
            executable: entry.executable,
            size: entry.size,
            digest: entry.digest,
            symlink: entry.kind == EntryKind::Symlink,
        }
    }
}

/// Selects and reads the input files of `loaded` (hashing them once).
pub fn select(loaded: &LoadedSpec) -> Result<SpecInputs, HashError> {
    let spec = &loaded.spec;
    let requirements = match &spec.requirements {
        Some(req) => Some(requirements(loaded, req)?),
        None => None,
    };
    let copy = spec
        .copy
        .iter()
        .enumerate()
        .map(|(i, entry)| path_input(loaded, &format!("copy[{i}]"), entry))
        .collect::<Result<Vec<_>, _>>()?;
    let mode = spec.source_copy_mode.unwrap_or(SourceCopyMode::All);
    let source_root = match &spec.source_root {
        Some(src) if mode != SourceCopyMode::None => Some(path_input(loaded, "source_root", src)?),
        _ => None,
    };
    Ok(SpecInputs {
        requirements,
        copy,
        source_root,
    })
}

fn requirements(loaded: &LoadedSpec, req: &str) -> Result<RequirementsInput, HashError> {
    let kind = RequirementsKind::of(req);
    let file = file_input("requirements", &loaded.path(req))?;
    let companion = match kind.companion_pyproject(req) {
        Some(pyproject) => Some(file_input(
            "requirements",
            &loaded.path(&pyproject.to_string_lossy()),
        )?),
        None => None,
    };
    Ok(RequirementsInput {
        spec_path: req.to_string(),
        kind,
        file,
        companion,
    })
}

fn path_input(loaded: &LoadedSpec, field: &str, rel: &str) -> Result<PathInput, HashError> {
    let path = loaded.path(rel);
    let tree_err = |source| HashError::Tree {
        field: field.to_string(),
        source,
    };
    let metadata = std::fs::metadata(&path).map_err(|e| {
        tree_err(TreeError::Io {
            path: path.clone(),
            source: e,
        })
    })?;
    filesystem::refuse_pseudo_fs(&path).map_err(tree_err)?;
    let fs_path = std::fs::canonicalize(&path).map_err(|e| {
        tree_err(TreeError::Io {
            path: path.clone(),
            source: e,
        })
    })?;
    let content = if metadata.is_dir() {
        let (walk_root, opts) = tree_options(loaded, rel, &path);
        PathContent::Dir(tree::digest_tree(&walk_root, &opts).map_err(tree_err)?)
    } else if metadata.is_file() {
        PathContent::File(file_input(field, &path)?)
    } else {
        return Err(HashError::NotAFileOrDirectory {
            field: field.to_string(),
            path,
        });
    };
    Ok(PathInput {
        field: field.to_string(),
        spec_path: rel.to_string(),
        fs_path,
        content,
    })
}

/// Where to walk the tree at `rel` (resolved: `path`) and with which options: the root's
/// `.dockerignore` when the tree lies below the root. Both paths are spelled without `.`
/// components, since ignore patterns match the walked paths' text below the root.
fn tree_options(loaded: &LoadedSpec, rel: &str, path: &Path) -> (PathBuf, TreeOptions) {
    let below_root = !Path::new(rel).is_absolute()
        && Path::new(rel)
            .components()
            .all(|c| !matches!(c, Component::ParentDir));
    let parts: Vec<_> = Path::new(rel)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let relocated = loaded.relocated_dir.as_deref();
    // Files relocated from outside the root were selected without the root's ignore file.
    let in_relocated = below_root
        && relocated.is_some_and(|d| parts.first() == Some(&Component::Normal(d.as_ref())));
    let root: PathBuf = loaded.root.components().collect();
    let file = root.join(ROOT_DOCKERIGNORE);
    let outer_dockerignore = (below_root && !in_relocated && file.is_file()).then_some(file);
    let walk_root = if below_root {
        root.join(rel).components().collect()
    } else {
        path.to_path_buf()
    };
    // A tree that is the root itself would hold the relocated files, which are not its own.
    let extra_excludes = match relocated {
        Some(d) if below_root && parts.is_empty() => vec![format!("/{d}/")],
        _ => Vec::new(),
    };
    let opts = TreeOptions {
        outer_dockerignore,
        extra_excludes,
        ..TreeOptions::default()
    };
    (walk_root, opts)
}

/// A regular file (through symlinks), refused when it is a FIFO, a device or on `/proc`;
/// `field` names it in errors.
pub fn file_input(field: &str, path: &Path) -> Result<FileInput, HashError> {
    let tree_err = |source| HashError::Tree {
        field: field.to_string(),
        source,
    };
    let io_err = |source| {
        tree_err(TreeError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    // `stat` before `open`: opening a FIFO would block until a writer comes.
    let metadata = std::fs::metadata(path).map_err(io_err)?;
    if let Some(what) = filesystem::special_kind(&metadata.file_type()) {
        return Err(HashError::NotARegularFile {
            field: field.to_string(),
            path: path.to_path_buf(),
            what,
        });
    }
    if metadata.is_dir() {
        return Err(HashError::NotARegularFile {
            field: field.to_string(),
            path: path.to_path_buf(),
            what: "directory",
        });
    }
    filesystem::refuse_pseudo_fs(path).map_err(tree_err)?;
    let fs_path = std::fs::canonicalize(path).map_err(io_err)?;
    let digest = tree::digest_file(&fs_path).map_err(tree_err)?;
    Ok(FileInput {
        executable: is_executable(&metadata),
        size: metadata.len(),
        digest,
        fs_path,
    })
}

#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_metadata: &std::fs::Metadata) -> bool {
    false
}
