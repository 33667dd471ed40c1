//! The `swarmhub-nfs` volume plugin on the nodes.
//!
//! - Node side ([`node_install`]): first install swarmhub's firewall guard of nfsd's ports
//!   ([`crate::node::firewall`], in a child process that enters the node's root), then, through one
//!   node's own dockerd, install the plugin (from the
//!   bundle the swarmhub CLI image carries, or from a registry), give it its settings, put nfsd's
//!   token into its state directory, and enable it. Safe to re-run: a plugin that already has
//!   this version and these settings is left alone (an enabled plugin is never disabled without
//!   need, since disabling it breaks the mounts of running notebooks).
//! - Manager side ([`rollout`]): run the node side on every node at once as a one-shot global
//!   job (`swarmhub-plugin-rollout`), wait for each node's task, read its result from the task's
//!   log, and record the installed version and a fingerprint of its settings as the node labels
//!   `swarmhub.plugin-version` and `swarmhub.plugin-settings`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bollard::models::{NodeSpec, Plugin};
use serde::{Deserialize, Serialize};

use crate::apply::jobs;
use crate::docker::cluster::Swarm;
use crate::docker::engine::{Engine, EngineError, RegistryLogin, absent};
use crate::exit::CliError;
use crate::names::{PLUGIN_SETTINGS_LABEL, PLUGIN_VERSION_LABEL};
use crate::node::firewall;
use crate::plan;
use crate::progress::Progress;
use crate::settings::Config;
use crate::steps::{Change, Step};

/// The name of the setting that records the installed version in the plugin itself.
pub const VERSION_SETTING: &str = "SWARMHUB_NFS_PLUGIN_VERSION";
/// The token file's name in the plugin's state directory (the plugin's default
/// `SWARMHUB_NFS_TOKEN_FILE` is `/state/nfsd-token`).
pub const TOKEN_FILE_NAME: &str = "nfsd-token";
/// Prefix of the one line of JSON the node side prints for the manager to read.
pub const RESULT_PREFIX: &str = "swarmhub-node-result: ";

/// What to install on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInstall {
    /// The plugin's name on the node (its volume driver name).
    pub alias: String,
    /// A directory with `config.json` and `rootfs/` (used unless `remote` is given).
    pub bundle: PathBuf,
    /// A plugin reference to pull instead (`registry/swarmhub-nfs:0.1.0`, pinned by digest
    /// when the manager knew it); it is also the version recorded.
    pub remote: Option<String>,
    /// The login to the registry of `remote` and `pull`.
    pub login: Option<RegistryLogin>,
    /// The address of this node's dockerd (for the calls made without bollard's client).
    pub docker_host: String,
    /// Images to pull onto this node (the notebook images, so no spawn waits for a pull).
    pub pull: Vec<String>,
    /// How long containers that are stopping (a drain) get to let go of the plugin's volumes
    /// before the plugin is refused.
    pub wait_volumes: Duration,
    /// `KEY=VALUE` env settings and `mount.source=PATH` mount settings.
    pub settings: Vec<String>,
    /// nfsd's API token, copied to `<state_dir>/nfsd-token`.
    pub token_file: Option<PathBuf>,
    /// The plugin's state directory as this process sees it (created 0700 if missing).
    pub state_dir: Option<PathBuf>,
    /// Install the firewall guard of nfsd's ports first (see [`crate::node::firewall`]).
    pub firewall: Option<FirewallStep>,
}

/// Where the node's root is bound and which ports of nfsd the guard closes to containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallStep {
    /// The node's `/` as this process sees it (`/host` in the rollout job).
    pub root: String,
    /// nfsd's NFS and API ports.
    pub ports: Vec<u16>,
}

/// What the node side did, printed as one JSON line after [`RESULT_PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeResult {
    /// The node's host name.
    pub node: String,
    /// The plugin's name.
    pub plugin: String,
    /// The version now installed.
    pub version: String,
    /// `created`, `updated`, `started` (enabled), `unchanged`.
    pub change: Change,
    /// The token file was written or replaced.
    pub token_written: bool,
    /// What the firewall step did (absent when the rollout asked for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<firewall::Report>,
    /// The images pulled onto the node (all of them are there now).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pulled: Vec<String>,
}

