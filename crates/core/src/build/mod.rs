//! Builders and the engine that drives them.

pub mod builder;
pub mod cache;
pub mod engine;
mod lock;
pub mod noop;
pub mod registry;
pub mod secrets;
pub mod testing;
pub mod variant;

pub use builder::{
    BuildError, BuildErrorKind, BuildEvent, BuildOutput, BuildRequest, BuilderKind, Capabilities,
    EventSink, Existence, ExistsQuery, ImageBuilder, Located, StepReport, TransferDirection,
    step_reports,
};
pub use cache::{BuildCache, CacheRef};
pub use engine::{Action, Engine, EngineError, EngineOptions, ExistencePolicy, Outcome, Planned};
pub use noop::NoopBuilder;
pub use registry::{BuilderInfo, BuilderRegistry, UnknownBuilder, closest_builder};
pub use secrets::{SecretBytes, SecretValues};
pub use variant::{LOCAL_BUILDER, REMOTE_BUILDER, Variant, VariantSource, resolve_variant};
