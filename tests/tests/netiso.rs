//! Network isolation of nfsd (isolation issue, item 2): notebooks cannot reach nfsd at all.
//!
//! Real parts: a three-node swarm (tests/src/swarm.rs; node 1 manager and storage node, nodes
//! 2 and 3 workers), deployed by the `swarmhub` CLI (`nfs run`, `plugin rollout`, `doctor`),
//! the nfsd and swarmhub images, the `swarmhub-nfs` plugin (fuse backend), slapd, and
//! notebook-like containers (busybox) on the attachable overlay on a worker and on the storage
//! node, each with alice's home volume mounted through the plugin.
//!
//! nfsd runs with the test-only `bare_mounts` setting, so the capability mounts (the other
//! defence, tested alone in nfsd's tests and together in e2e) do not help here: what holds is
//! the network alone. Asserted from inside both containers: TCP connects to nfsd's NFS and API ports fail at the
//! service name, `tasks.<service>`, every node's address and the container's default gateway
//! (docker_gwbridge); a bare MNT of `/home-alice` gets no answer. With the SWARMHUB-NFSD chain
//! removed on every node (to prove the probes can see a hole), the worker's container reaches
//! nfsd at the storage node's address (masqueraded to the worker's address) and its bare MNT is
//! answered MNT3_OK, while the storage node's container is still refused by nfsd's allow list.
//! doctor flags the missing chain; `plugin rollout` puts it back and doctor is green again.
//! The source addresses nfsd sees for the plugins are printed (ss on the storage node), and,
//! for comparison, those an nfsd with the old layout (overlay, port published in host mode)
//! sees for clients in the nodes' networks.
//!
//! Needs root, docker.io, iproute2, util-linux, iptables, fuse3, slapd + ldap-utils,
//! busybox-static, and the images (built by `ensure_images` when stale). One test: one swarm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::Value;
use swarmhub_tests::docker::{self, Out, run_timeout};
use swarmhub_tests::images::{Image, ensure_images};
use swarmhub_tests::nfsd::workspace_bin;
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};
use swarmhub_tests::swarm::{BASE, HOST_IP, Swarm};

const BUSYBOX: &str = docker::BUSYBOX_IMAGE;
const NFSD: &str = "swarmhub-nfsd";
const NETWORK: &str = "swarmhub";
const NFS_PORT: u16 = 2049;
const API_PORT: u16 = 8049;
const VOLUME: &str = "home-alice";

/// A MOUNT v3 MNT call of `/home-alice` with AUTH_SYS uid 0, as `printf` escapes: record mark
/// (last fragment, 76 bytes), xid, CALL, RPC 2, program 100005, version 3, procedure 1,
/// AUTH_SYS credential (stamp 0, empty machine name, uid 0, gid 0, no groups), AUTH_NULL
/// verifier, the path (11 bytes and one byte of padding).
fn mnt_call() -> String {
    let mut b: Vec<u8> = Vec::new();
    let mut word = |v: u32| b.extend(v.to_be_bytes());
    for v in [0x1234_5678, 0, 2, 100_005, 3, 1, 1, 20, 0, 0, 0, 0, 0, 0, 0] {
        word(v);
    }
    let path = format!("/{VOLUME}");
    word(u32::try_from(path.len()).unwrap());
    b.extend(path.as_bytes());
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    let mut rec = (0x8000_0000u32 | u32::try_from(b.len()).unwrap())
        .to_be_bytes()
        .to_vec();
    rec.extend(b);
    rec.iter().map(|x| format!("\\x{x:02x}")).collect()
}

