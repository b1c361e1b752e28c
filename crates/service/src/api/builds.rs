//! `POST /v1/builds`, `GET /v1/builds/{id}`, `POST /v1/builds/{id}/cancel`.
//!
//! A submission is checked completely before it is queued, so a bad request fails at once with
//! a problem that says what to fix: every blob present, the workspace laid out, the spec valid
//! there, and the name the service computes from it equal to the client's target (client and
//! service must agree on what the content is), the platforms the spec's. The spec is planned
//! through the core engine for the workers ([`crate::planning`]): its capability checks, the
//! builder's `preflight`, its base image and its existence check are the engine's; the plan is
//! held for the run ([`crate::held`]), so the files are hashed once.
//!
//! Build secrets arrive in the request (`secrets`) and are taken out of it before anything is
//! stored: the row keeps the request without them, and they are held in memory for the run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use imagespec_core::build::{EngineError, Planned, SecretBytes};
use imagespec_core::plan::BuildPlan;
use imagespec_core::resolve_image;
use imagespec_core::spec::LoadedSpec;
use imagespec_core::spec::confine::{ConfineError, HostPath, confine, host_paths};
use imagespec_protocol::{BuildState, SubmitBuild, WireEvent, is_blob_digest};
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use crate::auth::Project;
use crate::held::Held;
use crate::ids::{is_id, new_id, now};
use crate::naming::{self, Scope};
use crate::scheduler::Cancelled;
use crate::state::Shared;
use crate::store::BuildRow;
use crate::workspace;

/// Decodes a JSON body, turning every failure into a problem.
pub fn parse_json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Request too large",
                e.body_text(),
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

pub async fn submit(
    State(shared): State<Arc<Shared>>,
    Extension(project): Extension<Project>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut request: SubmitBuild = parse_json(body)?;
    // Out of the request before anything is stored or logged: the row keeps the rest.
    let secrets = Arc::new(std::mem::take(&mut request.secrets));
    let project = project.0;
    if !secrets.is_empty() && !shared.config.accepts_secrets() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insecure-secrets",
            "Secrets over a plain connection",
            format!(
                "this service listens on {} without TLS, so build secrets may have crossed the network unencrypted and are refused; the operator puts TLS in front and sets `tls_terminated: true`",
                shared.config.listen
            ),
        ));
    }
    if request.files.len() > shared.config.limits.max_files {
        return Err(ApiError::bad_request(format!(
            "a build may reference at most {} files",
            shared.config.limits.max_files
        )));
    }
    for (path, file) in &request.files {
        workspace::check_path(path).map_err(|e| ApiError::bad_request(e.to_string()))?;
        workspace::check_link(path, file).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if !is_blob_digest(&file.digest) {
            return Err(ApiError::bad_request(format!(
                "`{path}`: `{}` is not a sha256:<hex> digest",
                file.digest
            )));
        }
    }
    if !request.spec.is_object() {
        return Err(ApiError::bad_request("`spec` must be an ImageSpec object"));
    }
    let target = naming::parse(&request.target).ok_or_else(|| {
        ApiError::bad_request(format!(
            "`target` `{}` is not an image name (name:tag)",
            request.target
        ))
    })?;
    let scope = Scope::of(&shared.config, &project);
    let image = scope.qualify(&target).ok_or_else(|| {
        ApiError::unprocessable(
            "no-registry",
            "No registry",
            "this service has no registry of its own; put a `registry` in the spec",
        )
    })?;
    if !scope.may_write(&image) {
        return Err(outside_scope(&image.to_string()));
    }
    let image = image.to_string();
    if let Some(active) = shared.store.active_for(&project, &image).await? {
        return Ok(accepted(&active));
    }
    let mut missing = Vec::new();
    for digest in request
        .files
        .values()
        .filter(|f| f.symlink.is_none())
        .map(|f| &f.digest)
        .collect::<BTreeSet<_>>()
    {
        if !shared.blobs.has(&project, digest).await {
            missing.push(digest.clone());
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing-blobs",
            "Missing blobs",
            format!(
                "{} referenced file(s) were not uploaded; PUT them to /v1/blobs/{{digest}} first",
                missing.len()
            ),
        )
        .with_missing(missing));
    }
    let id = new_id();
    let dir = shared.workspace(&id);
    let checked = prepare(&shared, &scope, &project, &request, &secrets, &dir).await;
    let (planned, workers) = match checked {
        Ok(placed) => placed,
        Err(e) => {
            workspace::remove(&dir);
            return Err(e);
        }
    };
    // The planned name must be the one the scope was checked for: one rule for both.
    if planned.resolved.name.to_string() != image {
        workspace::remove(&dir);
        return Err(ApiError::internal(format!(
            "the engine planned {} for {image}",
            planned.resolved.name
        )));
    }
    if !request.force {
        match crate::planning::exists(&planned, &scope).await {
            Ok(true) => {
                workspace::remove(&dir);
                return finished_at_once(&shared, &project, &id, &request, &image).await;
            }
            Ok(false) => {}
            Err(e) => {
                workspace::remove(&dir);
                return Err(engine_problem(e));
            }
        }
    }
    let row = new_row(&id, &project, &request, &image, BuildState::Queued)?;
    {
        let _guard = shared.submit_lock.lock().await;
        if let Some(active) = shared.store.active_for(&project, &image).await? {
            workspace::remove(&dir);
            return Ok(accepted(&active));
        }
        shared.store.insert(row.clone()).await?;
        shared.queue(
            &project,
            &id,
            Held {
                planned,
                secrets,
                workers,
            },
        );
    }
    tracing::info!(build = %id, %project, %image, "build queued");
    Ok(accepted(&row))
}

