//! Running Docker credential helpers (`docker-credential-<name> get`).
//!
//! The protocol: the server URL on stdin; on success a JSON object
//! `{"ServerURL", "Username", "Secret"}` on stdout; on "no credentials" a non-zero exit with
//! `credentials not found in native keychain`. A username of `<token>` means the secret is an
//! identity token, not a password.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::credentials::{Credential, Secret};
use crate::error::CredentialError;

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Asks helper `name` for `server`'s credential; returns it with the program name, or `None`
/// when the helper has none.
pub(crate) async fn get(
    name: &str,
    server: &str,
    config: &Path,
    path_var: Option<&OsStr>,
    timeout: Duration,
) -> Result<Option<(Credential, String)>, CredentialError> {
    // The name comes from a file: refuse anything that could point outside PATH.
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !valid {
        return Err(CredentialError::HelperName {
            name: name.to_string(),
            config: config.to_path_buf(),
        });
    }
    let program = format!("docker-credential-{name}");
    let Some(executable) = find_on_path(&program, path_var) else {
        return Err(CredentialError::HelperNotFound {
            program,
            config: config.to_path_buf(),
        });
    };
    tracing::debug!(program, server, "running credential helper");
    let failed = |message: String| CredentialError::HelperFailed {
        program: program.clone(),
        server: server.to_string(),
        message,
    };
    let mut command = tokio::process::Command::new(&executable);
    command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // A helper written moments ago can briefly be "text file busy" while another thread's
    // fork still holds its write handle; that clears within milliseconds.
    let mut tries = 0;
    let mut child = loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 5 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other.map_err(|e| failed(e.to_string()))?,
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|e| failed(format!("cannot write to it: {e}")))?;
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| CredentialError::HelperTimeout {
            program: program.clone(),
            server: server.to_string(),
            seconds: timeout.as_secs(),
        })?
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let text = if stdout.trim().is_empty() {
            stderr
        } else {
            stdout
        };
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(first_line(&text, output.status)));
    }
    let answer: HelperAnswer =
        serde_json::from_slice(&output.stdout).map_err(|_| CredentialError::HelperOutput {
            program: program.clone(),
            server: server.to_string(),
        })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    let credential = if answer.username == "<token>" {
        Credential::IdentityToken(Secret::new(answer.secret))
    } else {
        Credential::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        }
    };
    Ok(Some((credential, program)))
}

/// The helper's own explanation, kept short: one line, at most 200 characters.
fn first_line(text: &str, status: std::process::ExitStatus) -> String {
    let line: String = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    if line.is_empty() {
        format!("it exited with {status}")
    } else {
        line
    }
}

fn find_on_path(program: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let path_var = path_var?;
    std::env::split_paths(path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
