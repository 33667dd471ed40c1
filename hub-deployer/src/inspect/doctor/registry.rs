//! Check `registry` (only with a `[registry]` in the settings): the registry has every image and
//! the plugin, each resolved to the digest its reference names there now, as `run` pins them.
//! [`pins`] asks the registry through this dockerd with the CLI's login (reads only); what it
//! found ([`Pins`]) is the deployment as `run` would make it now, which the `plugin-version`,
//! `plugin-settings` and `images` checks compare the nodes and services with. [`check_registry`]
//! judges what was found (pure); its fixes are those `run` gives for the same answers.

use std::time::Duration;

use futures_util::future::join_all;

use super::{Check, Outcome};
use crate::docker::cluster::Swarm;
use crate::docker::engine::{EngineError, RegistryLogin, registry_access_fix};
use crate::exit::CliError;
use crate::settings::Config;
use bollard::models::RegistryServiceConfig;
use std::net::Ipv4Addr;

/// Why the CLI has no login to the registry (its `--registry-password-file` or `docker login`
/// do not fit `registry.username`): the `registry` check fails with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginProblem {
    /// What is wrong.
    pub what: String,
    /// What to do.
    pub fix: String,
}

impl LoginProblem {
    /// From the error of the CLI's login.
    pub fn of(e: &CliError) -> LoginProblem {
        match e {
            CliError::Precondition { what, fix } => LoginProblem {
                what: what.clone(),
                fix: fix.clone(),
            },
            other => LoginProblem {
                what: other.chain().join(": "),
                fix: "give the password of registry.username with --registry-password-file FILE, or docker login to the registry here".into(),
            },
        }
    }
}

/// One reference of the settings as the registry has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// Its setting (`images.hub`, `images.plugin`).
    pub key: &'static str,
    /// The reference as configured.
    pub reference: String,
    /// The reference pinned to the digest the registry has (`ref@sha256:…`; one pinned in the
    /// settings already stays as it is), or dockerd's answer.
    pub found: Result<String, EngineError>,
}

/// The deployment as `run` would pin it now (with a `[registry]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    /// `registry.address`.
    pub address: String,
    /// Every image, then the plugin; empty when the registry was not asked (`login`).
    pub lookups: Vec<Lookup>,
    /// Why the registry was not asked.
    pub login: Option<LoginProblem>,
}

impl Pins {
    /// The pinned reference of the setting `key` (`images.hub`), when the registry has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lookups
            .iter()
            .find(|l| l.key == key)
            .and_then(|l| l.found.as_deref().ok())
    }

    /// `cfg` with every image and the plugin pinned (what `run` deploys now); `None` unless
    /// the registry has them all.
    pub fn config(&self, cfg: &Config) -> Option<Config> {
        let mut out = cfg.clone();
        for (key, field) in out.images.references_mut() {
            *field = self.get(key)?.to_string();
        }
        Some(out)
    }
}

// Reads (I/O): the registry, through dockerd.

/// Ask the registry for every image and the plugin of `cfg`, all at once, each within
/// `timeouts.docker_seconds`, logged in as `login` (the CLI's); `None` without a `[registry]`.
pub(super) async fn pins(
    c: &Swarm,
    cfg: &Config,
    login: &Result<Option<RegistryLogin>, LoginProblem>,
) -> Option<Pins> {
    let address = cfg.registry.address.clone()?;
    let login = match login {
        Ok(l) => l.as_ref(),
        Err(problem) => {
            return Some(Pins {
                address,
                lookups: Vec::new(),
                login: Some(problem.clone()),
            });
        }
    };
    let secs = cfg.timeouts.docker_seconds;
    let lookups = join_all(cfg.images.references().map(|(key, reference)| async move {
        let asked = c.engine().registry_digest(reference, login);
        let found = match tokio::time::timeout(Duration::from_secs(secs), asked).await {
            Ok(Ok(_)) if reference.contains('@') => Ok(reference.to_string()),
            Ok(Ok(digest)) => Ok(format!("{reference}@{digest}")),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(EngineError::Unreachable(format!(
                "no answer within {secs} s (timeouts.docker_seconds)"
            ))),
        };
        Lookup {
            key,
            reference: reference.to_string(),
            found,
        }
    }))
    .await;
    Some(Pins {
        address,
        lookups,
        login: None,
    })
}

