//! BuildKit's `moby.filesync.v1.Auth` session service: registry credentials for the pulls of a
//! Docker build (a `FROM` or `COPY --from` image in a registry that needs a login).
//!
//! BuildKit pulls with the daemon's own resolver, but asks the *client* for credentials, host
//! by host, over the build's session, as the docker CLI answers them (buildkit's
//! `session/auth/authprovider`):
//! - `Credentials(host)`: a username and secret (an identity token travels as the secret with
//!   an empty username); empty for a host we know nothing about, which makes the pull
//!   anonymous, as with the docker CLI;
//! - `FetchToken`: only asked when `GetTokenAuthority` gave a key; we give none (token-authority
//!   keys are a docker CLI optimisation), so BuildKit fetches tokens itself with what
//!   `Credentials` said. A stored registry token (`registrytoken`) is still answered here;
//! - `GetTokenAuthority` / `VerifyTokenAuthority`: `Unimplemented`, which BuildKit treats as
//!   "no authority".
//!
//! The credentials come from the same [`CredentialSources`] as the push and the existence
//! check (the spec's `registry_config`, `config.json` `credHelpers`/`credsStore`/`auths`,
//! Podman's `auth.json`), so a user logged in for the push is logged in for the pull too. Only
//! the host and where the credential came from are logged, never the credential.

use std::collections::HashMap;

use bollard::moby::filesync::v1::auth_server::Auth;
use bollard::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use imagespec_registry::{Credential, CredentialSources, ResolvedCredential};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

/// The session methods this service answers, announced when the session is opened.
pub(crate) const METHODS: [&str; 4] = [
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
];

/// Answers BuildKit's credential requests from `sources`.
pub(crate) struct RegistryAuth {
    sources: CredentialSources,
    /// One lookup per host and build: BuildKit asks again for every layer and every stage, and
    /// a credential helper may take a second per call.
    cache: Mutex<HashMap<String, Option<Credential>>>,
}

impl RegistryAuth {
    pub(crate) fn new(sources: CredentialSources) -> Self {
        RegistryAuth {
            sources,
            cache: Mutex::default(),
        }
    }

    async fn lookup(&self, host: &str) -> Result<Option<Credential>, Status> {
        let mut cache = self.cache.lock().await;
        if let Some(found) = cache.get(host) {
            return Ok(found.clone());
        }
        // BuildKit names Docker Hub by its API host; credentials are stored under `docker.io`.
        let registry = if host == "registry-1.docker.io" {
            "docker.io"
        } else {
            host
        };
        let found = self
            .sources
            .resolve(registry, "")
            .await
            .map_err(|e| {
                tracing::warn!(host, "registry credentials for a pull: {e}");
                // The message names the source (a file, a helper), never a credential.
                Status::unavailable(format!("registry credentials for {host}: {e}"))
            })?
            .map(|ResolvedCredential { credential, origin }| {
                tracing::debug!(host, %origin, kind = %credential, "BuildKit asked for registry credentials");
                credential
            });
        if found.is_none() {
            tracing::debug!(
                host,
                "BuildKit asked for registry credentials; none stored, pulling anonymously"
            );
        }
        cache.insert(host.to_string(), found.clone());
        Ok(found)
    }
}

/// What `Credentials` answers for a credential (as the docker CLI does).
fn credentials_response(credential: Option<&Credential>) -> CredentialsResponse {
    match credential {
        Some(Credential::Basic { username, password }) => CredentialsResponse {
            username: username.clone(),
            secret: password.expose().to_string(),
        },
        Some(Credential::IdentityToken(token)) => CredentialsResponse {
            username: String::new(),
            secret: token.expose().to_string(),
        },
        // A registry token is answered by `FetchToken`; anything else is anonymous.
        _ => CredentialsResponse::default(),
    }
}

#[async_trait::async_trait]
impl Auth for RegistryAuth {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let found = self.lookup(&request.get_ref().host).await?;
        Ok(Response::new(credentials_response(found.as_ref())))
    }

    async fn fetch_token(
        &self,
        request: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        match self.lookup(&request.get_ref().host).await? {
            Some(Credential::RegistryToken(token)) => Ok(Response::new(FetchTokenResponse {
                token: token.expose().to_string(),
                expires_in: 0,
                issued_at: 0,
            })),
            _ => Err(Status::unimplemented(
                "imagespec answers Credentials; BuildKit fetches tokens itself",
            )),
        }
    }

    async fn get_token_authority(
        &self,
        _request: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _request: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagespec_registry::Secret;

    #[test]
    fn answers_as_the_docker_cli() {
        let basic = Credential::Basic {
            username: "u".into(),
            password: Secret::new("p".to_string()),
        };
        let r = credentials_response(Some(&basic));
        assert_eq!((r.username.as_str(), r.secret.as_str()), ("u", "p"));
        let token = Credential::IdentityToken(Secret::new("t".to_string()));
        let r = credentials_response(Some(&token));
        assert_eq!((r.username.as_str(), r.secret.as_str()), ("", "t"));
        assert_eq!(credentials_response(None), CredentialsResponse::default());
    }
}
