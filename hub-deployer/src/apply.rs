//! Making the swarm match the plan, one object at a time, safely re-runnable: create what is
//! missing, update what differs, leave the rest alone, and report each step. Also the waits
//! (services converging, tasks gone) with their timeouts.
//!
//! Never touched here: secrets that exist (rotating one would log users out or make stored
//! auth state unreadable), volumes, and nfsd's data directory.
//!
//! A service's desired spec is fingerprinted (BLAKE3 of its JSON, with names rather than ids
//! and the replica count left out) into the label `swarmhub.spec`; an existing service whose
//! label matches is unchanged, which is what makes a second `run` a no-op.

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use bollard::models::{
    ConfigSpec, NetworkCreateRequest, SecretSpec, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated,
};
use bollard::query_parameters::{
    InspectNetworkOptions, ListConfigsOptions, ListNetworksOptions, ListSecretsOptions,
    UpdateServiceOptions,
};
use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, TaskInfo, docker_message, filter, not_found};
use crate::exit::CliError;
use crate::plan::{MANAGED_LABEL, PlannedSecret, SecretSource};
use crate::progress::Progress;
use crate::secrets;

/// Label holding the fingerprint of the spec swarmhub last applied to a service.
pub const SPEC_LABEL: &str = "swarmhub.spec";

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It did not exist and was made.
    Created,
    /// It existed and differed; it was updated.
    Updated,
    /// It existed as planned.
    Unchanged,
    /// Its tasks were started (replicas 0 → 1).
    Started,
    /// Its tasks were stopped (replicas → 0).
    Stopped,
    /// Its tasks were replaced (forced update).
    Restarted,
    /// It was removed.
    Removed,
    /// It was not there (nothing to do).
    Absent,
    /// Kept on purpose (e.g. a secret that `remove` does not delete).
    Kept,
}

/// One line of a command's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `network`, `secret`, `config`, `service`, `plugin`, `node`, `image`.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// What happened.
    pub change: Change,
    /// Anything worth saying (e.g. why it was kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Step {
    /// A step without a note.
    pub fn new(kind: &str, name: &str, change: Change) -> Step {
        Step {
            kind: kind.into(),
            name: name.into(),
            change,
            note: None,
        }
    }

    /// The same step with a note.
    pub fn note(mut self, note: impl Into<String>) -> Step {
        self.note = Some(note.into());
        self
    }

    /// `service swarmhub-nfsd: created (note)`.
    pub fn line(&self) -> String {
        let change = serde_json::to_value(self.change)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match &self.note {
            Some(n) => format!("{} {}: {change} ({n})", self.kind, self.name),
            None => format!("{} {}: {change}", self.kind, self.name),
        }
    }
}

/// Inspect the swarm's own record of a network (the manager's), not a node's local copy: after
/// a removal a node may keep its copy while containers detach, and a service cannot use it.
fn swarm_scope() -> InspectNetworkOptions {
    InspectNetworkOptions {
        verbose: false,
        scope: Some("swarm".into()),
    }
}

