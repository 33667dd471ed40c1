//! `swarmhub status`: what the swarm runs right now, read through the manager's dockerd and
//! nfsd's health endpoint, for people ([`Status::text`]) and scripts (`--output json`, the
//! serialized [`Status`]). Read-only.
//!
//! Status reports a missing or broken part of the stack instead of failing: a service that is
//! not deployed, an nfsd that does not answer, a Docker call that fails (listed under
//! `errors`). It fails only when dockerd cannot be reached or is not a swarm manager, which
//! [`Cluster::connect`](crate::docker::cluster::Cluster::connect) reports before [`gather()`] runs.
//!
//! This file is the model only: the types and their serde (the JSON document below), no I/O.
//! `gather.rs` reads it from dockerd and nfsd, `judge.rs` decides what the status-only parts
//! mean (pure), `text.rs` renders it for people (pure); the judgements `doctor` shares live in
//! [`crate::inspect::health`] (pure).
//!
//! # The JSON document
//!
//! | key | what |
//! |---|---|
//! | `docker_host` | the dockerd asked (`unix:///var/run/docker.sock`, `tcp://...`) |
//! | `swarm` | [`SwarmSummary`]: this node, node/manager/ready counts, the storage node |
//! | `nodes[]` | [`NodeStatus`]: host name, role, state, availability, address, `storage`, `plugin_enabled`, `plugin_version`, `plugin_settings`, `plugin_current` |
//! | `plugin` | [`DeployedPlugin`]: the plugin the settings in effect deploy (`source`, the `version` and `settings` a node on it records) |
//! | `network` | [`NetworkStatus`]: the overlay network (`found`, `driver`, `scope`, `attachable`) |
//! | `services[]` | [`ServiceStatus`] of nfsd, the hub and the hub's Docker gate (component `docker-gate`, global: `desired` counts the tasks Swarm wants running, one per manager): `deployed`, `image`, `desired`, `running`, `health.state` (`not_deployed`, `stopped`, `running`, `starting`, `failing`), recent `tasks[]` |
//! | `notebooks[]` | [`NotebookStatus`]: services SwarmSpawner made (label `swarmhub.component=notebook`) |
//! | `other_services[]` | names of services attached to the network that are neither swarmhub's nor notebooks |
//! | `nfsd_api` | [`NfsdApiStatus`]: `url`, `reachable`, nfsd's `health` document or the `error` |
//! | `volumes` | [`VolumesStatus`]: the `swarmhub-nfs` volumes this dockerd knows, or the `error` |
//! | `mounts` | [`MountsStatus`]: whether the swarmhub mounts of running containers were `checked` (only while a notebook runs: it takes a one-shot job on every node), every `broken` one (dead or silent, as the container sees it) with the `fix`, `nodes[]` as each node's job found them, or the `error` |
//! | `errors[]` | Docker calls that failed; the sections they feed are empty |

mod gather;
mod judge;
mod text;

use std::collections::BTreeMap;

use serde::Serialize;
use swarmhub_control_api::Health;

use crate::docker::cluster::TaskInfo;
use crate::inspect::mounts::{BrokenMount, NodeMounts};

pub use gather::gather;
// kept at their old paths for callers of `status::...`
pub use crate::inspect::health::{
    plugin_versions, probe_timeout, running_tasks, service_health, service_image,
    service_status_of, storage_nodes,
};
pub use judge::{classify_services, nfsd_api_status};
pub use text::table;

/// Tasks shown per service (newest first).
pub const RECENT_TASKS: usize = 5;

/// Everything `swarmhub status` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The dockerd asked.
    pub docker_host: String,
    /// The swarm as a whole.
    pub swarm: SwarmSummary,
    /// Every node, sorted by host name.
    pub nodes: Vec<NodeStatus>,
    /// The plugin the settings in effect deploy, which each node's is compared with.
    pub plugin: DeployedPlugin,
    /// The overlay network of the stack.
    pub network: NetworkStatus,
    /// nfsd, then the hub.
    pub services: Vec<ServiceStatus>,
    /// Notebook services, sorted by name.
    pub notebooks: Vec<NotebookStatus>,
    /// Services on the network that are neither swarmhub's nor notebooks (debugging
    /// containers, leftovers), sorted.
    pub other_services: Vec<String>,
    /// nfsd's control API as seen from here.
    pub nfsd_api: NfsdApiStatus,
    /// `swarmhub-nfs` volumes this dockerd knows.
    pub volumes: VolumesStatus,
    /// The swarmhub mounts of running containers, as they see them.
    pub mounts: MountsStatus,
    /// Docker calls that failed (the sections they feed are empty).
    pub errors: Vec<String>,
}

