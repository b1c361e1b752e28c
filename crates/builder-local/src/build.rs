//! Running one Dockerfile build on the connected engine.
//!
//! The context is written to a 0600 file in a private temporary directory (never held whole in
//! memory: a source tree can be large), opened for the upload, and unlinked at once, so nothing
//! is left behind by a crash, a failure or a cancellation; dropping the build future also drops
//! the directory guard. The file is streamed to `/build`:
//! - Docker: BuildKit (`version=2`), with a client session (`crate::session`) that serves the
//!   build's secrets and the registry credentials of its pulls, and a `buildid` so that a
//!   cancellation can stop the solve at once;
//! - Podman: the libpod endpoint, with secrets as files inside the context (`crate::secrets`)
//!   and the credentials of its pulls in `X-Registry-Config` (`crate::pull_auth`).
//!
//! The answer is streamed through [`Progress`] into the request's events.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use futures::TryStreamExt;
use http::Method;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use imagespec_core::build::{BuildCache, BuildError, BuildErrorKind, BuildEvent, EventSink};
use imagespec_registry::CredentialSources;
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use crate::discovery::{ConnectedEngine, EngineKind};
use crate::engine_http::{self as api, JsonStream};
use crate::error::LocalError;
use crate::progress::{BuildMessage, Progress};
use crate::pull_auth;
use crate::secrets::{
    BuildSecret, Redactor, SecretSource, SecretValue, podman_secret_name, write_tar_entry,
};
use crate::session;

/// Writes the build context (an uncompressed tar holding the Dockerfile) to the given writer.
pub type ContextWriter = Box<dyn FnOnce(&mut dyn Write) -> Result<(), String> + Send>;

/// One Dockerfile build in engine terms: what a build plan turns into, or what a caller with
/// its own Dockerfile provides directly.
pub struct BuildJob {
    /// The name to tag the image with.
    pub tag: String,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    pub context: ContextWriter,
    /// Secrets the Dockerfile mounts with `RUN --mount=type=secret,id=<id>`.
    pub secrets: Vec<BuildSecret>,
    /// The target platform (`linux/amd64`), one per job; `None` builds for the engine's own.
    pub platform: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub events: EventSink,
    pub cancel: CancellationToken,
}

impl std::fmt::Debug for BuildJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildJob")
            .field("tag", &self.tag)
            .field("dockerfile", &self.dockerfile)
            .field(
                "secrets",
                &self.secrets.iter().map(|s| &s.id).collect::<Vec<_>>(),
            )
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

/// A finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub tag: String,
    /// The image id (`sha256:...`) the engine reported.
    pub image_id: Option<String>,
}

fn cancelled() -> BuildError {
    LocalError::Cancelled.into()
}

