//! Runs the plugin: loads state, listens on the socket within moments of start (Docker disables
//! a plugin whose socket is not up within ~9 s), reconciles mounts and reaps leaked ones in the
//! background, and exits cleanly on SIGTERM (the plugin is PID 1 of its namespace, so without a
//! handler SIGTERM would be ignored and Docker would wait 10 s to kill it).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Backend, ServeArgs};
use crate::driver::{Driver, DriverConfig, NfsdProvisioner, Provisioner};
use crate::mounter::Mounter;
use crate::mounter::kernel::KernelMounter;

/// The mount backend chosen by the settings.
pub fn mounter(backend: Backend) -> anyhow::Result<Arc<dyn Mounter>> {
    Ok(match backend {
        Backend::Kernel => Arc::new(KernelMounter),
        Backend::Fuse => {
            Arc::new(crate::mounter::fuse::FuseMounter::new().context("starting the FUSE backend")?)
        }
    })
}

/// Builds the driver from settings.
pub fn driver<P: Provisioner>(
    args: &ServeArgs,
    mounter: Arc<dyn Mounter>,
    provisioner: Arc<P>,
) -> anyhow::Result<Driver<P>> {
    Driver::open(
        DriverConfig {
            mount_root: args.mount_root.clone(),
            state_dir: args.state_dir.clone(),
            server: args.nfs_address(),
            extra_options: args.mount_options.clone(),
            mount_timeout: args.mount_timeout(),
            home_prefix: Some(args.home_prefix.clone()).filter(|p| !p.is_empty()),
        },
        mounter,
        provisioner,
    )
    .with_context(|| format!("loading plugin state from {}", args.state_dir.display()))
}

/// Serves Docker on `args.socket` until `stop` fires.
pub async fn serve<P: Provisioner>(
    args: ServeArgs,
    driver: Arc<Driver<P>>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    if let Some(dir) = args.socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&args.socket);
    let listener = UnixListener::bind(&args.socket)
        .with_context(|| format!("listening on {}", args.socket.display()))?;
    tracing::info!(socket = %args.socket.display(), backend = driver.backend(), server = %args.nfs_address(), "swarmhub-nfs plugin listening");
    {
        let d = driver.clone();
        tokio::spawn(async move { d.reconcile().await });
    }
    if let Some(sock) = args.docker_socket.clone() {
        let d = driver.clone();
        let grace = Duration::from_secs(args.reap_grace_seconds);
        let stop = stop.clone();
        tokio::spawn(crate::reaper::run(
            d,
            crate::reaper::DockerQuery::new(sock),
            grace,
            stop,
        ));
    }
    axum::serve(listener, crate::api::router(driver))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .context("serving the plugin socket")?;
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}

/// The real provisioner for `args`.
pub fn provisioner(args: &ServeArgs) -> Arc<NfsdProvisioner> {
    Arc::new(NfsdProvisioner {
        base_url: args.api_url(),
        token_file: args.token_file.clone(),
        timeout: Duration::from_secs(20),
    })
}
