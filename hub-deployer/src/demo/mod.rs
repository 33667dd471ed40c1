//! `swarmhub demo up|down`: the whole stack on one machine with Docker, for trying swarmhub out.
//!
//! `up` makes this dockerd a one-node swarm when it is in none, labels it the storage node when
//! no node is, writes a settings file of its own (`<dir>/swarmhub.toml`), starts a demo
//! directory (`swarmhub/demo-ldap`: OpenLDAP with a teacher and two students, posixAccount
//! uid/gid numbers, passwords generated once and kept in `<dir>/logins`), then does exactly what
//! `swarmhub run` does with those settings (network, secrets, nfsd, the plugin, the hub) and
//! prints the hub's URL and the logins. Every step is safe to re-run.
//!
//! `down` removes what `up` started (as `swarmhub remove` does, plus the notebooks and the demo
//! directory); the users' files in `<dir>/data`, the logins, the secrets and the swarm stay.
//!
//! The demo directory publishes its port in host mode on this node and every part reaches it
//! at the gateway of `docker_gwbridge` (an address of this host that the CLI and every
//! swarm container on it reach), so `swarmhub doctor` checks it like a real directory.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use bollard::models::{
    LocalNodeState, NodeSpec, SecretSpec, ServiceSpec, SwarmInitRequest, TaskSpec,
    TaskSpecContainerSpec, TaskSpecRestartPolicyConditionEnum,
};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope};
use serde::Serialize;

use crate::apply;
use crate::apply::secrets;
use crate::docker::cluster::{Cluster, Swarm};
use crate::docker::engine::{Engine, absent};
use crate::exit::CliError;
use crate::inspect::probe;
use crate::lifecycle::{self, Ctx, Part};
use crate::names::{LDAP_SERVICE, SEED_SECRET_PREFIX};
use crate::plan::{self, PlanInputs};
use crate::progress::Progress;
use crate::settings::{Config, PluginBackend, TimeoutsConfig};
use crate::steps::{Change, Step};
use crate::wait::{self, Look};

/// Where `demo up` keeps its settings, logins and the users' files unless told otherwise.
pub const DEFAULT_DIR: &str = "/var/lib/swarmhub-demo";
/// Port the demo directory is published on (host mode, this node).
pub const DEFAULT_LDAP_PORT: u16 = 3389;
/// Where the demo directory's image reads its seed.
const SEED_TARGET: &str = "swarmhub-demo-ldap-seed";
/// The demo directory's suffix.
pub const BASE_DN: &str = "dc=swarmhub,dc=demo";
/// The nbgrader course of the demo.
pub const COURSE: &str = "demo101";
/// How long `up` waits for the demo directory to answer a search.
const LDAP_WAIT: Duration = Duration::from_secs(60);

/// One person of the demo directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    /// login name (`uid`)
    pub name: &'static str,
    /// `uidNumber`: the owner of the user's files on nfsd's disk
    pub uid: u32,
    /// `gidNumber` (the user's group)
    pub gid: u32,
    /// member of the teachers group (the teacher image, nbgrader's formgrader; hub admin)
    pub teacher: bool,
}

/// A teacher and two students.
pub const USERS: [DemoUser; 3] = [
    DemoUser {
        name: "teacher",
        uid: 20001,
        gid: 20000,
        teacher: true,
    },
    DemoUser {
        name: "student1",
        uid: 20101,
        gid: 20100,
        teacher: false,
    },
    DemoUser {
        name: "student2",
        uid: 20102,
        gid: 20100,
        teacher: false,
    },
];

/// gidNumber of the teachers and students groups.
const TEACHERS_GID: u32 = 20000;
const STUDENTS_GID: u32 = 20100;

/// Flags of `demo up` and `demo down`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// settings, logins and the users' files
    pub dir: PathBuf,
    /// host port of the hub
    pub hub_port: u16,
    /// host port that redirects plain HTTP to the hub's HTTPS (0 = none)
    pub hub_redirect_port: u16,
    /// host port of the demo directory
    pub ldap_port: u16,
}

/// A demo login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    /// user name
    pub user: String,
    /// password
    pub password: String,
    /// `teacher` or `student`
    pub role: String,
}

/// What `demo up` did and how to use the result.
#[derive(Debug, Clone, Serialize)]
pub struct Up {
    /// every step, in order
    pub steps: Vec<Step>,
    /// the hub's URL
    pub url: String,
    /// who may log in
    pub logins: Vec<Login>,
    /// the demo's settings file (for `swarmhub --config FILE status|doctor|...`)
    pub config: PathBuf,
    /// the CA of the hub's certificate, which browsers and curl must trust
    pub ca_cert: PathBuf,
    /// plain HTTP here is redirected to the hub's HTTPS URL
    pub redirect_url: Option<String>,
    /// where the users' files are
    pub data_dir: String,
}

