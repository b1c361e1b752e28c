//! The build plan: what every builder, local or remote, builds from.
//!
//! A [`BuildPlan`] is engine-independent: a typed instruction list ([`Instruction`]) that renders
//! to a Dockerfile, the build-context file set, the secrets the build needs (by id, never by
//! content) and the target platforms. A builder sends [`BuildPlan::write_context`]'s tar with
//! [`BuildPlan::dockerfile_path`] as the Dockerfile, supplies every [`SecretRef`] under its id,
//! and passes [`BuildPlan::platforms`] to the engine; nothing platform-specific is in the
//! Dockerfile.
//!
//! Layers go from the least to the most frequently changed, in flytekit's order where it
//! matters: base image, system packages, working directory and runtime user, Python, `env`,
//! Python dependencies (with the Flyte runtime, [`runtime`]), `copy`, source files, `commands`,
//! entrypoint and `USER`; the spec's identity (`LABEL dev.imagespec.spec-hash`/`plan-version`/
//! `inputs`, `ENV IMAGESPEC_SPEC_HASH`) comes last, so a spec change that does not touch a
//! layer's inputs keeps that layer cached. `env` comes before the install, so `UV_*`, `PIP_*` or
//! `CFLAGS` steer it (an `env` change reinstalls the dependencies); `commands` come after the
//! `copy` and source files, so `pip install -e .` or `python -m compileall /root` sees them (a
//! source edit reruns the commands; without commands it reruns only the source layer).
//!
//! The runtime user (uid 1000, see [`system`]) owns the working directory and the files copied
//! into it; the Python environment stays owned by root, so installing packages at run time as
//! that user needs a user-writable target (or `builder_options.non_root_user: false`).
//!
//! Fields outside the Dockerfile: `name`, `registry`, `tag_format` and `builder` make the image
//! name and choose the builder; `registry_config` is for pushing; `platform` is carried by the plan;
//! `runtime_packages` are not installed at build time (they are installed when a task starts,
//! and are not part of the image name); `builder_options` accepts only the keys in
//! [`options::BUILDER_OPTION_KEYS`] and rejects any other.

pub mod context;
pub mod cuda;
pub mod error;
pub mod instruction;
pub mod options;
pub mod python;
pub mod render;
pub mod runtime;
pub mod secrets;
pub mod shell;
pub mod steps;
pub mod system;

use std::io::Write;

use crate::hash::{HashInputs, ResolvedImage};
use crate::spec::LoadedSpec;

pub use context::{ContextFile, ContextSummary, DOCKERFILE_PATH};
pub use error::PlanError;
pub use instruction::{Command, Copy, EnvValue, Instruction, Mount, Run};
pub use options::PlanOptions;
pub use python::PythonEnv;
pub use secrets::{SecretRef, SecretSource};
pub use steps::StepLabels;

/// The base image when the spec names none and sets no `cuda`.
pub const DEFAULT_BASE_IMAGE: &str = "debian:bookworm-slim";

/// Version of the recipe this module turns specs into. Bumped whenever the same spec would
/// render a different Dockerfile (a new default helper image, a changed install command), so a
/// tool can tell images built by different recipes apart; it is an input of the image name's hash.
pub const PLAN_VERSION: &str = "3";

/// Label carrying [`PLAN_VERSION`].
pub const LABEL_PLAN_VERSION: &str = "dev.imagespec.plan-version";
/// Label carrying the spec hash.
pub const LABEL_SPEC_HASH: &str = "dev.imagespec.spec-hash";
/// Label carrying the hash inputs as compact JSON ([`HashInputs`]), so a tool can explain which
/// field changed an image name.
pub const LABEL_INPUTS: &str = "dev.imagespec.inputs";
/// Environment variable carrying the spec hash inside containers.
pub const ENV_SPEC_HASH: &str = "IMAGESPEC_SPEC_HASH";

