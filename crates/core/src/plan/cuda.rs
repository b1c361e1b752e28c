//! Choosing a CUDA base image from `cuda` and `cudnn`.
//!
//! **The rule** (README text):
//!
//! > When a spec sets `cuda` (and optionally `cudnn`) and no `base_image`, imagespec builds from
//! > NVIDIA's runtime image for that version, `nvidia/cuda:<version>[-cudnn…]-runtime-ubuntu22.04`,
//! > chosen from a fixed table of combinations known to be published:
//! >
//! > | `cuda`        | image version | `cudnn` |
//! > |---------------|---------------|---------|
//! > | `11.8`        | 11.8.0        | `8`     |
//! > | `12.1`        | 12.1.1        | `8`     |
//! > | `12.2`        | 12.2.2        | `8`     |
//! > | `12.3`        | 12.3.2        | `9`     |
//! > | `12.4`        | 12.4.1        | `9`     |
//! > | `12.5`        | 12.5.1        | `9`     |
//! > | `12.6`        | 12.6.3        | `9`     |
//! > | `12.8`        | 12.8.1        | `9`     |
//! >
//! > `cuda` is written as `major.minor` or as the exact image version (`12.4` or `12.4.1`);
//! > `cudnn` as the major version (`8`, `9`). Without `cudnn` the image has the CUDA runtime
//! > only. Any other version, or a `cudnn` not published for that CUDA version, is rejected
//! > before anything is built, with the list of valid choices.
//! >
//! > When `base_image` is set (a reference or another spec), `cuda` and `cudnn` are recorded (they
//! > are part of the image name) but not checked: the base image is trusted to provide them.

use super::error::PlanError;

/// Repository of the CUDA base images.
pub const CUDA_REPOSITORY: &str = "nvidia/cuda";

/// Operating system suffix of the chosen images (Ubuntu 22.04 is published for every row).
pub const CUDA_OS: &str = "ubuntu22.04";

/// One CUDA version: `major.minor`, the exact image version, and the cuDNN majors published for
/// it as (cudnn major, the tag's cudnn component).
struct CudaRow {
    minor: &'static str,
    full: &'static str,
    cudnn: &'static [(&'static str, &'static str)],
}

/// Published `nvidia/cuda` runtime images. NVIDIA spells the cuDNN component `cudnn8`/`cudnn9`
/// up to CUDA 12.3 and plain `cudnn` (meaning cuDNN 9) from 12.4 on.
const TABLE: &[CudaRow] = &[
    CudaRow {
        minor: "11.8",
        full: "11.8.0",
        cudnn: &[("8", "cudnn8")],
    },
    CudaRow {
        minor: "12.1",
        full: "12.1.1",
        cudnn: &[("8", "cudnn8")],
    },
    CudaRow {
        minor: "12.2",
        full: "12.2.2",
        cudnn: &[("8", "cudnn8")],
    },
    CudaRow {
        minor: "12.3",
        full: "12.3.2",
        cudnn: &[("9", "cudnn9")],
    },
    CudaRow {
        minor: "12.4",
        full: "12.4.1",
        cudnn: &[("9", "cudnn")],
    },
    CudaRow {
        minor: "12.5",
        full: "12.5.1",
        cudnn: &[("9", "cudnn")],
    },
    CudaRow {
        minor: "12.6",
        full: "12.6.3",
        cudnn: &[("9", "cudnn")],
    },
    CudaRow {
        minor: "12.8",
        full: "12.8.1",
        cudnn: &[("9", "cudnn")],
    },
];

/// The `nvidia/cuda` runtime image for `cuda` (and `cudnn`), or why there is none.
pub fn cuda_base_image(cuda: &str, cudnn: Option<&str>) -> Result<String, PlanError> {
    let row = TABLE
        .iter()
        .find(|r| r.minor == cuda || r.full == cuda)
        .ok_or_else(|| PlanError::UnknownCuda {
            version: cuda.to_string(),
            valid: TABLE.iter().map(|r| r.minor).collect::<Vec<_>>().join(", "),
        })?;
    let variant = match cudnn {
        None => String::new(),
        Some(wanted) => {
            let (_, component) = row
                .cudnn
                .iter()
                .find(|(major, _)| *major == wanted)
                .ok_or_else(|| PlanError::UnknownCudnn {
                    cuda: cuda.to_string(),
                    cudnn: wanted.to_string(),
                    valid: row
                        .cudnn
                        .iter()
                        .map(|(m, _)| *m)
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            format!("-{component}")
        }
    };
    Ok(format!(
        "{CUDA_REPOSITORY}:{}{variant}-runtime-{CUDA_OS}",
        row.full
    ))
}