// Judgements (pure).

/// Whether the dockerd whose registry settings are `rc` speaks plain HTTP to `address`: the
/// address listed in its `insecure-registries`, or an IPv4 address in one of its insecure
/// networks (127.0.0.0/8 by default).
pub fn dockerd_plain_http(rc: &RegistryServiceConfig, address: &str) -> bool {
    if let Some(secure) = rc
        .index_configs
        .as_ref()
        .and_then(|m| m.get(address))
        .and_then(|i| i.secure)
    {
        return !secure;
    }
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let Ok(ip) = host.parse::<Ipv4Addr>() else {
        return false;
    };
    rc.insecure_registry_cidrs
        .iter()
        .flatten()
        .any(|cidr| in_network(ip, cidr))
}

fn in_network(ip: Ipv4Addr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<Ipv4Addr>(), bits.parse::<u32>()) else {
        return false;
    };
    let mask = match bits {
        0 => 0,
        1..=32 => u32::MAX << (32 - bits),
        _ => return false,
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

/// [`check_registry`], and when that passes, whether this manager's dockerd reaches the
/// registry the way `registry.tls` says: with `tls = false` it must list the registry as
/// insecure, or every pull fails ("server gave HTTP response to HTTPS client").
pub fn check_registry_transport(p: &Pins, tls: bool, rc: Option<&RegistryServiceConfig>) -> Check {
    let c = check_registry(p);
    match rc {
        Some(rc) if c.outcome == Outcome::Ok && !tls && !dockerd_plain_http(rc, &p.address) => {
            Check::fail(
                "registry",
                format!(
                    "registry.tls = false (plain HTTP), but this manager's dockerd speaks HTTPS to {}: its pulls fail",
                    p.address
                ),
                format!(
                    "list {} in every node's /etc/docker/daemon.json \"insecure-registries\" and restart dockerd there; or give the registry a certificate and set registry.tls = true",
                    p.address
                ),
            )
        }
        _ => c,
    }
}

/// The registry has every image and the plugin (pure); a failure names each reference it
/// lacks, with dockerd's answer, and the fix for that answer.
pub fn check_registry(p: &Pins) -> Check {
    let address = &p.address;
    if let Some(problem) = &p.login {
        return Check::fail(
            "registry",
            format!("cannot log in to the registry {address}: {}", problem.what),
            problem.fix.clone(),
        );
    }
    let missing: Vec<(&Lookup, &EngineError)> = p
        .lookups
        .iter()
        .filter_map(|l| l.found.as_ref().err().map(|e| (l, e)))
        .collect();
    if missing.is_empty() {
        return Check::ok(
            "registry",
            format!(
                "{address} has every image and the plugin ({} references), each pinned to the digest it has now",
                p.lookups.len()
            ),
        );
    }
    let detail = missing
        .iter()
        .map(|(l, e)| format!("{} ({}): {}", l.reference, l.key, e.message()))
        .collect::<Vec<_>>()
        .join("; ");
    let mut fixes: Vec<String> = Vec::new();
    for (_, e) in &missing {
        let fix = registry_fix(address, e);
        if !fixes.contains(&fix) {
            fixes.push(fix);
        }
    }
    Check::fail(
        "registry",
        format!("not found in the registry {address}: {detail}"),
        fixes.join("; "),
    )
}

/// What to do about dockerd's answer for a reference the registry did not give (the fixes of
/// `run`'s pinning).
fn registry_fix(address: &str, e: &EngineError) -> String {
    if matches!(e, EngineError::Unreachable(_)) {
        return format!(
            "check that dockerd answers (docker info) and reaches the registry {address}"
        );
    }
    registry_access_fix(address, e.message())
        .unwrap_or_else(|| "push them first: swarmhub push (or swarmhub rebuild)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::doctor::Outcome;

    fn lookup(key: &'static str, found: Result<&str, EngineError>) -> Lookup {
        Lookup {
            key,
            reference: format!(
                "r:5000/swarmhub/{}:0.1.0",
                key.trim_start_matches("images.")
            ),
            found: found.map(str::to_string),
        }
    }

    #[test]
    fn plain_http_is_what_dockerd_lists_as_insecure() {
        use bollard::models::IndexInfo;
        let mut rc = RegistryServiceConfig {
            insecure_registry_cidrs: Some(vec!["127.0.0.0/8".into()]),
            ..Default::default()
        };
        assert!(dockerd_plain_http(&rc, "127.0.0.1:5000"));
        assert!(!dockerd_plain_http(&rc, "10.0.0.5:5000"));
        assert!(!dockerd_plain_http(&rc, "reg.example.edu:5000"));
        rc.index_configs = Some(
            [(
                "10.0.0.5:5000".to_string(),
                IndexInfo {
                    secure: Some(false),
                    ..Default::default()
                },
            )]
            .into(),
        );
        assert!(dockerd_plain_http(&rc, "10.0.0.5:5000"));
        rc.insecure_registry_cidrs = Some(vec!["192.168.213.0/24".into(), "bad".into()]);
        assert!(dockerd_plain_http(&rc, "192.168.213.254:5000"));
        assert!(!dockerd_plain_http(&rc, "192.168.214.1:5000"));
    }

    #[test]
    fn every_answer_of_the_registry_has_its_fix() {
        let ok = Pins {
            address: "r:5000".into(),
            lookups: vec![
                lookup("images.hub", Ok("r:5000/swarmhub/hub:0.1.0@sha256:aa")),
                lookup(
                    "images.plugin",
                    Ok("r:5000/swarmhub/plugin:0.1.0@sha256:bb"),
                ),
            ],
            login: None,
        };
        let c = check_registry(&ok);
        assert_eq!(c.outcome, Outcome::Ok, "{c:?}");
        // plain HTTP configured, but this dockerd would speak HTTPS to it: every pull fails
        let https_only = RegistryServiceConfig {
            insecure_registry_cidrs: Some(vec!["127.0.0.0/8".into()]),
            ..Default::default()
        };
        let c = check_registry_transport(&ok, false, Some(&https_only));
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(
            c.fix
                .as_deref()
                .unwrap_or_default()
                .contains("insecure-registries"),
            "{c:?}"
        );
        // HTTPS configured, or dockerd's settings unknown: the registry check as it was
        assert_eq!(
            check_registry_transport(&ok, true, Some(&https_only)).outcome,
            Outcome::Ok
        );
        assert_eq!(
            check_registry_transport(&ok, false, None).outcome,
            Outcome::Ok
        );
        assert_eq!(
            ok.get("images.hub"),
            Some("r:5000/swarmhub/hub:0.1.0@sha256:aa")
        );
        // not every reference: no pinned settings
        assert_eq!(ok.config(&Config::default()), None);

        let missing = |e: EngineError| Pins {
            lookups: vec![
                lookup("images.hub", Ok("r:5000/swarmhub/hub:0.1.0@sha256:aa")),
                lookup("images.plugin", Err(e)),
            ],
            ..ok.clone()
        };
        let c = check_registry(&missing(EngineError::NotFound("manifest unknown".into())));
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail,
            "not found in the registry r:5000: r:5000/swarmhub/plugin:0.1.0 (images.plugin): manifest unknown"
        );
        assert!(c.fix.unwrap().contains("swarmhub push"));
        let c = check_registry(&missing(EngineError::Other {
            status: 500,
            message: "Get \"https://r:5000/v2/\": http: server gave HTTP response to HTTPS client"
                .into(),
        }));
        let fix = c.fix.unwrap();
        assert!(
            fix.contains("registry.tls = false") && fix.contains("insecure-registries"),
            "{fix}"
        );
        let c = check_registry(&missing(EngineError::Other {
            status: 401,
            message: "unauthorized: authentication required".into(),
        }));
        assert!(c.fix.unwrap().contains("--registry-password-file"));
        let c = check_registry(&missing(EngineError::Unreachable("timed out".into())));
        assert!(c.fix.unwrap().contains("docker info"));

        let no_login = Pins {
            lookups: Vec::new(),
            login: Some(LoginProblem::of(&CliError::Precondition {
                what: "registry.username is ann, but no password for r:5000 was given".into(),
                fix: "give it with --registry-password-file FILE".into(),
            })),
            ..ok
        };
        let c = check_registry(&no_login);
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(
            c.detail.contains("cannot log in to the registry r:5000"),
            "{c:?}"
        );
        assert_eq!(
            c.fix.as_deref(),
            Some("give it with --registry-password-file FILE")
        );
    }

    // against the in-memory swarm (crate::inspect::tests::healthy) as a pinned `run` left it

    use crate::docker::cluster::Cluster;
    use crate::docker::fake::Fake;
    use crate::inspect::doctor::swarm::tests::{failed, named, outcomes};
    use crate::inspect::doctor::swarm::{images_check, swarm_check_names, swarm_checks};
    use crate::inspect::tests::{
        NODE, REGISTRY, digest, healthy, pinned, publish, registry_settings,
    };
    use crate::names::{FIREWALL_CHECK_SERVICE, PLUGIN_SETTINGS_LABEL, PLUGIN_VERSION_LABEL};

    /// The settings as loaded (images in [`REGISTRY`], not pinned), and the swarm as `run`
    /// left it with every image and the plugin pinned to digest `a`, which the registry holds.
    async fn deployed() -> (Config, Cluster<Fake>) {
        let cfg = registry_settings();
        let c = healthy(&pinned(&cfg, &digest('a'))).await;
        publish(c.engine(), &cfg, &digest('a'));
        (cfg, c)
    }

    /// The swarm checks and `images`, as doctor makes them with the CLI's login `login`.
    async fn checked_as(
        c: &Swarm,
        cfg: &Config,
        login: Result<Option<RegistryLogin>, LoginProblem>,
    ) -> Vec<Check> {
        let p = pins(c, cfg, &login).await;
        assert!(p.is_some(), "a [registry] is set");
        let mut checks = swarm_checks(c, cfg, p.as_ref()).await;
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            swarm_check_names(cfg),
            "one check per name, in order"
        );
        assert!(names.contains(&"registry"), "{names:?}");
        checks.push(images_check(c, cfg, p.as_ref()).await);
        checks
    }

    async fn checked(c: &Swarm, cfg: &Config) -> Vec<Check> {
        checked_as(c, cfg, Ok(None)).await
    }

    /// The short form of `<REGISTRY>/swarmhub/<name>:0.1.0@sha256:<hex × 12>`.
    fn short(name: &str, hex: char) -> String {
        format!(
            "{REGISTRY}/swarmhub/{name}:0.1.0@sha256:{}",
            hex.to_string().repeat(12)
        )
    }

    #[tokio::test]
    async fn a_healthy_registry_deployment_passes_and_asks_nothing_of_this_nodes_images() {
        let (cfg, c) = deployed().await;
        let checks = checked(&c, &cfg).await;
        let mut want: Vec<(&str, Outcome)> = swarm_check_names(&cfg)
            .into_iter()
            .map(|n| (n, Outcome::Ok))
            .collect();
        want.push(("images", Outcome::Ok));
        // nothing listens on the fake storage node's API port
        want.iter_mut().find(|w| w.0 == "nfsd-api").unwrap().1 = Outcome::Fail;
        assert_eq!(outcomes(&checks), want, "{checks:#?}");
        assert!(
            named(&checks, "registry").detail.starts_with(&format!(
                "{REGISTRY} has every image and the plugin (6 references)"
            )),
            "{checks:#?}"
        );
        assert_eq!(
            named(&checks, "plugin-version").detail,
            format!("{} on every ready node", short("swarmhub-nfs", 'a'))
        );
        let images = &named(&checks, "images").detail;
        assert!(
            images.contains(&format!("runs {}", short("nfsd", 'a')))
                && images.contains(&format!("runs {}", short("hub", 'a'))),
            "{images}"
        );
        // the registry was asked for each reference; no image of this node was
        let calls = c.engine().calls();
        let asked = calls
            .iter()
            .filter(|c| c.starts_with("registry_digest "))
            .count();
        assert_eq!(asked, 6, "{calls:#?}");
        assert!(
            !calls.iter().any(|c| c.starts_with("inspect_image")),
            "{calls:#?}"
        );
        let job = FIREWALL_CHECK_SERVICE;
        assert_eq!(
            c.engine().changes(),
            [
                format!("create_service {job}"),
                format!("delete_service {job}"),
                format!("create_service {}", crate::names::MOUNT_CHECK_SERVICE),
                format!("delete_service {}", crate::names::MOUNT_CHECK_SERVICE)
            ]
        );
    }

    #[tokio::test]
    async fn a_node_behind_on_the_plugin_fails_with_the_rollout() {
        let (cfg, c) = deployed().await;
        let old = format!("{REGISTRY}/swarmhub/swarmhub-nfs:0.1.0@{}", digest('b'));
        c.engine().edit_node(NODE, |n| {
            let labels = n.spec.as_mut().unwrap().labels.as_mut().unwrap();
            labels.insert(PLUGIN_VERSION_LABEL.into(), old);
        });
        let checks = checked(&c, &cfg).await;
        let v = named(&checks, "plugin-version");
        assert_eq!(v.outcome, Outcome::Fail, "{v:?}");
        assert_eq!(
            v.detail,
            format!(
                "not on the deployed plugin: alpha has {}; deployed is {} (what the registry has now)",
                short("swarmhub-nfs", 'b'),
                short("swarmhub-nfs", 'a')
            )
        );
        let fix = v.fix.as_deref().unwrap();
        assert!(
            fix.starts_with("swarmhub plugin rollout")
                && fix.contains(
                    "--drain stops the notebooks that keep a node from upgrading; their files stay"
                ),
            "{fix}"
        );
        assert_eq!(named(&checks, "plugin-settings").outcome, Outcome::Ok);
        assert_eq!(named(&checks, "registry").outcome, Outcome::Ok);
    }

    #[tokio::test]
    async fn a_node_installed_with_other_settings_fails_with_the_rollout() {
        let (cfg, c) = deployed().await;
        c.engine().edit_node(NODE, |n| {
            let labels = n.spec.as_mut().unwrap().labels.as_mut().unwrap();
            labels.insert(PLUGIN_SETTINGS_LABEL.into(), "0123456789ab".into());
        });
        let checks = checked(&c, &cfg).await;
        let s = named(&checks, "plugin-settings");
        assert_eq!(s.outcome, Outcome::Fail, "{s:?}");
        assert!(s.detail.contains("alpha has 0123456789ab"), "{s:?}");
        assert!(s.detail.contains("notebook images"), "{s:?}");
        let fix = s.fix.as_deref().unwrap();
        assert!(
            fix.starts_with("swarmhub plugin rollout") && fix.contains("--drain"),
            "{fix}"
        );
        assert_eq!(named(&checks, "plugin-version").outcome, Outcome::Ok);
    }

    #[tokio::test]
    async fn an_image_missing_from_the_registry_is_named_with_swarmhub_push() {
        let cfg = registry_settings();
        let c = healthy(&pinned(&cfg, &digest('a'))).await;
        // pushed, all but the teacher's notebook image
        for (key, image) in cfg.images.deployed() {
            if key != "images.notebook_teacher" {
                c.engine().publish(image, &digest('a'));
            }
        }
        c.engine().publish(&cfg.images.plugin, &digest('a'));
        let checks = checked(&c, &cfg).await;
        let r = named(&checks, "registry");
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        assert!(
            r.detail.starts_with(&format!(
                "not found in the registry {REGISTRY}: {REGISTRY}/swarmhub/notebook-teacher:0.1.0 (images.notebook_teacher): "
            )),
            "{r:?}"
        );
        assert_eq!(
            r.fix.as_deref(),
            Some("push them first: swarmhub push (or swarmhub rebuild)")
        );
        // the plugin is known, its settings (which cover the notebook images) are not
        assert_eq!(named(&checks, "plugin-version").outcome, Outcome::Ok);
        let s = named(&checks, "plugin-settings");
        assert_eq!(s.outcome, Outcome::Skip, "{s:?}");
        assert!(s.detail.contains("see the registry check"), "{s:?}");
        assert_eq!(named(&checks, "images").outcome, Outcome::Ok);
        assert_eq!(
            failed(&checks).iter().map(|f| f.0).collect::<Vec<_>>(),
            ["registry", "nfsd-api"]
        );
    }

    #[tokio::test]
    async fn a_newer_push_leaves_the_nodes_behind_and_the_services_with_a_warning() {
        let (cfg, c) = deployed().await;
        publish(c.engine(), &cfg, &digest('b'));
        let checks = checked(&c, &cfg).await;
        assert_eq!(named(&checks, "registry").outcome, Outcome::Ok);
        let v = named(&checks, "plugin-version");
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(
            v.detail.contains(&format!(
                "alpha has {}; deployed is {}",
                short("swarmhub-nfs", 'a'),
                short("swarmhub-nfs", 'b')
            )),
            "{v:?}"
        );
        // the pinned plugin and notebook images are in the fingerprint
        assert_eq!(named(&checks, "plugin-settings").outcome, Outcome::Fail);
        let images = named(&checks, "images");
        assert_eq!(images.outcome, Outcome::Warn, "{images:?}");
        assert!(
            images.detail.contains(&format!(
                "{} runs {}, the registry has {} now",
                cfg.cluster.hub_service,
                short("hub", 'a'),
                short("hub", 'b')
            )),
            "{images:?}"
        );
        // the Docker gate runs the CLI image
        assert!(
            images.detail.contains(&format!(
                "{} runs {}, the registry has {} now",
                crate::names::docker_gate_service(&cfg.cluster.hub_service),
                short("swarmhub", 'a'),
                short("swarmhub", 'b')
            )),
            "{images:?}"
        );
        assert!(
            images
                .fix
                .as_deref()
                .unwrap()
                .starts_with("swarmhub restart"),
            "{images:?}"
        );
    }

    #[tokio::test]
    async fn without_a_login_the_registry_check_fails_with_the_clis_fix() {
        let (cfg, c) = deployed().await;
        let problem = LoginProblem {
            what: "registry.username is ann, but no password was given".into(),
            fix: "give it with --registry-password-file FILE".into(),
        };
        let checks = checked_as(&c, &cfg, Err(problem)).await;
        let r = named(&checks, "registry");
        assert_eq!(
            (r.outcome, r.fix.as_deref()),
            (
                Outcome::Fail,
                Some("give it with --registry-password-file FILE")
            )
        );
        // nothing pinned to compare with: one version everywhere, the rest skipped
        assert_eq!(named(&checks, "plugin-version").outcome, Outcome::Ok);
        assert_eq!(named(&checks, "plugin-settings").outcome, Outcome::Skip);
        assert_eq!(named(&checks, "images").outcome, Outcome::Skip);
        assert!(
            !c.engine()
                .calls()
                .iter()
                .any(|c| c.starts_with("registry_digest")),
            "the registry is not asked without a login"
        );
    }
}
