//! `swarmhub doctor`: health checks of the whole stack, in the order things depend on each
//! other, each ending in ok, failed (with a concrete fix: the command to run or the setting to
//! change) or skipped (with the reason). Read-only, for people ([`Report::text`]) and scripts
//! (`--output json`, the serialized [`Report`]); a failed check makes the command exit with 6.
//!
//! Checks, by name: `dockerd`, `nodes`, `storage-node`, `network`, `secrets`, `registry` (only
//! with a `[registry]`), `plugin-enabled`, `plugin-version`, `plugin-settings`, `firewall`,
//! `notebook-mounts` (every swarmhub mount of every running container answers, as the
//! container sees it: after a restart of the plugin, its FUSE mounts in running notebooks are
//! dead), `nfsd-service`, `nfsd-allow`, `nfsd-api`, `ldap-connect`, `ldap-bind`,
//! `ldap-teacher-group`, `ldap-student-group` (one per DN), `images`, `docker-gate` (the hub's
//! Docker gate runs on every ready, active manager), `hub-docker-socket` (the hub's service has
//! no bind mount, so no socket of dockerd's, and its `DOCKER_HOST` is the gate's socket),
//! `hub-api`, `hub-tls` (plain
//! HTTP fails; with TLS the served certificate must be the configured one, valid now, for the
//! public URL's host, and is a warning within `tls.expiry_warn_days` of its end). When dockerd
//! cannot be used, the checks that need it are skipped; the LDAP checks, which do not, still run.
//!
//! With a `[registry]`, doctor pins the settings as `run` does: `registry` asks the registry
//! (through dockerd, with the CLI's login, [`DoctorOptions::registry_login`]) for the digest of
//! every image and the plugin, and fails naming each one it lacks. The deployment so pinned is
//! what the nodes must run: `plugin-version` fails a node whose recorded plugin is not the pinned
//! one, `plugin-settings` one whose recorded settings' fingerprint is not that of the pinned
//! settings (which covers the notebook images its rollout pulled), both with the fix
//! `swarmhub plugin rollout`; `images` asks nothing of this node (the nodes pull), but warns when
//! nfsd or the hub run other images than the registry has now (`swarmhub restart`); the
//! firewall job runs the pinned CLI image, pulled with that login. Without a
//! registry these checks are as they always were (one plugin version everywhere, the settings in
//! effect, every image on this node).
//!
//! Every network operation has a timeout (`timeouts.docker_seconds` for Docker calls, at most
//! 5 s for HTTP and LDAP); a failed or timed-out one is a failed check naming the cause.
//! The judgements are pure functions over what was read (`check_*`), tested without Docker.
//! This file holds the result types ([`Check`], [`Report`]) and the order of the checks
//! ([`examine_at`]); it only calls the others. `swarm.rs` reads and judges dockerd and the swarm
//! and holds the order of the swarm checks (`swarm_check_names`), `registry.rs` the registry and
//! the pinned deployment, `plugin.rs` the volume plugin on
//! every node, `firewall.rs` the firewall guard, `nfsd.rs` nfsd's service, allow list and API,
//! `ldap.rs` the directory, `gate.rs` the hub's Docker gate and the hub's way to Docker, `hub.rs`
//! the hub's API and certificate; in each, the `async fn`s do
//! the I/O and the `check_*` functions judge what they read (pure, unit-tested there).
//! `firewall` is read on every node by a one-shot global job (`swarmhub-firewall-check`) that
//! lists swarmhub's iptables chain there, and `notebook-mounts` by another
//! (`swarmhub-mount-check`, `mounts.rs`), so doctor starts (and removes) those jobs.

mod firewall;
mod gate;
mod hub;
mod ldap;
mod mounts;
mod nfsd;
mod plugin;
mod registry;
mod swarm;

use gate::{GATE_CHECKS, gate_checks};
use ldap::ldap_checks;
use registry::pins;
use swarm::{check_dockerd, images_check, swarm_check_names, swarm_checks};

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::docker;
use crate::docker::engine::RegistryLogin;
use crate::exit::CliError;
use crate::inspect::health::probe_timeout;
use crate::settings::Config;

