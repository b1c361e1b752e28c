//! A TLS front for the real Docker socket, as `dockerd --tlsverify -H tcp://...:2376` would
//! serve it, without starting a second daemon next to the shared one: a TLS-terminating
//! proxy on 127.0.0.1 (port 0) that requires a client certificate signed by its CA and then
//! forwards the bytes to `/var/run/docker.sock`. The certificates are real ones, made with
//! the `openssl` CLI in a temporary directory: a CA, the proxy's certificate for IP
//! 127.0.0.1, a client certificate, and a second, unrelated CA with its own client pair.
//! Shared by the builder-local and service tests (`#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, UnixStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificates of one test, in `dir`: `client/` and `stranger/` are `DOCKER_CERT_PATH`
/// layouts (`ca.pem`, `cert.pem`, `key.pem`); `stranger/` comes from another CA.
pub struct Certificates {
    pub dir: tempfile::TempDir,
}

impl Certificates {
    /// The client directory the proxy accepts.
    pub fn client(&self) -> PathBuf {
        self.dir.path().join("client")
    }

    /// A client directory whose CA and certificate the proxy does not know.
    pub fn stranger(&self) -> PathBuf {
        self.dir.path().join("stranger")
    }

    fn server(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("server.pem"),
            self.dir.path().join("server-key.pem"),
        )
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl CLI (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `name`: `<name>.pem` and `<name>-key.pem`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// A certificate `out` (key `key`) signed by CA `ca` with the extensions in `ext`.
fn signed(dir: &Path, ca: &str, cn: &str, ext: &str, out: &str, key: &str) {
    let ext_file = format!("{out}.ext");
    std::fs::write(dir.join(&ext_file), ext).expect("ext file");
    let csr = format!("{out}.csr");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            key,
            "-out",
            &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}-key.pem"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext_file,
            "-out",
            out,
        ],
    );
}

/// Makes the certificates (a few milliseconds of openssl each).
pub fn certificates() -> Certificates {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    ca(d, "ca");
    ca(d, "other-ca");
    signed(
        d,
        "ca",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        "server.pem",
        "server-key.pem",
    );
    let client_ext = "extendedKeyUsage=clientAuth\n";
    for (sub, ca_name) in [("client", "ca"), ("stranger", "other-ca")] {
        std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        signed(
            d,
            ca_name,
            sub,
            client_ext,
            &format!("{sub}/cert.pem"),
            &format!("{sub}/key.pem"),
        );
        std::fs::copy(d.join(format!("{ca_name}.pem")), d.join(sub).join("ca.pem"))
            .expect("copy ca");
    }
    Certificates { dir }
}

/// The running proxy: its `tcp://` endpoint, and how many connections passed the handshake.
pub struct TlsProxy {
    pub endpoint: String,
    pub accepted: Arc<AtomicUsize>,
    pub refused: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn server_config(certs: &Certificates) -> rustls::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certs.dir.path().join("ca.pem")).expect("ca") {
        roots.add(cert.expect("ca cert")).expect("add ca");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let (cert, key) = certs.server();
    let chain = CertificateDer::pem_file_iter(cert)
        .expect("server cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("server chain");
    let key = PrivateKeyDer::from_pem_file(key).expect("server key");
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server config")
}

/// Starts the proxy in front of `docker_socket` (a path).
pub async fn start(certs: &Certificates, docker_socket: &str) -> TlsProxy {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(certs)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let socket = docker_socket.to_string();
    let (ok, bad) = (accepted.clone(), refused.clone());
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, socket, ok, bad) =
                (acceptor.clone(), socket.clone(), ok.clone(), bad.clone());
            tokio::spawn(async move {
                let mut tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(_) => {
                        bad.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
                ok.fetch_add(1, Ordering::SeqCst);
                let Ok(mut engine) = UnixStream::connect(&socket).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut engine).await;
            });
        }
    });
    TlsProxy {
        endpoint: format!("tcp://{addr}"),
        accepted,
        refused,
        task,
    }
}
