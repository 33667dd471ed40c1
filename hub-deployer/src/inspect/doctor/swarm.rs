//! Checks `dockerd` through `nfsd-api`, and `images`: the connection, nodes, storage node,
//! network, secrets, the volume plugin on every node, the firewall guard, nfsd's service,
//! allowed clients and API. The `async fn`s read (dockerd, nfsd's HTTP API, and the one-shot
//! firewall job, the only thing doctor starts); the `pub fn check_*` judge what was read and
//! are pure, tested here without Docker.

use std::collections::HashMap;
use std::time::Duration;

use super::{Check, timed};
use bollard::models::Service;

use crate::apply::jobs;
use crate::docker::cluster::{
    Cluster, NodeInfo, Swarm, TaskInfo, fix_for_task_error, storage_node_in,
};
use crate::docker::engine::absent;
use crate::exit::CliError;
use crate::inspect::health::{
    network_status_of, plugin_versions, probe_timeout, service_status_of, storage_nodes,
};
use crate::inspect::probe::{self, ProbeError};
use crate::inspect::status::{NetworkStatus, ServiceHealth, ServiceStatus};
use crate::names;
use crate::names::{PLUGIN_SETTINGS_LABEL, PLUGIN_VERSION_LABEL};
use crate::node::firewall;
use crate::plan::{self, PlanInputs, PlannedSecret, SecretSource};
use crate::settings::Config;

// Reads (I/O): dockerd, the one-shot firewall job, nfsd's API.

pub(super) async fn check_dockerd(cfg: &Config, host: &str) -> (Check, Option<Cluster>) {
    let connect = async {
        let c = Cluster::reach_at(host, &cfg.timeouts).await?;
        c.require_manager().await?;
        Ok::<_, CliError>(c)
    };
    // connect_to and each call are bounded already; this bounds the sum
    let limit = Duration::from_secs(cfg.timeouts.docker_seconds.saturating_mul(2));
    let result = match tokio::time::timeout(limit, connect).await {
        Ok(r) => r,
        Err(_) => Err(CliError::DockerUnreachable {
            host: host.to_string(),
            reason: format!("no answer within {} s", limit.as_secs()),
            hint: "is dockerd overloaded or hung? check `systemctl status docker`".into(),
        }),
    };
    match result {
        Ok(c) => (
            Check::ok("dockerd", format!("dockerd at {host} is a swarm manager")),
            Some(c),
        ),
        Err(e) => (dockerd_failure(host, &e), None),
    }
}

/// The checks [`swarm_checks`] makes, in its order (skipped by name when dockerd is unusable).
pub(super) const SWARM_CHECKS: [&str; 11] = [
    "nodes",
    "storage-node",
    "network",
    "secrets",
    "plugin-enabled",
    "plugin-version",
    "plugin-settings",
    "firewall",
    "nfsd-service",
    "nfsd-allow",
    "nfsd-api",
];

/// Everything from `nodes` to `nfsd-api`: one check per name of [`SWARM_CHECKS`].
pub(super) async fn swarm_checks(c: &Swarm, cfg: &Config) -> Vec<Check> {
    let secs = cfg.timeouts.docker_seconds;
    let mut out = Vec::new();
    let nodes = match timed(secs, "cannot list the nodes", c.nodes()).await {
        Ok(n) => Some(n),
        Err(e) => {
            out.push(Check::fail("nodes", e, "check the manager: docker node ls"));
            None
        }
    };
    let label = &cfg.cluster.storage_node_label;
    if let Some(nodes) = &nodes {
        out.push(check_nodes(nodes));
        out.push(check_storage(nodes, label));
    } else {
        out.push(Check::skip("storage-node", "the nodes could not be listed"));
    }

    let name = &cfg.cluster.network;
    let net = timed(secs, &format!("cannot inspect network {name}"), async {
        absent(c.engine().inspect_network(name, false).await).map_err(|e| e.message().to_string())
    })
    .await;
    out.push(match net {
        Ok(n) => check_network(&network_status_of(name, n.as_ref())),
        Err(e) => Check::fail("network", e, "check the manager: docker network ls"),
    });

    let planned = plan::secrets(cfg, &PlanInputs::default());
    out.push(
        match timed(secs, "cannot list secrets", c.secret_ids()).await {
            Ok(existing) => check_secrets(&planned, &existing),
            Err(e) => Check::fail("secrets", e, "check the manager: docker secret ls"),
        },
    );

    match &nodes {
        Some(nodes) => {
            out.push(check_plugin_enabled(nodes));
            out.push(check_plugin_versions(nodes));
            let wanted = storage_node_in(nodes, label)
                .ok()
                .map(|s| plan::plugin_settings_fingerprint(cfg, &s.addr));
            out.push(check_plugin_settings(nodes, wanted.as_deref()));
        }
        None => out.extend(
            ["plugin-enabled", "plugin-version", "plugin-settings"]
                .map(|n| Check::skip(n, "the nodes could not be listed")),
        ),
    }
    out.push(firewall_check(c, cfg, nodes.as_deref()).await);

    let svc = &cfg.cluster.nfsd_service;
    let nfsd = async {
        let (service, tasks) = service_and_tasks(c, svc).await?;
        Ok::<_, anyhow::Error>(service_status_of("nfsd", svc, service.as_ref(), tasks))
    };
    out.push(
        match timed(secs, &format!("cannot read service {svc}"), nfsd).await {
            Ok(s) => check_nfsd_service(&s),
            Err(e) => Check::fail(
                "nfsd-service",
                e,
                format!("check the manager: docker service ps {svc}"),
            ),
        },
    );

    let spec_env = async {
        let service = c.service(svc).await?;
        Ok::<_, anyhow::Error>(
            service
                .and_then(|s| s.spec)
                .and_then(|s| s.task_template)
                .and_then(|t| t.container_spec)
                .map(|c| c.env.unwrap_or_default()),
        )
    };
    out.push(
        match (
            &nodes,
            timed(secs, &format!("cannot read service {svc}"), spec_env).await,
        ) {
            (Some(nodes), Ok(env)) => check_nfsd_allow(nodes, env.as_deref()),
            (None, _) => Check::skip("nfsd-allow", "the nodes could not be listed"),
            (_, Err(e)) => Check::fail(
                "nfsd-allow",
                e,
                format!("check the manager: docker service inspect {svc}"),
            ),
        },
    );

    let storage: Vec<&NodeInfo> = nodes
        .as_deref()
        .map(|n| storage_nodes(n, label))
        .unwrap_or_default();
    out.push(match storage.as_slice() {
        [one] if !one.addr.is_empty() => {
            let base = probe::nfsd_api_base(&one.addr, cfg.cluster.nfsd_api_port);
            let result = probe::nfsd_health(&base, probe_timeout(cfg)).await;
            check_nfsd_api(one, cfg.cluster.nfsd_api_port, svc, &base, result)
        }
        _ => Check::skip(
            "nfsd-api",
            "no single storage node with an address (see the storage-node check)",
        ),
    });
    out
}

