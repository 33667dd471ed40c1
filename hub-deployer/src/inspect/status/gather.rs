//! The Docker reads that fill a [`Status`]: nodes, the network, the services and their tasks,
//! notebooks, nfsd's health endpoint, the plugin's volumes, and (while a notebook runs) the
//! running containers' swarmhub mounts. May touch dockerd (reads, plus the one-shot job
//! `swarmhub-mount-check` that it starts and removes) and nfsd's HTTP API; every decision about what was read is a pure function elsewhere
//! ([`super::judge`], [`crate::inspect::health`]). A failed read is recorded in
//! `Status::errors` or in its section, never returned, once the connection works.

use std::collections::HashMap;

use anyhow::Context;

use super::judge::{
    classify_services, deployed_plugin, nfsd_api_node, nfsd_api_status, node_status,
    plugin_volumes, swarm_summary,
};
use super::{
    MountsStatus, NetworkStatus, NfsdApiStatus, NotebookStatus, ServiceStatus, Status,
    VolumesStatus,
};
use crate::docker::cluster::Swarm;
use crate::docker::engine::absent;
use crate::inspect::health::{network_status_of, probe_timeout, service_status_of, storage_nodes};
use crate::inspect::{mounts, probe};
use crate::names;
use crate::names::PLUGIN_ALIAS;
use crate::progress::Progress;
use crate::settings::Config;

/// Read everything `status` shows, each node's plugin compared with the one `cfg` deploys
/// (the CLI pins `cfg` to the registry's digests first when there is a registry). Fails only on
/// what `Cluster::connect` already checked; anything else that fails is reported in the result.
pub async fn gather(c: &Swarm, cfg: &Config) -> anyhow::Result<Status> {
    let mut errors = Vec::new();
    let this_node_id = c.self_node_id().await.unwrap_or_else(|e| {
        errors.push(format!("{e:#}"));
        String::new()
    });
    let nodes = c.nodes().await.unwrap_or_else(|e| {
        errors.push(format!("{e:#}"));
        Vec::new()
    });
    let label = &cfg.cluster.storage_node_label;
    let storage = storage_nodes(&nodes, label);
    let hostnames: HashMap<String, String> = nodes
        .iter()
        .map(|n| (n.id.clone(), n.hostname.clone()))
        .collect();
    let swarm = swarm_summary(&nodes, &this_node_id, &storage, &hostnames);
    let plugin = deployed_plugin(cfg, &nodes);
    let node_rows = nodes
        .iter()
        .map(|n| node_status(n, &this_node_id, label, &plugin))
        .collect();

    let network = network_status(c, &cfg.cluster.network, &mut errors).await;

    let mut services = Vec::new();
    let gate = names::docker_gate_service(&cfg.cluster.hub_service);
    for (component, name) in [
        ("nfsd", &cfg.cluster.nfsd_service),
        ("hub", &cfg.cluster.hub_service),
        (names::DOCKER_GATE_COMPONENT, &gate),
    ] {
        services.push(service_status(c, component, name, &mut errors).await);
    }
    // the directory of `swarmhub demo up`, when this is the demo
    if matches!(c.service(names::LDAP_SERVICE).await, Ok(Some(_))) {
        let name = names::LDAP_SERVICE.to_string();
        services.push(service_status(c, "demo-ldap", &name, &mut errors).await);
    }

    let (notebooks, other_services) =
        match notebook_statuses(c, network.id.as_deref(), &hostnames).await {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("{e:#}"));
                (Vec::new(), Vec::new())
            }
        };

    let nfsd_api = match nfsd_api_node(&storage, label) {
        Ok(one) => {
            let base = probe::nfsd_api_base(&one.addr, cfg.cluster.nfsd_api_port);
            nfsd_api_status(
                base.clone(),
                probe::nfsd_health(&base, probe_timeout(cfg)).await,
            )
        }
        Err(error) => NfsdApiStatus {
            url: None,
            reachable: false,
            health: None,
            error: Some(error),
        },
    };

    let volumes = volumes_status(c).await;
    let mounts = if notebooks.iter().any(|n| n.running > 0) {
        mounts_status(c, cfg).await
    } else {
        MountsStatus::default()
    };

    Ok(Status {
        docker_host: c.host.clone(),
        swarm,
        nodes: node_rows,
        plugin,
        network,
        services,
        notebooks,
        other_services,
        nfsd_api,
        volumes,
        mounts,
        errors,
    })
}

