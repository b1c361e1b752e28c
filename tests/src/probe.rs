//! A tiny Python project whose *build* reads the secrets: its in-tree PEP 517 backend (no
//! dependencies, so no network) hashes each mounted secret and writes the digests into the
//! wheel's only module. Installing it in the secret-mounted step proves the step could read
//! them, while only their SHA-256 reaches the image.

use std::path::Path;

use anyhow::{Context, Result};

/// The distribution name to install.
pub const DISTRIBUTION: &str = "conformance-probe";
/// The module the wheel installs (`ENV_SHA256`, `FILE_SHA256`).
pub const MODULE: &str = "conformance_probe";
/// Where the environment-sourced secret is mounted.
pub const ENV_TARGET: &str = "/run/secrets/conformance_env";
/// Where the file-sourced secret is mounted: the spec names it relatively
/// ([`FILE_TARGET_RELATIVE`], as flytekit's own test does), which is below the install step's
/// working directory (`/root`), as BuildKit resolves a relative `target=`.
pub const FILE_TARGET: &str = "/root/conformance_file";
/// [`FILE_TARGET`] as the spec writes it.
pub const FILE_TARGET_RELATIVE: &str = "conformance_file";

const PYPROJECT: &str = r#"[build-system]
requires = []
build-backend = "conformance_backend"
backend-path = ["."]

[project]
name = "conformance-probe"
version = "0.1.0"
"#;

const BACKEND: &str = r#"# A PEP 517 backend that hashes the build's secrets into the wheel it builds.
import base64
import hashlib
import os
import zipfile

DIST = "conformance_probe-0.1.0"
SECRETS = {"ENV_SHA256": "@ENV_TARGET@", "FILE_SHA256": "@FILE_TARGET@"}


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _record(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (name, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    module = "".join("%s = %r\n" % (k, _sha256(p)) for k, p in sorted(SECRETS.items()))
    files = {
        "conformance_probe.py": module.encode(),
        DIST + ".dist-info/METADATA": b"Metadata-Version: 2.1\nName: conformance-probe\nVersion: 0.1.0\n",
        DIST + ".dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: conformance\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = DIST + ".dist-info/RECORD"
    lines = [_record(n, d) for n, d in files.items()] + [record + ",,"]
    files[record] = ("\n".join(lines) + "\n").encode()
    name = DIST + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
    return name
"#;

/// Writes the probe project into `dir`.
pub fn write(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let backend = BACKEND
        .replace("@ENV_TARGET@", ENV_TARGET)
        .replace("@FILE_TARGET@", FILE_TARGET);
    std::fs::write(dir.join("pyproject.toml"), PYPROJECT)?;
    std::fs::write(dir.join("conformance_backend.py"), backend)?;
    Ok(())
}
