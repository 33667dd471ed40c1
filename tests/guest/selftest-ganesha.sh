#!/bin/bash
# End-to-end validation of the guest harness against nfs-ganesha 4.3:
# build the guest (idempotent), start ganesha on a fresh temp dir, run smoke.sh in the
# guest, check the guest's files on the host, stop ganesha. Needs root.
#
#   tests/guest/selftest-ganesha.sh [PORT]      (default PORT 20490; MOUNT uses PORT+1)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${1:-20490}"
CACHE="${SWARMHUB_GUEST_CACHE:-/var/cache/swarmhub-guest}"
"$HERE/build-guest.sh" "$CACHE"
EXP="$(mktemp -d "${TMPDIR:-/tmp}/swarmhub-ganesha-export.XXXXXX")"
cleanup() { "$HERE/ganesha.sh" stop "$EXP" "$PORT" || true; rm -rf "$EXP"; }
trap cleanup EXIT
"$HERE/ganesha.sh" start "$EXP" "$PORT"
t0=$(date +%s.%N)
set +e
SWARMHUB_GUEST_CACHE="$CACHE" "$HERE/run-guest.sh" --nfs-port "$PORT" --mount-port $((PORT + 1)) \
    --export "$EXP" --export2 "$EXP" --script "$HERE/smoke.sh" --timeout 120
rc=$?
set -e
echo "selftest: run-guest exit $rc, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s" >&2
[ $rc = 0 ] || exit $rc
[ -s "$EXP/smoke-from-guest.txt" ] || { echo "selftest: FAIL: smoke-from-guest.txt not visible on the host" >&2; exit 1; }
[ "$(cat "$EXP/smoke-hello.txt")" = "hello from the guest kernel client" ] || { echo "selftest: FAIL: content" >&2; exit 1; }
[ "$(stat -c %s "$EXP/smoke-blob.bin")" = 2097152 ] || { echo "selftest: FAIL: blob size" >&2; exit 1; }
echo "selftest: PASS (files written by the guest are visible on the host)" >&2
