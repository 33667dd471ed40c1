//! Checks `dockerd`, `nodes`, `storage-node`, `network`, `secrets` and `images`: the
//! connection, the nodes, the storage node, the overlay network, the secrets, and the images:
//! without a registry, every image is on this node; with one, nfsd, the hub and its Docker gate run the images
//! the registry has now (the nodes pull them; this one needs none). Also the order of all the
//! swarm checks ([`swarm_check_names`], [`swarm_checks`]), which asks `registry.rs`,
//! `plugin.rs`, `firewall.rs` and `nfsd.rs` for theirs. The `async fn`s here read dockerd and
//! change nothing; the `pub fn check_*` judge what was read and are pure, tested here without
//! Docker.

use std::collections::HashMap;
use std::time::Duration;

use super::firewall::firewall_check;
use super::mounts::mounts_check;
use super::nfsd::nfsd_checks;
use super::plugin::plugin_checks;
use super::registry::{Pins, check_registry_transport};
use super::{Check, timed};
use bollard::models::Service;

use crate::docker::cluster::{Cluster, NodeInfo, Swarm, TaskInfo, storage_node_in};
use crate::docker::engine::absent;
use crate::exit::CliError;
use crate::inspect::health::{network_status_of, service_image, short_reference, storage_nodes};
use crate::inspect::status::NetworkStatus;
use crate::plan::{self, PlanInputs, PlannedSecret, SecretSource};
use crate::settings::Config;

// Reads (I/O): dockerd.

pub(super) async fn check_dockerd(cfg: &Config, host: &str) -> (Check, Option<Cluster>) {
    let connect = async {
        let c = Cluster::reach_at(host, &cfg.timeouts).await?;
        c.require_manager().await?;
        Ok::<_, CliError>(c)
    };
    // connect_to and each call are bounded already; this bounds the sum
    let limit = Duration::from_secs(cfg.timeouts.docker_seconds.saturating_mul(2));
    let result = match tokio::time::timeout(limit, connect).await {
        Ok(r) => r,
        Err(_) => Err(CliError::DockerUnreachable {
            host: host.to_string(),
            reason: format!("no answer within {} s", limit.as_secs()),
            hint: "is dockerd overloaded or hung? check `systemctl status docker`".into(),
        }),
    };
    match result {
        Ok(c) => (
            Check::ok("dockerd", format!("dockerd at {host} is a swarm manager")),
            Some(c),
        ),
        Err(e) => (dockerd_failure(host, &e), None),
    }
}

/// The checks [`swarm_checks`] makes without a `[registry]`, in its order.
pub(super) const SWARM_CHECKS: [&str; 12] = [
    "nodes",
    "storage-node",
    "network",
    "secrets",
    "plugin-enabled",
    "plugin-version",
    "plugin-settings",
    "firewall",
    "notebook-mounts",
    "nfsd-service",
    "nfsd-allow",
    "nfsd-api",
];

/// The checks [`swarm_checks`] makes, in its order (skipped by name when dockerd is unusable):
/// [`SWARM_CHECKS`], and with a `[registry]` `registry` after `secrets`.
pub(super) fn swarm_check_names(cfg: &Config) -> Vec<&'static str> {
    let mut names = SWARM_CHECKS.to_vec();
    if cfg.registry.address.is_some() {
        let at = names
            .iter()
            .position(|n| *n == "secrets")
            .map_or(0, |i| i + 1);
        names.insert(at, "registry");
    }
    names
}