/// Lays out the workspace, checks the spec and its name there, and plans it for the workers.
async fn prepare(
    shared: &Arc<Shared>,
    scope: &Scope,
    project: &str,
    request: &SubmitBuild,
    secrets: &BTreeMap<String, SecretBytes>,
    dir: &std::path::Path,
) -> Result<(Planned, Vec<usize>), ApiError> {
    let (s, p, files, d) = (
        shared.clone(),
        project.to_string(),
        request.files.clone(),
        dir.to_path_buf(),
    );
    tokio::task::spawn_blocking(move || crate::workspace::materialise(&s.blobs, &p, &files, &d))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            workspace::WorkspaceError::Io(e) => ApiError::internal(e),
            e => ApiError::bad_request(e.to_string()),
        })?;
    let text = request.spec.to_string();
    confine_paths(&text, dir)?;
    let loaded = load(request, dir)?;
    // The one time the files are hashed for this build: the plan keeps the result.
    let resolved = resolve_image(&loaded)
        .map_err(|e| ApiError::unprocessable("invalid-spec", "Invalid spec", e.to_string()))?;
    if resolved.name.to_string() != request.target {
        // The name the service computed is not told: it would let a client fish for the names
        // of content it does not have.
        return Err(ApiError::unprocessable(
            "tag-mismatch",
            "Image name mismatch",
            format!(
                "the uploaded files and spec do not make `{}`; the client and the service disagree on the content (a file changed during the upload, or different imagespec versions)",
                request.target
            ),
        ));
    }
    let (planned, accepting) = crate::planning::plan(&shared.workers, scope, &loaded, &resolved)
        .map_err(engine_problem)?;
    check_pulls(scope, &planned, request.base_image.as_deref())?;
    check_caches(scope, &planned.spec.spec)?;
    let platforms: BTreeSet<&str> = loaded.spec.platforms().into_iter().collect();
    if !request.platforms.is_empty()
        && request
            .platforms
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
            != platforms
    {
        return Err(ApiError::unprocessable(
            "platform-mismatch",
            "Platform mismatch",
            format!(
                "`platforms` {:?} differ from the spec's {:?}",
                request.platforms,
                platforms.iter().collect::<Vec<_>>()
            ),
        ));
    }
    check_secrets(&planned.spec, secrets)?;
    // The workers that build the spec's platforms (a client checks `/v1/capabilities` before
    // its upload; a client of the raw API may not have).
    let workers = super::capabilities::building(&shared.workers, &accepting, &platforms).await;
    if workers.is_empty() {
        let known = super::capabilities::known_platforms(&shared.workers)
            .await
            .unwrap_or_default();
        let missing: Vec<&str> = platforms
            .iter()
            .copied()
            .filter(|p| !known.iter().any(|k| k == p))
            .collect();
        let detail = if missing.is_empty() {
            format!(
                "no worker of the service builds all of {}; build them in separate specs, or ask the operator for a worker that builds them all",
                platforms.iter().copied().collect::<Vec<_>>().join(", ")
            )
        } else {
            format!(
                "the service's workers cannot build {} (they build {}); drop it from `platform` or ask the operator for a worker that builds it",
                missing.join(", "),
                known.join(", ")
            )
        };
        return Err(ApiError::unprocessable(
            "unsupported",
            "Unsupported",
            detail,
        ));
    }
    Ok((planned, workers))
}

