//! The `swarmhub` CLI against a real dockerd in swarm mode (a one-node swarm on this host):
//! `run` twice (the second changes nothing), `stop`/`start`/`rerun`/`remove` keep a marker file
//! in a user's tree and the secrets, `remove` leaves no service, config or network behind,
//! `status --output json` and `doctor` report a deliberately broken cluster (plugin disabled,
//! nfsd stopped) with the fix, `volume delete` needs confirmation, the plugin rollout runs
//! as a one-shot global job, and a restart of the plugin under 10 notebooks with 50 mounted
//! volumes is found by `status` and `doctor` and cured by `notebooks restart --dead-mounts`
//! without losing a line.
//!
//! Real parts: dockerd (docker.io; a one-node test machine of the harness, never this host's
//! own dockerd: the test runs inside it, see `swarmhub_tests::docker::Dockerd`), slapd (listening on docker_gwbridge's gateway so nfsd's
//! container reaches it), the nfsd, swarmhub (CLI + plugin bundle) and hub images built from
//! the Dockerfile, the plugin with its fuse backend (this host's kernel has no NFS client).
//! One test function: the steps build on each other and share one swarm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use swarmhub_tests::docker::{self, Dockerd, Out, docker, docker_ok, run_timeout};
use swarmhub_tests::images::{Image, ensure_images};
use swarmhub_tests::nfsd::{free_port, workspace_bin};
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};

const NETWORK: &str = "swarmhub-clitest";
const NFSD: &str = "swarmhub-clitest-nfsd";
const HUB: &str = "swarmhub-clitest-hub";
const HUB_VOLUME: &str = "swarmhub-clitest-hub-data";
const BUSYBOX: &str = docker::BUSYBOX_IMAGE;
const SECRETS: [&str; 4] = [
    "swarmhub-nfsd-token",
    "swarmhub-hub-cookie-secret",
    "swarmhub-hub-crypt-key",
    "swarmhub-ldap-password",
];

/// Undo everything the test made in the shared dockerd, whatever happened.
struct Cleanup {
    swarm_created: bool,
    root: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for s in [HUB, NFSD, "swarmhub-plugin-rollout", "swarmhub-volume-api"] {
            docker(&["service", "rm", s]);
        }
        docker(&["rm", "-f", "swarmhub-clitest-writer"]);
        for i in 0..MNT_NOTEBOOKS {
            docker(&["service", "rm", &format!("jupyter-mnt{i}")]);
        }
        std::thread::sleep(Duration::from_secs(3));
        docker(&["volume", "rm", "-f", "home-alice"]);
        for i in 0..MNT_NOTEBOOKS {
            for k in 0..MNT_VOLUMES {
                docker(&["volume", "rm", "-f", &format!("mnt{i}-v{k}")]);
            }
        }
        docker(&["volume", "rm", "-f", HUB_VOLUME]);
        // the hub's certificate secrets are named by their content
        let tls = docker(&[
            "secret",
            "ls",
            "-q",
            "--filter",
            "label=swarmhub.component=hub-tls",
        ]);
        for id in tls.stdout.split_whitespace() {
            docker(&["secret", "rm", id]);
        }
        docker::remove_deployment(NETWORK, &SECRETS, self.swarm_created);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn swarmhub(config: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(
        workspace_bin("swarmhub").expect("the swarmhub binary (cargo build --workspace --bins)"),
    );
    cmd.arg("--config").arg(config).args(args);
    cmd.env_remove("DOCKER_HOST");
    let out = run_timeout(cmd, Duration::from_secs(600)).expect("running swarmhub");
    out.echo(&format!("swarmhub {}", args.join(" ")));
    out
}

fn swarmhub_ok(config: &Path, args: &[&str]) -> String {
    let out = swarmhub(config, args);
    assert!(
        out.success(),
        "swarmhub {} failed: {}",
        args.join(" "),
        out.describe()
    );
    out.stdout
}

fn service_version(name: &str) -> String {
    docker_ok(&["service", "inspect", "-f", "{{.Version.Index}}", name])
}

fn secret_ids() -> Vec<String> {
    SECRETS
        .iter()
        .map(|s| docker_ok(&["secret", "inspect", "-f", "{{.ID}}", s]))
        .collect()
}

/// The gateway of docker_gwbridge: an address of this host that swarm containers reach.
fn gwbridge_gateway() -> anyhow::Result<String> {
    let ip = docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "docker_gwbridge",
    ]);
    anyhow::ensure!(!ip.is_empty(), "docker_gwbridge has no gateway");
    Ok(ip)
}

