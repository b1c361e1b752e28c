//! The conventions users expect of a CLI: closed sets of values checked and listed by the parser,
//! `context --out` (not `-o`, which read like the global `--output`), shell completions and a man
//! page generated from the CLI definition.

mod common;

use std::path::Path;
use std::process::Output;

use common::{example, imagespec, isolated};

fn run(dir: &Path, args: &[&str]) -> Output {
    isolated(dir).args(args).output().expect("run imagespec")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The commands `imagespec --help` lists (without clap's `help`), so a command added later is
/// checked here without editing this file.
fn subcommands() -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = stdout(&run(dir.path(), &["--help"]));
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    assert!(commands.len() >= 9, "{help}");
    commands
}

/// Each closed set: a flag, a command taking it, its values.
const CLOSED_SETS: &[(&str, &str, &[&str])] = &[
    (
        "--variant",
        "build",
        &["flyte", "serverless", "byoc", "byok", "selfmanaged"],
    ),
    ("--if-unknown", "build", &["fail", "build", "assume"]),
    ("--output", "build", &["text", "json"]),
    ("--tag-scheme", "tag", &["imagespec", "flytekit"]),
    (
        "--variant",
        "builders",
        &["flyte", "serverless", "byoc", "byok", "selfmanaged"],
    ),
];

#[test]
fn help_lists_the_values_of_every_closed_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (flag, command, values) in CLOSED_SETS {
        let help = stdout(&run(dir.path(), &[command, "--help"]));
        let section: String = help
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(flag))
            .take_while(|l| !l.trim_start().starts_with("--") || l.contains(flag))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            section.contains("Possible values:"),
            "{command} {flag}:\n{help}"
        );
        for value in *values {
            assert!(
                section.contains(&format!("- {value}:")),
                "{command} {flag} lacks {value}:\n{section}"
            );
        }
    }
}

#[test]
fn a_bad_value_is_a_usage_error_listing_the_valid_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("spec.yaml"), "name: app\n").expect("write spec");
    for (flag, command, values) in CLOSED_SETS {
        let mut args = vec![*command, *flag, "nonsense"];
        if *command != "builders" {
            args.push("spec.yaml");
        }
        let out = run(dir.path(), &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{command} {flag}: {err}");
        assert!(
            err.contains(&format!("invalid value 'nonsense' for '{flag}")),
            "{command} {flag}: {err}"
        );
        let listed = format!("[possible values: {}]", values.join(", "));
        assert!(err.contains(&listed), "{command} {flag}: {err}");
    }
}

#[test]
fn the_variant_still_comes_from_the_environment_and_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let variant_of = |out: &Output| -> (String, String) {
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        (
            json["variant"].as_str().unwrap_or_default().to_string(),
            json["variant_source"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    // The flag, in either accepted spelling of self-managed.
    for spelling in ["selfmanaged", "self-managed"] {
        let out = run(
            dir.path(),
            &["builders", "--output", "json", "--variant", spelling],
        );
        assert_eq!(variant_of(&out), ("selfmanaged".into(), "flag".into()));
    }
    let out = isolated(dir.path())
        .args(["builders", "--output", "json"])
        .env("IMAGESPEC_VARIANT", "byok")
        .output()
        .expect("run");
    assert_eq!(variant_of(&out), ("byok".into(), "environment".into()));
    // The flag wins over the environment.
    let out = isolated(dir.path())
        .args(["builders", "--output", "json", "--variant", "byoc"])
        .env("IMAGESPEC_VARIANT", "byok")
        .output()
        .expect("run");
    assert_eq!(variant_of(&out), ("byoc".into(), "flag".into()));

    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "variant: serverless\n").expect("write config");
    let out = isolated(dir.path())
        .args(["builders", "--output", "json"])
        .env("IMAGESPEC_CONFIG", &config)
        .output()
        .expect("run");
    assert_eq!(
        variant_of(&out),
        ("serverless".into(), "config_file".into())
    );
}

#[test]
fn bad_values_outside_the_command_line_are_still_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = isolated(dir.path())
        .args(["builders"])
        .env("IMAGESPEC_VARIANT", "cloud")
        .output()
        .expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("IMAGESPEC_VARIANT"), "{err}");
    assert!(err.contains("`cloud`"), "{err}");

    let config = dir.path().join("config.yaml");
    for (text, key) in [
        ("variant: cloud\n", "variant"),
        ("if_unknown: maybe\n", "if_unknown"),
    ] {
        std::fs::write(&config, text).expect("write config");
        let out = isolated(dir.path())
            .args(["builders"])
            .env("IMAGESPEC_CONFIG", &config)
            .output()
            .expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{key}: {err}");
        assert!(
            err.contains(&format!("{}:1:", config.display())),
            "{key}: {err}"
        );
        assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
    }
}