/// The attachable overlay network: created when missing. An existing network of that name
/// that is not an attachable swarm overlay is an error (it cannot carry the stack).
pub async fn ensure_network(c: &Cluster, net: &NetworkCreateRequest) -> Result<Step, CliError> {
    let name = net.name.as_str();
    let existing = not_found(c.docker.inspect_network(name, Some(swarm_scope())).await)
        .with_context(|| format!("cannot inspect network {name}"))?;
    if let Some(n) = existing {
        let overlay = n.driver.as_deref() == Some("overlay") && n.scope.as_deref() == Some("swarm");
        if !overlay || n.attachable != Some(true) {
            return Err(CliError::Precondition {
                what: format!(
                    "network {name} exists but is {} {}{}, not an attachable swarm overlay",
                    n.scope.unwrap_or_default(),
                    n.driver.unwrap_or_default(),
                    if n.attachable == Some(true) {
                        ""
                    } else {
                        " (not attachable)"
                    }
                ),
                fix: format!(
                    "remove it (docker network rm {name}) or choose another name (cluster.network)"
                ),
            });
        }
        return Ok(Step::new("network", name, Change::Unchanged));
    }
    c.docker
        .create_network(net.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot create network {name}: {}", docker_message(&e)))?;
    Ok(Step::new("network", name, Change::Created))
}

/// Names of the existing secrets → ids.
pub async fn secret_ids(c: &Cluster) -> anyhow::Result<HashMap<String, String>> {
    let list = c
        .docker
        .list_secrets(None::<ListSecretsOptions>)
        .await
        .context("cannot list secrets")?;
    Ok(list
        .into_iter()
        .filter_map(|s| Some((s.spec?.name?, s.id?)))
        .collect())
}

/// Names of the existing configs → ids.
pub async fn config_ids(c: &Cluster) -> anyhow::Result<HashMap<String, String>> {
    let list = c
        .docker
        .list_configs(None::<ListConfigsOptions>)
        .await
        .context("cannot list configs")?;
    Ok(list
        .into_iter()
        .filter_map(|s| Some((s.spec?.name?, s.id?)))
        .collect())
}

/// Create the missing secrets: generated ones from random bytes, given ones from the admin's
/// file or stdin. Existing secrets are kept whatever their value; one that must exist and
/// does not is an error naming the flag that provides it.
pub async fn ensure_secrets(
    c: &Cluster,
    planned: &[PlannedSecret],
    stdin: &mut dyn Read,
) -> Result<Vec<Step>, CliError> {
    let existing = secret_ids(c).await?;
    let mut steps = Vec::new();
    for s in planned {
        if existing.contains_key(&s.name) {
            let step = Step::new("secret", &s.name, Change::Unchanged);
            steps.push(match &s.source {
                SecretSource::Input { .. } => step.note(format!(
                    "exists, the given value was not used: secrets are never replaced; to change it, `swarmhub remove`, `docker secret rm {}`, then `swarmhub run` with the new value",
                    s.name
                )),
                _ => step,
            });
            continue;
        }
        let value = match &s.source {
            SecretSource::Generated { bytes } => secrets::generate_hex(*bytes).into_bytes(),
            SecretSource::Input { from } => {
                secrets::read_input(from, stdin).with_context(|| format!("secret {}", s.name))?
            }
            SecretSource::Existing { flag } => {
                return Err(CliError::Precondition {
                    what: format!("secret {} does not exist", s.name),
                    fix: format!("give its value once: {flag} FILE (or - for stdin)"),
                });
            }
            SecretSource::Content { path } => std::fs::read(path)
                .with_context(|| format!("secret {}: cannot read {}", s.name, path.display()))?,
        };
        let spec = SecretSpec {
            name: Some(s.name.clone()),
            labels: Some(s.labels.clone()),
            data: Some(base64::engine::general_purpose::STANDARD.encode(&value)),
            ..Default::default()
        };
        c.docker.create_secret(spec).await.map_err(|e| {
            anyhow::anyhow!("cannot create secret {}: {}", s.name, docker_message(&e))
        })?;
        steps.push(Step::new("secret", &s.name, Change::Created));
    }
    Ok(steps)
}

/// Create the config when no config of that (content-derived) name exists.
pub async fn ensure_config(c: &Cluster, spec: &ConfigSpec) -> Result<Step, CliError> {
    let name = spec.name.clone().unwrap_or_default();
    if config_ids(c).await?.contains_key(&name) {
        return Ok(Step::new("config", &name, Change::Unchanged));
    }
    c.docker
        .create_config(spec.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot create config {name}: {}", docker_message(&e)))?;
    Ok(Step::new("config", &name, Change::Created))
}

/// Remove the secrets whose names start with `prefix`, except those in `keep`. A secret a task
/// still uses cannot be removed: it is reported as kept, for the next run.
pub async fn prune_secrets(
    c: &Cluster,
    prefix: &str,
    keep: &[&str],
) -> Result<Vec<Step>, CliError> {
    let mut steps = Vec::new();
    for (name, id) in secret_ids(c).await? {
        if !name.starts_with(prefix) || keep.contains(&name.as_str()) {
            continue;
        }
        match c.docker.delete_secret(&id).await {
            Ok(()) => steps.push(Step::new("secret", &name, Change::Removed)),
            Err(e) => steps.push(
                Step::new("secret", &name, Change::Kept)
                    .note(format!("cannot remove yet: {}", docker_message(&e))),
            ),
        }
    }
    Ok(steps)
}

/// Remove swarmhub's configs with the given prefix that no service uses, except `keep`.
pub async fn prune_configs(
    c: &Cluster,
    prefix: &str,
    keep: Option<&str>,
) -> anyhow::Result<Vec<Step>> {
    let opts = ListConfigsOptions {
        filters: Some(filter("label", &format!("{MANAGED_LABEL}=true"))),
    };
    let list = c
        .docker
        .list_configs(Some(opts))
        .await
        .context("cannot list configs")?;
    let mut steps = Vec::new();
    for cfg in list {
        let name = cfg.spec.and_then(|s| s.name).unwrap_or_default();
        if !name.starts_with(prefix) || Some(name.as_str()) == keep {
            continue;
        }
        let id = cfg.id.unwrap_or_default();
        match c.docker.delete_config(&id).await {
            Ok(()) => steps.push(Step::new("config", &name, Change::Removed)),
            // still referenced by a service (e.g. one being updated): leave it for next time
            Err(e) if docker_message(&e).contains("in use") => {}
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot remove config {name}: {}",
                    docker_message(&e)
                ));
            }
        }
    }
    Ok(steps)
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

