//! The desired Docker objects of a deployment, computed from [`Config`] as bollard types.
//!
//! Pure functions only: nothing here talks to dockerd, reads secrets or generates them. The
//! apply layer compares these objects with what the swarm has and creates or updates the
//! difference; it resolves secret and config names to ids (the specs reference them by name).
//! Every object carries the label `swarmhub.managed=true` so status and removal find exactly
//! what swarmhub made. No secret value ever appears in a plan: secrets are referenced by name,
//! with the way their value is obtained when the secret is missing.
//!
//! The hub gets no socket of dockerd's: the Docker gate ([`gate`], one task on every manager)
//! holds it and lets the hub create and manage exactly its notebook services, through a socket
//! in a local volume the two share.

pub mod gate;

pub use gate::{
    NOTEBOOK_ROLES, docker_gate_args, docker_gate_rules, docker_gate_service,
    docker_gate_volume_mount,
};

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use bollard::models::{
    ConfigSpec, EndpointPortConfig, EndpointPortConfigProtocolEnum,
    EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum, Mount, MountType,
    NetworkAttachmentConfig, NetworkCreateRequest, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1,
    TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use serde::Serialize;

use crate::names;
use crate::names::{
    COMPONENT_LABEL, COOKIE_SECRET, CRYPT_KEY_SECRET, FIREWALL_CHECK_SERVICE, HUB_CONFIG_PREFIX,
    HUB_TLS_CERT_FILE, HUB_TLS_KEY_FILE, MANAGED_LABEL, MOUNT_CHECK_SERVICE, NFSD_TOKEN_SECRET,
    PLUGIN_ALIAS, ROLLOUT_SERVICE, SPEC_LABEL,
};
use crate::settings::hub;
use crate::settings::tls::HubTlsFiles;
use crate::settings::{Config, ConfigError, HUB_CONTAINER_PORT, HUB_DATA_DIR};

/// Where the generated `jupyterhub_config.py` is mounted in the hub container.
pub const HUB_CONFIG_TARGET: &str = "/srv/jupyterhub/jupyterhub_config.py";
/// The network of services and jobs that run in their node's own network namespace.
pub const HOST_NETWORK: &str = "host";
/// Capabilities of the jobs that run the node's iptables after a chroot into its root.
pub const FIREWALL_CAPABILITIES: &[&str] = &["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_CHROOT"];
/// nfsd's data root inside its container (a bind of `cluster.nfsd_data_dir`).
pub const NFSD_CONTAINER_DATA: &str = "/data";
/// Where dockerd's socket (`cluster.docker_socket` on the node) appears in the Docker gate and
/// the rollout job (never in the hub).
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// Random bytes of a generated secret (written as hex).
pub const GENERATED_SECRET_BYTES: usize = 32;
/// Capabilities nfsd needs on top of Docker's defaults: open files by handle, act as each
/// volume's identity, give new files the store owner. Most are in Docker's default set; they
/// are listed so a daemon with a reduced default set still runs nfsd. `CAP_DAC_READ_SEARCH` (not
/// a default) unlocks `open_by_handle_at` in Docker's default seccomp profile, and
/// `CAP_SYS_ADMIN` unlocks `name_to_handle_at`, which that profile otherwise refuses with EPERM
/// (measured with docker.io 20.10; Swarm services cannot choose another seccomp profile there).
pub const NFSD_CAPABILITIES: &[&str] = &[
    "CAP_DAC_READ_SEARCH",
    "CAP_SYS_ADMIN",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_CHOWN",
];

/// How the admin hands over a secret's value for this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretInput {
    /// read this file
    File(PathBuf),
    /// read standard input
    Stdin,
}

/// What the CLI was given for this run besides the config, and what the swarm says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanInputs {
    /// The LDAP bind password (`--ldap-password-file FILE|-`).
    pub ldap_password: Option<SecretInput>,
    /// The registry password (`--registry-password-file FILE`), stored for the nodes.
    pub registry_password: Option<SecretInput>,
    /// The addresses of the swarm's nodes (`Status.Addr`), the only NFS clients nfsd accepts
    /// besides loopback (see [`nfsd_allow`]).
    pub node_addrs: Vec<String>,
    /// The hub's certificate and key, read and checked ([`crate::settings::tls::prepare`]); `None`
    /// with `tls.mode = "off"`.
    pub tls: Option<HubTlsFiles>,
}

/// The fingerprint of a desired spec: replicas and the fingerprint label itself left out, so
/// that stopping (replicas 0) and starting do not count as a change of spec.
pub fn fingerprint(spec: &ServiceSpec) -> String {
    let mut s = spec.clone();
    s.mode = None;
    if let Some(l) = s.labels.as_mut() {
        l.remove(SPEC_LABEL);
    }
    // through Value, whose maps are sorted: label and env maps are HashMaps, whose order
    // differs between processes
    let json = serde_json::to_value(&s)
        .map(|v| v.to_string())
        .unwrap_or_default();
    blake3::hash(json.as_bytes()).to_hex()[..16].to_string()
}

/// The replica count of a replicated service.
pub fn replicas_of(spec: &ServiceSpec) -> Option<i64> {
    spec.mode.as_ref()?.replicated.as_ref()?.replicas
}

/// Where a secret's value comes from when it must be created. Existing secrets are never
/// replaced by the lifecycle commands (rotating one would log every user out or make stored
/// auth state unreadable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SecretSource {
    /// Random bytes, written as lower-case hex, created only when the secret is missing.
    Generated {
        /// how many random bytes
        bytes: usize,
    },
    /// Given by the admin this run (replaces the secret's value if it differs).
    Input {
        /// file or stdin
        from: SecretInput,
    },
    /// Must already exist in the swarm; the admin gave no value this run.
    Existing {
        /// the flag that provides it
        flag: String,
    },
    /// A file whose content the secret's name carries a hash of: an existing secret of that
    /// name holds the same bytes, a changed file is another secret.
    Content {
        /// the file, read as is
        path: PathBuf,
    },
}

/// One Docker secret of the deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedSecret {
    /// the secret's name (and its file name under `/run/secrets/`)
    pub name: String,
    /// how its value is obtained if it has to be created
    pub source: SecretSource,
    /// labels it is created with
    pub labels: HashMap<String, String>,
}

/// Everything a full deployment consists of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// the attachable overlay network
    pub network: NetworkCreateRequest,
    /// secrets, referenced by name from the services
    pub secrets: Vec<PlannedSecret>,
    /// the generated `jupyterhub_config.py`
    pub hub_config: ConfigSpec,
    /// swarmhub-nfsd, pinned to the storage node
    pub nfsd: ServiceSpec,
    /// the Docker gate on every manager, the only holder of dockerd's socket
    pub docker_gate: ServiceSpec,
    /// JupyterHub on a manager, reaching Docker only through the gate
    pub hub: ServiceSpec,
}

