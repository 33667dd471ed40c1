#!/bin/bash
# Boot the throwaway qemu (TCG) guest, mount an NFSv3 export with the Linux kernel
# client and run a test script inside it. See tests/guest/README.md.
#
#   tests/guest/run-guest.sh --nfs-port P --mount-port M --export /path --script FILE \
#       [--server 10.0.2.2] [--export2 /path] [--timeout SECS] [--script-timeout SECS] \
#       [--mount-opts OPTS] [--cache DIR] [--log-dir DIR] [--keep-logs] \
#       [--no-mount] [--extra-file SRC[:DEST]]...
#
# Exit status: the test script's exit status, or one of the harness codes
#   240 usage / setup error (bad arguments, guest not built, qemu missing)
#   241 guest boot failure (kernel, modules, network, or qemu died without a result)
#   242 the NFS mount failed inside the guest
#   243 the test script hit its guest-side timeout (--script-timeout)
#   244 host-side hard timeout: qemu was killed (--timeout)
#   245 script passed but sync/umount at teardown failed or timed out
# (scripts should therefore exit with codes below 240).
#
# --server is the NFS server address as seen from the guest; host 127.0.0.1 is 10.0.2.2.
# --mount-port may equal --nfs-port (swarmhub-nfsd serves MOUNT and NFS on one port).
# --export2 mounts a second export at /mnt/nfs2 (same options) for two-view tests.
# --no-mount: the guest does not mount anything; the script mounts itself (e.g. through the
#   plugin binary) at $NFS_MNT; the parameters are still in its env (NFS_SERVER, NFS_PORT,
#   MOUNT_PORT, EXPORT, EXPORT2), --export is then optional, and the script's cwd is /.
# --extra-file SRC[:DEST] (repeatable) ships a host file into the guest at DEST (an absolute
#   path, default /basename(SRC)), mode kept, in the same appended cpio as the script.
# --mount-opts are appended to vers=3,proto=tcp,port=P,mountport=M,mountproto=tcp,
#   nolock,hard,addr=SERVER (e.g. rsize=65536,nosharecache,actimeo=0).
# --timeout (default 180, env SWARMHUB_GUEST_TIMEOUT) is the host-side hard limit for the
#   whole run; --script-timeout defaults to timeout-30 (or 2/3 of it when <= 60).
# The script runs as root under busybox sh, cwd /mnt/nfs, with NFS_MNT=/mnt/nfs and
# NFS_MNT2=/mnt/nfs2 (empty without --export2). Its stdout+stderr is printed on our stdout;
# harness progress, timings and failure diagnostics go to stderr.
# Env: SWARMHUB_GUEST_CACHE (default /var/cache/swarmhub-guest), SWARMHUB_GUEST_LOGDIR
#   (parent of the per-run dir, default $TMPDIR or /tmp), SWARMHUB_GUEST_KEEP_LOGS=1,
#   SWARMHUB_GUEST_MOUNT_OPTS, SWARMHUB_GUEST_SMP (1), SWARMHUB_GUEST_MEM (512),
#   SWARMHUB_GUEST_MOUNT_TIMEOUT (30), SWARMHUB_GUEST_TEARDOWN_TIMEOUT (30),
#   SWARMHUB_GUEST_BIOS (e.g. /usr/share/qemu/qboot.rom), SWARMHUB_GUEST_TAIL (40).
# Per-run logs (console.log, result.log) are deleted on success, kept on failure.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E_USAGE=240 E_BOOT=241 E_MOUNT=242 E_SCRIPT_TIMEOUT=243 E_HOST_TIMEOUT=244

usage() { # $1 = exit status
    awk 'NR>1 && /^#/ {sub(/^# ?/, ""); print; next} NR>1 {exit}' "${BASH_SOURCE[0]}" >&2
    exit "${1:-$E_USAGE}"
}
die() { echo "run-guest: ERROR: $*" >&2; exit $E_USAGE; }

