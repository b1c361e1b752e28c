//! Deterministic generator of the benchmark tree, shared by the criterion
//! bench and the `treehash` example (which `bench.sh` uses).
//!
//! Shape, meant to look like a real repository with some binary assets:
//! 20,000 selected files, ~500 MB: 19,780 small files (log-uniform
//! 128 B-48 KiB, median ~2.5 KiB) spread over 500 directories, 200 medium
//! files (64 KiB-4 MiB) and 20 large ones (4-12 MiB). On top of that, ignored
//! noise the walk has to skip (a `.git` directory, `build/`, `*.tmp` files),
//! a few symlinks and some executables. Content is pseudo-random, so nothing
//! is sparse or compressible by the filesystem.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bump when the shape changes so cached trees are regenerated.
const VERSION: &str = "treehash-bench-tree v1 seed=0x5eed files=20000";

pub struct TreeStats {
    /// Selected entries (regular files + symlinks).
    pub entries: usize,
    /// Bytes of selected regular files and symlink targets.
    pub bytes: u64,
}

/// Generates the tree at `dir` unless a previous run left a matching stamp.
pub fn ensure(dir: &Path) -> io::Result<TreeStats> {
    let stamp = stamp_path(dir);
    if let Ok(text) = fs::read_to_string(&stamp)
        && let Some(stats) = parse_stamp(&text)
        && dir.is_dir()
    {
        return Ok(stats);
    }
    let partial = dir.with_extension("partial");
    let _ = fs::remove_dir_all(&partial);
    let _ = fs::remove_dir_all(dir);
    let stats = generate(&partial)?;
    fs::rename(&partial, dir)?;
    fs::write(
        &stamp,
        format!("{VERSION}\n{} {}\n", stats.entries, stats.bytes),
    )?;
    Ok(stats)
}

fn stamp_path(dir: &Path) -> PathBuf {
    dir.with_extension("stamp")
}

fn parse_stamp(text: &str) -> Option<TreeStats> {
    let mut lines = text.lines();
    if lines.next()? != VERSION {
        return None;
    }
    let mut nums = lines.next()?.split(' ');
    Some(TreeStats {
        entries: nums.next()?.parse().ok()?,
        bytes: nums.next()?.parse().ok()?,
    })
}

/// SplitMix64: tiny, fast, deterministic everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let (lo, hi) = ((lo as f64).ln(), (hi as f64).ln());
        (lo + (hi - lo) * self.unit()).exp() as u64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

fn write_random(path: &Path, size: u64, rng: &mut Rng, buf: &mut [u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut file = fs::File::create(path)?;
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> io::Result<()> {
    Ok(())
}

const EXTS: [&str; 8] = ["rs", "py", "ts", "json", "md", "c", "h", "yaml"];

fn generate(root: &Path) -> io::Result<TreeStats> {
    let mut rng = Rng(0x5eed);
    let mut buf = vec![0u8; 1 << 20];
    let mut stats = TreeStats {
        entries: 0,
        bytes: 0,
    };
    let mut add = |path: PathBuf, size: u64, rng: &mut Rng, stats: &mut TreeStats| {
        write_random(&path, size, rng, &mut buf)?;
        stats.entries += 1;
        stats.bytes += size;
        io::Result::Ok(path)
    };

    // Ignore file (selected itself) and the noise it excludes.
    let gitignore = b"*.tmp\n/build/\n";
    fs::create_dir_all(root)?;
    fs::write(root.join(".gitignore"), gitignore)?;
    stats.entries += 1;
    stats.bytes += gitignore.len() as u64;

    for i in 0..19_780u32 {
        let dir = format!("pkg{:02}/mod{:02}", rng.below(20), rng.below(25));
        let ext = EXTS[rng.below(EXTS.len() as u64) as usize];
        let path = root.join(dir).join(format!("file{i:05}.{ext}"));
        let size = rng.log_uniform(128, 48 << 10);
        let path = add(path, size, &mut rng, &mut stats)?;
        if i % 50 == 0 {
            make_executable(&path)?;
        }
    }
    for i in 0..200u32 {
        let path = root.join(format!("assets/media{:02}/blob{i:03}.bin", i % 10));
        let size = rng.log_uniform(64 << 10, 4 << 20);
        add(path, size, &mut rng, &mut stats)?;
    }
    // One fewer, to leave room for the root .gitignore in the 20,000.
    for i in 0..19u32 {
        let path = root.join(format!("vendor/archives/big{i:02}.tar"));
        let size = rng.log_uniform(4 << 20, 12 << 20);
        add(path, size, &mut rng, &mut stats)?;
    }

    // Ignored noise: never selected, never hashed.
    let mut noise = Rng(0xdead);
    for i in 0..200u32 {
        let path = root.join(format!("pkg{:02}/scratch{i:03}.tmp", i % 20));
        write_random(
            &path,
            noise.log_uniform(128, 16 << 10),
            &mut noise,
            &mut buf,
        )?;
    }
    for i in 0..300u32 {
        let path = root.join(format!("build/out/obj{i:03}.o"));
        write_random(
            &path,
            noise.log_uniform(1 << 10, 64 << 10),
            &mut noise,
            &mut buf,
        )?;
    }
    for i in 0..256u32 {
        let path = root.join(format!(".git/objects/{:02x}/{i:038x}", i));
        write_random(&path, noise.log_uniform(128, 8 << 10), &mut noise, &mut buf)?;
    }

    #[cfg(unix)]
    for i in 0..10u32 {
        let target = format!("../mod{:02}", i);
        let dir = root.join(format!("pkg{i:02}/mod{i:02}"));
        fs::create_dir_all(&dir)?;
        std::os::unix::fs::symlink(&target, dir.join("link"))?;
        stats.entries += 1;
        stats.bytes += target.len() as u64;
    }
    Ok(stats)
}