/// The plan of `cfg` (which [`Config::load`] has validated).
pub fn plan(cfg: &Config, inputs: &PlanInputs) -> Result<Plan, ConfigError> {
    let settings = cfg.hub_settings()?;
    let hub_config = hub_config(&settings);
    Ok(Plan {
        network: network(cfg),
        secrets: secrets(cfg, inputs),
        nfsd: nfsd_service(cfg, &inputs.node_addrs),
        docker_gate: docker_gate_service(cfg, &docker_gate_rules(&settings)),
        hub: hub_service(
            cfg,
            hub_config.name.as_deref().unwrap_or_default(),
            inputs.tls.as_ref(),
        ),
        hub_config,
    })
}

/// `swarmhub.managed=true` and `swarmhub.component=<component>`.
pub fn labels(component: &str) -> HashMap<String, String> {
    HashMap::from([
        (MANAGED_LABEL.to_string(), "true".to_string()),
        (COMPONENT_LABEL.to_string(), component.to_string()),
    ])
}

/// The overlay network: attachable, so the hub's SwarmSpawner can attach notebook services and
/// admins can attach debugging containers.
pub fn network(cfg: &Config) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: cfg.cluster.network.clone(),
        driver: Some("overlay".into()),
        scope: Some("swarm".into()),
        attachable: Some(true),
        labels: Some(labels("network")),
        ..Default::default()
    }
}

/// The secrets: three generated, the LDAP password only when a bind DN is configured.
pub fn secrets(cfg: &Config, inputs: &PlanInputs) -> Vec<PlannedSecret> {
    let generated = |name: &str| PlannedSecret {
        name: name.to_string(),
        source: SecretSource::Generated {
            bytes: GENERATED_SECRET_BYTES,
        },
        labels: labels("secret"),
    };
    let mut out = vec![
        generated(NFSD_TOKEN_SECRET),
        generated(COOKIE_SECRET),
        generated(CRYPT_KEY_SECRET),
    ];
    if cfg.ldap.bind_dn.is_some() {
        out.push(PlannedSecret {
            name: cfg.ldap.password_secret.clone(),
            source: match &inputs.ldap_password {
                Some(from) => SecretSource::Input { from: from.clone() },
                None => SecretSource::Existing {
                    flag: "--ldap-password-file".into(),
                },
            },
            labels: labels("secret"),
        });
    }
    if cfg.registry.address.is_some() && cfg.registry.username.is_some() {
        out.push(PlannedSecret {
            name: cfg.registry.password_secret.clone(),
            source: match &inputs.registry_password {
                Some(from) => SecretSource::Input { from: from.clone() },
                None => SecretSource::Existing {
                    flag: "--registry-password-file".into(),
                },
            },
            labels: labels("secret"),
        });
    }
    if let Some(t) = &inputs.tls {
        let (cert, key) = t.secret_names(&cfg.cluster.hub_service);
        for (name, path) in [(cert, &t.cert), (key, &t.key)] {
            out.push(PlannedSecret {
                name,
                source: SecretSource::Content { path: path.clone() },
                labels: labels("hub-tls"),
            });
        }
    }
    out
}

/// The hub's `jupyterhub_config.py` as a Docker config named after its content.
pub fn hub_config(settings: &hub::HubSettings) -> ConfigSpec {
    let text = hub::render(settings);
    let hash = blake3::hash(text.as_bytes()).to_hex();
    ConfigSpec {
        name: Some(format!("{HUB_CONFIG_PREFIX}{}", &hash[..12])),
        labels: Some(labels("hub")),
        data: Some(base64::engine::general_purpose::STANDARD.encode(text)),
        ..Default::default()
    }
}

/// nfsd's `SWARMHUB_NFSD_ALLOW`: every node's address (its plugin mounts from it; nfsd runs in
/// the storage node's network, so it sees real source addresses) and loopback, as CIDRs, sorted
/// and without duplicates so the spec's fingerprint only changes when the nodes do. Never
/// empty (empty would mean everyone).
pub fn nfsd_allow(node_addrs: &[String]) -> String {
    let mut nets: Vec<String> = node_addrs
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty() && *a != "0.0.0.0")
        .map(|a| match a.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(_)) => format!("{a}/128"),
            _ => format!("{a}/32"),
        })
        .collect();
    nets.push("127.0.0.1/32".into());
    nets.sort();
    nets.dedup();
    nets.join(",")
}

/// swarmhub-nfsd: one replica on the node labelled `cluster.storage_node_label=true`, its data
/// root a bind of `cluster.nfsd_data_dir`, in that node's own network (no overlay: notebooks
/// must not reach it at all; see ARCHITECTURE.md), listening on `cluster.nfsd_port` and
/// `nfsd_api_port`, accepting NFS clients only from the nodes' addresses (`node_addrs`).
pub fn nfsd_service(cfg: &Config, node_addrs: &[String]) -> ServiceSpec {
    let c = &cfg.cluster;
    let l = &cfg.ldap;
    let mut env = vec![
        format!("SWARMHUB_NFSD_DATA_DIR={NFSD_CONTAINER_DATA}"),
        format!("SWARMHUB_NFSD_LISTEN=0.0.0.0:{}", c.nfsd_port),
        format!("SWARMHUB_NFSD_API_LISTEN=0.0.0.0:{}", c.nfsd_api_port),
        format!("SWARMHUB_NFSD_ALLOW={}", nfsd_allow(node_addrs)),
        format!(
            "SWARMHUB_NFSD_TOKEN_FILE={}",
            crate::settings::secret_path(NFSD_TOKEN_SECRET)
        ),
        format!("SWARMHUB_NFSD_LDAP_URL={}", l.url),
        format!("SWARMHUB_NFSD_LDAP_BASE_DN={}", l.base_dn),
    ];
    let mut secrets = vec![secret_ref(NFSD_TOKEN_SECRET)];
    if let Some(dn) = &l.bind_dn {
        env.push(format!("SWARMHUB_NFSD_LDAP_BIND_DN={dn}"));
        env.push(format!(
            "SWARMHUB_NFSD_LDAP_PASSWORD_FILE={}",
            crate::settings::secret_path(&l.password_secret)
        ));
        secrets.push(secret_ref(&l.password_secret));
    }
    ServiceSpec {
        name: Some(c.nfsd_service.clone()),
        labels: Some(labels("nfsd")),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(cfg.images.nfsd.clone()),
                labels: Some(labels("nfsd")),
                env: Some(env),
                mounts: Some(vec![bind(&c.nfsd_data_dir, NFSD_CONTAINER_DATA, false)]),
                secrets: Some(secrets),
                capability_add: Some(NFSD_CAPABILITIES.iter().map(|c| c.to_string()).collect()),
                // nfsd drains calls in flight and exits within 10 s of SIGTERM
                stop_grace_period: Some(15_000_000_000),
                ..Default::default()
            }),
            placement: Some(constraints(vec![format!(
                "node.labels.{}==true",
                c.storage_node_label
            )])),
            restart_policy: Some(restart(TaskSpecRestartPolicyConditionEnum::ANY)),
            networks: Some(vec![host_network()]),
            ..Default::default()
        }),
        mode: Some(replicas(1)),
        // its ports are the node's: an old and a new task cannot hold them at once
        update_config: Some(stop_first()),
        ..Default::default()
    }
}

