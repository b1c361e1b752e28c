//! Image names as the service sees them: a target without a registry goes to the project's
//! namespace in the service's own registry (`<registry>/<project>/`), and the answer always
//! carries the fully qualified name. [`Scope`] is the one rule for what a project may push to,
//! ask about and build `FROM`.

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

/// A registry cache reference as an image name: BuildKit tags an untagged `ref` `latest`.
/// `None` for what is not a `[registry/]repository[:tag]` (a digest, say).
pub fn cache_name(reference: &str) -> Option<ImageName> {
    parse(reference).or_else(|| parse(&format!("{reference}:latest")))
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

/// A project's namespace in the service's registry: `<registry>/<project>`. A project name is
/// one path component ([`crate::config::is_project_name`]), so distinct projects never share
/// one, and none lies inside another's.
pub fn namespace(registry: &str, project: &str) -> String {
    format!("{}/{project}", registry.trim_end_matches('/'))
}

/// Refuses an `allowed_registries` prefix that reaches into another project's namespace in the
/// service's registry (or holds it: `<registry>` itself): it would let one project write
/// where another's images are found.
pub fn check_namespaces(
    registry: &str,
    tokens: &[crate::config::TokenEntry],
    allowed: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    let within = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
    for (project, prefixes) in allowed {
        for prefix in prefixes {
            let prefix = prefix.trim_end_matches('/');
            for other in tokens.iter().map(|t| t.project.as_str()) {
                let theirs = namespace(registry, other);
                if other != project && (within(prefix, &theirs) || within(&theirs, prefix)) {
                    return Err(format!(
                        "`{project}` may push to `{prefix}`, which holds project `{other}`'s namespace `{theirs}`; give `{project}` a prefix of its own (outside `{registry}`, or `{}`)",
                        namespace(registry, project)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// What one project may reach: its namespace in the service's registry, plus the registries
/// (or namespaces) the operator allowed it (`allowed_registries`), plus, for pulls only, the
/// operator's `base_images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `<service registry>/<project>`, when the service has a registry.
    pub namespace: Option<String>,
    /// Extra push/read prefixes for this project (`host[:port][/path]`).
    pub allowed: Vec<String>,
    /// Images any project may pull: exact references, or prefixes ending in `*`.
    pub base_images: Vec<String>,
}

impl Scope {
    /// The project's scope under `config`.
    pub fn of(config: &crate::config::ServiceConfig, project: &str) -> Scope {
        Scope {
            namespace: config.registry.as_ref().map(|r| namespace(r, project)),
            allowed: config
                .allowed_registries
                .get(project)
                .cloned()
                .unwrap_or_default(),
            base_images: config.base_images.clone(),
        }
    }

    /// The name with the project's namespace filled in when it has no registry; `None` when
    /// it has none and the service has no registry either.
    pub fn qualify(&self, name: &ImageName) -> Option<ImageName> {
        qualify(name, self.namespace.as_deref())
    }

    /// Whether the project may push this (qualified) name, or ask whether it exists: it lies
    /// in the project's namespace or under one of its allowed registries.
    pub fn may_write(&self, name: &ImageName) -> bool {
        let Some(registry) = &name.registry else {
            return false;
        };
        let full = format!("{registry}/{}", name.repository);
        self.namespace
            .iter()
            .chain(&self.allowed)
            .any(|prefix| full.starts_with(&format!("{}/", prefix.trim_end_matches('/'))))
    }

    /// Whether a build may pull `image` (a `FROM` or `COPY --from` reference as the plan has
    /// it): the project's own images, or the operator's `base_images`.
    pub fn may_pull(&self, image: &str) -> bool {
        let own = parse(image).is_some_and(|n| self.may_write(&n));
        own || self
            .base_images
            .iter()
            .any(|allowed| match allowed.strip_suffix('*') {
                Some(prefix) => image.starts_with(prefix),
                None => image == allowed,
            })
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

    #[test]
    fn a_cache_reference_reads_as_buildkit_reads_it() {
        let n = cache_name("127.0.0.1:5000/service/team-a/cache").expect("untagged");
        assert_eq!(n.to_string(), "127.0.0.1:5000/service/team-a/cache:latest");
        let n = cache_name("127.0.0.1:5000/service/team-a/cache:v1").expect("tagged");
        assert_eq!(n.tag, "v1");
        assert_eq!(cache_name("app-cache").expect("bare").registry, None);
        assert!(cache_name("127.0.0.1:5000/c@sha256:00").is_none());
    }

    #[test]
    fn a_scope_is_the_project_namespace_and_its_allowances() {
        let scope = Scope {
            namespace: Some("127.0.0.1:5000/service/team-a".into()),
            allowed: vec!["registry.example.com/team-a".into()],
            base_images: vec![
                "debian:bookworm-slim".into(),
                "localhost/imagespec/*".into(),
            ],
        };
        let name = |s: &str| parse(s).expect(s);
        assert!(scope.may_write(&name("127.0.0.1:5000/service/team-a/app:t")));
        assert!(scope.may_write(&name("127.0.0.1:5000/service/team-a/x/app:t")));
        assert!(scope.may_write(&name("registry.example.com/team-a/app:t")));
        for other in [
            "127.0.0.1:5000/service/team-b/app:t",
            "127.0.0.1:5000/service/team-a-evil/app:t",
            "127.0.0.1:5000/service/app:t",
            "127.0.0.1:5001/team-a/app:t",
            "registry.example.com/team-ab/app:t",
            "app:t",
        ] {
            assert!(!scope.may_write(&name(other)), "{other}");
        }
        assert!(scope.may_pull("debian:bookworm-slim"));
        assert!(scope.may_pull("localhost/imagespec/python:3.11-bookworm"));
        assert!(scope.may_pull("127.0.0.1:5000/service/team-a/base:t"));
        assert!(!scope.may_pull("debian:bookworm"));
        assert!(!scope.may_pull("127.0.0.1:5000/service/team-b/base:t"));
        assert_eq!(
            scope.qualify(&name("app:t")).expect("q").to_string(),
            "127.0.0.1:5000/service/team-a/app:t"
        );
    }
}
