//! Mount backends behind one trait. `kernel` mounts the export with the Linux NFS client through
//! mount(2) (mounts survive a plugin restart); `fuse` serves the same export through a userspace
//! NFS client exposed with FUSE, for kernels without an NFS client (FUSE mounts end with the
//! plugin process). The driver never calls mount(2) itself.

pub mod fuse;
pub mod kernel;
pub mod recording;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

/// Everything needed to mount one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// nfsd's NFS + MOUNT address (one TCP port serves both).
    pub server: SocketAddr,
    /// Mount path, `/<volume>/<secret>` as nfsd's control API gives it out. The secret lets
    /// whoever knows it mount the volume: messages show [`MountSpec::shown_export`] instead.
    pub export: String,
    /// Mount read-only.
    pub readonly: bool,
    /// Extra kernel mount options appended verbatim (kernel backend only), e.g. `timeo=600`.
    pub extra_options: Option<String>,
}

impl MountSpec {
    /// The export as messages and status show it: `/<volume>`, without the secret.
    pub fn shown_export(&self) -> String {
        swarmhub_control_api::mount_path::public_export(&self.export)
    }
}

/// Why a mount or unmount failed. Messages name the server, the export, the errno and a hint,
/// because users read them as `VolumeDriver.Mount: <message>`.
#[derive(Debug, Error)]
pub enum MountError {
    /// nothing answers at the server address
    #[error(
        "nfsd at {server} is unreachable for export {export}: {cause}; check that the swarmhub nfsd service runs and that this node reaches its port"
    )]
    Unreachable {
        server: SocketAddr,
        export: String,
        cause: String,
    },
    /// the mount call failed
    #[error("mounting {export} from {server} on {target} failed: {cause}{hint}")]
    Failed {
        server: SocketAddr,
        export: String,
        target: String,
        cause: String,
        hint: String,
    },
    /// nfsd answered that it has no such export (MNT3ERR_NOENT, ENOENT from the kernel)
    #[error(
        "mounting {export} from {server} on {target} failed: nfsd has no such export ({cause}): create the volume first"
    )]
    NoSuchExport {
        server: SocketAddr,
        export: String,
        target: String,
        cause: String,
    },
    /// nfsd refused the mount path (MNT3ERR_ACCES, EACCES from the kernel): the node's mount
    /// path is missing its capability or out of date, or nfsd does not allow this node
    #[error(
        "nfsd at {server} refused to mount {export} on {target} ({cause}): this node's mount path for the volume is out of date, or nfsd's allowed client networks do not include this node's address"
    )]
    Refused {
        server: SocketAddr,
        export: String,
        target: String,
        cause: String,
    },
    /// the mount did not finish in time
    #[error(
        "mounting {export} from {server} did not finish within {after:?}; nfsd may be overloaded or the network drops packets"
    )]
    TimedOut {
        server: SocketAddr,
        export: String,
        after: Duration,
    },
    /// unmount failed
    #[error("unmounting {target} failed: {cause}")]
    Unmount { target: String, cause: String },
}

/// A way of putting an export on a directory.
// MountError is large, but mounts are rare and slow; boxing it would buy nothing measurable
#[allow(clippy::result_large_err)]
pub trait Mounter: Send + Sync + 'static {
    /// Short name for logs and status (`kernel`, `fuse`, `recording`).
    fn name(&self) -> &'static str;
    /// Mounts `spec` on `target` (an existing empty directory). Must return within `deadline`.
    fn mount(&self, spec: &MountSpec, target: &Path, deadline: Duration) -> Result<(), MountError>;
    /// Unmounts `target`; a target that is not mounted is not an error.
    fn unmount(&self, target: &Path) -> Result<(), MountError>;
    /// Whether `target` is mounted now (by default: listed in `/proc/self/mountinfo`).
    fn is_mounted(&self, target: &Path) -> bool {
        is_mounted(target)
    }
    /// Whether a mount outlives the process that made it (kernel NFS: yes; FUSE: no, it is
    /// served by this process). When not, every container that still holds a mount an earlier
    /// plugin process gave it sees only errors until it restarts.
    fn outlives_process(&self) -> bool {
        true
    }
}

/// Whether something is mounted exactly at `target`, according to `/proc/self/mountinfo`.
pub fn is_mounted(target: &Path) -> bool {
    mount_points().iter().any(|p| p == target)
}

/// Mount points listed in `/proc/self/mountinfo` (octal escapes decoded).
pub fn mount_points() -> Vec<std::path::PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| std::path::PathBuf::from(unescape(p)))
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(super::unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(super::unescape("/plain"), "/plain");
    }

    #[test]
    fn root_is_mounted() {
        assert!(super::is_mounted(std::path::Path::new("/")));
    }
}