/// JupyterHub: one replica on a manager (SwarmSpawner creates services, which only a manager
/// can), the database on a local volume, the generated config mounted, its secrets attached;
/// published in host mode, reachable by name on the overlay. No socket of dockerd's: the Docker
/// gate's volume is mounted at [`names::DOCKER_GATE_DIR`] and `DOCKER_HOST` names the gate's
/// socket ([`names::DOCKER_GATE_HOST`]), the hub's only way to Docker (see [`gate`]).
/// With `tls`, the certificate and key secrets appear as [`HUB_TLS_CERT_FILE`] and
/// [`HUB_TLS_KEY_FILE`] under `/run/secrets/` (fixed names, so the generated config does not
/// change with the certificate), and `cluster.hub_redirect_port` is published too.
pub fn hub_service(cfg: &Config, hub_config_name: &str, tls: Option<&HubTlsFiles>) -> ServiceSpec {
    let c = &cfg.cluster;
    let l = &cfg.ldap;
    let mut secrets = vec![secret_ref(COOKIE_SECRET), secret_ref(CRYPT_KEY_SECRET)];
    if l.bind_dn.is_some() {
        // read by the generated config at start (ldap.search_password_file)
        secrets.push(secret_ref(&l.password_secret));
    }
    let mut ports = vec![host_port(HUB_CONTAINER_PORT, c.hub_port)];
    if let Some(t) = tls {
        let (cert, key) = t.secret_names(&c.hub_service);
        for (name, file) in [(cert, HUB_TLS_CERT_FILE), (key, HUB_TLS_KEY_FILE)] {
            let mut r = secret_ref(&name);
            if let Some(f) = r.file.as_mut() {
                f.name = Some(file.into());
            }
            secrets.push(r);
        }
        if c.hub_redirect_port != 0 {
            ports.push(host_port(
                crate::settings::HUB_REDIRECT_CONTAINER_PORT,
                c.hub_redirect_port,
            ));
        }
    }
    ServiceSpec {
        name: Some(c.hub_service.clone()),
        labels: Some(labels("hub")),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(cfg.images.hub.clone()),
                labels: Some(labels("hub")),
                args: Some(vec![
                    "jupyterhub".into(),
                    "--config".into(),
                    HUB_CONFIG_TARGET.into(),
                ]),
                // the hub image's entrypoint exports JUPYTERHUB_CRYPT_KEY and JPY_COOKIE_SECRET
                // from these files before it starts jupyterhub; the values are never in env
                // settings of the service, which every docker user can read
                env: Some(vec![
                    format!(
                        "JUPYTERHUB_CRYPT_KEY_FILE={}",
                        crate::settings::secret_path(CRYPT_KEY_SECRET)
                    ),
                    format!(
                        "JPY_COOKIE_SECRET_FILE={}",
                        crate::settings::secret_path(COOKIE_SECRET)
                    ),
                    format!("DOCKER_HOST={}", names::DOCKER_GATE_HOST),
                ]),
                mounts: Some(vec![
                    docker_gate_volume_mount(cfg),
                    Mount {
                        target: Some(HUB_DATA_DIR.into()),
                        source: Some(c.hub_data_volume.clone()),
                        typ: Some(MountType::VOLUME),
                        ..Default::default()
                    },
                ]),
                configs: Some(vec![TaskSpecContainerSpecConfigs {
                    file: Some(TaskSpecContainerSpecFile1 {
                        name: Some(HUB_CONFIG_TARGET.into()),
                        uid: Some("0".into()),
                        gid: Some("0".into()),
                        mode: Some(0o444),
                    }),
                    config_name: Some(hub_config_name.to_string()),
                    ..Default::default()
                }]),
                secrets: Some(secrets),
                ..Default::default()
            }),
            placement: Some(constraints(vec!["node.role==manager".into()])),
            restart_policy: Some(restart(TaskSpecRestartPolicyConditionEnum::ANY)),
            networks: Some(vec![attach(cfg)]),
            ..Default::default()
        }),
        mode: Some(replicas(1)),
        update_config: Some(stop_first()),
        endpoint_spec: Some(endpoint(ports)),
        ..Default::default()
    }
}

/// Where the swarmhub CLI image carries the plugin it was built with (`config.json` and
/// `rootfs/`), so nodes install it without a registry.
pub const PLUGIN_BUNDLE_DIR: &str = "/usr/share/swarmhub/plugin";

/// The plugin's settings on every node: where nfsd is, how to mount, where its state lives.
pub fn plugin_settings(cfg: &Config, nfs_server: &str) -> Vec<String> {
    let c = &cfg.cluster;
    vec![
        format!("SWARMHUB_NFS_SERVER={nfs_server}"),
        format!("SWARMHUB_NFS_PORT={}", c.nfsd_port),
        format!("SWARMHUB_NFS_API_PORT={}", c.nfsd_api_port),
        format!("SWARMHUB_NFS_BACKEND={}", c.plugin_backend.as_str()),
        format!("SWARMHUB_NFS_HOME_PREFIX={}", names::HOME_VOLUME_PREFIX),
        format!("state.source={}", c.plugin_state_dir),
        format!("docker-socket.source={}", c.docker_socket),
    ]
}

/// Arguments of the node-side installer (`swarmhub plugin node-install`) that the rollout job
/// runs; the swarmhub CLI image's entrypoint is `swarmhub`.
fn rollout_args(cfg: &Config, nfs_server: &str) -> Vec<String> {
    let c = &cfg.cluster;
    let mut args: Vec<String> = [
        "plugin",
        "node-install",
        "--alias",
        PLUGIN_ALIAS,
        "--bundle",
    ]
    .map(String::from)
    .into();
    args.push(PLUGIN_BUNDLE_DIR.into());
    if cfg.registry.address.is_some() {
        args.extend(["--remote".into(), cfg.images.plugin.clone()]);
        // the notebook images wait on every node, so no spawn waits for a pull
        let mut pulls = vec![&cfg.images.notebook_student, &cfg.images.notebook_teacher];
        pulls.dedup();
        for image in pulls {
            args.extend(["--pull".into(), image.clone()]);
        }
        match &cfg.registry.username {
            Some(user) => args.extend([
                "--registry-username".into(),
                user.clone(),
                "--registry-secret-file".into(),
                crate::settings::secret_path(&cfg.registry.password_secret),
            ]),
            None => args.extend([
                "--registry-docker-config".into(),
                format!(
                    "{}/root/.docker/config.json",
                    crate::node::firewall::HOST_ROOT
                ),
            ]),
        }
    }
    for setting in plugin_settings(cfg, nfs_server) {
        args.extend(["--setting".into(), setting]);
    }
    args.extend([
        "--token-file".into(),
        crate::settings::secret_path(NFSD_TOKEN_SECRET),
        "--state-dir".into(),
        format!("/host{}", c.plugin_state_dir),
        "--firewall-root".into(),
        crate::node::firewall::HOST_ROOT.into(),
    ]);
    for port in nfsd_ports(cfg) {
        args.extend(["--firewall-port".into(), port.to_string()]);
    }
    args
}