SERVER=10.0.2.2
NFS_PORT="" MOUNT_PORT="" EXPORT="" EXPORT2="" SCRIPT="" NO_MOUNT=0
EXTRA_FILES=()
TIMEOUT="${SWARMHUB_GUEST_TIMEOUT:-180}"
SCRIPT_TIMEOUT=""
MOUNT_OPTS="${SWARMHUB_GUEST_MOUNT_OPTS:-}"
CACHE_DIR="${SWARMHUB_GUEST_CACHE:-/var/cache/swarmhub-guest}"
LOG_PARENT="${SWARMHUB_GUEST_LOGDIR:-${TMPDIR:-/tmp}}"
KEEP_LOGS="${SWARMHUB_GUEST_KEEP_LOGS:-0}"
SMP="${SWARMHUB_GUEST_SMP:-1}"
MEM="${SWARMHUB_GUEST_MEM:-512}"

while [ $# -gt 0 ]; do
    case "$1" in
        --server) SERVER="$2"; shift 2 ;;
        --nfs-port) NFS_PORT="$2"; shift 2 ;;
        --mount-port) MOUNT_PORT="$2"; shift 2 ;;
        --export) EXPORT="$2"; shift 2 ;;
        --export2) EXPORT2="$2"; shift 2 ;;
        --script) SCRIPT="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --script-timeout) SCRIPT_TIMEOUT="$2"; shift 2 ;;
        --mount-opts) MOUNT_OPTS="$2"; shift 2 ;;
        --cache) CACHE_DIR="$2"; shift 2 ;;
        --log-dir) LOG_PARENT="$2"; shift 2 ;;
        --keep-logs) KEEP_LOGS=1; shift ;;
        --no-mount) NO_MOUNT=1; shift ;;
        --extra-file) EXTRA_FILES+=("$2"); shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "run-guest: unknown argument: $1" >&2; usage ;;
    esac
