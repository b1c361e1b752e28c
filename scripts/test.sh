#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up the real environment (Docker, the Podman
# API socket, an htpasswd-protected registry on 127.0.0.1, local base images), then lint and
# run every test against it.
#
#   bash scripts/test.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/dev-env.sh
# shellcheck disable=SC1091
source "${IMAGESPEC_DEV_DIR:-$repo/.dev-env}/env"

# The machine image ships cargo-nextest; a machine without it gets it from crates.io.
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "== installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

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