/// The submitted spec loaded in its workspace, with the runtime the client planned with.
pub(crate) fn load(request: &SubmitBuild, dir: &std::path::Path) -> Result<LoadedSpec, ApiError> {
    let loaded = LoadedSpec::from_text(&request.spec.to_string(), None, dir).map_err(|e| {
        let summary = e
            .to_string()
            .lines()
            .next()
            .unwrap_or("invalid spec")
            .to_string();
        ApiError::unprocessable("invalid-spec", "Invalid spec", summary)
            .with_errors(e.diagnostics.iter().map(|d| d.to_string()).collect())
    })?;
    let runtime = submitted_runtime(request)
        .map_err(|e| ApiError::unprocessable("invalid-spec", "Invalid spec", e))?;
    Ok(loaded
        .with_runtime(runtime)
        .with_relocated_dir(imagespec_core::inputs::RELOCATED_DIR))
}

/// The engine's refusal as a problem, in the engine's words.
pub(crate) fn engine_problem(e: EngineError) -> ApiError {
    let detail = e.to_string();
    match e {
        EngineError::Hash(_) => ApiError::unprocessable("invalid-spec", "Invalid spec", detail),
        EngineError::Unconfigured { .. } | EngineError::Unavailable { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "No worker available",
            detail,
        ),
        EngineError::Denied { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "registry-denied",
            "Registry refused the service",
            detail,
        ),
        EngineError::NetworkTimeout(_) | EngineError::Build { .. } => ApiError::internal(detail),
        _ => ApiError::unprocessable("unsupported", "Unsupported", detail),
    }
}

/// Every secret the spec mounts has its value in the request, and no value is for a secret it
/// does not mount (a value nobody asked for is refused, not silently dropped).
fn check_secrets(
    spec: &LoadedSpec,
    secrets: &BTreeMap<String, SecretBytes>,
) -> Result<(), ApiError> {
    let wanted = imagespec_core::plan::secrets::from_spec(spec)
        .map_err(|e| ApiError::unprocessable("invalid-spec", "Invalid spec", e.to_string()))?;
    let refused = |detail: String| ApiError::unprocessable("secrets", "Build secrets", detail);
    for (i, s) in wanted.iter().enumerate() {
        if !secrets.contains_key(&s.id) {
            return Err(refused(format!(
                "`pip_secret_mounts[{i}]` has no value in `secrets.{}`; the client sends each secret's value with the build",
                s.id
            )));
        }
    }
    if let Some(extra) = secrets.keys().find(|k| !wanted.iter().any(|s| &s.id == *k)) {
        return Err(refused(format!(
            "`secrets.{extra}` is not a secret the spec mounts ({} in `pip_secret_mounts`); send only the mounted ones",
            wanted.len()
        )));
    }
    Ok(())
}

