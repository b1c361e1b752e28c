//! The build view as a user sees it: `imagespec build` run in a pseudo-terminal (util-linux's
//! `script`), with the real engines of the dev environment and its registry. A warm rebuild
//! shows one line per step, each `CACHED` or timed, named by what the step is for; a push shows
//! its bytes; the piped and JSON views say the same in their own form.

mod common;

use std::path::Path;

use common::{engine_cli, imagespec, isolated, registry_login};

/// A small spec with two commands, built from the dev environment's local images.
fn write_spec(dir: &Path, name: &str, extra: &str) {
    std::fs::write(
        dir.join("spec.yaml"),
        format!(
            "name: {name}\n\
             base_image: localhost/imagespec/python:3.11-bookworm\n\
             builder_config: {{uv_image: localhost/imagespec/uv:latest}}\n\
             commands:\n  - echo first\n  - echo second\n{extra}"
        ),
    )
    .expect("write spec");
}

/// Runs `imagespec ARGS` in `dir` under a pseudo-terminal; returns what the terminal ended up
/// showing, line by line (each line's last redraw, escape sequences removed), and the exit code.
fn in_terminal(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Vec<String>, Option<i32>) {
    let binary = assert_cmd::cargo::cargo_bin("imagespec");
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command = std::iter::once(binary.display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let command = format!("stty cols {COLUMNS} rows 40 && exec {command}");
    // The environment `isolated` gives the binary, for `script`, which runs it on a new
    // pseudo-terminal.
    let isolated = isolated(dir);
    let mut cmd = std::process::Command::new("script");
    cmd.current_dir(dir)
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    for (k, v) in isolated.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run script(1)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (screen_lines(&text), out.status.code())
}

/// The columns of the pseudo-terminal (set with `stty`, so lines wrap where the test expects).
const COLUMNS: usize = 100;

/// What a terminal of [`COLUMNS`] columns shows after `raw`: a minimal emulator of what
/// indicatif and the view write (text, `\r`, `\n`, automatic wrap, `ESC[2K` line clear, `ESC[nA`
/// and `ESC[nB` cursor moves; colours and other sequences ignored).
fn screen_lines(raw: &str) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                col = 0;
            }
            '\u{1b}' => {
                if chars.peek() != Some(&'[') {
                    continue;
                }
                chars.next();
                let mut param = String::new();
                let mut command = ' ';
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        command = c;
                        break;
                    }
                    param.push(c);
                }
                let n: usize = param.parse().unwrap_or(1);
                match command {
                    'A' => row = row.saturating_sub(n),
                    'B' => row += n,
                    'K' => {
                        if let Some(line) = rows.get_mut(row) {
                            line.clear();
                        }
                    }
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                if col == COLUMNS {
                    row += 1;
                    col = 0;
                }
                while rows.len() <= row {
                    rows.push(Vec::new());
                }
                let line = &mut rows[row];
                while line.len() < col {
                    line.push(' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
        while rows.len() <= row {
            rows.push(Vec::new());
        }
    }
    rows.into_iter()
        .map(|l| l.into_iter().collect::<String>().trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The finished-step lines (`#3 command 1   CACHED`).
fn step_lines(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| {
            l.strip_prefix('#')
                .and_then(|r| r.split_once(' '))
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .collect()
}

fn warm_rebuild_shows_one_cached_line_per_step(builder: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_spec(dir.path(), &format!("terminal-view-{builder}"), "");
    let build = ["build", "spec.yaml", "--builder", builder, "--no-push"];
    let first = imagespec(dir.path())
        .args(build)
        .output()
        .expect("first build");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    let forced: Vec<&str> = build.iter().copied().chain(["--force"]).collect();
    let (lines, code) = in_terminal(dir.path(), &forced, &[]);
    let shown = lines.join("\n");
    assert_eq!(code, Some(0), "{shown}");
    let steps = step_lines(&lines);
    assert!(steps.len() >= 4, "one line per step: {shown}");
    let mut indexes: Vec<&str> = steps
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let all = indexes.len();
    indexes.dedup();
    assert_eq!(indexes.len(), all, "a step printed twice: {shown}");
    for label in ["command 1", "command 2"] {
        let line = steps
            .iter()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no `{label}` step line: {shown}"));
        assert!(line.ends_with("CACHED"), "warm step not CACHED: {line}");
    }
    // Every step line ends with CACHED or a duration, and no log line stays on a terminal.
    for line in &steps {
        let last = line.split_whitespace().last().unwrap_or("");
        assert!(
            last == "CACHED" || last.ends_with('s'),
            "no outcome: {line}"
        );
    }
    assert!(!shown.contains("  | "), "log lines kept: {shown}");
    assert!(
        !shown.contains("dev.imagespec.inputs"),
        "the identity label's JSON is shown: {shown}"
    );
    assert!(shown.contains(" cached"), "no summary: {shown}");
}

#[test]
fn a_warm_docker_rebuild_on_a_terminal_shows_cached_steps() {
    warm_rebuild_shows_one_cached_line_per_step("docker");
}

#[test]
fn a_warm_podman_rebuild_on_a_terminal_shows_cached_steps() {
    warm_rebuild_shows_one_cached_line_per_step("podman");
}

/// A push of a new layer: the summary says how many bytes went, and the layer chatter of the
/// engine (`Preparing`, `Pushed`) is not shown.
#[test]
fn a_push_on_a_terminal_shows_its_bytes() {
    let (login, registry) = registry_login();
    let dir = tempfile::tempdir().expect("tempdir");
    // A value of this run only: the command after it runs again and makes a new 3 MB layer.
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    write_spec(
        dir.path(),
        "terminal-view-push",
        &format!(
            "  - head -c 3000000 /dev/urandom > /tmp/noise\nenv: {{RUN_NONCE: \"{nonce}\"}}\n"
        ),
    );
    let namespace = format!("{registry}/terminal-view");
    let docker_config = login.path().display().to_string();
    let (lines, code) = in_terminal(
        dir.path(),
        &[
            "build",
            "spec.yaml",
            "--builder",
            "docker",
            "--registry",
            &namespace,
        ],
        &[("DOCKER_CONFIG", docker_config.as_str())],
    );
    let shown = lines.join("\n");
    assert_eq!(code, Some(0), "{shown}");
    let pushed = lines
        .iter()
        .find(|l| l.trim_start().starts_with("pushed: "))
        .unwrap_or_else(|| panic!("no pushed bytes: {shown}"));
    assert!(
        pushed.contains("MiB") && pushed.contains("layer"),
        "the new layer's megabytes: {pushed}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("digest: sha256:")),
        "{shown}"
    );
    assert!(!shown.contains(": Preparing"), "layer chatter: {shown}");
}

/// Not a terminal: plain lines (the step's purpose and instruction, its logs, CACHED/DONE),
/// and no colour even with a terminal's TERM; JSON: every event has its time, steps are typed.
#[test]
fn piped_and_json_views_are_plain_and_typed() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_spec(dir.path(), "terminal-view-piped", "");
    let build = [
        "build",
        "spec.yaml",
        "--builder",
        "docker",
        "--no-push",
        "--force",
    ];
    let out = imagespec(dir.path())
        .env("TERM", "xterm-256color")
        .args(build)
        .output()
        .expect("build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour on a pipe: {stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("command 1: RUN echo first")),
        "{stderr}"
    );
    assert!(
        stderr.contains("  | first") || stderr.contains("CACHED"),
        "{stderr}"
    );

    let out = imagespec(dir.path())
        .args(["--output", "json"])
        .args(build)
        .output()
        .expect("build");
    assert!(out.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let progress: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] != "result").collect();
    assert!(
        progress
            .iter()
            .all(|e| e["time"].as_str().is_some_and(|t| t.ends_with('Z'))),
        "an event without its time"
    );
    let done: Vec<&&serde_json::Value> = progress
        .iter()
        .filter(|e| e["event"] == "step_done")
        .collect();
    assert!(!done.is_empty(), "no step_done events");
    assert!(
        done.iter()
            .all(|e| e["cached"].is_boolean() && e["duration_ms"].is_u64())
    );
    assert!(
        done.iter().any(|e| e["cached"] == true),
        "a forced rebuild is served by the cache"
    );
    assert!(
        !progress
            .iter()
            .any(|e| e["event"] == "log" && e["line"] == "CACHED"),
        "the magic CACHED line is gone"
    );
    assert!(
        progress
            .iter()
            .any(|e| e["event"] == "step" && e["label"] == "command 2")
    );
}

/// `--quiet`: the image name on stdout and nothing on stderr (no progress, summary or warning).
#[test]
fn quiet_prints_only_the_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_spec(dir.path(), "terminal-view-quiet", "");
    let out = imagespec(dir.path())
        .args([
            "--quiet",
            "build",
            "spec.yaml",
            "--builder",
            "docker",
            "--no-push",
        ])
        .output()
        .expect("build");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.trim().starts_with("terminal-view-quiet:"),
        "{stdout}"
    );
}

