//! The swarm as the CLI sees it through the manager's dockerd: the connection (which must be a
//! swarm manager), nodes and the storage node, services and their tasks, and the typed
//! reading of Docker's errors. Commands build on this; nothing here changes the swarm.

use std::collections::HashMap;

use anyhow::Context;
use bollard::Docker;
use bollard::models::{
    LocalNodeState, Node, NodeSpecRoleEnum, NodeState, Service, Task, TaskState,
};
use serde::Serialize;

use crate::docker;
use crate::docker::engine::{Engine, RegistryLogin, absent};
use crate::exit::CliError;
use crate::names::{MANAGED_LABEL, PLUGIN_ALIAS, PLUGIN_SETTINGS_LABEL, PLUGIN_VERSION_LABEL};
use crate::settings::{Config, TimeoutsConfig};
use crate::wait::{self, Look};

/// How long [`Cluster::task_log_with`] asks again for a finished task's result line.
const LOG_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A connection to a swarm manager's dockerd: by default bollard's client; the apply and
/// lifecycle layers take any [`Engine`] ([`Swarm`]), so their tests run on an in-memory swarm.
#[derive(Debug, Clone)]
pub struct Cluster<E: ?Sized = Docker> {
    /// The address it was reached at, for messages.
    pub host: String,
    /// How long waits may take.
    pub timeouts: TimeoutsConfig,
    /// The login to `[registry]` that services are created and updated with (Swarm hands it
    /// to the nodes that pull their images); `None`: anonymous.
    pub registry_login: Option<RegistryLogin>,
    /// The engine (bollard's client, API version agreed with the daemon, in production); other
    /// layers reach it through [`Cluster::engine`], never bollard's client itself.
    pub(super) docker: E,
}

/// A cluster behind any engine (what the apply and lifecycle layers take); a `&Cluster`
/// coerces to `&Swarm`.
pub type Swarm = Cluster<dyn Engine>;

/// A node, reduced to what status, doctor and placement need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// Swarm node id.
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// `ready`, `down`, `disconnected`, `unknown`.
    pub state: String,
    /// The address other nodes reach it at.
    pub addr: String,
    /// Node labels.
    pub labels: HashMap<String, String>,
    /// Whether an enabled volume plugin named `swarmhub-nfs` is reported by this node's engine.
    pub plugin_enabled: bool,
    /// The plugin version the last rollout installed (node label), if any.
    pub plugin_version: Option<String>,
    /// Fingerprint of the settings the last rollout installed the plugin with (node label), if
    /// any; see [`crate::plan::plugin_settings_fingerprint`].
    pub plugin_settings: Option<String>,
    /// dockerd's version on the node.
    pub engine_version: String,
}

impl NodeInfo {
    /// From the Docker API's node.
    pub fn from_node(n: &Node) -> NodeInfo {
        let spec = n.spec.clone().unwrap_or_default();
        let desc = n.description.clone().unwrap_or_default();
        let status = n.status.clone().unwrap_or_default();
        let engine = desc.engine.unwrap_or_default();
        let plugin_enabled = engine.plugins.unwrap_or_default().iter().any(|p| {
            p.typ.as_deref() == Some("Volume")
                && p.name
                    .as_deref()
                    .is_some_and(|name| name == PLUGIN_ALIAS || name == "swarmhub-nfs:latest")
        });
        let labels = spec.labels.unwrap_or_default();
        NodeInfo {
            id: n.id.clone().unwrap_or_default(),
            hostname: desc.hostname.unwrap_or_default(),
            role: match spec.role {
                Some(NodeSpecRoleEnum::MANAGER) => "manager".into(),
                _ => "worker".into(),
            },
            availability: spec.availability.map(|a| a.to_string()).unwrap_or_default(),
            state: status.state.unwrap_or(NodeState::UNKNOWN).to_string(),
            addr: status.addr.unwrap_or_default(),
            plugin_version: labels.get(PLUGIN_VERSION_LABEL).cloned(),
            plugin_settings: labels.get(PLUGIN_SETTINGS_LABEL).cloned(),
            labels,
            plugin_enabled,
            engine_version: engine.engine_version.unwrap_or_default(),
        }
    }

    /// Ready and accepting tasks.
    pub fn usable(&self) -> bool {
        self.state == "ready" && self.availability == "active"
    }

    /// A usable manager: where the hub may run, so where the Docker gate (global, on
    /// managers) must run.
    pub fn usable_manager(&self) -> bool {
        self.role == "manager" && self.usable()
    }
}

