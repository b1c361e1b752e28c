//! System packages, the working directory and the runtime user.

use super::error::PlanError;
use super::instruction::{Instruction, Mount, Run};
use super::python::check_line;
use super::shell::join;

/// The uid of the runtime user (flytekit's convention, and the first regular uid on Debian).
pub const RUNTIME_UID: u32 = 1000;
/// The name given to the runtime user when one has to be created.
pub const RUNTIME_USER: &str = "imagespec";

const DOCKER_CLEAN: &str = "/etc/apt/apt.conf.d/docker-clean";
const DOCKER_CLEAN_ASIDE: &str = "/etc/apt/docker-clean.imagespec";

/// `apt_packages`, in one `RUN`.
///
/// With `cache_mounts`, `/var/cache/apt` and `/var/lib/apt` are cache mounts (`sharing=locked`,
/// as apt takes locks in them): downloaded lists and archives are reused across builds and are
/// never part of the image, so no clean-up step is needed. Debian and Ubuntu images ship
/// `docker-clean`, an apt hook that deletes downloaded archives, which would defeat the cache;
/// it is moved aside for this step and put back, so later `apt-get` calls in `commands` (without
/// a cache mount) still clean up.
///
/// Without (an engine whose locked cache mounts cannot be trusted, see
/// [`super::EngineTraits`]), apt downloads afresh and removes its lists and archives in the
/// same step, so they are not part of the image either.
///
/// `DEBIAN_FRONTEND=noninteractive` is set for the install command only, not baked into the image.
pub(crate) fn apt(packages: &[String], cache_mounts: bool) -> Result<Vec<Instruction>, PlanError> {
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    for (i, p) in packages.iter().enumerate() {
        check_line(&format!("apt_packages[{i}]"), p)?;
    }
    let install = format!(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {}",
        join(packages)
    );
    if !cache_mounts {
        return Ok(vec![
            Instruction::Comment("System packages (apt lists and archives removed)".into()),
            Instruction::Run(Run::shell(
                Vec::new(),
                [
                    "apt-get update".to_string(),
                    install,
                    "apt-get clean".to_string(),
                    "rm -rf /var/lib/apt/lists/*".to_string(),
                ],
            )),
        ]);
    }
    let cache = |target: &str| Mount::Cache {
        target: target.into(),
        locked: true,
    };
    Ok(vec![
        Instruction::Comment(
            "System packages (apt lists and archives stay in cache mounts)".into(),
        ),
        Instruction::Run(Run::shell(
            vec![cache("/var/cache/apt"), cache("/var/lib/apt")],
            [
                format!(
                    "if [ -f {DOCKER_CLEAN} ]; then mv {DOCKER_CLEAN} {DOCKER_CLEAN_ASIDE}; fi"
                ),
                "apt-get update".to_string(),
                install,
                format!(
                    "if [ -f {DOCKER_CLEAN_ASIDE} ]; then mv {DOCKER_CLEAN_ASIDE} {DOCKER_CLEAN}; fi"
                ),
            ],
        )),
    ])
}

/// The working directory and, if asked, the runtime user that owns it.
///
/// Whether the base image has `useradd` cannot be known when planning, so the user is created
/// with the first tool that works: nothing when uid 1000 already exists (e.g. Ubuntu 24.04's
/// `ubuntu`, or a base spec built by imagespec), else `useradd` (Debian, Ubuntu, RHEL), else
/// busybox's `adduser -D` (Alpine), else a line appended to `/etc/passwd` (images with neither).
/// The user is referred to by uid everywhere (`USER 1000`, `--chown=1000`), so it works whatever
/// its name is, and Kubernetes' `runAsNonRoot` can verify it.
pub(crate) fn workdir_and_user(workdir: &str, non_root_user: bool) -> Vec<Instruction> {
    let mut out = vec![
        Instruction::Comment(if non_root_user {
            format!("Working directory, owned by the runtime user (uid {RUNTIME_UID})")
        } else {
            "Working directory".into()
        }),
        Instruction::Workdir(workdir.to_string()),
    ];
    if non_root_user {
        let uid = RUNTIME_UID;
        let name = RUNTIME_USER;
        out.push(Instruction::Run(Run::shell(
            Vec::new(),
            [
                format!(
                    "grep -q '^[^:]*:[^:]*:{uid}:' /etc/passwd \
                     || useradd --uid {uid} --create-home --shell /bin/sh {name} \
                     || adduser -D -u {uid} -s /bin/sh {name} \
                     || echo '{name}:x:{uid}:{uid}::/home/{name}:/bin/sh' >> /etc/passwd"
                ),
                format!("chown {uid} {workdir}"),
            ],
        )));
    }
    out
}
