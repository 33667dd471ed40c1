//! The check of a notebook service's spec, on the decoded body: what SwarmSpawner sends for a
//! notebook passes, anything that would give its container more than its user's volumes on the
//! notebook network is a [`Refusal`] naming the rule.
//!
//! Two stages. [`FIELDS`] is an allowlist of the spec's shape: every key of the JSON must be one
//! SwarmSpawner uses, spelled exactly (dockerd's JSON decoder matches keys case-insensitively
//! and keeps the last of duplicates, so a `privileges` or a second `TaskTemplate` would otherwise
//! reach it unseen). Then the values are read through bollard's types and checked against the
//! [`GateRules`]. What is forwarded is the checked JSON written again, never the client's bytes.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{Mount, MountType, ServiceSpec};
use serde_json::Value;
use swarmhub_control_api::names::validate_user_name;

use crate::route::Refusal;
use crate::rules::GateRules;

/// One level of the allowlist.
#[derive(Debug)]
pub enum Shape {
    /// A string, number, boolean or null.
    Scalar,
    /// An object with exactly these keys allowed.
    Object(&'static [(&'static str, Shape)]),
    /// An object with any keys and scalar values (labels, driver options).
    Map,
    /// An array of the shape.
    List(&'static Shape),
}

const MOUNT: Shape = Shape::Object(&[
    ("Target", Shape::Scalar),
    ("Source", Shape::Scalar),
    ("Type", Shape::Scalar),
    ("ReadOnly", Shape::Scalar),
    ("Consistency", Shape::Scalar),
    (
        "VolumeOptions",
        Shape::Object(&[
            ("NoCopy", Shape::Scalar),
            (
                "DriverConfig",
                Shape::Object(&[("Name", Shape::Scalar), ("Options", Shape::Map)]),
            ),
        ]),
    ),
]);

const CONTAINER_SPEC: Shape = Shape::Object(&[
    ("Image", Shape::Scalar),
    ("Labels", Shape::Map),
    ("Command", Shape::List(&Shape::Scalar)),
    ("Args", Shape::List(&Shape::Scalar)),
    ("Hostname", Shape::Scalar),
    ("Env", Shape::List(&Shape::Scalar)),
    ("Dir", Shape::Scalar),
    ("User", Shape::Scalar),
    ("TTY", Shape::Scalar),
    ("OpenStdin", Shape::Scalar),
    ("ReadOnly", Shape::Scalar),
    ("Mounts", Shape::List(&MOUNT)),
    ("StopSignal", Shape::Scalar),
    ("StopGracePeriod", Shape::Scalar),
    (
        "HealthCheck",
        Shape::Object(&[
            ("Test", Shape::List(&Shape::Scalar)),
            ("Interval", Shape::Scalar),
            ("Timeout", Shape::Scalar),
            ("Retries", Shape::Scalar),
            ("StartPeriod", Shape::Scalar),
            ("StartInterval", Shape::Scalar),
        ]),
    ),
    ("Hosts", Shape::List(&Shape::Scalar)),
    (
        "DNSConfig",
        Shape::Object(&[
            ("Nameservers", Shape::List(&Shape::Scalar)),
            ("Search", Shape::List(&Shape::Scalar)),
            ("Options", Shape::List(&Shape::Scalar)),
        ]),
    ),
    ("Init", Shape::Scalar),
    ("CapabilityDrop", Shape::List(&Shape::Scalar)),
    // what dockerd stores and reports (`default`), so a spec read back can be sent again
    ("Isolation", Shape::Scalar),
]);

/// `UpdateConfig` and `RollbackConfig`: how Swarm replaces a notebook's task.
const ROLLOUT: Shape = Shape::Object(&[
    ("Parallelism", Shape::Scalar),
    ("Delay", Shape::Scalar),
    ("FailureAction", Shape::Scalar),
    ("Monitor", Shape::Scalar),
    ("MaxFailureRatio", Shape::Scalar),
    ("Order", Shape::Scalar),
]);

