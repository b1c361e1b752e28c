//! Error types. Each names the problem and, where there is one, the fix; none ever carries a
//! secret, because these messages end up in terminal output, CI logs and issue reports.
//!
//! Rule kept throughout: a message may name a file, a host, a helper program or a username, but
//! never a password, token or the raw content of a credentials file (so JSON parse errors keep
//! only the line and column, not serde's message, which can quote the offending value).

use std::path::PathBuf;

/// An image reference string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{input}`: {kind}")]
pub struct ReferenceError {
    /// The input, with any `user:password@` part masked.
    pub input: String,
    pub kind: ReferenceErrorKind,
}

/// What is wrong with an image reference; the message of each ends with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceErrorKind {
    #[error("it is empty; write e.g. `ghcr.io/org/app:1.0`")]
    Empty,
    #[error("the name is {len} characters long, the limit is 255; use a shorter repository path")]
    TooLong { len: usize },
    #[error("repository names must be lowercase; did you mean `{suggestion}`?")]
    Uppercase { suggestion: String },
    #[error(
        "`{component}` is not a valid repository path component: use lowercase letters and \
         digits, separated by `.`, `_`, `__` or `-` (not at the start or end)"
    )]
    InvalidRepository { component: String },
    #[error("the repository path has an empty component (`//`, or a `/` at the start or end)")]
    EmptyComponent,
    #[error(
        "`{registry}` is not a valid registry host: use a DNS name or IP address with an \
         optional `:port`, e.g. `registry.example.com:5000`"
    )]
    InvalidRegistry { registry: String },
    #[error(
        "the registry part contains credentials (`user:password@`); remove them and put them \
         in a Docker config.json (`registry_config`) instead"
    )]
    CredentialsInReference,
    #[error(
        "`{tag}` is not a valid tag: use at most 128 letters, digits, `_`, `.` and `-`, not \
         starting with `.` or `-`{hint}"
    )]
    InvalidTag { tag: String, hint: String },
    #[error(
        "`{digest}` is not a valid digest: expected `sha256:` followed by 64 lowercase hex \
         digits"
    )]
    InvalidDigest { digest: String },
    #[error(
        "a 64-character hex string is an image ID, not a repository name; use the image's \
         name, or `name@sha256:<hex>` to pin a digest"
    )]
    ImageId,
}

impl ReferenceErrorKind {
    /// The corrected reference when there is an obvious one (e.g. the lower-cased name).
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            ReferenceErrorKind::Uppercase { suggestion } => Some(suggestion),
            _ => None,
        }
    }
}

/// A platform string such as `linux/arm64/v8` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid platform `{input}`: {reason}; write `os/architecture[/variant]`, e.g. `linux/amd64` or `linux/arm64/v8`"
)]
pub struct PlatformError {
    pub input: String,
    pub reason: &'static str,
}

/// Credentials could not be read. Never contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    #[error("cannot read registry credentials file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "registry credentials file `{}` is not valid Docker config JSON ({problem} at line {line}, column {column})",
        path.display()
    )]
    Parse {
        path: PathBuf,
        /// serde_json's category (`syntax`, `data`, `eof`), never its message, which can quote
        /// the offending value.
        problem: &'static str,
        line: usize,
        column: usize,
    },
    #[error("entry `{key}` in `{}`: {problem}", path.display())]
    InvalidEntry {
        path: PathBuf,
        key: String,
        problem: &'static str,
    },
    #[error(
        "credential helper `{program}` (configured in `{}`) was not found on PATH; install it or remove it from the file",
        config.display()
    )]
    HelperNotFound { program: String, config: PathBuf },
    #[error("credential helper name `{name}` in `{}` is invalid: it must be a plain name like `pass`", config.display())]
    HelperName { name: String, config: PathBuf },
    #[error("credential helper `{program}` failed for {server}: {message}")]
    HelperFailed {
        program: String,
        server: String,
        /// The helper's first output line, truncated.
        message: String,
    },
    #[error(
        "credential helper `{program}` returned unreadable output for {server} (expected JSON with `Username` and `Secret`)"
    )]
    HelperOutput { program: String, server: String },
    #[error("credential helper `{program}` did not answer within {seconds}s for {server}")]
    HelperTimeout {
        program: String,
        server: String,
        seconds: u64,
    },
}

