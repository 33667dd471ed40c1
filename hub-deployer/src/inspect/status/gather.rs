//! The Docker reads that fill a [`Status`]: nodes, the network, the services and their tasks,
//! notebooks, nfsd's health endpoint, the plugin's volumes. May touch dockerd (reads only) and
//! nfsd's HTTP API; every decision about what was read is a pure function elsewhere
//! ([`super::judge`], [`crate::inspect::health`]). A failed read is recorded in
//! `Status::errors` or in its section, never returned, once the connection works.

use std::collections::HashMap;

use anyhow::Context;

use super::judge::{
    classify_services, nfsd_api_node, nfsd_api_status, node_status, plugin_volumes, swarm_summary,
};
use super::{NetworkStatus, NfsdApiStatus, NotebookStatus, ServiceStatus, Status, VolumesStatus};
use crate::docker::cluster::Swarm;
use crate::docker::engine::absent;
use crate::inspect::health::{network_status_of, probe_timeout, service_status_of, storage_nodes};
use crate::inspect::probe;
use crate::names;
use crate::names::PLUGIN_ALIAS;
use crate::settings::Config;

/// Read everything `status` shows. Fails only on what `Cluster::connect` already checked;
/// anything else that fails is reported in the result.
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
    let node_rows = nodes
        .iter()
        .map(|n| node_status(n, &this_node_id, label))
        .collect();

    let network = network_status(c, &cfg.cluster.network, &mut errors).await;

    let mut services = Vec::new();
    for (component, name) in [
        ("nfsd", &cfg.cluster.nfsd_service),
        ("hub", &cfg.cluster.hub_service),
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

    Ok(Status {
        docker_host: c.host.clone(),
        swarm,
        nodes: node_rows,
        network,
        services,
        notebooks,
        other_services,
        nfsd_api,
        volumes,
        errors,
    })
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
