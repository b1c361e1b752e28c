//! Why a build plan could not be made or its context could not be written.
//!
//! Every message names the spec field at fault and says what to do, because these errors reach
//! users directly (the CLI prints them as they are).

use std::path::PathBuf;

use crate::hash::HashError;
use crate::tree::TreeError;

/// A spec the plan cannot honour, or a file problem while planning or writing the context.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `cuda` names a version with no known `nvidia/cuda` runtime image.
    #[error(
        "`cuda: \"{version}\"` has no known nvidia/cuda base image; valid versions: {valid}. \
         Use one of them, or set `base_image` to a CUDA image of your choice (it is then trusted as is)"
    )]
    UnknownCuda { version: String, valid: String },

    /// `cudnn` is not published for the requested CUDA version.
    #[error(
        "`cudnn: \"{cudnn}\"` is not available with `cuda: \"{cuda}\"`; valid cudnn values for it: {valid}. \
         Change `cudnn`, remove it, or set `base_image` explicitly"
    )]
    UnknownCudnn {
        cuda: String,
        cudnn: String,
        valid: String,
    },

    /// Two fields that cannot be honoured together.
    #[error("`{field}` cannot be combined with `{other}`: {help}")]
    Conflict {
        field: &'static str,
        other: &'static str,
        help: &'static str,
    },

    /// A spec on a base spec asks for another Python than the base's environment has.
    #[error(
        "`python_version` {version} differs from the base spec's {base}: the base's packages are installed for Python {base}; use `python_version: \"{base}\"` (or leave it out), or change the base spec"
    )]
    BasePythonVersion { version: String, base: String },

    /// A spec on a base spec asks for platforms the base spec is not built for.
    #[error(
        "`platform` asks for {missing}, which the base spec is not built for (it has `platform: {base}`); a spec-valued base is built first, for its own platforms: add {missing} to the base spec's `platform`, or build fewer platforms"
    )]
    BasePlatforms { missing: String, base: String },

    /// A known `builder_options` key with a value of the wrong shape.
    #[error("`builder_options.{key}`: {problem}")]
    InvalidBuilderOption { key: String, problem: String },

    /// A value that would end up in the Dockerfile contains a line break or another control
    /// character, which no Dockerfile instruction can carry.
    #[error(
        "`{field}` contains a line break or control character; write it on one line without control characters"
    )]
    ControlCharacter { field: String },

    /// An empty entry in `commands`.
    #[error("`commands[{index}]` is empty; remove it")]
    EmptyCommand { index: usize },

    /// `pip_extra_args` cannot be split into arguments.
    #[error(
        "`pip_extra_args`: {problem}; quote arguments as in a shell, e.g. `--config-settings \"a=b c\"`"
    )]
    PipExtraArgs { problem: String },

    /// A secret mount that cannot be expressed as a `RUN --mount=type=secret` option.
    #[error("`pip_secret_mounts[{index}]`: {problem}")]
    InvalidSecret { index: usize, problem: String },

    /// `pip_secret_mounts` without any Python install step to mount them on.
    #[error(
        "`pip_secret_mounts` is set but nothing is installed with pip, uv or poetry, so the secrets would never be \
         used; add `packages` or `requirements`, or remove `pip_secret_mounts`"
    )]
    UnusedSecrets,

    /// A secret file would be copied into the image by `copy` or `source_root`.
    #[error(
        "the secret `{src}` (`pip_secret_mounts[{index}]`) is inside `{field}` and would be copied into the image; \
         move it out of that directory or exclude it with an ignore file"
    )]
    SecretInContext {
        index: usize,
        src: String,
        field: String,
    },

    /// The files differ from the ones the image name was computed from.
    #[error(
        "the files changed after the image name was computed (`{}` differ), so the name no longer describes them; \
         compute the name again and rebuild",
        .fields.join("`, `")
    )]
    Drift { fields: Vec<String> },

    /// A file changed while the build context was being written.
    #[error(
        "`{}` changed while the build context was being written; wait until nothing writes to it and build again",
        .path.display()
    )]
    ContextChanged { path: PathBuf },

    /// Selecting the files of a directory failed.
    #[error("cannot select the files of `{field}`: {source}")]
    Tree {
        field: String,
        #[source]
        source: TreeError,
    },

    /// Reading a file of the context failed.
    #[error("cannot read `{}` (from `{field}`): {source}", .path.display())]
    Read {
        field: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Recomputing the hash inputs (to detect drift) failed.
    #[error("cannot check the files against the image name: {0}")]
    Hash(#[from] HashError),

    /// Writing the context stream failed.
    #[error("cannot write the build context: {0}")]
    Write(#[source] std::io::Error),
}