/// A registry operation failed. The `Display` text is what [`crate::Existence::Unknown`]
/// carries as its reason, so each variant says what happened and on which registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("could not reach {registry} after {attempts} attempt(s): {reason}")]
    Unreachable {
        registry: String,
        attempts: u32,
        reason: String,
    },
    #[error(
        "{operation} on {registry}: no answer within {}, {attempts} attempt(s); check that the registry is up, or raise {} for a slow one",
        imagespec_core::net::seconds(*limit),
        imagespec_core::net::TIMEOUT_ENV
    )]
    TimedOut {
        registry: String,
        /// What was being done, e.g. `checking manifest team/app:v1`.
        operation: String,
        limit: std::time::Duration,
        attempts: u32,
    },
    #[error("{registry} kept answering {status} to {what} after {attempts} attempt(s)")]
    ServerError {
        registry: String,
        status: u16,
        what: String,
        attempts: u32,
    },
    #[error(
        "{registry} requires authentication for `{repository}` and no credentials were found \
         for it (searched: {searched}); log in with `docker login {registry}` or set \
         `registry_config`"
    )]
    AuthRequired {
        registry: String,
        repository: String,
        searched: String,
    },
    #[error("credentials for {registry} (from {origin}) were rejected")]
    AuthRejected { registry: String, origin: String },
    #[error(
        "{registry} denied access to `{repository}` ({action}) with the credentials from {origin}"
    )]
    Denied {
        registry: String,
        repository: String,
        action: &'static str,
        origin: String,
    },
    #[error("token request to {realm} for {registry} failed: {reason}")]
    Token {
        registry: String,
        realm: String,
        reason: String,
    },
    #[error("{registry} sent an authentication challenge that cannot be used: {reason}")]
    Challenge { registry: String, reason: String },
    #[error(
        "refusing to send credentials for {registry} over plain HTTP to {url}; use HTTPS or list \
         the registry as insecure"
    )]
    PlainHttpCredentials { registry: String, url: String },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("{what} not found on {registry}")]
    NotFound {
        registry: String,
        what: String,
        /// The registry's error code, e.g. `MANIFEST_UNKNOWN`, when it sent one.
        code: Option<String>,
    },
    #[error("{registry} answered {status} to {what}: {message}")]
    UnexpectedStatus {
        registry: String,
        status: u16,
        what: String,
        message: String,
    },
    #[error("{what} from {registry} is invalid: {reason}")]
    InvalidResponse {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("{what} from {registry} has digest {actual}, expected {expected}")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("cannot set up the HTTP client: {reason}")]
    Client { reason: String },
}

impl RegistryError {
    /// `true` when the thing asked for does not exist (as opposed to "could not tell").
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }

    /// `true` when the registry refused our identity, or wants one and none was found: a
    /// set-up problem, not "could not tell".
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            RegistryError::AuthRequired { .. }
                | RegistryError::AuthRejected { .. }
                | RegistryError::Denied { .. }
        )
    }

    /// `true` for a manifest PUT refused because a blob it names is not (yet) visible: a
    /// registry behind a load balancer or a concurrent push of the same blobs answers so
    /// for a moment after the blob upload succeeded.
    pub fn is_blob_unknown(&self) -> bool {
        match self {
            RegistryError::NotFound { code, .. } => {
                matches!(
                    code.as_deref(),
                    Some("BLOB_UNKNOWN" | "MANIFEST_BLOB_UNKNOWN")
                )
            }
            RegistryError::UnexpectedStatus { message, .. } => {
                message.starts_with("BLOB_UNKNOWN") || message.starts_with("MANIFEST_BLOB_UNKNOWN")
            }
            _ => false,
        }
    }
}
