//! What a spec puts into an image besides dependencies: `env`, `commands`, `copy`,
//! `source_root` (after ignore files) and `entrypoint`.

use anyhow::{Result, ensure};

use super::expect_output;
use crate::backend::Backend;
use crate::case::Case;

/// `env`: spaces, quotes and backslashes arrive verbatim; `$NAME` and `${NAME:-default}` expand
/// against the image's environment as a Dockerfile `ENV` does (flytekit's behaviour, so
/// `PATH: /x/bin:$PATH` extends PATH); `\$` is a literal `$`.
pub async fn env_values(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "env_values")?;
    let verbatim = "  two  spaces, 100% 'single' \"double\" back\\slash C:\\dir\\  ";
    let vars = [
        ("CONF_VERBATIM", verbatim),
        ("CONF_LITERAL_DOLLAR", "\\$HOME costs \\${PATH}"),
        ("CONF_DEFAULT", "${CONF_UNSET_ANYWHERE:-fallback}"),
        ("PATH", "/opt/conf-tools/bin:$PATH"),
    ];
    let image = case.build(case.spec("").with_env(vars)).await?;
    let out = case
        .runner()
        .exec(
            &image,
            "python",
            &["-c", "import os, json; print(json.dumps([os.environ.get(k) for k in ('CONF_VERBATIM', 'CONF_LITERAL_DOLLAR', 'CONF_DEFAULT', 'PATH')]))"],
        )
        .await?;
    let got: Vec<Option<String>> = serde_json::from_str(out.trim())?;
    ensure!(got.len() == 4, "unexpected output {out}");
    let want_fixed = [
        Some(verbatim.to_string()),
        Some("$HOME costs ${PATH}".to_string()),
        Some("fallback".to_string()),
    ];
    ensure!(
        got[..3] == want_fixed,
        "env values changed on the way into the image:\n  want {want_fixed:?}\n  got  {:?}",
        &got[..3]
    );
    // PATH was extended, not replaced: the venv's bin (set by the Python step) is still on it,
    // so `python` above was found.
    let path = got[3].clone().unwrap_or_default();
    ensure!(
        path.starts_with("/opt/conf-tools/bin:") && path.len() > "/opt/conf-tools/bin:".len(),
        "PATH should be /opt/conf-tools/bin: followed by the image's PATH, got {path:?}"
    );
    Ok(())
}

/// `commands`: each runs, in order, as its own step, and sees `env`.
pub async fn commands_in_order(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "commands_in_order")?;
    let spec = case.spec("").with_env([("CONF_MARK", "third")]).with_commands([
        "mkdir -p /opt/conformance && echo first > /opt/conformance/1 && echo first >> /opt/conformance/order",
        "test -f /opt/conformance/1 && echo second > /opt/conformance/2 && echo second >> /opt/conformance/order",
        "test -f /opt/conformance/2 && echo \"$CONF_MARK\" > /opt/conformance/3 && echo \"$CONF_MARK\" >> /opt/conformance/order",
    ]);
    let image = case.build(spec).await?;
    let out = case
        .runner()
        .sh(
            &image,
            "cat /opt/conformance/order /opt/conformance/1 /opt/conformance/2 /opt/conformance/3",
        )
        .await?;
    expect_output(
        "the commands' files",
        &out,
        "first\nsecond\nthird\nfirst\nsecond\nthird",
    )
}

/// `copy`: a file and a directory (with a subdirectory) land at their relative paths under the
/// working directory; a file not listed does not.
pub async fn copy_paths(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "copy_paths")?;
    case.write("config/settings.toml", "mode = \"conformance\"\n")?;
    case.write("data/a.txt", "a\n")?;
    case.write("data/sub/b.txt", "b\n")?;
    case.write("other.txt", "not copied\n")?;
    let image = case
        .build(case.spec("").with_copy(["config/settings.toml", "data"]))
        .await?;
    let out = case
        .runner()
        .sh(
            &image,
            "cat config/settings.toml data/a.txt data/sub/b.txt; \
             if [ -e other.txt ] || [ -e config/other.txt ]; then echo other-present; else echo other-absent; fi",
        )
        .await?;
    expect_output(
        "the copied files",
        &out,
        "mode = \"conformance\"\na\nb\nother-absent",
    )
}

/// `source_root`: `.gitignore` (also a nested one) and `.dockerignore` decide which files are
/// copied; the others arrive at their paths.
pub async fn source_root_filtering(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "source_root_filtering")?;
    case.write("src/.gitignore", "*.log\nbuild/\n")?;
    case.write("src/.dockerignore", "secret.txt\ndocs/\n")?;
    case.write("src/app/.gitignore", "cache.tmp\n")?;
    case.write("src/app/main.py", "print('main')\n")?;
    case.write("src/keep.txt", "kept\n")?;
    for ignored in [
        "app/debug.log",
        "build/out.bin",
        "secret.txt",
        "docs/readme.md",
        "app/cache.tmp",
    ] {
        case.write(&format!("src/{ignored}"), "must not be copied\n")?;
    }
    let image = case.build(case.spec("").with_source_root("src")).await?;
    let paths = "app/main.py keep.txt app/debug.log build/out.bin build secret.txt docs/readme.md docs app/cache.tmp";
    let out = case
        .runner()
        .sh(&image, &format!("for p in {paths}; do if [ -e \"$p\" ]; then echo \"present $p\"; else echo \"absent $p\"; fi; done"))
        .await?;
    let want = "present app/main.py\npresent keep.txt\nabsent app/debug.log\nabsent build/out.bin\nabsent build\n\
                absent secret.txt\nabsent docs/readme.md\nabsent docs\nabsent app/cache.tmp";
    expect_output("the filtered source tree", &out, want)?;
    let main = case
        .runner()
        .exec(&image, "python", &["app/main.py"])
        .await?;
    expect_output("a source file", &main, "main")
}

