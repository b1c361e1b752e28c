#!/usr/bin/env bash
# dev-env.sh - set up the real container environment imagespec builds against.
#
# Usage: scripts/dev-env.sh [--no-podman] [--verify] [--rebuild]
#        scripts/dev-env.sh --status
#        scripts/dev-env.sh --stop
#        scripts/dev-env.sh --env-file
#
# Debian bookworm, as root. Idempotent: a second run only checks what is up.
#   1. apt-installs docker.io, podman, docker-registry, debootstrap, ... if missing
#   2. starts dockerd (overlay2, BuildKit)       -> unix:///var/run/docker.sock
#   3. starts the Podman Docker-compatible API    -> unix:///run/podman/podman.sock
#   4. starts a registry with htpasswd auth on 127.0.0.1:${IMAGESPEC_REGISTRY_PORT:-5000}
#      (plain HTTP), and logs docker and podman into it
#   5. builds, without pulling, into both engines' stores:
#        localhost/imagespec/debian:bookworm-slim   (debootstrap minbase + CA bundle)
#        localhost/imagespec/python:3.11-bookworm   (+ Debian python3, pip, venv)
#        localhost/imagespec/uv:latest              (/uv and /uvx, from the PyPI wheel)
#      then checks a BuildKit build (COPY --from uv image, RUN --mount=type=cache,
#      RUN --mount=type=secret, pip/uv from PyPI) on docker and podman and pushes
#      the result to the registry (only when images changed, or with --verify)
#   5b. registers qemu-aarch64 with binfmt_misc (flag F, so containers run arm64
#      binaries), builds arm64 python (debootstrap --arch=arm64) and uv images in
#      podman's store and pushes amd64+arm64 indexes (cached tarballs):
#        $REG/imagespec/multi/python:3.11-bookworm, $REG/imagespec/multi/uv:latest
#   6. installs flytekit 1.16.31 from PyPI into $STATE/flytekit-venv (cached), the
#      reference the `--tag-scheme flytekit` test compares names with
#      and a second venv, $STATE/plugin-venv (cached): flytekit 1.16.31, pytest and maturin,
#      where scripts/test-python.sh installs the repo's two Python packages and runs their tests
#   7. writes $STATE/env:  source "$STATE/env"  (DOCKER_HOST, IMAGESPEC_* variables)
#
# Joining: when the dev environment of another checkout already runs on this machine (its
# registry serves 127.0.0.1:$IMAGESPEC_REGISTRY_PORT) and IMAGESPEC_DEV_DIR is not set, this
# script joins it: it checks that its daemons answer and its credentials work, and starts,
# installs and writes nothing (neither here nor in the other state dir). Then
#   export IMAGESPEC_DEV_DIR=<its state dir>; source <its state dir>/env
# (`--env-file` prints that file; quickstart.sh and test.sh source it).
#
# Flags:
#   --no-podman  skip everything podman (service, images, login, checks)
#   --verify     run the build/push checks even if nothing changed
#   --rebuild    drop cached tarballs and images and build them again
#   --status     show what is up, do not change anything
#   --stop       stop the daemons this script started (pid files in $STATE)
#   --env-file   print the env file to source: the running environment's when joining
#                (see above), else $STATE/env; changes nothing
#   --flytekit   only steps 6 and 7 (the flytekit venvs and the env file); leaves the
#                daemons, images and credentials alone
#
# Environment:
#   IMAGESPEC_DEV_DIR        state dir (default: <repo>/.dev-env): logs, configs,
#                            credentials (registry.env, mode 600), cached tarballs
#   IMAGESPEC_REGISTRY_PORT  registry port on 127.0.0.1 (default 5000)
#   IMAGESPEC_DEBIAN_MIRROR  Debian mirror for debootstrap (default deb.debian.org)
#
# Notes: /usr/bin/docker (Debian's 20.10 client, BuildKit built in) is used on
# purpose: a newer docker CLI without the buildx plugin cannot do BuildKit builds.
# The base images bake in the host's /etc/ssl/certs/ca-certificates.crt (it holds
# the TLS proxy's CA): they are for local development only.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${IMAGESPEC_DEV_DIR:-$REPO/.dev-env}
REG_PORT=${IMAGESPEC_REGISTRY_PORT:-5000}
REG_ADDR=127.0.0.1:$REG_PORT
REG_USER=imagespec
MIRROR=${IMAGESPEC_DEBIAN_MIRROR:-http://deb.debian.org/debian}

DOCKER_SOCK=/var/run/docker.sock
PODMAN_SOCK=/run/podman/podman.sock
DOCKER=/usr/bin/docker
HOST_CA=/etc/ssl/certs/ca-certificates.crt

BASE_IMAGE=localhost/imagespec/debian:bookworm-slim
PYTHON_IMAGE=localhost/imagespec/python:3.11-bookworm
UV_IMAGE=localhost/imagespec/uv:latest
CHECK_IMAGE=$REG_ADDR/imagespec/dev-env-check
# other platforms: qemu handlers, arm64 halves (podman store), amd64+arm64 indexes (registry)
QEMU_ARCHES=(aarch64)
ARM_PYTHON_IMAGE=localhost/imagespec/python-arm64:3.11-bookworm
ARM_UV_IMAGE=localhost/imagespec/uv-arm64:latest
MULTI_PYTHON_IMAGE=$REG_ADDR/imagespec/multi/python:3.11-bookworm
MULTI_UV_IMAGE=$REG_ADDR/imagespec/multi/uv:latest

PACKAGES=(docker.io containerd runc iptables podman buildah conmon slirp4netns
  containernetworking-plugins uidmap fuse-overlayfs tini docker-registry
  debootstrap busybox-static apache2-utils curl ca-certificates unzip xz-utils qemu-user-static)

CERT_ENV=(SSL_CERT_FILE="$HOST_CA" PIP_CERT="$HOST_CA" REQUESTS_CA_BUNDLE="$HOST_CA"
  CURL_CA_BUNDLE="$HOST_CA")
STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

T0=$SECONDS
log() { printf '[dev-env] %s\n' "$*"; }
die() {
  printf '[dev-env] ERROR: %s\n' "$*" >&2
  exit 1
}
# step NAME: remembers when a step began; done_step prints its one line.
step() {
  STEP_NAME=$1
  STEP_T=$SECONDS
}
done_step() { log "$(printf '%-9s %s (%ss)' "$STEP_NAME" "$1" $((SECONDS - STEP_T)))"; }
log_tail() {
  [[ -f $1 ]] || return 0
  printf -- '--- last lines of %s ---\n' "$1" >&2
  tail -n 25 "$1" >&2 || true
}

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

NO_PODMAN=0 VERIFY=0 REBUILD=0 ACTION=up
while (($#)); do
  case $1 in
  --no-podman) NO_PODMAN=1 ;;
  --verify) VERIFY=1 ;;
  --rebuild) REBUILD=1 ;;
  --status) ACTION=status ;;
  --stop) ACTION=stop ;;
  --flytekit) ACTION=flytekit ;;
  --env-file) ACTION=env-file ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

