//! Checks `plugin-enabled`, `plugin-version` and `plugin-settings`: the volume plugin is
//! enabled on every ready node, in one version, installed with the settings now in effect.
//! With a `[registry]`, the version must be the plugin pinned to the digest the registry has now
//! and the settings those of the pinned deployment (their fingerprint covers the pinned plugin
//! and notebook images), as [`super::registry`] found them.
//! Pure: judges the node list that [`super::swarm`] read (each node's plugin and its
//! `swarmhub.plugin-*` labels); reads and touches nothing itself.

use super::Check;
use super::registry::Pins;
use crate::docker::cluster::{NodeInfo, storage_node_in};
use crate::inspect::health::{plugin_versions, short_reference};
use crate::names;
use crate::names::{PLUGIN_SETTINGS_LABEL, PLUGIN_VERSION_LABEL};
use crate::plan;
use crate::settings::Config;

/// The fix of a node that is not on the deployed plugin.
const ROLLOUT_FIX: &str = "swarmhub plugin rollout (--drain stops the notebooks that keep a node from upgrading; their files stay)";

/// `plugin-enabled`, `plugin-version` and `plugin-settings`, in that order (skipped when the
/// nodes could not be listed); `pins`: what the registry pins the deployment to (with a
/// `[registry]` only).
pub(super) fn plugin_checks(
    cfg: &Config,
    nodes: Option<&[NodeInfo]>,
    pins: Option<&Pins>,
) -> Vec<Check> {
    let label = &cfg.cluster.storage_node_label;
    let mut out = Vec::new();
    let Some(nodes) = nodes else {
        out.extend(
            ["plugin-enabled", "plugin-version", "plugin-settings"]
                .map(|n| Check::skip(n, "the nodes could not be listed")),
        );
        return out;
    };
    out.push(check_plugin_enabled(nodes));
    let storage = storage_node_in(nodes, label).ok();
    let Some(pins) = pins else {
        out.push(check_plugin_versions(nodes));
        let wanted = storage.map(|s| plan::plugin_settings_fingerprint(cfg, &s.addr));
        out.push(check_plugin_settings(nodes, wanted.as_deref()));
        return out;
    };
    out.push(match pins.get("images.plugin") {
        Some(plugin) => check_plugin_deployed(nodes, plugin),
        // not in the registry (the registry check says so): one version everywhere at least
        None => check_plugin_versions(nodes),
    });
    out.push(match (storage, pins.config(cfg)) {
        (Some(s), Some(pinned)) => {
            check_plugin_deployed_settings(nodes, &plan::plugin_settings_fingerprint(&pinned, &s.addr))
        }
        (None, _) => check_plugin_settings(nodes, None),
        (Some(_), None) => Check::skip(
            "plugin-settings",
            "the deployed images are not all known (see the registry check), and the settings' fingerprint covers them",
        ),
    });
    out
}

// Judgements (pure).

/// The plugin is enabled on every ready node (pure).
pub fn check_plugin_enabled(nodes: &[NodeInfo]) -> Check {
    let ready: Vec<&NodeInfo> = nodes.iter().filter(|n| n.state == "ready").collect();
    let without: Vec<&str> = ready
        .iter()
        .filter(|n| !n.plugin_enabled)
        .map(|n| n.hostname.as_str())
        .collect();
    if without.is_empty() {
        return Check::ok(
            "plugin-enabled",
            format!(
                "{} enabled on {} ready node{}",
                names::PLUGIN_ALIAS,
                ready.len(),
                if ready.len() == 1 { "" } else { "s" }
            ),
        );
    }
    Check::fail(
        "plugin-enabled",
        format!(
            "{} is not enabled on {} (Swarm places no notebook there)",
            names::PLUGIN_ALIAS,
            without.join(", ")
        ),
        "swarmhub plugin rollout",
    )
}

