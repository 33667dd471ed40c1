//! Checks `docker-gate` and `hub-docker-socket`: the hub's Docker gate runs a task on every
//! manager (wherever the hub may be placed), and the hub's service holds no socket of
//! dockerd's (no bind mount at all) and reaches Docker through the gate's socket. [`gate_checks`]
//! reads the two services, the gate's tasks and the nodes from dockerd and changes nothing;
//! the `check_*` functions judge what it read and are pure.

use bollard::models::{MountType, ServiceSpec};

use super::swarm::service_and_tasks;
use super::{Check, timed};
use crate::docker::cluster::{NodeInfo, Swarm, TaskInfo, fix_for_task_error};
use crate::names;
use crate::settings::Config;

/// The names of [`gate_checks`], in its order.
pub(super) const GATE_CHECKS: [&str; 2] = ["docker-gate", "hub-docker-socket"];

// Reads (I/O): dockerd.

/// `docker-gate` and `hub-docker-socket`, in that order.
pub(super) async fn gate_checks(c: &Swarm, cfg: &Config) -> Vec<Check> {
    let secs = cfg.timeouts.docker_seconds;
    let hub = &cfg.cluster.hub_service;
    let gate = names::docker_gate_service(hub);
    let read_gate = async {
        let (service, tasks) = service_and_tasks(c, &gate).await?;
        let nodes = c.nodes().await?;
        Ok::<_, anyhow::Error>((service.is_some(), tasks, nodes))
    };
    let gate_check = match timed(secs, &format!("cannot read service {gate}"), read_gate).await {
        Ok((exists, tasks, nodes)) => check_docker_gate(&gate, exists, &tasks, &nodes),
        Err(e) => Check::fail(
            "docker-gate",
            e,
            format!("check the manager: docker service ps {gate} --no-trunc"),
        ),
    };
    let socket_check = match timed(
        secs,
        &format!("cannot inspect service {hub}"),
        c.service(hub),
    )
    .await
    {
        Ok(service) => check_hub_docker_socket(hub, service.and_then(|s| s.spec).as_ref()),
        Err(e) => Check::fail(
            "hub-docker-socket",
            e,
            format!("check the manager: docker service inspect {hub}"),
        ),
    };
    vec![gate_check, socket_check]
}

// Judgements of what was read (pure: no I/O).

/// The gate `gate` runs a task on every usable manager of `nodes` (pure): `exists` whether its
/// service does, `tasks` its tasks, newest first. A manager without one is named with the error
/// of its newest task there, if any.
pub fn check_docker_gate(
    gate: &str,
    exists: bool,
    tasks: &[TaskInfo],
    nodes: &[NodeInfo],
) -> Check {
    const NAME: &str = "docker-gate";
    if !exists {
        return Check::fail(
            NAME,
            format!(
                "service {gate} does not exist: the hub has no way to Docker and cannot start notebooks"
            ),
            "swarmhub run (deploys the gate on every manager, then the hub)",
        );
    }
    let managers: Vec<&NodeInfo> = nodes.iter().filter(|n| n.usable_manager()).collect();
    let runs_on = |n: &NodeInfo| {
        tasks
            .iter()
            .any(|t| t.node_id == n.id && t.desired.is_running() && t.state.is_running())
    };
    let (with, without): (Vec<&NodeInfo>, Vec<&NodeInfo>) =
        managers.iter().partition(|n| runs_on(n));
    if without.is_empty() {
        let hosts: Vec<&str> = with.iter().map(|n| n.hostname.as_str()).collect();
        return Check::ok(
            NAME,
            format!("{gate} runs on every manager ({})", hosts.join(", ")),
        );
    }
    let mut errors = Vec::new();
    let lacking: Vec<String> = without
        .iter()
        .map(|n| {
            // newest first: the task that tells what happens there now
            match tasks.iter().find(|t| t.node_id == n.id) {
                Some(t) => {
                    if let Some(e) = &t.error {
                        errors.push(e.clone());
                    }
                    t.describe()
                }
                None => format!("{}: no task", n.hostname),
            }
        })
        .collect();
    let first_fix = errors
        .first()
        .map(|e| format!("{}; ", fix_for_task_error(e)))
        .unwrap_or_default();
    Check::fail(
        NAME,
        format!(
            "{gate} has no running task on {} of {} manager(s) ({}): a hub placed there cannot reach Docker",
            without.len(),
            managers.len(),
            lacking.join("; ")
        ),
        format!("{first_fix}see why: docker service ps {gate} --no-trunc; then swarmhub run"),
    )
}