impl Up {
    /// The text `demo up` prints after its steps. `wrapper` is the script that ran the CLI
    /// (`SWARMHUB_DEMO_COMMAND`, set by demo.sh), whose commands the hints then use.
    pub fn summary(&self, wrapper: Option<&str>) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\nswarmhub demo is up: {}", self.url);
        if let Some(r) = &self.redirect_url {
            let _ = writeln!(s, "(plain HTTP at {r} redirects there)");
        }
        s.push_str(&crate::settings::tls::trust_hint(&self.ca_cert, &self.url));
        let _ = writeln!(
            s,
            "log in as (also in {}):",
            logins_path(self.dir()).display()
        );
        for l in &self.logins {
            let _ = writeln!(s, "  {:<10} {:<14} {}", l.user, l.password, l.role);
        }
        let _ = writeln!(
            s,
            "users' files: {} (owned by their uidNumber)",
            self.data_dir
        );
        let dir = self.dir().display().to_string();
        let dir_flag = if Path::new(&dir) == Path::new(DEFAULT_DIR) {
            String::new()
        } else {
            format!(" --dir {dir}")
        };
        let (check, down) = match wrapper {
            Some(w) => (
                format!("{w} status{dir_flag}   (or {w} doctor{dir_flag})"),
                format!("{w} down{dir_flag}"),
            ),
            None => {
                let config = self.config.display();
                (
                    format!("swarmhub --config {config} status   (or doctor)"),
                    format!("swarmhub demo down{dir_flag}"),
                )
            }
        };
        let _ = writeln!(s, "check it:     {check}");
        let _ = writeln!(s, "take it down: {down}   (keeps every file)");
        s
    }

    fn dir(&self) -> &Path {
        self.config.parent().unwrap_or(Path::new("."))
    }
}

/// `<dir>/logins`: `user password` per line.
pub fn logins_path(dir: &Path) -> PathBuf {
    dir.join("logins")
}

/// `<dir>/swarmhub.toml`.
pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("swarmhub.toml")
}

/// The demo's users with their passwords: read from `<dir>/logins`, or generated (12 hex
/// characters each) and written there (mode 0600) the first time. A file that lacks a user or
/// is malformed is an error naming the file, never silently replaced.
pub fn logins(dir: &Path) -> Result<Vec<Login>, CliError> {
    let path = logins_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("cannot read {}", path.display()))
                .into());
        }
    };
    let Some(text) = text else {
        let logins: Vec<Login> = USERS
            .iter()
            .map(|u| login(u, secrets::generate_hex(6)))
            .collect();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let body: String = logins
            .iter()
            .map(|l| format!("{} {}\n", l.user, l.password))
            .collect();
        file.write_all(body.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(logins);
    };
    parse_logins(&text).map_err(|why| CliError::Precondition {
        what: format!("{} is not a demo logins file: {why}", path.display()),
        fix: format!(
            "restore it, or delete it to get new passwords (then `swarmhub demo up --dir {}`)",
            dir.display()
        ),
    })
}

fn login(u: &DemoUser, password: String) -> Login {
    Login {
        user: u.name.to_string(),
        password,
        role: if u.teacher { "teacher" } else { "student" }.to_string(),
    }
}

/// Parse `user password` lines; every demo user must be there with a password of printable
/// ASCII without spaces.
pub fn parse_logins(text: &str) -> Result<Vec<Login>, String> {
    let mut found = std::collections::HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(user), Some(pw), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("line {} is not `user password`", n + 1));
        };
        if !pw.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "line {}: the password is not printable ASCII",
                n + 1
            ));
        }
        found.insert(user.to_string(), pw.to_string());
    }
    USERS
        .iter()
        .map(|u| {
            found
                .get(u.name)
                .map(|pw| login(u, pw.clone()))
                .ok_or_else(|| format!("user {} is missing", u.name))
        })
        .collect()
}

