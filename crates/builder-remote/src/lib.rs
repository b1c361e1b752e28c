//! The remote builder (`union`, alias `remote`): builds in an imagespec build service
//! (`imagespec serve`), which stores the image in its own registry.
//!
//! What it does that flyte-sdk's remote build does not (see `shared/reference/peers.md`):
//! - **content-addressed upload**: the files the image name was hashed from are sent as blobs,
//!   and only the ones the service lacks ([`upload`]);
//! - **live, resumable logs**: the build's output streams back as [`BuildEvent`]s over
//!   server-sent events, resumed from the last offset after a dropped connection ([`logs`]);
//! - **the platform is sent** and checked by the service;
//! - **build secrets** (`pip_secret_mounts`) are read here and sent in the build request, only
//!   over https or to loopback; the service holds them in memory for that build ([`secrets`]);
//! - the service recomputes the image name from the uploaded files and refuses a mismatch, so
//!   client and service always agree on what the tag means.
//!
//! What stays on the client: its proxy variables (the service builds on its own network, with
//! its engine's proxies) and the `--cache-from` / `--cache-to` flags, which the CLI refuses for
//! this builder; a spec's `builder_options` (its cache keys included) travel with the spec.
//!
//! Transient failures (connection errors, 5xx, 429) are retried with bounded exponential
//! backoff ([`RetryPolicy`]); `request.cancel` cancels the remote build; the token is a
//! [`Secret`] and never appears in a log line or an error.

pub mod error;
pub mod files;
pub mod http;
pub mod logs;
pub mod secrets;
/// The wire types, re-exported so the client's users need one dependency.
pub use imagespec_protocol as protocol;
pub mod sse;
pub mod upload;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use imagespec_core::build::{
    BuildError, BuildEvent, BuildOutput, BuildRequest, BuilderKind, Capabilities, Existence,
    ExistsQuery, ImageBuilder, Located,
};
use imagespec_core::config::Secret;
use imagespec_core::hash::ImageName;
use imagespec_core::plan::runtime::Runtime;
use imagespec_core::plan::{BuildPlan, PlanError};
use imagespec_core::spec::LoadedSpec;
use reqwest::Method;

pub use error::RemoteError;
pub use http::RetryPolicy;
pub use upload::UploadStats;

use crate::http::{Api, Body};
use crate::logs::LogFollower;
use crate::protocol::{
    BuildInfo, BuildState, ExistsResponse, ExistsState, FileEntry, ServiceCapabilities,
    SubmitBuild, blob_digest,
};

/// Where the build service is.
#[derive(Debug, Clone, Default)]
pub struct RemoteConfig {
    pub url: Option<String>,
    pub token: Option<Secret>,
}

/// How long to follow a build after asking the service to cancel it.
const CANCEL_GRACE: Duration = Duration::from_secs(60);

/// A client of the imagespec build service.
#[derive(Debug, Clone)]
pub struct RemoteBuilder {
    config: RemoteConfig,
    retry: RetryPolicy,
    idle_timeout: Duration,
    last_upload: Arc<Mutex<Option<UploadStats>>>,
}

impl RemoteBuilder {
    pub fn new(config: RemoteConfig) -> Self {
        RemoteBuilder {
            config,
            retry: RetryPolicy::default(),
            idle_timeout: Duration::from_secs(45),
            last_upload: Arc::default(),
        }
    }

