//! The command line of `swarmhub`: flags, subcommands and their `--help` text (clap derive).
//! Parsing only; what a command does is in `commands`.

pub mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::names;
use crate::settings::DEFAULT_CONFIG_PATH;

/// Deploy and operate JupyterHub with per-user NFS storage on Docker Swarm.
///
/// Settings come from swarmhub.toml (`swarmhub init` writes a commented one) and from
/// SWARMHUB_<SECTION>_<KEY> environment variables, which win over the file.
///
/// Exit codes: 0 ok, 1 other failure, 2 bad usage or settings, 3 dockerd unreachable,
/// 4 not a swarm manager, 5 a wait timed out, 6 a health check failed, 7 the swarm lacks
/// something the command needs (the message says the fix).
#[derive(Debug, Parser)]
#[command(name = "swarmhub", version, max_term_width = 100)]
pub struct Cli {
    /// The settings file.
    #[arg(
        long,
        global = true,
        env = "SWARMHUB_CONFIG",
        value_name = "FILE",
        default_value = DEFAULT_CONFIG_PATH
    )]
    pub config: PathBuf,
    /// Output format of results: text for people, json for scripts.
    #[arg(
        long,
        global = true,
        env = "SWARMHUB_OUTPUT",
        value_enum,
        default_value_t = Output::Text
    )]
    pub output: Output,
    /// Answer yes to confirmations (for scripts); commands that delete user data still need
    /// their own explicit flags.
    #[arg(long, global = true, env = "SWARMHUB_YES")]
    pub yes: bool,
    /// The password of registry.username (a file): used to push and deploy, and stored once
    /// as the Docker secret registry.password_secret for the nodes. Without it, this machine's
    /// `docker login` of the registry, if any.
    #[arg(
        long,
        global = true,
        env = "SWARMHUB_REGISTRY_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub registry_password_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented swarmhub.toml with the defaults (refuses to overwrite one).
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Inspect the settings and what they produce, without touching Docker.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create what is missing and start everything: network, secrets, nfsd, the plugin on every
    /// node, the hub. Safe to re-run: what exists as planned is left alone.
    Run(DeployArgs),
    /// Start the deployed nfsd and hub (after `stop`).
    Start,
    /// Stop the hub and nfsd (their tasks end; services, secrets and all data stay; the hub's
    /// Docker gate keeps running).
    Stop,
    /// Remove the services, configs and network. Secrets, volumes and user data stay.
    Remove,
    /// Replace the running tasks of nfsd, the hub's Docker gate and the hub (e.g. after a
    /// rebuilt image).
    Restart,
    /// `remove`, then `run`.
    Rerun(DeployArgs),
    /// Build every image (tagged for registry.address when it is set; nothing is deployed).
    Build(BuildArgs),
    /// Push every image and the plugin to registry.address (after `build`); nothing is
    /// deployed until `run`, `restart` or `plugin rollout`.
    Push(BuildArgs),
    /// Upgrade: build every image, push them and the plugin when a registry is configured,
    /// bring nfsd and the hub to them, then roll the plugin out node by node (a node whose
    /// notebooks have volumes mounted is left for later unless --drain).
    Rebuild {
        /// How to build.
        #[command(flatten)]
        build: BuildArgs,
        /// Stop the notebooks that keep a node's plugin from being replaced (their users'
        /// files stay; they start again on the new version).
        #[arg(long)]
        drain: bool,
    },
    /// swarmhub-nfsd alone.
    #[command(subcommand)]
    Nfs(NfsCommand),
    /// The hub alone.
    #[command(subcommand)]
    Hub(HubCommand),
    /// The swarmhub-nfs volume plugin on the nodes.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Show nodes (with plugin state and version), services and their tasks with errors,
    /// notebooks and volumes; while a notebook runs, also every swarmhub mount of a running
    /// container that does not answer (a one-shot job on every node looks).
    Status,
    /// The users' notebook servers (the services JupyterHub started).
    #[command(subcommand)]
    Notebooks(NotebooksCommand),
    /// Check the whole deployment and say how to fix each problem (exit code 6 if any check
    /// fails). With a registry: that it has every image and the plugin, and that every node
    /// and service runs what it has now (logged in as for `run`: --registry-password-file).
    Doctor {
        /// The LDAP bind password (a file, or - for stdin), to check the bind.
        #[arg(long, env = "SWARMHUB_LDAP_PASSWORD_FILE", value_name = "FILE")]
        ldap_password_file: Option<PathBuf>,
    },
    /// HTTPS of the hub: make a certificate.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// User data: list volumes, create them ahead of first logins (prepare), and delete them
    /// (the only commands that delete user data, each asking for confirmation).
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Try swarmhub on this machine: a one-node swarm, a demo LDAP directory with a teacher and
    /// two students, nfsd, the plugin and the hub, with settings of its own.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// The hub's Docker gate: what the gate service (<hub_service>-docker-gate, on every
    /// manager) runs, not a command for admins. Creates the socket --listen, forwards to
    /// dockerd's socket --docker only the calls about notebook services that its rules allow,
    /// and answers everything else 403, logging each refusal to stderr (docker service logs;
    /// RUST_LOG, default info). Runs until SIGTERM or SIGINT.
    #[command(hide = true)]
    DockerGate(DockerGateArgs),
}

