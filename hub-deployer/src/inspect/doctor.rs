//! `swarmhub doctor`: health checks of the whole stack, in the order things depend on each
//! other, each ending in ok, failed (with a concrete fix: the command to run or the setting to
//! change) or skipped (with the reason). Read-only, for people ([`Report::text`]) and scripts
//! (`--output json`, the serialized [`Report`]); a failed check makes the command exit with 6.
//!
//! Checks, by name: `dockerd`, `nodes`, `storage-node`, `network`, `secrets`,
//! `plugin-enabled`, `plugin-version`, `plugin-settings`, `firewall`, `nfsd-service`, `nfsd-allow`,
//! `nfsd-api`, `ldap-connect`, `ldap-bind`,
//! `ldap-teacher-group`, `ldap-student-group` (one per DN), `images`, `hub-api`, `hub-tls` (plain
//! HTTP fails; with TLS the served certificate must be the configured one, valid now, for the
//! public URL's host, and is a warning within `tls.expiry_warn_days` of its end). When dockerd
//! cannot be used, the checks that need it are skipped; the LDAP checks, which do not, still run.
//!
//! Every network operation has a timeout (`timeouts.docker_seconds` for Docker calls, at most
//! 5 s for HTTP and LDAP); a failed or timed-out one is a failed check naming the cause.
//! The judgements are pure functions over what was read (`check_*`), tested without Docker.
//! `firewall` is read on every node by a one-shot global job (`swarmhub-firewall-check`) that
//! lists swarmhub's iptables chain there, so doctor starts (and removes) that job.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope};
use serde::Serialize;

use crate::docker::cluster::{
    Cluster, NodeInfo, docker_message, fix_for_task_error, not_found, storage_node_in,
};
use crate::names;
use crate::names::{PLUGIN_SETTINGS_LABEL, PLUGIN_VERSION_LABEL};
use std::path::Path;

use crate::apply::jobs;
use crate::docker;
use crate::exit::CliError;
use crate::inspect::probe::{self, ProbeError};
use crate::inspect::status::{self, NetworkStatus, ServiceHealth, ServiceStatus};
use crate::node::firewall;
use crate::plan::{self, PlanInputs, PlannedSecret, SecretSource};
use crate::settings::tls;
use crate::settings::{Config, TlsMode};

/// What the CLI gives the checks besides the settings.
#[derive(Clone, Default)]
pub struct DoctorOptions {
    /// The LDAP bind password (read by the CLI from `--ldap-password-file`); without it the
    /// bind as `ldap.bind_dn` is not checked.
    pub ldap_password: Option<String>,
    /// The settings file, for the commands in fixes.
    pub config_path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for DoctorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoctorOptions")
            .field(
                "ldap_password",
                &self.ldap_password.as_ref().map(|_| "<redacted>"),
            )
            .field("config_path", &self.config_path)
            .finish()
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// As it should be.
    Ok,
    /// Not as it should be; `fix` says what to do.
    Fail,
    /// Not checked; `detail` says why.
    Skip,
    /// Works, but needs attention soon (e.g. a certificate near its end); `fix` says what to
    /// do. Not a failure.
    Warn,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name, e.g. `nfsd-api` (see the module documentation).
    pub name: String,
    /// Ok, failed or skipped.
    pub outcome: Outcome,
    /// What was found (or why it was skipped).
    pub detail: String,
    /// What to do about a failure.
    pub fix: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn ok(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A failed check with its fix.
    pub fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A check that passed with a warning, and what to do about it.
    pub fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A skipped check with the reason.
    pub fn skip(name: &str, reason: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome: Outcome::Skip,
            detail: reason.into(),
            fix: None,
        }
    }

    /// `✓ name: detail`, `✗ name: detail` + `    fix: ...`, `! name: detail` + `    fix: ...`
    /// (a warning), `- name: skipped: reason`.
    pub fn text(&self) -> String {
        match self.outcome {
            Outcome::Ok => format!("✓ {}: {}\n", self.name, self.detail),
            Outcome::Fail | Outcome::Warn => {
                let mark = if self.outcome == Outcome::Fail {
                    '✗'
                } else {
                    '!'
                };
                let mut s = format!("{mark} {}: {}\n", self.name, self.detail);
                if let Some(f) = &self.fix {
                    s.push_str(&format!("    fix: {f}\n"));
                }
                s
            }
            Outcome::Skip => format!("- {}: skipped: {}\n", self.name, self.detail),
        }
    }
}

/// The result of `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// No check failed.
    pub ok: bool,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks that were skipped.
    pub skipped: usize,
    /// Checks that passed with a warning.
    pub warned: usize,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
}

impl Report {
    /// A report of these checks.
    pub fn new(checks: Vec<Check>) -> Report {
        let count = |o: Outcome| checks.iter().filter(|c| c.outcome == o).count();
        Report {
            ok: count(Outcome::Fail) == 0,
            passed: count(Outcome::Ok),
            failed: count(Outcome::Fail),
            skipped: count(Outcome::Skip),
            warned: count(Outcome::Warn),
            checks,
        }
    }

    /// No check failed (skipped ones do not count as failures).
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// One line per check, a fix under each failure, and a summary line.
    pub fn text(&self) -> String {
        let mut s: String = self.checks.iter().map(Check::text).collect();
        s.push_str(&format!(
            "{}: {} ok, {} failed, {} skipped{}\n",
            if self.ok { "healthy" } else { "unhealthy" },
            self.passed,
            self.failed,
            self.skipped,
            if self.warned > 0 {
                format!(", {} warning(s)", self.warned)
            } else {
                String::new()
            }
        ));
        s
    }

    /// The error the command returns after printing the report (exit code 6), if any check
    /// failed.
    pub fn error(&self) -> Option<CliError> {
        if self.ok {
            return None;
        }
        let names: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.name.as_str())
            .collect();
        Some(CliError::HealthCheck(format!(
            "{} of {} checks failed: {}",
            names.len(),
            self.checks.len(),
            names.join(", ")
        )))
    }
}

/// Run every check against the dockerd of `DOCKER_HOST` (or the local socket).
pub async fn examine(cfg: &Config, opts: &DoctorOptions) -> Report {
    let env = std::env::var("DOCKER_HOST").ok();
    examine_at(cfg, opts, &docker::docker_host(env.as_deref())).await
}

