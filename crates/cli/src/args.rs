//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use imagespec_core::build::{BuildCache, CacheRef, ExistencePolicy, Variant};
use imagespec_core::plan::runtime::Runtime;

/// Turn a declarative ImageSpec into a content-addressed container image: build it only when it
/// does not exist yet, and push it.
#[derive(Debug, Parser)]
#[command(name = "imagespec", version, about, long_about = None, after_help = ENVIRONMENT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Output format: human text, or JSON for programs (JSON lines for `build`).
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Directory that relative paths in the spec resolve against [default: the current directory].
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Configuration file [default: $IMAGESPEC_CONFIG, else ~/.config/imagespec/config.yaml].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// No progress and no summary: only errors, and what a command prints on stdout.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Every environment variable imagespec reads, for `--help`.
pub const ENVIRONMENT: &str = "\
Environment:
  IMAGESPEC_CONFIG             configuration file [default: ~/.config/imagespec/config.yaml]
  IMAGESPEC_VARIANT            deployment variant (flyte, serverless, byoc, byok, selfmanaged)
  IMAGESPEC_TAG_SCHEME         imagespec or flytekit (image names)
  IMAGESPEC_REMOTE_URL         the build service (builder `union`)
  IMAGESPEC_REMOTE_TOKEN       its bearer token
  IMAGESPEC_NETWORK_TIMEOUT    registry and service timeouts (`2.5`, `500ms`)
  DOCKER_HOST, DOCKER_CONTEXT  the Docker engine, as the docker CLI reads them
  DOCKER_CONFIG                Docker's config.json directory (credentials, contexts)
  DOCKER_TLS_VERIFY            set: a tcp:// engine speaks TLS with client certificates
  DOCKER_CERT_PATH             their directory: ca.pem, cert.pem, key.pem [default: ~/.docker]
  CONTAINER_HOST               the Podman engine
  HOME, XDG_RUNTIME_DIR, COLIMA_HOME, TMPDIR
                               where the well-known engine sockets are looked for (macOS too)
  REGISTRY_AUTH_FILE           Podman's auth.json
  FLYTE_FORCE_PUSH_IMAGE_SPEC  1: rebuild even if the image exists
  FLYTE_PUSH_IMAGE_SPEC        0 or false: build without pushing
  FLYTE_IMG_FAST_FAIL          1: fail when existence is unknown
  XDG_CONFIG_HOME, HOME        where the configuration file is looked for
  XDG_RUNTIME_DIR              where build locks are taken
  IMAGESPEC_CACHE_FROM         registry build cache to import (--cache-from)
  IMAGESPEC_CACHE_TO           registry build cache to export (--cache-to)
  HTTP_PROXY, HTTPS_PROXY, NO_PROXY, FTP_PROXY, ALL_PROXY (either case)
                               proxies for RUN steps (build args; with config.json's `proxies`)
  NO_COLOR                     set: no colour
  RUST_LOG                     log filter (overrides -v/--quiet)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lines for people (a live view on a terminal).
    Text,
    /// One JSON document (JSON lines for `build`).
    Json,
}

/// `--tag-scheme`: whose naming rule gives the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TagSchemeArg {
    /// imagespec's own content hash (`imagespec-tag-v1`).
    Imagespec,
    /// flytekit 1.16's `ImageSpec.image_name()`, the names pyflyte looks for.
    Flytekit,
}

