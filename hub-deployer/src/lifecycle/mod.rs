//! The lifecycle commands over the apply layer: what `run`, `start`, `stop`, `remove`,
//! `restart` and `rerun` do for the whole stack, for nfsd alone (`nfs ...`) and for the hub
//! alone (`hub ...`). Each returns the steps it took; each is safe to re-run.
//!
//! The hub's Docker gate (global on the managers; the hub's only way to Docker) belongs to the
//! hub: `run` deploys it before the hub and waits for its task on every manager, `restart`
//! replaces its tasks too, `start` of the hub waits for it; `stop` leaves it running (it holds
//! no data and forwards only the hub's calls), `remove` of the hub or the stack removes it.
//!
//! What none of them touches: nfsd's data directory (every user's files), volumes (the hub's
//! database), and secrets (`remove` keeps them, so a later `run` finds the same cookie secret,
//! crypt key and nfsd token). Deleting user data is `swarmhub volume delete`, nowhere here.

pub mod images;
pub mod notebooks;
pub mod plugin;
pub mod prepare;
pub mod registry;
pub mod volume;

use std::io::Read;
use std::time::Duration;

use anyhow::Context;

use crate::apply;
use crate::docker::cluster::{NodeInfo, Swarm, storage_node_in};
use crate::exit::CliError;
use crate::inspect::doctor;
use crate::names;
use crate::plan::{self, Plan, PlanInputs};
use crate::progress::Progress;
use crate::settings::Config;
use crate::settings::tls;
use crate::steps::{Change, Step};
use crate::wait::{self, Look};

/// Which part of the stack a command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// nfsd, the plugin and the hub.
    All,
    /// swarmhub-nfsd only.
    Nfs,
    /// The hub only.
    Hub,
}

/// Everything a lifecycle command works with.
pub struct Ctx<'a> {
    /// The manager's dockerd (a `&Cluster` coerces to it).
    pub cluster: &'a Swarm,
    /// The settings.
    pub cfg: &'a Config,
    /// Values given on the command line (the LDAP password file).
    pub inputs: PlanInputs,
    /// Where spinners and notes go.
    pub progress: Progress,
}

impl Ctx<'_> {
    fn plan(&self) -> Result<Plan, CliError> {
        Ok(plan::plan(self.cfg, &self.inputs)?)
    }

    /// The plan of `inputs` with nfsd's allowed clients taken from `nodes` (every node of the swarm, down
    /// ones included, so a node that is briefly away does not restart nfsd twice).
    fn plan_with(&self, nodes: &[NodeInfo], mut inputs: PlanInputs) -> Result<Plan, CliError> {
        inputs.node_addrs = nodes.iter().map(|n| n.addr.clone()).collect();
        Ok(plan::plan(self.cfg, &inputs)?)
    }
}

/// `run`: create what is missing and start everything of `part`, in dependency order
/// (network and secrets, nfsd, the plugin on every node, the hub's config, its Docker gate
/// and the hub).
pub async fn run(ctx: &Ctx<'_>, part: Part, stdin: &mut dyn Read) -> Result<Vec<Step>, CliError> {
    deploy(ctx, part, true, stdin).await
}

/// What `run` does, with or without the plugin's rollout.
async fn deploy(
    ctx: &Ctx<'_>,
    part: Part,
    with_plugin: bool,
    stdin: &mut dyn Read,
) -> Result<Vec<Step>, CliError> {
    let c = ctx.cluster;
    // nfsd accepts NFS clients from the nodes' addresses only: a joined node changes its spec
    let nodes = c.nodes().await?;
    // what the admin must provide is checked before anything is created
    if part != Part::Hub {
        storage_node_in(&nodes, &ctx.cfg.cluster.storage_node_label)?;
    }
    // the hub's certificate: checked (or made for the public host and the nodes' addresses)
    // before anything is created in the swarm, so a bad file changes nothing there
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let tls = match part {
        Part::Nfs => None,
        _ => tls::prepare(ctx.cfg, &addrs, time::OffsetDateTime::now_utc())?,
    };
    let mut inputs = ctx.inputs.clone();
    inputs.tls = tls.as_ref().map(tls::Prepared::files);
    let p = ctx.plan_with(&nodes, inputs)?;
    let mut steps = vec![apply::ensure_network(c, &p.network).await?];
    if let Some(made) = tls.as_ref().and_then(|t| t.made.as_ref()) {
        steps.extend(certificate_steps(made));
    }
    steps.extend(apply::ensure_secrets(c, &p.secrets, stdin).await?);
    if part != Part::Hub {
        steps.extend(run_nfsd(ctx, &p).await?);
    }
    if part == Part::All && with_plugin {
        steps.extend(ensure_plugin(ctx).await?);
    }
    if part != Part::Nfs {
        steps.extend(run_hub(ctx, &p).await?);
    }
    Ok(steps)
}

