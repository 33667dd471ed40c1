//! `swarmhub status` for people: [`Status::text`], one function per section, and the
//! column-aligned [`table`] they use. Pure: formats a gathered [`Status`], no I/O.

use super::{
    DeployedPlugin, MountsStatus, NetworkStatus, NfsdApiStatus, NodeStatus, NotebookStatus,
    ServiceStatus, Status, VolumesStatus,
};
use crate::inspect::health::short_reference;
use crate::inspect::probe;
use crate::names::PLUGIN_VERSION_LABEL;

impl Status {
    /// The report for people: one block per section, problems spelled out.
    pub fn text(&self) -> String {
        [
            swarm_text(self),
            nodes_text(&self.nodes, &self.plugin),
            network_text(&self.network),
            services_text(&self.services),
            notebooks_text(&self.notebooks, &self.other_services, &self.network.name),
            mounts_text(&self.mounts),
            volumes_text(&self.nfsd_api, &self.volumes),
            errors_text(&self.errors),
        ]
        .concat()
    }
}

/// `swarm: 3 nodes (1 manager, 3 ready); this node: alpha; dockerd ...`
fn swarm_text(s: &Status) -> String {
    let sw = &s.swarm;
    format!(
        "swarm: {} node{} ({} manager{}, {} ready); this node: {}; dockerd {}\n",
        sw.nodes,
        plural(sw.nodes),
        sw.managers,
        plural(sw.managers),
        sw.ready,
        if sw.this_node.is_empty() {
            "?"
        } else {
            &sw.this_node
        },
        s.docker_host
    )
}