/// The seed of the demo directory: the suffix, people and groups, plain passwords (the image
/// hashes them before loading).
pub fn seed_ldif(logins: &[Login]) -> String {
    let mut s = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: swarmhub\no: swarmhub demo\n\n\
         dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for u in &USERS {
        let pw = logins
            .iter()
            .find(|l| l.user == u.name)
            .map_or("", |l| l.password.as_str());
        let _ = write!(
            s,
            "dn: uid={name},ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
             uid: {name}\ncn: {name}\nsn: {name}\nuidNumber: {uid}\ngidNumber: {gid}\n\
             homeDirectory: /home/{name}\nloginShell: /bin/bash\nuserPassword: {pw}\n\n",
            name = u.name,
            uid = u.uid,
            gid = u.gid,
        );
    }
    for (group, gid, teacher) in [
        ("teachers", TEACHERS_GID, true),
        ("students", STUDENTS_GID, false),
    ] {
        let _ = write!(
            s,
            "dn: cn={group},ou=groups,{BASE_DN}\nobjectClass: posixGroup\ncn: {group}\ngidNumber: {gid}\n"
        );
        for u in USERS.iter().filter(|u| u.teacher == teacher) {
            let _ = writeln!(s, "memberUid: {}", u.name);
        }
        s.push('\n');
    }
    s
}

/// `kernel` when this kernel has an NFS client (`nfs` in /proc/filesystems; the module may
/// also load on demand, which /proc/filesystems cannot show), else `fuse`.
pub fn backend_for(proc_filesystems: &str) -> PluginBackend {
    let has_nfs = proc_filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("nfs"));
    if has_nfs
        || Path::new("/lib/modules")
            .join(kernel_release())
            .join("kernel/fs/nfs")
            .is_dir()
    {
        PluginBackend::Kernel
    } else {
        PluginBackend::Fuse
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What the demo's settings file is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSettings {
    /// absolute `<dir>/data`
    pub data_dir: String,
    /// the hub's URL
    pub public_url: String,
    /// host port of the hub
    pub hub_port: u16,
    /// host port of the redirect to HTTPS (0 = none)
    pub hub_redirect_port: u16,
    /// the demo directory as every part reaches it
    pub ldap_url: String,
    /// how the plugin mounts
    pub backend: PluginBackend,
}

/// The demo's `swarmhub.toml`: the defaults plus what differs for the demo. Every section is
/// written by toml's serializer; only the comments for whoever reads the file are text.
pub fn settings_toml(s: &DemoSettings) -> String {
    #[derive(Serialize)]
    struct ClusterPart<'a> {
        nfsd_data_dir: &'a str,
        hub_port: u16,
        hub_redirect_port: u16,
        public_url: &'a str,
        plugin_backend: &'a str,
    }
    #[derive(Serialize)]
    struct LdapPart<'a> {
        url: &'a str,
        starttls: bool,
        base_dn: &'a str,
        user_search_base: String,
        student_groups: [String; 1],
        teacher_group: String,
    }
    #[derive(Serialize)]
    struct HubPart<'a> {
        admin_users: [&'a str; 1],
        course_id: &'a str,
        course_owner: &'a str,
    }
    #[derive(Serialize)]
    struct TlsPart<'a> {
        mode: &'a str,
    }
    /// `[name]`, the comment lines, then the keys as toml writes them.
    fn section(name: &str, comment: &str, keys: &impl Serialize) -> String {
        let keys = toml::to_string(keys).expect("a flat table of strings and numbers serializes");
        format!("[{name}]\n{comment}{keys}")
    }
    let cluster = ClusterPart {
        nfsd_data_dir: &s.data_dir,
        hub_port: s.hub_port,
        hub_redirect_port: s.hub_redirect_port,
        public_url: &s.public_url,
        plugin_backend: s.backend.as_str(),
    };
    let ldap = LdapPart {
        url: &s.ldap_url,
        starttls: false,
        base_dn: BASE_DN,
        user_search_base: format!("ou=people,{BASE_DN}"),
        student_groups: [format!("cn=students,ou=groups,{BASE_DN}")],
        teacher_group: format!("cn=teachers,ou=groups,{BASE_DN}"),
    };
    let hub = HubPart {
        admin_users: ["teacher"],
        course_id: COURSE,
        course_owner: "teacher",
    };
    let tls = TlsPart {
        mode: "self-signed",
    };
    [
        "# Settings of the swarmhub demo, written by `swarmhub demo up` (which rewrites it).\n\
         # Use them with any command, e.g. swarmhub --config THIS_FILE status\n\
         # Everything not set here has the default of `swarmhub init`.\n"
            .to_string(),
        section("cluster", "", &cluster),
        section(
            "ldap",
            &format!(
                "# the demo directory (service {LDAP_SERVICE}); passwords are in the logins file\n"
            ),
            &ldap,
        ),
        section("hub", "", &hub),
        section(
            "tls",
            "# a CA and certificate made by swarmhub, kept in tls/ next to this file\n",
            &tls,
        ),
    ]
    .join("\n")
}

