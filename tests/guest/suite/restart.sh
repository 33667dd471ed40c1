# Server restarts under a live hard mount (swarmhub-nfsd; the host side drives the restarts).
# (lib.sh is prepended.)
# Protocol with the host, through files in the export root:
#   guest: creates `restart-go` once all workers run;
#   host:  restarts the server (SIGTERM + start, later kill -9 + start), then creates
#          `restart-done`;
#   guest: keeps working ${SUITE_AFTER_DONE:-3} s more, stops, verifies, and writes
#          `restart-counts` ("a=N b=M c=K") for the host to cross-check.
# Workers (all must see no error, no ESTALE/EIO):
#   A  one shell holding an O_APPEND fd on rs-a.log: "a<i> <uptime>" every 50 ms,
#      plus `dd conv=fsync` of the file every 10 lines;
#   B  one `dd oflag=append conv=notrunc,fsync` per line into rs-b.log (new open each time);
#   D  like A (held fd, no fsync) on rs-d.log, which the guest renames into rs-dir/ (another
#      directory) 1 s after restart-go, i.e. before the first restart: the handle must survive
#      rename + restart;
#   C  cwd in rs-dir (a directory handle from before the restarts): create/stat/list/remove
#      every 200 ms, and create+remove a file in the root so negative lookups revalidate.
# Env: SUITE_MAX_WAIT (seconds to wait for restart-done, default 120).

MAX_WAIT=${SUITE_MAX_WAIT:-120}
AFTER=${SUITE_AFTER_DONE:-3}
cd "$NFS_MNT" || exit 1
rm -rf rs-a.log rs-b.log rs-d.log rs-dir restart-go restart-done restart-counts
mkdir rs-dir
rm -f /tmp/stop /tmp/a.* /tmp/b.* /tmp/c.* /tmp/d.*

worker_a() {
    i=0
    while [ ! -e /tmp/stop ]; do
        echo "a$i $(uptime_s)" || { echo "A: write of line $i failed" >>/tmp/a.err; break; }
        i=$((i + 1))
        if [ $((i % 10)) = 0 ]; then
            dd if=/dev/null of=rs-a.log conv=notrunc,fsync 2>/tmp/a.dd ||
                echo "A: fsync after line $i failed: $(cat /tmp/a.dd)" >>/tmp/a.err
        fi
        sleep 0.05
    done
    echo $i >/tmp/a.count
}
worker_b() {
    i=0
    while [ ! -e /tmp/stop ]; do
        echo "b$i" | dd of=rs-b.log oflag=append conv=notrunc,fsync 2>/tmp/b.dd || {
            echo "B: dd of line $i failed: $(cat /tmp/b.dd)" >>/tmp/b.err; break; }
        i=$((i + 1))
        sleep 0.1
    done
    echo $i >/tmp/b.count
}
worker_d() {
    i=0
    while [ ! -e /tmp/stop ]; do
        echo "d$i" || { echo "D: write of line $i failed" >>/tmp/d.err; break; }
        i=$((i + 1))
        sleep 0.05
    done
    echo $i >/tmp/d.count
}
worker_c() {
    cd rs-dir || { echo "C: cd rs-dir failed" >>/tmp/c.err; return; }
    i=0
    while [ ! -e /tmp/stop ]; do
        echo "c$i" >"c$i" 2>>/tmp/c.err || echo "C: create c$i failed" >>/tmp/c.err
        [ "$(cat "c$i" 2>>/tmp/c.err)" = "c$i" ] || echo "C: read back c$i failed" >>/tmp/c.err
        ls -l . >/dev/null 2>>/tmp/c.err || echo "C: ls -l of rs-dir failed at $i" >>/tmp/c.err
        stat .. >/dev/null 2>>/tmp/c.err || echo "C: stat .. failed at $i" >>/tmp/c.err
        [ $i -ge 5 ] && { rm "c$((i - 5))" 2>>/tmp/c.err || echo "C: rm c$((i - 5)) failed" >>/tmp/c.err; }
        : >"../rs-tick.$i" 2>>/tmp/c.err && rm "../rs-tick.$i" 2>>/tmp/c.err || echo "C: tick $i failed" >>/tmp/c.err
        i=$((i + 1))
        sleep 0.2
    done
    echo $i >/tmp/c.count
}