/// Everything needed to build one image.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    base_image: String,
    instructions: Vec<Instruction>,
    dockerfile: String,
    files: Vec<ContextFile>,
    secrets: Vec<SecretRef>,
    platforms: Vec<String>,
    python: PythonEnv,
    options: PlanOptions,
}

/// What the engine that runs a plan can be trusted with, where that changes the Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineTraits {
    /// `RUN --mount=type=cache,sharing=locked` works: a second build waits for the first to
    /// release the cache. BuildKit: yes. Podman 4's Buildah: no; a build waiting for a locked
    /// cache never wakes up and the lock stays taken until the service restarts. Without it,
    /// apt runs without cache mounts and removes its lists in the same layer.
    pub locked_cache_mounts: bool,
}

impl Default for EngineTraits {
    fn default() -> Self {
        EngineTraits {
            locked_cache_mounts: true,
        }
    }
}

impl BuildPlan {
    /// Plans the build of `spec`, whose computed name is `image`.
    ///
    /// `base_image` is the already-resolved base reference (a base spec's built name), or `None`
    /// to use `spec.base_image`, the CUDA table ([`cuda`]) or [`DEFAULT_BASE_IMAGE`].
    ///
    /// The files are selected as the image name's hash selects them, and the hash inputs are
    /// computed again: if a file changed since `image` was computed, this fails with
    /// [`PlanError::Drift`] rather than build content the name does not describe.
    pub fn new(
        spec: &LoadedSpec,
        image: &ResolvedImage,
        base_image: Option<&str>,
    ) -> Result<BuildPlan, PlanError> {
        Self::for_engine(spec, image, base_image, EngineTraits::default())
    }

    /// [`BuildPlan::new`] for an engine with `traits` (see [`EngineTraits`]): the image's
    /// contents are the same, only how the steps get there differs.
    pub fn for_engine(
        spec: &LoadedSpec,
        image: &ResolvedImage,
        base_image: Option<&str>,
        traits: EngineTraits,
    ) -> Result<BuildPlan, PlanError> {
        let s = &spec.spec;
        base_platforms(s)?;
        let steps = Steps::of(spec, traits)?;
        let base = match base_image
            .map(str::to_string)
            .or_else(|| image.base_reference(s))
        {
            Some(base) => base,
            None => match &s.cuda {
                Some(version) => cuda::cuda_base_image(version, s.cudnn.as_deref())?,
                None => DEFAULT_BASE_IMAGE.to_string(),
            },
        };
        let Steps {
            options,
            python,
            secrets,
            apt,
            environment,
            env,
            dependencies,
            commands,
        } = steps;

        // Select first, then recompute the hash inputs: a change between the two shows as drift,
        // a change after both is caught while the context is streamed.
        let inputs = crate::inputs::select(spec)?;
        let files = context::files(&inputs);
        check_secrets_outside(&secrets, &files)?;
        check_drift(
            &image.inputs,
            &crate::hash::hash_inputs_of(spec, &inputs, image.base.as_deref()),
        )?;

        let mut instructions = vec![
            Instruction::Comment(format!(
                "Generated by imagespec for `{}`; the spec's identity is in the last instructions",
                s.name
            )),
            Instruction::From {
                image: base.clone(),
            },
            // A base image may end with a non-root USER (one built by imagespec does).
            Instruction::User("0".into()),
        ];
        instructions.extend(apt);
        instructions.extend(system::workdir_and_user(
            &options.workdir,
            options.non_root_user,
        ));
        instructions.extend(environment);
        instructions.extend(env);
        instructions.extend(dependencies);
        let chown = options
            .non_root_user
            .then(|| system::RUNTIME_UID.to_string());
        if files
            .iter()
            .any(|f| f.path.starts_with(&format!("{}/", context::COPY_DIR)))
        {
            instructions.push(Instruction::Comment("Files of `copy`".into()));
            instructions.push(copy_dir(context::COPY_DIR, &chown));
        }
        if files
            .iter()
            .any(|f| f.path.starts_with(&format!("{}/", context::SOURCE_DIR)))
        {
            instructions.push(Instruction::Comment("Source files (`source_root`)".into()));
            instructions.push(copy_dir(context::SOURCE_DIR, &chown));
        }
        instructions.extend(commands);
        if s.entrypoint.is_some() || options.non_root_user {
            instructions.push(Instruction::Comment("Runtime".into()));
        }
        if let Some(entrypoint) = &s.entrypoint {
            instructions.push(Instruction::Entrypoint(entrypoint.clone()));
        }
        if options.non_root_user {
            instructions.push(Instruction::User(system::RUNTIME_UID.to_string()));
        }
        instructions.extend(identity(image));

        let dockerfile = render::render(&instructions);
        let mut platforms: Vec<String> = s.platforms().into_iter().map(str::to_string).collect();
        platforms.sort();
        platforms.dedup();
        Ok(BuildPlan {
            base_image: base,
            instructions,
            dockerfile,
            files,
            secrets,
            platforms,
            python,
            options,
        })
    }

