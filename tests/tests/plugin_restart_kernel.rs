//! The volume plugin restarted under 50 mounted volumes, kernel backend, for real (issue 17,
//! item 2): inside the qemu guest of `tests/guest/` (Linux kernel NFS client, TCG), the statically
//! linked `swarmhub-volume-plugin serve --backend kernel` is driven the way dockerd drives it,
//! through its own socket (`swarmhub-volume-plugin call`, the hidden dockerd-like client): for
//! each of 50 volumes `Get` (answers "no such volume"), `Create` with `user=<name>` (the plugin asks
//! swarmhub-nfsd's control API on the host, 10.0.2.2, with the token shipped into the guest), and
//! `Mount` with a container ID; the plugin mounts each export with its kernel mounter (mount(2)
//! with text options). A writer per volume (a shell loop, like a notebook) appends a numbered
//! line to a file on its mount every 0.5 s and counts failed appends.
//!
//! Then the plugin is killed with SIGKILL and started again on the same state dir (its start
//! reconciles mounts with references), and later stopped with SIGTERM and started again. After
//! each restart the guest checks: no writer saw an error and every writer went on writing; the
//! NFS mounts in /proc/mounts are the same 50 (none lost, none doubled by the reconcile); state.json
//! is unchanged (each volume's reference `{ID: 1}`); `Get` answers every volume as mounted with
//! one reference; the plugin logged no remount or unmount. Then the writers stop; the plugin is
//! killed, one volume's mount is taken away behind its back (as a node reboot or an admin's
//! `umount` would) and the plugin's start must mount it again, once, with its data. Finally every
//! volume is unmounted through `Unmount` → no NFS mount and no mount point left, no reference left.
//! The host (nfsd's data dir) checks that each writer's file holds exactly the lines 1..N the
//! guest says it wrote, in order.
//!
//! nfsd has no LDAP here: the host creates the 50 volumes with explicit store ids first (the part
//! LDAP plays); the plugin's `Create` with the same `user=` option is answered by nfsd with that
//! volume (ensure semantics), exactly as for a volume another node created.
//!
//! Printed (`FIGURE name value`, for docs/RELIABILITY.md): mounts and references before and after
//! each restart, writer errors, lines written, plugin start to first answer on its socket (guest
//! clock, TCG: includes one `call` process start, also printed alone), reconcile actions.
//!
//! Needs root (see `swarmhub_tests::guest`), `swarmhub-nfsd` built (`cargo build -p
//! swarmhub-nfsd`), and builds the static plugin itself (`swarmhub_tests::guest::static_bin`).
//! Run: `cargo test -p swarmhub-tests --test plugin_restart_kernel -- --nocapture` (~5 min).

use std::collections::BTreeMap;

use swarmhub_tests::guest::{self, GuestRun};
use swarmhub_tests::nfsd::Nfsd;

/// Volumes mounted at once.
const VOLUMES: usize = 50;

/// The guest side. Prints `PASS name` / `FAIL name: ...`, `FIGURE name value`, `WRITER volume
/// ok=N attempts=N errors=N` (one per writer at the end), `SUMMARY passed=N failed=M`.
const SCRIPT: &str = r##"
P=/swarmhub-volume-plugin
SOCK=/run/swarmhub-nfs/swarmhub-nfs.sock
STATE=/run/swarmhub-nfs/state
ROOT=/mnt/volumes
W=/tmp/writers
PASSED=0; FAILED=0
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }
check() { if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi; }
figure() { echo "FIGURE $1 $2"; }
finish() { echo "SUMMARY passed=$PASSED failed=$FAILED"; [ $FAILED = 0 ]; exit $?; }
ms() {
    n=$(date +%s%N 2>/dev/null)
    case "$n" in
        *N*|'') awk '{printf "%d\n", $1 * 1000}' /proc/uptime ;;
        *) echo $((n / 1000000)) ;;
    esac
}
vol() { printf 'rv%02d' "$1"; }
cid() { printf 'ctr%02d' "$1"; }
c() { "$P" call --socket "$SOCK" --timeout-seconds 120 "$@"; }
nfs_mounts() { grep -c ' nfs ' /proc/mounts; }