/// The swarmhub mounts of every running container, by the one-shot job on every node.
async fn mounts_status(c: &Swarm, cfg: &Config) -> MountsStatus {
    match mounts::read(c, cfg, &Progress::stderr()).await {
        Ok(nodes) => {
            let broken = mounts::broken(&nodes);
            MountsStatus {
                checked: true,
                fix: mounts::fix_for(&broken).map(str::to_string),
                broken,
                nodes,
                error: None,
            }
        }
        Err(e) => MountsStatus {
            error: Some(format!(
                "cannot run the job {}: {}",
                names::MOUNT_CHECK_SERVICE,
                e.chain().join(": ")
            )),
            ..MountsStatus::default()
        },
    }
}

async fn network_status(c: &Swarm, name: &str, errors: &mut Vec<String>) -> NetworkStatus {
    match absent(c.engine().inspect_network(name, false).await) {
        Ok(n) => network_status_of(name, n.as_ref()),
        Err(e) => {
            errors.push(format!("cannot inspect network {name}: {}", e.message()));
            NetworkStatus {
                name: name.to_string(),
                ..Default::default()
            }
        }
    }
}

async fn service_status(
    c: &Swarm,
    component: &str,
    name: &str,
    errors: &mut Vec<String>,
) -> ServiceStatus {
    let service = match c.service(name).await {
        Ok(s) => s,
        Err(e) => {
            errors.push(format!("{e:#}"));
            None
        }
    };
    let tasks = match &service {
        Some(_) => c.tasks(name).await.unwrap_or_else(|e| {
            errors.push(format!("{e:#}"));
            Vec::new()
        }),
        None => Vec::new(),
    };
    service_status_of(component, name, service.as_ref(), tasks)
}

/// Notebook services, and the other services on the network that are not swarmhub's.
async fn notebook_statuses(
    c: &Swarm,
    network_id: Option<&str>,
    hostnames: &HashMap<String, String>,
) -> anyhow::Result<(Vec<NotebookStatus>, Vec<String>)> {
    let services = c.all_services().await?;
    // one call for every task, instead of one per notebook (a class is hundreds of services)
    let tasks = c
        .engine()
        .list_all_tasks()
        .await
        .context("cannot list tasks")?;
    Ok(classify_services(&services, &tasks, network_id, hostnames))
}

