//! The spec: model, spec files, normalisation and validation.

pub mod confine;
pub mod decode;
pub mod diagnostic;
pub mod fluent;
pub mod loaded;
pub mod model;
pub mod normalize;
pub mod requirements;
pub mod source;
pub mod validate;

pub use decode::{Decoded, FieldLocations, decode_spec};
pub use diagnostic::{Diagnostic, DiagnosticKind, Location, SpecError};
pub use loaded::LoadedSpec;
pub use model::{
    BaseImage, DEFAULT_NAME, DEFAULT_PLATFORM, ImageSpec, SecretMount, SourceCopyMode, SpecField,
};
pub use normalize::normalize;
pub use requirements::RequirementsKind;
pub use source::{MAX_SPEC_FILE_BYTES, read_text_file};
