//! Every name swarmhub gives Docker objects and every label it reads or writes, in one place:
//! the plan, the reads of status and doctor, the demo and the hub's template (which gets the
//! notebook labels through its settings) take them from here.

/// Label on every object swarmhub creates.
pub const MANAGED_LABEL: &str = "swarmhub.managed";

/// Label naming which part of the stack an object belongs to.
pub const COMPONENT_LABEL: &str = "swarmhub.component";

/// Secret: nfsd's control API bearer token (also installed on every node for the plugin).
pub const NFSD_TOKEN_SECRET: &str = "swarmhub-nfsd-token";

/// Secret: the hub's cookie secret (hex; the hub image exports it as `JPY_COOKIE_SECRET`).
pub const COOKIE_SECRET: &str = "swarmhub-hub-cookie-secret";

/// Secret: `JUPYTERHUB_CRYPT_KEY` (hex), which encrypts auth state.
pub const CRYPT_KEY_SECRET: &str = "swarmhub-hub-crypt-key";

/// Name prefix of the Docker secrets holding the hub's certificate and key:
/// `<hub_service>-tls-`, so two hubs in one swarm never prune each other's. The rest names the
/// part and a hash of both files (the certificate pair's fingerprint), so a changed file is a new
/// secret and an update of the hub, and an unchanged one changes nothing.
pub fn hub_tls_secret_prefix(hub_service: &str) -> String {
    format!("{hub_service}-tls-")
}

/// The Docker gate of a hub: the service `<hub_service>-docker-gate`, one task on every manager
/// (global), the only holder of dockerd's socket. The hub reaches Docker only through it, and it
/// forwards only calls about the notebook services the hub's settings allow.
pub fn docker_gate_service(hub_service: &str) -> String {
    format!("{hub_service}{DOCKER_GATE_SUFFIX}")
}

/// The local volume the hub and the gate share on each manager, named like the gate's service:
/// the gate creates its socket in it ([`DOCKER_GATE_SOCKET`]), the hub connects there.
pub fn docker_gate_volume(hub_service: &str) -> String {
    docker_gate_service(hub_service)
}

/// What [`docker_gate_service`] appends to the hub's service name.
pub const DOCKER_GATE_SUFFIX: &str = "-docker-gate";

/// The longest `cluster.hub_service`: its gate's service name ([`docker_gate_service`]) must
/// fit Docker's 63 characters.
pub const HUB_SERVICE_MAX: usize = 63 - DOCKER_GATE_SUFFIX.len();

/// Where the gate's volume is mounted, in the gate's container and in the hub's.
pub const DOCKER_GATE_DIR: &str = "/run/swarmhub-docker-gate";

/// File name of the gate's socket in [`DOCKER_GATE_DIR`].
pub const DOCKER_GATE_SOCKET_FILE: &str = "docker.sock";

/// The gate's socket in both containers: [`DOCKER_GATE_DIR`]/[`DOCKER_GATE_SOCKET_FILE`].
pub const DOCKER_GATE_SOCKET: &str = "/run/swarmhub-docker-gate/docker.sock";

/// The hub's `DOCKER_HOST` (and its SwarmSpawner's `base_url`): the gate's socket.
pub const DOCKER_GATE_HOST: &str = "unix:///run/swarmhub-docker-gate/docker.sock";

/// `swarmhub.component` value of the gate's service.
pub const DOCKER_GATE_COMPONENT: &str = "docker-gate";

/// Name prefix of notebook services: dockerspawner's default `prefix`, `jupyter`; a notebook
/// service is `jupyter-<escaped user name>`.
pub const NOTEBOOK_NAME_PREFIX: &str = "jupyter";

/// Label keys starting with this are swarmhub's; a notebook service carries only the ones the
/// hub's settings give it.
pub const RESERVED_LABEL_PREFIX: &str = "swarmhub.";

/// The longest `cluster.hub_service` with TLS: its secrets' names (`-tls-cert-` and a 12-digit
/// hash added) must fit Docker's 64 characters.
pub const HUB_SERVICE_MAX_WITH_TLS: usize = 64 - "-tls-cert-".len() - 12;

