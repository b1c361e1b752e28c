//! The Flyte runtime: the `flytekit` package every image built from a flytekit spec needs to run
//! a task (`pyflyte-execute`), or Union's SDK `union` (which brings flytekit) on the Union
//! deployment variants.
//!
//! flytekit's default builder appends `flytekit==<its own version>` to the Python install unless
//! the packages or the requirements file already name `flytekit`; it does not add it with a lock
//! file (`uv.lock`, `poetry.lock`), whose environment is exactly what the lock pins. imagespec
//! does the same, with a pinned version ([`DEFAULT_FLYTEKIT_VERSION`], overridable) instead of
//! the version of the running Python process, and also leaves alone a spec that names `union` or
//! `unionai` (Union's SDK, which depends on flytekit).
//!
//! Union's image builder (`union` 0.1.204, `union/ucimage/_image_builder.py`) appends
//! `union==<its own version>` instead, unless `packages` or a `requirements.txt` name `union` or
//! `unionai` (naming `flytekit` does not stop it: `union` depends on flytekit). On the Union
//! variants (`serverless`, `byoc`, `byok`, `selfmanaged`) imagespec follows that:
//! [`Runtime::Union`], pinned to [`DEFAULT_UNION_VERSION`], overridable. With a lock file it adds
//! nothing, as for flytekit. [`Runtime::None`] turns the runtime off for images that are not
//! Flyte tasks. The runtime is a hash input of its own, so a version change changes the name.

use serde::{Deserialize, Serialize};

/// The flytekit release installed when nothing else is asked for; kept current by the project.
pub const DEFAULT_FLYTEKIT_VERSION: &str = "1.16.31";

/// The `union` release installed on the Union variants when nothing else is asked for; kept
/// current by the project (the release whose builder was read, see the module comment).
pub const DEFAULT_UNION_VERSION: &str = "0.1.204";

/// Package names that provide flytekit: when one is named, nothing is appended.
const PROVIDERS: [&str; 3] = ["flytekit", "union", "unionai"];

/// Package names that stop Union's builder from appending `union` (flytekit is not one).
const UNION_PROVIDERS: [&str; 2] = ["union", "unionai"];

/// Which Flyte runtime the Python install adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// `flytekit==<version>`.
    Flytekit(String),
    /// `union==<version>` (Union's builder's runtime, on the Union variants).
    Union(String),
    /// Nothing: an image that does not run Flyte tasks.
    None,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::Flytekit(DEFAULT_FLYTEKIT_VERSION.to_string())
    }
}

impl Runtime {
    /// Reads a `--flytekit-version` / `flytekit_version` value: a version, or `none`.
    pub fn parse(value: &str) -> Result<Runtime, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("none") {
            return Ok(Runtime::None);
        }
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-' | '_');
        if value.is_empty()
            || !value.chars().all(plain)
            || !value.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(format!(
                "`{value}` is not a flytekit version; write a release such as `{DEFAULT_FLYTEKIT_VERSION}`, or `none` for an image without flytekit"
            ));
        }
        Ok(Runtime::Flytekit(value.to_string()))
    }

    /// Reads a `--union-version` / `union_version` value: a version, or `none`.
    pub fn parse_union(value: &str) -> Result<Runtime, String> {
        match Runtime::parse(value) {
            Ok(Runtime::Flytekit(version)) => Ok(Runtime::Union(version)),
            Ok(other) => Ok(other),
            Err(_) => Err(format!(
                "`{}` is not a union version; write a release such as `{DEFAULT_UNION_VERSION}`, or `none` for an image without the Flyte runtime",
                value.trim()
            )),
        }
    }

    /// The pinned runtime of a deployment variant: `union` on Union's variants (as Union's
    /// builder adds it), flytekit on `flyte`.
    pub fn default_for(variant: crate::build::Variant) -> Runtime {
        match variant {
            crate::build::Variant::Flyte => Runtime::default(),
            _ => Runtime::Union(DEFAULT_UNION_VERSION.to_string()),
        }
    }

    /// The requirement this runtime appends, if any.
    pub fn requirement(&self) -> Option<String> {
        match self {
            Runtime::Flytekit(version) => Some(format!("flytekit=={version}")),
            Runtime::Union(version) => Some(format!("union=={version}")),
            Runtime::None => None,
        }
    }

    /// The package names whose presence in the spec means nothing is appended.
    fn providers(&self) -> &'static [&'static str] {
        match self {
            Runtime::Union(_) => &UNION_PROVIDERS,
            _ => &PROVIDERS,
        }
    }

    /// How `tag --explain` shows it.
    pub fn summary(&self) -> String {
        self.requirement().unwrap_or_else(|| "none".into())
    }
}

/// Whether a requirement line (`flytekit>=1.10`, `union[extra]==0.1`, `Flytekit`) names a package
/// that provides flytekit. As flytekit's `_is_flytekit`, only the leading name counts; the name is
/// normalised as PEP 503 does (case, `_` and `.` are `-`).
pub fn provides_flytekit(requirement: &str) -> bool {
    names_one_of(requirement, &PROVIDERS)
}