impl From<TagSchemeArg> for imagespec_core::hash::TagScheme {
    fn from(arg: TagSchemeArg) -> Self {
        match arg {
            TagSchemeArg::Imagespec => imagespec_core::hash::TagScheme::Imagespec,
            TagSchemeArg::Flytekit => imagespec_core::hash::TagScheme::Flytekit,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec file and report every problem with its line and column.
    Validate(SpecArgs),
    /// Print the image name (registry/name:tag) a spec builds.
    Tag(TagArgs),
    /// List the builders and the default of the deployment variant.
    Builders(VariantArgs),
    /// Build and push the image unless it already exists.
    Build(BuildArgs),
    /// Print the Dockerfile generated for a spec.
    Dockerfile(PlanArgs),
    /// Write the build context (a reproducible tar) for a spec.
    Context(ContextArgs),
    /// Run the build service for the `union` (remote) builder: `imagespec serve --config service.yaml`.
    Serve(ServeArgs),
    /// Print a shell completion script: `imagespec completions bash > /etc/bash_completion.d/imagespec`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory with `--dir`.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell the script is for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `imagespec.1` and one `imagespec-COMMAND.1` per command here instead of printing.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Log lines as `text` or `json` (one object per line) [config: log_format; default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<imagespec_service::logging::LogFormat>,
    /// Collect garbage once (old builds, logs, unused blobs, as `gc:` in the configuration
    /// says), print what went, and exit; refused while a service holds the data directory.
    #[arg(long)]
    pub gc_once: bool,
    /// Check the configuration (every file it names, workers' TLS certificates included) and
    /// exit: 0 when the service would start with it, 3 naming the file and line when not.
    #[arg(long, conflicts_with = "gc_once")]
    pub check_config: bool,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// The spec file (YAML or JSON).
    pub spec: PathBuf,
    /// flytekit release the Python install adds unless the spec names flytekit or union
    /// (`none`: no Flyte runtime) [config: flytekit_version; default: the pinned release].
    #[arg(long, value_name = "VERSION", value_parser = Runtime::parse)]
    pub flytekit_version: Option<Runtime>,
    /// Do not add flytekit: an image that does not run Flyte tasks [config: `flytekit: false`].
    #[arg(long, conflicts_with_all = ["flytekit_version", "union_version"])]
    pub no_flytekit: bool,
    /// union release the install adds on the Union variants (serverless, byoc, byok,
    /// selfmanaged) unless the spec names union or unionai, as Union's builder does
    /// [config: union_version; default: the pinned release].
    #[arg(long, value_name = "VERSION", value_parser = Runtime::parse_union, conflicts_with = "flytekit_version")]
    pub union_version: Option<Runtime>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Push to this registry instead of the spec's `registry`.
    #[arg(long)]
    pub registry: Option<String>,
    /// Also list every input of the hash.
    #[arg(long)]
    pub explain: bool,
    /// Naming scheme [config: tag_scheme; default: imagespec].
    #[arg(long, value_enum, env = "IMAGESPEC_TAG_SCHEME", value_name = "SCHEME")]
    pub tag_scheme: Option<TagSchemeArg>,
}

#[derive(Debug, Args)]
pub struct VariantArgs {
    /// Deployment variant [env: IMAGESPEC_VARIANT] [config: variant; default: flyte].
    // Not clap's `env =`: `imagespec builders` reports where the variant came from, so the
    // environment and the config file are read (and their bad values refused) in `Setup::variant`.
    #[arg(long, value_enum, value_name = "VARIANT")]
    pub variant: Option<VariantArg>,
}

/// `--variant`: the deployment variant ([`Variant`]), a closed set clap lists and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VariantArg {
    /// Flyte OSS: local builds by default.
    Flyte,
    /// Union Serverless: the cloud builder only; local builds are refused.
    Serverless,
    /// Union BYOC: local by default, `union` on request.
    Byoc,
    /// Union BYOK: as byoc.
    Byok,
    /// Union Self-managed: as byoc.
    #[value(alias = "self-managed", alias = "self_managed")]
    Selfmanaged,
}

impl From<VariantArg> for Variant {
    fn from(arg: VariantArg) -> Self {
        match arg {
            VariantArg::Flyte => Variant::Flyte,
            VariantArg::Serverless => Variant::Serverless,
            VariantArg::Byoc => Variant::Byoc,
            VariantArg::Byok => Variant::Byok,
            VariantArg::Selfmanaged => Variant::Selfmanaged,
        }
    }
}

/// `--if-unknown`: what to do when existence cannot be determined ([`ExistencePolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IfUnknownArg {
    /// Stop with an error that says why the check failed.
    Fail,
    /// Build the image anyway.
    Build,
    /// Assume it exists, and say so.
    Assume,
}