/// The MNT reply's status, from the hex of the bytes nfsd sent back (`None`: no reply).
/// Layout: record mark, xid, REPLY, MSG_ACCEPTED, verifier (flavor, length 0), SUCCESS, then
/// the mountstat3.
fn mnt_status(hex: &str) -> Option<u32> {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    let word = |i: usize| {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    (word(1)? == 0x1234_5678 && word(2)? == 1 && word(3)? == 0 && word(6)? == 0)
        .then(|| word(7))
        .flatten()
}

struct Deploy {
    swarm: Swarm,
    config: PathBuf,
    password_file: PathBuf,
}

impl Deploy {
    fn swarmhub(&self, args: &[&str]) -> Out {
        self.swarm
            .swarmhub(&self.config, args, Duration::from_secs(600))
    }

    fn swarmhub_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        self.swarm
            .swarmhub_ok(&self.config, args, Duration::from_secs(600))
    }

    /// doctor's checks by name: (outcome, detail, fix).
    fn doctor(&self) -> anyhow::Result<Vec<(String, String, String, String)>> {
        let pw = self.password_file.to_str().context("UTF-8 path")?;
        let out = self.swarmhub(&["--output", "json", "doctor", "--ldap-password-file", pw]);
        let v: Value = serde_json::from_str(&out.stdout)
            .with_context(|| format!("doctor's JSON: {}", out.describe()))?;
        Ok(v["checks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (s("name"), s("outcome"), s("detail"), s("fix"))
            })
            .collect())
    }

    /// `sh -c SCRIPT` in container `name` on node `i`.
    fn exec(&self, i: usize, name: &str, script: &str) -> Out {
        self.swarm.docker_timeout(
            i,
            &["exec", name, "sh", "-c", script],
            Duration::from_secs(120),
        )
    }

    /// The firewall chain on every node, through the node's iptables (`ip netns exec`).
    fn firewall(&self, action: &str) -> anyhow::Result<()> {
        let bin = workspace_bin("swarmhub")?;
        for i in 1..=self.swarm.len() {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &format!("swh-n{i}")])
                .arg(&bin)
                .args(["plugin", "node-firewall", "--root", "/"])
                .args([
                    "--port",
                    &NFS_PORT.to_string(),
                    "--port",
                    &API_PORT.to_string(),
                ])
                .arg(action);
            let out = run_timeout(cmd, Duration::from_secs(60))?;
            out.echo(&format!("node {i}: swarmhub plugin node-firewall {action}"));
            ensure!(out.success(), "{}", out.describe());
        }
        Ok(())
    }
}

/// `(target, port, connected)`.
type Connect = (String, u16, bool);
/// `(address, MNT status)`; `None`: no reply.
type Mnt = (String, Option<u32>);

/// What a notebook-like container on node `i` reaches: `(target, port, connected)` for every
/// address it could try, and the bare MNT's status per address of the storage node.
fn probe(d: &Deploy, i: usize, name: &str) -> anyhow::Result<(Vec<Connect>, Vec<Mnt>)> {
    let gateway = d.exec(i, name, "ip route | awk '/^default/ {print $3; exit}'");
    ensure!(gateway.success(), "{}", gateway.describe());
    let gateway = gateway.stdout.trim().to_string();
    ensure!(
        !gateway.is_empty(),
        "container {name} on node {i} has no default gateway"
    );
    let mut targets = vec![NFSD.to_string(), format!("tasks.{NFSD}")];
    targets.extend((1..=d.swarm.len()).map(|n| d.swarm.ip(n)));
    targets.push(gateway.clone());
    let mut script = String::new();
    for t in &targets {
        for p in [NFS_PORT, API_PORT] {
            // -e runs only after a connect: exit 0 means connected
            script.push_str(&format!(
                "if nc -w 2 {t} {p} -e /bin/true 2>/dev/null; then echo 'R {t} {p} yes'; else echo 'R {t} {p} no'; fi\n"
            ));
        }
    }
    let out = d.exec(i, name, &script);
    ensure!(out.success(), "{}", out.describe());
    let connects: Vec<Connect> = out
        .stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("R ")?.split(' ');
            Some((
                w.next()?.to_string(),
                w.next()?.parse().ok()?,
                w.next()? == "yes",
            ))
        })
        .collect();
    ensure!(
        connects.len() == targets.len() * 2,
        "probe output: {}",
        out.describe()
    );
    let mut mnts = Vec::new();
    for t in [d.swarm.ip(1), gateway] {
        let script = format!(
            "printf '{}' | timeout 4 nc -w 2 {t} {NFS_PORT} 2>/dev/null | od -An -tx1 | tr -d ' \\n'",
            mnt_call()
        );
        let out = d.exec(i, name, &script);
        mnts.push((t, mnt_status(out.stdout.trim())));
    }
    eprintln!("node {i} ({name}): connects {connects:?}; bare MNT {mnts:?}");
    Ok((connects, mnts))
}