/// The image of the demo directory, tagged like the others.
pub fn ldap_image() -> String {
    format!("swarmhub/demo-ldap:{}", env!("CARGO_PKG_VERSION"))
}

/// The demo directory's service: one replica on this node, its port published in host mode,
/// its seed a secret.
pub fn ldap_service(cfg: &Config, node_id: &str, port: u16, seed_secret: &str) -> ServiceSpec {
    let mut seed = plan::secret_ref(seed_secret);
    if let Some(f) = seed.file.as_mut() {
        f.name = Some(SEED_TARGET.into());
    }
    ServiceSpec {
        name: Some(LDAP_SERVICE.into()),
        labels: Some(plan::labels("demo-ldap")),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(ldap_image()),
                labels: Some(plan::labels("demo-ldap")),
                env: Some(vec![format!("DEMO_LDAP_BASE_DN={BASE_DN}")]),
                secrets: Some(vec![seed]),
                ..Default::default()
            }),
            placement: Some(plan::constraints(vec![format!("node.id=={node_id}")])),
            restart_policy: Some(plan::restart(TaskSpecRestartPolicyConditionEnum::ANY)),
            networks: Some(vec![plan::attach(cfg)]),
            ..Default::default()
        }),
        mode: Some(plan::replicas(1)),
        update_config: Some(plan::stop_first()),
        endpoint_spec: Some(plan::endpoint(vec![plan::host_port(389, port)])),
        ..Default::default()
    }
}

/// `demo up`.
pub async fn up(opts: &DemoOptions, progress: Progress) -> Result<Up, CliError> {
    let cluster = Cluster::reach(&TimeoutsConfig::default()).await?;
    let mut steps = Vec::new();
    let node_addr = ensure_swarm(&cluster, &mut steps).await?;

    let dir = make_dir(&opts.dir, &mut steps)?;
    let cfg_path = config_path(&dir);
    let first = !cfg_path.exists();
    let logins = logins(&dir)?;
    let gateway = swarm_settled(&cluster, SWARM_SETTLE).await?;
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let settings = DemoSettings {
        data_dir: dir.join("data").display().to_string(),
        public_url: format!("https://{}:{}/", probe::url_host(&node_addr), opts.hub_port),
        hub_port: opts.hub_port,
        hub_redirect_port: opts.hub_redirect_port,
        ldap_url: format!("ldap://{gateway}:{}", opts.ldap_port),
        backend: backend_for(&filesystems),
    };
    let text = settings_toml(&settings);
    let mut cfg = Config::from_toml(&text, &cfg_path, std::iter::empty())?;
    cfg.tls.resolve(&dir);

    if first {
        refuse_foreign_deployment(&cluster, &cfg).await?;
    }
    require_images(&cluster, &cfg).await?;
    steps.push(write_if_changed(&cfg_path, &text)?);
    steps.extend(ensure_storage_label(&cluster, &cfg).await?);

    // the directory first: nfsd and the hub look users up in it
    steps.push(apply::ensure_network(&cluster, &plan::network(&cfg)).await?);
    let seed = seed_ldif(&logins);
    let seed_name = format!(
        "{SEED_SECRET_PREFIX}{}",
        &blake3::hash(seed.as_bytes()).to_hex()[..12]
    );
    steps.push(ensure_seed_secret(&cluster, &seed_name, &seed).await?);
    let me = cluster.self_node_id().await?;
    let spec = ldap_service(&cfg, &me, opts.ldap_port, &seed_name);
    steps.push(apply::ensure_service(&cluster, &spec, true).await?);
    apply::wait_running(&cluster, LDAP_SERVICE, 1, &progress).await?;
    wait_ldap(&cfg.ldap.url, &progress).await?;
    steps.extend(apply::prune_secrets(&cluster, SEED_SECRET_PREFIX, &[seed_name.as_str()]).await?);

    let ctx = Ctx {
        cluster: &cluster,
        cfg: &cfg,
        inputs: PlanInputs::default(),
        progress,
    };
    for step in lifecycle::run(&ctx, Part::All, &mut std::io::empty()).await? {
        // the network was made above already; say so once
        let repeated = step.change == Change::Unchanged
            && steps
                .iter()
                .any(|s| s.kind == step.kind && s.name == step.name);
        if !repeated {
            steps.push(step);
        }
    }
    Ok(Up {
        steps,
        url: settings.public_url,
        logins,
        ca_cert: Path::new(&cfg.tls.dir).join(crate::settings::tls::CA_CERT),
        redirect_url: (opts.hub_redirect_port != 0).then(|| {
            format!(
                "http://{}:{}/",
                probe::url_host(&node_addr),
                opts.hub_redirect_port
            )
        }),
        config: cfg_path,
        data_dir: settings.data_dir,
    })
}

