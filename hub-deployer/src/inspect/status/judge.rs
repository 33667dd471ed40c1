//! What status alone decides from what [`super::gather()`] read: the swarm summary, the
//! deployed plugin and a node's row (whether it runs that plugin), which node's nfsd to ask,
//! which services are notebooks and which merely share the network, nfsd's API answer, the
//! plugin's volumes. Pure: no I/O.

use std::collections::HashMap;

use bollard::models::{Service, Task, TaskState, Volume};
use swarmhub_control_api::Health;

use super::{DeployedPlugin, NfsdApiStatus, NodeStatus, NotebookStatus, SwarmSummary, VolumeEntry};
use crate::docker::cluster::{NodeInfo, storage_node_in};
use crate::inspect::health::service_image;
use crate::inspect::probe::ProbeError;
use crate::names::{
    COMPONENT_LABEL, MANAGED_LABEL, NOTEBOOK_COMPONENT, PLUGIN_ALIAS, ROLE_LABEL, USER_LABEL,
};
use crate::plan;
use crate::settings::Config;

/// The swarm as a whole: counts, this node's host name, the storage node when exactly one.
pub(super) fn swarm_summary(
    nodes: &[NodeInfo],
    this_node_id: &str,
    storage: &[&NodeInfo],
    hostnames: &HashMap<String, String>,
) -> SwarmSummary {
    SwarmSummary {
        this_node: hostnames.get(this_node_id).cloned().unwrap_or_default(),
        this_node_id: this_node_id.to_string(),
        nodes: nodes.len(),
        managers: nodes.iter().filter(|n| n.role == "manager").count(),
        ready: nodes.iter().filter(|n| n.state == "ready").count(),
        storage_node: match storage {
            [one] => Some(one.hostname.clone()),
            _ => None,
        },
    }
}

/// The storage node whose nfsd to ask, or why there is none (`storage`: the nodes labelled
/// `<label>=true`).
pub(super) fn nfsd_api_node<'a>(
    storage: &[&'a NodeInfo],
    label: &str,
) -> Result<&'a NodeInfo, String> {
    match storage {
        [one] if !one.addr.is_empty() => Ok(one),
        [one] => Err(format!("storage node {} reports no address", one.hostname)),
        [] => Err(format!("no node has the label {label}=true")),
        many => Err(format!(
            "{} nodes have the label {label}=true ({})",
            many.len(),
            hostnames_of(many)
        )),
    }
}