/// A base image only the registry has: its last layer (3 MB of this run's noise) was made by
/// Podman, whose store Docker does not share, so Docker's build must pull it. The summary says
/// how many bytes came.
#[test]
fn a_pull_on_a_terminal_shows_its_bytes() {
    let (login, registry) = registry_login();
    let authfile = login.path().join("config.json").display().to_string();
    let nonce = format!(
        "{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let base = format!("{registry}/terminal-view-pull/base:{nonce}");
    let context = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        context.path().join("Containerfile"),
        format!(
            "FROM localhost/imagespec/python:3.11-bookworm\nRUN head -c 3000000 /dev/urandom > /noise-{nonce}\n"
        ),
    )
    .expect("write Containerfile");
    let context_dir = context.path().display().to_string();
    engine_cli("podman", &["build", "-q", "-t", &base, &context_dir]);
    engine_cli("podman", &["push", "-q", "--authfile", &authfile, &base]);
    engine_cli("podman", &["rmi", &base]);

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("spec.yaml"),
        format!(
            "name: terminal-view-pull\nbase_image: {base}\n\
             builder_config: {{uv_image: localhost/imagespec/uv:latest}}\ncommands: [echo pulled]\n"
        ),
    )
    .expect("write spec");
    let docker_config = login.path().display().to_string();
    let (lines, code) = in_terminal(
        dir.path(),
        &[
            "build",
            "spec.yaml",
            "--builder",
            "docker",
            "--no-push",
            "--no-flytekit",
        ],
        &[("DOCKER_CONFIG", docker_config.as_str())],
    );
    let shown = lines.join("\n");
    let image = lines
        .last()
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    if image.starts_with("terminal-view-pull:") {
        // This test's own image only (the engine is shared).
        let _ = std::process::Command::new("docker")
            .args(["rmi", &image])
            .output();
    }
    assert_eq!(code, Some(0), "{shown}");
    let pulled = lines
        .iter()
        .find(|l| l.trim_start().starts_with("pulled: "))
        .unwrap_or_else(|| panic!("no pulled bytes: {shown}"));
    assert!(
        pulled.contains("MiB") && pulled.contains("layer"),
        "the new layer's megabytes: {pulled}"
    );
}
