//! The development environment `scripts/dev-env.sh` starts: where it is, what it provides, and
//! the message every missing piece fails with. The suite never skips for lack of an engine: a
//! conformance run that checked nothing must not look like one that passed.

use std::path::PathBuf;

/// Appended to every "the environment is missing" failure.
pub const HINT: &str = "start the development environment with `bash scripts/dev-env.sh` (as root), \
     or point IMAGESPEC_DEV_DIR at its state directory";

/// The Docker Engine API socket.
pub const DOCKER_ENDPOINT: &str = "unix:///var/run/docker.sock";
/// The Podman service's Docker-compatible API socket.
pub const PODMAN_ENDPOINT: &str = "unix:///run/podman/podman.sock";
/// The base image every scenario builds from (Debian's Python 3.11; nothing is pulled).
pub const PYTHON_IMAGE: &str = "localhost/imagespec/python:3.11-bookworm";
/// uv's image, used through `builder_config.uv_image`.
pub const UV_IMAGE: &str = "localhost/imagespec/uv:latest";
/// The Python image as an index of linux/amd64 and linux/arm64, in the dev registry (below its
/// address).
pub const MULTI_PYTHON_IMAGE: &str = "imagespec/multi/python:3.11-bookworm";
/// uv's image as an index of linux/amd64 and linux/arm64, in the dev registry.
pub const MULTI_UV_IMAGE: &str = "imagespec/multi/uv:latest";
/// The namespace every conformance image is pushed under.
pub const NAMESPACE: &str = "imagespec-conformance";

/// The state directory of `scripts/dev-env.sh` (`IMAGESPEC_DEV_DIR`, else `<repo>/.dev-env`).
pub fn dev_dir() -> PathBuf {
    std::env::var_os("IMAGESPEC_DEV_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.dev-env"),
        PathBuf::from,
    )
}

/// The repository's `examples/` directory (the uv scenario copies a project from it).
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}