/// One row per node (`*` marks the node whose dockerd was asked; CURRENT: whether it runs the
/// deployed plugin), then the deployed plugin and the nodes not on it. Digests are shortened to
/// 12 hex digits.
fn nodes_text(nodes: &[NodeStatus], plugin: &DeployedPlugin) -> String {
    let mut out = String::from("\nnodes:\n");
    let mut rows = vec![
        [
            "HOST",
            "ROLE",
            "STATE",
            "AVAILABILITY",
            "ADDRESS",
            "STORAGE",
            "PLUGIN",
            "CURRENT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for n in nodes {
        rows.push(vec![
            format!("{}{}", n.hostname, if n.this_node { " *" } else { "" }),
            n.role.clone(),
            n.state.clone(),
            n.availability.clone(),
            n.addr.clone(),
            if n.storage { "yes" } else { "-" }.into(),
            plugin_text(n.plugin_enabled, n.plugin_version.as_deref()),
            match n.plugin_current {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            }
            .into(),
        ]);
    }
    out.push_str(&table(&rows, "  "));
    if nodes.is_empty() {
        out.push_str("  (no nodes could be listed)\n");
    }
    out.push_str(&deployed_plugin_text(plugin));
    let behind: Vec<&str> = nodes
        .iter()
        .filter(|n| n.plugin_current == Some(false))
        .map(|n| n.hostname.as_str())
        .collect();
    if !behind.is_empty() {
        out.push_str(&format!(
            "  not on it: {} (swarmhub plugin rollout; swarmhub doctor says why)\n",
            behind.join(", ")
        ));
    }
    out
}

/// `  plugin deployed: <reference> (settings <fingerprint>)`; without a registry the bundle of
/// the CLI image, whose version only the nodes know.
fn deployed_plugin_text(p: &DeployedPlugin) -> String {
    let what = match &p.version {
        Some(v) => short_reference(v),
        None => format!("the bundle in {}", short_reference(&p.source)),
    };
    let settings = match &p.settings {
        Some(s) => format!("settings {s}"),
        None => "settings unknown: no single storage node".into(),
    };
    format!("  plugin deployed: {what} ({settings})\n")
}

/// The overlay network: missing, or its scope, driver and whether notebooks can join it.
fn network_text(net: &NetworkStatus) -> String {
    let mut out = format!("\nnetwork {}: ", net.name);
    if !net.found {
        out.push_str("not found (swarmhub run creates it)\n");
    } else {
        let kind = format!(
            "{} {}",
            net.scope.as_deref().unwrap_or("?"),
            net.driver.as_deref().unwrap_or("?")
        );
        let attachable = if net.attachable == Some(true) {
            "attachable"
        } else {
            "NOT attachable (notebooks cannot join it)"
        };
        out.push_str(&format!("{kind}, {attachable}\n"));
    }
    out
}

/// nfsd, the hub, its Docker gate (and the demo's directory): image, tasks, health, recent tasks.
fn services_text(services: &[ServiceStatus]) -> String {
    let mut out = String::from("\nservices:\n");
    for s in services {
        if !s.deployed {
            out.push_str(&format!(
                "  {} ({}): not deployed (swarmhub run)\n",
                s.name, s.component
            ));
            continue;
        }
        out.push_str(&format!(
            "  {} ({}): {}, {}/{} running, {}\n",
            s.name,
            s.component,
            s.image
                .as_deref()
                .map_or("no image".into(), short_reference),
            s.running,
            s.desired.map_or("?".into(), |d| d.to_string()),
            s.health.text()
        ));
        for t in &s.tasks {
            out.push_str(&format!(
                "      {} {}{}\n",
                t.describe(),
                if t.desired == "running" {
                    String::new()
                } else {
                    format!("[desired {}] ", t.desired)
                },
                t.since
            ));
        }
    }
    out
}

/// The notebooks table (the ERROR column only when one has an error), then the other
/// services on the network.
fn notebooks_text(notebooks: &[NotebookStatus], others: &[String], network: &str) -> String {
    let running = notebooks.iter().filter(|n| n.running > 0).count();
    let mut out = format!("\nnotebooks: {} ({} running)\n", notebooks.len(), running);
    if !notebooks.is_empty() {
        let mut rows = vec![
            ["SERVICE", "USER", "ROLE", "NODE", "STATE", "ERROR"]
                .map(String::from)
                .to_vec(),
        ];
        let errors = notebooks.iter().any(|n| n.error.is_some());
        if !errors {
            rows[0].pop();
        }
        for n in notebooks {
            let mut row = vec![
                n.name.clone(),
                n.user.clone().unwrap_or_else(|| "-".into()),
                n.role.clone().unwrap_or_else(|| "-".into()),
                n.node.clone().unwrap_or_else(|| "-".into()),
                n.state.clone().unwrap_or_else(|| "no task".into()),
            ];
            if errors {
                row.push(n.error.clone().unwrap_or_default());
            }
            rows.push(row);
        }
        out.push_str(&table(&rows, "  "));
    }
    if !others.is_empty() {
        out.push_str(&format!(
            "other services on network {}: {}\n",
            network,
            others.join(", ")
        ));
    }
    out
}

/// nfsd's health answer, then the plugin's volumes this dockerd knows and its warnings.
fn volumes_text(api: &NfsdApiStatus, v: &VolumesStatus) -> String {
    let mut out = String::from("\nvolumes:\n");
    let url = api.url.as_deref().unwrap_or("nfsd API");
    match (&api.health, &api.error) {
        (Some(h), _) => out.push_str(&format!(
            "  nfsd {url}: {} version {}, {} volume{}, up {}\n",
            h.status,
            h.version,
            h.volumes,
            plural(h.volumes),
            probe::duration_text(h.uptime_seconds)
        )),
        (None, e) => out.push_str(&format!(
            "  nfsd: unreachable: {}\n",
            e.as_deref().unwrap_or("unknown")
        )),
    }
    match &v.error {
        Some(e) => out.push_str(&format!("  this dockerd: {e}\n")),
        None => {
            out.push_str(&format!(
                "  this dockerd knows {} {} volume{}{}\n",
                v.volumes.len(),
                v.driver,
                plural(v.volumes.len()),
                if v.volumes.is_empty() { "" } else { ":" }
            ));
            for vol in &v.volumes {
                let opts: Vec<String> = vol
                    .options
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                out.push_str(&format!("    {} {}\n", vol.name, opts.join(",")));
            }
        }
    }
    for w in &v.warnings {
        out.push_str(&format!("  warning: {w}\n"));
    }
    out
}

/// The Docker calls that failed (nothing when none did).
/// Dead or silent mounts of running containers, with the fix; nothing when all answer or they
/// were not checked.
fn mounts_text(m: &MountsStatus) -> String {
    if let Some(e) = &m.error {
        return format!("notebook mounts: not checked: {e}\n");
    }
    if m.broken.is_empty() {
        return String::new();
    }
    let mut out = format!("notebook mounts: {} do not answer:\n", m.broken.len());
    for b in &m.broken {
        out.push_str(&format!("  {}\n", b.line()));
    }
    if let Some(fix) = &m.fix {
        out.push_str(&format!("  fix: {fix}\n"));
    }
    out
}

fn errors_text(errors: &[String]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nnot read (Docker errors):\n");
    for e in errors {
        out.push_str(&format!("  {e}\n"));
    }
    out
}

/// `enabled 0.1.0+<hash>`, `enabled <registry>/swarmhub/swarmhub-nfs:0.1.1@sha256:<12 hex>`,
/// `enabled (no ... label)`, `NOT enabled (...)`, `NOT installed`.
fn plugin_text(enabled: bool, version: Option<&str>) -> String {
    match (enabled, version.map(short_reference)) {
        (true, Some(v)) => format!("enabled {v}"),
        (true, None) => format!("enabled (no {PLUGIN_VERSION_LABEL} label)"),
        (false, Some(v)) => format!("NOT enabled (rollout recorded {v})"),
        (false, None) => "NOT installed".into(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Columns padded to their widest cell, each row prefixed with `indent`.
pub fn table(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::from(indent);
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::status::tests::example;
    use crate::inspect::status::{NfsdApiStatus, VolumesStatus, nfsd_api_status};
    use crate::names::PLUGIN_ALIAS;
    use swarmhub_control_api::Health;

    #[test]
    fn text_shows_every_section_and_the_problems() {
        let text = example().text();
        let expected = "\
swarm: 2 nodes (1 manager, 1 ready); this node: alpha; dockerd unix:///var/run/docker.sock

nodes:
  HOST     ROLE     STATE  AVAILABILITY  ADDRESS   STORAGE  PLUGIN         CURRENT
  alpha *  manager  ready  active        10.0.0.5  yes      enabled 0.1.0  yes
  beta     worker   down   active        10.0.0.4  -        NOT installed  NO
  plugin deployed: the bundle in swarmhub/swarmhub:0.1.0 (settings f1ngerpr1nt0)
  not on it: beta (swarmhub plugin rollout; swarmhub doctor says why)

network swarmhub: swarm overlay, attachable

services:
  swarmhub-nfsd (nfsd): swarmhub/nfsd:0.1.0, 0/1 running, failing: alpha: rejected (No such image: swarmhub/nfsd:0.1.0)
      alpha: rejected (No such image: swarmhub/nfsd:0.1.0) [desired shutdown] 2025-11-26T18:00:00Z
  swarmhub-hub (hub): not deployed (swarmhub run)

notebooks: 1 (1 running)
  SERVICE        USER   ROLE     NODE   STATE
  jupyter-alice  alice  student  alpha  running
notebook mounts: 1 do not answer:
  jupyter-alice on alpha: /home/jovyan (home-alice) dead (Transport endpoint is not connected (os error 107))
  fix: swarmhub notebooks restart --dead-mounts (restarts exactly those notebooks; their users' files stay, their servers come back with live mounts)

volumes:
  nfsd: unreachable: http://10.0.0.5:8049/v1/health is unreachable: connection refused
  this dockerd knows 1 swarmhub-nfs volume:
    home-alice user=alice
";
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn text_reports_missing_parts_and_errors() {
        let mut s = example();
        s.network.found = false;
        s.volumes = VolumesStatus {
            driver: PLUGIN_ALIAS.into(),
            listed: false,
            volumes: Vec::new(),
            warnings: Vec::new(),
            error: Some("cannot list the swarmhub-nfs volumes: plugin disabled".into()),
        };
        s.nfsd_api = NfsdApiStatus {
            url: None,
            reachable: false,
            health: None,
            error: Some("no node has the label swarmhub.storage=true".into()),
        };
        s.errors.push("cannot list services: timed out".into());
        let text = s.text();
        for want in [
            "network swarmhub: not found (swarmhub run creates it)",
            "  nfsd: unreachable: no node has the label swarmhub.storage=true",
            "  this dockerd: cannot list the swarmhub-nfs volumes: plugin disabled",
            "not read (Docker errors):\n  cannot list services: timed out",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
        s.nfsd_api = nfsd_api_status(
            "http://10.0.0.5:8049".into(),
            Ok(Health {
                status: "ok".into(),
                version: "0.1.0".into(),
                volumes: 12,
                nfs_listen: "0.0.0.0:2049".into(),
                uptime_seconds: 3 * 3600 + 120,
            }),
        );
        assert!(
            s.text()
                .contains("  nfsd http://10.0.0.5:8049: ok version 0.1.0, 12 volumes, up 3h 02m"),
            "{}",
            s.text()
        );
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["A".to_string(), "BB".into(), "C".into()],
            vec!["aaa".to_string(), "b".into(), "".into()],
        ];
        assert_eq!(table(&rows, "  "), "  A    BB  C\n  aaa  b\n");
    }
}