/// Flags of `docker-gate`.
#[derive(Debug, Clone, clap::Args)]
pub struct DockerGateArgs {
    /// The unix socket to create and listen on (in the volume the hub mounts too).
    #[arg(long, value_name = "PATH")]
    pub listen: PathBuf,
    /// dockerd's socket, the one the gate alone holds.
    #[arg(long, value_name = "PATH")]
    pub docker: PathBuf,
    /// The rules, as JSON: which notebook services the hub may create and manage (`swarmhub
    /// run` derives them from swarmhub.toml and sets them in the gate service's environment).
    #[arg(
        long,
        env = swarmhub_docker_gate::RULES_ENV,
        value_name = "JSON",
        hide_env_values = true
    )]
    pub rules: Option<String>,
}

/// `swarmhub tls ...`.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make (or keep) a small CA and a certificate of the hub for the public URL's host, the
    /// nodes' addresses (when this is a swarm manager), localhost and 127.0.0.1, in tls.dir
    /// (default: tls/ next to swarmhub.toml; the CA key stays there, mode 0600). Kept across
    /// runs; made again, saying why, when the names changed or it is near its end. Serve it
    /// with `[tls] mode = "self-signed"` and `swarmhub run` (which does this itself).
    SelfSigned {
        /// One more name of the certificate, a DNS name or an IP address (repeatable; adds to
        /// tls.names).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
    },
}

/// `swarmhub demo ...`.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Bring the demo up (or repair it) and print the hub's URL and the logins. Makes this
    /// dockerd a one-node swarm when it is in none, and labels it the storage node when no node
    /// is. Safe to re-run; the passwords stay the same.
    Up(DemoUpArgs),
    /// Remove the demo's services (notebooks, hub, nfsd, the demo directory). The users'
    /// files, the logins, the secrets, the swarm and the plugin stay.
    Down(DemoDirArgs),
}

/// Where the demo keeps its state.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoDirArgs {
    /// The demo's directory: its settings (swarmhub.toml), the logins and the users' files
    /// (data/).
    #[arg(
        long,
        env = "SWARMHUB_DEMO_DIR",
        value_name = "DIR",
        default_value = crate::demo::DEFAULT_DIR
    )]
    pub dir: PathBuf,
}