/// The version of a bundle: this CLI's version and a hash of the plugin's files, so a rebuilt
/// plugin of the same release is still told apart.
pub fn bundle_version(bundle: &Path) -> anyhow::Result<String> {
    let mut h = blake3::Hasher::new();
    for rel in ["config.json", "rootfs/swarmhub-volume-plugin"] {
        let p = bundle.join(rel);
        let bytes = std::fs::read(&p).with_context(|| {
            format!(
                "cannot read the plugin bundle's {} (build it with plugin-config/build.sh --no-create --out DIR, or use the swarmhub CLI image, which carries it at {})",
                p.display(),
                plan::PLUGIN_BUNDLE_DIR
            )
        })?;
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(format!(
        "{}+{}",
        env!("CARGO_PKG_VERSION"),
        &h.finalize().to_hex()[..12]
    ))
}

/// The bundle as the tar archive `POST /plugins/create` takes.
fn bundle_tar(bundle: &Path) -> anyhow::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_path_with_name(bundle.join("config.json"), "config.json")
        .with_context(|| format!("cannot pack {}/config.json", bundle.display()))?;
    b.append_dir_all("rootfs", bundle.join("rootfs"))
        .with_context(|| format!("cannot pack {}/rootfs", bundle.display()))?;
    b.into_inner().context("cannot finish the plugin archive")
}

/// Settings that differ between the plugin as installed and as wanted.
pub fn settings_differ(current: &Plugin, wanted: &[String]) -> Vec<String> {
    let env: HashMap<&str, &str> = current
        .settings
        .env
        .iter()
        .filter_map(|e| e.split_once('='))
        .collect();
    let mounts: HashMap<&str, &str> = current
        .settings
        .mounts
        .iter()
        .map(|m| (m.name.as_str(), m.source.as_str()))
        .collect();
    wanted
        .iter()
        .filter(|s| {
            let Some((k, v)) = s.split_once('=') else {
                return true;
            };
            match k.strip_suffix(".source") {
                Some(mount) => mounts.get(mount) != Some(&v),
                None => env.get(k) != Some(&v),
            }
        })
        .cloned()
        .collect()
}

/// The version recorded in the installed plugin's settings.
fn installed_version(p: &Plugin) -> Option<String> {
    p.settings.env.iter().find_map(|e| {
        e.strip_prefix(VERSION_SETTING)
            .and_then(|r| r.strip_prefix('='))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    })
}

