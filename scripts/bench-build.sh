#!/usr/bin/env bash
# What imagespec costs on top of the engine, measured against the real environment
# (scripts/dev-env.sh): Docker with BuildKit and the htpasswd registry on 127.0.0.1:5000.
#
#   bash scripts/bench-build.sh [SPEC] [RUNS]   # default: examples/requirements/spec.yaml, 7
#
# Three numbers, each the median of RUNS runs of the release binary:
#   1. build overhead: `imagespec build --builder docker --no-push --force` against the bare
#      engine (`docker build`) building the very Dockerfile and context imagespec produces
#      (`imagespec context`). Both run with BuildKit's cache warm, so every step is a cache hit
#      and the difference is imagespec's own work: loading and hashing the spec, writing the
#      context, the BuildKit session, reading the result;
#   2. the no-op path: `imagespec build` of a spec whose image is already in the registry
#      (load, hash, one authenticated manifest HEAD, exit);
#   3. `imagespec tag` of the spec (load, hash, print).
# Numbers are only meaningful on an idle machine: each series waits (up to 2 min) for a second
# with >= 90% CPU idle first and prints what it saw.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
spec=${1:-examples/requirements/spec.yaml}
runs=${2:-7}
cd "$repo"

bash scripts/dev-env.sh >/dev/null
# shellcheck disable=SC1091
source "${IMAGESPEC_DEV_DIR:-$repo/.dev-env}/env"
docker=/usr/bin/docker
[ -x "$docker" ] || docker=docker

cargo build --quiet --release --locked -p imagespec-cli
imagespec=${CARGO_TARGET_DIR:-$repo/target}/release/imagespec
spec_dir=$(dirname "$spec")
is() { "$imagespec" --root "$spec_dir" "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

idle() {
    local a b t j pct=0 try
    for try in $(seq 1 120); do
        read -ra a < <(grep '^cpu ' /proc/stat); sleep 1; read -ra b < <(grep '^cpu ' /proc/stat)
        t=0; for j in 1 2 3 4 5 6 7 8; do t=$((t + b[j] - a[j])); done
        pct=$(( (b[4] - a[4]) * 100 / (t > 0 ? t : 1) ))
        [ "$pct" -ge 90 ] && break
    done
    echo "   (cpu idle in the second before: ${pct}%)"
}

# time_ms CMD...: milliseconds of wall time of one run (output discarded).
time_ms() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    echo $(( (end - start) / 1000000 ))
}

# series LABEL CMD...: runs CMD $runs times and prints min / median / max in ms.
series() {
    local label=$1; shift
    local all=() i
    idle
    for i in $(seq 1 "$runs"); do all+=("$(time_ms "$@")"); done
    printf '%s\n' "${all[@]}" | sort -n | awk -v label="$label" '
        {a[NR]=$1} END {printf "   %-44s min %6d ms   median %6d ms   max %6d ms\n", label, a[1], a[int((NR+1)/2)], a[NR]}'
}

image=$(is tag "$spec")
local_image="imagespec-bench/overhead:$(basename "$image" | cut -d: -f2)"
echo "== spec $spec -> $image"

echo "== warming up: one build of each kind (the first may really build)"
{
    is build --builder docker --no-push "$spec"
    is context "$spec" --out "$work/context.tar"
    DOCKER_BUILDKIT=1 "$docker" build -q -f .imagespec/Dockerfile -t "$local_image" - <"$work/context.tar"
    is build "$spec" # pushed, for the no-op series
} >"$work/warm-up.log" 2>&1 || { cat "$work/warm-up.log"; exit 1; }

echo "== 1. build overhead over the bare engine (warm BuildKit cache, no push)"
series "docker build (context from imagespec context)" \
    sh -c "DOCKER_BUILDKIT=1 '$docker' build -q -f .imagespec/Dockerfile -t '$local_image' - <'$work/context.tar'"
series "imagespec context + docker build" \
    sh -c "'$imagespec' --root '$spec_dir' context '$spec' --out '$work/c.tar' && DOCKER_BUILDKIT=1 '$docker' build -q -f .imagespec/Dockerfile -t '$local_image' - <'$work/c.tar'"
series "imagespec build --no-push --force" \
    "$imagespec" --root "$spec_dir" build --builder docker --no-push --force "$spec"

echo "== 2. no-op path: the image is already in the registry"
series "imagespec build (exists, nothing built)" "$imagespec" --root "$spec_dir" build "$spec"

echo "== 3. content-derived name"
series "imagespec tag" "$imagespec" --root "$spec_dir" tag "$spec"

"$docker" rmi "$local_image" >/dev/null 2>&1 || true