/// File name of the hub's certificate chain under `/run/secrets/` in the hub container.
pub const HUB_TLS_CERT_FILE: &str = "swarmhub-hub-tls.crt";

/// File name of the hub's private key under `/run/secrets/` in the hub container.
pub const HUB_TLS_KEY_FILE: &str = "swarmhub-hub-tls.key";

/// Name prefix of the hub's Docker config; the rest is a hash of the content, because Docker
/// configs are immutable: a changed file is a new config and a service update.
pub const HUB_CONFIG_PREFIX: &str = "swarmhub-hub-config-";

/// The one-shot global job that installs or upgrades the plugin on every node.
pub const ROLLOUT_SERVICE: &str = "swarmhub-plugin-rollout";

/// Alias the plugin is installed under (its volume driver name).
pub const PLUGIN_ALIAS: &str = "swarmhub-nfs";

/// The one-shot global job of `doctor` that lists the firewall guard on every node.
pub const FIREWALL_CHECK_SERVICE: &str = "swarmhub-firewall-check";

/// The one-shot global job that checks the swarmhub mounts of every running container on every
/// node (`status`, `doctor`, `notebooks restart --dead-mounts`).
pub const MOUNT_CHECK_SERVICE: &str = "swarmhub-mount-check";

/// Node label the rollout writes with the plugin version it installed on that node.
pub const PLUGIN_VERSION_LABEL: &str = "swarmhub.plugin-version";

/// Node label the rollout writes with the fingerprint of the plugin settings it installed.
pub const PLUGIN_SETTINGS_LABEL: &str = "swarmhub.plugin-settings";

/// Label holding the fingerprint of the spec swarmhub last applied to a service.
pub const SPEC_LABEL: &str = "swarmhub.spec";

/// `swarmhub.component` value the generated hub config puts on notebook services.
pub const NOTEBOOK_COMPONENT: &str = "notebook";

/// Label with the notebook's user (set by the generated hub config).
pub const USER_LABEL: &str = "swarmhub.user";

/// Label with the notebook's role, `student` or `teacher` (set by the generated hub config).
pub const ROLE_LABEL: &str = "swarmhub.role";

/// The demo directory's service.
pub const LDAP_SERVICE: &str = "swarmhub-demo-ldap";

/// Secrets holding the directory's seed are named this plus a hash of their content.
pub const SEED_SECRET_PREFIX: &str = "swarmhub-demo-ldap-seed-";

/// Name of the one-shot job that talks to nfsd's API.
pub const API_JOB: &str = "swarmhub-volume-api";

/// Name prefix of the hub's home volumes: the template mounts `home-<user>` (the plugin is
/// told, so that it asks nfsd for `layout=home` for such volumes its node knows from before).
pub const HOME_VOLUME_PREFIX: &str = "home-";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_socket_is_its_file_in_its_directory() {
        assert_eq!(
            DOCKER_GATE_SOCKET,
            format!("{DOCKER_GATE_DIR}/{DOCKER_GATE_SOCKET_FILE}")
        );
        assert_eq!(DOCKER_GATE_HOST, format!("unix://{DOCKER_GATE_SOCKET}"));
        assert_eq!(
            docker_gate_service("swarmhub-hub"),
            "swarmhub-hub-docker-gate"
        );
        assert_eq!(
            docker_gate_volume("swarmhub-hub"),
            docker_gate_service("swarmhub-hub")
        );
        assert_eq!(docker_gate_service(&"h".repeat(HUB_SERVICE_MAX)).len(), 63);
    }

    #[test]
    fn every_label_swarmhub_writes_is_reserved() {
        for label in [
            MANAGED_LABEL,
            COMPONENT_LABEL,
            SPEC_LABEL,
            USER_LABEL,
            ROLE_LABEL,
            PLUGIN_VERSION_LABEL,
            PLUGIN_SETTINGS_LABEL,
        ] {
            assert!(label.starts_with(RESERVED_LABEL_PREFIX), "{label}");
        }
    }
}
