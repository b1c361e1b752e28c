#!/usr/bin/env bash
# The main job, from a fresh machine: set up the engines, the registry and the local base images,
# build the imagespec CLI, build the example spec into an image (pushed to the local registry),
# and run it.
#
#   bash scripts/quickstart.sh [SPEC]      # default: examples/requirements/spec.yaml
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
spec=${1:-examples/requirements/spec.yaml}
cd "$repo"

bash scripts/dev-env.sh
# shellcheck disable=SC1091
source "${IMAGESPEC_DEV_DIR:-$repo/.dev-env}/env"

echo "== building the imagespec CLI"
cargo build --release --locked -p imagespec-cli
imagespec=$repo/target/release/imagespec

spec_dir=$(dirname "$spec")
echo "== imagespec validate / tag"
"$imagespec" --root "$spec_dir" validate "$spec"
"$imagespec" --root "$spec_dir" tag --explain "$spec"

echo "== imagespec build (builds and pushes only if the tag is missing)"
image=$("$imagespec" --root "$spec_dir" build "$spec")

echo "== running $image"
docker pull -q "$image" >/dev/null
docker run --rm "$image"

echo "== second build: the image exists, so nothing is built"
time "$imagespec" --root "$spec_dir" build "$spec"
