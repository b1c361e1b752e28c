//! flytekit's digests of the files a spec names, reproduced from
//! `flytekit/tools/script_mode.py` (`ls_files`), `flytekit/tools/fast_registration.py`
//! (`compute_digest`) and `ImageSpec.tag` (the requirements file).
//!
//! Both md5 digests feed each file's bytes and then its relative path with the separators
//! removed (`a/b.py` → `ab.py`). Directories are walked as `os.walk` walks them: the files of a
//! directory sorted, its subdirectories in the order the OS lists them (which `read_dir` shares),
//! directory symlinks not entered, file symlinks followed, dangling links and sockets skipped.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use sha1::Sha1;

use super::FlytekitError;

/// `hashlib.sha1(Path(requirements).read_bytes().strip()).hexdigest()`.
pub fn requirements_sha1(path: &Path) -> Result<String, FlytekitError> {
    let bytes = fs::read(path).map_err(|e| FlytekitError::io("requirements", path, e))?;
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    Ok(hex::encode(Sha1::digest(&bytes[start..end])))
}

/// `compute_digest(copy)`: every entry in the spec's order; a directory's paths relative to the
/// directory itself, a file's path its base name. No ignore rules apply.
pub fn copy_digest(root: &Path, entries: &[String]) -> Result<String, FlytekitError> {
    let mut hasher = Md5::new();
    for entry in entries {
        let path = root.join(entry);
        if path.is_dir() {
            let mut files = Vec::new();
            walk(&path, &path, &mut files, &|_| false)?;
            for (abs, rel) in files {
                update(&mut hasher, &abs, &rel)?;
            }
        } else {
            let base = Path::new(entry)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            update(&mut hasher, &path, &base)?;
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `ls_files(source_root, CopyFileDetection.ALL, deref_symlinks=False, ignore_group)`: every
/// file not excluded by flytekit's ignore group, `.git` directories skipped, sorted by path.
///
/// `source_root` is the text as written: flytekit walks it relative to the working directory
/// and hands the ignore rules the walked paths, which for a relative root still start with it
/// (`src/a.pyc`, not `a.pyc`); only an absolute root is made relative first. So a `.gitignore`
/// pattern such as `secret.txt` matches only when the root is `.` or absolute, in flytekit and
/// here alike.
pub fn source_digest(root: &Path, source_root: &str) -> Result<String, FlytekitError> {
    let top = root.join(source_root);
    let ignore = IgnoreGroup::new(&top)?;
    let mut files = Vec::new();
    walk(&top, &top, &mut files, &|name| name == ".git")?;
    let absolute = Path::new(source_root).is_absolute();
    files.retain(|(_, rel)| {
        let seen = if absolute {
            rel.clone()
        } else {
            format!("{}/{rel}", source_root.trim_end_matches('/'))
        };
        !ignore.is_ignored(&seen)
    });
    // `all_files.sort()` sorts paths that share one prefix: the relative order.
    files.sort_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));
    let mut hasher = Md5::new();
    for (abs, rel) in files {
        update(&mut hasher, &abs, &rel)?;
    }
    Ok(hex::encode(hasher.finalize()))
}

fn update(hasher: &mut Md5, abs: &Path, rel: &str) -> Result<(), FlytekitError> {
    // `os.path.exists` follows links: a dangling link is skipped, as are sockets.
    let Ok(meta) = fs::metadata(abs) else {
        return Ok(());
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            return Ok(());
        }
    }
    let _ = meta;
    let mut file = fs::File::open(abs).map_err(|e| FlytekitError::io("copy", abs, e))?;
    let mut buf = vec![0u8; 65536];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| FlytekitError::io("copy", abs, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher.update(rel.replace('/', "").as_bytes());
    Ok(())
}

/// `os.walk(dir, topdown=True)`: files (sorted) of each directory, then its subdirectories in
/// listing order; `skip_dir` names directories not entered (`.git` for `ls_files`).
fn walk(
    top: &Path,
    dir: &Path,
    out: &mut Vec<(PathBuf, String)>,
    skip_dir: &dyn Fn(&str) -> bool,
) -> Result<(), FlytekitError> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| FlytekitError::io("source_root", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| FlytekitError::io("source_root", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // `DirEntry.is_dir()` in Python follows symlinks; walking into them does not.
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            if !is_link && !skip_dir(&name) {
                dirs.push(path);
            }
        } else {
            files.push(name);
        }
    }
    files.sort();
    for name in files {
        let path = dir.join(&name);
        let rel = relative(top, &path);
        out.push((path, rel));
    }
    for sub in dirs {
        walk(top, &sub, out, skip_dir)?;
    }
    Ok(())
}

