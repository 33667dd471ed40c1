//! swarmhub-nfsd: a userspace NFSv3 server (MOUNT and NFS on one TCP port) that serves one export
//! per Docker volume from a local data directory, maps identities per volume, keeps file handles
//! valid across restarts, and offers an HTTP control API. `main.rs` only parses arguments and
//! calls [`run`]. Layers: `rpc` (transport) → `nfs` (procedures) → `fs` (operations on views);
//! `volumes` (registry and views), `identity` (LDAP), `api` (control API), `server` (assembly).

pub mod api;
pub mod config;
pub mod fs;
pub mod identity;
pub mod metrics;
pub mod nfs;
pub mod rpc;
pub mod server;
pub mod volumes;

/// Runs nfsd until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(settings: config::Settings) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let running = server::start(settings).await?;
    let token = running.shutdown_token();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            _ = token.cancelled() => {}
        }
        token.cancel();
    });
    let deadline = server::SHUTDOWN_GRACE + std::time::Duration::from_secs(1);
    let shutdown = running.shutdown_token();
    let wait = running.wait();
    tokio::pin!(wait);
    tokio::select! {
        r = &mut wait => r,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(deadline).await } => {
            tracing::warn!("calls still in flight after {deadline:?}; exiting anyway");
            Ok(())
        }
    }
}
