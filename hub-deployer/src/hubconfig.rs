//! The hub's `jupyterhub_config.py`, generated from [`HubSettings`] and stored by the CLI as a
//! Docker config of the hub service.
//!
//! The generated file is a fixed Python program (`hubconfig/jupyterhub_config.py.tmpl`) preceded by
//! one dictionary literal, `SWARMHUB = {...}`, that holds every setting. Every value goes through
//! one function, [`py_literal`] (strings through [`py_str`]), so quotes, backslashes, newlines or
//! non-ASCII characters in a group DN or a URL can never change the program: the output is pure
//! ASCII and always valid Python.
//!
//! No secret is ever written into the file. The LDAP search password is read at hub start from a
//! file (a Docker secret under `/run/secrets/`), and `JUPYTERHUB_CRYPT_KEY` (needed because auth
//! state is enabled) comes from the hub's environment: the hub image's entrypoint exports it from
//! its Docker secret before it starts `jupyterhub`.
//!
//! What the generated config does (details in the template's comments):
//! - `dockerspawner.SwarmSpawner` 14.x, subclassed as `SwarmhubSpawner`, whose `start_object` fails
//!   the spawn with the Swarm task's own error (`rejected`/`failed` task, e.g.
//!   `VolumeDriver.Mount: ...`) instead of waiting for `start_timeout`, and whose `remove_object`
//!   (a stop) returns once the service's containers have ended (bounded), so that a start right
//!   after a stop cannot be answered by the dying server at the service's name;
//! - endpoint mode `dnsrr`, the attachable overlay network, internal IPs (service names), explicit
//!   `cmd`, pinned images, `allowed_images = {}`, CPU/memory limits, placement constraints;
//! - `ldapauthenticator.LDAPAuthenticator` 2.x with `allowed_groups` = students + teachers and
//!   `enable_auth_state`; an `auth_state_hook` keeps the user's `ldap_groups`, and a
//!   `pre_spawn_hook` picks the teacher image on exact group-DN membership, sets role/course
//!   environment and the two `swarmhub-nfs` volume mounts (home and exchange view, each with
//!   its `size=` quota) in `extra_container_spec["mounts"]`, refusing user names that cannot
//!   name a volume;
//! - the hub database and cookie secret under a persisted data directory, `hub_ip = 0.0.0.0`,
//!   `hub_connect_ip` = the hub's service name, and jupyterhub-idle-culler as a hub-managed
//!   service with its own role.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use swarmhub_control_api::names::{
    MAX_USER_NAME, validate_share_name, validate_user_name, validate_volume_name,
};
use thiserror::Error;

/// The fixed part of the generated file.
const TEMPLATE: &str = include_str!("hubconfig/jupyterhub_config.py.tmpl");
/// The line of [`TEMPLATE`] that [`render`] replaces with `SWARMHUB = {...}`.
const SETTINGS_MARKER: &str = "#@@SWARMHUB_SETTINGS@@";

/// Everything the generated `jupyterhub_config.py` depends on. The CLI fills it from
/// `swarmhub.toml`; the TOML keys are the field names (sections for the nested structs).
/// Unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSettings {
    /// URL users open, e.g. `https://hub.example.edu/` (TLS may end in front of the hub). Its
    /// path becomes JupyterHub's base URL (`https://example.edu/jupyter/` → `/jupyter/`);
    /// set as `JupyterHub.public_url` (JupyterHub 5) and in `bind_url`.
    pub public_url: String,
    /// Port the hub's proxy listens on inside the hub container (`JupyterHub.bind_url`); the CLI
    /// publishes it with `mode=host`. Default 8000.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Name of the hub's Docker service (endpoint mode `dnsrr`). Notebooks reach the hub API at
    /// `http://<hub_service>:<hub_api_port>` (`JupyterHub.hub_connect_ip`), so the CLI must pass
    /// the name it gives the service. Default `swarmhub-hub`.
    #[serde(default = "default_hub_service")]
    pub hub_service: String,
    /// Port of the hub's internal API (`JupyterHub.hub_port`), bound on 0.0.0.0. Default 8081.
    #[serde(default = "default_hub_api_port")]
    pub hub_api_port: u16,
    /// Attachable overlay network shared by the hub and the notebook services
    /// (`SwarmSpawner.network_name`). Default `swarmhub`.
    #[serde(default = "default_network")]
    pub network: String,
    /// Directory of the hub container on a persisted volume: the database
    /// (`<data_dir>/jupyterhub.sqlite`) and the cookie secret
    /// (`<data_dir>/jupyterhub_cookie_secret`, created by JupyterHub when missing) live here.
    /// Default `/srv/jupyterhub`.
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// JupyterHub user names that are hub admins (`Authenticator.admin_users`). Default none.
    #[serde(default)]
    pub admin_users: Vec<String>,
    /// Seconds the hub waits for a notebook service to run (`Spawner.start_timeout`); a rejected
    /// or failed Swarm task ends the wait earlier with the task's error. Default 300 (image pulls
    /// on a fresh node are slow).
    #[serde(default = "default_start_timeout")]
    pub start_timeout_seconds: u32,
    /// Seconds the hub waits for a running notebook to answer HTTP (`Spawner.http_timeout`).
    /// Default 120.
    #[serde(default = "default_http_timeout")]
    pub http_timeout_seconds: u32,
    /// The notebook services.
    pub notebook: NotebookSettings,
    /// Authentication against the LDAP directory.
    pub ldap: LdapSettings,
    /// The `swarmhub-nfs` volumes mounted into every notebook.
    #[serde(default)]
    pub storage: StorageSettings,
    /// The nbgrader course and its exchange.
    pub nbgrader: NbgraderSettings,
    /// Stopping idle notebooks.
    #[serde(default)]
    pub idle_culler: IdleCullerSettings,
    /// HTTPS of the proxy. Default: plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

/// HTTPS of the hub's proxy (configurable-http-proxy terminates TLS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain (PEM) inside the hub container (`JupyterHub.ssl_cert`).
    pub cert_file: String,
    /// Its key (PEM) inside the hub container (`JupyterHub.ssl_key`).
    pub key_file: String,
    /// A port inside the container where the proxy answers plain HTTP with a redirect to HTTPS
    /// (`--redirect-port`), and the public HTTPS port it redirects to (`--redirect-to`).
    #[serde(default)]
    pub redirect: Option<(u16, u16)>,
}