t0=$(uptime_s)
(worker_a >>rs-a.log) 2>>/tmp/a.err &
pa=$!
worker_b 2>>/tmp/b.err &
pb=$!
worker_c 2>>/tmp/c.err &
pc=$!
(worker_d >>rs-d.log) 2>>/tmp/d.err &
pd=$!
sleep 1
: >restart-go
echo "restart: workers running, restart-go created at uptime $(uptime_s)"
sleep 1
must rename-open-file "mv rs-d.log rs-dir/rs-d-moved.log (open, being written)" mv rs-d.log rs-dir/rs-d-moved.log &&
    pass rename-open-file

# wait for the host's restart-done (drop dentries so the negative lookup is redone)
waited=0
while :; do
    echo 2 >/proc/sys/vm/drop_caches
    [ -e restart-done ] && break
    waited=$((waited + 1))
    [ $waited -ge $((MAX_WAIT * 2)) ] && break
    sleep 0.5
done
if [ -e restart-done ]; then
    echo "restart: saw restart-done at uptime $(uptime_s): $(cat restart-done)"
    pass restart-done-seen
else
    fail restart-done-seen "wait for restart-done" "created by the host within ${MAX_WAIT}s" "absent"
fi
sleep "$AFTER"
: >/tmp/stop
wait $pa $pb $pc $pd
echo "TIME restart-workers $(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN{printf "%.2f", b-a}')" >&2
na=$(cat /tmp/a.count 2>/dev/null); nb=$(cat /tmp/b.count 2>/dev/null); nc=$(cat /tmp/c.count 2>/dev/null)
nd=$(cat /tmp/d.count 2>/dev/null)
echo "restart: lines written: a=$na b=$nb d=$nd c-iterations=$nc"

for w in a b c d; do
    if [ -s /tmp/$w.err ]; then
        fail "worker-$w-no-errors" "worker $w I/O" "no errors" "$(head -c 600 /tmp/$w.err | tr '\n' ';')"
    else
        pass "worker-$w-no-errors"
    fi
done
drop_caches
i=0; while [ $i -lt "${na:-0}" ]; do echo "a$i"; i=$((i + 1)); done >/tmp/exp-a
i=0; while [ $i -lt "${nb:-0}" ]; do echo "b$i"; i=$((i + 1)); done >/tmp/exp-b
i=0; while [ $i -lt "${nd:-0}" ]; do echo "d$i"; i=$((i + 1)); done >/tmp/exp-d
cut -d' ' -f1 rs-a.log >/tmp/got-a
check writer-a-all-lines-in-order "rs-a.log (held fd): $(wc -l </tmp/got-a) lines vs $na written; md5" \
    "$(md5sum </tmp/exp-a)" "$(md5sum </tmp/got-a)"
check writer-b-all-lines-in-order "rs-b.log (dd fsync per line): $(wc -l <rs-b.log) lines vs $nb written; md5" \
    "$(md5sum </tmp/exp-b)" "$(md5sum <rs-b.log)"
check writer-d-renamed-file-all-lines "rs-dir/rs-d-moved.log (held fd, renamed): $(wc -l <rs-dir/rs-d-moved.log) lines vs $nd written; md5" \
    "$(md5sum </tmp/exp-d)" "$(md5sum <rs-dir/rs-d-moved.log)"
if [ "$(wc -l </tmp/got-a)" != "$na" ]; then
    echo "first differing lines (expected vs got):"; diff /tmp/exp-a /tmp/got-a | head -n 10
fi
# stalls seen by writer A (gaps between consecutive lines), the 3 largest
awk 'NR > 1 { g = $2 - p; print g, $1 } { p = $2 }' rs-a.log | sort -rn | head -n 3 |
    while read -r g l; do echo "restart: writer A stall ${g}s before line $l"; done
dmesg | grep -iE 'nfs|rpc' | grep -v 'Installing knfsd\|RPC: Registered' | tail -n 8 | sed 's/^/restart: dmesg: /'
check workers-progressed "a lines written" yes "$([ "${na:-0}" -gt 40 ] && echo yes || echo "no ($na)")"
echo "a=$na b=$nb c=$nc d=$nd" >restart-counts
suite_end
