//! A build's registry cache ([`BuildCache`]) in each engine's build API, or a refusal that
//! says what the engine cannot do (never a setting silently dropped).
//!
//! - Docker (the Engine API's `/build` with BuildKit, `version=2`): `cachefrom` (a JSON list of
//!   image references) imports registry caches. The endpoint has no cache export: `cacheto`
//!   does not exist in Engine API 1.41 (Docker 20.10) or later, export is only reachable through
//!   BuildKit's own gRPC control API (what `docker buildx` drives). What it does have is the
//!   inline cache: the build arg `BUILDKIT_INLINE_CACHE=1` writes the cache metadata into the
//!   image's config, so the pushed image is itself the cache (`mode=min`: the final stage's
//!   layers) for a later `cache_from: IMAGE`. So `cache_to: type=inline` works, and a registry
//!   `cache_to` is refused with that fix.
//! - Podman 4.3 (the libpod `/build`): `cachefrom` and `cacheto`, one repository each (no tag:
//!   Buildah tags each step's cache image by its content), which push and pull the layer of every
//!   step (`mode=max` in BuildKit's terms). No inline cache.
//!
//! The cache's registry is logged in to with the image's credentials: BuildKit asks the build's
//! session (`crate::session`), Podman reads `X-Registry-Config` (`crate::pull_auth`), which
//! therefore also covers the cache references.

use std::collections::BTreeMap;

use imagespec_core::build::{BuildCache, CacheRef};

use crate::discovery::EngineKind;
use crate::error::LocalError;

/// What the build request carries for its cache.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CacheRequest {
    /// Query parameters of `/build`.
    pub params: Vec<(&'static str, String)>,
    /// Build args (the inline cache's).
    pub build_args: BTreeMap<String, String>,
    /// The cache images, whose registries need credentials.
    pub images: Vec<String>,
}

/// The cache settings of one build on an engine of `kind`.
pub(crate) fn request(kind: EngineKind, cache: &BuildCache) -> Result<CacheRequest, LocalError> {
    let mut out = CacheRequest::default();
    if cache.is_empty() {
        return Ok(out);
    }
    let from: Vec<&str> = cache
        .from
        .iter()
        .filter_map(|c| match c {
            CacheRef::Registry { reference, .. } => Some(reference.as_str()),
            CacheRef::Inline => None,
        })
        .collect();
    out.images.extend(from.iter().map(|r| r.to_string()));
    match kind {
        EngineKind::Docker => {
            if !from.is_empty() {
                out.params.push((
                    "cachefrom",
                    serde_json::to_string(&from).map_err(|e| {
                        LocalError::context("cannot encode the cache references", e)
                    })?,
                ));
            }
            match &cache.to {
                None => {}
                Some(CacheRef::Inline) => {
                    out.build_args
                        .insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
                }
                Some(CacheRef::Registry { reference, .. }) => {
                    return Err(LocalError::Unsupported(format!(
                        "cache_to `{reference}`: Docker's build API (`/build`, used with BuildKit) cannot export a cache to a registry (only `docker buildx` reaches BuildKit's exporter); write `cache_to: type=inline` (the pushed image carries its cache; import it with `cache_from: <the image>`), or build with `--builder podman`"
                    )));
                }
            }
        }
        EngineKind::Podman => {
            match from.as_slice() {
                [] => {}
                [one] => {
                    untagged(one, "cache_from")?;
                    out.params.push(("cachefrom", one.to_string()));
                }
                more => {
                    return Err(LocalError::Unsupported(format!(
                        "cache_from names {} caches; Podman 4.3's build API imports one: keep one of {}",
                        more.len(),
                        more.join(", ")
                    )));
                }
            }
            match &cache.to {
                None => {}
                Some(CacheRef::Inline) => {
                    return Err(LocalError::Unsupported(
                        "cache_to `type=inline`: Podman has no inline cache; write `cache_to: type=registry,ref=REGISTRY/REPOSITORY`".into(),
                    ));
                }
                Some(CacheRef::Registry { reference, .. }) => {
                    untagged(reference, "cache_to")?;
                    out.params.push(("cacheto", reference.clone()));
                    out.images.push(reference.clone());
                }
            }
        }
    }
    Ok(out)
}

/// Podman's cache is a repository: a tag (or digest) is refused, with the reference without it.
fn untagged(reference: &str, key: &str) -> Result<(), LocalError> {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    let bare = if let Some((repo, _)) = reference.split_once('@') {
        Some(repo)
    } else {
        last.rfind(':')
            .map(|i| &reference[..reference.len() - last.len() + i])
    };
    match bare {
        Some(bare) => Err(LocalError::Unsupported(format!(
            "{key} `{reference}`: Podman keeps a cache in a repository and tags each step's layer itself; write `{bare}`"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(from: &[&str], to: Option<&str>) -> BuildCache {
        BuildCache {
            from: from
                .iter()
                .map(|r| CacheRef::parse(r).expect("ref"))
                .collect(),
            to: to.map(|r| CacheRef::parse(r).expect("ref")),
        }
    }

    #[test]
    fn docker_imports_a_list_and_exports_inline_only() {
        let r = request(
            EngineKind::Docker,
            &cache(&["r:5000/a:1", "r:5000/b"], Some("type=inline")),
        )
        .expect("docker");
        assert_eq!(
            r.params,
            [("cachefrom", r#"["r:5000/a:1","r:5000/b"]"#.to_string())]
        );
        assert_eq!(r.build_args["BUILDKIT_INLINE_CACHE"], "1");
        let refused = request(
            EngineKind::Docker,
            &cache(&[], Some("type=registry,ref=r:5000/a,mode=max")),
        )
        .expect_err("no registry export through /build");
        assert!(refused.to_string().contains("type=inline"), "{refused}");
    }

    #[test]
    fn podman_takes_one_untagged_repository_each_way() {
        let r = request(
            EngineKind::Podman,
            &cache(&["r:5000/a/cache"], Some("r:5000/a/cache")),
        )
        .expect("podman");
        assert_eq!(
            r.params,
            [
                ("cachefrom", "r:5000/a/cache".to_string()),
                ("cacheto", "r:5000/a/cache".to_string())
            ]
        );
        assert_eq!(r.images, ["r:5000/a/cache", "r:5000/a/cache"]);
        let tagged =
            request(EngineKind::Podman, &cache(&[], Some("r:5000/a/cache:v1"))).expect_err("tag");
        assert!(
            tagged.to_string().contains("write `r:5000/a/cache`"),
            "{tagged}"
        );
        assert!(request(EngineKind::Podman, &cache(&["r:5000/x"], None)).is_ok());
        assert!(request(EngineKind::Podman, &cache(&["a", "b"], None)).is_err());
        assert!(request(EngineKind::Podman, &cache(&[], Some("type=inline"))).is_err());
    }
}
