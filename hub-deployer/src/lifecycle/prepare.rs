//! `swarmhub volume prepare --group G...`: create every member's volumes ahead of their first
//! login (before a lecture), so that many first logins at once do not each wait for nfsd to
//! look the user up in LDAP, make and chown the tree.
//!
//! The members come from the directory ([`crate::directory`], bound as `ldap.bind_dn` with
//! `--ldap-password-file`, or anonymously); the volumes are exactly those the hub's
//! `swarmhub_pre_spawn_hook` mounts ([`hub_volumes`]: `home-<user>` and
//! `<exchange_share>-<user>` with the same options, since nfsd refuses an existing volume asked
//! for with other options); nfsd creates them through one one-shot api job for all users
//! ([`volume::ApiAction::Create`]), which answers one line per volume. User names that cannot
//! name a volume (the hub's rule) are reported and skipped. `--dry-run` lists what is missing
//! from nfsd's list instead. Pure parts: [`resolve_group`], [`hub_volumes`], [`check_user`],
//! [`judge_created`], [`judge_listed`] and the report's text.

use std::collections::BTreeSet;

use serde::Serialize;
use swarmhub_control_api::names::{validate_user_name, validate_volume_name};
use swarmhub_control_api::{Volume, VolumeOptions};

use super::volume::{self, ApiAction, ApiResult, VolumeSpec};
use crate::directory::{self, Session};
use crate::docker::cluster::Swarm;
use crate::exit::CliError;
use crate::inspect::health::probe_timeout;
use crate::names;
use crate::progress::Progress;
use crate::settings::hub::HubSettings;
use crate::settings::{Config, LdapConfig, VolumeMode};

/// What `volume prepare` was asked.
#[derive(Clone, Default)]
pub struct PrepareRequest {
    /// `--group`: DNs or cns of the configured groups.
    pub groups: Vec<String>,
    /// The password of `ldap.bind_dn`.
    pub ldap_password: Option<String>,
    /// List what is missing, create nothing.
    pub dry_run: bool,
}

/// What became of one volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// nfsd made it now.
    Created,
    /// It was there with the same options.
    Existing,
    /// nfsd refused it (`detail` has nfsd's reason).
    Failed,
    /// Dry run: nfsd has no such volume.
    Missing,
    /// Dry run: it exists with other options; nfsd would refuse it (`detail`).
    Conflict,
}

/// One volume of one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeOutcome {
    /// The member.
    pub user: String,
    /// The volume.
    pub volume: String,
    /// What became of it.
    pub state: State,
    /// nfsd's reason, or what differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A member who gets no volumes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The user name (or the member DN that names no user).
    pub member: String,
    /// Why.
    pub reason: String,
}

/// The result of `volume prepare`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrepareReport {
    /// The groups' DNs, as read.
    pub groups: Vec<String>,
    /// Nothing was created.
    pub dry_run: bool,
    /// Members whose volumes were asked for.
    pub users: usize,
    /// Every volume, by user.
    pub volumes: Vec<VolumeOutcome>,
    /// Members skipped.
    pub skipped: Vec<Skipped>,
}

/// The DN of `--group g`: a DN as given, or the configured group (student or teacher) whose
/// first RDN's value is `g` (pure).
pub fn resolve_group(l: &LdapConfig, g: &str) -> Result<String, CliError> {
    let g = g.trim();
    if g.contains('=') {
        return Ok(g.to_string());
    }
    let configured: Vec<&String> = l
        .student_groups
        .iter()
        .chain(std::iter::once(&l.teacher_group))
        .collect();
    let cn = |dn: &str| -> Option<String> {
        let first = dn.split(',').next()?;
        Some(first.split_once('=')?.1.trim().to_string())
    };
    configured
        .iter()
        .find(|dn| cn(dn).is_some_and(|c| c.eq_ignore_ascii_case(g)))
        .map(|dn| dn.to_string())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--group {g:?} is not a DN and names none of the configured groups ({}); give a group's DN or the cn of one of ldap.student_groups / ldap.teacher_group",
                configured
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })
}