    /// Everything planning can refuse without reading a file or contacting anything:
    /// `builder_options`, the CUDA combination, the Python environment, the secret mounts, and
    /// the values of every step. [`crate::build::Engine`] runs it (through
    /// [`crate::build::ImageBuilder::preflight`]) for a spec and each of its base specs before
    /// any existence check or build, so a spec that cannot be built fails before its base is
    /// built; `imagespec validate` runs it too.
    pub fn check(spec: &LoadedSpec) -> Result<(), PlanError> {
        match Self::problems(spec).into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every refusal of [`BuildPlan::check`], not just the first, so a user fixes them in one
    /// round ([`crate::check`] reports them all). Steps that need the result of another are
    /// only tried when it succeeded.
    pub fn problems(spec: &LoadedSpec) -> Vec<PlanError> {
        let s = &spec.spec;
        let mut out = Vec::new();
        if s.base_image.is_none()
            && let Some(version) = &s.cuda
            && let Err(e) = cuda::cuda_base_image(version, s.cudnn.as_deref())
        {
            out.push(e);
        }
        out.extend(base_platforms(s).err());
        let options = PlanOptions::from_builder_options(&s.builder_options);
        let python = PythonEnv::of(s);
        let secrets = secrets::from_spec(spec);
        let apt = system::apt(&s.apt_packages, EngineTraits::default().locked_cache_mounts);
        let env = user_env(s);
        let commands = commands(&s.commands);
        let runtime = runtime::appended(spec);
        if let (Ok(options), Ok(python), Ok(secrets)) = (&options, &python, &secrets) {
            out.extend(python::environment(s, python, &options.workdir, runtime.as_deref()).err());
            out.extend(python::dependencies(s, python, secrets, runtime.as_deref()).err());
        }
        out.extend(options.err());
        out.extend(python.err());
        out.extend(secrets.err());
        out.extend(apt.err());
        out.extend(env.err());
        out.extend(commands.err());
        out
    }

    /// The Dockerfile text.
    pub fn dockerfile(&self) -> String {
        self.dockerfile.clone()
    }

    /// The typed instructions the Dockerfile is rendered from.
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// Every image the build pulls: the `FROM` image and each `COPY --from` image, once each,
    /// in order (what a service that restricts where images come from checks).
    pub fn pulled_images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for image in self.instructions.iter().filter_map(|i| match i {
            Instruction::From { image } => Some(image),
            Instruction::Copy(c) => c.from.as_ref(),
            _ => None,
        }) {
            if !out.contains(image) {
                out.push(image.clone());
            }
        }
        out
    }

    /// What each step is for ("apt packages", "source", "command 1", ...), for progress views.
    pub fn step_labels(&self) -> StepLabels {
        StepLabels::of(&self.instructions)
    }