async fn run_nfsd(ctx: &Ctx<'_>, p: &Plan) -> Result<Vec<Step>, CliError> {
    let c = ctx.cluster;
    let mut steps = Vec::new();
    let storage = c.storage_node(&ctx.cfg.cluster.storage_node_label).await?;
    // on a one-node swarm (or when run on the storage node) the data directory can be made
    // here; elsewhere Docker reports a missing bind source, which wait_running turns into a fix
    if storage.id == c.self_node_id().await? {
        let dir = std::path::Path::new(&ctx.cfg.cluster.nfsd_data_dir);
        if !dir.exists() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("cannot create nfsd's data directory {}", dir.display())
            })?;
            steps.push(Step::new(
                "directory",
                &dir.display().to_string(),
                Change::Created,
            ));
        }
    }
    steps.push(apply::ensure_service(c, &p.nfsd, true).await?);
    apply::wait_running(c, &ctx.cfg.cluster.nfsd_service, 1, &ctx.progress).await?;
    steps.extend(ensure_course_dir(ctx).await?);
    Ok(steps)
}

/// The nbgrader course directory in the exchange, owned by `hub.course_owner` (the exchange's
/// root belongs to nfsd, so nobody else can make it, and no student can squat it first). Asked
/// of nfsd through the token-holding one-shot job; re-running changes nothing.
async fn ensure_course_dir(ctx: &Ctx<'_>) -> Result<Option<Step>, CliError> {
    let h = &ctx.cfg.hub;
    let what = format!("{}/{}", h.exchange_share, h.course_id);
    let Some(owner) = &h.course_owner else {
        return Ok(Some(Step::new("course directory", &what, Change::Unchanged).note(
            "not made: set hub.course_owner to the instructor's LDAP user name and run again (nbgrader cannot release assignments without it)",
        )));
    };
    let action = volume::ApiAction::ShareDir {
        share: h.exchange_share.clone(),
        name: h.course_id.clone(),
        user: owner.clone(),
        mode: 0o755,
    };
    match volume::call(ctx.cluster, ctx.cfg, &action, &ctx.progress).await? {
        volume::ApiResult::ShareDir { dir } => {
            let change = if dir.created {
                Change::Created
            } else {
                Change::Unchanged
            };
            Ok(Some(
                Step::new("course directory", &what, change)
                    .note(format!("owned by {owner} (uid {})", dir.uid)),
            ))
        }
        other => Err(anyhow::anyhow!("nfsd answered {other:?} to making {what}").into()),
    }
}

async fn run_hub(ctx: &Ctx<'_>, p: &Plan) -> Result<Vec<Step>, CliError> {
    let c = ctx.cluster;
    let mut steps = vec![apply::ensure_config(c, &p.hub_config).await?];
    // the hub's only way to Docker runs before the hub
    steps.push(apply::ensure_service(c, &p.docker_gate, true).await?);
    wait_gate(ctx).await?;
    steps.push(apply::ensure_service(c, &p.hub, true).await?);
    apply::wait_running(c, &ctx.cfg.cluster.hub_service, 1, &ctx.progress).await?;
    steps.extend(wait_hub_answers(ctx).await);
    steps.extend(
        apply::prune_configs(c, names::HUB_CONFIG_PREFIX, p.hub_config.name.as_deref()).await?,
    );
    // certificates this hub served before (a changed file is a new secret)
    let prefix = names::hub_tls_secret_prefix(&ctx.cfg.cluster.hub_service);
    let keep: Vec<&str> = p
        .secrets
        .iter()
        .filter(|s| s.name.starts_with(&prefix))
        .map(|s| s.name.as_str())
        .collect();
    steps.extend(apply::prune_secrets(c, &prefix, &keep).await?);
    Ok(steps)
}

/// The hub's Docker gate service (`<hub_service>-docker-gate`).
fn gate_name(cfg: &Config) -> String {
    names::docker_gate_service(&cfg.cluster.hub_service)
}

/// Wait until the Docker gate runs a task on every usable manager (wherever the hub may be
/// placed); fails fast with a rejected task's error, as for the other services.
async fn wait_gate(ctx: &Ctx<'_>) -> Result<(), CliError> {
    let managers: Vec<NodeInfo> = ctx
        .cluster
        .nodes()
        .await?
        .into_iter()
        .filter(NodeInfo::usable_manager)
        .collect();
    apply::wait_running_on(ctx.cluster, &gate_name(ctx.cfg), &managers, &ctx.progress).await
}

/// One step per file of the self-signed set: made (with the reason) or kept.
fn certificate_steps(made: &tls::SelfSigned) -> Vec<Step> {
    made.changes
        .iter()
        .map(|m| {
            let change = if m.made {
                Change::Created
            } else {
                Change::Unchanged
            };
            Step::new("certificate", &m.path.display().to_string(), change).note(m.why.clone())
        })
        .collect()
}

