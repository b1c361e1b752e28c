//! A small OCI Distribution client for what imagespec needs, and nothing more.
//!
//! imagespec builds an image only when it is missing from its registry, so the one question
//! this crate must answer well is "does this image exist?" — and it must never answer "yes"
//! when it does not know. That is why [`RegistryClient::check`] returns a tri-state
//! [`Existence`]: a registry that is down, rate-limits us, or rejects our credentials gives
//! [`Existence::Unknown`] with a reason a person can act on, never a silent "exists".
//!
//! The pieces, each in its own module:
//! - [`ImageReference`]: parse `[registry/]repository[:tag][@digest]` like Docker does.
//! - [`CredentialSources`] / [`Credential`]: find credentials in Docker's `config.json`,
//!   credential helpers, Podman's `auth.json` or an explicit file, without ever printing them.
//! - [`RegistryClient`]: HEAD/GET manifests with token or Basic auth, bounded retries, and
//!   [`Platform`] checks; plus a minimal [`RegistryClient::push_blob`] /
//!   [`RegistryClient::put_manifest`] so an image can be put into a registry without an engine.

mod auth;
mod body;
mod client;
mod credentials;
mod endpoint;
mod error;
mod existence;
mod helper;
mod index;
pub mod manifest;
mod platform;
mod push;
mod reference;
mod retry;
mod transport;

pub use client::{RegistryClient, RegistryClientBuilder};
pub use credentials::{
    Credential, CredentialOrigin, CredentialSources, ResolvedCredential, Secret,
};
pub use error::{
    CredentialError, PlatformError, ReferenceError, ReferenceErrorKind, RegistryError,
};
pub use existence::{Existence, MissingReason};
pub use manifest::Manifest;
pub use platform::Platform;
pub use reference::{DEFAULT_REGISTRY, ImageReference};
pub use retry::RetryPolicy;
