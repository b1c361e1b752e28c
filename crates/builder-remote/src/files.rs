//! Which files a remote build needs: exactly the ones the image name was hashed from.
//!
//! The service rebuilds the spec in a fresh directory from these files and recomputes the name,
//! so the selection follows the hash's rules (`imagespec_core::hash`) and uses the same
//! [`digest_tree`](imagespec_core::tree::digest_tree) call for directories: the requirements file and the `pyproject.toml` beside a
//! lock file, every `copy` entry, the `source_root` tree after ignore-file filtering, for the
//! spec and every base spec nested in it.
//!
//! Paths that leave the root (absolute, or with `..`) are allowed for `requirements` and
//! `source_root` locally; the hash counts only their bytes (and the requirements file's name),
//! not where they sit, so they are moved under `.imagespec-remote/` in the spec that is sent and
//! the name does not change. `registry_config` is dropped (the service pushes with its own
//! credentials) and is not hashed either.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use imagespec_core::spec::{BaseImage, ImageSpec, LoadedSpec, RequirementsKind, SourceCopyMode};
use imagespec_core::tree::{self, TreeOptions};

use crate::error::RemoteError;

/// Where paths from outside the root are placed in the sent workspace.
pub const OUTSIDE_DIR: &str = ".imagespec-remote";

/// A file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub source: PathBuf,
    pub digest: [u8; 32],
    pub executable: bool,
    pub size: u64,
}

/// The spec as sent and the files it needs, by workspace-relative path.
#[derive(Debug, Clone)]
pub struct Selection {
    pub spec: ImageSpec,
    pub files: BTreeMap<String, LocalFile>,
}

impl Selection {
    /// Total bytes of the selected files.
    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|f| f.size).sum()
    }
}

/// Selects the files of `loaded` (and its base specs) and rewrites the spec for the service.
pub fn select(loaded: &LoadedSpec) -> Result<Selection, RemoteError> {
    let mut files = BTreeMap::new();
    let spec = rewrite(&loaded.spec, &loaded.root, 0, &mut files)?;
    Ok(Selection { spec, files })
}

fn rewrite(
    spec: &ImageSpec,
    root: &Path,
    depth: usize,
    files: &mut BTreeMap<String, LocalFile>,
) -> Result<ImageSpec, RemoteError> {
    let mut out = spec.clone();
    out.registry_config = None;
    let outside = |what: &str| format!("{OUTSIDE_DIR}/{depth}/{what}");
    if let Some(req) = &spec.requirements {
        let kind = RequirementsKind::of(req);
        let file_name = Path::new(req)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (sent, dir) = match inside(req) {
            Some(rel) => (req.clone(), parent(&rel)),
            None => {
                let dir = outside("requirements");
                (format!("{dir}/{file_name}"), dir)
            }
        };
        add_file(
            files,
            &join(&dir, &file_name),
            &resolve(root, req),
            Some(false),
        )?;
        if let Some(pp) = kind.companion_pyproject(req) {
            add_file(
                files,
                &join(&dir, "pyproject.toml"),
                &resolve(root, &pp.to_string_lossy()),
                Some(false),
            )?;
        }
        out.requirements = Some(sent);
    }
    for entry in &spec.copy {
        let rel = inside(entry).ok_or_else(|| {
            RemoteError::Selection(format!("`copy` entry `{entry}` leaves the root"))
        })?;
        add_path(files, &rel, &resolve(root, entry))?;
    }
    let mode = spec.source_copy_mode.unwrap_or(SourceCopyMode::All);
    if let Some(src) = &spec.source_root
        && mode != SourceCopyMode::None
    {
        let rel = match inside(src) {
            Some(rel) => rel,
            None => {
                let dir = outside("source_root");
                out.source_root = Some(dir.clone());
                dir
            }
        };
        add_path(files, &rel, &resolve(root, src))?;
    }
    if let Some(BaseImage::Spec(base)) = &spec.base_image {
        out.base_image = Some(BaseImage::Spec(Box::new(rewrite(
            base,
            root,
            depth + 1,
            files,
        )?)));
    }
    Ok(out)
}

