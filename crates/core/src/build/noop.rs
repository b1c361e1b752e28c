//! The `noop` builder: builds nothing and uses `base_image` as the image (flytekit's `noop`).

use async_trait::async_trait;

use super::builder::{
    BuildError, BuildErrorKind, BuildOutput, BuildRequest, BuilderKind, Capabilities, Existence,
    ExistsQuery, ImageBuilder,
};
use crate::hash::ImageName;
use crate::spec::SpecField;

/// Uses `base_image` as is. Only `base_image` (and the fields that do not change an image, like
/// `name`) make sense with it; anything that would change the image is refused.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopBuilder;

#[async_trait]
impl ImageBuilder for NoopBuilder {
    fn name(&self) -> &str {
        "noop"
    }

    fn description(&self) -> &str {
        "builds nothing; the image is `base_image` as is"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            kind: BuilderKind::Passthrough,
            fields: vec![
                SpecField::Name,
                SpecField::Builder,
                SpecField::BaseImage,
                SpecField::Platform,
                SpecField::Registry,
                SpecField::RegistryConfig,
                SpecField::RuntimePackages,
                SpecField::TagFormat,
            ],
            multi_platform: true,
            push: false,
            secrets: false,
        }
    }

    async fn exists(&self, _image: &ImageName, _query: &ExistsQuery) -> Existence {
        Existence::Exists
    }

    async fn build(&self, request: BuildRequest) -> Result<BuildOutput, BuildError> {
        match request.base_image {
            Some(image) => Ok(BuildOutput {
                image,
                digest: None,
                pushed: false,
            }),
            None => Err(BuildError::new(
                BuildErrorKind::Unsupported,
                "the noop builder needs `base_image`",
            )),
        }
    }
}