/// The volumes of the `swarmhub-nfs` plugin among all this dockerd knows, by name. Filtered
/// here, not by dockerd: its driver filter does not match the managed plugin's full name
/// (`swarmhub-nfs:latest`), which is what volumes of the plugin record.
pub(super) fn plugin_volumes(all: Vec<Volume>) -> Vec<VolumeEntry> {
    let mut out: Vec<VolumeEntry> = all
        .into_iter()
        .filter(|v| v.driver == PLUGIN_ALIAS || v.driver.starts_with("swarmhub-nfs:"))
        .map(|v| VolumeEntry {
            name: v.name,
            options: v.options.into_iter().collect(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The plugin the settings in effect deploy (`cfg` as the CLI pinned it: with a registry,
/// `images.plugin` is `ref@sha256:…`), and the fingerprint of its settings when nfsd's node is
/// known among `nodes`.
pub(super) fn deployed_plugin(cfg: &Config, nodes: &[NodeInfo]) -> DeployedPlugin {
    let registry = cfg.registry.address.is_some();
    // with a registry, only pinned settings say what is deployed (the CLI could not pin: the
    // registry is down or lacks an image); then nothing is compared
    if registry && !cfg.images.plugin.contains('@') {
        return DeployedPlugin {
            source: cfg.images.plugin.clone(),
            version: None,
            settings: None,
        };
    }
    DeployedPlugin {
        source: if registry {
            cfg.images.plugin.clone()
        } else {
            cfg.images.cli.clone()
        },
        version: registry.then(|| cfg.images.plugin.clone()),
        settings: storage_node_in(nodes, &cfg.cluster.storage_node_label)
            .ok()
            .map(|s| plan::plugin_settings_fingerprint(cfg, &s.addr)),
    }
}

/// Whether the node runs `deployed`: its plugin enabled, and neither its recorded version nor
/// its recorded settings other than the deployment's. `None` when there is nothing to compare
/// (the deployment's version unknown without a registry, and no settings to compare).
pub(super) fn plugin_current(n: &NodeInfo, deployed: &DeployedPlugin) -> Option<bool> {
    let version = deployed
        .version
        .as_ref()
        .map(|v| n.plugin_version.as_ref() == Some(v));
    let settings = deployed
        .settings
        .as_ref()
        .and_then(|s| n.plugin_settings.as_ref().map(|x| x == s));
    if !n.plugin_enabled {
        return Some(false);
    }
    match (version, settings) {
        (None, None) => None,
        (v, s) => Some(v != Some(false) && s != Some(false)),
    }
}

pub(super) fn node_status(
    n: &NodeInfo,
    this_node_id: &str,
    label: &str,
    deployed: &DeployedPlugin,
) -> NodeStatus {
    NodeStatus {
        id: n.id.clone(),
        hostname: n.hostname.clone(),
        role: n.role.clone(),
        state: n.state.clone(),
        availability: n.availability.clone(),
        addr: n.addr.clone(),
        this_node: n.id == this_node_id,
        storage: n.labels.get(label).map(String::as_str) == Some("true"),
        plugin_enabled: n.plugin_enabled,
        plugin_version: n.plugin_version.clone(),
        plugin_settings: n.plugin_settings.clone(),
        plugin_current: plugin_current(n, deployed),
        engine_version: n.engine_version.clone(),
    }
}

fn hostnames_of(nodes: &[&NodeInfo]) -> String {
    nodes
        .iter()
        .map(|n| n.hostname.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Split services into notebooks (with their newest task) and other services attached to the
/// network (pure).
pub fn classify_services(
    services: &[Service],
    tasks: &[Task],
    network_id: Option<&str>,
    hostnames: &HashMap<String, String>,
) -> (Vec<NotebookStatus>, Vec<String>) {
    let mut notebooks = Vec::new();
    let mut others = Vec::new();
    for s in services {
        let spec = s.spec.clone().unwrap_or_default();
        let labels = spec.labels.clone().unwrap_or_default();
        let name = spec.name.clone().unwrap_or_default();
        if labels.get(COMPONENT_LABEL).map(String::as_str) == Some(NOTEBOOK_COMPONENT) {
            let id = s.id.clone().unwrap_or_default();
            let newest = tasks
                .iter()
                .filter(|t| t.service_id.as_deref() == Some(id.as_str()))
                .max_by_key(|t| task_time(t));
            let counts = s.service_status.clone().unwrap_or_default();
            let status = newest.and_then(|t| t.status.clone()).unwrap_or_default();
            notebooks.push(NotebookStatus {
                name,
                user: labels.get(USER_LABEL).cloned(),
                role: labels.get(ROLE_LABEL).cloned(),
                image: service_image(s),
                running: counts.running_tasks.unwrap_or(0),
                desired: counts.desired_tasks.unwrap_or(0),
                node: newest
                    .and_then(|t| t.node_id.as_ref())
                    .and_then(|id| hostnames.get(id).cloned()),
                state: newest.map(|_| status.state.unwrap_or(TaskState::NEW).to_string()),
                error: status.err.filter(|e| !e.is_empty()),
            });
            continue;
        }
        if labels.get(MANAGED_LABEL).map(String::as_str) == Some("true") {
            continue;
        }
        let attached = spec
            .task_template
            .as_ref()
            .and_then(|t| t.networks.clone())
            .into_iter()
            .chain(spec.networks.clone())
            .flatten()
            .any(|n| n.target.is_some() && n.target.as_deref() == network_id);
        if attached {
            others.push(name);
        }
    }
    notebooks.sort_by(|a, b| a.name.cmp(&b.name));
    others.sort();
    (notebooks, others)
}

fn task_time(t: &Task) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.timestamp.as_ref())
        .map(|ts| ts.to_string())
        .unwrap_or_default()
}

/// Assemble an [`NfsdApiStatus`] from a probe's result (pure).
pub fn nfsd_api_status(url: String, result: Result<Health, ProbeError>) -> NfsdApiStatus {
    match result {
        Ok(h) => NfsdApiStatus {
            url: Some(url),
            reachable: true,
            health: Some(h),
            error: None,
        },
        Err(e) => NfsdApiStatus {
            url: Some(url),
            reachable: false,
            health: None,
            error: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{NetworkAttachmentConfig, ServiceServiceStatus, TaskStatus};

    use crate::inspect::health::storage_nodes;
    use crate::inspect::status::tests::{node, replicated};

    fn service(name: &str, labels: &[(&str, &str)], net: Option<&str>) -> Service {
        let mut s = replicated(name, "swarmhub/notebook-student:0.1.0");
        s.id = Some(format!("sid-{name}"));
        let spec = s.spec.as_mut().unwrap();
        spec.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        spec.task_template.as_mut().unwrap().networks = net.map(|n| {
            vec![NetworkAttachmentConfig {
                target: Some(n.into()),
                ..Default::default()
            }]
        });
        s.service_status = Some(ServiceServiceStatus {
            running_tasks: Some(0),
            desired_tasks: Some(1),
            completed_tasks: None,
        });
        s
    }

    #[test]
    fn notebooks_are_found_by_label_and_others_by_network() {
        let services = vec![
            service(
                "jupyter-alice",
                &[
                    (COMPONENT_LABEL, NOTEBOOK_COMPONENT),
                    (USER_LABEL, "alice"),
                    (ROLE_LABEL, "student"),
                ],
                Some("net1"),
            ),
            service("swarmhub-hub", &[(MANAGED_LABEL, "true")], Some("net1")),
            service("debug", &[], Some("net1")),
            service("elsewhere", &[], Some("net2")),
        ];
        let tasks = vec![
            Task {
                service_id: Some("sid-jupyter-alice".into()),
                node_id: Some("n2".into()),
                status: Some(TaskStatus {
                    state: Some(TaskState::REJECTED),
                    err: Some("VolumeDriver.Mount: nfsd unreachable".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Task {
                service_id: Some("sid-other".into()),
                ..Default::default()
            },
        ];
        let hosts = HashMap::from([("n2".to_string(), "beta".to_string())]);
        let (nb, others) = classify_services(&services, &tasks, Some("net1"), &hosts);
        assert_eq!(others, ["debug"]);
        assert_eq!(nb.len(), 1);
        let a = &nb[0];
        assert_eq!(a.user.as_deref(), Some("alice"));
        assert_eq!(a.node.as_deref(), Some("beta"));
        assert_eq!(a.state.as_deref(), Some("rejected"));
        assert_eq!(
            a.error.as_deref(),
            Some("VolumeDriver.Mount: nfsd unreachable")
        );
        assert_eq!((a.running, a.desired), (0, 1));
        // without the network nothing counts as attached
        let (_, others) = classify_services(&services, &tasks, None, &hosts);
        assert!(others.is_empty());
    }

    #[test]
    fn summary_counts_and_the_storage_node() {
        let mut alpha = node("alpha", "ready", &[("swarmhub.storage", "true")]);
        alpha.role = "manager".into();
        let nodes = vec![alpha, node("beta", "down", &[])];
        let hostnames = nodes
            .iter()
            .map(|n| (n.id.clone(), n.hostname.clone()))
            .collect();
        let storage = storage_nodes(&nodes, "swarmhub.storage");
        let s = swarm_summary(&nodes, "id-beta", &storage, &hostnames);
        assert_eq!(
            (s.nodes, s.managers, s.ready, s.this_node.as_str()),
            (2, 1, 1, "beta")
        );
        assert_eq!(s.storage_node.as_deref(), Some("alpha"));
        let s = swarm_summary(&nodes, "id-gone", &[], &hostnames);
        assert_eq!((s.this_node.as_str(), s.storage_node), ("", None));
    }

    #[test]
    fn nfsd_is_asked_on_the_one_storage_node_with_an_address() {
        let label = "swarmhub.storage";
        let mut a = node("alpha", "ready", &[(label, "true")]);
        let b = node("beta", "ready", &[(label, "true")]);
        assert_eq!(nfsd_api_node(&[&a], label).unwrap().hostname, "alpha");
        assert_eq!(
            nfsd_api_node(&[], label).unwrap_err(),
            "no node has the label swarmhub.storage=true"
        );
        assert_eq!(
            nfsd_api_node(&[&a, &b], label).unwrap_err(),
            "2 nodes have the label swarmhub.storage=true (alpha, beta)"
        );
        a.addr.clear();
        assert_eq!(
            nfsd_api_node(&[&a], label).unwrap_err(),
            "storage node alpha reports no address"
        );
    }

    #[test]
    fn a_registry_that_could_not_pin_leaves_currency_unknown() {
        let cfg = Config::from_toml(
            "[registry]\naddress = \"r:5000\"\n",
            std::path::Path::new("swarmhub.toml"),
            Vec::new(),
        )
        .unwrap();
        let mut n = node("alpha", "ready", &[("swarmhub.storage", "true")]);
        n.plugin_version = Some("r:5000/swarmhub/swarmhub-nfs:0.1.0@sha256:aa".into());
        n.plugin_settings = Some("f1ngerpr1nt0".into());
        // unpinned (the CLI could not ask the registry): nothing to compare, not "NO"
        let d = deployed_plugin(&cfg, std::slice::from_ref(&n));
        assert_eq!((d.version.as_deref(), d.settings.as_deref()), (None, None));
        assert_eq!(plugin_current(&n, &d), None);
        // pinned: compared
        let mut pinned = cfg.clone();
        pinned.images.plugin = "r:5000/swarmhub/swarmhub-nfs:0.1.0@sha256:aa".into();
        let d = deployed_plugin(&pinned, std::slice::from_ref(&n));
        assert_eq!(d.version.as_deref(), n.plugin_version.as_deref());
        assert_eq!(plugin_current(&n, &d), Some(false), "the settings differ");
    }

    #[test]
    fn a_node_runs_the_deployed_plugin_when_nothing_known_differs() {
        let pinned = "r:5000/swarmhub/swarmhub-nfs:0.1.1@sha256:aa";
        let mut n = node("alpha", "ready", &[]);
        n.plugin_version = Some(pinned.into());
        let deployed = DeployedPlugin {
            source: pinned.into(),
            version: Some(pinned.into()),
            settings: Some("f1ngerpr1nt0".into()),
        };
        assert_eq!(plugin_current(&n, &deployed), Some(true));
        // an older plugin, other settings, or none enabled: not current
        let mut old = n.clone();
        old.plugin_version = Some("r:5000/swarmhub/swarmhub-nfs:0.1.0@sha256:bb".into());
        assert_eq!(plugin_current(&old, &deployed), Some(false));
        let mut unrecorded = n.clone();
        unrecorded.plugin_version = None;
        assert_eq!(plugin_current(&unrecorded, &deployed), Some(false));
        let mut other = n.clone();
        other.plugin_settings = Some("0therpr1nt00".into());
        assert_eq!(plugin_current(&other, &deployed), Some(false));
        let mut off = n.clone();
        off.plugin_enabled = false;
        assert_eq!(plugin_current(&off, &deployed), Some(false));
        // without a registry only the settings are known; without them, nothing is
        let bundle = DeployedPlugin {
            source: "swarmhub/swarmhub:0.1.0".into(),
            version: None,
            settings: Some("f1ngerpr1nt0".into()),
        };
        assert_eq!(plugin_current(&old, &bundle), Some(true));
        assert_eq!(plugin_current(&other, &bundle), Some(false));
        let mut no_label = n.clone();
        no_label.plugin_settings = None;
        assert_eq!(plugin_current(&no_label, &bundle), None);
        let unknown = DeployedPlugin {
            settings: None,
            ..bundle
        };
        assert_eq!(plugin_current(&n, &unknown), None);
    }

    #[test]
    fn only_the_plugins_volumes_by_name() {
        let vol = |name: &str, driver: &str| Volume {
            name: name.into(),
            driver: driver.into(),
            options: [("share".to_string(), name.to_string())].into(),
            ..Default::default()
        };
        let got = plugin_volumes(vec![
            vol("home-b", "swarmhub-nfs:latest"),
            vol("scratch", "local"),
            vol("home-a", PLUGIN_ALIAS),
        ]);
        let names: Vec<&str> = got.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["home-a", "home-b"]);
        assert_eq!(
            got[0].options.get("share").map(String::as_str),
            Some("home-a")
        );
    }
}
