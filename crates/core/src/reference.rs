//! Grammar checks for the parts of an image name (OCI distribution spec), so that a bad `name`,
//! `registry`, tag or `base_image` is rejected before any work instead of by a registry later.

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_alnum_lower(c) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`, always followed by alnum.
        let start = i;
        match c {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !is_alnum_lower(b[i]) {
            return false;
        }
    }
    true
}

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A repository path: components separated by `/`.
pub fn is_repository_path(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.split('/').all(is_path_component)
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A registry host: a DNS name or IPv4 address or `[IPv6]`, with an optional port.
pub fn is_registry_host(s: &str) -> bool {
    let (host, port) = split_host_port(s);
    if let Some(port) = port
        && (!port.bytes().all(|c| c.is_ascii_digit()) || !matches!(port.parse::<u16>(), Ok(1..)))
    {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        return match s.find(']') {
            Some(end) => {
                let rest = &s[end + 1..];
                (&s[..=end], rest.strip_prefix(':'))
            }
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

/// Whether the first path component of a reference names a registry host (Docker's rule).
pub fn looks_like_host(component: &str) -> bool {
    component.contains('.')
        || component.contains(':')
        || component == "localhost"
        || component.starts_with('[')
}

/// Checks a registry value (`host[:port][/namespace...]`, already without scheme).
pub fn check_registry(registry: &str) -> Result<(), String> {
    let (host, path) = match registry.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    if !is_registry_host(host) {
        return Err(format!("`{host}` is not a valid registry host"));
    }
    if let Some(path) = path
        && !is_repository_path(path)
    {
        return Err(format!(
            "`{path}` is not a valid namespace (lower-case letters, digits and `.`, `_`, `-` between them)"
        ));
    }
    Ok(())
}

/// Checks an image reference `[host/]path[:tag][@digest]`.
pub fn check_reference(reference: &str) -> Result<(), String> {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty() && hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit())
        });
        if !ok {
            return Err(format!(
                "`{d}` is not a valid digest (expected `sha256:<64 hex digits>`)"
            ));
        }
    }
    // The tag is after the last `:` that follows the last `/`.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag
        && !is_tag(tag)
    {
        return Err(format!("`{tag}` is not a valid tag"));
    }
    let mut parts = path.splitn(2, '/');
    let first = parts.next().unwrap_or_default();
    let repo = match parts.next() {
        Some(remainder) if looks_like_host(first) => {
            if !is_registry_host(first) {
                return Err(format!("`{first}` is not a valid registry host"));
            }
            remainder
        }
        _ => path,
    };
    if !is_repository_path(repo) {
        return Err(format!(
            "`{repo}` is not a valid repository (lower-case letters, digits and `.`, `_`, `-` between them)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_paths() {
        for ok in ["a", "my-image", "a.b_c__d---e", "org/team/app", "x9"] {
            assert!(is_repository_path(ok), "{ok}");
        }
        for bad in ["", "Upper", "-a", "a-", "a..b", "a___b", "a/", "/a", "a b"] {
            assert!(!is_repository_path(bad), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(is_tag("v1.0_rc-1"));
        assert!(is_tag("_x"));
        assert!(!is_tag(".x"));
        assert!(!is_tag("-x"));
        assert!(!is_tag("a/b"));
        assert!(!is_tag(&"a".repeat(129)));
    }

    #[test]
    fn registries() {
        for ok in [
            "ghcr.io",
            "ghcr.io/org",
            "127.0.0.1:5000",
            "localhost:5000/a/b",
            "[::1]:5000",
            "host:65535",
        ] {
            assert!(check_registry(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ghcr.io:/x",
            "gh cr.io",
            "ghcr.io/Org",
            "host:99999999",
            "ghcr.io:99999",
            "ghcr.io:0",
            "-a.io",
        ] {
            assert!(check_registry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        for ok in [
            "python:3.11-slim",
            "debian",
            "localhost/imagespec/python:3.11-bookworm",
            "127.0.0.1:5000/a/b:t",
            "ghcr.io/org/img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(check_reference(ok).is_ok(), "{ok}");
        }
        for bad in ["Python:3", "python:bad/tag", "img:", "a@sha256:xyz", ""] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }
}
