//! Choosing a CUDA base image from `cuda` and `cudnn`.
//!
//! **The rule** (README text):
//!
//! > When a spec sets `cuda` (and optionally `cudnn`) and no `base_image`, imagespec builds from
//! > NVIDIA's runtime image for that version, `nvidia/cuda:<version>[-cudnn…]-runtime-ubuntu22.04`,
//! > chosen from the list of every such tag NVIDIA publishes (`cuda_tags.txt`, which names its
//! > source and date). `cuda` is an exact image version (`12.4.0`, `12.1.1`) or `major.minor`
//! > (`12.4`: the newest published patch, `12.4.1`); `cudnn` is the cuDNN major version (`8`,
//! > `9`; NVIDIA's tags say `cudnn8`, `cudnn9`, or plain `cudnn` for cuDNN 9 from CUDA 12.4 on).
//! > Without `cudnn` the image has the CUDA runtime only. A version NVIDIA does not publish, or a
//! > `cudnn` not published for that version, is rejected before anything is built, with the
//! > valid choices.
//! >
//! > When `base_image` is set (a reference or another spec), `cuda` and `cudnn` are recorded (they
//! > are part of the image name) but not checked: the base image is trusted to provide them.
//!
//! flytekit 1.16's default builder refuses `cuda` and `cudnn` outright (it asks for a CUDA
//! `base_image` instead); its envd builder used NVIDIA's images, as imagespec does.
//!
//! The list is regenerated from NVIDIA's tag lists (`doc/supported-tags.md` and
//! `doc/unsupported-tags.md` of gitlab.com/nvidia/container-images/cuda) with:
//!
//! ```text
//! cat supported-tags.md unsupported-tags.md \
//!   | grep -o '`1[0-9.]*-[a-z0-9-]*runtime-ubuntu22.04`' | tr -d '`' | sort -uV
//! ```

use super::error::PlanError;

/// Repository of the CUDA base images.
pub const CUDA_REPOSITORY: &str = "nvidia/cuda";

/// Operating system suffix of the chosen images (Ubuntu 22.04 is published for every version).
pub const CUDA_OS: &str = "ubuntu22.04";

/// The published runtime tags, one per line (`#` starts a comment).
const PUBLISHED_TAGS: &str = include_str!("cuda_tags.txt");

/// One published runtime tag, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaTag {
    /// The exact CUDA version, e.g. `12.4.1`.
    pub version: &'static str,
    /// The tag's cuDNN component (`cudnn8`, `cudnn9`, `cudnn`), if any.
    pub cudnn_component: Option<&'static str>,
}

impl CudaTag {
    /// `major.minor` of the version.
    pub fn minor(&self) -> &'static str {
        match self.version.rmatch_indices('.').next() {
            Some((i, _)) => &self.version[..i],
            None => self.version,
        }
    }

    /// The cuDNN major version the tag holds: `cudnn8` → 8, `cudnn9` and NVIDIA's plain `cudnn`
    /// (cuDNN 9, from CUDA 12.4 on) → 9.
    pub fn cudnn_major(&self) -> Option<&'static str> {
        self.cudnn_component.map(|c| match c.strip_prefix("cudnn") {
            Some("") | None => "9",
            Some(major) => major,
        })
    }

    /// The full image reference.
    pub fn image(&self) -> String {
        match self.cudnn_component {
            Some(c) => format!("{CUDA_REPOSITORY}:{}-{c}-runtime-{CUDA_OS}", self.version),
            None => format!("{CUDA_REPOSITORY}:{}-runtime-{CUDA_OS}", self.version),
        }
    }
}

/// Every published runtime tag of the list, in its order (ascending versions). A line that is
/// not `<version>[-<cudnn>]-runtime-ubuntu22.04` is skipped here and failed by the list's test.
pub fn published_tags() -> Vec<CudaTag> {
    PUBLISHED_TAGS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_tag)
        .collect()
}

/// `12.4.1-cudnn-runtime-ubuntu22.04` → version `12.4.1`, cuDNN component `cudnn`.
pub fn parse_tag(line: &'static str) -> Option<CudaTag> {
    let rest = line.strip_suffix(&format!("-runtime-{CUDA_OS}"))?;
    let (version, cudnn_component) = match rest.split_once('-') {
        Some((v, c)) if c.starts_with("cudnn") => (v, Some(c)),
        Some(_) => return None,
        None => (rest, None),
    };
    let numeric = version.split('.').count() == 3
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric.then_some(CudaTag {
        version,
        cudnn_component,
    })
}

/// The exact version `cuda` names: itself when published, else for `major.minor` the newest
/// published patch of it.
fn exact_version(tags: &[CudaTag], cuda: &str) -> Option<&'static str> {
    if let Some(tag) = tags.iter().find(|t| t.version == cuda) {
        return Some(tag.version);
    }
    tags.iter()
        .filter(|t| t.minor() == cuda)
        .map(|t| t.version)
        .max_by(|a, b| compare_versions(a, b))
}

fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| {
        v.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    parts(a).cmp(&parts(b))
}

/// The valid `cuda` values, grouped by minor: `11.7 (11.7.1), 11.8 (11.8.0), 12.0 (12.0.0,
/// 12.0.1), ...`.
fn valid_versions(tags: &[CudaTag]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for tag in tags {
        match groups.iter_mut().find(|(minor, _)| *minor == tag.minor()) {
            Some((_, versions)) => {
                if !versions.contains(&tag.version) {
                    versions.push(tag.version)
                }
            }
            None => groups.push((tag.minor(), vec![tag.version])),
        }
    }
    groups
        .iter()
        .map(|(minor, versions)| format!("{minor} ({})", versions.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `nvidia/cuda` runtime image for `cuda` (and `cudnn`), or why there is none.
pub fn cuda_base_image(cuda: &str, cudnn: Option<&str>) -> Result<String, PlanError> {
    let tags = published_tags();
    let version = exact_version(&tags, cuda).ok_or_else(|| PlanError::UnknownCuda {
        version: cuda.to_string(),
        valid: valid_versions(&tags),
    })?;
    let of_version = || tags.iter().filter(move |t| t.version == version);
    let tag = match cudnn {
        None => of_version().find(|t| t.cudnn_component.is_none()),
        Some(wanted) => of_version().find(|t| t.cudnn_major() == Some(wanted)),
    };
    match tag {
        Some(tag) => Ok(tag.image()),
        None => {
            let valid: Vec<&str> = of_version().filter_map(|t| t.cudnn_major()).collect();
            Err(PlanError::UnknownCudnn {
                cuda: cuda.to_string(),
                cudnn: cudnn.unwrap_or_default().to_string(),
                valid: if valid.is_empty() {
                    format!("none ({version} is published without cuDNN)")
                } else {
                    valid.join(", ")
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list is well-formed: every line a runtime tag, every version with a plain runtime
    /// image, and no duplicates.
    #[test]
    fn every_listed_tag_parses_and_maps_to_an_image() {
        let lines: Vec<&'static str> = PUBLISHED_TAGS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(lines.len() >= 40, "{} tags", lines.len());
        let mut seen = std::collections::BTreeSet::new();
        for line in &lines {
            let tag = parse_tag(line).unwrap_or_else(|| panic!("not a runtime tag: {line}"));
            assert_eq!(tag.image(), format!("{CUDA_REPOSITORY}:{line}"));
            assert!(seen.insert(*line), "listed twice: {line}");
            let cudnn = tag.cudnn_major();
            assert_eq!(
                cuda_base_image(tag.version, cudnn).expect("published"),
                tag.image(),
                "{line}"
            );
        }
    }

    #[test]
    fn the_versions_of_the_issue_pass() {
        for (cuda, image) in [
            ("12.1.0", "nvidia/cuda:12.1.0-runtime-ubuntu22.04"),
            ("12.4.0", "nvidia/cuda:12.4.0-runtime-ubuntu22.04"),
            ("12.8.0", "nvidia/cuda:12.8.0-runtime-ubuntu22.04"),
            ("12.1.1", "nvidia/cuda:12.1.1-runtime-ubuntu22.04"),
        ] {
            assert_eq!(cuda_base_image(cuda, None).expect(cuda), image);
        }
        assert_eq!(
            cuda_base_image("12.8.0", Some("9")).expect("12.8.0 + cuDNN 9"),
            "nvidia/cuda:12.8.0-cudnn-runtime-ubuntu22.04"
        );
        assert_eq!(
            cuda_base_image("12.1.0", Some("8")).expect("12.1.0 + cuDNN 8"),
            "nvidia/cuda:12.1.0-cudnn8-runtime-ubuntu22.04"
        );
    }

    #[test]
    fn major_minor_is_the_newest_patch() {
        assert_eq!(
            cuda_base_image("12.6", Some("9")).expect("12.6"),
            "nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04"
        );
        assert_eq!(
            cuda_base_image("13.0", None).expect("13.0"),
            "nvidia/cuda:13.0.2-runtime-ubuntu22.04"
        );
    }

    #[test]
    fn unpublished_versions_are_refused_with_the_choices() {
        for bad in ["12.4.2", "12.7", "10.2", "12", "12.4.x"] {
            let msg = cuda_base_image(bad, None).expect_err(bad).to_string();
            assert!(msg.contains(&format!("`cuda: \"{bad}\"`")), "{msg}");
            assert!(
                msg.contains("12.4 (12.4.0, 12.4.1)") && msg.contains("11.8 (11.8.0)"),
                "{msg}"
            );
        }
        let msg = cuda_base_image("13.1", Some("9"))
            .expect_err("no cuDNN")
            .to_string();
        assert!(
            msg.contains("none (13.1.0 is published without cuDNN)"),
            "{msg}"
        );
        let msg = cuda_base_image("11.8", Some("9"))
            .expect_err("cuDNN 8 only")
            .to_string();
        assert!(msg.contains("valid cudnn values for it: 8"), "{msg}");
    }
}
