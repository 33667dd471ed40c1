//! A recording double of [`Engine`]: an in-memory swarm (services with versions, their tasks,
//! secrets, configs, networks, nodes, plugins, volumes) that writes every call, in order, to
//! [`Fake::calls`]. A replicated service has `replicas` running tasks; scaled to 0 they are shut
//! down; a global service has one running task on each ready, active node its `node.role`
//! constraint allows (placed when it is created or updated: a node added later has none); a
//! job's tasks are complete at once. Listed services carry their task counts, as
//! dockerd's do when asked with `status=true`. Asked to ([`Fake::keep_networks_in_use`]), it
//! refuses to remove a network a service is attached to, as dockerd does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{
    BuildInfo, Config, ConfigSpec, ImageInspect, Network, NetworkCreateRequest, NetworkInspect,
    Node, NodeDescription, NodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState,
    NodeStatus, ObjectVersion, Plugin, PluginMount, PluginPrivilege, PluginSettings, PushImageInfo,
    Secret, SecretSpec, Service, ServiceServiceStatus, ServiceSpec, SwarmInfo, SwarmInitRequest,
    SystemInfo, Task, TaskState, TaskStatus, Volume, VolumeListResponse,
};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::engine::{Engine, EngineError, ImageBuild, RegistryLogin};
use crate::plan::replicas_of;

#[derive(Debug, Default)]
struct State {
    calls: Vec<String>,
    next_id: u64,
    services: BTreeMap<String, Service>,
    tasks: BTreeMap<String, Vec<Task>>,
    secrets: BTreeMap<String, Secret>,
    configs: BTreeMap<String, Config>,
    networks: BTreeMap<String, NetworkInspect>,
    nodes: Vec<Node>,
    plugins: BTreeMap<String, Plugin>,
    volumes: Vec<Volume>,
    /// what every task printed
    log: String,
    /// refuse to remove a network a service is attached to, as dockerd does
    networks_in_use_stay: bool,
    /// what the registry holds: reference (name:tag) → digest
    registry: BTreeMap<String, String>,
    /// volumes a container uses (not removable)
    volumes_in_use: Vec<String>,
    /// refuse to disable a plugin while volumes of it exist, as dockerd does
    volumes_hold_plugins: bool,
    /// running containers, as `docker inspect` shows them
    containers: Vec<bollard::models::ContainerInspectResponse>,
}