[ -x "$P" ] || { fail plugin-shipped "$P missing"; finish; }
mkdir -p /run/swarmhub-nfs "$ROOT" "$W"
printf '%s\n' "$TOKEN" >/run/swarmhub-nfs/nfsd-token
START=0
# start_plugin: a new plugin process in the background (PLUGIN_PID), its log plugin-$START.log;
# then waits for its first answer on the socket (FIRST_MS: start to answer, guest clock)
start_plugin() {
    START=$((START + 1))
    t0=$(ms)
    "$P" --backend kernel --server "$NFS_SERVER" --nfs-port "$NFS_PORT" --api-port "$API_PORT" \
        --token-file /run/swarmhub-nfs/nfsd-token --state-dir "$STATE" --mount-root "$ROOT" \
        --socket "$SOCK" serve >"/tmp/plugin-$START.log" 2>&1 &
    PLUGIN_PID=$!
    i=0
    until c /Plugin.Activate >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 600 ] || ! kill -0 $PLUGIN_PID 2>/dev/null; then
            fail "plugin-start-$START" "no answer on $SOCK; log: $(tail -5 /tmp/plugin-$START.log | tr '\n' ' ')"
            finish
        fi
        sleep 0.1
    done
    FIRST_MS=$(($(ms) - t0))
}

# --- the plugin up, 50 volumes created and mounted the way dockerd does it -------------------
start_plugin
figure start-to-first-answer-ms-initial "$FIRST_MS"
t0=$(ms); c /Plugin.Activate >/dev/null; figure call-process-ms "$(($(ms) - t0))"
i=1
while [ $i -le $VOLUMES ]; do
    v=$(vol $i)
    c /VolumeDriver.Get "{\"Name\":\"$v\"}" >/dev/null 2>&1 && fail "get-before-create-$v" "Get answered before Create"
    out=$(c /VolumeDriver.Create "{\"Name\":\"$v\",\"Opts\":{\"user\":\"user$v\"}}" 2>&1) || fail "create-$v" "$out"
    out=$(c /VolumeDriver.Mount "{\"Name\":\"$v\",\"ID\":\"$(cid $i)\"}" 2>&1) || fail "mount-$v" "$out"
    mp=$(echo "$out" | sed -n 's/.*"Mountpoint":"\([^"]*\)".*/\1/p')
    [ "$mp" = "$ROOT/$v" ] || fail "mountpoint-$v" "expected $ROOT/$v, got '$mp' ($out)"
    i=$((i + 1))
done
check all-mounted "$VOLUMES" "$(nfs_mounts)"
[ $FAILED = 0 ] || finish

# --- a writer per volume: a numbered line every 0.5 s, failed appends counted -----------------
# W/<v>.last: the last line written; W/<v>.errs: failed appends (with W/<v>.err: the messages)
writer() {
    v=$1; f=$ROOT/$v/log.txt; n=0; ok=0; e=0
    while [ ! -e /tmp/stop-writers ]; do
        n=$((n + 1))
        if echo "$v line $n" >>"$f" 2>>"$W/$v.err"; then
            ok=$n; echo $ok >"$W/$v.last"
        else
            e=$((e + 1)); echo $e >"$W/$v.errs"
        fi
        sleep 0.5
    done
    echo "WRITER $v ok=$ok attempts=$n errors=$e" >"$W/$v.done"
}
i=1
while [ $i -le $VOLUMES ]; do
    writer "$(vol $i)" &
    i=$((i + 1))
done
sleep 10