/// One task of a service, reduced to what a person needs to see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskInfo {
    /// Task id.
    pub id: String,
    /// Node id it was placed on (empty while pending).
    pub node_id: String,
    /// Host name of that node, when known.
    pub node: String,
    /// What Swarm wants (`running`, `shutdown`, `complete`); typed like `state`, shown and
    /// serialised as the same words.
    pub desired: TaskPhase,
    /// Where it is (`running`, `pending`, `rejected`, `failed`, `complete`, ...).
    pub state: TaskPhase,
    /// Swarm's message (e.g. `started`, `no suitable node ...`).
    pub message: String,
    /// The error, when it failed or was rejected (e.g. `No such image: ...`).
    pub error: Option<String>,
    /// When its state last changed (RFC 3339).
    pub since: String,
}

impl TaskInfo {
    fn from_task(t: &Task, hostnames: &HashMap<String, String>) -> TaskInfo {
        let status = t.status.clone().unwrap_or_default();
        let node_id = t.node_id.clone().unwrap_or_default();
        TaskInfo {
            id: t.id.clone().unwrap_or_default(),
            node: hostnames.get(&node_id).cloned().unwrap_or_default(),
            node_id,
            // dockerd always writes it; swarmkit's zero value is `new`
            desired: TaskPhase(t.desired_state.unwrap_or(TaskState::NEW)),
            state: TaskPhase(status.state.unwrap_or(TaskState::NEW)),
            message: status.message.unwrap_or_default(),
            error: status.err.filter(|e| !e.is_empty()),
            since: status.timestamp.map(|t| t.to_string()).unwrap_or_default(),
        }
    }

    /// A terminal state that means it did not work.
    pub fn failed(&self) -> bool {
        self.state.is_failure()
    }

    /// One line: `node: state (error or message)`.
    pub fn describe(&self) -> String {
        let node = if self.node.is_empty() {
            "unassigned"
        } else {
            &self.node
        };
        match &self.error {
            Some(e) => format!("{node}: {} ({e})", self.state),
            None if self.message.is_empty() => format!("{node}: {}", self.state),
            None => format!("{node}: {} ({})", self.state, self.message),
        }
    }
}

/// Where a task is, or where Swarm wants it, typed (bollard's [`TaskState`]); shown,
/// serialised and compared with text as Docker writes it (`running`, `shutdown`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TaskPhase(pub TaskState);

impl TaskPhase {
    /// On its way to running or running (what `stop` waits to be gone).
    pub fn is_live(self) -> bool {
        matches!(
            self.0,
            TaskState::ASSIGNED
                | TaskState::ACCEPTED
                | TaskState::PREPARING
                | TaskState::READY
                | TaskState::STARTING
                | TaskState::RUNNING
        )
    }

    /// Ended for good: Swarm moves it nowhere else (a job's task that is done).
    pub fn is_terminal(self) -> bool {
        matches!(
            self.0,
            TaskState::COMPLETE
                | TaskState::FAILED
                | TaskState::REJECTED
                | TaskState::SHUTDOWN
                | TaskState::ORPHANED
        )
    }

    /// Ended in a way that means it did not work.
    pub fn is_failure(self) -> bool {
        matches!(
            self.0,
            TaskState::FAILED | TaskState::REJECTED | TaskState::ORPHANED
        )
    }

    /// Running.
    pub fn is_running(self) -> bool {
        self.0 == TaskState::RUNNING
    }

    /// In exactly that state.
    pub fn is(self, state: TaskState) -> bool {
        self.0 == state
    }
}

impl std::fmt::Display for TaskPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<&str> for TaskPhase {
    /// Docker's word; an unknown one reads as `new`.
    fn from(s: &str) -> Self {
        TaskPhase(s.parse().unwrap_or(TaskState::NEW))
    }
}

impl PartialEq<&str> for TaskPhase {
    fn eq(&self, other: &&str) -> bool {
        self.0.to_string() == *other
    }
}

/// Filters `{key: [value]}` for the list calls.
pub fn filter(key: &str, value: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(key.to_string(), vec![value.to_string()])])
}