[[ $(id -u) == 0 ]] || die "must run as root (it starts dockerd and a rootful podman service)"

# ---------------------------------------------------------------- helpers --

docker_up() { curl -fsS --max-time 5 --unix-socket "$DOCKER_SOCK" http://d/_ping >/dev/null 2>&1; }
podman_up() { curl -fsS --max-time 5 --unix-socket "$PODMAN_SOCK" http://d/_ping >/dev/null 2>&1; }
registry_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "http://$REG_ADDR/v2/" 2>/dev/null || true
}
registry_up() { [[ $(registry_code) == 401 ]]; }

# pid_alive NAME: the pid in $STATE/NAME.pid is running the expected program.
pid_alive() {
  local f=$STATE/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# start_daemon NAME PATTERN CMD...: start CMD detached, log and pid in $STATE.
start_daemon() {
  local name=$1 pattern=$2
  shift 2
  : >"$STATE/$name.log"
  setsid nohup "$@" >>"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
  sleep 0.2
  pid_alive "$name" "$pattern" || {
    log_tail "$STATE/$name.log"
    die "$name exited right after start"
  }
}

# wait_for NAME SECONDS CHECK...: poll CHECK until it succeeds or time runs out.
wait_for() {
  local name=$1 limit=$2 i
  shift 2
  for ((i = 0; i < limit * 4; i++)); do
    "$@" && return 0
    if [[ -f $STATE/$name.pid ]] && ! pid_alive "$name" ""; then
      log_tail "$STATE/$name.log"
      die "$name died while starting (log: $STATE/$name.log)"
    fi
    sleep 0.25
  done
  log_tail "$STATE/$name.log"
  die "$name did not answer within ${limit}s (log: $STATE/$name.log)"
}

# stop_daemon NAME PATTERN: SIGTERM the process we started, SIGKILL after 30s.
stop_daemon() {
  local name=$1 pattern=$2 pid i
  if ! pid_alive "$name" "$pattern"; then
    rm -f "$STATE/$name.pid"
    log "$(printf '%-9s no process started by dev-env (%s): nothing to stop' "$name" "$STATE/$name.pid")"
    return 0
  fi
  pid=$(<"$STATE/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do
    [[ -d /proc/$pid ]] || break
    sleep 0.25
  done
  if [[ -d /proc/$pid ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    log "$name did not stop in 30s: killed"
  fi
  rm -f "$STATE/$name.pid"
  log "$(printf '%-9s stopped (pid %s)' "$name" "$pid")"
}

# write_if_changed FILE MODE: stdin -> FILE; returns 0 if the content changed.
write_if_changed() {
  local f=$1 mode=$2 tmp
  tmp=$(mktemp "$f.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [[ -f $f ]] && cmp -s "$tmp" "$f"; then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$f"
}

d_has() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
p_has() { podman image exists "$1" 2>/dev/null; }
d_id() { "$DOCKER" image inspect -f '{{.Id}}' "$1" 2>/dev/null || echo none; }
p_id() { podman image inspect -f '{{.Id}}' "$1" 2>/dev/null || echo none; }

# --------------------------------------------------------------- --status --

status() {
  local s
  if docker_up; then s=up; else s=down; fi
  log "dockerd   $s ($DOCKER_SOCK)$(pid_alive dockerd dockerd && echo ", pid $(<"$STATE/dockerd.pid")")"
  if podman_up; then s=up; else s=down; fi
  log "podman    $s ($PODMAN_SOCK)$(pid_alive podman 'system service' && echo ", pid $(<"$STATE/podman.pid")")"
  case $(registry_code) in
  401) s="up, auth required" ;;
  200) s="up, NO auth" ;;
  *) s=down ;;
  esac
  log "registry  $s (http://$REG_ADDR)$(pid_alive registry 'docker-registry' && echo ", pid $(<"$STATE/registry.pid")")"
  for img in "$BASE_IMAGE" "$PYTHON_IMAGE" "$UV_IMAGE"; do
    local d=- p=-
    docker_up && d_has "$img" && d=docker
    command -v podman >/dev/null && p_has "$img" && p=podman
    log "image     $img: $d $p"
  done
  if [[ -f $STATE/env ]]; then log "env       source $STATE/env"; else log "env       (not written yet)"; fi
}

# ----------------------------------------------------------------- joining --

# The state dir of the dev environment whose registry serves $REG_ADDR, found through the
# registry process itself (`docker-registry serve DIR/registry/config.yml`, a config whose
# `addr:` is $REG_ADDR, with DIR/env beside it), so it works from any checkout without a
# variable. Prints nothing and fails when none runs. Reads only.
running_state() {
  local comm cfg dir
  for comm in /proc/[0-9]*/comm; do
    [[ $(cat "$comm" 2>/dev/null) == docker-registry ]] || continue
    cfg=$(tr '\0' '\n' <"${comm%/comm}/cmdline" 2>/dev/null | grep -m1 '/registry/config\.yml$') || continue
    dir=${cfg%/registry/config.yml}
    grep -qx "  addr: $REG_ADDR" "$cfg" 2>/dev/null || continue
    [[ -f $dir/env && -f $dir/registry.env ]] || continue
    printf '%s\n' "$dir"
    return 0
  done
  return 1
}

# The running environment to join, if any: another state dir's, and only when the user did not
# choose one (IMAGESPEC_DEV_DIR) and this state dir's own registry is not the one running.
join_target() {
  [[ -z ${IMAGESPEC_DEV_DIR:-} ]] || return 1
  pid_alive registry docker-registry && return 1
  local other
  other=$(running_state) || return 1
  [[ $other != "$STATE" ]] || return 1
  printf '%s\n' "$other"
}

# Checks the running environment at $1 without changing anything, and says how to use it.
join() {
  local other=$1 user pass want
  log "the dev environment of $other already runs here (its registry serves $REG_ADDR): joining it; nothing is started, installed or written"
  user=$(sed -n 's/^IMAGESPEC_REGISTRY_USER=//p' "$other/registry.env")
  pass=$(sed -n 's/^IMAGESPEC_REGISTRY_PASSWORD=//p' "$other/registry.env")
  [[ $(registry_code -u "$user:$pass") == 200 ]] ||
    die "the registry on $REG_ADDR rejects the credentials in $other/registry.env; fix that environment (IMAGESPEC_DEV_DIR=$other bash scripts/dev-env.sh), or start a second one on another port (IMAGESPEC_REGISTRY_PORT=5001 IMAGESPEC_DEV_DIR=\$PWD/.dev-env bash scripts/dev-env.sh)"
  docker_up || die "dockerd does not answer on $DOCKER_SOCK; start it from its checkout: IMAGESPEC_DEV_DIR=$other bash scripts/dev-env.sh"
  if ((!NO_PODMAN)) && ! podman_up; then
    die "podman does not answer on $PODMAN_SOCK; start it from its checkout: IMAGESPEC_DEV_DIR=$other bash scripts/dev-env.sh (or pass --no-podman)"
  fi
  want=$(printf '%s:%s' "$user" "$pass" | base64 -w0)
  grep -q "\"auth\": *\"$want\"" "$HOME/.docker/config.json" 2>/dev/null ||
    log "docker is not logged in to $REG_ADDR for $HOME; to log in: source $other/env && printf '%s' \"\$IMAGESPEC_REGISTRY_PASSWORD\" | docker login -u \"\$IMAGESPEC_REGISTRY_USER\" --password-stdin $REG_ADDR"
  log "dockerd, podman and the registry answer; use them with:"
  log "  export IMAGESPEC_DEV_DIR=$other; source $other/env"
}

# ----------------------------------------------------------------- --stop --

stop_all() {
  stop_daemon registry docker-registry
  stop_daemon podman 'system service'
  stop_daemon dockerd dockerd
  log "done in $((SECONDS - T0))s"
}

# ------------------------------------------------------------- 1 packages --

install_packages() {
  step packages
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    done_step "all installed"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=a
  # keep maintainer scripts from starting docker/containerd themselves
  local policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq >"$STATE/apt.log" 2>&1 || {
    log_tail "$STATE/apt.log"
    die "apt-get update failed"
  }
  apt-get install -y -qq "${missing[@]}" >>"$STATE/apt.log" 2>&1 || {
    log_tail "$STATE/apt.log"
    die "apt-get install failed"
  }
  if ((policy)); then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
  done_step "installed ${missing[*]}"
}

# --------------------------------------------------------------- 2 docker --

start_docker() {
  step dockerd
  write_if_changed "$STATE/daemon.json" 644 <<'EOF' || true
{
  "storage-driver": "overlay2",
  "features": { "buildkit": true },
  "builder": { "gc": { "enabled": true, "defaultKeepStorage": "20GB" } }
}
EOF
  if docker_up; then
    done_step "already up ($("$DOCKER" version -f '{{.Server.Version}}' 2>/dev/null))"
    return
  fi
  start_daemon dockerd dockerd dockerd --config-file "$STATE/daemon.json" \
    --host "unix://$DOCKER_SOCK" --pidfile /var/run/docker.pid
  wait_for dockerd 60 docker_up
  "$DOCKER" info >/dev/null 2>&1 || {
    log_tail "$STATE/dockerd.log"
    die "docker info fails"
  }
  done_step "started, pid $(<"$STATE/dockerd.pid") ($("$DOCKER" info -f '{{.Driver}}'))"
}

# --------------------------------------------------------------- 3 podman --

# The podman process lowers its own RLIMIT_NPROC and cannot raise RLIMIT_NOFILE
# (no CAP_SYS_RESOURCE here), yet asks runc for 1048576 of both by default:
# "error setting rlimit type 7: operation not permitted". So the default
# container ulimits are set to the hard limits a podman process really has.
podman_hard_limits() {
  local sock pid nofile nproc i
  sock=$(mktemp -u /tmp/dev-env-podman-probe.XXXXXX.sock)
  podman system service --time=5 "unix://$sock" >/dev/null 2>&1 &
  pid=$!
  for ((i = 0; i < 40; i++)); do
    [[ -S $sock ]] && break
    sleep 0.1
  done
  nofile=$(awk '/^Max open files/ {print $5}' "/proc/$pid/limits" 2>/dev/null || true)
  nproc=$(awk '/^Max processes/ {print $4}' "/proc/$pid/limits" 2>/dev/null || true)
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$sock"
  [[ $nofile =~ ^[0-9]+$ ]] || nofile=$(ulimit -Hn)
  [[ $nproc =~ ^[0-9]+$ ]] || nproc=$(ulimit -Hu)
  ((nofile > 1048576)) && nofile=1048576
  ((nproc > 1048576)) && nproc=1048576
  echo "$nofile $nproc"
}

configure_podman() {
  local changed=1 nofile nproc driver
  mkdir -p /etc/containers/containers.conf.d /etc/containers/registries.conf.d
  write_if_changed "/etc/containers/registries.conf.d/50-imagespec-dev-$REG_PORT.conf" 644 <<EOF && changed=0
# written by imagespec scripts/dev-env.sh: the dev registry speaks plain HTTP
[[registry]]
location = "$REG_ADDR"
insecure = true

[[registry]]
location = "localhost:$REG_PORT"
insecure = true
EOF
  read -r nofile nproc < <(podman_hard_limits)
  write_if_changed /etc/containers/containers.conf.d/50-imagespec-dev.conf 644 <<EOF && changed=0
# written by imagespec scripts/dev-env.sh: podman's default ulimits (1048576)
# exceed what this machine allows; use the hard limits podman itself has.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
EOF
  # Storage driver: overlay (kernel overlayfs) if it works, vfs otherwise.
  driver=$(podman info -f '{{.Store.GraphDriverName}}' 2>/dev/null || true)
  if [[ $driver != overlay && ! -f /etc/containers/storage.conf ]]; then
    log "podman storage driver '$driver' unusable; falling back to vfs"
    printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
      >/etc/containers/storage.conf
    changed=0
  fi
  return "$changed"
}

start_podman() {
  step podman
  local restart=0
  configure_podman && restart=1
  if podman_up; then
    if ((restart)) && pid_alive podman 'system service'; then
      stop_daemon podman 'system service' >/dev/null
    else
      ((restart)) && log "podman config changed but the service was not started by dev-env: restart it yourself"
      done_step "already up ($(podman info -f '{{.Store.GraphDriverName}}') storage)"
      return
    fi
  fi
  mkdir -p "$(dirname "$PODMAN_SOCK")"
  rm -f "$PODMAN_SOCK"
  start_daemon podman 'system service' podman system service --time=0 "unix://$PODMAN_SOCK"
  wait_for podman 30 podman_up
  done_step "started, pid $(<"$STATE/podman.pid") ($(podman info -f '{{.Store.GraphDriverName}}') storage)"
}

# ------------------------------------------------------------- 4 registry --

registry_password() {
  local pw=
  if [[ -f $STATE/registry.env ]]; then
    pw=$(sed -n 's/^IMAGESPEC_REGISTRY_PASSWORD=//p' "$STATE/registry.env")
  fi
  if [[ -z $pw ]]; then
    pw=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-32)
  fi
  printf '%s' "$pw"
}

start_registry() {
  step registry
  local restart=0 secret
  REG_PASS=$(registry_password)
  mkdir -p "$STATE/registry/data"
  write_if_changed "$STATE/registry.env" 600 <<EOF || true
IMAGESPEC_REGISTRY=$REG_ADDR
IMAGESPEC_REGISTRY_USER=$REG_USER
IMAGESPEC_REGISTRY_PASSWORD=$REG_PASS
EOF
  if ! htpasswd -vb "$STATE/registry/htpasswd" "$REG_USER" "$REG_PASS" >/dev/null 2>&1; then
    htpasswd -Bbn "$REG_USER" "$REG_PASS" >"$STATE/registry/htpasswd.tmp" 2>/dev/null
    chmod 600 "$STATE/registry/htpasswd.tmp"
    mv -f "$STATE/registry/htpasswd.tmp" "$STATE/registry/htpasswd"
    restart=1
  fi
  secret=$(printf '%s' "$REG_PASS" | sha256sum | cut -c1-32)
  write_if_changed "$STATE/registry/config.yml" 600 <<EOF && restart=1
# written by imagespec scripts/dev-env.sh
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
  delete:
    enabled: true
http:
  addr: $REG_ADDR
  secret: $secret
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: imagespec-dev-registry
    path: $STATE/registry/htpasswd
EOF
  if pid_alive registry docker-registry && ((restart)); then
    stop_daemon registry docker-registry >/dev/null
  fi
  if registry_up; then
    if [[ $(registry_code -u "$REG_USER:$REG_PASS") != 200 ]]; then
      local other
      other=$(running_state) &&
        die "the dev environment of $other serves $REG_ADDR with other credentials: use it (export IMAGESPEC_DEV_DIR=$other; bash scripts/dev-env.sh), or start a second one on another port (IMAGESPEC_REGISTRY_PORT=5001)"
      die "something else answers on $REG_ADDR and rejects our credentials (set IMAGESPEC_REGISTRY_PORT?)"
    fi
    done_step "already up on $REG_ADDR"
    return
  fi
  start_daemon registry docker-registry /usr/bin/docker-registry serve "$STATE/registry/config.yml"
  wait_for registry 20 registry_up
  [[ $(registry_code -u "$REG_USER:$REG_PASS") == 200 ]] || die "registry rejects our credentials"
  done_step "started on $REG_ADDR, pid $(<"$STATE/registry.pid")"
}

registry_login() {
  step login
  local want done=()
  want=$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)
  if ! grep -q "\"auth\": *\"$want\"" "$HOME/.docker/config.json" 2>/dev/null; then
    printf '%s' "$REG_PASS" | "$DOCKER" login -u "$REG_USER" --password-stdin "$REG_ADDR" >"$STATE/login.log" 2>&1 || {
      log_tail "$STATE/login.log"
      die "docker login $REG_ADDR failed"
    }
    done+=(docker)
  fi
  # podman would fall back to ~/.docker/config.json, but give it its own auth.json
  local pauth=${REGISTRY_AUTH_FILE:-${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/containers/auth.json}}
  pauth=${pauth:-/run/containers/$(id -u)/auth.json}
  if ((!NO_PODMAN)) && ! grep -q "\"auth\": *\"$want\"" "$pauth" 2>/dev/null; then
    printf '%s' "$REG_PASS" | podman login -u "$REG_USER" --password-stdin "$REG_ADDR" >"$STATE/login.log" 2>&1 || {
      log_tail "$STATE/login.log"
      die "podman login $REG_ADDR failed"
    }
    done+=(podman)
  fi
  if ((${#done[@]})); then done_step "logged in: ${done[*]}"; else done_step "already logged in"; fi
}

# --------------------------------------------------------------- 5 images --

# Umount whatever a killed debootstrap left mounted below $1, then remove it.
rm_rootfs() {
  local dir=$1 m
  [[ -e $dir ]] || return 0
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
  rm -rf --one-file-system "$dir"
}

# Certificates of the host bundle that the rootfs bundle lacks (the TLS proxy's
# CA) go to /usr/local/share/ca-certificates, so that update-ca-certificates in
# derived images keeps them; the bundle itself is replaced by the host's.
install_host_ca() {
  local root=$1
  awk -v out="$root/usr/local/share/ca-certificates/imagespec-host" '
    FNR == 1 { file++ }
    /-----BEGIN CERTIFICATE-----/ { cert = "" ; inside = 1 }
    inside { cert = cert $0 "\n" }
    /-----END CERTIFICATE-----/ {
      inside = 0
      if (file == 1) { known[cert] = 1 }
      else if (!(cert in known)) { n++; printf "%s", cert > (out "-" n ".crt") }
    }' "$root/etc/ssl/certs/ca-certificates.crt" "$HOST_CA"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
  cp -f "$HOST_CA" "$root/etc/ssl/certs/ca-certificates.crt"
  chmod 644 "$root/etc/ssl/certs/ca-certificates.crt"
}

# debootstrap_rootfs TAR [ARCH [INCLUDE]]: a slim bookworm rootfs as a tarball;
# a foreign ARCH runs its second stage under qemu (setup_binfmt).
debootstrap_rootfs() {
  local tar=$1 arch=${2:-} include=${3:-ca-certificates} root=$STATE/tmp/rootfs-debian${2:+-$2}
  rm_rootfs "$root"
  mkdir -p "$STATE/tmp"
  debootstrap ${arch:+--arch="$arch"} --variant=minbase --include="$include" bookworm "$root" "$MIRROR" \
    >"$STATE/debootstrap.log" 2>&1 || {
    log_tail "$STATE/debootstrap.log"
    rm_rootfs "$root"
    die "debootstrap failed"
  }
  install_host_ca "$root"
  # like the official -slim images: no docs, man pages or locales
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{man,groff,info,lintian,linda,locale}/*
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  rm -rf "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/*
  # the python image's pip installs into the system Python (as the amd64 one)
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  : >"$root/etc/resolv.conf"
  : >"$root/etc/machine-id"
  echo localhost >"$root/etc/hostname"
  tar --numeric-owner -C "$root" -cf "$tar.tmp" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' .
  mv -f "$tar.tmp" "$tar"
  rm_rootfs "$root"
}

build_base() {
  local tar=$STATE/cache/debian-bookworm-minbase.tar
  if [[ ! -s $tar ]]; then
    log "           debootstrap bookworm (about a minute)..."
    debootstrap_rootfs "$tar"
  fi
  local changes=(--change "ENV PATH=$STD_PATH" --change 'ENV LANG=C.UTF-8')
  local kv
  for kv in "${CERT_ENV[@]}"; do changes+=(--change "ENV $kv"); done
  "$DOCKER" import "${changes[@]}" --change 'CMD ["bash"]' \
    --message "imagespec dev-env: debootstrap --variant=minbase bookworm" \
    "$tar" "$BASE_IMAGE" >/dev/null
}

build_python() {
  local ctx=$STATE/tmp/python-build
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE_IMAGE
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip python-is-python3 \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \\
 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \\
 && python --version && pip --version
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
CMD ["python3"]
EOF
  DOCKER_BUILDKIT=1 "$DOCKER" build -t "$PYTHON_IMAGE" "$ctx" >"$STATE/build-python.log" 2>&1 || {
    log_tail "$STATE/build-python.log"
    die "building $PYTHON_IMAGE failed"
  }
  rm -rf "$ctx"
}

# fetch_uv_wheel [DIR [PIP_PLATFORM]]: the uv wheel from PyPI, cached in DIR.
fetch_uv_wheel() {
  local dir=${1:-$STATE/cache/uv-wheel} platform=${2:-manylinux2014_x86_64}
  compgen -G "$dir/uv-*.whl" >/dev/null && return 0
  rm -rf "$dir"
  mkdir -p "$dir"
  local args=(download --no-deps --only-binary=:all: --platform "$platform"
    --python-version 3.11 uv -d)
  if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
    python3 -m pip "${args[@]}" "$dir" >"$STATE/uv-download.log" 2>&1
  else # no pip on the host: use the python image
    "$DOCKER" run --rm -v "$dir:/out" "$PYTHON_IMAGE" python3 -m pip "${args[@]}" /out \
      >"$STATE/uv-download.log" 2>&1
  fi || {
    log_tail "$STATE/uv-download.log"
    die "downloading the uv wheel from PyPI failed"
  }
}

build_uv() {
  local tar=$STATE/cache/uv-rootfs.tar root=$STATE/tmp/uv-root whl ver
  if [[ ! -s $tar ]]; then
    fetch_uv_wheel
    whl=$(compgen -G "$STATE/cache/uv-wheel/uv-*.whl" | head -n1)
    rm -rf "$root" "$STATE/tmp/uv-unzip"
    mkdir -p "$root" "$STATE/tmp/uv-unzip"
    unzip -q -o "$whl" 'uv-*.data/scripts/*' -d "$STATE/tmp/uv-unzip"
    install -m 755 "$STATE"/tmp/uv-unzip/uv-*.data/scripts/uv "$root/uv"
    install -m 755 "$STATE"/tmp/uv-unzip/uv-*.data/scripts/uvx "$root/uvx"
    "$root/uv" --version >/dev/null || die "the uv binary from $whl does not run"
    basename "$whl" | cut -d- -f2 >"$STATE/cache/uv-version"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$tar.tmp" uv uvx
    mv -f "$tar.tmp" "$tar"
    rm -rf "$root" "$STATE/tmp/uv-unzip"
  fi
  ver=$(cat "$STATE/cache/uv-version" 2>/dev/null || echo unknown)
  "$DOCKER" import --change 'ENTRYPOINT ["/uv"]' --change "ENV PATH=$STD_PATH" \
    --change "LABEL org.opencontainers.image.version=$ver" \
    --message "imagespec dev-env: uv $ver from the PyPI wheel" "$tar" "$UV_IMAGE" >/dev/null
}

build_images() {
  step images
  local built=() img
  if ((REBUILD)); then
    rm -f "$STATE/cache/debian-bookworm-minbase.tar" "$STATE/cache/uv-rootfs.tar" "$STATE/cache/python-image.tar"
    rm -rf "$STATE/cache/uv-wheel"
    for img in "$BASE_IMAGE" "$PYTHON_IMAGE" "$UV_IMAGE"; do
      "$DOCKER" rmi -f "$img" >/dev/null 2>&1 || true
      ((NO_PODMAN)) || podman rmi -f "$img" >/dev/null 2>&1 || true
    done
  fi
  mkdir -p "$STATE/cache" "$STATE/tmp"
  if ! d_has "$BASE_IMAGE"; then
    build_base
    built+=("docker:debian")
  fi
  if ! d_has "$PYTHON_IMAGE"; then
    if [[ -s $STATE/cache/python-image.tar ]] && "$DOCKER" load -i "$STATE/cache/python-image.tar" >/dev/null 2>&1 &&
      d_has "$PYTHON_IMAGE"; then
      built+=("docker:python(cached)")
    else
      build_python
      "$DOCKER" save -o "$STATE/cache/python-image.tar.tmp" "$PYTHON_IMAGE"
      mv -f "$STATE/cache/python-image.tar.tmp" "$STATE/cache/python-image.tar"
      built+=("docker:python")
    fi
  fi
  if ! d_has "$UV_IMAGE"; then
    build_uv
    built+=("docker:uv")
  fi
  if ((!NO_PODMAN)); then
    for img in "$BASE_IMAGE" "$PYTHON_IMAGE" "$UV_IMAGE"; do
      p_has "$img" && continue
      "$DOCKER" save "$img" | podman load >"$STATE/podman-load.log" 2>&1 || {
        log_tail "$STATE/podman-load.log"
        die "podman load of $img failed"
      }
      p_has "$img" || die "podman load did not create $img"
      img=${img#localhost/imagespec/}
      built+=("podman:${img%%:*}")
    done
  fi
  if ((${#built[@]})); then done_step "built ${built[*]}"; else done_step "all present"; fi
}

# ------------------------------------------------------ 5b other platforms --

# binfmt_misc handlers that run foreign binaries under qemu-user-static. The
# fix-binary flag F makes the kernel open the interpreter when it is
# registered, so it works inside containers, whose root file system lacks it.
setup_binfmt() {
  step binfmt
  local dir=/proc/sys/fs/binfmt_misc arch entry conf line did=()
  if [[ ! -e $dir/register ]]; then
    mount -t binfmt_misc binfmt_misc "$dir" 2>"$STATE/binfmt.log" ||
      die "cannot mount binfmt_misc on $dir (in a container, the host must mount it and register qemu with flag F)"
  fi
  for arch in "${QEMU_ARCHES[@]}"; do
    entry=$dir/qemu-$arch
    if [[ -f $entry ]] && grep -qx enabled "$entry" && grep -q '^flags:.*F' "$entry"; then
      continue
    fi
    conf=/usr/lib/binfmt.d/qemu-$arch.conf
    [[ -f $conf ]] || die "$conf missing (apt-get install qemu-user-static)"
    line=$(<"$conf")
    # flags are the last field; binfmt-support may have registered it without F
    [[ ${line##*:} == *F* ]] || line+=F
    [[ -f $entry ]] && echo -1 >"$entry"
    printf '%s' "$line" >"$dir/register" || die "registering qemu-$arch with binfmt_misc failed"
    did+=("$arch")
  done
  if ((${#did[@]})); then done_step "registered qemu ${did[*]} (flag F)"; else done_step "qemu ${QEMU_ARCHES[*]} registered (flag F)"; fi
}

# registry_manifest REF: the manifest (index) of REF in the dev registry, or nothing.
registry_manifest() {
  local ref=${1#"$REG_ADDR/"} repo tag
  repo=${ref%:*} tag=${ref##*:}
  curl -fsS --max-time 10 -u "$REG_USER:$REG_PASS" \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$REG_ADDR/v2/$repo/manifests/$tag" 2>/dev/null || true
}

# push_index DEST AMD64_IMAGE ARM64_IMAGE: both images of the podman store as one
# index in the registry (podman's manifest list, pushed with all its platforms).
push_index() {
  local dest=$1 list=localhost/imagespec/index-build
  shift
  podman manifest rm "$list" >/dev/null 2>&1 || true
  (
    set -e
    podman manifest create "$list"
    for img in "$@"; do podman manifest add "$list" "containers-storage:$img"; done
    podman manifest push --all --format v2s2 --tls-verify=false "$list" "docker://$dest"
  ) >"$STATE/index-push.log" 2>&1 || {
    log_tail "$STATE/index-push.log"
    die "pushing the index $dest failed (log: $STATE/index-push.log)"
  }
  podman manifest rm "$list" >/dev/null 2>&1 || true
}

# The base images as linux/amd64 + linux/arm64 indexes in the registry, for
# multi-platform builds (new names: the amd64 images above stay as they are).
# The arm64 halves live in podman's store only; the rootfs tarballs are cached.
build_multi_images() {
  step multi
  if ((NO_PODMAN)); then
    done_step "skipped (--no-podman: the indexes are assembled with podman)"
    return
  fi
  local built=() py_tar=$STATE/cache/debian-bookworm-python-arm64.tar uv_tar=$STATE/cache/uv-rootfs-arm64.tar
  local root=$STATE/tmp/uv-root-arm64 whl ver stamp=$STATE/multi-pushed ids kv
  if ((REBUILD)); then
    rm -f "$py_tar" "$uv_tar"
    rm -rf "$STATE/cache/uv-wheel-arm64"
    podman rmi -f "$ARM_PYTHON_IMAGE" "$ARM_UV_IMAGE" >/dev/null 2>&1 || true
  fi
  if ! p_has "$ARM_PYTHON_IMAGE"; then
    if [[ ! -s $py_tar ]]; then
      log "           debootstrap --arch=arm64 bookworm with python3 under qemu (10-25 minutes, cached)..."
      debootstrap_rootfs "$py_tar" arm64 ca-certificates,python3,python3-venv,python3-pip,python-is-python3
    fi
    local changes=(--change "ENV PATH=$STD_PATH" --change 'ENV LANG=C.UTF-8'
      --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' --change 'ENV PIP_ROOT_USER_ACTION=ignore')
    for kv in "${CERT_ENV[@]}"; do changes+=(--change "ENV $kv"); done
    podman import --os linux --arch arm64 "${changes[@]}" --change 'CMD ["python3"]' \
      --message "imagespec dev-env: debootstrap --arch=arm64 --variant=minbase bookworm + python3" \
      "$py_tar" "$ARM_PYTHON_IMAGE" >/dev/null || die "podman import of $ARM_PYTHON_IMAGE failed"
    built+=("podman:python-arm64")
  fi
  if ! p_has "$ARM_UV_IMAGE"; then
    if [[ ! -s $uv_tar ]]; then
      fetch_uv_wheel "$STATE/cache/uv-wheel-arm64" manylinux2014_aarch64
      whl=$(compgen -G "$STATE/cache/uv-wheel-arm64/uv-*.whl" | head -n1)
      rm -rf "$root" "$STATE/tmp/uv-unzip-arm64"
      mkdir -p "$root" "$STATE/tmp/uv-unzip-arm64"
      unzip -q -o "$whl" 'uv-*.data/scripts/*' -d "$STATE/tmp/uv-unzip-arm64"
      install -m 755 "$STATE"/tmp/uv-unzip-arm64/uv-*.data/scripts/uv "$root/uv"
      install -m 755 "$STATE"/tmp/uv-unzip-arm64/uv-*.data/scripts/uvx "$root/uvx"
      "$root/uv" --version >/dev/null || die "the arm64 uv binary from $whl does not run under qemu"
      basename "$whl" | cut -d- -f2 >"$STATE/cache/uv-version-arm64"
      tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$uv_tar.tmp" uv uvx
      mv -f "$uv_tar.tmp" "$uv_tar"
      rm -rf "$root" "$STATE/tmp/uv-unzip-arm64"
    fi
    ver=$(cat "$STATE/cache/uv-version-arm64" 2>/dev/null || echo unknown)
    podman import --os linux --arch arm64 --change 'ENTRYPOINT ["/uv"]' --change "ENV PATH=$STD_PATH" \
      --change "LABEL org.opencontainers.image.version=$ver" \
      --message "imagespec dev-env: uv $ver (aarch64) from the PyPI wheel" "$uv_tar" "$ARM_UV_IMAGE" >/dev/null ||
      die "podman import of $ARM_UV_IMAGE failed"
    built+=("podman:uv-arm64")
  fi
  ids="$(p_id "$PYTHON_IMAGE") $(p_id "$ARM_PYTHON_IMAGE") $(p_id "$UV_IMAGE") $(p_id "$ARM_UV_IMAGE")"
  if [[ -f $stamp && $(<"$stamp") == "$ids" ]] &&
    registry_manifest "$MULTI_PYTHON_IMAGE" | grep -q arm64 && registry_manifest "$MULTI_UV_IMAGE" | grep -q arm64; then
    done_step "${built[*]:-arm64 images present}; indexes already in the registry"
    return
  fi
  push_index "$MULTI_PYTHON_IMAGE" "$PYTHON_IMAGE" "$ARM_PYTHON_IMAGE"
  push_index "$MULTI_UV_IMAGE" "$UV_IMAGE" "$ARM_UV_IMAGE"
  echo "$ids" >"$stamp"
  done_step "${built[*]:-arm64 images present}; pushed $MULTI_PYTHON_IMAGE, $MULTI_UV_IMAGE (amd64+arm64)"
}

# ---------------------------------------------------------------- checks --

# A build like the ones imagespec generates: local images only, COPY --from the
# uv image, cache and secret mounts, packages from PyPI through the TLS proxy;
# then a push to the dev registry. Runs when images changed or with --verify.
check_builds() {
  step checks
  local stamp=$STATE/checked ids ctx=$STATE/tmp/check engines=(docker)
  ((NO_PODMAN)) || engines+=(podman)
  ids="$REG_ADDR ${engines[*]}"
  for img in "$BASE_IMAGE" "$PYTHON_IMAGE" "$UV_IMAGE"; do
    ids+=" $(d_id "$img")"
    ((NO_PODMAN)) || ids+=" $(p_id "$img")"
  done
  if ((!VERIFY)) && [[ -f $stamp && $(<"$stamp") == "$ids" ]]; then
    done_step "skipped (images unchanged since last check; --verify forces)"
    return
  fi
  rm -rf "$ctx"
  mkdir -p "$ctx"
  printf 'dev-env-secret-%s\n' "$RANDOM$RANDOM" >"$ctx/secret.txt"
  chmod 600 "$ctx/secret.txt"
  echo six >"$ctx/requirements.txt"
  cat >"$ctx/Dockerfile" <<EOF
FROM $PYTHON_IMAGE
COPY --from=$UV_IMAGE /uv /uvx /bin/
COPY requirements.txt /tmp/requirements.txt
ARG NONCE
RUN --mount=type=cache,target=/root/.cache/uv \\
    echo "nonce \$NONCE" \\
 && uv venv /opt/venv \\
 && uv pip install --python /opt/venv/bin/python -r /tmp/requirements.txt \\
 && /opt/venv/bin/python -c 'import six' \\
 && uv pip install --system --break-system-packages six
RUN --mount=type=secret,id=devenv \\
    test -s /run/secrets/devenv && echo "secret mount ok"
RUN python3 -m pip install --no-cache-dir --target /tmp/pip-check six && python -c 'import sys; print(sys.version)'
EOF
  local nonce=$RANDOM$RANDOM
  DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain --build-arg "NONCE=$nonce" \
    --secret "id=devenv,src=$ctx/secret.txt" -t "$CHECK_IMAGE:docker" "$ctx" \
    >"$STATE/check-docker.log" 2>&1 || {
    log_tail "$STATE/check-docker.log"
    die "docker BuildKit check build failed (log: $STATE/check-docker.log)"
  }
  "$DOCKER" push "$CHECK_IMAGE:docker" >>"$STATE/check-docker.log" 2>&1 || {
    log_tail "$STATE/check-docker.log"
    die "docker push to $REG_ADDR failed"
  }
  "$DOCKER" rmi "$CHECK_IMAGE:docker" >/dev/null 2>&1 || true
  if ((!NO_PODMAN)); then
    podman build --build-arg "NONCE=$nonce" --secret "id=devenv,src=$ctx/secret.txt" \
      -t "$CHECK_IMAGE:podman" "$ctx" >"$STATE/check-podman.log" 2>&1 || {
      log_tail "$STATE/check-podman.log"
      die "podman check build failed (log: $STATE/check-podman.log)"
    }
    podman push "$CHECK_IMAGE:podman" >>"$STATE/check-podman.log" 2>&1 || {
      log_tail "$STATE/check-podman.log"
      die "podman push to $REG_ADDR failed"
    }
    podman rmi "$CHECK_IMAGE:podman" >/dev/null 2>&1 || true
  fi
  rm -rf "$ctx"
  echo "$ids" >"$stamp"
  done_step "build (cache+secret mounts, uv, pip) and push ok: ${engines[*]}"
}

# ------------------------------------------------------------- 6 flytekit --

FLYTEKIT_VERSION=1.16.31
FLYTEKIT_VENV=$STATE/flytekit-venv

# flytekit_venv: flytekit $FLYTEKIT_VERSION in its own venv; a venv that already has it is kept.
flytekit_venv() {
  step flytekit
  local py=$FLYTEKIT_VENV/bin/python
  if [[ -x $py ]] && "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('flytekit') != '$FLYTEKIT_VERSION')" 2>/dev/null; then
    done_step "flytekit $FLYTEKIT_VERSION cached in $FLYTEKIT_VENV"
    return
  fi
  rm -rf "$FLYTEKIT_VENV"
  python3 -m venv "$FLYTEKIT_VENV" >"$STATE/flytekit.log" 2>&1 || {
    log_tail "$STATE/flytekit.log"
    die "python3 -m venv failed (apt-get install python3-venv)"
  }
  "$py" -m pip install --quiet "flytekit==$FLYTEKIT_VERSION" >>"$STATE/flytekit.log" 2>&1 || {
    log_tail "$STATE/flytekit.log"
    die "pip install flytekit==$FLYTEKIT_VERSION failed (log: $STATE/flytekit.log)"
  }
  done_step "flytekit $FLYTEKIT_VERSION installed in $FLYTEKIT_VENV"
}

PLUGIN_VENV=$STATE/plugin-venv
# What the plugin's tests need besides the repo's packages (scripts/test-python.sh).
PLUGIN_VENV_PACKAGES=("flytekit==$FLYTEKIT_VERSION" "pytest==9.2.0" "maturin==1.16.0")

# plugin_venv: the Python packages' test venv; a venv that already has these versions is kept
# (the repo's own packages are installed afresh by each test run, not here).
plugin_venv() {
  step plugin-venv
  local py=$PLUGIN_VENV/bin/python
  local want
  want=$(printf '%s\n' "${PLUGIN_VENV_PACKAGES[@]}")
  if [[ -x $py ]] && WANT=$want "$py" -c "
import importlib.metadata as m, os, sys
for line in os.environ['WANT'].split():
    name, version = line.split('==')
    if m.version(name) != version:
        sys.exit(1)
" 2>/dev/null; then
    done_step "flytekit $FLYTEKIT_VERSION, pytest, maturin cached in $PLUGIN_VENV"
    return
  fi
  rm -rf "$PLUGIN_VENV"
  python3 -m venv "$PLUGIN_VENV" >"$STATE/plugin-venv.log" 2>&1 || {
    log_tail "$STATE/plugin-venv.log"
    die "python3 -m venv failed (apt-get install python3-venv)"
  }
  "$py" -m pip install --quiet "${PLUGIN_VENV_PACKAGES[@]}" >>"$STATE/plugin-venv.log" 2>&1 || {
    log_tail "$STATE/plugin-venv.log"
    die "pip install ${PLUGIN_VENV_PACKAGES[*]} failed (log: $STATE/plugin-venv.log)"
  }
  done_step "flytekit $FLYTEKIT_VERSION, pytest, maturin installed in $PLUGIN_VENV"
}

# ------------------------------------------------------------------ 7 env --

write_env() {
  step env
  write_if_changed "$STATE/env" 600 <<EOF || true
# written by imagespec scripts/dev-env.sh; use: source $STATE/env
export DOCKER_HOST=unix://$DOCKER_SOCK
export IMAGESPEC_PODMAN_HOST=unix://$PODMAN_SOCK
export IMAGESPEC_REGISTRY=$REG_ADDR
export IMAGESPEC_REGISTRY_USER=$REG_USER
export IMAGESPEC_REGISTRY_PASSWORD=$REG_PASS
export IMAGESPEC_BASE_IMAGE=$BASE_IMAGE
export IMAGESPEC_PYTHON_IMAGE=$PYTHON_IMAGE
export IMAGESPEC_UV_IMAGE=$UV_IMAGE
export IMAGESPEC_MULTI_PYTHON_IMAGE=$MULTI_PYTHON_IMAGE
export IMAGESPEC_MULTI_UV_IMAGE=$MULTI_UV_IMAGE
export IMAGESPEC_FLYTEKIT_PYTHON=$FLYTEKIT_VENV/bin/python
export IMAGESPEC_PLUGIN_PYTHON=$PLUGIN_VENV/bin/python
export IMAGESPEC_DEV_DIR=$STATE
EOF
  done_step "source $STATE/env"
}

# ------------------------------------------------------------------- main --

case $ACTION in
env-file)
  if other=$(join_target); then printf '%s/env\n' "$other"; else printf '%s/env\n' "$STATE"; fi
  exit 0
  ;;
up)
  if other=$(join_target); then
    join "$other"
    exit 0
  fi
  ;;
esac

if [[ ! -d $STATE ]]; then
  mkdir -p "$STATE"
  chmod 700 "$STATE"
fi
case $ACTION in
status)
  status
  exit 0
  ;;
stop)
  stop_all
  exit 0
  ;;
flytekit)
  [[ -f $STATE/registry.env ]] || die "$STATE/registry.env missing: run scripts/dev-env.sh once first"
  REG_PASS=$(registry_password)
  flytekit_venv
  plugin_venv
  write_env
  exit 0
  ;;
esac

install_packages
start_docker
((NO_PODMAN)) || start_podman
start_registry
registry_login
build_images
setup_binfmt
build_multi_images
check_builds
flytekit_venv
plugin_venv
write_env
rm -rf "$STATE/tmp"
log "ready in $((SECONDS - T0))s"
