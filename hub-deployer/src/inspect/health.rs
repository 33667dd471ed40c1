//! Judgements `status` and `doctor` share: a service's health from its tasks, the storage
//! node, plugin versions per node, the network as found, how long a probe may take, a pinned
//! reference shortened for people.
//! Pure: no I/O; inputs are what the callers read from Docker.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::{NetworkInspect, Service};

use crate::docker::cluster::{NodeInfo, TaskInfo};
use crate::inspect::status::{NetworkStatus, RECENT_TASKS, ServiceHealth, ServiceStatus};
use crate::plan::replicas_of;
use crate::settings::Config;

/// How long an HTTP probe may take: `timeouts.docker_seconds`, at most 5 s.
pub fn probe_timeout(cfg: &Config) -> Duration {
    Duration::from_secs(cfg.timeouts.docker_seconds.clamp(1, 5))
}

/// The nodes labelled `<label>=true`.
pub fn storage_nodes<'a>(nodes: &'a [NodeInfo], label: &str) -> Vec<&'a NodeInfo> {
    nodes
        .iter()
        .filter(|n| n.labels.get(label).map(String::as_str) == Some("true"))
        .collect()
}

/// Plugin version (the rollout's node label, `None` when absent) → host names of the ready
/// nodes that have it. More than one key means the nodes disagree.
pub fn plugin_versions(nodes: &[NodeInfo]) -> BTreeMap<Option<String>, Vec<String>> {
    let mut out: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.state == "ready") {
        out.entry(n.plugin_version.clone())
            .or_default()
            .push(n.hostname.clone());
    }
    out
}

/// A reference with its `sha256` digest cut to 12 hex digits, for people
/// (`r:5000/swarmhub/swarmhub-nfs:0.1.1@sha256:3f15d79c1a2b`); anything else as it is. JSON
/// keeps the whole reference.
pub fn short_reference(reference: &str) -> String {
    match reference.split_once("@sha256:") {
        Some((name, hex)) if hex.len() > 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{name}@sha256:{}", &hex[..12])
        }
        _ => reference.to_string(),
    }
}

/// Judge a service from its desired tasks (replicas; for a global service the tasks Swarm
/// wants running; `None`: it does not exist, or is a job) and its tasks, newest first (as [`Cluster::tasks`](crate::docker::cluster::Cluster::tasks) returns them).
pub fn service_health(exists: bool, desired: Option<u64>, tasks: &[TaskInfo]) -> ServiceHealth {
    if !exists {
        return ServiceHealth::NotDeployed;
    }
    let desired = desired.unwrap_or(1);
    if desired == 0 {
        return ServiceHealth::Stopped;
    }
    if running_tasks(tasks) >= desired {
        return ServiceHealth::Running;
    }
    // Swarm replaces a rejected task with a new one within seconds, so the newest task may be
    // a fresh attempt while the one before it carries the error: look at the last few.
    if let Some(t) = tasks.iter().take(3).find(|t| t.failed()) {
        return ServiceHealth::Failing {
            task: t.describe(),
            error: t.error.clone().unwrap_or_else(|| t.message.clone()),
        };
    }
    let waiting = tasks
        .iter()
        .find(|t| t.desired == "running" && t.state != "running");
    ServiceHealth::Starting {
        detail: waiting.map_or_else(|| "no task yet".to_string(), TaskInfo::describe),
    }
}

/// Tasks that should run and do.
pub fn running_tasks(tasks: &[TaskInfo]) -> u64 {
    tasks
        .iter()
        .filter(|t| t.desired == "running" && t.state == "running")
        .count() as u64
}

/// The image of a service's spec.
pub fn service_image(s: &Service) -> Option<String> {
    s.spec
        .as_ref()?
        .task_template
        .as_ref()?
        .container_spec
        .as_ref()?
        .image
        .clone()
}

/// Assemble a [`ServiceStatus`] (pure).
pub fn service_status_of(
    component: &str,
    name: &str,
    service: Option<&Service>,
    tasks: Vec<TaskInfo>,
) -> ServiceStatus {
    let spec = service.and_then(|s| s.spec.as_ref());
    let global = spec
        .and_then(|s| s.mode.as_ref())
        .is_some_and(|m| m.global.is_some());
    let desired = if global {
        // one task per node Swarm placed it on: those it wants running
        let wanted = tasks.iter().filter(|t| t.desired.is_running()).count();
        Some(u64::try_from(wanted).unwrap_or(u64::MAX))
    } else {
        spec.and_then(replicas_of)
            .map(|r| u64::try_from(r).unwrap_or(0))
    };
    let health = service_health(service.is_some(), desired, &tasks);
    ServiceStatus {
        component: component.to_string(),
        name: name.to_string(),
        deployed: service.is_some(),
        image: service.and_then(service_image),
        desired,
        running: running_tasks(&tasks),
        health,
        tasks: tasks.into_iter().take(RECENT_TASKS).collect(),
    }
}

