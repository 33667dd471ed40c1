#!/usr/bin/env bash
# Lays out the root file systems of swarmhub's FROM-scratch images from three statically linked
# binaries; used by the Dockerfile's `build` stage and by images/build.sh --prebuilt (which
# writes target/dist/, the Dockerfile's `prebuilt` stage).
#
#   images/layout.sh OUT BIN_DIR
#
# BIN_DIR holds swarmhub, swarmhub-nfsd and swarmhub-volume-plugin. OUT is recreated:
#   OUT/nfsd/  swarmhub-nfsd, data/                        -> image nfsd
#   OUT/cli/   usr/local/bin/swarmhub, tmp/ (1777),
#              usr/share/swarmhub/plugin/{config.json,rootfs/} -> image cli; rootfs/ is also
#              the plugin-rootfs image. The plugin directory is laid out by
#              plugin-config/build.sh --no-create, so it is exactly what that script installs.
set -euo pipefail
[ $# = 2 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
OUT=$1
BIN=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "layout.sh: error: $*" >&2; exit 1; }
for b in swarmhub swarmhub-nfsd swarmhub-volume-plugin; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing or not executable"
  if command -v readelf >/dev/null && readelf -lW "$BIN/$b" | grep -q 'Requesting program interpreter'; then
    die "$BIN/$b is dynamically linked; build it with RUSTFLAGS='-C target-feature=+crt-static' --target x86_64-unknown-linux-gnu"
  fi
done
case "$OUT" in /|"") die "refusing OUT '$OUT'" ;; esac
rm -rf "$OUT/nfsd" "$OUT/cli"
mkdir -p "$OUT/nfsd/data" "$OUT/cli/usr/local/bin" "$OUT/cli/usr/share/swarmhub" "$OUT/cli/tmp"
chmod 1777 "$OUT/cli/tmp"
strip_copy() {
  if command -v strip >/dev/null; then strip --strip-debug -o "$2" "$1"; else cp "$1" "$2"; fi
  chmod 755 "$2"
}
strip_copy "$BIN/swarmhub-nfsd" "$OUT/nfsd/swarmhub-nfsd"
strip_copy "$BIN/swarmhub" "$OUT/cli/usr/local/bin/swarmhub"
"$ROOT/plugin-config/build.sh" --no-create --binary "$BIN/swarmhub-volume-plugin" \
  --out "$OUT/cli/usr/share/swarmhub/plugin"
