//! The proxy settings a build's `RUN` steps see, as the Docker CLI passes them.
//!
//! Corporate networks reach package indexes through a proxy. `docker build` hands the proxy
//! variables to the engine as build args (docker/cli `ConfigFile.ParseProxyConfig`): the
//! `proxies` of `config.json` under the daemon's host (`"unix:///var/run/docker.sock"`), else
//! under `"default"`, each set in both cases (`HTTP_PROXY` and `http_proxy`), unless the user
//! gave that arg already. Here the user's environment plays the part of `--build-arg`: a
//! variable set in this process's environment (either case) wins over `config.json`.
//!
//! Both engines treat these names as predefined args: every `RUN` sees them without an `ARG`,
//! and they are kept out of the image's `Env` and history (a build arg is never the image's
//! configuration). They are not inputs of the image name either: the same spec built behind a
//! proxy or not is the same image. The remote builder does not forward them: the service runs
//! on another network, which has its own proxies (its engine's environment and config).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The proxy variables, in the case `config.json`'s keys map to; each is passed in lower case too.
pub const PROXY_VARIABLES: [&str; 5] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "ALL_PROXY",
];

/// One entry of `config.json`'s `proxies`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProxyConfig {
    #[serde(default)]
    http_proxy: String,
    #[serde(default)]
    https_proxy: String,
    #[serde(default)]
    no_proxy: String,
    #[serde(default)]
    ftp_proxy: String,
    #[serde(default)]
    all_proxy: String,
}

impl ProxyConfig {
    fn get(&self, variable: &str) -> &str {
        match variable {
            "HTTP_PROXY" => &self.http_proxy,
            "HTTPS_PROXY" => &self.https_proxy,
            "NO_PROXY" => &self.no_proxy,
            "FTP_PROXY" => &self.ftp_proxy,
            "ALL_PROXY" => &self.all_proxy,
            _ => "",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    proxies: BTreeMap<String, ProxyConfig>,
}

/// The `proxies` entry for `daemon_host` in the `config.json` at `path` (its `"default"` when
/// the host has none). A missing file has none; an unreadable or malformed one is logged and
/// ignored, as the credential lookup (the same file) reports it where it matters.
fn from_config(path: Option<&Path>, daemon_host: &str) -> ProxyConfig {
    let Some(path) = path else {
        return ProxyConfig::default();
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ProxyConfig::default(),
        Err(e) => {
            tracing::warn!("cannot read the proxies of {}: {e}", path.display());
            return ProxyConfig::default();
        }
    };
    match serde_json::from_str::<ConfigFile>(&text) {
        Ok(mut c) => c
            .proxies
            .remove(daemon_host)
            .or_else(|| c.proxies.remove("default"))
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!("ignoring the proxies of {}: {e}", path.display());
            ProxyConfig::default()
        }
    }
}

/// The proxy build args for a build on the engine at `daemon_host`: from `env` (this process's
/// environment), then the Docker `config.json` at `config` (see the module comment). Only the
/// variables that are set, in both cases.
pub fn build_args(
    env: impl Fn(&str) -> Option<String>,
    config: Option<&Path>,
    daemon_host: &str,
) -> BTreeMap<String, String> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let configured = from_config(config, daemon_host);
    let mut args = BTreeMap::new();
    for upper in PROXY_VARIABLES {
        let lower = upper.to_ascii_lowercase();
        let (env_upper, env_lower) = (env(upper), env(&lower));
        let from_file = Some(configured.get(upper).to_string()).filter(|v| !v.is_empty());
        // A variable set in one case only stands for both: a `config.json` value for the other
        // case would send two different proxies to one step.
        let upper_value = env_upper
            .clone()
            .or(env_lower.clone())
            .or(from_file.clone());
        let lower_value = env_lower.or(env_upper).or(from_file);
        if let Some(v) = upper_value {
            args.insert(upper.to_string(), v);
        }
        if let Some(v) = lower_value {
            args.insert(lower, v);
        }
    }
    args
}

/// The password of a proxy URL (`http://user:password@proxy:3128`), which must not reach a log.
pub fn password(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let userinfo = rest.split('/').next()?.rsplit_once('@')?.0;
    userinfo
        .split_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn config(dir: &Path, json: &str) -> std::path::PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, json).expect("write config");
        path
    }

    #[test]
    fn the_daemon_host_entry_then_default_in_both_cases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = config(
            dir.path(),
            r#"{"auths":{},"proxies":{
                "default":{"httpProxy":"http://default:3128","noProxy":"localhost"},
                "unix:///run/podman/podman.sock":{"httpsProxy":"http://podman:3128"}}}"#,
        );
        let docker = build_args(env_of(&[]), Some(&path), "unix:///var/run/docker.sock");
        assert_eq!(docker["HTTP_PROXY"], "http://default:3128");
        assert_eq!(docker["http_proxy"], "http://default:3128");
        assert_eq!(docker["no_proxy"], "localhost");
        assert!(!docker.contains_key("HTTPS_PROXY"));
        // A host entry replaces `default` whole, as in the Docker CLI.
        let podman = build_args(env_of(&[]), Some(&path), "unix:///run/podman/podman.sock");
        assert_eq!(
            podman.keys().collect::<Vec<_>>(),
            ["HTTPS_PROXY", "https_proxy"]
        );
    }

    #[test]
    fn the_environment_wins_in_either_case() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = config(
            dir.path(),
            r#"{"proxies":{"default":{"httpProxy":"http://file:1","ftpProxy":"ftp://file:2"}}}"#,
        );
        let args = build_args(
            env_of(&[
                ("http_proxy", "http://env:3"),
                ("ALL_PROXY", "socks5://env:4"),
            ]),
            Some(&path),
            "unix:///var/run/docker.sock",
        );
        assert_eq!(args["HTTP_PROXY"], "http://env:3");
        assert_eq!(args["http_proxy"], "http://env:3");
        assert_eq!(args["all_proxy"], "socks5://env:4");
        assert_eq!(args["FTP_PROXY"], "ftp://file:2");
    }

    #[test]
    fn no_file_or_a_bad_one_gives_only_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("none.json");
        assert!(build_args(env_of(&[]), Some(&missing), "h").is_empty());
        let bad = config(dir.path(), "{not json");
        let args = build_args(env_of(&[("NO_PROXY", "a")]), Some(&bad), "h");
        assert_eq!(args.len(), 2);
    }

    #[test]
    fn a_proxy_password_is_found() {
        assert_eq!(password("http://u:s3cret@proxy:3128/"), Some("s3cret"));
        assert_eq!(password("u:p@proxy:1"), Some("p"));
        assert_eq!(password("http://proxy:3128"), None);
        assert_eq!(password("http://user@proxy:3128"), None);
    }
}