/// Runs `job` on `engine` with the registry cache `cache`; temporary files go under
/// `temp_root`; the images the build pulls (and its cache) use the registry credentials of
/// `credentials`.
pub(crate) async fn run(
    engine: &ConnectedEngine,
    job: BuildJob,
    temp_root: &Path,
    credentials: CredentialSources,
    cache: &BuildCache,
) -> Result<BuiltImage, BuildError> {
    let BuildJob {
        tag,
        dockerfile,
        context,
        secrets,
        platform,
        labels,
        events,
        cancel,
    } = job;
    if cancel.is_cancelled() {
        return Err(cancelled());
    }
    // What the engine cannot do with the cache is refused before any work.
    let cache = crate::cache::request(engine.kind, cache)?;
    // The proxies of the environment and `config.json`, as build args (`crate::proxy`); a
    // proxy password is as secret as the build's own secrets.
    let mut build_args = crate::proxy::build_args(
        |k| std::env::var(k).ok(),
        credentials.docker_config.as_deref(),
        &engine.endpoint.to_string(),
    );
    let proxy_passwords: Vec<SecretValue> = build_args
        .values()
        .filter_map(|v| crate::proxy::password(v))
        .map(|p| SecretValue::new(p.as_bytes().to_vec()))
        .collect();
    build_args.extend(cache.build_args.clone());
    let mut redactor = Redactor::new(secrets.iter().map(|s| &s.value).chain(&proxy_passwords));
    let nonce = session::random_id();
    let podman_secrets: Vec<(String, String)> = match engine.kind {
        EngineKind::Podman => secrets
            .iter()
            .map(|s| (s.id.clone(), podman_secret_name(&nonce[..12], &s.id)))
            .collect(),
        EngineKind::Docker => Vec::new(),
    };

    // 1. The context, in a private temporary directory.
    let dir = tempfile::Builder::new()
        .prefix("imagespec-build-")
        .tempdir_in(temp_root)
        .map_err(|e| {
            LocalError::context(
                format!(
                    "cannot create a temporary directory in {}",
                    temp_root.display()
                ),
                e,
            )
        })?;
    let path = dir.path().join("context.tar");
    events.emit(BuildEvent::Status {
        message: "writing the build context".into(),
    });
    let write = {
        let path = path.clone();
        let files: Vec<(String, Vec<u8>)> = podman_secrets
            .iter()
            .zip(&secrets)
            .map(|((_, name), s)| (name.clone(), s.value.expose().to_vec()))
            .collect();
        tokio::task::spawn_blocking(move || -> Result<u64, String> {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            let mut w = BufWriter::new(file);
            for (name, data) in &files {
                write_tar_entry(&mut w, name, data).map_err(|e| e.to_string())?;
            }
            context(&mut w)?;
            let file = w.into_inner().map_err(|e| e.to_string())?;
            file.sync_all().ok();
            file.metadata().map(|m| m.len()).map_err(|e| e.to_string())
        })
    };
    let size = tokio::select! {
        _ = cancel.cancelled() => return Err(cancelled()),
        r = write => r.map_err(|e| LocalError::context("the context writer stopped", e))?
            // The writer reports a message only (`ContextWriter`); it may quote a secret.
            .map_err(|reason| LocalError::Context { what: redactor.redact(&reason), source: None })?,
    };
    let file = std::fs::File::open(&path)
        .map_err(|e| LocalError::context(format!("cannot open {}", path.display()), e))?;
    // Unlink now: the open handle keeps the bytes for the upload, and nothing stays on disk.
    drop(dir);
    tracing::debug!(size, %tag, engine = %engine.kind, "build context written");

    // 2. The request.
    let labels_json = serde_json::to_string(&labels)
        .map_err(|e| LocalError::context("cannot encode the labels", e))?;
    let mut params: Vec<(&str, String)> = vec![
        ("dockerfile", dockerfile),
        ("t", tag.clone()),
        ("labels", labels_json),
    ];
    if let Some(p) = &platform {
        params.push(("platform", p.clone()));
    }
    if !build_args.is_empty() {
        tracing::debug!(names = ?build_args.keys().collect::<Vec<_>>(), "build args");
        params.push((
            "buildargs",
            serde_json::to_string(&build_args)
                .map_err(|e| LocalError::context("cannot encode the build args", e))?,
        ));
    }
    params.extend(cache.params.iter().map(|(k, v)| (*k, v.clone())));
    let build_id = session::random_id();
    let mut _session = None;
    let mut extra_headers: Vec<(&str, String)> = Vec::new();
    let path = match engine.kind {
        EngineKind::Docker => {
            params.extend([
                ("version", "2".to_string()),
                ("rm", "1".into()),
                ("forcerm", "1".into()),
                ("buildid", build_id.clone()),
            ]);
            // Always a session: BuildKit asks it for registry credentials on every pull.
            let s = tokio::select! {
                _ = cancel.cancelled() => return Err(cancelled()),
                s = session::start(&engine.http, &secrets, credentials) => s?,
            };
            params.push(("session", s.id.clone()));
            _session = Some(s);
            engine.http.compat("/build")
        }
        EngineKind::Podman => {
            params.extend([
                ("rm", "true".to_string()),
                ("forcerm", "true".into()),
                ("layers", "true".into()),
                // Without an explicit format, Podman 4's libpod endpoint never finds its
                // cached layers (every step runs again); OCI is what `podman build` uses, so
                // the two share one cache.
                (
                    "outputformat",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
            ]);
            if !podman_secrets.is_empty() {
                let list: Vec<String> = podman_secrets
                    .iter()
                    .map(|(id, name)| format!("id={id},src={name}"))
                    .collect();
                params.push((
                    "secrets",
                    serde_json::to_string(&list)
                        .map_err(|e| LocalError::context("cannot encode the secrets", e))?,
                ));
            }
            let dockerfile = {
                let mut copy = rewound(&file)?;
                pull_auth::dockerfile_in_context(&mut copy, &params[0].1)
                    .map_err(|e| {
                        LocalError::context("cannot read the Dockerfile back from the context", e)
                    })?
                    .unwrap_or_default()
            };
            let mut images = pull_auth::pulled_images(&dockerfile);
            images.extend(cache.images.iter().cloned());
            if let Some((header, values)) =
                pull_auth::registry_config_header(&images, &credentials).await?
            {
                redactor = Redactor::new(
                    secrets
                        .iter()
                        .map(|s| &s.value)
                        .chain(&proxy_passwords)
                        .chain(&values),
                );
                extra_headers.push(("X-Registry-Config", header));
            }
            engine.http.libpod("/build")
        }
    };
    let uri = format!("{path}?{}", api::query(&params));
    events.emit(BuildEvent::Status {
        message: format!("building {tag} on {} {}", engine.kind, engine.version),
    });

    // 3. The answer, streamed; on Podman, again after a race with a concurrent image removal.
    let mut attempt = 1;
    loop {
        let body = context_body(&file)?;
        let result = send_and_follow(
            engine,
            &uri,
            &extra_headers,
            body,
            &events,
            &redactor,
            &cancel,
        )
        .await;
        match result {
            Err(e)
                if engine.kind == EngineKind::Podman
                    && attempt < PODMAN_ATTEMPTS
                    && is_podman_store_race(&e) =>
            {
                tracing::debug!(attempt, error = %e, "podman store race; building again");
                events.emit(BuildEvent::Status {
                    message: format!(
                        "Podman lost an image layer to a concurrent image removal ({}); building again (attempt {} of {PODMAN_ATTEMPTS})",
                        e.message,
                        attempt + 1
                    ),
                });
                tokio::time::sleep(Duration::from_millis(300 * attempt)).await;
                attempt += 1;
            }
            Err(e) if e.kind == BuildErrorKind::Cancelled => {
                if engine.kind == EngineKind::Docker {
                    cancel_docker_build(engine, &build_id).await;
                }
                return Err(e);
            }
            Err(e) => return Err(e),
            Ok(mut image_id) => {
                if image_id.is_none() {
                    // Podman's libpod endpoint does not send the id; the store knows it.
                    image_id = engine
                        .docker
                        .inspect_image(&tag)
                        .await
                        .ok()
                        .and_then(|i| i.id);
                }
                return Ok(BuiltImage { tag, image_id });
            }
        }
    }
}

/// How often a Podman build is tried when it loses a race with a concurrent image removal.
const PODMAN_ATTEMPTS: u64 = 3;

/// Buildah looks up its layer cache by walking the store's images, and reads the layers of the
/// images a step uses (`FROM`, `COPY --from`); when another client removes an image meanwhile
/// (`podman rmi`, `image prune`, another build's clean-up, which also drops that build's
/// dangling intermediate images), the build fails with `layer not known`, before the first step
/// or at any later one. Building again is safe: the steps that did finish were committed as
/// cache layers and are reused, and nothing was tagged or pushed. `image not known` is only
/// taken as that race in the cache lookup, where it means the same; elsewhere it may be a real
/// missing image, which another attempt would not fix.
fn is_podman_store_race(e: &BuildError) -> bool {
    let m = &e.message;
    m.contains("layer not known")
        || (m.contains("checking if cached image exists") && m.contains("image not known"))
}

/// A new handle on the context file, at its start, for one reader (a request body, the
/// Dockerfile lookup).
fn rewound(file: &std::fs::File) -> Result<std::fs::File, LocalError> {
    use std::io::{Seek, SeekFrom};
    use std::os::fd::AsRawFd;
    // Reopened through /proc (the file is already unlinked), each handle has its own offset,
    // so an earlier attempt's body still being read by its connection cannot move this one's.
    let mut copy = std::fs::File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| file.try_clone())
        .map_err(|e| LocalError::context("cannot reopen the build context", e))?;
    copy.seek(SeekFrom::Start(0))
        .map_err(|e| LocalError::context("cannot rewind the build context", e))?;
    Ok(copy)
}

