#!/bin/sh
# /init of the swarmhub test guest (busybox sh, PID 1). Installed into the base
# initramfs by build-guest.sh; run-guest.sh appends a second cpio holding
# /harness/env (parameters), /harness/test.sh (the test script) and any --extra-file.
# With NO_MOUNT=1 in /harness/env nothing is mounted here: the script mounts by itself.
#
# Protocol on the second serial port (/dev/ttyS1, a host file): lines starting
# with "@@SWARMHUB " are harness markers; everything else is the test script's
# combined stdout/stderr. The last marker is "@@SWARMHUB result=<n>".

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH
/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
exec </dev/null >/dev/console 2>&1

R=/dev/ttyS1
stty -F $R raw -echo -onlcr 2>/dev/null
up() { cut -d' ' -f1 /proc/uptime; }
mark() { echo "@@SWARMHUB $* uptime=$(up)" >$R; echo "[guest-init] $* uptime=$(up)"; }
finish() {
    # $1 = harness result code. Never returns.
    echo "@@SWARMHUB result=$1 uptime=$(up)" >$R
    echo "[guest-init] result=$1"
    sync
    poweroff -f
    sleep 5; echo o >/proc/sysrq-trigger; sleep 60
}
# run_with_timeout SECONDS FLAGFILE cmd... : SIGKILL cmd after SECONDS, touch FLAGFILE if it did.
run_with_timeout() {
    t=$1; flag=$2; shift 2
    rm -f "$flag"
    "$@" &
    cpid=$!
    # The watchdog must not keep a cwd on the NFS mount (that would make umount EBUSY).
    ( cd /; trap 'kill $spid 2>/dev/null; exit 0' TERM
      sleep "$t" & spid=$!; wait $spid
      if kill -0 $cpid 2>/dev/null; then touch "$flag"; kill -9 $cpid 2>/dev/null; fi ) &
    wpid=$!
    wait $cpid
    rc=$?
    kill $wpid 2>/dev/null
    wait $wpid 2>/dev/null
    return $rc
}

mark stage=init kernel=$(uname -r)
[ -f /harness/env ] || { echo "no /harness/env (second cpio missing?)"; finish 241; }
. /harness/env
: "${NFS_SERVER:=10.0.2.2}" "${SCRIPT_TIMEOUT:=300}" "${MOUNT_TIMEOUT:=30}" "${TEARDOWN_TIMEOUT:=30}"

# --- modules -------------------------------------------------------------------
for m in $(cat /lib/modules/load-order); do
    out=$(insmod /lib/modules/$m.ko 2>&1) || { echo "insmod $m failed: $out"; mark stage=modules-failed module=$m; finish 241; }
done
mark stage=modules

# --- network: 10.0.2.15/24 on eth0, deliberately NO default route -------------
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || { ip link; mark stage=network-failed; finish 241; }
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || { mark stage=network-failed; finish 241; }
mark stage=network

# --- mounts --------------------------------------------------------------------
base_opts="vers=3,proto=tcp,port=${NFS_PORT},mountport=${MOUNT_PORT},mountproto=tcp,nolock,hard,addr=${NFS_SERVER}"
[ -n "${MOUNT_OPTS_EXTRA:-}" ] && base_opts="$base_opts,$MOUNT_OPTS_EXTRA"
do_mount() { # export mountpoint
    mkdir -p "$2"
    echo "[guest-init] mount -t nfs -o $base_opts $NFS_SERVER:$1 $2"
    run_with_timeout "$MOUNT_TIMEOUT" /tmp/mount.timedout mount -t nfs -o "$base_opts" "$NFS_SERVER:$1" "$2" >/tmp/mount.out 2>&1
    mrc=$?
    cat /tmp/mount.out
    if [ $mrc -ne 0 ]; then
        { echo "mount of $NFS_SERVER:$1 on $2 failed (rc=$mrc):"; cat /tmp/mount.out
          [ -e /tmp/mount.timedout ] && echo "(timed out after ${MOUNT_TIMEOUT}s)"
          dmesg | tail -n 20; } >$R
        mark stage=mount-failed export=$1
        finish 242
    fi
}
if [ "${NO_MOUNT:-0}" = 1 ]; then
    mkdir -p /mnt/nfs /mnt/nfs2
    mark stage=no-mount
    SCRIPT_CWD=/
else
    do_mount "$EXPORT" /mnt/nfs
    [ -n "${EXPORT2:-}" ] && do_mount "$EXPORT2" /mnt/nfs2
    mark stage=mounted
    grep ' nfs ' /proc/mounts
    SCRIPT_CWD=/mnt/nfs
fi

# --- the test script -----------------------------------------------------------
NFS_MNT=/mnt/nfs; NFS_MNT2=; [ -n "${EXPORT2:-}" ] && NFS_MNT2=/mnt/nfs2
export NFS_MNT NFS_MNT2 HOME=/tmp NFS_SERVER NFS_PORT MOUNT_PORT EXPORT EXPORT2 SCRIPT_CWD
run_with_timeout "$SCRIPT_TIMEOUT" /tmp/script.timedout sh -c 'cd "$SCRIPT_CWD" && exec sh /harness/test.sh' >$R 2>&1
src=$?
if [ -e /tmp/script.timedout ]; then
    mark stage=script-timeout seconds=$SCRIPT_TIMEOUT
    result=243
else
    mark stage=script-done rc=$src
    result=$src
fi

# --- teardown: sync + umount, each bounded ---------------------------------------
# Kill whatever the script left behind (background jobs holding files/cwd on the mount);
# kill -1 spares PID 1 (us).
kill -9 -1 2>/dev/null
sleep 0.1
td=0
run_with_timeout "$TEARDOWN_TIMEOUT" /tmp/sync.timedout sync || td=1
[ -e /tmp/sync.timedout ] && td=1
for mp in /mnt/nfs2 /mnt/nfs; do
    grep -q " $mp nfs " /proc/mounts || continue
    run_with_timeout "$TEARDOWN_TIMEOUT" /tmp/umount.timedout umount "$mp" >/tmp/umount.out 2>&1 || {
        td=1; cat /tmp/umount.out >$R
        umount -f "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null
    }
done
if [ $td -ne 0 ]; then
    mark stage=teardown-failed
    [ "$result" = 0 ] && result=245
else
    mark stage=unmounted
fi
finish "$result"
