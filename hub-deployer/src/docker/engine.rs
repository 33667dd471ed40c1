//! The Docker operations the CLI uses, as a trait: bollard's model types
//! are the data, errors are typed ([`EngineError`]). The real engine is bollard's client
//! ([`super::real`]); the tests use an in-memory swarm that records every call
//! ([`super::fake`]).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{
    BuildInfo, Config, ConfigSpec, ContainerInspectResponse, ImageInspect, Network,
    NetworkCreateRequest, NetworkInspect, Node, NodeSpec, Plugin, PluginPrivilege, PushImageInfo,
    Secret, SecretSpec, Service, ServiceSpec, SwarmInitRequest, SystemInfo, Task,
    VolumeListResponse,
};
use futures_util::stream::BoxStream;

/// A failed Docker call, by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// 404: no such object.
    #[error("Docker responded with status code 404: {0}")]
    NotFound(String),
    /// 409: a name that exists, an object in use, a stale version.
    #[error("Docker responded with status code 409: {0}")]
    Conflict(String),
    /// No answer (connection refused, timed out, broken stream).
    #[error("{0}")]
    Unreachable(String),
    /// Any other answer of dockerd.
    #[error("Docker responded with status code {status}: {message}")]
    Other {
        /// HTTP status.
        status: u16,
        /// dockerd's message.
        message: String,
    },
}

impl EngineError {
    /// dockerd's message, without the status (for error texts).
    pub fn message(&self) -> &str {
        match self {
            EngineError::NotFound(m) | EngineError::Conflict(m) | EngineError::Unreachable(m) => m,
            EngineError::Other { message, .. } => message,
        }
    }
}

/// The fix for dockerd's answer `message` about the registry `address` when that answer says
/// the registry cannot be used as configured: plain HTTP where dockerd speaks HTTPS, or a
/// login wanted. `None` for other answers (a missing image, ...), which the caller knows best.
pub fn registry_access_fix(address: &str, message: &str) -> Option<String> {
    if message.contains("server gave HTTP response to HTTPS client") {
        Some(format!(
            "the registry speaks plain HTTP: set registry.tls = false and list {address} in every node's /etc/docker/daemon.json \"insecure-registries\" (then restart dockerd), or give it a certificate"
        ))
    } else if ["unauthorized", "authentication required", "denied"]
        .iter()
        .any(|w| message.contains(w))
    {
        Some("log in: set registry.username and give --registry-password-file FILE, or docker login on this machine".into())
    } else {
        None
    }
}

/// The 404 of an engine call, as `None`.
pub fn absent<T>(r: Result<T, EngineError>) -> Result<Option<T>, EngineError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(EngineError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One image to build from a Dockerfile (`Dockerfile` at the context's root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageBuild {
    /// The Dockerfile target.
    pub target: String,
    /// The reference the image gets.
    pub tag: String,
    /// `--build-arg`s.
    pub buildargs: HashMap<String, String>,
    /// The network of the build's RUN steps (`host`, ...), dockerd's default when `None`.
    pub network: Option<String>,
}

/// Who pushes to a registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryLogin {
    /// The registry's address (`host:port`).
    pub server: String,
    /// User name, if the registry wants one.
    pub username: Option<String>,
    /// Password, if the registry wants one.
    pub password: Option<String>,
}

