//! The hub's `jupyterhub_config.py`, generated from [`HubSettings`] and stored by the CLI as a
//! Docker config of the hub service.
//!
//! One schema: `swarmhub.toml` is read into [`Config`]; [`HubSettings::from_config`] checks the
//! values the hub uses (errors name the `swarmhub.toml` key) and yields the typed settings, whose
//! serialization is exactly the dictionary the template reads; [`render`] writes it in.
//!
//! The generated file is a fixed Python program (`settings/jupyterhub_config.py.tmpl`) preceded
//! by one dictionary literal, `SWARMHUB = {...}`, that holds every setting. Every value goes through
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
//! - Docker reached only through the Docker gate's socket (`docker_url`): the hub holds no
//!   socket of dockerd's, and the gate forwards only calls about the notebook services these
//!   settings describe;
//! - endpoint mode `dnsrr`, the attachable overlay network, internal IPs (service names), explicit
//!   `cmd`, pinned images, `allowed_images = {}`, CPU/memory limits, placement constraints;
//! - `ldapauthenticator.LDAPAuthenticator` 2.x with `allowed_groups` = students + teachers and
//!   `enable_auth_state`; an `auth_state_hook` keeps the user's `ldap_groups`, and a
//!   `pre_spawn_hook` picks the teacher image on exact group-DN membership, sets role/course
//!   environment and the two `swarmhub-nfs` volume mounts (home and exchange view, each with
//!   its `size=` quota) in `extra_container_spec["mounts"]`, refusing user names that cannot
//!   name a volume;
//! - with TLS, the hub's TLS front ([`tls_front`], nginx) as a hub-managed service: the config
//!   writes its configuration to `tls_front_file` and the proxy listens behind it on the
//!   container's loopback, with `--no-x-forward`;
//! - the hub database and cookie secret under a persisted data directory, `hub_ip = 0.0.0.0`,
//!   `hub_connect_ip` = the hub's service name, and jupyterhub-idle-culler as a hub-managed
//!   service with its own role.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use swarmhub_control_api::names::{
    MAX_USER_NAME, validate_share_name, validate_user_name, validate_volume_name,
};

use super::tls_front::{self, TlsFront};
use super::{
    Config, ConfigError, HUB_API_PORT, HUB_CONTAINER_PORT, HUB_DATA_DIR, TlsMode, VolumeMode,
    check_image, invalid, secret_path,
};
use crate::names;

/// Where the generated config writes the TLS front's nginx configuration (the container's
/// `/run`, written again at every hub start).
pub const TLS_FRONT_FILE: &str = "/run/swarmhub-tls-front.conf";
/// The fixed part of the generated file.
const TEMPLATE: &str = include_str!("jupyterhub_config.py.tmpl");
/// The line of [`TEMPLATE`] that [`render`] replaces with `SWARMHUB = {...}`.
const SETTINGS_MARKER: &str = "#@@SWARMHUB_SETTINGS@@";

/// Where the home volume is mounted in a notebook: the notebook's home directory, which the
/// volume is as a whole (volume option `layout=home`). swarmhub 0.x mounted it at
/// `/home/jovyan/work`; such a volume's files move into its `work/` at the first mount.
pub const HOME_TARGET: &str = "/home/jovyan";
/// Where the user's view of the nbgrader exchange is mounted (nbgrader's default exchange root,
/// `NBGRADER_EXCHANGE_ROOT`).
pub const EXCHANGE_TARGET: &str = "/srv/nbgrader/exchange";
/// User attributes kept in the auth state (`auth_state["user_attributes"]`).
pub const AUTH_STATE_ATTRIBUTES: [&str; 2] = ["uidNumber", "gidNumber"];

