//! Which files a remote build needs: exactly the ones the image name was hashed from.
//!
//! The service rebuilds the spec in a fresh directory from these files and recomputes the name,
//! so the files are [`imagespec_core::inputs::select`]'s, the selection the name is hashed from:
//! the requirements file and the `pyproject.toml` beside a lock file, every `copy` entry, the
//! `source_root` tree after ignore-file filtering, for the spec and every base spec nested in
//! it. A symlink inside a tree is sent as a link (its target, no blob), as the build context
//! holds it.
//!
//! Paths that leave the root (absolute, or with `..`) are allowed for `requirements` and
//! `source_root` locally; the hash counts only their bytes (and the requirements file's name),
//! not where they sit, so they are moved under `.imagespec-remote/` in the spec that is sent and
//! the name does not change. `registry_config` is dropped (the service pushes with its own
//! credentials) and is not hashed either; nor are `pip_secret_mounts`, whose sources become
//! `env:pip_secret_<index>` (the values travel in the request, see [`crate::secrets`]).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use imagespec_core::inputs::{FileInput, PathContent, PathFile, PathInput, SpecInputs};
use imagespec_core::spec::{BaseImage, ImageSpec, LoadedSpec};
use sha2::{Digest, Sha256};

use crate::error::RemoteError;

/// Where paths from outside the root are placed in the sent workspace (core's rule: the service
/// loads the spec with it as [`LoadedSpec::relocated_dir`]).
pub const OUTSIDE_DIR: &str = imagespec_core::inputs::RELOCATED_DIR;

/// A file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub source: PathBuf,
    /// SHA-256 of the bytes (of the target's text for a link).
    pub digest: [u8; 32],
    pub executable: bool,
    pub size: u64,
    /// A symlink inside a tree, sent as its target (no blob is uploaded for it).
    pub symlink: Option<String>,
}

impl LocalFile {
    /// A dependency file: data, whatever its mode on disk.
    fn data(file: &FileInput) -> LocalFile {
        LocalFile {
            source: file.fs_path.clone(),
            digest: file.digest,
            executable: false,
            size: file.size,
            symlink: None,
        }
    }
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
    let spec = rewrite(loaded, 0, &mut files)?;
    Ok(Selection { spec, files })
}