/// The overlay network `name` as dockerd described it (`None`: not found).
pub fn network_status_of(name: &str, network: Option<&NetworkInspect>) -> NetworkStatus {
    NetworkStatus {
        name: name.to_string(),
        found: network.is_some(),
        id: network.and_then(|n| n.id.clone()),
        driver: network.and_then(|n| n.driver.clone()),
        scope: network.and_then(|n| n.scope.clone()),
        attachable: network.and_then(|n| n.attachable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::status::tests::{node, task};

    #[test]
    fn service_health_from_tasks() {
        assert_eq!(service_health(false, None, &[]), ServiceHealth::NotDeployed);
        assert_eq!(
            service_health(true, Some(0), &[task("running", "shutdown", None)]),
            ServiceHealth::Stopped
        );
        assert_eq!(
            service_health(true, Some(1), &[task("running", "running", None)]),
            ServiceHealth::Running
        );
        // a rejected task behind a fresh attempt is still the story
        let tasks = [
            task("preparing", "running", None),
            task(
                "rejected",
                "shutdown",
                Some("No such image: swarmhub/nfsd:0.1.0"),
            ),
        ];
        let ServiceHealth::Failing { task: t, error } = service_health(true, Some(1), &tasks)
        else {
            panic!("not failing");
        };
        assert_eq!(error, "No such image: swarmhub/nfsd:0.1.0");
        assert_eq!(t, "alpha: rejected (No such image: swarmhub/nfsd:0.1.0)");
        let h = service_health(true, Some(1), &[task("pending", "running", None)]);
        assert!(
            matches!(&h, ServiceHealth::Starting { detail } if detail.contains("no suitable node")),
            "{h:?}"
        );
        assert_eq!(
            service_health(true, Some(1), &[]),
            ServiceHealth::Starting {
                detail: "no task yet".into()
            }
        );
        // JSON shape of the judgement
        let v = serde_json::to_value(service_health(true, Some(1), &tasks)).unwrap();
        assert_eq!(v["state"], "failing");
        assert_eq!(
            serde_json::to_value(ServiceHealth::NotDeployed).unwrap()["state"],
            "not_deployed"
        );
    }

    #[test]
    fn storage_and_versions() {
        let l = "swarmhub.storage";
        let nodes = vec![
            node("alpha", "ready", &[(l, "true")]),
            node("beta", "ready", &[(l, "false")]),
            node("gamma", "down", &[(l, "true")]),
        ];
        let s = storage_nodes(&nodes, l);
        assert_eq!(
            s.iter().map(|n| n.hostname.as_str()).collect::<Vec<_>>(),
            ["alpha", "gamma"]
        );
        let mut nodes = nodes;
        nodes[1].plugin_version = Some("0.2.0".into());
        nodes[2].plugin_version = None; // down: not counted
        let v = plugin_versions(&nodes);
        assert_eq!(v.len(), 2);
        assert_eq!(v[&Some("0.1.0".to_string())], ["alpha"]);
        assert_eq!(v[&Some("0.2.0".to_string())], ["beta"]);
    }

    #[test]
    fn digests_are_shortened_for_people() {
        let digest = "3f15d79c1a2b".to_string() + &"0".repeat(52);
        assert_eq!(
            short_reference(&format!(
                "192.168.213.254:5000/swarmhub/swarmhub-nfs:0.1.1@sha256:{digest}"
            )),
            "192.168.213.254:5000/swarmhub/swarmhub-nfs:0.1.1@sha256:3f15d79c1a2b"
        );
        for same in [
            "swarmhub/nfsd:0.1.0",
            "0.1.0+abc",
            "x@sha256:short",
            "x@sha256:zzzzzzzzzzzzzzzz",
        ] {
            assert_eq!(short_reference(same), same);
        }
    }

    #[test]
    fn network_as_found_or_missing() {
        let n = NetworkInspect {
            id: Some("n1".into()),
            driver: Some("overlay".into()),
            scope: Some("swarm".into()),
            attachable: Some(true),
            ..Default::default()
        };
        let s = network_status_of("swarmhub", Some(&n));
        assert!(s.found);
        assert_eq!(s.id.as_deref(), Some("n1"));
        assert_eq!(s.driver.as_deref(), Some("overlay"));
        assert_eq!(s.scope.as_deref(), Some("swarm"));
        assert_eq!(s.attachable, Some(true));
        assert_eq!(
            network_status_of("swarmhub", None),
            NetworkStatus {
                name: "swarmhub".into(),
                ..Default::default()
            }
        );
    }
}