/// The spec with secret and config names resolved to ids, the fingerprint label set, and the
/// replica count given.
fn resolved(
    spec: &ServiceSpec,
    replicas: Option<i64>,
    secrets: &HashMap<String, String>,
    configs: &HashMap<String, String>,
) -> Result<ServiceSpec, CliError> {
    let mut s = spec.clone();
    let service = s.name.clone().unwrap_or_default();
    let print = fingerprint(spec);
    s.labels
        .get_or_insert_with(HashMap::new)
        .insert(SPEC_LABEL.into(), print);
    if let (
        Some(n),
        Some(ServiceSpecMode {
            replicated: Some(r),
            ..
        }),
    ) = (replicas, s.mode.as_mut())
    {
        r.replicas = Some(n);
    }
    if let Some(cs) = s
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut())
    {
        for sec in cs.secrets.iter_mut().flatten() {
            let name = sec.secret_name.clone().unwrap_or_default();
            let id = secrets.get(&name).ok_or_else(|| CliError::Precondition {
                what: format!("service {service} needs secret {name}, which does not exist"),
                fix: "run `swarmhub run`, which creates it".into(),
            })?;
            sec.secret_id = Some(id.clone());
        }
        for cfg in cs.configs.iter_mut().flatten() {
            let name = cfg.config_name.clone().unwrap_or_default();
            let id = configs.get(&name).ok_or_else(|| CliError::Precondition {
                what: format!("service {service} needs config {name}, which does not exist"),
                fix: "run `swarmhub run`, which creates it".into(),
            })?;
            cfg.config_id = Some(id.clone());
        }
    }
    Ok(s)
}

/// The replica count of a replicated service.
pub fn replicas_of(spec: &ServiceSpec) -> Option<i64> {
    spec.mode.as_ref()?.replicated.as_ref()?.replicas
}

/// Create the service, or update it when its spec changed; with `start`, also scale a stopped
/// one back to its planned replicas. A service that exists as planned is left alone (no
/// restart of a running nfsd or hub).
pub async fn ensure_service(
    c: &Cluster,
    spec: &ServiceSpec,
    start: bool,
) -> Result<Step, CliError> {
    let name = spec.name.clone().unwrap_or_default();
    let planned = replicas_of(spec);
    let secrets = secret_ids(c).await?;
    let configs = config_ids(c).await?;
    let Some(current) = c.service(&name).await? else {
        let replicas = if start { planned } else { Some(0) };
        let s = resolved(spec, replicas, &secrets, &configs)?;
        c.docker
            .create_service(s, None)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create service {name}: {}", docker_message(&e)))?;
        return Ok(Step::new("service", &name, Change::Created));
    };
    let cur_spec = current.spec.clone().unwrap_or_default();
    let same = cur_spec
        .labels
        .as_ref()
        .and_then(|l| l.get(SPEC_LABEL))
        .is_some_and(|p| *p == fingerprint(spec));
    let cur_replicas = replicas_of(&cur_spec);
    let stopped = cur_replicas == Some(0) && planned.unwrap_or(0) > 0;
    if same && !(start && stopped) {
        let step = Step::new("service", &name, Change::Unchanged);
        return Ok(if stopped { step.note("stopped") } else { step });
    }
    let replicas = if start { planned } else { cur_replicas };
    let s = resolved(spec, replicas, &secrets, &configs)?;
    update(c, &current, s).await?;
    Ok(Step::new(
        "service",
        &name,
        if same {
            Change::Started
        } else {
            Change::Updated
        },
    ))
}