/// Whether `user` can name the hub's volumes (the rule of the hub's `swarmhub_volume_user`):
/// the reason when not (pure).
pub fn check_user(s: &HubSettings, user: &str) -> Result<(), String> {
    validate_user_name(user).map_err(|e| format!("cannot name a swarmhub volume: {e}"))?;
    if user.len() > s.user_name_max {
        return Err(format!(
            "cannot name a swarmhub volume: longer than {} bytes",
            s.user_name_max
        ));
    }
    for v in hub_volumes(s, user) {
        validate_volume_name(&v.name).map_err(|e| format!("cannot name a swarmhub volume: {e}"))?;
    }
    Ok(())
}

/// The volumes the hub mounts for `user`, with the options its `swarmhub_pre_spawn_hook` gives
/// them (`swarmhub_volume_options`): the home `home-<user>` {user, layout=home, size} and the
/// exchange view `<exchange_share>-<user>` {share, user, size}, `size` only with a quota (pure).
pub fn hub_volumes(s: &HubSettings, user: &str) -> [VolumeSpec; 2] {
    let with_size = |mut pairs: Vec<(&str, String)>, size: Option<u64>| {
        if let Some(b) = size {
            pairs.push(("size", b.to_string()));
        }
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    };
    [
        VolumeSpec {
            name: format!("{}{user}", names::HOME_VOLUME_PREFIX),
            options: with_size(
                vec![("user", user.to_string()), ("layout", "home".to_string())],
                s.home_size,
            ),
        },
        VolumeSpec {
            name: format!("{}-{user}", s.exchange_share),
            options: with_size(
                vec![
                    ("share", s.exchange_share.clone()),
                    ("user", user.to_string()),
                ],
                s.exchange_size,
            ),
        },
    ]
}

/// The outcomes of a `Create` job's result lines for `(user, spec)` in order (pure). A volume
/// without a line (the job ended early) is failed.
pub fn judge_created(wanted: &[(String, VolumeSpec)], results: &[ApiResult]) -> Vec<VolumeOutcome> {
    judge(wanted, |spec| {
        let found = results.iter().find_map(|r| match r {
            ApiResult::Ensured { name, created } if *name == spec.name => Some(if *created {
                (State::Created, None)
            } else {
                (State::Existing, None)
            }),
            ApiResult::NotEnsured { name, error } if *name == spec.name => {
                Some((State::Failed, Some(error.clone())))
            }
            _ => None,
        });
        found.unwrap_or((
            State::Failed,
            Some("the job printed no result for it".into()),
        ))
    })
}

/// One outcome per wanted volume, as `state_of` judges its spec.
fn judge(
    wanted: &[(String, VolumeSpec)],
    state_of: impl Fn(&VolumeSpec) -> (State, Option<String>),
) -> Vec<VolumeOutcome> {
    wanted
        .iter()
        .map(|(user, spec)| {
            let (state, detail) = state_of(spec);
            VolumeOutcome {
                user: user.clone(),
                volume: spec.name.clone(),
                state,
                detail,
            }
        })
        .collect()
}

/// Dry run: the outcomes against nfsd's list, by nfsd's rule for an existing volume (the same
/// options but the size, which an ensure changes, and the layout, which it only adds) (pure).
pub fn judge_listed(wanted: &[(String, VolumeSpec)], existing: &[Volume]) -> Vec<VolumeOutcome> {
    judge(wanted, |spec| {
        match existing.iter().find(|v| v.name == spec.name) {
            None => (State::Missing, None),
            Some(v) => match VolumeOptions::from_map(&spec.options) {
                Err(e) => (State::Conflict, Some(e.to_string())),
                Ok(want) => {
                    let alike = VolumeOptions {
                        size: v.options.size,
                        layout: v.options.layout,
                        ..want.clone()
                    };
                    if alike == v.options {
                        let resize = (v.options.size != want.size).then(|| {
                            format!("its size becomes {:?} at the next create", want.size)
                        });
                        (State::Existing, resize)
                    } else {
                        (
                            State::Conflict,
                            Some(format!(
                                "exists with options {:?}, the hub asks for {:?}",
                                v.options.to_map(),
                                spec.options
                            )),
                        )
                    }
                }
            },
        }
    })
}

