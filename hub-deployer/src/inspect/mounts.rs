//! The swarmhub mounts of every running container on every node, as each container sees them:
//! read by the one-shot global job `swarmhub-mount-check` for `status`, `doctor` and
//! `notebooks restart --dead-mounts`. [`node_side`] is what the job runs on a node (the probes
//! are in [`crate::node::mounts`]); [`read`] starts and removes the job and collects its
//! reports; [`broken`] picks out what no container can use (pure).

use serde::Serialize;

use crate::apply::jobs;
use crate::docker::cluster::Swarm;
use crate::docker::engine::{Engine, EngineError};
use crate::exit::CliError;
use crate::node::mounts::{MountState, RESULT_PREFIX, Report, container_mounts};
use crate::plan;
use crate::progress::Progress;
use crate::settings::Config;

/// The command that restarts exactly the notebooks with dead mounts.
pub const RESTART_FIX: &str = "swarmhub notebooks restart --dead-mounts (restarts exactly those notebooks; their users' files stay, their servers come back with live mounts)";

/// What to do about mounts that are silent but not dead: nothing in the notebooks.
pub const SILENT_FIX: &str = "the mounts wait for nfsd and go on by themselves when it answers again: bring nfsd and its node back (see the nfsd-service and nfsd-api checks); do not restart these notebooks, their unsaved work is still in their kernels";

/// The fix for these broken mounts: restart the notebooks when any is dead, else wait for nfsd.
pub fn fix_for(broken: &[BrokenMount]) -> Option<&'static str> {
    if broken.iter().any(|b| b.state.is_dead()) {
        Some(RESTART_FIX)
    } else if broken.is_empty() {
        None
    } else {
        Some(SILENT_FIX)
    }
}

/// What one node's task of the job found, or why it found nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeMounts {
    /// The node's host name.
    pub node: String,
    /// Its containers' swarmhub mounts, or why the job gave none there.
    #[serde(flatten)]
    pub found: Found,
}

/// A node's report or the reason it has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Found {
    /// The node side's report.
    Report(Report),
    /// Why there is none.
    Error {
        /// the task's state and log
        error: String,
    },
}

/// One mount a container cannot use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenMount {
    /// The node.
    pub node: String,
    /// The container's name.
    pub container: String,
    /// Its Swarm service, if it is a task.
    pub service: Option<String>,
    /// The notebook's user, if it is a notebook.
    pub user: Option<String>,
    /// The volume.
    pub volume: String,
    /// Where the container has it.
    pub destination: String,
    /// What it answered (`state`, and `error` or `seconds`).
    #[serde(flatten)]
    pub state: MountState,
}

impl BrokenMount {
    /// `jupyter-alice on node-1: /home/jovyan (home-alice) dead (Transport endpoint is not connected (os error 107))`.
    pub fn line(&self) -> String {
        format!(
            "{} on {}: {} ({}) {}",
            self.service.as_deref().unwrap_or(&self.container),
            self.node,
            self.destination,
            self.volume,
            self.state.describe()
        )
    }
}

/// The node side (in the job): every running container of this node's dockerd with a
/// swarmhub volume, each such mount probed through the container's root under `proc`.
pub async fn node_side(
    docker: &dyn Engine,
    proc: &std::path::Path,
    timeout: std::time::Duration,
) -> Result<Report, EngineError> {
    let running = docker.running_containers().await?;
    // every container at once: a node's probes take one timeout at most, not one per mount
    let mut containers: Vec<_> =
        futures_util::future::join_all(running.iter().map(|c| container_mounts(c, proc, timeout)))
            .await
            .into_iter()
            .flatten()
            .collect();
    containers.sort_by(|a, b| a.container.cmp(&b.container));
    Ok(Report { containers })
}