/// Everything from `nodes` to `nfsd-api`: one check per name of [`swarm_check_names`]; `pins`:
/// what the registry pins the deployment to (`None` without a `[registry]`).
pub(super) async fn swarm_checks(c: &Swarm, cfg: &Config, pins: Option<&Pins>) -> Vec<Check> {
    let secs = cfg.timeouts.docker_seconds;
    let mut out = Vec::new();
    let nodes = match timed(secs, "cannot list the nodes", c.nodes()).await {
        Ok(n) => Some(n),
        Err(e) => {
            out.push(Check::fail("nodes", e, "check the manager: docker node ls"));
            None
        }
    };
    let label = &cfg.cluster.storage_node_label;
    if let Some(nodes) = &nodes {
        out.push(check_nodes(nodes));
        out.push(check_storage(nodes, label));
    } else {
        out.push(Check::skip("storage-node", "the nodes could not be listed"));
    }

    let name = &cfg.cluster.network;
    let net = timed(secs, &format!("cannot inspect network {name}"), async {
        absent(c.engine().inspect_network(name, false).await).map_err(|e| e.message().to_string())
    })
    .await;
    out.push(match net {
        Ok(n) => check_network(&network_status_of(name, n.as_ref())),
        Err(e) => Check::fail("network", e, "check the manager: docker network ls"),
    });

    let planned = plan::secrets(cfg, &PlanInputs::default());
    out.push(
        match timed(secs, "cannot list secrets", c.secret_ids()).await {
            Ok(existing) => check_secrets(&planned, &existing),
            Err(e) => Check::fail("secrets", e, "check the manager: docker secret ls"),
        },
    );

    if let Some(p) = pins {
        // how this manager's dockerd reaches the registry (plain HTTP needs insecure-registries)
        let info = timed(
            secs,
            "cannot ask dockerd for its registry settings",
            async { c.engine().info().await.map_err(|e| e.message().to_string()) },
        )
        .await
        .ok();
        let rc = info.as_ref().and_then(|i| i.registry_config.as_ref());
        out.push(check_registry_transport(p, cfg.registry.tls, rc));
    }
    out.extend(plugin_checks(cfg, nodes.as_deref(), pins));
    // the job runs the CLI image as `run` pins it: the one the rollout left on every node
    let pinned = pins.and_then(|p| p.config(cfg));
    let job_cfg = pinned.as_ref().unwrap_or(cfg);
    out.push(firewall_check(c, job_cfg, nodes.as_deref()).await);
    out.push(mounts_check(c, job_cfg, nodes.as_deref()).await);
    out.extend(nfsd_checks(c, cfg, nodes.as_deref()).await);
    out
}

/// A service and its tasks, newest first (no tasks when it does not exist).
pub(super) async fn service_and_tasks(
    c: &Swarm,
    name: &str,
) -> anyhow::Result<(Option<Service>, Vec<TaskInfo>)> {
    let service = c.service(name).await?;
    let tasks = match &service {
        Some(_) => c.tasks(name).await?,
        None => Vec::new(),
    };
    Ok((service, tasks))
}

/// Without a registry: the images are on this node (other nodes: the plugin rollout checks).
/// With one (`pins`): nfsd, the hub and its Docker gate (the CLI image) run the images pinned to what the registry has now.
pub(super) async fn images_check(c: &Swarm, cfg: &Config, pins: Option<&Pins>) -> Check {
    if let Some(pins) = pins {
        let mut services = Vec::new();
        let gate = crate::names::docker_gate_service(&cfg.cluster.hub_service);
        for (name, key) in [
            (&cfg.cluster.nfsd_service, "images.nfsd"),
            (&cfg.cluster.hub_service, "images.hub"),
            (&gate, "images.cli"),
        ] {
            let what = format!("cannot inspect service {name}");
            let spec = timed(cfg.timeouts.docker_seconds, &what, c.service(name)).await;
            services.push(ServiceImage {
                service: name.clone(),
                key,
                running: spec.map(|s| s.as_ref().and_then(service_image)),
                pinned: pins.get(key).map(str::to_string),
            });
        }
        return check_service_images(&pins.address, &services);
    }
    let mut wanted = cfg.images.deployed().to_vec();
    wanted.dedup_by(|a, b| a.1 == b.1);
    let mut results = Vec::new();
    for (key, image) in wanted {
        let r = timed(
            cfg.timeouts.docker_seconds,
            &format!("cannot inspect image {image}"),
            c.has_image(image),
        )
        .await;
        results.push((key.to_string(), image.to_string(), r));
    }
    check_images(&results)
}

// Judgements of what was read (pure: no I/O).