/// The notebook services the hub spawns (one Swarm service per user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotebookSettings {
    /// Image for students, pinned (a tag other than `latest`, or a digest), e.g.
    /// `swarmhub/notebook-student:1.0`.
    pub student_image: String,
    /// Image for members of [`LdapSettings::teacher_group`], pinned, e.g.
    /// `swarmhub/notebook-teacher:1.0`.
    pub teacher_image: String,
    /// Command of the notebook container (`Spawner.cmd`). Explicit, so the hub never inspects the
    /// image (which would need the image on the manager). Default `["jupyterhub-singleuser"]`.
    #[serde(default = "default_cmd")]
    pub cmd: Vec<String>,
    /// URL path a notebook opens at (`Spawner.default_url`), e.g. `/lab`. Default: the image's.
    #[serde(default)]
    pub default_url: Option<String>,
    /// CPU cores a notebook may use at most (`cpu_limit`, Swarm `Resources.Limits.NanoCPUs`).
    #[serde(default)]
    pub cpu_limit: Option<f64>,
    /// CPU cores reserved for a notebook (`cpu_guarantee`, Swarm reservation).
    #[serde(default)]
    pub cpu_guarantee: Option<f64>,
    /// Memory limit: bytes, or a number with K, M, G or T (1024-based, as JupyterHub reads it).
    #[serde(default)]
    pub mem_limit: Option<ByteSize>,
    /// Memory reserved for a notebook, same units as `mem_limit`.
    #[serde(default)]
    pub mem_guarantee: Option<ByteSize>,
    /// Swarm placement constraints of notebook services, e.g. `["node.role==worker"]`.
    /// Default none (any node with the `swarmhub-nfs` plugin enabled).
    #[serde(default)]
    pub placement_constraints: Vec<String>,
}

/// A memory size: an integer number of bytes, or a string with a K/M/G/T suffix (`"2G"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    /// bytes
    Bytes(u64),
    /// `<number><K|M|G|T>`, 1024-based
    Text(String),
}

/// How the hub talks TLS to the LDAP server (`LDAPAuthenticator.tls_strategy` in 2.x; the 1.x
/// `use_ssl` is deprecated there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LdapTls {
    /// StartTLS before binding (`before_bind`), usually port 389.
    #[default]
    Starttls,
    /// TLS from the first byte, LDAPS (`on_connect`), usually port 636.
    Ldaps,
    /// No TLS (`insecure`): passwords cross the network in clear. Only for tests.
    Insecure,
}

/// Authentication against the LDAP directory (jupyterhub-ldapauthenticator 2.x).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// Host name or address of the LDAP server.
    pub server_address: String,
    /// Port of the LDAP server. Default: 636 with `tls = "ldaps"`, 389 otherwise.
    #[serde(default)]
    pub server_port: Option<u16>,
    /// TLS mode: `starttls` (default), `ldaps` or `insecure`.
    #[serde(default)]
    pub tls: LdapTls,
    /// CA certificate file (in the hub container) to verify the server with
    /// (`tls_kwargs = {"ca_certs_file": ...}`). Default: the system's CAs.
    #[serde(default)]
    pub ca_certs_file: Option<String>,
    /// Find the user's DN by searching (`lookup_dn`) instead of `bind_dn_templates`. Default true.
    #[serde(default = "default_true")]
    pub lookup_dn: bool,
    /// Search base for users, e.g. `ou=people,dc=example,dc=edu` (needed with `lookup_dn`).
    #[serde(default)]
    pub user_search_base: Option<String>,
    /// Attribute holding the login name (`user_attribute`, also `lookup_dn_user_dn_attribute`).
    /// Default `uid`.
    #[serde(default = "default_user_attribute")]
    pub user_attribute: String,
    /// DN of the account that searches for users (`lookup_dn_search_user`). Default: anonymous
    /// search.
    #[serde(default)]
    pub search_user_dn: Option<String>,
    /// File holding that account's password, e.g. `/run/secrets/swarmhub-ldap-password` (a Docker
    /// secret). The config reads it when the hub starts (trailing newline removed); the password
    /// itself is never in the generated file. Required with `search_user_dn`.
    #[serde(default)]
    pub search_password_file: Option<String>,
    /// DN templates to bind with when `lookup_dn` is false, e.g.
    /// `uid={username},ou=people,dc=example,dc=edu`.
    #[serde(default)]
    pub bind_dn_templates: Vec<String>,
    /// DNs of the student groups. Members may log in.
    pub student_groups: Vec<String>,
    /// DN of the teacher group. Members may log in and get the teacher image. Membership is the
    /// exact DN string as written here (never a substring match); it is also in `allowed_groups`,
    /// because ldapauthenticator only reports groups it was asked about.
    pub teacher_group: String,
    /// User attributes kept in the auth state (`auth_state["user_attributes"]`). Default
    /// `["uidNumber", "gidNumber"]`.
    #[serde(default = "default_auth_state_attributes")]
    pub auth_state_attributes: Vec<String>,
}

/// The `swarmhub-nfs` volumes of a notebook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Volume driver of the mounts. Default `swarmhub-nfs` (the plugin's alias).
    #[serde(default = "default_volume_driver")]
    pub volume_driver: String,
    /// Where the user's home volume `home-<user>` is mounted: the notebook's home directory,
    /// which the volume is as a whole (volume option `layout=home`). Default `/home/jovyan`.
    /// swarmhub 0.x mounted it at `/home/jovyan/work`; such a volume's files move into its
    /// `work/` at the first mount, so they stay at `~/work`.
    #[serde(default = "default_home_target")]
    pub home_target: String,
    /// Mount the home and exchange volumes (default true). Without them a notebook's files
    /// live and die with its container: for diagnosis and for measuring what the volumes cost.
    #[serde(default = "default_true")]
    pub mount_volumes: bool,
    /// Quota of every home volume in bytes, passed as the volume option `size=`: `df` in the
    /// notebook shows it and writes past it fail with EDQUOT. Default 10 GiB; none = no quota.
    #[serde(default = "default_home_size")]
    pub home_size: Option<u64>,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            volume_driver: default_volume_driver(),
            home_target: default_home_target(),
            mount_volumes: true,
            home_size: default_home_size(),
        }
    }
}

