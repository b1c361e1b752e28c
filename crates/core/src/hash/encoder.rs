//! A canonical, unambiguous byte encoding fed straight into SHA-256.
//!
//! Every value is written with its length first, so `["ab", "c"]` and `["a", "bc"]` encode
//! differently (flyte-sdk concatenated list items and could not tell them apart); maps are
//! written in key order, so neither key order nor YAML formatting reaches the hash.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Streams a canonical encoding into SHA-256.
#[derive(Default)]
pub struct CanonicalEncoder {
    hasher: Sha256,
}

impl CanonicalEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.hasher.update((b.len() as u64).to_le_bytes());
        self.hasher.update(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// A one-byte type tag, so values of different shapes never collide.
    pub fn tag(&mut self, t: u8) -> &mut Self {
        self.hasher.update([t]);
        self
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.hasher.update(n.to_le_bytes());
        self
    }

    /// A list: its length, then each item length-prefixed.
    pub fn list<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.tag(b'L').u64(items.len() as u64);
        for item in items {
            self.str(item.as_ref());
        }
        self
    }

    /// A string map in key order.
    pub fn map(&mut self, map: &BTreeMap<String, String>) -> &mut Self {
        self.tag(b'M').u64(map.len() as u64);
        for (k, v) in map {
            self.str(k).str(v);
        }
        self
    }

    /// A JSON value with object keys in sorted order, whatever the map implementation.
    pub fn json(&mut self, value: &serde_json::Value) -> &mut Self {
        use serde_json::Value;
        match value {
            Value::Null => self.tag(b'n'),
            Value::Bool(b) => self.tag(b'b').tag(u8::from(*b)),
            Value::Number(n) => self.tag(b'#').str(&n.to_string()),
            Value::String(s) => self.tag(b's').str(s),
            Value::Array(items) => {
                self.tag(b'a').u64(items.len() as u64);
                for item in items {
                    self.json(item);
                }
                self
            }
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                self.tag(b'o').u64(keys.len() as u64);
                for k in keys {
                    self.str(k);
                    if let Some(v) = map.get(k) {
                        self.json(v);
                    }
                }
                self
            }
        }
    }

    pub fn finish(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(f: impl FnOnce(&mut CanonicalEncoder)) -> [u8; 32] {
        let mut e = CanonicalEncoder::new();
        f(&mut e);
        e.finish()
    }

    #[test]
    fn list_items_are_unambiguous() {
        let a = digest(|e| {
            e.list(&["ab", "c"]);
        });
        let b = digest(|e| {
            e.list(&["a", "bc"]);
        });
        assert_ne!(a, b);
    }

    #[test]
    fn json_key_order_does_not_matter() {
        let x: serde_json::Value =
            serde_json::from_str(r#"{"a":1,"b":{"c":[1,"x"],"d":null}}"#).expect("json");
        let y: serde_json::Value =
            serde_json::from_str(r#"{"b":{"d":null,"c":[1,"x"]},"a":1}"#).expect("json");
        assert_eq!(
            digest(|e| {
                e.json(&x);
            }),
            digest(|e| {
                e.json(&y);
            })
        );
    }

    #[test]
    fn string_and_number_differ() {
        let s = serde_json::json!("1");
        let n = serde_json::json!(1);
        assert_ne!(
            digest(|e| {
                e.json(&s);
            }),
            digest(|e| {
                e.json(&n);
            })
        );
    }
}