/// The `SWARMHUB` dictionary of the generated `jupyterhub_config.py`: every field is one key the
/// template reads, with the value it uses as is. Built only by [`HubSettings::from_config`],
/// which checks every value it takes from `swarmhub.toml` and names that file's key when one is
/// wrong; [`render`] then cannot fail. (Tests of the template set the fields the CLI keeps
/// fixed, e.g. `ldap_bind_dn_templates`, directly.)
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HubSettings {
    /// URL users open, with a trailing slash (`JupyterHub.public_url`): `cluster.public_url`.
    pub public_url: String,
    /// With TLS: the nginx configuration of the hub's TLS front ([`tls_front`]), which serves
    /// HTTPS on the public port; the config writes it to `tls_front_file` and runs nginx as a
    /// hub-managed service. None: the proxy itself serves plain HTTP on the public port.
    pub tls_front_conf: Option<String>,
    /// Where the generated config writes `tls_front_conf` inside the hub container.
    pub tls_front_file: String,
    /// The public URL's path with both slashes: JupyterHub's base URL (in `bind_url`).
    pub base_path: String,
    /// Address configurable-http-proxy listens on inside the hub container (`bind_url`): every
    /// address without TLS, the loopback behind the TLS front.
    pub proxy_ip: String,
    /// Its port: [`HUB_CONTAINER_PORT`] (published) without TLS,
    /// [`tls_front::PROXY_BEHIND_FRONT_PORT`] behind the front.
    pub proxy_port: u16,
    /// The hub's service name: notebooks reach the hub API at it (`hub_connect_ip`).
    pub hub_service: String,
    /// Port of the hub's internal API (`JupyterHub.hub_port`).
    pub hub_api_port: u16,
    /// Overlay network of the notebook services (`SwarmSpawner.network_name`).
    pub network: String,
    /// Where SwarmSpawner reaches Docker (`client_kwargs["base_url"]`): the Docker gate's
    /// socket ([`names::DOCKER_GATE_HOST`]). The hub has no socket of dockerd's; the gate
    /// allows exactly the notebook services of these settings.
    pub docker_url: String,
    /// The hub database on its persisted volume.
    pub db_url: String,
    /// The cookie secret file on that volume.
    pub cookie_secret_file: String,
    /// `Authenticator.admin_users`.
    pub admin_users: Vec<String>,
    /// `Spawner.start_timeout`, seconds.
    pub start_timeout: u32,
    /// `Spawner.http_timeout`, seconds.
    pub http_timeout: u32,
    /// Image of students (pinned).
    pub student_image: String,
    /// Image of the teacher group's members (pinned).
    pub teacher_image: String,
    /// `Spawner.cmd`, explicit so the hub never inspects an image.
    pub cmd: Vec<String>,
    /// `Spawner.default_url`; none: the image's.
    pub default_url: Option<String>,
    /// CPU cores a notebook may use; none: no limit.
    pub cpu_limit: Option<f64>,
    /// CPU cores reserved for a notebook.
    pub cpu_guarantee: Option<f64>,
    /// Memory limit of a notebook in bytes.
    pub mem_limit: Option<u64>,
    /// Memory reserved for a notebook in bytes.
    pub mem_guarantee: Option<u64>,
    /// Swarm placement constraints of notebook services.
    pub placement_constraints: Vec<String>,
    /// Host name or address of the LDAP server (an IPv6 address in brackets).
    pub ldap_server_address: String,
    /// Its port (636 with LDAPS, 389 otherwise, unless `ldap.url` names one).
    pub ldap_server_port: u16,
    /// `LDAPAuthenticator.tls_strategy`.
    pub ldap_tls_strategy: LdapTls,
    /// CA file to verify the LDAP server with; none: the system's CAs.
    pub ldap_ca_certs_file: Option<String>,
    /// Find the user's DN by searching (`lookup_dn`) instead of `bind_dn_templates`.
    pub ldap_lookup_dn: bool,
    /// Search base of users.
    pub ldap_user_search_base: Option<String>,
    /// Attribute holding the login name.
    pub ldap_user_attribute: String,
    /// DN of the account that searches (none: anonymous search).
    pub ldap_search_user_dn: Option<String>,
    /// File (a Docker secret) holding that account's password, read when the hub starts.
    pub ldap_search_password_file: Option<String>,
    /// DN templates to bind with when `ldap_lookup_dn` is false.
    pub ldap_bind_dn_templates: Vec<String>,
    /// Student groups and the teacher group, each once (`allowed_groups`).
    pub ldap_allowed_groups: Vec<String>,
    /// DN of the teacher group (exact string membership picks the teacher image).
    pub ldap_teacher_group: String,
    /// `auth_state_attributes`.
    pub ldap_auth_state_attributes: Vec<String>,
    /// Volume driver of the mounts (the plugin's alias).
    pub volume_driver: String,
    /// Where the home volume is mounted.
    pub home_target: String,
    /// `swarmhub`, `local` or `none` (`hub.volumes`).
    pub volumes: VolumeMode,
    /// `JupyterHub.concurrent_spawn_limit` (0: none).
    pub concurrent_spawn_limit: u32,
    /// `JupyterHub.active_server_limit` (0: none).
    pub active_server_limit: u32,
    /// Start slots of the spawner (0: none).
    pub concurrent_starts: u32,
    /// Failed tasks with a transient error a spawn outlives.
    pub spawn_retries: u32,
    /// Quota of every home volume in bytes, as the volume option `size=` (a string); none: no
    /// quota.
    #[serde(serialize_with = "option_as_string")]
    pub home_size: Option<u64>,
    /// Bytes each user may own in the exchange, as `size=` of the user's exchange view.
    #[serde(serialize_with = "option_as_string")]
    pub exchange_size: Option<u64>,
    /// `NBGRADER_COURSE_ID`.
    pub course_id: String,
    /// The shared exchange tree; each user mounts the view `<exchange_share>-<user>`.
    pub exchange_share: String,
    /// Where the exchange view is mounted (`NBGRADER_EXCHANGE_ROOT`).
    pub exchange_target: String,
    /// The longest user name that can name a volume.
    pub user_name_max: usize,
    /// Run jupyterhub-idle-culler as a hub-managed service.
    pub idle_culler: bool,
    /// Its `--timeout`, seconds.
    pub idle_culler_timeout: u32,
    /// Its `--cull-every`, seconds; none: the culler's default.
    pub idle_culler_every: Option<u32>,
    /// Its `--max-age`, seconds; none: no age limit.
    pub idle_culler_max_age: Option<u32>,
    /// Labels every notebook service gets as they are ([`names::COMPONENT_LABEL`] =
    /// [`names::NOTEBOOK_COMPONENT`]), so that `swarmhub` finds notebook services.
    pub notebook_labels: BTreeMap<String, String>,
    /// Label with the notebook's user ([`names::USER_LABEL`]).
    pub user_label: String,
    /// Label with the notebook's role, `student` or `teacher` ([`names::ROLE_LABEL`]).
    pub role_label: String,
}

/// How the hub talks TLS to the LDAP server, as `LDAPAuthenticator.tls_strategy` (2.x) names
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LdapTls {
    /// StartTLS before binding (`ldap://`).
    #[serde(rename = "before_bind")]
    Starttls,
    /// TLS from the first byte (`ldaps://`).
    #[serde(rename = "on_connect")]
    Ldaps,
    /// No TLS (`ldap://` with `starttls = false`): passwords cross the network in clear.
    #[serde(rename = "insecure")]
    Insecure,
}

