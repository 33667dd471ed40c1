//! A real three-node Docker Swarm on this host (tests/src/swarm.rs): membership (three Ready,
//! one manager), an attachable overlay network spanning the nodes (a dnsrr service spread one
//! task per node, reached from node 2 over the overlay by `tasks.<service>`), a `mode=host`
//! published port reached from the host at node 1's IP, the `swarmhub-nfs` managed plugin
//! installed and enabled on every node and visible in the manager's node descriptions, and a
//! worker's dockerd crash (Down, its replica rescheduled, rejoin after restart).
//!
//! Timings (bring-up, Down detection, rescheduling, rejoin) and RSS are printed, never asserted.
//! Needs root, docker.io, iproute2, util-linux, fuse3 (/dev/fuse) and busybox-static; fails
//! (never skips) without them. One test: the swarm lock allows one swarm per host at a time.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use swarmhub_tests::docker;
use swarmhub_tests::swarm::{BASE, HOST_IP, Swarm, build_plugin_dir, wait_until};

const IMAGE: &str = docker::BUSYBOX_IMAGE;
const PLUGIN: &str = "swarmhub-nfs";
const NET: &str = "swh-test-net";
/// Serves the node's hostname (the task's hostname is set to it) on port 8080.
const HTTPD: &str = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www";

