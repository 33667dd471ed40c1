//! `swarmhub.toml`: the schema of the CLI's settings, how a file and the environment become one
//! validated [`Config`], and the hub settings derived from it.
//!
//! Every setting is `<section>.<key>` in the file and `SWARMHUB_<SECTION>_<KEY>` in the
//! environment (the environment wins). The override is generic: variables are mapped onto the
//! file's TOML table before it is deserialized, typed by the setting's default, so a new setting
//! needs no extra code. Unknown keys, in the file or in a known section's variables, are errors
//! naming the key. Nothing secret is a setting: secrets are Docker secrets (see `plan`).

pub mod hub;
pub mod tls;
pub mod tls_front;

use crate::names;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use self::hub::{HubSettings, LdapTls};

/// Prefix of every setting's environment variable.
pub const ENV_PREFIX: &str = "SWARMHUB_";
/// Where the CLI looks for its file when `--config`/`SWARMHUB_CONFIG` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "swarmhub.toml";
/// The commented default file `swarmhub init` writes. A test checks it parses to
/// [`Config::default`] and mentions every key.
pub const INIT_TEMPLATE: &str = include_str!("swarmhub.toml.tmpl");

/// The hub's public port inside its container (published as `cluster.hub_port`): the proxy's
/// without TLS, the TLS front's with it.
pub const HUB_CONTAINER_PORT: u16 = 8000;
/// Port inside the hub container where the TLS front redirects plain HTTP to HTTPS (published
/// as `cluster.hub_redirect_port`).
pub const HUB_REDIRECT_CONTAINER_PORT: u16 = 8080;
/// Port of the hub's internal API inside the overlay network (notebooks call it).
pub const HUB_API_PORT: u16 = 8081;
/// The hub's persisted directory inside its container: database (and JupyterHub's fallback
/// cookie secret file). Kept apart from `/srv/jupyterhub`, where the generated config is mounted,
/// so the Docker config is never placed inside the volume.
pub const HUB_DATA_DIR: &str = "/srv/jupyterhub/data";

/// Why settings cannot be used. All of these exit with code 2.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}{hint}", hint = if source.kind() == std::io::ErrorKind::NotFound { " (create one with `swarmhub init`)" } else { "" })]
    Read {
        /// the file
        path: PathBuf,
        /// why
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema (the message names the key and line).
    #[error("{path}: {message}")]
    Parse {
        /// the file
        path: PathBuf,
        /// toml's message, with line and key
        message: String,
    },
    /// An environment variable names a setting that does not exist.
    #[error("{var}: no setting {section}.{key} (known keys of [{section}]: {known})")]
    UnknownEnvKey {
        /// the variable
        var: String,
        /// its section
        section: String,
        /// its key
        key: String,
        /// the keys the section has
        known: String,
    },
    /// An environment variable names a section that does not exist but looks like one.
    #[error("{var}: no section [{section}] (did you mean SWARMHUB_{suggestion}_...?)")]
    UnknownEnvSection {
        /// the variable
        var: String,
        /// the section it names
        section: String,
        /// the section it probably means, upper case
        suggestion: String,
    },
    /// An environment variable's value does not have the setting's type.
    #[error("{var}: {reason}")]
    EnvValue {
        /// the variable
        var: String,
        /// what is expected
        reason: String,
    },
    /// A setting has a value swarmhub cannot use.
    #[error("setting {key}: {reason}")]
    Invalid {
        /// `<section>.<key>` as in `swarmhub.toml`
        key: String,
        /// what is wrong and what is expected
        reason: String,
    },
}

/// The whole `swarmhub.toml`. Every section and key has a default fit for one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where things run and how they are reached.
    pub cluster: ClusterConfig,
    /// Pinned images.
    pub images: ImagesConfig,
    /// The LDAP directory (hub login, nfsd's uid/gid lookup).
    pub ldap: LdapConfig,
    /// JupyterHub and the notebooks it spawns.
    pub hub: HubConfig,
    /// The registry images are pushed to (optional).
    pub registry: RegistryConfig,
    /// How long the CLI waits.
    pub timeouts: TimeoutsConfig,
    /// HTTPS of the hub.
    pub tls: TlsConfig,
}

/// `[cluster]`: names, placement and ports of the stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Attachable overlay network of the hub, nfsd and the notebooks.
    pub network: String,
    /// Node label of the storage node: nfsd runs where `node.labels.<label>==true`.
    pub storage_node_label: String,
    /// Host path on the storage node holding all user data (nfsd's data root).
    pub nfsd_data_dir: String,
    /// Port of NFS + MOUNT, published in host mode on the storage node.
    pub nfsd_port: u16,
    /// Port of nfsd's control API, published in host mode on the storage node.
    pub nfsd_api_port: u16,
    /// Port the hub is published on (host mode) on the manager that runs it.
    pub hub_port: u16,
    /// With TLS: a second published port where plain HTTP is answered with a redirect to
    /// `https://<host>:<hub_port>/...` (by the hub's TLS front, `settings::tls_front`). 0 = none.
    pub hub_redirect_port: u16,
    /// URL users open (TLS may end in front of the hub); its path is the hub's base URL.
    pub public_url: String,
    /// Name of nfsd's service.
    pub nfsd_service: String,
    /// Name of the hub's service (notebooks reach the hub by this name).
    pub hub_service: String,
    /// Local volume of the hub's database on the manager.
    pub hub_data_volume: String,
    /// Host directory of the volume plugin's state on every node.
    pub plugin_state_dir: String,
    /// How the plugin mounts volumes on the nodes: the kernel NFS client, or the userspace
    /// (FUSE) client for kernels without NFS support.
    pub plugin_backend: PluginBackend,
    /// dockerd's API socket on every node (bound into the hub, the rollout job and the plugin).
    pub docker_socket: String,
}

/// `cluster.plugin_backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginBackend {
    /// The Linux NFS client (mounts survive plugin restarts).
    #[default]
    Kernel,
    /// nfs3_client behind FUSE (for kernels without an NFS client).
    Fuse,
}

impl PluginBackend {
    /// The plugin's `SWARMHUB_NFS_BACKEND` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginBackend::Kernel => "kernel",
            PluginBackend::Fuse => "fuse",
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            network: "swarmhub".into(),
            storage_node_label: "swarmhub.storage".into(),
            nfsd_data_dir: "/srv/swarmhub".into(),
            nfsd_port: 2049,
            nfsd_api_port: 8049,
            hub_port: 8000,
            hub_redirect_port: 0,
            public_url: "http://localhost:8000/".into(),
            nfsd_service: "swarmhub-nfsd".into(),
            hub_service: "swarmhub-hub".into(),
            hub_data_volume: "swarmhub-hub-data".into(),
            plugin_state_dir: "/var/lib/swarmhub-nfs".into(),
            plugin_backend: PluginBackend::Kernel,
            docker_socket: "/var/run/docker.sock".into(),
        }
    }
}