/// The root's `.dockerignore` (patterns relative to the root) and the built-in excludes
/// (`__pycache__/`, `*.pyc`, `.venv/`, `.DS_Store`) keep files out of the image; a `!` in the
/// tree's own `.dockerignore` keeps a virtualenv, one in the root's keeps a `.pyc`. The remote
/// builder recomputes the name from what was uploaded (the root's `.dockerignore` with it), so
/// this also checks that the upload is the same selection.
pub async fn root_dockerignore_and_builtin_excludes(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "root_dockerignore_and_builtin_excludes")?;
    case.write(".dockerignore", "*.log\n/src/private/\n!/src/keep.pyc\n")?;
    case.write("src/.dockerignore", "!tools/.venv/\n")?;
    case.write("src/app.py", "print('app')\n")?;
    case.write("src/keep.pyc", "kept by the root's re-include\n")?;
    case.write("src/tools/.venv/pyvenv.cfg", "kept\n")?;
    for ignored in [
        "debug.log",
        "private/key.txt",
        "__pycache__/app.cpython-311.pyc",
        "old.pyc",
        ".venv/pyvenv.cfg",
        ".DS_Store",
    ] {
        case.write(&format!("src/{ignored}"), "must not be copied\n")?;
    }
    let image = case.build(case.spec("").with_source_root("src")).await?;
    let paths = "app.py tools/.venv/pyvenv.cfg keep.pyc debug.log private __pycache__ old.pyc .venv .DS_Store";
    let out = case
        .runner()
        .sh(&image, &format!("for p in {paths}; do if [ -e \"$p\" ]; then echo \"present $p\"; else echo \"absent $p\"; fi; done"))
        .await?;
    let want = "present app.py\npresent tools/.venv/pyvenv.cfg\npresent keep.pyc\nabsent debug.log\nabsent private\n\
                absent __pycache__\nabsent old.pyc\nabsent .venv\nabsent .DS_Store";
    expect_output("the filtered source tree", &out, want)
}

/// Symlinks in `source_root` and in a copied directory: a link inside the tree arrives as the
/// same link (to a file, to a directory, dangling), as Docker's build context keeps it; a link
/// that leaves the tree is refused before the builder is asked anything.
pub async fn symlinks(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "symlinks")?;
    case.write("src/app/main.py", "print('via link')\n")?;
    case.write("conf/settings.toml", "mode = 1\n")?;
    case.symlink("app/main.py", "src/run.py")?;
    case.symlink("app", "src/pkg")?;
    case.symlink("nowhere.toml", "conf/dangling.toml")?;
    let spec = case.spec("").with_source_root("src").with_copy(["conf"]);
    let image = case.build(spec.clone()).await?;
    let out = case
        .runner()
        .sh(
            &image,
            "readlink run.py; readlink pkg; readlink conf/dangling.toml; python run.py; cat pkg/main.py",
        )
        .await?;
    expect_output(
        "links in the image",
        &out,
        "app/main.py\napp\nnowhere.toml\nvia link\nprint('via link')",
    )?;

    let refused = Case::new(backend, "symlinks_leaving")?;
    refused.write("src/app/main.py", "print(1)\n")?;
    refused.write("elsewhere.txt", "outside the tree\n")?;
    refused.symlink("../../elsewhere.txt", "src/app/up.txt")?;
    match refused
        .try_ensure(refused.spec("").with_source_root("src"), &refused.options())
        .await?
    {
        Err(err) => {
            let text = format!("{err}");
            ensure!(
                text.contains("up.txt") && text.contains("outside the tree"),
                "the refusal should name the link and why: {text}"
            );
        }
        Ok(outcome) => anyhow::bail!("a link leaving the tree was built: {outcome:?}"),
    }
    let (builds, checks) = (
        refused.recorder().builds().len(),
        refused.recorder().checks(),
    );
    ensure!(
        builds == 0 && checks == 0,
        "a link leaving the tree reached the builder: {builds} builds, {checks} checks"
    );
    Ok(())
}

/// `entrypoint`: a set entrypoint is what a plain `run` runs; `[]` clears the one a base image
/// (here a base spec) set, so the run's arguments are the command.
pub async fn entrypoint(backend: &Backend) -> Result<()> {
    let case = Case::new(backend, "entrypoint")?;
    let base =
        case.spec("set")
            .with_entrypoint(["python", "-c", "print('conformance entrypoint')"]);
    let cleared = case
        .spec("cleared")
        .with_base_spec(base)
        .with_entrypoint(Vec::<String>::new());
    let outcome = case.ensure(cleared).await?;
    let base_image = outcome
        .base
        .as_ref()
        .map(|b| b.image.clone())
        .unwrap_or_default();
    case.fetch(&base_image).await?;
    case.fetch(&outcome.image).await?;
    let out = case.runner().run(&base_image, &[]).await?;
    expect_output("the entrypoint", &out, "conformance entrypoint")?;
    let out = case
        .runner()
        .run(&outcome.image, &["echo", "cleared"])
        .await?;
    expect_output(
        "a run of the image whose entrypoint was cleared",
        &out,
        "cleared",
    )?;
    let inspect = case.runner().inspect(&outcome.image).await?;
    let entry = inspect
        .pointer("/Config/Entrypoint")
        .cloned()
        .unwrap_or_default();
    ensure!(
        entry.is_null() || entry.as_array().is_some_and(Vec::is_empty),
        "the cleared entrypoint is {entry}"
    );
    Ok(())
}