#[test]
fn the_cli_deploys_operates_and_removes_the_stack_without_losing_data() -> anyhow::Result<()> {
    let _dockerd = Dockerd::ensure()?;
    let root = PathBuf::from(docker::TEST_ROOT).join("cli");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let swarm_state = docker_ok(&["info", "-f", "{{.Swarm.LocalNodeState}}"]);
    let mut cleanup = Cleanup {
        swarm_created: false,
        root: root.clone(),
    };
    // leftovers of an earlier, interrupted run
    drop(Cleanup {
        swarm_created: false,
        root: root.join("none"),
    });
    if swarm_state != "active" {
        // a dockerd outside any swarm: exit code 4 with the command that makes one
        std::fs::write(root.join("empty.toml"), "")?;
        let out = swarmhub(&root.join("empty.toml"), &["status"]);
        assert_eq!(out.code(), Some(4), "{}", out.describe());
        assert!(out.stderr.contains("docker swarm init"), "{}", out.stderr);
        docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        cleanup.swarm_created = true;
    }
    let node = docker_ok(&["info", "-f", "{{.Swarm.NodeID}}"]);

    let config = root.join("swarmhub.toml");
    let data = root.join("data");
    let plugin_state = root.join("plugin-state");

    // ---- before anything: a bad config and a missing daemon are clear errors ----------------
    std::fs::write(&config, "[cluster]\nhub_port = 0\n")?;
    let out = swarmhub(&config, &["run"]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(out.stderr.contains("cluster.hub_port"), "{}", out.stderr);
    let mut cmd = Command::new(
        workspace_bin("swarmhub").expect("the swarmhub binary (cargo build --workspace --bins)"),
    );
    cmd.arg("--config").arg(&config).arg("status");
    std::fs::write(&config, "")?;
    cmd.env(
        "DOCKER_HOST",
        format!("unix://{}/nothing.sock", root.display()),
    );
    let out = run_timeout(cmd, Duration::from_secs(60))?;
    assert_eq!(out.code(), Some(3), "{}", out.describe());
    assert!(out.stderr.contains("nothing.sock"), "{}", out.stderr);

    // ---- images, LDAP ----------------------------------------------------------------------
    docker::busybox_image(BUSYBOX)?;
    // every image the config names: doctor checks they are on the node (this test's machine
    // has only what it loads)
    for e in ensure_images(&Image::DEPLOYED)? {
        eprintln!(
            "image {}: built {} in {:.0} s",
            e.tag,
            e.built,
            e.took.as_secs_f64()
        );
    }
    // the overlay's gateway bridge exists once the swarm has run a task; create it if needed
    if gwbridge_gateway().is_err() {
        docker_ok(&["network", "create", "--driver", "bridge", "docker_gwbridge"]);
    }
    let gateway = gwbridge_gateway()?;
    let slapd = Slapd::start_on(
        &gateway,
        &[
            TestUser::new("alice", 4101, 4100),
            TestUser::new("tina", 4201, 4200),
        ],
        &[
            TestGroup::new("students", 4100, &["alice"]),
            TestGroup::new("teachers", 4200, &["tina"]),
        ],
    )?;
    let password_file = slapd.reader_password_file()?;
    let password_file = password_file.as_path();

    let (nfs_port, api_port, hub_port) = (free_port(), free_port(), free_port());
    std::fs::write(
        &config,
        format!(
            r#"[cluster]
network = "{NETWORK}"
nfsd_service = "{NFSD}"
hub_service = "{HUB}"
hub_data_volume = "{HUB_VOLUME}"
nfsd_data_dir = "{data}"
plugin_state_dir = "{plugin_state}"
plugin_backend = "fuse"
nfsd_port = {nfs_port}
nfsd_api_port = {api_port}
hub_port = {hub_port}
public_url = "https://127.0.0.1:{hub_port}/"

[ldap]
url = "{url}"
starttls = false
base_dn = "{base}"
bind_dn = "{reader}"
student_groups = ["{students}"]
teacher_group = "{teachers}"

[timeouts]
service_seconds = 240

[tls]
# run makes a CA and a certificate in tls/ next to this file and keeps them
mode = "self-signed"
"#,
            data = data.display(),
            plugin_state = plugin_state.display(),
            url = slapd.url.trim_end_matches('/'),
            base = slapd.base_dn,
            reader = slapd.reader_dn,
            students = slapd.group_dn("students"),
            teachers = slapd.group_dn("teachers"),
        ),
    )?;
    let check = swarmhub_ok(&config, &["config", "check"]);
    assert!(check.contains("valid"), "{check}");

    // ---- no storage label: exit 7 with the command that fixes it ---------------------------
    docker(&["node", "update", "--label-rm", "swarmhub.storage", &node]);
    let out = swarmhub(
        &config,
        &["run", "--ldap-password-file", path(password_file)],
    );
    assert_eq!(out.code(), Some(7), "{}", out.describe());
    assert!(
        out.stderr
            .contains("docker node update --label-add swarmhub.storage=true"),
        "{}",
        out.stderr
    );
    docker_ok(&[
        "node",
        "update",
        "--label-add",
        "swarmhub.storage=true",
        &node,
    ]);

    // ---- run: everything created and started -----------------------------------------------
    let started = Instant::now();
    let first = swarmhub_ok(
        &config,
        &["run", "--ldap-password-file", path(password_file)],
    );
    let run_took = started.elapsed();
    for line in [
        format!("network {NETWORK}: created"),
        "secret swarmhub-nfsd-token: created".into(),
        "secret swarmhub-ldap-password: created".into(),
        format!("service {NFSD}: created"),
        format!("service {HUB}: created"),
        format!(
            "certificate {}: created",
            root.join("tls/hub.pem").display()
        ),
    ] {
        assert!(first.contains(&line), "{line} missing from:\n{first}");
    }
    assert!(first.contains("plugin swarmhub-nfs@"), "{first}");
    assert!(
        data.join("registry.json").exists() || data.is_dir(),
        "nfsd's data directory"
    );
    let versions = (service_version(NFSD), service_version(HUB));
    let secrets_before = secret_ids();
    eprintln!("first run took {:.1} s", run_took.as_secs_f64());

    // ---- run again: nothing changes ---------------------------------------------------------
    let second = swarmhub_ok(&config, &["run"]);
    for line in second.lines() {
        assert!(
            line.contains(": unchanged"),
            "the second run changed something: {line}\n{second}"
        );
    }
    assert_eq!((service_version(NFSD), service_version(HUB)), versions);
    assert_eq!(secret_ids(), secrets_before);

    // ---- another certificate (one more name): the hub rolls, the old secrets go ------------
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str("names = [\"hub.clitest.example\"]\n");
    std::fs::write(&config, text)?;
    let renewed = swarmhub_ok(&config, &["run"]);
    for line in [
        format!(
            "certificate {}: created (made again: the names changed",
            root.join("tls/hub.pem").display()
        ),
        format!("service {HUB}: updated"),
        format!("secret {HUB}-tls-cert-"),
    ] {
        assert!(renewed.contains(&line), "{line} missing from:\n{renewed}");
    }
    assert!(
        renewed
            .lines()
            .any(|l| l.starts_with(&format!("secret {HUB}-tls-key-")) && l.ends_with(": removed")),
        "the old key's secret was not removed:\n{renewed}"
    );
    assert_ne!(service_version(HUB), versions.1, "the hub did not roll");

    // ---- a user's tree with a marker, written through the plugin ------------------------------
    docker_ok(&[
        "volume",
        "create",
        "-d",
        "swarmhub-nfs",
        "-o",
        "user=alice",
        "home-alice",
    ]);
    docker_ok(&[
        "run",
        "--rm",
        "--name",
        "swarmhub-clitest-writer",
        "-v",
        "home-alice:/home/jovyan",
        BUSYBOX,
        "sh",
        "-c",
        "echo keep-me > /home/jovyan/marker && ls -ln /home/jovyan/marker",
    ]);
    let marker = find_marker(&data).context("the marker file on nfsd's disk")?;
    let meta = std::fs::metadata(&marker)?;
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.uid(), meta.gid()),
        (4101, 4100),
        "owned by alice's LDAP ids"
    );
    let marker_ok = |when: &str| {
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap_or_default(),
            "keep-me\n",
            "marker lost after {when}"
        );
    };

    // ---- stop / start ----------------------------------------------------------------------
    let out = swarmhub_ok(&config, &["stop"]);
    assert!(out.contains(&format!("service {HUB}: stopped")), "{out}");
    assert!(out.contains(&format!("service {NFSD}: stopped")), "{out}");
    assert_eq!(
        docker_ok(&[
            "service",
            "inspect",
            "-f",
            "{{.Spec.Mode.Replicated.Replicas}}",
            NFSD
        ]),
        "0"
    );
    marker_ok("stop");
    assert_eq!(secret_ids(), secrets_before);
    let out = swarmhub_ok(&config, &["start"]);
    assert!(out.contains(&format!("service {NFSD}: started")), "{out}");
    marker_ok("start");

    // ---- a broken cluster: plugin disabled, nfsd stopped --------------------------------------
    docker_ok(&["plugin", "disable", "-f", "swarmhub-nfs"]);
    swarmhub_ok(&config, &["nfs", "stop"]);
    let status = swarmhub(&config, &["--output", "json", "status"]);
    assert!(status.success(), "{}", status.describe());
    let v: serde_json::Value = serde_json::from_str(&status.stdout)?;
    check_broken_status(&v);
    let doctor = swarmhub(
        &config,
        &["doctor", "--ldap-password-file", path(password_file)],
    );
    assert_eq!(doctor.code(), Some(6), "{}", doctor.describe());
    assert!(
        doctor.stdout.contains("swarmhub plugin rollout"),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor.stdout.contains("swarmhub nfs start"),
        "{}",
        doctor.stdout
    );

    // run repairs it: nfsd started, the plugin enabled again by the rollout
    let out = swarmhub_ok(&config, &["run"]);
    assert!(out.contains(&format!("service {NFSD}: started")), "{out}");
    assert!(out.contains("plugin swarmhub-nfs@"), "{out}");
    let doctor = swarmhub(
        &config,
        &["doctor", "--ldap-password-file", path(password_file)],
    );
    assert_eq!(doctor.code(), Some(0), "{}", doctor.describe());

    // ---- the plugin restarted under 10 notebooks with 50 mounted volumes -------------------
    dead_mounts_after_a_plugin_restart(&config, &data, password_file)?;

    // ---- the plugin's settings changed since its rollout: doctor says so, run re-applies ----
    let settings_label = || {
        docker_ok(&[
            "node",
            "inspect",
            "-f",
            "{{index .Spec.Labels \"swarmhub.plugin-settings\"}}",
            &node,
        ])
    };
    let recorded = settings_label();
    assert!(
        recorded.len() == 12 && recorded.chars().all(|c| c.is_ascii_hexdigit()),
        "the rollout records the settings' fingerprint: {recorded:?}"
    );
    // what a node rolled out with another nfsd address or port looks like
    docker_ok(&[
        "node",
        "update",
        "--label-add",
        "swarmhub.plugin-settings=0123456789ab",
        &node,
    ]);
    let doctor = swarmhub(
        &config,
        &["doctor", "--ldap-password-file", path(password_file)],
    );
    assert_eq!(doctor.code(), Some(6), "{}", doctor.describe());
    assert!(
        doctor
            .stdout
            .contains("was installed with other settings than those in effect"),
        "{}",
        doctor.stdout
    );
    let out = swarmhub_ok(&config, &["run"]);
    assert!(
        out.contains("plugin swarmhub-nfs@"),
        "run rolled out again: {out}"
    );
    assert_eq!(settings_label(), recorded);
    let doctor = swarmhub(
        &config,
        &["doctor", "--ldap-password-file", path(password_file)],
    );
    assert_eq!(doctor.code(), Some(0), "{}", doctor.describe());
    let status = swarmhub_ok(&config, &["status"]);
    eprintln!("status of a healthy one-node deployment:\n{status}");
    let v: serde_json::Value =
        serde_json::from_str(&swarmhub_ok(&config, &["--output", "json", "status"]))?;
    let names: Vec<&str> = v["volumes"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(names, ["home-alice"], "{v}");

    // ---- rerun keeps data and secrets -------------------------------------------------------
    docker_ok(&["volume", "rm", "home-alice"]);
    let out = swarmhub_ok(&config, &["rerun"]);
    assert!(out.contains(&format!("service {NFSD}: removed")), "{out}");
    assert!(out.contains(&format!("service {NFSD}: created")), "{out}");
    marker_ok("rerun");
    assert_eq!(secret_ids(), secrets_before);

    // ---- user data is deleted only when confirmed --------------------------------------------
    let out = swarmhub(&config, &["volume", "delete", "home-alice"]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("--confirm home-alice"),
        "{}",
        out.stderr
    );
    let out = swarmhub(
        &config,
        &["volume", "delete", "home-alice", "--confirm", "home-bob"],
    );
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    marker_ok("refused deletes");
    let list = swarmhub_ok(&config, &["volume", "list"]);
    assert!(list.contains("home-alice"), "{list}");

    // ---- remove: no service, config or network left; secrets and data kept ---------------------
    let out = swarmhub_ok(&config, &["remove"]);
    assert!(out.contains("user data is never removed"), "{out}");
    let managed =
        |kind: &str| docker_ok(&[kind, "ls", "-q", "--filter", "label=swarmhub.managed=true"]);
    assert_eq!(managed("service"), "", "services left");
    assert_eq!(managed("config"), "", "configs left");
    assert_eq!(managed("network"), "", "networks left");
    assert_eq!(secret_ids(), secrets_before);
    marker_ok("remove");
    let again = swarmhub_ok(&config, &["remove"]);
    assert!(
        again.contains(&format!("service {NFSD}: absent")),
        "{again}"
    );

    drop(slapd);
    drop(cleanup);
    Ok(())
}

