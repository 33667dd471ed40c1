//! The `swarmhub-nfs` managed plugin in a real dockerd, against a real nfsd (the built binary)
//! with a real slapd for identities, using the plugin's fuse backend (this host's kernel has no
//! NFS client): plain `docker run`, ownership mapping, `docker cp`, inspect, option errors, a
//! forced plugin disable/enable and a dockerd restart with a volume in use, a Swarm service, nfsd
//! down or unreachable, and measurements (mount latency, `docker run` overhead) printed for the
//! report.
//!
//! Needs root, docker.io, fuse3 (/dev/fuse), busybox-static, slapd; fails (never skips) without
//! them. One test, in a one-node test machine of the harness (`swarmhub_tests::docker::Dockerd`:
//! its own dockerd, the test thread inside its namespaces), never this host's own dockerd.
//! `SWARMHUB_TEST_PLUGIN` renames the plugin (default `swarmhub-nfs`); `SWARMHUB_PLUGIN_STATIC_BIN`
//! uses a prebuilt static plugin binary instead of building one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use swarmhub_tests::docker::{
    self, Dockerd, LABEL, Plugin, docker, docker_fails, docker_ok, docker_timeout, percentile,
};
use swarmhub_tests::nfsd::Nfsd;
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};

const IMAGE: &str = docker::BUSYBOX_IMAGE;

/// Removes what the test created, also when it panics half-way.
struct Cleanup {
    plugin: String,
    swarm_created: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = docker(&["ps", "-aq", "--filter", &format!("label={LABEL}")]).stdout;
        for id in ids.lines().filter(|l| !l.is_empty()) {
            docker(&["rm", "-f", id]);
        }
        if self.swarm_created {
            docker(&["service", "rm", "swarmhub-test-svc"]);
            let out = docker(&["swarm", "leave", "--force"]);
            if !out.success() {
                eprintln!("cleanup: {}", out.describe());
            }
        }
        // docker volume rm only drops the plugin's record: nfsd keeps the data
        let vols = docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("driver={}", self.plugin),
        ])
        .stdout;
        for v in vols.lines().filter(|l| !l.is_empty()) {
            docker(&["volume", "rm", "-f", v]);
        }
        docker(&["volume", "rm", "-f", "swarmhub-test-local"]);
        docker(&["plugin", "disable", "-f", &self.plugin]);
        docker(&["plugin", "rm", "-f", &self.plugin]);
    }
}

