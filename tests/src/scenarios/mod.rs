//! The scenarios: each an `async fn(&Backend) -> Result<()>` that builds through the engine,
//! runs the image and checks its contents. [`crate::conformance!`] makes one test of each.

pub mod base;
pub mod contents;
pub mod dependencies;
pub mod engine;
pub mod flytekit;
pub mod layers;
pub mod platforms;
pub mod secrets;

pub use base::base_spec;
pub use contents::{
    commands_in_order, copy_paths, entrypoint, env_values, root_dockerignore_and_builtin_excludes,
    source_root_filtering, symlinks,
};
pub use dependencies::{apt_packages, pip_index, requirements_txt, uv_lock};
pub use engine::{exists_skips_build, force_rebuilds, missing_registry, unsupported_platforms};
pub use flytekit::flytekit_task;
pub use layers::source_edit_rebuilds_only_source_layer;
pub use platforms::{base_without_platform, foreign_platform, several_platforms};
pub use secrets::secret_mounts;

use anyhow::{Result, ensure};

/// Compares a command's output (trimmed) with what the spec promises.
pub(crate) fn expect_output(what: &str, actual: &str, expected: &str) -> Result<()> {
    ensure!(
        actual.trim() == expected.trim(),
        "{what}: expected\n{}\nbut the image printed\n{}",
        expected.trim(),
        actual.trim()
    );
    Ok(())
}