/// A service and its tasks, newest first (no tasks when it does not exist).
pub(super) async fn service_and_tasks(
    c: &Swarm,
    name: &str,
) -> anyhow::Result<(Option<Service>, Vec<TaskInfo>)> {
    let service = c.service(name).await?;
    let tasks = match &service {
        Some(_) => c.tasks(name).await?,
        None => Vec::new(),
    };
    Ok((service, tasks))
}

/// Run the firewall check job on every node and judge what it found.
async fn firewall_check(c: &Swarm, cfg: &Config, nodes: Option<&[NodeInfo]>) -> Check {
    let Some(nodes) = nodes else {
        return Check::skip("firewall", "the nodes could not be listed");
    };
    let spec = plan::firewall_check_service(cfg);
    let runs = jobs::run_global(
        c,
        &spec,
        firewall::RESULT_PREFIX,
        cfg.timeouts.rollout_seconds,
        "listing the firewall guard",
        &crate::progress::Progress::stderr(),
    )
    .await;
    match runs {
        Ok(runs) => {
            let found: Vec<(String, Result<firewall::Report, String>)> = runs
                .iter()
                .map(|r| {
                    let report = r
                        .result
                        .as_deref()
                        .and_then(|j| serde_json::from_str::<firewall::Report>(j).ok())
                        .ok_or_else(|| r.failure());
                    (r.task.node.clone(), report)
                })
                .collect();
            check_firewall(nodes, &found)
        }
        Err(e) => Check::fail(
            "firewall",
            format!(
                "cannot run the job {}: {}",
                names::FIREWALL_CHECK_SERVICE,
                e.chain().join(": ")
            ),
            "check that the swarmhub CLI image is on every node (swarmhub plugin rollout reports the nodes without it), then swarmhub doctor",
        ),
    }
}

/// The pinned images that are on this node (other nodes: the plugin rollout checks).
pub(super) async fn images_check(c: &Swarm, cfg: &Config) -> Check {
    let mut wanted = cfg.images.deployed().to_vec();
    wanted.dedup_by(|a, b| a.1 == b.1);
    let mut results = Vec::new();
    for (key, image) in wanted {
        let r = timed(
            cfg.timeouts.docker_seconds,
            &format!("cannot inspect image {image}"),
            c.has_image(image),
        )
        .await;
        results.push((key.to_string(), image.to_string(), r));
    }
    check_images(&results)
}

// Judgements of what was read (pure: no I/O).

/// The failed `dockerd` check of a connection error (pure).
pub fn dockerd_failure(host: &str, e: &CliError) -> Check {
    match e {
        CliError::DockerUnreachable { reason, hint, .. } => Check::fail(
            "dockerd",
            format!("cannot reach dockerd at {host}: {reason}"),
            hint.clone(),
        ),
        CliError::NotManager { state, .. } if state == "worker" => Check::fail(
            "dockerd",
            format!("dockerd at {host} is a swarm worker, not a manager"),
            "run swarmhub on a manager node (`docker node ls` works there), or promote this one from a manager: docker node promote <this node>",
        ),
        CliError::NotManager { state, .. } => Check::fail(
            "dockerd",
            format!("dockerd at {host} is not part of a swarm ({state})"),
            "create a swarm: docker swarm init --advertise-addr <this host's IP>, or run swarmhub on a manager of the existing swarm",
        ),
        CliError::Usage(m) => Check::fail(
            "dockerd",
            m.clone(),
            "set DOCKER_HOST to unix:///var/run/docker.sock or tcp://<host>:<port>, or unset it",
        ),
        other => Check::fail(
            "dockerd",
            format!("dockerd at {host}: {}", other.chain().join(": ")),
            "check that dockerd runs and answers: docker info",
        ),
    }
}