const TASK_TEMPLATE: Shape = Shape::Object(&[
    ("ContainerSpec", CONTAINER_SPEC),
    (
        "Resources",
        Shape::Object(&[
            (
                "Limits",
                Shape::Object(&[
                    ("NanoCPUs", Shape::Scalar),
                    ("MemoryBytes", Shape::Scalar),
                    ("Pids", Shape::Scalar),
                ]),
            ),
            (
                "Reservations",
                Shape::Object(&[("NanoCPUs", Shape::Scalar), ("MemoryBytes", Shape::Scalar)]),
            ),
        ]),
    ),
    (
        "RestartPolicy",
        Shape::Object(&[
            ("Condition", Shape::Scalar),
            ("Delay", Shape::Scalar),
            ("MaxAttempts", Shape::Scalar),
            ("Window", Shape::Scalar),
        ]),
    ),
    (
        "Placement",
        Shape::Object(&[
            ("Constraints", Shape::List(&Shape::Scalar)),
            (
                "Preferences",
                Shape::List(&Shape::Object(&[(
                    "Spread",
                    Shape::Object(&[("SpreadDescriptor", Shape::Scalar)]),
                )])),
            ),
            ("MaxReplicas", Shape::Scalar),
            (
                "Platforms",
                Shape::List(&Shape::Object(&[
                    ("Architecture", Shape::Scalar),
                    ("OS", Shape::Scalar),
                ])),
            ),
        ]),
    ),
    (
        "Networks",
        Shape::List(&Shape::Object(&[("Target", Shape::Scalar)])),
    ),
    ("ForceUpdate", Shape::Scalar),
    // `container` as dockerd stores it; `plugin` (a plugin install) is refused by value
    ("Runtime", Shape::Scalar),
]);

/// The keys a notebook service spec may have, level by level. Left out on purpose, among
/// others: `Privileges`, `CapabilityAdd`, `Sysctls`, `Ulimits`, `Secrets`, `Configs`, `Groups`,
/// bind and tmpfs options, network aliases and driver options, `Mode.Global`, published ports,
/// `LogDriver`, `PluginSpec` (a plugin install) and `NetworkAttachmentSpec`. `Isolation` and
/// `Runtime` are allowed with the values dockerd stores (`default`, `container`) only, so that
/// a spec read back from dockerd passes as it is.
pub const FIELDS: Shape = Shape::Object(&[
    ("Name", Shape::Scalar),
    ("Labels", Shape::Map),
    ("TaskTemplate", TASK_TEMPLATE),
    (
        "Mode",
        Shape::Object(&[("Replicated", Shape::Object(&[("Replicas", Shape::Scalar)]))]),
    ),
    ("EndpointSpec", Shape::Object(&[("Mode", Shape::Scalar)])),
    ("UpdateConfig", ROLLOUT),
    ("RollbackConfig", ROLLOUT),
]);

/// A notebook service spec that passed every check: the user it belongs to and the JSON to
/// forward.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The service's name.
    pub name: String,
    /// The user named by the user label, whose volumes the service mounts.
    pub user: String,
    /// The body to send to dockerd: the checked JSON, written again.
    pub body: Vec<u8>,
}

/// Check a service spec (the body of a create or update) against `rules`. `network_id` is the
/// id of the notebook network if the gate knows it (a spec may name the network by id).
pub fn check_service_spec(
    body: &[u8],
    rules: &GateRules,
    network_id: Option<&str>,
) -> Result<Checked, Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::new("body", format!("the service spec is not JSON: {e}")))?;
    check_shape(&value, &FIELDS, "")?;
    let spec: ServiceSpec = serde_json::from_value(value.clone()).map_err(|e| {
        Refusal::new(
            "body",
            format!("the body is not a Docker service spec: {e}"),
        )
    })?;
    let name = check_name(spec.name.as_deref(), rules)?;
    let user = check_labels(spec.labels.as_ref(), rules)?;
    let task = spec
        .task_template
        .as_ref()
        .ok_or_else(|| Refusal::new("body", "the spec has no TaskTemplate"))?;
    let container = task
        .container_spec
        .as_ref()
        .ok_or_else(|| Refusal::new("body", "the spec has no TaskTemplate.ContainerSpec"))?;
    check_image(container.image.as_deref(), rules)?;
    check_value(
        "isolation",
        "TaskTemplate.ContainerSpec.Isolation",
        value.pointer("/TaskTemplate/ContainerSpec/Isolation"),
        &["default", ""],
    )?;
    check_value(
        "runtime",
        "TaskTemplate.Runtime",
        value.pointer("/TaskTemplate/Runtime"),
        &["container", ""],
    )?;
    check_mounts(
        container.mounts.as_deref().unwrap_or_default(),
        &user,
        rules,
    )?;
    check_networks(
        task.networks.as_deref().unwrap_or_default(),
        rules,
        network_id,
    )?;
    if let Some(r) = spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        && !(0..=1).contains(&r)
    {
        return Err(Refusal::new(
            "mode",
            format!("a notebook service runs 0 or 1 replicas, not {r}"),
        ));
    }
    let body = serde_json::to_vec(&value)
        .map_err(|e| Refusal::new("body", format!("the spec cannot be written again: {e}")))?;
    Ok(Checked { name, user, body })
}