/// The ports the firewall guard closes to containers: nfsd's NFS and API ports.
pub fn nfsd_ports(cfg: &Config) -> Vec<u16> {
    vec![cfg.cluster.nfsd_port, cfg.cluster.nfsd_api_port]
}

/// The mounts of a job that runs the node's own iptables: the node's `/` read-only at
/// [`crate::node::firewall::HOST_ROOT`] (binaries, libraries, xtables modules) and its `/run`
/// writable (the xtables lock that iptables-legacy shares with dockerd).
fn host_root_mounts() -> Vec<Mount> {
    let root = crate::node::firewall::HOST_ROOT;
    vec![
        bind("/", root, true),
        bind("/run", &format!("{root}/run"), false),
    ]
}

/// The one-shot global job of `doctor` that lists the firewall guard on every node.
pub fn firewall_check_service(cfg: &Config) -> ServiceSpec {
    let args = crate::node::firewall::node_args(
        crate::node::firewall::HOST_ROOT,
        &nfsd_ports(cfg),
        crate::node::firewall::Action::Check,
    );
    node_job(
        cfg,
        FIREWALL_CHECK_SERVICE,
        "firewall-check",
        args,
        host_root_mounts(),
        None,
        firewall_caps(),
    )
}

/// The one-shot global job of `status`, `doctor` and `notebooks restart --dead-mounts` that
/// checks, on every node, each swarmhub mount of each running container as the container sees
/// it (see [`crate::node::mounts`]): the node's dockerd socket to list the containers, the
/// node's procfs (read-only) to look through their roots, and CAP_SYS_PTRACE, which the kernel
/// asks for to open another user's `/proc/<pid>/root`.
pub fn mount_check_service(cfg: &Config) -> ServiceSpec {
    node_job(
        cfg,
        MOUNT_CHECK_SERVICE,
        "mount-check",
        vec![
            "plugin".into(),
            "node-mounts".into(),
            "--proc".into(),
            crate::node::mounts::HOST_PROC.into(),
        ],
        vec![
            bind(&cfg.cluster.docker_socket, DOCKER_SOCKET, false),
            bind("/proc", crate::node::mounts::HOST_PROC, true),
        ],
        None,
        vec!["CAP_SYS_PTRACE".into()],
    )
}

/// A one-shot global job of the swarmhub image in each node's own network, allowed to run the
/// node's iptables (see [`host_root_mounts`]); a failed node is reported by the CLI, not
/// retried behind the admin's back.
fn node_job(
    cfg: &Config,
    name: &str,
    component: &str,
    args: Vec<String>,
    mounts: Vec<Mount>,
    secrets: Option<Vec<TaskSpecContainerSpecSecrets>>,
    capabilities: Vec<String>,
) -> ServiceSpec {
    ServiceSpec {
        name: Some(name.into()),
        labels: Some(labels(component)),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(cfg.images.cli.clone()),
                labels: Some(labels(component)),
                args: Some(args),
                mounts: Some(mounts),
                secrets,
                capability_add: Some(capabilities),
                ..Default::default()
            }),
            restart_policy: Some(restart(TaskSpecRestartPolicyConditionEnum::NONE)),
            networks: Some(vec![host_network()]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            global_job: Some(HashMap::new()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn firewall_caps() -> Vec<String> {
    FIREWALL_CAPABILITIES
        .iter()
        .map(|c| c.to_string())
        .collect()
}

/// What the rollout installs the plugin with, as a short fingerprint: the node-side
/// installer's arguments (nfsd's address and ports, backend, state and socket paths, remote
/// image). The rollout records it on each node (label `swarmhub.plugin-settings`), so `run`
/// rolls the plugin out again when the settings changed and `doctor` tells stale nodes apart.
pub fn plugin_settings_fingerprint(cfg: &Config, nfs_server: &str) -> String {
    let args = rollout_args(cfg, nfs_server).join("\0");
    blake3::hash(args.as_bytes()).to_hex()[..12].to_string()
}

/// The one-shot global job that installs or upgrades the `swarmhub-nfs` plugin on every node
/// through that node's own dockerd socket, and puts nfsd's token into the plugin's state
/// directory; before that it installs the firewall guard of nfsd's ports with the node's own
/// iptables, hence the node's network, its root (read-only) and CAP_NET_ADMIN. `nfs_server` is
/// the storage node's address as the nodes reach it (the plugin's static binary cannot resolve
/// names). The state directory's parent is bound, not the directory
/// itself, because a bind source must exist and the job creates the directory on fresh nodes.
pub fn plugin_rollout_service(cfg: &Config, nfs_server: &str) -> ServiceSpec {
    let state = std::path::Path::new(&cfg.cluster.plugin_state_dir);
    let parent = state
        .parent()
        .map_or("/".to_string(), |p| p.display().to_string());
    node_job(
        cfg,
        ROLLOUT_SERVICE,
        "plugin-rollout",
        rollout_args(cfg, nfs_server),
        [
            vec![bind(&cfg.cluster.docker_socket, DOCKER_SOCKET, false)],
            host_root_mounts(),
            vec![bind(&parent, &format!("/host{parent}"), false)],
        ]
        .concat(),
        Some(rollout_secrets(cfg)),
        firewall_caps(),
    )
}

/// nfsd's token, and the registry's password when the nodes log in with one.
fn rollout_secrets(cfg: &Config) -> Vec<TaskSpecContainerSpecSecrets> {
    let mut out = vec![secret_ref(NFSD_TOKEN_SECRET)];
    if cfg.registry.address.is_some() && cfg.registry.username.is_some() {
        out.push(secret_ref(&cfg.registry.password_secret));
    }
    out
}

pub(crate) fn secret_ref(name: &str) -> TaskSpecContainerSpecSecrets {
    TaskSpecContainerSpecSecrets {
        file: Some(TaskSpecContainerSpecFile {
            name: Some(name.to_string()),
            uid: Some("0".into()),
            gid: Some("0".into()),
            mode: Some(0o400),
        }),
        secret_name: Some(name.to_string()),
        ..Default::default()
    }
}

fn bind(source: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        source: Some(source.to_string()),
        target: Some(target.to_string()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    }
}

pub(crate) fn constraints(c: Vec<String>) -> TaskSpecPlacement {
    TaskSpecPlacement {
        constraints: Some(c),
        ..Default::default()
    }
}

pub(crate) fn restart(condition: TaskSpecRestartPolicyConditionEnum) -> TaskSpecRestartPolicy {
    TaskSpecRestartPolicy {
        condition: Some(condition),
        delay: Some(5_000_000_000),
        ..Default::default()
    }
}

pub(crate) fn replicas(n: i64) -> ServiceSpecMode {
    ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated { replicas: Some(n) }),
        ..Default::default()
    }
}