/// The nbgrader course of this hub and its exchange directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NbgraderSettings {
    /// Course id (`NBGRADER_COURSE_ID` in every notebook), e.g. `intro-python`.
    pub course_id: String,
    /// Name of the shared exchange tree; each user mounts their own view `exchange-<user>` of it
    /// (options `share=<exchange_share>,user=<user>`). Default `exchange`.
    #[serde(default = "default_exchange_share")]
    pub exchange_share: String,
    /// Where the exchange view is mounted (`NBGRADER_EXCHANGE_ROOT`). Default
    /// `/srv/nbgrader/exchange` (nbgrader's default exchange root).
    #[serde(default = "default_exchange_target")]
    pub exchange_target: String,
    /// Bytes each user may own in the exchange, passed as `size=` of the user's exchange view
    /// (in a shared tree a view's size limits that user's own files, so one student cannot fill
    /// the exchange for everyone). Default 2 GiB; none = no quota.
    #[serde(default = "default_exchange_size")]
    pub exchange_size: Option<u64>,
}

/// jupyterhub-idle-culler, run by the hub as a managed service (it must be installed in the hub
/// image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdleCullerSettings {
    /// Run the culler. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Stop notebooks idle for this many seconds (`--timeout`). Default 3600.
    #[serde(default = "default_cull_timeout")]
    pub timeout_seconds: u32,
    /// Check every this many seconds (`--cull-every`). Default: the culler's (half the timeout).
    #[serde(default)]
    pub every_seconds: Option<u32>,
    /// Stop notebooks older than this many seconds even when active (`--max-age`). Default none.
    #[serde(default)]
    pub max_age_seconds: Option<u32>,
}

impl Default for IdleCullerSettings {
    fn default() -> Self {
        IdleCullerSettings {
            enabled: true,
            timeout_seconds: default_cull_timeout(),
            every_seconds: None,
            max_age_seconds: None,
        }
    }
}

fn default_port() -> u16 {
    8000
}
fn default_hub_service() -> String {
    "swarmhub-hub".into()
}
fn default_hub_api_port() -> u16 {
    8081
}
fn default_network() -> String {
    "swarmhub".into()
}
fn default_data_dir() -> String {
    "/srv/jupyterhub".into()
}
fn default_start_timeout() -> u32 {
    300
}
fn default_http_timeout() -> u32 {
    120
}
fn default_cmd() -> Vec<String> {
    vec!["jupyterhub-singleuser".into()]
}
fn default_true() -> bool {
    true
}
fn default_user_attribute() -> String {
    "uid".into()
}
fn default_auth_state_attributes() -> Vec<String> {
    vec!["uidNumber".into(), "gidNumber".into()]
}
fn default_volume_driver() -> String {
    "swarmhub-nfs".into()
}
fn default_home_target() -> String {
    "/home/jovyan".into()
}

/// Name prefix of the hub's home volumes: the template mounts `home-<user>` (the plugin is
/// told, so that it asks nfsd for `layout=home` for such volumes its node knows from before).
pub const HOME_VOLUME_PREFIX: &str = "home-";

/// The 0.x default of `storage.home_target`, refused now (see `validate`).
const OLD_HOME_TARGET: &str = "/home/jovyan/work";
fn default_exchange_share() -> String {
    "exchange".into()
}
fn default_exchange_target() -> String {
    "/srv/nbgrader/exchange".into()
}
/// 10 GiB: room for a semester of notebooks and data sets, small enough that a runaway loop
/// cannot fill the storage node.
pub const DEFAULT_HOME_SIZE: u64 = 10 << 30;
/// 2 GiB per user in the nbgrader exchange: submissions and released assignments are small.
pub const DEFAULT_EXCHANGE_SIZE: u64 = 2 << 30;

fn default_home_size() -> Option<u64> {
    Some(DEFAULT_HOME_SIZE)
}
fn default_exchange_size() -> Option<u64> {
    Some(DEFAULT_EXCHANGE_SIZE)
}
fn default_cull_timeout() -> u32 {
    3600
}

