//! imagespec core: the `ImageSpec` model and spec files, the content-derived image name, the
//! `ImageBuilder` trait with its registry and deployment variants, and the engine that decides
//! whether to build.

pub mod build;
pub mod check;
pub mod config;
pub mod hash;
pub mod inputs;
pub mod net;
pub mod plan;
pub mod reference;
pub mod spec;
pub mod tree;

pub use build::{Engine, EngineOptions, ImageBuilder};
pub use hash::{ImageName, ResolvedImage, resolve_image};
pub use spec::{ImageSpec, LoadedSpec, SpecError};