/// The swarm as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SwarmSummary {
    /// Swarm node id of the node this dockerd runs on.
    pub this_node_id: String,
    /// Its host name.
    pub this_node: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Number of managers.
    pub managers: usize,
    /// Number of nodes that are ready.
    pub ready: usize,
    /// Host name of the storage node when exactly one node has the label.
    pub storage_node: Option<String>,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// Swarm node id.
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `ready`, `down`, `disconnected`, `unknown`.
    pub state: String,
    /// `active`, `pause`, `drain`.
    pub availability: String,
    /// Address the other nodes reach it at.
    pub addr: String,
    /// The node this dockerd runs on.
    pub this_node: bool,
    /// Labelled `<cluster.storage_node_label>=true`.
    pub storage: bool,
    /// The node's engine reports the `swarmhub-nfs` plugin enabled.
    pub plugin_enabled: bool,
    /// The plugin version the last rollout installed there (node label), if any: with a
    /// registry the plugin's pinned reference (`<registry>/swarmhub/swarmhub-nfs:0.1.1@sha256:…`),
    /// without one `<release>+<hash of the bundle>`.
    pub plugin_version: Option<String>,
    /// The fingerprint of the settings the last rollout installed it with (node label), if any.
    pub plugin_settings: Option<String>,
    /// Whether the node runs the deployed plugin ([`Status::plugin`]): enabled, its recorded
    /// version that of the deployment (known with a registry only), its recorded settings those
    /// in effect. `None` when nothing could be compared (no registry and no settings recorded,
    /// or nfsd's node unknown).
    pub plugin_current: Option<bool>,
    /// dockerd's version.
    pub engine_version: String,
}

/// The plugin the settings in effect deploy: what a node that runs it records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeployedPlugin {
    /// Where the nodes get it: with a registry `images.plugin` pinned by digest, without one
    /// the bundle in `images.cli`.
    pub source: String,
    /// The version a node on it records (label `swarmhub.plugin-version`): the pinned
    /// reference with a registry; `None` without one (a bundle's version is known on the nodes
    /// only).
    pub version: Option<String>,
    /// The fingerprint of the settings it is installed with (label `swarmhub.plugin-settings`,
    /// covering nfsd's address and ports, the mount backend, the paths and, with a registry,
    /// the pinned plugin and notebook images); `None` when nfsd's node is not known.
    pub settings: Option<String>,
}

/// The overlay network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkStatus {
    /// `cluster.network`.
    pub name: String,
    /// It exists.
    pub found: bool,
    /// Its id (services name it by id in their specs).
    pub id: Option<String>,
    /// `overlay` when right.
    pub driver: Option<String>,
    /// `swarm` when right.
    pub scope: Option<String>,
    /// SwarmSpawner needs it attachable.
    pub attachable: Option<bool>,
}

/// How a replicated service is doing, judged from its spec and tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServiceHealth {
    /// The service does not exist.
    NotDeployed,
    /// Scaled to 0 replicas.
    Stopped,
    /// As many tasks run as desired.
    Running,
    /// Fewer run than desired and no recent task failed: being scheduled, pulled or started.
    Starting {
        /// The newest waiting task, e.g. `vm: pending (no suitable node ...)`.
        detail: String,
    },
    /// Fewer run than desired and a recent task failed or was rejected.
    Failing {
        /// That task, described (`node: state (error)`).
        task: String,
        /// Its error (or Swarm's message when there is no error).
        error: String,
    },
}

impl ServiceHealth {
    /// `running`, `failing: vm: rejected (No such image: ...)`, ...
    pub fn text(&self) -> String {
        match self {
            ServiceHealth::NotDeployed => "not deployed".into(),
            ServiceHealth::Stopped => "stopped".into(),
            ServiceHealth::Running => "running".into(),
            ServiceHealth::Starting { detail } => format!("starting: {detail}"),
            ServiceHealth::Failing { task, .. } => format!("failing: {task}"),
        }
    }
}

/// nfsd, the hub or the hub's Docker gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    /// `nfsd`, `hub` or `docker-gate`.
    pub component: String,
    /// Service name (`cluster.nfsd_service`, `cluster.hub_service`, `<hub_service>-docker-gate`).
    pub name: String,
    /// The service exists.
    pub deployed: bool,
    /// Image of its spec.
    pub image: Option<String>,
    /// Desired replicas.
    pub desired: Option<u64>,
    /// Tasks running now.
    pub running: u64,
    /// The judgement of [`service_health`].
    pub health: ServiceHealth,
    /// Up to [`RECENT_TASKS`] tasks, newest first.
    pub tasks: Vec<TaskInfo>,
}

