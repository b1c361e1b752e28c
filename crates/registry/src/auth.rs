//! Parsing `WWW-Authenticate` challenges (RFC 7235) into what the client can act on.
//!
//! Registries answer an unauthenticated request with `401` and either
//! `Bearer realm="…",service="…",scope="…"` (fetch a token from `realm`, then retry) or
//! `Basic realm="…"` (retry with the username and password). A hand-written parser is used
//! because the values are quoted strings that may contain commas (`scope="repository:a:pull,push"`),
//! which a naive split on `,` gets wrong.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};

/// One challenge the client knows how to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// The preferred usable challenge among all `WWW-Authenticate` headers (Bearer first, as it
    /// avoids sending the password to the registry on every request).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Challenge, String> {
        let raw: Vec<RawChallenge> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse)
            .collect();
        if let Some(bearer) = raw.iter().find(|c| c.scheme == "bearer") {
            return match bearer.params.get("realm") {
                Some(realm) if !realm.is_empty() => Ok(Challenge::Bearer {
                    realm: realm.clone(),
                    service: bearer.params.get("service").cloned(),
                    scope: bearer.params.get("scope").cloned(),
                }),
                _ => Err("its Bearer challenge has no realm (token URL)".to_string()),
            };
        }
        if raw.iter().any(|c| c.scheme == "basic") {
            return Ok(Challenge::Basic);
        }
        match raw.first() {
            Some(other) => Err(format!("unsupported scheme `{}`", other.scheme)),
            None => Err("the 401 answer has no WWW-Authenticate header".to_string()),
        }
    }
}

/// A parsed challenge: lower-cased scheme and parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawChallenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Parses one header value, which may hold several challenges.
pub(crate) fn parse(header: &str) -> Vec<RawChallenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let token = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && is_tchar(b[*i]) {
            *i += 1;
        }
        String::from_utf8_lossy(&b[start..*i]).into_owned()
    };
    let skip = |i: &mut usize, also_comma: bool| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || (also_comma && b[*i] == b',')) {
            *i += 1;
        }
    };
    while i < b.len() {
        skip(&mut i, true);
        let scheme = token(&mut i);
        if scheme.is_empty() {
            i += 1; // not a token character: skip it
            continue;
        }
        let mut params = BTreeMap::new();
        loop {
            skip(&mut i, true);
            let start = i;
            let name = token(&mut i);
            skip(&mut i, false);
            if name.is_empty() || b.get(i) != Some(&b'=') {
                i = start; // the next challenge's scheme (or the end)
                break;
            }
            i += 1;
            skip(&mut i, false);
            let value = if b.get(i) == Some(&b'"') {
                quoted(b, &mut i)
            } else {
                let start = i;
                while i < b.len() && b[i] != b',' && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                String::from_utf8_lossy(&b[start..i]).into_owned()
            };
            params.insert(name.to_ascii_lowercase(), value);
        }
        out.push(RawChallenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        });
    }
    out
}

/// A quoted string starting at `b[*i] == '"'`, with `\` escapes; an unterminated one runs to
/// the end.
fn quoted(b: &[u8], i: &mut usize) -> String {
    *i += 1;
    let mut value = Vec::new();
    while *i < b.len() {
        match b[*i] {
            b'\\' if *i + 1 < b.len() => {
                value.push(b[*i + 1]);
                *i += 2;
            }
            b'"' => {
                *i += 1;
                break;
            }
            c => {
                value.push(c);
                *i += 1;
            }
        }
    }
    String::from_utf8_lossy(&value).into_owned()
}

/// The token endpoint's answer (Docker uses `token`, OAuth2 uses `access_token`).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    pub token: Option<String>,
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_bearer_with_commas_in_quotes() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#;
        assert_eq!(
            parse(h),
            vec![RawChallenge {
                scheme: "bearer".into(),
                params: params(&[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/ubuntu:pull,push"),
                ]),
            }]
        );
    }

    #[test]
    fn parses_table() {
        type Expected<'a> = Vec<(&'a str, Vec<(&'a str, &'a str)>)>;
        let cases: Vec<(&str, Expected)> = vec![
            (
                r#"Basic realm="test-realm""#,
                vec![("basic", vec![("realm", "test-realm")])],
            ),
            ("basic", vec![("basic", vec![])]),
            (
                r#"BEARER Realm = "r" , Service=svc"#,
                vec![("bearer", vec![("realm", "r"), ("service", "svc")])],
            ),
            (
                r#"Basic realm="a", Bearer realm="b",scope="x""#,
                vec![
                    ("basic", vec![("realm", "a")]),
                    ("bearer", vec![("realm", "b"), ("scope", "x")]),
                ],
            ),
            (
                r#"Bearer realm="esc\"aped""#,
                vec![("bearer", vec![("realm", "esc\"aped")])],
            ),
            (
                r#"Bearer realm="unterminated"#,
                vec![("bearer", vec![("realm", "unterminated")])],
            ),
            ("", vec![]),
        ];
        for (input, expected) in cases {
            let expected: Vec<RawChallenge> = expected
                .into_iter()
                .map(|(s, p)| RawChallenge {
                    scheme: s.into(),
                    params: params(&p),
                })
                .collect();
            assert_eq!(parse(input), expected, "{input}");
        }
    }

    #[test]
    fn prefers_bearer_and_reports_unusable() {
        let mut h = HeaderMap::new();
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="a""#),
        );
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="https://t/token""#),
        );
        assert_eq!(
            Challenge::from_headers(&h),
            Ok(Challenge::Bearer {
                realm: "https://t/token".into(),
                service: None,
                scope: None
            })
        );
        let mut h = HeaderMap::new();
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate abc"));
        assert!(Challenge::from_headers(&h).is_err());
        assert!(Challenge::from_headers(&HeaderMap::new()).is_err());
        let mut h = HeaderMap::new();
        h.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer service=x"),
        );
        assert!(Challenge::from_headers(&h).is_err());
    }
}