#[test]
fn context_writes_with_out_and_refuses_the_old_o_naming_the_new_flag() {
    let spec = example("requirements");
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("ctx.tar");
    imagespec(&spec)
        .args(["context", "spec.yaml", "--out"])
        .arg(&tar)
        .assert()
        .success();
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).expect("open tar"));
    let names: Vec<String> = archive
        .entries()
        .expect("entries")
        .filter_map(|e| e.ok())
        .map(|e| e.path().expect("path").display().to_string())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("Dockerfile")), "{names:?}");

    for old in ["-o", "--output-file"] {
        let old_tar = dir.path().join("old.tar");
        let out = isolated(&spec)
            .args(["context", "spec.yaml", old])
            .arg(&old_tar)
            .output()
            .expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{old}: {err}");
        assert!(
            err.contains(&format!("write `--out {}`", old_tar.display())),
            "{old}: {err}"
        );
        assert!(err.contains("Usage: imagespec context"), "{old}: {err}");
        assert!(!old_tar.exists(), "{old} wrote a tar");
    }
    // Neither spelling: clap names the one that is required.
    let out = run(&spec, &["context", "spec.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--out <FILE>"), "{}", stderr(&out));
}

#[test]
fn bash_completions_define_the_function_and_know_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["completions", "bash"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    assert!(script.contains("_imagespec()"), "{script}");
    for command in subcommands() {
        assert!(
            script.contains(&format!("cmd=\"imagespec__subcmd__{command}\"")),
            "no completion for {command}"
        );
    }
    assert!(script.contains("--if-unknown"), "flags are completed");
    assert!(
        !script.contains("--output-file"),
        "the old spelling is not offered"
    );
    assert!(script.contains("fail build assume"), "values are completed");
    // Real bash loads it and registers the function for `imagespec`.
    let file = dir.path().join("imagespec.bash");
    std::fs::write(&file, &script).expect("write script");
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p imagespec",
            file.display()
        ))
        .output()
        .expect("run bash");
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    assert!(
        stdout(&loaded).contains("-F _imagespec"),
        "{}",
        stdout(&loaded)
    );
}

#[test]
fn zsh_and_fish_completions_are_for_imagespec() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (shell, marker) in [
        ("zsh", "#compdef imagespec"),
        ("fish", "complete -c imagespec"),
    ] {
        let out = run(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        for command in subcommands() {
            assert!(script.contains(&command), "{shell}: no {command}");
        }
    }
    let out = run(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("[possible values:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_man_page_has_a_title_and_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(
        page.lines().any(|l| l.starts_with(".TH imagespec 1")),
        "{page}"
    );
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    assert!(
        !page.contains("output\\-file"),
        "the old spelling is not documented"
    );
    for command in subcommands() {
        assert!(
            page.contains(&format!("imagespec\\-{command}(1)")),
            "the man page lacks {command}"
        );
    }
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pages = dir.path().join("man1");
    let out = isolated(dir.path())
        .args(["man", "--dir"])
        .arg(&pages)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let top = std::fs::read_to_string(pages.join("imagespec.1")).expect("imagespec.1");
    assert!(top.contains(".TH imagespec 1"), "{top}");
    for command in subcommands() {
        let page = std::fs::read_to_string(pages.join(format!("imagespec-{command}.1")))
            .unwrap_or_else(|e| panic!("imagespec-{command}.1: {e}"));
        assert!(
            page.contains(&format!(".TH imagespec-{command} 1")),
            "{command}: {page}"
        );
    }
}