/// Every key of `value` allowed by `shape`; the error names the first that is not, by its path.
pub fn check_shape(value: &Value, shape: &Shape, at: &str) -> Result<(), Refusal> {
    let here = || if at.is_empty() { "the spec" } else { at };
    match (shape, value) {
        (_, Value::Null) => Ok(()),
        (Shape::Scalar, Value::String(_) | Value::Number(_) | Value::Bool(_)) => Ok(()),
        (Shape::Map, Value::Object(o)) => match o.iter().find(|(_, v)| !is_scalar(v)) {
            None => Ok(()),
            Some((k, _)) => Err(Refusal::new(
                "fields",
                format!("{}.{k} must be a plain value", here()),
            )),
        },
        (Shape::List(item), Value::Array(a)) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_shape(v, item, &format!("{}[{i}]", here()))),
        (Shape::Object(fields), Value::Object(o)) => {
            for (k, v) in o {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match fields.iter().find(|(name, _)| name == k) {
                    Some((_, inner)) => check_shape(v, inner, &path)?,
                    None => {
                        return Err(Refusal::new(
                            "fields",
                            format!(
                                "{path} is not allowed in a notebook service (allowed here: {})",
                                fields
                                    .iter()
                                    .map(|(n, _)| *n)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => Err(Refusal::new(
            "fields",
            format!("{} has the wrong JSON type", here()),
        )),
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(
        v,
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null
    )
}

/// A user name as swarmhub allows it (control-api's rule for LDAP names), at most `max` bytes.
fn valid_user(name: &str, max: usize) -> bool {
    name.len() <= max && validate_user_name(name).is_ok()
}

fn check_name(name: Option<&str>, rules: &GateRules) -> Result<String, Refusal> {
    let prefix = format!("{}-", rules.name_prefix);
    match name {
        Some(n)
            if n.len() > prefix.len()
                && n.len() <= 63
                && n.starts_with(&prefix)
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) =>
        {
            Ok(n.to_string())
        }
        other => Err(Refusal::new(
            "name",
            format!(
                "a notebook service is named {prefix}<user> (at most 63 letters, digits, '_', \
                 '.' or '-'), not {other:?}"
            ),
        )),
    }
}

/// The user of a notebook service's labels, or why they are not a notebook's.
pub fn check_labels(
    labels: Option<&HashMap<String, String>>,
    rules: &GateRules,
) -> Result<String, Refusal> {
    let empty = HashMap::new();
    let labels = labels.unwrap_or(&empty);
    for (k, v) in &rules.notebook_labels {
        if labels.get(k) != Some(v) {
            return Err(Refusal::new(
                "labels",
                format!("a notebook service carries the label {k}={v}"),
            ));
        }
    }
    let user = labels
        .get(&rules.user_label)
        .filter(|u| valid_user(u, rules.user_name_max))
        .ok_or_else(|| {
            Refusal::new(
                "labels",
                format!(
                    "a notebook service carries the label {}=<user> with a valid user name",
                    rules.user_label
                ),
            )
        })?;
    match labels.get(&rules.role_label) {
        Some(r) if rules.roles.contains(r) => {}
        other => {
            return Err(Refusal::new(
                "labels",
                format!(
                    "the label {} must be one of {} (is {other:?})",
                    rules.role_label,
                    rules.roles.join(", ")
                ),
            ));
        }
    }
    if let Some(k) = labels.keys().find(|k| {
        k.starts_with(&rules.reserved_label_prefix)
            && !rules.notebook_labels.contains_key(*k)
            && **k != rules.user_label
            && **k != rules.role_label
    }) {
        return Err(Refusal::new(
            "labels",
            format!("the label {k} is swarmhub's own; a notebook service may not carry it"),
        ));
    }
    Ok(user.clone())
}

/// `at` (a string) absent or one of `allowed`.
fn check_value(
    rule: &'static str,
    name: &str,
    at: Option<&Value>,
    allowed: &[&str],
) -> Result<(), Refusal> {
    match at {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(v)) if allowed.contains(&v.as_str()) => Ok(()),
        Some(other) => Err(Refusal::new(
            rule,
            format!(
                "{name} may only be {} (as dockerd stores it), not {other}",
                allowed
                    .iter()
                    .filter(|a| !a.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )),
    }
}

fn check_image(image: Option<&str>, rules: &GateRules) -> Result<(), Refusal> {
    match image {
        Some(i) if rules.images.iter().any(|a| a == i) => Ok(()),
        other => Err(Refusal::new(
            "image",
            format!(
                "the image {other:?} is not an approved notebook image (approved: {})",
                rules.images.join(", ")
            ),
        )),
    }
}

fn check_mounts(mounts: &[Mount], user: &str, rules: &GateRules) -> Result<(), Refusal> {
    let allowed = || {
        if rules.mounts.is_empty() {
            "none".to_string()
        } else {
            rules
                .mounts
                .iter()
                .map(|r| format!("{} at {}", r.source_for(user), r.target))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut used = vec![false; rules.mounts.len()];
    for m in mounts {
        let source = m.source.as_deref().unwrap_or_default();
        let what = format!(
            "the {} mount of {source:?} at {:?}",
            m.typ.as_ref().map(|t| t.to_string()).unwrap_or_default(),
            m.target.as_deref().unwrap_or_default()
        );
        if m.typ != Some(MountType::VOLUME) {
            return Err(Refusal::new(
                "mounts",
                format!(
                    "{what} is not allowed: a notebook mounts only its user's volumes ({})",
                    allowed()
                ),
            ));
        }
        let Some(i) = rules.mounts.iter().position(|r| {
            r.source_for(user) == source && m.target.as_deref() == Some(r.target.as_str())
        }) else {
            return Err(Refusal::new(
                "mounts",
                format!("{what} is not one of user {user}'s volumes ({})", allowed()),
            ));
        };
        if std::mem::replace(&mut used[i], true) {
            return Err(Refusal::new("mounts", format!("{what} is given twice")));
        }
        let rule = &rules.mounts[i];
        let driver = m
            .volume_options
            .as_ref()
            .and_then(|o| o.driver_config.as_ref());
        let name = driver.and_then(|d| d.name.as_deref());
        let options: BTreeMap<String, String> = driver
            .and_then(|d| d.options.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let ok = match &rule.driver {
            Some(d) => name == Some(d.as_str()) && options == rule.options_for(user),
            // Docker's local driver: options could bind any host path, so none at all
            None => matches!(name, None | Some("local")) && options.is_empty(),
        };
        if !ok {
            let want = match &rule.driver {
                Some(d) => format!("driver {d} with options {:?}", rule.options_for(user)),
                None => "Docker's local driver without options".to_string(),
            };
            return Err(Refusal::new(
                "mounts",
                format!("{what} must use {want}, not driver {name:?} with options {options:?}"),
            ));
        }
    }
    Ok(())
}

fn check_networks(
    networks: &[bollard::models::NetworkAttachmentConfig],
    rules: &GateRules,
    network_id: Option<&str>,
) -> Result<(), Refusal> {
    for n in networks {
        let target = n.target.as_deref().unwrap_or_default();
        if target != rules.network && Some(target) != network_id {
            return Err(Refusal::new(
                "network",
                format!(
                    "a notebook service joins only the network {}, not {target:?}",
                    rules.network
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rules::MountRule;
    use serde_json::json;

    pub(crate) fn rules() -> GateRules {
        GateRules {
            name_prefix: "jupyter".into(),
            notebook_labels: BTreeMap::from([("swarmhub.component".into(), "notebook".into())]),
            user_label: "swarmhub.user".into(),
            role_label: "swarmhub.role".into(),
            roles: vec!["student".into(), "teacher".into()],
            reserved_label_prefix: "swarmhub.".into(),
            user_name_max: 32,
            images: vec![
                "swarmhub/notebook-student:0.1.0".into(),
                "swarmhub/notebook-teacher:0.1.0".into(),
            ],
            network: "swarmhub".into(),
            mounts: vec![
                MountRule {
                    target: "/home/jovyan".into(),
                    source: "home-{user}".into(),
                    driver: Some("swarmhub-nfs".into()),
                    options: BTreeMap::from([
                        ("user".into(), "{user}".into()),
                        ("layout".into(), "home".into()),
                    ]),
                },
                MountRule {
                    target: "/srv/nbgrader/exchange".into(),
                    source: "exchange-{user}".into(),
                    driver: Some("swarmhub-nfs".into()),
                    options: BTreeMap::from([
                        ("user".into(), "{user}".into()),
                        ("share".into(), "exchange".into()),
                    ]),
                },
            ],
        }
    }

    /// What SwarmSpawner (dockerspawner 14, docker-py 7) sends for alice's notebook.
    pub(crate) fn spawner_spec(user: &str) -> Value {
        json!({
            "Name": format!("jupyter-{user}"),
            "Labels": {
                "swarmhub.component": "notebook",
                "swarmhub.user": user,
                "swarmhub.role": "student"
            },
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "swarmhub/notebook-student:0.1.0",
                    "Args": ["swarmhub-notebook-start", "jupyterhub-singleuser"],
                    "Env": ["JUPYTERHUB_API_TOKEN=abc", "SWARMHUB_ROLE=student"],
                    "Mounts": [
                        {
                            "Target": "/home/jovyan",
                            "Source": format!("home-{user}"),
                            "Type": "volume",
                            "ReadOnly": false,
                            "VolumeOptions": {
                                "NoCopy": true,
                                "DriverConfig": {
                                    "Name": "swarmhub-nfs",
                                    "Options": {"user": user, "layout": "home"}
                                }
                            }
                        },
                        {
                            "Target": "/srv/nbgrader/exchange",
                            "Source": format!("exchange-{user}"),
                            "Type": "volume",
                            "ReadOnly": false,
                            "VolumeOptions": {
                                "NoCopy": true,
                                "DriverConfig": {
                                    "Name": "swarmhub-nfs",
                                    "Options": {"share": "exchange", "user": user}
                                }
                            }
                        }
                    ]
                },
                "Resources": {"Limits": {"MemoryBytes": 1073741824}},
                "Networks": [{"Target": "swarmhub"}],
                "Placement": {"Constraints": ["node.labels.swarmhub.storage!=true"]}
            },
            "EndpointSpec": {"Mode": "dnsrr"}
        })
    }

    fn check(v: &Value) -> Result<Checked, Refusal> {
        check_service_spec(&serde_json::to_vec(v).unwrap(), &rules(), Some("netid123"))
    }

    /// `f` applied to alice's spec, then checked: the rule that refuses it.
    fn refused(f: impl FnOnce(&mut Value)) -> Refusal {
        let mut v = spawner_spec("alice");
        f(&mut v);
        check(&v).expect_err("refused")
    }

    #[test]
    fn the_spawners_spec_passes_and_is_forwarded_as_checked() {
        let c = check(&spawner_spec("alice")).unwrap();
        assert_eq!(
            (c.name.as_str(), c.user.as_str()),
            ("jupyter-alice", "alice")
        );
        let sent: Value = serde_json::from_slice(&c.body).unwrap();
        assert_eq!(sent, spawner_spec("alice"));
        // the network by id, zero replicas, a local home per rules
        let mut v = spawner_spec("alice");
        v["TaskTemplate"]["Networks"][0]["Target"] = json!("netid123");
        v["Mode"] = json!({"Replicated": {"Replicas": 0}});
        check(&v).unwrap();
    }

    #[test]
    fn a_spec_as_dockerd_stores_it_passes() {
        // `docker service inspect` of a notebook the real hub made (dockerd 20.10)
        let mut v = spawner_spec("alice");
        v["TaskTemplate"]["ContainerSpec"]["Isolation"] = json!("default");
        v["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] = json!(10_000_000_000_i64);
        v["TaskTemplate"]["RestartPolicy"] =
            json!({"Condition": "any", "Delay": 5_000_000_000_i64, "MaxAttempts": 0});
        v["TaskTemplate"]["ForceUpdate"] = json!(0);
        v["TaskTemplate"]["Runtime"] = json!("container");
        v["TaskTemplate"]["Networks"] = json!([{"Target": "netid123"}]);
        v["Mode"] = json!({"Replicated": {"Replicas": 1}});
        let rollout = json!({"Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000_i64, "MaxFailureRatio": 0, "Order": "stop-first"});
        v["UpdateConfig"] = rollout.clone();
        v["RollbackConfig"] = rollout;
        check(&v).unwrap();
    }

    #[test]
    fn host_paths_privileges_and_capabilities_are_refused() {
        let e = refused(|v| {
            v["TaskTemplate"]["ContainerSpec"]["Mounts"] =
                json!([{"Type": "bind", "Source": "/", "Target": "/host"}]);
        });
        assert_eq!(e.rule, "mounts", "{e}");
        assert!(e.detail.contains("bind"), "{e}");
        let e = refused(|v| {
            v["TaskTemplate"]["ContainerSpec"]["Mounts"] = json!([{"Type": "bind", "Source": "/", "Target": "/host", "BindOptions": {"Propagation": "rshared"}}]);
        });
        assert_eq!(e.rule, "fields", "{e}");
        for (key, val) in [
            ("Privileges", json!({"SELinuxContext": {"Disable": true}})),
            ("CapabilityAdd", json!(["CAP_SYS_ADMIN"])),
            ("Sysctls", json!({"kernel.shmmax": "1"})),
            ("Secrets", json!([{"SecretName": "swarmhub-nfsd-token"}])),
            ("Configs", json!([{"ConfigName": "c"}])),
            ("Ulimits", json!([{"Name": "nofile", "Soft": 1, "Hard": 1}])),
            ("Groups", json!(["docker"])),
            ("OomScoreAdj", json!(-1000)),
            // dockerd matches keys case-insensitively: spelled otherwise is still refused
            ("privileges", json!({})),
            ("capabilityadd", json!(["CAP_SYS_ADMIN"])),
        ] {
            let e = refused(|v| v["TaskTemplate"]["ContainerSpec"][key] = val);
            assert_eq!(e.rule, "fields", "{key}: {e}");
            assert!(e.detail.contains(key), "{key}: {e}");
        }
        let e = refused(|v| v["TaskTemplate"]["Runtime"] = json!("plugin"));
        assert_eq!(e.rule, "runtime", "{e}");
        let e = refused(|v| v["TaskTemplate"]["ContainerSpec"]["Isolation"] = json!("hyperv"));
        assert_eq!(e.rule, "isolation", "{e}");
        let e = refused(|v| v["TaskTemplate"]["Runtime"] = json!({"Name": "x"}));
        assert_eq!(e.rule, "fields", "{e}");
        for (key, val) in [
            (
                "PluginSpec",
                json!({"Name": "evil", "Remote": "evil/plugin"}),
            ),
            ("LogDriver", json!({"Name": "syslog"})),
            ("NetworkAttachmentSpec", json!({"ContainerID": "x"})),
        ] {
            let e = refused(|v| v["TaskTemplate"][key] = val);
            assert_eq!(e.rule, "fields", "{key}: {e}");
        }
    }

    #[test]
    fn another_users_volume_or_option_is_refused() {
        let e = refused(|v| {
            v["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"] = json!("home-bob");
        });
        assert_eq!(e.rule, "mounts", "{e}");
        assert!(e.detail.contains("home-bob"), "{e}");
        let e = refused(|v| {
            v["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["VolumeOptions"]["DriverConfig"]["Options"]
                ["user"] = json!("bob");
        });
        assert_eq!(e.rule, "mounts", "{e}");
        let e = refused(|v| {
            v["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["VolumeOptions"]["DriverConfig"]["Options"]
                ["share"] = json!("exchange");
        });
        assert_eq!(e.rule, "mounts", "{e}");
        let e = refused(|v| {
            v["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["VolumeOptions"]["DriverConfig"]["Name"] =
                json!("local");
        });
        assert_eq!(e.rule, "mounts", "{e}");
        // bob's labels with alice's volumes
        let e = refused(|v| v["Labels"]["swarmhub.user"] = json!("bob"));
        assert_eq!(e.rule, "mounts", "{e}");
        let e = refused(|v| {
            let m = v["TaskTemplate"]["ContainerSpec"]["Mounts"][0].clone();
            v["TaskTemplate"]["ContainerSpec"]["Mounts"]
                .as_array_mut()
                .unwrap()
                .push(m);
        });
        assert!(e.detail.contains("twice"), "{e}");
        let e = refused(|v| {
            v["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Type"] = json!("tmpfs");
        });
        assert_eq!(e.rule, "mounts", "{e}");
    }

    #[test]
    fn local_volumes_carry_no_options() {
        let mut r = rules();
        r.mounts = vec![MountRule {
            target: "/home/jovyan".into(),
            source: "local-home-{user}".into(),
            driver: None,
            options: BTreeMap::new(),
        }];
        let mut v = spawner_spec("alice");
        v["TaskTemplate"]["ContainerSpec"]["Mounts"] =
            json!([{"Type": "volume", "Source": "local-home-alice", "Target": "/home/jovyan"}]);
        check_service_spec(&serde_json::to_vec(&v).unwrap(), &r, None).unwrap();
        v["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["VolumeOptions"] = json!({"DriverConfig": {"Name": "local", "Options": {"type": "none", "o": "bind", "device": "/"}}});
        let e = check_service_spec(&serde_json::to_vec(&v).unwrap(), &r, None).unwrap_err();
        assert_eq!(e.rule, "mounts", "{e}");
    }

    #[test]
    fn images_networks_names_labels_and_modes_are_the_notebooks() {
        let e = refused(|v| v["TaskTemplate"]["ContainerSpec"]["Image"] = json!("alpine"));
        assert_eq!(e.rule, "image", "{e}");
        let e = refused(|v| v["TaskTemplate"]["Networks"] = json!([{"Target": "host"}]));
        assert_eq!(e.rule, "network", "{e}");
        let e = refused(|v| {
            v["TaskTemplate"]["Networks"] =
                json!([{"Target": "swarmhub", "Aliases": ["swarmhub-hub"]}]);
        });
        assert_eq!(e.rule, "fields", "{e}");
        let e = refused(|v| v["Networks"] = json!([{"Target": "host"}]));
        assert_eq!(e.rule, "fields", "{e}");
        let e = refused(|v| v["Name"] = json!("swarmhub-nfsd"));
        assert_eq!(e.rule, "name", "{e}");
        let e = refused(|v| v["Name"] = json!("jupyter-"));
        assert_eq!(e.rule, "name", "{e}");
        let e = refused(|v| {
            v["Labels"]
                .as_object_mut()
                .unwrap()
                .remove("swarmhub.component");
        });
        assert_eq!(e.rule, "labels", "{e}");
        let e = refused(|v| v["Labels"]["swarmhub.managed"] = json!("true"));
        assert_eq!(e.rule, "labels", "{e}");
        let e = refused(|v| v["Labels"]["swarmhub.role"] = json!("admin"));
        assert_eq!(e.rule, "labels", "{e}");
        let e = refused(|v| v["Labels"]["swarmhub.user"] = json!("../bob"));
        assert_eq!(e.rule, "labels", "{e}");
        let e = refused(|v| v["Mode"] = json!({"Global": {}}));
        assert_eq!(e.rule, "fields", "{e}");
        let e = refused(|v| v["Mode"] = json!({"Replicated": {"Replicas": 40}}));
        assert_eq!(e.rule, "mode", "{e}");
        let e = refused(|v| {
            v["EndpointSpec"] = json!({"Mode": "vip", "Ports": [{"TargetPort": 22, "PublishedPort": 22, "PublishMode": "host"}]});
        });
        assert_eq!(e.rule, "fields", "{e}");
    }

    #[test]
    fn bodies_that_are_not_specs_are_refused_with_the_cause() {
        for body in [&b"not json"[..], b"[]", b"{\"Name\": {\"x\": 1}}", b""] {
            let e = check_service_spec(body, &rules(), None).unwrap_err();
            assert!(matches!(e.rule, "body" | "fields"), "{e}");
        }
        let e = check_service_spec(b"{\"Name\":\"jupyter-a\"}", &rules(), None).unwrap_err();
        assert_eq!(e.rule, "labels", "{e}");
        // a duplicate key: the last wins for dockerd as for serde_json, and only it is sent
        let dup = serde_json::to_string(&spawner_spec("alice"))
            .unwrap()
            .replacen(
                "\"Name\":\"jupyter-alice\"",
                "\"Name\":\"jupyter-alice\",\"Name\":\"swarmhub-hub\"",
                1,
            );
        let e = check_service_spec(dup.as_bytes(), &rules(), None).unwrap_err();
        assert_eq!(e.rule, "name", "{e}");
    }
}
