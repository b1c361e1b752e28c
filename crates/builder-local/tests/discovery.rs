//! The engine the user names is the engine used, or the build fails with kind `Unavailable`
//! saying what was tried and what answered. Real engines (the dev environment's Docker and
//! Podman sockets) and faults a real engine cannot produce: a unix path that does not exist, a
//! garbage value, and a FAKE engine on 127.0.0.1 that accepts connections and never answers.
//! The environment is passed as a closure, so this process's own variables play no part.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;

use common::*;
use imagespec_builder_local::discovery::{PING_TIMEOUT, discover};
use imagespec_builder_local::{EngineChoice, EngineKind, LocalError};
use imagespec_core::build::BuildErrorKind;
use sha2::{Digest, Sha256};

/// An environment with only these variables; `HOME` is an empty directory (no Docker context).
struct Env {
    vars: HashMap<&'static str, String>,
    _home: tempfile::TempDir,
}

impl Env {
    fn new(vars: &[(&'static str, &str)]) -> Env {
        let home = tempfile::tempdir().expect("tempdir");
        let mut map: HashMap<&'static str, String> =
            vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        map.entry("HOME")
            .or_insert_with(|| home.path().to_string_lossy().to_string());
        Env {
            vars: map,
            _home: home,
        }
    }

    fn get(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |k| self.vars.get(k).cloned()
    }
}

/// A FAKE engine: accepts TCP connections on 127.0.0.1 and never answers. Lives as long as
/// the returned listener's thread (the process).
fn silent_engine() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    format!("tcp://{addr}")
}

async fn fails(choice: EngineChoice, env: &Env) -> LocalError {
    match discover(choice, None, env.get()).await {
        Ok(engine) => panic!(
            "expected no engine, got {} at {}",
            engine.kind, engine.endpoint
        ),
        Err(e) => {
            assert!(matches!(e, LocalError::NoEngine { .. }), "{e:?}");
            assert_eq!(e.kind(), BuildErrorKind::Unavailable);
            e
        }
    }
}

fn attempts(e: &LocalError) -> usize {
    match e {
        LocalError::NoEngine { attempts, .. } => attempts.len(),
        _ => 0,
    }
}

#[tokio::test]
async fn named_engines_are_used() {
    let env = Env::new(&[("DOCKER_HOST", DOCKER)]);
    let e = discover(EngineChoice::Any, None, env.get())
        .await
        .expect("Docker");
    assert_eq!(e.kind, EngineKind::Docker);
    let env = Env::new(&[("CONTAINER_HOST", PODMAN)]);
    let e = discover(EngineChoice::Any, None, env.get())
        .await
        .expect("Podman");
    assert_eq!(e.kind, EngineKind::Podman);
    // Nothing named: the well-known sockets, Docker's first.
    let env = Env::new(&[]);
    let e = discover(EngineChoice::Any, None, env.get())
        .await
        .expect("a default engine");
    assert_eq!(e.kind, EngineKind::Docker);
}

#[tokio::test]
async fn a_dead_named_engine_is_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = format!("unix://{}/no-engine-here.sock", dir.path().display());
    for var in ["DOCKER_HOST", "CONTAINER_HOST"] {
        let env = Env::new(&[(var, &dead)]);
        let e = fails(EngineChoice::Any, &env).await;
        let text = e.to_string();
        assert_eq!(attempts(&e), 1, "only the named engine is tried: {text}");
        assert!(text.contains(&dead) && text.contains(var), "{text}");
        assert!(text.contains("no such socket"), "{text}");
        assert!(text.contains("unset it"), "{text}");
    }
}

#[tokio::test]
async fn a_garbage_named_engine_is_refused() {
    let env = Env::new(&[("DOCKER_HOST", "not an endpoint")]);
    let text = fails(EngineChoice::Any, &env).await.to_string();
    assert!(
        text.contains("DOCKER_HOST") && text.contains("expected unix://"),
        "{text}"
    );
}

#[tokio::test]
async fn a_hanging_named_engine_fails_within_the_ping_timeout() {
    let fake = silent_engine();
    let env = Env::new(&[("DOCKER_HOST", &fake)]);
    let text = fails(EngineChoice::Any, &env).await.to_string();
    let bound = format!("within {}s", PING_TIMEOUT.as_secs());
    assert!(text.contains(&fake) && text.contains(&bound), "{text}");
}

#[tokio::test]
async fn the_docker_builder_refuses_a_named_podman() {
    let env = Env::new(&[("DOCKER_HOST", PODMAN)]);
    let text = fails(EngineChoice::Docker, &env).await.to_string();
    assert!(
        text.contains("answered as Podman") && text.contains("builder `docker`"),
        "{text}"
    );
    let env = Env::new(&[("CONTAINER_HOST", DOCKER)]);
    let text = fails(EngineChoice::Podman, &env).await.to_string();
    assert!(text.contains("answered as Docker"), "{text}");
}

fn write_context(config_dir: &Path, name: &str, host: &str) {
    let digest = hex_of(name);
    let meta = config_dir.join("contexts/meta").join(digest);
    std::fs::create_dir_all(&meta).expect("mkdir");
    let json = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
    std::fs::write(meta.join("meta.json"), json.to_string()).expect("write meta.json");
}

fn hex_of(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn docker_contexts_are_honoured() {
    let config = tempfile::tempdir().expect("tempdir");
    write_context(config.path(), "on-podman", PODMAN);
    std::fs::write(
        config.path().join("config.json"),
        r#"{"currentContext": "on-podman"}"#,
    )
    .expect("write config.json");
    let dir = config.path().to_string_lossy().to_string();

    // `docker context use on-podman`: the context's engine, not the default socket.
    let env = Env::new(&[("DOCKER_CONFIG", &dir)]);
    let e = discover(EngineChoice::Any, None, env.get())
        .await
        .expect("the context's engine");
    assert_eq!(e.kind, EngineKind::Podman);

    // DOCKER_HOST beats the context, as with the docker CLI.
    let env = Env::new(&[("DOCKER_CONFIG", &dir), ("DOCKER_HOST", DOCKER)]);
    let e = discover(EngineChoice::Any, None, env.get())
        .await
        .expect("DOCKER_HOST");
    assert_eq!(e.kind, EngineKind::Docker);

    // DOCKER_CONTEXT beats currentContext; `default` means no context.
    let env = Env::new(&[("DOCKER_CONFIG", &dir), ("DOCKER_CONTEXT", "default")]);
    let e = discover(EngineChoice::Any, None, env.get())
        .await
        .expect("default socket");
    assert_eq!(e.kind, EngineKind::Docker);

    // An unknown context is named, so it fails rather than falling back.
    let env = Env::new(&[("DOCKER_CONFIG", &dir), ("DOCKER_CONTEXT", "missing")]);
    let text = fails(EngineChoice::Any, &env).await.to_string();
    assert!(
        text.contains("missing") && text.contains("docker context ls"),
        "{text}"
    );
}
