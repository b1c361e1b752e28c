//! Registry credentials for the pulls of a Podman build: the `X-Registry-Config` header.
//!
//! The libpod build endpoint cannot call back for credentials the way BuildKit does over its
//! session (`crate::session_auth`); it takes them up front, as a base64url JSON map from
//! registry host to `{username, password}` (or `identitytoken`), in `X-Registry-Config`. When
//! that header is present Podman uses *only* it for the build's pulls (it writes it to a
//! temporary auth file), so it holds the credential of every registry the Dockerfile pulls
//! from (its `FROM` images and `COPY --from` / `--mount=from=` images), looked up in the same
//! [`CredentialSources`] as the push. When none of them has a stored credential the header is
//! left out and Podman falls back to its own `auth.json`, as `podman build` would.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use base64::Engine as _;
use imagespec_registry::{Credential, CredentialSources, ImageReference};

use crate::error::LocalError;
use crate::secrets::SecretValue;

/// The images a Dockerfile pulls: each `FROM` that is not an earlier stage, and each
/// `--from=` of `COPY` / `RUN --mount` that is not a stage name or index. `scratch` and
/// references with build arguments (`$X`, which the engine resolves) are left out.
pub(crate) fn pulled_images(dockerfile: &str) -> Vec<String> {
    let mut stages: BTreeSet<String> = BTreeSet::new();
    let mut images: Vec<String> = Vec::new();
    let mut add = |image: &str, stages: &BTreeSet<String>| {
        let lower = image.to_ascii_lowercase();
        if image.is_empty()
            || lower == "scratch"
            || image.contains('$')
            || stages.contains(&lower)
            || image.bytes().all(|b| b.is_ascii_digit())
        {
            return;
        }
        if !images.iter().any(|i| i == image) {
            images.push(image.to_string());
        }
    };
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(instruction) = words.first() else {
            continue;
        };
        if instruction.eq_ignore_ascii_case("FROM") {
            let mut rest = words[1..].iter().skip_while(|w| w.starts_with("--"));
            if let Some(image) = rest.next() {
                add(image, &stages);
            }
            if let (Some(as_kw), Some(name)) = (rest.next(), rest.next())
                && as_kw.eq_ignore_ascii_case("AS")
            {
                stages.insert(name.to_ascii_lowercase());
            }
            continue;
        }
        for word in &words[1..] {
            // `COPY --from=img` and `RUN --mount=type=cache,from=img,...`.
            let from = word.strip_prefix("--from=").or_else(|| {
                word.strip_prefix("--mount=")
                    .and_then(|m| m.split(',').find_map(|kv| kv.strip_prefix("from=")))
            });
            if let Some(image) = from {
                add(image.trim_matches('"'), &stages);
            }
        }
    }
    images
}

/// Reads the Dockerfile at `path` from a build-context tar.
pub(crate) fn dockerfile_in_context(
    context: &mut impl Read,
    path: &str,
) -> std::io::Result<Option<String>> {
    let wanted = path.trim_start_matches("./");
    let mut archive = tar::Archive::new(context);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if name == wanted {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// The `X-Registry-Config` value for these images, and the secrets in it (for redaction);
/// `None` when no registry they come from has a stored credential.
pub(crate) async fn registry_config_header(
    images: &[String],
    sources: &CredentialSources,
) -> Result<Option<(String, Vec<SecretValue>)>, LocalError> {
    let mut registries: BTreeSet<String> = BTreeSet::new();
    for image in images {
        // An unparsable reference is the engine's to report, with its own message.
        if let Ok(r) = ImageReference::parse(image) {
            registries.insert(r.registry);
        }
    }
    let mut map: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut secrets = Vec::new();
    for registry in registries {
        let found = sources
            .resolve(&registry, "")
            .await
            .map_err(|e| LocalError::Credentials {
                registry: registry.clone(),
                reason: e.to_string(),
            })?;
        let Some(found) = found else { continue };
        tracing::debug!(registry, origin = %found.origin, "credentials for the build's pulls");
        let entry = match &found.credential {
            Credential::Basic { username, password } => {
                secrets.push(SecretValue::new(password.expose().as_bytes()));
                serde_json::json!({"username": username, "password": password.expose(), "serveraddress": registry})
            }
            Credential::IdentityToken(t) => {
                secrets.push(SecretValue::new(t.expose().as_bytes()));
                serde_json::json!({"identitytoken": t.expose(), "serveraddress": registry})
            }
            Credential::RegistryToken(t) => {
                secrets.push(SecretValue::new(t.expose().as_bytes()));
                serde_json::json!({"registrytoken": t.expose(), "serveraddress": registry})
            }
            other => {
                return Err(LocalError::Credentials {
                    registry,
                    reason: format!("unsupported credential kind ({other})"),
                });
            }
        };
        map.insert(registry, entry);
    }
    if map.is_empty() {
        return Ok(None);
    }
    let json = serde_json::Value::Object(map.into_iter().collect()).to_string();
    Ok(Some((
        base64::engine::general_purpose::URL_SAFE.encode(json),
        secrets,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pulled_images_not_stages() {
        let df = "FROM --platform=linux/amd64 127.0.0.1:5000/a/base:1 AS base\n\
                  FROM ghcr.io/astral-sh/uv:latest AS uv\n\
                  FROM base\n\
                  COPY --from=uv /uv /bin/uv\n\
                  COPY --from=localhost/imagespec/uv:latest /uvx /bin/uvx\n\
                  RUN --mount=type=cache,target=/c,from=quay.io/x/y:2 true\n\
                  COPY --from=0 /a /b\n\
                  FROM scratch\n\
                  FROM $BASE\n";
        assert_eq!(
            pulled_images(df),
            [
                "127.0.0.1:5000/a/base:1",
                "ghcr.io/astral-sh/uv:latest",
                "localhost/imagespec/uv:latest",
                "quay.io/x/y:2"
            ]
        );
    }
}
