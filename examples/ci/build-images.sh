#!/usr/bin/env bash
# Build and push a project's images in CI: for each spec, `imagespec build --output json`, which
# builds only when the content-derived name is not in the registry yet (an unchanged spec is a
# no-op of a few milliseconds), with its progress printed and its result parsed.
#
#   examples/ci/build-images.sh SPEC...
#
# Each spec's relative paths resolve against its own directory (`--root`).
#
# Environment (all optional):
#   IMAGESPEC              the imagespec binary (default: `imagespec` on PATH)
#   REGISTRY               the registry to log in to, e.g. ghcr.io
#   REGISTRY_USER          its user name
#   REGISTRY_PASSWORD      its password or token, from the CI's secrets: it goes to
#                          `docker login --password-stdin`, never on a command line or into
#                          the log. Without it no login is made (credentials already in
#                          $DOCKER_CONFIG/config.json, ~/.docker/config.json or a helper are used).
#   IMAGESPEC_BUILD_FLAGS  more `imagespec build` flags, split on spaces (e.g. `--if-unknown build`)
#   IMAGES_FILE            append one line per spec: `SPEC<TAB>IMAGE<TAB>ACTION` (ACTION is
#                          `built`, `exists`, ...: what imagespec did)
#
# Exit status: 0 when every image exists or was built and pushed; otherwise the exit status of
# the first spec that failed (all specs are tried first), imagespec's own codes:
#   1 unexpected failure, 2 usage, 3 invalid spec (or a file it names) or configuration,
#   4 builder cannot be used (not set up, missing registry, refused credentials),
#   5 existence unknown under the `fail` policy, 6 build or push failed, 130 interrupted.
# 7 means this script could not run (no spec given, jq or imagespec missing, login failed).
set -euo pipefail

imagespec=${IMAGESPEC:-imagespec}
(($#)) || {
  echo "usage: $0 SPEC..." >&2
  exit 7
}
command -v jq >/dev/null || {
  echo "build-images: jq is needed to read imagespec's JSON" >&2
  exit 7
}
command -v "$imagespec" >/dev/null || {
  echo "build-images: $imagespec not found (set IMAGESPEC, or: cargo install --locked --path crates/cli)" >&2
  exit 7
}

if [[ -n ${REGISTRY_PASSWORD:-} ]]; then
  : "${REGISTRY:?REGISTRY names the registry REGISTRY_PASSWORD is for}"
  : "${REGISTRY_USER:?REGISTRY_USER is needed with REGISTRY_PASSWORD}"
  printf '%s' "$REGISTRY_PASSWORD" |
    docker login --username "$REGISTRY_USER" --password-stdin "$REGISTRY" >/dev/null 2>&1 || {
    echo "build-images: docker login to $REGISTRY as $REGISTRY_USER failed" >&2
    exit 7
  }
  echo "build-images: logged in to $REGISTRY as $REGISTRY_USER" >&2
fi

read -r -a flags <<<"${IMAGESPEC_BUILD_FLAGS:-}"
# The progress events as plain lines, for the CI log.
progress='
  if .event == "step" then "#\(.index) \(.label): \(.name)"
  elif .event == "step_done" then "#\(.index) " + (if .cached then "CACHED" else "DONE \(.duration_ms / 1000)s" end)
  elif .event == "log" then "  | \(.line)"
  elif .event == "status" then .message
  else empty end'

status=0
result=$(mktemp)
trap 'rm -f "$result"' EXIT
for spec in "$@"; do
  echo "== $spec" >&2
  code=0
  "$imagespec" --output json --root "$(dirname "$spec")" build "${flags[@]}" "$spec" |
    tee "$result" | jq -r --unbuffered "$progress" >&2 || code=${PIPESTATUS[0]}
  last=$(tail -n 1 "$result")
  if [[ $code == 0 ]] && jq -e '.event == "result"' >/dev/null <<<"$last"; then
    image=$(jq -r '.outcome.image' <<<"$last")
    action=$(jq -r '.outcome.action' <<<"$last")
    echo "$spec: $image ($action)" >&2
    if [[ -n ${IMAGES_FILE:-} ]]; then printf '%s\t%s\t%s\n' "$spec" "$image" "$action" >>"$IMAGES_FILE"; fi
  else
    # `{"event":"error","error":{"message","kind","exit_code",...}}`, or no JSON at all.
    message=$(jq -r 'select(.event == "error") | "\(.error.kind): \(.error.message)"' <<<"$last" 2>/dev/null || true)
    echo "$spec: FAILED (exit $code) ${message:-$last}" >&2
    ((status)) || status=$code
  fi
done
exit "$status"
