//! Credential lookup from every source kind. All paths are injected through
//! `CredentialSources`, so nothing here reads the real home directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use imagespec_registry::{
    Credential, CredentialError, CredentialOrigin, CredentialSources, Secret,
};
use serde_json::json;

const PASSWORD: &str = "Top-Secret-Pa55:with-colon";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn write(dir: &Path, name: &str, value: serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).expect("write");
    path
}

fn docker_only(path: PathBuf) -> CredentialSources {
    CredentialSources {
        docker_config: Some(path),
        helper_path: Some(OsString::new()),
        ..CredentialSources::none()
    }
}

fn basic(user: &str, password: &str) -> Credential {
    Credential::Basic {
        username: user.into(),
        password: Secret::new(password),
    }
}

async fn resolve(sources: &CredentialSources, registry: &str, repo: &str) -> Option<Credential> {
    sources
        .resolve(registry, repo)
        .await
        .expect("resolve")
        .map(|found| found.credential)
}

#[tokio::test]
async fn auths_auth_field_with_every_key_form() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        ("https://ghcr.io", "ghcr.io"),
        ("ghcr.io", "ghcr.io"),
        ("http://ghcr.io/v1/", "ghcr.io"),
        ("GHCR.io/v2/", "ghcr.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ];
    for (key, registry) in cases {
        let path = write(
            dir.path(),
            "config.json",
            json!({"auths": {key: {"auth": b64(&format!("alice:{PASSWORD}"))}}}),
        );
        let sources = docker_only(path.clone());
        assert_eq!(
            resolve(&sources, registry, "org/app").await,
            Some(basic("alice", PASSWORD)),
            "key {key}"
        );
        assert_eq!(
            resolve(&sources, "quay.io", "org/app").await,
            None,
            "key {key}"
        );
        let found = sources
            .resolve(registry, "org/app")
            .await
            .expect("ok")
            .expect("some");
        assert_eq!(found.origin, CredentialOrigin::File(path));
    }
}

#[tokio::test]
async fn auths_username_password_identitytoken_and_placeholders() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = write(
        dir.path(),
        "config.json",
        json!({"auths": {
            "a.example": {"username": "bob", "password": PASSWORD},
            "b.example": {"auth": b64("bob:x"), "identitytoken": "refresh-tok"},
            "c.example": {"registrytoken": "reg-tok"},
            "d.example": {},
            "e.example": {"auth": b64("bob:")},
        }}),
    );
    let s = docker_only(path);
    assert_eq!(
        resolve(&s, "a.example", "x").await,
        Some(basic("bob", PASSWORD))
    );
    assert_eq!(
        resolve(&s, "b.example", "x").await,
        Some(Credential::IdentityToken(Secret::new("refresh-tok")))
    );
    assert_eq!(
        resolve(&s, "c.example", "x").await,
        Some(Credential::RegistryToken(Secret::new("reg-tok")))
    );
    assert_eq!(resolve(&s, "d.example", "x").await, None);
    assert_eq!(resolve(&s, "e.example", "x").await, Some(basic("bob", "")));
}

#[tokio::test]
async fn secrets_are_redacted_in_debug_and_display() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = write(
        dir.path(),
        "config.json",
        json!({"auths": {"ghcr.io": {"auth": b64(&format!("alice:{PASSWORD}"))}}}),
    );
    let found = docker_only(path)
        .resolve("ghcr.io", "x")
        .await
        .expect("ok")
        .expect("some");
    let printed = format!(
        "{found:?} {} {} {:?}",
        found.credential, found.origin, found.credential
    );
    assert!(!printed.contains(PASSWORD), "{printed}");
    assert!(
        !printed.contains(&b64(&format!("alice:{PASSWORD}"))),
        "{printed}"
    );
    assert!(
        printed.contains("alice") && printed.contains("<redacted>"),
        "{printed}"
    );
    for token in [
        Credential::IdentityToken(Secret::new(PASSWORD)),
        Credential::RegistryToken(Secret::new(PASSWORD)),
    ] {
        assert!(!format!("{token:?} {token}").contains(PASSWORD));
    }
}

