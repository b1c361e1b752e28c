//! Validation rules: everything that can be checked locally is checked before any work, and every
//! problem is reported (not just the first).

use std::path::{Component, Path, PathBuf};

use super::diagnostic::{Diagnostic, DiagnosticKind};
use super::model::{BaseImage, ImageSpec, SourceCopyMode};
use super::requirements::RequirementsKind;
use crate::reference;

/// The `builder_config` keys we understand.
pub const BUILDER_CONFIG_KEYS: [&str; 2] = ["uv_image", "micromamba_image"];

const KNOWN_OS: [&str; 2] = ["linux", "windows"];
const KNOWN_ARCH: [&str; 8] = [
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le",
];

/// Resolves a spec path against the root (absolute paths are kept).
pub fn resolve(root: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

/// Validates a normalised spec; `prefix` is the field path of a nested (base) spec.
pub fn validate(spec: &ImageSpec, root: &Path, prefix: &str) -> Vec<Diagnostic> {
    let mut v = Validator {
        root,
        prefix,
        out: Vec::new(),
    };
    v.single_lines(spec);
    v.blank_names(spec);
    v.name(spec);
    v.registry(spec);
    v.platform(spec);
    v.python(spec);
    v.requirements(spec);
    v.copy(spec);
    v.source_root(spec);
    v.registry_config(spec);
    v.secrets(spec);
    v.tag_format(spec);
    v.env(spec);
    v.cuda(spec);
    v.indexes(spec);
    v.builder_config(spec);
    v.base_image(spec);
    v.out
}

struct Validator<'a> {
    root: &'a Path,
    prefix: &'a str,
    out: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn field(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn push(&mut self, kind: DiagnosticKind, key: &str, message: String, help: &str) {
        let field = self.field(key);
        self.out
            .push(Diagnostic::new(kind, field, message).with_help(help));
    }

    /// Every value that ends up inside one Dockerfile line (a path, a package, a URL, an env
    /// value) must be one line: a line break there would start a new instruction of the user's
    /// choosing. Only `commands` (run in exec form) and `entrypoint` (a JSON array) may hold one.
    fn single_lines(&mut self, spec: &ImageSpec) {
        let mut values: Vec<(String, &str)> = Vec::new();
        let optional = [
            ("python_version", &spec.python_version),
            ("python_exec", &spec.python_exec),
            ("source_root", &spec.source_root),
            ("requirements", &spec.requirements),
            ("registry_config", &spec.registry_config),
            ("cuda", &spec.cuda),
            ("cudnn", &spec.cudnn),
            ("pip_index", &spec.pip_index),
            ("pip_extra_args", &spec.pip_extra_args),
            ("tag_format", &spec.tag_format),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                values.push((key.to_string(), value));
            }
        }
        let lists = [
            ("packages", &spec.packages),
            ("apt_packages", &spec.apt_packages),
            ("conda_packages", &spec.conda_packages),
            ("conda_channels", &spec.conda_channels),
            ("pip_extra_index_url", &spec.pip_extra_index_url),
            ("copy", &spec.copy),
            ("runtime_packages", &spec.runtime_packages),
        ];
        for (key, list) in lists {
            for (i, value) in list.iter().enumerate() {
                values.push((format!("{key}[{i}]"), value));
            }
        }
        for (key, value) in &spec.env {
            values.push((format!("env.{key}"), value));
        }
        for (i, mount) in spec.pip_secret_mounts.iter().enumerate() {
            values.push((format!("pip_secret_mounts[{i}]"), &mount.src));
        }
        for (key, value) in values {
            if value.chars().any(char::is_control) {
                self.push(
                    DiagnosticKind::InvalidValue,
                    &key,
                    format!("`{key}` contains a line break or another control character"),
                    "write the value on one line (only `commands` entries may span lines)",
                );
            }
        }
    }

    /// An empty or blank entry in a list of names would reach pip, apt or conda as an empty
    /// argument (or vanish from a joined command line): refused, never dropped.
    fn blank_names(&mut self, spec: &ImageSpec) {
        let lists = [
            ("packages", &spec.packages),
            ("apt_packages", &spec.apt_packages),
            ("conda_packages", &spec.conda_packages),
            ("conda_channels", &spec.conda_channels),
            ("runtime_packages", &spec.runtime_packages),
            ("pip_extra_index_url", &spec.pip_extra_index_url),
        ];
        for (key, list) in lists {
            for (i, value) in list.iter().enumerate() {
                if value.trim().is_empty() {
                    self.push(
                        DiagnosticKind::InvalidValue,
                        &format!("{key}[{i}]"),
                        format!("`{key}[{i}]` is empty or blank"),
                        "remove the entry, or write the name it should be",
                    );
                }
            }
        }
    }

    fn name(&mut self, spec: &ImageSpec) {
        if spec.name.is_empty() {
            // A missing key is reported by the decoder; an empty value by us.
            if !self.out.iter().any(|d| d.field == self.field("name")) {
                self.push(
                    DiagnosticKind::MissingField,
                    "name",
                    "the image needs a non-empty `name`".into(),
                    "add `name: my-image`",
                );
            }
        } else if !reference::is_repository_path(&spec.name) {
            self.push(
                DiagnosticKind::InvalidValue,
                "name",
                format!("`{}` is not a valid image name", spec.name),
                "use lower-case letters, digits, and `.`, `_` or `-` between them (e.g. `say-hello-image`)",
            );
        }
    }

    fn registry(&mut self, spec: &ImageSpec) {
        if let Some(registry) = &spec.registry
            && let Err(why) = reference::check_registry(registry)
        {
            self.push(
                DiagnosticKind::InvalidValue,
                "registry",
                format!("invalid registry `{registry}`: {why}"),
                "write `host[:port][/namespace]`, e.g. `ghcr.io/my-org` or `127.0.0.1:5000`",
            );
        }
    }

    fn platform(&mut self, spec: &ImageSpec) {
        for p in spec.platforms() {
            let parts: Vec<&str> = p.split('/').collect();
            let ok = matches!(parts.len(), 2 | 3)
                && KNOWN_OS.contains(&parts[0])
                && KNOWN_ARCH.contains(&parts[1])
                && parts.get(2).is_none_or(|v| !v.is_empty());
            if !ok {
                self.push(
                    DiagnosticKind::InvalidValue,
                    "platform",
                    format!("`{p}` is not a platform"),
                    "write `os/arch[/variant]`, e.g. `linux/amd64` or `linux/amd64,linux/arm64`",
                );
            }
        }
    }

    fn python(&mut self, spec: &ImageSpec) {
        if let Some(v) = &spec.python_version {
            let ok = !v.is_empty()
                && v.split('.').count() <= 3
                && v.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
            if !ok {
                self.push(
                    DiagnosticKind::InvalidValue,
                    "python_version",
                    format!("`{v}` is not a Python version"),
                    "write it as a quoted string such as \"3.11\"",
                );
            }
        }
        if let Some(exec) = &spec.python_exec
            && !exec.starts_with('/')
        {
            self.push(
                DiagnosticKind::InvalidValue,
                "python_exec",
                format!("`{exec}` is not an absolute path"),
                "give the interpreter's absolute path in the base image, e.g. `/usr/bin/python3`",
            );
        }
    }

    fn requirements(&mut self, spec: &ImageSpec) {
        let Some(req) = &spec.requirements else {
            return;
        };
        let kind = RequirementsKind::of(req);
        let path = resolve(self.root, req);
        if !path.is_file() {
            self.push(
                DiagnosticKind::MissingFile,
                "requirements",
                format!("`{}` does not exist or is not a file", path.display()),
                "paths are relative to the directory the command runs in (or `--root`)",
            );
        }
        if let Some(pyproject) = kind.companion_pyproject(req) {
            let pp = resolve(self.root, &pyproject.to_string_lossy());
            if !pp.is_file() {
                self.push(
                    DiagnosticKind::MissingFile,
                    "requirements",
                    format!(
                        "`{req}` needs the `pyproject.toml` beside it, and `{}` does not exist",
                        pp.display()
                    ),
                    "put the project's pyproject.toml next to the lock file",
                );
            }
        }
        if kind.is_lock() && !spec.packages.is_empty() {
            self.push(
                DiagnosticKind::Conflict,
                "packages",
                format!("`packages` cannot be combined with the lock file `{req}`: the lock pins every dependency"),
                "add the packages to pyproject.toml and re-lock, or remove `packages`",
            );
        }
    }

    fn copy(&mut self, spec: &ImageSpec) {
        for (i, entry) in spec.copy.iter().enumerate() {
            let key = format!("copy[{i}]");
            let p = Path::new(entry);
            if entry.is_empty() {
                self.push(
                    DiagnosticKind::InvalidValue,
                    &key,
                    "empty path".into(),
                    "remove the entry",
                );
            } else if p.is_absolute() {
                self.push(
                    DiagnosticKind::InvalidValue,
                    &key,
                    format!("`{entry}` is absolute"),
                    "copy entries are relative to the root; write e.g. `src/app.py`",
                );
            } else if p.components().any(|c| matches!(c, Component::ParentDir)) {
                self.push(
                    DiagnosticKind::InvalidValue,
                    &key,
                    format!("`{entry}` contains `..`"),
                    "copy only files below the root; run from (or pass `--root`) a directory that contains them",
                );
            } else if !self.root.join(p).exists() {
                self.push(
                    DiagnosticKind::MissingFile,
                    &key,
                    format!("`{}` does not exist", self.root.join(p).display()),
                    "paths are relative to the directory the command runs in (or `--root`)",
                );
            } else if let Some(target) = escapes_root(self.root, p) {
                self.push(
                    DiagnosticKind::InvalidValue,
                    &key,
                    format!(
                        "`{entry}` leads outside the root through a symbolic link (to `{}`)",
                        target.display()
                    ),
                    "copy only files below the root; copy the link's target into the project, or run from (or pass `--root`) a directory that contains it",
                );
            }
        }
    }

    fn source_root(&mut self, spec: &ImageSpec) {
        // flytekit refuses a copy mode that copies (`all`, `loaded_modules`) with nothing to
        // copy from ("source_root ... must be set when copy is set"); `none` copies nothing.
        if spec.source_root.is_none()
            && let Some(mode @ (SourceCopyMode::All | SourceCopyMode::LoadedModules)) =
                spec.source_copy_mode
        {
            let name = match mode {
                SourceCopyMode::All => "all",
                _ => "loaded_modules",
            };
            self.push(
                DiagnosticKind::MissingField,
                "source_copy_mode",
                format!(
                    "`source_copy_mode: {name}` copies files of `source_root`, which is not set"
                ),
                "add `source_root: .` (the directory to copy), or remove `source_copy_mode`",
            );
        }
        if let Some(src) = &spec.source_root {
            let path = resolve(self.root, src);
            if !path.is_dir() {
                self.push(
                    DiagnosticKind::MissingFile,
                    "source_root",
                    format!("`{}` is not a directory", path.display()),
                    "point `source_root` at the project directory to copy into the image",
                );
            }
        }
    }

    fn registry_config(&mut self, spec: &ImageSpec) {
        if let Some(cfg) = &spec.registry_config {
            let path = resolve(self.root, cfg);
            if !path.is_file() {
                self.push(
                    DiagnosticKind::MissingFile,
                    "registry_config",
                    format!("`{}` does not exist", path.display()),
                    "point it at a Docker `config.json` with an `auths` section",
                );
            }
        }
    }

    fn secrets(&mut self, spec: &ImageSpec) {
        for (i, m) in spec.pip_secret_mounts.iter().enumerate() {
            let key = format!("pip_secret_mounts[{i}]");
            if let Some(var) = m.src.strip_prefix("env:") {
                if !is_env_name(var) {
                    self.push(
                        DiagnosticKind::InvalidValue,
                        &key,
                        format!("`{var}` is not an environment variable name"),
                        "write `env:NAME` with NAME of letters, digits and `_`",
                    );
                }
            } else if !resolve(self.root, &m.src).is_file() {
                // Only the file's existence is checked; its content is never read here.
                self.push(
                    DiagnosticKind::MissingFile,
                    &key,
                    format!("secret source `{}` does not exist", m.src),
                    "give a file path relative to the root, or `env:NAME` to read an environment variable",
                );
            }
            if let Err(problem) = check_secret_destination(&m.dst) {
                self.push(
                    DiagnosticKind::InvalidValue,
                    &key,
                    problem,
                    "mount it at a path of plain characters, e.g. `/run/secrets/pip_token` or `/root/.netrc`",
                );
            }
        }
    }

    fn tag_format(&mut self, spec: &ImageSpec) {
        let Some(fmt) = &spec.tag_format else {
            return;
        };
        if !fmt.contains("{spec_hash}") {
            self.push(
                DiagnosticKind::InvalidValue,
                "tag_format",
                format!("`{fmt}` does not contain `{{spec_hash}}`"),
                "include the placeholder, e.g. `{spec_hash}-dev`, so the tag follows the content",
            );
            return;
        }
        let sample = fmt.replace("{spec_hash}", &"0".repeat(crate::hash::HASH_LEN));
        if sample.contains(['{', '}']) {
            self.push(
                DiagnosticKind::InvalidValue,
                "tag_format",
                format!("`{fmt}` has a placeholder other than `{{spec_hash}}`"),
                "only `{spec_hash}` is supported",
            );
        } else if !reference::is_tag(&sample) {
            self.push(
                DiagnosticKind::InvalidValue,
                "tag_format",
                format!("`{fmt}` yields the invalid tag `{sample}`"),
                "tags may contain letters, digits, `_`, `.`, `-` (not first), at most 128 characters",
            );
        }
    }

    fn env(&mut self, spec: &ImageSpec) {
        for key in spec.env.keys() {
            if !is_env_name(key) {
                self.push(
                    DiagnosticKind::InvalidValue,
                    &format!("env.{key}"),
                    format!("`{key}` is not a valid environment variable name"),
                    "use letters, digits and `_`, not starting with a digit",
                );
            }
        }
    }

    fn cuda(&mut self, spec: &ImageSpec) {
        for (key, value) in [("cuda", &spec.cuda), ("cudnn", &spec.cudnn)] {
            if let Some(v) = value
                && !(v
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())))
            {
                self.push(
                    DiagnosticKind::InvalidValue,
                    key,
                    format!("`{v}` is not a version"),
                    "write a quoted version such as \"12.4\"",
                );
            }
        }
        if spec.cudnn.is_some() && spec.cuda.is_none() {
            self.push(
                DiagnosticKind::Conflict,
                "cudnn",
                "`cudnn` needs `cuda`".into(),
                "set `cuda` too (e.g. `cuda: \"12.4\"`), or remove `cudnn`",
            );
        }
    }

    fn indexes(&mut self, spec: &ImageSpec) {
        let urls = spec
            .pip_index
            .iter()
            .map(|u| ("pip_index".to_string(), u))
            .chain(
                spec.pip_extra_index_url
                    .iter()
                    .enumerate()
                    .map(|(i, u)| (format!("pip_extra_index_url[{i}]"), u)),
            );
        let mut bad = Vec::new();
        for (key, url) in urls {
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || url.contains(char::is_whitespace)
            {
                bad.push((key, url.clone()));
            }
        }
        for (key, url) in bad {
            self.push(
                DiagnosticKind::InvalidValue,
                &key,
                format!("`{url}` is not an http(s) URL"),
                "write the full index URL, e.g. `https://pypi.org/simple`",
            );
        }
    }

    fn builder_config(&mut self, spec: &ImageSpec) {
        for (key, value) in &spec.builder_config {
            let field = format!("builder_config.{key}");
            if !BUILDER_CONFIG_KEYS.contains(&key.as_str()) {
                self.push(
                    DiagnosticKind::UnknownKey,
                    &field,
                    format!("unknown builder_config key `{key}`"),
                    "known keys: `uv_image`, `micromamba_image`",
                );
            } else if let Err(why) = reference::check_reference(value) {
                self.push(
                    DiagnosticKind::InvalidValue,
                    &field,
                    format!("invalid image reference `{value}`: {why}"),
                    "write an image reference such as `ghcr.io/astral-sh/uv:0.5`",
                );
            }
        }
    }

    fn base_image(&mut self, spec: &ImageSpec) {
        match &spec.base_image {
            Some(BaseImage::Reference(r)) => {
                if let Err(why) = reference::check_reference(r) {
                    self.push(
                        DiagnosticKind::InvalidValue,
                        "base_image",
                        format!("invalid image reference `{r}`: {why}"),
                        "write a reference such as `python:3.11-slim`, or a nested spec mapping",
                    );
                }
            }
            Some(BaseImage::Spec(base)) => {
                let prefix = self.field("base_image");
                self.out.extend(validate(base, self.root, &prefix));
            }
            None => {}
        }
    }
}