# snapshot NAME: NFS mount points (sorted, duplicates kept) and state.json to /tmp/*.NAME, and
# what Get answers for every volume: GETS (answered), REFS (sum of references), MOUNTED
snapshot() {
    grep ' nfs ' /proc/mounts | cut -d' ' -f2 | sort >"/tmp/mounts.$1"
    cp "$STATE/state.json" "/tmp/state.$1"
    REFS=0; MOUNTED=0; GETS=0
    i=1
    while [ $i -le $VOLUMES ]; do
        v=$(vol $i)
        if out=$(c /VolumeDriver.Get "{\"Name\":\"$v\"}" 2>&1); then
            GETS=$((GETS + 1))
            r=$(echo "$out" | sed -n 's/.*"references":\([0-9]*\).*/\1/p')
            REFS=$((REFS + ${r:-0}))
            echo "$out" | grep -q '"mounted":true' && MOUNTED=$((MOUNTED + 1))
        else
            fail "get-$1-$v" "$out"
        fi
        i=$((i + 1))
    done
}
# progress: sum of the writers' last lines
progress() { cat "$W"/*.last 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
# writers that wrote nothing since file $1 (per-writer last lines) was taken
stuck_since() {
    s=0
    for f in "$W"/*.last; do
        v=$(basename "$f" .last)
        before=$(sed -n "s/^$v //p" "$1")
        [ "$(cat "$f")" -gt "${before:-0}" ] || s=$((s + 1))
    done
    echo $s
}
lasts() { for f in "$W"/*.last; do echo "$(basename "$f" .last) $(cat "$f")"; done; }
errors() { cat "$W"/*.errs 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
snapshot before
figure mounts-before "$(wc -l </tmp/mounts.before)"
figure refs-before-get "$REFS"
figure refs-before-state "$(grep -c '"ctr[0-9]*": 1' /tmp/state.before)"
check gets-before "$VOLUMES" "$GETS"
check refs-before "$VOLUMES" "$REFS"
check mounted-before "$VOLUMES" "$MOUNTED"
check writers-started "$VOLUMES" "$(ls "$W"/*.last 2>/dev/null | wc -l)"

# restart KIND SIGNAL: stop the plugin with SIGNAL, start it again, compare after 15 s
restart() {
    kind=$1; sig=$2
    lasts >"/tmp/lasts.$kind"
    kill -"$sig" $PLUGIN_PID
    wait $PLUGIN_PID; rc=$?
    echo "info: plugin stopped by SIG$sig, exit status $rc"
    [ "$sig" = TERM ] && check "sigterm-exit-0" 0 "$rc"
    figure "nfs-mounts-while-plugin-down-$kind" "$(nfs_mounts)"
    start_plugin
    figure "start-to-first-answer-ms-after-$kind" "$FIRST_MS"
    sleep 15
    snapshot "$kind"
    figure "mounts-after-$kind" "$(wc -l <"/tmp/mounts.$kind")"
    figure "refs-after-$kind-get" "$REFS"
    figure "refs-after-$kind-state" "$(grep -c '"ctr[0-9]*": 1' "/tmp/state.$kind")"
    figure "writer-errors-after-$kind" "$(errors)"
    figure "lines-written-after-$kind" "$(progress)"
    figure "reconcile-remounts-after-$kind" "$(grep -c 'remounting' "/tmp/plugin-$START.log")"
    figure "reconcile-unmounts-after-$kind" "$(grep -c 'nothing references' "/tmp/plugin-$START.log")"
    check "gets-after-$kind" "$VOLUMES" "$GETS"
    check "refs-after-$kind" "$VOLUMES" "$REFS"
    check "mounted-after-$kind" "$VOLUMES" "$MOUNTED"
    if cmp -s /tmp/mounts.before "/tmp/mounts.$kind"; then pass "same-mounts-after-$kind"
    else fail "same-mounts-after-$kind" "$(diff /tmp/mounts.before "/tmp/mounts.$kind" | tr '\n' ' ')"; fi
    check "no-duplicate-mounts-after-$kind" "" "$(uniq -d "/tmp/mounts.$kind")"
    if cmp -s /tmp/state.before "/tmp/state.$kind"; then pass "same-state-after-$kind"
    else fail "same-state-after-$kind" "$(diff /tmp/state.before "/tmp/state.$kind" | head -20 | tr '\n' ' ')"; fi
    check "no-remount-after-$kind" 0 "$(grep -c 'remounting' "/tmp/plugin-$START.log")"
    check "writer-errors-after-$kind" 0 "$(errors)"
    check "writers-went-on-after-$kind" 0 "$(stuck_since "/tmp/lasts.$kind")"
}
restart kill KILL
restart term TERM

# --- containers end: writers stop, every volume unmounted --------------------------------------
touch /tmp/stop-writers
wait_writers=0
while [ "$(ls "$W"/*.done 2>/dev/null | wc -l)" -lt $VOLUMES ] && [ $wait_writers -lt 300 ]; do
    sleep 0.1; wait_writers=$((wait_writers + 1))
done
cat "$W"/*.done
check writers-done "$VOLUMES" "$(ls "$W"/*.done | wc -l)"
for f in "$W"/*.err; do [ -s "$f" ] && echo "info: $(basename "$f"): $(head -3 "$f" | tr '\n' ' ')"; done

# --- reconcile does act: a referenced volume's mount gone while the plugin was down (a node
# reboot, an admin's umount) is mounted again at start, once, with its data -----------------
LOST=$(vol 1)
kill -KILL $PLUGIN_PID; wait $PLUGIN_PID
umount "$ROOT/$LOST" || fail lost-umount "umount $ROOT/$LOST: rc=$?"
figure nfs-mounts-with-one-lost "$(nfs_mounts)"
start_plugin
figure start-to-first-answer-ms-after-lost-mount "$FIRST_MS"
waited=0
until grep -q " $ROOT/$LOST nfs " /proc/mounts || [ $waited -ge 300 ]; do sleep 0.1; waited=$((waited + 1)); done
sleep 5
figure mounts-after-reconcile "$(nfs_mounts)"
figure reconcile-remounts-after-lost-mount "$(grep -c 'remounting' "/tmp/plugin-$START.log")"
check reconcile-remounts-lost "$VOLUMES" "$(nfs_mounts)"
check reconcile-remounts-once 1 "$(grep -c 'remounting' "/tmp/plugin-$START.log")"
check reconcile-no-duplicate "" "$(grep ' nfs ' /proc/mounts | cut -d' ' -f2 | sort | uniq -d)"
check reconcile-lost-data "$(cat "$W/$LOST.last")" "$(wc -l <"$ROOT/$LOST/log.txt" | tr -d ' ')"
check reconcile-lost-refs 1 "$(c /VolumeDriver.Get "{\"Name\":\"$LOST\"}" | sed -n 's/.*"references":\([0-9]*\).*/\1/p')"
i=1
while [ $i -le $VOLUMES ]; do
    v=$(vol $i)
    out=$(c /VolumeDriver.Unmount "{\"Name\":\"$v\",\"ID\":\"$(cid $i)\"}" 2>&1) || fail "unmount-$v" "$out"
    i=$((i + 1))
done
snapshot end
figure mounts-after-unmount "$(nfs_mounts)"
figure refs-after-unmount-get "$REFS"
figure refs-after-unmount-state "$(grep -c '"ctr[0-9]*"' /tmp/state.end)"
figure mount-points-left "$(ls "$ROOT" | wc -l)"
check no-nfs-mount-left 0 "$(nfs_mounts)"
check no-refs-left 0 "$REFS"
check none-mounted 0 "$MOUNTED"
check no-refs-in-state 0 "$(grep -c '"ctr[0-9]*"' /tmp/state.end)"
check no-mount-point-left "" "$(ls "$ROOT")"
check gets-after-unmount "$VOLUMES" "$GETS"
kill -TERM $PLUGIN_PID; wait $PLUGIN_PID
check final-sigterm-exit-0 0 "$?"
echo "info: plugin log of the last start: $(grep -c . /tmp/plugin-$START.log) lines"
grep -h -i 'error\|warn' /tmp/plugin-*.log | head -10 | sed 's/^/info: plugin log: /'
finish
"##;

#[test]
fn plugin_restarts_under_50_kernel_mounts_in_the_guest() {
    guest::require_root();
    // the static build can take minutes: before the guest lock, so no other guest waits for it
    let plugin = guest::static_bin("swarmhub-volume-plugin", "swarmhub-volume-plugin")
        .expect("static swarmhub-volume-plugin");
    let _lock = guest::lock();
    guest::ensure_built();

    let tmp = tempfile::Builder::new()
        .prefix("swarmhub-prk.")
        .tempdir()
        .unwrap();
    let nfsd = Nfsd::start(&tmp.path().join("data"), &[]).expect("start swarmhub-nfsd");
    // no LDAP: the host gives each volume its store ids, the plugin's Create (same options)
    // is then answered with that volume
    let names: Vec<String> = (1..=VOLUMES).map(|i| format!("rv{i:02}")).collect();
    for (i, v) in names.iter().enumerate() {
        nfsd.create_volume(&format!(
            r#"{{"name":"{v}","user":"user{v}","identity":{{"uid":{},"gid":30000}}}}"#,
            30001 + i
        ))
        .unwrap_or_else(|e| panic!("create volume {v}: {e:#}"));
    }
    assert!(
        !nfsd.token.contains('\''),
        "the token travels in the script's env"
    );
    let port = nfsd.nfs.port();
    // the guest reaches the host's 127.0.0.1 (where nfsd's NFS and API listen) as 10.0.2.2
    let mut run = GuestRun::script("plugin-restart", SCRIPT, port, port, "")
        .env("API_PORT", nfsd.api.port().to_string())
        .env("TOKEN", nfsd.token.clone())
        .env("VOLUMES", VOLUMES.to_string());
    run.mount = false;
    run.timeout_s = 1200;
    run.extra_files
        .push((plugin.clone(), "/swarmhub-volume-plugin".into()));
    let r = run.run().expect("run the guest");

    let figures: BTreeMap<&str, &str> = r
        .lines_with("FIGURE ")
        .filter_map(|l| l.split_once(' '))
        .collect();
    for (k, v) in &figures {
        eprintln!("FIGURE {k} {v}");
    }
    eprintln!("host wall of the guest run: {:.1} s", r.wall.as_secs_f64());

    // the writers' files on nfsd's disk: exactly the lines the guest says were written, in order
    let writers: BTreeMap<String, (u64, u64)> = r
        .lines_with("WRITER ")
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let v = w.next()?.to_owned();
            let field = |w: &mut std::str::SplitWhitespace, k: &str| -> Option<u64> {
                w.next()?.strip_prefix(k)?.parse().ok()
            };
            let ok = field(&mut w, "ok=")?;
            let _attempts = field(&mut w, "attempts=")?;
            let errors = field(&mut w, "errors=")?;
            Some((v, (ok, errors)))
        })
        .collect();
    let mut disk_problems = Vec::new();
    let mut lines_on_disk = 0u64;
    for (v, (ok, _)) in &writers {
        let path = nfsd.data_dir.join("volumes").join(v).join("log.txt");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                disk_problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let expected: String = (1..=*ok).map(|n| format!("{v} line {n}\n")).collect();
        if text != expected {
            let got = text.lines().count();
            let first_bad = text.lines().zip(expected.lines()).position(|(a, b)| a != b);
            disk_problems.push(format!(
                "{}: expected lines 1..={ok}, found {got} lines (first difference at line {:?})",
                path.display(),
                first_bad.map(|i| i + 1)
            ));
        }
        lines_on_disk += text.lines().count() as u64;
    }
    let writer_errors: u64 = writers.values().map(|w| w.1).sum();
    eprintln!(
        "FIGURE writers {}; writer errors {writer_errors}; lines checked on disk {lines_on_disk}; files wrong {}",
        writers.len(),
        disk_problems.len()
    );

    r.assert_passed("plugin restarts under 50 kernel mounts in the guest");
    assert_eq!(
        writers.len(),
        VOLUMES,
        "a WRITER line per volume:\n{}",
        r.output
    );
    assert_eq!(writer_errors, 0, "writers saw I/O errors:\n{}", r.output);
    assert!(
        disk_problems.is_empty(),
        "writers' files on nfsd's disk:\n{}",
        disk_problems.join("\n")
    );
    assert!(
        writers.values().all(|w| w.0 > 0),
        "every writer wrote something"
    );
    // the targets, again on the host from the figures (the guest checked them as cases)
    let fig = |k: &str| -> u64 {
        figures
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no figure {k}"))
    };
    for kind in ["kill", "term"] {
        assert_eq!(fig(&format!("mounts-after-{kind}")), fig("mounts-before"));
        assert_eq!(
            fig(&format!("refs-after-{kind}-get")),
            fig("refs-before-get")
        );
        assert_eq!(fig(&format!("refs-after-{kind}-state")), VOLUMES as u64);
        assert_eq!(fig(&format!("writer-errors-after-{kind}")), 0);
    }
    assert_eq!(fig("mounts-before"), VOLUMES as u64);
    assert_eq!(fig("nfs-mounts-with-one-lost"), VOLUMES as u64 - 1);
    assert_eq!(
        fig("mounts-after-reconcile"),
        VOLUMES as u64,
        "lost mount restored"
    );
    assert_eq!(fig("reconcile-remounts-after-lost-mount"), 1);
    assert_eq!(fig("mounts-after-unmount"), 0, "leaked mounts");
    assert_eq!(fig("refs-after-unmount-state"), 0, "references left");
    assert_eq!(fig("mount-points-left"), 0, "mount points left");
}