async fn volumes_status(c: &Swarm) -> VolumesStatus {
    // filtered here, not by dockerd: its driver filter does not match the managed plugin's
    // full name (`swarmhub-nfs:latest`), which is what volumes of the plugin record
    let mut s = VolumesStatus {
        driver: PLUGIN_ALIAS.into(),
        listed: false,
        volumes: Vec::new(),
        warnings: Vec::new(),
        error: None,
    };
    match c.engine().list_volumes().await {
        Ok(list) => {
            s.listed = true;
            s.warnings = list.warnings.unwrap_or_default();
            s.volumes = plugin_volumes(list.volumes.unwrap_or_default());
        }
        Err(e) => {
            s.error = Some(format!(
                "cannot list the {PLUGIN_ALIAS} volumes: {}",
                e.message()
            ))
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::engine::Engine;
    use crate::inspect::status::ServiceHealth;
    use crate::inspect::tests::{
        NODE, REGISTRY, digest, healthy, pinned, registry_settings, settings,
    };
    use crate::names::{PLUGIN_SETTINGS_LABEL, PLUGIN_VERSION_LABEL};

    #[tokio::test]
    async fn a_running_stack_lists_services_notebooks_nodes_and_volumes() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let s = gather(&c, &cfg).await.unwrap();
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.docker_host, "fake");

        assert_eq!(s.swarm.this_node_id, NODE);
        assert_eq!(s.swarm.this_node, "alpha");
        assert_eq!((s.swarm.nodes, s.swarm.managers, s.swarm.ready), (1, 1, 1));
        assert_eq!(s.swarm.storage_node.as_deref(), Some("alpha"));
        let [alpha] = s.nodes.as_slice() else {
            panic!("one node: {:?}", s.nodes)
        };
        assert!(
            alpha.this_node && alpha.storage && alpha.plugin_enabled,
            "{alpha:?}"
        );
        assert_eq!(
            (
                alpha.role.as_str(),
                alpha.state.as_str(),
                alpha.addr.as_str()
            ),
            ("manager", "ready", "127.0.0.1")
        );
        assert_eq!(alpha.plugin_version.as_deref(), Some("0.1.0"));

        assert!(s.network.found, "{:?}", s.network);
        assert_eq!(s.network.driver.as_deref(), Some("overlay"));

        let services: Vec<(&str, &str, ServiceHealth, u64)> = s
            .services
            .iter()
            .map(|x| {
                (
                    x.component.as_str(),
                    x.name.as_str(),
                    x.health.clone(),
                    x.running,
                )
            })
            .collect();
        assert_eq!(
            services,
            [
                (
                    "nfsd",
                    cfg.cluster.nfsd_service.as_str(),
                    ServiceHealth::Running,
                    1
                ),
                (
                    "hub",
                    cfg.cluster.hub_service.as_str(),
                    ServiceHealth::Running,
                    1
                ),
                (
                    "docker-gate",
                    names::docker_gate_service(&cfg.cluster.hub_service).as_str(),
                    ServiceHealth::Running,
                    1
                ),
            ]
        );
        assert!(
            s.services
                .iter()
                .all(|x| x.deployed && x.desired == Some(1))
        );
        assert_eq!(s.services[0].tasks[0].node, "alpha");
        let gate_line = format!(
            "{} (docker-gate): swarmhub/swarmhub:0.1.0, 1/1 running",
            names::docker_gate_service(&cfg.cluster.hub_service)
        );
        assert!(s.text().contains(&gate_line), "{}", s.text());

        let [nb] = s.notebooks.as_slice() else {
            panic!("one notebook: {:?}", s.notebooks)
        };
        assert_eq!(nb.name, "jupyter-alice");
        assert_eq!(nb.user.as_deref(), Some("alice"));
        assert_eq!(nb.role.as_deref(), Some("student"));
        assert_eq!((nb.running, nb.desired), (1, 1));
        assert_eq!(nb.node.as_deref(), Some("alpha"));
        assert_eq!(nb.state.as_deref(), Some("running"));
        assert!(s.other_services.is_empty(), "{:?}", s.other_services);

        // nothing listens on the fake storage node's API port: reported, not returned
        let url = format!("http://127.0.0.1:{}", cfg.cluster.nfsd_api_port);
        assert_eq!(s.nfsd_api.url.as_deref(), Some(url.as_str()));
        assert!(!s.nfsd_api.reachable);
        assert!(s.nfsd_api.error.is_some(), "{:?}", s.nfsd_api);

        assert!(s.volumes.listed);
        let volumes: Vec<&str> = s.volumes.volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["home-alice"]);
        // alice's notebook runs: its mounts were checked, by the one job status starts and
        // removes; nothing else was changed
        assert!(
            s.mounts.checked && s.mounts.broken.is_empty(),
            "{:?}",
            s.mounts
        );
        assert_eq!(s.mounts.nodes.len(), 1, "{:?}", s.mounts);
        assert_eq!(
            c.engine().changes(),
            [
                "create_service swarmhub-mount-check",
                "delete_service swarmhub-mount-check"
            ]
        );
    }

    #[tokio::test]
    async fn a_stopped_nfsd_a_missing_hub_and_no_storage_node_are_reported_not_returned() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let e = c.engine();
        e.delete_service(&cfg.cluster.hub_service).await.unwrap();
        crate::apply::scale(&c, &cfg.cluster.nfsd_service, 0)
            .await
            .unwrap();
        e.edit_node(NODE, |n| {
            n.spec.as_mut().unwrap().labels.as_mut().unwrap().clear();
        });
        e.disable_plugin(PLUGIN_ALIAS).await.unwrap();
        let s = gather(&c, &cfg).await.unwrap();
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.services[0].health, ServiceHealth::Stopped);
        assert_eq!(s.services[0].running, 0);
        assert_eq!(s.services[1].health, ServiceHealth::NotDeployed);
        assert!(!s.services[1].deployed);
        assert_eq!(s.swarm.storage_node, None);
        assert!(
            !s.nodes[0].storage && !s.nodes[0].plugin_enabled,
            "{:?}",
            s.nodes
        );
        assert_eq!(s.nfsd_api.url, None);
        assert!(
            s.nfsd_api
                .error
                .as_deref()
                .is_some_and(|e| e.contains(&cfg.cluster.storage_node_label)),
            "{:?}",
            s.nfsd_api
        );
        // the notebook is still listed, by its labels
        assert_eq!(s.notebooks[0].user.as_deref(), Some("alice"));
    }

    #[tokio::test]
    async fn with_a_registry_each_node_is_compared_with_the_pinned_plugin() {
        let cfg = pinned(&registry_settings(), &digest('a'));
        let c = healthy(&cfg).await;
        let s = gather(&c, &cfg).await.unwrap();
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        let plugin_ref = format!("{REGISTRY}/swarmhub/swarmhub-nfs:0.1.0@{}", digest('a'));
        assert_eq!(s.plugin.version.as_deref(), Some(plugin_ref.as_str()));
        assert_eq!(s.plugin.source, plugin_ref);
        let alpha = &s.nodes[0];
        assert_eq!(alpha.plugin_version.as_deref(), Some(plugin_ref.as_str()));
        assert_eq!(alpha.plugin_current, Some(true), "{alpha:?}");
        assert_eq!(alpha.plugin_settings, s.plugin.settings);
        // JSON: the whole reference; text: the digest cut to 12 hex digits
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["nodes"][0]["plugin_version"], plugin_ref.as_str());
        assert_eq!(v["nodes"][0]["plugin_enabled"], true);
        assert_eq!(v["nodes"][0]["plugin_current"], true);
        let text = s.text();
        let short = format!("{REGISTRY}/swarmhub/swarmhub-nfs:0.1.0@sha256:aaaaaaaaaaaa");
        for want in [
            format!("enabled {short}  yes\n"),
            format!("  plugin deployed: {short} (settings "),
            format!(
                "{} (nfsd): {REGISTRY}/swarmhub/nfsd:0.1.0@sha256:aaaaaaaaaaaa, 1/1 running",
                cfg.cluster.nfsd_service
            ),
            format!(
                "{} (hub): {REGISTRY}/swarmhub/hub:0.1.0@sha256:aaaaaaaaaaaa, 1/1 running",
                cfg.cluster.hub_service
            ),
        ] {
            assert!(text.contains(&want), "{want:?} missing from\n{text}");
        }
        assert!(!text.contains(&digest('a')), "{text}");
        assert!(!text.contains("not on it"), "{text}");

        // a node whose last rollout installed an older plugin is behind
        let old = format!("{REGISTRY}/swarmhub/swarmhub-nfs:0.1.0@{}", digest('b'));
        c.engine().edit_node(NODE, |n| {
            let labels = n.spec.as_mut().unwrap().labels.as_mut().unwrap();
            labels.insert(PLUGIN_VERSION_LABEL.into(), old.clone());
        });
        let s = gather(&c, &cfg).await.unwrap();
        assert_eq!(s.nodes[0].plugin_current, Some(false));
        assert_eq!(s.nodes[0].plugin_version.as_deref(), Some(old.as_str()));
        let text = s.text();
        assert!(text.contains("@sha256:bbbbbbbbbbbb  NO\n"), "{text}");
        assert!(
            text.contains("  not on it: alpha (swarmhub plugin rollout"),
            "{text}"
        );

        // the right plugin, installed with other settings (other notebook images, nfsd's port)
        c.engine().edit_node(NODE, |n| {
            let labels = n.spec.as_mut().unwrap().labels.as_mut().unwrap();
            labels.insert(PLUGIN_VERSION_LABEL.into(), plugin_ref.clone());
            labels.insert(PLUGIN_SETTINGS_LABEL.into(), "0123456789ab".into());
        });
        let s = gather(&c, &cfg).await.unwrap();
        assert_eq!(s.nodes[0].plugin_current, Some(false));
        assert_eq!(s.nodes[0].plugin_settings.as_deref(), Some("0123456789ab"));
    }
}
