//! Which files are in the tree: the walk and its filters.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::{DirEntry, WalkBuilder};

use super::{EntryKind, SelectedFile, TreeError, TreeOptions, filesystem};

/// Name of the Docker ignore file, read as a custom ignore file.
const DOCKERIGNORE: &str = ".dockerignore";
/// Name of git's per-directory ignore file.
const GITIGNORE: &str = ".gitignore";

/// Left out of every tree unless an ignore file re-includes them (`!.venv/`): what every
/// Python checkout grows and no image wants. Byte-code caches are rebuilt by the image's own
/// Python (and `*.pyc` is what flytekit leaves out too); a local virtualenv was made for the
/// developer's machine (its interpreter links point outside the image); `.DS_Store` is
/// Finder's metadata. `.git` is always left out (see [`keep_entry`]), with no way back in.
pub const BUILTIN_EXCLUDES: [&str; 4] = ["__pycache__/", "*.pyc", ".venv/", ".DS_Store"];

/// Lists the files under `root` that belong to the tree, sorted by path.
///
/// Filtering, chosen so the result depends only on the tree's own content:
///
/// * `.gitignore` files at any depth are honoured, whether or not `root` is a
///   git repository, with git's rules (later lines win, `!` re-includes, a
///   file under an excluded directory cannot be re-included). One deliberate
///   difference: a nested repository (a subdirectory holding `.git`) stays
///   under its parents' rules, so the unhashed `.git` never affects selection.
/// * `.dockerignore` files are honoured with the same gitignore rules, at any
///   depth, and take precedence over `.gitignore` (so a `!` there can
///   re-include what `.gitignore` excludes).
/// * [`TreeOptions::outer_dockerignore`] (the project's `.dockerignore`,
///   above the tree) applies where none of the tree's own ignore files has a
///   rule for a path: the files closer to the tree win, as a nested
///   `.gitignore` wins over its parent's.
/// * [`BUILTIN_EXCLUDES`] apply last, only to paths that no ignore file
///   (the tree's or the outer one) has a rule for, so `!.venv/` keeps a
///   virtualenv and `!__pycache__/` byte-code caches. This approximates Docker, which
///   reads only the root `.dockerignore` and anchors patterns at the root: in
///   Docker `*.log` excludes only top-level logs, here it excludes logs at any
///   depth (write `/*.log` for Docker's meaning); Docker also lets `!` re-include
///   files under an excluded directory. The common patterns (`node_modules`,
///   `target/`, `**/*.tmp`, `/build`, `!keep`) behave the same.
/// * Never read, because they live outside the tree or per machine: the global
///   git excludes file, `.git/info/exclude`, ignore files in directories above
///   `root`, and `.ignore` files.
/// * Hidden files are included; any entry named `.git` (a repository, or the
///   `.git` file of a worktree or submodule) is excluded with its contents.
/// * Ignore files are ordinary files: selected (and so hashed) unless they
///   exclude themselves. An ignore file that is a symlink to a file outside
///   the tree is an error ([`TreeError::ExternalIgnoreFile`]): its rules
///   would come from content that is not hashed.
/// * Symlinks are listed, never followed, and must stay inside the tree
///   ([`TreeError::LinkLeavesTree`] otherwise). FIFOs, sockets and devices
///   are refused ([`TreeError::SpecialFile`]): exclude them with an ignore
///   file. A root on a kernel pseudo file system (`/proc`, `/sys`) is refused.
///
/// A selected path that is not UTF-8 is an error; excluded ones are not
/// looked at.
pub fn select_files(root: &Path, opts: &TreeOptions) -> Result<Vec<SelectedFile>, TreeError> {
    check_root(root)?;
    let builder = walk_builder(root, opts)?;
    let mut files = walk(root, opts, &builder)?;
    files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn check_root(root: &Path) -> Result<(), TreeError> {
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => filesystem::refuse_pseudo_fs(root),
        Ok(_) => Err(TreeError::NotADirectory {
            path: root.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(TreeError::NotFound {
            path: root.to_path_buf(),
        }),
        Err(e) => Err(TreeError::io(root, e)),
    }
}

fn walk_builder(root: &Path, opts: &TreeOptions) -> Result<WalkBuilder, TreeError> {
    let outer = match &opts.outer_dockerignore {
        Some(file) => Some(outer_dockerignore(file)?),
        None => None,
    };
    let filter = Arc::new(EntryFilter {
        extra: extra_excludes(root, &opts.extra_excludes)?,
        builtin: opts
            .builtin_excludes
            .then(|| builtin_excludes(root))
            .transpose()?,
        rules: UserRules {
            root: root.to_path_buf(),
            names: ignore_names(opts),
            outer: outer.as_ref().map(|(_, gi)| gi.clone()),
            dirs: Mutex::new(HashMap::new()),
        },
    });
    let mut builder = WalkBuilder::new(root);
    builder
        // Start from nothing, then switch on exactly what we want, so a new
        // default in the `ignore` crate cannot change which files we pick.
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(false)
        .git_ignore(opts.gitignore)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |entry| keep_entry(entry, &filter));
    if opts.dockerignore {
        builder.add_custom_ignore_filename(DOCKERIGNORE);
    }
    if let Some((file, _)) = &outer {
        // An "explicit" ignore file has the walker's lowest precedence, below every ignore
        // file of the tree, and its patterns are relative to `current_dir`.
        let dir = file.parent().unwrap_or(Path::new("."));
        builder.current_dir(dir);
        if let Some(err) = builder.add_ignore(file) {
            return Err(TreeError::from_walk(err, file));
        }
    }
    Ok(builder)
}

/// The ignore file names `opts` switches on.
fn ignore_names(opts: &TreeOptions) -> Vec<&'static str> {
    [
        (opts.gitignore, GITIGNORE),
        (opts.dockerignore, DOCKERIGNORE),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// Compiles the outer `.dockerignore`, relative to its directory; a bad pattern is an error
/// naming the file and line, as for the tree's own ignore files.
fn outer_dockerignore(file: &Path) -> Result<(PathBuf, Gitignore), TreeError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut builder = GitignoreBuilder::new(dir);
    if let Some(err) = builder.add(file) {
        return Err(TreeError::from_walk(err, file));
    }
    let gitignore = builder.build().map_err(|e| TreeError::from_walk(e, file))?;
    Ok((file.to_path_buf(), gitignore))
}

/// Compiles [`BUILTIN_EXCLUDES`] (unanchored, so they match at any depth).
fn builtin_excludes(root: &Path) -> Result<Gitignore, TreeError> {
    let patterns: Vec<String> = BUILTIN_EXCLUDES.iter().map(|p| p.to_string()).collect();
    extra_excludes(root, &patterns)
}

/// Compiles [`TreeOptions::extra_excludes`] relative to `root`.
fn extra_excludes(root: &Path, patterns: &[String]) -> Result<Gitignore, TreeError> {
    let mut builder = GitignoreBuilder::new(root);
    for pattern in patterns {
        builder
            .add_line(None, pattern)
            .map_err(|e| pattern_error(root, pattern, e))?;
    }
    builder.build().map_err(|e| pattern_error(root, "", e))
}

fn pattern_error(root: &Path, pattern: &str, err: ignore::Error) -> TreeError {
    match TreeError::from_walk(err, root) {
        TreeError::InvalidPattern {
            path,
            line,
            pattern: p,
            message,
        } => TreeError::InvalidPattern {
            path,
            line,
            pattern: if p.is_empty() { pattern.to_owned() } else { p },
            message,
        },
        other => other,
    }
}

/// What the walker's pre-filter needs.
struct EntryFilter {
    extra: Gitignore,
    /// [`BUILTIN_EXCLUDES`], unless switched off.
    builtin: Option<Gitignore>,
    rules: UserRules,
}

/// The walker's pre-filter: drops `.git`, extra excludes and the built-in excludes no ignore
/// file re-includes, and prunes excluded directories so they are never read. The walker only
/// asks about entries its ignore files did not exclude.
fn keep_entry(entry: &DirEntry, filter: &EntryFilter) -> bool {
    if entry.file_name() == OsStr::new(".git") {
        return false;
    }
    let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
    let path = entry.path();
    if filter.extra.matched(path, is_dir).is_ignore() {
        return false;
    }
    let builtin = filter
        .builtin
        .as_ref()
        .is_some_and(|gi| gi.matched(path, is_dir).is_ignore());
    !builtin || filter.rules.mention(path, is_dir)
}

/// Whether the user's ignore files have a rule for a path, so `!.venv/` can keep what
/// [`BUILTIN_EXCLUDES`] would drop. Asked only for paths a built-in pattern matches (a few per
/// tree) and only after the walker applied the same files without excluding the path, so a
/// rule that matches can only be a re-include.
struct UserRules {
    /// The walk's root: ignore files are read from the entry's directory up to here.
    root: PathBuf,
    names: Vec<&'static str>,
    outer: Option<Gitignore>,
    /// Each directory's ignore files, compiled on first use.
    dirs: Mutex<HashMap<PathBuf, Arc<Vec<Gitignore>>>>,
}

impl UserRules {
    fn mention(&self, path: &Path, is_dir: bool) -> bool {
        let has_rule = |gi: &Gitignore| !gi.matched(path, is_dir).is_none();
        for dir in path.ancestors().skip(1) {
            if !dir.starts_with(&self.root) {
                break;
            }
            if self.matchers(dir).iter().any(has_rule) {
                return true;
            }
        }
        self.outer.as_ref().is_some_and(has_rule)
    }

    fn matchers(&self, dir: &Path) -> Arc<Vec<Gitignore>> {
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        let compiled = dirs.entry(dir.to_path_buf()).or_insert_with(|| {
            let compile = |name: &&str| {
                let file = dir.join(name);
                if !file.is_file() {
                    return None;
                }
                // A broken file is reported by the walker, which reads the same one.
                let mut builder = GitignoreBuilder::new(dir);
                builder.add(&file);
                builder.build().ok()
            };
            Arc::new(self.names.iter().filter_map(compile).collect())
        });
        Arc::clone(compiled)
    }
}

/// Per-walk state for [`Walker::classify`].
struct Walker<'a> {
    root: &'a Path,
    /// Ignore file names the walker reads (`.gitignore`, `.dockerignore`).
    ignore_names: Vec<&'static str>,
    /// `root` with symlinks resolved; computed when first needed.
    canonical_root: Option<PathBuf>,
}

