//! `imagespec serve --gc-once`: one garbage collection of the configured data directory, on
//! real files, reported on stdout; and the `gc:` section's bad values refused with file:line.

mod common;

use std::time::{Duration, SystemTime};

use common::{imagespec, serve_refusing, stdout_of};

#[test]
fn gc_once_removes_an_unused_old_blob_and_keeps_a_fresh_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let blobs = dir.path().join("data/blobs/team-a/sha256");
    let old = format!("{:064x}", 1);
    let fresh = format!("{:064x}", 2);
    for hex in [&old, &fresh] {
        let file = blobs.join(&hex[..2]).join(hex);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, vec![0u8; 2048]).expect("write");
    }
    std::fs::File::options()
        .write(true)
        .open(blobs.join(&old[..2]).join(&old))
        .expect("old")
        .set_modified(SystemTime::now() - Duration::from_secs(3 * 24 * 3600))
        .expect("mtime");
    let config = dir.path().join("service.yaml");
    std::fs::write(&config, "data_dir: data\ngc:\n  keep_blobs_days: 2\n").expect("write");
    let out = stdout_of(
        imagespec(dir.path())
            .args(["--output", "json", "serve", "--gc-once", "--config"])
            .arg(&config),
    );
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(report["event"], "gc");
    assert_eq!(report["removed"]["blobs"], 1, "{out}");
    assert_eq!(report["removed"]["blob_bytes"], 2048, "{out}");
    assert!(!blobs.join(&old[..2]).join(&old).exists());
    assert!(blobs.join(&fresh[..2]).join(&fresh).exists());
}

#[test]
fn bad_gc_and_connection_values_stop_serve_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    for (text, needle) in [
        (
            "gc:\n  max_blob_bytes: 10\n",
            "service.yaml:2: `gc.max_blob_bytes` must be at least",
        ),
        (
            "connections:\n  body_idle_seconds: soon\n",
            "service.yaml:2: `connections.body_idle_seconds`",
        ),
    ] {
        let stderr = serve_refusing(dir.path(), text);
        assert!(stderr.contains(needle), "{text}: {stderr}");
    }
}
