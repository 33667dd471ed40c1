//! Assembles a running nfsd from [`Settings`]: opens the data root, loads the handle key and the
//! registry, binds the NFS and API listeners, and runs both until the shutdown token fires
//! (SIGTERM/SIGINT in the binary). In-process tests start it the same way on port 0.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::config::Settings;
use crate::fs::handle::HandleCodec;
use crate::fs::replay::RenameLog;
use crate::fs::{Fs, FsOptions};
use crate::identity::ldap::LdapDirectory;
use crate::metrics::Metrics;
use crate::nfs::NfsService;
use crate::nfs::mount::MountPolicy;
use crate::volumes::Volumes;

/// How long shutdown waits for calls in flight before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// A started server.
pub struct Running {
    pub nfs_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub volumes: Arc<Volumes>,
    pub token: String,
    shutdown: CancellationToken,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
}

impl Running {
    /// Token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until both listeners have stopped (after the token fires, or on a fatal error).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        while let Some(r) = self.tasks.join_next().await {
            let r = r.context("server task panicked").and_then(|r| r);
            if let Err(e) = r {
                self.shutdown.cancel();
                result = Err(e);
            }
        }
        result
    }

    /// Stops the server and waits, at most [`SHUTDOWN_GRACE`] plus a little.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), self.wait())
            .await
            .unwrap_or_else(|_| bail!("shutdown took longer than {SHUTDOWN_GRACE:?}"))
    }
}

/// Checks what nfsd needs from the system before it accepts anything.
fn preflight(settings: &Settings) -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!(
            "swarmhub-nfsd must run as root (it opens files by handle and acts as each volume's owner); it runs as uid {}",
            rustix::process::geteuid().as_raw()
        );
    }
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data dir {}", settings.data_dir.display()))?;
    Ok(())
}

/// What answers NFS and MOUNT calls, as [`assemble`] builds it.
pub struct Core {
    /// The NFS and MOUNT service: [`crate::rpc::Service::call`] answers one call, given the
    /// record a connection read after record framing and its parsed header.
    pub service: Arc<NfsService>,
    pub volumes: Arc<Volumes>,
    pub metrics: Arc<Metrics>,
}

/// Builds the NFS and MOUNT service over `settings.data_dir` exactly as [`start`] does (checks,
/// umask 0, handle key, LDAP directory, volume registry and views, the data root's file handle
/// support), without listeners or the control API. [`start`] serves it on TCP; in-process
/// harnesses (the `nfs_calls` fuzz target) call it directly. Needs root, like [`start`].
pub fn assemble(settings: &Settings) -> anyhow::Result<Core> {
    preflight(settings)?;
    // new files and directories get exactly the mode clients ask for
    rustix::process::umask(rustix::fs::Mode::empty());
    let root = &settings.data_dir;
    let codec = HandleCodec::load_or_create(&root.join("handle.key"))
        .with_context(|| format!("loading the handle key in {}", root.display()))?;
    let directory = settings
        .ldap
        .clone()
        .map(|l| Arc::new(LdapDirectory::new(l)));
    let volumes = Arc::new(
        Volumes::open(root, directory, codec.mount_capabilities())
            .with_context(|| format!("opening data dir {}", root.display()))?,
    );
    let mount: OwnedFd = std::fs::File::open(root)
        .with_context(|| format!("opening data dir {}", root.display()))?
        .into();
    // prove open_by_handle_at works here before clients depend on it
    {
        use std::os::fd::AsFd;
        let kh = crate::fs::kernel::name_to_handle(mount.as_fd(), c"")
            .context("the data dir's file system does not give out file handles (name_to_handle_at); use ext4, xfs or btrfs")?;
        crate::fs::kernel::open_by_handle(mount.as_fd(), &kh, libc::O_PATH).context(
            "open_by_handle_at failed: nfsd needs CAP_DAC_READ_SEARCH (add it to the container or service)",
        )?;
    }
    let metrics = Metrics::new();
    let fs = Arc::new(Fs::new(
        mount,
        FsOptions {
            sync_metadata: settings.sync_metadata,
            open_files: open_files_budget(),
        },
        metrics.dir_flushes.clone(),
    ));
    let service = Arc::new(NfsService {
        volumes: volumes.clone(),
        fs,
        codec,
        metrics: metrics.clone(),
        mounts: MountPolicy::new(settings.bare_mounts),
        renames: Arc::new(
            RenameLog::open(&root.join("rename-replay"))
                .with_context(|| format!("opening {}", root.join("rename-replay").display()))?,
        ),
    });
    Ok(Core {
        service,
        volumes,
        metrics,
    })
}

/// How many descriptors nfsd may keep open by handle: raises the soft `RLIMIT_NOFILE` to the
/// hard one (connections, the data root and the kept descriptors all count against it), then
/// keeps a quarter of it at most.
fn open_files_budget() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(
                "could not raise the open file limit to {:?}: {e}",
                limit.maximum
            );
        }
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let budget = usize::try_from(soft / 4)
        .unwrap_or(usize::MAX)
        .min(crate::fs::DEFAULT_OPEN_FILES);
    if budget < crate::fs::DEFAULT_OPEN_FILES {
        tracing::warn!(
            soft_limit = soft,
            budget,
            "the open file limit is low: fewer descriptors are kept open by handle; raise LimitNOFILE / --ulimit nofile"
        );
    }
    budget
}

/// Starts nfsd with `settings`.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let Core {
        service,
        volumes,
        metrics,
    } = assemble(&settings)?;
    let root = &settings.data_dir;
    let token = settings.load_token()?;
    let nfs_listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding the NFS listener to {}", settings.listen))?;
    let api_listener = TcpListener::bind(settings.api_listen)
        .await
        .with_context(|| format!("binding the control API to {}", settings.api_listen))?;
    let nfs_addr = nfs_listener.local_addr()?;
    let api_addr = api_listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    {
        // descriptors kept by handle that nobody used for a while are closed
        let fs = service.fs.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(crate::fs::open_files::IDLE / 3);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tick.tick() => fs.open_files.sweep(crate::fs::open_files::IDLE),
                };
            }
        });
    }
    {
        let shutdown = shutdown.clone();
        let limits = settings.limits.clone();
        let metrics = metrics.clone();
        tasks.spawn(async move {
            crate::rpc::serve(nfs_listener, Arc::new(service), metrics, limits, shutdown)
                .await
                .context("NFS listener failed")
        });
    }
    {
        let state = ApiState {
            volumes: volumes.clone(),
            metrics,
            token: token.clone().into(),
            nfs_listen: nfs_addr.to_string(),
            started: Instant::now(),
        };
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(api_listener, api::router(state))
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
                .context("control API failed")
        });
    }
    tracing::info!(nfs = %nfs_addr, api = %api_addr, data_dir = %root.display(), volumes = volumes.count(), "swarmhub-nfsd started");
    Ok(Running {
        nfs_addr,
        api_addr,
        volumes,
        token,
        shutdown,
        tasks,
    })
}