/// The failed `dockerd` check of a connection error (pure).
pub fn dockerd_failure(host: &str, e: &CliError) -> Check {
    match e {
        CliError::DockerUnreachable { reason, hint, .. } => Check::fail(
            "dockerd",
            format!("cannot reach dockerd at {host}: {reason}"),
            hint.clone(),
        ),
        CliError::NotManager { state, .. } if state == "worker" => Check::fail(
            "dockerd",
            format!("dockerd at {host} is a swarm worker, not a manager"),
            "run swarmhub on a manager node (`docker node ls` works there), or promote this one from a manager: docker node promote <this node>",
        ),
        CliError::NotManager { state, .. } => Check::fail(
            "dockerd",
            format!("dockerd at {host} is not part of a swarm ({state})"),
            "create a swarm: docker swarm init --advertise-addr <this host's IP>, or run swarmhub on a manager of the existing swarm",
        ),
        CliError::Usage(m) => Check::fail(
            "dockerd",
            m.clone(),
            "set DOCKER_HOST to unix:///var/run/docker.sock or tcp://<host>:<port>, or unset it",
        ),
        other => Check::fail(
            "dockerd",
            format!("dockerd at {host}: {}", other.chain().join(": ")),
            "check that dockerd runs and answers: docker info",
        ),
    }
}

