#!/usr/bin/env bash
# flytekit's default builder against the imagespec plugin: the same ImageSpec built and pushed
# to the dev registry, medians of RUNS new builds each (see scripts/bench_flytekit_builders.py
# for what the default builder needs changed to run here).
#
#   bash scripts/bench-flytekit-builders.sh [RUNS]     # after scripts/test-python.sh installed the plugin
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
source "${IMAGESPEC_DEV_DIR:-$repo/.dev-env}/env"
py=${IMAGESPEC_PLUGIN_PYTHON:?not set: run scripts/dev-env.sh}
config=$(mktemp -d)
trap 'rm -rf "$config"' EXIT
auth=$(printf '%s:%s' "$IMAGESPEC_REGISTRY_USER" "$IMAGESPEC_REGISTRY_PASSWORD" | base64 -w0)
printf '{"auths": {"%s": {"auth": "%s"}}}' "$IMAGESPEC_REGISTRY" "$auth" >"$config/config.json"
export DOCKER_CONFIG=$config
cd "$(mktemp -d)"
"$py" "$repo/scripts/bench_flytekit_builders.py" "${1:-3}"
