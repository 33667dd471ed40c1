#!/usr/bin/env bash
# swarmhub on this machine, for trying it out. Needs Debian (or similar) with Docker, as root.
#
#   ./demo.sh up [--dir DIR] [--hub-port PORT] [--hub-redirect-port PORT] [--ldap-port PORT]
#       builds the images that are missing, then runs `swarmhub demo up` from the swarmhub
#       image: a one-node swarm if dockerd is in none, a demo LDAP directory with a teacher and
#       two students, nfsd, the volume plugin and JupyterHub over HTTPS (a certificate of the
#       demo's own CA, DIR/tls/ca.pem; plain HTTP on 8080 redirects). Prints the URL, how to
#       trust the CA, and the logins.
#       Safe to re-run (it repairs what is missing; the passwords stay the same).
#   ./demo.sh status | doctor   what runs, and a health check with fixes
#   ./demo.sh down              removes the demo's services; every user file stays in DIR/data
#
# DIR (default /var/lib/swarmhub-demo, or $SWARMHUB_DEMO_DIR) holds the demo's settings
# (swarmhub.toml), the logins and the users' files. SWARMHUB_DEMO_REBUILD=1 rebuilds every
# image first (after changing the sources). DOCKER_HOST=unix:///PATH: the dockerd on that
# socket instead of /var/run/docker.sock (the CLI's container gets it bound).
#
# Images: with cargo installed, the Rust programs are compiled here (images/build.sh
# --prebuilt); without it, in Docker's rust image. The Python images use debian:bookworm-slim
# when it can be pulled, else a local Debian base made with debootstrap (installed with apt-get
# when missing). Building everything takes 10-20 minutes the first time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")" && pwd)
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
CLI_IMAGE=swarmhub/swarmhub:$VERSION
DIR=${SWARMHUB_DEMO_DIR:-/var/lib/swarmhub-demo}

say() { echo "demo.sh: $*" >&2; }
die() { echo "demo.sh: error: $*" >&2; exit 1; }
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

[ $# -gt 0 ] || { usage >&2; exit 2; }
CMD=$1
shift
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die "--dir needs a directory"; DIR=$2; shift 2 ;;
    --dir=*) DIR=${1#--dir=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
case "$DIR" in /*) ;; *) DIR=$PWD/$DIR ;; esac
case "${DOCKER_HOST:-}" in
  "") SOCKET=/var/run/docker.sock ;;
  unix:///*) SOCKET=${DOCKER_HOST#unix://} ;;
  *) die "DOCKER_HOST=$DOCKER_HOST: the demo needs dockerd's unix socket on this machine (unix:///PATH), or unset it" ;;
esac

command -v docker >/dev/null || die "the docker CLI is missing: apt-get install -y docker.io"
docker version >/dev/null 2>&1 \
  || die "dockerd does not answer: start it (systemctl start docker) and run this as root"

build_images() {
  local targets=() t tag
  for t in nfsd cli hub notebook-student notebook-teacher demo-ldap; do
    case "$t" in cli) tag=swarmhub/swarmhub:$VERSION ;; *) tag=swarmhub/$t:$VERSION ;; esac
    if [ "${SWARMHUB_DEMO_REBUILD:-0}" = 1 ] || ! docker image inspect "$tag" >/dev/null 2>&1; then
      targets+=("$t")
    fi
  done
  [ "${#targets[@]}" -gt 0 ] || return 0
  say "building ${targets[*]} (once; this takes a while)"
  local opts=()
  # cargo of the pinned release compiles here; without it, Docker's rust image does
  # shellcheck source=images/pinned-rust.sh
  . "$ROOT/images/pinned-rust.sh"
  command -v cargo >/dev/null && pinned_rust "$ROOT" && opts+=(--prebuilt)
  if docker image inspect debian:bookworm-slim >/dev/null 2>&1 \
    || docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    opts+=(--base debian:bookworm-slim)
  elif ! docker image inspect swarmhub/debian:bookworm >/dev/null 2>&1 \
    && ! command -v debootstrap >/dev/null; then
    say "no registry for debian:bookworm-slim: installing debootstrap to make a local Debian base"
    apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null \
      || die "cannot install debootstrap (apt-get install -y debootstrap)"
  fi
  "$ROOT/images/build.sh" "${opts[@]}" "${targets[@]}" >/dev/null
}

# the CLI runs from its image: nothing else to install on this machine
swarmhub() {
  local extra=()
  [ -t 0 ] && [ -t 1 ] && extra+=(-t)
  # the kernel's modules tell whether it has an NFS client (else the plugin mounts with FUSE)
  [ -d /lib/modules ] && extra+=(--mount type=bind,src=/lib/modules,dst=/lib/modules,readonly)
  docker run --rm -i "${extra[@]}" --network host \
    -v "$SOCKET:/var/run/docker.sock" -e DOCKER_HOST=unix:///var/run/docker.sock \
    -v "$DIR:$DIR" \
    -e SWARMHUB_DEMO_DIR="$DIR" -e SWARMHUB_DEMO_COMMAND="$0" \
    "$CLI_IMAGE" "$@"
}

case "$CMD" in
  up)
    build_images
    mkdir -p -m 700 "$DIR"
    swarmhub demo up "${ARGS[@]}"
    ;;
  down)
    [ -d "$DIR" ] || die "no demo in $DIR"
    swarmhub demo down "${ARGS[@]}"
    ;;
  status|doctor)
    [ -f "$DIR/swarmhub.toml" ] || die "no demo in $DIR (run ./demo.sh up first)"
    docker image inspect "$CLI_IMAGE" >/dev/null 2>&1 || die "$CLI_IMAGE is missing (./demo.sh up builds it)"
    swarmhub --config "$DIR/swarmhub.toml" "$CMD" "${ARGS[@]}"
    ;;
  *) usage >&2; exit 2 ;;
esac
