//! Check `notebook-mounts`: no running container on any node has a swarmhub mount that is dead
//! (a FUSE mount of an earlier plugin process answers `Transport endpoint is not connected`)
//! or silent. [`mounts_check`] reads with the one-shot job `swarmhub-mount-check`
//! ([`crate::inspect::mounts`]); [`check_notebook_mounts`] judges and is pure.

use super::Check;
use crate::docker::cluster::{NodeInfo, Swarm};
use crate::inspect::mounts::{self, Found, NodeMounts};
use crate::names;
use crate::settings::Config;

const NAME: &str = "notebook-mounts";

// Reads (I/O): the one-shot mount check job.

/// Run the mount check job on every node and judge what it found.
pub(super) async fn mounts_check(c: &Swarm, cfg: &Config, nodes: Option<&[NodeInfo]>) -> Check {
    if nodes.is_none() {
        return Check::skip(NAME, "the nodes could not be listed");
    }
    match mounts::read(c, cfg, &crate::progress::Progress::stderr()).await {
        Ok(found) => check_notebook_mounts(&found),
        Err(e) => Check::fail(
            NAME,
            format!(
                "cannot run the job {}: {}",
                names::MOUNT_CHECK_SERVICE,
                e.chain().join(": ")
            ),
            "check that the swarmhub CLI image is on every node (swarmhub plugin rollout reports the nodes without it), then swarmhub doctor",
        ),
    }
}

// Judgement (pure).

/// Every swarmhub mount of every running container answers (pure): dead or silent ones fail
/// with the notebooks named and the command that restarts exactly them; nodes whose job gave
/// no report fail with the reason.
pub fn check_notebook_mounts(found: &[NodeMounts]) -> Check {
    let broken = mounts::broken(found);
    if !broken.is_empty() {
        let lines: Vec<String> = broken.iter().map(|b| b.line()).collect();
        return Check::fail(
            NAME,
            format!(
                "{} mount(s) of running containers do not answer: {} (after a restart of the plugin its FUSE mounts in running containers stay dead; a mount that does not answer in time waits for nfsd)",
                broken.len(),
                lines.join(" | ")
            ),
            mounts::fix_for(&broken).unwrap_or(mounts::RESTART_FIX),
        );
    }
    let unread: Vec<String> = found
        .iter()
        .filter_map(|n| match &n.found {
            Found::Error { error } => Some(format!("{}: {error}", n.node)),
            Found::Report(_) => None,
        })
        .collect();
    if !unread.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "the mounts could not be checked on {} node(s): {}",
                unread.len(),
                unread.join(" | ")
            ),
            "load the swarmhub CLI image on those nodes (docker load), then swarmhub doctor",
        );
    }
    let (containers, mounts) = found
        .iter()
        .filter_map(|n| match &n.found {
            Found::Report(r) => Some(r),
            Found::Error { .. } => None,
        })
        .flat_map(|r| &r.containers)
        .fold((0, 0), |(c, m), x| (c + 1, m + x.mounts.len()));
    Check::ok(
        NAME,
        format!(
            "{mounts} swarmhub mount(s) of {containers} running container(s) on {} node(s) answer",
            found.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::doctor::Outcome;
    use crate::inspect::mounts::tests::{dead, node_with};
    use crate::node::mounts::MountState;

    #[test]
    fn live_mounts_pass_with_a_count() {
        let c = check_notebook_mounts(&[
            node_with("node-1", "alice", MountState::Live),
            node_with("node-2", "bob", MountState::Live),
        ]);
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        assert_eq!(
            c.detail,
            "4 swarmhub mount(s) of 2 running container(s) on 2 node(s) answer"
        );
    }

    #[test]
    fn dead_mounts_fail_naming_the_notebooks_with_the_restart_command() {
        let c = check_notebook_mounts(&[
            node_with("node-1", "alice", dead()),
            node_with("node-2", "bob", MountState::Live),
        ]);
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(c.detail.starts_with("1 mount(s)"), "{}", c.detail);
        assert!(
            c.detail
                .contains("jupyter-alice on node-1: /home/jovyan (home-alice) dead"),
            "{}",
            c.detail
        );
        assert!(!c.detail.contains("bob"), "{}", c.detail);
        assert!(
            c.fix
                .unwrap()
                .starts_with("swarmhub notebooks restart --dead-mounts"),
        );
    }

    #[test]
    fn silent_mounts_fail_with_wait_for_nfsd_not_a_restart() {
        let c = check_notebook_mounts(&[node_with(
            "node-1",
            "alice",
            MountState::Silent { seconds: 5 },
        )]);
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(
            c.detail.contains("not answering within 5 s"),
            "{}",
            c.detail
        );
        let fix = c.fix.unwrap();
        assert!(
            fix.contains("wait for nfsd") && fix.contains("do not restart"),
            "{fix}"
        );
    }

    #[test]
    fn a_node_without_a_report_fails_with_the_reason() {
        let c = check_notebook_mounts(&[
            node_with("node-1", "alice", MountState::Live),
            NodeMounts {
                node: "node-2".into(),
                found: Found::Error {
                    error: "rejected: No such image: swarmhub/swarmhub:0.1.0".into(),
                },
            },
        ]);
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(
            c.detail.contains("node-2: rejected: No such image"),
            "{}",
            c.detail
        );
    }
}