/// The one node of `nodes` labelled `<label>=true`, which must report an address: nfsd runs
/// there and every node's plugin reaches it at that address.
pub fn storage_node_in(nodes: &[NodeInfo], label: &str) -> Result<NodeInfo, CliError> {
    let labelled: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.labels.get(label).map(String::as_str) == Some("true"))
        .collect();
    match labelled.as_slice() {
        [] => Err(CliError::Precondition {
            what: format!("no node has the label {label}=true, so nfsd has nowhere to run"),
            fix: format!(
                "label the node that holds the data: docker node update --label-add {label}=true <node>   (nodes: {})",
                nodes
                    .iter()
                    .map(|n| n.hostname.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        [one] if one.addr.is_empty() || one.addr == "0.0.0.0" => Err(CliError::Precondition {
            what: format!("storage node {} reports no address", one.hostname),
            fix: format!(
                "re-join {} with --advertise-addr <its IP> so the plugins can reach nfsd",
                one.hostname
            ),
        }),
        [one] => Ok((*one).clone()),
        many => Err(CliError::Precondition {
            what: format!(
                "{} nodes have the label {label}=true ({}); user data must live on exactly one",
                many.len(),
                many.iter()
                    .map(|n| n.hostname.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            fix: format!("keep it on one: docker node update --label-rm {label} <node>"),
        }),
    }
}

/// What an admin can do about a task error Docker reports.
pub fn fix_for_task_error(err: &str) -> String {
    let e = err.to_ascii_lowercase();
    if e.contains("no such image")
        || e.contains("pull access denied")
        || e.contains("manifest unknown")
    {
        "build or load the image on that node (swarmhub rebuild, or docker load), or push it to the registry the nodes pull from".into()
    } else if e.contains("bind source path does not exist") || e.contains("invalid mount config") {
        "create the host directory on that node (cluster.nfsd_data_dir / cluster.plugin_state_dir), then swarmhub run".into()
    } else if e.contains("volumedriver") || e.contains("swarmhub-nfs") || e.contains("plugin") {
        "check the plugin and nfsd: swarmhub doctor".into()
    } else if e.contains("no suitable node") {
        "no node satisfies the placement constraints (node labels, role) or has the plugin: swarmhub doctor".into()
    } else if e.contains("port") && (e.contains("already") || e.contains("in use")) {
        "another process uses the published port on that node: free it or change the port in swarmhub.toml".into()
    } else {
        "see the task's logs: docker service logs <service>; then swarmhub doctor".into()
    }
}

impl Cluster {
    /// Connect to `DOCKER_HOST` (or the local socket) and check it manages a swarm.
    pub async fn connect(cfg: &Config) -> Result<Cluster, CliError> {
        let cluster = Cluster::reach(&cfg.timeouts).await?;
        cluster.require_manager().await?;
        Ok(cluster)
    }

    /// Connect to `DOCKER_HOST` (or the local socket), whatever its swarm state (`demo up`
    /// makes the swarm; everything else uses [`Cluster::connect`]).
    pub async fn reach(timeouts: &TimeoutsConfig) -> Result<Cluster, CliError> {
        let env = std::env::var("DOCKER_HOST").ok();
        Cluster::reach_at(&docker::docker_host(env.as_deref()), timeouts).await
    }

    /// Connect to dockerd at `host` (see [`docker::connect_to`]), whatever its swarm state.
    pub async fn reach_at(host: &str, timeouts: &TimeoutsConfig) -> Result<Cluster, CliError> {
        let docker = docker::connect_to(host, timeouts).await?;
        Ok(Cluster::new(host, timeouts, docker))
    }
}

impl<E> Cluster<E> {
    /// A cluster reached at `host` through `engine` (tests: an in-memory engine).
    pub fn new(host: &str, timeouts: &TimeoutsConfig, engine: E) -> Cluster<E> {
        Cluster {
            host: host.to_string(),
            timeouts: timeouts.clone(),
            registry_login: None,
            docker: engine,
        }
    }
}

impl<E: Engine + ?Sized> Cluster<E> {
    /// What the cluster is asked through (the [`Engine`] operations).
    pub fn engine(&self) -> &E {
        &self.docker
    }

    /// Names of the existing secrets → ids.
    pub async fn secret_ids(&self) -> anyhow::Result<HashMap<String, String>> {
        let list = self
            .docker
            .list_secrets()
            .await
            .context("cannot list secrets")?;
        Ok(list
            .into_iter()
            .filter_map(|s| Some((s.spec?.name?, s.id?)))
            .collect())
    }

    /// Names of the existing configs → ids.
    pub async fn config_ids(&self) -> anyhow::Result<HashMap<String, String>> {
        let list = self
            .docker
            .list_configs(None)
            .await
            .context("cannot list configs")?;
        Ok(list
            .into_iter()
            .filter_map(|s| Some((s.spec?.name?, s.id?)))
            .collect())
    }

    /// Swarm's overlay networks that carry the managed label (for `remove`).
    pub async fn managed_networks(&self) -> anyhow::Result<Vec<String>> {
        let list = self
            .docker
            .list_networks(&format!("{MANAGED_LABEL}=true"))
            .await
            .context("cannot list networks")?;
        Ok(list.into_iter().filter_map(|n| n.name).collect())
    }

    /// Whether this dockerd has `image` (the error is dockerd's message).
    pub async fn has_image(&self, image: &str) -> Result<bool, String> {
        absent(self.docker.inspect_image(image).await)
            .map(|i| i.is_some())
            .map_err(|e| e.message().to_string())
    }

    /// Exit code 4 unless this dockerd is an active swarm manager.
    pub async fn require_manager(&self) -> Result<(), CliError> {
        let info = self
            .docker
            .info()
            .await
            .with_context(|| format!("cannot ask dockerd at {} for its state", self.host))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.unwrap_or(LocalNodeState::INACTIVE);
        if state == LocalNodeState::ACTIVE && swarm.control_available == Some(true) {
            return Ok(());
        }
        let state = if state == LocalNodeState::ACTIVE {
            "worker".to_string()
        } else {
            state.to_string()
        };
        Err(CliError::NotManager {
            host: self.host.clone(),
            state,
        })
    }

    /// Id of the node this dockerd runs on.
    pub async fn self_node_id(&self) -> anyhow::Result<String> {
        let info = self
            .docker
            .info()
            .await
            .context("cannot ask dockerd for its state")?;
        Ok(info.swarm.and_then(|s| s.node_id).unwrap_or_default())
    }

    /// All nodes, sorted by host name.
    pub async fn nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        let nodes = self
            .docker
            .list_nodes()
            .await
            .context("cannot list the swarm's nodes")?;
        let mut out: Vec<NodeInfo> = nodes.iter().map(NodeInfo::from_node).collect();
        out.sort_by(|a, b| a.hostname.cmp(&b.hostname).then(a.id.cmp(&b.id)));
        // a node's engine reports its plugins to the managers only every few seconds (~15 s
        // measured); for the node this dockerd runs on, ask it directly
        let me = self.self_node_id().await?;
        if let Some(n) = out.iter_mut().find(|n| n.id == me) {
            n.plugin_enabled = match absent(self.docker.inspect_plugin(PLUGIN_ALIAS).await) {
                Ok(Some(p)) => p.enabled,
                Ok(None) => false,
                Err(e) => {
                    tracing::debug!("cannot inspect plugin {PLUGIN_ALIAS}: {e}");
                    n.plugin_enabled
                }
            };
        }
        Ok(out)
    }

    /// The one node labelled `<label>=true` (see [`storage_node_in`]).
    pub async fn storage_node(&self, label: &str) -> Result<NodeInfo, CliError> {
        storage_node_in(&self.nodes().await?, label)
    }

    /// The service of that name, if it exists.
    pub async fn service(&self, name: &str) -> anyhow::Result<Option<Service>> {
        absent(self.docker.inspect_service(name).await)
            .with_context(|| format!("cannot inspect service {name}"))
    }

    /// Services swarmhub created (label `swarmhub.managed=true`).
    pub async fn managed_services(&self) -> anyhow::Result<Vec<Service>> {
        self.docker
            .list_services(Some(&format!("{MANAGED_LABEL}=true")))
            .await
            .context("cannot list services")
    }

    /// Every service with its task counts (for notebooks: SwarmSpawner's services).
    pub async fn all_services(&self) -> anyhow::Result<Vec<Service>> {
        self.docker
            .list_services(None)
            .await
            .context("cannot list services")
    }

    /// The tasks of a service, newest first, with node host names.
    pub async fn tasks(&self, service: &str) -> anyhow::Result<Vec<TaskInfo>> {
        // a service that is gone (removed, or never made) has no tasks; Docker says 404
        let mut tasks = absent(self.docker.list_tasks(service).await)
            .with_context(|| format!("cannot list the tasks of service {service}"))?
            .unwrap_or_default();
        tasks.sort_by(|a, b| {
            let ts = |t: &Task| {
                t.status
                    .as_ref()
                    .and_then(|s| s.timestamp.as_ref())
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            };
            ts(b).cmp(&ts(a))
        });
        let hostnames = self.hostnames().await?;
        Ok(tasks
            .iter()
            .map(|t| TaskInfo::from_task(t, &hostnames))
            .collect())
    }

    /// What a task printed (stdout and stderr), read for at most 10 s: a node that is gone
    /// never answers.
    pub async fn task_log(&self, task: &str) -> String {
        self.docker
            .task_logs(task, std::time::Duration::from_secs(10))
            .await
    }

    /// The log of a finished task once it holds a line containing `marker` (the result line of
    /// a one-shot job), else whatever could be read after `LOG_WAIT`. Right after `swarm init`
    /// the managers' log broker may not reach the node yet and answers "node ... is not
    /// available" (seen with docker 20.10), so a log without the marker is asked for again.
    pub async fn task_log_with(&self, task: &str, marker: &str) -> String {
        let every = std::time::Duration::from_secs(1);
        let waited = wait::until_done(LOG_WAIT, every, || async {
            let log = self.task_log(task).await;
            if log.contains(marker) {
                Look::Done(log)
            } else {
                Look::NotYet(log)
            }
        })
        .await;
        waited.unwrap_or_else(|timed_out| timed_out.last)
    }

    /// Node id → host name.
    pub async fn hostnames(&self) -> anyhow::Result<HashMap<String, String>> {
        Ok(self
            .nodes()
            .await?
            .into_iter()
            .map(|n| (n.id, n.hostname))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        EngineDescription, EngineDescriptionPlugins, NodeDescription, NodeSpec,
        NodeSpecAvailabilityEnum, NodeStatus, TaskStatus,
    };

    fn node(plugins: &[(&str, &str)], labels: &[(&str, &str)]) -> Node {
        Node {
            id: Some("n1".into()),
            spec: Some(NodeSpec {
                role: Some(NodeSpecRoleEnum::MANAGER),
                availability: Some(NodeSpecAvailabilityEnum::ACTIVE),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            }),
            description: Some(NodeDescription {
                hostname: Some("alpha".into()),
                engine: Some(EngineDescription {
                    engine_version: Some("20.10.24".into()),
                    plugins: Some(
                        plugins
                            .iter()
                            .map(|(t, n)| EngineDescriptionPlugins {
                                typ: Some(t.to_string()),
                                name: Some(n.to_string()),
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: Some(NodeState::READY),
                addr: Some("10.0.0.1".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_node_reports_the_plugin_only_as_an_enabled_volume_driver() {
        let n = NodeInfo::from_node(&node(
            &[("Volume", "local"), ("Volume", "swarmhub-nfs:latest")],
            &[(PLUGIN_VERSION_LABEL, "0.1.0+abc")],
        ));
        assert!(n.plugin_enabled);
        assert_eq!(n.plugin_version.as_deref(), Some("0.1.0+abc"));
        assert_eq!(
            (n.role.as_str(), n.state.as_str(), n.addr.as_str()),
            ("manager", "ready", "10.0.0.1")
        );
        assert!(n.usable() && n.usable_manager());
        let worker = NodeInfo {
            role: "worker".into(),
            ..n.clone()
        };
        assert!(worker.usable() && !worker.usable_manager());
        let drained = NodeInfo {
            availability: "drain".into(),
            ..n.clone()
        };
        assert!(!drained.usable_manager());
        let n = NodeInfo::from_node(&node(
            &[("Volume", "local"), ("Network", "swarmhub-nfs")],
            &[],
        ));
        assert!(!n.plugin_enabled);
        assert_eq!(n.plugin_version, None);
    }

    #[test]
    fn a_task_line_names_node_state_and_error() {
        let t = Task {
            id: Some("t1".into()),
            node_id: Some("n1".into()),
            desired_state: Some(TaskState::SHUTDOWN),
            status: Some(TaskStatus {
                state: Some(TaskState::REJECTED),
                err: Some("No such image: swarmhub/nfsd:0.1.0".into()),
                message: Some("preparing".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = TaskInfo::from_task(&t, &HashMap::from([("n1".into(), "alpha".into())]));
        assert!(info.failed());
        assert_eq!(
            info.describe(),
            "alpha: rejected (No such image: swarmhub/nfsd:0.1.0)"
        );
        // typed, yet written and compared as Docker's word
        assert_eq!(info.state, "rejected");
        assert_eq!(serde_json::to_value(info.state).unwrap(), "rejected");
        assert_eq!(TaskPhase::from("running"), TaskPhase(TaskState::RUNNING));
        assert!(info.state.is_terminal() && !info.state.is_live());
        // so is what Swarm wants of it
        assert_eq!(info.desired, "shutdown");
        assert_eq!(info.desired.to_string(), "shutdown");
        assert!(!info.desired.is_running() && info.desired.is(TaskState::SHUTDOWN));
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(
            (&json["desired"], &json["state"]),
            (&"shutdown".into(), &"rejected".into())
        );
        let pending = TaskInfo::from_task(&Task::default(), &HashMap::new());
        assert!(!pending.failed());
        assert_eq!(pending.describe(), "unassigned: new");
    }
}
