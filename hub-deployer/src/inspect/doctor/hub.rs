//! Checks `hub-api` and `hub-tls`: finds the node running the hub (dockerd reads), asks the
//! hub's API and reads the certificate it serves (HTTP/TLS to that node). [`hub_check`] is also
//! what `lifecycle` waits on after starting the hub. The `check_hub_*`, [`base_path`] and
//! [`hub_api_url`] are pure and tested here.

use std::path::Path;

use super::swarm::service_and_tasks;
use super::{Check, timed};
use crate::docker::cluster::Swarm;
use crate::inspect::health::probe_timeout;
use crate::inspect::probe::{self, ProbeError};
use crate::settings::tls;
use crate::settings::{Config, TlsMode};

// Reads (I/O): dockerd for where the hub runs, then the hub itself.

/// The address of the node whose task of the hub runs, or the failed check `name` saying why
/// there is none.
async fn hub_host(c: &Swarm, cfg: &Config, name: &str) -> Result<String, Check> {
    let svc = &cfg.cluster.hub_service;
    let secs = cfg.timeouts.docker_seconds;
    let read = async {
        let (service, tasks) = service_and_tasks(c, svc).await?;
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
pub async fn hub_check(c: &Swarm, cfg: &Config) -> Check {
    let host = match hub_host(c, cfg, "hub-api").await {
        Ok(h) => h,
        Err(check) => return check,
    };
    let url = hub_api_url(cfg, &host);
    let svc = &cfg.cluster.hub_service;
    let timeout = probe_timeout(cfg);
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
pub async fn hub_tls_check(c: &Swarm, cfg: &Config, config_path: Option<&Path>) -> Check {
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
        probe_timeout(cfg),
    )
    .await;
    check_hub_tls(cfg, config_path, Some(configured), Some(served), now)
}

// Judgements of what was read (pure: no I/O).

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
    let host = probe::url_host(host);
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
    use crate::inspect::doctor::{Outcome, Report};

    #[test]
    fn hub_url_and_answer() {
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