fn check_named<'a>(
    checks: &'a [(String, String, String, String)],
    name: &str,
) -> &'a (String, String, String, String) {
    checks
        .iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("doctor has no check {name}: {checks:?}"))
}

#[test]
fn notebooks_cannot_reach_nfsd_by_any_address() -> anyhow::Result<()> {
    let t0 = Instant::now();
    let images = [Image::Nfsd, Image::Cli];
    for e in ensure_images(&images)? {
        eprintln!(
            "image {}: built {} in {:.0} s",
            e.tag,
            e.built,
            e.took.as_secs_f64()
        );
    }
    let t = Instant::now();
    let swarm = Swarm::start(3)?;
    for tag in images.iter().map(|i| i.tag()) {
        swarm.load_image(&tag)?;
    }
    swarm.load_busybox(BUSYBOX)?;
    eprintln!(
        "== swarm up, images loaded: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let slapd = Slapd::start_on(
        HOST_IP,
        &[TestUser::new("alice", 4101, 4100)],
        &[TestGroup::new("students", 4100, &["alice"])],
    )?;
    let dir = Path::new(BASE).join("nodes").join("netiso");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("swarmhub.toml");
    std::fs::write(
        &config,
        format!(
            r#"{cluster}nfsd_port = {NFS_PORT}
nfsd_api_port = {API_PORT}

{ldap}
[timeouts]
service_seconds = 300
"#,
            cluster = Swarm::swarmhub_cluster_section(&dir.join("nfsd-data")),
            ldap = slapd.swarmhub_section(HOST_IP, "students", None),
        ),
    )?;
    let d = Deploy {
        swarm,
        config,
        password_file: slapd.reader_password_file()?,
    };
    let r = steps(&d);
    if r.is_err() {
        for i in 1..=d.swarm.len() {
            eprintln!(
                "---- node {i} dockerd log ----\n{}",
                d.swarm.log_tail(i, 30)
            );
        }
        let logs = d
            .swarm
            .docker(1, &["service", "logs", "--tail", "40", NFSD]);
        eprintln!("---- nfsd ----\n{}{}", logs.stdout, logs.stderr);
    }
    eprintln!("== whole test: {:.1} s", t0.elapsed().as_secs_f64());
    r
}

