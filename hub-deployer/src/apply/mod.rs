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
//!
//! Services are replicated (nfsd, the hub: scaled, stopped by scaling to 0) or global (the
//! Docker gate: one task on every node its constraints allow; it cannot be scaled, so it is
//! never stopped, only removed, and [`wait_running_on`] waits for its task on each node).

pub mod jobs;
pub mod secrets;

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use bollard::models::{
    ConfigSpec, NetworkCreateRequest, SecretSpec, Service, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, TaskState,
};

use crate::docker::cluster::{NodeInfo, Swarm, TaskInfo, fix_for_task_error};
use crate::docker::engine::{EngineError, absent};
use crate::exit::CliError;
use crate::names::{MANAGED_LABEL, SPEC_LABEL};
use crate::plan::{PlannedSecret, SecretSource};
use crate::plan::{fingerprint, replicas_of};
use crate::progress::Progress;
use crate::steps::{Change, Step};
use crate::wait::{self, Look};

/// Inspect the swarm's own record of a network (the manager's), not a node's local copy: after
/// a removal a node may keep its copy while containers detach, and a service cannot use it.
const SWARM_SCOPE: bool = true;

/// The attachable overlay network: created when missing. An existing network of that name
/// that is not an attachable swarm overlay is an error (it cannot carry the stack).
pub async fn ensure_network(c: &Swarm, net: &NetworkCreateRequest) -> Result<Step, CliError> {
    let name = net.name.as_str();
    let existing = absent(c.engine().inspect_network(name, SWARM_SCOPE).await)
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
    c.engine()
        .create_network(net.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot create network {name}: {}", e.message()))?;
    Ok(Step::new("network", name, Change::Created))
}

/// Create the missing secrets: generated ones from random bytes, given ones from the admin's
/// file or stdin. Existing secrets are kept whatever their value; one that must exist and
/// does not is an error naming the flag that provides it.
pub async fn ensure_secrets(
    c: &Swarm,
    planned: &[PlannedSecret],
    stdin: &mut dyn Read,
) -> Result<Vec<Step>, CliError> {
    let existing = c.secret_ids().await?;
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
        c.engine()
            .create_secret(spec)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create secret {}: {}", s.name, e.message()))?;
        steps.push(Step::new("secret", &s.name, Change::Created));
    }
    Ok(steps)
}

/// Create the config when no config of that (content-derived) name exists.
pub async fn ensure_config(c: &Swarm, spec: &ConfigSpec) -> Result<Step, CliError> {
    let name = spec.name.clone().unwrap_or_default();
    if c.config_ids().await?.contains_key(&name) {
        return Ok(Step::new("config", &name, Change::Unchanged));
    }
    c.engine()
        .create_config(spec.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot create config {name}: {}", e.message()))?;
    Ok(Step::new("config", &name, Change::Created))
}

/// Remove the secrets whose names start with `prefix`, except those in `keep`. A secret a task
/// still uses cannot be removed: it is reported as kept, for the next run.
pub async fn prune_secrets(c: &Swarm, prefix: &str, keep: &[&str]) -> Result<Vec<Step>, CliError> {
    let mut steps = Vec::new();
    for (name, id) in c.secret_ids().await? {
        if !name.starts_with(prefix) || keep.contains(&name.as_str()) {
            continue;
        }
        match c.engine().delete_secret(&id).await {
            Ok(()) => steps.push(Step::new("secret", &name, Change::Removed)),
            Err(e) => steps.push(
                Step::new("secret", &name, Change::Kept)
                    .note(format!("cannot remove yet: {}", e.message())),
            ),
        }
    }
    Ok(steps)
}

/// Remove swarmhub's configs with the given prefix that no service uses, except `keep`.
pub async fn prune_configs(
    c: &Swarm,
    prefix: &str,
    keep: Option<&str>,
) -> anyhow::Result<Vec<Step>> {
    let list = c
        .engine()
        .list_configs(Some(&format!("{MANAGED_LABEL}=true")))
        .await
        .context("cannot list configs")?;
    let mut steps = Vec::new();
    for cfg in list {
        let name = cfg.spec.and_then(|s| s.name).unwrap_or_default();
        if !name.starts_with(prefix) || Some(name.as_str()) == keep {
            continue;
        }
        let id = cfg.id.unwrap_or_default();
        match c.engine().delete_config(&id).await {
            Ok(()) => steps.push(Step::new("config", &name, Change::Removed)),
            // still referenced by a service (e.g. one being updated): leave it for next time
            Err(e) if e.message().contains("in use") => {}
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot remove config {name}: {}",
                    e.message()
                ));
            }
        }
    }
    Ok(steps)
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