/// A fresh body over the context file (from its start), for one request.
fn context_body(file: &std::fs::File) -> Result<api::Body, BuildError> {
    let file = tokio::fs::File::from_std(rewound(file)?);
    Ok(StreamBody::new(ReaderStream::new(file).map_ok(Frame::data)).boxed())
}

/// Sends the build request and follows its output to the end; the image id when the engine
/// reported one.
async fn send_and_follow(
    engine: &ConnectedEngine,
    uri: &str,
    extra_headers: &[(&str, String)],
    body: api::Body,
    events: &EventSink,
    redactor: &Redactor,
    cancel: &CancellationToken,
) -> Result<Option<String>, BuildError> {
    let mut progress = Progress::new(events.clone(), redactor.clone());
    let mut headers: Vec<(&str, String)> = vec![("Content-Type", "application/x-tar".into())];
    headers.extend(extra_headers.iter().cloned());
    let stream = async {
        let response = engine
            .http
            .send("the build request", Method::POST, uri, &headers, body)
            .await
            .map_err(|e| redact_error(e.into(), redactor))?;
        let mut messages = JsonStream::new(response);
        while let Some(message) = messages.next::<BuildMessage>().await {
            match message {
                Ok(m) => progress.handle(m),
                Err(raw) => progress.raw(&raw),
            }
        }
        // A lost connection is not a finished build: nothing says the image exists, and a
        // push after it would fail with a message about the push, not the cause.
        if let Some(cause) = messages.broken() {
            return Err(BuildError::new(
                BuildErrorKind::Unavailable,
                format!(
                    "lost the connection to the engine at {} during the build: {cause}",
                    engine.endpoint
                ),
            ));
        }
        Ok::<_, BuildError>(())
    };
    tokio::select! {
        _ = cancel.cancelled() => Err(cancelled()),
        r = stream => r.and_then(|()| progress.finish()),
    }
}

