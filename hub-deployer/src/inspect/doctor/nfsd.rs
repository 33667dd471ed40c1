//! Checks `nfsd-service`, `nfsd-allow` and `nfsd-api`: nfsd's service runs its one task, its
//! allow list admits every node's address (and not everyone), and its control API answers at
//! the storage node's address. [`nfsd_checks`] reads (nfsd's service and tasks from dockerd,
//! `GET /v1/health` from nfsd's API) and changes nothing; the `check_*` functions judge what
//! it read and are pure.

use super::swarm::service_and_tasks;
use super::{Check, timed};
use crate::docker::cluster::{NodeInfo, Swarm, fix_for_task_error};
use crate::inspect::health::{probe_timeout, service_status_of, storage_nodes};
use crate::inspect::probe::{self, ProbeError};
use crate::inspect::status::{ServiceHealth, ServiceStatus};
use crate::settings::Config;

// Reads (I/O): nfsd's service from dockerd, nfsd's API.

/// `nfsd-service`, `nfsd-allow` and `nfsd-api`, in that order (`nodes`: `None` when they could
/// not be listed).
pub(super) async fn nfsd_checks(c: &Swarm, cfg: &Config, nodes: Option<&[NodeInfo]>) -> Vec<Check> {
    let secs = cfg.timeouts.docker_seconds;
    let label = &cfg.cluster.storage_node_label;
    let mut out = Vec::new();
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
            nodes,
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

    let storage: Vec<&NodeInfo> = nodes.map(|n| storage_nodes(n, label)).unwrap_or_default();
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

// Judgements of what was read (pure: no I/O).

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::cluster::TaskInfo;
    use crate::inspect::doctor::Outcome;
    use crate::inspect::doctor::swarm::tests::node;
    use crate::inspect::health::{running_tasks, service_health};

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
}