/// Whether a requirement line's leading name (PEP 503-normalised) is one of `names`.
fn names_one_of(requirement: &str, names: &[&str]) -> bool {
    let name: String = requirement
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    names.contains(&name.as_str())
}

/// Whether a requirements file's text names a provider: one requirement per line (comments and
/// options such as `-r` are not followed, as in flytekit) for `requirements.txt`; for a
/// `pyproject.toml`, any quoted string that starts with a provider's name (the `dependencies`
/// array holds quoted requirements).
pub fn text_provides_flytekit(text: &str, pyproject: bool) -> bool {
    text_names_one_of(text, pyproject, &PROVIDERS)
}

fn text_names_one_of(text: &str, pyproject: bool, names: &[&str]) -> bool {
    if !pyproject {
        return text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default())
            .any(|l| names_one_of(l, names));
    }
    text.split(['"', '\''])
        .skip(1)
        .step_by(2)
        .any(|quoted| names_one_of(quoted, names) && !quoted.trim().is_empty())
}

/// The requirement the install step appends for `loaded`: none when the runtime is off, with a
/// lock file, or when `packages` or the requirements file name a provider. Reads the
/// requirements file; one that cannot be read counts as naming nothing (hashing reports it).
pub(crate) fn appended(loaded: &crate::spec::LoadedSpec) -> Option<String> {
    use crate::spec::RequirementsKind;
    let requirement = loaded.runtime.requirement()?;
    let providers = loaded.runtime.providers();
    let spec = &loaded.spec;
    if spec.packages.iter().any(|p| names_one_of(p, providers)) {
        return None;
    }
    if let Some(req) = &spec.requirements {
        let pyproject = match RequirementsKind::of(req) {
            RequirementsKind::UvLock | RequirementsKind::PoetryLock => return None,
            RequirementsKind::Pyproject => true,
            RequirementsKind::RequirementsTxt => false,
        };
        if std::fs::read_to_string(loaded.path(req))
            .is_ok_and(|text| text_names_one_of(&text, pyproject, providers))
        {
            return None;
        }
    }
    Some(requirement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_none() {
        assert_eq!(
            Runtime::parse("1.16.0"),
            Ok(Runtime::Flytekit("1.16.0".into()))
        );
        assert_eq!(Runtime::parse("none"), Ok(Runtime::None));
        assert_eq!(Runtime::parse("NONE"), Ok(Runtime::None));
        for bad in ["", "latest", "1.16; rm -rf /", "1 2", "=1.0"] {
            let e = Runtime::parse(bad).expect_err(bad);
            assert!(e.contains("flytekit version"), "{e}");
        }
        assert_eq!(
            Runtime::default().requirement().as_deref(),
            Some("flytekit==1.16.31")
        );
    }

    #[test]
    fn union_runtime_and_variant_defaults() {
        use crate::build::Variant;
        assert_eq!(Runtime::default_for(Variant::Flyte), Runtime::default());
        for v in [
            Variant::Serverless,
            Variant::Byoc,
            Variant::Byok,
            Variant::Selfmanaged,
        ] {
            assert_eq!(
                Runtime::default_for(v).requirement().as_deref(),
                Some("union==0.1.204"),
                "{v:?}"
            );
        }
        assert_eq!(
            Runtime::parse_union("0.1.200"),
            Ok(Runtime::Union("0.1.200".into()))
        );
        assert_eq!(Runtime::parse_union("none"), Ok(Runtime::None));
        assert!(Runtime::parse_union("latest").is_err());
        // Union's rule: only union/unionai stop it, flytekit does not.
        let union = Runtime::Union("0.1.204".into());
        assert!(names_one_of("unionai>=0.1", union.providers()));
        assert!(!names_one_of("flytekit==1.16.31", union.providers()));
        assert!(!text_names_one_of("flytekit\n", false, union.providers()));
    }

    #[test]
    fn recognises_providers_by_name_only() {
        for yes in [
            "flytekit",
            "flytekit==1.12.3",
            "Flytekit>=1",
            "flytekit[all]",
            "union",
            "unionai~=0.1",
            "union==0.1.204",
        ] {
            assert!(provides_flytekit(yes), "{yes}");
        }
        // flytekit's own rule: plugins still get flytekit pinned, and a longer name is another package.
        for no in [
            "flytekitplugins-pandas",
            "flytekit-x",
            "numpy",
            "unionfs",
            "",
        ] {
            assert!(!provides_flytekit(no), "{no}");
        }
        assert!(text_provides_flytekit(
            "numpy\n# flytekit\nflytekit>=1.10  # pinned\n",
            false
        ));
        assert!(!text_provides_flytekit("numpy\n# flytekit\n", false));
        assert!(text_provides_flytekit(
            "[project]\ndependencies = [\"numpy\", \"union>=0.1\"]\n",
            true
        ));
        assert!(!text_provides_flytekit(
            "[project]\nname = \"app\"\ndependencies = [\"numpy\"]\n",
            true
        ));
    }
}
