//! The volume plugin's kernel backend, for real: inside the qemu guest of `tests/guest/` (Linux
//! kernel NFS client, TCG), the statically linked `swarmhub-volume-plugin` mounts a
//! swarmhub-nfsd export through its own mounter code (`swarmhub-volume-plugin mount`, i.e.
//! `KernelMounter`: TCP probe, then mount(2) with text options; no busybox mount, no mount.nfs)
//! and unmounts it (`swarmhub-volume-plugin unmount`). The guest's init mounts nothing
//! (`run-guest.sh --no-mount`); the binary is shipped with `--extra-file`.
//!
//! Checked in the guest: root and uid 1000 write and read files, `ls -ln` shows `1000 100`,
//! the options in /proc/mounts, `--readonly` (EROFS), unmount removes the /proc/mounts entry; a
//! port with nothing listening fails fast with the plugin's "unreachable" message; an unknown
//! export and the bare name without its capability secret are refused (EACCES) naming the
//! volume, never the secret. On the host: the files are owned by the
//! volume's store uid/gid. Printed: guest-side latency of 10 plugin mounts/unmounts (p50/max),
//! with busybox `mount -t nfs` (same options) as a baseline.
//!
//! Needs root (see `swarmhub_tests::guest`), `swarmhub-nfsd` built (`cargo build -p
//! swarmhub-nfsd`), and builds the static plugin itself (`swarmhub_tests::guest::static_bin`:
//! `cargo build --release --target x86_64-unknown-linux-gnu -p swarmhub-volume-plugin` with
//! `+crt-static`; the first build takes minutes). Run:
//! `cargo test -p swarmhub-tests --test plugin_kernel_mount -- --nocapture` (~1 min).

use std::time::Duration;

use swarmhub_tests::guest::{self, GuestRun, OwnerChecks};
use swarmhub_tests::nfsd::{Nfsd, free_port};

/// The guest side. Prints `PASS name` / `FAIL name: ...`, `OUT case: text` (plugin output for the
/// host to check), `LAT kind ms` (one per mount/unmount), `SUMMARY passed=N failed=M`.
const SCRIPT: &str = r##"
P=/swarmhub-volume-plugin
M=$NFS_MNT
SRV="$NFS_SERVER:$NFS_PORT"
PASSED=0; FAILED=0
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }
check() { if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi; }
# milliseconds (date +%N when busybox has it, else /proc/uptime at 10 ms)
ms() {
    n=$(date +%s%N 2>/dev/null)
    case "$n" in
        *N*|'') awk '{printf "%d\n", $1 * 1000}' /proc/uptime ;;
        *) echo $((n / 1000000)) ;;
    esac
}
mounted() { grep -q " $1 nfs " /proc/mounts; }
# plugin CASE ARGS...: runs the plugin, sets RC, OUT (stdout+stderr) and MS (duration)
plugin() {
    c=$1; shift
    t0=$(ms); OUT=$("$P" "$@" 2>&1); RC=$?; t1=$(ms); MS=$((t1 - t0))
    echo "OUT $c: rc=$RC ms=$MS $(echo "$OUT" | tr '\n' ' ')"
}

[ -x "$P" ] && pass plugin-shipped || { fail plugin-shipped "$P missing"; echo "SUMMARY passed=$PASSED failed=$FAILED"; exit 1; }
mounted "$M" && fail no-premount "init mounted $M although --no-mount"

# --- mount through the plugin -----------------------------------------------------------
plugin mount mount --server "$SRV" --export "$EXPORT" --target "$M"
echo "LAT plugin-mount $MS"
if [ $RC = 0 ] && mounted "$M"; then
    pass mount
    opts=$(grep " $M nfs " /proc/mounts | cut -d' ' -f4)
    echo "info: /proc/mounts options: $opts"
    for o in vers=3 proto=tcp port=$NFS_PORT mountport=$NFS_PORT nolock hard rsize=1048576 wsize=1048576 addr=$NFS_SERVER nosuid nodev; do
        case ",$opts," in *",$o,"*) ;; *) fail mount-options "no $o in $opts" ;; esac
    done
    pass mount-options-checked
else
    fail mount "rc=$RC: $OUT"
    echo "SUMMARY passed=$PASSED failed=$FAILED"; exit 1
fi