done
isnum() { [[ "$1" =~ ^[0-9]+$ ]]; }
isnum "$NFS_PORT" || die "--nfs-port is required (number)"
isnum "$MOUNT_PORT" || die "--mount-port is required (number)"
[[ "$EXPORT" == /* ]] || { [ $NO_MOUNT = 1 ] && [ -z "$EXPORT" ]; } || die "--export is required (absolute export path)"
[ -z "$EXPORT2" ] || [[ "$EXPORT2" == /* ]] || die "--export2 must be an absolute path"
[ -n "$SCRIPT" ] && [ -f "$SCRIPT" ] || die "--script FILE is required and must exist"
isnum "$TIMEOUT" && [ "$TIMEOUT" -ge 10 ] || die "--timeout must be >= 10 seconds"
if [ -z "$SCRIPT_TIMEOUT" ]; then
    # leave room for boot (~5 s) and teardown inside the hard timeout
    if [ "$TIMEOUT" -gt 60 ]; then SCRIPT_TIMEOUT=$((TIMEOUT - 30)); else SCRIPT_TIMEOUT=$((TIMEOUT * 2 / 3)); fi
fi
isnum "$SCRIPT_TIMEOUT" || die "--script-timeout must be a number"
[[ "$SERVER" =~ ^[0-9.]+$ ]] || die "--server must be an IPv4 address as seen from the guest"
[[ "$MOUNT_OPTS" =~ ^[A-Za-z0-9_=,.:-]*$ ]] || die "--mount-opts contains unexpected characters"
QEMU="$(command -v qemu-system-x86_64)" || die "qemu-system-x86_64 not found (run tests/guest/build-guest.sh)"
command -v cpio >/dev/null || die "cpio not found (run tests/guest/build-guest.sh)"
BASE="$CACHE_DIR/base"
[ -f "$BASE/vmlinuz" ] && [ -f "$BASE/initrd.cpio" ] || die "guest not built in $CACHE_DIR (run tests/guest/build-guest.sh $CACHE_DIR)"

mkdir -p "$LOG_PARENT"
RUN="$(mktemp -d "$LOG_PARENT/swarmhub-guest.XXXXXX")" || die "cannot create run dir under $LOG_PARENT"
QEMU_PID=""
cleanup() {
    local pid=""
    [ -f "$RUN/qemu.pid" ] && pid="$(cat "$RUN/qemu.pid" 2>/dev/null)"
    for p in $QEMU_PID $pid; do
        kill -0 "$p" 2>/dev/null || continue
        kill -TERM "$p" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$p" 2>/dev/null
    done
    rm -f "$RUN/initrd" "$RUN/extra.cpio"
    rm -rf "$RUN/extra"
    if [ "${KEEP_LOGS}" != 1 ] && [ "${RESULT_OK:-0}" = 1 ]; then rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'echo "run-guest: interrupted" >&2; exit 130' INT TERM HUP

# --- second cpio: parameters + script ---------------------------------------------
shq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
mkdir -p "$RUN/extra/harness"
{
    echo "NFS_SERVER=$(shq "$SERVER")"
    echo "NFS_PORT=$NFS_PORT"
    echo "MOUNT_PORT=$MOUNT_PORT"
    echo "EXPORT=$(shq "$EXPORT")"
    echo "EXPORT2=$(shq "$EXPORT2")"
    echo "MOUNT_OPTS_EXTRA=$(shq "$MOUNT_OPTS")"
    echo "SCRIPT_TIMEOUT=$SCRIPT_TIMEOUT"
    echo "MOUNT_TIMEOUT=${SWARMHUB_GUEST_MOUNT_TIMEOUT:-30}"
    echo "TEARDOWN_TIMEOUT=${SWARMHUB_GUEST_TEARDOWN_TIMEOUT:-30}"
    echo "NO_MOUNT=$NO_MOUNT"
} >"$RUN/extra/harness/env"
cp "$SCRIPT" "$RUN/extra/harness/test.sh"
for spec in "${EXTRA_FILES[@]}"; do
    src="${spec%%:*}" dest="/$(basename "${spec%%:*}")"
    [ "$spec" != "$src" ] && dest="${spec#*:}"
    [ -f "$src" ] || die "--extra-file: $src is not a file"
    [[ "$dest" == /* && "$dest" != */ && "$dest" != *..* ]] || die "--extra-file: bad destination $dest"
    mkdir -p "$RUN/extra$(dirname "$dest")"
    cp -p "$src" "$RUN/extra$dest" || die "cannot copy $src"
done
(cd "$RUN/extra" && find . -mindepth 1 | sed 's#^\./##' | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 >"$RUN/extra.cpio") \
    || die "cpio failed"
cat "$BASE/initrd.cpio" "$RUN/extra.cpio" >"$RUN/initrd" || die "cannot write $RUN/initrd"
: >"$RUN/console.log"; : >"$RUN/result.log"

# --- boot ---------------------------------------------------------------------------
# Networking: qemu user-mode (slirp). The guest gets 10.0.2.15/24 and NO default route,
# so it can reach only 10.0.2.0/24: 10.0.2.2 (= host 127.0.0.1) and slirp's DNS 10.0.2.3.
# Nothing is forwarded from the host into the guest.
BIOS_ARGS=()
[ -n "${SWARMHUB_GUEST_BIOS:-}" ] && BIOS_ARGS=(-bios "$SWARMHUB_GUEST_BIOS")
T0=$(date +%s.%N)
"$QEMU" -accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM" \
    -nographic -nodefaults -no-reboot "${BIOS_ARGS[@]}" \
    -kernel "$BASE/vmlinuz" -initrd "$RUN/initrd" \
    -append "console=ttyS0 panic=-1 loglevel=4 8250.nr_uarts=2 tsc=unstable" \
    -serial "file:$RUN/console.log" -serial "file:$RUN/result.log" \
    -netdev user,id=n0,ipv6=off -device virtio-net-pci,netdev=n0,romfile= \
    -pidfile "$RUN/qemu.pid" </dev/null >"$RUN/qemu.out" 2>&1 &