/// `[images]`: every image pinned to a tag other than `latest` or to a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesConfig {
    /// swarmhub-nfsd.
    pub nfsd: String,
    /// JupyterHub with dockerspawner, ldapauthenticator and the idle culler.
    pub hub: String,
    /// Notebook image of students.
    pub notebook_student: String,
    /// Notebook image of the teacher group.
    pub notebook_teacher: String,
    /// The `swarmhub-nfs` managed plugin (`docker plugin install` reference).
    pub plugin: String,
    /// The swarmhub CLI itself; runs the one-shot plugin rollout on every node.
    pub cli: String,
}

impl ImagesConfig {
    /// The container images the stack runs, with their setting names (the plugin is not a
    /// container image).
    pub fn deployed(&self) -> [(&'static str, &str); 5] {
        [
            ("images.nfsd", &self.nfsd),
            ("images.hub", &self.hub),
            ("images.notebook_student", &self.notebook_student),
            ("images.notebook_teacher", &self.notebook_teacher),
            ("images.cli", &self.cli),
        ]
    }

    /// Every reference with its setting name, the plugin last: what a registry must hold.
    pub fn references(&self) -> [(&'static str, &str); 6] {
        let [a, b, c, d, e] = self.deployed();
        [a, b, c, d, e, ("images.plugin", &self.plugin)]
    }

    /// [`ImagesConfig::references`], to rewrite them (moved into a registry, pinned).
    pub fn references_mut(&mut self) -> [(&'static str, &mut String); 6] {
        [
            ("images.nfsd", &mut self.nfsd),
            ("images.hub", &mut self.hub),
            ("images.notebook_student", &mut self.notebook_student),
            ("images.notebook_teacher", &mut self.notebook_teacher),
            ("images.cli", &mut self.cli),
            ("images.plugin", &mut self.plugin),
        ]
    }
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            nfsd: "swarmhub/nfsd:0.1.0".into(),
            hub: "swarmhub/hub:0.1.0".into(),
            notebook_student: "swarmhub/notebook-student:0.1.0".into(),
            notebook_teacher: "swarmhub/notebook-teacher:0.1.0".into(),
            plugin: "swarmhub/swarmhub-nfs:0.1.0".into(),
            cli: "swarmhub/swarmhub:0.1.0".into(),
        }
    }
}

/// `[ldap]`: one directory for the hub's logins and nfsd's identities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host[:port]` (StartTLS unless `starttls = false`) or `ldaps://host[:port]`.
    pub url: String,
    /// Use StartTLS on an `ldap://` URL. Only tests should turn it off.
    pub starttls: bool,
    /// Base DN of users and groups.
    pub base_dn: String,
    /// Where the hub searches for users. Default: `base_dn`.
    pub user_search_base: Option<String>,
    /// Attribute holding the login name.
    pub user_attribute: String,
    /// DN to search as. Default: anonymous search.
    pub bind_dn: Option<String>,
    /// Docker secret holding `bind_dn`'s password (given with `--ldap-password-file`).
    pub password_secret: String,
    /// DNs of the groups whose members may log in as students.
    pub student_groups: Vec<String>,
    /// DN of the teacher group (teacher image; exact DN match).
    pub teacher_group: String,
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            url: "ldap://ldap.example.org".into(),
            starttls: true,
            base_dn: "dc=example,dc=org".into(),
            user_search_base: None,
            user_attribute: "uid".into(),
            bind_dn: None,
            password_secret: "swarmhub-ldap-password".into(),
            student_groups: vec!["cn=students,ou=groups,dc=example,dc=org".into()],
            teacher_group: "cn=teachers,ou=groups,dc=example,dc=org".into(),
        }
    }
}

/// `[hub]`: JupyterHub and the notebook services it spawns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// JupyterHub admin user names.
    pub admin_users: Vec<String>,
    /// nbgrader course id.
    pub course_id: String,
    /// Name of the shared nbgrader exchange tree.
    pub exchange_share: String,
    /// LDAP user name of the instructor who owns the course directory in the exchange. The
    /// exchange's root belongs to nfsd (no student can create a course there), so `run` makes
    /// `<exchange_share>/<course_id>` through nfsd's API, owned by this user, mode 0755; nbgrader
    /// then creates `outbound`, `inbound` and `feedback` in it. Unset: no course directory
    /// (nbgrader's release fails until one exists).
    pub course_owner: Option<String>,
    /// Quota of every home volume (`10G`, `512M`, bytes; `0` = none): `df` in a notebook shows
    /// it and writes past it fail with "Disk quota exceeded".
    pub home_size: String,
    /// Bytes each user may own in the exchange (same units; `0` = none). Per user, so one
    /// student cannot fill the exchange and block everyone's submissions.
    pub exchange_size: String,
    /// Command of notebook containers.
    pub notebook_cmd: Vec<String>,
    /// URL path notebooks open at, e.g. `/lab`. Default: the image's.
    pub default_url: Option<String>,
    /// CPU cores a notebook may use; 0 = no limit.
    pub cpu_limit: f64,
    /// Memory a notebook may use (`2G`, `512M`, bytes); `0` = no limit.
    pub mem_limit: String,
    /// Swarm constraints of notebook services, e.g. `["node.role==worker"]`.
    pub notebook_constraints: Vec<String>,
    /// Seconds a notebook service may take to start.
    pub start_timeout_seconds: u32,
    /// Seconds a started notebook may take to answer HTTP.
    pub http_timeout_seconds: u32,
    /// Stop notebooks idle this many seconds; 0 = never.
    pub idle_timeout_seconds: u32,
    /// Where notebooks keep their files: `swarmhub` (the home and exchange volumes on nfsd,
    /// the default), `local` (a Docker `local` volume per user on whatever node runs the
    /// notebook: files stay behind on that node, no nbgrader exchange; a baseline for
    /// measurements) or `none` (the container's own layer; diagnosis only).
    pub volumes: VolumeMode,
    /// Deprecated (0.x): `false` is `volumes = "none"`.
    pub mount_volumes: bool,
    /// Spawns JupyterHub runs at once (`JupyterHub.concurrent_spawn_limit`); more logins wait
    /// with "too many users trying to log in right now, try again in a minute". 0 = no limit.
    pub concurrent_spawn_limit: u32,
    /// Notebooks that may run at once (`JupyterHub.active_server_limit`); 0 = no limit.
    pub active_server_limit: u32,
    /// Notebooks that may be starting at once (service created, server not answering yet);
    /// later spawns wait for a slot (their spawn page says so). 0 = no limit.
    pub concurrent_starts: u32,
    /// Failed notebook tasks a spawn outlives when the failure is one a busy cluster gives
    /// (a volume mount that timed out): Swarm starts a replacement task 5 s later.
    pub spawn_retries: u32,
}

