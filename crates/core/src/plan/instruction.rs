//! The typed Dockerfile instructions a plan is made of.
//!
//! Builders and tests look at these values, not at text: quoting and escaping happen once, in
//! [`super::render`], so a value can never break out of the instruction it belongs to. Only
//! features that the Docker Engine's built-in BuildKit frontend and Podman/Buildah both understand
//! without a `# syntax=` directive are representable (`RUN --mount` of kind cache, secret and
//! bind, `COPY --from`, `COPY --chown`).

/// One Dockerfile instruction (or a comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `# text`, preceded by a blank line: separates the sections of the Dockerfile.
    Comment(String),
    /// `FROM image`.
    From { image: String },
    /// `USER user`.
    User(String),
    /// `WORKDIR path`.
    Workdir(String),
    /// `ENV k="v" ...` (one instruction, several variables).
    Env(Vec<(String, EnvValue)>),
    /// `LABEL k="v" ...`.
    Label(Vec<(String, String)>),
    /// `COPY [--from=...] [--chown=...] sources... dest`.
    Copy(Copy),
    /// `RUN [--mount=...]... command`.
    Run(Run),
    /// `ENTRYPOINT ["a", "b"]`; an empty list clears the base image's entrypoint.
    Entrypoint(Vec<String>),
}

/// The value of an `ENV` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// Taken verbatim: `$`, quotes and backslashes are escaped.
    Literal(String),
    /// A spec's `env` value, expanded as a Dockerfile's `ENV` expands it (flytekit writes `env`
    /// into `ENV` unquoted, so `PATH: /x/bin:$PATH` extends the image's PATH there):
    /// `$NAME` and `${NAME}` (with `:-`/`:+`) refer to the image's environment at that point;
    /// `\$` is a literal `$`; quotes, spaces and other backslashes are kept.
    Docker(String),
    /// A value in which `$NAME` refers to the image's current environment, e.g. `/opt/venv/bin:$PATH`.
    /// Only the plan writes these; the text must not contain `"` or `\`.
    Expand(String),
}

/// A `COPY` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// A stage or image to copy from (`--from`); `None` copies from the build context.
    pub from: Option<String>,
    /// `--chown` owner (numeric, so it works whether or not the name exists in the image).
    pub chown: Option<String>,
    pub sources: Vec<String>,
    pub dest: String,
}

/// A `RUN` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub mounts: Vec<Mount>,
    pub command: Command,
}

/// What a `RUN` executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Shell form: the steps are joined with `&&`, one per line, so the first failing step stops
    /// the instruction. Each step is one line of shell written (and quoted) by the plan.
    Shell(Vec<String>),
    /// Exec form (`RUN ["/bin/sh", "-c", "..."]`): used for user commands that shell form cannot
    /// carry verbatim (several lines, a leading `[` or `-`).
    Exec(Vec<String>),
}

/// A `RUN --mount=...` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A persistent build cache directory, never part of the image.
    Cache { target: String, locked: bool },
    /// A build secret, present only while this one `RUN` executes.
    Secret { id: String, target: String },
    /// A read-only view of another image, present only while this one `RUN` executes.
    Bind { from: String, target: String },
}

impl Run {
    /// A `RUN` of plan-written shell steps.
    pub fn shell<I, S>(mounts: Vec<Mount>, steps: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Run {
            mounts,
            command: Command::Shell(steps.into_iter().map(Into::into).collect()),
        }
    }
}