/// Every host path of the spec must stay inside the build's own upload, checked before the spec
/// is loaded (loading looks at the files): the rule is core's [`confine`].
fn confine_paths(text: &str, dir: &std::path::Path) -> Result<(), ApiError> {
    let mut spec = imagespec_core::spec::decode_spec(text, None).spec;
    imagespec_core::spec::normalize(&mut spec);
    if let Some(HostPath { field, .. }) = host_paths(&spec)
        .into_iter()
        .find(|h| h.field.ends_with("registry_config"))
    {
        return Err(ApiError::unprocessable(
            "invalid-spec",
            "Invalid spec",
            format!(
                "`{field}`: the build service pushes with its own credentials; remove `registry_config` from a remote build"
            ),
        ));
    }
    confine(&spec, dir).map_err(|e| match e {
        ConfineError::Io { .. } => ApiError::internal(e),
        e => ApiError::unprocessable(
            "path-outside-upload",
            "Path outside the upload",
            e.to_string(),
        ),
    })
}

/// The base image the client names must be the one the plan derives (a base spec's image in
/// the project's namespace, or the spec's reference), and every image the build pulls must be
/// the project's own or on the operator's `base_images` list.
fn check_pulls(scope: &Scope, planned: &Planned, sent: Option<&str>) -> Result<(), ApiError> {
    let base = planned.base_image.clone();
    if sent.is_some() && sent != base.as_deref() {
        return Err(ApiError::unprocessable(
            "base-mismatch",
            "Base image mismatch",
            format!(
                "`base_image` `{}` is not the spec's base ({}); the image name must describe what the image is built from",
                sent.unwrap_or_default(),
                base.as_deref().unwrap_or("the default base")
            ),
        ));
    }
    let plan = BuildPlan::new(&planned.spec, &planned.resolved, base.as_deref())
        .map_err(|e| ApiError::unprocessable("invalid-spec", "Invalid spec", e.to_string()))?;
    if let Some(image) = plan
        .pulled_images()
        .into_iter()
        .find(|i| !scope.may_pull(i))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "base-not-allowed",
            "Base image not allowed",
            format!(
                "the build would pull `{image}`, which is neither this project's image nor on the service's `base_images` list; ask the operator to allow it"
            ),
        ));
    }
    Ok(())
}

/// The spec's registry cache (`builder_options.cache_to` / `cache_from`) stays within the
/// project's scope: the worker exports and imports it with the service's engine, so a cache
/// elsewhere would be a push (or a read) anywhere the service's credentials reach. An inline
/// cache rides in the pushed image, which is checked already.
fn check_caches(scope: &Scope, spec: &imagespec_core::spec::ImageSpec) -> Result<(), ApiError> {
    use imagespec_core::build::{BuildCache, CacheRef};
    let cache =
        BuildCache::from_builder_options(&spec.builder_options).map_err(|(key, problem)| {
            ApiError::unprocessable(
                "invalid-spec",
                "Invalid spec",
                format!("`builder_options.{key}`: {problem}"),
            )
        })?;
    let registry = |c: &CacheRef| match c {
        CacheRef::Registry { reference, .. } => Some(reference.clone()),
        CacheRef::Inline => None,
    };
    let exports = cache
        .to
        .iter()
        .filter_map(registry)
        .map(|r| ("cache_to", r));
    let imports = cache
        .from
        .iter()
        .filter_map(registry)
        .map(|r| ("cache_from", r));
    for (key, reference) in exports.chain(imports) {
        let name = naming::cache_name(&reference);
        let allowed = match (&name, key) {
            (Some(n), "cache_to") => scope.may_write(n),
            (Some(n), _) => scope.may_pull(&n.to_string()),
            (None, _) => false,
        };
        if !allowed {
            let hint = match (&name, scope.namespace.as_deref()) {
                (Some(n), _) if n.registry.is_some() => String::new(),
                (_, Some(ns)) => format!(" (write a full reference such as `{ns}/cache:TAG`)"),
                (_, None) => " (write a full reference, with its registry)".to_string(),
            };
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cache-not-allowed",
                "Build cache outside the project's registries",
                format!(
                    "`builder_options.{key}` names `{reference}`, which is not in this project's namespace of the service's registry nor in a registry the operator allowed it{hint}"
                ),
            ));
        }
    }
    Ok(())
}

/// A name outside what the project may push to or read.
pub(crate) fn outside_scope(image: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "outside-scope",
        "Outside the project's registries",
        format!(
            "`{image}` is neither in this project's namespace of the service's registry nor in a registry the operator allowed it; drop `registry` from the spec to use the project's namespace"
        ),
    )
}