/// `hub.volumes`: what a notebook mounts as its home (and exchange).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VolumeMode {
    /// The user's home and exchange volumes of the swarmhub-nfs plugin (files follow the user).
    #[default]
    Swarmhub,
    /// A Docker `local` volume `local-home-<user>` on the node that runs the notebook.
    Local,
    /// No volume at all.
    None,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            admin_users: Vec::new(),
            course_id: "course".into(),
            exchange_share: "exchange".into(),
            course_owner: None,
            home_size: "10G".into(),
            exchange_size: "2G".into(),
            notebook_cmd: vec!["jupyterhub-singleuser".into()],
            default_url: None,
            cpu_limit: 0.0,
            mem_limit: "0".into(),
            notebook_constraints: Vec::new(),
            start_timeout_seconds: 300,
            http_timeout_seconds: 120,
            idle_timeout_seconds: 3600,
            volumes: VolumeMode::Swarmhub,
            mount_volumes: true,
            concurrent_spawn_limit: 100,
            active_server_limit: 0,
            concurrent_starts: 8,
            spawn_retries: 2,
        }
    }
}

/// `[registry]`: the registry every node pulls swarmhub's images and plugin from. Unset:
/// images stay on the node that built them (one machine, or `docker save | docker load`).
///
/// With an address, every `[images]` reference that names no registry is taken to be in this
/// one (`swarmhub/hub:0.1.0` becomes `<address>/swarmhub/hub:0.1.0`), `build` tags them so,
/// `push` uploads them and the plugin, and `run` deploys them pinned by digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// `host[:port]` of the registry.
    pub address: Option<String>,
    /// HTTPS (the default). `false`: plain HTTP on a private network; every node's dockerd
    /// must then list the address in `insecure-registries` (127.0.0.0/8 is listed by default).
    pub tls: bool,
    /// User to log in as; none: pulls and pushes are anonymous.
    pub username: Option<String>,
    /// The Docker secret holding the user's password (given once with
    /// `--registry-password-file`); nodes read it when they install the plugin. Without the
    /// secret, each node's own `docker login` (root's `~/.docker/config.json`) is used.
    pub password_secret: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            address: None,
            tls: true,
            username: None,
            password_secret: "swarmhub-registry-password".into(),
        }
    }
}

/// Whether the first part of an image reference names a registry (Docker's rule: it has a
/// `.` or a `:`, or is `localhost`).
pub fn names_registry(image: &str) -> bool {
    match image.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

impl ImagesConfig {
    /// Every reference that names no registry, moved into `address`.
    pub fn in_registry(&self, address: &str) -> ImagesConfig {
        let mut out = self.clone();
        for (_, r) in out.references_mut() {
            if !names_registry(r) {
                *r = format!("{address}/{r}");
            }
        }
        out
    }
}

/// `[timeouts]`: every wait of the CLI ends after one of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// One Docker API call, and reaching dockerd at all.
    pub docker_seconds: u64,
    /// A service converging (tasks running) after create or update.
    pub service_seconds: u64,
    /// The plugin rollout job completing on every node.
    pub rollout_seconds: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            docker_seconds: 30,
            service_seconds: 180,
            rollout_seconds: 300,
        }
    }
}

/// `[tls]`: how the hub serves HTTPS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// `off` (plain HTTP; `doctor` fails `hub-tls`), `files` (`cert_file` + `key_file`) or
    /// `self-signed` (a CA and certificate swarmhub makes and keeps in `dir`).
    pub mode: TlsMode,
    /// PEM file of the hub's certificate, then its intermediates (`mode = "files"`). A relative
    /// path is relative to the settings file's directory.
    pub cert_file: String,
    /// PEM file of the certificate's private key, unencrypted (`mode = "files"`).
    pub key_file: String,
    /// Directory of the self-signed CA and certificate. Default: `tls/` next to the settings
    /// file. The CA key stays there (0600).
    pub dir: String,
    /// More names of the self-signed certificate (DNS names, IP addresses), besides the public
    /// URL's host, the nodes' addresses, `localhost` and `127.0.0.1`.
    pub names: Vec<String>,
    /// `doctor` warns when the served certificate ends within this many days.
    pub expiry_warn_days: u32,
}

/// `tls.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain HTTP.
    #[default]
    Off,
    /// The admin's certificate and key.
    Files,
    /// A CA and certificate made by swarmhub.
    SelfSigned,
}

impl TlsMode {
    /// The value as written in `swarmhub.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::Files => "files",
            TlsMode::SelfSigned => "self-signed",
        }
    }
}

/// Name of the self-signed set's directory next to the settings file.
pub const TLS_DIR_NAME: &str = "tls";

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            mode: TlsMode::Off,
            cert_file: String::new(),
            key_file: String::new(),
            dir: String::new(),
            names: Vec::new(),
            expiry_warn_days: 30,
        }
    }
}

impl TlsConfig {
    /// Make the paths absolute against `base` (the settings file's directory); an empty `dir`
    /// becomes `<base>/tls`.
    pub fn resolve(&mut self, base: &Path) {
        let abs = |p: &str| -> String {
            if p.is_empty() || Path::new(p).is_absolute() {
                p.to_string()
            } else {
                base.join(p).display().to_string()
            }
        };
        self.cert_file = abs(&self.cert_file);
        self.key_file = abs(&self.key_file);
        self.dir = if self.dir.is_empty() {
            base.join(TLS_DIR_NAME).display().to_string()
        } else {
            abs(&self.dir)
        };
    }
}

/// The sections of [`Config`] and their keys, read from the types (serde's field lists) so they
/// cannot drift from the schema.
pub fn schema() -> Vec<(&'static str, &'static [&'static str])> {
    fields::<Config>()
        .iter()
        .map(|&section| {
            let keys = match section {
                "cluster" => fields::<ClusterConfig>(),
                "images" => fields::<ImagesConfig>(),
                "ldap" => fields::<LdapConfig>(),
                "hub" => fields::<HubConfig>(),
                "registry" => fields::<RegistryConfig>(),
                "timeouts" => fields::<TimeoutsConfig>(),
                "tls" => fields::<TlsConfig>(),
                other => unreachable!("section {other} is missing from config::schema"),
            };
            (section, keys)
        })
        .collect()
}

/// Field names of a struct, as serde's derive declares them.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut out: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut out));
    out
}