/// A file at `rel`, or a directory's filtered tree below it (the hash's `path_digest` rule).
fn add_path(
    files: &mut BTreeMap<String, LocalFile>,
    rel: &str,
    path: &Path,
) -> Result<(), RemoteError> {
    if path.is_dir() {
        let selection = tree::digest_tree(path, &TreeOptions::default())
            .map_err(|e| RemoteError::Selection(format!("cannot read {}: {e}", path.display())))?;
        for entry in selection.entries {
            let entry_rel = entry.path.replace(std::path::MAIN_SEPARATOR, "/");
            let source = path.join(&entry.path);
            let size = std::fs::metadata(&source)
                .map(|m| m.len())
                .unwrap_or(entry.size);
            insert(
                files,
                join(rel, &entry_rel),
                LocalFile {
                    source,
                    digest: entry.digest,
                    executable: entry.executable,
                    size,
                },
            )?;
        }
        Ok(())
    } else {
        add_file(files, rel, path, None)
    }
}

fn add_file(
    files: &mut BTreeMap<String, LocalFile>,
    rel: &str,
    path: &Path,
    executable: Option<bool>,
) -> Result<(), RemoteError> {
    let read_err = |e: &dyn std::fmt::Display| {
        RemoteError::Selection(format!("cannot read {}: {e}", path.display()))
    };
    let metadata = std::fs::metadata(path).map_err(|e| read_err(&e))?;
    let digest = tree::digest_file(path).map_err(|e| read_err(&e))?;
    insert(
        files,
        rel.to_string(),
        LocalFile {
            source: path.to_path_buf(),
            digest,
            executable: executable.unwrap_or_else(|| is_executable(&metadata)),
            size: metadata.len(),
        },
    )
}

/// Two spec fields may name the same file (a `copy` entry inside `source_root`): fine when the
/// content agrees.
fn insert(
    files: &mut BTreeMap<String, LocalFile>,
    rel: String,
    file: LocalFile,
) -> Result<(), RemoteError> {
    match files.get(&rel) {
        Some(existing)
            if existing.digest != file.digest || existing.executable != file.executable =>
        {
            Err(RemoteError::Selection(format!(
                "`{rel}` is selected twice with different content or mode"
            )))
        }
        Some(_) => Ok(()),
        None => {
            files.insert(rel, file);
            Ok(())
        }
    }
}

/// The `/`-separated form of a relative path that stays below the root, without `.`.
fn inside(path: &str) -> Option<String> {
    let p = Path::new(path);
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn parent(rel: &str) -> String {
    rel.rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .unwrap_or_default()
}

fn join(dir: &str, name: &str) -> String {
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{dir}/{name}"),
    }
}

fn resolve(root: &Path, path: &str) -> PathBuf {
    imagespec_core::spec::validate::resolve(root, path)
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

#[cfg(test)]
mod tests {
    use super::*;
    use imagespec_core::resolve_image;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// Writes the selection into a fresh directory, as the service does.
    fn materialise(sel: &Selection, dir: &Path) {
        for (rel, f) in &sel.files {
            write(dir, rel, &std::fs::read_to_string(&f.source).expect("read"));
        }
    }

    #[test]
    fn a_materialised_selection_hashes_to_the_same_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("project");
        write(&root, "reqs/requirements.txt", "six\n");
        write(&root, "src/app/main.py", "print(1)\n");
        write(&root, "src/.gitignore", "*.log\n");
        write(&root, "src/debug.log", "noise\n");
        write(&root, "conf/a.toml", "a = 1\n");
        write(tmp.path(), "outside/uv.lock", "lock\n");
        write(tmp.path(), "outside/pyproject.toml", "[project]\n");
        let base = ImageSpec::new("base").with_requirements("../outside/uv.lock");
        let spec = ImageSpec::new("app")
            .with_copy(["./conf/a.toml"])
            .with_requirements("reqs/requirements.txt")
            .with_source_root("src/")
            .with_base_spec(base);
        let loaded = LoadedSpec::from_spec(spec, &root).expect("valid");
        let sel = select(&loaded).expect("select");
        let paths: Vec<&str> = sel.files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                ".imagespec-remote/1/requirements/pyproject.toml",
                ".imagespec-remote/1/requirements/uv.lock",
                "conf/a.toml",
                "reqs/requirements.txt",
                "src/.gitignore",
                "src/app/main.py",
            ]
        );
        let elsewhere = tmp.path().join("elsewhere");
        materialise(&sel, &elsewhere);
        let again = LoadedSpec::from_spec(sel.spec.clone(), &elsewhere).expect("valid elsewhere");
        assert_eq!(
            resolve_image(&again).expect("hash").name,
            resolve_image(&loaded).expect("hash").name
        );
    }
}