/// Host-mode ports cannot be held by an old and a new task at once: stop first, roll back when
/// the new task fails.
pub(crate) fn stop_first() -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: Some(1),
        order: Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
        failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
        ..Default::default()
    }
}

/// The node's own network namespace.
pub(crate) fn host_network() -> NetworkAttachmentConfig {
    NetworkAttachmentConfig {
        target: Some(HOST_NETWORK.into()),
        ..Default::default()
    }
}

pub(crate) fn attach(cfg: &Config) -> NetworkAttachmentConfig {
    NetworkAttachmentConfig {
        target: Some(cfg.cluster.network.clone()),
        ..Default::default()
    }
}

/// dnsrr (service VIPs need IPVS, which not every kernel has) with host-mode ports (the ingress
/// mesh needs IPVS as well).
pub(crate) fn endpoint(ports: Vec<EndpointPortConfig>) -> EndpointSpec {
    EndpointSpec {
        mode: Some(EndpointSpecModeEnum::DNSRR),
        ports: Some(ports),
    }
}

pub(crate) fn host_port(target: u16, published: u16) -> EndpointPortConfig {
    EndpointPortConfig {
        protocol: Some(EndpointPortConfigProtocolEnum::TCP),
        target_port: Some(target.into()),
        published_port: Some(published.into()),
        publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (type, source, target) of each mount of a container spec.
    pub(crate) fn mounts_of(c: &TaskSpecContainerSpec) -> Vec<(MountType, String, String)> {
        c.mounts
            .iter()
            .flatten()
            .map(|m| {
                (
                    m.typ.unwrap(),
                    m.source.clone().unwrap_or_default(),
                    m.target.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn container(s: &ServiceSpec) -> &TaskSpecContainerSpec {
        s.task_template
            .as_ref()
            .unwrap()
            .container_spec
            .as_ref()
            .unwrap()
    }

    fn constraints_of(s: &ServiceSpec) -> Vec<String> {
        s.task_template
            .as_ref()
            .unwrap()
            .placement
            .as_ref()
            .unwrap()
            .constraints
            .clone()
            .unwrap()
    }

    fn ports_of(s: &ServiceSpec) -> Vec<(i64, i64, EndpointPortConfigPublishModeEnum)> {
        let e = s.endpoint_spec.as_ref().unwrap();
        assert_eq!(e.mode, Some(EndpointSpecModeEnum::DNSRR));
        e.ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p.target_port.unwrap(),
                    p.published_port.unwrap(),
                    p.publish_mode.unwrap(),
                )
            })
            .collect()
    }

    fn secret_names(s: &ServiceSpec) -> Vec<(String, String)> {
        container(s)
            .secrets
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r.secret_id, None, "ids are resolved by apply");
                (
                    r.secret_name.clone().unwrap(),
                    r.file.as_ref().unwrap().name.clone().unwrap(),
                )
            })
            .collect()
    }

    fn managed(l: &Option<HashMap<String, String>>) -> bool {
        l.as_ref()
            .is_some_and(|l| l.get(MANAGED_LABEL).map(String::as_str) == Some("true"))
    }

    fn default_plan() -> Plan {
        plan(&Config::default(), &PlanInputs::default()).unwrap()
    }

    #[test]
    fn network_is_an_attachable_overlay() {
        let n = default_plan().network;
        assert_eq!(n.name, "swarmhub");
        assert_eq!(n.driver.as_deref(), Some("overlay"));
        assert_eq!(n.attachable, Some(true));
        assert!(managed(&n.labels));
    }

    #[test]
    fn nfsd_is_pinned_to_the_storage_node() {
        let p = default_plan();
        let s = &p.nfsd;
        assert_eq!(s.name.as_deref(), Some("swarmhub-nfsd"));
        assert_eq!(constraints_of(s), ["node.labels.swarmhub.storage==true"]);
        let c = container(s);
        assert_eq!(c.image.as_deref(), Some("swarmhub/nfsd:0.1.0"));
        let m = &c.mounts.as_ref().unwrap()[0];
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.source.as_deref(), Some("/srv/swarmhub"));
        assert_eq!(m.target.as_deref(), Some("/data"));
        let caps = c.capability_add.as_ref().unwrap();
        assert!(caps.contains(&"CAP_DAC_READ_SEARCH".to_string()));
        let env = c.env.as_ref().unwrap();
        assert!(env.contains(&"SWARMHUB_NFSD_TOKEN_FILE=/run/secrets/swarmhub-nfsd-token".into()));
        assert!(env.contains(&"SWARMHUB_NFSD_DATA_DIR=/data".into()));
        assert!(env.contains(&"SWARMHUB_NFSD_LDAP_URL=ldap://ldap.example.org".into()));
        assert!(
            !env.iter()
                .any(|e| e.starts_with("SWARMHUB_NFSD_LDAP_BIND_DN"))
        );
        assert_eq!(
            secret_names(s),
            [(NFSD_TOKEN_SECRET.to_string(), NFSD_TOKEN_SECRET.to_string())]
        );
        assert!(managed(&s.labels) && managed(&c.labels));
        let nets = s.task_template.as_ref().unwrap().networks.as_ref().unwrap();
        let nets: Vec<_> = nets.iter().map(|n| n.target.clone().unwrap()).collect();
        assert_eq!(nets, ["host"], "not on the notebooks' overlay");
        assert_eq!(
            s.mode
                .as_ref()
                .unwrap()
                .replicated
                .as_ref()
                .unwrap()
                .replicas,
            Some(1)
        );
        assert_eq!(
            s.update_config.as_ref().unwrap().order,
            Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST)
        );
    }

    #[test]
    fn nfsd_listens_in_the_node_network_for_the_nodes_only() {
        let mut cfg = Config::default();
        cfg.cluster.nfsd_port = 2050;
        cfg.cluster.nfsd_api_port = 8050;
        let addrs = ["10.0.0.7", "10.0.0.5", "", "10.0.0.5", "fd00::1"].map(String::from);
        let s = nfsd_service(&cfg, &addrs);
        // no published ports: nfsd holds the node's ports itself
        assert!(s.endpoint_spec.is_none());
        let env = container(&s).env.clone().unwrap();
        assert!(
            env.contains(&"SWARMHUB_NFSD_LISTEN=0.0.0.0:2050".into()),
            "{env:?}"
        );
        assert!(
            env.contains(&"SWARMHUB_NFSD_API_LISTEN=0.0.0.0:8050".into()),
            "{env:?}"
        );
        assert!(
            env.contains(
                &"SWARMHUB_NFSD_ALLOW=10.0.0.5/32,10.0.0.7/32,127.0.0.1/32,fd00::1/128".into()
            ),
            "{env:?}"
        );
        // the allow list is never empty (empty means everyone)
        assert_eq!(nfsd_allow(&[]), "127.0.0.1/32");
        // a joined node changes the spec (and so its fingerprint): `run` updates nfsd
        let more = nfsd_service(&cfg, &["10.0.0.5".into(), "10.0.0.9".into()]);
        assert_ne!(fingerprint(&s), fingerprint(&more));
        let p = plan(
            &cfg,
            &PlanInputs {
                node_addrs: vec!["10.0.0.5".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            container(&p.nfsd)
                .env
                .as_ref()
                .unwrap()
                .contains(&"SWARMHUB_NFSD_ALLOW=10.0.0.5/32,127.0.0.1/32".into())
        );
    }

    #[test]
    fn firewall_jobs_run_the_node_iptables_in_its_network() {
        let cfg = Config::default();
        for s in [
            plugin_rollout_service(&cfg, "10.0.0.5"),
            firewall_check_service(&cfg),
        ] {
            let t = s.task_template.as_ref().unwrap();
            let nets = t.networks.as_ref().unwrap();
            assert_eq!(nets[0].target.as_deref(), Some("host"));
            let c = container(&s);
            let caps = c.capability_add.clone().unwrap();
            assert!(caps.contains(&"CAP_NET_ADMIN".to_string()), "{caps:?}");
            let mounts: Vec<_> = c
                .mounts
                .as_ref()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m.source.clone().unwrap(),
                        m.target.clone().unwrap(),
                        m.read_only.unwrap(),
                    )
                })
                .collect();
            assert!(
                mounts.contains(&("/".into(), "/host".into(), true)),
                "{mounts:?}"
            );
            assert!(
                mounts.contains(&("/run".into(), "/host/run".into(), false)),
                "{mounts:?}"
            );
            assert!(s.mode.as_ref().unwrap().global_job.is_some());
        }
        let args = container(&firewall_check_service(&cfg))
            .args
            .clone()
            .unwrap()
            .join(" ");
        assert_eq!(
            args,
            "plugin node-firewall --root /host --port 2049 --port 8049 check"
        );
        let args = container(&plugin_rollout_service(&cfg, "10.0.0.5"))
            .args
            .clone()
            .unwrap()
            .join(" ");
        assert!(
            args.ends_with("--firewall-root /host --firewall-port 2049 --firewall-port 8049"),
            "{args}"
        );
    }

    #[test]
    fn hub_runs_on_a_manager_with_the_gate_volume_config_and_secrets() {
        let p = default_plan();
        let s = &p.hub;
        assert_eq!(s.name.as_deref(), Some("swarmhub-hub"));
        assert_eq!(constraints_of(s), ["node.role==manager"]);
        use EndpointPortConfigPublishModeEnum::HOST;
        assert_eq!(ports_of(s), [(8000, 8000, HOST)]);
        let c = container(s);
        let mounts = mounts_of(c);
        assert_eq!(
            mounts,
            [
                (
                    MountType::VOLUME,
                    "swarmhub-hub-docker-gate".into(),
                    "/run/swarmhub-docker-gate".into()
                ),
                (
                    MountType::VOLUME,
                    "swarmhub-hub-data".into(),
                    "/srv/jupyterhub/data".into()
                ),
            ]
        );
        assert!(
            c.env
                .as_ref()
                .unwrap()
                .contains(&"DOCKER_HOST=unix:///run/swarmhub-docker-gate/docker.sock".into())
        );
        let cfg = &c.configs.as_ref().unwrap()[0];
        assert_eq!(
            cfg.file.as_ref().unwrap().name.as_deref(),
            Some("/srv/jupyterhub/jupyterhub_config.py")
        );
        assert_eq!(cfg.config_name, p.hub_config.name);
        let names: Vec<_> = secret_names(s).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, [COOKIE_SECRET, CRYPT_KEY_SECRET]);
        assert!(managed(&s.labels));
        assert_eq!(
            c.args.as_ref().unwrap(),
            &[
                "jupyterhub",
                "--config",
                "/srv/jupyterhub/jupyterhub_config.py"
            ]
        );
    }

    /// The hub of every kind of plan: no bind mount at all, nothing of dockerd's socket, and
    /// `DOCKER_HOST` the gate's socket.
    #[test]
    fn the_hub_has_no_bind_mount_and_no_docker_socket() {
        let mut tls = Config::default();
        tls.cluster.public_url = "https://hub.example.edu/".into();
        tls.tls.mode = crate::settings::TlsMode::Files;
        tls.cluster.docker_socket = "/run/other/docker.sock".into();
        let files = HubTlsFiles {
            cert: "/etc/swarmhub/hub.pem".into(),
            key: "/etc/swarmhub/hub-key.pem".into(),
            fingerprint: "0123456789ab".into(),
        };
        let with_tls = PlanInputs {
            tls: Some(files),
            ..PlanInputs::default()
        };
        let mut local = Config::default();
        local.hub.volumes = crate::settings::VolumeMode::Local;
        for (cfg, inputs) in [
            (Config::default(), PlanInputs::default()),
            (tls, with_tls),
            (local, PlanInputs::default()),
        ] {
            let p = plan(&cfg, &inputs).unwrap();
            let c = container(&p.hub);
            let mounts = c.mounts.as_ref().unwrap();
            assert!(
                mounts.iter().all(|m| m.typ == Some(MountType::VOLUME)),
                "{mounts:?}"
            );
            let json = serde_json::to_string(&p.hub).unwrap();
            assert!(!json.contains(&cfg.cluster.docker_socket), "{json}");
            assert!(!json.contains(DOCKER_SOCKET), "{json}");
            let hosts: Vec<&String> = c
                .env
                .iter()
                .flatten()
                .filter(|e| e.starts_with("DOCKER_HOST="))
                .collect();
            assert_eq!(hosts, [&format!("DOCKER_HOST={}", names::DOCKER_GATE_HOST)]);
            // the hub's socket is the one the gate listens on, in the volume both mount
            let gate = container(&p.docker_gate);
            let args = gate.args.as_ref().unwrap();
            let listen = args.iter().position(|a| a == "--listen").unwrap() + 1;
            assert_eq!(format!("unix://{}", args[listen]), names::DOCKER_GATE_HOST);
            let shared = |mounts: &[Mount]| {
                mounts
                    .iter()
                    .find(|m| m.target.as_deref() == Some(names::DOCKER_GATE_DIR))
                    .map(|m| (m.typ, m.source.clone()))
            };
            assert_eq!(
                shared(mounts),
                shared(gate.mounts.as_ref().unwrap()),
                "one volume"
            );
            assert!(shared(mounts).is_some());
            assert!(args[listen].starts_with(&format!("{}/", names::DOCKER_GATE_DIR)));
        }
    }

    #[test]
    fn the_gate_is_global_on_the_managers_with_the_socket_the_volume_and_the_rules() {
        let mut cfg = Config::default();
        cfg.cluster.hub_service = "course-hub".into();
        cfg.hub.volumes = crate::settings::VolumeMode::Local;
        let p = plan(&cfg, &PlanInputs::default()).unwrap();
        let g = &p.docker_gate;
        assert_eq!(g.name.as_deref(), Some("course-hub-docker-gate"));
        let mode = g.mode.as_ref().unwrap();
        assert!(mode.global.is_some() && mode.replicated.is_none());
        assert_eq!(replicas_of(g), None);
        assert_eq!(constraints_of(g), ["node.role==manager"]);
        let c = container(g);
        let mounts = mounts_of(c);
        assert_eq!(
            mounts,
            [
                (
                    MountType::BIND,
                    cfg.cluster.docker_socket.clone(),
                    DOCKER_SOCKET.into()
                ),
                (
                    MountType::VOLUME,
                    "course-hub-docker-gate".into(),
                    names::DOCKER_GATE_DIR.into()
                ),
            ]
        );
        let json = c.env.as_ref().unwrap()[0]
            .strip_prefix(&format!("{}=", swarmhub_docker_gate::RULES_ENV))
            .unwrap();
        let rules = swarmhub_docker_gate::GateRules::from_json(json).unwrap();
        assert_eq!(rules, docker_gate_rules(&cfg.hub_settings().unwrap()));
        assert_eq!(rules.mounts[0].source, "local-home-{user}");
        assert!(managed(&g.labels) && managed(&c.labels));
        // no secret reaches the gate, in its environment or otherwise
        assert!(c.secrets.is_none());
        let planned: Vec<String> = p.secrets.iter().map(|s| s.name.clone()).collect();
        let text = serde_json::to_string(g).unwrap();
        for name in &planned {
            assert!(!text.contains(name.as_str()), "{name} in {text}");
        }
        // a changed setting the rules depend on is a changed gate
        let mut other = cfg.clone();
        other.images.notebook_teacher = "swarmhub/notebook-teacher:0.2.0".into();
        let q = plan(&other, &PlanInputs::default()).unwrap();
        assert_ne!(fingerprint(&q.docker_gate), fingerprint(g));
    }

    #[test]
    fn hub_config_is_the_rendered_file_named_by_its_hash() {
        let cfg = Config::default();
        let settings = cfg.hub_settings().unwrap();
        let spec = hub_config(&settings);
        let text = hub::render(&settings);
        let data = base64::engine::general_purpose::STANDARD
            .decode(spec.data.as_ref().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(data).unwrap(), text);
        let name = spec.name.unwrap();
        assert!(name.starts_with(HUB_CONFIG_PREFIX) && name.len() == HUB_CONFIG_PREFIX.len() + 12);
        assert!(managed(&spec.labels));
        // a changed setting is a new config
        let mut other = Config::default();
        other.hub.course_id = "other".into();
        assert_ne!(
            hub_config(&other.hub_settings().unwrap()).name.unwrap(),
            name
        );
    }

    #[test]
    fn secrets_are_named_and_sourced_never_valued() {
        let p = default_plan();
        let names: Vec<_> = p.secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [NFSD_TOKEN_SECRET, COOKIE_SECRET, CRYPT_KEY_SECRET]);
        for s in &p.secrets {
            assert_eq!(s.source, SecretSource::Generated { bytes: 32 });
            assert!(managed(&Some(s.labels.clone())));
        }

        let mut cfg = Config::default();
        cfg.ldap.bind_dn = Some("cn=reader,dc=example,dc=org".into());
        let without = plan(&cfg, &PlanInputs::default()).unwrap();
        assert_eq!(
            without.secrets[3].source,
            SecretSource::Existing {
                flag: "--ldap-password-file".into()
            }
        );
        let inputs = PlanInputs {
            ldap_password: Some(SecretInput::Stdin),
            ..Default::default()
        };
        let with = plan(&cfg, &inputs).unwrap();
        assert_eq!(with.secrets[3].name, "swarmhub-ldap-password");
        assert_eq!(
            with.secrets[3].source,
            SecretSource::Input {
                from: SecretInput::Stdin
            }
        );
        // both services get the password as a file, never as a value
        assert!(secret_names(&with.nfsd).contains(&(
            "swarmhub-ldap-password".into(),
            "swarmhub-ldap-password".into()
        )));
        assert!(
            secret_names(&with.hub)
                .iter()
                .any(|(n, _)| n == "swarmhub-ldap-password")
        );
        let env = container(&with.nfsd).env.clone().unwrap();
        assert!(env.contains(
            &"SWARMHUB_NFSD_LDAP_PASSWORD_FILE=/run/secrets/swarmhub-ldap-password".into()
        ));
        // the serialized plan holds names and sources only
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains("\"kind\":\"input\""));
    }

    #[test]
    fn with_a_registry_the_rollout_pulls_the_plugin_and_the_notebook_images_logged_in() {
        let mut cfg = Config::from_toml(
            "[registry]\naddress = \"10.0.0.9:5000\"\ntls = false\n",
            std::path::Path::new("swarmhub.toml"),
            Vec::new(),
        )
        .unwrap();
        let s = plugin_rollout_service(&cfg, "10.0.0.5");
        let c = container(&s);
        assert_eq!(
            c.image.as_deref(),
            Some("10.0.0.9:5000/swarmhub/swarmhub:0.1.0")
        );
        let args = c.args.as_ref().unwrap().join(" ");
        assert!(
            args.contains("--remote 10.0.0.9:5000/swarmhub/swarmhub-nfs:0.1.0 --pull 10.0.0.9:5000/swarmhub/notebook-student:0.1.0 --pull 10.0.0.9:5000/swarmhub/notebook-teacher:0.1.0 --registry-docker-config /host/root/.docker/config.json"),
            "{args}"
        );
        let secrets = |s: &ServiceSpec| -> Vec<String> {
            container(s)
                .secrets
                .iter()
                .flatten()
                .filter_map(|x| x.secret_name.clone())
                .collect()
        };
        assert_eq!(secrets(&s), [NFSD_TOKEN_SECRET]);
        let before = plugin_settings_fingerprint(&cfg, "10.0.0.5");
        // a user name: the nodes log in with the password's Docker secret, which `run` stores
        cfg.registry.username = Some("ann".into());
        let s = plugin_rollout_service(&cfg, "10.0.0.5");
        let args = container(&s).args.as_ref().unwrap().join(" ");
        assert!(
            args.contains("--registry-username ann --registry-secret-file /run/secrets/swarmhub-registry-password"),
            "{args}"
        );
        assert_eq!(
            secrets(&s),
            [NFSD_TOKEN_SECRET, "swarmhub-registry-password"]
        );
        let planned: Vec<String> = secrets_of(&cfg);
        assert!(
            planned.contains(&"swarmhub-registry-password".to_string()),
            "{planned:?}"
        );
        // a new notebook image (a new pin) is a new rollout: every node pulls it
        cfg.registry.username = None;
        cfg.images.notebook_student =
            "10.0.0.9:5000/swarmhub/notebook-student:0.1.0@sha256:ab".into();
        assert_ne!(plugin_settings_fingerprint(&cfg, "10.0.0.5"), before);
    }

    fn secrets_of(cfg: &Config) -> Vec<String> {
        secrets(cfg, &PlanInputs::default())
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn rollout_is_a_one_shot_global_job_on_each_nodes_socket() {
        let s = plugin_rollout_service(&Config::default(), "10.0.0.5");
        assert_eq!(s.name.as_deref(), Some(ROLLOUT_SERVICE));
        let mode = s.mode.as_ref().unwrap();
        assert!(mode.global_job.is_some() && mode.replicated.is_none() && mode.global.is_none());
        let t = s.task_template.as_ref().unwrap();
        assert_eq!(
            t.restart_policy.as_ref().unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        let c = container(&s);
        assert_eq!(c.image.as_deref(), Some("swarmhub/swarmhub:0.1.0"));
        let m = c.mounts.as_ref().unwrap();
        assert_eq!(m[0].source.as_deref(), Some(DOCKER_SOCKET));
        assert_eq!(m[3].source.as_deref(), Some("/var/lib"));
        assert_eq!(m[3].target.as_deref(), Some("/host/var/lib"));
        let args = c.args.as_ref().unwrap().join(" ");
        assert!(
            args.starts_with(
                "plugin node-install --alias swarmhub-nfs --bundle /usr/share/swarmhub/plugin --setting"
            ),
            "{args}"
        );
        assert!(
            args.contains("--setting SWARMHUB_NFS_SERVER=10.0.0.5"),
            "{args}"
        );
        assert!(
            args.contains(
                "--setting SWARMHUB_NFS_BACKEND=kernel --setting SWARMHUB_NFS_HOME_PREFIX=home- --setting state.source=/var/lib/swarmhub-nfs"
            ),
            "{args}"
        );
        assert!(!args.contains("--remote"), "{args}");
        assert!(
            args.contains("--state-dir /host/var/lib/swarmhub-nfs"),
            "{args}"
        );
        assert!(managed(&s.labels));
        // a job has no ports; it runs in the node's network (the firewall step)
        assert!(s.endpoint_spec.is_none());
        assert_eq!(
            t.networks.as_ref().unwrap()[0].target.as_deref(),
            Some("host")
        );
    }

    #[test]
    fn the_settings_fingerprint_follows_every_plugin_setting() {
        let cfg = Config::default();
        let base = plugin_settings_fingerprint(&cfg, "10.0.0.5");
        assert_eq!(base.len(), 12);
        assert_eq!(
            base,
            plugin_settings_fingerprint(&cfg, "10.0.0.5"),
            "stable"
        );
        assert_ne!(
            base,
            plugin_settings_fingerprint(&cfg, "10.0.0.6"),
            "nfsd's node"
        );
        let changed = |change: fn(&mut Config)| {
            let mut c = Config::default();
            change(&mut c);
            plugin_settings_fingerprint(&c, "10.0.0.5")
        };
        assert_ne!(base, changed(|c| c.cluster.nfsd_port = 2050));
        assert_ne!(base, changed(|c| c.cluster.nfsd_api_port = 8050));
        assert_ne!(
            base,
            changed(|c| c.cluster.plugin_state_dir = "/srv/state".into())
        );
        assert_ne!(
            base,
            changed(|c| c.cluster.docker_socket = "/run/d.sock".into())
        );
        assert_ne!(
            base,
            changed(|c| c.cluster.plugin_backend = crate::settings::PluginBackend::Fuse)
        );
        // not a plugin setting
        assert_eq!(base, changed(|c| c.cluster.hub_port = 8001));
    }

    #[test]
    fn specs_serialize_in_docker_api_shape() {
        let p = default_plan();
        let v = serde_json::to_value(&p.hub).unwrap();
        assert_eq!(v["EndpointSpec"]["Mode"], "dnsrr");
        assert_eq!(v["EndpointSpec"]["Ports"][0]["PublishMode"], "host");
        let v = serde_json::to_value(&p.nfsd).unwrap();
        assert_eq!(v["TaskTemplate"]["Networks"][0]["Target"], "host");
        assert_eq!(
            v["TaskTemplate"]["ContainerSpec"]["CapabilityAdd"][0],
            "CAP_DAC_READ_SEARCH"
        );
        let r = serde_json::to_value(plugin_rollout_service(&Config::default(), "x")).unwrap();
        assert_eq!(r["Mode"]["GlobalJob"], serde_json::json!({}));
    }

    #[test]
    fn the_certificate_is_two_secrets_named_by_content_and_the_redirect_a_second_port() {
        let mut cfg = Config::default();
        cfg.cluster.public_url = "https://hub.example.edu/".into();
        cfg.cluster.hub_redirect_port = 80;
        cfg.tls.mode = crate::settings::TlsMode::Files;
        let files = HubTlsFiles {
            cert: "/etc/swarmhub/hub.pem".into(),
            key: "/etc/swarmhub/hub-key.pem".into(),
            fingerprint: "0123456789ab".into(),
        };
        let inputs = PlanInputs {
            tls: Some(files.clone()),
            ..PlanInputs::default()
        };
        let p = plan(&cfg, &inputs).unwrap();
        let tls: Vec<_> = p
            .secrets
            .iter()
            .filter(|s| s.name.starts_with("swarmhub-hub-tls-"))
            .map(|s| (s.name.as_str(), s.source.clone()))
            .collect();
        assert_eq!(
            tls,
            [
                (
                    "swarmhub-hub-tls-cert-0123456789ab",
                    SecretSource::Content {
                        path: files.cert.clone()
                    }
                ),
                (
                    "swarmhub-hub-tls-key-0123456789ab",
                    SecretSource::Content {
                        path: files.key.clone()
                    }
                ),
            ]
        );
        // the hub sees them under fixed names, so its config does not change with them
        let files_in_hub: Vec<(String, String)> = container(&p.hub)
            .secrets
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| {
                r.secret_name
                    .as_deref()
                    .unwrap()
                    .starts_with("swarmhub-hub-tls-")
            })
            .map(|r| {
                (
                    r.secret_name.clone().unwrap(),
                    r.file.as_ref().unwrap().name.clone().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            files_in_hub,
            [
                (
                    "swarmhub-hub-tls-cert-0123456789ab".to_string(),
                    HUB_TLS_CERT_FILE.to_string()
                ),
                (
                    "swarmhub-hub-tls-key-0123456789ab".to_string(),
                    HUB_TLS_KEY_FILE.to_string()
                ),
            ]
        );
        use EndpointPortConfigPublishModeEnum::HOST;
        assert_eq!(ports_of(&p.hub), [(8000, 8000, HOST), (8080, 80, HOST)]);
        // another certificate: other secrets, the same hub config
        let other = PlanInputs {
            tls: Some(HubTlsFiles {
                fingerprint: "ba9876543210".into(),
                ..files
            }),
            ..PlanInputs::default()
        };
        let q = plan(&cfg, &other).unwrap();
        assert_eq!(q.hub_config.name, p.hub_config.name);
        assert_ne!(q.hub, p.hub);
        // TLS off: no certificate, one port
        assert_eq!(ports_of(&default_plan().hub), [(8000, 8000, HOST)]);
    }
}