impl Config {
    /// Read `path`, apply the `SWARMHUB_*` variables of `env`, and validate. Relative TLS
    /// paths are made absolute against the file's directory (see [`TlsConfig::resolve`]).
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg = Config::from_toml(&text, path, env)?;
        let base = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        cfg.tls.resolve(&base);
        Ok(cfg)
    }

    /// Parse file text, apply the environment, validate. `path` only names the file in errors.
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        };
        // Deserialize the file alone first: toml then reports unknown keys and wrong types with
        // the line they are on.
        toml::from_str::<Config>(text).map_err(parse_err)?;
        let mut table: toml::Table = toml::from_str(text).map_err(parse_err)?;
        let applied = apply_env(&mut table, env)?;
        let config: Config =
            table
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::EnvValue {
                    var: applied.join(", "),
                    reason: e.to_string().trim_end().to_string(),
                })?;
        let mut config = config;
        if let Some(address) = config.registry.address.clone() {
            config.images = config.images.in_registry(&address);
        }
        config.validate()?;
        Ok(config)
    }

    /// Check what serde cannot: value ranges, names, pinned images, and everything the hub's
    /// config generator checks; returns the hub's settings so checked.
    pub fn validate(&self) -> Result<HubSettings, ConfigError> {
        // first: a bad address would otherwise be reported as a bad image of [images]
        if let Some(a) = &self.registry.address {
            check_registry_address(a)?;
        }
        let c = &self.cluster;
        let name = check_docker_name;
        name("cluster.network", &c.network)?;
        name("cluster.nfsd_service", &c.nfsd_service)?;
        name("cluster.hub_service", &c.hub_service)?;
        if c.hub_service.len() > names::HUB_SERVICE_MAX {
            return Err(invalid(
                "cluster.hub_service",
                format!(
                    "{:?} is longer than {} characters: its Docker gate's service ({}) must fit Docker's 63",
                    c.hub_service,
                    names::HUB_SERVICE_MAX,
                    names::docker_gate_service(&c.hub_service)
                ),
            ));
        }
        name("cluster.hub_data_volume", &c.hub_data_volume)?;
        name("ldap.password_secret", &self.ldap.password_secret)?;
        let label_ok = !c.storage_node_label.is_empty()
            && c.storage_node_label
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_'));
        if !label_ok {
            return Err(invalid(
                "cluster.storage_node_label",
                format!(
                    "{:?} must be a node label key (letters, digits, '.', '-', '_')",
                    c.storage_node_label
                ),
            ));
        }
        for (key, dir) in [
            ("cluster.nfsd_data_dir", &c.nfsd_data_dir),
            ("cluster.plugin_state_dir", &c.plugin_state_dir),
            ("cluster.docker_socket", &c.docker_socket),
        ] {
            check_abs_path(key, dir)?;
        }
        let mut ports = vec![
            ("cluster.nfsd_port", c.nfsd_port),
            ("cluster.nfsd_api_port", c.nfsd_api_port),
            ("cluster.hub_port", c.hub_port),
        ];
        if c.hub_redirect_port != 0 {
            ports.push(("cluster.hub_redirect_port", c.hub_redirect_port));
        }
        for (i, (key, port)) in ports.iter().enumerate() {
            if *port == 0 {
                return Err(invalid(key, "must be 1..65535"));
            }
            // all three may land on one node (the single-node default), so they must differ
            if let Some((other, _)) = ports[..i].iter().find(|(_, p)| p == port) {
                return Err(invalid(key, format!("{port} is also {other}")));
            }
        }
        let i = &self.images;
        for (key, image) in [
            ("images.nfsd", &i.nfsd),
            ("images.hub", &i.hub),
            ("images.plugin", &i.plugin),
            ("images.cli", &i.cli),
        ] {
            check_image(key, image)?;
        }
        if self.ldap.base_dn.trim().is_empty() {
            return Err(invalid("ldap.base_dn", "must be a DN"));
        }
        name("registry.password_secret", &self.registry.password_secret)?;
        let t = &self.timeouts;
        for (key, v) in [
            ("timeouts.docker_seconds", t.docker_seconds),
            ("timeouts.service_seconds", t.service_seconds),
            ("timeouts.rollout_seconds", t.rollout_seconds),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if let Some(owner) = &self.hub.course_owner {
            swarmhub_control_api::validate_user_name(owner)
                .map_err(|e| invalid("hub.course_owner", e.to_string()))?;
        }
        self.validate_tls()?;
        HubSettings::from_config(self)
    }

    /// `[tls]` and what it asks of the rest: an https public URL, both files in `files` mode, a
    /// redirect port only with TLS. The files themselves are checked by [`crate::settings::tls::prepare`].
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let t = &self.tls;
        let url = &self.cluster.public_url;
        if t.mode == TlsMode::Off {
            if self.cluster.hub_redirect_port != 0 {
                return Err(invalid(
                    "cluster.hub_redirect_port",
                    "redirects plain HTTP to HTTPS, so it needs tls.mode = \"files\" or \"self-signed\" (or set it to 0)",
                ));
            }
            return Ok(());
        }
        if !url.starts_with("https://") {
            return Err(invalid(
                "cluster.public_url",
                format!(
                    "{url:?} must start with https:// when tls.mode = \"{}\" (the hub serves HTTPS)",
                    t.mode.as_str()
                ),
            ));
        }
        let hub = &self.cluster.hub_service;
        if hub.len() > names::HUB_SERVICE_MAX_WITH_TLS {
            return Err(invalid(
                "cluster.hub_service",
                format!(
                    "{hub:?} is longer than {} characters, too long with TLS (the certificate's Docker secrets are named after it)",
                    names::HUB_SERVICE_MAX_WITH_TLS
                ),
            ));
        }
        if t.mode == TlsMode::Files {
            for (key, v) in [
                ("tls.cert_file", &t.cert_file),
                ("tls.key_file", &t.key_file),
            ] {
                if v.trim().is_empty() {
                    return Err(invalid(
                        key,
                        "must name a PEM file when tls.mode = \"files\" (or use tls.mode = \"self-signed\")",
                    ));
                }
            }
        }
        if t.expiry_warn_days == 0 {
            return Err(invalid("tls.expiry_warn_days", "must be at least 1"));
        }
        Ok(())
    }

    /// The host of `cluster.public_url` (without brackets or port).
    pub fn public_host(&self) -> String {
        match url::Url::parse(&self.cluster.public_url)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_owned()))
        {
            Some(url::Host::Domain(d)) => d,
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => String::new(),
        }
    }

    /// The settings of the generated `jupyterhub_config.py`, checked (see
    /// [`HubSettings::from_config`]).
    pub fn hub_settings(&self) -> Result<HubSettings, ConfigError> {
        HubSettings::from_config(self)
    }
}

