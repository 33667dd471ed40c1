//! What status alone decides from what [`super::gather()`] read: a node's row, which services
//! are notebooks and which merely share the network, nfsd's API answer. Pure: no I/O.

use std::collections::HashMap;

use bollard::models::{Service, Task, TaskState};
use swarmhub_control_api::Health;

use super::{NfsdApiStatus, NodeStatus, NotebookStatus};
use crate::docker::cluster::NodeInfo;
use crate::inspect::health::service_image;
use crate::inspect::probe::ProbeError;
use crate::names::{COMPONENT_LABEL, MANAGED_LABEL, NOTEBOOK_COMPONENT, ROLE_LABEL, USER_LABEL};

pub(super) fn node_status(n: &NodeInfo, this_node_id: &str, label: &str) -> NodeStatus {
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
        engine_version: n.engine_version.clone(),
    }
}

pub(super) fn hostnames_of(nodes: &[&NodeInfo]) -> String {
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
    use bollard::models::{
        NetworkAttachmentConfig, ServiceServiceStatus, ServiceSpec, ServiceSpecMode,
        ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskStatus,
    };

    fn service(name: &str, labels: &[(&str, &str)], net: Option<&str>) -> Service {
        Service {
            id: Some(format!("sid-{name}")),
            spec: Some(ServiceSpec {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                task_template: Some(TaskSpec {
                    container_spec: Some(TaskSpecContainerSpec {
                        image: Some("swarmhub/notebook-student:0.1.0".into()),
                        ..Default::default()
                    }),
                    networks: net.map(|n| {
                        vec![NetworkAttachmentConfig {
                            target: Some(n.into()),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }),
                mode: Some(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            service_status: Some(ServiceServiceStatus {
                running_tasks: Some(0),
                desired_tasks: Some(1),
                completed_tasks: None,
            }),
            ..Default::default()
        }
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
}