/// A running hub task is not yet a hub that answers (JupyterHub needs a few seconds to start):
/// wait until its API answers, up to a minute. When it does not, say so as a note (the CLI host
/// may simply not reach the hub's node) rather than failing the command.
async fn wait_hub_answers(ctx: &Ctx<'_>) -> Option<Step> {
    let limit = Duration::from_secs(ctx.cfg.timeouts.service_seconds.min(60));
    let svc = &ctx.cfg.cluster.hub_service;
    let bar = ctx.progress.spinner(format!("waiting for {svc} to answer"));
    let waited = wait::until_done(limit, Duration::from_millis(500), || async {
        let check = doctor::hub_check(ctx.cluster, ctx.cfg).await;
        if check.outcome == doctor::Outcome::Ok {
            Look::Done(())
        } else {
            Look::NotYet(check)
        }
    })
    .await;
    let timed_out = waited.err()?;
    bar.finish();
    Some(Step::new("service", svc, Change::Unchanged).note(format!(
        "running, but not answering after {} s: {}; see swarmhub doctor",
        limit.as_secs(),
        timed_out.last.detail
    )))
}

/// Roll the plugin out when a usable node lacks it (enabled, with a version recorded by a
/// rollout) or got it with other settings than those in effect (e.g. nfsd's port changed in
/// swarmhub.toml); otherwise report it unchanged. A node whose notebooks have volumes mounted
/// refuses a change of settings, and the command fails with that fix.
pub async fn ensure_plugin(ctx: &Ctx<'_>) -> Result<Vec<Step>, CliError> {
    let nodes = ctx.cluster.nodes().await?;
    let usable: Vec<_> = nodes.iter().filter(|n| n.usable()).collect();
    let storage = storage_node_in(&nodes, &ctx.cfg.cluster.storage_node_label)?;
    let wanted = plan::plugin_settings_fingerprint(ctx.cfg, &storage.addr);
    let behind = usable
        .iter()
        .filter(|n| plugin_needs_rollout(n, &wanted))
        .count();
    if behind == 0 {
        return Ok(vec![
            Step::new("plugin", names::PLUGIN_ALIAS, Change::Unchanged).note(format!(
                "enabled on {} of {} node(s)",
                usable.len(),
                usable.len()
            )),
        ]);
    }
    rollout(ctx, false).await
}

/// A node needs the plugin rolled out: it lacks it, no rollout recorded a version, or the
/// recorded settings are not `wanted` (a rollout before the settings were recorded counts too).
fn plugin_needs_rollout(n: &NodeInfo, wanted: &str) -> bool {
    !n.plugin_enabled || n.plugin_version.is_none() || n.plugin_settings.as_deref() != Some(wanted)
}

/// `plugin rollout [--drain]`: install or upgrade the plugin on every node. A node whose
/// notebooks have swarmhub volumes mounted refuses to replace its plugin; with `drain`, exactly
/// the notebooks running on those nodes are stopped (their files stay) and the rollout runs
/// again, so every node ends on the new plugin.
pub async fn rollout(ctx: &Ctx<'_>, drain: bool) -> Result<Vec<Step>, CliError> {
    let outcomes = plugin::rollout(ctx.cluster, ctx.cfg, Duration::ZERO, &ctx.progress).await?;
    let busy: Vec<String> = outcomes
        .iter()
        .filter(|o| o.error.as_deref().is_some_and(plugin::refused_in_use))
        .map(|o| o.node.clone())
        .collect();
    if !drain || busy.is_empty() {
        let (steps, err) = plugin::outcome_steps(&outcomes);
        return match err {
            Some(e) => Err(e),
            None => Ok(steps),
        };
    }
    let mut steps = drain_notebooks(ctx, &busy).await?;
    // the drained containers let go of their volumes on their nodes shortly after their tasks end
    let outcomes = plugin::rollout(ctx.cluster, ctx.cfg, DRAIN_VOLUME_WAIT, &ctx.progress).await?;
    let (more, err) = plugin::outcome_steps(&outcomes);
    steps.extend(more);
    match err {
        Some(e) => Err(e),
        None => Ok(steps),
    }
}

/// How long a node waits, after a drain, for the drained containers to let go of their volumes.
const DRAIN_VOLUME_WAIT: Duration = Duration::from_secs(60);

/// Stop and remove the notebook services with a task on one of the nodes `hostnames`; JupyterHub
/// sees their servers stopped, and each user's next start gets a new one (files stay).
async fn drain_notebooks(ctx: &Ctx<'_>, hostnames: &[String]) -> Result<Vec<Step>, CliError> {
    let c = ctx.cluster;
    let mut on_nodes = Vec::new();
    for name in notebook_services(c).await? {
        let tasks = c.tasks(&name).await?;
        if tasks.iter().any(|t| {
            !t.desired.is(bollard::models::TaskState::SHUTDOWN) && hostnames.contains(&t.node)
        }) {
            on_nodes.push(name);
        }
    }
    let steps = apply::stop_then_remove(c, &on_nodes, &ctx.progress).await?;
    Ok(steps
        .into_iter()
        .map(|s| {
            s.note(format!(
                "a notebook on {}, drained for the plugin's upgrade; its files stay, the user's next start gets the new version",
                hostnames.join(", ")
            ))
        })
        .collect())
}