/// A size setting (`10G`, `512M`, bytes): `0` (or empty) is none, anything else is read by the
/// one size parser of volume options ([`swarmhub_control_api::parse_size`]), so a quota setting
/// accepts exactly what `size=` does. At least 1 MiB; `hint` says what to do instead.
fn size_setting(key: &str, text: &str, hint: &str) -> Result<Option<u64>, ConfigError> {
    let bytes = match text.trim() {
        "" | "0" => return Ok(None),
        t => swarmhub_control_api::parse_size(t).map_err(|_| {
            invalid(
                key,
                format!("{t:?} is not a size; write bytes, a number with K, M, G or T (10G), or 0 for none"),
            )
        })?,
    };
    if bytes < 1 << 20 {
        return Err(invalid(
            key,
            format!("{bytes} bytes is less than 1 MiB; {hint}"),
        ));
    }
    Ok(Some(bytes))
}

/// Where a Docker secret appears in a container.
pub fn secret_path(name: &str) -> String {
    format!("/run/secrets/{name}")
}

/// `cluster.public_url`, `http(s)://host[:port]/path/` → (the URL with a trailing slash, its
/// path with both slashes: the hub's base URL). Only URLs already in the form the `url` crate
/// would write them in (letter case aside) are accepted, so the hub's links are exactly the
/// URL as written.
fn check_public_url(raw: &str) -> Result<(String, String), ConfigError> {
    const KEY: &str = "cluster.public_url";
    if !(raw.starts_with("https://") || raw.starts_with("http://")) {
        return Err(invalid(
            KEY,
            format!("{raw:?} must start with https:// or http://"),
        ));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control())
        || raw.contains(['?', '#', '@', '\\'])
    {
        return Err(invalid(
            KEY,
            format!("{raw:?} must be a plain URL (no spaces, query, fragment or user part)"),
        ));
    }
    let with_slash = if raw.ends_with('/') {
        raw.to_string()
    } else {
        format!("{raw}/")
    };
    let url = url::Url::parse(&with_slash)
        .map_err(|e| invalid(KEY, format!("{raw:?} is not a URL: {e}")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(KEY, format!("{raw:?} has no host")));
    }
    if !url.as_str().eq_ignore_ascii_case(&with_slash) {
        return Err(invalid(
            KEY,
            format!("{raw:?} has an unusual form; write it as {}", url.as_str()),
        ));
    }
    let base = url.path().to_string();
    Ok((with_slash, base))
}