fn option_as_string<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    v.map(|b| b.to_string()).serialize(s)
}

impl HubSettings {
    /// The hub settings of `cfg`, each value taken from `swarmhub.toml` checked on the way; an
    /// error names the key (`setting hub.mem_limit: ...`). The rest of `cfg` is checked by
    /// [`Config::validate`], which calls this.
    pub fn from_config(cfg: &Config) -> Result<HubSettings, ConfigError> {
        let (c, l, h) = (&cfg.cluster, &cfg.ldap, &cfg.hub);
        let (public_url, base_path) = super::check_public_url(&c.public_url)?;
        let (tls, server_address, server_port) = super::ldap_endpoint(l)?;
        for u in &h.admin_users {
            validate_user_name(u).map_err(|e| invalid("hub.admin_users", e.to_string()))?;
        }
        for (key, v) in [
            ("hub.start_timeout_seconds", h.start_timeout_seconds),
            ("hub.http_timeout_seconds", h.http_timeout_seconds),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        check_image("images.notebook_student", &cfg.images.notebook_student)?;
        check_image("images.notebook_teacher", &cfg.images.notebook_teacher)?;
        if h.notebook_cmd.is_empty() || h.notebook_cmd.iter().any(|a| a.is_empty()) {
            return Err(invalid(
                "hub.notebook_cmd",
                "must be a non-empty list of non-empty strings, e.g. [\"jupyterhub-singleuser\"]",
            ));
        }
        if let Some(url) = &h.default_url
            && (!url.starts_with('/') || url.chars().any(char::is_control))
        {
            return Err(invalid(
                "hub.default_url",
                "must be a URL path starting with /, e.g. /lab",
            ));
        }
        if !(h.cpu_limit.is_finite() && h.cpu_limit >= 0.0) {
            return Err(invalid("hub.cpu_limit", "must be 0 (no limit) or more"));
        }
        let mem_limit =
            super::size_setting("hub.mem_limit", &h.mem_limit, "Docker refuses such limits")?;
        let volumes = match (h.volumes, h.mount_volumes) {
            (v, true) => v,
            (VolumeMode::Swarmhub | VolumeMode::None, false) => VolumeMode::None,
            (VolumeMode::Local, false) => {
                return Err(invalid(
                    "hub.mount_volumes",
                    "false (no volumes) contradicts hub.volumes = \"local\"; drop mount_volumes, it is replaced by hub.volumes",
                ));
            }
        };
        for con in &h.notebook_constraints {
            let ok = (con.contains("==") || con.contains("!="))
                && !con.chars().any(char::is_control)
                && !con.trim().is_empty();
            if !ok {
                return Err(invalid(
                    "hub.notebook_constraints",
                    format!("{con:?} is not a Swarm constraint like \"node.role==worker\""),
                ));
            }
        }
        let user_search_base = l.user_search_base.clone().unwrap_or(l.base_dn.clone());
        if user_search_base.trim().is_empty() {
            let key = if l.user_search_base.is_some() {
                "ldap.user_search_base"
            } else {
                "ldap.base_dn"
            };
            return Err(invalid(key, "must be a DN"));
        }
        if !is_ldap_attribute(&l.user_attribute) {
            return Err(invalid(
                "ldap.user_attribute",
                format!("{:?} is not an LDAP attribute name", l.user_attribute),
            ));
        }
        if l.bind_dn.as_ref().is_some_and(|dn| dn.trim().is_empty()) {
            return Err(invalid(
                "ldap.bind_dn",
                "must be a DN (or left out for anonymous search)",
            ));
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
        let mut allowed_groups: Vec<String> = Vec::new();
        for g in l.student_groups.iter().chain([&l.teacher_group]) {
            if !allowed_groups.contains(g) {
                allowed_groups.push(g.clone());
            }
        }
        let volume_quota = "leave it out or write 0 for no quota";
        let home_size = super::size_setting("hub.home_size", &h.home_size, volume_quota)?;
        let exchange_size =
            super::size_setting("hub.exchange_size", &h.exchange_size, volume_quota)?;
        validate_share_name(&h.course_id).map_err(|e| invalid("hub.course_id", e.to_string()))?;
        validate_share_name(&h.exchange_share)
            .map_err(|e| invalid("hub.exchange_share", e.to_string()))?;
        // the exchange views' volume names must be valid for the longest user name accepted
        validate_volume_name(&format!(
            "{}-{}",
            h.exchange_share,
            "x".repeat(MAX_USER_NAME)
        ))
        .map_err(|e| invalid("hub.exchange_share", e.to_string()))?;
        if h.idle_timeout_seconds != 0 && h.idle_timeout_seconds < 60 {
            return Err(invalid(
                "hub.idle_timeout_seconds",
                "must be at least 60 (or 0: never stop idle notebooks)",
            ));
        }
        let front = (cfg.tls.mode != TlsMode::Off).then(|| TlsFront {
            cert_file: secret_path(names::HUB_TLS_CERT_FILE),
            key_file: secret_path(names::HUB_TLS_KEY_FILE),
            redirect_to: (c.hub_redirect_port != 0).then_some(c.hub_port),
        });
        let (proxy_ip, proxy_port) = match front {
            Some(_) => ("127.0.0.1", tls_front::PROXY_BEHIND_FRONT_PORT),
            None => ("", HUB_CONTAINER_PORT),
        };
        Ok(HubSettings {
            public_url,
            tls_front_conf: front.as_ref().map(tls_front::render),
            tls_front_file: TLS_FRONT_FILE.into(),
            base_path,
            proxy_ip: proxy_ip.into(),
            proxy_port,
            hub_service: c.hub_service.clone(),
            hub_api_port: HUB_API_PORT,
            network: c.network.clone(),
            docker_url: names::DOCKER_GATE_HOST.into(),
            db_url: format!("sqlite:///{HUB_DATA_DIR}/jupyterhub.sqlite"),
            cookie_secret_file: format!("{HUB_DATA_DIR}/jupyterhub_cookie_secret"),
            admin_users: h.admin_users.clone(),
            start_timeout: h.start_timeout_seconds,
            http_timeout: h.http_timeout_seconds,
            student_image: cfg.images.notebook_student.clone(),
            teacher_image: cfg.images.notebook_teacher.clone(),
            cmd: h.notebook_cmd.clone(),
            default_url: h.default_url.clone(),
            cpu_limit: (h.cpu_limit != 0.0).then_some(h.cpu_limit),
            cpu_guarantee: None,
            mem_limit,
            mem_guarantee: None,
            placement_constraints: h.notebook_constraints.clone(),
            ldap_server_address: server_address,
            ldap_server_port: server_port.unwrap_or(if tls == LdapTls::Ldaps { 636 } else { 389 }),
            ldap_tls_strategy: tls,
            ldap_ca_certs_file: None,
            ldap_lookup_dn: true,
            ldap_user_search_base: Some(user_search_base),
            ldap_user_attribute: l.user_attribute.clone(),
            ldap_search_user_dn: l.bind_dn.clone(),
            ldap_search_password_file: l.bind_dn.as_ref().map(|_| secret_path(&l.password_secret)),
            ldap_bind_dn_templates: Vec::new(),
            ldap_allowed_groups: allowed_groups,
            ldap_teacher_group: l.teacher_group.clone(),
            ldap_auth_state_attributes: AUTH_STATE_ATTRIBUTES.map(String::from).to_vec(),
            volume_driver: names::PLUGIN_ALIAS.into(),
            home_target: HOME_TARGET.into(),
            volumes,
            concurrent_spawn_limit: h.concurrent_spawn_limit,
            active_server_limit: h.active_server_limit,
            concurrent_starts: h.concurrent_starts,
            spawn_retries: h.spawn_retries,
            home_size,
            exchange_size,
            course_id: h.course_id.clone(),
            exchange_share: h.exchange_share.clone(),
            exchange_target: EXCHANGE_TARGET.into(),
            user_name_max: MAX_USER_NAME,
            idle_culler: h.idle_timeout_seconds > 0,
            idle_culler_timeout: h.idle_timeout_seconds,
            idle_culler_every: None,
            idle_culler_max_age: None,
            notebook_labels: BTreeMap::from([(
                names::COMPONENT_LABEL.to_string(),
                names::NOTEBOOK_COMPONENT.to_string(),
            )]),
            user_label: names::USER_LABEL.into(),
            role_label: names::ROLE_LABEL.into(),
        })
    }

    /// The `SWARMHUB` dictionary as JSON values, keyed by field name.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            // a struct of strings, numbers (finite: checked) and lists always serializes to one
            other => unreachable!("hub settings serialize to an object, not {other:?}"),
        }
    }
}

