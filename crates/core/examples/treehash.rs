//! Benchmark driver used by `bench.sh`: generates the bench tree and times one
//! `digest_tree` run, split into walk (`select_files`) and hash
//! (`digest_files`). Thread count: `RAYON_NUM_THREADS`.
//!
//! ```text
//! treehash generate DIR
//! treehash digest DIR [REPEAT]
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use imagespec_core::tree::{TreeOptions, digest_files, select_files};

#[allow(dead_code)]
#[path = "../benches/support/gen_tree.rs"]
mod gen_tree;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["generate", dir] => generate(Path::new(dir)),
        ["digest", dir] => digest(Path::new(dir), 1),
        ["digest", dir, n] => match n.parse() {
            Ok(n) => digest(Path::new(dir), n),
            Err(e) => Err(format!("bad REPEAT {n:?}: {e}")),
        },
        _ => Err("usage: treehash generate DIR | treehash digest DIR [REPEAT]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(dir: &Path) -> Result<(), String> {
    let started = Instant::now();
    let stats = gen_tree::ensure(dir).map_err(|e| format!("generating {}: {e}", dir.display()))?;
    println!(
        "tree {}: {} entries, {:.1} MB ({:.1} s)",
        dir.display(),
        stats.entries,
        stats.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn digest(dir: &Path, repeat: usize) -> Result<(), String> {
    let opts = TreeOptions::default();
    for _ in 0..repeat {
        let t0 = Instant::now();
        let files = select_files(dir, &opts).map_err(|e| e.to_string())?;
        let t1 = Instant::now();
        let tree = digest_files(&files).map_err(|e| e.to_string())?;
        let t2 = Instant::now();
        let (walk, hash, total) = (t1 - t0, t2 - t1, t2 - t0);
        println!(
            "{} entries, {:.1} MB: walk {:.1} ms, hash {:.1} ms, total {:.1} ms => {:.0} MB/s (hash-only {:.0} MB/s) [threads={}, sha_ni={}] {}",
            tree.entries.len(),
            tree.total_bytes as f64 / 1e6,
            walk.as_secs_f64() * 1e3,
            hash.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3,
            tree.total_bytes as f64 / total.as_secs_f64() / 1e6,
            tree.total_bytes as f64 / hash.as_secs_f64() / 1e6,
            rayon::current_num_threads(),
            sha_ni(),
            &tree.hex()[..16],
        );
    }
    Ok(())
}

fn sha_ni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sha")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