/// Why settings cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HubConfigError {
    /// A setting has a value the hub cannot use.
    #[error("hub setting {field}: {reason}")]
    Invalid {
        /// the setting's name as in `swarmhub.toml`, e.g. `notebook.student_image`
        field: &'static str,
        /// what is wrong and what is expected
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> HubConfigError {
    HubConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Render the hub's `jupyterhub_config.py` from validated settings.
pub fn render(s: &HubSettings) -> Result<String, HubConfigError> {
    let settings = settings_value(s)?;
    let mut out = String::with_capacity(TEMPLATE.len() + 4096);
    let mut replaced = 0;
    for line in TEMPLATE.split_inclusive('\n') {
        if line.trim_end() == SETTINGS_MARKER {
            out.push_str("SWARMHUB = ");
            out.push_str(&py_settings_dict(&settings));
            out.push('\n');
            replaced += 1;
        } else {
            out.push_str(line);
        }
    }
    debug_assert_eq!(replaced, 1, "the template holds the settings marker once");
    Ok(out)
}

/// Validate settings and turn them into the `SWARMHUB` dictionary (as JSON values; the keys are
/// what the template reads).
fn settings_value(s: &HubSettings) -> Result<Map<String, Value>, HubConfigError> {
    let (public_url, base_path) = check_public_url(&s.public_url)?;
    check_port("port", s.port)?;
    check_port("hub_api_port", s.hub_api_port)?;
    check_docker_name("hub_service", &s.hub_service)?;
    check_docker_name("network", &s.network)?;
    check_abs_path("data_dir", &s.data_dir)?;
    let data_dir = s.data_dir.trim_end_matches('/');
    if data_dir.is_empty() {
        return Err(invalid(
            "data_dir",
            "must not be / (use a directory on a persisted volume)",
        ));
    }
    for u in &s.admin_users {
        validate_user_name(u).map_err(|e| invalid("admin_users", e.to_string()))?;
    }
    if s.start_timeout_seconds == 0 {
        return Err(invalid("start_timeout_seconds", "must be at least 1"));
    }
    if s.http_timeout_seconds == 0 {
        return Err(invalid("http_timeout_seconds", "must be at least 1"));
    }

    let n = &s.notebook;
    check_image("notebook.student_image", &n.student_image)?;
    check_image("notebook.teacher_image", &n.teacher_image)?;
    if n.cmd.is_empty() || n.cmd.iter().any(|a| a.is_empty()) {
        return Err(invalid(
            "notebook.cmd",
            "must be a non-empty list of non-empty strings, e.g. [\"jupyterhub-singleuser\"]",
        ));
    }
    if let Some(url) = &n.default_url
        && (!url.starts_with('/') || url.chars().any(char::is_control))
    {
        return Err(invalid(
            "notebook.default_url",
            "must be a URL path starting with /, e.g. /lab",
        ));
    }
    let cpu_limit = check_cpu("notebook.cpu_limit", n.cpu_limit)?;
    let cpu_guarantee = check_cpu("notebook.cpu_guarantee", n.cpu_guarantee)?;
    if let (Some(l), Some(g)) = (cpu_limit, cpu_guarantee)
        && g > l
    {
        return Err(invalid(
            "notebook.cpu_guarantee",
            format!("{g} is above cpu_limit {l}"),
        ));
    }
    let mem_limit = n
        .mem_limit
        .as_ref()
        .map(|b| parse_byte_size("notebook.mem_limit", b))
        .transpose()?;
    let mem_guarantee = n
        .mem_guarantee
        .as_ref()
        .map(|b| parse_byte_size("notebook.mem_guarantee", b))
        .transpose()?;
    if let (Some(l), Some(g)) = (mem_limit, mem_guarantee)
        && g > l
    {
        return Err(invalid(
            "notebook.mem_guarantee",
            format!("{g} bytes is above mem_limit ({l} bytes)"),
        ));
    }
    for c in &n.placement_constraints {
        let ok = (c.contains("==") || c.contains("!="))
            && !c.chars().any(char::is_control)
            && !c.trim().is_empty();
        if !ok {
            return Err(invalid(
                "notebook.placement_constraints",
                format!("{c:?} is not a Swarm constraint like \"node.role==worker\""),
            ));
        }
    }

    let l = &s.ldap;
    if l.server_address.trim().is_empty()
        || l.server_address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(invalid(
            "ldap.server_address",
            "must be a host name or address (no scheme, no spaces)",
        ));
    }
    if l.server_port == Some(0) {
        return Err(invalid("ldap.server_port", "must be 1..65535"));
    }
    if let Some(f) = &l.ca_certs_file {
        check_abs_path("ldap.ca_certs_file", f)?;
    }
    if l.lookup_dn {
        if l.user_search_base
            .as_deref()
            .is_none_or(|b| b.trim().is_empty())
        {
            return Err(invalid(
                "ldap.user_search_base",
                "is needed with lookup_dn = true",
            ));
        }
    } else if l.bind_dn_templates.is_empty() {
        return Err(invalid(
            "ldap.bind_dn_templates",
            "is needed with lookup_dn = false",
        ));
    }
    for t in &l.bind_dn_templates {
        if !t.contains("{username}") {
            return Err(invalid(
                "ldap.bind_dn_templates",
                format!("{t:?} has no {{username}}"),
            ));
        }
    }
    if !is_ldap_attribute(&l.user_attribute) {
        return Err(invalid(
            "ldap.user_attribute",
            format!("{:?} is not an LDAP attribute name", l.user_attribute),
        ));
    }
    for a in &l.auth_state_attributes {
        if !is_ldap_attribute(a) {
            return Err(invalid(
                "ldap.auth_state_attributes",
                format!("{a:?} is not an LDAP attribute name"),
            ));
        }
    }
    match (&l.search_user_dn, &l.search_password_file) {
        (Some(_), None) => {
            return Err(invalid(
                "ldap.search_password_file",
                "is needed with search_user_dn (a file such as /run/secrets/swarmhub-ldap-password)",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "ldap.search_user_dn",
                "is needed with search_password_file",
            ));
        }
        (Some(dn), Some(f)) => {
            if dn.trim().is_empty() {
                return Err(invalid("ldap.search_user_dn", "must not be empty"));
            }
            check_abs_path("ldap.search_password_file", f)?;
        }
        (None, None) => {}
    }
    if l.student_groups.is_empty() {
        return Err(invalid(
            "ldap.student_groups",
            "must name at least one group DN (an empty list would let every LDAP account in)",
        ));
    }
    if l.student_groups.iter().any(|g| g.trim().is_empty()) {
        return Err(invalid("ldap.student_groups", "holds an empty group DN"));
    }
    if l.teacher_group.trim().is_empty() {
        return Err(invalid("ldap.teacher_group", "must be a group DN"));
    }
    let mut allowed_groups: Vec<&str> = Vec::new();
    for g in l
        .student_groups
        .iter()
        .chain(std::iter::once(&l.teacher_group))
    {
        if !allowed_groups.contains(&g.as_str()) {
            allowed_groups.push(g);
        }
    }

    let st = &s.storage;
    let driver_ok = !st.volume_driver.is_empty()
        && st.volume_driver.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '_' | '.' | '-' | ':' | '/'))
        });
    if !driver_ok {
        return Err(invalid(
            "storage.volume_driver",
            format!("{:?} is not a volume driver name", st.volume_driver),
        ));
    }
    check_abs_path("storage.home_target", &st.home_target)?;
    if st.home_target.trim_end_matches('/') == OLD_HOME_TARGET {
        return Err(invalid(
            "storage.home_target",
            format!(
                "{OLD_HOME_TARGET} was the default of swarmhub 0.x; the home volume is now the whole home directory: remove the setting or write /home/jovyan (the files users had in ~/work stay in ~/work)"
            ),
        ));
    }
    check_volume_size("storage.home_size", st.home_size)?;

    let nb = &s.nbgrader;
    validate_share_name(&nb.course_id).map_err(|e| invalid("nbgrader.course_id", e.to_string()))?;
    validate_share_name(&nb.exchange_share)
        .map_err(|e| invalid("nbgrader.exchange_share", e.to_string()))?;
    check_abs_path("nbgrader.exchange_target", &nb.exchange_target)?;
    check_volume_size("nbgrader.exchange_size", nb.exchange_size)?;
    let (home, exchange) = (
        st.home_target.trim_end_matches('/'),
        nb.exchange_target.trim_end_matches('/'),
    );
    if home == exchange
        || home.starts_with(&format!("{exchange}/"))
        || exchange.starts_with(&format!("{home}/"))
    {
        return Err(invalid(
            "nbgrader.exchange_target",
            format!("{exchange} and storage.home_target {home} must be separate directories"),
        ));
    }
    // the volume names the config derives must be valid for the longest user name it accepts
    let longest = "x".repeat(MAX_USER_NAME);
    validate_volume_name(&format!("{HOME_VOLUME_PREFIX}{longest}"))
        .map_err(|e| invalid("storage", e.to_string()))?;
    validate_volume_name(&format!("{}-{longest}", nb.exchange_share))
        .map_err(|e| invalid("nbgrader.exchange_share", e.to_string()))?;

    let c = &s.idle_culler;
    if c.enabled {
        if c.timeout_seconds < 60 {
            return Err(invalid(
                "idle_culler.timeout_seconds",
                "must be at least 60",
            ));
        }
        if c.every_seconds == Some(0) {
            return Err(invalid("idle_culler.every_seconds", "must be at least 1"));
        }
        if c.max_age_seconds == Some(0) {
            return Err(invalid(
                "idle_culler.max_age_seconds",
                "must be at least 1 (or left out)",
            ));
        }
    }

    let mut m = Map::new();
    let mut put = |key: &str, value: Value| {
        m.insert(key.to_string(), value);
    };
    if let Some(t) = &s.tls {
        check_abs_path("tls.cert_file", &t.cert_file)?;
        check_abs_path("tls.key_file", &t.key_file)?;
        if !public_url.starts_with("https://") {
            return Err(invalid(
                "public_url",
                format!("{public_url:?} must start with https:// when the hub serves TLS"),
            ));
        }
        if let Some((from, to)) = t.redirect {
            check_port("tls.redirect", from)?;
            check_port("tls.redirect", to)?;
            if from == s.port {
                return Err(invalid("tls.redirect", "must differ from the proxy's port"));
            }
        }
    }
    put("public_url", json!(public_url));
    put("ssl_cert", json!(s.tls.as_ref().map(|t| &t.cert_file)));
    put("ssl_key", json!(s.tls.as_ref().map(|t| &t.key_file)));
    put(
        "redirect_port",
        json!(s.tls.as_ref().and_then(|t| t.redirect).map(|r| r.0)),
    );
    put(
        "redirect_to",
        json!(s.tls.as_ref().and_then(|t| t.redirect).map(|r| r.1)),
    );
    put("base_path", json!(base_path));
    put("port", json!(s.port));
    put("hub_service", json!(s.hub_service));
    put("hub_api_port", json!(s.hub_api_port));
    put("network", json!(s.network));
    put(
        "db_url",
        json!(format!("sqlite:///{data_dir}/jupyterhub.sqlite")),
    );
    put(
        "cookie_secret_file",
        json!(format!("{data_dir}/jupyterhub_cookie_secret")),
    );
    put("admin_users", json!(s.admin_users));
    put("start_timeout", json!(s.start_timeout_seconds));
    put("http_timeout", json!(s.http_timeout_seconds));
    put("student_image", json!(n.student_image));
    put("teacher_image", json!(n.teacher_image));
    put("cmd", json!(n.cmd));
    put("default_url", json!(n.default_url));
    put("cpu_limit", json!(cpu_limit));
    put("cpu_guarantee", json!(cpu_guarantee));
    put("mem_limit", json!(mem_limit));
    put("mem_guarantee", json!(mem_guarantee));
    put("placement_constraints", json!(n.placement_constraints));
    put("ldap_server_address", json!(l.server_address));
    put(
        "ldap_server_port",
        json!(
            l.server_port
                .unwrap_or(if l.tls == LdapTls::Ldaps { 636 } else { 389 })
        ),
    );
    put(
        "ldap_tls_strategy",
        json!(match l.tls {
            LdapTls::Starttls => "before_bind",
            LdapTls::Ldaps => "on_connect",
            LdapTls::Insecure => "insecure",
        }),
    );
    put("ldap_ca_certs_file", json!(l.ca_certs_file));
    put("ldap_lookup_dn", json!(l.lookup_dn));
    put("ldap_user_search_base", json!(l.user_search_base));
    put("ldap_user_attribute", json!(l.user_attribute));
    put("ldap_search_user_dn", json!(l.search_user_dn));
    put("ldap_search_password_file", json!(l.search_password_file));
    put("ldap_bind_dn_templates", json!(l.bind_dn_templates));
    put("ldap_allowed_groups", json!(allowed_groups));
    put("ldap_teacher_group", json!(l.teacher_group));
    put("ldap_auth_state_attributes", json!(l.auth_state_attributes));
    put("volume_driver", json!(st.volume_driver));
    put("home_target", json!(st.home_target));
    put("mount_volumes", json!(st.mount_volumes));
    // volume options are strings; nfsd reads bytes like any size
    put("home_size", json!(st.home_size.map(|b| b.to_string())));
    put(
        "exchange_size",
        json!(nb.exchange_size.map(|b| b.to_string())),
    );
    put("course_id", json!(nb.course_id));
    put("exchange_share", json!(nb.exchange_share));
    put("exchange_target", json!(nb.exchange_target));
    put("user_name_max", json!(MAX_USER_NAME));
    put("idle_culler", json!(c.enabled));
    put("idle_culler_timeout", json!(c.timeout_seconds));
    put("idle_culler_every", json!(c.every_seconds));
    put("idle_culler_max_age", json!(c.max_age_seconds));
    Ok(m)
}

