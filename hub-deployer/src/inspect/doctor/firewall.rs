//! Checks `firewall`: swarmhub's iptables guard of nfsd's ports is complete on every usable
//! node. [`firewall_check`] reads by running the one-shot global job
//! `swarmhub-firewall-check` (the only thing doctor starts, and it removes it again), which
//! lists the chain on each node; [`check_firewall`] judges those listings and is pure.

use super::Check;
use crate::apply::jobs;
use crate::docker::cluster::{NodeInfo, Swarm};
use crate::names;
use crate::node::firewall;
use crate::plan;
use crate::settings::Config;

// Reads (I/O): the one-shot firewall job.

/// Run the firewall check job on every node and judge what it found.
pub(super) async fn firewall_check(c: &Swarm, cfg: &Config, nodes: Option<&[NodeInfo]>) -> Check {
    let Some(nodes) = nodes else {
        return Check::skip("firewall", "the nodes could not be listed");
    };
    let spec = plan::firewall_check_service(cfg);
    let runs = jobs::run_global(
        c,
        &spec,
        firewall::RESULT_PREFIX,
        cfg.timeouts.rollout_seconds,
        "listing the firewall guard",
        &crate::progress::Progress::stderr(),
    )
    .await;
    match runs {
        Ok(runs) => {
            let found: Vec<(String, Result<firewall::Report, String>)> = runs
                .iter()
                .map(|r| {
                    let report = r
                        .result
                        .as_deref()
                        .and_then(|j| serde_json::from_str::<firewall::Report>(j).ok())
                        .ok_or_else(|| r.failure());
                    (r.task.node.clone(), report)
                })
                .collect();
            check_firewall(nodes, &found)
        }
        Err(e) => Check::fail(
            "firewall",
            format!(
                "cannot run the job {}: {}",
                names::FIREWALL_CHECK_SERVICE,
                e.chain().join(": ")
            ),
            "check that the swarmhub CLI image is on every node (swarmhub plugin rollout reports the nodes without it), then swarmhub doctor",
        ),
    }
}

// Judgements (pure).

/// Every usable node has swarmhub's complete firewall guard of nfsd's ports (pure): `found`
/// holds each node's listing, or why the check job gave none.
pub fn check_firewall(
    nodes: &[NodeInfo],
    found: &[(String, Result<firewall::Report, String>)],
) -> Check {
    let usable: Vec<&NodeInfo> = nodes.iter().filter(|n| n.usable()).collect();
    if usable.is_empty() {
        return Check::skip("firewall", "no node is ready");
    }
    let mut bad = Vec::new();
    let mut unread = Vec::new();
    for n in &usable {
        match found.iter().find(|(node, _)| *node == n.hostname) {
            Some((_, Ok(r))) if r.problems.is_empty() => {}
            Some((_, Ok(r))) => bad.push(format!("{}: {}", n.hostname, r.problems.join(", "))),
            Some((_, Err(e))) => unread.push(format!("{}: {e}", n.hostname)),
            None => unread.push(format!("{}: the check job ran no task there", n.hostname)),
        }
    }
    if !bad.is_empty() {
        return Check::fail(
            "firewall",
            format!(
                "notebooks on {} node(s) may reach nfsd's ports: {}",
                bad.len(),
                bad.join(" | ")
            ),
            format!(
                "swarmhub plugin rollout (installs the chain {} on every node; rules are lost when a node reboots or its iptables rules are flushed)",
                firewall::CHAIN
            ),
        );
    }
    if !unread.is_empty() {
        return Check::fail(
            "firewall",
            format!(
                "the firewall guard could not be listed on {} node(s): {}",
                unread.len(),
                unread.join(" | ")
            ),
            "load the swarmhub CLI image on those nodes (docker load), then swarmhub doctor",
        );
    }
    let mut backends: Vec<&str> = found
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|r| r.backend.as_str()))
        .collect();
    backends.sort_unstable();
    backends.dedup();
    Check::ok(
        "firewall",
        format!(
            "chain {} rejects containers' connections to nfsd's ports on all {} node(s) ({})",
            firewall::CHAIN,
            usable.len(),
            backends.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::doctor::Outcome;
    use crate::inspect::doctor::swarm::tests::node;

    fn guard(problems: &[&str]) -> Result<firewall::Report, String> {
        Ok(firewall::Report {
            backend: "iptables v1.8.9 (nf_tables)".into(),
            change: crate::steps::Change::Unchanged,
            problems: problems.iter().map(|p| p.to_string()).collect(),
            rules: firewall::rule_specs(&[2049, 8049]),
        })
    }

    #[test]
    fn the_firewall_guard_must_be_complete_on_every_ready_node() {
        let nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
            node("gone", "down", "active"),
        ];
        let c = check_firewall(
            &nodes,
            &[("alpha".into(), guard(&[])), ("beta".into(), guard(&[]))],
        );
        assert_eq!(c.outcome, Outcome::Ok, "{}", c.detail);
        assert!(
            c.detail
                .contains("on all 2 node(s) (iptables v1.8.9 (nf_tables))"),
            "{}",
            c.detail
        );

        let c = check_firewall(
            &nodes,
            &[
                ("alpha".into(), guard(&[])),
                (
                    "beta".into(),
                    guard(&["INPUT does not jump to SWARMHUB-NFSD"]),
                ),
            ],
        );
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail,
            "notebooks on 1 node(s) may reach nfsd's ports: beta: INPUT does not jump to SWARMHUB-NFSD"
        );
        assert!(c.fix.unwrap().starts_with("swarmhub plugin rollout"));

        let c = check_firewall(&nodes, &[("alpha".into(), guard(&[]))]);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail.contains("beta: the check job ran no task there"),
            "{}",
            c.detail
        );
        let c = check_firewall(
            &nodes,
            &[
                ("alpha".into(), guard(&[])),
                ("beta".into(), Err("beta: rejected (No such image)".into())),
            ],
        );
        assert!(c.fix.unwrap().contains("docker load"));
    }
}