QEMU_PID=$!

TIMED_OUT=0
deadline=$(( $(date +%s) + TIMEOUT ))
while kill -0 "$QEMU_PID" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then TIMED_OUT=1; break; fi
    sleep 0.1
done
if [ $TIMED_OUT = 1 ]; then
    kill -TERM "$QEMU_PID" 2>/dev/null; sleep 1; kill -KILL "$QEMU_PID" 2>/dev/null
fi
wait "$QEMU_PID" 2>/dev/null
QEMU_RC=$?
QEMU_PID=""
T1=$(date +%s.%N)
WALL=$(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}')

# --- report ---------------------------------------------------------------------------
tr -d '\r' <"$RUN/result.log" >"$RUN/result.txt"
grep -v '^@@SWARMHUB ' "$RUN/result.txt"            # the script's output, on stdout
marker() { grep '^@@SWARMHUB ' "$RUN/result.txt" | grep -o "$1=[^ ]*" | tail -n1 | cut -d= -f2; }
up_at() { grep "^@@SWARMHUB stage=$1 " "$RUN/result.txt" | grep -o 'uptime=[^ ]*' | tail -n1 | cut -d= -f2; }
RESULT="$(grep '^@@SWARMHUB result=' "$RUN/result.txt" | tail -n1 | sed 's/^@@SWARMHUB result=\([0-9]*\).*/\1/')"
MOUNTED="$(up_at mounted)"
DONE="$(up_at script-done)"; [ -n "$DONE" ] || DONE="$(up_at script-timeout)"
{
    echo "run-guest: stages: $(grep '^@@SWARMHUB ' "$RUN/result.txt" | sed 's/^@@SWARMHUB //' | tr '\n' ';')"
    echo "run-guest: timings: guest uptime at mounted=${MOUNTED:-n/a}s script-done=${DONE:-n/a}s; host wall=${WALL}s (qemu exit ${QEMU_RC})"
} >&2

tail_console() {
    echo "run-guest: ---- tail of guest console ($RUN/console.log) ----" >&2
    tr -d '\r' <"$RUN/console.log" | tail -n "${SWARMHUB_GUEST_TAIL:-40}" >&2
    [ -s "$RUN/qemu.out" ] && { echo "run-guest: ---- qemu stderr ----" >&2; cat "$RUN/qemu.out" >&2; }
    echo "run-guest: logs kept in $RUN" >&2
}

if [ $TIMED_OUT = 1 ]; then
    echo "run-guest: FAIL: host timeout after ${TIMEOUT}s, qemu killed (last stage: $(marker stage))" >&2
    tail_console; exit $E_HOST_TIMEOUT
fi
if [ -z "$RESULT" ]; then
    echo "run-guest: FAIL: guest ended without a result (boot failure?; last stage: $(marker stage))" >&2
    tail_console; exit $E_BOOT
fi
case "$RESULT" in
    0) RESULT_OK=1; echo "run-guest: PASS" >&2 ;;
    $E_BOOT) echo "run-guest: FAIL: guest boot failure (stage $(marker stage))" >&2; tail_console ;;
    $E_MOUNT) echo "run-guest: FAIL: NFS mount failed in guest" >&2; tail_console ;;
    $E_SCRIPT_TIMEOUT) echo "run-guest: FAIL: test script timed out after ${SCRIPT_TIMEOUT}s in guest" >&2; tail_console ;;
    245) echo "run-guest: FAIL: script passed but sync/umount failed at teardown" >&2; tail_console ;;
    *) echo "run-guest: FAIL: test script exited with status $RESULT" >&2; tail_console ;;
esac
[ "$KEEP_LOGS" = 1 ] && [ "$RESULT" = 0 ] && echo "run-guest: logs kept in $RUN" >&2
exit "$RESULT"