/// `https://host[:port]/path/` → (URL with a trailing slash, base path with both slashes).
fn check_public_url(url: &str) -> Result<(String, String), HubConfigError> {
    const FIELD: &str = "public_url";
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid(
                FIELD,
                format!("{url:?} must start with https:// or http://"),
            )
        })?;
    if url.chars().any(|c| c.is_whitespace() || c.is_control())
        || url.contains(['?', '#', '@', '\\'])
    {
        return Err(invalid(
            FIELD,
            format!("{url:?} must be a plain URL (no spaces, query, fragment or user part)"),
        ));
    }
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid(FIELD, format!("{url:?} has no host")));
    }
    if path.contains("//") || path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(invalid(FIELD, format!("{url:?} has an unusual path")));
    }
    let base = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    let scheme = &url[..url.len() - rest.len()];
    Ok((format!("{scheme}{host}{base}"), base))
}

fn check_port(field: &'static str, port: u16) -> Result<(), HubConfigError> {
    if port == 0 {
        return Err(invalid(field, "must be 1..65535"));
    }
    Ok(())
}

/// Docker object names (services, networks): `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 63 bytes
/// (a DNS label, since the hub's service name is resolved by Docker's DNS).
pub(crate) fn check_docker_name(field: &'static str, name: &str) -> Result<(), HubConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '_' | '.' | '-')));
    if !ok {
        return Err(invalid(
            field,
            format!(
                "{name:?} must be 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn check_abs_path(field: &'static str, path: &str) -> Result<(), HubConfigError> {
    let ok = path.starts_with('/')
        && !path.chars().any(char::is_control)
        && !path.split('/').any(|seg| seg == "." || seg == "..");
    if !ok {
        return Err(invalid(
            field,
            format!("{path:?} must be an absolute path without . or .."),
        ));
    }
    Ok(())
}

/// A pinned image reference: no spaces, and a digest or a tag other than `latest`.
pub(crate) fn check_image(field: &'static str, image: &str) -> Result<(), HubConfigError> {
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            field,
            format!("{image:?} is not an image reference"),
        ));
    }
    if image.contains('@') {
        return Ok(());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() && tag != "latest" => Ok(()),
        _ => Err(invalid(
            field,
            format!(
                "{image:?} is not pinned: give a tag other than latest (name:1.0) or a digest (name@sha256:...)"
            ),
        )),
    }
}

fn check_cpu(field: &'static str, v: Option<f64>) -> Result<Option<f64>, HubConfigError> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(invalid(
            field,
            format!("{x} is not a positive number of cores"),
        )),
        other => Ok(other),
    }
}