/// `rebuild`'s deploy: nfsd and the hub brought to the images in effect (`restart`), then the
/// plugin rolled out (see [`rollout`]). Running notebooks keep their mounts through nfsd's
/// restart; a node they keep from a new plugin is left for later, unless `drain`.
pub async fn upgrade(
    ctx: &Ctx<'_>,
    drain: bool,
    stdin: &mut dyn Read,
) -> Result<Vec<Step>, CliError> {
    let mut steps = replace(ctx, Part::All, stdin).await?;
    match rollout(ctx, drain).await {
        Ok(more) => steps.extend(more),
        Err(CliError::Precondition { what, fix }) => {
            return Err(CliError::Precondition {
                what: format!("nfsd and the hub are upgraded, but {what}"),
                fix: format!(
                    "{fix}; or `swarmhub plugin rollout --drain`, which stops exactly the notebooks in the way (their files stay)"
                ),
            });
        }
        Err(e) => return Err(e),
    }
    Ok(steps)
}

fn services(cfg: &Config, part: Part) -> Vec<&str> {
    let c = &cfg.cluster;
    match part {
        Part::All => vec![c.nfsd_service.as_str(), c.hub_service.as_str()],
        Part::Nfs => vec![c.nfsd_service.as_str()],
        Part::Hub => vec![c.hub_service.as_str()],
    }
}

/// `start`: scale the deployed services back to one task each, nfsd first. The hub starts once
/// its Docker gate runs on every manager (`stop` leaves the gate running); without the gate
/// (a deployment from before it) the hub is not started: `run` deploys both.
pub async fn start(ctx: &Ctx<'_>, part: Part) -> Result<Vec<Step>, CliError> {
    let mut steps = Vec::new();
    for name in services(ctx.cfg, part) {
        if name == ctx.cfg.cluster.hub_service {
            let gate = gate_name(ctx.cfg);
            if ctx.cluster.service(&gate).await?.is_none() {
                return Err(CliError::Precondition {
                    what: format!(
                        "service {gate} does not exist: the hub reaches Docker only through it"
                    ),
                    fix: "run `swarmhub run` (it deploys the gate and the hub without dockerd's socket)".into(),
                });
            }
            wait_gate(ctx).await?;
        }
        steps.push(apply::scale(ctx.cluster, name, 1).await?);
        apply::wait_running(ctx.cluster, name, 1, &ctx.progress).await?;
    }
    if part != Part::Nfs {
        steps.extend(wait_hub_answers(ctx).await);
    }
    Ok(steps)
}

/// The services SwarmSpawner made for notebooks (label `swarmhub.component=notebook`), sorted.
pub async fn notebook_services(c: &Swarm) -> Result<Vec<String>, CliError> {
    let mut found: Vec<String> = c
        .all_services()
        .await?
        .into_iter()
        .filter_map(|s| s.spec)
        .filter(|spec| {
            spec.labels
                .as_ref()
                .and_then(|l| l.get(names::COMPONENT_LABEL))
                .is_some_and(|v| v == names::NOTEBOOK_COMPONENT)
        })
        .filter_map(|spec| spec.name)
        .collect();
    found.sort();
    Ok(found)
}

/// Before the whole stack is removed: stop and remove the notebooks. With the hub gone nothing
/// would ever stop them, and with nfsd gone their homes would hang on their mounts. Their files
/// stay; a user's next login after `run` starts a new one. (`stop` and a removal of nfsd or
/// the hub alone leave them running: their mounts wait for nfsd and go on when it is back.)
async fn notebooks_down(ctx: &Ctx<'_>, part: Part) -> Result<Vec<Step>, CliError> {
    if part != Part::All {
        return Ok(Vec::new());
    }
    let found = notebook_services(ctx.cluster).await?;
    let steps = apply::stop_then_remove(ctx.cluster, &found, &ctx.progress).await?;
    Ok(steps
        .into_iter()
        .map(|s| s.note("a notebook; its files stay, the user's next login starts it again"))
        .collect())
}

