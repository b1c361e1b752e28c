//! Registry build caches for CI: `builder_options.cache_from` / `cache_to` (and the CLI's
//! `--cache-from` / `--cache-to`, which replace them).
//!
//! A fresh CI runner has an empty engine: every step runs again. A cache in a registry lets it
//! reuse the layers an earlier runner built. The values are BuildKit's syntax,
//! `type=registry,ref=REF[,mode=max]`, or `type=inline` (cache export only: the cache rides in
//! the pushed image itself), or a bare `REF` for `type=registry,ref=REF`. `cache_from` takes one
//! value or a list; `cache_to` one value.
//!
//! Where the cache goes is how an image is built, not what it is: the keys are not inputs of
//! imagespec's image name (flytekit's scheme hashes `builder_options` whole, so there they
//! count, as in flytekit; the flags never do). What each engine can do with them is the local
//! builder's to decide (it refuses what its engine cannot do).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// The `builder_options` keys of the build cache.
pub const CACHE_OPTION_KEYS: [&str; 2] = ["cache_from", "cache_to"];

/// Whether a `builder_options` key is a cache setting (kept out of imagespec's image name).
pub fn is_cache_option(key: &str) -> bool {
    CACHE_OPTION_KEYS.contains(&key)
}

/// Where a cache lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CacheRef {
    /// An image reference in a registry (`127.0.0.1:5000/team/app-cache`); `max` exports the
    /// layers of every step (`mode=max`), not only the final image's.
    Registry { reference: String, max: bool },
    /// Inside the pushed image (export only; import it through the image's own reference).
    Inline,
}

impl CacheRef {
    /// Parses one value; the error says what is wrong and how to write it.
    pub fn parse(value: &str) -> Result<CacheRef, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("an empty cache reference; write `type=registry,ref=REGISTRY/REPOSITORY` or drop the key".into());
        }
        if !value.contains('=') {
            return Ok(CacheRef::Registry {
                reference: value.to_string(),
                max: false,
            });
        }
        let mut attrs: BTreeMap<&str, &str> = BTreeMap::new();
        for part in value.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!("`{part}` in `{value}` is not `key=value`; write e.g. `type=registry,ref=REGISTRY/REPOSITORY,mode=max`")
            })?;
            if attrs.insert(k.trim(), v.trim()).is_some() {
                return Err(format!("`{k}` is given twice in `{value}`"));
            }
        }
        let kind = attrs.remove("type").unwrap_or("registry");
        let cache = match kind {
            "registry" => {
                let reference = attrs.remove("ref").filter(|r| !r.is_empty()).ok_or_else(|| {
                    format!("`{value}` names no `ref`; write `type=registry,ref=REGISTRY/REPOSITORY`")
                })?;
                let max = match attrs.remove("mode") {
                    None | Some("min") => false,
                    Some("max") => true,
                    Some(other) => {
                        return Err(format!(
                            "`mode={other}` in `{value}`: use `mode=min` or `mode=max`"
                        ));
                    }
                };
                CacheRef::Registry {
                    reference: reference.to_string(),
                    max,
                }
            }
            "inline" => CacheRef::Inline,
            other => {
                return Err(format!(
                    "cache type `{other}` in `{value}`: imagespec's local builders support `type=registry` (and `type=inline` for `cache_to`)"
                ));
            }
        };
        if let Some(extra) = attrs.keys().next() {
            return Err(format!(
                "`{extra}` in `{value}` is not a setting imagespec passes on; use `type`, `ref` and `mode`"
            ));
        }
        Ok(cache)
    }
}

/// A build's cache import and export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildCache {
    /// Caches to import, in order.
    pub from: Vec<CacheRef>,
    /// The cache to export to.
    pub to: Option<CacheRef>,
}

impl BuildCache {
    pub fn is_empty(&self) -> bool {
        self.from.is_empty() && self.to.is_none()
    }

