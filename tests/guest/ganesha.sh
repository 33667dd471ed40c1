#!/bin/bash
# Run a private nfs-ganesha 4.3 (Debian) exporting DIR over NFSv3/TCP on 127.0.0.1,
# as a reference server for the guest harness. No systemd, nothing system-wide:
#
#   tests/guest/ganesha.sh start DIR PORT     NFS on 127.0.0.1:PORT, MOUNT on 127.0.0.1:PORT+1
#   tests/guest/ganesha.sh stop  DIR PORT     kill everything start launched (DIR is ignored)
#   tests/guest/ganesha.sh status DIR PORT
#
# The export path (what the client mounts) is DIR itself (made absolute). Root is not
# squashed. State (config, logs, pids) lives in $SWARMHUB_GANESHA_STATE, default
# ${TMPDIR:-/tmp}/swarmhub-ganesha-PORT.
#
# How it stays private: ganesha 4.3 refuses to start unless it can register with rpcbind.
# start runs, inside a new mount namespace (unshare --mount, private propagation):
#   * a private directory bind-mounted over /run (so /run/rpcbind.sock, /run/rpcbind/ and
#     ganesha's own /run files never touch the host's /run);
#   * rpcbind -f -w in a nested mount namespace whose /etc/netconfig holds only the
#     "local"/"unix" lines, so it listens only on its unix socket (no port 111 grabbed);
#   * ganesha.nfsd -F with the full /etc/netconfig, registering through that socket.
# NLM, RQUOTA and UDP are off; NFSv4 recovery state goes to the state dir.
# Must run as root (ganesha and unshare --mount need it).
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
log() { echo "ganesha.sh: $*" >&2; }
die() { echo "ganesha.sh: ERROR: $*" >&2; exit 1; }

# ---- inner: runs inside the private mount namespace (process group leader) -----------
if [ "${1:-}" = __inner ]; then
    ST="$2"
    set +e
    mount --make-rprivate / 2>/dev/null
    mkdir -p "$ST/run/rpcbind"
    chmod 755 "$ST/run" "$ST/run/rpcbind"
    mount --bind "$ST/run" /run || { echo "bind /run failed"; exit 1; }
    # rpcbind drops privileges to _rpc; let it own its state dir.
    chown _rpc "$ST/run/rpcbind" 2>/dev/null
    unshare --mount --propagation private -- sh -c \
        'mount --bind "$1" /etc/netconfig && exec rpcbind -f -w' sh "$ST/netconfig" \
        >>"$ST/rpcbind.log" 2>&1 &
    RPCBIND=$!
    echo $RPCBIND >"$ST/rpcbind.pid"
    for _ in $(seq 1 100); do [ -S /run/rpcbind.sock ] && break; sleep 0.05; done
    [ -S /run/rpcbind.sock ] || { echo "rpcbind did not create /run/rpcbind.sock"; kill $RPCBIND; exit 1; }
    ganesha.nfsd -F -f "$ST/ganesha.conf" -L "$ST/ganesha.log" -p "$ST/run/ganesha.pid" -N NIV_EVENT &
    GANESHA=$!
    echo $GANESHA >"$ST/ganesha.pid"
    wait $GANESHA
    rc=$?
    echo "ganesha.nfsd exited with $rc"
    kill $RPCBIND 2>/dev/null
    wait $RPCBIND 2>/dev/null
    exit $rc
fi

CMD="${1:-}"; DIR="${2:-}"; PORT="${3:-}"
[ -n "$CMD" ] && [ -n "$PORT" ] || die "usage: $0 start|stop|status DIR PORT"
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -gt 0 ] && [ "$PORT" -lt 65535 ] || die "bad PORT $PORT"
MNT_PORT=$((PORT + 1))
ST="${SWARMHUB_GANESHA_STATE:-${TMPDIR:-/tmp}/swarmhub-ganesha-$PORT}"

alive() { [ -f "$ST/pgid" ] && kill -0 "$(cat "$ST/pgid")" 2>/dev/null; }
listening() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