/// `stop`: scale the services to zero, the hub first (so no new notebook needs nfsd), and wait
/// until their tasks are gone. Specs, secrets and data stay. The hub's Docker gate keeps
/// running: a global service cannot be scaled, and it serves nothing but the hub.
pub async fn stop(ctx: &Ctx<'_>, part: Part) -> Result<Vec<Step>, CliError> {
    let mut steps = Vec::new();
    for name in services(ctx.cfg, part).into_iter().rev() {
        if ctx.cluster.service(name).await?.is_none() {
            steps.push(Step::new("service", name, Change::Absent));
            continue;
        }
        steps.push(apply::scale(ctx.cluster, name, 0).await?);
        apply::wait_stopped(ctx.cluster, name, &ctx.progress).await?;
    }
    Ok(steps)
}

/// `restart`: replace the running tasks (a forced update), nfsd first, then the hub's Docker
/// gate and the hub, waiting for each.
pub async fn restart(ctx: &Ctx<'_>, part: Part) -> Result<Vec<Step>, CliError> {
    replace(ctx, part, &mut std::io::empty()).await
}

/// Bring the services of `part` to their planned specs (the images in effect: a new pin
/// updates them, which replaces their tasks), and replace the tasks of those whose spec
/// did not change (an image rebuilt under the same tag). The plugin is not touched.
async fn replace(ctx: &Ctx<'_>, part: Part, stdin: &mut dyn Read) -> Result<Vec<Step>, CliError> {
    let mut steps = deploy(ctx, part, false, stdin).await?;
    let gate = gate_name(ctx.cfg);
    let mut order: Vec<&str> = services(ctx.cfg, part);
    if part != Part::Nfs {
        // the gate's image is the CLI's, which a rebuild replaces under the same tag too
        let at = order.len() - 1;
        order.insert(at, &gate);
    }
    for name in order {
        let same = steps
            .iter()
            .any(|s| s.kind == "service" && s.name == name && s.change == Change::Unchanged);
        if same {
            steps.retain(|s| !(s.kind == "service" && s.name == name));
            steps.push(apply::force_restart(ctx.cluster, name).await?);
            if name == gate {
                wait_gate(ctx).await?;
            } else {
                apply::wait_running(ctx.cluster, name, 1, &ctx.progress).await?;
            }
        }
    }
    if part != Part::Nfs {
        steps.extend(wait_hub_answers(ctx).await);
    }
    Ok(steps)
}

/// `remove`: remove the services (the hub's Docker gate with the hub), swarmhub's configs and
/// (for the whole stack) the network. Secrets, volumes and nfsd's data directory are kept and
/// reported as kept.
pub async fn remove(ctx: &Ctx<'_>, part: Part) -> Result<Vec<Step>, CliError> {
    let c = ctx.cluster;
    let mut steps = notebooks_down(ctx, part).await?;
    let mut names: Vec<String> = services(ctx.cfg, part)
        .into_iter()
        .rev()
        .map(str::to_string)
        .collect();
    if part != Part::Nfs {
        // right after the hub, which is its only client
        names.insert(1, gate_name(ctx.cfg));
    }
    if part == Part::All {
        names.push(names::ROLLOUT_SERVICE.into());
    }
    // one at a time in this order (the hub, its gate, nfsd), each stopped before it is removed
    // (but the gate, a global service that holds no data): nfsd goes only once no container
    // of the hub's is left to write through it
    for name in &names {
        steps.extend(apply::stop_then_remove(c, std::slice::from_ref(name), &ctx.progress).await?);
    }
    if part != Part::Nfs {
        steps.extend(apply::prune_configs(c, names::HUB_CONFIG_PREFIX, None).await?);
    }
    if part == Part::All {
        steps.push(apply::remove_network(c, &ctx.cfg.cluster.network, &ctx.progress).await?);
        let p = ctx.plan()?;
        let existing = c.secret_ids().await?;
        // the certificate's secrets are named by content, not in this plan: found by prefix
        let mut kept: Vec<&str> = p
            .secrets
            .iter()
            .filter(|s| existing.contains_key(&s.name))
            .map(|s| s.name.as_str())
            .collect();
        let prefix = names::hub_tls_secret_prefix(&ctx.cfg.cluster.hub_service);
        let mut tls: Vec<&str> = existing
            .keys()
            .filter(|n| n.starts_with(&prefix))
            .map(String::as_str)
            .collect();
        tls.sort();
        kept.extend(tls);
        for name in kept {
            steps.push(Step::new("secret", name, Change::Kept).note("secrets survive remove"));
        }
        steps.push(
            Step::new("directory", &ctx.cfg.cluster.nfsd_data_dir, Change::Kept)
                .note("user data is never removed by lifecycle commands"),
        );
    }
    Ok(steps)
}

