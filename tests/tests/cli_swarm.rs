//! The `swarmhub` CLI against a real dockerd in swarm mode (a one-node swarm on this host):
//! `run` twice (the second changes nothing), `stop`/`start`/`rerun`/`remove` keep a marker file
//! in a user's tree and the secrets, `remove` leaves no service, config or network behind,
//! `status --output json` and `doctor` report a deliberately broken cluster (plugin disabled,
//! nfsd stopped) with the fix, `volume delete` needs confirmation, and the plugin rollout runs
//! as a one-shot global job.
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
        std::thread::sleep(Duration::from_secs(3));
        docker(&["volume", "rm", "-f", "home-alice"]);
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