/// A notebook service made by SwarmSpawner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotebookStatus {
    /// Service name (`jupyter-<user>` by default).
    pub name: String,
    /// Label `swarmhub.user`.
    pub user: Option<String>,
    /// Label `swarmhub.role` (`student`, `teacher`).
    pub role: Option<String>,
    /// Image of its spec.
    pub image: Option<String>,
    /// Tasks running now.
    pub running: u64,
    /// Desired tasks.
    pub desired: u64,
    /// Host name of the node of its newest task.
    pub node: Option<String>,
    /// State of its newest task (`running`, `pending`, `rejected`, ...).
    pub state: Option<String>,
    /// Error of its newest task, e.g. `VolumeDriver.Mount: ...`.
    pub error: Option<String>,
}

/// nfsd's control API, probed at the storage node's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NfsdApiStatus {
    /// `http://<storage node addr>:<cluster.nfsd_api_port>`; `None` without a single storage node.
    pub url: Option<String>,
    /// `GET /v1/health` answered.
    pub reachable: bool,
    /// nfsd's answer (`status`, `version`, `volumes`, `nfs_listen`, `uptime_seconds`).
    pub health: Option<Health>,
    /// Why it was not reached.
    pub error: Option<String>,
}

/// The `swarmhub-nfs` volumes of this dockerd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumesStatus {
    /// `swarmhub-nfs`.
    pub driver: String,
    /// The list could be read (`volumes` is meaningful).
    pub listed: bool,
    /// Sorted by name.
    pub volumes: Vec<VolumeEntry>,
    /// Docker's warnings (e.g. a plugin that cannot be reached).
    pub warnings: Vec<String>,
    /// Why the list could not be read (e.g. the plugin is disabled).
    pub error: Option<String>,
}