impl PrepareReport {
    fn count(&self, s: State) -> usize {
        self.volumes.iter().filter(|v| v.state == s).count()
    }

    /// Volumes nfsd refused (or, in a dry run, would refuse).
    pub fn failed(&self) -> usize {
        self.count(State::Failed) + self.count(State::Conflict)
    }

    /// One line per volume, one per skipped member, and a summary line.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for v in &self.volumes {
            let state = match v.state {
                State::Created => "created",
                State::Existing => "already there",
                State::Failed => "failed",
                State::Missing => "missing (would be created)",
                State::Conflict => "conflict (nfsd would refuse it)",
            };
            s.push_str(&format!("{} ({}): {state}", v.volume, v.user));
            if let Some(d) = &v.detail {
                s.push_str(&format!(": {d}"));
            }
            s.push('\n');
        }
        for k in &self.skipped {
            s.push_str(&format!("{}: skipped: {}\n", k.member, k.reason));
        }
        let skipped = if self.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} member(s) skipped", self.skipped.len())
        };
        if self.dry_run {
            let missing: BTreeSet<&str> = self
                .volumes
                .iter()
                .filter(|v| v.state == State::Missing)
                .map(|v| v.user.as_str())
                .collect();
            s.push_str(&format!(
                "dry run: {} of {} member(s) lack volumes ({} volume(s) missing, {} already there, {} conflicting){skipped}{}\n",
                missing.len(),
                self.users,
                self.count(State::Missing),
                self.count(State::Existing),
                self.count(State::Conflict),
                if missing.is_empty() {
                    String::new()
                } else {
                    "; run again without --dry-run to create them".into()
                }
            ));
        } else {
            s.push_str(&format!(
                "prepared {} member(s) of {}: {} created, {} already there, {} failed{skipped}\n",
                self.users,
                self.groups.join(", "),
                self.count(State::Created),
                self.count(State::Existing),
                self.count(State::Failed),
            ));
        }
        s
    }

    /// The error the command returns after printing the report (exit code 1) when nfsd
    /// refused any volume.
    pub fn error(&self) -> Option<CliError> {
        let failed = self.failed();
        (failed > 0 && !self.dry_run).then(|| {
            CliError::Other(anyhow::anyhow!(
                "{failed} of {} volume(s) could not be prepared (see the lines above for nfsd's reasons); the other members are ready",
                self.volumes.len()
            ))
        })
    }
}

// I/O: the directory and nfsd (through the api job).

