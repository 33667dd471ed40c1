//! `swarmhub plugin node-mounts`: on one node, inside the one-shot global job
//! `swarmhub-mount-check` that `status`, `doctor` and `notebooks restart --dead-mounts` run, find
//! every running container that uses a swarmhub volume and check each such mount **as that
//! container sees it**.
//!
//! Why from the container's side: the FUSE backend's mounts end with the plugin process. After
//! the plugin restarts, it mounts its volumes again on the node, but a container keeps the
//! mount it was given: a dead one, where every call answers `Transport endpoint is not
//! connected`, until the container restarts. Only a look through the container's own root
//! (`/proc/<pid>/root` of the node's procfs, bound into the job at [`HOST_PROC`]) tells a dead
//! mount from a live one.
//!
//! The container is hostile: its root may have replaced any directory on the way to the mount
//! point with a symlink. The path is resolved with `openat2(RESOLVE_IN_ROOT)` below the
//! container's root (so nothing outside it is ever reached) and only `O_PATH`-opened; the one
//! call that reaches the file system is `fstatfs`, which a dead FUSE mount answers with
//! ENOTCONN and a live one with nfsd's answer. A mount that does not answer within the
//! timeout (a kernel NFS mount whose server is gone hangs) is reported as silent. At worst a
//! container lies about its own mounts.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::ContainerInspectResponse;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::{Deserialize, Serialize};

use crate::names::PLUGIN_ALIAS;

/// Prefix of the one line of JSON the node side prints for the manager to read.
pub const RESULT_PREFIX: &str = "swarmhub-node-mounts: ";
/// Where the job sees the node's procfs.
pub const HOST_PROC: &str = "/host/proc";
/// How long one mount may take to answer `statfs`.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the node side found on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Running containers with at least one swarmhub volume, by name.
    pub containers: Vec<ContainerMounts>,
}

/// One running container's swarmhub mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMounts {
    /// Its name (without Docker's leading `/`).
    pub container: String,
    /// Its id (12 characters).
    pub id: String,
    /// The Swarm service of its task, if it is one.
    pub service: Option<String>,
    /// The notebook's user (label `swarmhub.user`), if it is a notebook.
    pub user: Option<String>,
    /// Each swarmhub mount and what it answered.
    pub mounts: Vec<MountCheck>,
}

impl ContainerMounts {
    /// Its mounts that are dead or silent.
    pub fn broken(&self) -> impl Iterator<Item = &MountCheck> {
        self.mounts.iter().filter(|m| m.state.is_broken())
    }
}

/// One swarmhub mount of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountCheck {
    /// The volume's name.
    pub volume: String,
    /// Where the container has it.
    pub destination: String,
    /// What `statfs` through the container's root answered.
    #[serde(flatten)]
    pub state: MountState,
}

/// What a mount answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MountState {
    /// It answered.
    Live,
    /// It answered with an error (a FUSE mount of an earlier plugin process: ENOTCONN).
    Dead {
        /// the error
        error: String,
    },
    /// It did not answer within the timeout.
    Silent {
        /// the timeout
        seconds: u64,
    },
    /// It could not be looked at (the container ended meanwhile, no access to its root).
    Unchecked {
        /// why
        error: String,
    },
}

impl MountState {
    /// Dead or silent: the container cannot use it.
    pub fn is_broken(&self) -> bool {
        matches!(self, MountState::Dead { .. } | MountState::Silent { .. })
    }

    /// Dead for good: only a new container gets a live mount (a silent mount may be waiting
    /// for nfsd, and goes on by itself when nfsd answers again).
    pub fn is_dead(&self) -> bool {
        matches!(self, MountState::Dead { .. })
    }

    /// A few words for people.
    pub fn describe(&self) -> String {
        match self {
            MountState::Live => "live".into(),
            MountState::Dead { error } => format!("dead ({error})"),
            MountState::Silent { seconds } => format!("not answering within {seconds} s"),
            MountState::Unchecked { error } => format!("not checked ({error})"),
        }
    }
}

/// Whether `driver` (as Docker reports a volume's driver) is the swarmhub plugin.
pub fn is_swarmhub_driver(driver: &str) -> bool {
    driver == PLUGIN_ALIAS
        || driver
            .strip_prefix(PLUGIN_ALIAS)
            .is_some_and(|tag| tag.starts_with(':'))
}

/// One running container's swarmhub mounts, each probed through its root under `proc` (the
/// node's procfs); `None` when it has none. (The node side lists the containers through
/// dockerd: `inspect::mounts::node_side`.)
pub async fn container_mounts(
    c: &ContainerInspectResponse,
    proc: &Path,
    timeout: Duration,
) -> Option<ContainerMounts> {
    let found = swarmhub_mounts(c)?;
    let pid = c.state.as_ref().and_then(|s| s.pid).unwrap_or(0);
    // all at once: while nfsd is unreachable every probe waits out its timeout
    let mounts =
        futures_util::future::join_all(found.into_iter().map(|(volume, destination)| async move {
            let state = probe(proc, pid, &destination, timeout).await;
            MountCheck {
                volume,
                destination,
                state,
            }
        }))
        .await;
    let labels = c
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    Some(ContainerMounts {
        container: c
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        id: c
            .id
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(12)
            .collect(),
        service: labels.get("com.docker.swarm.service.name").cloned(),
        user: labels.get(crate::names::USER_LABEL).cloned(),
        mounts,
    })
}