/// What the CLI asks of the manager's dockerd. `label` filters are `key=value`.
#[async_trait]
pub trait Engine: std::fmt::Debug + Send + Sync {
    /// The daemon's state (swarm membership, node id).
    async fn info(&self) -> Result<SystemInfo, EngineError>;
    /// An image of this daemon.
    async fn inspect_image(&self, name: &str) -> Result<ImageInspect, EngineError>;
    /// A plugin of this daemon.
    async fn inspect_plugin(&self, name: &str) -> Result<Plugin, EngineError>;
    /// The privileges the plugin `remote` asks for; with `login`, asked through the dockerd at
    /// `host` (this engine's address) with it (see [`super::stream`]).
    async fn plugin_privileges(
        &self,
        host: &str,
        remote: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<Vec<PluginPrivilege>, EngineError>;
    /// Pull the plugin `remote` as `alias`, granting `privileges` (until the pull is done),
    /// logged in to its registry as `login` when given.
    async fn pull_plugin(
        &self,
        remote: &str,
        alias: &str,
        privileges: Vec<PluginPrivilege>,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError>;
    /// Push the plugin named by its registry reference `name` to that registry, through the
    /// dockerd at `host` (this engine's address: the push's progress is read to its end over
    /// a connection of its own, see [`super::stream`]).
    async fn push_plugin(
        &self,
        host: &str,
        name: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError>;
    /// Create the plugin `alias` from a bundle (a tar of `config.json` and `rootfs/`).
    async fn create_plugin(&self, alias: &str, tar: Vec<u8>) -> Result<(), EngineError>;
    /// Set `key=value` settings of a disabled plugin.
    async fn set_plugin(&self, alias: &str, settings: Vec<String>) -> Result<(), EngineError>;
    /// Enable a plugin, waiting up to `timeout_seconds` for it to start.
    async fn enable_plugin(&self, alias: &str, timeout_seconds: i32) -> Result<(), EngineError>;
    /// Disable a plugin without force (refused while its volumes are in use).
    async fn disable_plugin(&self, alias: &str) -> Result<(), EngineError>;
    /// Remove a disabled plugin without force.
    async fn remove_plugin(&self, alias: &str) -> Result<(), EngineError>;

    /// The swarm's nodes.
    async fn list_nodes(&self) -> Result<Vec<Node>, EngineError>;
    /// One node.
    async fn inspect_node(&self, id: &str) -> Result<Node, EngineError>;
    /// Replace a node's spec (labels); `version` is the node's current version.
    async fn update_node(&self, id: &str, spec: NodeSpec, version: i64) -> Result<(), EngineError>;

    /// One service (by name or id).
    async fn inspect_service(&self, name: &str) -> Result<Service, EngineError>;
    /// Services (with task counts), all or those with `label`.
    async fn list_services(&self, label: Option<&str>) -> Result<Vec<Service>, EngineError>;
    /// Create a service; its id. With `login`, Swarm passes it on to the nodes that pull the
    /// service's image (`--with-registry-auth`).
    async fn create_service(
        &self,
        spec: ServiceSpec,
        login: Option<&RegistryLogin>,
    ) -> Result<String, EngineError>;
    /// Replace a service's spec; `version` is the service's current version; `login` as in
    /// [`Engine::create_service`].
    async fn update_service(
        &self,
        name: &str,
        spec: ServiceSpec,
        version: i32,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError>;
    /// Remove a service.
    async fn delete_service(&self, name: &str) -> Result<(), EngineError>;
    /// The tasks of a service.
    async fn list_tasks(&self, service: &str) -> Result<Vec<Task>, EngineError>;
    /// What a task printed (stdout and stderr), as far as it could be read within `within`.
    async fn task_logs(&self, task: &str, within: Duration) -> String;

    /// Secrets (without their values).
    async fn list_secrets(&self) -> Result<Vec<Secret>, EngineError>;
    /// Create a secret; its id.
    async fn create_secret(&self, spec: SecretSpec) -> Result<String, EngineError>;
    /// Remove a secret (by id).
    async fn delete_secret(&self, id: &str) -> Result<(), EngineError>;

    /// Configs, all or those with `label`.
    async fn list_configs(&self, label: Option<&str>) -> Result<Vec<Config>, EngineError>;
    /// Create a config; its id.
    async fn create_config(&self, spec: ConfigSpec) -> Result<String, EngineError>;
    /// Remove a config (by id).
    async fn delete_config(&self, id: &str) -> Result<(), EngineError>;

    /// A network; with `swarm_scope`, the swarm's own record rather than this node's copy.
    async fn inspect_network(
        &self,
        name: &str,
        swarm_scope: bool,
    ) -> Result<NetworkInspect, EngineError>;
    /// Networks with `label`.
    async fn list_networks(&self, label: &str) -> Result<Vec<Network>, EngineError>;
    /// Create a network.
    async fn create_network(&self, req: NetworkCreateRequest) -> Result<(), EngineError>;
    /// Remove a network.
    async fn remove_network(&self, name: &str) -> Result<(), EngineError>;

    /// Make this dockerd a swarm's first manager.
    async fn init_swarm(&self, req: SwarmInitRequest) -> Result<(), EngineError>;
    /// The tasks of every service (one call, however many services).
    async fn list_all_tasks(&self) -> Result<Vec<Task>, EngineError>;
    /// This dockerd's volumes, of every driver.
    async fn list_volumes(&self) -> Result<VolumeListResponse, EngineError>;
    /// Remove one of this dockerd's volumes (refused with 409 while a container uses it).
    async fn remove_volume(&self, name: &str) -> Result<(), EngineError>;
    /// This dockerd's running containers, each inspected (mounts, labels, process id).
    async fn running_containers(&self) -> Result<Vec<ContainerInspectResponse>, EngineError>;

    /// Build `build` from the build context `context` (a tar); dockerd's output, line by line.
    fn build_image(
        &self,
        build: ImageBuild,
        context: Vec<u8>,
    ) -> BoxStream<'_, Result<BuildInfo, EngineError>>;
    /// The digest of the manifest `image` names in its registry (what a pull of it gets now).
    async fn registry_digest(
        &self,
        image: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<String, EngineError>;
    /// Pull `image` (by tag or digest) into this dockerd.
    async fn pull_image(
        &self,
        image: &str,
        login: Option<&RegistryLogin>,
    ) -> Result<(), EngineError>;
    /// Give the image `source` the reference `repo:tag` too.
    async fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), EngineError>;
    /// The files under `path` in `image`, as a tar whose entries start with `path`'s last
    /// component (read from a container that is created, never started, and removed).
    async fn image_files(&self, image: &str, path: &str) -> Result<Vec<u8>, EngineError>;

    /// Push `name:tag` to the registry of `login`; dockerd's progress, line by line.
    fn push_image<'a>(
        &'a self,
        name: &'a str,
        tag: &'a str,
        login: RegistryLogin,
    ) -> BoxStream<'a, Result<PushImageInfo, EngineError>>;
}