/// `ldap.url` (+ `starttls`) → TLS mode, host (an IPv6 address in brackets), explicit port.
fn ldap_endpoint(l: &LdapConfig) -> Result<(LdapTls, String, Option<u16>), ConfigError> {
    let bad = || {
        invalid(
            "ldap.url",
            format!(
                "{:?} must be ldap://host[:port] or ldaps://host[:port]",
                l.url
            ),
        )
    };
    let url = url::Url::parse(&l.url).map_err(|_| bad())?;
    let tls = match (url.scheme(), l.starttls) {
        ("ldaps", _) => LdapTls::Ldaps,
        ("ldap", true) => LdapTls::Starttls,
        ("ldap", false) => LdapTls::Insecure,
        _ => return Err(bad()),
    };
    let host = url.host_str().unwrap_or_default();
    if host.is_empty()
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.port() == Some(0)
    {
        return Err(bad());
    }
    Ok((tls, host.to_string(), url.port()))
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Docker object names (services, networks, secrets): `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 63
/// bytes (a DNS label, since the hub's service name is resolved by Docker's DNS).
fn check_docker_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '_' | '.' | '-')));
    if !ok {
        return Err(invalid(
            key,
            format!(
                "{name:?} must be 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// An absolute path without `.` or `..` segments, and not `/` itself.
fn check_abs_path(key: &str, path: &str) -> Result<(), ConfigError> {
    let ok = path.starts_with('/')
        && !path.chars().any(char::is_control)
        && !path.split('/').any(|seg| seg == "." || seg == "..");
    if !ok {
        return Err(invalid(
            key,
            format!("{path:?} must be an absolute path without . or .."),
        ));
    }
    if path.trim_end_matches('/').is_empty() {
        return Err(invalid(key, "must not be /"));
    }
    Ok(())
}

/// A pinned image reference: no spaces, and a digest or a tag other than `latest`.
/// `host[:port]`, no scheme, no path: what Docker takes as the first part of a reference.
fn check_registry_address(a: &str) -> Result<(), ConfigError> {
    let (host, port) = match a.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (a, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if host_ok && port_ok && (host.contains('.') || port.is_some() || host == "localhost") {
        Ok(())
    } else {
        Err(invalid(
            "registry.address",
            format!(
                "{a:?} must be host[:port] without a scheme or path, with a '.' or a port (e.g. registry.example.edu or 10.0.0.5:5000)"
            ),
        ))
    }
}

fn check_image(key: &str, image: &str) -> Result<(), ConfigError> {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(key, format!("{image:?} is not an image reference")));
    }
    if image.contains('@') {
        return Ok(());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() && tag != "latest" => Ok(()),
        _ => Err(invalid(
            key,
            format!(
                "{image:?} is not pinned: give a tag other than latest (name:1.0) or a digest (name@sha256:...)"
            ),
        )),
    }
}

/// Map `SWARMHUB_<SECTION>_<KEY>` variables onto `table`; returns the variables used.
///
/// Variables whose section is not one of ours belong to other swarmhub programs (nfsd reads
/// `SWARMHUB_NFSD_*`, the plugin `SWARMHUB_NFS_*`, tests their own) and are left alone, except
/// names one edit away from a section, which are typos. A value is typed by the setting's
/// default: strings are taken as written, numbers and booleans parsed, lists written as TOML
/// arrays (`["a", "b"]`). Settings without a default (optional ones) are strings.
pub fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let schema: BTreeMap<&str, &[&str]> = schema().into_iter().collect();
    let defaults = toml::Table::try_from(Config::default()).expect("defaults serialize");
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    let mut applied = Vec::new();
    for (var, value) in vars {
        let rest = &var[ENV_PREFIX.len()..];
        let Some((section_up, key_up)) = rest.split_once('_') else {
            continue; // SWARMHUB_CONFIG, SWARMHUB_OUTPUT, ...: global flags, not settings
        };
        let section = section_up.to_ascii_lowercase();
        let key = key_up.to_ascii_lowercase();
        let Some(keys) = schema.get(section.as_str()) else {
            if let Some(near) = schema
                .keys()
                .find(|s| strsim::levenshtein(s, &section) == 1)
            {
                return Err(ConfigError::UnknownEnvSection {
                    var,
                    section,
                    suggestion: near.to_ascii_uppercase(),
                });
            }
            continue;
        };
        // the variable is upper case, like every other environment variable of swarmhub
        if !keys.contains(&key.as_str()) || rest.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(ConfigError::UnknownEnvKey {
                var,
                section,
                key,
                known: keys.join(", "),
            });
        }
        let default = defaults
            .get(&section)
            .and_then(|s| s.as_table())
            .and_then(|s| s.get(&key));
        let typed = env_value(default, &value).map_err(|reason| ConfigError::EnvValue {
            var: var.clone(),
            reason,
        })?;
        let section_table = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = section_table.as_table_mut() else {
            return Err(invalid(&section, "must be a table"));
        };
        section_table.insert(key, typed);
        applied.push(var);
    }
    Ok(applied)
}

/// An environment value typed like the setting's default.
fn env_value(default: Option<&toml::Value>, raw: &str) -> Result<toml::Value, String> {
    use toml::Value as V;
    let literal = || -> Result<V, String> {
        let t: toml::Table = toml::from_str(&format!("v = {raw}"))
            .map_err(|_| format!("{raw:?} is not a TOML value"))?;
        Ok(t["v"].clone())
    };
    Ok(match default {
        None | Some(V::String(_)) => V::String(raw.to_string()),
        Some(V::Integer(_)) => V::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("{raw:?} is not an integer"))?,
        ),
        Some(V::Float(_)) => V::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("{raw:?} is not a number"))?,
        ),
        Some(V::Boolean(_)) => match raw.trim() {
            "true" => V::Boolean(true),
            "false" => V::Boolean(false),
            _ => return Err(format!("{raw:?} is not true or false")),
        },
        Some(V::Array(_)) => match literal()? {
            v @ V::Array(_) => v,
            _ => return Err(format!("{raw:?} is not a TOML array like [\"a\", \"b\"]")),
        },
        Some(_) => literal()?,
    })
}

/// Write the commented default file to `path`; an existing file is kept unless `force`.
pub fn write_init(path: &Path, force: bool) -> Result<(), InitError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let write = |source| InitError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = match opts.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(InitError::Exists(path.to_path_buf()));
        }
        r => r.map_err(write)?,
    };
    f.write_all(INIT_TEMPLATE.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(write)
}

/// Why `swarmhub init` wrote no file.
#[derive(Debug, Error)]
pub enum InitError {
    /// The file exists and `--force` was not given (bad usage: exit code 2).
    #[error("{} exists; keeping it (use --force to overwrite)", .0.display())]
    Exists(PathBuf),
    /// The file cannot be created or written.
    #[error("cannot write {}", path.display())]
    Write {
        /// the file
        path: PathBuf,
        /// why
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("swarmhub.toml"), env(vars))
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
        assert_eq!(load("", &[]).unwrap(), Config::default());
    }

    #[test]
    fn init_template_parses_to_the_defaults_and_names_every_key() {
        assert_eq!(load(INIT_TEMPLATE, &[]).unwrap(), Config::default());
        for (section, keys) in schema() {
            assert!(
                INIT_TEMPLATE.contains(&format!("[{section}]\n")),
                "[{section}] missing"
            );
            for key in keys {
                let set = format!("\n{key} = ");
                let commented = format!("\n# {key} = ");
                assert!(
                    INIT_TEMPLATE.contains(&set) || INIT_TEMPLATE.contains(&commented),
                    "{section}.{key} missing from the init template"
                );
            }
        }
    }

    #[test]
    fn schema_lists_sections_and_keys() {
        let s: BTreeMap<_, _> = schema().into_iter().collect();
        assert_eq!(
            s.keys().copied().collect::<Vec<_>>(),
            [
                "cluster", "hub", "images", "ldap", "registry", "timeouts", "tls"
            ]
        );
        assert!(s["cluster"].contains(&"storage_node_label"));
        assert!(s["ldap"].contains(&"bind_dn"));
    }

    #[test]
    fn env_overrides_every_type() {
        let c = load(
            "[cluster]\nnetwork = \"fromfile\"\n",
            &[
                ("SWARMHUB_CLUSTER_NETWORK", "fromenv"),
                ("SWARMHUB_CLUSTER_HUB_PORT", "8443"),
                ("SWARMHUB_LDAP_STARTTLS", "false"),
                ("SWARMHUB_HUB_CPU_LIMIT", "2"),
                (
                    "SWARMHUB_LDAP_STUDENT_GROUPS",
                    r#"["cn=a,dc=x", "cn=b,dc=x"]"#,
                ),
                ("SWARMHUB_LDAP_BIND_DN", "cn=reader,dc=example,dc=org"),
                ("SWARMHUB_REGISTRY_ADDRESS", "10.0.0.5:5000"),
                // a string setting that looks like a number stays a string
                ("SWARMHUB_HUB_COURSE_ID", "2024"),
                // not ours: global flags, nfsd's and the tests' variables
                ("SWARMHUB_CONFIG", "/x.toml"),
                ("SWARMHUB_NFSD_DATA_DIR", "/x"),
                ("SWARMHUB_PLUGIN_STATIC_BIN", "/x"),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.cluster.network, "fromenv");
        assert_eq!(c.cluster.hub_port, 8443);
        assert!(!c.ldap.starttls);
        assert_eq!(c.hub.cpu_limit, 2.0);
        assert_eq!(c.ldap.student_groups, ["cn=a,dc=x", "cn=b,dc=x"]);
        assert_eq!(
            c.ldap.bind_dn.as_deref(),
            Some("cn=reader,dc=example,dc=org")
        );
        assert_eq!(c.registry.address.as_deref(), Some("10.0.0.5:5000"));
        assert_eq!(c.hub.course_id, "2024");
    }

    #[test]
    fn every_optional_setting_takes_a_string_from_the_environment() {
        // settings without a default are typed as strings: they must all be strings
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for (section, keys) in schema() {
            for key in keys {
                if defaults[section].as_table().unwrap().contains_key(*key) {
                    continue;
                }
                let var = format!("SWARMHUB_{}_{}", section, key).to_ascii_uppercase();
                let mut t = toml::Table::new();
                apply_env(&mut t, env(&[(&var, "/x")])).unwrap();
                toml::Table::try_into::<Config>(t).unwrap_or_else(|e| panic!("{var}: {e}"));
            }
        }
    }

    #[test]
    fn volume_sizes_reach_the_hub_config_as_size_options() {
        // the defaults: every home 10 GiB, 2 GiB per user in the exchange
        let h = Config::default().hub_settings().unwrap();
        assert_eq!(h.home_size, Some(10 << 30));
        assert_eq!(h.exchange_size, Some(2 << 30));
        let py = hub::render(&h);
        assert!(py.contains("    \"home_size\": \"10737418240\",\n"), "{py}");
        assert!(
            py.contains("    \"exchange_size\": \"2147483648\",\n"),
            "{py}"
        );
        // the same units as the volume option size=, from the file or the environment
        let c = load(
            "[hub]\nhome_size = \"512M\"\n",
            &[("SWARMHUB_HUB_EXCHANGE_SIZE", "1GiB")],
        )
        .unwrap();
        let h = c.hub_settings().unwrap();
        assert_eq!(h.home_size, Some(512 << 20));
        assert_eq!(h.exchange_size, Some(1 << 30));
        // "0" is no quota: the mounts then carry no size=
        let c = load(
            "[hub]\nhome_size = \"0\"\n",
            &[("SWARMHUB_HUB_EXCHANGE_SIZE", "0")],
        )
        .unwrap();
        let h = c.hub_settings().unwrap();
        assert_eq!((h.home_size, h.exchange_size), (None, None));
        let py = hub::render(&h);
        assert!(py.contains("    \"home_size\": None,\n"), "{py}");
    }

    #[test]
    fn bad_volume_sizes_name_the_setting() {
        for (text, key, want) in [
            ("home_size = \"ten gigs\"", "hub.home_size", "is not a size"),
            ("home_size = \"10X\"", "hub.home_size", "is not a size"),
            (
                "exchange_size = \"-1G\"",
                "hub.exchange_size",
                "is not a size",
            ),
            (
                "exchange_size = \"512K\"",
                "hub.exchange_size",
                "less than 1 MiB",
            ),
        ] {
            let e = load(&format!("[hub]\n{text}\n"), &[]).unwrap_err();
            let m = e.to_string();
            assert!(m.starts_with(&format!("setting {key}: ")), "{text}: {m}");
            assert!(m.contains(want), "{text}: {m}");
        }
        let e = load("", &[("SWARMHUB_HUB_HOME_SIZE", "lots")]).unwrap_err();
        assert!(e.to_string().contains("hub.home_size"), "{e}");
    }

    #[test]
    fn env_typos_name_the_variable() {
        let e = load("", &[("SWARMHUB_CLUSTER_NETWRK", "x")]).unwrap_err();
        let m = e.to_string();
        assert!(
            m.starts_with("SWARMHUB_CLUSTER_NETWRK: no setting cluster.netwrk"),
            "{m}"
        );
        assert!(m.contains("network"), "{m}");
        let e = load("", &[("SWARMHUB_CLUSTR_NETWORK", "x")]).unwrap_err();
        assert!(
            e.to_string().contains(
                "SWARMHUB_CLUSTR_NETWORK: no section [clustr] (did you mean SWARMHUB_CLUSTER_"
            ),
            "{e}"
        );
        // lower case is not the same variable
        let e = load("", &[("SWARMHUB_cluster_network", "x")]).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownEnvKey { .. }), "{e}");
        let e = load("", &[("SWARMHUB_CLUSTER_HUB_PORT", "eighty")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SWARMHUB_CLUSTER_HUB_PORT: \"eighty\" is not an integer"
        );
        let e = load("", &[("SWARMHUB_CLUSTER_HUB_PORT", "70000")]).unwrap_err();
        assert!(e.to_string().contains("SWARMHUB_CLUSTER_HUB_PORT"), "{e}");
        let e = load("", &[("SWARMHUB_LDAP_STUDENT_GROUPS", "cn=a,dc=x")]).unwrap_err();
        assert!(e.to_string().contains("is not a TOML"), "{e}");
    }

    #[test]
    fn unknown_file_keys_are_refused_with_their_name() {
        let e = load("[cluster]\nnetwrk = \"x\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("netwrk"), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = load("[clustr]\n", &[]).unwrap_err();
        assert!(e.to_string().contains("clustr"), "{e}");
        let e = load("[cluster]\nhub_port = \"x\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("hub_port"), "{e}");
    }

    #[test]
    fn a_registry_takes_in_every_image_that_names_none() {
        let c = load(
            "[registry]\naddress = \"reg.example.edu:5000\"\n[images]\nhub = \"other.example.org/hub:2\"\nnfsd = \"localhost/nfsd:1\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.images.hub, "other.example.org/hub:2");
        assert_eq!(c.images.nfsd, "localhost/nfsd:1");
        assert_eq!(
            c.images.notebook_student,
            "reg.example.edu:5000/swarmhub/notebook-student:0.1.0"
        );
        assert_eq!(
            c.images.plugin,
            "reg.example.edu:5000/swarmhub/swarmhub-nfs:0.1.0"
        );
        assert!(c.registry.tls);
        // without one, nothing moves
        assert_eq!(load("", &[]).unwrap().images, ImagesConfig::default());
        for bad in [
            "https://reg:5000",
            "reg",
            "reg:0",
            "reg:5000/path",
            "reg :5000",
            "",
        ] {
            let e = load(&format!("[registry]\naddress = {bad:?}\n"), &[]).unwrap_err();
            assert!(e.to_string().contains("registry.address"), "{bad}: {e}");
        }
        for good in [
            "reg:5000",
            "10.0.0.5:5000",
            "registry.example.edu",
            "localhost",
        ] {
            load(&format!("[registry]\naddress = {good:?}\n"), &[]).unwrap();
        }
    }

    #[test]
    fn invalid_values_name_the_swarmhub_key() {
        let cases: &[(&str, &str)] = &[
            ("[images]\nhub = \"swarmhub/hub\"", "images.hub"),
            (
                "[images]\nnotebook_student = \"x:latest\"",
                "images.notebook_student",
            ),
            (
                "[cluster]\npublic_url = \"hub.example.edu\"",
                "cluster.public_url",
            ),
            ("[cluster]\nhub_port = 2049", "cluster.hub_port"),
            (
                "[cluster]\nnfsd_data_dir = \"data\"",
                "cluster.nfsd_data_dir",
            ),
            ("[cluster]\nnfsd_data_dir = \"/\"", "cluster.nfsd_data_dir"),
            (
                "[cluster]\nstorage_node_label = \"a b\"",
                "cluster.storage_node_label",
            ),
            ("[cluster]\nnetwork = \"a b\"", "cluster.network"),
            ("[ldap]\nurl = \"http://x\"", "ldap.url"),
            ("[ldap]\nurl = \"ldap://x:0\"", "ldap.url"),
            ("[ldap]\nstudent_groups = []", "ldap.student_groups"),
            ("[hub]\ncourse_id = \"a b\"", "hub.course_id"),
            ("[hub]\nmem_limit = \"2 GB\"", "hub.mem_limit"),
            (
                "[hub]\nidle_timeout_seconds = 5",
                "hub.idle_timeout_seconds",
            ),
            ("[registry]\naddress = \"https://r\"", "registry.address"),
            (
                "[timeouts]\nservice_seconds = 0",
                "timeouts.service_seconds",
            ),
        ];
        for (text, key) in cases {
            match load(text, &[]) {
                Err(ConfigError::Invalid { key: k, reason }) => {
                    assert_eq!(k, *key, "{text}: {reason}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn hub_settings_follow_the_config() {
        let mut c = Config::default();
        c.ldap.url = "ldaps://ldap.example.edu:1636".into();
        c.ldap.bind_dn = Some("cn=reader,dc=example,dc=org".into());
        c.hub.cpu_limit = 1.5;
        c.hub.mem_limit = "2G".into();
        c.hub.idle_timeout_seconds = 0;
        let s = c.validate().unwrap();
        assert_eq!(s, c.hub_settings().unwrap());
        assert_eq!(s.ldap_server_address, "ldap.example.edu");
        assert_eq!(s.ldap_server_port, 1636);
        assert_eq!(s.ldap_tls_strategy, LdapTls::Ldaps);
        assert_eq!(
            s.ldap_search_password_file.as_deref(),
            Some("/run/secrets/swarmhub-ldap-password")
        );
        assert_eq!(
            s.ldap_user_search_base.as_deref(),
            Some("dc=example,dc=org")
        );
        assert_eq!(s.cpu_limit, Some(1.5));
        assert_eq!(s.mem_limit, Some(2 << 30));
        assert!(!s.idle_culler);
        assert_eq!(
            s.db_url,
            format!("sqlite:///{HUB_DATA_DIR}/jupyterhub.sqlite")
        );
        let d = Config::default().hub_settings().unwrap();
        assert_eq!(d.ldap_tls_strategy, LdapTls::Starttls);
        assert_eq!(d.ldap_server_port, 389);
        assert_eq!(d.cpu_limit, None);
        assert_eq!(d.mem_limit, None);
        assert_eq!(d.ldap_search_password_file, None);
    }

    #[test]
    fn init_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("swarmhub.toml");
        write_init(&p, false).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), INIT_TEMPLATE);
        std::fs::write(&p, "# mine\n").unwrap();
        let e = write_init(&p, false).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "# mine\n");
        write_init(&p, true).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), INIT_TEMPLATE);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(strsim::levenshtein("cluster", "clustr"), 1);
        assert_eq!(strsim::levenshtein("images", "image"), 1);
        assert_eq!(strsim::levenshtein("hub", "nfs"), 3);
        assert_eq!(strsim::levenshtein("ldap", "ldap"), 0);
    }

    #[test]
    fn tls_settings_are_checked_with_their_keys() {
        let https = "[cluster]\npublic_url = \"https://hub.example.edu/\"\n";
        // TLS on needs an https public URL
        let e = load("[tls]\nmode = \"self-signed\"\n", &[]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { key, .. } if key == "cluster.public_url"),
            "{e}"
        );
        assert!(e.to_string().contains("https://"), "{e}");
        // files mode needs both files
        let e = load(
            &format!("{https}[tls]\nmode = \"files\"\ncert_file = \"c.pem\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { key, .. } if key == "tls.key_file"),
            "{e}"
        );
        // a redirect needs TLS, and a port of its own
        let e = load("[cluster]\nhub_redirect_port = 8080\n", &[]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { key, .. } if key == "cluster.hub_redirect_port"),
            "{e}"
        );
        let e = load(
            &format!("{https}hub_redirect_port = 8000\n[tls]\nmode = \"self-signed\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("also cluster.hub_port"), "{e}");
        // the gate's service is named after the hub service: it must leave room
        let long = "h".repeat(names::HUB_SERVICE_MAX + 1);
        let e = load(&format!("[cluster]\nhub_service = \"{long}\"\n"), &[]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { key, .. } if key == "cluster.hub_service"),
            "{e}"
        );
        assert!(e.to_string().contains("-docker-gate"), "{e}");
        // the certificate's secrets are named after the hub service: it must leave room
        let long = "h".repeat(names::HUB_SERVICE_MAX_WITH_TLS + 1);
        let e = load(
            &format!("{https}hub_service = \"{long}\"\n[tls]\nmode = \"self-signed\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(
            matches!(&e, ConfigError::Invalid { key, .. } if key == "cluster.hub_service"),
            "{e}"
        );
        // an unknown mode names the values
        let e = load("[tls]\nmode = \"on\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("self-signed"), "{e}");
        // the environment reaches the section
        let c = load(https, &[("SWARMHUB_TLS_MODE", "self-signed")]).unwrap();
        assert_eq!(c.tls.mode, TlsMode::SelfSigned);
        assert_eq!(c.public_host(), "hub.example.edu");
        // the hub serves the secrets' files, redirecting from its second port
        let c = load(
            &format!(
                "{https}hub_port = 443\nhub_redirect_port = 80\n[tls]\nmode = \"self-signed\"\n"
            ),
            &[],
        )
        .unwrap();
        let t = c.hub_settings().unwrap();
        let front = t.tls_front_conf.as_deref().unwrap();
        for want in [
            "ssl_certificate /run/secrets/swarmhub-hub-tls.crt;",
            "ssl_certificate_key /run/secrets/swarmhub-hub-tls.key;",
            &format!("listen {HUB_REDIRECT_CONTAINER_PORT};"),
            "return 301 https://$host$request_uri;",
        ] {
            assert!(front.contains(want), "{want:?} missing from:\n{front}");
        }
        // the proxy listens behind the front, on the container's loopback only
        assert_eq!(
            (t.proxy_ip.as_str(), t.proxy_port),
            ("127.0.0.1", tls_front::PROXY_BEHIND_FRONT_PORT)
        );
        let d = Config::default().hub_settings().unwrap();
        assert_eq!(d.tls_front_conf, None);
        assert_eq!(
            (d.proxy_ip.as_str(), d.proxy_port),
            ("", HUB_CONTAINER_PORT)
        );
    }

    #[test]
    fn tls_paths_are_relative_to_the_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarmhub.toml");
        std::fs::write(
            &path,
            "[cluster]\npublic_url = \"https://[::1]:8443/\"\n[tls]\nmode = \"files\"\ncert_file = \"certs/hub.pem\"\nkey_file = \"/etc/k.pem\"\n",
        )
        .unwrap();
        let c = Config::load(&path, std::iter::empty()).unwrap();
        assert_eq!(
            Path::new(&c.tls.cert_file),
            dir.path().join("certs/hub.pem")
        );
        assert_eq!(c.tls.key_file, "/etc/k.pem");
        assert_eq!(Path::new(&c.tls.dir), dir.path().join("tls"));
        assert_eq!(c.public_host(), "::1");
    }
}
