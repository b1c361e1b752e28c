//! imagespec's conformance suite: one set of scenarios, run against every [`ImageBuilder`]
//! backend (in the style of opendal's behaviour tests and object_store's `integration` module).
//!
//! Every scenario builds a spec through [`Engine::ensure`] with the backend's builder, then
//! *runs* the image and checks what it contains: a builder conforms when its images do what
//! their specs say, not when it returns `Ok`. The builder is wrapped in a [`Recorder`], so
//! scenarios can also assert what the engine did *not* ask for (no build when the image
//! exists, no work at all for bad input).
//!
//! The suite runs against three backends, one test binary each: `tests/docker.rs` (local
//! Docker with BuildKit), `tests/podman.rs` (local Podman) and `tests/remote.rs` (imagespec's
//! build service, started in the test on 127.0.0.1 with a Docker worker, through the remote
//! builder). `cargo nextest run -p imagespec-tests` runs all three; `--test remote` one.
//!
//! Adding a backend is one test file with a constructor and the [`conformance!`] macro, which
//! expands to one `#[test]` per scenario:
//!
//! ```ignore
//! // tests/my_backend.rs
//! async fn backend() -> imagespec_tests::Result<imagespec_tests::Backend> {
//!     let registry = imagespec_tests::DevRegistry::from_dev_env()?;
//!     let builder = std::sync::Arc::new(MyBuilder::new(/* ... */));
//!     // Images live in a registry only: pull them into Docker to run them.
//!     let runner = imagespec_tests::Runner::docker().pulling(&registry);
//!     Ok(imagespec_tests::Backend::new("mine", builder, runner).pushing_to(registry.namespace()))
//! }
//! imagespec_tests::conformance!(backend);
//! ```
//!
//! The environment is the one `scripts/dev-env.sh` starts (Docker, Podman, the registry on
//! `127.0.0.1:5000`, local base images). When a piece is missing, tests fail with a message
//! that says so; they never pass without having checked anything.
//!
//! [`ImageBuilder`]: imagespec_core::build::ImageBuilder
//! [`Engine::ensure`]: imagespec_core::build::Engine::ensure

pub mod backend;
pub mod case;
pub mod devenv;
pub mod harness;
pub mod local;
pub mod log_capture;
pub mod names;
pub mod probe;
pub mod recorder;
pub mod registry;
pub mod remote;
pub mod runner;
pub mod scenarios;
pub mod store_lock;

pub use anyhow::Result;
pub use backend::Backend;
pub use case::Case;
pub use recorder::Recorder;
pub use registry::DevRegistry;
pub use runner::{Cli, Runner};

/// Expands to one `#[test]` per scenario, each running it against the backend `make` returns
/// (`make`: an `async fn() -> imagespec_tests::Result<Backend>`, called once per test).
///
/// A scenario the backend declares with [`Backend::skipping`] passes with a printed note.
#[macro_export]
macro_rules! conformance {
    ($make:expr) => {
        $crate::__conformance_tests!($make;
            apt_packages,
            requirements_txt,
            uv_lock,
            pip_index,
            env_values,
            commands_in_order,
            copy_paths,
            source_root_filtering,
            root_dockerignore_and_builtin_excludes,
            symlinks,
            entrypoint,
            base_spec,
            secret_mounts,
            exists_skips_build,
            force_rebuilds,
            unsupported_platforms,
            missing_registry,
            source_edit_rebuilds_only_source_layer,
            flytekit_task,
            several_platforms,
            foreign_platform,
            base_without_platform,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($make:expr; $($scenario:ident),+ $(,)?) => {$(
        #[test]
        fn $scenario() -> ::std::result::Result<(), $crate::harness::Failure> {
            $crate::harness::run_test(module_path!(), stringify!($scenario), || async {
                let backend: $crate::Backend = ($make)().await?;
                if let Some(reason) = backend.skip_reason(stringify!($scenario)) {
                    eprintln!(
                        "conformance: {} skipped on the {} backend: {reason}",
                        stringify!($scenario),
                        backend.name()
                    );
                    return Ok(());
                }
                $crate::scenarios::$scenario(&backend).await
            })
        }
    )+};
}
