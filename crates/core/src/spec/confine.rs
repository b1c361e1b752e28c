//! The host paths a spec names, and keeping them inside one directory.
//!
//! Locally a spec may name files anywhere (`requirements: ../shared/r.txt`); a build service
//! that lays a client's upload out in a workspace must not let a spec reach past it (another
//! build's files, the service's database, a planted host file). [`confine`] is that rule: every
//! path of the spec and of its base specs is relative, never climbs with `..`, and, symlinks
//! followed, stays below the root. It only looks at names and `lstat`s them, reading nothing.

use std::path::{Component, Path, PathBuf};

use super::model::ImageSpec;
use super::requirements::RequirementsKind;

/// One host path of a spec: the field (`requirements`, `copy[1]`, `base_image.source_root`)
/// and the path as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPath {
    pub field: String,
    pub path: String,
}

/// Every host path of `spec` and its base specs (what a build reads from the machine it runs on).
pub fn host_paths(spec: &ImageSpec) -> Vec<HostPath> {
    let mut out = Vec::new();
    let mut prefix = String::new();
    let mut current = Some(spec);
    while let Some(s) = current {
        let mut add = |field: String, path: &str| {
            out.push(HostPath {
                field: format!("{prefix}{field}"),
                path: path.to_string(),
            });
        };
        if let Some(req) = &s.requirements {
            add("requirements".into(), req);
            if let Some(p) = RequirementsKind::of(req).companion_pyproject(req) {
                add("requirements".into(), &p.to_string_lossy());
            }
        }
        for (i, c) in s.copy.iter().enumerate() {
            add(format!("copy[{i}]"), c);
        }
        if let Some(src) = &s.source_root {
            add("source_root".into(), src);
        }
        if let Some(rc) = &s.registry_config {
            add("registry_config".into(), rc);
        }
        for (i, m) in s.pip_secret_mounts.iter().enumerate() {
            add(format!("pip_secret_mounts[{i}].src"), &m.src);
        }
        prefix.push_str("base_image.");
        current = s.base_spec();
    }
    out
}

/// A spec path that leaves the root.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error(
        "`{field}`: `{path}` is absolute; name a path relative to the uploaded files (the client sends files from anywhere under a relative name)"
    )]
    Absolute { field: String, path: String },
    #[error("`{field}`: `{path}` climbs with `..`; name a path below the uploaded files")]
    Climbs { field: String, path: String },
    #[error(
        "`{field}`: `{path}` leads outside the uploaded files through a symlink; replace the link with the file"
    )]
    LinkLeaves { field: String, path: String },
    #[error("`{field}`: cannot inspect `{path}`: {source}")]
    Io {
        field: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ConfineError {
    /// The spec field at fault.
    pub fn field(&self) -> &str {
        match self {
            ConfineError::Absolute { field, .. }
            | ConfineError::Climbs { field, .. }
            | ConfineError::LinkLeaves { field, .. }
            | ConfineError::Io { field, .. } => field,
        }
    }
}

/// Checks that every host path of `spec` resolves below `root` (see the module docs).
pub fn confine(spec: &ImageSpec, root: &Path) -> Result<(), ConfineError> {
    let top = std::fs::canonicalize(root).map_err(|source| ConfineError::Io {
        field: "(root)".into(),
        path: root.display().to_string(),
        source,
    })?;
    for HostPath { field, path } in host_paths(spec) {
        // The text first, whole: a missing directory must not hide a later `..`.
        for component in Path::new(&path).components() {
            match component {
                Component::ParentDir => return Err(ConfineError::Climbs { field, path }),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(ConfineError::Absolute { field, path });
                }
                Component::Normal(_) | Component::CurDir => {}
            }
        }
        let mut walked = top.clone();
        for component in Path::new(&path).components() {
            let Component::Normal(part) = component else {
                continue;
            };
            walked.push(part);
            // Every prefix that exists must, its links followed, still be below the root: a
            // link `b -> .` makes `b/..` the root's parent even though the text never climbs.
            match std::fs::symlink_metadata(&walked) {
                Ok(_) => {
                    let real: PathBuf = match std::fs::canonicalize(&walked) {
                        Ok(real) => real,
                        // A dangling link: nothing behind it can be read.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                        Err(source) => {
                            return Err(ConfineError::Io {
                                field,
                                path,
                                source,
                            });
                        }
                    };
                    if !real.starts_with(&top) {
                        return Err(ConfineError::LinkLeaves { field, path });
                    }
                    walked = real;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(source) => {
                    return Err(ConfineError::Io {
                        field,
                        path,
                        source,
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_paths_of_the_spec_and_its_bases() {
        let base = ImageSpec::new("base").with_requirements("b/uv.lock");
        let mut spec = ImageSpec::new("app").with_source_root("src");
        spec.copy = vec!["a.txt".into()];
        spec.base_image = Some(super::super::model::BaseImage::Spec(Box::new(base)));
        let fields: Vec<(String, String)> = host_paths(&spec)
            .into_iter()
            .map(|h| (h.field, h.path))
            .collect();
        assert_eq!(
            fields,
            [
                ("copy[0]", "a.txt"),
                ("source_root", "src"),
                ("base_image.requirements", "b/uv.lock"),
                ("base_image.requirements", "b/pyproject.toml"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn paths_stay_below_the_root_even_through_links() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::write(dir.path().join("secret"), "x").expect("write");
        std::os::unix::fs::symlink(".", root.join("here")).expect("link");
        std::os::unix::fs::symlink("../secret", root.join("out")).expect("link");
        std::os::unix::fs::symlink("src", root.join("s")).expect("link");
        // Each link's text stays inside, but `here/..` is the root's parent.
        std::os::unix::fs::symlink("here/..", root.join("up")).expect("link");
        let ok = |src: &str| confine(&ImageSpec::new("a").with_source_root(src), &root);
        assert!(ok("src").is_ok());
        assert!(ok("./src").is_ok());
        assert!(ok("s").is_ok(), "a link inside is fine");
        assert!(
            ok("missing/dir").is_ok(),
            "absent paths are loading's problem"
        );
        assert!(matches!(ok("/etc"), Err(ConfineError::Absolute { .. })));
        assert!(matches!(ok("src/../.."), Err(ConfineError::Climbs { .. })));
        assert!(matches!(
            ok("missing/../.."),
            Err(ConfineError::Climbs { .. })
        ));
        assert!(matches!(ok("out"), Err(ConfineError::LinkLeaves { .. })));
        assert!(matches!(ok("up/ws"), Err(ConfineError::LinkLeaves { .. })));
        let e = confine(
            &ImageSpec::new("a").with_requirements("here/../secret"),
            &root,
        );
        assert!(matches!(e, Err(ConfineError::Climbs { .. })));
    }
}