async fn finished_at_once(
    shared: &Shared,
    project: &str,
    id: &str,
    request: &SubmitBuild,
    image: &str,
) -> Result<Response, ApiError> {
    let mut row = new_row(id, project, request, image, BuildState::Succeeded)?;
    shared.store.insert(row.clone()).await?;
    shared
        .store
        .append_events(
            id,
            0,
            vec![WireEvent::Status {
                message: format!(
                    "{image} already exists; nothing to build (send `force` to rebuild)"
                ),
            }],
        )
        .await?;
    shared
        .store
        .finish(id, BuildState::Succeeded, None, None, now())
        .await?;
    row.events = 1;
    row.finished_at = Some(now());
    // Its own state in the metrics: a hit, not a build.
    shared.metrics.finished(project, id, "exists", None);
    Ok((StatusCode::OK, axum::Json(row.info())).into_response())
}

fn new_row(
    id: &str,
    project: &str,
    request: &SubmitBuild,
    image: &str,
    status: BuildState,
) -> Result<BuildRow, ApiError> {
    Ok(BuildRow {
        id: id.to_string(),
        project: project.to_string(),
        target: request.target.clone(),
        image: image.to_string(),
        status,
        request: serde_json::to_string(request).map_err(ApiError::internal)?,
        worker: None,
        digest: None,
        error: None,
        events: 0,
        created_at: now(),
        started_at: None,
        finished_at: None,
    })
}

fn accepted(row: &BuildRow) -> Response {
    let mut response = (StatusCode::ACCEPTED, axum::Json(row.info())).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/builds/{}", row.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A build of the caller's project; another project's build is "not found".
pub async fn find(shared: &Shared, project: &Project, id: &str) -> Result<BuildRow, ApiError> {
    let not_found = || ApiError::not_found(format!("no build `{id}`"));
    if !is_id(id) {
        return Err(not_found());
    }
    shared
        .store
        .get(id, Some(&project.0))
        .await?
        .ok_or_else(not_found)
}

pub async fn status(
    State(shared): State<Arc<Shared>>,
    Extension(project): Extension<Project>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = find(&shared, &project, &id).await?;
    Ok(axum::Json(row.info()).into_response())
}

pub async fn cancel(
    State(shared): State<Arc<Shared>>,
    Extension(project): Extension<Project>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = find(&shared, &project, &id).await?;
    match shared.scheduler.cancel(&id) {
        Cancelled::Dequeued => {
            let error = imagespec_protocol::WireBuildError {
                kind: imagespec_protocol::ErrorKind::Cancelled,
                message: "cancelled before it started".into(),
                step: None,
                log_tail: Vec::new(),
            };
            shared
                .store
                .finish(&id, BuildState::Cancelled, None, Some(error), now())
                .await?;
            // Its plan and secrets go with it.
            drop(shared.held.take(&id));
            workspace::remove(&shared.workspace(&id));
            shared.hub.bump(&id);
            shared
                .metrics
                .finished(&project.0, &id, BuildState::Cancelled.as_str(), None);
        }
        Cancelled::Signalled => {}
        Cancelled::NotActive if row.status.is_terminal() => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "finished",
                "Build already finished",
                format!("build `{id}` already {}", row.status.as_str()),
            ));
        }
        Cancelled::NotActive => {}
    }
    let row = find(&shared, &project, &id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(row.info())).into_response())
}

/// The Flyte runtime a submission asks for (`union_version`, else `flytekit_version`; both
/// absent: the pinned flytekit).
pub(crate) fn submitted_runtime(
    request: &SubmitBuild,
) -> Result<imagespec_core::plan::runtime::Runtime, String> {
    if let Some(value) = &request.union_version {
        return imagespec_core::plan::runtime::Runtime::parse_union(value)
            .map_err(|e| format!("`union_version`: {e}"));
    }
    match &request.flytekit_version {
        Some(value) => imagespec_core::plan::runtime::Runtime::parse(value)
            .map_err(|e| format!("`flytekit_version`: {e}")),
        None => Ok(Default::default()),
    }
}
