#!/usr/bin/env bash
# Proves the deployment recipes in deploy/ against this machine:
#   1. `systemd-analyze verify` of deploy/imagespec-serve.service (with ExecStart pointed at
#      the binary built here: verify checks that the executable exists);
#   2. deploy/Containerfile's `prebuilt` target builds on the local Debian base image
#      ($IMAGESPEC_BASE_IMAGE; no public image can be pulled here), the container checks
#      deploy/container-serve.yaml, starts the service, and answers /v1/health on a loopback
#      port. The image and container it made are removed at the end (nothing else is touched).
#
#   bash scripts/check-deploy.sh [BINARY]   # default: $CARGO_TARGET_DIR (or target)/debug/imagespec
#
# Needs the environment of scripts/dev-env.sh (Docker, the local base images): source
# .dev-env/env first.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
binary=${1:-${CARGO_TARGET_DIR:-$repo/target}/debug/imagespec}
base=${IMAGESPEC_BASE_IMAGE:?source .dev-env/env (IMAGESPEC_BASE_IMAGE: the local Debian base image)}
[ -x "$binary" ] || { echo "no binary at $binary: cargo build -p imagespec-cli" >&2; exit 2; }
work=$(mktemp -d)
tag="localhost/imagespec-deploy-check:$$"
name="imagespec-deploy-check-$$"
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== systemd-analyze verify deploy/imagespec-serve.service"
if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/local/bin/imagespec|$binary|g" "$repo/deploy/imagespec-serve.service" >"$work/imagespec-serve.service"
  # Units it orders itself after may be absent here (docker.service); everything else must pass.
  out=$(systemd-analyze verify "$work/imagespec-serve.service" 2>&1 || true)
  problems=$(printf '%s\n' "$out" | grep -v -e '^$' -e 'docker.service' || true)
  if [ -n "$problems" ]; then
    printf '%s\n' "$problems" >&2
    exit 1
  fi
  echo "ok"
else
  echo "systemd-analyze not installed (apt-get install systemd): skipped" >&2
fi

echo "== deploy/Containerfile (target prebuilt, BASE_IMAGE=$base)"
install -m 0755 "$binary" "$work/imagespec"
# The classic builder: this docker CLI has no buildx (imagespec itself reaches BuildKit
# through the Engine API); the recipe builds with either.
DOCKER_BUILDKIT=0 docker build --quiet -f "$repo/deploy/Containerfile" --target prebuilt \
  --build-arg BASE_IMAGE="$base" -t "$tag" "$work" >/dev/null
mkdir -p "$work/etc"
sed 's|^registry_credentials: .*$||' "$repo/deploy/container-serve.yaml" >"$work/etc/serve.yaml"
chmod -R a+rX "$work/etc"
token=deploy-check-token-0123456789
docker run --rm -v "$work/etc:/etc/imagespec:ro" -e IMAGESPEC_TOKEN_TEAM_A="$token" "$tag" --check-config
docker run -d --name "$name" -p 127.0.0.1::8080 -v "$work/etc:/etc/imagespec:ro" \
  -e IMAGESPEC_TOKEN_TEAM_A="$token" "$tag" >/dev/null
port=$(docker port "$name" 8080/tcp | head -1 | sed 's/.*://')
for _ in $(seq 50); do
  if health=$(curl -fsS "http://127.0.0.1:$port/v1/health" 2>/dev/null); then break; fi
  sleep 0.2
done
echo "GET /v1/health: ${health:-no answer}"
[ "${health:-}" = '{"status":"ok"}' ] || { docker logs "$name" >&2; exit 1; }
docker stop "$name" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { docker logs "$name" >&2; echo "exit code $code after SIGTERM (137: killed, not stopped)" >&2; exit 1; }
echo "ok: the container ran the service as $(docker run --rm --entrypoint id "$tag" -un) and stopped gracefully on SIGTERM"
