//! The Docker gate's part of the plan (pure): the rules it enforces, derived from the hub's
//! settings, and its service.
//!
//! The hub holds no socket of dockerd's. The gate service runs on every manager (global mode,
//! constrained to managers, so wherever Swarm places the hub a gate is next to it), holds
//! dockerd's socket and listens on a socket of its own in a local volume that the hub mounts
//! too ([`names::docker_gate_volume`]). It forwards only the calls about notebook services,
//! and only notebook services as the hub's generated config makes them in its
//! `swarmhub_pre_spawn_hook`: [`docker_gate_rules`] says that in the gate's terms, from the same
//! [`HubSettings`] the config is rendered from.

use std::collections::BTreeMap;

use bollard::models::{
    Mount, MountType, ServiceSpec, ServiceSpecMode, TaskSpec, TaskSpecContainerSpec,
    TaskSpecRestartPolicyConditionEnum,
};
use swarmhub_docker_gate::rules::USER_PLACEHOLDER;
use swarmhub_docker_gate::{GateRules, MountRule, RULES_ENV};

use super::{DOCKER_SOCKET, bind, constraints, labels, restart};
use crate::names;
use crate::settings::hub::HubSettings;
use crate::settings::{Config, VolumeMode};

/// The values of a notebook's role label (the template's `swarmhub_pre_spawn_hook` sets
/// `teacher` for members of the teacher group, `student` for everyone else).
pub const NOTEBOOK_ROLES: [&str; 2] = ["student", "teacher"];

/// What the gate allows, from the hub's settings: notebook services named
/// `jupyter-<user>`, carrying the notebook labels, the user and role labels (and no other
/// `swarmhub.` label), running the student or teacher image, on the notebooks' network, with
/// exactly the mounts of `hub.volumes`: `swarmhub` the home (`home-{user}`, options `user`,
/// `layout=home` and the home quota's `size`) and the exchange view (`<exchange_share>-{user}`,
/// options `share`, `user` and the exchange quota's `size`) of the plugin's driver; `local` one
/// local volume `local-home-{user}` without options; `none` no mount.
pub fn docker_gate_rules(s: &HubSettings) -> GateRules {
    let mut images = vec![s.student_image.clone()];
    if s.teacher_image != s.student_image {
        images.push(s.teacher_image.clone());
    }
    let options = |pairs: &[(&str, &str)], size: Option<u64>| {
        let mut o: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(bytes) = size {
            o.insert("size".into(), bytes.to_string());
        }
        o
    };
    let user = USER_PLACEHOLDER;
    let mounts = match s.volumes {
        VolumeMode::Swarmhub => vec![
            MountRule {
                target: s.home_target.clone(),
                source: format!("{}{user}", names::HOME_VOLUME_PREFIX),
                driver: Some(s.volume_driver.clone()),
                options: options(&[("user", user), ("layout", "home")], s.home_size),
            },
            MountRule {
                target: s.exchange_target.clone(),
                source: format!("{}-{user}", s.exchange_share),
                driver: Some(s.volume_driver.clone()),
                options: options(
                    &[("share", &s.exchange_share), ("user", user)],
                    s.exchange_size,
                ),
            },
        ],
        VolumeMode::Local => vec![MountRule {
            target: s.home_target.clone(),
            source: format!("local-{}{user}", names::HOME_VOLUME_PREFIX),
            driver: None,
            options: BTreeMap::new(),
        }],
        VolumeMode::None => Vec::new(),
    };
    GateRules {
        name_prefix: names::NOTEBOOK_NAME_PREFIX.into(),
        notebook_labels: s.notebook_labels.clone(),
        user_label: s.user_label.clone(),
        role_label: s.role_label.clone(),
        roles: NOTEBOOK_ROLES.map(String::from).to_vec(),
        reserved_label_prefix: names::RESERVED_LABEL_PREFIX.into(),
        user_name_max: s.user_name_max,
        images,
        network: s.network.clone(),
        mounts,
    }
}