/// Run every check against the dockerd at `host` (`unix://...`, `tcp://...`).
pub async fn examine_at(cfg: &Config, opts: &DoctorOptions, host: &str) -> Report {
    let mut checks = Vec::new();
    let (check, cluster) = check_dockerd(cfg, host).await;
    checks.push(check);
    let unusable = "dockerd is not usable (see the dockerd check)";
    match &cluster {
        Some(c) => checks.extend(swarm_checks(c, cfg).await),
        None => checks.extend(
            [
                "nodes",
                "storage-node",
                "network",
                "secrets",
                "plugin-enabled",
                "plugin-version",
                "plugin-settings",
                "firewall",
                "nfsd-service",
                "nfsd-allow",
                "nfsd-api",
            ]
            .map(|n| Check::skip(n, unusable)),
        ),
    }
    checks.extend(ldap_checks(cfg, opts, status::probe_timeout(cfg)).await);
    match &cluster {
        Some(c) => {
            checks.push(images_check(c, cfg).await);
            checks.push(hub_check(c, cfg).await);
            checks.push(hub_tls_check(c, cfg, opts.config_path.as_deref()).await);
        }
        None => checks.extend(["images", "hub-api", "hub-tls"].map(|n| Check::skip(n, unusable))),
    }
    Report::new(checks)
}

/// A Docker call with the configured timeout; the error names `what`.
async fn timed<T, E: std::fmt::Display>(
    seconds: u64,
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_secs(seconds), fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e:#}")),
        Err(_) => Err(format!(
            "{what}: no answer within {seconds} s (timeouts.docker_seconds)"
        )),
    }
}