/// Asks Docker to stop a BuildKit solve; closing the connection stops it too, so this is only
/// to make it stop promptly.
async fn cancel_docker_build(engine: &ConnectedEngine, build_id: &str) {
    let uri = format!(
        "{}?{}",
        engine.http.compat("/build/cancel"),
        api::query(&[("id", build_id.to_string())])
    );
    let call = engine.http.send(
        "cancelling the build",
        Method::POST,
        &uri,
        &[],
        api::empty(),
    );
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Ok(Ok(_)) => tracing::debug!(build_id, "build cancelled"),
        Ok(Err(e)) => tracing::debug!(build_id, "cancelling the build: {e}"),
        Err(_) => tracing::debug!(build_id, "cancelling the build timed out"),
    }
}

fn redact_error(mut e: BuildError, redactor: &Redactor) -> BuildError {
    e.message = redactor.redact(&e.message);
    e.log_tail = e.log_tail.iter().map(|l| redactor.redact(l)).collect();
    e
}

/// Reads the secrets of `pip_secret_mounts` now: a missing file or variable is bad input, and
/// fails before any engine is contacted. Secrets a build service supplied are taken as they are,
/// and then no source of this machine is read (its environment and files are not the client's).
pub(crate) fn load_secrets(
    req: &imagespec_core::build::BuildRequest,
) -> Result<Vec<BuildSecret>, BuildError> {
    use imagespec_core::build::SecretValues;
    use imagespec_core::plan::{SecretSource as PlanSource, secrets};

    secrets::from_spec(&req.spec)
        .map_err(LocalError::Plan)?
        .iter()
        .map(|s| match &req.secrets {
            SecretValues::Supplied(values) => values
                .get(&s.id)
                .map(|v| BuildSecret {
                    id: s.id.clone(),
                    value: SecretValue::new(v.expose()),
                })
                .ok_or_else(|| {
                    LocalError::Secret {
                        id: s.id.clone(),
                        reason: "its value was not supplied with the build".into(),
                    }
                    .into()
                }),
            SecretValues::FromSources => {
                let source = match &s.source {
                    PlanSource::File(p) => SecretSource::File(p.clone()),
                    PlanSource::Env(v) => SecretSource::Env(v.clone()),
                };
                BuildSecret::load(&s.id, &source, &req.spec.root).map_err(BuildError::from)
            }
        })
        .collect()
}

