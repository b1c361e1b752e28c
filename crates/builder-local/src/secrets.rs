//! Build secrets: loading their values, keeping them out of every printed string, and handing
//! them to Podman.
//!
//! How each engine gets a secret, and why it never reaches the image:
//! - Docker (BuildKit): the value stays in this process and is served over the build's client
//!   session (`crate::session`) when a `RUN --mount=type=secret` step asks for it; BuildKit
//!   mounts it on a tmpfs for that one step.
//! - Podman: its build API only takes secrets as files inside the uploaded context
//!   (`secrets=["id=x,src=<path in context>"]`); the service moves them out of the context
//!   directory before the build starts and deletes them with the build directory. The context
//!   tar that carries them is a 0600 file in a 0700 temporary directory, unlinked as soon as
//!   the upload has opened it.
//!
//! Either way the value is also scrubbed from everything this crate prints ([`Redactor`]): a
//! step that echoes its secret must not leak it through our progress events or errors.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::LocalError;

pub use imagespec_core::plan::secrets::MAX_SECRET_SIZE;
use imagespec_core::plan::secrets::SecretSource as PlanSource;

/// A secret's bytes; `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        SecretValue(bytes.into())
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<{} bytes, redacted>)", self.0.len())
    }
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file; a relative path is resolved against the spec root.
    File(PathBuf),
    /// An environment variable of this process.
    Env(String),
}

/// A secret ready for a build: the id the Dockerfile's `--mount=type=secret,id=` names.
#[derive(Debug, Clone)]
pub struct BuildSecret {
    pub id: String,
    pub value: SecretValue,
}

impl BuildSecret {
    /// Reads a secret's value now, so that a missing file or variable fails the build before
    /// any work (and with a message naming the id and the source, never the value).
    pub fn load(id: &str, source: &SecretSource, root: &Path) -> Result<BuildSecret, LocalError> {
        let err = |reason: String| LocalError::Secret {
            id: id.to_string(),
            reason,
        };
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(err("the id must be letters, digits, `-`, `_` or `.`".into()));
        }
        // The reading rule is core's, shared with the remote client that sends secrets.
        let source = match source {
            SecretSource::File(path) if path.is_absolute() => PlanSource::File(path.clone()),
            SecretSource::File(path) => PlanSource::File(root.join(path)),
            SecretSource::Env(var) => PlanSource::Env(var.clone()),
        };
        let value = source.read().map_err(err)?;
        Ok(BuildSecret {
            id: id.to_string(),
            value: SecretValue(value),
        })
    }
}

/// Replaces secret values in text with `****`.
///
/// Whole values are replaced, and so is each line of a multi-line secret (a step may print one
/// line of a netrc file). Fragments shorter than [`Redactor::MIN_LEN`] bytes are left alone:
/// replacing every `a` of a log because a secret is `a` would make the log useless while
/// protecting nothing.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    pub const MIN_LEN: usize = 4;

    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a SecretValue>) -> Self {
        let mut needles: Vec<String> = Vec::new();
        for s in secrets {
            let text = String::from_utf8_lossy(s.expose());
            let mut add = |n: &str| {
                if n.len() >= Self::MIN_LEN && !needles.iter().any(|x| x == n) {
                    needles.push(n.to_string());
                }
            };
            add(&text);
            add(text.trim());
            for line in text.lines() {
                add(line.trim());
            }
        }
        // Longest first, so a whole value is replaced before its lines.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Redactor { needles }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "****");
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

/// The context-relative file name a secret travels under to Podman.
pub(crate) fn podman_secret_name(nonce: &str, id: &str) -> String {
    format!(".imagespec-secret-{nonce}-{id}")
}

/// Writes one regular-file entry (mode 0600) to a tar stream without an end-of-archive
/// marker, so that the build context's own archive can follow it in the same stream.
pub(crate) fn write_tar_entry(w: &mut dyn Write, name: &str, data: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    w.write_all(header.as_bytes())?;
    w.write_all(data)?;
    let pad = (512 - data.len() % 512) % 512;
    w.write_all(&vec![0u8; pad])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_values_and_lines() {
        let a =
            SecretValue::new(b"machine x login u password hunter22\nsecond-line-value\n".to_vec());
        let b = SecretValue::new(b"ab".to_vec());
        let r = Redactor::new([&a, &b]);
        assert_eq!(r.redact("got second-line-value here"), "got **** here");
        assert_eq!(r.redact("ab stays"), "ab stays");
        assert!(
            !r.redact("machine x login u password hunter22")
                .contains("hunter22")
        );
        assert!(!format!("{a:?}").contains("hunter"));
    }

    #[test]
    fn loading_names_the_source_not_the_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("s.txt"), b"value-123").expect("write");
        let s = BuildSecret::load("s1", &SecretSource::File("s.txt".into()), dir.path())
            .expect("loads");
        assert_eq!(s.value.expose(), b"value-123");
        let e = BuildSecret::load("s2", &SecretSource::File("missing".into()), dir.path())
            .expect_err("missing");
        assert!(e.to_string().contains("s2"));
        let e = BuildSecret::load(
            "s3",
            &SecretSource::Env("IMAGESPEC_TEST_SURELY_UNSET_VAR".into()),
            dir.path(),
        )
        .expect_err("unset");
        assert!(e.to_string().contains("IMAGESPEC_TEST_SURELY_UNSET_VAR"));
        assert!(BuildSecret::load("bad id", &SecretSource::Env("X".into()), dir.path()).is_err());
    }

    #[test]
    fn tar_entry_then_archive_reads_as_one() {
        let mut buf = Vec::new();
        write_tar_entry(&mut buf, ".imagespec-secret-n-s", b"xyz").expect("entry");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "Dockerfile", &b"hi"[..])
            .expect("append");
        buf.extend(b.into_inner().expect("finish"));
        let mut a = tar::Archive::new(&buf[..]);
        let names: Vec<String> = a
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .to_string()
            })
            .collect();
        assert_eq!(names, [".imagespec-secret-n-s", "Dockerfile"]);
    }
}
