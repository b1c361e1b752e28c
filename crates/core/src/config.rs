//! The user's configuration file (`$IMAGESPEC_CONFIG`, else `$XDG_CONFIG_HOME/imagespec/config.yaml`,
//! else `~/.config/imagespec/config.yaml`): defaults that flags and environment variables override.
//!
//! ```yaml
//! variant: byoc            # flyte | serverless | byoc | byok | selfmanaged
//! if_unknown: fail         # fail | build | assume
//! engine: unix:///run/podman/podman.sock
//! remote:
//!   url: http://127.0.0.1:8080
//!   token: ...             # or set IMAGESPEC_REMOTE_TOKEN
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use marked_yaml::loader::{LoaderOptions, parse_yaml_with_options};
use marked_yaml::types::Node;

use crate::build::{ExistencePolicy, Variant};
use crate::plan::runtime::Runtime;
use crate::spec::{Diagnostic, DiagnosticKind, Location, SpecError};

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Settings from the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from, if anywhere.
    pub path: Option<PathBuf>,
    pub variant: Option<Variant>,
    pub if_unknown: Option<ExistencePolicy>,
    /// The naming scheme of `tag` and `build` (`imagespec` or `flytekit`).
    pub tag_scheme: Option<crate::hash::TagScheme>,
    /// The container engine endpoint for local builds.
    pub engine: Option<String>,
    /// The build service for the remote builder.
    pub remote_url: Option<String>,
    pub remote_token: Option<Secret>,
    /// The Flyte runtime (`flytekit_version: X`, `flytekit_version: none` or `flytekit: false`).
    pub runtime: Option<Runtime>,
    /// The Union variants' runtime (`union_version: X`): `union==X` instead of the pinned one.
    pub union_runtime: Option<Runtime>,
}

