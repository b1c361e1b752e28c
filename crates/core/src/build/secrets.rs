//! The values of a spec's build secrets (`pip_secret_mounts`), as a build request carries them.
//!
//! A local build reads each secret from its source (an environment variable or a file of the
//! machine it runs on) when the build starts. A build service must never do that: its own
//! environment and files are not the client's. The client reads the values and sends them; the
//! service hands exactly those to its worker's builder ([`SecretValues::Supplied`]), which
//! then reads no source at all.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret's bytes. `Debug` never shows them; on the wire they are base64 (a file secret need
/// not be text).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        SecretBytes(bytes.into())
    }

    /// The bytes, for the one place that hands them to an engine.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes, redacted>)", self.0.len())
    }
}

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        // The error names neither the text nor a fragment of it: it is a secret.
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(SecretBytes)
            .map_err(|_| serde::de::Error::custom("a secret value is not valid base64"))
    }
}

/// Where a builder takes the values of `pip_secret_mounts` from.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum SecretValues {
    /// From each mount's source on this machine (`env:NAME` or a file): a local build.
    #[default]
    FromSources,
    /// Exactly these, by the plan's secret id (`pip_secret_<index>`); no source is read, and a
    /// secret the spec mounts but that is missing here fails the build.
    Supplied(Arc<BTreeMap<String, SecretBytes>>),
}

impl fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretValues::FromSources => f.write_str("FromSources"),
            SecretValues::Supplied(map) => f
                .debug_tuple("Supplied")
                .field(&map.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_travel_as_base64_and_never_print() {
        let s = SecretBytes::new(b"hunter22\xff".to_vec());
        let json = serde_json::to_string(&s).expect("json");
        assert!(!json.contains("hunter22"), "{json}");
        let back: SecretBytes = serde_json::from_str(&json).expect("back");
        assert_eq!(back, s);
        assert!(!format!("{s:?}").contains("hunter"));
        let values = SecretValues::Supplied(Arc::new(BTreeMap::from([("pip_secret_0".into(), s)])));
        let shown = format!("{values:?}");
        assert!(
            shown.contains("pip_secret_0") && !shown.contains("hunter"),
            "{shown}"
        );
        let e = serde_json::from_str::<SecretBytes>("\"hunter22 not base64!\"").expect_err("bad");
        assert!(!e.to_string().contains("hunter22"), "{e}");
    }
}
