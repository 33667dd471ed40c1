//! `swarmhub status`: what the swarm runs right now, read through the manager's dockerd and
//! nfsd's health endpoint, for people ([`Status::text`]) and scripts (`--output json`, the
//! serialized [`Status`]). Read-only.
//!
//! Status reports a missing or broken part of the stack instead of failing: a service that is
//! not deployed, an nfsd that does not answer, a Docker call that fails (listed under
//! `errors`). It fails only when dockerd cannot be reached or is not a swarm manager, which
//! [`Cluster::connect`] reports before [`gather`] runs.
//!
//! The pure decisions (a service's health from its tasks, the storage node, plugin versions)
//! live here too; `doctor` judges with the same functions.
//!
//! # The JSON document
//!
//! | key | what |
//! |---|---|
//! | `docker_host` | the dockerd asked (`unix:///var/run/docker.sock`, `tcp://...`) |
//! | `swarm` | [`SwarmSummary`]: this node, node/manager/ready counts, the storage node |
//! | `nodes[]` | [`NodeStatus`]: host name, role, state, availability, address, `storage`, `plugin_enabled`, `plugin_version` |
//! | `network` | [`NetworkStatus`]: the overlay network (`found`, `driver`, `scope`, `attachable`) |
//! | `services[]` | [`ServiceStatus`] of nfsd and the hub: `deployed`, `image`, `desired`, `running`, `health.state` (`not_deployed`, `stopped`, `running`, `starting`, `failing`), recent `tasks[]` |
//! | `notebooks[]` | [`NotebookStatus`]: services SwarmSpawner made (label `swarmhub.component=notebook`) |
//! | `other_services[]` | names of services attached to the network that are neither swarmhub's nor notebooks |
//! | `nfsd_api` | [`NfsdApiStatus`]: `url`, `reachable`, nfsd's `health` document or the `error` |
//! | `volumes` | [`VolumesStatus`]: the `swarmhub-nfs` volumes this dockerd knows, or the `error` |
//! | `errors[]` | Docker calls that failed; the sections they feed are empty |

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use bollard::models::{Service, Task, TaskState};
use bollard::query_parameters::{InspectNetworkOptions, ListTasksOptions, ListVolumesOptions};
use serde::Serialize;
use swarmhub_control_api::Health;

use crate::docker::cluster::{Cluster, NodeInfo, TaskInfo, docker_message};
use crate::names;
use crate::names::{
    COMPONENT_LABEL, MANAGED_LABEL, NOTEBOOK_COMPONENT, PLUGIN_ALIAS, PLUGIN_VERSION_LABEL,
    ROLE_LABEL, USER_LABEL,
};
use crate::plan::replicas_of;
use crate::settings::Config;

use crate::inspect::probe::{self, ProbeError};

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
    /// The plugin version the last rollout installed there (node label), if any.
    pub plugin_version: Option<String>,
    /// dockerd's version.
    pub engine_version: String,
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

/// nfsd or the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    /// `nfsd` or `hub`.
    pub component: String,
    /// Service name (`cluster.nfsd_service`, `cluster.hub_service`).
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

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeEntry {
    /// Volume name (`home-alice`, `exchange-alice`).
    pub name: String,
    /// The options it was created with (`user`, `share`, `size`, `readonly`).
    pub options: BTreeMap<String, String>,
}