/// The sorted, distinct user names of the members of `dns`, and the members skipped.
async fn members(
    cfg: &Config,
    dns: &[String],
    password: Option<&str>,
) -> Result<(Vec<String>, Vec<Skipped>), CliError> {
    let l = &cfg.ldap;
    let (bind_dn, password) = match (&l.bind_dn, password) {
        (Some(_), None) => {
            return Err(CliError::Usage(format!(
                "ldap.bind_dn is set: give its password with --ldap-password-file FILE (or - for stdin) to read the members of {}",
                dns.join(", ")
            )));
        }
        (Some(dn), Some(pw)) => (dn.as_str(), pw),
        (None, _) => ("", ""),
    };
    let (starttls, mode) = directory::tls_mode(l);
    let mut session = Session::open(l, probe_timeout(cfg))
        .await
        .map_err(|cause| CliError::Precondition {
            what: format!("cannot connect to {} ({mode}): {cause}", l.url),
            fix: directory::connect_fix(&l.url, starttls),
        })?;
    let who = if bind_dn.is_empty() {
        "an anonymous bind"
    } else {
        bind_dn
    };
    if let Err(cause) = session.bind(bind_dn, password).await {
        return Err(CliError::Precondition {
            what: format!("LDAP bind as {who} failed: {cause}"),
            fix: directory::bind_fix(l, bind_dn),
        });
    }
    let mut users = BTreeSet::new();
    let mut skipped = Vec::new();
    for dn in dns {
        let m = session
            .group_members(dn, &l.user_attribute)
            .await
            .map_err(|cause| CliError::Precondition {
                what: format!("cannot read the members of the group {dn}: {cause}"),
                fix: format!(
                    "check the group's DN (--group, ldap.student_groups, ldap.teacher_group) and that {who} may read it"
                ),
            })?;
        users.extend(m.users);
        skipped.extend(m.unresolved.into_iter().map(|member| Skipped {
            member,
            reason: format!(
                "a member DN of {dn} without a {} this bind can read",
                l.user_attribute
            ),
        }));
    }
    session.close().await;
    Ok((users.into_iter().collect(), skipped))
}