/// Flags of `demo up`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoUpArgs {
    #[command(flatten)]
    pub dir: DemoDirArgs,
    /// Port of the hub (HTTPS, with a certificate of the demo's own CA) on this machine.
    #[arg(long, value_name = "PORT", default_value_t = 8000)]
    pub hub_port: u16,
    /// Port on this machine where plain HTTP is redirected to the hub's HTTPS URL (0 = none).
    #[arg(long, value_name = "PORT", default_value_t = 8080)]
    pub hub_redirect_port: u16,
    /// Port of the demo LDAP directory on this machine.
    #[arg(long, value_name = "PORT", default_value_t = crate::demo::DEFAULT_LDAP_PORT)]
    pub ldap_port: u16,
}

/// Flags of the commands that may create secrets.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeployArgs {
    /// The LDAP bind password (a file, or - for stdin); stored once as the Docker secret named
    /// by ldap.password_secret. Needed the first time when ldap.bind_dn is set.
    #[arg(long, env = "SWARMHUB_LDAP_PASSWORD_FILE", value_name = "FILE")]
    pub ldap_password_file: Option<PathBuf>,
}

/// Flags of the commands that build images.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BuildArgs {
    /// The build context: a checkout of swarmhub with its Dockerfile.
    #[arg(
        long,
        env = "SWARMHUB_BUILD_CONTEXT",
        value_name = "DIR",
        default_value = "."
    )]
    pub context: PathBuf,
    /// Build the Rust images (nfsd, cli) from binaries already in target/dist instead of
    /// compiling them in Docker (for daemons without a Rust base image).
    #[arg(long, env = "SWARMHUB_BUILD_PREBUILT")]
    pub prebuilt: bool,
    /// A build argument KEY=VALUE for the Dockerfile (repeatable), e.g. BASE_IMAGE=...
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Network of the build containers (e.g. host, when the default bridge cannot reach the
    /// package registries).
    #[arg(
        long = "build-network",
        env = "SWARMHUB_BUILD_NETWORK",
        value_name = "MODE"
    )]
    pub network: Option<String>,
    /// Build and push through this dockerd (unix:///path or tcp://host:port) instead of the
    /// swarm manager's: a build machine with the images' cache; the deploy still goes to the
    /// manager (DOCKER_HOST).
    #[arg(long, env = "SWARMHUB_BUILD_HOST", value_name = "HOST")]
    pub build_host: Option<String>,
}

impl BuildArgs {
    /// What the image build and push take from these flags.
    pub fn options(&self) -> crate::lifecycle::images::BuildOptions {
        crate::lifecycle::images::BuildOptions {
            context: self.context.clone(),
            prebuilt: self.prebuilt,
            build_args: self.build_args.clone(),
            network: self.network.clone(),
            build_host: self.build_host.clone(),
        }
    }
}

/// `swarmhub nfs ...`.
#[derive(Debug, Subcommand)]
pub enum NfsCommand {
    /// Create what nfsd needs (network, secrets) and start it on the storage node.
    Run(DeployArgs),
    /// Show where nfsd runs and how every node's plugin reaches it.
    Config,
    /// Start the deployed nfsd.
    Start,
    /// Stop nfsd (mounts of running notebooks wait until it is back).
    Stop,
    /// Remove nfsd's service (its data directory stays).
    Remove,
    /// Replace nfsd's task.
    Restart,
}

/// `swarmhub hub ...`.
#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Create what the hub needs (network, secrets, its config) and start it.
    Run(DeployArgs),
    /// Start the deployed hub.
    Start,
    /// Stop the hub (running notebooks and the hub's Docker gate keep running).
    Stop,
    /// Remove the hub's service, its Docker gate and its configs (its database volume stays).
    Remove,
    /// Replace the tasks of the hub's Docker gate and the hub.
    Restart,
    /// Build the hub and notebook images.
    Build(BuildArgs),
    /// Push the hub and notebook images to registry.address.
    Push(BuildArgs),
}