impl From<IfUnknownArg> for ExistencePolicy {
    fn from(arg: IfUnknownArg) -> Self {
        match arg {
            IfUnknownArg::Fail => ExistencePolicy::Fail,
            IfUnknownArg::Build => ExistencePolicy::Build,
            IfUnknownArg::Assume => ExistencePolicy::Assume,
        }
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Builder to use, overriding the spec's `builder` (see `imagespec builders`).
    #[arg(long)]
    pub builder: Option<String>,
    #[command(flatten)]
    pub variant: VariantArgs,
    /// Push to this registry instead of the spec's `registry`.
    #[arg(long)]
    pub registry: Option<String>,
    /// Rebuild even if the image exists [env: FLYTE_FORCE_PUSH_IMAGE_SPEC].
    #[arg(long)]
    pub force: bool,
    /// Show what would be done (builder, image, existence) without building.
    #[arg(long)]
    pub dry_run: bool,
    /// Build into the local engine only; do not push.
    #[arg(long)]
    pub no_push: bool,
    /// When existence cannot be determined [config: if_unknown; default: fail].
    #[arg(long, value_enum, value_name = "POLICY")]
    pub if_unknown: Option<IfUnknownArg>,
    /// Container engine endpoint for local builds (e.g. unix:///run/podman/podman.sock, or
    /// tcp://host:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH).
    #[arg(long, value_name = "URL")]
    pub engine: Option<String>,
    /// Naming scheme [config: tag_scheme; default: imagespec].
    #[arg(long, value_enum, env = "IMAGESPEC_TAG_SCHEME", value_name = "SCHEME")]
    pub tag_scheme: Option<TagSchemeArg>,
    /// Build and push under this tag instead of a computed one: for a caller that named the
    /// image itself (the flytekit plugin passes flytekit's tag). Replaces the naming scheme.
    #[arg(long, value_name = "TAG", value_parser = parse_tag, conflicts_with = "tag_scheme")]
    pub tag: Option<String>,
    /// Import the build cache from a registry (`type=registry,ref=REF` or `REF`; repeatable),
    /// replacing the spec's `builder_options.cache_from`; not part of the image name.
    #[arg(long, value_name = "CACHE", env = "IMAGESPEC_CACHE_FROM", value_parser = parse_cache_from)]
    pub cache_from: Vec<CacheRef>,
    /// Export the build cache (`type=registry,ref=REF[,mode=max]`, or `type=inline` on
    /// Docker), replacing the spec's `builder_options.cache_to`; not part of the image name.
    #[arg(long, value_name = "CACHE", env = "IMAGESPEC_CACHE_TO", value_parser = CacheRef::parse)]
    pub cache_to: Option<CacheRef>,
}

impl BuildArgs {
    /// The `--cache-from` / `--cache-to` flags.
    pub fn cache(&self) -> BuildCache {
        BuildCache {
            from: self.cache_from.clone(),
            to: self.cache_to.clone(),
        }
    }
}

fn parse_cache_from(value: &str) -> Result<CacheRef, String> {
    CacheRef::parse_import(value)
}

/// An OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}` (the distribution spec's rule).
fn parse_tag(tag: &str) -> Result<String, String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(tag.to_string())
    } else {
        Err(format!(
            "`{tag}` is not an image tag: use 1 to 128 of A-Z a-z 0-9 _ . - (not starting with . or -)"
        ))
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Push to this registry instead of the spec's `registry` (changes a base spec's name).
    #[arg(long)]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct ContextArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Where to write the tar (`-` for standard output).
    #[arg(long = "out", value_name = "FILE")]
    pub out: PathBuf,
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    /// The flag's values and core's variants are the same set (a variant added to core and not
    /// here would be refusable only through the environment).
    #[test]
    fn variant_values_are_core_variants() {
        let flags: Vec<Variant> = VariantArg::value_variants()
            .iter()
            .map(|v| Variant::from(*v))
            .collect();
        assert_eq!(flags, Variant::ALL);
        for v in VariantArg::value_variants() {
            let name = v.to_possible_value().map(|p| p.get_name().to_string());
            assert_eq!(name.as_deref(), Some(Variant::from(*v).as_str()));
        }
    }

    #[test]
    fn policy_values_parse_as_core_policies() {
        for v in IfUnknownArg::value_variants() {
            let name = v.to_possible_value().map(|p| p.get_name().to_string());
            let parsed: Result<ExistencePolicy, _> = name.unwrap_or_default().parse();
            assert_eq!(parsed, Ok(ExistencePolicy::from(*v)));
        }
    }
}