    /// Path of the Dockerfile inside the context tar (pass it as the engine's `dockerfile`).
    pub fn dockerfile_path(&self) -> &'static str {
        DOCKERFILE_PATH
    }

    /// Writes the build context as an uncompressed, byte-for-byte reproducible tar that includes
    /// the Dockerfile (see [`context`] for the layout and format).
    pub fn write_context(&self, w: impl Write) -> Result<ContextSummary, PlanError> {
        context::write_tar(w, &self.dockerfile, &self.files)
    }

    /// The files of the context besides the Dockerfile, sorted by context path.
    pub fn context_files(&self) -> &[ContextFile] {
        &self.files
    }

    /// The secrets the build needs; the builder must supply every one under its id.
    pub fn secrets(&self) -> &[SecretRef] {
        &self.secrets
    }

    /// The target platforms (`os/arch[/variant]`), sorted and de-duplicated; one or several.
    pub fn platforms(&self) -> &[String] {
        &self.platforms
    }

    /// The image the build starts from.
    pub fn base_image(&self) -> &str {
        &self.base_image
    }

    /// The Python environment packages are installed into.
    pub fn python(&self) -> &PythonEnv {
        &self.python
    }

    /// The settings taken from `builder_options`.
    pub fn options(&self) -> &PlanOptions {
        &self.options
    }
}

/// The steps that depend only on the spec (not on its files), in Dockerfile order.
struct Steps {
    options: PlanOptions,
    python: PythonEnv,
    secrets: Vec<SecretRef>,
    apt: Vec<Instruction>,
    environment: Vec<Instruction>,
    env: Vec<Instruction>,
    dependencies: Vec<Instruction>,
    commands: Vec<Instruction>,
}

impl Steps {
    fn of(spec: &LoadedSpec, traits: EngineTraits) -> Result<Steps, PlanError> {
        let s = &spec.spec;
        let options = PlanOptions::from_builder_options(&s.builder_options)?;
        let python = PythonEnv::of(s)?;
        let secrets = secrets::from_spec(spec)?;
        let runtime = runtime::appended(spec);
        Ok(Steps {
            apt: system::apt(&s.apt_packages, traits.locked_cache_mounts)?,
            environment: python::environment(s, &python, &options.workdir, runtime.as_deref())?,
            env: user_env(s)?,
            dependencies: python::dependencies(s, &python, &secrets, runtime.as_deref())?,
            commands: commands(&s.commands)?,
            options,
            python,
            secrets,
        })
    }
}

fn copy_dir(dir: &str, chown: &Option<String>) -> Instruction {
    Instruction::Copy(Copy {
        from: None,
        chown: chown.clone(),
        sources: vec![format!("{dir}/")],
        dest: "./".into(),
    })
}

/// `env`, expanded as Docker expands `ENV` (see [`EnvValue::Docker`]).
fn user_env(spec: &crate::ImageSpec) -> Result<Vec<Instruction>, PlanError> {
    if spec.env.is_empty() {
        return Ok(Vec::new());
    }
    let mut vars = Vec::with_capacity(spec.env.len());
    for (key, value) in &spec.env {
        python::check_line(&format!("env.{key}"), value)?;
        vars.push((key.clone(), EnvValue::Docker(value.clone())));
    }
    Ok(vec![
        Instruction::Comment("Environment (`env`)".into()),
        Instruction::Env(vars),
    ])
}