/// `swarmhub notebooks ...`.
#[derive(Debug, Subcommand)]
pub enum NotebooksCommand {
    /// Replace the container of chosen notebooks (the service stays, so JupyterHub keeps the
    /// server; the files stay on nfsd). Waits until each runs again.
    Restart {
        /// Exactly the notebooks with a swarmhub mount that does not answer as their container
        /// sees it (after a restart of the plugin, its FUSE mounts in running notebooks are
        /// dead); checks again afterwards.
        #[arg(long)]
        dead_mounts: bool,
        /// The notebooks of these users.
        #[arg(value_name = "USER")]
        users: Vec<String>,
    },
}

/// `swarmhub plugin ...`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Install or upgrade the plugin on this node only, through its dockerd.
    Install {
        /// The plugin bundle (config.json + rootfs/), e.g. from plugin-config/build.sh --no-create.
        #[arg(long, value_name = "DIR", default_value = crate::plan::PLUGIN_BUNDLE_DIR)]
        bundle: PathBuf,
        /// nfsd's address as this node reaches it (default: the storage node's, asked from
        /// the swarm, which needs a manager).
        #[arg(long, value_name = "ADDR")]
        server: Option<String>,
        /// A file with nfsd's API token, copied into the plugin's state directory.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Install or upgrade the plugin on every node (a one-shot global job that uses each
    /// node's dockerd socket) and record the version on each node. A node whose notebooks
    /// have swarmhub volumes mounted refuses a new plugin, unless --drain.
    Rollout {
        /// Stop exactly the notebooks that keep a node's plugin from being replaced (their
        /// users' files stay; they start again on the new version), then install there.
        #[arg(long)]
        drain: bool,
    },
    /// The node side of the rollout (run by the rollout job in the swarmhub image).
    #[command(hide = true)]
    NodeInstall(Box<NodeInstallArgs>),
    /// The node side of the mount check (run by the job swarmhub-mount-check in the swarmhub
    /// image): every running container's swarmhub mounts, each probed through the container's
    /// root under --proc; prints one result line.
    #[command(hide = true)]
    NodeMounts {
        /// The node's procfs as this process sees it.
        #[arg(long, value_name = "DIR", default_value = crate::node::mounts::HOST_PROC)]
        proc: PathBuf,
    },
    /// swarmhub's iptables guard of nfsd's ports on this node: apply, check or remove the
    /// SWARMHUB-NFSD chain and its jumps from INPUT and DOCKER-USER, with the node's own iptables
    /// (run by the rollout and doctor's check job; on a node itself: --root /).
    #[command(hide = true)]
    NodeFirewall {
        /// The node's root file system as this process sees it (chroot target; / on the node).
        #[arg(long, value_name = "DIR", default_value = crate::node::firewall::HOST_ROOT)]
        root: PathBuf,
        /// nfsd's NFS and API ports (repeatable).
        #[arg(long = "port", value_name = "PORT")]
        ports: Vec<u16>,
        /// apply, check or remove.
        #[arg(value_enum)]
        action: FirewallAction,
    },
}

/// Flags of `plugin node-install`.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeInstallArgs {
    /// The plugin's name (its volume driver name).
    #[arg(long, default_value = names::PLUGIN_ALIAS)]
    pub alias: String,
    /// The plugin bundle.
    #[arg(long, value_name = "DIR", default_value = crate::plan::PLUGIN_BUNDLE_DIR)]
    pub bundle: PathBuf,
    /// Pull this plugin reference instead of using the bundle.
    #[arg(long, value_name = "REF")]
    pub remote: Option<String>,
    /// How long (seconds) stopping containers get to let go of the plugin's volumes before the
    /// plugin is refused (a drain).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait_volumes: u64,
    /// An image to pull onto the node (repeatable).
    #[arg(long = "pull", value_name = "IMAGE")]
    pub pull: Vec<String>,
    /// Log in to the registry as this user, with the password in --registry-password-file.
    #[arg(long, value_name = "USER", requires = "node_password_file")]
    pub registry_username: Option<String>,
    /// The registry password (the Docker secret registry.password_secret).
    #[arg(
        long = "registry-secret-file",
        id = "node_password_file",
        value_name = "FILE"
    )]
    pub registry_secret_file: Option<PathBuf>,
    /// Without a user name: the node's own Docker client config to take a login from.
    #[arg(long, value_name = "FILE")]
    pub registry_docker_config: Option<PathBuf>,
    /// A plugin setting KEY=VALUE or mount.source=PATH (repeatable).
    #[arg(long = "setting", value_name = "SETTING")]
    pub settings: Vec<String>,
    /// nfsd's token, copied to <state-dir>/nfsd-token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The plugin's state directory as this process sees it.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Install the firewall guard of nfsd's ports first, with the node's root bound here.
    #[arg(long, value_name = "DIR")]
    pub firewall_root: Option<String>,
    /// A port of nfsd the guard closes to containers (repeatable; with --firewall-root).
    #[arg(
        long = "firewall-port",
        value_name = "PORT",
        requires = "firewall_root"
    )]
    pub firewall_ports: Vec<u16>,
}