# --- root and uid 1000 write and read -------------------------------------------------------
echo root-data >"$M/root.txt"
check root-read root-data "$(cat "$M/root.txt")"
su -s /bin/sh jovyan -c "echo user-data > $M/user.txt && mkdir $M/udir && echo nested > $M/udir/n.txt" \
    && pass user-write || fail user-write "su jovyan write failed"
check user-read user-data "$(su -s /bin/sh jovyan -c "cat $M/user.txt")"
check user-reads-root root-data "$(su -s /bin/sh jovyan -c "cat $M/root.txt")"
echo 3 >/proc/sys/vm/drop_caches
check reread-after-drop-caches user-data "$(cat "$M/udir/../user.txt")"
ls -ln "$M"
for f in root.txt user.txt udir; do
    check "ls-ln-$f" "1000 100" "$(ls -ln "$M" | awk -v f="$f" '$NF == f {print $3, $4}')"
done

# --- unmount through the plugin ----------------------------------------------------------
plugin unmount unmount --target "$M"
echo "LAT plugin-unmount $MS"
if [ $RC = 0 ] && ! mounted "$M"; then pass unmount; else fail unmount "rc=$RC, /proc/mounts: $(grep " $M " /proc/mounts)"; fi
[ -e "$M/root.txt" ] && fail unmounted-dir-empty "$M/root.txt still visible" || pass unmounted-dir-empty
plugin unmount-again unmount --target "$M"
check unmount-idempotent 0 "$RC"

# --- read-only ------------------------------------------------------------------------------
plugin mount-ro mount --server "$SRV" --export "$EXPORT" --target "$M" --readonly
if [ $RC = 0 ]; then
    check ro-read root-data "$(cat "$M/root.txt")"
    if (echo x >"$M/ro.txt") 2>/tmp/ro.err; then fail ro-write "write succeeded on a --readonly mount"
    else grep -qi "read-only" /tmp/ro.err && pass ro-write || fail ro-write "$(cat /tmp/ro.err)"; fi
    "$P" unmount --target "$M" || fail ro-unmount "rc=$?"
else
    fail mount-ro "rc=$RC: $OUT"
fi

# --- errors ---------------------------------------------------------------------------------
plugin unreachable mount --server "$NFS_SERVER:$DEAD_PORT" --export "$EXPORT" --target "$M"
[ $RC != 0 ] && ! mounted "$M" && pass unreachable-fails || fail unreachable-fails "rc=$RC"
plugin no-such-export mount --server "$SRV" --export /no-such-volume --target "$M"
[ $RC != 0 ] && ! mounted "$M" && pass no-such-export-fails || fail no-such-export-fails "rc=$RC"
plugin bare-name mount --server "$SRV" --export "${EXPORT%/*}" --target "$M"
[ $RC != 0 ] && ! mounted "$M" && pass bare-name-fails || fail bare-name-fails "rc=$RC"

# --- latency: 10 plugin mounts/unmounts, then 10 busybox mounts (same options) as a baseline --
i=0
while [ $i -lt 10 ]; do
    plugin "loop-mount-$i" mount --server "$SRV" --export "$EXPORT" --target "$M" >/dev/null
    [ $RC = 0 ] || fail loop-mount "#$i rc=$RC: $OUT"
    echo "LAT plugin-mount $MS"
    [ -f "$M/root.txt" ] || fail loop-mount "#$i: root.txt not visible"
    plugin "loop-unmount-$i" unmount --target "$M" >/dev/null
    [ $RC = 0 ] || fail loop-unmount "#$i rc=$RC: $OUT"
    echo "LAT plugin-unmount $MS"
    i=$((i + 1))
done
mounted "$M" && fail loop-clean "still mounted after the loop" || pass loop-10
bb="vers=3,proto=tcp,port=$NFS_PORT,mountport=$NFS_PORT,mountproto=tcp,nolock,hard,rsize=1048576,wsize=1048576,addr=$NFS_SERVER,mountaddr=$NFS_SERVER"
i=0
while [ $i -lt 10 ]; do
    t0=$(ms); mount -t nfs -o "$bb" "$NFS_SERVER:$EXPORT" "$M" || fail busybox-mount "#$i"; t1=$(ms)
    echo "LAT busybox-mount $((t1 - t0))"
    t0=$(ms); umount "$M" || fail busybox-umount "#$i"; t1=$(ms)
    echo "LAT busybox-umount $((t1 - t0))"
    i=$((i + 1))
done

echo "SUMMARY passed=$PASSED failed=$FAILED"
[ $FAILED = 0 ]
"##;