/// Each command its own `RUN`, so a failure names the command.
fn commands(commands: &[String]) -> Result<Vec<Instruction>, PlanError> {
    if commands.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = vec![Instruction::Comment("Commands".into())];
    for (index, command) in commands.iter().enumerate() {
        let trimmed = command.trim();
        if trimmed.is_empty() {
            return Err(PlanError::EmptyCommand { index });
        }
        // Shell form keeps the Dockerfile readable; exec form carries anything else verbatim
        // (several lines, a leading `[` that would read as JSON, a leading `-` read as a flag,
        // a `<<WORD` that BuildKit would read as the start of a heredoc).
        let shell_form = !command.chars().any(char::is_control)
            && !command.contains("<<")
            && !trimmed.starts_with('[')
            && !trimmed.starts_with('-')
            && !trimmed.ends_with('\\');
        let command = if shell_form {
            Command::Shell(vec![command.clone()])
        } else if trimmed.starts_with('-') {
            // `sh -c -x` would read the command as an option; a leading space keeps it a command.
            Command::Exec(vec!["/bin/sh".into(), "-c".into(), format!(" {command}")])
        } else {
            Command::Exec(vec!["/bin/sh".into(), "-c".into(), command.clone()])
        };
        out.push(Instruction::Run(Run {
            mounts: Vec::new(),
            command,
        }));
    }
    Ok(out)
}

/// The spec's identity, last.
fn identity(image: &ResolvedImage) -> Vec<Instruction> {
    // Serialising plain strings cannot fail; an empty object would only lose the explanation.
    let inputs = serde_json::to_string(&image.inputs).unwrap_or_else(|_| "{}".into());
    vec![
        Instruction::Comment(
            "Identity: last, so that a spec change does not invalidate the cached layers above"
                .into(),
        ),
        Instruction::Label(vec![
            (LABEL_SPEC_HASH.into(), image.spec_hash.clone()),
            (LABEL_PLAN_VERSION.into(), PLAN_VERSION.into()),
            (LABEL_INPUTS.into(), inputs),
        ]),
        Instruction::Env(vec![(
            ENV_SPEC_HASH.into(),
            EnvValue::Literal(image.spec_hash.clone()),
        )]),
    ]
}

/// A secret file must not be shipped in the context (it would end up in a layer).
fn check_secrets_outside(secrets: &[SecretRef], files: &[ContextFile]) -> Result<(), PlanError> {
    for (index, secret) in secrets.iter().enumerate() {
        let SecretSource::File(path) = &secret.source else {
            continue;
        };
        let Ok(canonical) = std::fs::canonicalize(path) else {
            // A missing secret is the builder's error to report when it reads it.
            continue;
        };
        if let Some(file) = files.iter().find(|f| f.source == canonical) {
            return Err(PlanError::SecretInContext {
                index,
                src: path.display().to_string(),
                field: file.field.clone(),
            });
        }
    }
    Ok(())
}

/// Fails when the recomputed hash inputs differ from the ones the image name was made from.
fn check_drift(expected: &HashInputs, actual: &HashInputs) -> Result<(), PlanError> {
    if expected == actual {
        return Ok(());
    }
    let mut fields: Vec<String> = Vec::new();
    for input in expected.inputs.iter().chain(&actual.inputs) {
        let in_expected = expected.inputs.iter().find(|i| i.field == input.field);
        let in_actual = actual.inputs.iter().find(|i| i.field == input.field);
        let differs = match (in_expected, in_actual) {
            (Some(a), Some(b)) => a.digest != b.digest,
            _ => true,
        };
        if differs && !fields.contains(&input.field) {
            fields.push(input.field.clone());
        }
    }
    if fields.is_empty() {
        fields.push("scheme".into());
    }
    Err(PlanError::Drift { fields })
}

/// A spec-valued base is built first, for its own `platform`; a spec asking for a platform the
/// base does not have cannot be built on it. Refused rather than widened: the base's
/// `platform` is part of its name.
fn base_platforms(spec: &crate::spec::ImageSpec) -> Result<(), PlanError> {
    let Some(base) = spec.base_spec() else {
        return Ok(());
    };
    let theirs = base.platforms();
    let missing: Vec<&str> = spec
        .platforms()
        .into_iter()
        .filter(|p| !theirs.contains(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(PlanError::BasePlatforms {
        missing: missing.join(","),
        base: theirs.join(","),
    })
}