/// `rerun`: `remove` then `run`.
pub async fn rerun(ctx: &Ctx<'_>, part: Part, stdin: &mut dyn Read) -> Result<Vec<Step>, CliError> {
    let mut steps = remove(ctx, part).await?;
    steps.extend(run(ctx, part, stdin).await?);
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::tests::{apply_hub, fake_swarm};
    use crate::docker::cluster::Cluster;
    use crate::docker::engine::Engine as _;
    use crate::docker::fake::Fake;

    /// nfsd and the hub deployed on the in-memory swarm, its calls forgotten.
    async fn deployed(cfg: &Config) -> Cluster<Fake> {
        let c = fake_swarm();
        let p = plan::plan(cfg, &PlanInputs::default()).unwrap();
        apply_hub(&c, &p).await;
        apply::ensure_service(&c, &p.nfsd, true).await.unwrap();
        c.engine().clear_calls();
        c
    }

    fn ctx<'a>(c: &'a Swarm, cfg: &'a Config) -> Ctx<'a> {
        Ctx {
            cluster: c,
            cfg,
            inputs: PlanInputs::default(),
            progress: Progress::quiet(),
        }
    }

    #[tokio::test]
    async fn remove_never_deletes_secrets_volumes_or_the_data_directory() {
        let cfg = Config::default();
        let c = deployed(&cfg).await;
        let secrets = c.engine().secret_names();
        assert!(!secrets.is_empty());
        let steps = remove(&ctx(&c, &cfg), Part::All).await.unwrap();
        let calls = c.engine().calls();
        assert!(
            !calls
                .iter()
                .any(|c| c.starts_with("delete_secret") || c.contains("volume")),
            "{calls:?}"
        );
        assert_eq!(c.engine().secret_names(), secrets);
        for name in &secrets {
            assert!(
                steps
                    .iter()
                    .any(|s| s.kind == "secret" && s.name == *name && s.change == Change::Kept),
                "{name} reported kept: {steps:?}"
            );
        }
        let last = steps.last().unwrap();
        assert_eq!(
            (last.kind.as_str(), last.name.as_str(), last.change),
            (
                "directory",
                cfg.cluster.nfsd_data_dir.as_str(),
                Change::Kept
            )
        );
        // the services went, the hub before nfsd, each scaled to 0 first; then the network
        let changes = c.engine().changes();
        let (hub, nfsd) = (&cfg.cluster.hub_service, &cfg.cluster.nfsd_service);
        let at = |call: String| changes.iter().position(|c| *c == call).unwrap();
        assert!(
            at(format!("update_service {hub} replicas=0")) < at(format!("delete_service {hub}"))
        );
        assert!(
            at(format!("delete_service {hub}")) < at(format!("update_service {nfsd} replicas=0"))
        );
        assert!(
            at(format!("update_service {nfsd} replicas=0")) < at(format!("delete_service {nfsd}"))
        );
        assert_eq!(
            changes.last().unwrap(),
            &format!("remove_network {}", cfg.cluster.network)
        );
    }

    #[tokio::test]
    async fn restart_deploys_a_new_image_and_replaces_the_tasks_of_an_unchanged_spec() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::default();
        cfg.cluster.nfsd_data_dir = dir.path().display().to_string();
        let c = deployed(&cfg).await;
        let nfsd = cfg.cluster.nfsd_service.clone();
        let of_nfsd = |steps: &[Step]| -> Vec<Change> {
            steps
                .iter()
                .filter(|s| s.kind == "service" && s.name == nfsd)
                .map(|s| s.change)
                .collect()
        };
        // the first brings nfsd's allowed clients to the nodes' addresses (`deployed` had none)
        restart(&ctx(&c, &cfg), Part::Nfs).await.unwrap();
        // the same spec (an image rebuilt under its tag): the task is replaced
        let steps = restart(&ctx(&c, &cfg), Part::Nfs).await.unwrap();
        assert_eq!(of_nfsd(&steps), [Change::Restarted], "{steps:?}");
        // a new pin: the spec is updated (which replaces the task), not restarted on top
        cfg.images.nfsd = "swarmhub/nfsd:0.1.0@sha256:aa".into();
        let steps = restart(&ctx(&c, &cfg), Part::Nfs).await.unwrap();
        assert_eq!(of_nfsd(&steps), [Change::Updated], "{steps:?}");
        let spec = c.engine().service_spec(&nfsd).unwrap();
        assert_eq!(
            spec.task_template
                .unwrap()
                .container_spec
                .unwrap()
                .image
                .as_deref(),
            Some("swarmhub/nfsd:0.1.0@sha256:aa")
        );
        // the plugin is not touched by a restart
        assert!(
            !c.engine().calls().iter().any(|x| x.contains("rollout")),
            "{:?}",
            c.engine().calls()
        );
    }

    #[tokio::test]
    async fn stop_scales_the_hub_then_nfsd_to_zero_and_start_brings_nfsd_back() {
        let cfg = Config::default();
        let c = deployed(&cfg).await;
        let (hub, nfsd) = (&cfg.cluster.hub_service, &cfg.cluster.nfsd_service);
        let steps = stop(&ctx(&c, &cfg), Part::All).await.unwrap();
        assert!(
            steps.iter().all(|s| s.change == Change::Stopped),
            "{steps:?}"
        );
        assert_eq!(
            c.engine().changes(),
            vec![
                format!("update_service {hub} replicas=0"),
                format!("update_service {nfsd} replicas=0"),
            ]
        );
        c.engine().clear_calls();
        let steps = stop(&ctx(&c, &cfg), Part::All).await.unwrap();
        assert!(
            steps.iter().all(|s| s.change == Change::Unchanged),
            "{steps:?}"
        );
        assert_eq!(c.engine().changes(), Vec::<String>::new());
        let steps = start(&ctx(&c, &cfg), Part::Nfs).await.unwrap();
        assert_eq!(steps, vec![Step::new("service", nfsd, Change::Started)]);
    }

    /// The default settings with Docker's and the services' waits as short as they go.
    fn short_timeouts() -> Config {
        let mut cfg = Config::default();
        cfg.timeouts.docker_seconds = 1;
        cfg.timeouts.service_seconds = 1;
        cfg
    }

    #[tokio::test]
    async fn a_started_hub_that_does_not_answer_is_a_note_not_a_failure() {
        // the probe's bound and the wait for an answer, as short as they go
        let cfg = short_timeouts();
        let c = deployed(&cfg).await;
        let hub = &cfg.cluster.hub_service;
        stop(&ctx(&c, &cfg), Part::Hub).await.unwrap();
        c.engine().clear_calls();
        let steps = start(&ctx(&c, &cfg), Part::Hub).await.unwrap();
        assert_eq!(steps[0], Step::new("service", hub, Change::Started));
        // the in-memory swarm runs the task, but no hub listens at its node's address
        let [_, note] = steps.as_slice() else {
            panic!("{steps:?}")
        };
        assert_eq!(
            (note.change, note.name.as_str()),
            (Change::Unchanged, hub.as_str())
        );
        let said = note.note.as_deref().unwrap_or_default();
        assert!(
            said.starts_with("running, but not answering after 1 s: ")
                && said.ends_with("; see swarmhub doctor"),
            "{said}"
        );
        // the check read where the hub runs through the engine, like doctor does
        let calls = c.engine().calls();
        assert!(calls.contains(&format!("list_tasks {hub}")), "{calls:?}");
        assert_eq!(
            c.engine().changes(),
            vec![format!("update_service {hub} replicas=1")]
        );
    }

    #[tokio::test]
    async fn stop_leaves_the_docker_gate_and_removing_the_hub_takes_it() {
        let cfg = Config::default();
        let c = deployed(&cfg).await;
        let (hub, nfsd) = (&cfg.cluster.hub_service, &cfg.cluster.nfsd_service);
        let gate = names::docker_gate_service(hub);
        stop(&ctx(&c, &cfg), Part::Hub).await.unwrap();
        assert_eq!(
            c.engine().changes(),
            [format!("update_service {hub} replicas=0")]
        );
        assert!(c.engine().service_spec(&gate).is_some());
        c.engine().clear_calls();
        let steps = remove(&ctx(&c, &cfg), Part::Hub).await.unwrap();
        let removed: Vec<&str> = steps
            .iter()
            .filter(|s| s.kind == "service" && s.change == Change::Removed)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(removed, [hub.as_str(), gate.as_str()]);
        let changes = c.engine().changes();
        assert!(
            !changes
                .iter()
                .any(|x| x.starts_with(&format!("update_service {gate}"))),
            "a global service is not scaled: {changes:?}"
        );
        assert!(c.engine().service_spec(&gate).is_none());
        assert!(c.engine().service_spec(nfsd).is_some(), "nfsd stays");
    }

    #[tokio::test]
    async fn removing_the_stack_removes_the_gate_after_the_hub_and_before_nfsd() {
        let cfg = Config::default();
        let c = deployed(&cfg).await;
        let (hub, nfsd) = (&cfg.cluster.hub_service, &cfg.cluster.nfsd_service);
        let gate = names::docker_gate_service(hub);
        remove(&ctx(&c, &cfg), Part::All).await.unwrap();
        let changes = c.engine().changes();
        let at = |call: String| changes.iter().position(|c| *c == call).unwrap();
        assert!(at(format!("delete_service {hub}")) < at(format!("delete_service {gate}")));
        assert!(
            at(format!("delete_service {gate}")) < at(format!("update_service {nfsd} replicas=0"))
        );
    }

    #[tokio::test]
    async fn the_hub_starts_once_its_gate_runs_and_not_without_it() {
        let cfg = short_timeouts();
        let c = deployed(&cfg).await;
        let hub = &cfg.cluster.hub_service;
        let gate = names::docker_gate_service(hub);
        stop(&ctx(&c, &cfg), Part::Hub).await.unwrap();
        c.engine().clear_calls();
        start(&ctx(&c, &cfg), Part::Hub).await.unwrap();
        let calls = c.engine().calls();
        let looked = calls
            .iter()
            .position(|x| *x == format!("list_tasks {gate}"))
            .unwrap();
        let started = calls
            .iter()
            .position(|x| *x == format!("update_service {hub} replicas=1"))
            .unwrap();
        assert!(looked < started, "{calls:?}");
        // a deployment from before the gate: the hub would have no Docker
        stop(&ctx(&c, &cfg), Part::Hub).await.unwrap();
        c.engine().delete_service(&gate).await.unwrap();
        c.engine().clear_calls();
        let e = start(&ctx(&c, &cfg), Part::Hub).await.unwrap_err();
        assert_eq!(e.code(), 7, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("service {gate} does not exist"))
                && text.contains("swarmhub run"),
            "{text}"
        );
        assert_eq!(c.engine().changes(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn restarting_the_hub_replaces_its_gates_tasks_first() {
        let cfg = short_timeouts();
        let c = deployed(&cfg).await;
        let hub = &cfg.cluster.hub_service;
        let gate = names::docker_gate_service(hub);
        let steps = restart(&ctx(&c, &cfg), Part::Hub).await.unwrap();
        let restarted: Vec<&str> = steps
            .iter()
            .filter(|s| s.change == Change::Restarted)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(restarted, [gate.as_str(), hub.as_str()], "{steps:?}");
        let updates: Vec<String> = c
            .engine()
            .changes()
            .into_iter()
            .filter(|x| x.starts_with("update_service "))
            .collect();
        assert_eq!(
            updates,
            [
                format!("update_service {gate} replicas=-"),
                format!("update_service {hub} replicas=1")
            ]
        );
    }

    /// A notebook service as SwarmSpawner makes it (the notebook label, one task).
    async fn spawn_notebook(c: &Swarm, user: &str) -> String {
        let name = format!("jupyter-{user}");
        let spec = bollard::models::ServiceSpec {
            name: Some(name.clone()),
            labels: Some(std::collections::HashMap::from([
                (
                    names::COMPONENT_LABEL.to_string(),
                    names::NOTEBOOK_COMPONENT.to_string(),
                ),
                (names::USER_LABEL.to_string(), user.to_string()),
            ])),
            mode: Some(bollard::models::ServiceSpecMode {
                replicated: Some(bollard::models::ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            }),
            ..Default::default()
        };
        c.engine().create_service(spec, None).await.unwrap();
        name
    }

    #[tokio::test]
    async fn removing_the_stack_stops_the_notebooks_before_nfsd_and_stop_leaves_them() {
        let cfg = Config::default();
        let c = deployed(&cfg).await;
        let nb = spawn_notebook(&c, "alice").await;
        c.engine().clear_calls();
        // stop (nfsd, the hub, both): the notebooks keep running, their mounts wait for nfsd
        for part in [Part::Hub, Part::Nfs, Part::All] {
            stop(&ctx(&c, &cfg), part).await.unwrap();
        }
        assert!(
            !c.engine().changes().iter().any(|c| c.contains(&nb)),
            "{:?}",
            c.engine().changes()
        );
        // remove of the whole stack: the notebooks go first, stopped before they are removed,
        // and nfsd only after them; no volume is touched
        let steps = remove(&ctx(&c, &cfg), Part::All).await.unwrap();
        let changes = c.engine().changes();
        let at = |call: String| changes.iter().position(|c| *c == call).unwrap();
        let nfsd = &cfg.cluster.nfsd_service;
        assert!(at(format!("update_service {nb} replicas=0")) < at(format!("delete_service {nb}")));
        assert!(
            at(format!("delete_service {nb}")) < at(format!("delete_service {nfsd}")),
            "{changes:?}"
        );
        assert!(
            steps
                .iter()
                .any(|s| s.name == nb && s.change == Change::Removed),
            "{steps:?}"
        );
        assert!(!changes.iter().any(|c| c.contains("volume")), "{changes:?}");
    }

    #[test]
    fn a_node_needs_the_plugin_rolled_out_when_it_lacks_it_or_its_settings() {
        let mut n = crate::inspect::status::tests::node("alpha", "ready", &[]);
        assert!(!plugin_needs_rollout(&n, "f1ngerpr1nt0"), "up to date");
        assert!(plugin_needs_rollout(&n, "0therpr1nt00"), "settings changed");
        n.plugin_settings = None;
        assert!(
            plugin_needs_rollout(&n, "f1ngerpr1nt0"),
            "rolled out before the settings were recorded"
        );
        n.plugin_settings = Some("f1ngerpr1nt0".into());
        n.plugin_version = None;
        assert!(
            plugin_needs_rollout(&n, "f1ngerpr1nt0"),
            "no version recorded"
        );
        n.plugin_version = Some("0.1.0".into());
        n.plugin_enabled = false;
        assert!(plugin_needs_rollout(&n, "f1ngerpr1nt0"), "not enabled");
    }
}