#[tokio::test]
async fn broken_files_give_errors_without_secrets() {
    let dir = tempfile::tempdir().expect("tmp");
    // Invalid JSON after a secret: the error must not quote it.
    let path = dir.path().join("broken.json");
    std::fs::write(
        &path,
        format!(r#"{{"auths": {{"x.io": {{"auth": "{PASSWORD}"}} }}"#),
    )
    .expect("write");
    let err = docker_only(path)
        .resolve("x.io", "r")
        .await
        .expect_err("broken");
    assert!(matches!(err, CredentialError::Parse { .. }), "{err:?}");
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    // Wrong type: serde would quote the value, we do not.
    let path = write(
        dir.path(),
        "typed.json",
        json!({"auths": {"x.io": PASSWORD}}),
    );
    let err = docker_only(path)
        .resolve("x.io", "r")
        .await
        .expect_err("typed");
    assert!(!err.to_string().contains(PASSWORD), "{err}");
    // `auth` that is not base64 / has no colon.
    for auth in [format!("!!{PASSWORD}!!"), b64("no-colon-here")] {
        let path = write(
            dir.path(),
            "bad-auth.json",
            json!({"auths": {"x.io": {"auth": auth}}}),
        );
        let err = docker_only(path)
            .resolve("x.io", "r")
            .await
            .expect_err("bad auth");
        assert!(
            matches!(err, CredentialError::InvalidEntry { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("x.io"), "{err}");
        assert!(!err.to_string().contains(PASSWORD) && !err.to_string().contains("no-colon"));
    }
}

#[tokio::test]
async fn explicit_file_comes_first_and_must_exist() {
    let dir = tempfile::tempdir().expect("tmp");
    let explicit = write(
        dir.path(),
        "explicit.json",
        json!({"auths": {"ghcr.io": {"username": "explicit", "password": "p1"}}}),
    );
    let docker = write(
        dir.path(),
        "docker.json",
        json!({"auths": {"ghcr.io": {"username": "docker", "password": "p2"},
                         "quay.io": {"username": "docker", "password": "p3"}}}),
    );
    let s = docker_only(docker).with_explicit_file(&explicit);
    assert_eq!(
        resolve(&s, "ghcr.io", "x").await,
        Some(basic("explicit", "p1"))
    );
    // A registry the explicit file does not mention falls through to Docker's file.
    assert_eq!(
        resolve(&s, "quay.io", "x").await,
        Some(basic("docker", "p3"))
    );

    let s = CredentialSources::none().with_explicit_file(dir.path().join("missing.json"));
    let err = s
        .resolve("ghcr.io", "x")
        .await
        .expect_err("missing explicit file");
    assert!(matches!(err, CredentialError::Read { .. }), "{err:?}");
    // Missing standard files are simply skipped.
    let s = docker_only(dir.path().join("nope.json"));
    assert_eq!(resolve(&s, "ghcr.io", "x").await, None);
}

#[tokio::test]
async fn podman_auth_json_from_environment_paths_with_namespaces() {
    let dir = tempfile::tempdir().expect("tmp");
    let runtime = dir.path().join("run");
    std::fs::create_dir_all(runtime.join("containers")).expect("mkdir");
    write(
        &runtime.join("containers"),
        "auth.json",
        json!({"auths": {
            "quay.io": {"auth": b64("general:g")},
            "quay.io/team": {"auth": b64("team:t")},
            "quay.io/team/special": {"auth": b64("special:s")},
        }}),
    );
    let home = dir.path().join("home");
    let vars = |name: &str| -> Option<OsString> {
        match name {
            "XDG_RUNTIME_DIR" => Some(runtime.clone().into()),
            "HOME" => Some(home.clone().into()),
            _ => None,
        }
    };
    let s = CredentialSources::from_vars(vars);
    assert_eq!(s.docker_config, Some(home.join(".docker/config.json")));
    assert_eq!(
        s.podman_auth_files,
        vec![
            runtime.join("containers/auth.json"),
            home.join(".config/containers/auth.json")
        ]
    );
    assert_eq!(
        resolve(&s, "quay.io", "other/app").await,
        Some(basic("general", "g"))
    );
    assert_eq!(
        resolve(&s, "quay.io", "team/app").await,
        Some(basic("team", "t"))
    );
    assert_eq!(
        resolve(&s, "quay.io", "team/special").await,
        Some(basic("special", "s"))
    );
    assert_eq!(
        resolve(&s, "quay.io", "teamx/app").await,
        Some(basic("general", "g"))
    );
}

#[test]
fn environment_paths() {
    let s = CredentialSources::from_vars(|name| match name {
        "DOCKER_CONFIG" => Some("/cfg/docker".into()),
        "HOME" => Some("/home/u".into()),
        "REGISTRY_AUTH_FILE" => Some("/cfg/auth.json".into()),
        "XDG_CONFIG_HOME" => Some("/home/u/.xdg".into()),
        _ => None,
    });
    assert_eq!(
        s.docker_config,
        Some(PathBuf::from("/cfg/docker/config.json"))
    );
    assert_eq!(
        s.podman_auth_files,
        vec![
            PathBuf::from("/cfg/auth.json"),
            PathBuf::from("/home/u/.xdg/containers/auth.json")
        ]
    );
    let empty = CredentialSources::from_vars(|_| None);
    assert_eq!(empty.docker_config, None);
    assert!(empty.podman_auth_files.is_empty());
}

#[cfg(unix)]
mod helpers {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Writes `docker-credential-<name>` that records its stdin and runs `body`.
    fn helper(bin: &Path, name: &str, body: &str) {
        std::fs::create_dir_all(bin).expect("bin");
        let path = bin.join(format!("docker-credential-{name}"));
        let stdin_log = bin.join(format!("{name}.stdin"));
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\ncat > '{}'\n{body}\n",
            stdin_log.display()
        );
        std::fs::write(&path, script).expect("helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn answering(user: &str, secret: &str) -> String {
        format!(r#"echo '{{"ServerURL":"x","Username":"{user}","Secret":"{secret}"}}'"#)
    }

    fn sources(config: PathBuf, bin: &Path) -> CredentialSources {
        CredentialSources {
            docker_config: Some(config),
            helper_path: Some(bin.as_os_str().to_owned()),
            helper_timeout: Duration::from_secs(5),
            ..CredentialSources::none()
        }
    }

    #[tokio::test]
    async fn cred_helpers_and_creds_store() {
        let dir = tempfile::tempdir().expect("tmp");
        let bin = dir.path().join("bin");
        helper(&bin, "specific", &answering("spec-user", PASSWORD));
        helper(&bin, "store", &answering("<token>", "id-token"));
        helper(
            &bin,
            "empty",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        let config = write(
            dir.path(),
            "config.json",
            json!({
                "credsStore": "store",
                "credHelpers": {"ghcr.io": "specific", "https://index.docker.io/v1/": "specific",
                                "quay.io": "empty"},
                "auths": {"quay.io": {"auth": b64("fallback:f")}},
            }),
        );
        let s = sources(config, &bin);

        let found = s.resolve("ghcr.io", "x").await.expect("ok").expect("some");
        assert_eq!(found.credential, basic("spec-user", PASSWORD));
        assert!(
            matches!(&found.origin, CredentialOrigin::Helper { program, .. } if program == "docker-credential-specific")
        );
        assert!(!format!("{found:?} {}", found.origin).contains(PASSWORD));
        let stdin = std::fs::read_to_string(bin.join("specific.stdin")).expect("stdin log");
        assert_eq!(stdin.trim(), "ghcr.io");

        // Docker Hub is asked for under the URL `docker login` stores.
        resolve(&s, "docker.io", "library/ubuntu")
            .await
            .expect("hub credential");
        let stdin = std::fs::read_to_string(bin.join("specific.stdin")).expect("stdin log");
        assert_eq!(stdin.trim(), "https://index.docker.io/v1/");

        // The default store; `<token>` means an identity token.
        assert_eq!(
            resolve(&s, "gcr.io", "x").await,
            Some(Credential::IdentityToken(Secret::new("id-token")))
        );
        // A helper with nothing falls back to `auths`.
        assert_eq!(
            resolve(&s, "quay.io", "x").await,
            Some(basic("fallback", "f"))
        );
    }

    #[tokio::test]
    async fn helper_failures() {
        let dir = tempfile::tempdir().expect("tmp");
        let bin = dir.path().join("bin");
        helper(&bin, "broken", "echo 'keychain is locked' >&2; exit 2");
        helper(&bin, "garbage", &format!("echo 'not json {PASSWORD}'"));
        helper(&bin, "slow", "sleep 5");
        let config = write(
            dir.path(),
            "config.json",
            json!({"credHelpers": {"a.io": "broken", "b.io": "garbage", "c.io": "slow",
                                   "d.io": "not-installed", "e.io": "../../bin/sh"}}),
        );
        let mut s = sources(config.clone(), &bin);
        s.helper_timeout = Duration::from_millis(300);

        let err = s.resolve("a.io", "x").await.expect_err("broken");
        assert!(err.to_string().contains("keychain is locked"), "{err}");
        let err = s.resolve("b.io", "x").await.expect_err("garbage");
        assert!(
            matches!(err, CredentialError::HelperOutput { .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains(PASSWORD));
        let err = s.resolve("c.io", "x").await.expect_err("slow");
        assert!(
            matches!(err, CredentialError::HelperTimeout { .. }),
            "{err:?}"
        );
        let err = s.resolve("d.io", "x").await.expect_err("missing");
        assert!(
            matches!(err, CredentialError::HelperNotFound { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("docker-credential-not-installed"),
            "{err}"
        );
        let err = s.resolve("e.io", "x").await.expect_err("path traversal");
        assert!(matches!(err, CredentialError::HelperName { .. }), "{err:?}");

        // A default store that is not installed only warns: `auths` still work.
        let config = write(
            dir.path(),
            "store.json",
            json!({"credsStore": "desktop", "auths": {"f.io": {"auth": b64("u:p")}}}),
        );
        let s = sources(config, &bin);
        assert_eq!(resolve(&s, "f.io", "x").await, Some(basic("u", "p")));
        assert_eq!(resolve(&s, "g.io", "x").await, None);
    }
}
