//! Image references: `[registry/]repository[:tag][@digest]`, parsed the way Docker does.
//!
//! Docker's rules are followed (rather than a looser "split on `/` and `:`") because the same
//! string is later handed to `docker build -t` / `podman push`: if we accepted a name the engine
//! rejects, or put it in a different registry than the engine would, the existence check would
//! ask about a different image than the one that gets built.

use std::fmt;
use std::str::FromStr;

use crate::error::{ReferenceError, ReferenceErrorKind};

/// The registry a reference without a host refers to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The host Docker Hub's registry API is actually served from.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A fully-qualified image reference.
///
/// Construct it with [`ImageReference::parse`] (or `str::parse`), which validates and
/// normalises: `ubuntu` becomes `docker.io/library/ubuntu`, `index.docker.io/x/y` becomes
/// `docker.io/x/y`, and the registry host is lower-cased. The fields are public for reading;
/// code that builds one by hand is responsible for keeping them valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// Registry host with optional port, e.g. `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path within the registry, e.g. `library/ubuntu`, `org/app`.
    pub repository: String,
    /// The tag, when one was given (no implicit `latest`: see [`Self::manifest_reference`]).
    pub tag: Option<String>,
    /// The digest, e.g. `sha256:…`, when one was given.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses and normalises a reference; errors say what is wrong and how to fix it.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        parse(input).map_err(|kind| ReferenceError {
            input: mask_credentials(input),
            kind,
        })
    }

    /// What to ask the registry for: the digest if pinned, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host serving the registry API (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// Whether this image lives on Docker Hub.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DEFAULT_REGISTRY
    }

    /// The same repository with another tag (any digest is dropped, as it named other content).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        check_tag(tag).map_err(|kind| ReferenceError {
            input: format!("{}:{tag}", self.name()),
            kind,
        })?;
        Ok(Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a digest (the tag is kept for readability).
    pub fn with_digest(&self, digest: &str) -> Result<Self, ReferenceError> {
        check_digest(digest).map_err(|kind| ReferenceError {
            input: format!("{}@{digest}", self.name()),
            kind,
        })?;
        Ok(Self {
            digest: Some(digest.to_string()),
            ..self.clone()
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker prints: `ubuntu:22.04` rather than `docker.io/library/ubuntu:22.04`.
    pub fn familiar(&self) -> String {
        let full = self.to_string();
        let Some(rest) = full.strip_prefix("docker.io/") else {
            return full;
        };
        let official = self
            .repository
            .strip_prefix("library/")
            .is_some_and(|r| !r.contains('/'));
        match rest.strip_prefix("library/") {
            Some(short) if official => short.to_string(),
            _ => rest.to_string(),
        }
    }
}

impl fmt::Display for ImageReference {
    /// The canonical form: `registry/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn parse(input: &str) -> Result<ImageReference, ReferenceErrorKind> {
    if input.is_empty() {
        return Err(ReferenceErrorKind::Empty);
    }
    if let Some((first, _)) = input.split_once('/')
        && first.contains('@')
    {
        return Err(ReferenceErrorKind::CredentialsInReference);
    }
    if input.len() == 64
        && input
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(ReferenceErrorKind::ImageId);
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (input, None),
    };
    // A `:` after the last `/` starts the tag; one before it is a registry port.
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(ReferenceErrorKind::InvalidRepository {
            component: String::new(),
        });
    }
    if name.len() > NAME_MAX {
        return Err(ReferenceErrorKind::TooLong { len: name.len() });
    }
    let (registry, repository) = split_registry(name);
    check_registry(registry)?;
    let registry = normalise_registry(registry);
    let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_string()
    };
    check_repository(&repository, input, name)?;
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    Ok(ImageReference {
        registry,
        repository,
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// Docker's rule: the first component is a host only if it looks like one (`.`/`:`/localhost),
/// so `myorg/app` is a Docker Hub repository and `registry.local/app` is not.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

/// Docker Hub has three names; credentials and messages should see one.
pub(crate) fn normalise_registry(registry: &str) -> String {
    let lower = registry.to_ascii_lowercase();
    match lower.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_string(),
        _ => lower,
    }
}

/// The host grammar is shared with spec validation, so a registry the spec accepts is one the
/// client can parse, and the other way round.
pub(crate) fn is_valid_registry(host: &str) -> bool {
    imagespec_core::reference::is_registry_host(host)
}

fn check_registry(registry: &str) -> Result<(), ReferenceErrorKind> {
    if is_valid_registry(registry) {
        Ok(())
    } else {
        Err(ReferenceErrorKind::InvalidRegistry {
            registry: registry.to_string(),
        })
    }
}

fn check_repository(repository: &str, input: &str, name: &str) -> Result<(), ReferenceErrorKind> {
    if repository.bytes().any(|c| c.is_ascii_uppercase()) {
        let suggestion = format!("{}{}", name.to_ascii_lowercase(), &input[name.len()..]);
        return Err(ReferenceErrorKind::Uppercase { suggestion });
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(ReferenceErrorKind::EmptyComponent);
        }
        if !is_path_component(component) {
            return Err(ReferenceErrorKind::InvalidRepository {
                component: component.to_string(),
            });
        }
    }
    Ok(())
}

use imagespec_core::reference::{is_path_component, is_tag as is_valid_tag};

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

pub(crate) fn check_tag(tag: &str) -> Result<(), ReferenceErrorKind> {
    if is_valid_tag(tag) {
        return Ok(());
    }
    // Suggest the nearest valid tag: `1.0+cu121` -> `1.0-cu121` is the common case.
    let fixed: String = tag
        .chars()
        .map(|c| if is_tag_char(c) { c } else { '-' })
        .collect::<String>()
        .trim_start_matches(['.', '-'])
        .chars()
        .take(TAG_MAX)
        .collect();
    let hint = if is_valid_tag(&fixed) {
        format!("; did you mean `{fixed}`?")
    } else {
        String::new()
    };
    Err(ReferenceErrorKind::InvalidTag {
        tag: tag.to_string(),
        hint,
    })
}

pub(crate) fn check_digest(digest: &str) -> Result<(), ReferenceErrorKind> {
    let hex_len = match digest.split_once(':') {
        Some(("sha256", hex)) => (hex, 64),
        Some(("sha512", hex)) => (hex, 128),
        _ => ("", 0),
    };
    let (hex, len) = hex_len;
    if len > 0 && hex.len() == len && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ReferenceErrorKind::InvalidDigest {
            digest: digest.to_string(),
        })
    }
}

/// Masks `user:password@` in the input so an error message cannot leak it.
fn mask_credentials(input: &str) -> String {
    match input.split_once('/') {
        Some((first, rest)) if first.contains('@') => {
            let host = first.rsplit('@').next().unwrap_or_default();
            format!("***@{host}/{rest}")
        }
        _ => input.to_string(),
    }
}