fn owner(p: &Path) -> (u32, u32) {
    let md = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (md.uid(), md.gid())
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status_of(volume: &str) -> serde_json::Value {
    let s = docker_ok(&["volume", "inspect", "--format", "{{json .Status}}", volume]);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("volume inspect Status {s:?}: {e}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn plugin_in_real_dockerd() {
    let mut dockerd = Dockerd::ensure().expect("a dockerd for the tests");
    let name = std::env::var("SWARMHUB_TEST_PLUGIN").unwrap_or_else(|_| "swarmhub-nfs".into());
    docker::remove_leftovers(&name).expect("removing leftovers of earlier runs");
    docker::busybox_image(IMAGE).expect("building the busybox test image");

    // --- nfsd with LDAP identities --------------------------------------------------------------
    let ldap = Slapd::start(
        &[
            TestUser::new("alice", 20001, 20000),
            TestUser::new("bob", 20002, 20000),
            TestUser::new("carol", 20003, 20000),
        ],
        &[TestGroup::new(
            "students",
            20000,
            &["alice", "bob", "carol"],
        )],
    )
    .expect("slapd must be installed (apt-get install slapd ldap-utils)");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let flags = ldap.nfsd_flags().unwrap();
    let mut nfsd = Nfsd::start(&data, &flags.iter().map(String::as_str).collect::<Vec<_>>())
        .expect("starting swarmhub-nfsd");
    let nfs_addr = format!("127.0.0.1:{}", nfsd.nfs.port());

    // --- the plugin -------------------------------------------------------------------------------
    let mut cleanup = Cleanup {
        plugin: name.clone(),
        swarm_created: false,
    };
    let t = Instant::now();
    let plugin = Plugin::install(
        &name,
        &nfsd.token,
        &[
            "SWARMHUB_NFS_SERVER=127.0.0.1".to_string(),
            format!("SWARMHUB_NFS_PORT={}", nfsd.nfs.port()),
            format!("SWARMHUB_NFS_API_PORT={}", nfsd.api.port()),
            "SWARMHUB_NFS_BACKEND=fuse".into(),
            "RUST_LOG=info".into(),
        ],
    )
    .unwrap_or_else(|e| panic!("installing the plugin: {e:#}"));
    eprintln!(
        "plugin {name} built, created and enabled in {:.1?}",
        t.elapsed()
    );
    assert_eq!(
        docker_ok(&["plugin", "inspect", "-f", "{{.Enabled}}", &name]),
        "true"
    );
    let mount = |vol: &str| format!("type=volume,source={vol},target=/work,volume-driver={name}");
    let alice_mount = mount("home-alice");
    let home = data.join("volumes/home-alice");

    // --- create and write ---------------------------------------------------------------------------
    let out = docker(&[
        "volume",
        "create",
        "-d",
        &name,
        "-o",
        "user=alice",
        "home-alice",
    ]);
    assert!(
        out.success(),
        "docker volume create: {}\nplugin log:\n{}",
        out.describe(),
        dockerd.log_tail(&plugin.id, 30)
    );
    let out = docker(&[
        "run",
        "--rm",
        "--label",
        LABEL,
        "--mount",
        &alice_mount,
        IMAGE,
        "sh",
        "-c",
        "echo hi > /work/f",
    ]);
    assert!(
        out.success(),
        "writing through the volume: {}\nplugin log:\n{}",
        out.describe(),
        dockerd.log_tail(&plugin.id, 30)
    );
    assert_eq!(std::fs::read_to_string(home.join("f")).unwrap(), "hi\n");
    assert_eq!(
        owner(&home.join("f")),
        (20001, 20000),
        "disk records alice's LDAP ids"
    );

    // containers see 1000:100, and jovyan (1000:100) can write
    let ls = docker_ok(&[
        "run",
        "--rm",
        "--label",
        LABEL,
        "--mount",
        &alice_mount,
        IMAGE,
        "ls",
        "-ln",
        "/work",
    ]);
    let line = ls
        .lines()
        .find(|l| l.ends_with(" f"))
        .unwrap_or_else(|| panic!("no f in ls -ln: {ls}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (cols[2], cols[3]),
        ("1000", "100"),
        "ls -ln in a container: {line}"
    );
    let out = docker_ok(&[
        "run",
        "--rm",
        "--label",
        LABEL,
        "--user",
        "1000:100",
        "--mount",
        &alice_mount,
        IMAGE,
        "sh",
        "-c",
        "echo u > /work/u && cat /work/u && id -u",
    ]);
    assert_eq!(out, "u\n1000");
    assert_eq!(owner(&home.join("u")), (20001, 20000));

    // --- docker cp with a running container, and inspect ------------------------------------------
    docker_ok(&[
        "run",
        "-d",
        "--name",
        "swarmhub-test-cp",
        "--label",
        LABEL,
        "--stop-timeout",
        "1",
        "--mount",
        &alice_mount,
        IMAGE,
        "sleep",
        "3600",
    ]);
    let st = status_of("home-alice");
    eprintln!("volume inspect Status with one container: {st}");
    assert_eq!(st["server"], serde_json::json!(nfs_addr));
    assert_eq!(st["export"], "/home-alice");
    assert_eq!(st["references"], 1);
    assert_eq!(st["mounted"], true);
    assert_eq!(st["backend"], "fuse");
    let cp_dir = tmp.path().join("cp");
    std::fs::create_dir_all(&cp_dir).unwrap();
    docker_ok(&[
        "cp",
        "swarmhub-test-cp:/work/f",
        cp_dir.join("f").to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(cp_dir.join("f")).unwrap(), "hi\n");
    // Copying in: plain `docker cp` chowns what it extracts to 0:0, which a view refuses (it
    // acts as the volume's identity, which cannot give files to root): recorded, not asserted.
    // `docker cp -a` of a file owned by jovyan (1000:100) keeps the view's own identity and works.
    std::fs::write(cp_dir.join("in.txt"), "copied in\n").unwrap();
    let plain = docker(&[
        "cp",
        cp_dir.join("in.txt").to_str().unwrap(),
        "swarmhub-test-cp:/work/plain.txt",
    ]);
    eprintln!(
        "docker cp into the volume (no -a): {}",
        if plain.success() {
            "works".to_string()
        } else {
            plain.stderr.trim().to_string()
        }
    );
    std::os::unix::fs::chown(cp_dir.join("in.txt"), Some(1000), Some(100)).unwrap();
    docker_ok(&[
        "cp",
        "-a",
        cp_dir.join("in.txt").to_str().unwrap(),
        "swarmhub-test-cp:/work/in.txt",
    ]);
    assert_eq!(
        std::fs::read_to_string(home.join("in.txt")).unwrap(),
        "copied in\n"
    );
    assert_eq!(owner(&home.join("in.txt")), (20001, 20000));
    assert_eq!(
        status_of("home-alice")["references"],
        1,
        "docker cp reuses the container's mount ID: references unchanged"
    );

    // --- an unknown option is the plugin's error ------------------------------------------------------
    let out = docker_fails(&[
        "volume",
        "create",
        "-d",
        &name,
        "-o",
        "user=alice",
        "-o",
        "sise=1G",
        "home-typo",
    ]);
    eprintln!("unknown option: {}", out.stderr.trim());
    assert!(
        out.stderr.contains("sise"),
        "the error names the key: {}",
        out.describe()
    );
    assert!(!docker(&["volume", "inspect", "home-typo"]).success());

    // --- forced plugin disable + enable with the volume in use ----------------------------------------
    let out = plugin.disable_force();
    assert!(out.success(), "{}", out.describe());
    let during = docker(&["exec", "swarmhub-test-cp", "ls", "/work"]);
    let took = plugin.enable().unwrap();
    let after = docker(&["exec", "swarmhub-test-cp", "ls", "/work"]);
    eprintln!(
        "running container after `plugin disable -f`: {}; after re-enable ({:.1?}): {}",
        if during.success() {
            "ls works".to_string()
        } else {
            during.stderr.trim().to_string()
        },
        took,
        if after.success() {
            "ls works".to_string()
        } else {
            after.stderr.trim().to_string()
        },
    );
    assert!(
        !during.success()
            && during
                .stderr
                .contains("Transport endpoint is not connected"),
        "FUSE mounts end with the plugin process: {}",
        during.describe()
    );
    let fresh = docker(&[
        "run",
        "--rm",
        "--label",
        LABEL,
        "--mount",
        &alice_mount,
        IMAGE,
        "cat",
        "/work/f",
    ]);
    assert!(
        fresh.success() && fresh.stdout == "hi\n",
        "a new container after re-enable: {}\nplugin log:\n{}",
        fresh.describe(),
        dockerd.log_tail(&plugin.id, 30)
    );
    docker_ok(&["rm", "-f", "swarmhub-test-cp"]);
    let st = status_of("home-alice");
    assert_eq!(st["references"], 0, "after the container is gone: {st}");
    assert_eq!(st["mounted"], false, "unmounted at zero references: {st}");

    // --- measurements ----------------------------------------------------------------------------------
    let n = 100;
    let (mut mount_lat, mut unmount_lat) = (Vec::new(), Vec::new());
    for i in 0..n {
        let req = format!(r#"{{"Name":"home-alice","ID":"bench-{i}"}}"#);
        let t = Instant::now();
        let v = plugin.call_ok("/VolumeDriver.Mount", &req).unwrap();
        mount_lat.push(t.elapsed());
        assert!(
            v["Mountpoint"]
                .as_str()
                .is_some_and(|m| m.ends_with("/home-alice")),
            "{v}"
        );
        let t = Instant::now();
        plugin.call_ok("/VolumeDriver.Unmount", &req).unwrap();
        unmount_lat.push(t.elapsed());
    }
    mount_lat.sort();
    unmount_lat.sort();
    docker_ok(&["volume", "create", "--label", LABEL, "swarmhub-test-local"]);
    let local_mount = "type=volume,source=swarmhub-test-local,target=/work".to_string();
    let runs = 15;
    let (mut with_nfs, mut with_local) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for (m, acc) in [
            (&alice_mount, &mut with_nfs),
            (&local_mount, &mut with_local),
        ] {
            let out = docker(&["run", "--rm", "--label", LABEL, "--mount", m, IMAGE, "true"]);
            assert!(out.success(), "{}", out.describe());
            acc.push(out.took);
        }
    }
    with_nfs.sort();
    with_local.sort();
    eprintln!(
        "MEASURED fuse Mount latency over {n} Mount/Unmount pairs on the plugin socket (first mount of the volume each time): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; Unmount p50 {:.1} ms, p99 {:.1} ms",
        ms(percentile(&mount_lat, 50.0)),
        ms(percentile(&mount_lat, 99.0)),
        ms(*mount_lat.last().unwrap()),
        ms(percentile(&unmount_lat, 50.0)),
        ms(percentile(&unmount_lat, 99.0)),
    );
    eprintln!(
        "MEASURED `docker run --rm IMAGE true` wall time over {runs} runs each: {name} volume p50 {:.0} ms (min {:.0}, max {:.0}); local volume p50 {:.0} ms (min {:.0}, max {:.0})",
        ms(percentile(&with_nfs, 50.0)),
        ms(with_nfs[0]),
        ms(*with_nfs.last().unwrap()),
        ms(percentile(&with_local, 50.0)),
        ms(with_local[0]),
        ms(*with_local.last().unwrap()),
    );

    // --- dockerd restart with a container using the volume ---------------------------------------------
    let live_restore = docker_ok(&["info", "--format", "{{.LiveRestoreEnabled}}"]) == "true";
    docker_ok(&[
        "run",
        "-d",
        "--name",
        "swarmhub-test-restart",
        "--label",
        LABEL,
        "--stop-timeout",
        "2",
        "--mount",
        &alice_mount,
        IMAGE,
        "sh",
        "-c",
        "echo start >> /work/restart.log; exec sleep 3600",
    ]);
    let log = home.join("restart.log");
    let lines = |p: &PathBuf| {
        std::fs::read_to_string(p)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    wait_for(
        "first start wrote restart.log",
        Duration::from_secs(20),
        || lines(&log) == 1,
    );
    let before = status_of("home-alice");
    let took = dockerd
        .restart()
        .unwrap_or_else(|e| panic!("restarting dockerd: {e:#}"));
    let running = docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Running}}",
        "swarmhub-test-restart",
    ]);
    let enabled = docker_ok(&["plugin", "inspect", "-f", "{{.Enabled}}", &name]);
    wait_for(
        "plugin socket after dockerd restart",
        Duration::from_secs(20),
        || plugin.call("/Plugin.Activate", "{}").is_ok(),
    );
    let after = status_of("home-alice");
    eprintln!(
        "dockerd restart took {took:.1?} (live-restore {live_restore}); container running afterwards: {running}; plugin enabled: {enabled}; Status before {before}, after {after}"
    );
    assert_eq!(
        enabled, "true",
        "the plugin is enabled again after the restart"
    );
    assert_eq!(
        after["export"], "/home-alice",
        "plugin state survived: {after}"
    );
    assert_eq!(
        running,
        live_restore.to_string(),
        "containers stop unless live-restore is on"
    );
    if !live_restore {
        let out = docker(&["start", "swarmhub-test-restart"]);
        assert!(
            out.success(),
            "docker start after the dockerd restart: {}\nplugin log:\n{}",
            out.describe(),
            dockerd.log_tail(&plugin.id, 30)
        );
        wait_for(
            "second start wrote restart.log",
            Duration::from_secs(20),
            || lines(&log) == 2,
        );
    }
    let seen = docker_ok(&["exec", "swarmhub-test-restart", "cat", "/work/restart.log"]);
    assert_eq!(
        seen.lines().count(),
        lines(&log),
        "the container sees the data: {seen}"
    );
    docker_ok(&["rm", "-f", "swarmhub-test-restart"]);
    let st = status_of("home-alice");
    eprintln!("after removing the restarted container: {st}");
    assert_eq!(
        st["references"], 0,
        "no references left after the container is gone (a leak keeps the mount until the reaper's grace period): {st}"
    );

    // --- a Swarm service --------------------------------------------------------------------------------
    let node_state = docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    if node_state == "inactive" {
        docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        cleanup.swarm_created = true;
    } else {
        assert_eq!(
            docker_ok(&["info", "--format", "{{.Swarm.ControlAvailable}}"]),
            "true",
            "this daemon is in a swarm ({node_state}) but not a manager; the test needs a manager or no swarm"
        );
    }
    let t = Instant::now();
    docker_ok(&[
        "service",
        "create",
        "--detach",
        "--name",
        "swarmhub-test-svc",
        "--label",
        LABEL,
        "--container-label",
        LABEL,
        "--restart-condition",
        "none",
        "--mount",
        &alice_mount,
        IMAGE,
        "sh",
        "-c",
        "echo svc > /work/svc",
    ]);
    let mut last = String::new();
    wait_for(
        "the service task completes",
        Duration::from_secs(90),
        || {
            last = docker(&[
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.CurrentState}}|{{.Error}}",
                "swarmhub-test-svc",
            ])
            .stdout;
            let state = last.lines().next().unwrap_or("");
            assert!(
                !state.starts_with("Failed") && !state.starts_with("Rejected"),
                "service task: {last}"
            );
            state.starts_with("Complete")
        },
    );
    eprintln!("swarm service task completed in {:.1?}", t.elapsed());
    assert_eq!(std::fs::read_to_string(home.join("svc")).unwrap(), "svc\n");
    assert_eq!(owner(&home.join("svc")), (20001, 20000));
    docker_ok(&["service", "rm", "swarmhub-test-svc"]);
    if cleanup.swarm_created {
        docker_ok(&["swarm", "leave", "--force"]);
        cleanup.swarm_created = false;
    }

    // --- nfsd down, then hung -----------------------------------------------------------------------------
    docker_ok(&[
        "volume", "create", "-d", &name, "-o", "user=bob", "home-bob",
    ]);
    nfsd.stop().unwrap();
    let bob_mount = mount("home-bob");
    let out = docker_timeout(
        &[
            "run", "--rm", "--label", LABEL, "--mount", &bob_mount, IMAGE, "true",
        ],
        Duration::from_secs(60),
    );
    eprintln!(
        "nfsd down, existing volume: {:.1?}: {}",
        out.took,
        out.stderr.trim()
    );
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.took < Duration::from_secs(25),
        "fails fast: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains(&nfs_addr) && out.stderr.contains("/home-bob"),
        "the error names the server and the export: {}",
        out.describe()
    );
    let ls = docker_timeout(&["volume", "ls"], Duration::from_secs(10));
    eprintln!("nfsd down: docker volume ls took {:.0} ms", ms(ls.took));
    assert!(
        ls.success() && ls.took < Duration::from_secs(1),
        "{}",
        ls.describe()
    );

    let carol = format!("{},volume-opt=user=carol", mount("home-carol"));
    let out = docker_timeout(
        &[
            "run", "--rm", "--label", LABEL, "--mount", &carol, IMAGE, "true",
        ],
        Duration::from_secs(60),
    );
    eprintln!(
        "nfsd down, new volume: {:.1?}: {}",
        out.took,
        out.stderr.trim()
    );
    assert!(
        !out.success() && out.took < Duration::from_secs(25),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains(&nfsd.api.port().to_string()),
        "the error names nfsd's API address: {}",
        out.describe()
    );

    // hung: a port that accepts TCP connections and never answers (an nfsd that hangs, or a
    // firewall that lets the handshake through); the plugin must give up on its own
    let tarpit = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tarpit_addr = tarpit.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in tarpit.incoming() {
            held.push(c);
        }
    });
    plugin
        .reconfigure(&[format!(
            "SWARMHUB_NFS_PORT={}",
            tarpit_addr.rsplit(':').next().unwrap()
        )])
        .unwrap();
    let runner = {
        let bob_mount = bob_mount.clone();
        std::thread::spawn(move || {
            docker_timeout(
                &[
                    "run", "--rm", "--label", LABEL, "--mount", &bob_mount, IMAGE, "true",
                ],
                Duration::from_secs(90),
            )
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let ls = docker_timeout(&["volume", "ls"], Duration::from_secs(10));
    let inspect = docker_timeout(
        &["volume", "inspect", "home-alice"],
        Duration::from_secs(10),
    );
    let out = runner.join().unwrap();
    eprintln!(
        "nfsd hung: docker run failed after {:.1?}: {}; docker volume ls during the mount took {:.0} ms, volume inspect {:.0} ms",
        out.took,
        out.stderr.trim(),
        ms(ls.took),
        ms(inspect.took)
    );
    assert!(
        !out.success() && out.took < Duration::from_secs(25),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains(&tarpit_addr) && out.stderr.contains("/home-bob"),
        "the error names the server and the export: {}",
        out.describe()
    );
    assert!(
        ls.success() && ls.took < Duration::from_secs(1),
        "{}",
        ls.describe()
    );
    assert!(
        inspect.success() && inspect.took < Duration::from_secs(1),
        "{}",
        inspect.describe()
    );
    eprintln!(
        "home-bob Status after the failed mount: {}",
        status_of("home-bob")
    );

    // back: nfsd up again and the right address; bob's volume mounts
    plugin
        .reconfigure(&[format!("SWARMHUB_NFS_PORT={}", nfsd.nfs.port())])
        .unwrap();
    nfsd.restart_graceful().unwrap();
    docker_ok(&[
        "run",
        "--rm",
        "--label",
        LABEL,
        "--mount",
        &bob_mount,
        IMAGE,
        "sh",
        "-c",
        "echo b > /work/b",
    ]);
    assert_eq!(owner(&data.join("volumes/home-bob/b")), (20002, 20000));
    // a volume created on first use from the mount's volume-opt (what Swarm and SwarmSpawner do)
    docker_ok(&[
        "run",
        "--rm",
        "--label",
        LABEL,
        "--mount",
        &carol,
        IMAGE,
        "sh",
        "-c",
        "echo c > /work/c",
    ]);
    assert_eq!(owner(&data.join("volumes/home-carol/c")), (20003, 20000));

    // --- cleanup: volume rm forgets the record, nfsd keeps the data ---------------------------------------
    docker_ok(&["volume", "rm", "home-alice", "home-bob", "home-carol"]);
    assert!(
        home.join("f").exists(),
        "nfsd keeps the data of removed volumes"
    );
    drop(cleanup);
    assert!(
        !docker(&["plugin", "inspect", &name]).success(),
        "the plugin is removed at the end"
    );
}