/// The hub's service `hub` has no bind mount (no socket of dockerd's, nor anything else of its
/// node's) and its `DOCKER_HOST` is the gate's socket (pure); `spec` is the service's spec
/// (`None`: no service).
pub fn check_hub_docker_socket(hub: &str, spec: Option<&ServiceSpec>) -> Check {
    const NAME: &str = "hub-docker-socket";
    let Some(spec) = spec else {
        return Check::skip(NAME, format!("service {hub} does not exist (see hub-api)"));
    };
    let gate = names::docker_gate_service(hub);
    let container = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.clone())
        .unwrap_or_default();
    let mut problems: Vec<String> = container
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.typ == Some(MountType::BIND))
        .map(|m| {
            format!(
                "it binds {} of its node at {}",
                m.source.as_deref().unwrap_or("?"),
                m.target.as_deref().unwrap_or("?")
            )
        })
        .collect();
    let host = container
        .env
        .iter()
        .flatten()
        .find_map(|e| e.strip_prefix("DOCKER_HOST="));
    match host {
        Some(h) if h == names::DOCKER_GATE_HOST => {}
        Some(h) => problems.push(format!(
            "its DOCKER_HOST is {h}, not the gate's {}",
            names::DOCKER_GATE_HOST
        )),
        None => problems.push(format!(
            "it sets no DOCKER_HOST (the gate's is {})",
            names::DOCKER_GATE_HOST
        )),
    }
    if problems.is_empty() {
        return Check::ok(
            NAME,
            format!(
                "service {hub} has no bind mount and reaches Docker only through {gate} ({})",
                names::DOCKER_GATE_HOST
            ),
        );
    }
    Check::fail(
        NAME,
        format!(
            "service {hub}: {} (whoever controls the hub would control dockerd)",
            problems.join("; ")
        ),
        format!(
            "run `swarmhub run` (it redeploys the hub without the socket; the hub reaches Docker only through the {gate} service)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::engine::Engine as _;
    use crate::inspect::doctor::Outcome;
    use crate::inspect::doctor::swarm::tests::{failed, named};
    use crate::inspect::status::tests::{node, task};
    use crate::inspect::tests::{healthy, settings};
    use crate::plan::{self, PlanInputs};
    use bollard::models::Mount;

    const GATE: &str = "swarmhub-hub-docker-gate";

    fn on(mut t: TaskInfo, n: &NodeInfo) -> TaskInfo {
        t.node_id = n.id.clone();
        t.node = n.hostname.clone();
        t
    }

    fn manager(host: &str) -> NodeInfo {
        NodeInfo {
            role: "manager".into(),
            ..node(host, "ready", &[])
        }
    }

    #[test]
    fn the_gate_must_run_on_every_usable_manager() {
        let (a, b) = (manager("alpha"), manager("beta"));
        let worker = NodeInfo {
            role: "worker".into(),
            ..node("gamma", "ready", &[])
        };
        let drained = NodeInfo {
            availability: "drain".into(),
            ..manager("delta")
        };
        let nodes = [a.clone(), b.clone(), worker, drained];
        let both = [
            on(task("running", "running", None), &a),
            on(task("running", "running", None), &b),
        ];
        let c = check_docker_gate(GATE, true, &both, &nodes);
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        assert_eq!(
            c.detail,
            format!("{GATE} runs on every manager (alpha, beta)")
        );
        // beta's task is rejected, and beta is named with its error and the fix
        let tasks = [
            on(task("running", "running", None), &a),
            on(
                task(
                    "rejected",
                    "shutdown",
                    Some("No such image: swarmhub/swarmhub:0.1.0"),
                ),
                &b,
            ),
        ];
        let c = check_docker_gate(GATE, true, &tasks, &nodes);
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(
            c.detail.contains("1 of 2 manager(s)")
                && c.detail
                    .contains("beta: rejected (No such image: swarmhub/swarmhub:0.1.0)"),
            "{c:?}"
        );
        let fix = c.fix.unwrap();
        assert!(
            fix.contains(&format!("docker service ps {GATE} --no-trunc"))
                && fix.ends_with("swarmhub run")
                && fix.contains("build or load the image"),
            "{fix}"
        );
        // a manager with no task at all
        let c = check_docker_gate(GATE, true, &both[..1], &nodes);
        assert!(c.detail.contains("beta: no task"), "{c:?}");
        // no service at all
        let c = check_docker_gate(GATE, false, &[], &nodes);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains(&format!("service {GATE} does not exist")));
        assert!(c.fix.unwrap().starts_with("swarmhub run"));
    }

    fn hub_spec(change: impl FnOnce(&mut bollard::models::TaskSpecContainerSpec)) -> ServiceSpec {
        let mut spec = plan::plan(&crate::settings::Config::default(), &PlanInputs::default())
            .unwrap()
            .hub;
        change(
            spec.task_template
                .as_mut()
                .unwrap()
                .container_spec
                .as_mut()
                .unwrap(),
        );
        spec
    }

    fn socket_bind() -> Mount {
        Mount {
            source: Some("/var/run/docker.sock".into()),
            target: Some("/var/run/docker.sock".into()),
            typ: Some(MountType::BIND),
            ..Default::default()
        }
    }

    #[test]
    fn the_hub_holds_no_socket_and_reaches_docker_through_the_gate() {
        let hub = "swarmhub-hub";
        let c = check_hub_docker_socket(hub, Some(&hub_spec(|_| {})));
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        assert!(c.detail.contains(GATE), "{c:?}");
        // the hub of swarmhub before the gate: the socket bound, no DOCKER_HOST
        let old = hub_spec(|c| {
            c.mounts.as_mut().unwrap().insert(0, socket_bind());
            c.env
                .as_mut()
                .unwrap()
                .retain(|e| !e.starts_with("DOCKER_HOST="));
        });
        let c = check_hub_docker_socket(hub, Some(&old));
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(
            c.detail
                .contains("it binds /var/run/docker.sock of its node at /var/run/docker.sock")
                && c.detail.contains("it sets no DOCKER_HOST"),
            "{c:?}"
        );
        assert_eq!(
            c.fix.as_deref(),
            Some(
                "run `swarmhub run` (it redeploys the hub without the socket; the hub reaches Docker only through the swarmhub-hub-docker-gate service)"
            )
        );
        // any bind, and a DOCKER_HOST elsewhere
        let other = hub_spec(|c| {
            c.mounts.as_mut().unwrap().push(Mount {
                source: Some("/etc".into()),
                target: Some("/host-etc".into()),
                typ: Some(MountType::BIND),
                ..Default::default()
            });
            for e in c.env.as_mut().unwrap() {
                if e.starts_with("DOCKER_HOST=") {
                    *e = "DOCKER_HOST=tcp://10.0.0.1:2375".into();
                }
            }
        });
        let c = check_hub_docker_socket(hub, Some(&other));
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(
            c.detail.contains("it binds /etc of its node at /host-etc")
                && c.detail.contains("its DOCKER_HOST is tcp://10.0.0.1:2375"),
            "{c:?}"
        );
        // no hub: nothing to judge
        assert_eq!(check_hub_docker_socket(hub, None).outcome, Outcome::Skip);
    }

    // gate_checks against the in-memory swarm (crate::inspect::tests::healthy)

    #[tokio::test]
    async fn a_healthy_deployment_passes_both() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        let checks = gate_checks(&c, &cfg).await;
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, GATE_CHECKS);
        assert!(failed(&checks).is_empty(), "{checks:#?}");
        assert_eq!(named(&checks, "docker-gate").outcome, Outcome::Ok);
        assert_eq!(named(&checks, "hub-docker-socket").outcome, Outcome::Ok);
        assert!(
            c.engine().changes().is_empty(),
            "{:?}",
            c.engine().changes()
        );
    }

    #[tokio::test]
    async fn a_manager_without_the_gate_and_a_hub_with_the_socket_fail_with_their_fixes() {
        let cfg = settings();
        let c = healthy(&cfg).await;
        // a manager joined after the gate was placed, whose task is not there
        c.engine().add_node("node-beta", "beta", true, "10.0.0.2");
        // the hub as swarmhub deployed it before the gate
        let p = plan::plan(&cfg, &PlanInputs::default()).unwrap();
        let mut old = p.hub.clone();
        let cs = old
            .task_template
            .as_mut()
            .unwrap()
            .container_spec
            .as_mut()
            .unwrap();
        cs.mounts.as_mut().unwrap().insert(0, socket_bind());
        crate::apply::ensure_service(&c, &old, false).await.unwrap();
        let checks = gate_checks(&c, &cfg).await;
        let gate = named(&checks, "docker-gate");
        assert_eq!(gate.outcome, Outcome::Fail, "{gate:?}");
        assert!(gate.detail.contains("beta: no task"), "{gate:?}");
        assert!(!gate.detail.contains("alpha"), "{gate:?}");
        let socket = named(&checks, "hub-docker-socket");
        assert_eq!(socket.outcome, Outcome::Fail, "{socket:?}");
        assert!(socket.detail.contains("/var/run/docker.sock"), "{socket:?}");
        assert_eq!(failed(&checks).len(), 2);
        // the gate removed: named, with `swarmhub run`
        c.engine()
            .delete_service(&names::docker_gate_service(&cfg.cluster.hub_service))
            .await
            .unwrap();
        let checks = gate_checks(&c, &cfg).await;
        let gate = named(&checks, "docker-gate");
        assert!(gate.detail.contains("does not exist"), "{gate:?}");
    }
}