async fn update(
    c: &Cluster,
    current: &bollard::models::Service,
    spec: ServiceSpec,
) -> anyhow::Result<()> {
    let name = spec.name.clone().unwrap_or_default();
    let version = current
        .version
        .as_ref()
        .and_then(|v| v.index)
        .unwrap_or_default();
    let opts = UpdateServiceOptions {
        version: i32::try_from(version).context("service version out of range")?,
        ..Default::default()
    };
    c.docker
        .update_service(&name, spec, opts, None)
        .await
        .map_err(|e| anyhow::anyhow!("cannot update service {name}: {}", docker_message(&e)))?;
    Ok(())
}

/// Create a one-shot job (a service in `global-job` or `replicated-job` mode) with its secret
/// and config names resolved.
pub async fn create_job(c: &Cluster, spec: &ServiceSpec) -> Result<Step, CliError> {
    let name = spec.name.clone().unwrap_or_default();
    let s = resolved(spec, None, &secret_ids(c).await?, &config_ids(c).await?)?;
    c.docker
        .create_service(s, None)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create job {name}: {}", docker_message(&e)))?;
    Ok(Step::new("job", &name, Change::Created))
}

/// Scale a replicated service to `replicas` (0 stops it; its spec and data stay).
pub async fn scale(c: &Cluster, name: &str, replicas: i64) -> Result<Step, CliError> {
    let Some(current) = c.service(name).await? else {
        return Err(CliError::Precondition {
            what: format!("service {name} does not exist"),
            fix: "deploy it first: swarmhub run".into(),
        });
    };
    let mut spec = current.spec.clone().unwrap_or_default();
    if replicas_of(&spec) == Some(replicas) {
        let what = if replicas == 0 {
            "already stopped"
        } else {
            "already running"
        };
        return Ok(Step::new("service", name, Change::Unchanged).note(what));
    }
    spec.mode = Some(ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated {
            replicas: Some(replicas),
        }),
        ..Default::default()
    });
    update(c, &current, spec).await?;
    Ok(Step::new(
        "service",
        name,
        if replicas == 0 {
            Change::Stopped
        } else {
            Change::Started
        },
    ))
}

/// Replace the service's tasks (a forced update), e.g. to pick up a rebuilt image.
pub async fn force_restart(c: &Cluster, name: &str) -> Result<Step, CliError> {
    let Some(current) = c.service(name).await? else {
        return Err(CliError::Precondition {
            what: format!("service {name} does not exist"),
            fix: "deploy it first: swarmhub run".into(),
        });
    };
    let mut spec = current.spec.clone().unwrap_or_default();
    if let Some(t) = spec.task_template.as_mut() {
        t.force_update = Some(t.force_update.unwrap_or(0) + 1);
    }
    update(c, &current, spec).await?;
    Ok(Step::new("service", name, Change::Restarted))
}

/// Remove the service if it exists.
pub async fn remove_service(c: &Cluster, name: &str) -> Result<Step, CliError> {
    match not_found(c.docker.delete_service(name).await) {
        Ok(Some(())) => Ok(Step::new("service", name, Change::Removed)),
        Ok(None) => Ok(Step::new("service", name, Change::Absent)),
        Err(e) => {
            Err(anyhow::anyhow!("cannot remove service {name}: {}", docker_message(&e)).into())
        }
    }
}

