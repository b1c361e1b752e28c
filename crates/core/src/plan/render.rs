//! Renders typed instructions as Dockerfile text.
//!
//! The only place that knows Dockerfile syntax. Values are quoted here:
//! - `LABEL` values and imagespec's own `ENV` values are double-quoted with `\`, `"` and `$`
//!   escaped, which is exactly the set the Dockerfile word lexer (BuildKit's and Buildah's, the
//!   same code) treats as escapable inside double quotes, so the value reaches the image byte for
//!   byte and `$` is never expanded;
//! - the spec's `env` values are double-quoted with `\` and `"` escaped but `$` left to the
//!   lexer, so `$PATH` expands as it does in flytekit's Dockerfile (`\$` stays a literal `$`);
//! - `ENTRYPOINT` and exec-form `RUN` are JSON arrays (no variable expansion applies to them);
//! - shell-form `RUN` lines are written by the plan, which quotes user values with
//!   [`super::shell::quote`] and never lets a line break through.
//!
//! No `# syntax=` line is written: it would make BuildKit pull a frontend image, and everything used
//! here is supported by the frontend built into the Docker Engine and by Podman/Buildah.

use super::instruction::{Command, Copy, EnvValue, Instruction, Mount, Run};

/// Continuation indent of multi-line instructions.
const INDENT: &str = "    ";

/// Renders a whole Dockerfile, ending with a newline.
pub fn render(instructions: &[Instruction]) -> String {
    let mut out = String::new();
    for instruction in instructions {
        if matches!(instruction, Instruction::Comment(_)) && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&render_one(instruction));
        out.push('\n');
    }
    out
}

/// Renders one instruction (possibly over several lines, without the final newline).
pub fn render_one(instruction: &Instruction) -> String {
    match instruction {
        // A comment may quote a user value; a line break in it must not end the comment.
        Instruction::Comment(text) => format!("# {}", text.replace(char::is_control, " ")),
        Instruction::From { image } => format!("FROM {image}"),
        Instruction::User(user) => format!("USER {user}"),
        Instruction::Workdir(dir) => format!("WORKDIR {dir}"),
        Instruction::Env(vars) => pairs(
            "ENV",
            vars.iter().map(|(k, v)| {
                let value = match v {
                    EnvValue::Literal(s) => quoted(s),
                    EnvValue::Docker(s) => quoted_expanding(s),
                    EnvValue::Expand(s) => format!("\"{s}\""),
                };
                format!("{k}={value}")
            }),
        ),
        Instruction::Label(labels) => pairs(
            "LABEL",
            labels.iter().map(|(k, v)| format!("{k}={}", quoted(v))),
        ),
        Instruction::Copy(copy) => render_copy(copy),
        Instruction::Run(run) => render_run(run),
        Instruction::Entrypoint(args) => format!("ENTRYPOINT {}", json_array(args)),
    }
}

/// A Dockerfile double-quoted word whose content is taken literally.
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A Dockerfile double-quoted word in which `$` references expand: `"` and `\` are escaped,
/// except a `\` right before `$`, which stays and makes that `$` literal.
pub fn quoted_expanding(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || (c == '\\' && chars.peek() != Some(&'$')) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A JSON array of strings as Dockerfile exec forms write them: `["a", "b"]`.
pub fn json_array(items: &[String]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|s| serde_json::Value::String(s.clone()).to_string())
        .collect();
    format!("[{}]", items.join(", "))
}

fn pairs(keyword: &str, items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    format!("{keyword} {}", items.join(&format!(" \\\n{INDENT}")))
}

fn render_copy(copy: &Copy) -> String {
    let mut parts = vec!["COPY".to_string()];
    if let Some(from) = &copy.from {
        parts.push(format!("--from={from}"));
    }
    if let Some(owner) = &copy.chown {
        parts.push(format!("--chown={owner}"));
    }
    parts.extend(copy.sources.iter().cloned());
    parts.push(copy.dest.clone());
    parts.join(" ")
}

fn render_mount(mount: &Mount) -> String {
    match mount {
        Mount::Cache { target, locked } => {
            let sharing = if *locked { ",sharing=locked" } else { "" };
            format!("--mount=type=cache,target={target}{sharing}")
        }
        Mount::Secret { id, target } => format!("--mount=type=secret,id={id},target={target}"),
        // `source=/` is spelled out: Buildah requires a source for bind mounts.
        Mount::Bind { from, target } => {
            format!("--mount=type=bind,from={from},source=/,target={target}")
        }
    }
}

fn render_run(run: &Run) -> String {
    let mut lines: Vec<String> = run.mounts.iter().map(render_mount).collect();
    match &run.command {
        Command::Shell(steps) => {
            for (i, step) in steps.iter().enumerate() {
                lines.push(if i == 0 {
                    step.clone()
                } else {
                    format!("&& {step}")
                });
            }
        }
        Command::Exec(args) => lines.push(json_array(args)),
    }
    format!("RUN {}", lines.join(&format!(" \\\n{INDENT}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_escapes_exactly_the_lexer_escapes() {
        assert_eq!(quoted(r#"a "b" $HOME \n"#), r#""a \"b\" \$HOME \\n""#);
        assert_eq!(quoted("x y"), "\"x y\"");
    }

    #[test]
    fn quoted_expanding_leaves_references_to_the_lexer() {
        assert_eq!(
            quoted_expanding(r#"/x/bin:$PATH ${A:-b} \$HOME say "hi" C:\t\"#),
            r#""/x/bin:$PATH ${A:-b} \$HOME say \"hi\" C:\\t\\""#
        );
    }

    #[test]
    fn json_array_escapes() {
        assert_eq!(
            json_array(&["a".into(), "b \"c\"".into()]),
            r#"["a", "b \"c\""]"#
        );
        assert_eq!(json_array(&[]), "[]");
    }

    #[test]
    fn run_with_mounts_and_steps() {
        let run = Run::shell(
            vec![Mount::Cache {
                target: "/c".into(),
                locked: true,
            }],
            ["a", "b"],
        );
        assert_eq!(
            render_run(&run),
            "RUN --mount=type=cache,target=/c,sharing=locked \\\n    a \\\n    && b"
        );
    }
}