/// Create the service, or update it when its spec changed; with `start`, also scale a stopped
/// one back to its planned replicas. A service that exists as planned is left alone (no
/// restart of a running nfsd or hub).
pub async fn ensure_service(c: &Swarm, spec: &ServiceSpec, start: bool) -> Result<Step, CliError> {
    let name = spec.name.clone().unwrap_or_default();
    let planned = replicas_of(spec);
    let secrets = c.secret_ids().await?;
    let configs = c.config_ids().await?;
    let Some(current) = c.service(&name).await? else {
        let replicas = if start { planned } else { Some(0) };
        let s = resolved(spec, replicas, &secrets, &configs)?;
        c.engine()
            .create_service(s, c.registry_login.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("cannot create service {name}: {}", e.message()))?;
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

async fn update(c: &Swarm, current: &Service, spec: ServiceSpec) -> anyhow::Result<()> {
    let name = spec.name.clone().unwrap_or_default();
    let version = current
        .version
        .as_ref()
        .and_then(|v| v.index)
        .unwrap_or_default();
    let version = i32::try_from(version).context("service version out of range")?;
    c.engine()
        .update_service(&name, spec, version, c.registry_login.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("cannot update service {name}: {}", e.message()))?;
    Ok(())
}

/// Create a one-shot job (a service in `global-job` or `replicated-job` mode) with its secret
/// and config names resolved.
pub async fn create_job(c: &Swarm, spec: &ServiceSpec) -> Result<Step, CliError> {
    let name = spec.name.clone().unwrap_or_default();
    let s = resolved(spec, None, &c.secret_ids().await?, &c.config_ids().await?)?;
    c.engine()
        .create_service(s, c.registry_login.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("cannot create job {name}: {}", e.message()))?;
    Ok(Step::new("job", &name, Change::Created))
}

/// Whether the service runs in global mode (one task per node its constraints allow; not a
/// job).
pub fn is_global(spec: &ServiceSpec) -> bool {
    spec.mode.as_ref().is_some_and(|m| m.global.is_some())
}

/// Scale a replicated service to `replicas` (0 stops it; its spec and data stay). A global
/// service cannot be scaled: that is an error naming it.
pub async fn scale(c: &Swarm, name: &str, replicas: i64) -> Result<Step, CliError> {
    let Some(current) = c.service(name).await? else {
        return Err(CliError::Precondition {
            what: format!("service {name} does not exist"),
            fix: "deploy it first: swarmhub run".into(),
        });
    };
    let mut spec = current.spec.clone().unwrap_or_default();
    if is_global(&spec) {
        return Err(anyhow::anyhow!(
            "service {name} runs in global mode (a task on every node it may run on): it cannot be scaled to {replicas}"
        )
        .into());
    }
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
pub async fn force_restart(c: &Swarm, name: &str) -> Result<Step, CliError> {
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
pub async fn remove_service(c: &Swarm, name: &str) -> Result<Step, CliError> {
    match absent(c.engine().delete_service(name).await) {
        Ok(Some(())) => Ok(Step::new("service", name, Change::Removed)),
        Ok(None) => Ok(Step::new("service", name, Change::Absent)),
        Err(e) => Err(anyhow::anyhow!("cannot remove service {name}: {}", e.message()).into()),
    }
}

/// Stop the services (replicas 0), wait until every task has stopped, then remove them.
/// Removing a running service at once drops its tasks from Swarm's record while their
/// containers still stop on the nodes, so nothing could wait for them: a notebook still
/// writing to its home when nfsd goes next would hang on its mount and could lose the write.
/// A global service (the Docker gate) cannot be scaled: it is removed running (it holds no
/// data; its tasks end after it). Services that do not exist count as absent.
pub async fn stop_then_remove(
    c: &Swarm,
    names: &[String],
    progress: &Progress,
) -> Result<Vec<Step>, CliError> {
    let mut global = Vec::new();
    for name in names {
        let Some(current) = c.service(name).await? else {
            continue;
        };
        let spec = current.spec.clone().unwrap_or_default();
        if is_global(&spec) {
            global.push(name);
        } else if replicas_of(&spec).is_some_and(|r| r > 0) {
            scale(c, name, 0).await?;
        }
    }
    for name in names.iter().filter(|n| !global.contains(n)) {
        wait_stopped(c, name, progress).await?;
    }
    let mut steps = Vec::new();
    for name in names {
        steps.push(remove_service(c, name).await?);
    }
    Ok(steps)
}

/// Remove the network once no container uses it any more (tasks of removed services take a
/// few seconds to go), within the service timeout.
pub async fn remove_network(c: &Swarm, name: &str, progress: &Progress) -> Result<Step, CliError> {
    let seconds = c.timeouts.service_seconds;
    let limit = Duration::from_secs(seconds);
    let bar = progress.spinner(format!(
        "removing network {name} (waiting for its containers to go)"
    ));
    let removal = wait::until(limit, Duration::from_millis(500), || async {
        Ok::<_, CliError>(match c.engine().remove_network(name).await {
            Ok(()) => Look::Done(Change::Removed),
            Err(EngineError::NotFound(_)) => Look::Done(Change::Absent),
            Err(e) => {
                tracing::debug!("network {name} not removable yet: {}", e.message());
                Look::NotYet(e)
            }
        })
    })
    .await?;
    let change = match removal {
        Ok(change) => change,
        Err(timed_out) => {
            bar.finish();
            return Err(CliError::Timeout {
                what: format!(
                    "network {name} to be free ({}); containers outside swarmhub may use it: docker network inspect {name}",
                    timed_out.last.message()
                ),
                seconds,
            });
        }
    };
    if change == Change::Removed {
        // a swarm network disappears asynchronously: wait until this node's copy is gone too
        // (with a budget of its own), so that a `run` right after (`rerun`, `demo up` after
        // `down`) creates it again instead of finding the copy
        let gone = wait::until(limit, Duration::from_millis(200), || async {
            let gone = absent(c.engine().inspect_network(name, SWARM_SCOPE).await)
                .is_ok_and(|n| n.is_none());
            Ok::<_, CliError>(if gone {
                Look::Done(())
            } else {
                Look::NotYet(())
            })
        })
        .await?;
        if gone.is_err() {
            bar.finish();
            return Err(CliError::Timeout {
                what: format!(
                    "network {name} to disappear after its removal (this node still lists it): docker network inspect {name}"
                ),
                seconds,
            });
        }
    }
    bar.finish();
    Ok(Step::new("network", name, change))
}

/// Wait until `replicas` tasks of the service run and no update is in progress. Fails fast,
/// with the task's error, when Swarm rejects a task (no such image, a volume that cannot be
/// mounted, a bad mount source) or three tasks fail; otherwise fails after the service
/// timeout saying what the tasks are doing (e.g. no node satisfies the constraints).
pub async fn wait_running(
    c: &Swarm,
    name: &str,
    replicas: u64,
    progress: &Progress,
) -> Result<(), CliError> {
    let want = format!("{replicas} task(s)");
    wait_tasks(c, name, &want, progress, |running| {
        u64::try_from(running.len()).unwrap_or(u64::MAX) == replicas
    })
    .await
}

/// Wait until a task of the (global) service runs on each node of `nodes` (by id) and no
/// update is in progress; fails as [`wait_running`] does, the timeout naming the nodes
/// without one. `nodes` empty: nothing to wait for.
pub async fn wait_running_on(
    c: &Swarm,
    name: &str,
    nodes: &[NodeInfo],
    progress: &Progress,
) -> Result<(), CliError> {
    let hosts: Vec<&str> = nodes.iter().map(|n| n.hostname.as_str()).collect();
    let want = format!("a task on each of {}", hosts.join(", "));
    wait_tasks(c, name, &want, progress, |running| {
        nodes
            .iter()
            .all(|n| running.iter().any(|t| t.node_id == n.id))
    })
    .await
}

/// The wait of [`wait_running`] and [`wait_running_on`]: until `done` holds for the tasks that
/// run (and are meant to) and no update is in progress; `want` says what it waits for.
async fn wait_tasks(
    c: &Swarm,
    name: &str,
    want: &str,
    progress: &Progress,
    done: impl Fn(&[&TaskInfo]) -> bool,
) -> Result<(), CliError> {
    let seconds = c.timeouts.service_seconds;
    let began = chrono_now();
    let start = std::time::Instant::now();
    let bar = progress.spinner(format!("waiting for {name} to run {want}"));
    let waited =
        wait::until(
            Duration::from_secs(seconds),
            Duration::from_millis(500),
            || async {
                let tasks = c.tasks(name).await?;
                let running: Vec<&TaskInfo> = tasks
                    .iter()
                    .filter(|t| t.desired.is_running() && t.state.is_running())
                    .collect();
                let updating = c
                    .service(name)
                    .await?
                    .and_then(|s| s.update_status)
                    .and_then(|u| u.state)
                    .is_some_and(|s| s.to_string() == "updating");
                if done(&running) && !updating {
                    return Ok(Look::Done(()));
                }
                // tasks that ended badly since this wait began
                let recent: Vec<&TaskInfo> = tasks
                    .iter()
                    .filter(|t| t.failed() && t.since.as_str() >= began.as_str())
                    .collect();
                if let Some(t) = recent.iter().find(|t| t.state.is(TaskState::REJECTED)).or(
                    if recent.len() >= 3 {
                        recent.first()
                    } else {
                        None
                    },
                ) {
                    return Err(CliError::Precondition {
                        what: format!("service {name} cannot start: task on {}", t.describe()),
                        fix: fix_for_task_error(t.error.as_deref().unwrap_or(&t.message)),
                    });
                }
                bar.set_message(format!(
                    "waiting for {name} to run {want}: {} running ({} s)",
                    running.len(),
                    start.elapsed().as_secs()
                ));
                Ok(Look::NotYet(tasks))
            },
        )
        .await;
    bar.finish();
    let Err(timed_out) = waited? else {
        return Ok(());
    };
    let state = timed_out
        .last
        .iter()
        .filter(|t| t.desired.is_running())
        .map(TaskInfo::describe)
        .collect::<Vec<_>>()
        .join("; ");
    Err(CliError::Timeout {
        what: format!(
            "service {name} to run {want} (now: {})",
            if state.is_empty() {
                "no tasks".into()
            } else {
                state
            }
        ),
        seconds,
    })
}

/// Wait until no task of the service is running (after scaling to 0 or removing it).
pub async fn wait_stopped(c: &Swarm, name: &str, progress: &Progress) -> Result<(), CliError> {
    let seconds = c.timeouts.service_seconds;
    let bar = progress.spinner(format!("waiting for the tasks of {name} to stop"));
    let waited = wait::until(
        Duration::from_secs(seconds),
        Duration::from_millis(300),
        || async {
            let live: Vec<TaskInfo> = c
                .tasks(name)
                .await?
                .into_iter()
                .filter(|t| t.state.is_live())
                .collect();
            Ok::<_, CliError>(if live.is_empty() {
                Look::Done(())
            } else {
                Look::NotYet(live)
            })
        },
    )
    .await;
    bar.finish();
    let Err(timed_out) = waited? else {
        return Ok(());
    };
    Err(CliError::Timeout {
        what: format!(
            "the tasks of {name} to stop (still: {})",
            timed_out
                .last
                .iter()
                .map(TaskInfo::describe)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        seconds,
    })
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
pub(crate) mod tests {
    use super::*;
    use crate::docker::fake::Fake;
    use crate::plan;
    use crate::settings::Config;

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
        let secrets: HashMap<String, String> =
            [crate::names::COOKIE_SECRET, crate::names::CRYPT_KEY_SECRET]
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

    /// A one-node swarm in memory, reached like dockerd.
    pub(crate) fn fake_swarm() -> crate::docker::cluster::Cluster<Fake> {
        crate::docker::cluster::Cluster::new(
            "fake",
            &crate::settings::TimeoutsConfig::default(),
            Fake::one_node(&[("swarmhub.storage", "true")]),
        )
    }

    /// What `run` of the hub applies: network, generated secrets, config, the Docker gate, the
    /// hub's service.
    pub(crate) async fn apply_hub(c: &Swarm, p: &plan::Plan) -> Vec<Step> {
        let generated: Vec<PlannedSecret> = p
            .secrets
            .iter()
            .filter(|s| matches!(s.source, SecretSource::Generated { .. }))
            .cloned()
            .collect();
        let mut steps = vec![ensure_network(c, &p.network).await.unwrap()];
        steps.extend(
            ensure_secrets(c, &generated, &mut std::io::empty())
                .await
                .unwrap(),
        );
        steps.push(ensure_config(c, &p.hub_config).await.unwrap());
        steps.push(ensure_service(c, &p.docker_gate, true).await.unwrap());
        steps.push(ensure_service(c, &p.hub, true).await.unwrap());
        steps
    }

    fn hub_plan() -> (Config, plan::Plan) {
        let cfg = Config::default();
        let p = plan::plan(&cfg, &plan::PlanInputs::default()).unwrap();
        (cfg, p)
    }

    /// The hub applied to the in-memory swarm, its calls forgotten.
    async fn hub_deployed() -> (Config, plan::Plan, crate::docker::cluster::Cluster<Fake>) {
        let (cfg, p) = hub_plan();
        let c = fake_swarm();
        apply_hub(&c, &p).await;
        c.engine().clear_calls();
        (cfg, p, c)
    }

    #[tokio::test]
    async fn what_is_missing_is_created() {
        let (cfg, p) = hub_plan();
        let c = fake_swarm();
        let steps = apply_hub(&c, &p).await;
        assert!(
            steps.iter().all(|s| s.change == Change::Created),
            "{steps:?}"
        );
        let changes = c.engine().changes();
        assert_eq!(
            changes.first().unwrap(),
            &format!("create_network {}", cfg.cluster.network)
        );
        assert!(
            changes.iter().any(|c| c.starts_with("create_secret ")),
            "{changes:?}"
        );
        assert!(
            changes.iter().any(|c| c.starts_with("create_config ")),
            "{changes:?}"
        );
        assert_eq!(
            changes.last().unwrap(),
            &format!("create_service {}", cfg.cluster.hub_service)
        );
        wait_running(&c, &cfg.cluster.hub_service, 1, &Progress::quiet())
            .await
            .unwrap();
    }

    /// The managers of the swarm as [`Swarm::nodes`] reports them.
    async fn managers(c: &Swarm) -> Vec<NodeInfo> {
        let nodes = c.nodes().await.unwrap();
        nodes.into_iter().filter(NodeInfo::usable_manager).collect()
    }

    #[tokio::test]
    async fn the_gate_runs_on_every_manager_before_the_hub_and_is_removed_not_stopped() {
        let (cfg, p) = hub_plan();
        let c = fake_swarm();
        c.engine().add_node("node-beta", "beta", true, "10.0.0.2");
        c.engine()
            .add_node("node-gamma", "gamma", false, "10.0.0.3");
        apply_hub(&c, &p).await;
        let gate = crate::names::docker_gate_service(&cfg.cluster.hub_service);
        let hub = &cfg.cluster.hub_service;
        let changes = c.engine().changes();
        let at = |call: String| {
            changes
                .iter()
                .position(|c| *c == call)
                .unwrap_or_else(|| panic!("no {call} in {changes:?}"))
        };
        assert!(at(format!("create_service {gate}")) < at(format!("create_service {hub}")));
        let managers = managers(&c).await;
        assert_eq!(managers.len(), 2);
        wait_running_on(&c, &gate, &managers, &Progress::quiet())
            .await
            .unwrap();
        let mut on: Vec<String> = c
            .tasks(&gate)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.state.is_running())
            .map(|t| t.node)
            .collect();
        on.sort();
        assert_eq!(
            on,
            ["alpha", "beta"],
            "one task per manager, none on the worker"
        );
        // global: as planned, it is left alone; it cannot be scaled
        let step = ensure_service(&c, &p.docker_gate, true).await.unwrap();
        assert_eq!(step.change, Change::Unchanged);
        let e = scale(&c, &gate, 0).await.unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("service {gate} runs in global mode")),
            "{e}"
        );
        // removing it does not try to scale it or wait for a stop that cannot come
        c.engine().clear_calls();
        let steps = stop_then_remove(&c, std::slice::from_ref(&gate), &Progress::quiet())
            .await
            .unwrap();
        assert_eq!(steps, vec![Step::new("service", &gate, Change::Removed)]);
        assert_eq!(c.engine().changes(), [format!("delete_service {gate}")]);
    }

    #[tokio::test]
    async fn a_manager_without_a_gate_task_ends_the_wait_naming_it() {
        let (cfg, p) = hub_plan();
        let mut c = fake_swarm();
        apply_hub(&c, &p).await;
        // joined after the gate was placed: no task there
        c.engine().add_node("node-beta", "beta", true, "10.0.0.2");
        c.timeouts.service_seconds = 0;
        let gate = crate::names::docker_gate_service(&cfg.cluster.hub_service);
        let e = wait_running_on(&c, &gate, &managers(&c).await, &Progress::quiet())
            .await
            .unwrap_err();
        let CliError::Timeout { what, .. } = &e else {
            panic!("not a timeout: {e}");
        };
        assert!(
            what.starts_with(&format!(
                "service {gate} to run a task on each of alpha, beta (now: alpha: running"
            )),
            "{what}"
        );
    }

    #[tokio::test]
    async fn a_rejected_task_ends_the_wait_at_once_with_its_fix() {
        let (cfg, _, c) = hub_deployed().await;
        let hub = &cfg.cluster.hub_service;
        c.engine().reject(hub, "No such image: swarmhub/hub:0.1.0");
        let e = wait_running(&c, hub, 1, &Progress::quiet())
            .await
            .unwrap_err();
        assert_eq!(e.code(), 7, "{e}");
        let text = e.to_string();
        assert!(text.contains("alpha: rejected (No such image"), "{text}");
        assert!(text.contains("rebuild"), "{text}");
    }

    #[tokio::test]
    async fn a_second_run_changes_nothing() {
        let (_, p, c) = hub_deployed().await;
        let steps = apply_hub(&c, &p).await;
        assert!(
            steps.iter().all(|s| s.change == Change::Unchanged),
            "{steps:?}"
        );
        assert_eq!(c.engine().changes(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_changed_image_updates_the_service() {
        let (cfg, p, c) = hub_deployed().await;
        let mut spec = p.hub.clone();
        let image = "swarmhub/hub:9.9.9";
        spec.task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
            .unwrap()
            .image = Some(image.into());
        let step = ensure_service(&c, &spec, false).await.unwrap();
        assert_eq!(step.change, Change::Updated);
        let hub = &cfg.cluster.hub_service;
        assert_eq!(
            c.engine().changes(),
            vec![format!("update_service {hub} replicas=1")]
        );
        let now = c.engine().service_spec(hub).unwrap();
        assert_eq!(
            now.task_template
                .unwrap()
                .container_spec
                .unwrap()
                .image
                .as_deref(),
            Some(image)
        );
    }

    #[tokio::test]
    async fn stop_then_remove_scales_to_zero_and_waits_before_deleting() {
        let (cfg, _, c) = hub_deployed().await;
        let hub = cfg.cluster.hub_service.clone();
        let steps = stop_then_remove(&c, std::slice::from_ref(&hub), &Progress::quiet())
            .await
            .unwrap();
        assert_eq!(steps, vec![Step::new("service", &hub, Change::Removed)]);
        let calls = c.engine().calls();
        let at = |call: &str| {
            calls
                .iter()
                .position(|c| c == call)
                .unwrap_or_else(|| panic!("no {call} in {calls:?}"))
        };
        let scaled = at(&format!("update_service {hub} replicas=0"));
        let deleted = at(&format!("delete_service {hub}"));
        let waited = calls[scaled..deleted]
            .iter()
            .any(|c| *c == format!("list_tasks {hub}"));
        assert!(scaled < deleted && waited, "{calls:?}");
        // absent services are absent, not errors
        let again = stop_then_remove(&c, std::slice::from_ref(&hub), &Progress::quiet())
            .await
            .unwrap();
        assert_eq!(again, vec![Step::new("service", &hub, Change::Absent)]);
    }

    #[tokio::test]
    async fn remove_network_removes_it_once_and_then_finds_it_absent() {
        let (cfg, p) = hub_plan();
        let c = fake_swarm();
        let net = &cfg.cluster.network;
        ensure_network(&c, &p.network).await.unwrap();
        let step = remove_network(&c, net, &Progress::quiet()).await.unwrap();
        assert_eq!(step.change, Change::Removed);
        assert!(!c.engine().has_network(net));
        let calls = c.engine().calls();
        let removed = calls
            .iter()
            .position(|c| *c == format!("remove_network {net}"));
        let checked = calls
            .iter()
            .rposition(|c| *c == format!("inspect_network {net}"));
        assert!(removed < checked, "waited for it to be gone: {calls:?}");
        let step = remove_network(&c, net, &Progress::quiet()).await.unwrap();
        assert_eq!(step.change, Change::Absent);
    }

    #[tokio::test]
    async fn a_network_in_use_is_removed_once_its_service_is_stopped_and_removed() {
        let (cfg, _, mut c) = hub_deployed().await;
        c.engine().keep_networks_in_use();
        // short enough for one refusal and one retry (the retry comes after 500 ms)
        c.timeouts.service_seconds = 1;
        let (hub, net) = (cfg.cluster.hub_service.clone(), &cfg.cluster.network);
        // the removal is refused while the hub is attached, and retried meanwhile
        let quiet = Progress::quiet();
        let (removed, stopped) = tokio::join!(
            remove_network(&c, net, &quiet),
            stop_then_remove(&c, std::slice::from_ref(&hub), &quiet),
        );
        assert_eq!(
            stopped.unwrap(),
            vec![Step::new("service", &hub, Change::Removed)]
        );
        assert_eq!(removed.unwrap().change, Change::Removed);
        assert!(!c.engine().has_network(net));
        let changes = c.engine().changes();
        assert_eq!(
            changes,
            vec![
                format!("remove_network {net}"),
                format!("update_service {hub} replicas=0"),
                format!("delete_service {hub}"),
                format!("remove_network {net}"),
            ]
        );
    }

    #[tokio::test]
    async fn a_network_that_stays_in_use_ends_in_a_timeout_naming_it() {
        let (cfg, _, mut c) = hub_deployed().await;
        c.engine().keep_networks_in_use();
        c.timeouts.service_seconds = 0;
        let net = &cfg.cluster.network;
        let e = remove_network(&c, net, &Progress::quiet())
            .await
            .unwrap_err();
        let CliError::Timeout { what, seconds } = &e else {
            panic!("not a timeout: {e}");
        };
        assert_eq!(*seconds, 0);
        assert!(
            what.starts_with(&format!("network {net} to be free")),
            "{what}"
        );
        assert!(what.contains("in use by service"), "{what}");
        assert_eq!(e.code(), 5);
        assert!(c.engine().has_network(net));
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