fn relative(top: &Path, path: &Path) -> String {
    path.strip_prefix(top)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// flytekit's `IgnoreGroup(root, [GitIgnore, DockerIgnore, StandardIgnore])`.
struct IgnoreGroup {
    /// `git ls-files -io --exclude-standard` run in the source root (empty outside a work tree).
    git_ignored: HashSet<String>,
}

/// `STANDARD_IGNORE_PATTERNS`, matched with `fnmatch` (where `*` crosses `/`).
const STANDARD_IGNORE_PATTERNS: [&str; 5] = [
    "*.pyc",
    ".cache",
    ".cache/*",
    "__pycache__/*",
    "**/__pycache__/*",
];

impl IgnoreGroup {
    fn new(top: &Path) -> Result<IgnoreGroup, FlytekitError> {
        let dockerignore = top.join(".dockerignore");
        if dockerignore.is_file() {
            // docker-py's PatternMatcher is not reproduced; refusing beats a wrong name.
            return Err(FlytekitError::DockerIgnore { path: dockerignore });
        }
        let output = std::process::Command::new("git")
            .args(["ls-files", "-io", "--exclude-standard"])
            .current_dir(top)
            .output();
        let git_ignored = match output {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .split('\n')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            // flytekit applies no git filter without git or outside a work tree; so do we.
            _ => HashSet::new(),
        };
        Ok(IgnoreGroup { git_ignored })
    }

    /// `path` as flytekit's ignores see it; git's list is compared with `Path(path).as_posix()`.
    fn is_ignored(&self, path: &str) -> bool {
        self.git_ignored.contains(&as_posix(path))
            || STANDARD_IGNORE_PATTERNS.iter().any(|p| fnmatch(p, path))
    }
}

/// `pathlib.PurePosixPath(path).as_posix()`: `.` components and repeated or trailing `/` dropped.
fn as_posix(path: &str) -> String {
    let lead = if path.starts_with('/') { "/" } else { "" };
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    match (lead, parts.is_empty()) {
        ("", true) => ".".to_string(),
        _ => format!("{lead}{}", parts.join("/")),
    }
}

/// Python's `fnmatch.fnmatch` for the patterns above (`*` and `?`; case-sensitive on POSIX).
fn fnmatch(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some(b'?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_posix_drops_dots_and_slashes() {
        assert_eq!(as_posix("./a//b/"), "a/b");
        assert_eq!(as_posix("src/./x.py"), "src/x.py");
        assert_eq!(as_posix("/abs/x"), "/abs/x");
    }

    #[test]
    fn fnmatch_star_crosses_slashes() {
        assert!(fnmatch("*.pyc", "a/b/c.pyc"));
        assert!(fnmatch("**/__pycache__/*", "a/__pycache__/x.py"));
        assert!(!fnmatch("**/__pycache__/*", "__pycache__/x.py"));
        assert!(fnmatch("__pycache__/*", "__pycache__/x.py"));
        assert!(!fnmatch(".cache", "a/.cache"));
    }

    #[test]
    fn requirements_are_stripped_before_hashing() {
        let dir = tempfile::tempdir().expect("test io");
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        fs::write(&a, "\n numpy\n\n").expect("test io");
        fs::write(&b, "numpy").expect("test io");
        assert_eq!(
            requirements_sha1(&a).expect("test io"),
            requirements_sha1(&b).expect("test io")
        );
        assert_eq!(
            requirements_sha1(&b).expect("test io"),
            hex::encode(Sha1::digest(b"numpy"))
        );
    }
}
