#!/usr/bin/env bash
# The Python packages' tests (run by scripts/test.sh after the Rust suite): builds the `imagespec`
# wheel, installs it and flytekitplugins-imagespec into the plugin venv that scripts/dev-env.sh
# made, and runs the plugin's pytest suite (real builds on the local engine, pushes to the dev
# registry, `pyflyte build`).
#
#   bash scripts/test-python.sh
#
# The wheel is built with `--profile dev`, the debug build the Rust tests already compiled, so CI
# does not spend ten minutes on a release build; the release wheel is
# `maturin build --release` (README, "For Flyte users"). The same pyproject.toml makes both.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck disable=SC1091
source "${IMAGESPEC_DEV_DIR:-$repo/.dev-env}/env"
py=${IMAGESPEC_PLUGIN_PYTHON:?not set: run scripts/dev-env.sh (it makes the plugin venv)}
bin=$(dirname "$py")

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
echo "== imagespec wheel (maturin, dev profile)"
(cd python/imagespec && "$bin/maturin" build --locked --profile dev --out "$wheels")
"$py" -m pip install --quiet --force-reinstall --no-deps "$wheels"/imagespec-*.whl
"$py" -m pip install --quiet --force-reinstall --no-deps ./python/flytekitplugins-imagespec
# The plugin finds the binary in its own venv first: check that it is the one just built.
"$bin/imagespec" --version

echo "== pytest (python/flytekitplugins-imagespec)"
cd python/flytekitplugins-imagespec
"$py" -m pytest -q -p no:cacheprovider tests