impl Walker<'_> {
    /// Turns one walk result into a selected file, or `None` for directories
    /// and special files.
    fn classify(&mut self, entry: DirEntry) -> Result<Option<SelectedFile>, TreeError> {
        // Ignore-file problems (bad glob, unreadable file) are attached to the
        // directory entry holding the ignore file, not reported as `Err`.
        if let Some(err) = entry.error() {
            return Err(TreeError::from_walk(err.clone(), entry.path()));
        }
        let Some(file_type) = entry.file_type() else {
            return Ok(None); // stdin; cannot happen for a directory walk
        };
        // The root itself is never an entry (it may be a symlink to a
        // directory, which the walker reports with the symlink's file type).
        if entry.depth() == 0 || file_type.is_dir() {
            self.check_ignore_links(entry.path())?;
            return Ok(None);
        }
        if let Some(what) = filesystem::special_kind(&file_type) {
            return Err(TreeError::SpecialFile {
                path: entry.path().to_path_buf(),
                what,
                root: self.root.to_path_buf(),
            });
        }
        let path = relative_utf8(self.root, entry.path())?;
        let kind = if file_type.is_symlink() {
            self.check_link(&path, entry.path())?;
            EntryKind::Symlink
        } else {
            EntryKind::File
        };
        Ok(Some(SelectedFile {
            path,
            fs_path: entry.into_path(),
            kind,
        }))
    }

    /// Fails if the link at `path` points outside the tree (see
    /// [`filesystem::link_stays_inside`]): a link that stays inside is kept as a link, in the
    /// digest and in the build context, as Docker and git keep it.
    fn check_link(&self, rel: &str, path: &Path) -> Result<(), TreeError> {
        let target = fs::read_link(path).map_err(|e| TreeError::io(path, e))?;
        if filesystem::link_stays_inside(rel, &target) {
            return Ok(());
        }
        Err(TreeError::LinkLeavesTree {
            path: path.to_path_buf(),
            target: target.to_string_lossy().into_owned(),
            root: self.root.to_path_buf(),
        })
    }

    /// Fails if an ignore file in `dir` is a symlink leading out of the tree.
    ///
    /// The `ignore` crate follows such links, so the selection would depend on
    /// a file that is not hashed and may differ per machine (think
    /// `.gitignore -> ~/my-ignores`). Links within the tree are fine: their
    /// target is part of the tree. Costs one `lstat` per ignore name and
    /// directory.
    fn check_ignore_links(&mut self, dir: &Path) -> Result<(), TreeError> {
        for name in &self.ignore_names {
            let path = dir.join(name);
            let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link {
                continue;
            }
            // A dangling link has no content to depend on.
            let Ok(target) = fs::canonicalize(&path) else {
                continue;
            };
            if self.canonical_root.is_none() {
                let root = fs::canonicalize(self.root).map_err(|e| TreeError::io(self.root, e))?;
                self.canonical_root = Some(root);
            }
            if !self
                .canonical_root
                .as_deref()
                .is_some_and(|root| target.starts_with(root))
            {
                return Err(TreeError::ExternalIgnoreFile { path, target });
            }
        }
        Ok(())
    }
}