/// What `plugin node-firewall` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FirewallAction {
    /// Install or correct the chain and its jumps.
    Apply,
    /// List them and report what is missing.
    Check,
    /// Remove the jumps and the chain.
    Remove,
}

/// `swarmhub volume ...`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// List nfsd's volumes (asked through a one-shot job that holds nfsd's token).
    List,
    /// Delete a volume: nfsd moves its tree aside (removed/<name>.<time>); with --purge the
    /// tree is deleted for good. Asks to type the volume's name unless --confirm NAME is given.
    Delete {
        /// The volume, e.g. home-alice.
        name: String,
        /// Also delete the tree (cannot be undone).
        #[arg(long)]
        purge: bool,
        /// The volume's name again, to confirm without a prompt.
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
    },
    /// Create every member's volumes before they first log in, e.g. before a lecture: the home
    /// and exchange volumes the hub would mount for each member of the LDAP groups, with the
    /// same options, so that many first logins at once do not each wait for them. Users whose
    /// volumes exist already are left as they are; safe to re-run. Exit code 1 if nfsd refused
    /// any volume (each is listed with nfsd's reason).
    Prepare {
        /// A group whose members get their volumes: a DN, or the cn of one of
        /// ldap.student_groups / ldap.teacher_group (e.g. students). Repeatable.
        #[arg(long = "group", value_name = "GROUP", required = true)]
        groups: Vec<String>,
        /// The password of ldap.bind_dn (a file, or - for stdin), to read the groups.
        #[arg(long, env = "SWARMHUB_LDAP_PASSWORD_FILE", value_name = "FILE")]
        ldap_password_file: Option<PathBuf>,
        /// Create nothing: list the members whose volumes are missing (or exist with other
        /// options, which nfsd would refuse).
        #[arg(long)]
        dry_run: bool,
    },
    /// The job side of list/delete/prepare (run by a one-shot job in the swarmhub image).
    #[command(hide = true)]
    Api {
        /// nfsd's control API, http://ADDR:PORT.
        #[arg(long, value_name = "URL")]
        server: String,
        /// nfsd's token.
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
        /// What to do.
        #[command(subcommand)]
        action: ApiCommand,
    },
}

/// `swarmhub volume api ...`.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// List the volumes.
    List,
    /// Remove a volume (and with --purge its tree).
    Delete {
        /// The volume.
        name: String,
        /// Delete the moved tree too.
        #[arg(long)]
        purge: bool,
    },
    /// Make (or keep) a top-level directory of a share, owned by an LDAP user.
    ShareDir {
        /// The share (e.g. the nbgrader exchange).
        share: String,
        /// The directory (e.g. the course id).
        name: String,
        /// Its owner's LDAP user name.
        #[arg(long)]
        user: String,
        /// Its mode, octal.
        #[arg(long, default_value = "755")]
        mode: String,
    },
    /// Create (or confirm) volumes; one result line each.
    Create {
        /// A volume and its options, NAME:KEY=VALUE,KEY=VALUE (repeatable).
        #[arg(value_name = "NAME:OPTIONS")]
        volumes: Vec<String>,
    },
}