pub use firewall::check_firewall;
pub use gate::{check_docker_gate, check_hub_docker_socket};
pub use hub::{base_path, check_hub_answer, check_hub_tls, hub_api_url, hub_check, hub_tls_check};
pub use mounts::check_notebook_mounts;
pub use nfsd::{check_nfsd_allow, check_nfsd_api, check_nfsd_service};
pub use plugin::{
    check_plugin_deployed, check_plugin_deployed_settings, check_plugin_enabled,
    check_plugin_settings, check_plugin_versions,
};
pub use registry::{LoginProblem, Lookup, Pins, check_registry};
pub use swarm::{
    ServiceImage, check_images, check_network, check_nodes, check_secrets, check_service_images,
    check_storage, dockerd_failure,
};

/// What the CLI gives the checks besides the settings.
#[derive(Clone)]
pub struct DoctorOptions {
    /// The LDAP bind password (read by the CLI from `--ldap-password-file`); without it the
    /// bind as `ldap.bind_dn` is not checked.
    pub ldap_password: Option<String>,
    /// The settings file, for the commands in fixes.
    pub config_path: Option<std::path::PathBuf>,
    /// The CLI's login to `[registry]` (`--registry-password-file`, or this machine's
    /// `docker login`; `None`: anonymous), or why it has none: the `registry` check fails
    /// with that. Unused without a registry.
    pub registry_login: Result<Option<RegistryLogin>, LoginProblem>,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            ldap_password: None,
            config_path: None,
            registry_login: Ok(None),
        }
    }
}

impl std::fmt::Debug for DoctorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |p: &Option<String>| p.as_ref().map(|_| "<redacted>");
        let login = match &self.registry_login {
            Ok(Some(l)) => format!(
                "{} as {:?}, password {:?}",
                l.server,
                l.username,
                redacted(&l.password)
            ),
            Ok(None) => "anonymous".into(),
            Err(p) => format!("none: {}", p.what),
        };
        f.debug_struct("DoctorOptions")
            .field("ldap_password", &redacted(&self.ldap_password))
            .field("config_path", &self.config_path)
            .field("registry_login", &login)
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
    let (check, mut cluster) = check_dockerd(cfg, host).await;
    if let (Some(c), Ok(login)) = (&mut cluster, &opts.registry_login) {
        // the nodes pull the firewall job's image with it, as they do for `run`'s services
        c.registry_login = login.clone();
    }
    checks.push(check);
    let unusable = "dockerd is not usable (see the dockerd check)";
    let pinned = match &cluster {
        Some(c) => pins(c, cfg, &opts.registry_login).await,
        None => None,
    };
    match &cluster {
        Some(c) => checks.extend(swarm_checks(c, cfg, pinned.as_ref()).await),
        None => checks.extend(
            swarm_check_names(cfg)
                .into_iter()
                .map(|n| Check::skip(n, unusable)),
        ),
    }
    checks.extend(ldap_checks(cfg, opts, probe_timeout(cfg)).await);
    match &cluster {
        Some(c) => {
            checks.push(images_check(c, cfg, pinned.as_ref()).await);
            checks.extend(gate_checks(c, cfg).await);
            checks.push(hub_check(c, cfg).await);
            checks.push(hub_tls_check(c, cfg, opts.config_path.as_deref()).await);
        }
        None => checks.extend(
            ["images"]
                .into_iter()
                .chain(GATE_CHECKS)
                .chain(["hub-api", "hub-tls"])
                .map(|n| Check::skip(n, unusable)),
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            registry_login: Ok(Some(RegistryLogin {
                server: "r:5000".into(),
                username: Some("ann".into()),
                password: Some("s3cret".into()),
            })),
        };
        let shown = format!("{opts:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret") && shown.contains("ann"),
            "{shown}"
        );
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
        for n in [
            "nodes",
            "secrets",
            "nfsd-api",
            "images",
            "docker-gate",
            "hub-docker-socket",
            "hub-api",
        ] {
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
                "notebook-mounts",
                "nfsd-service",
                "nfsd-allow",
                "nfsd-api",
                "ldap-connect",
                "ldap-bind",
                "ldap-teacher-group",
                "ldap-student-group",
                "images",
                "docker-gate",
                "hub-docker-socket",
                "hub-api",
                "hub-tls"
            ]
        );
        assert_eq!(r.error().unwrap().code(), 6);

        // with a registry, its check is among those dockerd's absence skips
        cfg.registry.address = Some("r:5000".into());
        let r = examine_at(&cfg, &DoctorOptions::default(), &host).await;
        let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 23, "{names:?}");
        assert_eq!(names[4..6], ["secrets", "registry"], "{names:?}");
        assert_eq!(r.checks[5].outcome, Outcome::Skip, "{:?}", r.checks[5]);
    }
}
