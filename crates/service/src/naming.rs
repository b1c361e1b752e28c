//! Image names as the service sees them: a target without a registry goes to the service's own
//! registry, and the answer always carries the fully qualified name.

use imagespec_core::hash::ImageName;
use imagespec_core::reference::{is_repository_path, is_tag, looks_like_host};

/// Parses `[registry/]repository:tag`; the registry is recognised like Docker does (the first
/// component has a `.` or `:` or is `localhost`) and keeps any namespace after the host
/// (`127.0.0.1:5000/team/app:t` → registry `127.0.0.1:5000/team`, repository `app`).
pub fn parse(image: &str) -> Option<ImageName> {
    let (path, tag) = image
        .rsplit_once(':')
        .filter(|(p, t)| !t.contains('/') && !p.is_empty())?;
    if !is_tag(tag) {
        return None;
    }
    let first = path.split('/').next().unwrap_or_default();
    let (registry, repository) = match path.rsplit_once('/') {
        Some((prefix, last)) if looks_like_host(first) => {
            (Some(prefix.to_string()), last.to_string())
        }
        _ => (None, path.to_string()),
    };
    if !is_repository_path(&repository) {
        return None;
    }
    if let Some(r) = &registry
        && imagespec_core::reference::check_registry(r).is_err()
    {
        return None;
    }
    Some(ImageName {
        registry,
        repository,
        tag: tag.to_string(),
    })
}

/// The name with the service's registry filled in when it has none; `None` when it has none
/// and the service has no registry either.
pub fn qualify(name: &ImageName, service_registry: Option<&str>) -> Option<ImageName> {
    match (&name.registry, service_registry) {
        (Some(_), _) => Some(name.clone()),
        (None, Some(r)) => Some(ImageName {
            registry: Some(r.to_string()),
            ..name.clone()
        }),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_qualifies() {
        let n = parse("app:abc").expect("bare");
        assert_eq!(n.registry, None);
        assert_eq!(
            qualify(&n, Some("127.0.0.1:5000/service"))
                .expect("q")
                .to_string(),
            "127.0.0.1:5000/service/app:abc"
        );
        assert_eq!(qualify(&n, None), None);
        let n = parse("127.0.0.1:5000/team/app:t1").expect("full");
        assert_eq!(n.registry.as_deref(), Some("127.0.0.1:5000/team"));
        assert_eq!(n.repository, "app");
        assert_eq!(
            qualify(&n, Some("x.io")).expect("kept").to_string(),
            "127.0.0.1:5000/team/app:t1"
        );
        let n = parse("library/python:3").expect("namespaced");
        assert_eq!(n.repository, "library/python");
        for bad in [
            "app",
            "app:",
            ":t",
            "127.0.0.1:5000/app",
            "App:t",
            "a:b/c",
            "a:t t",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