fn steps(d: &Deploy) -> anyhow::Result<()> {
    let pw = d.password_file.to_str().context("UTF-8 path")?;
    d.swarm.label_node(1, "swarmhub.storage", "true")?;
    let t = Instant::now();
    d.swarmhub_ok(&["nfs", "run", "--ldap-password-file", pw])?;
    // the network defence alone: nfsd accepts bare MNTs here (the test-only `bare_mounts`), so
    // whatever stops the probes below is the network, not the capability mounts
    d.swarm.docker_ok(
        1,
        &[
            "service",
            "update",
            "--detach=false",
            "--env-add",
            "SWARMHUB_NFSD_BARE_MOUNTS=true",
            NFSD,
        ],
    )?;
    let rollout = d.swarmhub_ok(&["plugin", "rollout"])?;
    eprintln!(
        "== nfs run + plugin rollout: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        rollout
            .matches("firewall chain SWARMHUB-NFSD created")
            .count(),
        3,
        "{rollout}"
    );
    // nfsd is in the storage node's network, not on the overlay
    let overlay = d
        .swarm
        .docker_ok(1, &["network", "inspect", "-f", "{{.Id}}", NETWORK])?;
    let nets = d.swarm.docker_ok(
        1,
        &[
            "service",
            "inspect",
            "-f",
            "{{json .Spec.TaskTemplate.Networks}}",
            NFSD,
        ],
    )?;
    assert!(!nets.contains(&overlay), "{nets}");
    let container = d.swarm.docker_ok(
        1,
        &[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={NFSD}"),
        ],
    )?;
    let mode = d.swarm.docker_ok(
        1,
        &["inspect", "-f", "{{.HostConfig.NetworkMode}}", &container],
    )?;
    assert_eq!(mode, "host", "nfsd's container {container}");
    let env = d.swarm.docker_ok(
        1,
        &[
            "service",
            "inspect",
            "-f",
            "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
            NFSD,
        ],
    )?;
    let allow = format!(
        "SWARMHUB_NFSD_ALLOW=127.0.0.1/32,{}/32,{}/32,{}/32",
        d.swarm.ip(1),
        d.swarm.ip(2),
        d.swarm.ip(3)
    );
    assert!(env.contains(&allow), "{env}");

    // ---- notebook-like containers with alice's home on a worker and on the storage node ----
    let t = Instant::now();
    let mount = format!(
        "type=volume,src={VOLUME},dst=/home/jovyan,volume-nocopy,volume-driver=swarmhub-nfs,volume-opt=user=alice"
    );
    for i in [2, 1] {
        let name = format!("nb{i}");
        d.swarm.docker(i, &["rm", "-f", &name]);
        d.swarm.docker_ok(
            i,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                NETWORK,
                "--mount",
                &mount,
                BUSYBOX,
                "sleep",
                "3600",
            ],
        )?;
        let out = d.exec(
            i,
            &name,
            &format!("echo from-node-{i} >> /home/jovyan/hello && cat /home/jovyan/hello"),
        );
        ensure!(out.success(), "the volume on node {i}: {}", out.describe());
        assert!(
            out.stdout.contains(&format!("from-node-{i}")),
            "{}",
            out.stdout
        );
    }
    eprintln!(
        "== volume mounted and written on a worker and on the storage node: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // which addresses nfsd sees for the plugins (measured, printed)
    let ss = Command::new("ip")
        .args([
            "netns",
            "exec",
            "swh-n1",
            "ss",
            "-tn",
            "state",
            "established",
            "( sport = :2049 )",
        ])
        .output()?;
    eprintln!(
        "==== nfsd's NFS peers on the storage node (ss) ====\n{}",
        String::from_utf8_lossy(&ss.stdout)
    );

    // ---- with the guard: nothing from inside the containers reaches nfsd ----------------------
    let t = Instant::now();
    for i in [2, 1] {
        let (connects, mnts) = probe(d, i, &format!("nb{i}"))?;
        let open: Vec<_> = connects.iter().filter(|c| c.2).collect();
        assert!(
            open.is_empty(),
            "node {i}: a notebook reaches nfsd at {open:?}"
        );
        assert!(
            mnts.iter().all(|m| m.1.is_none()),
            "node {i}: bare MNT answered: {mnts:?}"
        );
    }
    eprintln!(
        "== probes with the guard (2 containers x 12 connects + 4 MNTs): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let checks = d.doctor()?;
    for name in [
        "firewall",
        "nfsd-allow",
        "plugin-enabled",
        "nfsd-service",
        "nfsd-api",
    ] {
        let c = check_named(&checks, name);
        assert_eq!(c.1, "ok", "{c:?}");
    }

    // ---- without it: the probes see the hole (so the assertions above can fail) -------------
    d.firewall("remove")?;
    let (connects, mnts) = probe(d, 2, "nb2")?;
    assert!(
        connects.contains(&(d.swarm.ip(1), NFS_PORT, true)),
        "without the chain the worker's container should reach nfsd at the storage node: {connects:?}"
    );
    assert!(
        !connects.iter().any(|c| c.0.contains(NFSD) && c.2),
        "nfsd is not on the overlay: {connects:?}"
    );
    assert_eq!(
        mnts[0].1,
        Some(0),
        "nfsd answers a bare MNT from the worker's (masqueraded) address: {mnts:?}"
    );
    let (_, mnts) = probe(d, 1, "nb1")?;
    assert!(
        mnts.iter().all(|m| m.1.is_none()),
        "on the storage node the container's own address is refused by nfsd's allow list: {mnts:?}"
    );
    let refused = d
        .swarm
        .docker(1, &["service", "logs", "--tail", "20", NFSD]);
    eprintln!(
        "==== nfsd's refusals ====\n{}",
        refused
            .stdout
            .lines()
            .chain(refused.stderr.lines())
            .filter(|l| l.contains("refused"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let checks = d.doctor()?;
    let c = check_named(&checks, "firewall");
    assert_eq!(c.1, "fail", "{c:?}");
    assert!(
        c.2.contains("INPUT does not jump to SWARMHUB-NFSD"),
        "{c:?}"
    );
    assert!(c.3.starts_with("swarmhub plugin rollout"), "{c:?}");

    // ---- the rollout puts it back; a second one adds nothing ----------------------------------
    let rollout = d.swarmhub_ok(&["plugin", "rollout"])?;
    assert_eq!(
        rollout
            .matches("firewall chain SWARMHUB-NFSD created")
            .count(),
        3,
        "{rollout}"
    );
    let rollout = d.swarmhub_ok(&["plugin", "rollout"])?;
    assert_eq!(
        rollout
            .matches("firewall chain SWARMHUB-NFSD unchanged")
            .count(),
        3,
        "{rollout}"
    );
    let (connects, _) = probe(d, 2, "nb2")?;
    assert!(connects.iter().all(|c| !c.2), "{connects:?}");
    let checks = d.doctor()?;
    assert_eq!(check_named(&checks, "firewall").1, "ok");
    for i in [2, 1] {
        d.swarm.docker(i, &["rm", "-f", &format!("nb{i}")]);
    }
    published_port_sources(d)
}

/// Measured, printed, not asserted: which source addresses an nfsd with the old layout (on the
/// overlay, port published in host mode) sees for a plugin-like client in each node's network.
/// Its allow list admits nobody, so it logs every peer it refuses.
fn published_port_sources(d: &Deploy) -> anyhow::Result<()> {
    let name = "netiso-published-nfsd";
    let image = Image::Nfsd.tag();
    // a file system that gives out handles (not the container's overlay)
    let data = Path::new(BASE)
        .join("nodes")
        .join("netiso")
        .join("published-data");
    std::fs::create_dir_all(&data)?;
    let data = format!("type=bind,src={},dst=/data", data.display());
    d.swarm.docker_ok(
        1,
        &[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            name,
            "--network",
            NETWORK,
            "--publish",
            "mode=host,target=2049,published=3049",
            "--mount",
            &data,
            "--constraint",
            "node.labels.swarmhub.storage==true",
            "--cap-add",
            "CAP_SYS_ADMIN",
            "--cap-add",
            "CAP_DAC_READ_SEARCH",
            "--env",
            "SWARMHUB_NFSD_LISTEN=0.0.0.0:2049",
            "--env",
            "SWARMHUB_NFSD_ALLOW=10.255.255.255/32",
            &image,
        ],
    )?;
    let bin = "busybox";
    let mut connected = Vec::new();
    for _ in 0..60 {
        connected.clear();
        // node 1 to its own address, node 2 to node 1's, node 1 to loopback (docker-proxy)
        for (i, to) in [
            (1, d.swarm.ip(1)),
            (2, d.swarm.ip(1)),
            (1, "127.0.0.1".into()),
        ] {
            let out = Command::new("ip")
                .args(["netns", "exec", &format!("swh-n{i}"), bin, "nc", "-w", "2"])
                .args([&to, "3049", "-e", "/bin/true"])
                .output()?;
            connected.push(out.status.success());
        }
        if connected.iter().all(|c| *c) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(1));
    if !connected.iter().all(|c| *c) {
        let ps = d.swarm.docker(1, &["service", "ps", "--no-trunc", name]);
        let logs = d
            .swarm
            .docker(1, &["service", "logs", "--raw", "--tail", "5", name]);
        eprintln!("{}{}{}{}", ps.stdout, ps.stderr, logs.stdout, logs.stderr);
    }
    let logs = d.swarm.docker(1, &["service", "logs", "--raw", name]);
    eprintln!(
        "==== published port (old layout): node 1 and node 2 to {}:3049, node 1 to 127.0.0.1:3049 connected {connected:?}; the peers nfsd saw ====\n{}",
        d.swarm.ip(1),
        logs.stdout
            .lines()
            .chain(logs.stderr.lines())
            .filter(|l| l.contains("refused"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    d.swarm.docker(1, &["service", "rm", name]);
    Ok(())
}