/// Write `value` to `path` (mode 0600) unless it already holds it; true if written.
fn write_token(path: &Path, value: &[u8]) -> anyhow::Result<bool> {
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::read(path).is_ok_and(|cur| cur == value) {
        return Ok(false);
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(value)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(true)
}

/// Install or upgrade the plugin on the node whose dockerd `docker` is (see the module docs).
pub async fn node_install(docker: &dyn Engine, req: &NodeInstall) -> Result<NodeResult, CliError> {
    let alias = req.alias.as_str();
    // the guard first: it must hold even when the plugin cannot be replaced (volumes in use)
    let firewall = match &req.firewall {
        Some(f) => {
            let (root, ports) = (f.root.clone(), f.ports.clone());
            let report = tokio::task::spawn_blocking(move || {
                firewall::run_in_root(&root, &ports, firewall::Action::Apply)
            })
            .await
            .context("the firewall step did not finish")??;
            Some(report)
        }
        None => None,
    };
    // the token first: an enabled plugin reads it on every call
    let mut token_written = false;
    if let Some(dir) = &req.state_dir {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("cannot create the plugin state directory {}", dir.display())
        })?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
        if let Some(tf) = &req.token_file {
            let token = std::fs::read(tf)
                .with_context(|| format!("cannot read nfsd's token from {}", tf.display()))?;
            token_written = write_token(&dir.join(TOKEN_FILE_NAME), token.trim_ascii())?;
        }
    }
    // the images next: a node whose plugin cannot be replaced still gets them
    let mut pulled = Vec::new();
    for image in &req.pull {
        docker
            .pull_image(image, req.login.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("cannot pull {image} onto this node: {}", e.message()))?;
        pulled.push(image.clone());
    }
    let version = match &req.remote {
        Some(r) => r.clone(),
        None => bundle_version(&req.bundle)?,
    };
    let mut settings = req.settings.clone();
    settings.push(format!("{VERSION_SETTING}={version}"));
    let info = docker
        .info()
        .await
        .context("cannot ask this node's dockerd for its name")?;
    let node = info.name.unwrap_or_default();

    let current = absent(docker.inspect_plugin(alias).await)
        .with_context(|| format!("cannot inspect plugin {alias}"))?;
    let change = match current {
        Some(p) if installed_version(&p).as_deref() == Some(version.as_str()) => {
            let differ = settings_differ(&p, &settings);
            if differ.is_empty() && p.enabled {
                Change::Unchanged
            } else {
                if !differ.is_empty() {
                    disable(docker, alias, &p, req.wait_volumes).await?;
                    set(docker, alias, &differ).await?;
                }
                enable(docker, alias).await?;
                if differ.is_empty() {
                    Change::Started
                } else {
                    Change::Updated
                }
            }
        }
        Some(p) => {
            disable(docker, alias, &p, req.wait_volumes).await?;
            docker.remove_plugin(alias).await.map_err(|e| {
                anyhow::anyhow!("cannot remove the old plugin {alias}: {}", e.message())
            })?;
            create(docker, req, alias).await?;
            set(docker, alias, &settings).await?;
            enable(docker, alias).await?;
            Change::Updated
        }
        None => {
            create(docker, req, alias).await?;
            set(docker, alias, &settings).await?;
            enable(docker, alias).await?;
            Change::Created
        }
    };
    Ok(NodeResult {
        node,
        plugin: alias.to_string(),
        version,
        change,
        token_written,
        firewall,
        pulled,
    })
}

async fn create(docker: &dyn Engine, req: &NodeInstall, alias: &str) -> anyhow::Result<()> {
    if let Some(pinned) = &req.remote {
        // by its tag: dockerd 20.10 panics pulling a plugin by digest (a canonical reference
        // "is not reference.Tagged"); the manager resolved the tag's digest just before, and
        // records it as the version
        let remote = pinned.split('@').next().unwrap_or(pinned);
        let privileges = docker
            .plugin_privileges(&req.docker_host, remote, req.login.as_ref())
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot get the privileges of {remote}: {}", e.message())
            })?;
        docker
            .pull_plugin(remote, alias, privileges, req.login.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("cannot pull plugin {remote}: {}", e.message()))?;
        // a pulled plugin is enabled by the pull; settings need it disabled
        if let Some(p) = absent(docker.inspect_plugin(alias).await)? {
            disable(docker, alias, &p, req.wait_volumes).await?;
        }
        return Ok(());
    }
    let tar = bundle_tar(&req.bundle)?;
    docker.create_plugin(alias, tar).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot create plugin {alias} from {}: {}",
            req.bundle.display(),
            e.message()
        )
    })?;
    Ok(())
}

async fn set(docker: &dyn Engine, alias: &str, settings: &[String]) -> anyhow::Result<()> {
    docker
        .set_plugin(alias, settings.to_vec())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot set {} on plugin {alias}: {}",
                settings.join(" "),
                e.message()
            )
        })
}

async fn enable(docker: &dyn Engine, alias: &str) -> anyhow::Result<()> {
    docker
        .enable_plugin(alias, 30)
        .await
        .map_err(|e| anyhow::anyhow!("cannot enable plugin {alias}: {}", e.message()))
}