/// A volume size of at least 1 MiB (less would not hold a notebook's checkpoints).
fn check_volume_size(field: &'static str, size: Option<u64>) -> Result<(), HubConfigError> {
    match size {
        Some(b) if b < 1 << 20 => Err(invalid(
            field,
            format!("{b} bytes is less than 1 MiB; leave it out for no quota"),
        )),
        _ => Ok(()),
    }
}

/// Bytes from `1073741824`, `"512M"`, `"1.5G"` (1024-based, like JupyterHub's ByteSpecification).
fn parse_byte_size(field: &'static str, b: &ByteSize) -> Result<u64, HubConfigError> {
    let bad = |t: &str| {
        invalid(
            field,
            format!("{t:?} is not a size; write bytes or a number with K, M, G or T (2G)"),
        )
    };
    // the text's f64 is checked finite, not negative and below 2^64 before its cast to u64
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = match b {
        ByteSize::Bytes(n) => *n,
        ByteSize::Text(t) => {
            let t = t.trim();
            let (num, mult) = match t.chars().last() {
                Some('K') => (&t[..t.len() - 1], 1u64 << 10),
                Some('M') => (&t[..t.len() - 1], 1 << 20),
                Some('G') => (&t[..t.len() - 1], 1 << 30),
                Some('T') => (&t[..t.len() - 1], 1 << 40),
                _ => (t, 1),
            };
            if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(bad(t));
            }
            let x: f64 = num.parse().map_err(|_| bad(t))?;
            let v = x * mult as f64;
            if !v.is_finite() || v >= u64::MAX as f64 {
                return Err(bad(t));
            }
            v as u64
        }
    };
    if bytes < 1 << 20 {
        return Err(invalid(
            field,
            format!("{bytes} bytes is less than 1 MiB; Docker refuses such limits"),
        ));
    }
    Ok(bytes)
}

