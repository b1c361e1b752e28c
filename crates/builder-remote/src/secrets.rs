//! Build secrets on the way to the service.
//!
//! The values of the spec's `pip_secret_mounts` are read here, by core's rule (an environment
//! variable or a file of this machine), and sent in the build request itself, by plan id
//! (`pip_secret_0`, ...), never uploaded as blobs; the spec sent names no source. The service
//! holds them in memory for that one build. They leave this machine only encrypted (an
//! `https://` service) or to a loopback address.

use std::collections::BTreeMap;

use imagespec_core::build::SecretBytes;
use imagespec_core::plan::secrets;
use imagespec_core::spec::LoadedSpec;

use crate::error::RemoteError;

/// The values of `loaded`'s own secrets (a base spec is its own build), by plan id.
pub fn read(loaded: &LoadedSpec) -> Result<BTreeMap<String, SecretBytes>, RemoteError> {
    let refs = secrets::from_spec(loaded).map_err(|e| RemoteError::Secret {
        id: "pip_secret_mounts".into(),
        reason: e.to_string(),
    })?;
    refs.into_iter()
        .map(|s| {
            let value = s.source.read().map_err(|reason| RemoteError::Secret {
                id: s.id.clone(),
                reason,
            })?;
            Ok((s.id, SecretBytes::new(value)))
        })
        .collect()
}

/// Refuses to send secrets over plain HTTP to anything but a loopback address.
pub fn check_transport(url: &str) -> Result<(), RemoteError> {
    let insecure = || RemoteError::InsecureSecrets {
        url: url.to_string(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| insecure())?;
    if parsed.scheme() == "https" {
        return Ok(());
    }
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback { Ok(()) } else { Err(insecure()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_only_over_tls_or_to_loopback() {
        for ok in [
            "https://builds.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://localhost:1",
        ] {
            assert!(check_transport(ok).is_ok(), "{ok}");
        }
        for bad in ["http://builds.example.com", "http://10.0.0.5:8080"] {
            let e = check_transport(bad).expect_err(bad);
            assert!(e.to_string().contains("https://"), "{e}");
        }
    }
}