/// The swarmhub volumes of a container, as (volume, destination); `None` when it has none.
fn swarmhub_mounts(c: &ContainerInspectResponse) -> Option<Vec<(String, String)>> {
    let found: Vec<(String, String)> = c
        .mounts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|m| {
            m.typ.as_deref() == Some("volume")
                && m.driver.as_deref().is_some_and(is_swarmhub_driver)
        })
        .map(|m| {
            (
                m.name.clone().unwrap_or_default(),
                m.destination.clone().unwrap_or_default(),
            )
        })
        .collect();
    (!found.is_empty()).then_some(found)
}

/// `statfs` of `destination` as process `pid` sees it, on a thread of its own, within `timeout`
/// (a thread stuck on a hung mount is left behind; the job's process ends soon after).
pub async fn probe(proc: &Path, pid: i64, destination: &str, timeout: Duration) -> MountState {
    if pid <= 0 {
        return MountState::Unchecked {
            error: "the container has no process".into(),
        };
    }
    let root = proc.join(pid.to_string()).join("root");
    let destination = destination.to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(probe_blocking(&root, &destination));
    });
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => MountState::Unchecked {
            error: "the probe thread ended without an answer".into(),
        },
        Err(_) => MountState::Silent {
            seconds: timeout.as_secs(),
        },
    }
}

/// The blocking part of [`probe`]: open the container's root, resolve `destination` inside
/// it, `fstatfs` what it names.
fn probe_blocking(root: &PathBuf, destination: &str) -> MountState {
    let root_fd: OwnedFd = match rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            return MountState::Unchecked {
                error: format!("opening {}: {}", root.display(), std::io::Error::from(e)),
            };
        }
    };
    let relative = destination.trim_start_matches('/');
    let target = match rustix::fs::openat2(
        &root_fd,
        if relative.is_empty() { "." } else { relative },
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // walking onto a dead FUSE mount point can already fail
        Err(e) if is_dead_mount_errno(e) => {
            return MountState::Dead {
                error: std::io::Error::from(e).to_string(),
            };
        }
        Err(e) => {
            return MountState::Unchecked {
                error: format!("resolving {destination}: {}", std::io::Error::from(e)),
            };
        }
    };
    match rustix::fs::fstatfs(&target) {
        Ok(_) => MountState::Live,
        Err(e) => MountState::Dead {
            error: std::io::Error::from(e).to_string(),
        },
    }
}

/// Errors that mean the mount's server is gone for good (FUSE connection aborted, NFS handle
/// stale, I/O failed).
fn is_dead_mount_errno(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [Errno::NOTCONN, Errno::IO, Errno::STALE, Errno::CONNABORTED].contains(&e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_is_known_by_its_alias_with_or_without_a_tag() {
        assert!(is_swarmhub_driver("swarmhub-nfs"));
        assert!(is_swarmhub_driver("swarmhub-nfs:latest"));
        assert!(is_swarmhub_driver("swarmhub-nfs:0.1.0"));
        assert!(!is_swarmhub_driver("swarmhub-nfsx"));
        assert!(!is_swarmhub_driver("local"));
    }

    #[tokio::test]
    async fn a_live_directory_answers_through_a_process_root() {
        // this test's own process: its root is the host's, /tmp is a directory
        let pid = i64::from(std::process::id());
        let dir = tempfile::tempdir().unwrap();
        let state = probe(
            Path::new("/proc"),
            pid,
            dir.path().to_str().unwrap(),
            PROBE_TIMEOUT,
        )
        .await;
        assert_eq!(state, MountState::Live);
    }

    #[tokio::test]
    async fn symlinks_resolve_inside_the_container_root_never_outside() {
        // a fake container root whose /home is a symlink to the host's absolute /etc: inside
        // the root it names <root>/etc, which does not exist, so the probe cannot see /etc
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("home")).unwrap();
        let proc = tempfile::tempdir().unwrap();
        std::fs::create_dir(proc.path().join("7")).unwrap();
        std::os::unix::fs::symlink(root.path(), proc.path().join("7/root")).unwrap();
        let state = probe(proc.path(), 7, "/home", PROBE_TIMEOUT).await;
        let MountState::Unchecked { error } = &state else {
            panic!("{state:?}")
        };
        assert!(
            error.contains("/home") && error.contains("No such file"),
            "{error}"
        );
        std::fs::create_dir(root.path().join("etc")).unwrap();
        assert_eq!(
            probe(proc.path(), 7, "/home", PROBE_TIMEOUT).await,
            MountState::Live
        );
    }

    #[tokio::test]
    async fn a_container_without_a_process_is_not_checked() {
        let state = probe(Path::new("/proc"), 0, "/home/jovyan", PROBE_TIMEOUT).await;
        assert!(matches!(state, MountState::Unchecked { .. }), "{state:?}");
        assert!(!state.is_broken());
        let gone = probe(Path::new("/proc"), i64::from(i32::MAX), "/", PROBE_TIMEOUT).await;
        assert!(matches!(gone, MountState::Unchecked { .. }), "{gone:?}");
    }

    #[test]
    fn broken_states_read_well() {
        let dead = MountState::Dead {
            error: "Transport endpoint is not connected (os error 107)".into(),
        };
        assert!(dead.is_broken());
        assert!(dead.describe().contains("not connected"));
        assert!(MountState::Silent { seconds: 5 }.is_broken());
        assert!(!MountState::Live.is_broken());
        let json = serde_json::to_string(&dead).unwrap();
        assert_eq!(serde_json::from_str::<MountState>(&json).unwrap(), dead);
        assert!(json.contains("\"state\":\"dead\""), "{json}");
    }
}