    /// Uses another retry policy (tests use a fast one).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long the log stream may stay silent before it counts as dropped (the service sends
    /// keep-alives every 10 s).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// What the last build sent (blobs and bytes), for progress reports and tests.
    pub fn last_upload(&self) -> Option<UploadStats> {
        *self.last_upload.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses, before anything is uploaded, platforms the service says its workers cannot
    /// build. A service that cannot tell (or predates `GET /v1/capabilities`) is left to
    /// refuse the build itself.
    async fn check_platforms(&self, api: &Api, platforms: &[&str]) -> Result<(), RemoteError> {
        use imagespec_registry::Platform;
        let answer: Result<ServiceCapabilities, _> = api
            .call(
                Method::GET,
                "/capabilities",
                Body::None,
                Duration::from_secs(30),
            )
            .await;
        let known = match answer {
            Ok(ServiceCapabilities {
                platforms: Some(known),
            }) => known,
            Ok(_) => return Ok(()),
            Err(RemoteError::Rejected { problem }) if problem.status == 404 => return Ok(()),
            Err(e) => return Err(e),
        };
        let parsed: Vec<Platform> = known
            .iter()
            .filter_map(|p| Platform::parse(p).ok())
            .collect();
        let missing: Vec<&str> = platforms
            .iter()
            .copied()
            .filter(|want| {
                Platform::parse(want)
                    .map(|w| !parsed.iter().any(|have| w.is_satisfied_by(have)))
                    .unwrap_or(true)
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(RemoteError::Unsupported(format!(
            "the build service at {} cannot build {} (its workers build {}): drop {} from `platform`, or enable emulation on the service's machine (see the README, \"Several platforms\")",
            api.url(),
            missing.join(", "),
            known.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
        )))
    }

    fn api(&self) -> Result<Api, RemoteError> {
        let url = self
            .config
            .url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .ok_or(RemoteError::NotConfigured)?;
        let token = self
            .config
            .token
            .clone()
            .ok_or_else(|| RemoteError::NoToken {
                url: url.to_string(),
            })?;
        Api::new(url, token, self.retry)
    }

    async fn run(&self, request: &BuildRequest) -> Result<BuildOutput, RemoteError> {
        let api = self.api()?;
        // Read now, before anything is uploaded: a missing secret is bad input.
        let secrets = secrets::read(&request.spec)?;
        if !secrets.is_empty() {
            secrets::check_transport(api.url())?;
        }
        let platforms = request.spec.spec.platforms();
        self.check_platforms(&api, &platforms).await?;
        let events = &request.events;
        let loaded = request.spec.clone();
        let selection = tokio::task::spawn_blocking(move || files::select(&loaded))
            .await
            .map_err(|e| RemoteError::Selection(e.to_string()))??;
        let stats = upload::sync_blobs(&api, &selection, &request.cancel).await?;
        *self.last_upload.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats);
        events.emit(BuildEvent::Status {
            message: format!(
                "uploaded {} of {} files ({} of {} bytes) to {}",
                stats.uploaded,
                stats.blobs,
                stats.uploaded_bytes,
                stats.total_bytes,
                api.url()
            ),
        });
        let submit = SubmitBuild {
            spec: serde_json::to_value(&selection.spec)
                .map_err(|e| RemoteError::Protocol(e.to_string()))?,
            files: selection
                .files
                .iter()
                .map(|(path, f)| {
                    (
                        path.clone(),
                        FileEntry {
                            digest: blob_digest(&f.digest),
                            executable: f.executable,
                            symlink: f.symlink.clone(),
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            target: request.image.name.to_string(),
            platforms: request
                .spec
                .spec
                .platforms()
                .into_iter()
                .map(str::to_string)
                .collect(),
            // The engine only asks for a build when the image is missing or a rebuild is forced.
            force: true,
            base_image: request.base_image.clone(),
            flytekit_version: Some(match &request.spec.runtime {
                Runtime::Flytekit(version) => version.clone(),
                Runtime::Union(_) | Runtime::None => "none".into(),
            }),
            union_version: match &request.spec.runtime {
                Runtime::Union(version) => Some(version.clone()),
                _ => None,
            },
            secrets,
        };
        let body =
            serde_json::to_value(&submit).map_err(|e| RemoteError::Protocol(e.to_string()))?;
        if request.cancel.is_cancelled() {
            return Err(RemoteError::Cancelled);
        }
        let info: BuildInfo = api
            .call(
                Method::POST,
                "/builds",
                Body::Json(&body),
                Duration::from_secs(120),
            )
            .await?;
        events.emit(BuildEvent::Status {
            message: format!(
                "build {} {} on {}",
                info.id,
                info.status.as_str(),
                api.url()
            ),
        });
        let mut follower = LogFollower::new(info.id.clone());
        follower.idle_timeout = self.idle_timeout;
        let finished = tokio::select! {
            r = follower.follow(&api, events) => r?,
            () = request.cancel.cancelled() => {
                self.cancel_remote(&api, &info.id).await;
                match tokio::time::timeout(CANCEL_GRACE, follower.follow(&api, events)).await {
                    Ok(Ok(info)) if info.status == BuildState::Succeeded => info,
                    _ => return Err(RemoteError::Cancelled),
                }
            }
        };
        match finished.status {
            BuildState::Succeeded => Ok(BuildOutput {
                image: finished.image,
                digest: finished.digest,
                pushed: true,
            }),
            status => Err(RemoteError::Failed {
                id: finished.id,
                url: api.url().to_string(),
                status,
                error: finished.error.map(Box::new),
            }),
        }
    }

    async fn cancel_remote(&self, api: &Api, id: &str) {
        let path = format!("/builds/{id}/cancel");
        if let Err(e) = api
            .send(Method::POST, &path, &Body::None, Duration::from_secs(10))
            .await
        {
            tracing::warn!("could not cancel build {id} on {}: {e}", api.url());
        }
    }
}

#[async_trait]
impl ImageBuilder for RemoteBuilder {
    fn name(&self) -> &str {
        "union"
    }

    fn aliases(&self) -> &[&str] {
        &["remote"]
    }

    fn priority(&self) -> i32 {
        1
    }

    fn description(&self) -> &str {
        "builds in an imagespec build service, which stores the image in its own registry"
    }

    fn configured(&self) -> Result<(), String> {
        self.api().map(drop).map_err(|e| e.to_string())
    }

    fn preflight(&self, spec: &LoadedSpec) -> Result<(), PlanError> {
        BuildPlan::check(spec)
    }

    fn capabilities(&self) -> Capabilities {
        // Secrets included: they travel in the build request, over TLS or to loopback
        // ([`secrets`]).
        Capabilities::full(BuilderKind::Remote)
    }

    async fn exists(&self, image: &ImageName, query: &ExistsQuery) -> Existence {
        self.locate(image, query).await.existence
    }

    /// Asks the service, which answers with the fully qualified name it checked (a name
    /// without a registry lives in the service's own registry).
    async fn locate(&self, image: &ImageName, query: &ExistsQuery) -> Located {
        let unknown = |reason: String| Located::at_requested_name(Existence::Unknown { reason });
        let unavailable =
            |reason: String| Located::at_requested_name(Existence::Unavailable { reason });
        let api = match self.api() {
            Ok(api) => api,
            Err(e) => return unavailable(e.to_string()),
        };
        let image = image.to_string();
        let platforms = query.platforms.join(",");
        let path = format!("/images/exists?{}", encode_query(&image, &platforms));
        let answer = match api
            .call::<ExistsResponse>(Method::GET, &path, Body::None, Duration::from_secs(60))
            .await
        {
            Ok(answer) => answer,
            // A refused token is a set-up problem, not "cannot tell": no policy may skip it.
            Err(e @ crate::error::RemoteError::Unauthorized { .. }) => {
                return Located::at_requested_name(Existence::Denied {
                    reason: e.to_string(),
                });
            }
            // The service refuses to look outside the project's registries: as final as a
            // refused token.
            Err(crate::error::RemoteError::Rejected { problem }) if problem.status == 403 => {
                return Located::at_requested_name(Existence::Denied {
                    reason: problem.detail.clone(),
                });
            }
            // A service that cannot be reached cannot build either.
            Err(e @ crate::error::RemoteError::Unreachable { .. }) => {
                return unavailable(e.to_string());
            }
            Err(e) => return unknown(e.to_string()),
        };
        let existence = match answer.state {
            ExistsState::Exists => Existence::Exists,
            ExistsState::Missing => Existence::Missing,
            ExistsState::Unknown => Existence::Unknown {
                reason: answer
                    .reason
                    .unwrap_or_else(|| "the build service could not tell".to_string()),
            },
            ExistsState::Denied => Existence::Denied {
                reason: answer.reason.unwrap_or_else(|| {
                    "the build service's registry refused its credentials".to_string()
                }),
            },
        };
        Located {
            existence,
            image: Some(answer.image),
        }
    }

    async fn build(&self, request: BuildRequest) -> Result<BuildOutput, BuildError> {
        Ok(self.run(&request).await?)
    }
}

fn encode_query(image: &str, platforms: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!("image={}&platforms={}", enc(image), enc(platforms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            encode_query("127.0.0.1:5000/a/b:t", "linux/amd64,linux/arm64"),
            "image=127.0.0.1%3A5000%2Fa%2Fb%3At&platforms=linux%2Famd64%2Clinux%2Farm64"
        );
    }

    #[test]
    fn an_unconfigured_builder_says_what_to_set() {
        let e = RemoteBuilder::new(RemoteConfig::default())
            .api()
            .expect_err("no url");
        assert!(e.to_string().contains("IMAGESPEC_REMOTE_URL"));
        let b = RemoteBuilder::new(RemoteConfig {
            url: Some("http://127.0.0.1:1".into()),
            token: None,
        });
        assert!(
            b.api()
                .expect_err("no token")
                .to_string()
                .contains("IMAGESPEC_REMOTE_TOKEN")
        );
    }
}