fn is_ldap_attribute(a: &str) -> bool {
    let mut chars = a.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A Python string literal for `s`: double-quoted, pure ASCII. Backslash, quote and every
/// character outside printable ASCII are escaped (`\n`, `\x07`, `\u00e9`, `\U0001f600`), so the
/// literal always parses back to exactly `s`, whatever `s` holds.
pub fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// The Python literal of a JSON value: `None`, `True`/`False`, numbers, strings through
/// [`py_str`], lists and dicts. The one way a value enters the generated file.
pub fn py_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        // serde_json numbers are finite; their text (1, -2, 1.5, 1e+21) is Python syntax too
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_literal).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_literal(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// The settings dictionary, one key per line.
fn py_settings_dict(m: &Map<String, Value>) -> String {
    let mut out = String::from("{\n");
    for (k, v) in m {
        out.push_str(&format!("    {}: {},\n", py_str(k), py_literal(v)));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings of a small course, as the CLI would read them from `swarmhub.toml`.
    pub(crate) fn example() -> HubSettings {
        toml::from_str(
            r#"
            public_url = "https://hub.example.edu/"
            [notebook]
            student_image = "swarmhub/notebook-student:1.0"
            teacher_image = "swarmhub/notebook-teacher:1.0"
            cpu_limit = 2.0
            mem_limit = "2G"
            placement_constraints = ["node.role==worker"]
            [ldap]
            server_address = "ldap.example.edu"
            user_search_base = "ou=people,dc=example,dc=edu"
            search_user_dn = "cn=reader,dc=example,dc=edu"
            search_password_file = "/run/secrets/swarmhub-ldap-password"
            student_groups = ["cn=students,ou=groups,dc=example,dc=edu"]
            teacher_group = "cn=teachers,ou=groups,dc=example,dc=edu"
            [nbgrader]
            course_id = "intro-python"
            "#,
        )
        .expect("example settings parse")
    }

    #[test]
    fn template_has_one_marker_and_is_ascii() {
        let n = TEMPLATE
            .lines()
            .filter(|l| l.trim_end() == SETTINGS_MARKER)
            .count();
        assert_eq!(n, 1);
        assert!(TEMPLATE.is_ascii());
    }

    #[test]
    fn home_volumes_are_named_with_the_prefix_the_plugin_is_given() {
        assert!(TEMPLATE.contains(&format!("f\"{HOME_VOLUME_PREFIX}{{user}}\"")));
        assert!(TEMPLATE.contains(r#"{"user": user, "layout": "home"}"#));
    }

    #[test]
    fn defaults_fill_the_rest() {
        let s = example();
        assert_eq!(s.port, 8000);
        assert_eq!(s.network, "swarmhub");
        assert_eq!(s.notebook.cmd, vec!["jupyterhub-singleuser"]);
        assert_eq!(s.storage.volume_driver, "swarmhub-nfs");
        assert_eq!(s.storage.home_target, "/home/jovyan");
        assert_eq!(s.nbgrader.exchange_share, "exchange");
        assert_eq!(s.nbgrader.exchange_target, "/srv/nbgrader/exchange");
        assert_eq!(s.ldap.auth_state_attributes, vec!["uidNumber", "gidNumber"]);
        assert!(s.ldap.lookup_dn);
        assert!(s.idle_culler.enabled);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<HubSettings>(
            "public_url = \"https://h/\"\nbogus = 1\n[notebook]\nstudent_image=\"a:1\"\nteacher_image=\"b:1\"\n\
             [ldap]\nserver_address=\"l\"\nstudent_groups=[\"s\"]\nteacher_group=\"t\"\n[nbgrader]\ncourse_id=\"c\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn renders_the_settings_block() {
        let out = render(&example()).unwrap();
        assert!(out.is_ascii());
        assert!(!out.contains(SETTINGS_MARKER));
        assert!(out.contains("SWARMHUB = {\n"));
        assert!(out.contains("    \"student_image\": \"swarmhub/notebook-student:1.0\",\n"));
        assert!(out.contains("    \"cmd\": [\"jupyterhub-singleuser\"],\n"));
        assert!(out.contains("    \"mem_limit\": 2147483648,\n"));
        assert!(out.contains("    \"cpu_limit\": 2.0,\n"));
        assert!(out.contains("    \"ldap_tls_strategy\": \"before_bind\",\n"));
        assert!(out.contains("    \"ldap_server_port\": 389,\n"));
        assert!(out.contains("    \"db_url\": \"sqlite:////srv/jupyterhub/jupyterhub.sqlite\",\n"));
        assert!(out.contains(
            "    \"ldap_allowed_groups\": [\"cn=students,ou=groups,dc=example,dc=edu\", \"cn=teachers,ou=groups,dc=example,dc=edu\"],\n"
        ));
        assert!(out.contains(
            "    \"ldap_search_password_file\": \"/run/secrets/swarmhub-ldap-password\",\n"
        ));
        assert!(out.contains("    \"base_path\": \"/\",\n"));
        assert!(out.contains("    \"default_url\": None,\n"));
        assert!(out.contains("    \"idle_culler\": True,\n"));
    }

    #[test]
    fn py_str_escapes_everything_that_could_break_out() {
        assert_eq!(py_str("plain"), "\"plain\"");
        assert_eq!(py_str(r#"a"b"#), r#""a\"b""#);
        assert_eq!(py_str(r"a\b"), r#""a\\b""#);
        assert_eq!(py_str("a\\"), r#""a\\""#);
        assert_eq!(py_str("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(py_str("\0\x07\x7f"), r#""\x00\x07\x7f""#);
        assert_eq!(py_str("é€😀"), r#""\xe9\u20ac\U0001f600""#);
        assert_eq!(py_str("'''\"\"\"{x}"), r#""'''\"\"\"{x}""#);
        // the line separators Python's tokenizer might treat as line ends are escaped too
        assert_eq!(py_str("\u{2028}\u{85}\u{c}"), r#""\u2028\x85\x0c""#);
    }

    #[test]
    fn py_literal_covers_json() {
        let v = json!({"a": [1, -2, 1.5, true, false, null, "x\"y"], "b\n": {}});
        assert_eq!(
            py_literal(&v),
            r#"{"a": [1, -2, 1.5, True, False, None, "x\"y"], "b\n": {}}"#
        );
    }

    #[test]
    fn odd_values_stay_inside_their_literals() {
        let mut s = example();
        s.ldap.teacher_group = "cn=t\"ea\\chers\n\"), __import__('os').system('x')#,dc=é".into();
        s.ldap.student_groups = vec!["cn=a'b,dc=x\r\n".into(), "cn=\u{2028}".into()];
        s.ldap.search_user_dn = Some("cn=\"\"\"reader".into());
        s.ldap.user_search_base = Some("ou=people\\,x".into());
        s.notebook.placement_constraints = vec!["node.labels.zone==\"a\\b\"".into()];
        let out = render(&s).unwrap();
        assert!(out.is_ascii());
        // each settings line is `    "key": literal,` and nothing spills onto another line
        let start = out.find("SWARMHUB = {\n").unwrap();
        let block = &out[start..start + out[start..].find("\n}\n").unwrap()];
        for line in block.lines().skip(1) {
            assert!(line.starts_with("    \"") && line.ends_with(','), "{line}");
        }
        assert!(block.contains(r#""cn=t\"ea\\chers\n\"), __import__('os').system('x')#,dc=\xe9""#));
    }

    #[test]
    fn base_path_follows_the_public_url() {
        let mut s = example();
        s.public_url = "https://www.example.edu:8443/jupyter".into();
        let m = settings_value(&s).unwrap();
        assert_eq!(m["public_url"], "https://www.example.edu:8443/jupyter/");
        assert_eq!(m["base_path"], "/jupyter/");
        for bad in [
            "hub.example.edu",
            "ftp://x/",
            "https:///x",
            "https://h/a b",
            "https://h/?q",
            "https://u@h/",
            "https://h/a/../b/",
            "https://h/\n",
        ] {
            s.public_url = bad.into();
            assert!(
                matches!(
                    render(&s),
                    Err(HubConfigError::Invalid {
                        field: "public_url",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_are_never_in_the_output() {
        // Settings can only name the file of the LDAP password (a Docker secret); no field holds a
        // secret value, and the crypt key is not a setting at all.
        let s = example();
        let fields = serde_json::to_value(&s).unwrap();
        let mut keys = Vec::new();
        fn walk(v: &Value, keys: &mut Vec<String>) {
            if let Value::Object(m) = v {
                for (k, v) in m {
                    keys.push(k.clone());
                    walk(v, keys);
                }
            }
        }
        walk(&fields, &mut keys);
        let secretish: Vec<_> = keys
            .iter()
            .filter(|k| {
                ["password", "secret", "key", "token"]
                    .iter()
                    .any(|w| k.contains(w))
            })
            .collect();
        assert_eq!(secretish, ["search_password_file"]);
        let out = render(&s).unwrap();
        assert!(
            out.contains("\"ldap_search_password_file\": \"/run/secrets/swarmhub-ldap-password\"")
        );
        assert!(out.contains("lookup_dn_search_password = _read_secret("));
        assert!(!out.contains("JUPYTERHUB_CRYPT_KEY\"] ="));
    }

    #[test]
    fn refuses_bad_settings_with_the_field_name() {
        type Change = Box<dyn Fn(&mut HubSettings)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "notebook.student_image",
                Box::new(|s| s.notebook.student_image = "swarmhub/nb".into()),
            ),
            (
                "notebook.teacher_image",
                Box::new(|s| s.notebook.teacher_image = "swarmhub/nb:latest".into()),
            ),
            (
                "notebook.student_image",
                Box::new(|s| s.notebook.student_image = "a b:1".into()),
            ),
            ("notebook.cmd", Box::new(|s| s.notebook.cmd = vec![])),
            (
                "notebook.cpu_limit",
                Box::new(|s| s.notebook.cpu_limit = Some(f64::NAN)),
            ),
            (
                "notebook.cpu_guarantee",
                Box::new(|s| s.notebook.cpu_guarantee = Some(4.0)),
            ),
            (
                "notebook.mem_limit",
                Box::new(|s| s.notebook.mem_limit = Some(ByteSize::Text("2 GB".into()))),
            ),
            (
                "notebook.mem_guarantee",
                Box::new(|s| s.notebook.mem_guarantee = Some(ByteSize::Text("3G".into()))),
            ),
            (
                "notebook.placement_constraints",
                Box::new(|s| s.notebook.placement_constraints = vec!["worker".into()]),
            ),
            ("network", Box::new(|s| s.network = "../x".into())),
            (
                "hub_service",
                Box::new(|s| s.hub_service = "hub service".into()),
            ),
            (
                "data_dir",
                Box::new(|s| s.data_dir = "srv/jupyterhub".into()),
            ),
            ("data_dir", Box::new(|s| s.data_dir = "/".into())),
            ("port", Box::new(|s| s.port = 0)),
            (
                "admin_users",
                Box::new(|s| s.admin_users = vec!["a b".into()]),
            ),
            (
                "ldap.server_address",
                Box::new(|s| s.ldap.server_address = "ldap://x".into()),
            ),
            (
                "ldap.user_search_base",
                Box::new(|s| s.ldap.user_search_base = None),
            ),
            (
                "ldap.bind_dn_templates",
                Box::new(|s| s.ldap.lookup_dn = false),
            ),
            (
                "ldap.search_password_file",
                Box::new(|s| s.ldap.search_password_file = None),
            ),
            (
                "ldap.search_password_file",
                Box::new(|s| s.ldap.search_password_file = Some("pw".into())),
            ),
            (
                "ldap.student_groups",
                Box::new(|s| s.ldap.student_groups = vec![]),
            ),
            (
                "ldap.teacher_group",
                Box::new(|s| s.ldap.teacher_group = " ".into()),
            ),
            (
                "ldap.auth_state_attributes",
                Box::new(|s| s.ldap.auth_state_attributes = vec!["uid Number".into()]),
            ),
            (
                "storage.volume_driver",
                Box::new(|s| s.storage.volume_driver = "swarmhub nfs".into()),
            ),
            (
                "storage.home_target",
                Box::new(|s| s.storage.home_target = "work".into()),
            ),
            (
                "storage.home_target",
                Box::new(|s| s.storage.home_target = "/home/jovyan/work/".into()),
            ),
            (
                "nbgrader.course_id",
                Box::new(|s| s.nbgrader.course_id = "intro python".into()),
            ),
            (
                "nbgrader.exchange_share",
                Box::new(|s| s.nbgrader.exchange_share = "../exchange".into()),
            ),
            (
                "nbgrader.exchange_target",
                Box::new(|s| s.nbgrader.exchange_target = "/home/jovyan/work/x".into()),
            ),
            (
                "idle_culler.timeout_seconds",
                Box::new(|s| s.idle_culler.timeout_seconds = 5),
            ),
        ];
        for (field, change) in cases {
            let mut s = example();
            change(&mut s);
            match render(&s) {
                Err(HubConfigError::Invalid { field: f, reason }) => {
                    assert_eq!(f, field, "{reason}");
                    assert!(!reason.is_empty());
                }
                Ok(_) => panic!("{field}: accepted"),
            }
        }
    }

    #[test]
    fn teacher_group_in_students_is_not_duplicated() {
        let mut s = example();
        s.ldap.student_groups.push(s.ldap.teacher_group.clone());
        let m = settings_value(&s).unwrap();
        assert_eq!(m["ldap_allowed_groups"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn byte_sizes_read_like_jupyterhub() {
        let p = |t: &str| parse_byte_size("f", &ByteSize::Text(t.into()));
        assert_eq!(p("512M").unwrap(), 512 << 20);
        assert_eq!(p("1.5G").unwrap(), 3 << 29);
        assert_eq!(p("2147483648").unwrap(), 2 << 30);
        assert_eq!(
            parse_byte_size("f", &ByteSize::Bytes(1 << 30)).unwrap(),
            1 << 30
        );
        for bad in ["", "G", "1e3G", "-1G", "2GB", "1K"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ldaps_defaults_to_port_636() {
        let mut s = example();
        s.ldap.tls = LdapTls::Ldaps;
        let m = settings_value(&s).unwrap();
        assert_eq!(m["ldap_server_port"], 636);
        assert_eq!(m["ldap_tls_strategy"], "on_connect");
    }
}