/// The hub's `jupyterhub_config.py` for `s`.
pub fn render(s: &HubSettings) -> String {
    let settings = s.to_map();
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
    out
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

/// Python that stubs what the generated config imports (docker-py's types, dockerspawner's
/// `SwarmSpawner` as an empty base class, `jupyterhub.utils`) and runs the config file named by
/// `sys.argv[1]`; its globals are then `g`. Tests append their own lines.
#[cfg(test)]
pub(crate) const PY_CONFIG_STUBS: &str = r#"
import asyncio, json, sys, types
class Any:
    def __getattr__(self, k):
        v = Any(); object.__setattr__(self, k, v); return v
    def __call__(self, *a, **k): return Any()
class Mount:
    def __init__(self, target, source, type, no_copy=False, driver_config=None):
        self.target, self.source, self.type, self.driver_config = target, source, type, driver_config
class DriverConfig:
    def __init__(self, name, options): self.name, self.options = name, options
class SwarmSpawner: pass
docker = types.ModuleType("docker"); errors = types.ModuleType("docker.errors"); dtypes = types.ModuleType("docker.types")
errors.NotFound = type("NotFound", (Exception,), {}); dtypes.Mount = Mount; dtypes.DriverConfig = DriverConfig
ds = types.ModuleType("dockerspawner"); ds.SwarmSpawner = SwarmSpawner
jh = types.ModuleType("jupyterhub"); jhu = types.ModuleType("jupyterhub.utils"); jhu.wait_for_http_server = None
sys.modules.update({"docker": docker, "docker.errors": errors, "docker.types": dtypes, "dockerspawner": ds,
    "jupyterhub": jh, "jupyterhub.utils": jhu})
g = {"get_config": lambda: Any(), "__name__": "config"}
exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), g)
quiet = types.SimpleNamespace(info=lambda *a: None, warning=lambda *a: None, error=lambda *a: None)
"#;

