#!/usr/bin/env bash
# Joining a running dev environment from another checkout: scripts/dev-env.sh, copied into a
# fresh directory (a checkout without .dev-env) and run without IMAGESPEC_DEV_DIR, must find the
# environment that runs on this machine, check it, and start, install and write nothing: no
# daemon started (same pids), no state dir created in the new checkout, none of the running
# environment's files changed. Needs the dev environment up (scripts/test.sh starts it first).
#
#   bash scripts/test-dev-env-join.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
fail() {
  printf 'test-dev-env-join: FAIL: %s\n' "$*" >&2
  exit 1
}

running=$(bash "$repo/scripts/dev-env.sh" --env-file)
running=${running%/env}
[[ -f $running/env ]] || fail "no running dev environment ($running/env missing): run scripts/dev-env.sh first"

checkout=$(mktemp -d)
trap 'rm -rf "$checkout"' EXIT
mkdir "$checkout/scripts"
cp "$repo/scripts/dev-env.sh" "$checkout/scripts/"

# What the script itself would write there (the daemons' own logs and data change with use).
fingerprint() {
  find "$running" -maxdepth 2 \( -name '*.pid' -o -name env -o -name registry.env -o -name daemon.json \
    -o -path '*/registry/config.yml' -o -path '*/registry/htpasswd' \) -printf '%p %T@ %s\n' | sort
  for f in "$running"/*.pid; do printf '%s %s\n' "$f" "$(<"$f")"; done
}
before=$(fingerprint)
registry_pids=$(pgrep -x docker-registry | sort)

got=$(env -u IMAGESPEC_DEV_DIR bash "$checkout/scripts/dev-env.sh" --env-file)
[[ $got == "$running/env" ]] || fail "--env-file printed '$got', expected $running/env"

out=$(env -u IMAGESPEC_DEV_DIR bash "$checkout/scripts/dev-env.sh" 2>&1) || fail "dev-env.sh exited $?: $out"
grep -q "joining it; nothing is started" <<<"$out" || fail "no join message: $out"
grep -qF "export IMAGESPEC_DEV_DIR=$running; source $running/env" <<<"$out" || fail "no command to use it: $out"

[[ ! -e $checkout/.dev-env ]] || fail "a state dir was created in the new checkout"
[[ $(fingerprint) == "$before" ]] || fail "the running environment's files changed"
[[ $(pgrep -x docker-registry | sort) == "$registry_pids" ]] || fail "a registry was started or stopped"

# A state dir the user names is theirs, even when another one runs.
got=$(IMAGESPEC_DEV_DIR=$checkout/mine bash "$checkout/scripts/dev-env.sh" --env-file)
[[ $got == "$checkout/mine/env" ]] || fail "--env-file ignored IMAGESPEC_DEV_DIR: $got"
[[ ! -e $checkout/mine ]] || fail "--env-file created a state dir"

echo "test-dev-env-join: ok (joined $running)"
