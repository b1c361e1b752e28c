//! Normalisation: the spelling differences that must not change the image name are removed here,
//! once, before validation and hashing.

use std::path::{Component, Path};

use super::model::{BaseImage, DEFAULT_PLATFORM, ImageSpec};

/// Normalises a spec in place (and its base spec):
/// - `name` and `registry` trimmed and lower-cased (flytekit lower-cases the name);
/// - a URL scheme and trailing `/` on `registry` stripped (`https://ghcr.io/org` → `ghcr.io/org`),
///   as the source documents write registries as URLs;
/// - `copy` entries spelled one way (`./src//a.py`, `src/a.py/` → `src/a.py`), because the entry
///   is part of the image name and of the path in the image;
/// - `platform` stripped of spaces around commas, defaulting to `linux/amd64`;
/// - a base spec without a `registry` inherits its child's, so a pushed child can find its base.
pub fn normalize(spec: &mut ImageSpec) {
    spec.name = spec.name.trim().to_lowercase();
    if let Some(registry) = spec.registry.take() {
        let lowered = registry.trim().to_lowercase();
        let without_scheme = lowered
            .strip_prefix("https://")
            .or_else(|| lowered.strip_prefix("http://"))
            .unwrap_or(&lowered);
        let clean = without_scheme.trim_end_matches('/').to_string();
        spec.registry = (!clean.is_empty()).then_some(clean);
    }
    for entry in &mut spec.copy {
        *entry = normalize_relative_path(entry);
    }
    let platforms: Vec<&str> = spec
        .platform
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    spec.platform = if platforms.is_empty() {
        DEFAULT_PLATFORM.to_string()
    } else {
        platforms.join(",")
    };
    let child_registry = spec.registry.clone();
    if let Some(BaseImage::Spec(base)) = &mut spec.base_image {
        if base.registry.is_none() {
            base.registry = child_registry;
        }
        normalize(base);
    }
}

/// `a/./b//c/` → `a/b/c`, `./` → `.`. An absolute path or one with `..` is left as written, for
/// validation to reject in the user's own spelling.
fn normalize_relative_path(entry: &str) -> String {
    let path = Path::new(entry);
    if entry.is_empty()
        || path.is_absolute()
        || path.components().any(|c| matches!(c, Component::ParentDir))
    {
        return entry.to_string();
    }
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_scheme_and_lowercases() {
        let mut s = ImageSpec::new(" Say-Hello ").with_registry("https://GHCR.io/MyOrg/");
        normalize(&mut s);
        assert_eq!(s.name, "say-hello");
        assert_eq!(s.registry.as_deref(), Some("ghcr.io/myorg"));
        let mut s = ImageSpec::new("a").with_registry("HTTPS://ghcr.io/org");
        normalize(&mut s);
        assert_eq!(s.registry.as_deref(), Some("ghcr.io/org"));
    }

    #[test]
    fn copy_entries_have_one_spelling() {
        let mut s = ImageSpec::new("a").with_copy([
            "./src//a.py",
            "src/",
            "data/./x",
            "./",
            "../up",
            "/abs",
            "",
        ]);
        normalize(&mut s);
        assert_eq!(
            s.copy,
            ["src/a.py", "src", "data/x", ".", "../up", "/abs", ""]
        );
    }

    #[test]
    fn platform_spaces_and_default() {
        let mut s = ImageSpec::new("a").with_platform(" linux/amd64 , linux/arm64 ");
        normalize(&mut s);
        assert_eq!(s.platform, "linux/amd64,linux/arm64");
        let mut s = ImageSpec::new("a").with_platform("");
        normalize(&mut s);
        assert_eq!(s.platform, DEFAULT_PLATFORM);
    }

    #[test]
    fn base_spec_inherits_registry() {
        let mut s = ImageSpec::new("child")
            .with_registry("http://127.0.0.1:5000")
            .with_base_spec(ImageSpec::new("Base"));
        normalize(&mut s);
        let base = s.base_spec().expect("base spec");
        assert_eq!(base.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(base.name, "base");
    }
}
