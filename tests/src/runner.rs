//! Runs built images and reads what is inside them, through an engine's CLI.
//!
//! A scenario only passes when the image *does* what the spec says (a package imports, a file is
//! where it belongs), so every backend needs a way to run its images. Local backends run them in
//! the engine that built them; a backend whose images live only in a registry (the remote build
//! service) pulls them into a local engine first ([`Runner::pulling`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use crate::devenv::HINT;
use crate::registry::DevRegistry;

/// Which CLI dialect: the few flags that differ between Docker and Podman.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cli {
    Docker,
    Podman,
}

/// An engine CLI that runs and inspects images.
#[derive(Debug, Clone)]
pub struct Runner {
    cli: Cli,
    program: PathBuf,
    /// Extra environment for the CLI (a private `DOCKER_CONFIG` for pulls).
    env: Vec<(String, OsString)>,
    /// Pull every image from its registry before using it.
    pull: bool,
    /// Keeps the registry's temporary config alive while the runner uses it.
    _registry: Option<DevRegistry>,
}

impl Runner {
    /// Docker's CLI: `$IMAGESPEC_TEST_DOCKER`, else Debian's `/usr/bin/docker` (the engine's own
    /// version), else `docker` on `PATH`.
    pub fn docker() -> Runner {
        let program = std::env::var_os("IMAGESPEC_TEST_DOCKER")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/usr/bin/docker")).filter(|p| p.exists()))
            .unwrap_or_else(|| PathBuf::from("docker"));
        Runner::new(Cli::Docker, program)
    }

    /// Podman's CLI, which shares its image store with the Podman API service.
    pub fn podman() -> Runner {
        let program = std::env::var_os("IMAGESPEC_TEST_PODMAN")
            .map_or_else(|| PathBuf::from("podman"), PathBuf::from);
        Runner::new(Cli::Podman, program)
    }

    pub fn new(cli: Cli, program: impl Into<PathBuf>) -> Runner {
        Runner {
            cli,
            program: program.into(),
            env: Vec::new(),
            pull: false,
            _registry: None,
        }
    }

    /// Pulls each image from `registry` (logged in with its private config) before running it:
    /// for builders that leave nothing in a local engine.
    #[must_use]
    pub fn pulling(mut self, registry: &DevRegistry) -> Runner {
        let config = match self.cli {
            Cli::Docker => (
                "DOCKER_CONFIG",
                registry.docker_config().as_os_str().to_owned(),
            ),
            Cli::Podman => (
                "REGISTRY_AUTH_FILE",
                registry
                    .docker_config()
                    .join("config.json")
                    .into_os_string(),
            ),
        };
        self.env.push((config.0.to_string(), config.1));
        self.pull = true;
        self._registry = Some(registry.clone());
        self
    }

