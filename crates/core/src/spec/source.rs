//! Reading a spec (or configuration) file without trusting what the path names.
//!
//! A spec path can name anything: a FIFO nobody writes to (a plain read would wait forever), a
//! device such as `/dev/zero` (a plain read would fill memory), a directory, or a file of a
//! pseudo file system such as `/proc` (whose size says 0 and whose content changes). So the file
//! is opened without blocking, its type is checked on the open handle (no race with a rename),
//! and at most [`MAX_SPEC_FILE_BYTES`] are read.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

use super::diagnostic::{Diagnostic, DiagnosticKind, Location, SpecError};

/// The largest spec or configuration file accepted (1 MiB). Real specs are a few hundred bytes;
/// the limit only keeps a wrong path from costing the machine's memory.
pub const MAX_SPEC_FILE_BYTES: u64 = 1024 * 1024;

/// The byte order mark some Windows editors put first; flytekit (Python's `utf-8-sig` reading of
/// YAML) ignores it, so we do too.
const BOM: char = '\u{feff}';

/// Reads a YAML or JSON file named by the user; `what` names it in messages ("spec file",
/// "configuration file"). Refuses, with a diagnostic naming the file, anything but a regular file
/// of a real file system of at most [`MAX_SPEC_FILE_BYTES`] in UTF-8. A leading BOM is dropped.
pub fn read_text_file(path: &Path, what: &str) -> Result<String, SpecError> {
    read(path, what).map_err(|d| SpecError {
        diagnostics: vec![*d],
    })
}

fn read(path: &Path, what: &str) -> Result<String, Box<Diagnostic>> {
    let problem = |kind, message: String, help: &str| Diagnostic {
        file: Some(path.to_path_buf()),
        ..Diagnostic::new(kind, "", message).with_help(help)
    };
    let file = open_nonblocking(path).map_err(|e| {
        problem(
            DiagnosticKind::MissingFile,
            format!("cannot read the {what}: {e}"),
            "check the path; spec files are YAML or JSON",
        )
    })?;
    let metadata = file.metadata().map_err(|e| {
        problem(
            DiagnosticKind::MissingFile,
            format!("cannot read the {what}: {e}"),
            "check the path",
        )
    })?;
    if let Some(kind) = special_kind(&metadata) {
        return Err(problem(
            DiagnosticKind::InvalidValue,
            format!("the {what} is {kind}, not a regular file"),
            "give the path of a YAML or JSON file",
        )
        .into());
    }
    if let Some(fs) = pseudo_file_system(&file) {
        return Err(problem(
            DiagnosticKind::InvalidValue,
            format!("the {what} is on the {fs} pseudo file system, not a regular file"),
            "give the path of a YAML or JSON file on disk",
        )
        .into());
    }
    let too_big = || {
        problem(
            DiagnosticKind::InvalidValue,
            format!(
                "the {what} is larger than the limit of {} bytes (1 MiB)",
                MAX_SPEC_FILE_BYTES
            ),
            "a spec is a few lines of YAML or JSON; check that the path names the right file",
        )
    };
    if metadata.len() > MAX_SPEC_FILE_BYTES {
        return Err(too_big().into());
    }
    // The size can change between the check and the read: read one byte past the limit to know.
    let mut bytes = Vec::new();
    file.take(MAX_SPEC_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            problem(
                DiagnosticKind::MissingFile,
                format!("cannot read the {what}: {e}"),
                "check the path and its permissions",
            )
        })?;
    if bytes.len() as u64 > MAX_SPEC_FILE_BYTES {
        return Err(too_big().into());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        Diagnostic {
            location: Some(Location { line, column }),
            ..problem(
                DiagnosticKind::Syntax,
                format!("the {what} is not valid UTF-8"),
                "save the file as UTF-8",
            )
        }
    })?;
    Ok(match text.strip_prefix(BOM) {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Opens for reading without waiting for a FIFO's writer (the type is checked right after).
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    options.open(path)
}

/// What a non-regular file is, in words (the kinds every spec input names the same way).
fn special_kind(metadata: &std::fs::Metadata) -> Option<String> {
    let t = metadata.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a directory".to_string());
    }
    let kind = crate::tree::filesystem::special_kind(&t).unwrap_or("special file");
    Some(format!("a {kind}"))
}

/// The name of the pseudo file system `file` is on (`/proc`, `/sys`), whose files report a size of
/// 0 and are generated as they are read. The rule is the one every spec input follows.
pub fn pseudo_file_system(file: &File) -> Option<&'static str> {
    crate::tree::filesystem::pseudo_fs_of_file(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bom_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, "\u{feff}name: x\n").expect("write");
        assert_eq!(read_text_file(&path, "spec file"), Ok("name: x\n".into()));
    }

    #[test]
    fn invalid_utf8_is_located() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, b"name: x\npackages: [\xff]\n").expect("write");
        let d = read(&path, "spec file").expect_err("invalid");
        assert_eq!(
            d.location,
            Some(Location {
                line: 2,
                column: 12
            })
        );
        assert!(d.message.contains("UTF-8"), "{d}");
    }
}
