//! TLS to an engine on another machine: Docker's `tcp://host:2376` with `--tlsverify`, where
//! both sides prove who they are. The files follow the docker CLI's conventions: a directory
//! (`DOCKER_CERT_PATH`, default `~/.docker`) holding `ca.pem` (the CA that signed the engine's
//! certificate), `cert.pem` and `key.pem` (this client's certificate and key), used when
//! `DOCKER_TLS_VERIFY` is set; a build service names the three files per worker instead.
//!
//! Only the given CA is trusted (never the system's roots: an engine's certificate comes from
//! its operator's CA), and the crypto provider is passed explicitly rather than installed
//! process-wide, so embedding this crate changes nothing for other TLS users in the process.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The CA, client certificate and key for one TLS engine endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `cert.pem` and `key.pem` in `dir` (the layout of `DOCKER_CERT_PATH`).
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// What the docker CLI would use: with `DOCKER_TLS_VERIFY` set (to anything but empty),
    /// the files in `DOCKER_CERT_PATH`, else in `~/.docker`. `None` without it.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<TlsFiles> {
        env("DOCKER_TLS_VERIFY").filter(|v| !v.trim().is_empty())?;
        let dir = env("DOCKER_CERT_PATH")
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        Some(TlsFiles::in_dir(&dir))
    }

    /// Reads and checks the three files; the message names the file at fault and what to do.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(&self.ca, "the CA certificate")? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: not a usable CA certificate: {e}", self.ca.display()))?;
        }
        let chain = certificates(&self.cert, "the client certificate")?;
        let key = read(&self.key, "the client key").and_then(|bytes| {
            PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                format!(
                    "{}: no PEM private key in it ({e}); give the client key that belongs to {}",
                    self.key.display(),
                    self.cert.display()
                )
            })
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map(Arc::new)
            .map_err(|e| {
                format!(
                    "{} and {} do not make a client identity: {e}",
                    self.cert.display(),
                    self.key.display()
                )
            })
    }
}

impl fmt::Display for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CA {}, client certificate {}, key {}",
            self.ca.display(),
            self.cert.display(),
            self.key.display()
        )
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "{what} {}: {e}; give it (DOCKER_CERT_PATH holds ca.pem, cert.pem and key.pem; a service worker names them under `tls`)",
            path.display()
        )
    })
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_tls_verify_selects_the_cert_path() {
        let env = |k: &str| match k {
            "DOCKER_TLS_VERIFY" => Some("1".to_string()),
            "DOCKER_CERT_PATH" => Some("/certs".to_string()),
            _ => None,
        };
        assert_eq!(
            TlsFiles::from_env(env),
            Some(TlsFiles::in_dir(Path::new("/certs")))
        );
        let home = |k: &str| match k {
            "DOCKER_TLS_VERIFY" => Some("1".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        assert_eq!(
            TlsFiles::from_env(home).map(|t| t.ca),
            Some(PathBuf::from("/home/u/.docker/ca.pem"))
        );
        let off = |k: &str| (k == "DOCKER_CERT_PATH").then(|| "/certs".to_string());
        assert_eq!(TlsFiles::from_env(off), None);
    }

    #[test]
    fn a_missing_or_foreign_file_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let files = TlsFiles::in_dir(dir.path());
        let e = files.client_config().expect_err("no files");
        assert!(e.contains(&files.ca.display().to_string()), "{e}");
        std::fs::write(&files.ca, "not a certificate").expect("write");
        let e = files.client_config().expect_err("not PEM");
        assert!(
            e.contains("ca.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
