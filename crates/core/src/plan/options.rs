//! The `builder_options` keys the plan understands.
//!
//! `builder_options` is free-form in flytekit: it hands the dict to the builder, and real specs
//! carry keys meant for another builder (Union's `imagepull_secret_name`). So a key imagespec
//! does not know is not an error: [`unknown_builder_options`] names it, every command warns once
//! about it ([`crate::check`]), the whole dict stays in the spec (and in the name), and the
//! remote builder receives it with the spec. The keys imagespec knows are validated:
//!
//! | key             | value                          | default | effect                                      |
//! |-----------------|--------------------------------|---------|---------------------------------------------|
//! | `non_root_user` | boolean                        | `true`  | `false` keeps the image running as root     |
//! | `workdir`       | absolute path (`[A-Za-z0-9/._-]`) | `/root` | working directory, `copy`/source destination, `PYTHONPATH` |
//! | `cache_from`    | cache reference(s)             | none    | registry build cache to import ([`crate::build::cache`]) |
//! | `cache_to`      | cache reference                | none    | registry (or inline) build cache to export  |
//!
//! The cache keys are the builder's, not the plan's: they are validated here with the others
//! (so `validate` names a bad one) but read by the local builder, and they are not part of the
//! image name.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::PlanError;

/// Every `builder_options` key imagespec reads (the plan, or the local builder: the cache).
pub const BUILDER_OPTION_KEYS: [&str; 4] = ["non_root_user", "workdir", "cache_from", "cache_to"];

/// The keys of `builder_options` that imagespec's plan does not read, in key order: passed on
/// (to the remote builder, in the spec) but without effect on a local build.
pub fn unknown_builder_options(options: &BTreeMap<String, Value>) -> Vec<&str> {
    options
        .keys()
        .map(String::as_str)
        .filter(|k| !BUILDER_OPTION_KEYS.contains(k))
        .collect()
}

/// The working directory when `builder_options.workdir` is not set: flytekit's, so images built
/// here run flytekit tasks registered with flytekit's defaults (it looks for code in `/root`).
pub const DEFAULT_WORKDIR: &str = "/root";

/// The plan's settings taken from `builder_options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Create a non-root runtime user (uid 1000) and run as it.
    pub non_root_user: bool,
    /// The working directory of the image.
    pub workdir: String,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            non_root_user: true,
            workdir: DEFAULT_WORKDIR.to_string(),
        }
    }
}

impl PlanOptions {
    /// Reads `builder_options`, rejecting values of the wrong shape for the keys it knows; the
    /// other keys are left to [`unknown_builder_options`].
    pub fn from_builder_options(
        options: &BTreeMap<String, Value>,
    ) -> Result<PlanOptions, PlanError> {
        let mut out = PlanOptions::default();
        crate::build::cache::BuildCache::from_builder_options(options)
            .map_err(|(key, problem)| PlanError::InvalidBuilderOption { key, problem })?;
        for (key, value) in options {
            match key.as_str() {
                "non_root_user" => {
                    out.non_root_user =
                        value
                            .as_bool()
                            .ok_or_else(|| PlanError::InvalidBuilderOption {
                                key: key.clone(),
                                problem: format!("expected `true` or `false`, got `{value}`"),
                            })?;
                }
                "workdir" => {
                    let dir = value
                        .as_str()
                        .ok_or_else(|| PlanError::InvalidBuilderOption {
                            key: key.clone(),
                            problem: format!("expected a path string, got `{value}`"),
                        })?;
                    check_workdir(dir).map_err(|problem| PlanError::InvalidBuilderOption {
                        key: key.clone(),
                        problem,
                    })?;
                    out.workdir = dir.trim_end_matches('/').to_string();
                }
                // The builder's cache keys (checked above), or another builder's key (see the
                // module comment).
                _ => {}
            }
        }
        Ok(out)
    }
}

fn check_workdir(dir: &str) -> Result<(), String> {
    let safe = dir
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if !dir.starts_with('/') {
        Err(format!("`{dir}` is not absolute; write e.g. `/app`"))
    } else if !safe {
        Err(format!(
            "`{dir}` may contain only letters, digits and `/._-`"
        ))
    } else if dir.trim_end_matches('/').is_empty() {
        Err("`/` cannot be the working directory (the runtime user would own the whole file system); write e.g. `/app`".into())
    } else if dir.split('/').any(|c| c == "..") {
        Err(format!(
            "`{dir}` contains `..`; write the directory directly"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(pairs: &[(&str, Value)]) -> Result<PlanOptions, PlanError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        PlanOptions::from_builder_options(&map)
    }

    #[test]
    fn defaults_and_known_keys() {
        assert_eq!(opts(&[]).expect("ok"), PlanOptions::default());
        let o = opts(&[("non_root_user", json!(false)), ("workdir", json!("/app/"))]).expect("ok");
        assert!(!o.non_root_user);
        assert_eq!(o.workdir, "/app");
    }

    #[test]
    fn unknown_keys_are_named_not_refused() {
        let o = opts(&[
            ("imagepull_secret_name", json!("pull-secret")),
            ("workdir", json!("/app")),
            ("retries", json!(3)),
        ])
        .expect("unknown keys are not fatal");
        assert_eq!(o.workdir, "/app");
        let map: BTreeMap<String, Value> = [
            ("workdir".to_string(), json!("/app")),
            ("retries".to_string(), json!(3)),
            ("imagepull_secret_name".to_string(), json!("s")),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            unknown_builder_options(&map),
            ["imagepull_secret_name", "retries"]
        );
    }

    #[test]
    fn rejects_bad_values_of_known_keys() {
        assert!(opts(&[("non_root_user", json!("yes"))]).is_err());
        for bad in ["app", "/", "/a b", "/a/../b", "/a\"b"] {
            assert!(opts(&[("workdir", json!(bad))]).is_err(), "{bad}");
        }
    }
}
