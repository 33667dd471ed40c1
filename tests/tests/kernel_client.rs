//! The Linux kernel NFS client against swarmhub-nfsd (and, for comparison, nfs-ganesha), through the
//! qemu guest harness in `tests/guest/` (see its README). Each test boots one throwaway guest (TCG)
//! that mounts the export and runs one part of the conformance suite `tests/guest/suite/`:
//!
//! * `ganesha_generic`: `generic.sh` against nfs-ganesha (the reference: if a generic case fails
//!   against nfsd but passes here, the bug is ours);
//! * `nfsd_generic`: `generic.sh` against swarmhub-nfsd;
//! * `nfsd_home_identity_and_quota`: `home.sh` (ls -ln shows 1000:100 whoever creates; df shows
//!   the quota; EDQUOT past it), then on-disk owners are checked here on the host;
//! * `nfsd_two_views_of_a_share`: `views.sh` (teacher and student views of one tree mounted at
//!   once: concurrent appends, owners across views, nbgrader exchange permissions), then the host
//!   checks on-disk owners and modes;
//! * `nfsd_restart_under_live_mount`: `restart.sh` while this side restarts nfsd gracefully
//!   (SIGTERM) and with `kill -9` on the same port and data dir; the guest must see no error and
//!   lose no line.
//!
//! Requirements (the tests FAIL, never skip, when they are missing): root (nfsd changes owners,
//! ganesha and `build-guest.sh` need it), apt access the first time (`build-guest.sh` downloads the
//! kernel and busybox into `SWARMHUB_GUEST_CACHE`, default `/var/cache/swarmhub-guest`, and installs
//! qemu-system-x86/cpio; `ganesha.sh` installs nfs-ganesha). The guests run one at a time
//! (`swarmhub_tests::guest::lock`), each with its own free ports, so `--test-threads` does not
//! matter. Whole file: about 3-4 minutes on 2 vCPUs.
//!
//! The nfsd binary is found like in every test of this crate (`swarmhub_tests::nfsd`):
//! `SWARMHUB_NFSD_BIN`, else `<target-dir>/{debug,release}/swarmhub-nfsd`; build it first with
//! `cargo build -p swarmhub-nfsd` (a stale binary is not rebuilt).
//!
//! Both servers run the generic part strictly: no case is skipped.
//!
//! A failing case shows up as `FAIL name: op, expected X, got Y` at the top of the panic message,
//! followed by the guest's whole output (timings: `TIME` lines and run-guest's stage/timing lines).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use swarmhub_tests::guest::{self, Ganesha, GuestRun, OwnerChecks};
use swarmhub_tests::nfsd::Nfsd;
use tempfile::TempDir;

/// Starts swarmhub-nfsd over a fresh data dir (in the returned temp dir, with its log) and
/// creates `volumes` (POST /v1/volumes bodies).
fn start_nfsd(volumes: &[serde_json::Value]) -> (TempDir, Nfsd) {
    let tmp = tempfile::Builder::new()
        .prefix("swarmhub-kc-nfsd.")
        .tempdir()
        .expect("temp dir");
    let nfsd = Nfsd::start(&tmp.path().join("data"), &[]).expect("start swarmhub-nfsd");
    for v in volumes {
        nfsd.create_volume(&v.to_string())
            .unwrap_or_else(|e| panic!("create volume {v}: {e:#}"));
    }
    (tmp, nfsd)
}

/// The guest's preconditions, in order; the returned lock is held for the test.
fn guest_setup() -> guest::GuestLock {
    guest::require_root();
    let lock = guest::lock();
    guest::ensure_built();
    lock
}

// ----------------------------------------------------------------------------------------------
// the tests
// ----------------------------------------------------------------------------------------------

#[test]
fn ganesha_generic() {
    let _lock = guest_setup();
    let g = Ganesha::start().expect("start nfs-ganesha");
    let r = GuestRun::suite("generic", g.port, g.port + 1, &g.export_path())
        .run()
        .expect("run the guest");
    r.assert_passed("generic suite against nfs-ganesha");
}

