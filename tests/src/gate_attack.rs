//! A compromised hub's attack on dockerd, run inside the real hub container (issue 16): the
//! hub's only way to Docker is swarmhub's Docker gate, and everything beyond notebook services
//! must answer 403 and create nothing. Brings in `tests/attack/hub_attack.py` with `docker cp`
//! and runs it with the hub's own python as root; [`Report`] says which attacks got through and
//! [`DockerState`] what dockerd holds before and after, read with the node's own docker CLI.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde::Deserialize;
use serde_json::Value;

use crate::docker::Out;

/// The attacker script, as committed.
pub const SCRIPT: &str = include_str!("../attack/hub_attack.py");
/// Where it lands in the hub container.
pub const TARGET: &str = "/tmp/hub_attack.py";

/// One call's answer as the script saw it.
#[derive(Debug, Clone, Deserialize)]
pub struct Reply {
    /// HTTP status (0: no answer at all).
    pub status: u16,
    /// Docker's `message` (the gate's refusal names its rule there).
    pub message: String,
}

/// What the script reports.
#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    /// Paths of a Docker socket in the hub container and whether each exists; `DOCKER_HOST`.
    pub socket: BTreeMap<String, Value>,
    /// Calls the spawner makes and the attacker's own unchanged notebook spec (created and
    /// removed), which must succeed: every attack changes one thing of that spec.
    pub controls: BTreeMap<String, Reply>,
    /// The attacks, which must answer 403.
    pub attacks: BTreeMap<String, Reply>,
}

impl Report {
    /// Everything that went wrong: a socket in the hub, a control that failed (the channel
    /// works), an attack not refused with 403 by the gate.
    pub fn breaches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (path, exists) in &self.socket {
            if path.starts_with('/') && exists != &Value::Bool(false) {
                out.push(format!("the hub container has a Docker socket at {path}"));
            }
        }
        for (name, r) in &self.controls {
            if !(200..300).contains(&r.status) {
                out.push(format!(
                    "control {name:?} answered {} (the gate must let the spawner's calls and a notebook's own spec through): {}",
                    r.status, r.message
                ));
            }
        }
        for (name, r) in &self.attacks {
            if r.status != 403 || !r.message.contains("swarmhub-docker-gate refused") {
                out.push(format!(
                    "attack {name:?} answered {}: {}",
                    r.status, r.message
                ));
            }
        }
        out
    }

    /// One line per attack: its status and the rule's message.
    pub fn summary(&self) -> String {
        self.attacks
            .iter()
            .map(|(k, r)| format!("  {:>3} {k}: {}\n", r.status, r.message))
            .collect()
    }
}

/// Copy the script into `container` (on the node `docker` runs on) and run it with `args`.
pub fn run(
    docker: &dyn Fn(&[&str], Duration) -> Out,
    container: &str,
    args: &Value,
    scratch: &std::path::Path,
) -> anyhow::Result<Report> {
    let file = scratch.join("hub_attack.py");
    std::fs::write(&file, SCRIPT)?;
    let out = docker(
        &[
            "cp",
            &file.display().to_string(),
            &format!("{container}:{TARGET}"),
        ],
        Duration::from_secs(60),
    );
    ensure!(
        out.success(),
        "docker cp of the hub attack: {}",
        out.describe()
    );
    let out = docker(
        &[
            "exec",
            "-u",
            "0",
            container,
            "python3",
            TARGET,
            &args.to_string(),
        ],
        Duration::from_secs(300),
    );
    ensure!(
        out.success(),
        "the hub attack script in {container}: {}",
        out.describe()
    );
    serde_json::from_str(&out.stdout)
        .with_context(|| format!("the hub attack's report: {}", out.stdout))
}

/// What dockerd holds that an attack could add to: read on one node with its docker CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerState {
    /// `docker service ls` names.
    pub services: Vec<String>,
    /// `docker ps -a` ids on the node.
    pub containers: Vec<String>,
    /// `docker volume ls` names on the node.
    pub volumes: Vec<String>,
    /// `docker plugin ls` names on the node.
    pub plugins: Vec<String>,
    /// `docker image ls` references on the node.
    pub images: Vec<String>,
    /// `docker secret ls` names.
    pub secrets: Vec<String>,
    /// `docker node ls` roles (`id role`).
    pub nodes: Vec<String>,
}

impl DockerState {
    /// Read it through `docker` (one node's CLI).
    pub fn read(docker: &dyn Fn(&[&str], Duration) -> Out) -> anyhow::Result<DockerState> {
        let list = |args: &[&str]| -> anyhow::Result<Vec<String>> {
            let out = docker(args, Duration::from_secs(60));
            ensure!(
                out.success(),
                "docker {}: {}",
                args.join(" "),
                out.describe()
            );
            let mut v: Vec<String> = out.stdout.lines().map(str::to_string).collect();
            v.sort();
            Ok(v)
        };
        Ok(DockerState {
            services: list(&["service", "ls", "--format", "{{.Name}}"])?,
            containers: list(&["ps", "-aq", "--no-trunc"])?,
            volumes: list(&["volume", "ls", "-q"])?,
            plugins: list(&["plugin", "ls", "--format", "{{.Name}}"])?,
            images: list(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])?,
            secrets: list(&["secret", "ls", "--format", "{{.Name}}"])?,
            nodes: list(&["node", "ls", "--format", "{{.ID}} {{.ManagerStatus}}"])?,
        })
    }

    /// What `after` has that `self` had not, field by field.
    pub fn added_in(&self, after: &DockerState) -> Vec<String> {
        let mut out = Vec::new();
        for (what, before, now) in [
            ("service", &self.services, &after.services),
            ("container", &self.containers, &after.containers),
            ("volume", &self.volumes, &after.volumes),
            ("plugin", &self.plugins, &after.plugins),
            ("image", &self.images, &after.images),
            ("secret", &self.secrets, &after.secrets),
            ("node role", &self.nodes, &after.nodes),
        ] {
            for x in now.iter().filter(|x| !before.contains(x)) {
                out.push(format!("new {what}: {x}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_counts_every_kind_of_breach() {
        let r: Report = serde_json::from_value(serde_json::json!({
            "socket": {"/var/run/docker.sock": true, "/run/docker.sock": false, "DOCKER_HOST": "unix:///run/g/docker.sock"},
            "controls": {"version": {"status": 200, "message": ""}, "nodes": {"status": 403, "message": "x"}},
            "attacks": {
                "a": {"status": 403, "message": "swarmhub-docker-gate refused this call by rule \"mounts\": ..."},
                "b": {"status": 201, "message": ""},
                "c": {"status": 403, "message": "permission denied by dockerd"}
            }
        }))
        .unwrap();
        let b = r.breaches();
        assert_eq!(b.len(), 4, "{b:?}");
        assert!(b[0].contains("/var/run/docker.sock"));
        assert!(b.iter().any(|x| x.contains("\"b\" answered 201")));
        assert!(b.iter().any(|x| x.contains("\"c\"")));
        let before = DockerState {
            services: vec!["a".into()],
            containers: vec![],
            volumes: vec![],
            plugins: vec![],
            images: vec![],
            secrets: vec![],
            nodes: vec![],
        };
        let mut after = before.clone();
        after.services.push("evil".into());
        assert_eq!(before.added_in(&after), ["new service: evil"]);
    }
}