/// Every node ready and active (pure).
pub fn check_nodes(nodes: &[NodeInfo]) -> Check {
    if nodes.is_empty() {
        return Check::fail(
            "nodes",
            "the swarm lists no nodes",
            "check the manager: docker node ls",
        );
    }
    let bad: Vec<&NodeInfo> = nodes.iter().filter(|n| !n.usable()).collect();
    if bad.is_empty() {
        let managers = nodes.iter().filter(|n| n.role == "manager").count();
        return Check::ok(
            "nodes",
            format!(
                "{} node{} ready and active ({managers} manager{})",
                nodes.len(),
                if nodes.len() == 1 { "" } else { "s" },
                if managers == 1 { "" } else { "s" }
            ),
        );
    }
    let detail = bad
        .iter()
        .map(|n| format!("{} is {}/{}", n.hostname, n.state, n.availability))
        .collect::<Vec<_>>()
        .join(", ");
    let fixes = bad
        .iter()
        .map(|n| {
            if n.state != "ready" {
                format!(
                    "bring {h} back: a node is down when its dockerd stopped (systemctl start docker on {h}), its network is cut or it lost power; if {h} is gone for good: docker node rm {h}",
                    h = n.hostname
                )
            } else {
                format!(
                    "let {h} take tasks again: docker node update --availability active {h}",
                    h = n.hostname
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    Check::fail("nodes", detail, fixes)
}

/// Exactly one node labelled `<label>=true`, ready, with an address (pure): the rule of
/// [`storage_node_in`], and the node must be up.
pub fn check_storage(nodes: &[NodeInfo], label: &str) -> Check {
    if let [one] = storage_nodes(nodes, label).as_slice()
        && one.state != "ready"
    {
        return Check::fail(
            "storage-node",
            format!(
                "storage node {} is {}: Swarm cannot run nfsd there; nfsd's container may still serve (see nfsd-api), else the notebooks' saves wait until it is back (measured: docs/RELIABILITY.md, \"The storage node lost mid-lecture\")",
                one.hostname, one.state
            ),
            format!(
                "bring {h} back: start its dockerd (systemctl start docker on {h}), or restore its network or power; nothing in the notebooks needs a restart",
                h = one.hostname
            ),
        );
    }
    match storage_node_in(nodes, label) {
        Ok(one) => Check::ok(
            "storage-node",
            format!("{} ({}) has {label}=true", one.hostname, one.addr),
        ),
        Err(CliError::Precondition { what, fix }) => Check::fail("storage-node", what, fix),
        Err(other) => Check::fail(
            "storage-node",
            other.to_string(),
            "check the manager: docker node ls",
        ),
    }
}

/// The overlay network exists and is attachable (pure).
pub fn check_network(n: &NetworkStatus) -> Check {
    let name = &n.name;
    if !n.found {
        return Check::fail(
            "network",
            format!("network {name} does not exist"),
            "swarmhub run (creates it)",
        );
    }
    let overlay = n.driver.as_deref() == Some("overlay") && n.scope.as_deref() == Some("swarm");
    if !overlay || n.attachable != Some(true) {
        return Check::fail(
            "network",
            format!(
                "network {name} is {} {}{}, not an attachable swarm overlay",
                n.scope.as_deref().unwrap_or("?"),
                n.driver.as_deref().unwrap_or("?"),
                if n.attachable == Some(true) {
                    ""
                } else {
                    " (not attachable)"
                }
            ),
            format!(
                "docker network rm {name} (once nothing uses it), then swarmhub run; or choose another name (cluster.network)"
            ),
        );
    }
    Check::ok("network", format!("{name}: attachable swarm overlay"))
}

/// Every secret of the plan exists (pure). `existing` maps names to ids.
pub fn check_secrets(planned: &[PlannedSecret], existing: &HashMap<String, String>) -> Check {
    let missing: Vec<&PlannedSecret> = planned
        .iter()
        .filter(|s| !existing.contains_key(&s.name))
        .collect();
    if missing.is_empty() {
        return Check::ok(
            "secrets",
            format!(
                "{} present: {}",
                planned.len(),
                planned
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let names = missing
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let flags: Vec<String> = missing
        .iter()
        .filter_map(|s| match &s.source {
            SecretSource::Existing { flag } => Some(format!("{flag} FILE")),
            _ => None,
        })
        .collect();
    let fix = if flags.is_empty() {
        "swarmhub run (creates the missing secrets)".to_string()
    } else {
        format!(
            "swarmhub run {} (creates the missing secrets; the LDAP bind password must be given)",
            flags.join(" ")
        )
    };
    Check::fail("secrets", format!("missing: {names}"), fix)
}

/// `(setting, image, present?)` → the `images` check (pure).
pub fn check_images(results: &[(String, String, Result<bool, String>)]) -> Check {
    let missing: Vec<String> = results
        .iter()
        .filter(|(_, _, r)| matches!(r, Ok(false)))
        .map(|(k, img, _)| format!("{img} ({k})"))
        .collect();
    let errors: Vec<&str> = results
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().err().map(String::as_str))
        .collect();
    if missing.is_empty() && errors.is_empty() {
        return Check::ok(
            "images",
            format!(
                "all {} present on this node (other nodes are checked by swarmhub plugin rollout)",
                results.len()
            ),
        );
    }
    let mut detail = Vec::new();
    if !missing.is_empty() {
        detail.push(format!("missing on this node: {}", missing.join(", ")));
    }
    detail.extend(errors.iter().map(|e| e.to_string()));
    Check::fail(
        "images",
        format!(
            "{} (other nodes are checked by swarmhub plugin rollout)",
            detail.join("; ")
        ),
        "build or load them on this node (swarmhub rebuild, docker load < image.tar) or pull them from the registry (docker pull <image>)",
    )
}

/// A service of swarmhub's: the image it runs and the one the deployment pins now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImage {
    /// Its name.
    pub service: String,
    /// The setting of its image (`images.nfsd`, `images.hub`, `images.cli` for the Docker gate).
    pub key: &'static str,
    /// The image of its spec (`None`: not deployed), or why it could not be read.
    pub running: Result<Option<String>, String>,
    /// The setting pinned to what the registry has now (`None`: the registry lacks it).
    pub pinned: Option<String>,
}

/// With a registry, the `images` check (pure): every deployed service runs its pinned image;
/// one that runs another (an older push) is a warning, since it still works, and `restart`
/// brings it to what the registry has. Nothing is asked of this node's images: the nodes pull
/// them.
pub fn check_service_images(address: &str, services: &[ServiceImage]) -> Check {
    let errors: Vec<&str> = services
        .iter()
        .filter_map(|s| s.running.as_ref().err().map(String::as_str))
        .collect();
    if !errors.is_empty() {
        return Check::fail(
            "images",
            errors.join("; "),
            "check the manager: docker service ls",
        );
    }
    let (mut same, mut other, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for s in services {
        let (Ok(running), name) = (&s.running, &s.service) else {
            continue; // reported above
        };
        match (running, &s.pinned) {
            (None, _) => notes.push(format!("{name} is not deployed")),
            (Some(_), None) => notes.push(format!(
                "{name}: {} is not in the registry (see the registry check)",
                s.key
            )),
            (Some(r), Some(p)) if r == p => {
                same.push(format!("{name} runs {}", short_reference(r)))
            }
            (Some(r), Some(p)) => other.push(format!(
                "{name} runs {}, the registry has {} now",
                short_reference(r),
                short_reference(p)
            )),
        }
    }
    let detail = |parts: Vec<String>| parts.join("; ");
    if !other.is_empty() {
        return Check::warn(
            "images",
            detail([other, same, notes].concat()),
            "swarmhub restart (brings nfsd, the hub and its Docker gate to the images the registry has now)",
        );
    }
    if same.is_empty() {
        return Check::skip("images", detail(notes));
    }
    Check::ok(
        "images",
        format!(
            "{} (what {address} has now; the nodes pull them, this one needs none)",
            detail([same, notes].concat())
        ),
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::inspect::doctor::Outcome;
    use crate::names;
    use crate::node::firewall;

    /// A ready-made node (also for the tests of plugin.rs, firewall.rs and nfsd.rs).
    pub(crate) fn node(host: &str, state: &str, availability: &str) -> NodeInfo {
        NodeInfo {
            id: format!("id-{host}"),
            hostname: host.into(),
            role: "worker".into(),
            availability: availability.into(),
            state: state.into(),
            addr: "10.0.0.2".into(),
            labels: HashMap::new(),
            plugin_enabled: true,
            plugin_version: Some("0.1.0".into()),
            plugin_settings: Some("f1ngerpr1nt0".into()),
            engine_version: "20.10.24".into(),
        }
    }

    #[test]
    fn nodes_must_be_ready_and_active() {
        let ok = check_nodes(&[node("alpha", "ready", "active")]);
        assert_eq!(ok.outcome, Outcome::Ok, "{ok:?}");
        let c = check_nodes(&[
            node("alpha", "ready", "active"),
            node("beta", "down", "active"),
            node("gamma", "ready", "drain"),
        ]);
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.detail, "beta is down/active, gamma is ready/drain");
        let fix = c.fix.unwrap();
        assert!(
            fix.contains("start docker on beta") && fix.contains("docker node rm beta"),
            "{fix}"
        );
        assert!(
            fix.contains("docker node update --availability active gamma"),
            "{fix}"
        );
        assert_eq!(check_nodes(&[]).outcome, Outcome::Fail);
    }

    #[test]
    fn exactly_one_ready_storage_node() {
        let l = "swarmhub.storage";
        let mut a = node("alpha", "ready", "active");
        let mut b = node("beta", "ready", "active");
        let c = check_storage(&[a.clone(), b.clone()], l);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.fix.unwrap().contains(
            "docker node update --label-add swarmhub.storage=true <node>   (nodes: alpha, beta)"
        ));
        a.labels.insert(l.into(), "true".into());
        let c = check_storage(&[a.clone(), b.clone()], l);
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        assert_eq!(c.detail, "alpha (10.0.0.2) has swarmhub.storage=true");
        b.labels.insert(l.into(), "true".into());
        let c = check_storage(&[a.clone(), b], l);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail.starts_with("2 nodes have the label"),
            "{}",
            c.detail
        );
        assert!(c.fix.unwrap().contains("--label-rm swarmhub.storage"));
        a.state = "down".into();
        let c = check_storage(&[a], l);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.fix.unwrap().contains("start docker on alpha"));
    }

    #[test]
    fn network_must_be_an_attachable_overlay() {
        let mut n = NetworkStatus {
            name: "swarmhub".into(),
            ..Default::default()
        };
        let c = check_network(&n);
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.fix.as_deref(), Some("swarmhub run (creates it)"));
        n.found = true;
        n.driver = Some("overlay".into());
        n.scope = Some("swarm".into());
        n.attachable = Some(false);
        let c = check_network(&n);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("not attachable"), "{}", c.detail);
        n.attachable = Some(true);
        assert_eq!(check_network(&n).outcome, Outcome::Ok);
    }

    #[test]
    fn missing_secrets_name_the_flag() {
        let mut cfg = Config::default();
        let planned = plan::secrets(&cfg, &PlanInputs::default());
        let all: HashMap<String, String> = planned
            .iter()
            .map(|s| (s.name.clone(), "id".into()))
            .collect();
        assert_eq!(check_secrets(&planned, &all).outcome, Outcome::Ok);
        let c = check_secrets(&planned, &HashMap::new());
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.fix.as_deref(),
            Some("swarmhub run (creates the missing secrets)")
        );
        cfg.ldap.bind_dn = Some("cn=reader,dc=example,dc=org".into());
        let planned = plan::secrets(&cfg, &PlanInputs::default());
        let c = check_secrets(&planned, &all);
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.detail, "missing: swarmhub-ldap-password");
        assert!(
            c.fix
                .unwrap()
                .starts_with("swarmhub run --ldap-password-file FILE")
        );
    }

    #[test]
    fn images_on_this_node() {
        let r = vec![
            (
                "images.nfsd".to_string(),
                "swarmhub/nfsd:0.1.0".to_string(),
                Ok(true),
            ),
            (
                "images.hub".to_string(),
                "swarmhub/hub:0.1.0".to_string(),
                Ok(false),
            ),
        ];
        let c = check_images(&r);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail
                .starts_with("missing on this node: swarmhub/hub:0.1.0 (images.hub)")
        );
        assert!(c.detail.contains("checked by swarmhub plugin rollout"));
        assert_eq!(check_images(&r[..1]).outcome, Outcome::Ok);
    }

    #[test]
    fn with_a_registry_the_services_images_are_judged_not_this_nodes() {
        let service =
            |name: &str, running: Result<Option<&str>, &str>, pinned: Option<&str>| ServiceImage {
                service: name.into(),
                key: "images.hub",
                running: running
                    .map(|r| r.map(str::to_string))
                    .map_err(str::to_string),
                pinned: pinned.map(str::to_string),
            };
        let c = check_service_images(
            "r:5000",
            &[
                service(
                    "swarmhub-nfsd",
                    Ok(Some("r:5000/n:1@sha256:a")),
                    Some("r:5000/n:1@sha256:a"),
                ),
                service("swarmhub-hub", Ok(None), Some("r:5000/h:1@sha256:a")),
            ],
        );
        assert_eq!(
            (c.outcome, c.detail.as_str()),
            (
                Outcome::Ok,
                "swarmhub-nfsd runs r:5000/n:1@sha256:a; swarmhub-hub is not deployed (what r:5000 has now; the nodes pull them, this one needs none)"
            )
        );
        let c = check_service_images(
            "r:5000",
            &[service(
                "swarmhub-hub",
                Ok(Some("r:5000/h:1@sha256:a")),
                None,
            )],
        );
        assert_eq!(c.outcome, Outcome::Skip, "{c:?}");
        assert!(c.detail.contains("see the registry check"), "{c:?}");
        let c = check_service_images(
            "r:5000",
            &[service(
                "swarmhub-hub",
                Err("cannot inspect service swarmhub-hub: gone"),
                None,
            )],
        );
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.fix.is_some());
    }

    #[test]
    fn dockerd_failures_have_fixes() {
        let e = CliError::DockerUnreachable {
            host: "unix:///x.sock".into(),
            reason: "no socket at /x.sock".into(),
            hint: "is dockerd running? start it (systemctl start docker)".into(),
        };
        let c = dockerd_failure("unix:///x.sock", &e);
        assert_eq!(
            c.detail,
            "cannot reach dockerd at unix:///x.sock: no socket at /x.sock"
        );
        assert!(c.fix.unwrap().contains("systemctl start docker"));
        let e = CliError::NotManager {
            host: "h".into(),
            state: "inactive".into(),
        };
        assert!(
            dockerd_failure("h", &e)
                .fix
                .unwrap()
                .contains("docker swarm init")
        );
        let e = CliError::NotManager {
            host: "h".into(),
            state: "worker".into(),
        };
        assert!(
            dockerd_failure("h", &e)
                .fix
                .unwrap()
                .contains("docker node promote")
        );
    }

    // swarm_checks against the in-memory swarm (crate::inspect::tests::healthy)

    use crate::docker::cluster::Cluster;
    use crate::docker::engine::Engine;
    use crate::docker::fake::Fake;
    use crate::inspect::tests::{NODE, healthy, settings};

    /// The check of that name.
    pub(crate) fn named<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {checks:#?}"))
    }

    /// The outcome of every check, in order.
    pub(crate) fn outcomes(checks: &[Check]) -> Vec<(&str, Outcome)> {
        checks
            .iter()
            .map(|c| (c.name.as_str(), c.outcome))
            .collect()
    }

    /// The checks that failed, with their fixes (every failure has one).
    pub(crate) fn failed(checks: &[Check]) -> Vec<(&str, &str)> {
        checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| {
                let fix = c.fix.as_deref().unwrap_or_else(|| panic!("no fix: {c:?}"));
                assert!(!fix.is_empty(), "{c:?}");
                (c.name.as_str(), fix)
            })
            .collect()
    }

    async fn checked(c: &Cluster<Fake>, cfg: &Config) -> Vec<Check> {
        let checks = swarm_checks(c, cfg, None).await;
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            swarm_check_names(cfg),
            "one check per name, in order"
        );
        checks
    }

    #[tokio::test]
    async fn a_healthy_swarm_passes_every_check_but_the_unreachable_nfsd_api() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let checks = checked(&c, &cfg).await;
        let mut want: Vec<(&str, Outcome)> = SWARM_CHECKS.map(|n| (n, Outcome::Ok)).to_vec();
        // nothing listens on the fake storage node's API port
        want.last_mut().unwrap().1 = Outcome::Fail;
        assert_eq!(outcomes(&checks), want, "{checks:#?}");
        assert!(
            named(&checks, "storage-node")
                .detail
                .contains("alpha (127.0.0.1)"),
            "{checks:#?}"
        );
        assert!(
            named(&checks, "nfsd-service")
                .detail
                .ends_with("1/1 running on alpha")
        );
        assert!(named(&checks, "nfsd-allow").detail.contains("127.0.0.1"));
        let api = named(&checks, "nfsd-api");
        let port = cfg.cluster.nfsd_api_port.to_string();
        assert!(
            api.detail.contains(&port) && api.fix.as_deref().is_some_and(|f| f.contains(&port)),
            "{api:?}"
        );
        // the only changes doctor makes: its two jobs (firewall, mounts), created and removed again
        let job = names::FIREWALL_CHECK_SERVICE;
        assert_eq!(
            c.engine().changes(),
            [
                format!("create_service {job}"),
                format!("delete_service {job}"),
                format!("create_service {}", names::MOUNT_CHECK_SERVICE),
                format!("delete_service {}", names::MOUNT_CHECK_SERVICE)
            ]
        );
    }

    #[tokio::test]
    async fn a_swarm_without_its_storage_label_fails_with_the_label_to_add() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let label = cfg.cluster.storage_node_label.clone();
        c.engine().edit_node(NODE, |n| {
            let labels = n.spec.as_mut().unwrap().labels.as_mut().unwrap();
            labels.remove(&label);
        });
        let checks = checked(&c, &cfg).await;
        let storage = named(&checks, "storage-node");
        assert_eq!(storage.outcome, Outcome::Fail, "{storage:?}");
        assert!(
            storage.fix.as_deref().is_some_and(
                |f| f.contains(&format!("docker node update --label-add {label}=true"))
            ),
            "{storage:?}"
        );
        // without a storage node nfsd's API has no address to be asked at
        assert_eq!(named(&checks, "nfsd-api").outcome, Outcome::Skip);
        // the settings the plugin has cannot be judged without nfsd's address
        assert_ne!(named(&checks, "plugin-settings").outcome, Outcome::Ok);
        assert_eq!(named(&checks, "nodes").outcome, Outcome::Ok);
    }

    #[tokio::test]
    async fn a_missing_secret_is_named_with_the_command_that_makes_it() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let id = c.secret_ids().await.unwrap()[names::COOKIE_SECRET].clone();
        c.engine().delete_secret(&id).await.unwrap();
        let checks = checked(&c, &cfg).await;
        let secrets = named(&checks, "secrets");
        assert_eq!(secrets.outcome, Outcome::Fail);
        assert_eq!(secrets.detail, format!("missing: {}", names::COOKIE_SECRET));
        assert_eq!(
            failed(&checks),
            [
                ("secrets", "swarmhub run (creates the missing secrets)"),
                (
                    "nfsd-api",
                    named(&checks, "nfsd-api").fix.as_deref().unwrap()
                ),
            ]
        );
    }

    #[tokio::test]
    async fn nfsd_scaled_to_zero_fails_with_nfs_start() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        crate::apply::scale(&c, &cfg.cluster.nfsd_service, 0)
            .await
            .unwrap();
        let checks = checked(&c, &cfg).await;
        let nfsd = named(&checks, "nfsd-service");
        assert_eq!(nfsd.outcome, Outcome::Fail);
        assert!(nfsd.detail.contains("0 replicas"), "{nfsd:?}");
        assert_eq!(nfsd.fix.as_deref(), Some("swarmhub nfs start"));
        // its spec still allows the node
        assert_eq!(named(&checks, "nfsd-allow").outcome, Outcome::Ok);
    }

    #[tokio::test]
    async fn nfsd_removed_fails_with_run_and_skips_its_allow_list() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        c.engine()
            .delete_service(&cfg.cluster.nfsd_service)
            .await
            .unwrap();
        let checks = checked(&c, &cfg).await;
        let nfsd = named(&checks, "nfsd-service");
        assert_eq!(
            (nfsd.outcome, nfsd.fix.as_deref()),
            (Outcome::Fail, Some("swarmhub run"))
        );
        assert_eq!(named(&checks, "nfsd-allow").outcome, Outcome::Skip);
    }

    #[tokio::test]
    async fn a_disabled_plugin_fails_with_the_rollout() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        c.engine()
            .disable_plugin(names::PLUGIN_ALIAS)
            .await
            .unwrap();
        let checks = checked(&c, &cfg).await;
        let plugin = named(&checks, "plugin-enabled");
        assert_eq!(plugin.outcome, Outcome::Fail);
        assert!(plugin.detail.contains("not enabled on alpha"), "{plugin:?}");
        assert_eq!(plugin.fix.as_deref(), Some("swarmhub plugin rollout"));
    }

    #[tokio::test]
    async fn a_missing_network_and_an_incomplete_firewall_guard_fail_with_their_fixes() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let e = c.engine();
        e.remove_network(&cfg.cluster.network).await.unwrap();
        e.set_task_log(&firewall::result_line(&firewall::Report {
            backend: "iptables v1.8.9 (nf_tables)".into(),
            change: crate::steps::Change::Unchanged,
            problems: vec!["no jump from INPUT".into()],
            rules: Vec::new(),
        }));
        let checks = checked(&c, &cfg).await;
        let net = named(&checks, "network");
        assert_eq!(net.outcome, Outcome::Fail);
        assert_eq!(net.fix.as_deref(), Some("swarmhub run (creates it)"));
        let fw = named(&checks, "firewall");
        assert_eq!(fw.outcome, Outcome::Fail, "{fw:?}");
        assert!(fw.detail.contains("no jump from INPUT"), "{fw:?}");
        assert!(fw.fix.is_some());
    }
}