/// Read everything `status` shows. Fails only on what `Cluster::connect` already checked;
/// anything else that fails is reported in the result.
pub async fn gather(c: &Cluster, cfg: &Config) -> anyhow::Result<Status> {
    let mut errors = Vec::new();
    let this_node_id = c.self_node_id().await.unwrap_or_else(|e| {
        errors.push(format!("{e:#}"));
        String::new()
    });
    let nodes = c.nodes().await.unwrap_or_else(|e| {
        errors.push(format!("{e:#}"));
        Vec::new()
    });
    let label = &cfg.cluster.storage_node_label;
    let storage = storage_nodes(&nodes, label);
    let hostnames: HashMap<String, String> = nodes
        .iter()
        .map(|n| (n.id.clone(), n.hostname.clone()))
        .collect();
    let swarm = SwarmSummary {
        this_node: hostnames.get(&this_node_id).cloned().unwrap_or_default(),
        this_node_id: this_node_id.clone(),
        nodes: nodes.len(),
        managers: nodes.iter().filter(|n| n.role == "manager").count(),
        ready: nodes.iter().filter(|n| n.state == "ready").count(),
        storage_node: match storage.as_slice() {
            [one] => Some(one.hostname.clone()),
            _ => None,
        },
    };
    let node_rows = nodes
        .iter()
        .map(|n| node_status(n, &this_node_id, label))
        .collect();

    let network = network_status(c, &cfg.cluster.network, &mut errors).await;

    let mut services = Vec::new();
    for (component, name) in [
        ("nfsd", &cfg.cluster.nfsd_service),
        ("hub", &cfg.cluster.hub_service),
    ] {
        services.push(service_status(c, component, name, &mut errors).await);
    }
    // the directory of `swarmhub demo up`, when this is the demo
    if matches!(c.service(names::LDAP_SERVICE).await, Ok(Some(_))) {
        let name = names::LDAP_SERVICE.to_string();
        services.push(service_status(c, "demo-ldap", &name, &mut errors).await);
    }

    let (notebooks, other_services) =
        match notebook_statuses(c, network.id.as_deref(), &hostnames).await {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("{e:#}"));
                (Vec::new(), Vec::new())
            }
        };

    let nfsd_api = match storage.as_slice() {
        [one] if !one.addr.is_empty() => {
            let base = probe::nfsd_api_base(&one.addr, cfg.cluster.nfsd_api_port);
            nfsd_api_status(
                base.clone(),
                probe::nfsd_health(&base, probe_timeout(cfg)).await,
            )
        }
        [one] => NfsdApiStatus {
            url: None,
            reachable: false,
            health: None,
            error: Some(format!("storage node {} reports no address", one.hostname)),
        },
        [] => NfsdApiStatus {
            url: None,
            reachable: false,
            health: None,
            error: Some(format!("no node has the label {label}=true")),
        },
        many => NfsdApiStatus {
            url: None,
            reachable: false,
            health: None,
            error: Some(format!(
                "{} nodes have the label {label}=true ({})",
                many.len(),
                hostnames_of(many)
            )),
        },
    };

    let volumes = volumes_status(c).await;

    Ok(Status {
        docker_host: c.host.clone(),
        swarm,
        nodes: node_rows,
        network,
        services,
        notebooks,
        other_services,
        nfsd_api,
        volumes,
        errors,
    })
}

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

/// Judge a replicated service from its desired replicas (`None`: it does not exist, or is not
/// replicated) and its tasks, newest first (as [`Cluster::tasks`] returns them).
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

fn node_status(n: &NodeInfo, this_node_id: &str, label: &str) -> NodeStatus {
    NodeStatus {
        id: n.id.clone(),
        hostname: n.hostname.clone(),
        role: n.role.clone(),
        state: n.state.clone(),
        availability: n.availability.clone(),
        addr: n.addr.clone(),
        this_node: n.id == this_node_id,
        storage: n.labels.get(label).map(String::as_str) == Some("true"),
        plugin_enabled: n.plugin_enabled,
        plugin_version: n.plugin_version.clone(),
        engine_version: n.engine_version.clone(),
    }
}

