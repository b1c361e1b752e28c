//! What kind of file `requirements` names; it decides how dependencies are installed and which
//! files are part of the image identity.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The kinds of dependency file a spec can name, dispatched on the file name as flytekit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequirementsKind {
    /// A pip requirements list (`requirements.txt` or any other name).
    RequirementsTxt,
    /// `uv.lock`: installed with `uv sync --locked`, needs the `pyproject.toml` beside it.
    UvLock,
    /// `poetry.lock`: installed with `poetry install --no-root`, needs the `pyproject.toml` beside it.
    PoetryLock,
    /// A `pyproject.toml` whose dependencies are installed.
    Pyproject,
}

impl RequirementsKind {
    /// The name the hash encodes (imagespec-tag-v1): fixed here, so renaming a variant does not
    /// change every tag. These are the names the scheme has always used.
    pub fn hash_name(&self) -> &'static str {
        match self {
            RequirementsKind::RequirementsTxt => "RequirementsTxt",
            RequirementsKind::UvLock => "UvLock",
            RequirementsKind::PoetryLock => "PoetryLock",
            RequirementsKind::Pyproject => "Pyproject",
        }
    }

    /// Classifies a path by its file name.
    pub fn of(path: &str) -> RequirementsKind {
        let file_name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match file_name {
            "uv.lock" => RequirementsKind::UvLock,
            "poetry.lock" => RequirementsKind::PoetryLock,
            "pyproject.toml" => RequirementsKind::Pyproject,
            _ => RequirementsKind::RequirementsTxt,
        }
    }

    /// Whether this is a lock file (which pins everything, so `packages` cannot be added).
    pub fn is_lock(self) -> bool {
        matches!(
            self,
            RequirementsKind::UvLock | RequirementsKind::PoetryLock
        )
    }

    /// The `pyproject.toml` that must sit beside a lock file, relative like `requirements`.
    pub fn companion_pyproject(self, requirements: &str) -> Option<PathBuf> {
        self.is_lock().then(|| {
            Path::new(requirements)
                .parent()
                .unwrap_or(Path::new(""))
                .join("pyproject.toml")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatches_on_file_name() {
        assert_eq!(RequirementsKind::of("a/uv.lock"), RequirementsKind::UvLock);
        assert_eq!(
            RequirementsKind::of("poetry.lock"),
            RequirementsKind::PoetryLock
        );
        assert_eq!(
            RequirementsKind::of("pyproject.toml"),
            RequirementsKind::Pyproject
        );
        assert_eq!(
            RequirementsKind::of("reqs/dev.txt"),
            RequirementsKind::RequirementsTxt
        );
        assert_eq!(
            RequirementsKind::UvLock.companion_pyproject("sub/uv.lock"),
            Some(PathBuf::from("sub/pyproject.toml"))
        );
        assert_eq!(
            RequirementsKind::RequirementsTxt.companion_pyproject("r.txt"),
            None
        );
    }
}