    /// The cache settings of `builder_options`; the error names the key and the fix.
    pub fn from_builder_options(
        options: &BTreeMap<String, Value>,
    ) -> Result<BuildCache, (String, String)> {
        let mut cache = BuildCache::default();
        if let Some(v) = options.get("cache_from") {
            let values: Vec<&str> = match v {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str())
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        (
                            "cache_from".to_string(),
                            format!("expected strings, got `{v}`"),
                        )
                    })?,
                other => {
                    return Err((
                        "cache_from".into(),
                        format!("expected a cache reference or a list of them, got `{other}`"),
                    ));
                }
            };
            cache.from = values
                .into_iter()
                .map(|s| from_ref(s).map_err(|p| ("cache_from".to_string(), p)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = options.get("cache_to") {
            let s = v.as_str().ok_or_else(|| {
                (
                    "cache_to".to_string(),
                    format!("expected one cache reference (a string), got `{v}`"),
                )
            })?;
            cache.to = Some(CacheRef::parse(s).map_err(|p| ("cache_to".to_string(), p))?);
        }
        Ok(cache)
    }

    /// These settings with the flags' (`--cache-from`, `--cache-to`) in place of the ones they
    /// name: a flag replaces its key whole.
    pub fn overridden_by(mut self, flags: &BuildCache) -> BuildCache {
        if !flags.from.is_empty() {
            self.from = flags.from.clone();
        }
        if flags.to.is_some() {
            self.to = flags.to.clone();
        }
        self
    }
}

/// A `cache_from` value ([`CacheRef::parse_import`]).
fn from_ref(value: &str) -> Result<CacheRef, String> {
    CacheRef::parse_import(value)
}

impl CacheRef {
    /// Parses a cache to import: an inline cache is imported through an image reference, so
    /// `type=inline` is refused.
    pub fn parse_import(value: &str) -> Result<CacheRef, String> {
        match CacheRef::parse(value)? {
            CacheRef::Inline => Err(format!(
                "`{value}`: an inline cache is imported from the image that carries it; write `type=registry,ref=IMAGE`"
            )),
            r => Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn buildkit_syntax_and_bare_references() {
        let c = BuildCache::from_builder_options(&options(&[
            (
                "cache_from",
                json!(["r:5000/a/cache", "type=registry,ref=r:5000/b/cache"]),
            ),
            (
                "cache_to",
                json!("type=registry,ref=r:5000/a/cache,mode=max"),
            ),
        ]))
        .expect("valid");
        assert_eq!(
            c.from,
            [
                CacheRef::Registry {
                    reference: "r:5000/a/cache".into(),
                    max: false
                },
                CacheRef::Registry {
                    reference: "r:5000/b/cache".into(),
                    max: false
                }
            ]
        );
        assert_eq!(
            c.to,
            Some(CacheRef::Registry {
                reference: "r:5000/a/cache".into(),
                max: true
            })
        );
        let inline =
            BuildCache::from_builder_options(&options(&[("cache_to", json!("type=inline"))]))
                .expect("inline");
        assert_eq!(inline.to, Some(CacheRef::Inline));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (key, value) in [
            ("cache_from", json!(3)),
            ("cache_from", json!([1])),
            ("cache_from", json!("type=inline")),
            ("cache_from", json!("type=local,src=/tmp/c")),
            ("cache_to", json!(["a", "b"])),
            ("cache_to", json!("type=registry,mode=max")),
            ("cache_to", json!("type=registry,ref=a,mode=all")),
            ("cache_to", json!("type=registry,ref=a,compression=zstd")),
            ("cache_to", json!("")),
        ] {
            let err = BuildCache::from_builder_options(&options(&[(key, value.clone())]))
                .expect_err(&format!("{key}: {value}"));
            assert_eq!(err.0, key, "{value}");
        }
    }

    #[test]
    fn a_flag_replaces_its_key_whole() {
        let spec = BuildCache::from_builder_options(&options(&[
            ("cache_from", json!(["a", "b"])),
            ("cache_to", json!("a")),
        ]))
        .expect("valid");
        let flags = BuildCache {
            from: vec![CacheRef::parse("c").expect("c")],
            to: None,
        };
        let merged = spec.clone().overridden_by(&flags);
        assert_eq!(merged.from, flags.from);
        assert_eq!(merged.to, spec.to);
    }
}