/// `swarmhub config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the settings and print them as in effect (file + environment).
    Check,
    /// Print the generated jupyterhub_config.py of the hub.
    RenderHub,
    /// Print the Docker objects a deployment consists of (network, secrets by name, the hub's
    /// config, the nfsd and hub services); secret values are never shown.
    Plan,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_every_command() {
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        for word in [
            "init",
            "config",
            "run",
            "start",
            "stop",
            "remove",
            "restart",
            "rerun",
            "rebuild",
            "nfs",
            "hub",
            "plugin",
            "status",
            "doctor",
            "volume",
            "--config",
            "--output",
            "--yes",
            "SWARMHUB_CONFIG",
            "Exit codes",
        ] {
            assert!(help.contains(word), "{word} missing from:\n{help}");
        }
        let config = cmd.find_subcommand_mut("config").unwrap();
        let help = config.render_long_help().to_string();
        for word in ["check", "render-hub", "plan"] {
            assert!(help.contains(word), "{word} missing from:\n{help}");
        }
        // every subcommand has help text
        fn walk(c: &clap::Command) {
            for s in c.get_subcommands() {
                assert!(s.get_about().is_some(), "{} has no help", s.get_name());
                walk(s);
            }
        }
        walk(&Cli::command());
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "swarmhub", "config", "check", "--config", "/x.toml", "--output", "json", "--yes",
        ])
        .unwrap();
        assert_eq!(cli.config, PathBuf::from("/x.toml"));
        assert_eq!(cli.output, Output::Json);
        assert!(cli.yes);
        assert!(matches!(cli.command, Command::Config(ConfigCommand::Check)));
    }

    #[test]
    fn prepare_takes_groups_and_needs_one() {
        let cli = Cli::try_parse_from([
            "swarmhub",
            "volume",
            "prepare",
            "--group",
            "students",
            "--group",
            "teachers",
            "--dry-run",
        ])
        .unwrap();
        match cli.command {
            Command::Volume(VolumeCommand::Prepare {
                groups, dry_run, ..
            }) => {
                assert_eq!(groups, ["students", "teachers"]);
                assert!(dry_run);
            }
            other => panic!("{other:?}"),
        }
        let e = Cli::try_parse_from(["swarmhub", "volume", "prepare"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn the_gate_side_takes_its_sockets_and_rules() {
        let cli = Cli::try_parse_from([
            "swarmhub",
            "docker-gate",
            "--listen",
            "/run/swarmhub-docker-gate/docker.sock",
            "--docker",
            "/var/run/docker.sock",
            "--rules",
            "{}",
        ])
        .unwrap();
        let Command::DockerGate(args) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(
            args.listen,
            PathBuf::from("/run/swarmhub-docker-gate/docker.sock")
        );
        assert_eq!(args.docker, PathBuf::from("/var/run/docker.sock"));
        assert_eq!(args.rules.as_deref(), Some("{}"));
        // both sockets are needed; the help says what runs it and where the rules come from
        let e = Cli::try_parse_from(["swarmhub", "docker-gate", "--listen", "/x"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let mut cmd = Cli::command();
        let gate = cmd.find_subcommand_mut("docker-gate").unwrap();
        let help = gate.render_long_help().to_string();
        assert!(
            help.contains("gate service") && help.contains(swarmhub_docker_gate::RULES_ENV),
            "{help}"
        );
        // not among the commands admins are shown
        let top = Cli::command().render_long_help().to_string();
        assert!(!top.contains("docker-gate"), "{top}");
    }

    #[test]
    fn usage_errors_exit_with_2() {
        let e = Cli::try_parse_from(["swarmhub", "deploy"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = Cli::try_parse_from(["swarmhub", "--output", "yaml", "init"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