/// Run the check job on every usable node and collect what each found.
pub async fn read(
    c: &Swarm,
    cfg: &Config,
    progress: &Progress,
) -> Result<Vec<NodeMounts>, CliError> {
    let spec = plan::mount_check_service(cfg);
    let runs = jobs::run_global(
        c,
        &spec,
        RESULT_PREFIX,
        cfg.timeouts.rollout_seconds,
        "checking the notebooks' mounts",
        progress,
    )
    .await?;
    Ok(runs
        .iter()
        .map(|r| NodeMounts {
            node: r.task.node.clone(),
            found: match r.result.as_deref().map(serde_json::from_str::<Report>) {
                Some(Ok(report)) => Found::Report(report),
                Some(Err(e)) => Found::Error {
                    error: format!("its answer is not a report: {e}"),
                },
                None => Found::Error { error: r.failure() },
            },
        })
        .collect())
}

/// Every dead or silent mount, by node and container (pure).
pub fn broken(found: &[NodeMounts]) -> Vec<BrokenMount> {
    let mut out = Vec::new();
    for n in found {
        let Found::Report(r) = &n.found else { continue };
        for c in &r.containers {
            for m in c.broken() {
                out.push(BrokenMount {
                    node: n.node.clone(),
                    container: c.container.clone(),
                    service: c.service.clone(),
                    user: c.user.clone(),
                    volume: m.volume.clone(),
                    destination: m.destination.clone(),
                    state: m.state.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::node::mounts::{ContainerMounts, MountCheck};

    /// A report of one node with one notebook of `user` whose home answers `state`.
    pub(crate) fn node_with(node: &str, user: &str, state: MountState) -> NodeMounts {
        NodeMounts {
            node: node.into(),
            found: Found::Report(Report {
                containers: vec![ContainerMounts {
                    container: format!("jupyter-{user}.1.abc"),
                    id: "0123456789ab".into(),
                    service: Some(format!("jupyter-{user}")),
                    user: Some(user.into()),
                    mounts: vec![
                        MountCheck {
                            volume: format!("home-{user}"),
                            destination: "/home/jovyan".into(),
                            state,
                        },
                        MountCheck {
                            volume: "exchange".into(),
                            destination: "/srv/nbgrader/exchange".into(),
                            state: MountState::Live,
                        },
                    ],
                }],
            }),
        }
    }

    pub(crate) fn dead() -> MountState {
        MountState::Dead {
            error: "Transport endpoint is not connected (os error 107)".into(),
        }
    }

    #[test]
    fn only_dead_and_silent_mounts_are_broken() {
        let found = [
            node_with("node-1", "alice", dead()),
            node_with("node-2", "bob", MountState::Live),
            node_with("node-2", "carol", MountState::Silent { seconds: 5 }),
            NodeMounts {
                node: "node-3".into(),
                found: Found::Error {
                    error: "task failed".into(),
                },
            },
        ];
        let b = broken(&found);
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(
            b[0].line(),
            "jupyter-alice on node-1: /home/jovyan (home-alice) dead (Transport endpoint is not connected (os error 107))"
        );
        assert_eq!(b[1].user.as_deref(), Some("carol"));
        assert_eq!(fix_for(&b), Some(RESTART_FIX));
        assert_eq!(
            fix_for(&b[1..]),
            Some(SILENT_FIX),
            "silent only: wait for nfsd"
        );
        assert_eq!(fix_for(&[]), None);
        assert!(
            b[1].line().ends_with("not answering within 5 s"),
            "{}",
            b[1].line()
        );
    }

    #[test]
    fn a_node_without_a_report_says_why_in_json() {
        let json = serde_json::to_value(NodeMounts {
            node: "node-3".into(),
            found: Found::Error {
                error: "task failed".into(),
            },
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"node": "node-3", "error": "task failed"})
        );
        let json = serde_json::to_value(node_with("node-1", "alice", dead())).unwrap();
        assert_eq!(
            json["containers"][0]["mounts"][0]["state"], "dead",
            "{json}"
        );
    }
}