/// What the gate's container runs (the swarmhub CLI image's entrypoint is `swarmhub`): listen
/// on [`names::DOCKER_GATE_SOCKET`], forward to dockerd's socket at [`DOCKER_SOCKET`].
pub fn docker_gate_args() -> Vec<String> {
    [
        "docker-gate",
        "--listen",
        names::DOCKER_GATE_SOCKET,
        "--docker",
        DOCKER_SOCKET,
    ]
    .map(String::from)
    .to_vec()
}

/// The gate's local volume at [`names::DOCKER_GATE_DIR`]: where the gate makes its socket and
/// the hub finds it (Docker creates the volume on each manager at the first mount).
pub fn docker_gate_volume_mount(cfg: &Config) -> Mount {
    Mount {
        target: Some(names::DOCKER_GATE_DIR.into()),
        source: Some(names::docker_gate_volume(&cfg.cluster.hub_service)),
        typ: Some(MountType::VOLUME),
        ..Default::default()
    }
}

/// The gate's service: the swarmhub CLI image running `swarmhub docker-gate` on every manager
/// (global mode), dockerd's socket (`cluster.docker_socket`) bound in and the gate's volume
/// mounted, `rules` as JSON in [`RULES_ENV`] (no secret: the rules are names and options the
/// notebook services show anyway). No network and no published port: it is reached only
/// through its socket.
pub fn docker_gate_service(cfg: &Config, rules: &GateRules) -> ServiceSpec {
    let c = &cfg.cluster;
    let component = names::DOCKER_GATE_COMPONENT;
    ServiceSpec {
        name: Some(names::docker_gate_service(&c.hub_service)),
        labels: Some(labels(component)),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(cfg.images.cli.clone()),
                labels: Some(labels(component)),
                args: Some(docker_gate_args()),
                env: Some(vec![format!("{RULES_ENV}={}", rules.to_json())]),
                mounts: Some(vec![
                    bind(&c.docker_socket, DOCKER_SOCKET, false),
                    docker_gate_volume_mount(cfg),
                ]),
                ..Default::default()
            }),
            placement: Some(constraints(vec!["node.role==manager".into()])),
            restart_policy: Some(restart(TaskSpecRestartPolicyConditionEnum::ANY)),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            global: Some(Default::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::hub;

    fn settings(change: impl FnOnce(&mut Config)) -> HubSettings {
        let mut cfg = Config::default();
        change(&mut cfg);
        cfg.hub_settings().unwrap()
    }

    fn rule(target: &str, source: &str, driver: Option<&str>, opts: &[(&str, &str)]) -> MountRule {
        MountRule {
            target: target.into(),
            source: source.into(),
            driver: driver.map(String::from),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_rules_are_the_notebooks_the_hub_makes() {
        let s = settings(|_| {});
        let r = docker_gate_rules(&s);
        assert_eq!(r.name_prefix, "jupyter");
        assert_eq!(
            r.notebook_labels,
            BTreeMap::from([("swarmhub.component".into(), "notebook".into())])
        );
        assert_eq!(
            (r.user_label.as_str(), r.role_label.as_str()),
            ("swarmhub.user", "swarmhub.role")
        );
        assert_eq!(r.roles, ["student", "teacher"]);
        assert_eq!(r.reserved_label_prefix, "swarmhub.");
        assert_eq!(r.user_name_max, s.user_name_max);
        assert_eq!(
            r.images,
            [
                "swarmhub/notebook-student:0.1.0",
                "swarmhub/notebook-teacher:0.1.0"
            ]
        );
        assert_eq!(r.network, "swarmhub");
        assert_eq!(
            r.mounts,
            [
                rule(
                    "/home/jovyan",
                    "home-{user}",
                    Some("swarmhub-nfs"),
                    &[
                        ("layout", "home"),
                        ("size", "10737418240"),
                        ("user", "{user}")
                    ]
                ),
                rule(
                    "/srv/nbgrader/exchange",
                    "exchange-{user}",
                    Some("swarmhub-nfs"),
                    &[
                        ("share", "exchange"),
                        ("size", "2147483648"),
                        ("user", "{user}")
                    ]
                ),
            ]
        );
        // the rules travel as JSON and come back equal
        assert_eq!(GateRules::from_json(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn the_rules_follow_the_volume_mode_the_quotas_and_the_images() {
        let r = docker_gate_rules(&settings(|c| {
            c.hub.home_size = "0".into();
            c.hub.exchange_size = "0".into();
            c.hub.exchange_share = "nbx".into();
            c.images.notebook_teacher = c.images.notebook_student.clone();
            c.cluster.network = "course-net".into();
        }));
        assert_eq!(
            r.images,
            ["swarmhub/notebook-student:0.1.0"],
            "deduplicated"
        );
        assert_eq!(r.network, "course-net");
        assert_eq!(
            r.mounts[1],
            rule(
                "/srv/nbgrader/exchange",
                "nbx-{user}",
                Some("swarmhub-nfs"),
                &[("share", "nbx"), ("user", "{user}")]
            ),
            "no quota: no size"
        );
        assert!(!r.mounts[0].options.contains_key("size"));
        let local = docker_gate_rules(&settings(|c| c.hub.volumes = VolumeMode::Local));
        assert_eq!(
            local.mounts,
            [rule("/home/jovyan", "local-home-{user}", None, &[])]
        );
        let none = docker_gate_rules(&settings(|c| c.hub.volumes = VolumeMode::None));
        assert!(none.mounts.is_empty());
    }

    /// Runs the rendered config's pre_spawn_hook (Docker and dockerspawner stubbed) for alice,
    /// a student, and bob, a teacher, and prints each one's service: name prefix, image,
    /// labels and mounts.
    const HOOK_HARNESS: &str = r#"
def spawn(name, groups):
    sp = types.SimpleNamespace(user=types.SimpleNamespace(name=name), environment={},
        extra_container_spec={}, extra_create_kwargs={}, log=types.SimpleNamespace(info=lambda *a: None))
    g["swarmhub_auth_state_hook"](sp, {"ldap_groups": groups})
    g["swarmhub_pre_spawn_hook"](sp)
    mounts = [{"target": m.target, "source": m.source, "type": m.type,
               "driver": m.driver_config.name if m.driver_config else None,
               "options": (m.driver_config.options if m.driver_config else None) or {}}
              for m in sp.extra_container_spec["mounts"]]
    return {"image": sp.image, "labels": sp.extra_create_kwargs["labels"], "mounts": mounts}
print(json.dumps({"alice": spawn("alice", []),
                  "bob": spawn("bob", [g["SWARMHUB"]["ldap_teacher_group"]])}))
"#;

    /// With python3 on the machine: what the hub's hook makes for a student and a teacher is
    /// what the rules allow, mount for mount, in every volume mode.
    #[test]
    fn the_hub_hook_makes_exactly_what_the_rules_allow() {
        for mode in [VolumeMode::Swarmhub, VolumeMode::Local, VolumeMode::None] {
            let s = settings(|c| c.hub.volumes = mode);
            let r = docker_gate_rules(&s);
            let Some(v) = hub::run_config_py(&s, HOOK_HARNESS) else {
                return;
            };
            for (user, role) in [("alice", "student"), ("bob", "teacher")] {
                let made = &v[user];
                let image = made["image"].as_str().unwrap();
                assert!(r.images.iter().any(|i| i == image), "{image}");
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(made["labels"].clone()).unwrap();
                let mut want = r.notebook_labels.clone();
                want.insert(r.user_label.clone(), user.into());
                want.insert(r.role_label.clone(), role.into());
                assert_eq!(labels, want);
                assert!(r.roles.iter().any(|x| x == role));
                let mounts: Vec<MountRule> = made["mounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        assert_eq!(m["type"], "volume", "{m}");
                        MountRule {
                            target: m["target"].as_str().unwrap().into(),
                            source: m["source"].as_str().unwrap().into(),
                            driver: m["driver"].as_str().map(String::from),
                            options: serde_json::from_value(m["options"].clone()).unwrap(),
                        }
                    })
                    .collect();
                let allowed: Vec<MountRule> = r
                    .mounts
                    .iter()
                    .map(|m| MountRule {
                        source: m.source_for(user),
                        options: m.options_for(user),
                        ..m.clone()
                    })
                    .collect();
                assert_eq!(mounts, allowed, "{mode:?} {user}");
            }
        }
    }

    #[test]
    fn the_template_names_the_roles_and_the_service_prefix_the_rules_allow() {
        let text = hub::render(&settings(|_| {}));
        assert!(
            text.contains(r#"role = "teacher" if teacher else "student""#),
            "the roles are the template's"
        );
        // dockerspawner's default prefix: the template does not set another
        assert!(!text.contains(".prefix ="), "the template sets a prefix");
        assert!(
            !text.contains("name_template"),
            "the template names services"
        );
    }

    #[test]
    fn the_gate_runs_on_every_manager_with_the_socket_and_its_volume() {
        let cfg = Config::default();
        let rules = docker_gate_rules(&cfg.hub_settings().unwrap());
        let s = docker_gate_service(&cfg, &rules);
        assert_eq!(s.name.as_deref(), Some("swarmhub-hub-docker-gate"));
        let mode = s.mode.as_ref().unwrap();
        assert!(
            mode.global.is_some()
                && mode.replicated.is_none()
                && mode.global_job.is_none()
                && mode.replicated_job.is_none()
        );
        let t = s.task_template.as_ref().unwrap();
        assert_eq!(
            t.placement.as_ref().unwrap().constraints.as_deref(),
            Some(&["node.role==manager".to_string()][..])
        );
        assert_eq!(
            t.restart_policy.as_ref().unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::ANY)
        );
        assert!(t.networks.is_none(), "reached through its socket only");
        assert!(s.endpoint_spec.is_none(), "no published port");
        let c = t.container_spec.as_ref().unwrap();
        assert_eq!(c.image.as_deref(), Some("swarmhub/swarmhub:0.1.0"));
        assert_eq!(
            c.args.as_ref().unwrap().join(" "),
            "docker-gate --listen /run/swarmhub-docker-gate/docker.sock --docker /var/run/docker.sock"
        );
        let mounts = super::super::tests::mounts_of(c);
        assert_eq!(
            mounts,
            [
                (
                    MountType::BIND,
                    "/var/run/docker.sock".into(),
                    "/var/run/docker.sock".into()
                ),
                (
                    MountType::VOLUME,
                    "swarmhub-hub-docker-gate".into(),
                    "/run/swarmhub-docker-gate".into()
                ),
            ]
        );
        // one variable, the rules, which parse back to what the settings give
        let env = c.env.as_ref().unwrap();
        let [one] = env.as_slice() else {
            panic!("{env:?}")
        };
        let json = one.strip_prefix(&format!("{RULES_ENV}=")).unwrap();
        assert_eq!(GateRules::from_json(json).unwrap(), rules);
        assert!(c.secrets.is_none() && c.configs.is_none());
        let l = s.labels.as_ref().unwrap();
        assert_eq!(l[names::MANAGED_LABEL], "true");
        assert_eq!(l[names::COMPONENT_LABEL], "docker-gate");
        // dockerd's socket is the one the settings name
        let mut other = Config::default();
        other.cluster.docker_socket = "/run/docker.sock".into();
        let s = docker_gate_service(&other, &rules);
        let m = &s
            .task_template
            .unwrap()
            .container_spec
            .unwrap()
            .mounts
            .unwrap()[0];
        assert_eq!(m.source.as_deref(), Some("/run/docker.sock"));
    }
}
