//! Why the driver refused a Docker call, and why nfsd could not be asked for a volume. Users read
//! these texts as `VolumeDriver.<Call>: <message>` (the HTTP edge in `api` turns them into
//! Docker's `Err` string, nothing else does), so each names the volume, path or address
//! involved, the cause, and what to do where there is something to do.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use swarmhub_control_api::client::ClientError;
use swarmhub_control_api::{NameError, OptionError};
use thiserror::Error;

use crate::mounter::MountError;

/// Why nfsd could not ensure a volume (see [`crate::driver::Provisioner`]).
#[derive(Debug, Error)]
pub enum ProvisionError {
    /// the file holding the control API token cannot be read
    #[error(
        "reading the nfsd API token {}: {source}; the swarmhub CLI's plugin rollout writes it",
        path.display()
    )]
    Token { path: PathBuf, source: io::Error },
    /// nfsd's control API is unreachable, too slow, or refused the volume
    #[error(transparent)]
    Api(#[from] ClientError),
}

/// Why a `VolumeDriver.*` call failed.
#[derive(Debug, Error)]
pub enum DriverError {
    /// the volume name cannot become a path component (`../x`, `a/b`, too long, ...)
    #[error(transparent)]
    BadName(#[from] NameError),
    /// an option is unknown or its value does not parse, or the options contradict each other
    #[error(transparent)]
    BadOptions(#[from] OptionError),
    /// Create of a volume this node knows, with options that differ in more than size and layout
    #[error(
        "volume {name:?} exists on this node with options {existing:?}, not {wanted:?}; remove it first (its data is kept) or use another name"
    )]
    OptionsConflict {
        name: String,
        /// the recorded options, as Docker's map
        existing: BTreeMap<String, String>,
        /// the options of this Create, as Docker's map
        wanted: BTreeMap<String, String>,
    },
    /// the volume is not recorded on this node
    #[error(
        "no such volume {name:?} on this node; create it with: docker volume create -d swarmhub-nfs -o user=<ldap name> {name}"
    )]
    NoSuchVolume { name: String },
    /// Remove of a volume that container mounts on this node still reference
    #[error(
        "volume {name:?} is still mounted by {mounts} container mount(s) on this node; stop them first"
    )]
    InUse { name: String, mounts: u32 },
    /// nfsd could not ensure the volume at Create
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// nfsd could not give a home volume recorded without a layout its `layout=home`
    #[error(
        "asking nfsd for home volume {name} with layout=home (the whole home directory): {source}"
    )]
    HomeLayout {
        name: String,
        source: ProvisionError,
    },
    /// nfsd refused this node's mount path (or has no such export), and asking it for the
    /// volume again failed too
    #[error("{refused}; asking nfsd for volume {name} again failed: {source}")]
    Reensure {
        name: String,
        refused: Box<MountError>,
        source: ProvisionError,
    },
    /// nfsd's NFS address does not resolve
    #[error("resolving nfsd address {server}: {source}")]
    ResolveNfsd { server: String, source: io::Error },
    /// nfsd's NFS address resolves to no address at all
    #[error("nfsd address {server} resolves to nothing")]
    NfsdAddressEmpty { server: String },
    /// the directory to mount on cannot be made
    #[error("creating mount point {}: {source}", target.display())]
    MountPoint { target: PathBuf, source: io::Error },
    /// the mount backend failed to mount or unmount (its message names server, export, errno)
    #[error(transparent)]
    Mount(Box<MountError>),
    /// the blocking task that mounts or unmounts panicked or was cancelled
    #[error("{what} task failed: {source}")]
    Task {
        /// `mount` or `unmount`
        what: &'static str,
        source: tokio::task::JoinError,
    },
    /// a volume mounted here for another container, while nfsd refuses connections
    #[error(
        "volume {name} is mounted but nfsd at {server} is unreachable ({source}); start nfsd (swarmhub nfs start) and retry"
    )]
    NfsdUnreachable {
        name: String,
        server: String,
        source: io::Error,
    },
    /// a volume mounted here for another container, while nfsd does not answer a connection
    #[error(
        "volume {name} is mounted but nfsd at {server} does not accept connections within {after:?}; check nfsd (swarmhub doctor) and retry"
    )]
    NfsdSilent {
        name: String,
        server: String,
        after: Duration,
    },
    /// the state file cannot be written, so the change is not acknowledged
    #[error("saving plugin state: {0}")]
    SaveState(#[source] io::Error),
}

impl From<MountError> for DriverError {
    fn from(e: MountError) -> Self {
        DriverError::Mount(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users and scripts read these as `VolumeDriver.<Call>: <message>`: the texts are the ones
    /// the plugin answered before the errors were typed.
    #[test]
    fn texts_docker_users_read() {
        let e = DriverError::NoSuchVolume { name: "v".into() };
        assert_eq!(
            e.to_string(),
            r#"no such volume "v" on this node; create it with: docker volume create -d swarmhub-nfs -o user=<ldap name> v"#
        );
        let e = DriverError::InUse {
            name: "v".into(),
            mounts: 2,
        };
        assert_eq!(
            e.to_string(),
            r#"volume "v" is still mounted by 2 container mount(s) on this node; stop them first"#
        );
        let e = DriverError::OptionsConflict {
            name: "v".into(),
            existing: [("user".to_string(), "alice".to_string())].into(),
            wanted: [("user".to_string(), "bob".to_string())].into(),
        };
        assert_eq!(
            e.to_string(),
            r#"volume "v" exists on this node with options {"user": "alice"}, not {"user": "bob"}; remove it first (its data is kept) or use another name"#
        );
        let e = DriverError::Reensure {
            name: "v".into(),
            refused: Box::new(MountError::Refused {
                server: "10.0.0.1:2049".parse().unwrap(),
                export: "/v".into(),
                target: "/mnt/volumes/v".into(),
                cause: "MNT3ERR_ACCES".into(),
            }),
            source: ProvisionError::Token {
                path: "/state/nfsd-token".into(),
                source: io::Error::from(io::ErrorKind::NotFound),
            },
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("nfsd at 10.0.0.1:2049 refused to mount /v on /mnt/volumes/v")
                && msg.contains("; asking nfsd for volume v again failed: reading the nfsd API token /state/nfsd-token: "),
            "{msg}"
        );
    }
}