/// `demo down`: the stack and the demo directory go, every file and secret stays.
pub async fn down(opts: &DemoOptions, progress: Progress) -> Result<Vec<Step>, CliError> {
    let cfg_path = config_path(&opts.dir);
    if !cfg_path.is_file() {
        return Err(CliError::Precondition {
            what: format!(
                "no demo in {}: {} does not exist",
                opts.dir.display(),
                cfg_path.display()
            ),
            fix: "give the --dir that `swarmhub demo up` used".into(),
        });
    }
    let cfg = Config::load(&cfg_path, std::iter::empty())?;
    let cluster = Cluster::connect(&cfg).await?;
    // the directory; the notebooks go first in lifecycle::remove, while nfsd still answers
    let mut steps =
        apply::stop_then_remove(&cluster, &[LDAP_SERVICE.to_string()], &progress).await?;
    steps.extend(apply::prune_secrets(&cluster, SEED_SECRET_PREFIX, &[]).await?);
    let ctx = Ctx {
        cluster: &cluster,
        cfg: &cfg,
        inputs: PlanInputs::default(),
        progress,
    };
    steps.extend(lifecycle::remove(&ctx, Part::All).await?);
    steps.push(
        Step::new(
            "file",
            &logins_path(&opts.dir).display().to_string(),
            Change::Kept,
        )
        .note("`swarmhub demo up` gives the same passwords again"),
    );
    steps.push(Step::new("swarm", "this node", Change::Kept).note(
        "the swarm, its storage label and the plugin stay; `docker swarm leave --force` if it was made for the demo",
    ));
    Ok(steps)
}

/// Make this dockerd a one-node swarm when it is in none; refuse a worker or a broken state.
/// Returns this node's address.
async fn ensure_swarm(c: &Swarm, steps: &mut Vec<Step>) -> Result<String, CliError> {
    let info = c
        .engine()
        .info()
        .await
        .context("cannot ask dockerd for its swarm state")?;
    let swarm = info.swarm.unwrap_or_default();
    match swarm.local_node_state.unwrap_or(LocalNodeState::INACTIVE) {
        LocalNodeState::INACTIVE => {}
        LocalNodeState::ACTIVE => {
            c.require_manager().await?;
            steps.push(Step::new("swarm", "this node", Change::Unchanged).note("manager"));
            return Ok(swarm.node_addr.unwrap_or_else(|| "127.0.0.1".into()));
        }
        other => {
            return Err(CliError::Precondition {
                what: format!("this dockerd's swarm state is {other}"),
                fix: "wait until it is active, or leave it: docker swarm leave --force".into(),
            });
        }
    }
    let addr = advertise_addr();
    let req = SwarmInitRequest {
        listen_addr: Some("0.0.0.0:2377".into()),
        advertise_addr: Some(addr.to_string()),
        ..Default::default()
    };
    c.engine().init_swarm(req).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot make this dockerd a swarm (advertising {addr}): {}",
            e.message()
        )
    })?;
    steps.push(
        Step::new("swarm", "this node", Change::Created)
            .note(format!("one-node swarm, advertised at {addr}")),
    );
    Ok(addr.to_string())
}

