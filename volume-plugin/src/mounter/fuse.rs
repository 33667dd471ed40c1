//! The `fuse` backend: a userspace NFSv3 client (`nfs3_client`) served on the target with FUSE
//! (`fuser`, which mounts with mount(2) itself when running as root: no fusermount helper).
//!
//! `mount` sends MNT for the export (MOUNT and NFS share nfsd's one port), checks the root with
//! FSINFO and GETATTR, and mounts `fuse.swarmhub` on the target with `allow_other` (containers run
//! as other users) and `default_permissions` (the kernel checks mode bits against what nfsd
//! presents). The session runs on its own threads until `unmount`; NFS calls run on a tokio
//! runtime owned by the [`FuseMounter`] over a small connection pool that reconnects and resends
//! when nfsd restarts (its handles stay valid). FUSE mounts end with this process: a target left
//! behind by an earlier process (ENOTCONN) is detached before it is mounted again.

pub mod client;
mod fs;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};
use nfs3_client::{ConnectError, Nfs3ConnectionBuilder};
use nfs3_types::mount::mountstat3;
use nfs3_types::nfs3::{FSINFO3args, GETATTR3args, Nfs3Result, nfs_fh3};
use rustix::io::Errno;
use rustix::mount::{UnmountFlags, unmount};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use self::client::{Client, Io, Pool, PoolConfig, credential};
use super::{MountError, MountSpec, Mounter, is_mounted};

/// Longest time `mount` spends reaching nfsd, whatever the caller's deadline.
const CONNECT_BUDGET: Duration = Duration::from_secs(10);

/// Tunables of the FUSE backend.
#[derive(Debug, Clone, Copy)]
pub struct FuseOptions {
    /// NFS connections per mount, reconnect and timeouts.
    pub pool: PoolConfig,
    /// Threads serving FUSE requests per mount.
    pub threads: usize,
    /// How long the kernel may cache attributes and names.
    pub ttl: Duration,
}

impl Default for FuseOptions {
    fn default() -> Self {
        FuseOptions {
            pool: PoolConfig::default(),
            threads: 4,
            ttl: Duration::from_secs(1),
        }
    }
}

struct Mounted {
    spec: MountSpec,
    unmounter: SessionUnmounter,
    thread: JoinHandle<io::Result<()>>,
}

/// Serves exports through FUSE. Keeps the sessions it mounted, keyed by target.
pub struct FuseMounter {
    rt: Option<Arc<Runtime>>,
    options: FuseOptions,
    mounts: Mutex<HashMap<PathBuf, Mounted>>,
}

impl std::fmt::Debug for FuseMounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuseMounter")
            .field("options", &self.options)
            .field("targets", &self.targets())
            .finish()
    }
}

/// A TCP connector whose connects give up after a timeout (an unreachable host would otherwise
/// take the kernel's SYN retries, minutes).
struct TimedConnector(Duration);

impl nfs3_client::net::Connector for TimedConnector {
    type Connection = Io;

