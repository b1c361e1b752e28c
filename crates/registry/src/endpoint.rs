//! Where a repository's API lives: scheme, host and the plain-HTTP decision.
//!
//! Plain HTTP is used only for loopback hosts (a local test or mirror registry that has no
//! certificate) and registries the caller explicitly lists as insecure; everything else is
//! HTTPS, so credentials never cross a network unencrypted by accident.

use std::net::IpAddr;

use reqwest::Url;

use crate::error::RegistryError;
use crate::reference::ImageReference;

/// The API base of one registry.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The registry as users name it (`docker.io`), for messages and credential lookup.
    pub registry: String,
    /// `scheme://api-host/`.
    pub base: Url,
    pub plain_http: bool,
}

impl Endpoint {
    pub(crate) fn new(
        reference: &ImageReference,
        insecure: &[String],
    ) -> Result<Self, RegistryError> {
        let plain_http = is_loopback(&reference.registry)
            || insecure
                .iter()
                .any(|entry| matches_insecure(entry, &reference.registry));
        let scheme = if plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{}/", reference.api_host())).map_err(|e| {
            RegistryError::Client {
                reason: format!("registry `{}` does not form a URL: {e}", reference.registry),
            }
        })?;
        Ok(Self {
            registry: reference.registry.clone(),
            base,
            plain_http,
        })
    }

    /// A URL under the API base; `path` is built from validated reference parts.
    pub(crate) fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|e| RegistryError::Client {
            reason: format!("cannot form a URL for `{path}` on {}: {e}", self.registry),
        })
    }

    /// Whether `url` is on this registry (same scheme, host and port), i.e. may receive its
    /// credentials.
    pub(crate) fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    /// Whether credentials may be sent to `url`: HTTPS, or plain HTTP to a loopback host or a
    /// registry the caller marked insecure.
    pub(crate) fn may_send_credentials_to(&self, url: &Url) -> bool {
        url.scheme() == "https"
            || (self.plain_http && self.same_origin(url))
            || url.host_str().is_some_and(is_loopback)
    }
}

/// The host of `host[:port]` / `[v6]:port`, without brackets or port.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    registry.split(':').next().unwrap_or_default()
}

/// `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An insecure-registry entry matches `host:port` exactly, or any port if it names the host
/// alone.
fn matches_insecure(entry: &str, registry: &str) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    let entry = entry
        .strip_prefix("http://")
        .or_else(|| entry.strip_prefix("https://"))
        .unwrap_or(&entry)
        .trim_end_matches('/');
    entry == registry || entry == host_of(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_table() {
        for (host, expected) in [
            ("localhost", true),
            ("localhost:5000", true),
            ("LOCALHOST:5000", true),
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("[::1]:5000", true),
            ("[::1]", true),
            ("128.0.0.1", false),
            ("ghcr.io", false),
            ("localhost.example.com", false),
            ("[::2]:5000", false),
        ] {
            assert_eq!(is_loopback(host), expected, "{host}");
        }
    }

    #[test]
    fn schemes() {
        let endpoint = |r: &str, insecure: &[&str]| {
            let r = ImageReference::parse(r).expect("reference");
            let insecure: Vec<String> = insecure.iter().map(|s| s.to_string()).collect();
            Endpoint::new(&r, &insecure)
                .expect("endpoint")
                .base
                .to_string()
        };
        assert_eq!(endpoint("ubuntu", &[]), "https://registry-1.docker.io/");
        assert_eq!(endpoint("127.0.0.1:5000/a", &[]), "http://127.0.0.1:5000/");
        assert_eq!(endpoint("[::1]:5000/a", &[]), "http://[::1]:5000/");
        assert_eq!(endpoint("reg.lan:5000/a", &[]), "https://reg.lan:5000/");
        assert_eq!(
            endpoint("reg.lan:5000/a", &["reg.lan:5000"]),
            "http://reg.lan:5000/"
        );
        assert_eq!(
            endpoint("reg.lan:5000/a", &["http://reg.lan/"]),
            "http://reg.lan:5000/"
        );
        assert_eq!(
            endpoint("reg.lan:5000/a", &["reg.lan:5001"]),
            "https://reg.lan:5000/"
        );
    }
}
