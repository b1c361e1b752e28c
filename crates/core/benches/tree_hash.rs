//! Throughput of `digest_tree` on a realistic tree (20,000 files, ~520 MB),
//! from a warm page cache (the target: >= 1 GB/s on 2 cores).
//!
//! The tree is generated once into `$CARGO_TARGET_TMPDIR/treehash-bench/tree`
//! and reused while its stamp matches (see `support/gen_tree.rs`). Cold-cache
//! numbers need root to drop caches between runs; `bench.sh` does that with
//! the `treehash` example, not here.
//!
//! Groups:
//! * `digest_tree/default_pool` - the real call, on rayon's global pool.
//! * `digest_tree/threads/N` - the same inside an N-thread pool.
//! * `phases/select_files` - walk and filter only (no hashing).
//! * `phases/digest_files` - hashing of a pre-selected list only.

use std::path::Path;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use imagespec_core::tree::{TreeOptions, digest_files, digest_tree, select_files};

#[allow(dead_code)]
#[path = "support/gen_tree.rs"]
mod gen_tree;

fn bench_tree(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("treehash-bench/tree");
    std::fs::create_dir_all(dir.parent().expect("has parent")).expect("create bench dir");
    let stats = gen_tree::ensure(&dir).expect("generate bench tree");
    let opts = TreeOptions::default();

    // Warm the page cache and check the tree is what the stamp says.
    let tree = digest_tree(&dir, &opts).expect("digest bench tree");
    assert_eq!(tree.entries.len(), stats.entries);
    assert_eq!(tree.total_bytes, stats.bytes);
    eprintln!(
        "bench tree {}: {} entries, {:.1} MB, digest {}",
        dir.display(),
        stats.entries,
        stats.bytes as f64 / 1e6,
        tree.hex()
    );

    let mut group = c.benchmark_group("digest_tree");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(stats.bytes));
    group.bench_function("default_pool", |b| {
        b.iter(|| digest_tree(&dir, &opts).expect("digest"))
    });
    for threads in [1, 2, 4] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("build pool");
        group.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| pool.install(|| digest_tree(&dir, &opts).expect("digest")))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("phases");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(stats.entries as u64));
    group.bench_function("select_files", |b| {
        b.iter(|| select_files(&dir, &opts).expect("select"))
    });
    let files = select_files(&dir, &opts).expect("select");
    group.throughput(Throughput::Bytes(stats.bytes));
    group.bench_function("digest_files", |b| {
        b.iter(|| digest_files(&files).expect("digest"))
    });
    group.finish();
}

criterion_group!(benches, bench_tree);
criterion_main!(benches);