/// Turns a build request into a job through the build plan for an engine of `kind`: the
/// plan's Dockerfile and context, the secrets [`load_secrets`] read, its platforms; and the
/// images the Dockerfile pulls (`FROM`, `COPY --from`).
pub(crate) fn job_from_request(
    req: &imagespec_core::build::BuildRequest,
    kind: EngineKind,
    secrets: Vec<BuildSecret>,
    labels: BTreeMap<String, String>,
) -> Result<(BuildJob, Vec<String>), BuildError> {
    use imagespec_core::plan::{BuildPlan, EngineTraits};

    let traits = EngineTraits {
        // Podman 4 (Buildah 1.28) deadlocks on contended `sharing=locked` cache mounts.
        locked_cache_mounts: kind == EngineKind::Docker,
    };
    let plan = BuildPlan::for_engine(&req.spec, &req.image, req.base_image.as_deref(), traits)
        .map_err(LocalError::Plan)?;
    let planned: Vec<&str> = plan.secrets().iter().map(|s| s.id.as_str()).collect();
    let loaded: Vec<&str> = secrets.iter().map(|s| s.id.as_str()).collect();
    if planned != loaded {
        return Err(LocalError::PlanMismatch(format!(
            "the plan mounts secrets {planned:?} but {loaded:?} were read"
        ))
        .into());
    }
    // Every platform at once: a caller building them one by one sets its own (`BuildJob`
    // builds one platform per job).
    let platforms = plan.platforms();
    let platform = (!platforms.is_empty()).then(|| platforms.join(","));
    let pulled = crate::pull_auth::pulled_images(&plan.dockerfile());
    tracing::debug!(image = %req.image.name, dockerfile = %plan.dockerfile(), "build plan");
    // Steps are named by what they are for ("dependencies", "command 1").
    let events = plan.step_labels().labelling(req.events.clone());
    let job = BuildJob {
        tag: req.image.name.to_string(),
        dockerfile: plan.dockerfile_path().to_string(),
        context: Box::new(move |w| plan.write_context(w).map(|_| ()).map_err(|e| e.to_string())),
        secrets,
        platform,
        labels,
        events,
        cancel: req.cancel.clone(),
    };
    Ok((job, pulled))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build service's supplied secrets are used as they are, and no source of this machine
    /// is read then: an unset variable does not matter, a missing id fails naming it.
    #[test]
    fn supplied_secrets_are_used_and_no_source_is_read() {
        use imagespec_core::build::{EventSink, SecretBytes, SecretValues};
        let dir = tempfile::tempdir().expect("tmp");
        let spec = imagespec_core::spec::LoadedSpec::from_text(
            "name: s\npip_secret_mounts:\n  - [env:IMAGESPEC_TEST_SURELY_UNSET_VAR, /run/secrets/a]\n",
            None,
            dir.path(),
        )
        .expect("spec");
        let request = |secrets| imagespec_core::build::BuildRequest {
            image: imagespec_core::resolve_image(&spec).expect("name"),
            spec: spec.clone(),
            base_image: None,
            push: false,
            events: EventSink::discard(),
            cancel: Default::default(),
            secrets,
        };
        let supplied = SecretValues::Supplied(std::sync::Arc::new(
            [(
                "pip_secret_0".to_string(),
                SecretBytes::new(b"from-client".to_vec()),
            )]
            .into(),
        ));
        let loaded = load_secrets(&request(supplied)).expect("supplied");
        assert_eq!(loaded[0].value.expose(), b"from-client");
        let e = load_secrets(&request(SecretValues::Supplied(Default::default())))
            .expect_err("not supplied");
        assert!(e.message.contains("pip_secret_0"), "{e}");
        let e = load_secrets(&request(SecretValues::FromSources)).expect_err("unset here");
        assert!(e.message.contains("IMAGESPEC_TEST_SURELY_UNSET_VAR"), "{e}");
    }

    #[test]
    fn the_store_race_is_recognised_at_any_step() {
        let e = |m: &str| BuildError::new(BuildErrorKind::StepFailed, m);
        // Before the first step (the cache lookup) and at a later `COPY --from` step.
        assert!(is_podman_store_race(&e(
            "checking if cached image exists from a previous build: image not known"
        )));
        assert!(is_podman_store_race(&e(
            "step 4 `COPY --from=localhost/imagespec/uv:latest /uv /bin/uv`: layer not known"
        )));
        // A missing image outside the cache lookup is not a race.
        assert!(!is_podman_store_race(&e(
            "COPY --from=localhost/nope: image not known"
        )));
    }

    #[test]
    fn each_reader_starts_at_the_beginning_on_its_own_offset() {
        use std::io::Read;
        let mut f = tempfile::tempfile().expect("tempfile");
        std::io::Write::write_all(&mut f, b"0123456789").expect("write");
        let mut a = rewound(&f).expect("a");
        let mut first = [0u8; 4];
        a.read_exact(&mut first).expect("read a");
        let mut b = rewound(&f).expect("b");
        let mut all = Vec::new();
        b.read_to_end(&mut all).expect("read b");
        assert_eq!(all, b"0123456789");
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).expect("rest of a");
        assert_eq!(
            rest, b"456789",
            "a second reader moved the first one's offset"
        );
    }
}
