//! A real registry (Docker distribution's `docker-registry`) started by the test itself on
//! 127.0.0.1, with htpasswd (bcrypt) auth and storage in a temp dir; killed on drop.
//!
//! It is not mocked because the point of these tests is to agree with what a real registry
//! does (status codes, headers, media type handling), not with our idea of it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imagespec_registry::ImageReference;

pub const USER: &str = "imagespec-test";

pub struct TestRegistry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub user: String,
    pub password: String,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn require(name: &str, package: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed, but the registry tests need it (Debian package \
             `{package}`). Run `scripts/dev-env.sh` to install the development dependencies."
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// `true` once `GET /v2/` gets an HTTP answer (401 without credentials).
fn answers(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

impl TestRegistry {
    /// Starts a registry; panics (failing the test) with the registry's log if it cannot.
    pub fn start() -> Self {
        let binary = require("docker-registry", "docker-registry");
        let htpasswd = require("htpasswd", "apache2-utils");
        let dir = tempfile::tempdir().expect("temp dir");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let password = format!("pw-{}-{nanos}-Sekr1t", std::process::id());
        let out = Command::new(htpasswd)
            .args(["-Bbn", USER, &password])
            .output()
            .expect("run htpasswd");
        assert!(out.status.success(), "htpasswd failed: {out:?}");
        std::fs::write(dir.path().join("htpasswd"), &out.stdout).expect("write htpasswd");

        let mut last_log = String::new();
        for _ in 0..3 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = dir.path().join("config.yml");
            std::fs::write(&config, config_yaml(dir.path(), &addr)).expect("write config");
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).expect("log file");
            let mut child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if answers(&addr) {
                    return Self {
                        child,
                        dir,
                        addr,
                        user: USER.to_string(),
                        password,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited early, e.g. the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("docker-registry did not start; its log:\n{last_log}");
    }

    /// `127.0.0.1:PORT/<path>` parsed.
    pub fn reference(&self, path: &str) -> ImageReference {
        ImageReference::parse(&format!("{}/{path}", self.addr)).expect("test reference")
    }

    /// A Docker config.json with this registry's credentials (or another password).
    pub fn write_config(&self, path: &Path, password: &str) {
        super::write_auth_file(path, &self.addr, &self.user, password);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn config_yaml(dir: &Path, addr: &str) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: info\n\
         storage:\n  filesystem:\n    rootdirectory: {root}\n\
         http:\n  addr: {addr}\n  secret: imagespec-test-secret\n\
         auth:\n  htpasswd:\n    realm: imagespec-test\n    path: {htpasswd}\n",
        root = dir.join("data").display(),
        htpasswd = dir.join("htpasswd").display(),
    )
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