#[test]
fn nfsd_generic() {
    let _lock = guest_setup();
    let (_tmp, nfsd) = start_nfsd(&[serde_json::json!({
        "name": "generic", "user": "gen", "identity": {"uid": 20010, "gid": 20000}
    })]);
    let run = GuestRun::suite(
        "generic",
        nfsd.nfs.port(),
        nfsd.nfs.port(),
        &nfsd.export("generic").unwrap(),
    );
    let r = run.run().expect("run the guest");
    r.assert_passed("generic suite against swarmhub-nfsd");
}

#[test]
fn nfsd_home_identity_and_quota() {
    let _lock = guest_setup();
    let (_tmp, nfsd) = start_nfsd(&[serde_json::json!({
        "name": "home-alice", "user": "alice", "identity": {"uid": 20001, "gid": 20000},
        "size": 100u64 << 20
    })]);
    let mut run = GuestRun::suite(
        "home",
        nfsd.nfs.port(),
        nfsd.nfs.port(),
        &nfsd.export("home-alice").unwrap(),
    );
    run = run.env("SUITE_QUOTA_MB", "100");
    let r = run.run().expect("run the guest");
    // on-disk owners first: they are independent of the guest's verdict
    let root = nfsd.data_dir.join("volumes/home-alice");
    let mut owners = OwnerChecks::new();
    owners.files(
        &root,
        &[
            "id-root.txt",
            "id-jovyan.txt",
            "id-other.txt",
            "id-dir",
            "id-dir/nested.txt",
            "id-root-dir",
            "id-symlink",
        ],
        20001,
        20000,
    );
    r.assert_passed("home suite (identity, quota) against swarmhub-nfsd");
    owners.assert_ok(
        "guest passed, but files it created are not owned on disk by the view's store ids 20001:20000",
    );
}

#[test]
fn nfsd_two_views_of_a_share() {
    let _lock = guest_setup();
    let (_tmp, nfsd) = start_nfsd(&[
        serde_json::json!({
            "name": "exchange-teacher", "user": "teacher", "share": "exchange",
            "identity": {"uid": 30001, "gid": 30000}
        }),
        serde_json::json!({
            "name": "exchange-student1", "user": "student1", "share": "exchange",
            "identity": {"uid": 30002, "gid": 30002}
        }),
    ]);
    // the share's root belongs to nfsd: the course and a scratch directory come from its API
    for (dir, mode) in [("course101", 0o755), ("scratch", 0o1777)] {
        let body = serde_json::json!({"identity": {"uid": 30001, "gid": 30000}, "mode": mode});
        let (status, reply) = nfsd
            .api(
                "PUT",
                &format!("/v1/shares/exchange/dirs/{dir}"),
                Some(&body.to_string()),
            )
            .unwrap();
        assert_eq!(status, 201, "making exchange/{dir}: {reply}");
    }
    let mut run = GuestRun::suite(
        "views",
        nfsd.nfs.port(),
        nfsd.nfs.port(),
        &nfsd.export("exchange-teacher").unwrap(),
    );
    run.export2 = Some(nfsd.export("exchange-student1").unwrap());
    run = run.env("SUITE_T_UID", "30001").env("SUITE_S_UID", "30002");
    let r = run.run().expect("run the guest");
    let tree = nfsd.data_dir.join("shares/exchange");
    let sub = tree.join("course101/inbound/student1+ps1+2024-01-01 10:00:00.000000 UTC+abcd1234");
    let mut owners = OwnerChecks::new();
    owners
        .check(&tree.join("scratch/conc-t.log"), 30001, Some(30000), None)
        .check(&tree.join("scratch/conc-s.log"), 30002, Some(30002), None)
        .check(&tree.join("course101"), 30001, Some(30000), Some(0o755))
        .check(
            &tree.join("course101/inbound"),
            30001,
            Some(30000),
            Some(0o2733),
        )
        .check(
            &tree.join("course101/outbound"),
            30001,
            Some(30000),
            Some(0o755),
        )
        .check(
            &tree.join("course101/feedback"),
            30001,
            Some(30000),
            Some(0o711),
        )
        // the setgid inbound hands its group (the instructor's) to submissions
        .check(&sub, 30002, Some(30000), None)
        .check(&sub.join("ps1.ipynb"), 30002, Some(30000), None);
    r.assert_passed(
        "views suite (two views of one share, nbgrader exchange) against swarmhub-nfsd",
    );
    owners.assert_ok("on-disk owners/modes in the shared tree");
}