async fn check_dockerd(cfg: &Config, host: &str) -> (Check, Option<Cluster>) {
    let connect = async {
        let docker = docker::connect_to(host, &cfg.timeouts).await?;
        let c = Cluster {
            docker,
            host: host.to_string(),
            timeouts: cfg.timeouts.clone(),
        };
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

/// Everything from `nodes` to `nfsd-api`.
async fn swarm_checks(c: &Cluster, cfg: &Config) -> Vec<Check> {
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
        not_found(c.docker.inspect_network(name, None).await).map_err(|e| docker_message(&e))
    })
    .await;
    out.push(match net {
        Ok(n) => check_network(&NetworkStatus {
            name: name.clone(),
            found: n.is_some(),
            id: n.as_ref().and_then(|n| n.id.clone()),
            driver: n.as_ref().and_then(|n| n.driver.clone()),
            scope: n.as_ref().and_then(|n| n.scope.clone()),
            attachable: n.as_ref().and_then(|n| n.attachable),
        }),
        Err(e) => Check::fail("network", e, "check the manager: docker network ls"),
    });

    let planned = plan::secrets(cfg, &PlanInputs::default());
    out.push(
        match timed(secs, "cannot list secrets", c.secret_ids()).await {
            Ok(existing) => check_secrets(&planned, &existing),
            Err(e) => Check::fail("secrets", e, "check the manager: docker secret ls"),
        },
    );

    match &nodes {
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
    out.push(firewall_check(c, cfg, nodes.as_deref()).await);

    let svc = &cfg.cluster.nfsd_service;
    let nfsd = async {
        let service = c.service(svc).await?;
        let tasks = match &service {
            Some(_) => c.tasks(svc).await?,
            None => Vec::new(),
        };
        Ok::<_, anyhow::Error>(status::service_status_of(
            "nfsd",
            svc,
            service.as_ref(),
            tasks,
        ))
    };
    out.push(
        match timed(secs, &format!("cannot read service {svc}"), nfsd).await {
            Ok(s) => check_nfsd_service(&s),
            Err(e) => Check::fail(
                "nfsd-service",
                e,
                format!("check the manager: docker service ps {svc}"),
            ),
        },
    );

    let spec_env = async {
        let service = c.service(svc).await?;
        Ok::<_, anyhow::Error>(
            service
                .and_then(|s| s.spec)
                .and_then(|s| s.task_template)
                .and_then(|t| t.container_spec)
                .map(|c| c.env.unwrap_or_default()),
        )
    };
    out.push(
        match (
            &nodes,
            timed(secs, &format!("cannot read service {svc}"), spec_env).await,
        ) {
            (Some(nodes), Ok(env)) => check_nfsd_allow(nodes, env.as_deref()),
            (None, _) => Check::skip("nfsd-allow", "the nodes could not be listed"),
            (_, Err(e)) => Check::fail(
                "nfsd-allow",
                e,
                format!("check the manager: docker service inspect {svc}"),
            ),
        },
    );

    let storage: Vec<&NodeInfo> = nodes
        .as_deref()
        .map(|n| status::storage_nodes(n, label))
        .unwrap_or_default();
    out.push(match storage.as_slice() {
        [one] if !one.addr.is_empty() => {
            let base = probe::nfsd_api_base(&one.addr, cfg.cluster.nfsd_api_port);
            let result = probe::nfsd_health(&base, status::probe_timeout(cfg)).await;
            check_nfsd_api(one, cfg.cluster.nfsd_api_port, svc, &base, result)
        }
        _ => Check::skip(
            "nfsd-api",
            "no single storage node with an address (see the storage-node check)",
        ),
    });
    out
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
                    "start docker on {h} (systemctl start docker), or if {h} is gone for good: docker node rm {h}",
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
    if let [one] = status::storage_nodes(nodes, label).as_slice()
        && one.state != "ready"
    {
        return Check::fail(
            "storage-node",
            format!(
                "storage node {} is {}: nfsd cannot run and no notebook can reach its data",
                one.hostname, one.state
            ),
            format!("start docker on {} (systemctl start docker)", one.hostname),
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
    let versions = status::plugin_versions(nodes);
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

/// Run the firewall check job on every node and judge what it found.
async fn firewall_check(c: &Cluster, cfg: &Config, nodes: Option<&[NodeInfo]>) -> Check {
    let Some(nodes) = nodes else {
        return Check::skip("firewall", "the nodes could not be listed");
    };
    let spec = plan::firewall_check_service(cfg);
    let runs = jobs::run_global(
        c,
        &spec,
        firewall::RESULT_PREFIX,
        cfg.timeouts.rollout_seconds,
        "listing the firewall guard",
        &crate::progress::Progress::stderr(),
    )
    .await;
    match runs {
        Ok(runs) => {
            let found: Vec<(String, Result<firewall::Report, String>)> = runs
                .iter()
                .map(|r| {
                    let report = r
                        .result
                        .as_deref()
                        .and_then(|j| serde_json::from_str::<firewall::Report>(j).ok())
                        .ok_or_else(|| r.failure());
                    (r.task.node.clone(), report)
                })
                .collect();
            check_firewall(nodes, &found)
        }
        Err(e) => Check::fail(
            "firewall",
            format!(
                "cannot run the job {}: {}",
                names::FIREWALL_CHECK_SERVICE,
                e.chain().join(": ")
            ),
            "check that the swarmhub CLI image is on every node (swarmhub plugin rollout reports the nodes without it), then swarmhub doctor",
        ),
    }
}

/// Every usable node has swarmhub's complete firewall guard of nfsd's ports (pure): `found`
/// holds each node's listing, or why the check job gave none.
pub fn check_firewall(
    nodes: &[NodeInfo],
    found: &[(String, Result<firewall::Report, String>)],
) -> Check {
    let usable: Vec<&NodeInfo> = nodes.iter().filter(|n| n.usable()).collect();
    if usable.is_empty() {
        return Check::skip("firewall", "no node is ready");
    }
    let mut bad = Vec::new();
    let mut unread = Vec::new();
    for n in &usable {
        match found.iter().find(|(node, _)| *node == n.hostname) {
            Some((_, Ok(r))) if r.problems.is_empty() => {}
            Some((_, Ok(r))) => bad.push(format!("{}: {}", n.hostname, r.problems.join(", "))),
            Some((_, Err(e))) => unread.push(format!("{}: {e}", n.hostname)),
            None => unread.push(format!("{}: the check job ran no task there", n.hostname)),
        }
    }
    if !bad.is_empty() {
        return Check::fail(
            "firewall",
            format!(
                "notebooks on {} node(s) may reach nfsd's ports: {}",
                bad.len(),
                bad.join(" | ")
            ),
            format!(
                "swarmhub plugin rollout (installs the chain {} on every node; rules are lost when a node reboots or its iptables rules are flushed)",
                firewall::CHAIN
            ),
        );
    }
    if !unread.is_empty() {
        return Check::fail(
            "firewall",
            format!(
                "the firewall guard could not be listed on {} node(s): {}",
                unread.len(),
                unread.join(" | ")
            ),
            "load the swarmhub CLI image on those nodes (docker load), then swarmhub doctor",
        );
    }
    let mut backends: Vec<&str> = found
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|r| r.backend.as_str()))
        .collect();
    backends.sort_unstable();
    backends.dedup();
    Check::ok(
        "firewall",
        format!(
            "chain {} rejects containers' connections to nfsd's ports on all {} node(s) ({})",
            firewall::CHAIN,
            usable.len(),
            backends.join(", ")
        ),
    )
}

/// `addr` lies in one of the comma-separated CIDRs of `nets` (a bare address is a /32 or /128).
fn allowed(nets: &str, addr: &str) -> bool {
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let bits = |ip: std::net::IpAddr| -> (u128, u32) {
        match ip {
            std::net::IpAddr::V4(v) => (u32::from(v) as u128, 32),
            std::net::IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let (a, width) = bits(ip);
    nets.split(',').map(str::trim).any(|net| {
        let (base, prefix) = net.split_once('/').unwrap_or((net, ""));
        let Ok(base) = base.parse::<std::net::IpAddr>() else {
            return false;
        };
        let (b, w) = bits(base);
        if w != width {
            return false;
        }
        let prefix: u32 = prefix.parse().unwrap_or(w).min(w);
        let shift = width - prefix;
        shift >= width || (a >> shift) == (b >> shift)
    })
}

/// nfsd accepts NFS clients from every node's address, and only from listed networks (pure):
/// `env` is nfsd's service environment (`None`: no service).
pub fn check_nfsd_allow(nodes: &[NodeInfo], env: Option<&[String]>) -> Check {
    let Some(env) = env else {
        return Check::skip(
            "nfsd-allow",
            "nfsd's service does not exist (see nfsd-service)",
        );
    };
    let fix = "swarmhub nfs run (sets nfsd's allowed clients to the swarm's node addresses; nfsd restarts, mounts resume)";
    let Some(nets) = env
        .iter()
        .find_map(|e| e.strip_prefix("SWARMHUB_NFSD_ALLOW="))
        .filter(|n| !n.trim().is_empty())
    else {
        return Check::fail(
            "nfsd-allow",
            "nfsd accepts NFS clients from every address (no SWARMHUB_NFSD_ALLOW in its service)",
            fix,
        );
    };
    let missing: Vec<String> = nodes
        .iter()
        .filter(|n| !n.addr.is_empty() && !allowed(nets, &n.addr))
        .map(|n| format!("{} ({})", n.hostname, n.addr))
        .collect();
    if missing.is_empty() {
        Check::ok(
            "nfsd-allow",
            format!("nfsd accepts NFS clients from {nets}"),
        )
    } else {
        Check::fail(
            "nfsd-allow",
            format!(
                "nfsd refuses the plugin of {} (allowed: {nets}): volumes cannot be mounted there",
                missing.join(", ")
            ),
            fix,
        )
    }
}

/// nfsd's service runs its one task (pure).
pub fn check_nfsd_service(s: &ServiceStatus) -> Check {
    let name = &s.name;
    let running = format!(
        "{}/{} running",
        s.running,
        s.desired.map_or("?".into(), |d| d.to_string())
    );
    match &s.health {
        ServiceHealth::NotDeployed => Check::fail(
            "nfsd-service",
            format!("service {name} does not exist"),
            "swarmhub run",
        ),
        ServiceHealth::Stopped => Check::fail(
            "nfsd-service",
            format!("service {name} is stopped (0 replicas): no volume can be mounted"),
            "swarmhub nfs start",
        ),
        ServiceHealth::Running => {
            let node = s
                .tasks
                .iter()
                .find(|t| t.desired == "running" && t.state == "running")
                .map(|t| t.node.clone())
                .unwrap_or_default();
            Check::ok("nfsd-service", format!("{name}: {running} on {node}"))
        }
        ServiceHealth::Starting { detail } => Check::fail(
            "nfsd-service",
            format!("service {name}: {running}, task {detail}"),
            fix_for_task_error(detail),
        ),
        ServiceHealth::Failing { task, error } => Check::fail(
            "nfsd-service",
            format!("service {name}: {running}, task {task}"),
            fix_for_task_error(error),
        ),
    }
}

/// nfsd answers `GET /v1/health` at the storage node's address (pure).
pub fn check_nfsd_api(
    storage: &NodeInfo,
    port: u16,
    service: &str,
    base: &str,
    result: Result<swarmhub_control_api::Health, ProbeError>,
) -> Check {
    let fix = format!(
        "nfsd's control API must answer at {addr}:{port} from here and from every node: check that nfsd runs (docker service ps {service}), that it listens on port {port}/tcp in the network of {host} (cluster.nfsd_api_port; another process may hold the port) and that no firewall blocks {addr}:{port}/tcp",
        addr = storage.addr,
        host = storage.hostname
    );
    match result {
        Ok(h) if h.status == "ok" => Check::ok(
            "nfsd-api",
            format!(
                "{base}: swarmhub-nfsd {}, {} volume{}, up {}",
                h.version,
                h.volumes,
                if h.volumes == 1 { "" } else { "s" },
                probe::duration_text(h.uptime_seconds)
            ),
        ),
        Ok(h) => Check::fail(
            "nfsd-api",
            format!("{base}: nfsd reports status {:?}", h.status),
            format!("see nfsd's log: docker service logs {service}"),
        ),
        Err(e) => Check::fail("nfsd-api", e.to_string(), fix),
    }
}

/// `ldap-connect`, `ldap-bind` and one check per group.
async fn ldap_checks(cfg: &Config, opts: &DoctorOptions, timeout: Duration) -> Vec<Check> {
    let l = &cfg.ldap;
    let mut groups: Vec<(&str, &str, &str)> =
        vec![("ldap-teacher-group", "ldap.teacher_group", &l.teacher_group)];
    groups.extend(
        l.student_groups
            .iter()
            .map(|g| ("ldap-student-group", "ldap.student_groups", g.as_str())),
    );
    let skip_groups = |reason: &str| -> Vec<Check> {
        groups
            .iter()
            .map(|(name, _, dn)| Check::skip(name, format!("{dn}: {reason}")))
            .collect()
    };
    let mut out = Vec::new();

    let starttls = l.starttls && l.url.starts_with("ldap://");
    let mode = if l.url.starts_with("ldaps://") {
        "LDAPS"
    } else if starttls {
        "StartTLS"
    } else {
        "no TLS"
    };
    let settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(starttls);
    let connected =
        tokio::time::timeout(timeout, LdapConnAsync::with_settings(settings, &l.url)).await;
    let mut ldap = match connected {
        Ok(Ok((conn, ldap))) => {
            ldap3::drive!(conn);
            out.push(Check::ok("ldap-connect", format!("{} ({mode})", l.url)));
            ldap
        }
        failed => {
            let cause = match failed {
                Ok(Err(e)) => ldap_error_text(&e),
                _ => format!("no answer within {} s", timeout.as_secs_f32()),
            };
            out.push(Check::fail(
                "ldap-connect",
                format!("cannot connect to {} ({mode}): {cause}", l.url),
                ldap_connect_fix(&l.url, starttls),
            ));
            out.push(Check::skip("ldap-bind", "the LDAP server was not reached"));
            out.extend(skip_groups("the LDAP server was not reached"));
            return out;
        }
    };

    let bind = match (&l.bind_dn, &opts.ldap_password) {
        (Some(_), None) => {
            out.push(Check::skip(
                "ldap-bind",
                "give --ldap-password-file to check the bind",
            ));
            out.extend(skip_groups(
                "not searched without the bind (give --ldap-password-file)",
            ));
            let _ = tokio::time::timeout(timeout, ldap.unbind()).await;
            return out;
        }
        (Some(dn), Some(pw)) => (dn.as_str(), pw.as_str()),
        (None, _) => ("", ""),
    };
    let bound = tokio::time::timeout(timeout, async {
        ldap.simple_bind(bind.0, bind.1).await?.success()
    })
    .await;
    let bind_check = match bound {
        Ok(Ok(_)) if bind.0.is_empty() => Check::ok("ldap-bind", "anonymous bind accepted"),
        Ok(Ok(_)) => Check::ok("ldap-bind", format!("bound as {}", bind.0)),
        failed => {
            let cause = match failed {
                Ok(Err(e)) => ldap_error_text(&e),
                _ => format!("no answer within {} s", timeout.as_secs_f32()),
            };
            if bind.0.is_empty() {
                Check::fail(
                    "ldap-bind",
                    format!("anonymous bind refused: {cause}"),
                    "the directory wants a bind DN: set ldap.bind_dn, then swarmhub run --ldap-password-file FILE",
                )
            } else {
                Check::fail(
                    "ldap-bind",
                    format!("bind as {} failed: {cause}", bind.0),
                    format!(
                        "check ldap.bind_dn ({}) and the password file given; the hub and nfsd read the password from the secret {}, which must hold the same one",
                        bind.0, l.password_secret
                    ),
                )
            }
        }
    };
    let bound_ok = bind_check.outcome == Outcome::Ok;
    out.push(bind_check);
    if !bound_ok {
        out.extend(skip_groups("the bind failed"));
        return out;
    }
    for (name, key, dn) in &groups {
        out.push(group_check(&mut ldap, name, key, dn, bind.0.is_empty(), timeout).await);
    }
    let _ = tokio::time::timeout(timeout, ldap.unbind()).await;
    out
}

async fn group_check(
    ldap: &mut Ldap,
    name: &str,
    key: &str,
    dn: &str,
    anonymous: bool,
    timeout: Duration,
) -> Check {
    let search = tokio::time::timeout(timeout, async {
        ldap.search(dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await?
            .success()
    })
    .await;
    let fix = format!("create the group {dn} in the directory, or correct {key} in swarmhub.toml");
    match search {
        Ok(Ok((entries, _))) if !entries.is_empty() => Check::ok(name, format!("{dn} exists")),
        Ok(Ok(_)) => Check::fail(name, format!("{dn}: not visible to this bind"), fix),
        // directories answer noSuchObject also for entries the bind may not read
        Ok(Err(LdapError::LdapResult { result })) if result.rc == 32 && anonymous => Check::fail(
            name,
            format!("{dn} does not exist or is hidden from anonymous binds"),
            format!(
                "{fix}; if the directory hides it from anonymous binds, set ldap.bind_dn and give --ldap-password-file"
            ),
        ),
        Ok(Err(LdapError::LdapResult { result })) if result.rc == 32 => {
            Check::fail(name, format!("{dn} does not exist"), fix)
        }
        Ok(Err(e)) => Check::fail(
            name,
            format!("cannot look up {dn}: {}", ldap_error_text(&e)),
            format!("check {key} ({dn}) and that the bind DN may read it"),
        ),
        Err(_) => Check::fail(
            name,
            format!(
                "looking up {dn}: no answer within {} s",
                timeout.as_secs_f32()
            ),
            "check the LDAP server's load and the network",
        ),
    }
}

fn ldap_error_text(e: &LdapError) -> String {
    if let LdapError::LdapResult { result } = e {
        // `rc=49 (invalidCredentials), dn: "", text: ""` without the empty parts
        let full = result.to_string();
        let code = full.split(", dn:").next().unwrap_or(&full).to_string();
        return if result.text.is_empty() {
            code
        } else {
            format!("{code}: {}", result.text)
        };
    }
    let mut parts = vec![e.to_string()];
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// What to do when the LDAP server cannot be reached (pure).
pub fn ldap_connect_fix(url: &str, starttls: bool) -> String {
    let mut fix =
        format!("check ldap.url ({url}) and that the server answers from here (firewall, port)");
    if url.starts_with("ldaps://") || starttls {
        fix.push_str(
            "; with TLS its certificate must be valid for that host name and trusted by this host's CA store",
        );
    }
    fix
}

/// The pinned images that are on this node (other nodes: the plugin rollout checks).
async fn images_check(c: &Cluster, cfg: &Config) -> Check {
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

/// The path JupyterHub serves under: the path of `public_url`, with both slashes (pure).
pub fn base_path(public_url: &str) -> String {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    }
}

/// `http(s)://<host>:<hub_port><base path>hub/api` (pure).
pub fn hub_api_url(cfg: &Config, host: &str) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let scheme = if cfg.tls.mode == TlsMode::Off {
        "http"
    } else {
        "https"
    };
    format!(
        "{scheme}://{host}:{}{}hub/api",
        cfg.cluster.hub_port,
        base_path(&cfg.cluster.public_url)
    )
}

/// The address of the node whose task of the hub runs, or the failed check `name` saying why
/// there is none.
async fn hub_host(c: &Cluster, cfg: &Config, name: &str) -> Result<String, Check> {
    let svc = &cfg.cluster.hub_service;
    let secs = cfg.timeouts.docker_seconds;
    let read = async {
        let service = c.service(svc).await?;
        let tasks = match &service {
            Some(_) => c.tasks(svc).await?,
            None => Vec::new(),
        };
        let me = c.self_node_id().await?;
        let nodes = c.nodes().await?;
        Ok::<_, anyhow::Error>((service.is_some(), tasks, me, nodes))
    };
    let (exists, tasks, me, nodes) =
        match timed(secs, &format!("cannot read service {svc}"), read).await {
            Ok(v) => v,
            Err(e) => {
                return Err(Check::fail(
                    name,
                    e,
                    format!("check the manager: docker service ps {svc}"),
                ));
            }
        };
    if !exists {
        return Err(Check::fail(
            name,
            format!("service {svc} does not exist"),
            "swarmhub run",
        ));
    }
    let Some(task) = tasks
        .iter()
        .find(|t| t.desired == "running" && t.state == "running")
    else {
        let now = tasks
            .first()
            .map_or("no tasks".to_string(), |t| t.describe());
        return Err(Check::fail(
            name,
            format!("no task of {svc} runs (newest: {now})"),
            format!("swarmhub hub start; if it does not stay up: docker service logs {svc}"),
        ));
    };
    // the node's address also when it is the node whose dockerd we talk to: DOCKER_HOST may be
    // remote (ssh://, tcp://) or the CLI may run in another network namespace than that node
    match nodes.iter().find(|n| n.id == task.node_id) {
        Some(n) if !n.addr.is_empty() && n.addr != "0.0.0.0" => Ok(n.addr.clone()),
        _ if task.node_id == me => Ok("127.0.0.1".to_string()),
        _ => Err(Check::fail(
            name,
            format!("the node running {svc} ({}) reports no address", task.node),
            "re-join it with --advertise-addr <its IP>",
        )),
    }
}

/// Whether the hub answers its API at the address of the node running it (over HTTPS with
/// the public URL's host as server name when TLS is on; the certificate is `hub-tls`'s).
pub async fn hub_check(c: &Cluster, cfg: &Config) -> Check {
    let host = match hub_host(c, cfg, "hub-api").await {
        Ok(h) => h,
        Err(check) => return check,
    };
    let url = hub_api_url(cfg, &host);
    let svc = &cfg.cluster.hub_service;
    let timeout = status::probe_timeout(cfg);
    let result = if cfg.tls.mode == TlsMode::Off {
        probe::http_get_json(&url, timeout).await
    } else {
        let path = format!("{}hub/api", base_path(&cfg.cluster.public_url));
        probe::https_get_json(
            &url,
            &host,
            cfg.cluster.hub_port,
            &cfg.public_host(),
            &path,
            timeout,
        )
        .await
    };
    check_hub_answer(&url, svc, cfg.cluster.hub_port, result)
}

/// `hub-tls`: the hub serves HTTPS with the configured certificate, valid now and for a while,
/// for the public URL's host. Plain HTTP is a failure (LDAP passwords in clear).
pub async fn hub_tls_check(c: &Cluster, cfg: &Config, config_path: Option<&Path>) -> Check {
    let now = time::OffsetDateTime::now_utc();
    if cfg.tls.mode == TlsMode::Off {
        return check_hub_tls(cfg, config_path, None, None, now);
    }
    let configured = tls::configured(cfg, now);
    let host = match hub_host(c, cfg, "hub-tls").await {
        Ok(h) => h,
        Err(check) => return check,
    };
    let served = probe::served_chain(
        &host,
        cfg.cluster.hub_port,
        &cfg.public_host(),
        status::probe_timeout(cfg),
    )
    .await;
    check_hub_tls(cfg, config_path, Some(configured), Some(served), now)
}

/// Judge what the hub serves (pure): `configured` is the certificate of the settings, `served`
/// the chain the hub presented; both `None` with TLS off.
pub fn check_hub_tls(
    cfg: &Config,
    config_path: Option<&Path>,
    configured: Option<Result<tls::Pair, String>>,
    served: Option<Result<Vec<Vec<u8>>, ProbeError>>,
    now: time::OffsetDateTime,
) -> Check {
    const NAME: &str = "hub-tls";
    let file = config_path.map_or("swarmhub.toml".to_string(), |p| p.display().to_string());
    let run = match config_path {
        Some(p) => format!("swarmhub --config {} run", p.display()),
        None => "swarmhub run".to_string(),
    };
    let (Some(configured), Some(served)) = (configured, served) else {
        let https = cfg.cluster.public_url.replacen("http://", "https://", 1);
        return Check::fail(
            NAME,
            format!(
                "the hub serves plain HTTP ({}): LDAP passwords cross the network in clear",
                cfg.cluster.public_url
            ),
            format!(
                "in {file} set mode = \"self-signed\" under [tls] (or mode = \"files\" with cert_file and key_file of your certificate) and public_url = \"{https}\" under [cluster], then run: {run}"
            ),
        );
    };
    let configured = match configured {
        Ok(p) => p,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("the configured certificate cannot be used: {e}"),
                format!("fix the file, then run: {run}"),
            );
        }
    };
    let chain = match served {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("no TLS handshake with the hub: {e}"),
                format!(
                    "{run}; look at the hub's log: docker service logs {}",
                    cfg.cluster.hub_service
                ),
            );
        }
    };
    let leaf = match chain.first().map(|d| tls::CertInfo::from_der(d)) {
        Some(Ok(l)) => l,
        Some(Err(e)) => {
            return Check::fail(
                NAME,
                format!("the hub serves a certificate that cannot be parsed: {e}"),
                run,
            );
        }
        None => return Check::fail(NAME, "the hub presented no certificate", run),
    };
    if leaf.der != configured.leaf.der {
        return Check::fail(
            NAME,
            format!(
                "the hub serves another certificate (SHA-256 {}, for {}) than {} (SHA-256 {})",
                leaf.sha256,
                leaf.names.join(", "),
                configured.cert_path.display(),
                configured.leaf.sha256
            ),
            format!("{run} (the hub is updated with the configured certificate)"),
        );
    }
    let t = now.unix_timestamp();
    if leaf.not_before > t || leaf.not_after <= t {
        return Check::fail(
            NAME,
            format!(
                "the served certificate is valid from {} to {}, not now",
                tls::date(leaf.not_before),
                tls::date(leaf.not_after)
            ),
            format!("renew it, then run: {run}"),
        );
    }
    let host = cfg.public_host();
    if !leaf.covers(&host) {
        return Check::fail(
            NAME,
            format!(
                "the served certificate is for {}, not for {host} (the host of cluster.public_url): browsers refuse it",
                leaf.names.join(", ")
            ),
            format!(
                "use a certificate for {host} (tls.mode = \"self-signed\" makes one), then run: {run}"
            ),
        );
    }
    let days = leaf.left(now) / 86_400;
    let detail = format!(
        "serves {} for {} (valid until {}, {days} days left)",
        configured.cert_path.display(),
        leaf.names.join(", "),
        tls::date(leaf.not_after)
    );
    if days < i64::from(cfg.tls.expiry_warn_days) {
        let fix = match cfg.tls.mode {
            TlsMode::SelfSigned => format!("{run} (makes a new certificate from the same CA)"),
            _ => format!(
                "renew the certificate in {}, then run: {run}",
                configured.cert_path.display()
            ),
        };
        return Check::warn(
            NAME,
            format!(
                "{detail}: ends within tls.expiry_warn_days ({})",
                cfg.tls.expiry_warn_days
            ),
            fix,
        );
    }
    Check::ok(NAME, detail)
}

/// The hub's API answered with its version (pure).
pub fn check_hub_answer(
    url: &str,
    service: &str,
    port: u16,
    result: Result<serde_json::Value, ProbeError>,
) -> Check {
    let logs = format!("look at the hub's log: docker service logs {service}");
    match result {
        Ok(v) => match v.get("version").and_then(|v| v.as_str()) {
            Some(version) => Check::ok("hub-api", format!("{url}: JupyterHub {version}")),
            None => Check::fail(
                "hub-api",
                format!("{url} answered JSON without a version: {v}"),
                format!("is something else published on port {port}? {logs}"),
            ),
        },
        Err(e @ (ProbeError::Unreachable { .. } | ProbeError::Timeout { .. })) => Check::fail(
            "hub-api",
            e.to_string(),
            format!(
                "swarmhub hub start; {logs}; check that port {port}/tcp (cluster.hub_port) is published and not blocked by a firewall"
            ),
        ),
        Err(e) => Check::fail(
            "hub-api",
            e.to_string(),
            format!("{logs}; check cluster.public_url (its path is the hub's base URL)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::cluster::TaskInfo;

    fn node(host: &str, state: &str, availability: &str) -> NodeInfo {
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

    fn task(state: &str, desired: &str, error: Option<&str>, message: &str) -> TaskInfo {
        TaskInfo {
            id: "t1".into(),
            node_id: "id-alpha".into(),
            node: "alpha".into(),
            desired: desired.into(),
            state: state.into(),
            message: message.into(),
            error: error.map(String::from),
            since: "2025-11-26T18:00:00Z".into(),
        }
    }

    fn guard(problems: &[&str]) -> Result<firewall::Report, String> {
        Ok(firewall::Report {
            backend: "iptables v1.8.9 (nf_tables)".into(),
            change: crate::steps::Change::Unchanged,
            problems: problems.iter().map(|p| p.to_string()).collect(),
            rules: firewall::rule_specs(&[2049, 8049]),
        })
    }

    #[test]
    fn the_firewall_guard_must_be_complete_on_every_ready_node() {
        let nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
            node("gone", "down", "active"),
        ];
        let c = check_firewall(
            &nodes,
            &[("alpha".into(), guard(&[])), ("beta".into(), guard(&[]))],
        );
        assert_eq!(c.outcome, Outcome::Ok, "{}", c.detail);
        assert!(
            c.detail
                .contains("on all 2 node(s) (iptables v1.8.9 (nf_tables))"),
            "{}",
            c.detail
        );

        let c = check_firewall(
            &nodes,
            &[
                ("alpha".into(), guard(&[])),
                (
                    "beta".into(),
                    guard(&["INPUT does not jump to SWARMHUB-NFSD"]),
                ),
            ],
        );
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail,
            "notebooks on 1 node(s) may reach nfsd's ports: beta: INPUT does not jump to SWARMHUB-NFSD"
        );
        assert!(c.fix.unwrap().starts_with("swarmhub plugin rollout"));

        let c = check_firewall(&nodes, &[("alpha".into(), guard(&[]))]);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail.contains("beta: the check job ran no task there"),
            "{}",
            c.detail
        );
        let c = check_firewall(
            &nodes,
            &[
                ("alpha".into(), guard(&[])),
                ("beta".into(), Err("beta: rejected (No such image)".into())),
            ],
        );
        assert!(c.fix.unwrap().contains("docker load"));
    }

    #[test]
    fn nfsd_must_allow_every_node_and_not_everyone() {
        let mut nodes = vec![
            node("alpha", "ready", "active"),
            node("beta", "ready", "active"),
        ];
        nodes[0].addr = "10.0.0.1".into();
        nodes[1].addr = "10.0.0.2".into();
        let env = |allow: &str| {
            vec![
                "SWARMHUB_NFSD_DATA_DIR=/data".to_string(),
                format!("SWARMHUB_NFSD_ALLOW={allow}"),
            ]
        };
        let ok = check_nfsd_allow(&nodes, Some(&env("10.0.0.1/32,10.0.0.2/32,127.0.0.1/32")));
        assert_eq!(ok.outcome, Outcome::Ok, "{}", ok.detail);
        assert_eq!(
            check_nfsd_allow(&nodes, Some(&env("10.0.0.0/24"))).outcome,
            Outcome::Ok
        );
        let c = check_nfsd_allow(&nodes, Some(&env("10.0.0.1/32,127.0.0.1/32")));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail
                .starts_with("nfsd refuses the plugin of beta (10.0.0.2)"),
            "{}",
            c.detail
        );
        assert!(c.fix.unwrap().starts_with("swarmhub nfs run"));
        let c = check_nfsd_allow(&nodes, Some(&["SWARMHUB_NFSD_DATA_DIR=/data".to_string()]));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("every address"), "{}", c.detail);
        assert_eq!(check_nfsd_allow(&nodes, None).outcome, Outcome::Skip);
        assert!(allowed("fd00::/64", "fd00::5") && !allowed("fd00::/64", "10.0.0.1"));
        assert!(allowed("0.0.0.0/0", "192.168.1.1") && !allowed("10.0.0.1/32", "10.0.0.11"));
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
    fn nfsd_service_fixes_follow_the_state() {
        let svc = |exists: bool, desired: Option<u64>, tasks: Vec<TaskInfo>| ServiceStatus {
            component: "nfsd".into(),
            name: "swarmhub-nfsd".into(),
            deployed: exists,
            image: None,
            desired,
            running: status::running_tasks(&tasks),
            health: status::service_health(exists, desired, &tasks),
            tasks,
        };
        let c = check_nfsd_service(&svc(false, None, vec![]));
        assert_eq!(c.fix.as_deref(), Some("swarmhub run"));
        let c = check_nfsd_service(&svc(true, Some(0), vec![]));
        assert_eq!(c.fix.as_deref(), Some("swarmhub nfs start"));
        let c = check_nfsd_service(&svc(
            true,
            Some(1),
            vec![task("running", "running", None, "started")],
        ));
        assert_eq!(
            (c.outcome, c.detail.as_str()),
            (Outcome::Ok, "swarmhub-nfsd: 1/1 running on alpha")
        );
        let c = check_nfsd_service(&svc(
            true,
            Some(1),
            vec![task(
                "rejected",
                "shutdown",
                Some("No such image: swarmhub/nfsd:0.1.0"),
                "",
            )],
        ));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("No such image"), "{}", c.detail);
        assert!(c.fix.unwrap().contains("rebuild"));
        let c = check_nfsd_service(&svc(
            true,
            Some(1),
            vec![task(
                "pending",
                "running",
                None,
                "no suitable node (scheduling constraints not satisfied on 1 node)",
            )],
        ));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.fix.unwrap().contains("placement constraints"));
    }

    #[test]
    fn nfsd_api_fix_names_address_and_port() {
        let mut n = node("alpha", "ready", "active");
        n.addr = "10.0.0.5".into();
        let e = ProbeError::Unreachable {
            url: "http://10.0.0.5:8049/v1/health".into(),
            cause: "connection refused".into(),
        };
        let c = check_nfsd_api(&n, 8049, "swarmhub-nfsd", "http://10.0.0.5:8049", Err(e));
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("connection refused"));
        let fix = c.fix.unwrap();
        assert!(
            fix.contains("10.0.0.5:8049")
                && fix.contains("8049/tcp")
                && fix.contains("firewall")
                && fix.contains("in the network of alpha"),
            "{fix}"
        );
        let h = swarmhub_control_api::Health {
            status: "ok".into(),
            version: "0.1.0".into(),
            volumes: 1,
            nfs_listen: "0.0.0.0:2049".into(),
            uptime_seconds: 42,
        };
        let c = check_nfsd_api(&n, 8049, "swarmhub-nfsd", "http://10.0.0.5:8049", Ok(h));
        assert_eq!(
            c.detail,
            "http://10.0.0.5:8049: swarmhub-nfsd 0.1.0, 1 volume, up 42s"
        );
    }

    #[test]
    fn images_and_hub() {
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

        assert_eq!(base_path("http://localhost:8000/"), "/");
        assert_eq!(base_path("https://h.example.edu:8443/jupyter"), "/jupyter/");
        assert_eq!(base_path("https://h.example.edu"), "/");
        let mut cfg = Config::default();
        assert_eq!(
            hub_api_url(&cfg, "127.0.0.1"),
            "http://127.0.0.1:8000/hub/api"
        );
        cfg.cluster.public_url = "https://hub.example.edu/jupyter/".into();
        cfg.cluster.hub_port = 8443;
        assert_eq!(
            hub_api_url(&cfg, "10.0.0.1"),
            "http://10.0.0.1:8443/jupyter/hub/api"
        );

        let url = "http://127.0.0.1:8000/hub/api";
        let c = check_hub_answer(
            url,
            "swarmhub-hub",
            8000,
            Ok(serde_json::json!({"version": "5.2.1"})),
        );
        assert_eq!(c.detail, "http://127.0.0.1:8000/hub/api: JupyterHub 5.2.1");
        let c = check_hub_answer(url, "swarmhub-hub", 8000, Ok(serde_json::json!({})));
        assert_eq!(c.outcome, Outcome::Fail);
        let c = check_hub_answer(
            url,
            "swarmhub-hub",
            8000,
            Err(ProbeError::Unreachable {
                url: url.into(),
                cause: "connection refused".into(),
            }),
        );
        let fix = c.fix.unwrap();
        assert!(
            fix.starts_with("swarmhub hub start")
                && fix.contains("docker service logs swarmhub-hub"),
            "{fix}"
        );
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

    #[test]
    fn report_text_and_error() {
        let r = Report::new(vec![
            Check::ok(
                "dockerd",
                "dockerd at unix:///var/run/docker.sock is a swarm manager",
            ),
            Check::fail(
                "network",
                "network swarmhub does not exist",
                "swarmhub run (creates it)",
            ),
            Check::skip("ldap-bind", "give --ldap-password-file to check the bind"),
        ]);
        assert!(!r.ok());
        assert_eq!(
            r.text(),
            "\
✓ dockerd: dockerd at unix:///var/run/docker.sock is a swarm manager
✗ network: network swarmhub does not exist
    fix: swarmhub run (creates it)
- ldap-bind: skipped: give --ldap-password-file to check the bind
unhealthy: 1 ok, 1 failed, 1 skipped
"
        );
        let e = r.error().unwrap();
        assert_eq!(e.code(), 6);
        assert_eq!(
            e.to_string(),
            "health check failed: 1 of 3 checks failed: network"
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["failed"], 1);
        assert_eq!(v["checks"][1]["outcome"], "fail");
        assert_eq!(v["checks"][1]["fix"], "swarmhub run (creates it)");
        assert_eq!(v["checks"][2]["outcome"], "skip");
        assert!(Report::new(vec![Check::skip("x", "y")]).error().is_none());
        let opts = DoctorOptions {
            ldap_password: Some("hunter2".into()),
            config_path: None,
        };
        assert!(!format!("{opts:?}").contains("hunter2"));
    }

    /// A port on 127.0.0.1 that nobody listens on.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn without_dockerd_the_docker_checks_are_skipped_and_ldap_still_runs() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        let mut cfg = Config::default();
        cfg.timeouts.docker_seconds = 2;
        cfg.ldap.url = format!("ldap://127.0.0.1:{}", closed_port());
        cfg.ldap.starttls = false;
        let host = format!("unix://{}", sock.display());
        let t0 = std::time::Instant::now();
        let r = examine_at(&cfg, &DoctorOptions::default(), &host).await;
        assert!(t0.elapsed() < Duration::from_secs(10));
        let by_name = |n: &str| r.checks.iter().find(|c| c.name == n).unwrap();
        assert_eq!(by_name("dockerd").outcome, Outcome::Fail);
        assert!(
            by_name("dockerd").detail.contains(&host),
            "{:?}",
            by_name("dockerd")
        );
        for n in ["nodes", "secrets", "nfsd-api", "images", "hub-api"] {
            assert_eq!(by_name(n).outcome, Outcome::Skip, "{n}");
        }
        let ldap = by_name("ldap-connect");
        assert_eq!(ldap.outcome, Outcome::Fail, "{ldap:?}");
        assert!(ldap.detail.contains(&cfg.ldap.url), "{ldap:?}");
        assert!(ldap.fix.as_deref().unwrap().contains("ldap.url"));
        assert_eq!(by_name("ldap-bind").outcome, Outcome::Skip);
        assert_eq!(by_name("ldap-teacher-group").outcome, Outcome::Skip);
        let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dockerd",
                "nodes",
                "storage-node",
                "network",
                "secrets",
                "plugin-enabled",
                "plugin-version",
                "plugin-settings",
                "firewall",
                "nfsd-service",
                "nfsd-allow",
                "nfsd-api",
                "ldap-connect",
                "ldap-bind",
                "ldap-teacher-group",
                "ldap-student-group",
                "images",
                "hub-api",
                "hub-tls"
            ]
        );
        assert_eq!(r.error().unwrap().code(), 6);
    }

    #[tokio::test]
    async fn a_silent_ldap_server_times_out() {
        // accepts connections (kernel backlog) and never answers
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut cfg = Config::default();
        cfg.ldap.url = format!("ldap://{}", l.local_addr().unwrap());
        cfg.ldap.starttls = true; // the StartTLS request is never answered
        let t0 = std::time::Instant::now();
        let checks = ldap_checks(&cfg, &DoctorOptions::default(), Duration::from_millis(500)).await;
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_eq!(checks[0].outcome, Outcome::Fail, "{:?}", checks[0]);
        assert!(checks[0].fix.as_deref().unwrap().contains("certificate"));
        drop(l);
    }

    #[test]
    fn hub_tls_judges_the_served_certificate() {
        use time::{Duration as Days, OffsetDateTime};
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let mut cfg = Config::default();
        let path = dir.path().join("swarmhub.toml");
        // plain HTTP fails, with the exact change and command
        let c = check_hub_tls(&cfg, Some(&path), None, None, now);
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(c.detail.contains("plain HTTP"), "{c:?}");
        let fix = c.fix.unwrap();
        assert!(fix.contains("mode = \"self-signed\""), "{fix}");
        assert!(fix.contains("https://localhost:8000/"), "{fix}");
        assert!(
            fix.contains(&format!("swarmhub --config {} run", path.display())),
            "{fix}"
        );

        cfg.cluster.public_url = "https://hub.example.edu/".into();
        cfg.tls.mode = TlsMode::SelfSigned;
        cfg.tls.dir = dir.path().join("tls").display().to_string();
        let made =
            tls::ensure_self_signed(Path::new(&cfg.tls.dir), &["hub.example.edu".into()], now)
                .unwrap();
        let configured = tls::configured(&cfg, now);
        let pair = || configured.clone();
        let served = std::fs::read(&made.cert).unwrap();
        let der = |pem: &[u8]| {
            use rustls_pki_types::pem::PemObject;
            rustls_pki_types::CertificateDer::from_pem_slice(pem)
                .unwrap()
                .to_vec()
        };
        // the configured certificate, valid for a year: ok
        let c = check_hub_tls(
            &cfg,
            Some(&path),
            Some(pair()),
            Some(Ok(vec![der(&served)])),
            now,
        );
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        assert!(c.detail.contains("hub.example.edu"), "{c:?}");
        // near its end: a warning, not a failure
        let late = now + Days::days(tls::HUB_DAYS - 10);
        let c = check_hub_tls(
            &cfg,
            None,
            Some(tls::configured(&cfg, late)),
            Some(Ok(vec![der(&served)])),
            late,
        );
        assert_eq!(c.outcome, Outcome::Warn, "{c:?}");
        assert!(Report::new(vec![c]).ok());
        // another certificate than the configured one
        let other =
            tls::ensure_self_signed(&dir.path().join("other"), &["hub.example.edu".into()], now)
                .unwrap();
        let c = check_hub_tls(
            &cfg,
            None,
            Some(pair()),
            Some(Ok(vec![der(&std::fs::read(&other.cert).unwrap())])),
            now,
        );
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(c.detail.contains("another certificate"), "{c:?}");
        // a certificate that does not name the public host
        cfg.cluster.public_url = "https://jupyter.example.edu/".into();
        let c = check_hub_tls(&cfg, None, Some(pair()), Some(Ok(vec![der(&served)])), now);
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(c.detail.contains("not for jupyter.example.edu"), "{c:?}");
        // no handshake
        let c = check_hub_tls(
            &cfg,
            None,
            Some(pair()),
            Some(Err(ProbeError::Unreachable {
                url: "https://x".into(),
                cause: "TLS handshake failed".into(),
            })),
            now,
        );
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(c.fix.unwrap().contains("docker service logs"));
    }
}