/// Runs `script` after [`PY_CONFIG_STUBS`] against the config rendered from `s`; its last
/// line of output as JSON. None without python3 on the machine.
#[cfg(test)]
pub(crate) fn run_config_py(s: &HubSettings, script: &str) -> Option<Value> {
    if std::process::Command::new("python3")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("python3 not found: the generated spawner code is not run");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jupyterhub_config.py");
    std::fs::write(&config, render(s)).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("{PY_CONFIG_STUBS}{script}"))
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// A small course's `swarmhub.toml`.
    const EXAMPLE: &str = r#"
        [cluster]
        public_url = "https://hub.example.edu/"
        [images]
        notebook_student = "swarmhub/notebook-student:1.0"
        notebook_teacher = "swarmhub/notebook-teacher:1.0"
        [ldap]
        url = "ldap://ldap.example.edu"
        base_dn = "dc=example,dc=edu"
        user_search_base = "ou=people,dc=example,dc=edu"
        bind_dn = "cn=reader,dc=example,dc=edu"
        student_groups = ["cn=students,ou=groups,dc=example,dc=edu"]
        teacher_group = "cn=teachers,ou=groups,dc=example,dc=edu"
        [hub]
        course_id = "intro-python"
        cpu_limit = 2.0
        mem_limit = "2G"
        notebook_constraints = ["node.role==worker"]
        "#;

    fn example_config() -> Config {
        Config::from_toml(EXAMPLE, Path::new("swarmhub.toml"), []).expect("example parses")
    }

    fn example() -> HubSettings {
        example_config().hub_settings().unwrap()
    }

    /// The keys the template reads: `SWARMHUB["key"]`, `SWARMHUB['key']`, `SWARMHUB.get("key")`.
    fn template_keys() -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for (i, _) in TEMPLATE.match_indices("SWARMHUB") {
            let rest = &TEMPLATE[i + "SWARMHUB".len()..];
            let Some(rest) = rest
                .strip_prefix('[')
                .or_else(|| rest.strip_prefix(".get("))
            else {
                continue;
            };
            let quote = rest.chars().next().unwrap();
            assert!(
                matches!(quote, '"' | '\''),
                "SWARMHUB{rest:.20}: not a literal key"
            );
            let end = rest[1..].find(quote).unwrap();
            keys.insert(rest[1..=end].to_string());
        }
        keys
    }

    #[test]
    fn template_reads_exactly_the_serialized_keys() {
        let read = template_keys();
        let given: BTreeSet<String> = example().to_map().keys().cloned().collect();
        let missing: Vec<_> = read.difference(&given).collect();
        let unused: Vec<_> = given.difference(&read).collect();
        assert!(
            missing.is_empty(),
            "the template reads keys HubSettings lacks: {missing:?}"
        );
        assert!(
            unused.is_empty(),
            "HubSettings has keys the template never reads: {unused:?}"
        );
        assert!(read.len() > 50, "{read:?}");
    }

    /// The `SWARMHUB` dictionaries of a few `swarmhub.toml`s, as the generator before issue 14
    /// (a second schema and a hand-built map) wrote them, plus the notebook labels' names and
    /// (issue 16) the Docker gate's socket as `docker_url`, and (issue 13) the TLS front in place
    /// of the proxy's own TLS (`tls_front_conf`/`tls_front_file`, `proxy_ip`/`proxy_port`).
    #[test]
    fn settings_are_what_the_generator_always_wrote() {
        for (toml_text, want) in [
            (
                include_str!("testdata/default.toml"),
                include_str!("testdata/default.swarmhub.json"),
            ),
            (
                include_str!("testdata/tls.toml"),
                include_str!("testdata/tls.swarmhub.json"),
            ),
            (
                include_str!("testdata/plain.toml"),
                include_str!("testdata/plain.swarmhub.json"),
            ),
        ] {
            let c = Config::from_toml(toml_text, Path::new("swarmhub.toml"), []).unwrap();
            let want: Map<String, Value> = serde_json::from_str(want).unwrap();
            assert_eq!(c.hub_settings().unwrap().to_map(), want, "{toml_text}");
        }
    }

    #[test]
    fn notebook_labels_come_from_the_names_module() {
        let s = example();
        assert_eq!(
            s.notebook_labels,
            BTreeMap::from([(
                names::COMPONENT_LABEL.to_string(),
                names::NOTEBOOK_COMPONENT.to_string()
            )])
        );
        assert_eq!(s.user_label, names::USER_LABEL);
        assert_eq!(s.role_label, names::ROLE_LABEL);
        // the template writes no label name of its own
        for name in [
            names::COMPONENT_LABEL,
            names::USER_LABEL,
            names::ROLE_LABEL,
            names::MANAGED_LABEL,
        ] {
            assert!(!TEMPLATE.contains(&format!("\"{name}\"")), "{name}");
        }
        let out = render(&s);
        assert!(out.contains("    \"notebook_labels\": {\"swarmhub.component\": \"notebook\"},\n"));
        assert!(out.contains("    \"user_label\": \"swarmhub.user\",\n"));
        assert!(out.contains("    \"role_label\": \"swarmhub.role\",\n"));
    }

    /// The spawner's Docker client is the gate's socket; the template names no socket of its own.
    #[test]
    fn the_spawner_reaches_docker_only_through_the_gate() {
        // no bind DN: the config reads no secret file when it runs here
        let s = Config::default().hub_settings().unwrap();
        assert_eq!(s.docker_url, names::DOCKER_GATE_HOST);
        assert!(
            TEMPLATE
                .contains(r#"c.SwarmSpawner.client_kwargs = {"base_url": SWARMHUB["docker_url"]}"#)
        );
        assert!(!TEMPLATE.contains("docker.sock"));
        let Some(v) = run_config_py(
            &s,
            r#"print(json.dumps(g["c"].SwarmSpawner.client_kwargs))"#,
        ) else {
            return;
        };
        assert_eq!(
            v,
            json!({"base_url": "unix:///run/swarmhub-docker-gate/docker.sock"})
        );
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
        assert!(TEMPLATE.contains(&format!("f\"{}{{user}}\"", names::HOME_VOLUME_PREFIX)));
        assert!(TEMPLATE.contains(r#"{"user": user, "layout": "home"}"#));
    }

    #[test]
    fn fixed_values_are_valid_for_every_accepted_user() {
        // what the CLI fixes instead of reading it from swarmhub.toml
        let longest = "x".repeat(MAX_USER_NAME);
        validate_volume_name(&format!("{}{longest}", names::HOME_VOLUME_PREFIX)).unwrap();
        for p in [HOME_TARGET, EXCHANGE_TARGET] {
            super::super::check_abs_path("", p).unwrap();
        }
        assert!(!EXCHANGE_TARGET.starts_with(&format!("{HOME_TARGET}/")));
        assert!(!HOME_TARGET.starts_with(&format!("{EXCHANGE_TARGET}/")));
        assert!(AUTH_STATE_ATTRIBUTES.iter().all(|a| is_ldap_attribute(a)));
    }

    #[test]
    fn defaults_fill_the_rest() {
        let s = example();
        assert_eq!((s.proxy_ip.as_str(), s.proxy_port), ("", 8000));
        assert_eq!(s.network, "swarmhub");
        assert_eq!(s.cmd, vec!["jupyterhub-singleuser"]);
        assert_eq!(s.volume_driver, "swarmhub-nfs");
        assert_eq!(s.home_target, "/home/jovyan");
        assert_eq!(s.exchange_share, "exchange");
        assert_eq!(s.exchange_target, "/srv/nbgrader/exchange");
        assert_eq!(s.ldap_auth_state_attributes, vec!["uidNumber", "gidNumber"]);
        assert!(s.ldap_lookup_dn);
        assert!(s.idle_culler);
    }

    #[test]
    fn renders_the_settings_block() {
        let out = render(&example());
        assert!(out.is_ascii());
        assert!(!out.contains(SETTINGS_MARKER));
        assert!(out.contains("SWARMHUB = {\n"));
        assert!(out.contains("    \"student_image\": \"swarmhub/notebook-student:1.0\",\n"));
        assert!(out.contains("    \"cmd\": [\"jupyterhub-singleuser\"],\n"));
        assert!(out.contains("    \"mem_limit\": 2147483648,\n"));
        assert!(out.contains("    \"cpu_limit\": 2.0,\n"));
        assert!(out.contains("    \"ldap_tls_strategy\": \"before_bind\",\n"));
        assert!(out.contains("    \"ldap_server_port\": 389,\n"));
        assert!(
            out.contains("    \"db_url\": \"sqlite:////srv/jupyterhub/data/jupyterhub.sqlite\",\n")
        );
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
        let mut c = example_config();
        c.ldap.teacher_group = "cn=t\"ea\\chers\n\"), __import__('os').system('x')#,dc=é".into();
        c.ldap.student_groups = vec!["cn=a'b,dc=x\r\n".into(), "cn=\u{2028}".into()];
        c.ldap.bind_dn = Some("cn=\"\"\"reader".into());
        c.ldap.user_search_base = Some("ou=people\\,x".into());
        c.hub.notebook_constraints = vec!["node.labels.zone==\"a\\b\"".into()];
        let out = render(&c.hub_settings().unwrap());
        assert!(out.is_ascii());
        // each settings line is `    "key": literal,` and nothing spills onto another line
        let start = out.find("SWARMHUB = {\n").unwrap();
        let block = &out[start..start + out[start..].find("\n}\n").unwrap()];
        for line in block.lines().skip(1) {
            assert!(line.starts_with("    \"") && line.ends_with(','), "{line}");
        }
        assert!(block.contains(r#""cn=t\"ea\\chers\n\"), __import__('os').system('x')#,dc=\xe9""#));
    }

    fn key_of(c: &Config) -> String {
        match c.hub_settings() {
            Err(ConfigError::Invalid { key, reason }) => {
                assert!(!reason.is_empty());
                key
            }
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn base_path_follows_the_public_url() {
        let mut c = example_config();
        c.cluster.public_url = "https://www.example.edu:8443/jupyter".into();
        let s = c.hub_settings().unwrap();
        assert_eq!(s.public_url, "https://www.example.edu:8443/jupyter/");
        assert_eq!(s.base_path, "/jupyter/");
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
            c.cluster.public_url = bad.into();
            assert_eq!(key_of(&c), "cluster.public_url", "{bad}");
        }
    }

    #[test]
    fn secrets_are_never_in_the_output() {
        // Settings can only name the files of secrets (Docker secrets under /run/secrets/); no
        // field holds a secret value, and the crypt key is not a setting at all.
        let mut c = example_config();
        c.tls.mode = super::super::TlsMode::SelfSigned;
        let s = c.hub_settings().unwrap();
        let m = s.to_map();
        let secretish: BTreeSet<&str> = m
            .keys()
            .map(String::as_str)
            .filter(|k| {
                ["password", "secret", "key", "token"]
                    .iter()
                    .any(|w| k.contains(w))
            })
            .collect();
        assert_eq!(
            secretish,
            BTreeSet::from(["cookie_secret_file", "ldap_search_password_file"])
        );
        // the TLS front names the key's file, under /run/secrets
        let front = m["tls_front_conf"].as_str().unwrap();
        assert!(
            front.contains("ssl_certificate_key /run/secrets/swarmhub-hub-tls.key;"),
            "{front}"
        );
        assert_eq!(
            m["cookie_secret_file"],
            "/srv/jupyterhub/data/jupyterhub_cookie_secret"
        );
        let out = render(&s);
        assert!(
            out.contains("\"ldap_search_password_file\": \"/run/secrets/swarmhub-ldap-password\"")
        );
        assert!(out.contains("lookup_dn_search_password = _read_secret("));
        assert!(!out.contains("JUPYTERHUB_CRYPT_KEY\"] ="));
    }

    #[test]
    fn refuses_bad_settings_with_the_swarmhub_key() {
        type Change = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "images.notebook_student",
                Box::new(|c| c.images.notebook_student = "swarmhub/nb".into()),
            ),
            (
                "images.notebook_teacher",
                Box::new(|c| c.images.notebook_teacher = "swarmhub/nb:latest".into()),
            ),
            (
                "images.notebook_student",
                Box::new(|c| c.images.notebook_student = "a b:1".into()),
            ),
            (
                "hub.notebook_cmd",
                Box::new(|c| c.hub.notebook_cmd = vec![]),
            ),
            (
                "hub.mount_volumes",
                Box::new(|c| {
                    c.hub.volumes = VolumeMode::Local;
                    c.hub.mount_volumes = false;
                }),
            ),
            ("hub.cpu_limit", Box::new(|c| c.hub.cpu_limit = f64::NAN)),
            ("hub.cpu_limit", Box::new(|c| c.hub.cpu_limit = -1.0)),
            (
                "hub.mem_limit",
                Box::new(|c| c.hub.mem_limit = "2 GB".into()),
            ),
            ("hub.mem_limit", Box::new(|c| c.hub.mem_limit = "1K".into())),
            (
                "hub.notebook_constraints",
                Box::new(|c| c.hub.notebook_constraints = vec!["worker".into()]),
            ),
            (
                "hub.default_url",
                Box::new(|c| c.hub.default_url = Some("lab".into())),
            ),
            (
                "hub.start_timeout_seconds",
                Box::new(|c| c.hub.start_timeout_seconds = 0),
            ),
            (
                "hub.http_timeout_seconds",
                Box::new(|c| c.hub.http_timeout_seconds = 0),
            ),
            (
                "hub.admin_users",
                Box::new(|c| c.hub.admin_users = vec!["a b".into()]),
            ),
            (
                "ldap.url",
                Box::new(|c| c.ldap.url = "ldap://ldap://x".into()),
            ),
            (
                "ldap.url",
                Box::new(|c| c.ldap.url = "ldap://x/dc=x".into()),
            ),
            (
                "ldap.user_search_base",
                Box::new(|c| c.ldap.user_search_base = Some(" ".into())),
            ),
            (
                "ldap.base_dn",
                Box::new(|c| {
                    c.ldap.user_search_base = None;
                    c.ldap.base_dn = String::new()
                }),
            ),
            (
                "ldap.user_attribute",
                Box::new(|c| c.ldap.user_attribute = "u id".into()),
            ),
            (
                "ldap.bind_dn",
                Box::new(|c| c.ldap.bind_dn = Some(" ".into())),
            ),
            (
                "ldap.student_groups",
                Box::new(|c| c.ldap.student_groups = vec![]),
            ),
            (
                "ldap.student_groups",
                Box::new(|c| c.ldap.student_groups = vec!["".into()]),
            ),
            (
                "ldap.teacher_group",
                Box::new(|c| c.ldap.teacher_group = " ".into()),
            ),
            (
                "hub.course_id",
                Box::new(|c| c.hub.course_id = "intro python".into()),
            ),
            (
                "hub.exchange_share",
                Box::new(|c| c.hub.exchange_share = "../exchange".into()),
            ),
            (
                "hub.idle_timeout_seconds",
                Box::new(|c| c.hub.idle_timeout_seconds = 5),
            ),
        ];
        for (key, change) in cases {
            let mut c = example_config();
            change(&mut c);
            assert_eq!(key_of(&c), key);
        }
    }

    #[test]
    fn teacher_group_in_students_is_not_duplicated() {
        let mut c = example_config();
        c.ldap.student_groups.push(c.ldap.teacher_group.clone());
        let s = c.hub_settings().unwrap();
        assert_eq!(s.ldap_allowed_groups.len(), 2);
    }

    #[test]
    fn volume_modes_reach_the_hub_config_and_the_old_switch_still_means_none() {
        let mode = |toml: &str| {
            let c = Config::from_toml(toml, Path::new("swarmhub.toml"), []).unwrap();
            c.hub_settings().unwrap().to_map()["volumes"].clone()
        };
        assert_eq!(mode(""), "swarmhub");
        assert_eq!(mode("[hub]\nvolumes = \"local\"\n"), "local");
        assert_eq!(mode("[hub]\nvolumes = \"none\"\n"), "none");
        assert_eq!(mode("[hub]\nmount_volumes = false\n"), "none");
        assert_eq!(mode("[hub]\nmount_volumes = true\n"), "swarmhub");
        let err = Config::from_toml("[hub]\nvolumes = \"nfs\"\n", Path::new("swarmhub.toml"), [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("volumes"), "{err}");
        let s = example();
        assert_eq!(s.concurrent_spawn_limit, 100);
        assert_eq!(s.active_server_limit, 0);
    }

    #[test]
    fn memory_sizes_read_like_volume_sizes() {
        let mut c = example_config();
        let mut mem = |t: &str| {
            c.hub.mem_limit = t.into();
            c.hub_settings().map(|s| s.mem_limit)
        };
        assert_eq!(mem("512M").unwrap(), Some(512 << 20));
        assert_eq!(mem("2147483648").unwrap(), Some(2 << 30));
        assert_eq!(mem("2GiB").unwrap(), Some(2 << 30));
        assert_eq!(mem("0").unwrap(), None);
        for bad in ["G", "1e3G", "-1G", "1.5G", "1K"] {
            assert!(mem(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ldaps_defaults_to_port_636() {
        let mut c = example_config();
        c.ldap.url = "ldaps://ldap.example.edu".into();
        let s = c.hub_settings().unwrap();
        assert_eq!(s.ldap_server_port, 636);
        assert_eq!(s.ldap_tls_strategy, LdapTls::Ldaps);
        assert_eq!(s.to_map()["ldap_tls_strategy"], "on_connect");
        c.ldap.url = "ldap://[2001:db8::1]:3389/".into();
        c.ldap.starttls = false;
        let s = c.hub_settings().unwrap();
        assert_eq!(s.ldap_server_address, "[2001:db8::1]");
        assert_eq!(s.ldap_server_port, 3389);
        assert_eq!(s.to_map()["ldap_tls_strategy"], "insecure");
    }

    /// Three spawns at once: with two start slots at most two are between "service created"
    /// and "answers HTTP", the third's progress says it waits; with 0 all three go at once.
    const SLOTS_PY: &str = r#"
state = {"running": 0, "peak": 0}
async def base_start(self):
    state["running"] += 1; state["peak"] = max(state["peak"], state["running"])
    await asyncio.sleep(0.2)
    return ("jupyter-" + self.name, 8888)
async def answers(url, timeout):
    await asyncio.sleep(0.2); state["running"] -= 1
SwarmSpawner.start = base_start
g["wait_for_http_server"] = answers
S = g["SwarmhubSpawner"]
def spawner(i):
    sp = S(); sp.name = f"s{i}"; sp.http_timeout = 5; sp.log = quiet
    sp.server = types.SimpleNamespace(base_url=f"/user/s{i}/")
    return sp
async def storm():
    state["peak"] = 0
    sps = [spawner(i) for i in range(3)]
    tasks = [asyncio.create_task(sp.start()) for sp in sps]
    await asyncio.sleep(0.05)
    waiting = [sp for sp in sps if getattr(sp, "_waiting_for_slot", False)]
    message = None
    if waiting:
        events = waiting[0].progress()
        message = (await events.__anext__())["message"]
        await events.aclose()
    results = await asyncio.gather(*tasks)
    return {"peak": state["peak"], "waiting": len(waiting), "message": message, "results": results}
out = {"slots": asyncio.run(storm())}
g["SWARMHUB"]["concurrent_starts"] = 0
out["none"] = asyncio.run(storm())
print(json.dumps(out))
"#;

    #[test]
    fn start_slots_queue_spawns_and_say_so() {
        let mut c = Config::default();
        c.hub.concurrent_starts = 2;
        let Some(v) = run_config_py(&c.hub_settings().unwrap(), SLOTS_PY) else {
            return;
        };
        assert_eq!(v["slots"]["peak"], 2, "{v}");
        assert_eq!(v["slots"]["waiting"], 1, "{v}");
        let message = v["slots"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("one of the 2 start slots is free (1 waiting)"),
            "{v}"
        );
        assert_eq!(v["slots"]["results"][2], json!(["jupyter-s2", 8888]), "{v}");
        assert_eq!(v["none"]["peak"], 3, "{v}");
        assert_eq!(v["none"]["waiting"], 0, "{v}");
    }

    /// `start_object` over a scripted sequence of Swarm's task lists: transient failures
    /// (a mount that timed out) are outlived up to `spawn_retries`, others end the spawn.
    const RETRIES_PY: &str = r#"
S = g["SwarmhubSpawner"]
TIMEOUT = "error while mounting volume '': mounting /home-x from 10.0.0.1:2049 did not finish within 10s; nfsd may be overloaded"
REFUSED = "error while mounting volume '': nfsd at 10.0.0.1:2049 refused to mount /home-x"
def task(i, state, err="", desired="shutdown"):
    return {"ID": f"task{i}", "Version": {"Index": i}, "DesiredState": desired,
            "Status": {"State": state, "Err": err}}
async def start(sequence):
    sp = S(); sp.service_id = "svc"; sp.service_name = "jupyter-x"; sp.log = quiet
    sp.task_poll_first = 0; sp.task_poll_max = 0
    answers = iter(sequence)
    async def docker(method, **kw):
        return next(answers)
    sp.docker = docker
    try:
        await sp.start_object()
        return "running"
    except Exception as e:
        return f"failed: {e}"
f1, f2, f3 = (task(i, "failed", TIMEOUT) for i in (1, 2, 3))
out = {
    "outlived": asyncio.run(start([[f1], [f1, task(2, "pending", desired="running")],
                                   [f1, task(2, "running", desired="running")]])),
    "refused": asyncio.run(start([[task(1, "rejected", REFUSED)]])),
    "too_many": asyncio.run(start([[f1], [f1, f2], [f1, f2, f3]])),
}
print(json.dumps(out))
"#;

    #[test]
    fn spawns_outlive_transient_task_failures_up_to_spawn_retries() {
        let c = Config::default();
        let Some(v) = run_config_py(&c.hub_settings().unwrap(), RETRIES_PY) else {
            return;
        };
        assert_eq!(v["outlived"], "running", "{v}");
        let refused = v["refused"].as_str().unwrap_or_default();
        assert!(
            refused.starts_with("failed: ") && refused.contains("refused to mount"),
            "{v}"
        );
        let too_many = v["too_many"].as_str().unwrap_or_default();
        assert!(
            too_many.contains("task task3 failed: ") && too_many.contains("did not finish within"),
            "{v}"
        );
    }
}