    /// The name of the image store this runner works on, for [`crate::store_lock`].
    pub fn store(&self) -> &'static str {
        match self.cli {
            Cli::Docker => "docker",
            Cli::Podman => "podman",
        }
    }

    pub fn cli(&self) -> Cli {
        self.cli
    }

    /// Whether images are pulled before use (and so removed from this engine afterwards too).
    pub fn pulls(&self) -> bool {
        self.pull
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.program);
        c.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        c
    }

    async fn output(&self, args: &[&str]) -> Result<Output> {
        self.command(args)
            .output()
            .await
            .with_context(|| format!("cannot run {}; {HINT}", self.program.display()))
    }

    /// Runs the CLI; fails with its output unless it succeeds. Returns stdout.
    pub async fn cmd(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args).await?;
        if !out.status.success() {
            bail!(
                "`{} {}` failed ({}):\n{}{}",
                self.program.display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout),
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Fails, pointing at `scripts/dev-env.sh`, when the CLI cannot reach its engine.
    pub async fn check(&self) -> Result<()> {
        self.cmd(&["version"])
            .await
            .map(drop)
            .with_context(|| format!("the {:?} CLI cannot reach its engine; {HINT}", self.cli))
    }

    /// [`Runner::check`], then [`Runner::require_image`] for the dev environment's base and
    /// helper images that every scenario builds from.
    pub async fn require_dev_images(&self) -> Result<()> {
        self.check().await?;
        for image in [crate::devenv::PYTHON_IMAGE, crate::devenv::UV_IMAGE] {
            self.require_image(image).await?;
        }
        Ok(())
    }

    /// Fails, pointing at `scripts/dev-env.sh`, when `image` is not in the engine.
    pub async fn require_image(&self, image: &str) -> Result<()> {
        self.cmd(&["image", "inspect", image])
            .await
            .map(drop)
            .with_context(|| format!("{image} is not in the {:?} engine; {HINT}", self.cli))
    }

    /// Makes `image` available to this engine: pulls it if this runner pulls, else checks it is
    /// there (a local builder left it).
    pub async fn fetch(&self, image: &str) -> Result<()> {
        if self.pull {
            self.cmd(&["pull", "--quiet", image]).await.map(drop)
        } else {
            self.cmd(&["image", "inspect", "--format", "{{.Id}}", image])
                .await
                .map(drop)
                .with_context(|| {
                    format!(
                        "the builder reported {image}, but the {:?} engine does not have it",
                        self.cli
                    )
                })
        }
    }

    /// `run` with the image's own entrypoint; `args` replace its command. No network, no pull:
    /// what runs is what was built.
    pub async fn run(&self, image: &str, args: &[&str]) -> Result<String> {
        let mut all = vec!["run", "--rm", "--network=none", "--pull=never", image];
        all.extend_from_slice(args);
        self.cmd(&all).await
    }

    /// Runs `program args...` in the image, whatever its entrypoint.
    pub async fn exec(&self, image: &str, program: &str, args: &[&str]) -> Result<String> {
        let mut all = vec![
            "run",
            "--rm",
            "--network=none",
            "--pull=never",
            "--entrypoint",
            program,
            image,
        ];
        all.extend_from_slice(args);
        self.cmd(&all).await
    }

    /// Runs a shell script in the image.
    pub async fn sh(&self, image: &str, script: &str) -> Result<String> {
        self.exec(image, "/bin/sh", &["-c", script]).await
    }

    /// The image's `inspect` object.
    pub async fn inspect(&self, image: &str) -> Result<serde_json::Value> {
        let text = self.cmd(&["image", "inspect", image]).await?;
        let mut all: Vec<serde_json::Value> =
            serde_json::from_str(&text).context("inspect output is not a JSON list")?;
        if all.is_empty() {
            bail!("inspect of {image} returned nothing");
        }
        Ok(all.swap_remove(0))
    }

    /// The image's layers (`RootFS.Layers`: uncompressed digests, base first).
    pub async fn layers(&self, image: &str) -> Result<Vec<String>> {
        let inspect = self.inspect(image).await?;
        let layers = inspect
            .pointer("/RootFS/Layers")
            .and_then(|l| l.as_array())
            .with_context(|| format!("no RootFS.Layers in the inspect output of {image}"))?;
        Ok(layers
            .iter()
            .filter_map(|l| l.as_str().map(str::to_string))
            .collect())
    }

    /// `history --no-trunc`.
    pub async fn history(&self, image: &str) -> Result<String> {
        self.cmd(&["history", "--no-trunc", image]).await
    }

    /// Writes `save`'s archive of the image to `path`.
    pub async fn save(&self, image: &str, path: &Path) -> Result<()> {
        let path = path.to_str().context("a temporary path is not UTF-8")?;
        self.cmd(&["save", "-o", path, image]).await.map(drop)
    }

    /// Removes images, ignoring failures: cleanup that must also run after a failed test
    /// (synchronous, because it runs from `Drop`).
    pub fn remove_now(&self, images: &[String]) {
        if images.is_empty() {
            return;
        }
        // Never while another test process builds on this store (see `store_lock`).
        let _lock = crate::store_lock::for_removal(self.store());
        // One at a time: an engine may give up on the whole list when one name is unknown.
        for image in images {
            let mut c = std::process::Command::new(&self.program);
            c.args(["rmi", "--force", image])
                .envs(self.env.iter().map(|(k, v)| (k, v)));
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let _ = c.status();
        }
    }
}