case "$CMD" in
start)
    [ "$(id -u)" = 0 ] || die "must run as root"
    [ -n "$DIR" ] && [ -d "$DIR" ] || die "DIR $DIR is not a directory"
    DIR="$(cd "$DIR" && pwd -P)"
    if ! command -v ganesha.nfsd >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so ] \
        || ! command -v rpcbind >/dev/null; then
        log "installing nfs-ganesha nfs-ganesha-vfs rpcbind"
        DEBIAN_FRONTEND=noninteractive apt-get install -y nfs-ganesha nfs-ganesha-vfs rpcbind >&2
    fi
    if alive; then
        if [ "$(cat "$ST/dir" 2>/dev/null)" = "$DIR" ]; then log "already running (pgid $(cat "$ST/pgid"))"; exit 0; fi
        die "another ganesha already runs on port $PORT for $(cat "$ST/dir"); stop it first"
    fi
    listening "$PORT" && die "port $PORT already in use"
    listening "$MNT_PORT" && die "port $MNT_PORT already in use"
    rm -rf "$ST"
    mkdir -p "$ST/recov" "$ST/run"
    echo "$DIR" >"$ST/dir"
    grep -E '^(local|unix)[[:space:]]' /etc/netconfig >"$ST/netconfig" \
        || printf 'local tpi_cots_ord - loopback - - -\nunix tpi_cots_ord - loopback - - -\n' >"$ST/netconfig"
    cat >"$ST/ganesha.conf" <<EOF
NFS_CORE_PARAM {
    Protocols = 3;
    NFS_Port = $PORT;
    MNT_Port = $MNT_PORT;
    Bind_addr = 127.0.0.1;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    Plugins_Dir = "/usr/lib/x86_64-linux-gnu/ganesha";
}
NFSV4 {
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = "$ST/recov";
}
EXPORT {
    Export_Id = 1;
    Path = "$DIR";
    Pseudo = "$DIR";
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = 3;
    Transports = TCP;
    SecType = sys;
    FSAL { Name = VFS; }
}
LOG {
    Default_Log_Level = EVENT;
}
EOF
    # setsid: new session/process group, so stop can kill exactly what we started.
    setsid unshare --mount --propagation private -- bash "$SELF" __inner "$ST" \
        >>"$ST/wrapper.log" 2>&1 </dev/null &
    echo $! >"$ST/pgid"
    for _ in $(seq 1 200); do
        if ! alive; then
            log "ganesha exited during start; logs:"; tail -n 30 "$ST/wrapper.log" "$ST/ganesha.log" >&2 2>/dev/null
            exit 1
        fi
        listening "$PORT" && listening "$MNT_PORT" && break
        sleep 0.1
    done
    listening "$PORT" && listening "$MNT_PORT" || {
        log "ganesha not listening after 20 s; logs:"; tail -n 30 "$ST/ganesha.log" >&2 2>/dev/null
        "$SELF" stop "$DIR" "$PORT"; exit 1; }
    log "running: export $DIR, NFS 127.0.0.1:$PORT, MOUNT 127.0.0.1:$MNT_PORT (state $ST, pgid $(cat "$ST/pgid"))"
    ;;
stop)
    if ! [ -f "$ST/pgid" ]; then log "not running (no $ST/pgid)"; exit 0; fi
    PG="$(cat "$ST/pgid")"
    if kill -0 "$PG" 2>/dev/null || kill -0 -- "-$PG" 2>/dev/null; then
        kill -TERM -- "-$PG" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 -- "-$PG" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$PG" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 -- "-$PG" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$ST/pgid"
    log "stopped (state kept in $ST)"
    ;;
status)
    if alive; then echo "running: $(cat "$ST/dir") port $PORT pgid $(cat "$ST/pgid")"; else echo "not running"; exit 1; fi
    ;;
*) die "usage: $0 start|stop|status DIR PORT" ;;
esac