/// The address other machines would reach this one at: the source address of the default
/// route (found by connecting a UDP socket, which sends nothing), or loopback without one.
pub fn advertise_addr() -> IpAddr {
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// How long `demo up` waits for what swarm sets up in the background after `swarm init`.
const SWARM_SETTLE: Duration = Duration::from_secs(60);

/// Waits (at most `limit`) until what the demo needs of a swarm is there: this node listed as
/// ready, and `docker_gwbridge` with an IPv4 gateway (swarm creates it asynchronously, seconds
/// after `swarm init` has returned). Returns that gateway's address.
async fn swarm_settled(c: &Swarm, limit: Duration) -> Result<String, CliError> {
    let waited = wait::until(limit, Duration::from_millis(250), || async {
        let mut missing = Vec::new();
        let gateway = gwbridge_gateway(c.engine()).await?;
        if gateway.is_none() {
            missing.push("the network docker_gwbridge with an IPv4 gateway".to_string());
        }
        match node_ready(c).await? {
            Ok(()) => {}
            Err(state) => missing.push(format!("this node ready (it is {state})")),
        }
        Ok::<_, CliError>(match gateway {
            Some(g) if missing.is_empty() => Look::Done(g),
            _ => Look::NotYet(missing),
        })
    })
    .await?;
    waited.map_err(|timed_out| CliError::Precondition {
        what: format!(
            "dockerd's swarm is not ready after {} s: missing {}",
            limit.as_secs(),
            timed_out.last.join(", ")
        ),
        fix: "swarm creates these by itself; look at dockerd's log (journalctl -u docker), then restart dockerd (systemctl restart docker) and run the demo again".into(),
    })
}

/// Whether this node is `ready` in the swarm's node list; `Err` carries its state.
async fn node_ready(c: &Swarm) -> Result<Result<(), String>, CliError> {
    let id = c.self_node_id().await?;
    let node = absent(c.engine().inspect_node(&id).await)
        .map_err(|e| anyhow::anyhow!("cannot inspect this node: {}", e.message()))?;
    let Some(node) = node else {
        return Ok(Err("not listed yet".into()));
    };
    let info = crate::docker::cluster::NodeInfo::from_node(&node);
    Ok(if info.state == "ready" {
        Ok(())
    } else {
        Err(info.state)
    })
}

/// The gateway address of `docker_gwbridge`, which swarm creates on every node; None while
/// it is missing or has no IPv4 gateway.
async fn gwbridge_gateway(docker: &dyn Engine) -> Result<Option<String>, CliError> {
    let net = absent(docker.inspect_network("docker_gwbridge", false).await)
        .map_err(|e| anyhow::anyhow!("cannot inspect docker_gwbridge: {}", e.message()))?;
    Ok(net
        .and_then(|n| n.ipam)
        .and_then(|i| i.config)
        .into_iter()
        .flatten()
        .find_map(|c| c.gateway.filter(|g| g.parse::<Ipv4Addr>().is_ok())))
}

fn make_dir(dir: &Path, steps: &mut Vec<Step>) -> Result<PathBuf, CliError> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the demo directory {}", dir.display()))?;
        steps.push(Step::new(
            "directory",
            &dir.display().to_string(),
            Change::Created,
        ));
    }
    Ok(dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?)
}

