//! `swarmhub notebooks restart`: replace the task of chosen notebook services, as `docker
//! service update --force` does. With `--dead-mounts`, exactly the notebooks that have a
//! swarmhub mount that answers with an error as their container sees it (a mount that does not
//! answer in time waits for nfsd and is left alone) (the one-shot job
//! `swarmhub-mount-check`, [`crate::inspect::mounts`]): after the plugin restarted, its FUSE
//! mounts in running containers are dead for good, and a new container is the only cure. With
//! user names, those users' notebooks.
//!
//! The service stays (JupyterHub keeps it as the user's server), its new container gets live
//! mounts, and the files stay: they are on nfsd, not in the container. Every chosen notebook is
//! restarted at once, then each is waited for until its new task runs; with `--dead-mounts` the mounts are checked again afterwards and any that
//! still does not answer fails the command (exit 6). Safe to re-run: with nothing dead it
//! restarts nothing. Containers with dead mounts that are not notebooks are named, not touched.

use std::collections::BTreeMap;

use crate::apply;
use crate::exit::CliError;
use crate::inspect::mounts;
use crate::lifecycle::Ctx;
use crate::names;
use crate::steps::{Change, Step};

/// Which notebooks to restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Those with a dead or silent swarmhub mount.
    pub dead_mounts: bool,
    /// Those of these users.
    pub users: Vec<String>,
}

/// Restart the selected notebooks; see the module documentation.
pub async fn restart(ctx: &Ctx<'_>, sel: &Selection) -> Result<Vec<Step>, CliError> {
    if !sel.dead_mounts && sel.users.is_empty() {
        return Err(CliError::Usage(
            "say which notebooks to restart: --dead-mounts (those whose mounts do not answer) or user names".into(),
        ));
    }
    let c = ctx.cluster;
    let notebooks = notebook_users(ctx).await?;
    // service → why it is restarted
    let mut chosen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut steps = Vec::new();
    for user in &sel.users {
        let found: Vec<&String> = notebooks
            .iter()
            .filter(|(_, u)| u.as_deref() == Some(user.as_str()))
            .map(|(s, _)| s)
            .collect();
        if found.is_empty() {
            return Err(CliError::Precondition {
                what: format!("user {user} has no notebook service"),
                fix: "check the name (swarmhub status lists the notebooks); a user whose server is stopped starts it from the hub".into(),
            });
        }
        for s in found {
            chosen
                .entry(s.clone())
                .or_default()
                .push(format!("asked for user {user}"));
        }
    }
    if sel.dead_mounts {
        let found = mounts::read(c, ctx.cfg, &ctx.progress).await?;
        for b in mounts::broken(&found) {
            match b.service.as_deref() {
                // a silent mount waits for nfsd: a new container would not help, and the
                // kernels' unsaved work would go
                _ if !b.state.is_dead() => steps.push(
                    Step::new("container", &b.container, Change::Kept).note(format!(
                        "not restarted: its mount {} ({}) on {} is {}; {}",
                        b.destination,
                        b.volume,
                        b.node,
                        b.state.describe(),
                        mounts::SILENT_FIX
                    )),
                ),
                Some(s) if notebooks.contains_key(s) => chosen.entry(s.to_string()).or_default().push(
                    format!("{} ({}) {}", b.destination, b.volume, b.state.describe()),
                ),
                _ => steps.push(
                    Step::new("container", &b.container, Change::Kept).note(format!(
                        "not a notebook, so not restarted here, although its mount {} ({}) on {} is {}: restart it yourself ({})",
                        b.destination,
                        b.volume,
                        b.node,
                        b.state.describe(),
                        match &b.service {
                            Some(s) => format!("docker service update --force {s}"),
                            None => format!("docker restart {} on {}", b.container, b.node),
                        }
                    )),
                ),
            }
        }
        for n in &found {
            if let mounts::Found::Error { error } = &n.found {
                steps.push(Step::new("node", &n.node, Change::Kept).note(format!(
                    "its mounts could not be checked ({error}); run swarmhub doctor"
                )));
            }
        }
        if chosen.is_empty() {
            steps.push(
                Step::new("notebooks", "dead mounts", Change::Unchanged)
                    .note("every swarmhub mount of every running notebook answers"),
            );
        }
    }
    // all at once, then each waited for: a class's notebooks stop and start in parallel
    let mut restarted = Vec::new();
    for (service, why) in &chosen {
        restarted.push((apply::force_restart(c, service).await?, why));
    }
    for (step, why) in restarted {
        apply::wait_running(c, &step.name, 1, &ctx.progress).await?;
        steps.push(step.note(format!(
            "{}; the user's server is back with live mounts, the files stay",
            why.join(", ")
        )));
    }
    if sel.dead_mounts && !chosen.is_empty() {
        let still: Vec<String> = mounts::broken(&mounts::read(c, ctx.cfg, &ctx.progress).await?)
            .iter()
            .filter(|b| b.service.as_ref().is_some_and(|s| chosen.contains_key(s)))
            .map(mounts::BrokenMount::line)
            .collect();
        if !still.is_empty() {
            // (silent ones included: a new container's mount should answer at once)
            return Err(CliError::HealthCheck(format!(
                "restarted notebooks still have mounts that do not answer: {}; check the plugin on their nodes (swarmhub doctor)",
                still.join(" | ")
            )));
        }
    }
    Ok(steps)
}

/// Every notebook service and its user (label `swarmhub.user`).
async fn notebook_users(ctx: &Ctx<'_>) -> Result<BTreeMap<String, Option<String>>, CliError> {
    Ok(ctx
        .cluster
        .all_services()
        .await?
        .into_iter()
        .filter_map(|s| s.spec)
        .filter_map(|spec| {
            let labels = spec.labels.unwrap_or_default();
            (labels.get(names::COMPONENT_LABEL).map(String::as_str)
                == Some(names::NOTEBOOK_COMPONENT))
            .then(|| (spec.name, labels.get(names::USER_LABEL).cloned()))
        })
        .filter_map(|(name, user)| Some((name?, user)))
        .collect())
}