/// The one rule for a `pip_secret_mounts` destination (validation and the plan's secret mounts
/// both use it). It is written into a comma-separated `RUN --mount=type=secret,...,target=<dst>`
/// option, where a comma, quote or space would start another option and a `\` escapes the next
/// character (a trailing one is dropped by BuildKit): each is refused rather than changed.
///
/// A relative destination (flytekit's own test uses `secret_dst_2`) is accepted and means what
/// BuildKit makes of it: a path below the working directory of the install step (the image's
/// `workdir`), see [`crate::plan::secrets`]; `..` is refused, as it would leave that directory.
pub fn check_secret_destination(dst: &str) -> Result<(), String> {
    if dst.trim_matches('/').is_empty() {
        return Err(format!("secret destination `{dst}` names no file"));
    }
    if !dst.starts_with('/') && dst.split('/').any(|c| c == "..") {
        return Err(format!(
            "secret destination `{dst}` is relative and contains `..`"
        ));
    }
    if let Some(c) = dst
        .chars()
        .find(|c| matches!(c, ',' | '"' | '\'' | '\\') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "secret destination `{}` contains {}, which the secret mount cannot carry",
            if c.is_control() {
                dst.escape_debug().to_string()
            } else {
                dst.to_string()
            },
            match c {
                '\\' => "a backslash".to_string(),
                ',' => "a comma".to_string(),
                '"' | '\'' => "a quote".to_string(),
                c => format!("the character {:?}", c),
            }
        ));
    }
    Ok(())
}

/// Where `rel` really is, when a symbolic link on the way takes it outside `root`.
fn escapes_root(root: &Path, rel: &Path) -> Option<PathBuf> {
    let real_root = root.canonicalize().ok()?;
    let target = root.join(rel).canonicalize().ok()?;
    (!target.starts_with(&real_root)).then_some(target)
}

fn is_env_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}
