#!/usr/bin/env bash
# Generates the bench tree (once; cached under the target dir), then measures
# digest_tree throughput: cold-ish cache (if we may drop caches), warm cache
# per thread count, and finally the criterion bench (warm).
#
#   ./bench.sh            everything
#   QUICK=1 ./bench.sh    skip the criterion run
#
# The machine may be shared: numbers are only meaningful when it is idle, so
# each measurement first waits (up to 2 min) for a second with >= 95% CPU
# idle, and prints the idle share it saw. Criterion runs cannot be guarded
# like that mid-run: distrust them if other work ran meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
# Same place the criterion bench uses ($CARGO_TARGET_TMPDIR = <target>/tmp).
tree="$target/tmp/treehash-bench/tree"
bin="$target/release/examples/treehash"

cargo build --quiet --release -p imagespec-core --example treehash
mkdir -p "$(dirname "$tree")"
"$bin" generate "$tree"

idle() {
    local a b t j pct try
    for try in $(seq 1 120); do
        a=($(grep '^cpu ' /proc/stat)); sleep 1; b=($(grep '^cpu ' /proc/stat))
        t=0; for j in 1 2 3 4 5 6 7 8; do t=$((t + b[j] - a[j])); done
        pct=$(( (b[4] - a[4]) * 100 / (t > 0 ? t : 1) ))
        [ "$pct" -ge 95 ] && break
    done
    echo "cpu idle over last 1 s: ${pct}%"
}

mbps() { sed -E 's/.*=> ([0-9]+) MB\/s.*/\1/'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "== cold-ish cache (page cache dropped before each run)"
if [ -w /proc/sys/vm/drop_caches ]; then
    for threads in 2 8; do
        idle
        sync && echo 3 > /proc/sys/vm/drop_caches
        echo "threads=$threads: $(RAYON_NUM_THREADS=$threads "$bin" digest "$tree")"
    done
else
    echo "skipped: /proc/sys/vm/drop_caches not writable (needs root)"
fi

echo
echo "== warm cache (5 runs each; walk = select_files, hash = digest_files)"
"$bin" digest "$tree" >/dev/null # warm up
for threads in 1 2 4; do
    idle
    out=$(RAYON_NUM_THREADS=$threads "$bin" digest "$tree" 5)
    echo "$out"
    echo "threads=$threads: median $(echo "$out" | mbps | median) MB/s"
done
idle
out=$("$bin" digest "$tree" 5)
echo "$out"
echo "WARM default pool: median $(echo "$out" | mbps | median) MB/s"

if [ "${QUICK:-0}" != 1 ]; then
    echo
    echo "== criterion (warm)"
    cargo bench -p imagespec-core --bench tree_hash 2>&1 | tee "$target/tmp/treehash-bench/criterion.log" \
        | grep -E '^(digest_tree|phases)/|time:|thrpt:'
    # Criterion reports MiB/s or GiB/s (binary); restate the middle estimate in MB/s.
    awk '/^(digest_tree|phases)\// {name=$1}
         /thrpt:/ && name != "" {
             v=$4; u=$5; f=(u ~ /GiB/) ? 1073741824 : (u ~ /MiB/) ? 1048576 : 0
             if (f) printf "%-28s %6.0f MB/s\n", name, v * f / 1e6
         }' "$target/tmp/treehash-bench/criterion.log"
fi