fn write_if_changed(path: &Path, text: &str) -> Result<Step, CliError> {
    let name = path.display().to_string();
    let old = std::fs::read_to_string(path).ok();
    if old.as_deref() == Some(text) {
        return Ok(Step::new("file", &name, Change::Unchanged));
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {name}"))?;
    Ok(Step::new(
        "file",
        &name,
        if old.is_some() {
            Change::Updated
        } else {
            Change::Created
        },
    ))
}

/// The demo uses the default service names: on its first run it must not take over a
/// deployment someone made with `swarmhub run`.
async fn refuse_foreign_deployment(c: &Swarm, cfg: &Config) -> Result<(), CliError> {
    for name in [&cfg.cluster.hub_service, &cfg.cluster.nfsd_service] {
        if c.service(name).await?.is_some() {
            return Err(CliError::Precondition {
                what: format!(
                    "this swarm already runs a swarmhub deployment (service {name}) that the demo did not make; the demo would take it over"
                ),
                fix: "use that deployment, or remove it first with `swarmhub remove` (its data stays), or run the demo on another machine".into(),
            });
        }
    }
    Ok(())
}

/// Every image the demo runs must be on this node (there is no registry to pull from).
async fn require_images(c: &Swarm, cfg: &Config) -> Result<(), CliError> {
    let ldap = ldap_image();
    let mut missing = Vec::new();
    for image in cfg
        .images
        .deployed()
        .into_iter()
        .map(|(_, image)| image)
        .chain([ldap.as_str()])
    {
        let present = c
            .has_image(image)
            .await
            .map_err(|e| anyhow::anyhow!("cannot inspect image {image}: {e}"))?;
        if !present {
            missing.push(image);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(CliError::Precondition {
        what: format!("images missing on this node: {}", missing.join(", ")),
        fix: "build them from a checkout of swarmhub: ./demo.sh up builds what is missing, or images/build.sh --prebuilt".into(),
    })
}

/// Label this node the storage node when no node is.
async fn ensure_storage_label(c: &Swarm, cfg: &Config) -> Result<Option<Step>, CliError> {
    let label = &cfg.cluster.storage_node_label;
    let nodes = c.nodes().await?;
    if nodes
        .iter()
        .any(|n| n.labels.get(label).map(String::as_str) == Some("true"))
    {
        return Ok(None);
    }
    let me = c.self_node_id().await?;
    let node = c
        .engine()
        .inspect_node(&me)
        .await
        .map_err(|e| anyhow::anyhow!("cannot inspect node {me}: {}", e.message()))?;
    let mut spec: NodeSpec = node.spec.unwrap_or_default();
    spec.labels
        .get_or_insert_with(Default::default)
        .insert(label.clone(), "true".into());
    let version = node.version.and_then(|v| v.index).unwrap_or_default();
    let version = i64::try_from(version).context("node version out of range")?;
    c.engine()
        .update_node(&me, spec, version)
        .await
        .map_err(|e| anyhow::anyhow!("cannot label node {me}: {}", e.message()))?;
    Ok(Some(
        Step::new("node", &me, Change::Updated).note(format!("{label}=true: nfsd runs here")),
    ))
}

async fn ensure_seed_secret(c: &Swarm, name: &str, seed: &str) -> Result<Step, CliError> {
    if c.secret_ids().await?.contains_key(name) {
        return Ok(Step::new("secret", name, Change::Unchanged));
    }
    let spec = SecretSpec {
        name: Some(name.into()),
        labels: Some(plan::labels("demo-ldap")),
        data: Some(base64::engine::general_purpose::STANDARD.encode(seed)),
        ..Default::default()
    };
    c.engine()
        .create_secret(spec)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create secret {name}: {}", e.message()))?;
    Ok(Step::new("secret", name, Change::Created))
}

/// Wait until the demo directory answers an anonymous search for the teacher.
async fn wait_ldap(url: &str, progress: &Progress) -> Result<(), CliError> {
    let bar = progress.spinner(format!("waiting for the demo directory at {url}"));
    let waited = wait::until_done(LDAP_WAIT, Duration::from_millis(300), || async {
        match search_teacher(url).await {
            Ok(()) => Look::Done(()),
            Err(e) => Look::NotYet(e),
        }
    })
    .await;
    bar.finish();
    waited.map_err(|timed_out| {
        CliError::Other(anyhow::anyhow!(
            "the demo directory at {url} does not answer after {} s: {}; see docker service logs {LDAP_SERVICE}",
            LDAP_WAIT.as_secs(),
            timed_out.last
        ))
    })
}

async fn search_teacher(url: &str) -> Result<(), String> {
    let timeout = Duration::from_secs(3);
    let settings = LdapConnSettings::new().set_conn_timeout(timeout);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url)
        .await
        .map_err(|e| e.to_string())?;
    ldap3::drive!(conn);
    let filter = format!("(uid={})", USERS[0].name);
    let found = tokio::time::timeout(
        timeout,
        ldap.search(BASE_DN, Scope::Subtree, &filter, vec!["uidNumber"]),
    )
    .await
    .map_err(|_| "no answer to a search".to_string())?
    .and_then(|r| r.success())
    .map_err(|e| e.to_string())?;
    let _ = ldap.unbind().await;
    if found.0.is_empty() {
        return Err(format!("no entry {filter} under {BASE_DN}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DemoSettings {
        DemoSettings {
            data_dir: "/var/lib/swarmhub-demo/data".into(),
            public_url: "https://10.0.0.5:8000/".into(),
            hub_port: 8000,
            hub_redirect_port: 8080,
            ldap_url: "ldap://172.18.0.1:3389".into(),
            backend: PluginBackend::Fuse,
        }
    }

    #[test]
    fn settings_file_is_a_valid_config_with_the_demo_values() {
        let path = Path::new("/var/lib/swarmhub-demo/swarmhub.toml");
        let cfg = Config::from_toml(&settings_toml(&settings()), path, std::iter::empty()).unwrap();
        assert_eq!(cfg.cluster.nfsd_data_dir, "/var/lib/swarmhub-demo/data");
        assert_eq!(cfg.cluster.plugin_backend, PluginBackend::Fuse);
        assert_eq!(cfg.cluster.public_url, "https://10.0.0.5:8000/");
        assert_eq!(cfg.tls.mode, crate::settings::TlsMode::SelfSigned);
        assert_eq!(cfg.cluster.hub_redirect_port, 8080);
        assert_eq!(cfg.ldap.url, "ldap://172.18.0.1:3389");
        assert!(!cfg.ldap.starttls);
        assert_eq!(
            cfg.ldap.teacher_group,
            "cn=teachers,ou=groups,dc=swarmhub,dc=demo"
        );
        assert_eq!(cfg.hub.course_id, COURSE);
        assert_eq!(cfg.hub.course_owner.as_deref(), Some("teacher"));
        // the rest are the defaults of `swarmhub init`
        assert_eq!(cfg.cluster.hub_service, "swarmhub-hub");
        assert_eq!(
            cfg.images.cli,
            format!("swarmhub/swarmhub:{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn settings_quote_odd_paths() {
        let mut s = settings();
        s.data_dir = "/tmp/a \"b\"/data".into();
        let cfg =
            Config::from_toml(&settings_toml(&s), Path::new("x.toml"), std::iter::empty()).unwrap();
        assert_eq!(cfg.cluster.nfsd_data_dir, "/tmp/a \"b\"/data");
    }

    #[test]
    fn seed_has_every_user_with_numbers_groups_and_password() {
        let logins: Vec<Login> = USERS
            .iter()
            .map(|u| login(u, format!("pw-{}", u.name)))
            .collect();
        let seed = seed_ldif(&logins);
        for u in &USERS {
            let entry = seed
                .split("\n\n")
                .find(|e| e.starts_with(&format!("dn: uid={},", u.name)))
                .unwrap();
            assert!(entry.contains(&format!("uidNumber: {}\n", u.uid)));
            assert!(entry.contains(&format!("gidNumber: {}\n", u.gid)));
            assert!(entry.contains(&format!("userPassword: pw-{}", u.name)));
        }
        let students = seed
            .split("\n\n")
            .find(|e| e.starts_with("dn: cn=students,"))
            .unwrap();
        assert!(students.contains("memberUid: student1\nmemberUid: student2"));
        assert!(!students.contains("memberUid: teacher"));
        let teachers = seed
            .split("\n\n")
            .find(|e| e.starts_with("dn: cn=teachers,"))
            .unwrap();
        assert!(teachers.contains("memberUid: teacher"));
    }

    #[test]
    fn logins_are_generated_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = logins(dir.path()).unwrap();
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|l| l.password.len() == 12));
        assert_ne!(first[0].password, first[1].password);
        let mode = std::fs::metadata(logins_path(dir.path()))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert_eq!(logins(dir.path()).unwrap(), first);
        assert_eq!(first[0].role, "teacher");
        assert_eq!(first[1].role, "student");
    }

    #[test]
    fn a_damaged_logins_file_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(logins_path(dir.path()), "teacher abc\nstudent1 def\n").unwrap();
        let err = logins(dir.path()).unwrap_err();
        assert_eq!(err.code(), 7);
        assert!(
            err.to_string().contains("user student2 is missing"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(logins_path(dir.path())).unwrap(),
            "teacher abc\nstudent1 def\n"
        );
        assert!(
            parse_logins("teacher a b\n")
                .unwrap_err()
                .contains("line 1")
        );
    }

    #[test]
    fn backend_follows_the_kernel() {
        // a host whose /proc/filesystems lists nfs uses the kernel client
        assert_eq!(
            backend_for("nodev\tsysfs\nnodev\tnfs\nnodev\tnfs4\n"),
            PluginBackend::Kernel
        );
    }

    #[test]
    fn ldap_service_runs_here_with_the_seed_and_a_host_port() {
        let cfg = Config::from_toml(
            &settings_toml(&settings()),
            Path::new("x.toml"),
            std::iter::empty(),
        )
        .unwrap();
        let s = ldap_service(&cfg, "node1", 3389, "swarmhub-demo-ldap-seed-abc");
        let t = s.task_template.unwrap();
        assert_eq!(
            t.placement.unwrap().constraints.unwrap(),
            vec!["node.id==node1".to_string()]
        );
        let c = t.container_spec.unwrap();
        let secret = &c.secrets.unwrap()[0];
        assert_eq!(
            secret.secret_name.as_deref(),
            Some("swarmhub-demo-ldap-seed-abc")
        );
        assert_eq!(
            secret.file.as_ref().unwrap().name.as_deref(),
            Some("swarmhub-demo-ldap-seed")
        );
        assert_eq!(c.image.unwrap(), ldap_image());
        let port = &s.endpoint_spec.unwrap().ports.unwrap()[0];
        assert_eq!(
            (port.target_port, port.published_port),
            (Some(389), Some(3389))
        );
    }

    #[test]
    fn advertise_address_is_never_unspecified() {
        assert!(!advertise_addr().is_unspecified());
    }
}