/// Waits until `service` has exactly `replicas` running tasks; returns their nodes.
fn wait_running(swarm: &Swarm, service: &str, replicas: usize, limit: Duration) -> Vec<String> {
    let (nodes, took) = wait_until(
        &format!("{replicas} running tasks of service {service}"),
        limit,
        || {
            let tasks = swarm.running_tasks(service)?;
            let running: Vec<String> = tasks
                .iter()
                .filter(|(_, s)| s.starts_with("Running"))
                .map(|(n, _)| n.clone())
                .collect();
            if running.len() == replicas && tasks.len() == replicas {
                Ok(running)
            } else {
                Err(format!("{tasks:?}"))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "service {service}: {replicas} tasks running after {:.1}s on {nodes:?}",
        took.as_secs_f64()
    );
    nodes
}

fn http_get(addr: &str) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &addr.parse().map_err(|e| format!("{addr}: {e}"))?,
        Duration::from_secs(3),
    )
    .map_err(|e| format!("connecting to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        .map_err(|e| format!("writing to {addr}: {e}"))?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .map_err(|e| format!("reading from {addr}: {e}"))?;
    Ok(resp)
}

/// POST to a plugin socket (as dockerd does); returns the raw response.
fn plugin_call(socket: &Path, method: &str) -> Result<String, String> {
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "POST {method} HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    Ok(resp)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[test]
fn three_node_swarm() {
    let t_test = Instant::now();

    let plugin_dir = Path::new(BASE).join("plugin");
    let mut swarm = Swarm::start(3).unwrap_or_else(|e| panic!("bringing up the swarm: {e:#}"));
    eprintln!(
        "swarm of {} nodes up (3 dockerds, init, 2 joins, all Ready) in {:.1}s",
        swarm.len(),
        secs(swarm.bring_up)
    );
    for i in 1..=swarm.len() {
        eprintln!(
            "  node {i}: {} {} daemon RSS {:.0} MiB ({:?})",
            swarm.hostname(i),
            swarm.ip(i),
            mib(swarm.daemon_rss_kib(i)),
            swarm.daemon_processes(i)
        );
    }
    let rss0: u64 = (1..=swarm.len()).map(|i| swarm.daemon_rss_kib(i)).sum();
    eprintln!(
        "  idle swarm: {:.0} MiB RSS for all node daemons",
        mib(rss0)
    );

    // --- membership -------------------------------------------------------------------------
    let states = swarm.node_states().expect("docker node ls");
    let hosts: BTreeSet<String> = states.iter().map(|s| s.hostname.clone()).collect();
    let want: BTreeSet<String> = (1..=3).map(|i| swarm.hostname(i)).collect();
    assert_eq!(hosts, want, "node hostnames: {states:?}");
    assert!(
        states
            .iter()
            .all(|s| s.status == "Ready" && s.availability == "Active"),
        "all nodes Ready and Active: {states:?}"
    );
    let managers: Vec<_> = states
        .iter()
        .filter(|s| !s.manager_status.is_empty())
        .collect();
    assert_eq!(managers.len(), 1, "exactly one manager: {states:?}");
    assert_eq!(managers[0].hostname, swarm.hostname(1), "node 1 manages");
    assert_eq!(managers[0].manager_status, "Leader", "{states:?}");
    for i in 2..=3 {
        assert_eq!(
            swarm
                .docker_ok(
                    i,
                    &[
                        "info",
                        "--format",
                        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"
                    ]
                )
                .unwrap(),
            "active false",
            "node {i} is a worker"
        );
    }

    // the test image: a busybox-static root file system imported into every node
    {
        let t_img = Instant::now();
        swarm
            .load_busybox(IMAGE)
            .unwrap_or_else(|e| panic!("importing {IMAGE} into the nodes: {e:#}"));
        eprintln!(
            "image {IMAGE} loaded into 3 nodes in {:.1}s",
            secs(t_img.elapsed())
        );
    }

    // --- the managed plugin on every node ----------------------------------------------------
    let took = build_plugin_dir(&plugin_dir).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("plugin directory built in {:.1}s", secs(took));
    for i in 1..=3 {
        // the plugin reads nfsd's token at start; no nfsd runs here, any token will do
        std::fs::write(
            swarm.plugin_state_dir(i).join("nfsd-token"),
            "not-a-real-token\n",
        )
        .unwrap();
    }
    let enable = swarm
        .install_plugin(
            PLUGIN,
            &plugin_dir,
            &[
                "SWARMHUB_NFS_BACKEND=fuse".to_string(),
                format!("SWARMHUB_NFS_SERVER={HOST_IP}"),
                "RUST_LOG=info".into(),
            ],
        )
        .unwrap_or_else(|e| panic!("installing plugin {PLUGIN} on every node: {e:#}"));
    eprintln!(
        "plugin {PLUGIN} created and enabled on 3 nodes; enable took {:?}",
        enable
            .iter()
            .map(|d| format!("{:.1}s", secs(*d)))
            .collect::<Vec<_>>()
    );
    for i in 1..=3 {
        let enabled = swarm
            .docker_ok(i, &["plugin", "inspect", "-f", "{{.Enabled}}", PLUGIN])
            .unwrap();
        assert_eq!(enabled, "true", "plugin {PLUGIN} enabled on node {i}");
        let socket = swarm.plugin_socket(i, PLUGIN).unwrap();
        let (resp, _) = wait_until(
            &format!("plugin {PLUGIN} on node {i} answering Plugin.Activate"),
            Duration::from_secs(10),
            || plugin_call(&socket, "/Plugin.Activate"),
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(
            resp.starts_with("HTTP/1.1 200") && resp.contains("VolumeDriver"),
            "node {i}: Plugin.Activate: {resp}"
        );
    }
    let (_, took) = wait_until(
        "the manager to list volume plugin swarmhub-nfs in every node's Description.Engine.Plugins",
        Duration::from_secs(90),
        || {
            let mut missing = Vec::new();
            for i in 1..=3 {
                let json = swarm
                    .docker_ok(
                        1,
                        &[
                            "node",
                            "inspect",
                            "--format",
                            "{{json .Description.Engine.Plugins}}",
                            &swarm.hostname(i),
                        ],
                    )
                    .map_err(|e| format!("{e:#}"))?;
                let plugins: Vec<serde_json::Value> =
                    serde_json::from_str(&json).map_err(|e| format!("{json}: {e}"))?;
                let found = plugins.iter().any(|p| {
                    p["Type"] == "Volume"
                        && p["Name"]
                            .as_str()
                            .is_some_and(|n| n == PLUGIN || n.starts_with(&format!("{PLUGIN}:")))
                });
                if !found {
                    missing.push(format!("{}: {json}", swarm.hostname(i)));
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(missing.join("; "))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "manager lists {PLUGIN} in all node descriptions {:.1}s after the last enable",
        secs(took)
    );

    // --- overlay network: one task per node, node 2 reaches them all by tasks.web ---------------
    swarm
        .docker_ok(
            1,
            &["network", "create", "-d", "overlay", "--attachable", NET],
        )
        .unwrap();
    swarm
        .docker_ok(
            1,
            &[
                "service",
                "create",
                "--detach",
                "--no-resolve-image",
                "--name",
                "web",
                "--replicas",
                "3",
                "--replicas-max-per-node",
                "1",
                "--endpoint-mode",
                "dnsrr",
                "--network",
                NET,
                "--hostname",
                "{{.Node.Hostname}}",
                IMAGE,
                "sh",
                "-c",
                HTTPD,
            ],
        )
        .unwrap();
    let nodes = wait_running(&swarm, "web", 3, Duration::from_secs(120));
    let spread: BTreeSet<String> = nodes.into_iter().collect();
    assert_eq!(
        spread, want,
        "one web task per node (max_replicas_per_node=1)"
    );

    let c2 = swarm
        .docker_ok(
            2,
            &[
                "ps",
                "-q",
                "--filter",
                "label=com.docker.swarm.service.name=web",
            ],
        )
        .unwrap();
    assert_eq!(c2.lines().count(), 1, "one web container on node 2: {c2:?}");
    // busybox-static's wget segfaults in these bare images (static glibc, no NSS): resolve with
    // nslookup (busybox's own resolver, through Docker's embedded DNS) and talk HTTP with nc
    let probe = "for ip in $(nslookup tasks.web | sed -n 's/^Address: *\\([0-9.]*\\)$/\\1/p'); do \
                 echo \"$ip $(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $ip 8080 | tail -n 1)\"; done";
    let (answers, took) = wait_until(
        "node 2's web task to reach all three web tasks over the overlay via tasks.web",
        Duration::from_secs(60),
        || {
            let out = swarm.docker_timeout(
                2,
                &["exec", &c2, "sh", "-c", probe],
                Duration::from_secs(30),
            );
            let rows: Vec<(String, String)> = out
                .stdout
                .lines()
                .filter_map(|l| {
                    let (ip, host) = l.split_once(' ')?;
                    Some((ip.to_string(), host.trim().to_string()))
                })
                .collect();
            let got: BTreeSet<String> = rows.iter().map(|(_, h)| h.clone()).collect();
            if out.success() && rows.len() == 3 && got == want {
                Ok(rows)
            } else {
                Err(out.describe())
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "overlay: node 2 reached every task by tasks.web after {:.1}s: {answers:?}",
        secs(took)
    );
    let ips: BTreeSet<&str> = answers.iter().map(|(ip, _)| ip.as_str()).collect();
    assert_eq!(ips.len(), 3, "tasks.web names three task IPs: {answers:?}");
    assert!(
        answers.iter().any(|(_, h)| h == &swarm.hostname(3)),
        "node 2 reached node 3's task over the overlay: {answers:?}"
    );

    // --- mode=host published port on node 1, reached from the host --------------------------
    swarm.label_node(1, "swarmhub.role", "front").unwrap();
    swarm
        .docker_ok(
            1,
            &[
                "service",
                "create",
                "--detach",
                "--no-resolve-image",
                "--name",
                "front",
                "--constraint",
                "node.labels.swarmhub.role==front",
                "--publish",
                "mode=host,target=8080,published=18080",
                "--hostname",
                "{{.Node.Hostname}}",
                IMAGE,
                "sh",
                "-c",
                HTTPD,
            ],
        )
        .unwrap();
    let nodes = wait_running(&swarm, "front", 1, Duration::from_secs(60));
    assert_eq!(nodes, [swarm.hostname(1)], "the labelled node runs front");
    let addr = format!("{}:18080", swarm.ip(1));
    let (resp, took) = wait_until(
        &format!("the host to reach front at {addr}"),
        Duration::from_secs(30),
        || http_get(&addr),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        resp.starts_with("HTTP/1.") && resp.contains(&swarm.hostname(1)),
        "GET http://{addr}/: {resp}"
    );
    eprintln!(
        "host reached node 1's published port after {:.1}s",
        secs(took)
    );

    // --- a worker's dockerd crashes: Down, replica rescheduled, rejoin ---------------------------
    swarm
        .docker_ok(
            1,
            &[
                "service",
                "create",
                "--detach",
                "--no-resolve-image",
                "--name",
                "solo",
                "--constraint",
                "node.role==worker",
                IMAGE,
                "sleep",
                "100000",
            ],
        )
        .unwrap();
    let nodes = wait_running(&swarm, "solo", 1, Duration::from_secs(60));
    let victim = (2..=3)
        .find(|i| nodes[0] == swarm.hostname(*i))
        .unwrap_or_else(|| panic!("solo runs on a worker: {nodes:?}"));
    let other = 5 - victim;
    let rss_before: u64 = (1..=3).map(|i| swarm.daemon_rss_kib(i)).sum();
    let total_before: u64 = (1..=3).map(|i| swarm.total_rss_kib(i)).sum();
    eprintln!(
        "with 5 tasks and the plugin: {:.0} MiB RSS node daemons, {:.0} MiB with plugins and containers",
        mib(rss_before),
        mib(total_before)
    );

    let t_kill = Instant::now();
    swarm.kill_dockerd(victim).unwrap();
    let down = swarm
        .wait_node_status(victim, "Down", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "dockerd of node {victim} SIGKILLed: manager says Down after {:.1}s",
        secs(down)
    );
    let (_, _) = wait_until(
        &format!("service solo rescheduled from node {victim} to node {other}"),
        Duration::from_secs(120),
        || {
            let tasks = swarm.running_tasks("solo")?;
            if tasks
                .iter()
                .any(|(n, s)| n == &swarm.hostname(other) && s.starts_with("Running"))
            {
                Ok(())
            } else {
                Err(format!("{tasks:?}"))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "solo's replica running on node {other} {:.1}s after the kill",
        secs(t_kill.elapsed())
    );

    let answered = swarm
        .start_dockerd(victim)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let ready = swarm
        .wait_node_status(victim, "Ready", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "node {victim}'s dockerd restarted: answers after {:.1}s, Ready again {:.1}s later",
        secs(answered),
        secs(ready)
    );
    let states = swarm.node_states().unwrap();
    assert_eq!(
        states.len(),
        3,
        "the restarted node rejoined as itself: {states:?}"
    );
    assert_eq!(
        swarm
            .docker_ok(victim, &["plugin", "inspect", "-f", "{{.Enabled}}", PLUGIN])
            .unwrap(),
        "true",
        "plugin {PLUGIN} enabled again after node {victim}'s dockerd restart"
    );
    swarm.wait_all_ready(Duration::from_secs(60)).unwrap();

    drop(swarm);
    let leftovers = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let leftovers = String::from_utf8_lossy(&leftovers.stdout);
    assert!(
        !leftovers.lines().any(|l| l.starts_with("swh-")),
        "teardown removed the node namespaces: {leftovers}"
    );
    eprintln!("whole test: {:.1}s", secs(t_test.elapsed()));
}
