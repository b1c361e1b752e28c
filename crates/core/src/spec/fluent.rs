//! The fluent API: flytekit's `with_*` methods. Each returns a new spec and leaves the receiver
//! untouched, so one spec can be the parent of several variants.

use std::collections::BTreeMap;

use super::model::{BaseImage, ImageSpec, SecretMount};

impl ImageSpec {
    fn extended(&self, f: impl FnOnce(&mut ImageSpec)) -> ImageSpec {
        let mut next = self.clone();
        f(&mut next);
        next
    }

    /// Adds Python packages.
    #[must_use]
    pub fn with_packages<I, S>(&self, packages: I) -> ImageSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extended(|s| s.packages.extend(packages.into_iter().map(Into::into)))
    }

    /// Adds apt packages.
    #[must_use]
    pub fn with_apt_packages<I, S>(&self, packages: I) -> ImageSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extended(|s| s.apt_packages.extend(packages.into_iter().map(Into::into)))
    }

    /// Adds build-time commands, run in order after the dependencies are installed.
    #[must_use]
    pub fn with_commands<I, S>(&self, commands: I) -> ImageSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extended(|s| s.commands.extend(commands.into_iter().map(Into::into)))
    }

    /// Adds files or directories (relative to the root) copied into the image.
    #[must_use]
    pub fn with_copy<I, S>(&self, paths: I) -> ImageSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extended(|s| s.copy.extend(paths.into_iter().map(Into::into)))
    }

    /// Sets environment variables (later values win).
    #[must_use]
    pub fn with_env<I, K, V>(&self, vars: I) -> ImageSpec
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.extended(|s| {
            s.env
                .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())))
        })
    }

    /// Adds packages installed when the task starts (not part of the image identity).
    #[must_use]
    pub fn with_runtime_packages<I, S>(&self, packages: I) -> ImageSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extended(|s| {
            s.runtime_packages
                .extend(packages.into_iter().map(Into::into))
        })
    }

    /// Sets builder-specific options.
    #[must_use]
    pub fn with_builder_options(&self, options: BTreeMap<String, serde_json::Value>) -> ImageSpec {
        self.extended(|s| s.builder_options.extend(options))
    }

    /// Rebuilds and pushes even if the image already exists.
    #[must_use]
    pub fn force_push(&self) -> ImageSpec {
        self.extended(|s| s.force_push = true)
    }

    /// Sets the base image to an image reference.
    #[must_use]
    pub fn with_base_image(&self, reference: impl Into<String>) -> ImageSpec {
        self.extended(|s| s.base_image = Some(BaseImage::Reference(reference.into())))
    }

    /// Sets the base image to another spec, which is built first.
    #[must_use]
    pub fn with_base_spec(&self, base: ImageSpec) -> ImageSpec {
        self.extended(|s| s.base_image = Some(BaseImage::Spec(Box::new(base))))
    }

    /// Sets the registry the image is pushed to.
    #[must_use]
    pub fn with_registry(&self, registry: impl Into<String>) -> ImageSpec {
        self.extended(|s| s.registry = Some(registry.into()))
    }

    /// Sets the requirements file (relative to the root).
    #[must_use]
    pub fn with_requirements(&self, path: impl Into<String>) -> ImageSpec {
        self.extended(|s| s.requirements = Some(path.into()))
    }

    /// Sets the Python version.
    #[must_use]
    pub fn with_python_version(&self, version: impl Into<String>) -> ImageSpec {
        self.extended(|s| s.python_version = Some(version.into()))
    }

    /// Sets the target platform(s), e.g. `linux/amd64,linux/arm64`.
    #[must_use]
    pub fn with_platform(&self, platform: impl Into<String>) -> ImageSpec {
        self.extended(|s| s.platform = platform.into())
    }

    /// Sets the source tree copied into the image.
    #[must_use]
    pub fn with_source_root(&self, path: impl Into<String>) -> ImageSpec {
        self.extended(|s| s.source_root = Some(path.into()))
    }

    /// Adds a secret mounted during the Python install step.
    #[must_use]
    pub fn with_pip_secret_mount(
        &self,
        src: impl Into<String>,
        dst: impl Into<String>,
    ) -> ImageSpec {
        self.extended(|s| {
            s.pip_secret_mounts.push(SecretMount {
                src: src.into(),
                dst: dst.into(),
            })
        })
    }

    /// Sets the entrypoint; an empty list clears the base image's entrypoint.
    #[must_use]
    pub fn with_entrypoint<I, S>(&self, entrypoint: I) -> ImageSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extended(|s| s.entrypoint = Some(entrypoint.into_iter().map(Into::into).collect()))
    }

    /// Sets the builder by name.
    #[must_use]
    pub fn with_builder(&self, builder: impl Into<String>) -> ImageSpec {
        self.extended(|s| s.builder = Some(builder.into()))
    }

    /// Sets the tag format (must contain `{spec_hash}`).
    #[must_use]
    pub fn with_tag_format(&self, format: impl Into<String>) -> ImageSpec {
        self.extended(|s| s.tag_format = Some(format.into()))
    }

    /// Sets a `builder_config` entry such as `uv_image`.
    #[must_use]
    pub fn with_builder_config(
        &self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> ImageSpec {
        self.extended(|s| {
            s.builder_config.insert(key.into(), value.into());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluent_methods_return_new_specs_and_leave_the_receiver_alone() {
        let base = ImageSpec::new("app");
        let child = base
            .with_packages(["numpy"])
            .with_apt_packages(["git"])
            .with_commands(["echo hi"])
            .with_copy(["src"])
            .with_env([("A", "1")])
            .with_runtime_packages(["rich"])
            .with_builder_options(BTreeMap::from([("k".to_string(), serde_json::json!(1))]))
            .force_push();
        assert_eq!(base, ImageSpec::new("app"));
        assert_eq!(child.packages, ["numpy"]);
        assert_eq!(child.apt_packages, ["git"]);
        assert_eq!(child.commands, ["echo hi"]);
        assert_eq!(child.copy, ["src"]);
        assert_eq!(child.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(child.runtime_packages, ["rich"]);
        assert_eq!(child.builder_options.len(), 1);
        assert!(child.force_push);
        assert!(!base.force_push);
    }

    #[test]
    fn with_packages_appends() {
        let spec = ImageSpec::new("a")
            .with_packages(["x"])
            .with_packages(["y"]);
        assert_eq!(spec.packages, ["x", "y"]);
    }
}
