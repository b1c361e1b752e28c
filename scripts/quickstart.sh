#!/usr/bin/env bash
# The main job, from a fresh machine: set up the engines, the registry and the local base images,
# build the imagespec CLI, build the example spec into an image (pushed to the local registry),
# and run it. When another checkout's dev environment already runs on this machine, it joins
# that one (scripts/dev-env.sh: nothing is started or written).
#
#   bash scripts/quickstart.sh [SPEC]      # default: examples/requirements/spec.yaml
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
spec=${1:-examples/requirements/spec.yaml}
cd "$repo"

# Sets up the environment, or joins the one another checkout runs on this machine.
bash scripts/dev-env.sh
# shellcheck disable=SC1090
source "$(bash scripts/dev-env.sh --env-file)"

# IMAGESPEC_QUICKSTART_PROFILE=dev: a debug build (a minute instead of ten on two cores).
profile=${IMAGESPEC_QUICKSTART_PROFILE:-release}
echo "== building the imagespec CLI ($profile)"
cargo build --profile "$profile" --locked -p imagespec-cli
[[ $profile == dev ]] && out_dir=debug || out_dir=$profile
imagespec=${CARGO_TARGET_DIR:-$repo/target}/$out_dir/imagespec

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