/// `volume prepare`: read the members, then create (or, with `dry_run`, look for) their volumes.
pub async fn prepare(
    c: &Swarm,
    cfg: &Config,
    req: &PrepareRequest,
    progress: &Progress,
) -> Result<PrepareReport, CliError> {
    let hub = cfg.hub_settings()?;
    let dns = req
        .groups
        .iter()
        .map(|g| resolve_group(&cfg.ldap, g))
        .collect::<Result<Vec<_>, _>>()?;
    if hub.volumes != VolumeMode::Swarmhub {
        progress.say(
            "note: hub.volumes is not \"swarmhub\", so the hub mounts none of these volumes; they are made anyway",
        );
    }
    let (users, mut skipped) = members(cfg, &dns, req.ldap_password.as_deref()).await?;
    let mut wanted = Vec::new();
    let mut asked = 0;
    for user in &users {
        match check_user(&hub, user) {
            Ok(()) => {
                asked += 1;
                wanted.extend(hub_volumes(&hub, user).map(|v| (user.clone(), v)));
            }
            Err(reason) => skipped.push(Skipped {
                member: user.clone(),
                reason,
            }),
        }
    }
    let volumes = if wanted.is_empty() {
        Vec::new()
    } else if req.dry_run {
        match volume::call(c, cfg, &ApiAction::List, progress).await? {
            ApiResult::Volumes { volumes } => judge_listed(&wanted, &volumes),
            other => return Err(anyhow::anyhow!("nfsd answered a list with {other:?}").into()),
        }
    } else {
        let specs = wanted.iter().map(|(_, v)| v.clone()).collect();
        let results =
            volume::call_each(c, cfg, &ApiAction::Create { volumes: specs }, progress).await?;
        judge_created(&wanted, &results)
    };
    Ok(PrepareReport {
        groups: dns,
        dry_run: req.dry_run,
        users: asked,
        volumes,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::hub;

    fn settings() -> HubSettings {
        Config::default().hub_settings().unwrap()
    }

    #[test]
    fn groups_are_dns_or_the_cn_of_a_configured_group() {
        let l = LdapConfig::default();
        assert_eq!(
            resolve_group(&l, "students").unwrap(),
            "cn=students,ou=groups,dc=example,dc=org"
        );
        assert_eq!(
            resolve_group(&l, "Teachers").unwrap(),
            "cn=teachers,ou=groups,dc=example,dc=org"
        );
        assert_eq!(
            resolve_group(&l, "cn=course-7,ou=groups,dc=x").unwrap(),
            "cn=course-7,ou=groups,dc=x"
        );
        let e = resolve_group(&l, "staff").unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.to_string().contains("cn=students,ou=groups"), "{e}");
    }

    #[test]
    fn options_are_the_hubs() {
        let s = settings();
        let [home, exchange] = hub_volumes(&s, "alice");
        assert_eq!(home.name, "home-alice");
        assert_eq!(
            home.to_arg(),
            "home-alice:layout=home,size=10737418240,user=alice"
        );
        assert_eq!(exchange.name, "exchange-alice");
        assert_eq!(
            exchange.to_arg(),
            "exchange-alice:share=exchange,size=2147483648,user=alice"
        );
        // the plugin's request from these options is valid and round-trips through the job
        for v in [&home, &exchange] {
            v.request().unwrap();
            assert_eq!(&VolumeSpec::from_arg(&v.to_arg()).unwrap(), v);
        }
        // no quota: no size= at all, as the hub leaves it out
        let mut cfg = Config::default();
        cfg.hub.home_size = "0".into();
        cfg.hub.exchange_size = "0".into();
        let [home, exchange] = hub_volumes(&cfg.hub_settings().unwrap(), "bob");
        assert_eq!(home.to_arg(), "home-bob:layout=home,user=bob");
        assert_eq!(exchange.to_arg(), "exchange-bob:share=exchange,user=bob");
    }

    /// The generated hub config builds the mounts from the same names, keys and settings.
    #[test]
    fn the_hub_config_asks_for_the_same_options() {
        let s = settings();
        let rendered = hub::render(&s);
        for expr in [
            r#"f"home-{user}""#,
            r#"{"user": user, "layout": "home"}, SWARMHUB["home_size"]"#,
            r#"f"{SWARMHUB['exchange_share']}-{user}""#,
            r#"{"share": SWARMHUB["exchange_share"], "user": user}, SWARMHUB["exchange_size"]"#,
            r#"return {**options, "size": size} if size is not None else options"#,
        ] {
            assert!(
                rendered.contains(expr),
                "{expr} missing from the hub config"
            );
        }
        let map = s.to_map();
        let [home, exchange] = hub_volumes(&s, "alice");
        assert_eq!(
            map["home_size"].as_str(),
            home.options.get("size").map(String::as_str)
        );
        assert_eq!(
            map["exchange_size"].as_str(),
            exchange.options.get("size").map(String::as_str)
        );
        assert_eq!(
            map["exchange_share"].as_str(),
            exchange.options.get("share").map(String::as_str)
        );
    }

    /// With python3 on the machine: run the generated config's pre_spawn_hook (Docker and
    /// dockerspawner stubbed) and compare the mounts it makes with [`hub_volumes`].
    #[test]
    fn the_hub_hook_makes_exactly_these_volumes() {
        let s = settings();
        let Some(mounts) = hub::run_config_py(&s, HOOK_HARNESS) else {
            return;
        };
        let mounts: Vec<VolumeSpec> = serde_json::from_value(mounts).unwrap();
        assert_eq!(mounts, hub_volumes(&s, "alice").to_vec());
    }

    /// Runs the config with stubs and prints alice's mounts as `[{name, options}]`.
    const HOOK_HARNESS: &str = r#"
sp = types.SimpleNamespace(user=types.SimpleNamespace(name="alice"), environment={}, extra_container_spec={},
    extra_create_kwargs={}, log=types.SimpleNamespace(info=lambda *a: None))
g["swarmhub_auth_state_hook"](sp, {"ldap_groups": []})
g["swarmhub_pre_spawn_hook"](sp)
print(json.dumps([{"name": m.source, "options": m.driver_config.options} for m in sp.extra_container_spec["mounts"]]))
"#;

    #[test]
    fn names_that_cannot_name_a_volume_are_refused() {
        let s = settings();
        check_user(&s, "alice").unwrap();
        check_user(&s, "a.b_c-1").unwrap();
        for bad in [
            "",
            ".alice",
            "-x",
            "al ice",
            "ali/ce",
            "ålice",
            &"x".repeat(65),
        ] {
            assert!(check_user(&s, bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            check_user(&s, "x y")
                .unwrap_err()
                .contains("cannot name a swarmhub volume")
        );
    }

    fn wanted(users: &[&str]) -> Vec<(String, VolumeSpec)> {
        let s = settings();
        users
            .iter()
            .flat_map(|u| hub_volumes(&s, u).map(|v| (u.to_string(), v)))
            .collect()
    }

    fn states(v: &[VolumeOutcome]) -> Vec<State> {
        v.iter().map(|o| o.state).collect()
    }

    #[test]
    fn job_results_become_one_outcome_per_volume() {
        let w = wanted(&["alice", "bob"]);
        let results = [
            ApiResult::Ensured {
                name: "home-alice".into(),
                created: true,
            },
            ApiResult::Ensured {
                name: "exchange-alice".into(),
                created: false,
            },
            ApiResult::NotEnsured {
                name: "home-bob".into(),
                error: "nfsd refused volume \"home-bob\": conflict".into(),
            },
        ];
        let v = judge_created(&w, &results);
        assert_eq!(
            states(&v),
            [
                State::Created,
                State::Existing,
                State::Failed,
                State::Failed
            ]
        );
        assert!(v[2].detail.as_deref().unwrap().contains("conflict"));
        let report = PrepareReport {
            groups: vec!["cn=students,ou=groups,dc=x".into()],
            dry_run: false,
            users: 2,
            volumes: v,
            skipped: vec![Skipped {
                member: "x y".into(),
                reason: "cannot name a swarmhub volume".into(),
            }],
        };
        let text = report.text();
        assert!(text.contains("home-alice (alice): created\n"), "{text}");
        assert!(
            text.contains("exchange-alice (alice): already there\n"),
            "{text}"
        );
        assert!(
            text.contains("home-bob (bob): failed: nfsd refused"),
            "{text}"
        );
        assert!(text.contains("x y: skipped: cannot name"), "{text}");
        assert!(
            text.ends_with("1 created, 1 already there, 2 failed, 1 member(s) skipped\n"),
            "{text}"
        );
        assert_eq!(report.error().unwrap().code(), 1);
    }

    #[test]
    fn a_dry_run_compares_with_nfsds_list_as_nfsd_would() {
        let w = wanted(&["alice", "bob"]);
        let listed = |name: &str, map: &[(&str, &str)]| {
            let m: std::collections::BTreeMap<String, String> = map
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Volume {
                name: name.into(),
                export: format!("/{name}"),
                kind: swarmhub_control_api::VolumeKind::Home,
                tree: format!("volumes/{name}"),
                options: VolumeOptions::from_map(&m).unwrap(),
                store_uid: 1,
                store_gid: 1,
                groups: vec![],
                client_uid: 1000,
                client_gid: 100,
                created_at: String::new(),
                used_bytes: None,
            }
        };
        let existing = [
            // a 0.x home: no layout, another size; an ensure adds the one and changes the other
            listed("home-alice", &[("user", "alice"), ("size", "1G")]),
            listed(
                "exchange-alice",
                &[("share", "exchange"), ("user", "alice"), ("size", "2G")],
            ),
            listed("home-bob", &[("user", "robert")]),
        ];
        let v = judge_listed(&w, &existing);
        assert_eq!(
            states(&v),
            [
                State::Existing,
                State::Existing,
                State::Conflict,
                State::Missing
            ]
        );
        assert!(v[0].detail.as_deref().unwrap().contains("size"));
        assert_eq!(v[1].detail, None);
        let report = PrepareReport {
            groups: vec![],
            dry_run: true,
            users: 2,
            volumes: v,
            skipped: vec![],
        };
        assert!(report.error().is_none());
        let text = report.text();
        assert!(
            text.contains("exchange-bob (bob): missing (would be created)"),
            "{text}"
        );
        assert!(
            text.contains("dry run: 1 of 2 member(s) lack volumes"),
            "{text}"
        );
    }
}