/// Disable without force: Docker refuses while volumes of the plugin exist on this node,
/// which is what protects running notebooks. Volumes no container uses are only this node's
/// record of them (their files are on nfsd, and a notebook's next start creates its volumes
/// again with their options), so they are removed first; volumes containers use stay, and
/// the plugin is refused with the reason. With `wait`, containers that are stopping (a
/// drain) get that long to let go of their volumes.
async fn disable(
    docker: &dyn Engine,
    alias: &str,
    p: &Plugin,
    wait: Duration,
) -> Result<(), CliError> {
    if !p.enabled {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + wait;
    // the volumes still used after the last release; none released yet
    let mut used: Option<Vec<String>> = None;
    loop {
        let e = match docker.disable_plugin(alias).await {
            Ok(()) => return Ok(()),
            Err(e) if e.message().contains("in use") => e,
            Err(e) => {
                return Err(
                    anyhow::anyhow!("cannot disable plugin {alias}: {}", e.message()).into(),
                );
            }
        };
        if let Some(used) = &used {
            if std::time::Instant::now() >= deadline {
                return Err(CliError::Precondition {
                    what: format!(
                        "plugin {alias} must be replaced but {IN_USE} ({}; used by containers: {})",
                        e.message(),
                        if used.is_empty() { "none listed".to_string() } else { used.join(", ") }
                    ),
                    fix: "stop the notebooks on this node (JupyterHub admin page, or the idle culler), then `swarmhub plugin rollout`; or `swarmhub plugin rollout --drain`, which stops exactly them (their files stay)".into(),
                });
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        used = Some(release_unused_volumes(docker, alias).await?);
    }
}

/// Remove this node's volumes of the plugin `alias` that no container uses (Docker refuses
/// the others: 409); the names of those still in use.
async fn release_unused_volumes(docker: &dyn Engine, alias: &str) -> Result<Vec<String>, CliError> {
    let list = docker
        .list_volumes()
        .await
        .map_err(|e| anyhow::anyhow!("cannot list this node's volumes: {}", e.message()))?;
    let mut used = Vec::new();
    for v in list.volumes.unwrap_or_default() {
        if v.driver.split(':').next() != Some(alias) {
            continue;
        }
        match docker.remove_volume(&v.name).await {
            Ok(()) => tracing::info!(volume = v.name, "released (its files stay on nfsd)"),
            // dockerd's 409 (a container references it), or the plugin's own refusal while
            // it still holds a mount for a container that is going away
            Err(EngineError::Conflict(_)) => used.push(v.name),
            Err(e) if e.message().contains("still mounted") || e.message().contains("in use") => {
                used.push(v.name)
            }
            Err(EngineError::NotFound(_)) => {}
            Err(e) => {
                return Err(
                    anyhow::anyhow!("cannot remove volume {}: {}", v.name, e.message()).into(),
                );
            }
        }
    }
    Ok(used)
}

/// Whether a node's failure is its refusal to replace a plugin whose volumes are in use.
pub fn refused_in_use(error: &str) -> bool {
    error.contains(IN_USE)
}

/// What the node side says when Docker refuses to disable a plugin with mounted volumes.
const IN_USE: &str = "its volumes are in use on this node";

/// The result line the node side prints.
pub fn result_line(r: &NodeResult) -> String {
    format!(
        "{RESULT_PREFIX}{}",
        serde_json::to_string(r).unwrap_or_default()
    )
}

/// Find the result in a task's log.
pub fn parse_result(log: &str) -> Option<NodeResult> {
    crate::node::result_after(log, RESULT_PREFIX).and_then(|json| serde_json::from_str(&json).ok())
}

/// The outcome of a rollout on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeOutcome {
    /// Host name.
    pub node: String,
    /// The node side's result, when it completed.
    pub result: Option<NodeResult>,
    /// Why it did not, with the task's log.
    pub error: Option<String>,
}

/// Install or upgrade the plugin on every ready node (see the module docs).
pub async fn rollout(
    c: &Swarm,
    cfg: &Config,
    wait_volumes: Duration,
    progress: &Progress,
) -> Result<Vec<NodeOutcome>, CliError> {
    let storage = c.storage_node(&cfg.cluster.storage_node_label).await?;
    let mut spec = plan::plugin_rollout_service(cfg, &storage.addr);
    if !wait_volumes.is_zero()
        && let Some(args) = spec
            .task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
            .and_then(|c| c.args.as_mut())
    {
        args.extend(["--wait-volumes".into(), wait_volumes.as_secs().to_string()]);
    }
    let settings = plan::plugin_settings_fingerprint(cfg, &storage.addr);
    let runs = jobs::run_global(
        c,
        &spec,
        RESULT_PREFIX,
        cfg.timeouts.rollout_seconds,
        "installing the plugin",
        progress,
    )
    .await?;
    let mut outcomes = Vec::new();
    for run in &runs {
        let result = run
            .result
            .as_deref()
            .and_then(|json| serde_json::from_str::<NodeResult>(json).ok());
        let error = match &result {
            Some(_) => None,
            None => Some(run.failure()),
        };
        if let Some(r) = &result {
            label_node(c, &run.task.node_id, &r.version, &settings).await?;
        }
        outcomes.push(NodeOutcome {
            node: run.task.node.clone(),
            result,
            error,
        });
    }
    Ok(one_per_node(outcomes))
}

/// One outcome per node, sorted by node: a node whose dockerd restarted during the job can
/// report two tasks; one that completed wins over one that did not.
fn one_per_node(mut outcomes: Vec<NodeOutcome>) -> Vec<NodeOutcome> {
    outcomes.sort_by(|a, b| {
        a.node
            .cmp(&b.node)
            .then(b.result.is_some().cmp(&a.result.is_some()))
    });
    outcomes.dedup_by(|later, first| later.node == first.node);
    outcomes
}

/// The steps of a rollout for the report, and an error if a node failed.
pub fn outcome_steps(outcomes: &[NodeOutcome]) -> (Vec<Step>, Option<CliError>) {
    let mut steps = Vec::new();
    let mut failed = Vec::new();
    for o in outcomes {
        match (&o.result, &o.error) {
            (Some(r), _) => steps.push(
                Step::new("plugin", &format!("{}@{}", r.plugin, o.node), r.change).note(format!(
                    "version {}{}{}",
                    r.version,
                    if r.token_written {
                        ", token written"
                    } else {
                        ""
                    },
                    match &r.firewall {
                        Some(f) => format!(
                            ", firewall chain {} {}",
                            firewall::CHAIN,
                            serde_json::to_value(f.change)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default()
                        ),
                        None => String::new(),
                    }
                )),
            ),
            (None, e) => {
                // a task's description starts with its node already
                let e = e.clone().unwrap_or_else(|| "no result".into());
                failed.push(if e.starts_with(&format!("{}:", o.node)) {
                    e
                } else {
                    format!("{}: {e}", o.node)
                })
            }
        }
    }
    let err = (!failed.is_empty()).then(|| CliError::Precondition {
        what: format!("the plugin could not be installed on {} node(s): {}", failed.len(), failed.join(" | ")),
        fix: "fix the cause on those nodes (a missing swarmhub CLI image: load it there; volumes in use: stop the notebooks), then `swarmhub plugin rollout`".into(),
    });
    (steps, err)
}

/// Record on the node which plugin version, installed with which settings, it now has.
async fn label_node(c: &Swarm, node_id: &str, version: &str, settings: &str) -> anyhow::Result<()> {
    let node = c
        .engine()
        .inspect_node(node_id)
        .await
        .with_context(|| format!("cannot inspect node {node_id}"))?;
    let mut spec: NodeSpec = node.spec.unwrap_or_default();
    let labels = spec.labels.get_or_insert_with(HashMap::new);
    let wanted = [
        (PLUGIN_VERSION_LABEL, version),
        (PLUGIN_SETTINGS_LABEL, settings),
    ];
    if wanted
        .iter()
        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
    {
        return Ok(());
    }
    for (k, v) in wanted {
        labels.insert(k.into(), v.into());
    }
    let v = i64::try_from(node.version.and_then(|v| v.index).unwrap_or_default())?;
    c.engine()
        .update_node(node_id, spec, v)
        .await
        .map_err(|e| anyhow::anyhow!("cannot label node {node_id}: {}", e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{PluginMount, PluginSettings};

    fn plugin(env: &[&str], state: &str) -> Plugin {
        Plugin {
            name: "swarmhub-nfs:latest".into(),
            enabled: true,
            settings: PluginSettings {
                env: env.iter().map(|s| s.to_string()).collect(),
                mounts: vec![PluginMount {
                    name: "state".into(),
                    source: state.into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn only_differing_settings_are_reported() {
        let p = plugin(
            &[
                "SWARMHUB_NFS_SERVER=10.0.0.1",
                "SWARMHUB_NFS_PORT=2049",
                "SWARMHUB_NFS_PLUGIN_VERSION=0.1.0+aa",
            ],
            "/var/lib/swarmhub-nfs",
        );
        assert_eq!(installed_version(&p).as_deref(), Some("0.1.0+aa"));
        let wanted = vec![
            "SWARMHUB_NFS_SERVER=10.0.0.1".to_string(),
            "SWARMHUB_NFS_PORT=2050".to_string(),
            "state.source=/var/lib/swarmhub-nfs".to_string(),
            "docker-socket.source=/run/docker.sock".to_string(),
        ];
        assert_eq!(
            settings_differ(&p, &wanted),
            [
                "SWARMHUB_NFS_PORT=2050",
                "docker-socket.source=/run/docker.sock"
            ]
        );
        assert_eq!(
            installed_version(&plugin(&["SWARMHUB_NFS_PLUGIN_VERSION="], "/x")),
            None
        );
    }

    #[test]
    fn a_node_is_reported_once_and_a_result_wins() {
        let r = NodeResult {
            node: "b".into(),
            plugin: "swarmhub-nfs".into(),
            version: "v".into(),
            change: Change::Updated,
            token_written: false,
            firewall: None,
            pulled: Vec::new(),
        };
        let o = |node: &str, result: Option<NodeResult>| NodeOutcome {
            node: node.into(),
            error: result.is_none().then(|| "failed".to_string()),
            result,
        };
        let got = one_per_node(vec![
            o("b", None),
            o("a", None),
            o("b", Some(r.clone())),
            o("a", None),
        ]);
        assert_eq!(got, vec![o("a", None), o("b", Some(r))]);
    }

    #[test]
    fn results_survive_the_task_log() {
        let r = NodeResult {
            node: "alpha".into(),
            plugin: "swarmhub-nfs".into(),
            version: "0.1.0+abc".into(),
            change: Change::Created,
            token_written: true,
            firewall: None,
            pulled: Vec::new(),
        };
        let log = format!("some line\n{}\n", result_line(&r));
        assert_eq!(parse_result(&log), Some(r));
        assert_eq!(parse_result("Error: boom"), None);
    }

    /// A bundle whose binary is `bin` in a new directory, and a request to install it.
    fn bundle(bin: &str) -> (tempfile::TempDir, NodeInstall) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::create_dir_all(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("rootfs/swarmhub-volume-plugin"), bin).unwrap();
        let req = NodeInstall {
            alias: "swarmhub-nfs".into(),
            bundle: dir.path().to_path_buf(),
            remote: None,
            login: None,
            docker_host: String::new(),
            pull: Vec::new(),
            wait_volumes: Duration::ZERO,
            settings: Vec::new(),
            token_file: None,
            state_dir: None,
            firewall: None,
        };
        (dir, req)
    }

    #[tokio::test]
    async fn installing_creates_sets_and_enables_once_then_changes_nothing() {
        let (_dir, mut req) = bundle("bin");
        req.settings = vec![
            "SWARMHUB_NFS_SERVER=10.0.0.1".into(),
            "state.source=/var/lib/swarmhub-nfs".into(),
        ];
        let engine = crate::docker::fake::Fake::one_node(&[]);
        let r = node_install(&engine, &req).await.unwrap();
        assert_eq!(r.change, Change::Created);
        let changes: Vec<String> = engine
            .changes()
            .into_iter()
            .map(|c| c.split(' ').next().unwrap().to_string())
            .collect();
        assert_eq!(changes, ["create_plugin", "set_plugin", "enable_plugin"]);
        engine.clear_calls();
        let r = node_install(&engine, &req).await.unwrap();
        assert_eq!(r.change, Change::Unchanged);
        assert_eq!(engine.changes(), Vec::<String>::new());
        // another setting: disabled, set, enabled again (no reinstall)
        req.settings[0] = "SWARMHUB_NFS_SERVER=10.0.0.2".into();
        let r = node_install(&engine, &req).await.unwrap();
        assert_eq!(r.change, Change::Updated);
        assert_eq!(
            engine.calls().last().map(String::as_str),
            Some("enable_plugin swarmhub-nfs")
        );
        assert!(
            engine
                .calls()
                .iter()
                .any(|c| c == "set_plugin swarmhub-nfs SWARMHUB_NFS_SERVER=10.0.0.2")
        );
    }

    #[tokio::test]
    async fn a_new_plugin_releases_unused_volumes_and_is_refused_while_one_is_used() {
        let (dir, mut req) = bundle("v1");
        let engine = crate::docker::fake::Fake::one_node(&[]);
        node_install(&engine, &req).await.unwrap();
        let volume = |name: &str| bollard::models::Volume {
            name: name.into(),
            driver: "swarmhub-nfs:latest".into(),
            ..Default::default()
        };
        engine.hold_plugins_by_volumes();
        engine.add_volume(volume("home-alice"));
        engine.add_volume(volume("home-bob"));
        engine.use_volume("home-alice", true);
        // a new version: bob's volume (no container) goes, alice's (mounted) keeps the plugin
        std::fs::write(dir.path().join("rootfs/swarmhub-volume-plugin"), "v2").unwrap();
        let e = node_install(&engine, &req).await.unwrap_err();
        let text = e.to_string();
        assert!(
            refused_in_use(&text) && text.contains("used by containers: home-alice"),
            "{text}"
        );
        assert!(text.contains("--drain"), "{text}");
        assert!(
            engine
                .calls()
                .contains(&"remove_volume home-bob".to_string())
        );
        // alice's notebook gone: the plugin is replaced
        engine.use_volume("home-alice", false);
        req.wait_volumes = Duration::from_secs(1);
        let r = node_install(&engine, &req).await.unwrap();
        assert_eq!(r.change, Change::Updated);
    }

    #[test]
    fn a_bundle_has_a_version_and_packs_to_a_tar() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::create_dir_all(dir.path().join("rootfs/run/docker/plugins")).unwrap();
        std::fs::write(dir.path().join("rootfs/swarmhub-volume-plugin"), "bin").unwrap();
        let v = bundle_version(dir.path()).unwrap();
        assert!(
            v.starts_with(concat!(env!("CARGO_PKG_VERSION"), "+")),
            "{v}"
        );
        std::fs::write(dir.path().join("rootfs/swarmhub-volume-plugin"), "bin2").unwrap();
        assert_ne!(bundle_version(dir.path()).unwrap(), v);
        let tar = bundle_tar(dir.path()).unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"config.json".to_string()), "{names:?}");
        assert!(
            names.iter().any(|n| n == "rootfs/swarmhub-volume-plugin"),
            "{names:?}"
        );
        let e = bundle_version(&dir.path().join("nope")).unwrap_err();
        assert!(format!("{e:#}").contains("plugin-config/build.sh"), "{e:#}");
    }

    #[test]
    fn tokens_are_written_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(TOKEN_FILE_NAME);
        assert!(write_token(&p, b"abc").unwrap());
        assert!(!write_token(&p, b"abc").unwrap());
        assert!(write_token(&p, b"def").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"def");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