impl State {
    fn id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{kind}-{}", self.next_id)
    }

    /// Whether the service's tasks are attached to the network `name` (whose id is `id`).
    fn attached(&self, service: &str, name: &str, id: Option<&str>) -> bool {
        let spec = self.services.get(service).and_then(|s| s.spec.as_ref());
        let targets = spec
            .and_then(|s| s.task_template.as_ref())
            .and_then(|t| t.networks.as_deref())
            .unwrap_or_default();
        targets
            .iter()
            .filter_map(|n| n.target.as_deref())
            .any(|t| t == name || Some(t) == id)
    }

    /// Tasks as Swarm would converge them for the service's spec.
    fn converge(&mut self, name: &str) {
        let Some(spec) = self.services.get(name).and_then(|s| s.spec.clone()) else {
            return;
        };
        let job = spec
            .mode
            .as_ref()
            .is_some_and(|m| m.replicated_job.is_some() || m.global_job.is_some());
        let global = spec.mode.as_ref().is_some_and(|m| m.global.is_some());
        let first = self
            .nodes
            .first()
            .and_then(|n| n.id.clone())
            .unwrap_or_default();
        let service_id = self.services.get(name).and_then(|s| s.id.clone());
        let mut tasks = std::mem::take(self.tasks.entry(name.to_string()).or_default());
        let placed: Vec<String> = if global {
            self.nodes
                .iter()
                .filter(|n| takes_tasks_of(n, &spec))
                .filter_map(|n| n.id.clone())
                .collect()
        } else {
            let wanted = if job {
                1
            } else {
                usize::try_from(replicas_of(&spec).unwrap_or(1)).unwrap_or(0)
            };
            vec![first; wanted]
        };
        // an update replaces the tasks: the old ones are shut down
        for t in &mut tasks {
            t.desired_state = Some(TaskState::SHUTDOWN);
            if let Some(s) = t
                .status
                .as_mut()
                .filter(|s| s.state == Some(TaskState::RUNNING))
            {
                s.state = Some(TaskState::SHUTDOWN);
            }
        }
        for node in placed {
            let id = self.id("task");
            let (state, desired) = if job {
                (TaskState::COMPLETE, TaskState::COMPLETE)
            } else {
                (TaskState::RUNNING, TaskState::RUNNING)
            };
            tasks.push(Task {
                id: Some(id),
                service_id: service_id.clone(),
                node_id: Some(node),
                desired_state: Some(desired),
                status: Some(TaskStatus {
                    state: Some(state),
                    message: Some("started".into()),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        self.tasks.insert(name.to_string(), tasks);
    }
}

/// Whether Swarm would place a task of a global service of `spec` on `n`: the node is ready and
/// active and its role is the one a `node.role==...` constraint names (other constraints are
/// not looked at).
fn takes_tasks_of(n: &Node, spec: &ServiceSpec) -> bool {
    let node_spec = n.spec.clone().unwrap_or_default();
    let ready = n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY);
    let active = node_spec.availability == Some(NodeSpecAvailabilityEnum::ACTIVE);
    let role = match node_spec.role {
        Some(NodeSpecRoleEnum::MANAGER) => "manager",
        _ => "worker",
    };
    let constraints = spec
        .task_template
        .as_ref()
        .and_then(|t| t.placement.as_ref())
        .and_then(|p| p.constraints.clone())
        .unwrap_or_default();
    let role_ok = constraints.iter().all(|c| {
        c.replace(' ', "")
            .strip_prefix("node.role==")
            .is_none_or(|want| want == role)
    });
    ready && active && role_ok
}

/// The in-memory swarm; see the module docs.
#[derive(Debug, Default)]
pub struct Fake {
    state: Mutex<State>,
}

/// ` as USER` of a login, for the call record.
fn as_user(login: Option<&RegistryLogin>) -> String {
    match login.and_then(|l| l.username.as_deref()) {
        Some(u) => format!(" as {u}"),
        None => String::new(),
    }
}

fn missing(what: &str, name: &str) -> EngineError {
    EngineError::NotFound(format!("{what} {name} not found"))
}

fn has_label(labels: Option<&HashMap<String, String>>, label: Option<&str>) -> bool {
    let Some(label) = label else { return true };
    let (k, v) = label.split_once('=').unwrap_or((label, ""));
    labels.and_then(|l| l.get(k)).is_some_and(|x| x == v)
}

/// Remove the object whose id is `id`; 404 when there is none.
fn remove_by_id<T>(
    objects: &mut BTreeMap<String, T>,
    id: &str,
    id_of: impl Fn(&T) -> Option<&str>,
    kind: &str,
) -> Result<(), EngineError> {
    let before = objects.len();
    objects.retain(|_, o| id_of(o) != Some(id));
    if objects.len() == before {
        return Err(missing(kind, id));
    }
    Ok(())
}

impl Fake {
    /// A swarm of one ready manager node, `alpha`, labelled with `labels`.
    pub fn one_node(labels: &[(&str, &str)]) -> Fake {
        let fake = Fake::default();
        fake.state.lock().unwrap().nodes.push(Node {
            id: Some("node-alpha".into()),
            version: Some(ObjectVersion { index: Some(1) }),
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
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: Some(NodeState::READY),
                addr: Some("10.0.0.1".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        fake
    }

    /// Another ready, active node from now on: a manager or a worker, `hostname` at `addr`
    /// (tasks are placed on it when a service is created or updated).
    pub fn add_node(&self, id: &str, hostname: &str, manager: bool, addr: &str) {
        let role = if manager {
            NodeSpecRoleEnum::MANAGER
        } else {
            NodeSpecRoleEnum::WORKER
        };
        self.state.lock().unwrap().nodes.push(Node {
            id: Some(id.into()),
            version: Some(ObjectVersion { index: Some(1) }),
            spec: Some(NodeSpec {
                role: Some(role),
                availability: Some(NodeSpecAvailabilityEnum::ACTIVE),
                labels: Some(HashMap::new()),
                ..Default::default()
            }),
            description: Some(NodeDescription {
                hostname: Some(hostname.into()),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: Some(NodeState::READY),
                addr: Some(addr.into()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }

    /// Every call so far, in order (`create_service hub`, `update_service hub replicas=0`, ...).
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls that change something (create, update, delete, remove, and a plugin's pull,
    /// settings, enabling and disabling).
    pub fn changes(&self) -> Vec<String> {
        const CHANGING: [&str; 11] = [
            "create_", "update_", "delete_", "remove_", "pull_", "set_", "enable_", "disable_",
            "init_", "build_", "push_",
        ];
        self.calls()
            .into_iter()
            .filter(|c| CHANGING.iter().any(|p| c.starts_with(p)))
            .collect()
    }

    /// Make every task's log `log` (a job's result line).
    pub fn set_task_log(&self, log: &str) {
        self.state.lock().unwrap().log = log.to_string();
    }

    /// Swarm rejects every task of `service` with `error` (e.g. `No such image: ...`), as of
    /// now.
    pub fn reject(&self, service: &str, error: &str) {
        // the timestamp's type depends on bollard's features; every one reads RFC 3339
        let status: TaskStatus = serde_json::from_value(serde_json::json!({
            "Timestamp": "2999-01-01T00:00:00Z",
            "State": "rejected",
            "Message": "preparing",
            "Err": error,
        }))
        .unwrap();
        let mut st = self.state.lock().unwrap();
        for t in st.tasks.entry(service.to_string()).or_default() {
            t.status = Some(status.clone());
        }
    }

    /// From now on, refuse (409, `network ... is in use by service ...`) to remove a network
    /// while a service is attached to it, as dockerd does; by default a network goes at once,
    /// so that tests can take it away from under running services.
    pub fn keep_networks_in_use(&self) {
        self.state.lock().unwrap().networks_in_use_stay = true;
    }

    /// Change the node whose id is `id` (its labels, address, state), as if it had changed
    /// itself or been updated out of band.
    pub fn edit_node(&self, id: &str, edit: impl FnOnce(&mut Node)) {
        let mut st = self.state.lock().unwrap();
        let node = st.nodes.iter_mut().find(|n| n.id.as_deref() == Some(id));
        edit(node.unwrap_or_else(|| panic!("no node {id}")));
    }

    /// A volume this dockerd lists from now on (volumes are made by plugins, not through
    /// [`Engine`]).
    pub fn add_volume(&self, volume: Volume) {
        self.state.lock().unwrap().volumes.push(volume);
    }

    /// The registry holds `reference` (name:tag) with `digest` from now on.
    pub fn publish(&self, reference: &str, digest: &str) {
        let mut st = self.state.lock().unwrap();
        st.registry
            .insert(reference.to_string(), digest.to_string());
    }

    /// From now on, refuse (`plugin ... is in use`) to disable a plugin while volumes of it
    /// exist, as dockerd does; by default a plugin disables at once, so that tests can take
    /// it away from under volumes.
    pub fn hold_plugins_by_volumes(&self) {
        self.state.lock().unwrap().volumes_hold_plugins = true;
    }

    /// A container uses the volume `name` from now on (it cannot be removed), or no more.
    pub fn use_volume(&self, name: &str, used: bool) {
        let mut st = self.state.lock().unwrap();
        st.volumes_in_use.retain(|v| v != name);
        if used {
            st.volumes_in_use.push(name.to_string());
        }
    }

    /// Forget the calls so far.
    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// Names of the secrets that exist.
    pub fn secret_names(&self) -> Vec<String> {
        self.state.lock().unwrap().secrets.keys().cloned().collect()
    }

    /// The spec of a service, if it exists.
    pub fn service_spec(&self, name: &str) -> Option<ServiceSpec> {
        let st = self.state.lock().unwrap();
        st.services.get(name).and_then(|s| s.spec.clone())
    }

    /// Whether a network of that name exists.
    pub fn has_network(&self, name: &str) -> bool {
        self.state.lock().unwrap().networks.contains_key(name)
    }

    fn switch_plugin(&self, alias: &str, enabled: bool) -> Result<(), EngineError> {
        let verb = if enabled { "enable" } else { "disable" };
        let mut st = self.record(format!("{verb}_plugin {alias}"));
        // as dockerd (when asked to): a plugin whose volumes exist cannot be disabled
        let held = st.volumes_hold_plugins
            && st
                .volumes
                .iter()
                .any(|v| v.driver.split(':').next() == Some(alias));
        if !enabled && held {
            return Err(EngineError::Other {
                status: 500,
                message: format!("plugin {alias}:latest is in use"),
            });
        }
        let p = st
            .plugins
            .get_mut(alias)
            .ok_or_else(|| missing("plugin", alias))?;
        p.enabled = enabled;
        Ok(())
    }

    fn record(&self, call: String) -> std::sync::MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap();
        st.calls.push(call);
        st
    }
}

#[async_trait]
impl Engine for Fake {
    async fn info(&self) -> Result<SystemInfo, EngineError> {
        let st = self.record("info".into());
        Ok(SystemInfo {
            swarm: Some(SwarmInfo {
                node_id: st.nodes.first().and_then(|n| n.id.clone()),
                local_node_state: Some(bollard::models::LocalNodeState::ACTIVE),
                control_available: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn inspect_image(&self, name: &str) -> Result<ImageInspect, EngineError> {
        drop(self.record(format!("inspect_image {name}")));
        Err(missing("image", name))
    }

    async fn inspect_plugin(&self, name: &str) -> Result<Plugin, EngineError> {
        let st = self.record(format!("inspect_plugin {name}"));
        st.plugins
            .get(name)
            .cloned()
            .ok_or_else(|| missing("plugin", name))
    }

    async fn plugin_privileges(
        &self,
        _host: &str,
        remote: &str,
        _login: Option<&RegistryLogin>,
    ) -> Result<Vec<PluginPrivilege>, EngineError> {
        drop(self.record(format!("plugin_privileges {remote}")));
        Ok(Vec::new())
    }

    async fn pull_plugin(
        &self,
        remote: &str,
        alias: &str,
        _privileges: Vec<PluginPrivilege>,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError> {
        let mut st = self.record(format!("pull_plugin {remote} {alias}{}", as_user(login)));
        let plugin = Plugin {
            name: alias.to_string(),
            enabled: true,
            ..Default::default()
        };
        st.plugins.insert(alias.to_string(), plugin);
        Ok(())
    }

    async fn create_plugin(&self, alias: &str, _tar: Vec<u8>) -> Result<(), EngineError> {
        let mut st = self.record(format!("create_plugin {alias}"));
        if st.plugins.contains_key(alias) {
            return Err(EngineError::Conflict(format!("plugin {alias} exists")));
        }
        let plugin = Plugin {
            name: alias.to_string(),
            settings: PluginSettings::default(),
            ..Default::default()
        };
        st.plugins.insert(alias.to_string(), plugin);
        Ok(())
    }

    async fn set_plugin(&self, alias: &str, settings: Vec<String>) -> Result<(), EngineError> {
        let mut st = self.record(format!("set_plugin {alias} {}", settings.join(" ")));
        let p = st
            .plugins
            .get_mut(alias)
            .ok_or_else(|| missing("plugin", alias))?;
        for kv in settings {
            let (key, value) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            if let Some(mount) = key.strip_suffix(".source") {
                p.settings.mounts.retain(|m| m.name != mount);
                p.settings.mounts.push(PluginMount {
                    name: mount.to_string(),
                    source: value.to_string(),
                    ..Default::default()
                });
            } else {
                p.settings
                    .env
                    .retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
                p.settings.env.push(kv.clone());
            }
        }
        Ok(())
    }

    async fn enable_plugin(&self, alias: &str, _timeout_seconds: i32) -> Result<(), EngineError> {
        self.switch_plugin(alias, true)
    }

    async fn disable_plugin(&self, alias: &str) -> Result<(), EngineError> {
        self.switch_plugin(alias, false)
    }

    async fn remove_plugin(&self, alias: &str) -> Result<(), EngineError> {
        let mut st = self.record(format!("remove_plugin {alias}"));
        st.plugins
            .remove(alias)
            .map(drop)
            .ok_or_else(|| missing("plugin", alias))
    }

    async fn list_nodes(&self) -> Result<Vec<Node>, EngineError> {
        Ok(self.record("list_nodes".into()).nodes.clone())
    }

    async fn inspect_node(&self, id: &str) -> Result<Node, EngineError> {
        let st = self.record(format!("inspect_node {id}"));
        st.nodes
            .iter()
            .find(|n| n.id.as_deref() == Some(id))
            .cloned()
            .ok_or_else(|| missing("node", id))
    }

    async fn update_node(&self, id: &str, spec: NodeSpec, version: i64) -> Result<(), EngineError> {
        let mut st = self.record(format!("update_node {id}"));
        let n = st
            .nodes
            .iter_mut()
            .find(|n| n.id.as_deref() == Some(id))
            .ok_or_else(|| missing("node", id))?;
        let current = n.version.as_ref().and_then(|v| v.index).unwrap_or_default();
        if i64::try_from(current).ok() != Some(version) {
            return Err(EngineError::Other {
                status: 500,
                message: "update out of sequence".into(),
            });
        }
        n.spec = Some(spec);
        n.version = Some(ObjectVersion {
            index: Some(current + 1),
        });
        Ok(())
    }

    async fn inspect_service(&self, name: &str) -> Result<Service, EngineError> {
        let st = self.record(format!("inspect_service {name}"));
        st.services
            .get(name)
            .cloned()
            .ok_or_else(|| missing("service", name))
    }

    async fn list_services(&self, label: Option<&str>) -> Result<Vec<Service>, EngineError> {
        let st = self.record("list_services".into());
        Ok(st
            .services
            .iter()
            .filter(|(_, s)| has_label(s.spec.as_ref().and_then(|s| s.labels.as_ref()), label))
            .map(|(name, s)| {
                let tasks = st.tasks.get(name).map(Vec::as_slice).unwrap_or_default();
                let count = |wanted: fn(&Task) -> bool| {
                    u64::try_from(tasks.iter().filter(|t| wanted(t)).count()).unwrap_or(u64::MAX)
                };
                Service {
                    service_status: Some(ServiceServiceStatus {
                        running_tasks: Some(count(|t| {
                            t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
                        })),
                        desired_tasks: Some(count(|t| t.desired_state == Some(TaskState::RUNNING))),
                        completed_tasks: None,
                    }),
                    ..s.clone()
                }
            })
            .collect())
    }

    async fn push_plugin(
        &self,
        _host: &str,
        name: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError> {
        let st = self.record(format!("push_plugin {name}{}", as_user(login)));
        if !st.plugins.contains_key(name) {
            return Err(missing("plugin", name));
        }
        Ok(())
    }

    async fn create_service(
        &self,
        spec: ServiceSpec,
        _login: Option<&RegistryLogin>,
    ) -> Result<String, EngineError> {
        let name = spec.name.clone().unwrap_or_default();
        let mut st = self.record(format!("create_service {name}"));
        if st.services.contains_key(&name) {
            return Err(EngineError::Conflict(format!("service {name} exists")));
        }
        let id = st.id("service");
        st.services.insert(
            name.clone(),
            Service {
                id: Some(id.clone()),
                version: Some(ObjectVersion { index: Some(1) }),
                spec: Some(spec),
                ..Default::default()
            },
        );
        st.converge(&name);
        Ok(id)
    }

    async fn update_service(
        &self,
        name: &str,
        spec: ServiceSpec,
        version: i32,
        _login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError> {
        let replicas = replicas_of(&spec).map_or("-".to_string(), |r| r.to_string());
        let mut st = self.record(format!("update_service {name} replicas={replicas}"));
        let s = st
            .services
            .get_mut(name)
            .ok_or_else(|| missing("service", name))?;
        let current = s.version.as_ref().and_then(|v| v.index).unwrap_or_default();
        if u64::try_from(version).ok() != Some(current) {
            return Err(EngineError::Other {
                status: 500,
                message: "update out of sequence".into(),
            });
        }
        s.spec = Some(spec);
        s.version = Some(ObjectVersion {
            index: Some(current + 1),
        });
        st.converge(name);
        Ok(())
    }

    async fn delete_service(&self, name: &str) -> Result<(), EngineError> {
        let mut st = self.record(format!("delete_service {name}"));
        st.services
            .remove(name)
            .ok_or_else(|| missing("service", name))?;
        st.tasks.remove(name);
        Ok(())
    }

    async fn list_tasks(&self, service: &str) -> Result<Vec<Task>, EngineError> {
        let st = self.record(format!("list_tasks {service}"));
        Ok(st.tasks.get(service).cloned().unwrap_or_default())
    }

    async fn task_logs(&self, task: &str, _within: Duration) -> String {
        self.record(format!("task_logs {task}")).log.clone()
    }

    async fn list_secrets(&self) -> Result<Vec<Secret>, EngineError> {
        Ok(self
            .record("list_secrets".into())
            .secrets
            .values()
            .cloned()
            .collect())
    }

    async fn create_secret(&self, spec: SecretSpec) -> Result<String, EngineError> {
        let name = spec.name.clone().unwrap_or_default();
        let mut st = self.record(format!("create_secret {name}"));
        if st.secrets.contains_key(&name) {
            return Err(EngineError::Conflict(format!("secret {name} exists")));
        }
        let id = st.id("secret");
        let secret = Secret {
            id: Some(id.clone()),
            spec: Some(spec),
            ..Default::default()
        };
        st.secrets.insert(name, secret);
        Ok(id)
    }

    async fn delete_secret(&self, id: &str) -> Result<(), EngineError> {
        let mut st = self.record(format!("delete_secret {id}"));
        remove_by_id(&mut st.secrets, id, |x| x.id.as_deref(), "secret")
    }

    async fn list_configs(&self, label: Option<&str>) -> Result<Vec<Config>, EngineError> {
        let st = self.record("list_configs".into());
        Ok(st
            .configs
            .values()
            .filter(|c| has_label(c.spec.as_ref().and_then(|s| s.labels.as_ref()), label))
            .cloned()
            .collect())
    }

    async fn create_config(&self, spec: ConfigSpec) -> Result<String, EngineError> {
        let name = spec.name.clone().unwrap_or_default();
        let mut st = self.record(format!("create_config {name}"));
        if st.configs.contains_key(&name) {
            return Err(EngineError::Conflict(format!("config {name} exists")));
        }
        let id = st.id("config");
        let config = Config {
            id: Some(id.clone()),
            spec: Some(spec),
            ..Default::default()
        };
        st.configs.insert(name, config);
        Ok(id)
    }

    async fn delete_config(&self, id: &str) -> Result<(), EngineError> {
        let mut st = self.record(format!("delete_config {id}"));
        remove_by_id(&mut st.configs, id, |x| x.id.as_deref(), "config")
    }

    async fn inspect_network(
        &self,
        name: &str,
        _swarm_scope: bool,
    ) -> Result<NetworkInspect, EngineError> {
        let st = self.record(format!("inspect_network {name}"));
        st.networks
            .get(name)
            .cloned()
            .ok_or_else(|| missing("network", name))
    }

    async fn list_networks(&self, label: &str) -> Result<Vec<Network>, EngineError> {
        let st = self.record("list_networks".into());
        Ok(st
            .networks
            .values()
            .filter(|n| has_label(n.labels.as_ref(), Some(label)))
            .map(|n| Network {
                name: n.name.clone(),
                id: n.id.clone(),
                labels: n.labels.clone(),
                ..Default::default()
            })
            .collect())
    }

    async fn create_network(&self, req: NetworkCreateRequest) -> Result<(), EngineError> {
        let name = req.name.clone();
        let mut st = self.record(format!("create_network {name}"));
        if st.networks.contains_key(&name) {
            return Err(EngineError::Conflict(format!("network {name} exists")));
        }
        let id = st.id("network");
        let net = NetworkInspect {
            id: Some(id),
            name: Some(name.clone()),
            driver: req.driver.clone(),
            scope: Some("swarm".into()),
            attachable: req.attachable,
            labels: req.labels.clone(),
            ..Default::default()
        };
        st.networks.insert(name, net);
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let mut st = self.record(format!("remove_network {name}"));
        let id = st
            .networks
            .get(name)
            .ok_or_else(|| missing("network", name))?
            .id
            .clone();
        // as swarmkit, refuse while a service (scaled to 0 or not) is attached to it
        let in_use = st
            .services
            .keys()
            .filter(|_| st.networks_in_use_stay)
            .find(|s| st.attached(s, name, id.as_deref()));
        if let Some(user) = in_use {
            return Err(EngineError::Conflict(format!(
                "network {name} is in use by service {user}"
            )));
        }
        st.networks.remove(name);
        Ok(())
    }

    async fn init_swarm(&self, _req: SwarmInitRequest) -> Result<(), EngineError> {
        drop(self.record("init_swarm".into()));
        // the fake is a swarm from the start, as dockerd says when asked twice
        Err(EngineError::Other {
            status: 503,
            message: "This node is already part of a swarm.".into(),
        })
    }

    async fn list_all_tasks(&self) -> Result<Vec<Task>, EngineError> {
        let st = self.record("list_all_tasks".into());
        Ok(st.tasks.values().flatten().cloned().collect())
    }

    async fn running_containers(
        &self,
    ) -> Result<Vec<bollard::models::ContainerInspectResponse>, EngineError> {
        let st = self.record("running_containers".into());
        Ok(st.containers.clone())
    }

    async fn list_volumes(&self) -> Result<VolumeListResponse, EngineError> {
        let st = self.record("list_volumes".into());
        Ok(VolumeListResponse {
            volumes: Some(st.volumes.clone()),
            warnings: None,
        })
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let mut st = self.record(format!("remove_volume {name}"));
        if st.volumes_in_use.iter().any(|v| v == name) {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use"
            )));
        }
        let before = st.volumes.len();
        st.volumes.retain(|v| v.name != name);
        if st.volumes.len() == before {
            return Err(missing("volume", name));
        }
        Ok(())
    }

    fn build_image(
        &self,
        build: ImageBuild,
        _context: Vec<u8>,
    ) -> BoxStream<'_, Result<BuildInfo, EngineError>> {
        drop(self.record(format!("build_image {} target={}", build.tag, build.target)));
        let line = BuildInfo {
            stream: Some(format!("Successfully tagged {}\n", build.tag)),
            ..Default::default()
        };
        futures_util::stream::iter([Ok(line)]).boxed()
    }

    async fn registry_digest(
        &self,
        image: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<String, EngineError> {
        let st = self.record(format!("registry_digest {image}{}", as_user(login)));
        st.registry
            .get(image.split('@').next().unwrap_or(image))
            .cloned()
            .ok_or_else(|| missing("manifest", image))
    }

    async fn pull_image(
        &self,
        image: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError> {
        drop(self.record(format!("pull_image {image}{}", as_user(login))));
        Ok(())
    }

    async fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        drop(self.record(format!("tag_image {source} {repo}:{tag}")));
        Ok(())
    }

    async fn image_files(&self, image: &str, path: &str) -> Result<Vec<u8>, EngineError> {
        drop(self.record(format!("image_files {image} {path}")));
        let top = path.rsplit('/').next().unwrap_or(path);
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("config.json", &b"{}"[..]),
            ("rootfs/swarmhub-volume-plugin", b"bin"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            b.append_data(&mut h, format!("{top}/{name}"), data)
                .map_err(|e| EngineError::Unreachable(e.to_string()))?;
        }
        b.into_inner()
            .map_err(|e| EngineError::Unreachable(e.to_string()))
    }

    fn push_image<'a>(
        &'a self,
        name: &'a str,
        tag: &'a str,
        login: RegistryLogin,
    ) -> BoxStream<'a, Result<PushImageInfo, EngineError>> {
        drop(self.record(format!("push_image {name}:{tag} to {}", login.server)));
        let line = PushImageInfo {
            status: Some(format!("{tag}: pushed")),
            ..Default::default()
        };
        futures_util::stream::iter([Ok(line)]).boxed()
    }
}
