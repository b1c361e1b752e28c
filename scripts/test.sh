#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up the real environment (Docker, the Podman
# API socket, an htpasswd-protected registry on 127.0.0.1, local base images), then lint and
# run every test against it.
#
#   bash scripts/test.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

# Sets up the environment, or joins the one another checkout runs on this machine.
bash scripts/dev-env.sh
# shellcheck disable=SC1090
source "$(bash scripts/dev-env.sh --env-file)"

# The machine image ships cargo-nextest; a machine without it gets it from crates.io.
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "== installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

echo "== joining a running dev environment from another checkout"
bash scripts/test-dev-env-join.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo nextest"
cargo nextest run --locked --workspace --no-fail-fast
echo "== doc tests"
cargo test --locked --workspace --doc
echo "== python packages (imagespec wheel, flytekit plugin)"
bash scripts/test-python.sh