fn percentiles(mut v: Vec<u64>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort_unstable();
    format!(
        "n={} min={} p50={} max={} ms",
        v.len(),
        v[0],
        v[(v.len() - 1) / 2],
        v[v.len() - 1]
    )
}

#[test]
fn plugin_mounts_through_the_kernel_client_in_the_guest() {
    guest::require_root();
    // the static build can take minutes: before the guest lock, so no other guest waits for it
    let plugin = guest::static_bin("swarmhub-volume-plugin", "swarmhub-volume-plugin")
        .expect("static swarmhub-volume-plugin");
    let _lock = guest::lock();
    guest::ensure_built();

    let tmp = tempfile::Builder::new()
        .prefix("swarmhub-pkm.")
        .tempdir()
        .unwrap();
    let nfsd = Nfsd::start(&tmp.path().join("data"), &[]).expect("start swarmhub-nfsd");
    nfsd.create_volume(
        r#"{"name":"home-carol","user":"carol","identity":{"uid":20005,"gid":20000}}"#,
    )
    .expect("create volume");
    let dead_port = free_port(); // bound and released: nothing listens there
    let port = nfsd.nfs.port();
    let export = nfsd.export("home-carol").expect("the volume's mount path");
    let mut run = GuestRun::script("plugin-mount", SCRIPT, port, port, &export)
        .env("DEAD_PORT", dead_port.to_string());
    run.mount = false;
    run.timeout_s = 240;
    run.extra_files
        .push((plugin.clone(), "/swarmhub-volume-plugin".into()));
    let r = run.run().expect("run the guest");

    let out = |case: &str| -> String {
        r.lines_with(&format!("OUT {case}: "))
            .next()
            .unwrap_or_else(|| panic!("no output of case {case}:\n{}", r.output))
            .to_owned()
    };
    let lat = |kind: &str| -> Vec<u64> {
        r.lines_with(&format!("LAT {kind} "))
            .filter_map(|v| v.trim().parse().ok())
            .collect()
    };
    let plugin_mount = lat("plugin-mount");
    eprintln!(
        "guest-side latency (TCG): plugin mount {} (first: {:?} ms); plugin unmount {}; busybox mount {}; busybox umount {}",
        percentiles(plugin_mount.clone()),
        plugin_mount.first(),
        percentiles(lat("plugin-unmount")),
        percentiles(lat("busybox-mount")),
        percentiles(lat("busybox-umount")),
    );
    let unreachable = out("unreachable");
    let no_export = out("no-such-export");
    eprintln!("unreachable: {unreachable}\nno such export: {no_export}");

    // on-disk owners: the volume's store ids, whoever wrote in the guest
    let vol = nfsd.data_dir.join("volumes/home-carol");
    let mut owners = OwnerChecks::new();
    owners.files(
        &vol,
        &["root.txt", "user.txt", "udir", "udir/n.txt"],
        20005,
        20000,
    );
    r.assert_passed("plugin kernel mount in the guest");
    owners.assert_ok("guest passed, but files are not owned on disk by the store ids 20005:20000");
    assert_eq!(
        std::fs::read_to_string(vol.join("user.txt")).unwrap(),
        "user-data\n"
    );

    // the errors users would see as `VolumeDriver.Mount: ...`
    assert!(
        unreachable.contains("is unreachable for export /home-carol")
            && unreachable.contains(&format!("10.0.2.2:{dead_port}"))
            && unreachable.contains("check that the swarmhub nfsd service runs"),
        "unreachable nfsd: {unreachable}"
    );
    let ms: u64 = unreachable
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        Duration::from_millis(ms) < Duration::from_secs(6),
        "unreachable nfsd must fail fast (probe), took {ms} ms"
    );
    // nfsd answers every mount path without the volume's capability alike (no oracle of
    // which volumes exist): the kernel's EACCES, named as a refusal with its causes
    let bare = out("bare-name");
    eprintln!("bare name: {bare}");
    let secret = export.rsplit('/').next().unwrap();
    for (what, msg, shown) in [
        ("unknown export", &no_export, "/no-such-volume"),
        ("bare name", &bare, "/home-carol"),
    ] {
        assert!(
            msg.contains(&format!("refused to mount {shown} on "))
                && msg.contains("errno 13")
                && msg.contains("mount path for the volume is out of date"),
            "{what}: {msg}"
        );
        assert!(!msg.contains(secret), "{what}: the secret leaked: {msg}");
    }
}
