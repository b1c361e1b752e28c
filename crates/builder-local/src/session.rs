//! The BuildKit client session Docker needs to hand secrets to a build.
//!
//! BuildKit never receives secrets up front: when a `RUN --mount=type=secret` step runs, it asks
//! the *client* for the value over a gRPC session the client opened (`POST /session`, upgraded to
//! `h2c`, with the daemon as the gRPC client and us as the server). bollard's own BuildKit build
//! registers only an auth service on its session, so this module serves the session itself:
//! `grpc.health.v1.Health` (BuildKit drops a session whose health check fails),
//! `moby.buildkit.secrets.v1.Secrets`, answering only the ids this build declared, and
//! `moby.filesync.v1.Auth` (module `session_auth`), answering BuildKit's credential requests
//! when it pulls a base image from a registry that needs a login.
//!
//! Because BuildKit asks the session for registry credentials on *every* pull (and fails with
//! `no active sessions` when there is none), every Docker build opens one, secrets or not.
//!
//! This works with the daemon's embedded BuildKit (Docker 20.10 and later); no BuildKit container
//! is involved. The session ends when [`Session`] is dropped.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bollard::health::health_check_response::ServingStatus;
use bollard::health::health_server::{Health, HealthServer};
use bollard::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use futures::Stream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::{Request, Response, Status};

use bollard::moby::filesync::v1::auth_server::AuthServer;
use imagespec_registry::CredentialSources;

use crate::engine_http::EngineHttp;
use crate::error::LocalError;
use crate::secrets::BuildSecret;
use crate::session_auth::RegistryAuth;

/// A running session; dropping it closes it.
pub(crate) struct Session {
    pub(crate) id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A random identifier (session ids, build ids, secret file names).
pub(crate) fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Opens a session on the engine serving `secrets` and the registry credentials of
/// `credentials`.
pub(crate) async fn start(
    http: &EngineHttp,
    secrets: &[BuildSecret],
    credentials: CredentialSources,
) -> Result<Session, LocalError> {
    let id = random_id();
    let mut headers: Vec<(&str, String)> = vec![
        ("Connection", "Upgrade".into()),
        ("Upgrade", "h2c".into()),
        ("X-Docker-Expose-Session-Uuid", id.clone()),
        ("X-Docker-Expose-Session-Name", "imagespec".into()),
        ("X-Docker-Expose-Session-Sharedkey", random_id()),
        (
            "X-Docker-Expose-Session-Grpc-Method",
            "/grpc.health.v1.Health/Check".into(),
        ),
        (
            "X-Docker-Expose-Session-Grpc-Method",
            "/moby.buildkit.secrets.v1.Secrets/GetSecret".into(),
        ),
    ];
    headers.extend(
        crate::session_auth::METHODS
            .iter()
            .map(|m| ("X-Docker-Expose-Session-Grpc-Method", (*m).to_string())),
    );
    let io = http
        .upgrade(
            "opening the BuildKit session",
            &http.compat("/session"),
            &headers,
        )
        .await?;
    let store = SecretStore {
        values: Arc::new(
            secrets
                .iter()
                .map(|s| (s.id.clone(), s.value.expose().to_vec()))
                .collect(),
        ),
    };
    let router = tonic::transport::Server::builder()
        .add_service(HealthServer::new(Healthy))
        .add_service(SecretsServer::new(store))
        .add_service(AuthServer::new(RegistryAuth::new(credentials)));
    let task = tokio::spawn(async move {
        let incoming = futures::stream::iter([Ok::<_, io::Error>(SessionConn(io))]);
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::debug!("BuildKit session ended: {e}");
        }
    });
    tracing::debug!(session = %id, secrets = secrets.len(), "BuildKit session open");
    Ok(Session { id, task })
}

/// Answers `GetSecret` for the declared ids only.
struct SecretStore {
    values: Arc<HashMap<String, Vec<u8>>>,
}

#[async_trait::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        match self.values.get(id) {
            Some(v) => {
                tracing::debug!(secret = %id, "BuildKit asked for a secret");
                Ok(Response::new(GetSecretResponse { data: v.clone() }))
            }
            None => Err(Status::not_found(format!("secret {id} not found"))),
        }
    }
}

/// Always serving: the session lives exactly as long as the build needs it.
struct Healthy;

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[async_trait::async_trait]
impl Health for Healthy {
    async fn check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _request: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        Ok(Response::new(HealthListResponse::default()))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch is not supported"))
    }
}

/// The upgraded connection, as tonic's server wants it.
struct SessionConn(TokioIo<hyper::upgrade::Upgraded>);

impl tonic::transport::server::Connected for SessionConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for SessionConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SessionConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