fn hostnames_of(nodes: &[&NodeInfo]) -> String {
    nodes
        .iter()
        .map(|n| n.hostname.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn network_status(c: &Cluster, name: &str, errors: &mut Vec<String>) -> NetworkStatus {
    let mut s = NetworkStatus {
        name: name.to_string(),
        ..Default::default()
    };
    match c
        .docker
        .inspect_network(name, None::<InspectNetworkOptions>)
        .await
    {
        Ok(n) => {
            s.found = true;
            s.id = n.id;
            s.driver = n.driver;
            s.scope = n.scope;
            s.attachable = n.attachable;
        }
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => errors.push(format!(
            "cannot inspect network {name}: {}",
            docker_message(&e)
        )),
    }
    s
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

async fn service_status(
    c: &Cluster,
    component: &str,
    name: &str,
    errors: &mut Vec<String>,
) -> ServiceStatus {
    let service = match c.service(name).await {
        Ok(s) => s,
        Err(e) => {
            errors.push(format!("{e:#}"));
            None
        }
    };
    let tasks = match &service {
        Some(_) => c.tasks(name).await.unwrap_or_else(|e| {
            errors.push(format!("{e:#}"));
            Vec::new()
        }),
        None => Vec::new(),
    };
    service_status_of(component, name, service.as_ref(), tasks)
}

/// Assemble a [`ServiceStatus`] (pure).
pub fn service_status_of(
    component: &str,
    name: &str,
    service: Option<&Service>,
    tasks: Vec<TaskInfo>,
) -> ServiceStatus {
    let desired = service
        .and_then(|s| s.spec.as_ref())
        .and_then(replicas_of)
        .map(|r| u64::try_from(r).unwrap_or(0));
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

/// Notebook services, and the other services on the network that are not swarmhub's.
async fn notebook_statuses(
    c: &Cluster,
    network_id: Option<&str>,
    hostnames: &HashMap<String, String>,
) -> anyhow::Result<(Vec<NotebookStatus>, Vec<String>)> {
    let services = c.all_services().await?;
    // one call for every task, instead of one per notebook (a class is hundreds of services)
    let tasks = c
        .docker
        .list_tasks(None::<ListTasksOptions>)
        .await
        .context("cannot list tasks")?;
    Ok(classify_services(&services, &tasks, network_id, hostnames))
}

/// Split services into notebooks (with their newest task) and other services attached to the
/// network (pure).
pub fn classify_services(
    services: &[Service],
    tasks: &[Task],
    network_id: Option<&str>,
    hostnames: &HashMap<String, String>,
) -> (Vec<NotebookStatus>, Vec<String>) {
    let mut notebooks = Vec::new();
    let mut others = Vec::new();
    for s in services {
        let spec = s.spec.clone().unwrap_or_default();
        let labels = spec.labels.clone().unwrap_or_default();
        let name = spec.name.clone().unwrap_or_default();
        if labels.get(COMPONENT_LABEL).map(String::as_str) == Some(NOTEBOOK_COMPONENT) {
            let id = s.id.clone().unwrap_or_default();
            let newest = tasks
                .iter()
                .filter(|t| t.service_id.as_deref() == Some(id.as_str()))
                .max_by_key(|t| task_time(t));
            let counts = s.service_status.clone().unwrap_or_default();
            let status = newest.and_then(|t| t.status.clone()).unwrap_or_default();
            notebooks.push(NotebookStatus {
                name,
                user: labels.get(USER_LABEL).cloned(),
                role: labels.get(ROLE_LABEL).cloned(),
                image: service_image(s),
                running: counts.running_tasks.unwrap_or(0),
                desired: counts.desired_tasks.unwrap_or(0),
                node: newest
                    .and_then(|t| t.node_id.as_ref())
                    .and_then(|id| hostnames.get(id).cloned()),
                state: newest.map(|_| status.state.unwrap_or(TaskState::NEW).to_string()),
                error: status.err.filter(|e| !e.is_empty()),
            });
            continue;
        }
        if labels.get(MANAGED_LABEL).map(String::as_str) == Some("true") {
            continue;
        }
        let attached = spec
            .task_template
            .as_ref()
            .and_then(|t| t.networks.clone())
            .into_iter()
            .chain(spec.networks.clone())
            .flatten()
            .any(|n| n.target.is_some() && n.target.as_deref() == network_id);
        if attached {
            others.push(name);
        }
    }
    notebooks.sort_by(|a, b| a.name.cmp(&b.name));
    others.sort();
    (notebooks, others)
}

fn task_time(t: &Task) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.timestamp.as_ref())
        .map(|ts| ts.to_string())
        .unwrap_or_default()
}

/// Assemble an [`NfsdApiStatus`] from a probe's result (pure).
pub fn nfsd_api_status(url: String, result: Result<Health, ProbeError>) -> NfsdApiStatus {
    match result {
        Ok(h) => NfsdApiStatus {
            url: Some(url),
            reachable: true,
            health: Some(h),
            error: None,
        },
        Err(e) => NfsdApiStatus {
            url: Some(url),
            reachable: false,
            health: None,
            error: Some(e.to_string()),
        },
    }
}

async fn volumes_status(c: &Cluster) -> VolumesStatus {
    // filtered here, not by dockerd: its driver filter does not match the managed plugin's
    // full name (`swarmhub-nfs:latest`), which is what volumes of the plugin record
    let opts = ListVolumesOptions { filters: None };
    let mut s = VolumesStatus {
        driver: PLUGIN_ALIAS.into(),
        listed: false,
        volumes: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };
    match c.docker.list_volumes(Some(opts)).await {
        Ok(list) => {
            s.listed = true;
            s.warnings = list.warnings.unwrap_or_default();
            s.volumes = list
                .volumes
                .unwrap_or_default()
                .into_iter()
                .filter(|v| v.driver == PLUGIN_ALIAS || v.driver.starts_with("swarmhub-nfs:"))
                .map(|v| VolumeEntry {
                    name: v.name,
                    options: v.options.into_iter().collect(),
                })
                .collect();
            s.volumes.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Err(e) => {
            s.error = Some(format!(
                "cannot list the {PLUGIN_ALIAS} volumes: {}",
                docker_message(&e)
            ))
        }
    }
    s
}

impl Status {
    /// The report for people: one block per section, problems spelled out.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let sw = &self.swarm;
        out.push_str(&format!(
            "swarm: {} node{} ({} manager{}, {} ready); this node: {}; dockerd {}\n",
            sw.nodes,
            plural(sw.nodes),
            sw.managers,
            plural(sw.managers),
            sw.ready,
            if sw.this_node.is_empty() {
                "?"
            } else {
                &sw.this_node
            },
            self.docker_host
        ));

        out.push_str("\nnodes:\n");
        let mut rows = vec![
            [
                "HOST",
                "ROLE",
                "STATE",
                "AVAILABILITY",
                "ADDRESS",
                "STORAGE",
                "PLUGIN",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for n in &self.nodes {
            rows.push(vec![
                format!("{}{}", n.hostname, if n.this_node { " *" } else { "" }),
                n.role.clone(),
                n.state.clone(),
                n.availability.clone(),
                n.addr.clone(),
                if n.storage { "yes" } else { "-" }.into(),
                plugin_text(n.plugin_enabled, n.plugin_version.as_deref()),
            ]);
        }
        out.push_str(&table(&rows, "  "));
        if self.nodes.is_empty() {
            out.push_str("  (no nodes could be listed)\n");
        }

        let net = &self.network;
        out.push_str(&format!("\nnetwork {}: ", net.name));
        if !net.found {
            out.push_str("not found (swarmhub run creates it)\n");
        } else {
            let kind = format!(
                "{} {}",
                net.scope.as_deref().unwrap_or("?"),
                net.driver.as_deref().unwrap_or("?")
            );
            let attachable = if net.attachable == Some(true) {
                "attachable"
            } else {
                "NOT attachable (notebooks cannot join it)"
            };
            out.push_str(&format!("{kind}, {attachable}\n"));
        }

        out.push_str("\nservices:\n");
        for s in &self.services {
            if !s.deployed {
                out.push_str(&format!(
                    "  {} ({}): not deployed (swarmhub run)\n",
                    s.name, s.component
                ));
                continue;
            }
            out.push_str(&format!(
                "  {} ({}): {}, {}/{} running, {}\n",
                s.name,
                s.component,
                s.image.as_deref().unwrap_or("no image"),
                s.running,
                s.desired.map_or("?".into(), |d| d.to_string()),
                s.health.text()
            ));
            for t in &s.tasks {
                out.push_str(&format!(
                    "      {} {}{}\n",
                    t.describe(),
                    if t.desired == "running" {
                        String::new()
                    } else {
                        format!("[desired {}] ", t.desired)
                    },
                    t.since
                ));
            }
        }

        let running = self.notebooks.iter().filter(|n| n.running > 0).count();
        out.push_str(&format!(
            "\nnotebooks: {} ({} running)\n",
            self.notebooks.len(),
            running
        ));
        if !self.notebooks.is_empty() {
            let mut rows = vec![
                ["SERVICE", "USER", "ROLE", "NODE", "STATE", "ERROR"]
                    .map(String::from)
                    .to_vec(),
            ];
            let errors = self.notebooks.iter().any(|n| n.error.is_some());
            if !errors {
                rows[0].pop();
            }
            for n in &self.notebooks {
                let mut row = vec![
                    n.name.clone(),
                    n.user.clone().unwrap_or_else(|| "-".into()),
                    n.role.clone().unwrap_or_else(|| "-".into()),
                    n.node.clone().unwrap_or_else(|| "-".into()),
                    n.state.clone().unwrap_or_else(|| "no task".into()),
                ];
                if errors {
                    row.push(n.error.clone().unwrap_or_default());
                }
                rows.push(row);
            }
            out.push_str(&table(&rows, "  "));
        }
        if !self.other_services.is_empty() {
            out.push_str(&format!(
                "other services on network {}: {}\n",
                self.network.name,
                self.other_services.join(", ")
            ));
        }

        out.push_str("\nvolumes:\n");
        let api = &self.nfsd_api;
        let url = api.url.as_deref().unwrap_or("nfsd API");
        match (&api.health, &api.error) {
            (Some(h), _) => out.push_str(&format!(
                "  nfsd {url}: {} version {}, {} volume{}, up {}\n",
                h.status,
                h.version,
                h.volumes,
                plural(h.volumes),
                probe::duration_text(h.uptime_seconds)
            )),
            (None, e) => out.push_str(&format!(
                "  nfsd: unreachable: {}\n",
                e.as_deref().unwrap_or("unknown")
            )),
        }
        let v = &self.volumes;
        match &v.error {
            Some(e) => out.push_str(&format!("  this dockerd: {e}\n")),
            None => {
                out.push_str(&format!(
                    "  this dockerd knows {} {} volume{}{}\n",
                    v.volumes.len(),
                    v.driver,
                    plural(v.volumes.len()),
                    if v.volumes.is_empty() { "" } else { ":" }
                ));
                for vol in &v.volumes {
                    let opts: Vec<String> = vol
                        .options
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    out.push_str(&format!("    {} {}\n", vol.name, opts.join(",")));
                }
            }
        }
        for w in &v.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }

        if !self.errors.is_empty() {
            out.push_str("\nnot read (Docker errors):\n");
            for e in &self.errors {
                out.push_str(&format!("  {e}\n"));
            }
        }
        out
    }
}

/// `enabled 0.1.0`, `enabled (no version recorded)`, `disabled`.
fn plugin_text(enabled: bool, version: Option<&str>) -> String {
    match (enabled, version) {
        (true, Some(v)) => format!("enabled {v}"),
        (true, None) => format!("enabled (no {PLUGIN_VERSION_LABEL} label)"),
        (false, Some(v)) => format!("NOT enabled (rollout recorded {v})"),
        (false, None) => "NOT installed".into(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Columns padded to their widest cell, each row prefixed with `indent`.
pub fn table(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::from(indent);
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bollard::models::{
        NetworkAttachmentConfig, ServiceServiceStatus, ServiceSpec, ServiceSpecMode,
        ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskStatus,
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

    fn service(name: &str, labels: &[(&str, &str)], net: Option<&str>) -> Service {
        Service {
            id: Some(format!("sid-{name}")),
            spec: Some(ServiceSpec {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                task_template: Some(TaskSpec {
                    container_spec: Some(TaskSpecContainerSpec {
                        image: Some("swarmhub/notebook-student:0.1.0".into()),
                        ..Default::default()
                    }),
                    networks: net.map(|n| {
                        vec![NetworkAttachmentConfig {
                            target: Some(n.into()),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }),
                mode: Some(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            service_status: Some(ServiceServiceStatus {
                running_tasks: Some(0),
                desired_tasks: Some(1),
                completed_tasks: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn notebooks_are_found_by_label_and_others_by_network() {
        let services = vec![
            service(
                "jupyter-alice",
                &[
                    (COMPONENT_LABEL, NOTEBOOK_COMPONENT),
                    (USER_LABEL, "alice"),
                    (ROLE_LABEL, "student"),
                ],
                Some("net1"),
            ),
            service("swarmhub-hub", &[(MANAGED_LABEL, "true")], Some("net1")),
            service("debug", &[], Some("net1")),
            service("elsewhere", &[], Some("net2")),
        ];
        let tasks = vec![
            Task {
                service_id: Some("sid-jupyter-alice".into()),
                node_id: Some("n2".into()),
                status: Some(TaskStatus {
                    state: Some(TaskState::REJECTED),
                    err: Some("VolumeDriver.Mount: nfsd unreachable".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Task {
                service_id: Some("sid-other".into()),
                ..Default::default()
            },
        ];
        let hosts = HashMap::from([("n2".to_string(), "beta".to_string())]);
        let (nb, others) = classify_services(&services, &tasks, Some("net1"), &hosts);
        assert_eq!(others, ["debug"]);
        assert_eq!(nb.len(), 1);
        let a = &nb[0];
        assert_eq!(a.user.as_deref(), Some("alice"));
        assert_eq!(a.node.as_deref(), Some("beta"));
        assert_eq!(a.state.as_deref(), Some("rejected"));
        assert_eq!(
            a.error.as_deref(),
            Some("VolumeDriver.Mount: nfsd unreachable")
        );
        assert_eq!((a.running, a.desired), (0, 1));
        // without the network nothing counts as attached
        let (_, others) = classify_services(&services, &tasks, None, &hosts);
        assert!(others.is_empty());
    }

    pub(crate) fn example() -> Status {
        let nfsd_spec = Service {
            spec: Some(ServiceSpec {
                name: Some("swarmhub-nfsd".into()),
                task_template: Some(TaskSpec {
                    container_spec: Some(TaskSpecContainerSpec {
                        image: Some("swarmhub/nfsd:0.1.0".into()),
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
        };
        let mut alpha = node("alpha", "ready", &[("swarmhub.storage", "true")]);
        alpha.role = "manager".into();
        let mut beta = node("beta", "down", &[]);
        beta.plugin_enabled = false;
        beta.plugin_version = None;
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
                node_status(&alpha, "id-alpha", "swarmhub.storage"),
                node_status(&beta, "id-alpha", "swarmhub.storage"),
            ],
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
            errors: Vec::new(),
        }
    }

    #[test]
    fn text_shows_every_section_and_the_problems() {
        let text = example().text();
        let expected = "\
swarm: 2 nodes (1 manager, 1 ready); this node: alpha; dockerd unix:///var/run/docker.sock

nodes:
  HOST     ROLE     STATE  AVAILABILITY  ADDRESS   STORAGE  PLUGIN
  alpha *  manager  ready  active        10.0.0.5  yes      enabled 0.1.0
  beta     worker   down   active        10.0.0.4  -        NOT installed

network swarmhub: swarm overlay, attachable

services:
  swarmhub-nfsd (nfsd): swarmhub/nfsd:0.1.0, 0/1 running, failing: alpha: rejected (No such image: swarmhub/nfsd:0.1.0)
      alpha: rejected (No such image: swarmhub/nfsd:0.1.0) [desired shutdown] 2025-11-26T18:00:00Z
  swarmhub-hub (hub): not deployed (swarmhub run)

notebooks: 1 (1 running)
  SERVICE        USER   ROLE     NODE   STATE
  jupyter-alice  alice  student  alpha  running

volumes:
  nfsd: unreachable: http://10.0.0.5:8049/v1/health is unreachable: connection refused
  this dockerd knows 1 swarmhub-nfs volume:
    home-alice user=alice
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn text_reports_missing_parts_and_errors() {
        let mut s = example();
        s.network.found = false;
        s.volumes = VolumesStatus {
            driver: PLUGIN_ALIAS.into(),
            listed: false,
            volumes: Vec::new(),
            warnings: Vec::new(),
            error: Some("cannot list the swarmhub-nfs volumes: plugin disabled".into()),
        };
        s.nfsd_api = NfsdApiStatus {
            url: None,
            reachable: false,
            health: None,
            error: Some("no node has the label swarmhub.storage=true".into()),
        };
        s.errors.push("cannot list services: timed out".into());
        let text = s.text();
        for want in [
            "network swarmhub: not found (swarmhub run creates it)",
            "  nfsd: unreachable: no node has the label swarmhub.storage=true",
            "  this dockerd: cannot list the swarmhub-nfs volumes: plugin disabled",
            "not read (Docker errors):\n  cannot list services: timed out",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
        s.nfsd_api = nfsd_api_status(
            "http://10.0.0.5:8049".into(),
            Ok(Health {
                status: "ok".into(),
                version: "0.1.0".into(),
                volumes: 12,
                nfs_listen: "0.0.0.0:2049".into(),
                uptime_seconds: 3 * 3600 + 120,
            }),
        );
        assert!(
            s.text()
                .contains("  nfsd http://10.0.0.5:8049: ok version 0.1.0, 12 volumes, up 3h 02m"),
            "{}",
            s.text()
        );
    }

    #[test]
    fn json_has_the_documented_keys() {
        let v = serde_json::to_value(example()).unwrap();
        for key in [
            "docker_host",
            "swarm",
            "nodes",
            "network",
            "services",
            "notebooks",
            "other_services",
            "nfsd_api",
            "volumes",
            "errors",
        ] {
            assert!(v.get(key).is_some(), "{key} missing: {v:#}");
        }
        assert_eq!(v["swarm"]["storage_node"], "alpha");
        assert_eq!(v["nodes"][0]["storage"], true);
        assert_eq!(v["nodes"][1]["plugin_enabled"], false);
        assert_eq!(v["services"][0]["health"]["state"], "failing");
        assert_eq!(v["services"][0]["desired"], 1);
        assert_eq!(v["services"][0]["tasks"][0]["state"], "rejected");
        assert_eq!(v["services"][1]["health"]["state"], "not_deployed");
        assert_eq!(v["services"][1]["image"], serde_json::Value::Null);
        assert_eq!(v["nfsd_api"]["reachable"], false);
        assert_eq!(v["volumes"]["volumes"][0]["options"]["user"], "alice");
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["A".to_string(), "BB".into(), "C".into()],
            vec!["aaa".to_string(), "b".into(), "".into()],
        ];
        assert_eq!(table(&rows, "  "), "  A    BB  C\n  aaa  b\n");
    }
}
