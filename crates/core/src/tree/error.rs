//! Errors of tree selection and hashing.
//!
//! Every variant carries the path it is about, because the user's fix is
//! always "go and look at that file" (rename it, fix the pattern, fix the
//! permissions). Failing is preferred to skipping: a silently skipped file
//! would make the tag stop depending on it.

use std::io;
use std::path::{Path, PathBuf};

/// Why a tree could not be selected or hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The root does not exist.
    #[error("source tree {} does not exist", path.display())]
    NotFound { path: PathBuf },

    /// The root exists but is not a directory (after following symlinks).
    #[error("source tree {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },

    /// Reading a directory, file, link or ignore file failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A selected path is not valid UTF-8. The tag must be computable on any
    /// platform, and such a name has no portable spelling.
    #[error("file name is not valid UTF-8: {}", path.display())]
    NonUtf8Path { path: PathBuf },

    /// A selected symlink's target is not valid UTF-8 (same reason).
    #[error("symlink target is not valid UTF-8: {}", path.display())]
    NonUtf8LinkTarget { path: PathBuf },

    /// An ignore pattern could not be compiled. `path` is the ignore file
    /// (with `line` when known), or the tree root for
    /// [`TreeOptions::extra_excludes`](super::TreeOptions::extra_excludes).
    #[error(
        "invalid ignore pattern {pattern:?} in {}{}: {message}",
        path.display(),
        line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    InvalidPattern {
        path: PathBuf,
        line: Option<u64>,
        pattern: String,
        message: String,
    },

    /// An ignore file is a symlink to a file outside the tree, so which files
    /// are selected would depend on content that is not part of the digest.
    #[error(
        "ignore file {} links outside the source tree (to {}); copy it into the tree instead",
        path.display(),
        target.display()
    )]
    ExternalIgnoreFile { path: PathBuf, target: PathBuf },

    /// A symlink in the tree points outside it (an absolute target, or `..` above the root).
    /// Inside an image such a link would point at whatever the image has there, not at what it
    /// points to here, so neither copying the link nor following it is what the user meant.
    #[error(
        "{} is a symlink to `{target}`, which is outside the tree {}; \
         replace the link with a copy of what it points to, or exclude it (e.g. in {}/.dockerignore)",
        path.display(),
        root.display(),
        root.display()
    )]
    LinkLeavesTree {
        path: PathBuf,
        target: String,
        root: PathBuf,
    },

    /// A FIFO, socket or device in the tree: it has no content an image could hold, and reading
    /// a FIFO would wait forever.
    #[error(
        "{} is a {what}, which cannot be copied into an image; exclude it (e.g. in {}/.dockerignore) or move it out of the tree",
        path.display(),
        root.display()
    )]
    SpecialFile {
        path: PathBuf,
        what: &'static str,
        root: PathBuf,
    },

    /// A path on a kernel pseudo file system (`/proc`, `/sys`, ...), whose files are made up as
    /// they are read: not a stable input, and some never end.
    #[error(
        "{} is on the `{fs}` pseudo file system, whose contents the kernel makes up as they are read; name a real file or directory",
        path.display()
    )]
    PseudoFileSystem { path: PathBuf, fs: &'static str },

    /// Any other failure reported by the directory walker.
    #[error("walking {}: {message}", path.display())]
    Walk { path: PathBuf, message: String },
}

impl TreeError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::NotFound { path }
            | Self::NotADirectory { path }
            | Self::Io { path, .. }
            | Self::NonUtf8Path { path }
            | Self::NonUtf8LinkTarget { path }
            | Self::InvalidPattern { path, .. }
            | Self::ExternalIgnoreFile { path, .. }
            | Self::LinkLeavesTree { path, .. }
            | Self::SpecialFile { path, .. }
            | Self::PseudoFileSystem { path, .. }
            | Self::Walk { path, .. } => path,
        }
    }

    pub(super) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Converts an error of the `ignore` walker, keeping the innermost path
    /// and line it mentions. `fallback` names the path when it has none.
    pub(super) fn from_walk(err: ignore::Error, fallback: &Path) -> Self {
        convert(err, fallback.to_path_buf(), None)
    }
}

fn convert(err: ignore::Error, path: PathBuf, line: Option<u64>) -> TreeError {
    match err {
        ignore::Error::WithPath { path, err } => convert(*err, path, line),
        ignore::Error::WithLineNumber { line, err } => convert(*err, path, Some(line)),
        ignore::Error::WithDepth { err, .. } => convert(*err, path, line),
        // Errors are listed in file order; the first one is what to fix first.
        ignore::Error::Partial(errs) => match errs.into_iter().next() {
            Some(first) => convert(first, path, line),
            None => TreeError::Walk {
                path,
                message: "unknown ignore file error".to_owned(),
            },
        },
        ignore::Error::Io(source) => TreeError::Io { path, source },
        ignore::Error::Glob { glob, err } => TreeError::InvalidPattern {
            path,
            line,
            pattern: glob.unwrap_or_default(),
            message: err,
        },
        ignore::Error::Loop { child, .. } => TreeError::Walk {
            path: child,
            message: "filesystem loop".to_owned(),
        },
        other => TreeError::Walk {
            path,
            message: other.to_string(),
        },
    }
}
