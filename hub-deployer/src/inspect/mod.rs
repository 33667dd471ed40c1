//! What the swarm runs and whether it is healthy: `swarmhub status` and `swarmhub doctor`.
//! Reads and judgements only; nothing here changes the swarm except the one-shot jobs that
//! read every node's firewall guard (doctor) and every running container's swarmhub mounts
//! (status and doctor).
//!
//! Each file says what it may touch:
//!
//! - [`status`]: the model (`mod.rs`), the reads that fill it (`gather.rs`: dockerd, nfsd),
//!   its own judgements (`judge.rs`, pure) and the text for people (`text.rs`, pure).
//! - [`doctor`]: the checks and their order (`mod.rs`); `swarm.rs` (dockerd, the firewall job,
//!   nfsd), `ldap.rs` (the directory) and `hub.rs` (the hub's API and certificate) each read
//!   first and judge after, the `check_*` judgements pure.
//! - [`health`]: the judgements both share (pure).
//! - [`mounts`]: the swarmhub mounts of every running container on every node, as each
//!   container sees them (the one-shot job `swarmhub-mount-check`; both use it).
//! - [`probe`]: the HTTP(S) probes both use (network I/O only).

pub mod doctor;
pub mod health;
pub mod mounts;
pub mod probe;
pub mod status;

#[cfg(test)]
pub(crate) mod tests {
    use bollard::models::{ServiceSpec, Volume};

    use crate::apply;
    use crate::apply::tests::{apply_hub, fake_swarm};
    use crate::docker::cluster::Cluster;
    use crate::docker::engine::Engine;
    use crate::docker::fake::Fake;
    use crate::inspect::status::tests::replicated;
    use crate::names::{self, PLUGIN_ALIAS, PLUGIN_SETTINGS_LABEL, PLUGIN_VERSION_LABEL};
    use crate::node::firewall;
    use crate::plan::{self, PlanInputs};
    use crate::settings::Config;
    use crate::steps::Change;

    /// The one node of [`fake_swarm`].
    pub(crate) const NODE: &str = "node-alpha";

    /// A port on loopback that nothing listens on: nfsd's API there is refused at once.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    /// Settings whose nfsd API is a closed port of the fake's storage node (127.0.0.1).
    pub(crate) fn settings() -> Config {
        let mut cfg = Config::default();
        cfg.cluster.nfsd_api_port = closed_port();
        cfg.timeouts.docker_seconds = 2;
        cfg.timeouts.rollout_seconds = 5;
        cfg
    }

    /// The registry of the tests with a `[registry]`.
    pub(crate) const REGISTRY: &str = "192.168.213.254:5000";

    /// A digest as registries write them: `sha256:` and 64 hex digits, all `hex`.
    pub(crate) fn digest(hex: char) -> String {
        format!("sha256:{}", hex.to_string().repeat(64))
    }

    /// [`settings`] with `[registry]` at [`REGISTRY`], every image moved into it (as loading
    /// the settings file does).
    pub(crate) fn registry_settings() -> Config {
        let mut cfg = settings();
        cfg.registry.address = Some(REGISTRY.into());
        cfg.images = cfg.images.in_registry(REGISTRY);
        cfg
    }

    /// `cfg` as the CLI deploys it when the registry holds every image and the plugin with
    /// `digest`: each reference pinned (`ref@digest`).
    pub(crate) fn pinned(cfg: &Config, digest: &str) -> Config {
        let mut out = cfg.clone();
        let i = &mut out.images;
        for r in [
            &mut i.nfsd,
            &mut i.hub,
            &mut i.notebook_student,
            &mut i.notebook_teacher,
            &mut i.cli,
            &mut i.plugin,
        ] {
            *r = format!("{r}@{digest}");
        }
        out
    }

    /// The fake's registry holds every image and the plugin of `cfg` with `digest` from now on.
    pub(crate) fn publish(fake: &Fake, cfg: &Config, digest: &str) {
        for (_, image) in cfg.images.deployed() {
            fake.publish(image, digest);
        }
        fake.publish(&cfg.images.plugin, digest);
    }

    /// The fake swarm as a healthy `swarmhub run` of `cfg` leaves it (with a registry, `cfg`
    /// as [`pinned`]): the storage node `alpha` at
    /// 127.0.0.1 with the plugin enabled and labelled by a rollout, the hub and nfsd running
    /// (nfsd allowing the node), alice's notebook and volume, a complete firewall guard (what
    /// the firewall job prints) and alice's live mounts (what the mount check job prints).
    /// Calls forgotten.
    pub(crate) async fn healthy(cfg: &Config) -> Cluster<Fake> {
        let c = fake_swarm();
        let addr = "127.0.0.1";
        let inputs = PlanInputs {
            node_addrs: vec![addr.into()],
            ..Default::default()
        };
        let p = plan::plan(cfg, &inputs).unwrap();
        apply_hub(&c, &p).await;
        apply::ensure_service(&c, &p.nfsd, true).await.unwrap();
        let e = c.engine();
        e.pull_plugin("swarmhub/nfs-plugin:test", PLUGIN_ALIAS, Vec::new(), None)
            .await
            .unwrap();
        let fingerprint = plan::plugin_settings_fingerprint(cfg, addr);
        // what the node-side installer records: the pinned reference it pulled, or the bundle's
        let version = match &cfg.registry.address {
            Some(_) => cfg.images.plugin.clone(),
            None => "0.1.0".into(),
        };
        e.edit_node(NODE, |n| {
            n.status.as_mut().unwrap().addr = Some(addr.into());
            let labels = n.spec.as_mut().unwrap().labels.get_or_insert_default();
            labels.insert(PLUGIN_VERSION_LABEL.into(), version);
            labels.insert(PLUGIN_SETTINGS_LABEL.into(), fingerprint);
        });
        e.create_service(notebook("jupyter-alice", "alice", "student"), None)
            .await
            .unwrap();
        e.add_volume(Volume {
            name: "home-alice".into(),
            driver: "swarmhub-nfs:latest".into(),
            options: [("user".to_string(), "alice".to_string())].into(),
            ..Default::default()
        });
        e.add_volume(Volume {
            name: "scratch".into(),
            driver: "local".into(),
            ..Default::default()
        });
        // every task of the fake prints this: each job reads the line with its own prefix
        let mounts = crate::inspect::mounts::tests::node_with(
            NODE,
            "alice",
            crate::node::mounts::MountState::Live,
        );
        let crate::inspect::mounts::Found::Report(mounts) = mounts.found else {
            unreachable!("a report")
        };
        e.set_task_log(&format!(
            "{}\n{}{}\n",
            firewall::result_line(&firewall::Report {
                backend: "iptables v1.8.9 (nf_tables)".into(),
                change: Change::Unchanged,
                problems: Vec::new(),
                rules: Vec::new(),
            }),
            crate::node::mounts::RESULT_PREFIX,
            serde_json::to_string(&mounts).unwrap()
        ));
        e.clear_calls();
        c
    }

    /// A notebook service as SwarmSpawner makes it, with the labels of `names`.
    fn notebook(name: &str, user: &str, role: &str) -> ServiceSpec {
        let image = format!("swarmhub/notebook-{role}:0.1.0");
        let mut spec = replicated(name, &image).spec.unwrap();
        spec.labels = Some(
            [
                (names::COMPONENT_LABEL, names::NOTEBOOK_COMPONENT),
                (names::USER_LABEL, user),
                (names::ROLE_LABEL, role),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        );
        spec
    }
}