impl Config {
    /// The configuration file's path, from the environment.
    pub fn default_path(get_env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
        if let Some(p) = get_env("IMAGESPEC_CONFIG").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let base = get_env("XDG_CONFIG_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| get_env("HOME").map(|h| Path::new(&h).join(".config")))?;
        Some(base.join("imagespec").join("config.yaml"))
    }

    /// Loads a configuration file; a missing file is an empty configuration unless `required`.
    pub fn load(path: &Path, required: bool) -> Result<Config, SpecError> {
        // The same file rules as a spec file: no FIFO, device, directory or /proc file, at
        // most 1 MiB.
        if !required
            && matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        {
            return Ok(Config::default());
        }
        let text = crate::spec::read_text_file(path, "configuration file")?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, SpecError> {
        let mut config = Config {
            path: Some(path.to_path_buf()),
            ..Config::default()
        };
        if text.trim().is_empty() {
            return Ok(config);
        }
        if let Some(d) = crate::spec::decode::content_after_first_document(text) {
            return Err(SpecError {
                diagnostics: vec![Diagnostic {
                    file: Some(path.to_path_buf()),
                    ..d
                }],
            });
        }
        let options = LoaderOptions::default().error_on_duplicate_keys(true);
        let root = parse_yaml_with_options(0, text, options).map_err(|e| {
            error(
                path,
                None,
                "",
                format!("not valid YAML: {e}"),
                "fix the YAML syntax",
            )
        })?;
        let Node::Mapping(map) = root else {
            return Err(error(
                path,
                None,
                "",
                "expected a mapping".into(),
                "write `key: value` lines",
            ));
        };
        let mut diags = Vec::new();
        for (key, value) in map.iter() {
            let at = value.span().start().map(|m| Location {
                line: m.line(),
                column: m.column(),
            });
            let scalar = value.as_scalar().map(|s| s.as_str().to_string());
            match (key.as_str(), scalar) {
                ("variant", Some(v)) => match v.parse() {
                    Ok(v) => config.variant = Some(v),
                    Err(e) => diags.push(diag(
                        path,
                        at,
                        "variant",
                        e.to_string(),
                        "use flyte, serverless, byoc, byok or selfmanaged",
                    )),
                },
                ("if_unknown", Some(v)) => match v.parse() {
                    Ok(p) => config.if_unknown = Some(p),
                    Err(e) => {
                        diags.push(diag(path, at, "if_unknown", e, "use fail, build or assume"))
                    }
                },
                ("tag_scheme", Some(v)) => match v.parse() {
                    Ok(t) => config.tag_scheme = Some(t),
                    Err(e) => {
                        diags.push(diag(path, at, "tag_scheme", e, "use imagespec or flytekit"))
                    }
                },
                ("engine", Some(v)) => config.engine = Some(v),
                ("flytekit_version", Some(v)) => match Runtime::parse(&v) {
                    // `flytekit: false` wins over a version, wherever it stands.
                    Ok(r) => {
                        if config.runtime != Some(Runtime::None) {
                            config.runtime = Some(r)
                        }
                    }
                    Err(e) => diags.push(diag(
                        path,
                        at,
                        "flytekit_version",
                        e,
                        "write e.g. `flytekit_version: \"1.16.31\"`, or `flytekit: false`",
                    )),
                },
                ("union_version", Some(v)) => match Runtime::parse_union(&v) {
                    Ok(r) => config.union_runtime = Some(r),
                    Err(e) => diags.push(diag(
                        path,
                        at,
                        "union_version",
                        e,
                        "write e.g. `union_version: \"0.1.204\"`, or `flytekit: false`",
                    )),
                },
                ("flytekit", Some(v)) => match v.as_str() {
                    "false" => config.runtime = Some(Runtime::None),
                    "true" => {}
                    other => diags.push(diag(
                        path,
                        at,
                        "flytekit",
                        format!("expected `true` or `false`, found `{other}`"),
                        "write `flytekit: false` for images without the Flyte runtime",
                    )),
                },
                ("remote", None) if value.as_mapping().is_some() => {
                    for (k, v) in value.as_mapping().into_iter().flat_map(|m| m.iter()) {
                        let at = v.span().start().map(|m| Location {
                            line: m.line(),
                            column: m.column(),
                        });
                        match (k.as_str(), v.as_scalar()) {
                            ("url", Some(s)) => config.remote_url = Some(s.as_str().to_string()),
                            ("token", Some(s)) => {
                                config.remote_token = Some(Secret::new(s.as_str()))
                            }
                            (other, _) => diags.push(diag(
                                path,
                                at,
                                &format!("remote.{other}"),
                                format!("unknown or malformed key `remote.{other}`"),
                                "`remote` takes `url` and `token` strings",
                            )),
                        }
                    }
                }
                (other, _) => diags.push(diag(
                    path,
                    at,
                    other,
                    format!("unknown or malformed key `{other}`"),
                    "known keys: variant, if_unknown, tag_scheme, engine, flytekit, flytekit_version, union_version, remote.url, remote.token",
                )),
            }
        }
        if diags.is_empty() {
            Ok(config)
        } else {
            Err(SpecError { diagnostics: diags })
        }
    }
}

fn diag(path: &Path, at: Option<Location>, field: &str, message: String, help: &str) -> Diagnostic {
    Diagnostic {
        file: Some(path.to_path_buf()),
        ..Diagnostic::new(DiagnosticKind::InvalidValue, field, message)
            .at(at)
            .with_help(help)
    }
}

fn error(path: &Path, at: Option<Location>, field: &str, message: String, help: &str) -> SpecError {
    SpecError {
        diagnostics: vec![diag(path, at, field, message, help)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key_and_redacts_the_token() {
        let c = Config::parse(
            "variant: byoc\nif_unknown: build\nengine: unix:///x.sock\nremote:\n  url: http://127.0.0.1:1\n  token: abc\n",
            Path::new("c.yaml"),
        )
        .expect("valid");
        assert_eq!(c.variant, Some(Variant::Byoc));
        assert_eq!(c.if_unknown, Some(ExistencePolicy::Build));
        assert_eq!(c.engine.as_deref(), Some("unix:///x.sock"));
        assert_eq!(c.remote_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(c.remote_token.as_ref().map(Secret::expose), Some("abc"));
        assert!(!format!("{c:?}").contains("abc"));
    }

    #[test]
    fn flytekit_runtime_keys() {
        let p = Path::new("c.yaml");
        let c = Config::parse("flytekit_version: \"1.15.0\"\n", p).expect("valid");
        assert_eq!(c.runtime, Some(Runtime::Flytekit("1.15.0".into())));
        let c = Config::parse("flytekit_version: none\n", p).expect("valid");
        assert_eq!(c.runtime, Some(Runtime::None));
        let c = Config::parse("flytekit: false\nflytekit_version: 1.15.0\n", p).expect("valid");
        assert_eq!(c.runtime, Some(Runtime::None));
        assert_eq!(
            Config::parse("flytekit: true\n", p).expect("valid").runtime,
            None
        );
        let e = Config::parse("flytekit_version: latest\nflytekit: no\n", p).expect_err("bad");
        assert_eq!(e.diagnostics.len(), 2, "{e}");
        assert!(e.to_string().contains("c.yaml:1:19"), "{e}");
    }

    #[test]
    fn bad_keys_and_values_are_located() {
        let err = Config::parse("variant: cloud\nvarient: byoc\n", Path::new("c.yaml"))
            .expect_err("invalid");
        assert_eq!(err.diagnostics.len(), 2);
        assert_eq!(
            err.diagnostics[0].location,
            Some(Location {
                line: 1,
                column: 10
            })
        );
        assert!(err.to_string().contains("c.yaml:1:10"));
    }

    #[test]
    fn path_precedence() {
        let env = |k: &str| match k {
            "IMAGESPEC_CONFIG" => Some("/etc/x.yaml".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        assert_eq!(
            Config::default_path(env),
            Some(PathBuf::from("/etc/x.yaml"))
        );
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        assert_eq!(
            Config::default_path(env),
            Some(PathBuf::from("/home/u/.config/imagespec/config.yaml"))
        );
    }

    #[test]
    fn a_missing_optional_file_is_empty() {
        assert_eq!(
            Config::load(Path::new("/nonexistent/c.yaml"), false),
            Ok(Config::default())
        );
        assert!(Config::load(Path::new("/nonexistent/c.yaml"), true).is_err());
    }
}