    async fn connect(&self, addr: std::net::SocketAddr) -> io::Result<Self::Connection> {
        match tokio::time::timeout(self.0, TcpStream::connect(addr)).await {
            Ok(r) => r.map(Io),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no TCP connection within {:?}", self.0),
            )),
        }
    }

    async fn connect_with_port(
        &self,
        addr: std::net::SocketAddr,
        local_port: u16,
    ) -> io::Result<Self::Connection> {
        let socket = match addr {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        let local = match addr {
            std::net::SocketAddr::V4(_) => std::net::SocketAddr::from(([0, 0, 0, 0], local_port)),
            std::net::SocketAddr::V6(_) => std::net::SocketAddr::from(([0u16; 8], local_port)),
        };
        socket.bind(local)?;
        match tokio::time::timeout(self.0, socket.connect(addr)).await {
            Ok(r) => r.map(Io),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
    }
}

/// What mounting learned from nfsd.
struct Reached {
    client: Client,
    root: nfs_fh3,
    root_fileid: u64,
    rtmax: u32,
    wtmax: u32,
}

enum ConnectFailure {
    Connect(ConnectError),
    Status(&'static str, String),
    Rpc(String),
}

async fn reach(spec: &MountSpec, connect_timeout: Duration) -> Result<Reached, ConnectFailure> {
    let port = spec.server.port();
    let conn = Nfs3ConnectionBuilder::new(
        TimedConnector(connect_timeout),
        spec.server.ip().to_string(),
        &spec.export,
    )
    .mount_port(port)
    .nfs3_port(port)
    .connect_from_privileged_port(false)
    .credential(credential())
    .mount()
    .await
    .map_err(ConnectFailure::Connect)?;
    let root = conn.root_nfs_fh3();
    let mut client = conn.into_nfs3_client();
    let info = match client
        .fsinfo(&FSINFO3args {
            fsroot: root.clone(),
        })
        .await
        .map_err(|e| ConnectFailure::Rpc(format!("FSINFO: {e}")))?
    {
        Nfs3Result::Ok(ok) => ok,
        Nfs3Result::Err((s, _)) => return Err(ConnectFailure::Status("FSINFO", s.to_string())),
    };
    let attr = match client
        .getattr(&GETATTR3args {
            object: root.clone(),
        })
        .await
        .map_err(|e| ConnectFailure::Rpc(format!("GETATTR: {e}")))?
    {
        Nfs3Result::Ok(ok) => ok.obj_attributes,
        Nfs3Result::Err((s, _)) => return Err(ConnectFailure::Status("GETATTR", s.to_string())),
    };
    Ok(Reached {
        client,
        root,
        root_fileid: attr.fileid,
        rtmax: info.rtmax,
        wtmax: info.wtmax,
    })
}

/// Detaches whatever is mounted at `target` (lazy unmount: works on stale FUSE mounts whose
/// server is gone, which answer ENOTCONN to everything).
fn detach(target: &Path) -> io::Result<()> {
    match unmount(target, UnmountFlags::DETACH) {
        // EINVAL, ENOENT: not a mount point (any more)
        Ok(()) | Err(Errno::INVAL | Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Unmounts `target`: a plain unmount first, a lazy one when it is busy.
fn unmount_path(target: &Path) -> io::Result<()> {
    match unmount(target, UnmountFlags::empty()) {
        Ok(()) | Err(Errno::INVAL | Errno::NOENT) => Ok(()),
        Err(_) => detach(target),
    }
}

/// Allocations at least this large always get pages of their own from mmap(2).
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// Keeps every FUSE session's request buffers out of RAM until the kernel fills them.
///
/// fuser gives each session thread a zeroed 16 MiB buffer (`vec![0; 16 MiB + 4 KiB]`: the
/// largest WRITE the protocol allows), though Linux sends at most 1 MiB per request by default.
/// Freshly mmapped memory is zero already, so glibc's calloc touches none of it; but glibc
/// raises its mmap threshold to the size of every mmapped block that is freed (up to 32 MiB),
/// so after the first unmount the buffers of later mounts came from the thread's malloc arena
/// and calloc wrote all 16 MiB: 64 MiB of RSS per mount with 4 threads, kept in the arenas
/// after the unmount. The lecture-start storm measured 1.7 GiB in one node's plugin with 26
/// mounts (docs/BENCHMARKS.md). A fixed threshold (`M_MMAP_THRESHOLD`, which also turns off the
/// dynamic one) keeps them mmapped: only the pages the kernel writes are resident, and
/// munmap returns them at unmount.
fn pin_mmap_threshold() {
    static PINNED: std::sync::Once = std::sync::Once::new();
    PINNED.call_once(|| {
        // SAFETY: mallopt only changes allocator tunables; it is safe to call at any time.
        if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) } != 1 {
            tracing::warn!("mallopt(M_MMAP_THRESHOLD) refused: FUSE buffers may stay resident");
        }
    });
}

/// `target` as mountinfo spells it when the path itself cannot be resolved (stale mounts).
fn mount_key(target: &Path) -> PathBuf {
    if let Ok(p) = target.canonicalize() {
        return p;
    }
    match (target.parent(), target.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .unwrap_or_else(|_| target.to_path_buf()),
        _ => target.to_path_buf(),
    }
}

impl FuseMounter {
    /// A backend with default options.
    pub fn new() -> io::Result<FuseMounter> {
        FuseMounter::with_options(FuseOptions::default())
    }

    /// A backend with `options`.
    pub fn with_options(options: FuseOptions) -> io::Result<FuseMounter> {
        pin_mmap_threshold();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("swarmhub-fuse-rt")
            .enable_all()
            .build()?;
        Ok(FuseMounter {
            rt: Some(Arc::new(rt)),
            options,
            mounts: Mutex::new(HashMap::new()),
        })
    }

    /// Targets this process serves.
    pub fn targets(&self) -> Vec<PathBuf> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Mounted>> {
        self.mounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rt(&self) -> &Arc<Runtime> {
        self.rt.as_ref().expect("runtime present until drop")
    }

    /// Runs `f` on the backend's runtime, from any thread (also from inside another runtime).
    fn run<F>(&self, f: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let rt = self.rt();
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| rt.block_on(f))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        } else {
            rt.block_on(f)
        }
    }

    fn failed(spec: &MountSpec, target: &Path, cause: String, hint: &str) -> MountError {
        MountError::Failed {
            server: spec.server,
            export: spec.shown_export(),
            target: target.display().to_string(),
            cause,
            hint: hint.to_string(),
        }
    }

    fn drop_mount(target: &Path, mut m: Mounted) -> io::Result<()> {
        // fuser's own unmount is a plain umount; when that is refused (busy) we detach, and the
        // session threads end once the last user lets go of the mount.
        let r = match m.unmounter.unmount() {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::info!(target = %target.display(), error = %e, "unmount refused; detaching");
                detach(target)
            }
        };
        // give the session a moment to see the connection end; never block on it
        let until = Instant::now() + Duration::from_secs(1);
        while !m.thread.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if m.thread.is_finished() {
            let _ = m.thread.join();
        }
        r
    }
}

impl Mounter for FuseMounter {
    fn name(&self) -> &'static str {
        "fuse"
    }

    fn outlives_process(&self) -> bool {
        false
    }

    fn mount(&self, spec: &MountSpec, target: &Path, deadline: Duration) -> Result<(), MountError> {
        let started = Instant::now();
        let key = mount_key(target);
        let previous = self.lock().remove(&key);
        if let Some(m) = previous {
            if m.spec == *spec && !m.thread.is_finished() && is_mounted(&key) {
                self.lock().insert(key, m);
                return Ok(());
            }
            Self::drop_mount(&key, m).map_err(|e| {
                Self::failed(
                    spec,
                    target,
                    format!("unmounting the previous mount: {e}"),
                    "; is something still using the mount point?",
                )
            })?;
        }
        if is_mounted(&key) {
            tracing::warn!(target = %key.display(), "target is mounted by someone else (a stale FUSE mount of an earlier plugin process?); detaching it");
            detach(&key).map_err(|e| {
                Self::failed(
                    spec,
                    target,
                    format!("detaching the stale mount on the target: {e}"),
                    "; the plugin needs CAP_SYS_ADMIN",
                )
            })?;
        }

        let budget = deadline.min(CONNECT_BUDGET);
        let connect_timeout = budget.min(
            self.options
                .pool
                .connect_timeout
                .max(Duration::from_secs(1)),
        );
        let reached =
            self.run(async { tokio::time::timeout(budget, reach(spec, connect_timeout)).await });
        let reached = match reached {
            Err(_) => {
                return Err(MountError::TimedOut {
                    server: spec.server,
                    export: spec.shown_export(),
                    after: budget,
                });
            }
            Ok(Ok(r)) => r,
            Ok(Err(ConnectFailure::Connect(ConnectError::Io(e)))) => {
                return Err(MountError::Unreachable {
                    server: spec.server,
                    export: spec.shown_export(),
                    cause: e.to_string(),
                });
            }
            Ok(Err(ConnectFailure::Connect(ConnectError::Mount(
                nfs3_client::MountError::Denied(mountstat3::MNT3ERR_NOENT),
            )))) => {
                return Err(MountError::NoSuchExport {
                    server: spec.server,
                    export: spec.shown_export(),
                    target: target.display().to_string(),
                    cause: "MNT3ERR_NOENT".into(),
                });
            }
            Ok(Err(ConnectFailure::Connect(ConnectError::Mount(
                nfs3_client::MountError::Denied(
                    s @ (mountstat3::MNT3ERR_ACCES | mountstat3::MNT3ERR_PERM),
                ),
            )))) => {
                return Err(MountError::Refused {
                    server: spec.server,
                    export: spec.shown_export(),
                    target: target.display().to_string(),
                    cause: format!("{s} (status {})", s as u32),
                });
            }
            Ok(Err(ConnectFailure::Connect(ConnectError::Mount(
                nfs3_client::MountError::Denied(s),
            )))) => {
                return Err(Self::failed(
                    spec,
                    target,
                    format!(
                        "nfsd refused MNT {}: {s} (status {})",
                        spec.shown_export(),
                        s as u32
                    ),
                    "; see nfsd's log for the reason",
                ));
            }
            Ok(Err(ConnectFailure::Connect(ConnectError::Mount(
                nfs3_client::MountError::Rpc(nfs3_client::RpcError::Io(e)),
            )))) => {
                return Err(MountError::Unreachable {
                    server: spec.server,
                    export: spec.shown_export(),
                    cause: format!("connection lost during MNT: {e}"),
                });
            }
            Ok(Err(ConnectFailure::Connect(e))) => {
                return Err(Self::failed(
                    spec,
                    target,
                    format!("MNT {}: {e}", spec.shown_export()),
                    "; is this port nfsd's NFS port (not its control API)?",
                ));
            }
            Ok(Err(ConnectFailure::Status(what, s))) => {
                return Err(Self::failed(
                    spec,
                    target,
                    format!("{what} of the export root: {s}"),
                    "; see nfsd's log",
                ));
            }
            Ok(Err(ConnectFailure::Rpc(e))) => {
                return Err(Self::failed(spec, target, e, "; see nfsd's log"));
            }
        };

        let label = format!("{}:{}", spec.server, spec.shown_export());
        let fs = fs::NfsFs::new(fs::Setup {
            rt: self.rt().clone(),
            pool: Pool::new(spec.server, self.options.pool, Some(reached.client)),
            root: reached.root,
            root_fileid: reached.root_fileid,
            rtmax: reached.rtmax,
            wtmax: reached.wtmax,
            ttl: self.options.ttl,
            label: label.clone(),
        });
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(format!("swarmhub:{label}")),
            MountOption::Subtype("swarmhub".into()),
            MountOption::DefaultPermissions,
            MountOption::NoDev,
            MountOption::NoSuid,
            if spec.readonly {
                MountOption::RO
            } else {
                MountOption::RW
            },
        ];
        config.acl = SessionACL::All;
        config.n_threads = Some(self.options.threads.max(1));
        config.clone_fd = true;
        let mut session = Session::new(fs, &key, &config).map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => {
                    "; /dev/fuse is missing: give the plugin the device (config.json linux.devices) and load the fuse module"
                }
                Some(libc::EPERM) | Some(libc::EACCES) => {
                    "; mounting FUSE needs CAP_SYS_ADMIN (and /dev/fuse access) in the plugin"
                }
                Some(libc::ENOTCONN) => "; the target is a stale mount that could not be detached",
                _ => "",
            };
            let cause = format!("FUSE mount: {e}");
            Self::failed(spec, target, cause, hint)
        })?;
        let unmounter = session.unmount_callable();
        let thread = std::thread::Builder::new()
            .name("swarmhub-fuse".into())
            .spawn(move || session.run())
            .map_err(|e| {
                Self::failed(spec, target, format!("starting the FUSE session: {e}"), "")
            })?;
        tracing::info!(
            target = %key.display(),
            server = %spec.server,
            export = %spec.shown_export(),
            readonly = spec.readonly,
            took = ?started.elapsed(),
            "mounted with FUSE"
        );
        self.lock().insert(
            key,
            Mounted {
                spec: spec.clone(),
                unmounter,
                thread,
            },
        );
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), MountError> {
        let key = mount_key(target);
        let owned = self.lock().remove(&key);
        let r = match owned {
            Some(m) => Self::drop_mount(&key, m),
            None if is_mounted(&key) => unmount_path(&key),
            None => Ok(()),
        };
        r.map_err(|e| MountError::Unmount {
            target: target.display().to_string(),
            cause: e.to_string(),
        })
    }
}

impl Drop for FuseMounter {
    fn drop(&mut self) {
        let mounts: Vec<_> = self.lock().drain().collect();
        for (target, m) in mounts {
            if let Err(e) = Self::drop_mount(&target, m) {
                tracing::warn!(target = %target.display(), error = %e, "unmount at shutdown failed");
            }
        }
        // The sessions' file systems hold the runtime too; whoever drops the last reference
        // must not be inside an async context, so shut it down in the background if it is ours.
        if let Some(rt) = self.rt.take()
            && let Ok(rt) = Arc::try_unwrap(rt)
        {
            rt.shutdown_background();
        }
    }
}