/// Notebooks of the scenario below, and the volumes each mounts.
const MNT_NOTEBOOKS: usize = 10;
const MNT_VOLUMES: usize = 5;

/// FUSE mounts end with the plugin process: 10 notebook services (busybox, with the notebook
/// labels), each appending a line per second to a log on each of its 5 swarmhub volumes, see
/// the plugin disabled and enabled again (what the demo's plugin reinstall did). Checked: what
/// the containers see (errors, ENOTCONN), the plugin's references before and after (the dead
/// ones reported in its Status), that `status` and `doctor` name exactly the 50 dead mounts with
/// the fix, that `notebooks restart --dead-mounts` restarts exactly those 10 and their writes go
/// on with every line written before still on disk, one FUSE mount per volume (no leak), and
/// none left once the notebooks are gone. Prints `FIGURE` lines for docs/RELIABILITY.md.
fn dead_mounts_after_a_plugin_restart(
    config: &Path,
    data: &Path,
    password_file: &Path,
) -> anyhow::Result<()> {
    let name = |i: usize| format!("jupyter-mnt{i}");
    let volume = |i: usize, k: usize| format!("mnt{i}-v{k}");
    let all_volumes =
        || (0..MNT_NOTEBOOKS).flat_map(move |i| (0..MNT_VOLUMES).map(move |k| (i, k)));
    // appends n to every volume's log; a failed append is counted in the container's /tmp
    let script = format!(
        "n=0; while true; do n=$((n+1)); for k in $(seq 0 {}); do echo $n >> /v$k/log || echo \"$n $k\" >> /tmp/errors; done; sleep 1; done",
        MNT_VOLUMES - 1
    );
    for i in 0..MNT_NOTEBOOKS {
        let mut args: Vec<String> = [
            "service",
            "create",
            "--detach",
            "--name",
            &name(i),
            "--label",
            "swarmhub.component=notebook",
            "--label",
            &format!("swarmhub.user=mnt{i}"),
            "--label",
            "swarmhub.role=student",
            "--label",
            docker::LABEL,
        ]
        .map(String::from)
        .to_vec();
        for k in 0..MNT_VOLUMES {
            args.push("--mount".into());
            args.push(format!(
                "type=volume,source={},target=/v{k},volume-driver=swarmhub-nfs,volume-opt=user=alice",
                volume(i, k)
            ));
        }
        args.extend([
            BUSYBOX.to_string(),
            "sh".into(),
            "-c".into(),
            script.clone(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_ok(&args);
    }
    let log_of = |i: usize, k: usize| data.join("volumes").join(volume(i, k)).join("log");
    let lines = |i: usize, k: usize| {
        std::fs::read_to_string(log_of(i, k))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let waited = Instant::now();
    while all_volumes().any(|(i, k)| lines(i, k) < 3) {
        assert!(
            waited.elapsed() < Duration::from_secs(300),
            "the 10 notebooks did not all write 3 lines to their 5 volumes: {}",
            docker(&["service", "ls"]).stdout
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    eprintln!(
        "FIGURE mounts: {MNT_NOTEBOOKS} notebooks writing to {} volumes after {:.1} s",
        MNT_NOTEBOOKS * MNT_VOLUMES,
        waited.elapsed().as_secs_f64()
    );
    let status_of = |v: &str| -> serde_json::Value {
        serde_json::from_str(&docker_ok(&[
            "volume",
            "inspect",
            "-f",
            "{{json .Status}}",
            v,
        ]))
        .unwrap_or_default()
    };
    // (references, of them dead) per volume, as the plugin reports them
    let references = || -> Vec<(u64, u64)> {
        all_volumes()
            .map(|(i, k)| {
                let s = status_of(&volume(i, k));
                (
                    s["references"].as_u64().unwrap_or(0),
                    s["dead_references"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    // the plugin's FUSE mounts of these volumes, as its own process sees them (the test's
    // thread does not share the machine's mount namespace); the most any plugin process has
    let fuse_mounts = || {
        plugin_mountinfos()
            .iter()
            .map(|info| {
                all_volumes()
                    .map(|(i, k)| {
                        let at = format!("/{} ", volume(i, k));
                        info.lines()
                            // fuser mounts `fuse` with the source `swarmhub:<server>:<export>`
                            .filter(|l| l.contains(&at) && l.contains(" - fuse swarmhub:"))
                            .count()
                    })
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    };
    let refs_before: Vec<u64> = all_volumes()
        .map(|(i, k)| status_of(&volume(i, k))["references"].as_u64().unwrap_or(0))
        .collect();
    assert!(refs_before.iter().all(|r| *r == 1), "{refs_before:?}");
    let mounts_before = fuse_mounts();
    assert_eq!(mounts_before, 50, "one FUSE mount per volume");
    let containers = || -> Vec<String> {
        (0..MNT_NOTEBOOKS)
            .map(|i| {
                docker_ok(&[
                    "ps",
                    "-q",
                    "--filter",
                    &format!("label=com.docker.swarm.service.name={}", name(i)),
                ])
            })
            .collect()
    };
    let before = containers();
    assert!(before.iter().all(|c| c.len() == 12), "{before:?}");
    let healthy = swarmhub(config, &["--output", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&healthy.stdout)?;
    assert_eq!(v["mounts"]["checked"], true, "{}", v["mounts"]);
    assert_eq!(
        v["mounts"]["broken"].as_array().map(Vec::len),
        Some(0),
        "{}",
        v["mounts"]
    );

    // the plugin process ends and starts again
    let lines_before: Vec<usize> = all_volumes().map(|(i, k)| lines(i, k)).collect();
    docker_ok(&["plugin", "disable", "-f", "swarmhub-nfs"]);
    docker_ok(&["plugin", "enable", "swarmhub-nfs"]);
    std::thread::sleep(Duration::from_secs(5));
    let errors = failed_appends(&before);
    let seen = docker(&["exec", &before[0], "ls", "/v0"]);
    eprintln!(
        "FIGURE mounts: after the plugin restart, failed appends per container after 5 s: {errors:?}; ls /v0 in one: {}",
        seen.stderr.trim()
    );
    assert!(
        errors.iter().all(|e| *e > 0),
        "every container sees its mounts dead: {errors:?}"
    );
    assert!(
        seen.stderr.contains("not connected"),
        "a dead FUSE mount answers ENOTCONN: {}",
        seen.describe()
    );
    let refs_after = references();
    assert!(
        refs_after.iter().all(|r| *r == (1, 1)),
        "each volume keeps its container's reference, known dead: {refs_after:?}"
    );

    // status and doctor name exactly the 50 dead mounts, with the fix
    let status = swarmhub(config, &["--output", "json", "status"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout)?;
    let broken = v["mounts"]["broken"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(broken.len(), 50, "{}", v["mounts"]);
    assert!(
        broken.iter().all(|b| b["state"] == "dead"
            && b["service"]
                .as_str()
                .is_some_and(|s| s.starts_with("jupyter-mnt"))
            && b["error"]
                .as_str()
                .is_some_and(|e| e.contains("not connected"))),
        "{}",
        v["mounts"]
    );
    assert!(
        v["mounts"]["fix"]
            .as_str()
            .is_some_and(|f| f.starts_with("swarmhub notebooks restart --dead-mounts")),
        "{}",
        v["mounts"]
    );
    let text = swarmhub_ok(config, &["status"]);
    assert!(text.contains("notebook mounts: 50 do not answer"), "{text}");
    let doctor = swarmhub(
        config,
        &["doctor", "--ldap-password-file", path(password_file)],
    );
    assert_eq!(doctor.code(), Some(6), "{}", doctor.describe());
    assert!(
        doctor
            .stdout
            .contains("✗ notebook-mounts: 50 mount(s) of running containers do not answer")
            && doctor
                .stdout
                .contains("fix: swarmhub notebooks restart --dead-mounts"),
        "{}",
        doctor.stdout
    );

    // one command restarts exactly them; their writes go on, nothing written before is lost
    let restarted = Instant::now();
    let out = swarmhub_ok(config, &["notebooks", "restart", "--dead-mounts"]);
    eprintln!(
        "FIGURE mounts: notebooks restart --dead-mounts took {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    for i in 0..MNT_NOTEBOOKS {
        assert!(
            out.contains(&format!("service {}: restarted", name(i))),
            "{out}"
        );
    }
    assert_eq!(out.matches(": restarted").count(), MNT_NOTEBOOKS, "{out}");
    let after = containers();
    assert!(
        after
            .iter()
            .zip(&before)
            .all(|(a, b)| a.len() == 12 && a != b),
        "new containers: {before:?} → {after:?}"
    );
    let waited = Instant::now();
    let grown = |want: &[usize]| {
        all_volumes()
            .zip(want)
            .all(|((i, k), n)| lines(i, k) >= n + 3)
    };
    while !grown(&lines_before) {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "writes did not go on after the restart"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    for (i, k) in all_volumes() {
        let log = std::fs::read_to_string(log_of(i, k))?;
        let first: Vec<&str> = log
            .lines()
            .take(lines_before[i * MNT_VOLUMES + k])
            .collect();
        let want: Vec<String> = (1..=first.len()).map(|n| n.to_string()).collect();
        assert_eq!(
            first,
            want,
            "{}: the lines written before the restart",
            volume(i, k)
        );
    }
    let errors_after = failed_appends(&after);
    assert!(errors_after.iter().all(|e| *e == 0), "{errors_after:?}");
    let refs = references();
    assert!(refs.iter().all(|r| *r == (1, 0)), "{refs:?}");
    assert_eq!(fuse_mounts(), 50, "one FUSE mount per volume, none leaked");
    let doctor = swarmhub(
        config,
        &["doctor", "--ldap-password-file", path(password_file)],
    );
    assert_eq!(doctor.code(), Some(0), "{}", doctor.describe());
    assert!(
        doctor
            .stdout
            .contains("✓ notebook-mounts: 50 swarmhub mount(s) of 10 running container(s)"),
        "{}",
        doctor.stdout
    );
    // safe to re-run: nothing is dead, nothing restarts
    let again = swarmhub_ok(config, &["notebooks", "restart", "--dead-mounts"]);
    assert!(!again.contains(": restarted"), "{again}");
    assert_eq!(containers(), after);
    eprintln!(
        "FIGURE mounts: references before {} / after restart {} (dead {}) / after notebooks restart {}; FUSE mounts before {mounts_before}, after {}",
        refs_before.iter().sum::<u64>(),
        refs_after.iter().map(|r| r.0).sum::<u64>(),
        refs_after.iter().map(|r| r.1).sum::<u64>(),
        refs.iter().map(|r| r.0).sum::<u64>(),
        fuse_mounts()
    );

    // gone with the notebooks: no reference, no mount
    for i in 0..MNT_NOTEBOOKS {
        docker_ok(&["service", "rm", &name(i)]);
    }
    let waited = Instant::now();
    while fuse_mounts() > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "{} FUSE mounts left after the notebooks went",
            fuse_mounts()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    for (i, k) in all_volumes() {
        assert_eq!(status_of(&volume(i, k))["references"], 0);
        // the containers of removed tasks go shortly after their mounts
        let waited = Instant::now();
        while !docker(&["volume", "rm", &volume(i, k)]).success() {
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "volume {} still in use",
                volume(i, k)
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    Ok(())
}

/// Lines each container logged in its `/tmp/errors` (one per failed append).
fn failed_appends(containers: &[String]) -> Vec<usize> {
    containers
        .iter()
        .map(|c| {
            docker(&["exec", c, "cat", "/tmp/errors"])
                .stdout
                .lines()
                .count()
        })
        .collect()
}

/// `/proc/<pid>/mountinfo` of every running `swarmhub-volume-plugin` process.
fn plugin_mountinfos() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.trim_end().starts_with("swarmhub-volume"))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("mountinfo")).ok())
        .collect()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn find_marker(dir: &Path) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == "marker") {
            return Some(p);
        }
        if p.is_dir()
            && !p.is_symlink()
            && let Some(found) = find_marker(&p)
        {
            return Some(found);
        }
    }
    None
}

/// What `status --output json` must say about the broken cluster.
fn check_broken_status(v: &serde_json::Value) {
    let text = v.to_string();
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{text}");
    assert_eq!(nodes[0]["plugin_enabled"], false, "plugin disabled: {text}");
    assert_eq!(nodes[0]["storage"], true, "{text}");
    assert!(
        nodes[0]["plugin_version"].is_string(),
        "version recorded: {text}"
    );
    let services = v["services"].as_array().expect("services");
    let nfsd = services
        .iter()
        .find(|s| s["component"] == "nfsd")
        .expect("nfsd in status");
    assert_eq!(nfsd["name"], NFSD);
    assert_eq!(nfsd["desired"], 0, "{text}");
    assert_eq!(nfsd["health"]["state"], "stopped", "{text}");
    let hub = services
        .iter()
        .find(|s| s["component"] == "hub")
        .expect("hub in status");
    assert_eq!(hub["health"]["state"], "running", "{text}");
    assert_eq!(v["nfsd_api"]["reachable"], false, "{text}");
}