/// Every node ready and active (pure).
pub fn check_nodes(nodes: &[NodeInfo]) -> Check {
    if nodes.is_empty() {
        return Check::fail(
            "nodes",
            "the swarm lists no nodes",
            "check the manager: docker node ls",
        );
    }
    let bad: Vec<&NodeInfo> = nodes.iter().filter(|n| !n.usable()).collect();
    if bad.is_empty() {
        let managers = nodes.iter().filter(|n| n.role == "manager").count();
        return Check::ok(
            "nodes",
            format!(
                "{} node{} ready and active ({managers} manager{})",
                nodes.len(),
                if nodes.len() == 1 { "" } else { "s" },
                if managers == 1 { "" } else { "s" }
            ),
        );
    }
    let detail = bad
        .iter()
        .map(|n| format!("{} is {}/{}", n.hostname, n.state, n.availability))
        .collect::<Vec<_>>()
        .join(", ");
    let fixes = bad
        .iter()
        .map(|n| {
            if n.state != "ready" {
                format!(
                    "start docker on {h} (systemctl start docker), or if {h} is gone for good: docker node rm {h}",
                    h = n.hostname
                )
            } else {
                format!(
                    "let {h} take tasks again: docker node update --availability active {h}",
                    h = n.hostname
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    Check::fail("nodes", detail, fixes)
}

/// Exactly one node labelled `<label>=true`, ready, with an address (pure): the rule of
/// [`storage_node_in`], and the node must be up.
pub fn check_storage(nodes: &[NodeInfo], label: &str) -> Check {
    if let [one] = storage_nodes(nodes, label).as_slice()
        && one.state != "ready"
    {
        return Check::fail(
            "storage-node",
            format!(
                "storage node {} is {}: nfsd cannot run and no notebook can reach its data",
                one.hostname, one.state
            ),
            format!("start docker on {} (systemctl start docker)", one.hostname),
        );
    }
    match storage_node_in(nodes, label) {
        Ok(one) => Check::ok(
            "storage-node",
            format!("{} ({}) has {label}=true", one.hostname, one.addr),
        ),
        Err(CliError::Precondition { what, fix }) => Check::fail("storage-node", what, fix),
        Err(other) => Check::fail(
            "storage-node",
            other.to_string(),
            "check the manager: docker node ls",
        ),
    }
}

/// The overlay network exists and is attachable (pure).
pub fn check_network(n: &NetworkStatus) -> Check {
    let name = &n.name;
    if !n.found {
        return Check::fail(
            "network",
            format!("network {name} does not exist"),
            "swarmhub run (creates it)",
        );
    }
    let overlay = n.driver.as_deref() == Some("overlay") && n.scope.as_deref() == Some("swarm");
    if !overlay || n.attachable != Some(true) {
        return Check::fail(
            "network",
            format!(
                "network {name} is {} {}{}, not an attachable swarm overlay",
                n.scope.as_deref().unwrap_or("?"),
                n.driver.as_deref().unwrap_or("?"),
                if n.attachable == Some(true) {
                    ""
                } else {
                    " (not attachable)"
                }
            ),
            format!(
                "docker network rm {name} (once nothing uses it), then swarmhub run; or choose another name (cluster.network)"
            ),
        );
    }
    Check::ok("network", format!("{name}: attachable swarm overlay"))
}

/// Every secret of the plan exists (pure). `existing` maps names to ids.
pub fn check_secrets(planned: &[PlannedSecret], existing: &HashMap<String, String>) -> Check {
    let missing: Vec<&PlannedSecret> = planned
        .iter()
        .filter(|s| !existing.contains_key(&s.name))
        .collect();
    if missing.is_empty() {
        return Check::ok(
            "secrets",
            format!(
                "{} present: {}",
                planned.len(),
                planned
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let names = missing
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let flags: Vec<String> = missing
        .iter()
        .filter_map(|s| match &s.source {
            SecretSource::Existing { flag } => Some(format!("{flag} FILE")),
            _ => None,
        })
        .collect();
    let fix = if flags.is_empty() {
        "swarmhub run (creates the missing secrets)".to_string()
    } else {
        format!(
            "swarmhub run {} (creates the missing secrets; the LDAP bind password must be given)",
            flags.join(" ")
        )
    };
    Check::fail("secrets", format!("missing: {names}"), fix)
}

/// The plugin is enabled on every ready node (pure).
pub fn check_plugin_enabled(nodes: &[NodeInfo]) -> Check {
    let ready: Vec<&NodeInfo> = nodes.iter().filter(|n| n.state == "ready").collect();
    let without: Vec<&str> = ready
        .iter()
        .filter(|n| !n.plugin_enabled)
        .map(|n| n.hostname.as_str())
        .collect();
    if without.is_empty() {
        return Check::ok(
            "plugin-enabled",
            format!(
                "{} enabled on {} ready node{}",
                names::PLUGIN_ALIAS,
                ready.len(),
                if ready.len() == 1 { "" } else { "s" }
            ),
        );
    }
    Check::fail(
        "plugin-enabled",
        format!(
            "{} is not enabled on {} (Swarm places no notebook there)",
            names::PLUGIN_ALIAS,
            without.join(", ")
        ),
        "swarmhub plugin rollout",
    )
}

/// Every ready node has the same plugin version (pure). Nodes whose version was never
/// recorded (no `swarmhub.plugin-version` label) count as a version of their own, unless no
/// node has one.
pub fn check_plugin_versions(nodes: &[NodeInfo]) -> Check {
    let versions = plugin_versions(nodes);
    match versions.len() {
        0 => Check::skip("plugin-version", "no node is ready"),
        1 => match versions.keys().next().cloned().flatten() {
            Some(v) => Check::ok("plugin-version", format!("{v} on every ready node")),
            None => Check::ok(
                "plugin-version",
                format!(
                    "no node records a version (node label {PLUGIN_VERSION_LABEL}; `swarmhub plugin rollout` writes it)"
                ),
            ),
        },
        _ => Check::fail(
            "plugin-version",
            format!(
                "the nodes run different plugin versions: {}",
                versions
                    .iter()
                    .map(|(v, hosts)| format!(
                        "{} on {}",
                        v.as_deref().unwrap_or("unrecorded"),
                        hosts.join(", ")
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "swarmhub plugin rollout",
        ),
    }
}

/// Every ready node's plugin was installed with the settings now in effect (pure): nfsd's
/// address and ports, the mount backend, the state and socket paths (`wanted`, the fingerprint
/// [`plan::plugin_settings_fingerprint`] of them; `None` when nfsd's node is not known). A node
/// whose label records other settings mounts with stale ones; a node without the label (a plugin
/// installed by `swarmhub plugin install`, or before the label existed) is only mentioned.
pub fn check_plugin_settings(nodes: &[NodeInfo], wanted: Option<&str>) -> Check {
    let Some(wanted) = wanted else {
        return Check::skip(
            "plugin-settings",
            "nfsd's node is not known (see the storage-node check), and its address is a setting",
        );
    };
    let with_plugin: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.state == "ready" && n.plugin_enabled)
        .collect();
    let host = |n: &&NodeInfo| n.hostname.clone();
    let stale: Vec<String> = with_plugin
        .iter()
        .filter(|n| n.plugin_settings.as_deref().is_some_and(|s| s != wanted))
        .map(host)
        .collect();
    let unrecorded: Vec<String> = with_plugin
        .iter()
        .filter(|n| n.plugin_settings.is_none())
        .map(host)
        .collect();
    if !stale.is_empty() {
        return Check::fail(
            "plugin-settings",
            format!(
                "the plugin on {} was installed with other settings than those in effect (nfsd's address or ports, backend, state or socket path); its mounts use the old ones",
                stale.join(", ")
            ),
            "swarmhub plugin rollout (a node whose notebooks have volumes mounted refuses until they are stopped)",
        );
    }
    let current = with_plugin.len() - unrecorded.len();
    let mut detail = format!(
        "installed with the settings in effect on {current} node{}",
        if current == 1 { "" } else { "s" }
    );
    if !unrecorded.is_empty() {
        detail.push_str(&format!(
            "; not recorded on {} (no {PLUGIN_SETTINGS_LABEL} label; `swarmhub plugin rollout` writes it)",
            unrecorded.join(", ")
        ));
    }
    Check::ok("plugin-settings", detail)
}

/// Every usable node has swarmhub's complete firewall guard of nfsd's ports (pure): `found`
/// holds each node's listing, or why the check job gave none.
pub fn check_firewall(
    nodes: &[NodeInfo],
    found: &[(String, Result<firewall::Report, String>)],
) -> Check {
    let usable: Vec<&NodeInfo> = nodes.iter().filter(|n| n.usable()).collect();
    if usable.is_empty() {
        return Check::skip("firewall", "no node is ready");
    }
    let mut bad = Vec::new();
    let mut unread = Vec::new();
    for n in &usable {
        match found.iter().find(|(node, _)| *node == n.hostname) {
            Some((_, Ok(r))) if r.problems.is_empty() => {}
            Some((_, Ok(r))) => bad.push(format!("{}: {}", n.hostname, r.problems.join(", "))),
            Some((_, Err(e))) => unread.push(format!("{}: {e}", n.hostname)),
            None => unread.push(format!("{}: the check job ran no task there", n.hostname)),
        }
    }
    if !bad.is_empty() {
        return Check::fail(
            "firewall",
            format!(
                "notebooks on {} node(s) may reach nfsd's ports: {}",
                bad.len(),
                bad.join(" | ")
            ),
            format!(
                "swarmhub plugin rollout (installs the chain {} on every node; rules are lost when a node reboots or its iptables rules are flushed)",
                firewall::CHAIN
            ),
        );
    }
    if !unread.is_empty() {
        return Check::fail(
            "firewall",
            format!(
                "the firewall guard could not be listed on {} node(s): {}",
                unread.len(),
                unread.join(" | ")
            ),
            "load the swarmhub CLI image on those nodes (docker load), then swarmhub doctor",
        );
    }
    let mut backends: Vec<&str> = found
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|r| r.backend.as_str()))
        .collect();
    backends.sort_unstable();
    backends.dedup();
    Check::ok(
        "firewall",
        format!(
            "chain {} rejects containers' connections to nfsd's ports on all {} node(s) ({})",
            firewall::CHAIN,
            usable.len(),
            backends.join(", ")
        ),
    )
}

/// `addr` lies in one of the comma-separated CIDRs of `nets` (a bare address is a /32 or /128).
fn allowed(nets: &str, addr: &str) -> bool {
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let bits = |ip: std::net::IpAddr| -> (u128, u32) {
        match ip {
            std::net::IpAddr::V4(v) => (u32::from(v) as u128, 32),
            std::net::IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let (a, width) = bits(ip);
    nets.split(',').map(str::trim).any(|net| {
        let (base, prefix) = net.split_once('/').unwrap_or((net, ""));
        let Ok(base) = base.parse::<std::net::IpAddr>() else {
            return false;
        };
        let (b, w) = bits(base);
        if w != width {
            return false;
        }
        let prefix: u32 = prefix.parse().unwrap_or(w).min(w);
        let shift = width - prefix;
        shift >= width || (a >> shift) == (b >> shift)
    })
}

/// nfsd accepts NFS clients from every node's address, and only from listed networks (pure):
/// `env` is nfsd's service environment (`None`: no service).
pub fn check_nfsd_allow(nodes: &[NodeInfo], env: Option<&[String]>) -> Check {
    let Some(env) = env else {
        return Check::skip(
            "nfsd-allow",
            "nfsd's service does not exist (see nfsd-service)",
        );
    };
    let fix = "swarmhub nfs run (sets nfsd's allowed clients to the swarm's node addresses; nfsd restarts, mounts resume)";
    let Some(nets) = env
        .iter()
        .find_map(|e| e.strip_prefix("SWARMHUB_NFSD_ALLOW="))
        .filter(|n| !n.trim().is_empty())
    else {
        return Check::fail(
            "nfsd-allow",
            "nfsd accepts NFS clients from every address (no SWARMHUB_NFSD_ALLOW in its service)",
            fix,
        );
    };
    let missing: Vec<String> = nodes
        .iter()
        .filter(|n| !n.addr.is_empty() && !allowed(nets, &n.addr))
        .map(|n| format!("{} ({})", n.hostname, n.addr))
        .collect();
    if missing.is_empty() {
        Check::ok(
            "nfsd-allow",
            format!("nfsd accepts NFS clients from {nets}"),
        )
    } else {
        Check::fail(
            "nfsd-allow",
            format!(
                "nfsd refuses the plugin of {} (allowed: {nets}): volumes cannot be mounted there",
                missing.join(", ")
            ),
            fix,
        )
    }
}

/// nfsd's service runs its one task (pure).
pub fn check_nfsd_service(s: &ServiceStatus) -> Check {
    let name = &s.name;
    let running = format!(
        "{}/{} running",
        s.running,
        s.desired.map_or("?".into(), |d| d.to_string())
    );
    match &s.health {
        ServiceHealth::NotDeployed => Check::fail(
            "nfsd-service",
            format!("service {name} does not exist"),
            "swarmhub run",
        ),
        ServiceHealth::Stopped => Check::fail(
            "nfsd-service",
            format!("service {name} is stopped (0 replicas): no volume can be mounted"),
            "swarmhub nfs start",
        ),
        ServiceHealth::Running => {
            let node = s
                .tasks
                .iter()
                .find(|t| t.desired == "running" && t.state == "running")
                .map(|t| t.node.clone())
                .unwrap_or_default();
            Check::ok("nfsd-service", format!("{name}: {running} on {node}"))
        }
        ServiceHealth::Starting { detail } => Check::fail(
            "nfsd-service",
            format!("service {name}: {running}, task {detail}"),
            fix_for_task_error(detail),
        ),
        ServiceHealth::Failing { task, error } => Check::fail(
            "nfsd-service",
            format!("service {name}: {running}, task {task}"),
            fix_for_task_error(error),
        ),
    }
}

/// nfsd answers `GET /v1/health` at the storage node's address (pure).
pub fn check_nfsd_api(
    storage: &NodeInfo,
    port: u16,
    service: &str,
    base: &str,
    result: Result<swarmhub_control_api::Health, ProbeError>,
) -> Check {
    let fix = format!(
        "nfsd's control API must answer at {addr}:{port} from here and from every node: check that nfsd runs (docker service ps {service}), that it listens on port {port}/tcp in the network of {host} (cluster.nfsd_api_port; another process may hold the port) and that no firewall blocks {addr}:{port}/tcp",
        addr = storage.addr,
        host = storage.hostname
    );
    match result {
        Ok(h) if h.status == "ok" => Check::ok(
            "nfsd-api",
            format!(
                "{base}: swarmhub-nfsd {}, {} volume{}, up {}",
                h.version,
                h.volumes,
                if h.volumes == 1 { "" } else { "s" },
                probe::duration_text(h.uptime_seconds)
            ),
        ),
        Ok(h) => Check::fail(
            "nfsd-api",
            format!("{base}: nfsd reports status {:?}", h.status),
            format!("see nfsd's log: docker service logs {service}"),
        ),
        Err(e) => Check::fail("nfsd-api", e.to_string(), fix),
    }
}

/// `(setting, image, present?)` → the `images` check (pure).
pub fn check_images(results: &[(String, String, Result<bool, String>)]) -> Check {
    let missing: Vec<String> = results
        .iter()
        .filter(|(_, _, r)| matches!(r, Ok(false)))
        .map(|(k, img, _)| format!("{img} ({k})"))
        .collect();
    let errors: Vec<&str> = results
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().err().map(String::as_str))
        .collect();
    if missing.is_empty() && errors.is_empty() {
        return Check::ok(
            "images",
            format!(
                "all {} present on this node (other nodes are checked by swarmhub plugin rollout)",
                results.len()
            ),
        );
    }
    let mut detail = Vec::new();
    if !missing.is_empty() {
        detail.push(format!("missing on this node: {}", missing.join(", ")));
    }
    detail.extend(errors.iter().map(|e| e.to_string()));
    Check::fail(
        "images",
        format!(
            "{} (other nodes are checked by swarmhub plugin rollout)",
            detail.join("; ")
        ),
        "build or load them on this node (swarmhub rebuild, docker load < image.tar) or pull them from the registry (docker pull <image>)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::doctor::Outcome;
    use crate::inspect::health::{running_tasks, service_health};

    fn node(host: &str, state: &str, availability: &str) -> NodeInfo {
        NodeInfo {
            id: format!("id-{host}"),
            hostname: host.into(),
            role: "worker".into(),
            availability: availability.into(),
            state: state.into(),
            addr: "10.0.0.2".into(),
            labels: HashMap::new(),
            plugin_enabled: true,
            plugin_version: Some("0.1.0".into()),
            plugin_settings: Some("f1ngerpr1nt0".into()),
            engine_version: "20.10.24".into(),
        }
    }

    fn task(state: &str, desired: &str, error: Option<&str>, message: &str) -> TaskInfo {
        TaskInfo {
            id: "t1".into(),
            node_id: "id-alpha".into(),
            node: "alpha".into(),
            desired: desired.into(),
            state: state.into(),
            message: message.into(),
            error: error.map(String::from),
            since: "2025-11-26T18:00:00Z".into(),
        }
    }

    fn guard(problems: &[&str]) -> Result<firewall::Report, String> {
        Ok(firewall::Report {
            backend: "iptables v1.8.9 (nf_tables)".into(),
            change: crate::steps::Change::Unchanged,
            problems: problems.iter().map(|p| p.to_string()).collect(),
            rules: firewall::rule_specs(&[2049, 8049]),
        })
    }

    #[test]
    fn the_firewall_guard_must_be_complete_on_every_ready_node() {
        let nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
            node("gone", "down", "active"),
        ];
        let c = check_firewall(
            &nodes,
            &[("alpha".into(), guard(&[])), ("beta".into(), guard(&[]))],
        );
        assert_eq!(c.outcome, Outcome::Ok, "{}", c.detail);
        assert!(
            c.detail
                .contains("on all 2 node(s) (iptables v1.8.9 (nf_tables))"),
            "{}",
            c.detail
        );

        let c = check_firewall(
            &nodes,
            &[
                ("alpha".into(), guard(&[])),
                (
                    "beta".into(),
                    guard(&["INPUT does not jump to SWARMHUB-NFSD"]),
                ),
            ],
        );
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail,
            "notebooks on 1 node(s) may reach nfsd's ports: beta: INPUT does not jump to SWARMHUB-NFSD"
        );
        assert!(c.fix.unwrap().starts_with("swarmhub plugin rollout"));

        let c = check_firewall(&nodes, &[("alpha".into(), guard(&[]))]);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail.contains("beta: the check job ran no task there"),
            "{}",
            c.detail
        );
        let c = check_firewall(
            &nodes,
            &[
                ("alpha".into(), guard(&[])),
                ("beta".into(), Err("beta: rejected (No such image)".into())),
            ],
        );
        assert!(c.fix.unwrap().contains("docker load"));
    }

    #[test]
    fn nfsd_must_allow_every_node_and_not_everyone() {
        let mut nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
        ];
        nodes[0].addr = "10.0.0.1".into();
        nodes[1].addr = "10.0.0.2".into();
        let env = |allow: &str| {
            vec![
                "SWARMHUB_NFSD_DATA_DIR=/data".to_string(),
                format!("SWARMHUB_NFSD_ALLOW={allow}"),
            ]
        };
        let ok = check_nfsd_allow(&nodes, Some(&env("10.0.0.1/32,10.0.0.2/32,127.0.0.1/32")));
        assert_eq!(ok.outcome, Outcome::Ok, "{}", ok.detail);
        assert_eq!(
            check_nfsd_allow(&nodes, Some(&env("10.0.0.0/24"))).outcome,
            Outcome::Ok
        );
        let c = check_nfsd_allow(&nodes, Some(&env("10.0.0.1/32,127.0.0.1/32")));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail
                .starts_with("nfsd refuses the plugin of beta (10.0.0.2)"),
            "{}",
            c.detail
        );
        assert!(c.fix.unwrap().starts_with("swarmhub nfs run"));
        let c = check_nfsd_allow(&nodes, Some(&["SWARMHUB_NFSD_DATA_DIR=/data".to_string()]));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("every address"), "{}", c.detail);
        assert_eq!(check_nfsd_allow(&nodes, None).outcome, Outcome::Skip);
        assert!(allowed("fd00::/64", "fd00::5") && !allowed("fd00::/64", "10.0.0.1"));
        assert!(allowed("0.0.0.0/0", "192.168.1.1") && !allowed("10.0.0.1/32", "10.0.0.11"));
    }

    #[test]
    fn nodes_must_be_ready_and_active() {
        let ok = check_nodes(&[node("alpha", "ready", "active")]);
        assert_eq!(ok.outcome, Outcome::Ok, "{ok:?}");
        let c = check_nodes(&[
            node("alpha", "ready", "active"),
            node("beta", "down", "active"),
            node("gamma", "ready", "drain"),
        ]);
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.detail, "beta is down/active, gamma is ready/drain");
        let fix = c.fix.unwrap();
        assert!(
            fix.contains("start docker on beta") && fix.contains("docker node rm beta"),
            "{fix}"
        );
        assert!(
            fix.contains("docker node update --availability active gamma"),
            "{fix}"
        );
        assert_eq!(check_nodes(&[]).outcome, Outcome::Fail);
    }

    #[test]
    fn exactly_one_ready_storage_node() {
        let l = "swarmhub.storage";
        let mut a = node("alpha", "ready", "active");
        let mut b = node("beta", "ready", "active");
        let c = check_storage(&[a.clone(), b.clone()], l);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.fix.unwrap().contains(
            "docker node update --label-add swarmhub.storage=true <node>   (nodes: alpha, beta)"
        ));
        a.labels.insert(l.into(), "true".into());
        let c = check_storage(&[a.clone(), b.clone()], l);
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        assert_eq!(c.detail, "alpha (10.0.0.2) has swarmhub.storage=true");
        b.labels.insert(l.into(), "true".into());
        let c = check_storage(&[a.clone(), b], l);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail.starts_with("2 nodes have the label"),
            "{}",
            c.detail
        );
        assert!(c.fix.unwrap().contains("--label-rm swarmhub.storage"));
        a.state = "down".into();
        let c = check_storage(&[a], l);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.fix.unwrap().contains("start docker on alpha"));
    }

    #[test]
    fn network_must_be_an_attachable_overlay() {
        let mut n = NetworkStatus {
            name: "swarmhub".into(),
            ..Default::default()
        };
        let c = check_network(&n);
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.fix.as_deref(), Some("swarmhub run (creates it)"));
        n.found = true;
        n.driver = Some("overlay".into());
        n.scope = Some("swarm".into());
        n.attachable = Some(false);
        let c = check_network(&n);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("not attachable"), "{}", c.detail);
        n.attachable = Some(true);
        assert_eq!(check_network(&n).outcome, Outcome::Ok);
    }

    #[test]
    fn missing_secrets_name_the_flag() {
        let mut cfg = Config::default();
        let planned = plan::secrets(&cfg, &PlanInputs::default());
        let all: HashMap<String, String> = planned
            .iter()
            .map(|s| (s.name.clone(), "id".into()))
            .collect();
        assert_eq!(check_secrets(&planned, &all).outcome, Outcome::Ok);
        let c = check_secrets(&planned, &HashMap::new());
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.fix.as_deref(),
            Some("swarmhub run (creates the missing secrets)")
        );
        cfg.ldap.bind_dn = Some("cn=reader,dc=example,dc=org".into());
        let planned = plan::secrets(&cfg, &PlanInputs::default());
        let c = check_secrets(&planned, &all);
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.detail, "missing: swarmhub-ldap-password");
        assert!(
            c.fix
                .unwrap()
                .starts_with("swarmhub run --ldap-password-file FILE")
        );
    }

    #[test]
    fn plugin_everywhere_and_one_version() {
        let mut nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
        ];
        assert_eq!(check_plugin_enabled(&nodes).outcome, Outcome::Ok);
        let v = check_plugin_versions(&nodes);
        assert_eq!(
            (v.outcome, v.detail.as_str()),
            (Outcome::Ok, "0.1.0 on every ready node")
        );
        nodes[1].plugin_enabled = false;
        nodes[1].plugin_version = None;
        let c = check_plugin_enabled(&nodes);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("beta"), "{}", c.detail);
        assert_eq!(c.fix.as_deref(), Some("swarmhub plugin rollout"));
        let v = check_plugin_versions(&nodes);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.detail,
            "the nodes run different plugin versions: unrecorded on beta; 0.1.0 on alpha"
        );
        assert_eq!(v.fix.as_deref(), Some("swarmhub plugin rollout"));
        // a down node does not count
        nodes[1].state = "down".into();
        assert_eq!(check_plugin_enabled(&nodes).outcome, Outcome::Ok);
        assert_eq!(check_plugin_versions(&nodes).outcome, Outcome::Ok);
        nodes[0].plugin_version = None;
        assert_eq!(check_plugin_versions(&nodes).outcome, Outcome::Ok);
    }

    #[test]
    fn plugin_settings_must_be_those_in_effect() {
        let mut nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
            node("gamma", "ready", "active"),
        ];
        let c = check_plugin_settings(&nodes, Some("f1ngerpr1nt0"));
        assert_eq!(
            (c.outcome, c.detail.as_str()),
            (
                Outcome::Ok,
                "installed with the settings in effect on 3 nodes"
            )
        );
        // nfsd's node unknown: nothing to compare with
        let c = check_plugin_settings(&nodes, None);
        assert_eq!(c.outcome, Outcome::Skip, "{c:?}");
        // a node without the label is mentioned, not failed
        nodes[2].plugin_settings = None;
        let c = check_plugin_settings(&nodes, Some("f1ngerpr1nt0"));
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        assert!(
            c.detail.contains("on 2 nodes; not recorded on gamma"),
            "{}",
            c.detail
        );
        // settings changed since beta's rollout: failed, with the rollout as the fix
        let c = check_plugin_settings(&nodes, Some("0therpr1nt00"));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail
                .starts_with("the plugin on alpha, beta was installed with other settings"),
            "{}",
            c.detail
        );
        assert!(c.fix.unwrap().starts_with("swarmhub plugin rollout"));
        // a down node or one without the plugin does not count
        nodes[0].state = "down".into();
        nodes[1].plugin_enabled = false;
        let c = check_plugin_settings(&nodes, Some("0therpr1nt00"));
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
    }

    #[test]
    fn nfsd_service_fixes_follow_the_state() {
        let svc = |exists: bool, desired: Option<u64>, tasks: Vec<TaskInfo>| ServiceStatus {
            component: "nfsd".into(),
            name: "swarmhub-nfsd".into(),
            deployed: exists,
            image: None,
            desired,
            running: running_tasks(&tasks),
            health: service_health(exists, desired, &tasks),
            tasks,
        };
        let c = check_nfsd_service(&svc(false, None, vec![]));
        assert_eq!(c.fix.as_deref(), Some("swarmhub run"));
        let c = check_nfsd_service(&svc(true, Some(0), vec![]));
        assert_eq!(c.fix.as_deref(), Some("swarmhub nfs start"));
        let c = check_nfsd_service(&svc(
            true,
            Some(1),
            vec![task("running", "running", None, "started")],
        ));
        assert_eq!(
            (c.outcome, c.detail.as_str()),
            (Outcome::Ok, "swarmhub-nfsd: 1/1 running on alpha")
        );
        let c = check_nfsd_service(&svc(
            true,
            Some(1),
            vec![task(
                "rejected",
                "shutdown",
                Some("No such image: swarmhub/nfsd:0.1.0"),
                "",
            )],
        ));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("No such image"), "{}", c.detail);
        assert!(c.fix.unwrap().contains("rebuild"));
        let c = check_nfsd_service(&svc(
            true,
            Some(1),
            vec![task(
                "pending",
                "running",
                None,
                "no suitable node (scheduling constraints not satisfied on 1 node)",
            )],
        ));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.fix.unwrap().contains("placement constraints"));
    }

    #[test]
    fn nfsd_api_fix_names_address_and_port() {
        let mut n = node("alpha", "ready", "active");
        n.addr = "10.0.0.5".into();
        let e = ProbeError::Unreachable {
            url: "http://10.0.0.5:8049/v1/health".into(),
            cause: "connection refused".into(),
        };
        let c = check_nfsd_api(&n, 8049, "swarmhub-nfsd", "http://10.0.0.5:8049", Err(e));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("connection refused"));
        let fix = c.fix.unwrap();
        assert!(
            fix.contains("10.0.0.5:8049")
                && fix.contains("8049/tcp")
                && fix.contains("firewall")
                && fix.contains("in the network of alpha"),
            "{fix}"
        );
        let h = swarmhub_control_api::Health {
            status: "ok".into(),
            version: "0.1.0".into(),
            volumes: 1,
            nfs_listen: "0.0.0.0:2049".into(),
            uptime_seconds: 42,
        };
        let c = check_nfsd_api(&n, 8049, "swarmhub-nfsd", "http://10.0.0.5:8049", Ok(h));
        assert_eq!(
            c.detail,
            "http://10.0.0.5:8049: swarmhub-nfsd 0.1.0, 1 volume, up 42s"
        );
    }

    #[test]
    fn images_on_this_node() {
        let r = vec![
            (
                "images.nfsd".to_string(),
                "swarmhub/nfsd:0.1.0".to_string(),
                Ok(true),
            ),
            (
                "images.hub".to_string(),
                "swarmhub/hub:0.1.0".to_string(),
                Ok(false),
            ),
        ];
        let c = check_images(&r);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail
                .starts_with("missing on this node: swarmhub/hub:0.1.0 (images.hub)")
        );
        assert!(c.detail.contains("checked by swarmhub plugin rollout"));
        assert_eq!(check_images(&r[..1]).outcome, Outcome::Ok);
    }

    #[test]
    fn dockerd_failures_have_fixes() {
        let e = CliError::DockerUnreachable {
            host: "unix:///x.sock".into(),
            reason: "no socket at /x.sock".into(),
            hint: "is dockerd running? start it (systemctl start docker)".into(),
        };
        let c = dockerd_failure("unix:///x.sock", &e);
        assert_eq!(
            c.detail,
            "cannot reach dockerd at unix:///x.sock: no socket at /x.sock"
        );
        assert!(c.fix.unwrap().contains("systemctl start docker"));
        let e = CliError::NotManager {
            host: "h".into(),
            state: "inactive".into(),
        };
        assert!(
            dockerd_failure("h", &e)
                .fix
                .unwrap()
                .contains("docker swarm init")
        );
        let e = CliError::NotManager {
            host: "h".into(),
            state: "worker".into(),
        };
        assert!(
            dockerd_failure("h", &e)
                .fix
                .unwrap()
                .contains("docker node promote")
        );
    }

    // swarm_checks against the in-memory swarm (crate::inspect::tests::healthy)

    use crate::docker::cluster::Cluster;
    use crate::docker::engine::Engine;
    use crate::docker::fake::Fake;
    use crate::inspect::tests::{NODE, healthy, settings};

    /// The check of that name.
    fn named<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {checks:#?}"))
    }

    /// The outcome of every check, in order.
    fn outcomes(checks: &[Check]) -> Vec<(&str, Outcome)> {
        checks
            .iter()
            .map(|c| (c.name.as_str(), c.outcome))
            .collect()
    }

    /// The checks that failed, with their fixes (every failure has one).
    fn failed(checks: &[Check]) -> Vec<(&str, &str)> {
        checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| {
                let fix = c.fix.as_deref().unwrap_or_else(|| panic!("no fix: {c:?}"));
                assert!(!fix.is_empty(), "{c:?}");
                (c.name.as_str(), fix)
            })
            .collect()
    }

    async fn checked(c: &Cluster<Fake>, cfg: &Config) -> Vec<Check> {
        let checks = swarm_checks(c, cfg).await;
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, SWARM_CHECKS, "one check per name, in order");
        checks
    }

    #[tokio::test]
    async fn a_healthy_swarm_passes_every_check_but_the_unreachable_nfsd_api() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let checks = checked(&c, &cfg).await;
        let mut want: Vec<(&str, Outcome)> = SWARM_CHECKS.map(|n| (n, Outcome::Ok)).to_vec();
        // nothing listens on the fake storage node's API port
        want.last_mut().unwrap().1 = Outcome::Fail;
        assert_eq!(outcomes(&checks), want, "{checks:#?}");
        assert!(
            named(&checks, "storage-node")
                .detail
                .contains("alpha (127.0.0.1)"),
            "{checks:#?}"
        );
        assert!(
            named(&checks, "nfsd-service")
                .detail
                .ends_with("1/1 running on alpha")
        );
        assert!(named(&checks, "nfsd-allow").detail.contains("127.0.0.1"));
        let api = named(&checks, "nfsd-api");
        let port = cfg.cluster.nfsd_api_port.to_string();
        assert!(
            api.detail.contains(&port) && api.fix.as_deref().is_some_and(|f| f.contains(&port)),
            "{api:?}"
        );
        // the only change doctor makes: the firewall job, created and removed again
        let job = names::FIREWALL_CHECK_SERVICE;
        assert_eq!(
            c.engine().changes(),
            [
                format!("create_service {job}"),
                format!("delete_service {job}")
            ]
        );
    }

    #[tokio::test]
    async fn a_swarm_without_its_storage_label_fails_with_the_label_to_add() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let label = cfg.cluster.storage_node_label.clone();
        c.engine().edit_node(NODE, |n| {
            let labels = n.spec.as_mut().unwrap().labels.as_mut().unwrap();
            labels.remove(&label);
        });
        let checks = checked(&c, &cfg).await;
        let storage = named(&checks, "storage-node");
        assert_eq!(storage.outcome, Outcome::Fail, "{storage:?}");
        assert!(
            storage.fix.as_deref().is_some_and(
                |f| f.contains(&format!("docker node update --label-add {label}=true"))
            ),
            "{storage:?}"
        );
        // without a storage node nfsd's API has no address to be asked at
        assert_eq!(named(&checks, "nfsd-api").outcome, Outcome::Skip);
        // the settings the plugin has cannot be judged without nfsd's address
        assert_ne!(named(&checks, "plugin-settings").outcome, Outcome::Ok);
        assert_eq!(named(&checks, "nodes").outcome, Outcome::Ok);
    }

    #[tokio::test]
    async fn a_missing_secret_is_named_with_the_command_that_makes_it() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let id = c.secret_ids().await.unwrap()[names::COOKIE_SECRET].clone();
        c.engine().delete_secret(&id).await.unwrap();
        let checks = checked(&c, &cfg).await;
        let secrets = named(&checks, "secrets");
        assert_eq!(secrets.outcome, Outcome::Fail);
        assert_eq!(secrets.detail, format!("missing: {}", names::COOKIE_SECRET));
        assert_eq!(
            failed(&checks),
            [
                ("secrets", "swarmhub run (creates the missing secrets)"),
                (
                    "nfsd-api",
                    named(&checks, "nfsd-api").fix.as_deref().unwrap()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn nfsd_scaled_to_zero_fails_with_nfs_start() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        crate::apply::scale(&c, &cfg.cluster.nfsd_service, 0)
            .await
            .unwrap();
        let checks = checked(&c, &cfg).await;
        let nfsd = named(&checks, "nfsd-service");
        assert_eq!(nfsd.outcome, Outcome::Fail);
        assert!(nfsd.detail.contains("0 replicas"), "{nfsd:?}");
        assert_eq!(nfsd.fix.as_deref(), Some("swarmhub nfs start"));
        // its spec still allows the node
        assert_eq!(named(&checks, "nfsd-allow").outcome, Outcome::Ok);
    }

    #[tokio::test]
    async fn nfsd_removed_fails_with_run_and_skips_its_allow_list() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        c.engine()
            .delete_service(&cfg.cluster.nfsd_service)
            .await
            .unwrap();
        let checks = checked(&c, &cfg).await;
        let nfsd = named(&checks, "nfsd-service");
        assert_eq!(
            (nfsd.outcome, nfsd.fix.as_deref()),
            (Outcome::Fail, Some("swarmhub run"))
        );
        assert_eq!(named(&checks, "nfsd-allow").outcome, Outcome::Skip);
    }

    #[tokio::test]
    async fn a_disabled_plugin_fails_with_the_rollout() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        c.engine()
            .disable_plugin(names::PLUGIN_ALIAS)
            .await
            .unwrap();
        let checks = checked(&c, &cfg).await;
        let plugin = named(&checks, "plugin-enabled");
        assert_eq!(plugin.outcome, Outcome::Fail);
        assert!(plugin.detail.contains("not enabled on alpha"), "{plugin:?}");
        assert_eq!(plugin.fix.as_deref(), Some("swarmhub plugin rollout"));
    }

    #[tokio::test]
    async fn a_missing_network_and_an_incomplete_firewall_guard_fail_with_their_fixes() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let e = c.engine();
        e.remove_network(&cfg.cluster.network).await.unwrap();
        e.set_task_log(&firewall::result_line(&firewall::Report {
            backend: "iptables v1.8.9 (nf_tables)".into(),
            change: crate::steps::Change::Unchanged,
            problems: vec!["no jump from INPUT".into()],
            rules: Vec::new(),
        }));
        let checks = checked(&c, &cfg).await;
        let net = named(&checks, "network");
        assert_eq!(net.outcome, Outcome::Fail);
        assert_eq!(net.fix.as_deref(), Some("swarmhub run (creates it)"));
        let fw = named(&checks, "firewall");
        assert_eq!(fw.outcome, Outcome::Fail, "{fw:?}");
        assert!(fw.detail.contains("no jump from INPUT"), "{fw:?}");
        assert!(fw.fix.is_some());
    }
}