/// Every ready node has the same plugin version (pure; digests shortened). Nodes whose version
/// was never recorded (no `swarmhub.plugin-version` label) count as a version of their own,
/// unless no node has one.
pub fn check_plugin_versions(nodes: &[NodeInfo]) -> Check {
    let versions = plugin_versions(nodes);
    match versions.len() {
        0 => Check::skip("plugin-version", "no node is ready"),
        1 => match versions.keys().next().cloned().flatten() {
            Some(v) => Check::ok(
                "plugin-version",
                format!("{} on every ready node", short_reference(&v)),
            ),
            None => Check::ok(
                "plugin-version",
                format!(
                    "no node records a version (node label {PLUGIN_VERSION_LABEL}; `swarmhub plugin rollout` writes it)"
                ),
            ),
        },
        _ => Check::fail(
            "plugin-version",
            format!(
                "the nodes run different plugin versions: {}",
                versions
                    .iter()
                    .map(|(v, hosts)| format!(
                        "{} on {}",
                        v.as_deref().map_or("unrecorded".into(), short_reference),
                        hosts.join(", ")
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "swarmhub plugin rollout",
        ),
    }
}

/// Every ready node's plugin was installed with the settings now in effect (pure): nfsd's
/// address and ports, the mount backend, the state and socket paths (`wanted`, the fingerprint
/// [`plan::plugin_settings_fingerprint`] of them; `None` when nfsd's node is not known). A node
/// whose label records other settings mounts with stale ones; a node without the label (a plugin
/// installed by `swarmhub plugin install`, or before the label existed) is only mentioned.
pub fn check_plugin_settings(nodes: &[NodeInfo], wanted: Option<&str>) -> Check {
    let Some(wanted) = wanted else {
        return Check::skip(
            "plugin-settings",
            "nfsd's node is not known (see the storage-node check), and its address is a setting",
        );
    };
    let with_plugin: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.state == "ready" && n.plugin_enabled)
        .collect();
    let host = |n: &&NodeInfo| n.hostname.clone();
    let stale: Vec<String> = with_plugin
        .iter()
        .filter(|n| n.plugin_settings.as_deref().is_some_and(|s| s != wanted))
        .map(host)
        .collect();
    let unrecorded: Vec<String> = with_plugin
        .iter()
        .filter(|n| n.plugin_settings.is_none())
        .map(host)
        .collect();
    if !stale.is_empty() {
        return Check::fail(
            "plugin-settings",
            format!(
                "the plugin on {} was installed with other settings than those in effect (nfsd's address or ports, backend, state or socket path); its mounts use the old ones",
                stale.join(", ")
            ),
            "swarmhub plugin rollout (a node whose notebooks have volumes mounted refuses until they are stopped)",
        );
    }
    let current = with_plugin.len() - unrecorded.len();
    let mut detail = format!(
        "installed with the settings in effect on {current} node{}",
        if current == 1 { "" } else { "s" }
    );
    if !unrecorded.is_empty() {
        detail.push_str(&format!(
            "; not recorded on {} (no {PLUGIN_SETTINGS_LABEL} label; `swarmhub plugin rollout` writes it)",
            unrecorded.join(", ")
        ));
    }
    Check::ok("plugin-settings", detail)
}

/// With a registry: every ready node with the plugin runs `deployed`, the plugin pinned to
/// the digest the registry has now (its `swarmhub.plugin-version` label, which the rollout
/// writes with the reference it pulled) (pure).
pub fn check_plugin_deployed(nodes: &[NodeInfo], deployed: &str) -> Check {
    let (on, behind) = not_on(
        nodes,
        deployed,
        |n| n.plugin_version.as_deref(),
        short_reference,
    );
    if on == 0 {
        return Check::skip("plugin-version", "no ready node has the plugin enabled");
    }
    let deployed = short_reference(deployed);
    if behind.is_empty() {
        return Check::ok("plugin-version", format!("{deployed} on every ready node"));
    }
    Check::fail(
        "plugin-version",
        format!(
            "not on the deployed plugin: {}; deployed is {deployed} (what the registry has now)",
            behind.join(", ")
        ),
        ROLLOUT_FIX,
    )
}

/// With a registry: every ready node's plugin was installed with the settings of the pinned
/// deployment, `wanted` (their fingerprint, [`plan::plugin_settings_fingerprint`] of the pinned
/// settings: nfsd's address and ports, backend, paths, and the pinned plugin and notebook
/// images the rollout pulls) (pure). A node without the label fails too: what it has is not
/// known to be the deployment.
pub fn check_plugin_deployed_settings(nodes: &[NodeInfo], wanted: &str) -> Check {
    let (on, stale) = not_on(
        nodes,
        wanted,
        |n| n.plugin_settings.as_deref(),
        str::to_string,
    );
    if stale.is_empty() {
        return Check::ok(
            "plugin-settings",
            format!(
                "installed with the deployed settings ({wanted}) on {on} node{}",
                if on == 1 { "" } else { "s" }
            ),
        );
    }
    Check::fail(
        "plugin-settings",
        format!(
            "installed with other settings than those deployed (nfsd's address or ports, backend, paths, the pinned plugin or notebook images): {}; deployed is {wanted}",
            stale.join(", ")
        ),
        ROLLOUT_FIX,
    )
}

/// Of the ready nodes with the plugin enabled: how many, and `<host> has <what>` for each
/// whose `recorded` label is not `wanted` (`show` writes a label for people).
fn not_on(
    nodes: &[NodeInfo],
    wanted: &str,
    recorded: impl Fn(&NodeInfo) -> Option<&str>,
    show: impl Fn(&str) -> String,
) -> (usize, Vec<String>) {
    let on: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.state == "ready" && n.plugin_enabled)
        .collect();
    let differ = on
        .iter()
        .filter(|n| recorded(n) != Some(wanted))
        .map(|n| match recorded(n) {
            Some(v) => format!("{} has {}", n.hostname, show(v)),
            None => format!("{} has none recorded", n.hostname),
        })
        .collect();
    (on.len(), differ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::doctor::Outcome;
    use crate::inspect::doctor::swarm::tests::node;

    #[test]
    fn plugin_everywhere_and_one_version() {
        let mut nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
        ];
        assert_eq!(check_plugin_enabled(&nodes).outcome, Outcome::Ok);
        let v = check_plugin_versions(&nodes);
        assert_eq!(
            (v.outcome, v.detail.as_str()),
            (Outcome::Ok, "0.1.0 on every ready node")
        );
        nodes[1].plugin_enabled = false;
        nodes[1].plugin_version = None;
        let c = check_plugin_enabled(&nodes);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("beta"), "{}", c.detail);
        assert_eq!(c.fix.as_deref(), Some("swarmhub plugin rollout"));
        let v = check_plugin_versions(&nodes);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.detail,
            "the nodes run different plugin versions: unrecorded on beta; 0.1.0 on alpha"
        );
        assert_eq!(v.fix.as_deref(), Some("swarmhub plugin rollout"));
        // a down node does not count
        nodes[1].state = "down".into();
        assert_eq!(check_plugin_enabled(&nodes).outcome, Outcome::Ok);
        assert_eq!(check_plugin_versions(&nodes).outcome, Outcome::Ok);
        nodes[0].plugin_version = None;
        assert_eq!(check_plugin_versions(&nodes).outcome, Outcome::Ok);
    }

    #[test]
    fn plugin_settings_must_be_those_in_effect() {
        let mut nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
            node("gamma", "ready", "active"),
        ];
        let c = check_plugin_settings(&nodes, Some("f1ngerpr1nt0"));
        assert_eq!(
            (c.outcome, c.detail.as_str()),
            (
                Outcome::Ok,
                "installed with the settings in effect on 3 nodes"
            )
        );
        // nfsd's node unknown: nothing to compare with
        let c = check_plugin_settings(&nodes, None);
        assert_eq!(c.outcome, Outcome::Skip, "{c:?}");
        // a node without the label is mentioned, not failed
        nodes[2].plugin_settings = None;
        let c = check_plugin_settings(&nodes, Some("f1ngerpr1nt0"));
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        assert!(
            c.detail.contains("on 2 nodes; not recorded on gamma"),
            "{}",
            c.detail
        );
        // settings changed since beta's rollout: failed, with the rollout as the fix
        let c = check_plugin_settings(&nodes, Some("0therpr1nt00"));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail
                .starts_with("the plugin on alpha, beta was installed with other settings"),
            "{}",
            c.detail
        );
        assert!(c.fix.unwrap().starts_with("swarmhub plugin rollout"));
        // a down node or one without the plugin does not count
        nodes[0].state = "down".into();
        nodes[1].plugin_enabled = false;
        let c = check_plugin_settings(&nodes, Some("0therpr1nt00"));
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
    }

    #[test]
    fn with_a_registry_every_node_runs_the_pinned_plugin_and_its_settings() {
        let deployed = format!(
            "r:5000/swarmhub/swarmhub-nfs:0.1.1@sha256:{}",
            "a".repeat(64)
        );
        let older = format!(
            "r:5000/swarmhub/swarmhub-nfs:0.1.0@sha256:{}",
            "b".repeat(64)
        );
        let mut nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
            node("gamma", "ready", "active"),
        ];
        for n in &mut nodes {
            n.plugin_version = Some(deployed.clone());
        }
        let c = check_plugin_deployed(&nodes, &deployed);
        assert_eq!(
            (c.outcome, c.detail.as_str()),
            (
                Outcome::Ok,
                "r:5000/swarmhub/swarmhub-nfs:0.1.1@sha256:aaaaaaaaaaaa on every ready node"
            )
        );
        nodes[1].plugin_version = Some(older);
        nodes[2].plugin_version = None;
        let c = check_plugin_deployed(&nodes, &deployed);
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail,
            "not on the deployed plugin: beta has r:5000/swarmhub/swarmhub-nfs:0.1.0@sha256:bbbbbbbbbbbb, gamma has none recorded; deployed is r:5000/swarmhub/swarmhub-nfs:0.1.1@sha256:aaaaaaaaaaaa (what the registry has now)"
        );
        let fix = c.fix.unwrap();
        assert!(
            fix.starts_with("swarmhub plugin rollout") && fix.contains("--drain"),
            "{fix}"
        );

        let c = check_plugin_deployed_settings(&nodes, "f1ngerpr1nt0");
        assert_eq!(
            (c.outcome, c.detail.as_str()),
            (
                Outcome::Ok,
                "installed with the deployed settings (f1ngerpr1nt0) on 3 nodes"
            )
        );
        nodes[0].plugin_settings = Some("0therpr1nt00".into());
        nodes[2].plugin_settings = None;
        let c = check_plugin_deployed_settings(&nodes, "f1ngerpr1nt0");
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail.ends_with(
                "alpha has 0therpr1nt00, gamma has none recorded; deployed is f1ngerpr1nt0"
            ),
            "{}",
            c.detail
        );
        assert!(c.fix.unwrap().contains("--drain"));
        // a down node or one without the plugin is another check's
        nodes[0].state = "down".into();
        nodes[1].plugin_enabled = false;
        nodes[2].plugin_enabled = false;
        assert_eq!(
            check_plugin_deployed(&nodes, &deployed).outcome,
            Outcome::Skip
        );
        assert_eq!(
            check_plugin_deployed_settings(&nodes, "f1ngerpr1nt0").outcome,
            Outcome::Ok
        );
    }
}