fn rewrite(
    loaded: &LoadedSpec,
    depth: usize,
    files: &mut BTreeMap<String, LocalFile>,
) -> Result<ImageSpec, RemoteError> {
    let spec = &loaded.spec;
    // The one selection of the spec's files, as the image name was hashed from.
    let inputs = imagespec_core::inputs::select(loaded).map_err(RemoteError::Inputs)?;
    let mut out = spec.clone();
    out.registry_config = None;
    // A secret's source is a path or variable of this machine; its value travels beside the
    // spec ([`crate::secrets`]), so the spec sent only names each secret by its plan id.
    for (i, mount) in out.pip_secret_mounts.iter_mut().enumerate() {
        mount.src = format!("env:{}", imagespec_core::plan::secrets::secret_id(i));
    }
    let outside = |what: &str| format!("{OUTSIDE_DIR}/{depth}/{what}");
    if let Some(req) = &inputs.requirements {
        let file_name = Path::new(&req.spec_path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (sent, dir) = match inside(&req.spec_path) {
            Some(rel) => (req.spec_path.clone(), parent(&rel)),
            None => {
                let dir = outside("requirements");
                (format!("{dir}/{file_name}"), dir)
            }
        };
        insert(files, join(&dir, &file_name), LocalFile::data(&req.file))?;
        if let Some(pyproject) = &req.companion {
            insert(
                files,
                join(&dir, "pyproject.toml"),
                LocalFile::data(pyproject),
            )?;
        }
        out.requirements = Some(sent);
    }
    for entry in &inputs.copy {
        let rel = inside(&entry.spec_path).ok_or_else(|| {
            RemoteError::Selection(format!(
                "`copy` entry `{}` leaves the root",
                entry.spec_path
            ))
        })?;
        add_path(files, &rel, entry)?;
    }
    if let Some(src) = &inputs.source_root {
        let rel = match inside(&src.spec_path) {
            Some(rel) => rel,
            None => {
                let dir = outside("source_root");
                out.source_root = Some(dir.clone());
                dir
            }
        };
        add_path(files, &rel, src)?;
    }
    send_root_dockerignore(loaded, &inputs, files)?;
    if let Some(base) = loaded.base() {
        out.base_image = Some(BaseImage::Spec(Box::new(rewrite(&base, depth + 1, files)?)));
    }
    Ok(out)
}

/// The root's `.dockerignore` shapes the trees below the root (a `!` there keeps a file the
/// built-in excludes drop), so the service needs it to select the same files; it is sent when
/// such a tree exists and no tree sent it already (a `source_root` of `.` that keeps it).
fn send_root_dockerignore(
    loaded: &LoadedSpec,
    inputs: &SpecInputs,
    files: &mut BTreeMap<String, LocalFile>,
) -> Result<(), RemoteError> {
    let name = imagespec_core::inputs::ROOT_DOCKERIGNORE;
    let below_root = inputs
        .copy
        .iter()
        .chain(&inputs.source_root)
        .any(|t| matches!(t.content, PathContent::Dir(_)) && inside(&t.spec_path).is_some());
    let path = loaded.root.join(name);
    if !below_root || files.contains_key(name) || !path.is_file() {
        return Ok(());
    }
    let file = imagespec_core::inputs::file_input(name, &path).map_err(RemoteError::Inputs)?;
    insert(files, name.to_string(), LocalFile::data(&file))
}

/// A `copy` entry or `source_root` at `rel`: a file, or a directory's selected files and links.
fn add_path(
    files: &mut BTreeMap<String, LocalFile>,
    rel: &str,
    entry: &PathInput,
) -> Result<(), RemoteError> {
    for file in entry.files() {
        let symlink = if file.symlink {
            Some(link_target(&file)?)
        } else {
            None
        };
        insert(
            files,
            join(rel, &file.rel),
            LocalFile {
                source: file.source,
                digest: file.digest,
                executable: file.executable,
                size: if symlink.is_some() { 0 } else { file.size },
                symlink,
            },
        )?;
    }
    Ok(())
}

/// The target of a selected link, checked against the digest it was selected with.
fn link_target(file: &PathFile) -> Result<String, RemoteError> {
    let target = std::fs::read_link(&file.source).map_err(|source| RemoteError::Read {
        path: file.source.clone(),
        source,
    })?;
    let target = target.to_string_lossy().into_owned();
    let digest: [u8; 32] = Sha256::digest(target.as_bytes()).into();
    if digest != file.digest {
        return Err(RemoteError::Selection(format!(
            "{} changed while the build was being prepared; run the build again",
            file.source.display()
        )));
    }
    Ok(target)
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
            if existing.digest != file.digest
                || existing.executable != file.executable
                || existing.symlink != file.symlink =>
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

    #[test]
    fn the_root_dockerignore_travels_and_relocated_files_stay_out_of_a_root_tree() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("project");
        write(&root, ".dockerignore", ".dockerignore\n*.log\n!keep.pyc\n");
        write(&root, "app.py", "print(1)\n");
        write(&root, "keep.pyc", "kept\n");
        write(&root, "drop.pyc", "dropped\n");
        write(&root, "debug.log", "dropped\n");
        write(tmp.path(), "outside/requirements.txt", "six\n");
        let spec = ImageSpec::new("app")
            .with_requirements("../outside/requirements.txt")
            .with_source_root(".");
        let loaded = LoadedSpec::from_spec(spec, &root).expect("valid");
        let sel = select(&loaded).expect("select");
        let paths: Vec<&str> = sel.files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                ".dockerignore",
                ".imagespec-remote/0/requirements/requirements.txt",
                "app.py",
                "keep.pyc",
            ]
        );
        let elsewhere = tmp.path().join("elsewhere");
        materialise(&sel, &elsewhere);
        let name = |l: &LoadedSpec| resolve_image(l).expect("hash").name;
        let again = LoadedSpec::from_spec(sel.spec.clone(), &elsewhere).expect("valid elsewhere");
        assert_ne!(
            name(&again),
            name(&loaded),
            "without the rule the root tree takes in the relocated file"
        );
        assert_eq!(name(&again.with_relocated_dir(OUTSIDE_DIR)), name(&loaded));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_inside_the_tree_is_sent_as_a_link_without_a_blob() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        write(root, "src/app/main.py", "print(1)\n");
        std::os::unix::fs::symlink("app/main.py", root.join("src/run.py")).expect("link");
        let loaded =
            LoadedSpec::from_spec(ImageSpec::new("app").with_source_root("src"), root).expect("ok");
        let sel = select(&loaded).expect("select");
        let link = &sel.files["src/run.py"];
        assert_eq!(link.symlink.as_deref(), Some("app/main.py"));
        assert_eq!(link.size, 0, "no bytes are uploaded for a link");
        assert_eq!(sel.files["src/app/main.py"].symlink, None);
    }
}
