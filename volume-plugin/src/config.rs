//! Settings of the plugin. Each is a flag and an environment variable (`SWARMHUB_NFS_*`, set in
//! the managed plugin's `config.json` and changeable with `docker plugin set`). Empty
//! environment values count as unset.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Command line of `swarmhub-volume-plugin`.
#[derive(Debug, Parser)]
#[command(
    name = "swarmhub-volume-plugin",
    version,
    about = "The swarmhub-nfs Docker volume plugin: mounts swarmhub-nfsd volumes on this node"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands; without one the plugin serves Docker.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve Docker's volume plugin protocol (the default)
    Serve,
    /// Mount one export with a backend and exit (kernel mounts stay); for tests and debugging
    Mount {
        /// nfsd's NFS address, host:port
        #[arg(long)]
        server: String,
        /// Export path, /<volume>
        #[arg(long)]
        export: String,
        /// Existing directory to mount on
        #[arg(long)]
        target: PathBuf,
        #[arg(long)]
        readonly: bool,
    },
    /// Unmount a target mounted by `mount`
    Unmount {
        #[arg(long)]
        target: PathBuf,
    },
    /// POST one call to a running plugin's socket the way dockerd does and print the JSON answer
    /// (exit 1 on an `Err` answer or no answer); for tests without Docker and for debugging
    #[command(hide = true)]
    Call {
        /// The plugin's socket [default: --socket / SWARMHUB_NFS_SOCKET]
        #[arg(long = "socket", id = "call_socket")]
        socket: Option<PathBuf>,
        /// Seconds to wait for the answer
        #[arg(long, default_value_t = 120)]
        timeout_seconds: u64,
        /// The endpoint, e.g. /VolumeDriver.Mount
        endpoint: String,
        /// The JSON body, e.g. '{"Name":"v1","ID":"c1"}' [default: {}]
        body: Option<String>,
    },
}

/// Mount backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The Linux NFS client (mounts survive plugin restarts)
    Kernel,
    /// A userspace NFS client exposed with FUSE (for kernels without NFS; mounts end with the plugin)
    Fuse,
}

/// Settings of `serve` (and the backend and mount options of `mount`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// nfsd host name or IP address as this node reaches it
    #[arg(long, env = "SWARMHUB_NFS_SERVER", default_value = "127.0.0.1")]
    pub server: String,
    /// nfsd's NFS + MOUNT port
    #[arg(long, env = "SWARMHUB_NFS_PORT", default_value_t = 2049)]
    pub nfs_port: u16,
    /// nfsd's control API port
    #[arg(long, env = "SWARMHUB_NFS_API_PORT", default_value_t = 8049)]
    pub api_port: u16,
    /// File holding nfsd's API bearer token
    #[arg(
        long,
        env = "SWARMHUB_NFS_TOKEN_FILE",
        default_value = "/state/nfsd-token"
    )]
    pub token_file: PathBuf,
    /// Mount backend
    #[arg(long, env = "SWARMHUB_NFS_BACKEND", value_enum, default_value_t = Backend::Kernel)]
    pub backend: Backend,
    /// Extra kernel NFS mount options, comma separated (e.g. timeo=600,retrans=5)
    #[arg(long, env = "SWARMHUB_NFS_MOUNT_OPTIONS")]
    pub mount_options: Option<String>,
    /// Directory for state.json (a host directory bind-mounted into the plugin)
    #[arg(long, env = "SWARMHUB_NFS_STATE_DIR", default_value = "/state")]
    pub state_dir: PathBuf,
    /// Where volumes are mounted (the plugin's propagated mount)
    #[arg(long, env = "SWARMHUB_NFS_MOUNT_ROOT", default_value = "/mnt/volumes")]
    pub mount_root: PathBuf,
    /// The plugin's socket
    #[arg(
        long,
        env = "SWARMHUB_NFS_SOCKET",
        default_value = "/run/docker/plugins/swarmhub-nfs.sock"
    )]
    pub socket: PathBuf,
    /// Docker's socket, for reaping mounts of containers that no longer run (optional)
    #[arg(long, env = "SWARMHUB_NFS_DOCKER_SOCKET")]
    pub docker_socket: Option<PathBuf>,
    /// Seconds a referenced volume may go unused by any running container before it is reaped
    #[arg(long, env = "SWARMHUB_NFS_REAP_GRACE_SECONDS", default_value_t = 120)]
    pub reap_grace_seconds: u64,
    /// Seconds a mount may take (Docker's plugin client gives up at 30)
    #[arg(long, env = "SWARMHUB_NFS_MOUNT_TIMEOUT_SECONDS", default_value_t = 24)]
    pub mount_timeout_seconds: u64,
    /// Name prefix of the hub's home volumes (`home-` for `home-<user>`); empty: none. A home
    /// volume `<prefix><user>` of user `<user>` is the user's whole home directory: when this
    /// node recorded it without `layout=home` (Docker created it here before the hub passed the
    /// option, and never sends a known volume's options again), its next mount asks nfsd for it
    /// with `layout=home`, which moves a 0.x home's files into its `work/`
    #[arg(long, env = "SWARMHUB_NFS_HOME_PREFIX", default_value = "")]
    pub home_prefix: String,
}

impl ServeArgs {
    /// `host:port` of nfsd's NFS service.
    pub fn nfs_address(&self) -> String {
        host_port(&self.server, self.nfs_port)
    }

    /// Base URL of nfsd's control API.
    pub fn api_url(&self) -> String {
        format!("http://{}", host_port(&self.server, self.api_port))
    }

    pub fn mount_timeout(&self) -> Duration {
        Duration::from_secs(self.mount_timeout_seconds.clamp(1, 28))
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_flags() {
        let a = Args::try_parse_from(["p", "--server", "10.0.0.5", "--backend", "fuse"]).unwrap();
        assert_eq!(a.serve.nfs_address(), "10.0.0.5:2049");
        assert_eq!(a.serve.api_url(), "http://10.0.0.5:8049");
        assert_eq!(a.serve.backend, Backend::Fuse);
        Args::try_parse_from(["p", "--bogus"]).unwrap_err();
        Args::try_parse_from(["p", "--backend", "nfs4"]).unwrap_err();
        let c = Args::try_parse_from([
            "p",
            "call",
            "--socket",
            "/run/p.sock",
            "/VolumeDriver.Get",
            r#"{"Name":"v"}"#,
        ])
        .unwrap();
        match c.command {
            Some(Command::Call {
                socket,
                endpoint,
                body,
                timeout_seconds,
            }) => {
                assert_eq!(socket, Some(PathBuf::from("/run/p.sock")));
                assert_eq!(endpoint, "/VolumeDriver.Get");
                assert_eq!(body.as_deref(), Some(r#"{"Name":"v"}"#));
                assert_eq!(timeout_seconds, 120);
            }
            other => panic!("not a call: {other:?}"),
        }
        Args::try_parse_from(["p", "call"]).unwrap_err();
        let v6 = Args::try_parse_from(["p", "--server", "fd00::1"]).unwrap();
        assert_eq!(v6.serve.nfs_address(), "[fd00::1]:2049");
    }
}