/// The swarmhub mounts of the running containers on every node, as each container sees them
/// (read by the one-shot job `swarmhub-mount-check`, see [`crate::inspect::mounts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MountsStatus {
    /// Whether they were checked (only while a notebook runs).
    pub checked: bool,
    /// Every dead or silent mount.
    pub broken: Vec<BrokenMount>,
    /// What to do about them (when there are any).
    pub fix: Option<String>,
    /// What each node's job found.
    pub nodes: Vec<NodeMounts>,
    /// Why they could not be checked.
    pub error: Option<String>,
}

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeEntry {
    /// Volume name (`home-alice`, `exchange-alice`).
    pub name: String,
    /// The options it was created with (`user`, `share`, `size`, `readonly`).
    pub options: BTreeMap<String, String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::judge::{nfsd_api_status, node_status};
    use super::*;
    use crate::docker::cluster::NodeInfo;
    use crate::inspect::probe::ProbeError;
    use crate::names::PLUGIN_ALIAS;
    use bollard::models::{
        Service, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec,
        TaskSpecContainerSpec,
    };

    pub(crate) fn node(host: &str, state: &str, labels: &[(&str, &str)]) -> NodeInfo {
        NodeInfo {
            id: format!("id-{host}"),
            hostname: host.into(),
            role: "worker".into(),
            availability: "active".into(),
            state: state.into(),
            addr: format!("10.0.0.{}", host.len()),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            plugin_enabled: true,
            plugin_version: Some("0.1.0".into()),
            plugin_settings: Some("f1ngerpr1nt0".into()),
            engine_version: "20.10.24".into(),
        }
    }

    pub(crate) fn task(state: &str, desired: &str, error: Option<&str>) -> TaskInfo {
        TaskInfo {
            id: format!("t-{state}"),
            node_id: "id-alpha".into(),
            node: "alpha".into(),
            desired: desired.into(),
            state: state.into(),
            message: if state == "pending" {
                "no suitable node (scheduling constraints not satisfied on 1 node)".into()
            } else {
                state.into()
            },
            error: error.map(String::from),
            since: "2025-11-26T18:00:00Z".into(),
        }
    }

    /// A service `name` of one replica running `image`.
    pub(crate) fn replicated(name: &str, image: &str) -> Service {
        Service {
            spec: Some(ServiceSpec {
                name: Some(name.into()),
                task_template: Some(TaskSpec {
                    container_spec: Some(TaskSpecContainerSpec {
                        image: Some(image.into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                mode: Some(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(crate) fn example() -> Status {
        let nfsd_spec = replicated("swarmhub-nfsd", "swarmhub/nfsd:0.1.0");
        let mut alpha = node("alpha", "ready", &[("swarmhub.storage", "true")]);
        alpha.role = "manager".into();
        let mut beta = node("beta", "down", &[]);
        beta.plugin_enabled = false;
        beta.plugin_version = None;
        let plugin = DeployedPlugin {
            source: "swarmhub/swarmhub:0.1.0".into(),
            version: None,
            settings: Some("f1ngerpr1nt0".into()),
        };
        let mounts_alpha = crate::inspect::mounts::tests::node_with(
            "alpha",
            "alice",
            crate::inspect::mounts::tests::dead(),
        );
        Status {
            docker_host: "unix:///var/run/docker.sock".into(),
            swarm: SwarmSummary {
                this_node_id: "id-alpha".into(),
                this_node: "alpha".into(),
                nodes: 2,
                managers: 1,
                ready: 1,
                storage_node: Some("alpha".into()),
            },
            nodes: vec![
                node_status(&alpha, "id-alpha", "swarmhub.storage", &plugin),
                node_status(&beta, "id-alpha", "swarmhub.storage", &plugin),
            ],
            plugin,
            network: NetworkStatus {
                name: "swarmhub".into(),
                found: true,
                id: Some("net1".into()),
                driver: Some("overlay".into()),
                scope: Some("swarm".into()),
                attachable: Some(true),
            },
            services: vec![
                service_status_of(
                    "nfsd",
                    "swarmhub-nfsd",
                    Some(&nfsd_spec),
                    vec![task(
                        "rejected",
                        "shutdown",
                        Some("No such image: swarmhub/nfsd:0.1.0"),
                    )],
                ),
                service_status_of("hub", "swarmhub-hub", None, Vec::new()),
            ],
            notebooks: vec![NotebookStatus {
                name: "jupyter-alice".into(),
                user: Some("alice".into()),
                role: Some("student".into()),
                image: Some("swarmhub/notebook-student:0.1.0".into()),
                running: 1,
                desired: 1,
                node: Some("alpha".into()),
                state: Some("running".into()),
                error: None,
            }],
            other_services: Vec::new(),
            nfsd_api: nfsd_api_status(
                "http://10.0.0.5:8049".into(),
                Err(ProbeError::Unreachable {
                    url: "http://10.0.0.5:8049/v1/health".into(),
                    cause: "connection refused".into(),
                }),
            ),
            volumes: VolumesStatus {
                driver: PLUGIN_ALIAS.into(),
                listed: true,
                volumes: vec![VolumeEntry {
                    name: "home-alice".into(),
                    options: BTreeMap::from([("user".to_string(), "alice".to_string())]),
                }],
                warnings: Vec::new(),
                error: None,
            },
            mounts: MountsStatus {
                checked: true,
                broken: crate::inspect::mounts::broken(std::slice::from_ref(&mounts_alpha)),
                fix: Some(crate::inspect::mounts::RESTART_FIX.into()),
                nodes: vec![mounts_alpha],
                error: None,
            },
            errors: Vec::new(),
        }
    }

    #[test]
    fn json_has_the_documented_keys() {
        let v = serde_json::to_value(example()).unwrap();
        for key in [
            "docker_host",
            "swarm",
            "nodes",
            "plugin",
            "network",
            "services",
            "notebooks",
            "other_services",
            "nfsd_api",
            "volumes",
            "mounts",
            "errors",
        ] {
            assert!(v.get(key).is_some(), "{key} missing: {v:#}");
        }
        assert_eq!(v["swarm"]["storage_node"], "alpha");
        assert_eq!(v["nodes"][0]["storage"], true);
        assert_eq!(v["nodes"][1]["plugin_enabled"], false);
        assert_eq!(v["nodes"][0]["plugin_version"], "0.1.0");
        assert_eq!(v["nodes"][0]["plugin_current"], true);
        assert_eq!(v["nodes"][1]["plugin_current"], false);
        assert_eq!(v["plugin"]["settings"], "f1ngerpr1nt0");
        assert_eq!(v["plugin"]["version"], serde_json::Value::Null);
        assert_eq!(v["services"][0]["health"]["state"], "failing");
        assert_eq!(v["services"][0]["desired"], 1);
        assert_eq!(v["services"][0]["tasks"][0]["state"], "rejected");
        assert_eq!(v["services"][1]["health"]["state"], "not_deployed");
        assert_eq!(v["services"][1]["image"], serde_json::Value::Null);
        assert_eq!(v["nfsd_api"]["reachable"], false);
        assert_eq!(v["volumes"]["volumes"][0]["options"]["user"], "alice");
    }
}
