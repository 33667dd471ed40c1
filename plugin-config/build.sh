#!/usr/bin/env bash
# Builds the swarmhub-nfs managed Docker plugin without a registry and installs it into the
# local dockerd with `docker plugin create` (disabled: configure it, then enable it).
#
#   plugin-config/build.sh [options] [NAME]        NAME defaults to swarmhub-nfs
#
# Options:
#   --binary PATH     use this statically linked swarmhub-volume-plugin instead of building one
#   --out DIR         plugin directory to lay out (default: target/plugin/NAME; recreated)
#   --state-dir DIR   host state directory to create (default: /var/lib/swarmhub-nfs, the
#                     default source of the plugin's "state" mount)
#   --force           replace an existing plugin of that name, but only if it is disabled; its
#                     settings (env values, mount sources) are carried over to the new one
#   --no-create       lay out the plugin directory only (no docker calls)
#
# Safe to re-run: an existing plugin is left alone unless --force is given, and an enabled one is
# never removed (disable it first; `docker plugin disable` refuses while volumes are in use).
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

NAME=""
BINARY=""
OUT=""
STATE_DIR=/var/lib/swarmhub-nfs
FORCE=0
CREATE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --state-dir) STATE_DIR=$2; shift 2 ;;
    --force) FORCE=1; shift ;;
    --no-create) CREATE=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "build.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$NAME" ] || { echo "build.sh: one NAME only" >&2; exit 2; }; NAME=$1; shift ;;
  esac
done
NAME=${NAME:-swarmhub-nfs}

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET_DIR/plugin/$NAME}
TRIPLE=x86_64-unknown-linux-gnu

say() { echo "build.sh: $*" >&2; }
die() { echo "build.sh: error: $*" >&2; exit 1; }

# --- the binary: statically linked glibc (crt-static), so the rootfs needs nothing else -------
if [ -z "$BINARY" ]; then
  command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
  # shellcheck source=images/pinned-rust.sh
  . "$ROOT/images/pinned-rust.sh"
  pinned_rust "$ROOT" || die "install the pinned Rust (see above), or give --binary"
  say "building swarmhub-volume-plugin (release, static, $TRIPLE)"
  (cd "$ROOT" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$TRIPLE" -p swarmhub-volume-plugin >&2)
  BINARY=$TARGET_DIR/$TRIPLE/release/swarmhub-volume-plugin
fi
[ -x "$BINARY" ] || die "$BINARY is not an executable"
if command -v readelf >/dev/null; then
  if readelf -lW "$BINARY" | grep -q 'Requesting program interpreter'; then
    die "$BINARY is dynamically linked; build it with RUSTFLAGS='-C target-feature=+crt-static' --target $TRIPLE"
  fi
elif ldd "$BINARY" >/dev/null 2>&1 && ! ldd "$BINARY" 2>&1 | grep -q 'statically linked'; then
  die "$BINARY is dynamically linked; build it with RUSTFLAGS='-C target-feature=+crt-static' --target $TRIPLE"
fi

# --- the plugin directory: config.json + rootfs/ -------------------------------------------------
case "$OUT" in /|"") die "refusing --out '$OUT'" ;; esac
rm -rf "$OUT"
mkdir -p "$OUT/rootfs"
cp "$HERE/config.json" "$OUT/config.json"
R=$OUT/rootfs
# Docker mounts /proc, /sys, /dev and the plugin socket directory; /mnt/volumes is the propagated
# mount, /state the state mount, /run/docker.sock the Docker socket (a bind of a file).
mkdir -p "$R/run/docker/plugins" "$R/mnt/volumes" "$R/state" "$R/tmp" "$R/proc" "$R/sys" \
  "$R/dev" "$R/etc"
chmod 1777 "$R/tmp"
: > "$R/run/docker.sock"
cp "$BINARY" "$R/swarmhub-volume-plugin"
# debug line tables are 30+ MiB that every node would store: drop them
if command -v strip >/dev/null; then strip --strip-debug "$R/swarmhub-volume-plugin"; fi
chmod 755 "$R/swarmhub-volume-plugin"

# it must run from this rootfs alone (no loader, no libraries)
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
  chroot "$R" /swarmhub-volume-plugin --version >/dev/null \
    || die "the binary does not run inside the bare rootfs $R"
fi
say "plugin directory: $OUT ($(du -sh "$R" | cut -f1) rootfs)"
[ "$CREATE" = 1 ] || exit 0

# --- install into dockerd ------------------------------------------------------------------------
command -v docker >/dev/null || die "the docker CLI is not installed (apt-get install -y docker.io)"
docker version >/dev/null 2>&1 || die "dockerd does not answer (is it running? are you root / in group docker?)"
mkdir -p "$STATE_DIR"
chmod 700 "$STATE_DIR"

ENVS=()
SOURCES=()
if docker plugin inspect "$NAME" >/dev/null 2>&1; then
  enabled=$(docker plugin inspect -f '{{.Enabled}}' "$NAME")
  if [ "$FORCE" != 1 ]; then
    say "plugin $NAME already exists (enabled: $enabled); left as it is. To replace it: docker plugin disable $NAME && $0 --force $NAME"
    exit 0
  fi
  if [ "$enabled" = true ]; then
    die "plugin $NAME is enabled; disable it first (docker plugin disable $NAME, which Docker refuses while any volume of the driver exists; -f when no container uses one). Nothing was changed."
  fi
  # keep the admin's settings: env values and mount sources
  mapfile -t ENVS < <(docker plugin inspect -f '{{range .Settings.Env}}{{println .}}{{end}}' "$NAME" | sed '/^$/d')
  mapfile -t SOURCES < <(docker plugin inspect -f '{{range .Settings.Mounts}}{{if .Name}}{{.Name}}.source={{.Source}}{{"\n"}}{{end}}{{end}}' "$NAME" | sed '/^$/d')
  say "replacing disabled plugin $NAME (settings kept)"
  docker plugin rm "$NAME" >/dev/null || die "docker plugin rm $NAME failed (still in use?); nothing was replaced"
fi

docker plugin create "$NAME" "$OUT" >/dev/null
settings=()
for e in "${ENVS[@]}"; do
  # only variables that config.json still declares
  grep -q "\"name\": \"${e%%=*}\"" "$OUT/config.json" && settings+=("$e")
done
settings+=("${SOURCES[@]}")
if [ "${#settings[@]}" -gt 0 ]; then
  docker plugin set "$NAME" "${settings[@]}" || say "warning: could not carry over the settings ${settings[*]}"
fi
say "created plugin $NAME (disabled). Next:"
say "  docker plugin set $NAME SWARMHUB_NFS_SERVER=<nfsd ip> [SWARMHUB_NFS_BACKEND=fuse ...]"
say "  cp <nfsd data dir>/api-token $STATE_DIR/nfsd-token && chmod 600 $STATE_DIR/nfsd-token"
say "  docker plugin enable $NAME"
