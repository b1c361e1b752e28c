//! Shared test support. Each test binary uses a different subset, hence `dead_code` allowed.
#![allow(dead_code)]

pub mod fake;
pub mod image;
pub mod logs;
pub mod registry;

use std::path::Path;

/// Writes a Docker `config.json`-style file holding `registry`'s user and password in `auth`.
pub fn write_auth_file(path: &Path, registry: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let json = serde_json::json!({ "auths": { registry: { "auth": auth } } });
    std::fs::write(path, json.to_string()).expect("write auth file");
}