/// `path` relative to `root`, components joined with `/`.
fn relative_utf8(root: &Path, path: &Path) -> Result<String, TreeError> {
    let rel = path.strip_prefix(root).map_err(|_| TreeError::Walk {
        path: path.to_path_buf(),
        message: format!("walked path is not under {}", root.display()),
    })?;
    let mut out = String::with_capacity(rel.as_os_str().len());
    for component in rel.components() {
        let Component::Normal(name) = component else {
            return Err(TreeError::Walk {
                path: path.to_path_buf(),
                message: "unexpected path component".to_owned(),
            });
        };
        let name = name.to_str().ok_or_else(|| TreeError::NonUtf8Path {
            path: path.to_path_buf(),
        })?;
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(name);
    }
    Ok(out)
}

fn walk(
    root: &Path,
    opts: &TreeOptions,
    builder: &WalkBuilder,
) -> Result<Vec<SelectedFile>, TreeError> {
    let mut walker = Walker {
        root,
        ignore_names: ignore_names(opts),
        canonical_root: None,
    };
    let mut files = Vec::new();
    for result in builder.build() {
        let entry = result.map_err(|e| TreeError::from_walk(e, root))?;
        if let Some(file) = walker.classify(entry)? {
            files.push(file);
        }
    }
    Ok(files)
}