#[test]
fn nfsd_restart_under_live_mount() {
    let _lock = guest_setup();
    let (_tmp, mut nfsd) = start_nfsd(&[serde_json::json!({
        "name": "home-bob", "user": "bob", "identity": {"uid": 20002, "gid": 20000}
    })]);
    let vol = nfsd.data_dir.join("volumes/home-bob");
    let mut run = GuestRun::suite(
        "restart",
        nfsd.nfs.port(),
        nfsd.nfs.port(),
        &nfsd.export("home-bob").unwrap(),
    );
    run.timeout_s = 240;
    let mut guest = run.spawn(None).expect("start the guest");
    let t0 = guest.started();

    let mut host_log = Vec::new();
    let drive = (|| -> Result<()> {
        // wait for the guest's workers
        let start = Instant::now();
        while !vol.join("restart-go").exists() {
            if let Some(st) = guest.try_wait()? {
                bail!("guest ended ({st}) before creating restart-go");
            }
            ensure!(
                start.elapsed() < Duration::from_secs(150),
                "no restart-go from the guest within 150 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        host_log.push(format!(
            "restart-go seen {:.1}s after guest start",
            t0.elapsed().as_secs_f64()
        ));
        std::thread::sleep(Duration::from_secs(3));
        let stop = nfsd.stop()?;
        let up = nfsd
            .start_again()
            .context("restart after SIGTERM (same port, same data dir)")?;
        host_log.push(format!(
            "SIGTERM: stopped in {:.2}s, restarted and answering in {:.3}s",
            stop.as_secs_f64(),
            up.as_secs_f64()
        ));
        std::thread::sleep(Duration::from_secs(5));
        nfsd.kill()?;
        let up = nfsd
            .start_again()
            .context("restart after kill -9 (same port, same data dir)")?;
        host_log.push(format!(
            "kill -9: restarted and answering in {:.3}s",
            up.as_secs_f64()
        ));
        std::thread::sleep(Duration::from_secs(4));
        std::fs::write(vol.join("restart-done"), "host restarted nfsd twice\n")?;
        Ok(())
    })();
    if let Err(e) = &drive {
        // let the guest end quickly rather than wait for its own timeout
        let _ = std::fs::write(vol.join("restart-done"), "host gave up\n");
        eprintln!("host side failed: {e:#}");
    }
    let r = guest.finish().expect("wait for the guest");
    eprintln!("host: {}", host_log.join("; "));
    if let Err(e) = drive {
        panic!(
            "host side of the restart test failed: {e:#}\n==== guest output ====\n{}",
            r.output
        );
    }
    r.assert_passed("restart suite (SIGTERM + kill -9 under a live mount) against swarmhub-nfsd");

    // cross-check on the host: the lines the guest says it wrote are all on disk, in order
    let counts =
        std::fs::read_to_string(vol.join("restart-counts")).expect("restart-counts from the guest");
    let n = |key: &str| -> usize {
        counts
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in restart-counts {counts:?}"))
    };
    // FILE must hold exactly the lines PREFIX0 .. PREFIX<n-1> (only the first word of each line
    // when `first_word`: the held-fd writer appends a timestamp)
    let check_lines = |file: &str, prefix: &str, first_word: bool, what: &str| {
        let got: Vec<String> = std::fs::read_to_string(vol.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .lines()
            .map(|l| match first_word {
                true => l.split_whitespace().next().unwrap_or("").to_owned(),
                false => l.to_owned(),
            })
            .collect();
        let want: Vec<String> = (0..n(&format!("{prefix}=")))
            .map(|i| format!("{prefix}{i}"))
            .collect();
        assert_eq!(got, want, "host view of {file} ({what})");
    };
    check_lines("rs-a.log", "a", true, "held fd writer");
    check_lines("rs-b.log", "b", false, "dd fsync per line");
    check_lines(
        "rs-dir/rs-d-moved.log",
        "d",
        false,
        "held fd, renamed before the restarts",
    );
    OwnerChecks::new()
        .files(&vol, &["rs-a.log", "rs-b.log"], 20002, 20000)
        .assert_ok("on-disk owners after the restarts");
}