/// Remove the network once no container uses it any more (tasks of removed services take a
/// few seconds to go), within the service timeout.
pub async fn remove_network(
    c: &Cluster,
    name: &str,
    progress: &Progress,
) -> Result<Step, CliError> {
    let seconds = c.timeouts.service_seconds;
    let start = Instant::now();
    let bar = progress.spinner(format!(
        "removing network {name} (waiting for its containers to go)"
    ));
    loop {
        match not_found(c.docker.remove_network(name).await) {
            Ok(Some(())) => {
                // a swarm network disappears asynchronously: wait until it is gone, so that
                // a `run` right after (`rerun`) creates it again instead of finding it
                while start.elapsed() < Duration::from_secs(seconds) {
                    let gone = not_found(c.docker.inspect_network(name, Some(swarm_scope())).await)
                        .is_ok_and(|n| n.is_none());
                    if gone {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                bar.finish();
                return Ok(Step::new("network", name, Change::Removed));
            }
            Ok(None) => {
                bar.finish();
                return Ok(Step::new("network", name, Change::Absent));
            }
            Err(e) if start.elapsed() < Duration::from_secs(seconds) => {
                tracing::debug!("network {name} not removable yet: {}", docker_message(&e));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                bar.finish();
                return Err(CliError::Timeout {
                    what: format!(
                        "network {name} to be free ({}); containers outside swarmhub may use it: docker network inspect {name}",
                        docker_message(&e)
                    ),
                    seconds,
                });
            }
        }
    }
}

/// Swarm's overlay networks that carry the managed label (for `remove`).
pub async fn managed_networks(c: &Cluster) -> anyhow::Result<Vec<String>> {
    let opts = ListNetworksOptions {
        filters: Some(filter("label", &format!("{MANAGED_LABEL}=true"))),
    };
    let list = c
        .docker
        .list_networks(Some(opts))
        .await
        .context("cannot list networks")?;
    Ok(list.into_iter().filter_map(|n| n.name).collect())
}

/// Wait until `replicas` tasks of the service run and no update is in progress. Fails fast,
/// with the task's error, when Swarm rejects a task (no such image, a volume that cannot be
/// mounted, a bad mount source) or three tasks fail; otherwise fails after the service
/// timeout saying what the tasks are doing (e.g. no node satisfies the constraints).
pub async fn wait_running(
    c: &Cluster,
    name: &str,
    replicas: u64,
    progress: &Progress,
) -> Result<(), CliError> {
    let seconds = c.timeouts.service_seconds;
    let start = Instant::now();
    let began = chrono_now();
    let bar = progress.spinner(format!("waiting for {name} to run {replicas} task(s)"));
    loop {
        let tasks = c.tasks(name).await?;
        let running = tasks
            .iter()
            .filter(|t| t.desired == "running" && t.state == "running")
            .count() as u64;
        let updating = c
            .service(name)
            .await?
            .and_then(|s| s.update_status)
            .and_then(|u| u.state)
            .is_some_and(|s| s.to_string() == "updating");
        if running == replicas && !updating {
            bar.finish();
            return Ok(());
        }
        // tasks that ended badly since this wait began
        let recent: Vec<&TaskInfo> = tasks
            .iter()
            .filter(|t| t.failed() && t.since.as_str() >= began.as_str())
            .collect();
        if let Some(t) = recent
            .iter()
            .find(|t| t.state == "rejected")
            .or(if recent.len() >= 3 {
                recent.first()
            } else {
                None
            })
        {
            bar.finish();
            return Err(CliError::Precondition {
                what: format!("service {name} cannot start: task on {}", t.describe()),
                fix: fix_for_task_error(t.error.as_deref().unwrap_or(&t.message)),
            });
        }
        if start.elapsed() >= Duration::from_secs(seconds) {
            bar.finish();
            let state = tasks
                .iter()
                .filter(|t| t.desired == "running")
                .map(TaskInfo::describe)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(CliError::Timeout {
                what: format!(
                    "service {name} to run {replicas} task(s) (now: {})",
                    if state.is_empty() {
                        "no tasks".into()
                    } else {
                        state
                    }
                ),
                seconds,
            });
        }
        bar.set_message(format!(
            "waiting for {name} to run {replicas} task(s): {running} running ({} s)",
            start.elapsed().as_secs()
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Wait until no task of the service is running (after scaling to 0 or removing it).
pub async fn wait_stopped(c: &Cluster, name: &str, progress: &Progress) -> Result<(), CliError> {
    let seconds = c.timeouts.service_seconds;
    let start = Instant::now();
    let bar = progress.spinner(format!("waiting for the tasks of {name} to stop"));
    loop {
        let tasks = c.tasks(name).await?;
        let live: Vec<&TaskInfo> = tasks
            .iter()
            .filter(|t| {
                matches!(
                    t.state.as_str(),
                    "running" | "starting" | "preparing" | "assigned" | "accepted" | "ready"
                )
            })
            .collect();
        if live.is_empty() {
            bar.finish();
            return Ok(());
        }
        if start.elapsed() >= Duration::from_secs(seconds) {
            bar.finish();
            return Err(CliError::Timeout {
                what: format!(
                    "the tasks of {name} to stop (still: {})",
                    live.iter()
                        .map(|t| t.describe())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                seconds,
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
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

/// Now as RFC 3339 UTC, comparable as a string with Docker's task timestamps.
fn chrono_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Docker's timestamps carry nanoseconds; a second's precision (minus one for clock skew
    // between this host and the manager) is enough to tell this wait's tasks from older ones
    rfc3339(now.as_secs().saturating_sub(1))
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a Unix time (civil-from-days, Howard Hinnant's algorithm).
fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).expect("u64::MAX / 86_400 fits i64");
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::plan;

    #[test]
    fn fingerprints_ignore_replicas_and_the_label_but_not_the_image() {
        let cfg = Config::default();
        let spec = plan::nfsd_service(&cfg, &[]);
        let a = fingerprint(&spec);
        let mut stopped = spec.clone();
        stopped
            .mode
            .as_mut()
            .unwrap()
            .replicated
            .as_mut()
            .unwrap()
            .replicas = Some(0);
        stopped
            .labels
            .as_mut()
            .unwrap()
            .insert(SPEC_LABEL.into(), "old".into());
        assert_eq!(fingerprint(&stopped), a);
        let mut other = spec.clone();
        other
            .task_template
            .as_mut()
            .unwrap()
            .container_spec
            .as_mut()
            .unwrap()
            .image = Some("swarmhub/nfsd:0.2.0".into());
        assert_ne!(fingerprint(&other), a);
        // the same labels inserted in another order give the same fingerprint
        let mut reordered = spec.clone();
        let labels: Vec<(String, String)> = spec.labels.clone().unwrap().into_iter().collect();
        let mut fresh = HashMap::new();
        for (k, v) in labels.into_iter().rev() {
            fresh.insert(k, v);
        }
        for i in 0..50 {
            fresh.insert(format!("x{i}"), "y".into());
        }
        let mut with_extra = spec.clone();
        with_extra.labels = Some(fresh.clone());
        for i in 0..50 {
            fresh.remove(&format!("x{i}"));
        }
        reordered.labels = Some(fresh);
        assert_eq!(fingerprint(&reordered), a);
        assert_ne!(fingerprint(&with_extra), a);
    }

    #[test]
    fn resolving_fills_ids_and_names_what_is_missing() {
        let cfg = Config::default();
        let spec = plan::hub_service(&cfg, "swarmhub-hub-config-abc", None);
        let secrets: HashMap<String, String> = [plan::COOKIE_SECRET, plan::CRYPT_KEY_SECRET]
            .iter()
            .map(|n| (n.to_string(), format!("id-{n}")))
            .collect();
        let configs = HashMap::from([("swarmhub-hub-config-abc".to_string(), "cfg1".to_string())]);
        let r = resolved(&spec, Some(0), &secrets, &configs).unwrap();
        let cs = r.task_template.clone().unwrap().container_spec.unwrap();
        assert!(cs.secrets.unwrap().iter().all(|s| s.secret_id.as_deref()
            == Some(format!("id-{}", s.secret_name.as_deref().unwrap()).as_str())));
        assert_eq!(cs.configs.unwrap()[0].config_id.as_deref(), Some("cfg1"));
        assert_eq!(replicas_of(&r), Some(0));
        assert_eq!(r.labels.unwrap()[SPEC_LABEL], fingerprint(&spec));
        let e = resolved(&spec, None, &secrets, &HashMap::new()).unwrap_err();
        assert_eq!(e.code(), 7);
        assert!(e.to_string().contains("swarmhub-hub-config-abc"), "{e}");
    }

    #[test]
    fn timestamps_compare_with_dockers() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00");
        assert_eq!(rfc3339(1_795_698_000), "2026-11-26T13:00:00");
        // Docker's timestamps of that second and later sort after it, earlier ones before
        let t = rfc3339(1_795_698_000);
        assert!("2026-11-26T13:00:00.123456789Z" >= t.as_str());
        assert!("2026-11-26T13:00:00Z" >= t.as_str());
        assert!("2026-11-26T12:59:59.999Z" < t.as_str());
    }

    #[test]
    fn task_errors_come_with_a_fix() {
        assert!(fix_for_task_error("No such image: swarmhub/nfsd:0.1.0").contains("rebuild"));
        assert!(fix_for_task_error("invalid mount config for type \"bind\": bind source path does not exist: /srv/swarmhub").contains("nfsd_data_dir"));
        assert!(
            fix_for_task_error("VolumeDriver.Mount: nfsd at 10.0.0.1:8049 unreachable")
                .contains("doctor")
        );
    }
}
