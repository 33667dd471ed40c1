//! Checks `plugin-enabled`, `plugin-version` and `plugin-settings`: the volume plugin is
//! enabled on every ready node, in one version, installed with the settings now in effect.
//! Pure: judges the node list that [`super::swarm`] read (each node's plugin and its
//! `swarmhub.plugin-*` labels); reads and touches nothing itself.

use super::Check;
use crate::docker::cluster::{NodeInfo, storage_node_in};
use crate::inspect::health::plugin_versions;
use crate::names;
use crate::names::{PLUGIN_SETTINGS_LABEL, PLUGIN_VERSION_LABEL};
use crate::plan;
use crate::settings::Config;

/// `plugin-enabled`, `plugin-version` and `plugin-settings`, in that order (skipped when the
/// nodes could not be listed).
pub(super) fn plugin_checks(cfg: &Config, nodes: Option<&[NodeInfo]>) -> Vec<Check> {
    let label = &cfg.cluster.storage_node_label;
    let mut out = Vec::new();
    match nodes {
        Some(nodes) => {
            out.push(check_plugin_enabled(nodes));
            out.push(check_plugin_versions(nodes));
            let wanted = storage_node_in(nodes, label)
                .ok()
                .map(|s| plan::plugin_settings_fingerprint(cfg, &s.addr));
            out.push(check_plugin_settings(nodes, wanted.as_deref()));
        }
        None => out.extend(
            ["plugin-enabled", "plugin-version", "plugin-settings"]
                .map(|n| Check::skip(n, "the nodes could not be listed")),
        ),
    }
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

/// Every ready node has the same plugin version (pure). Nodes whose version was never
/// recorded (no `swarmhub.plugin-version` label) count as a version of their own, unless no
/// node has one.
pub fn check_plugin_versions(nodes: &[NodeInfo]) -> Check {
    let versions = plugin_versions(nodes);
    match versions.len() {
        0 => Check::skip("plugin-version", "no node is ready"),
        1 => match versions.keys().next().cloned().flatten() {
            Some(v) => Check::ok("plugin-version", format!("{v} on every ready node")),
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
                        v.as_deref().unwrap_or("unrecorded"),
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
}
