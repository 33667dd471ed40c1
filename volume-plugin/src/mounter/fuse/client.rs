//! A small pool of NFSv3 connections to one nfsd with reconnect-and-retry.
//!
//! `nfs3_client` runs one call at a time per connection, so concurrent FUSE callbacks each take
//! a connection of their own (at most `size` at once). A call that fails at the transport (nfsd
//! restarted, connection reset, no answer within the call timeout) drops its connection and is
//! sent again on a fresh one, with backoff, until `retry_for` has passed since the first failure.
//! nfsd's handles survive its restarts, so the same arguments are valid on the new connection.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nfs3_client::Nfs3Client;
use nfs3_client::RpcError;
use nfs3_types::nfs3::nfsstat3;
use nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_types::xdr_codec::Opaque;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// One NFSv3 connection.
pub type Client = Nfs3Client<Io>;

/// A TCP stream for `nfs3_client` that reports end of stream as an error. (`nfs3_client`'s
/// default `async_read_exact` loops forever on a read of 0 bytes, so a connection that nfsd
/// closed would hang the call until our timeout instead of failing at once.)
#[derive(Debug)]
pub struct Io(pub TcpStream);

impl nfs3_client::io::AsyncRead for Io {
    async fn async_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = tokio::io::AsyncReadExt::read(&mut self.0, buf).await?;
        if n == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "nfsd closed the connection",
            ));
        }
        Ok(n)
    }
}

impl nfs3_client::io::AsyncWrite for Io {
    async fn async_write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = tokio::io::AsyncWriteExt::write(&mut self.0, buf).await?;
        if n == 0 && !buf.is_empty() {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        Ok(n)
    }
}

/// Tunables of the connection pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Connections used at once.
    pub size: usize,
    /// A call without an answer after this long counts as a broken connection.
    pub call_timeout: Duration,
    /// How long a call keeps reconnecting and resending before it fails with EIO.
    pub retry_for: Duration,
    /// Timeout of one TCP connect.
    pub connect_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            size: 4,
            call_timeout: Duration::from_secs(60),
            retry_for: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The AUTH_SYS credential sent with every call. nfsd ignores it (the handle names the view
/// whose identity applies), so root is as good as anything.
pub fn credential() -> opaque_auth<'static> {
    opaque_auth::auth_unix(&auth_unix {
        stamp: 0,
        machinename: Opaque::owned(b"swarmhub-fuse".to_vec()),
        uid: 0,
        gid: 0,
        gids: vec![],
    })
}

/// Why a pooled call failed.
#[derive(Debug)]
pub enum CallError {
    /// The transport kept failing for the whole retry window.
    Gone(String),
    /// The server answered at the RPC level with an error (auth, garbage args, ...).
    Rpc(String),
}

/// A pool of connections to one server.
pub struct Pool {
    server: SocketAddr,
    config: PoolConfig,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("server", &self.server)
            .finish()
    }
}

impl Pool {
    /// A pool that already holds `first` (the connection the mount was made with).
    pub fn new(server: SocketAddr, config: PoolConfig, first: Option<Client>) -> Pool {
        Pool {
            server,
            config,
            idle: Mutex::new(first.into_iter().collect()),
            permits: Semaphore::new(config.size.max(1)),
        }
    }

    /// Opens one NFS connection (no MOUNT call: handles are all nfsd needs).
    pub async fn connect(&self) -> std::io::Result<Client> {
        let stream =
            tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(self.server))
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no TCP connection within {:?}", self.config.connect_timeout),
                    )
                })??;
        let _ = stream.set_nodelay(true);
        Ok(Client::new_with_auth(
            Io(stream),
            credential(),
            opaque_auth::default(),
        ))
    }

    fn take_idle(&self) -> Option<Client> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn put_idle(&self, c: Client) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }

    /// Runs `f` on a pooled connection, reconnecting and resending after transport failures.
    /// Returns the answer and whether the call was sent more than once (a resent non-idempotent
    /// call may see the effect of its first attempt, e.g. NOENT from a repeated REMOVE).
    pub async fn call<R>(
        &self,
        what: &'static str,
        mut f: impl AsyncFnMut(&mut Client) -> Result<R, RpcError>,
    ) -> Result<(R, bool), CallError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CallError::Gone("connection pool closed".into()))?;
        let mut first_failure: Option<Instant> = None;
        let mut delay = Duration::from_millis(50);
        let mut sent = false;
        loop {
            let failure = match self.take_idle() {
                Some(c) => Ok(c),
                None => self.connect().await,
            };
            let cause = match failure {
                Err(e) => format!("connecting to nfsd at {}: {e}", self.server),
                Ok(mut client) => {
                    let resent = sent;
                    sent = true;
                    match tokio::time::timeout(self.config.call_timeout, f(&mut client)).await {
                        Ok(Ok(r)) => {
                            self.put_idle(client);
                            return Ok((r, resent));
                        }
                        Ok(Err(e)) if e.is_connection_reusable() => {
                            self.put_idle(client);
                            return Err(CallError::Rpc(format!("{what}: {e}")));
                        }
                        Ok(Err(e)) => format!("{what} to nfsd at {}: {e}", self.server),
                        Err(_) => format!(
                            "{what} to nfsd at {}: no answer within {:?}",
                            self.server, self.config.call_timeout
                        ),
                    }
                }
            };
            let since = *first_failure.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.config.retry_for {
                tracing::error!(%cause, "giving up after {:?}", self.config.retry_for);
                return Err(CallError::Gone(cause));
            }
            tracing::warn!(%cause, "nfsd connection failed; reconnecting");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
}

/// The errno for an NFSv3 status.
pub fn errno_of(s: nfsstat3) -> i32 {
    use nfsstat3::*;
    match s {
        NFS3_OK => 0,
        NFS3ERR_PERM => libc::EPERM,
        NFS3ERR_NOENT => libc::ENOENT,
        NFS3ERR_IO => libc::EIO,
        NFS3ERR_NXIO => libc::ENXIO,
        NFS3ERR_ACCES => libc::EACCES,
        NFS3ERR_EXIST => libc::EEXIST,
        NFS3ERR_XDEV => libc::EXDEV,
        NFS3ERR_NODEV => libc::ENODEV,
        NFS3ERR_NOTDIR => libc::ENOTDIR,
        NFS3ERR_ISDIR => libc::EISDIR,
        NFS3ERR_INVAL => libc::EINVAL,
        NFS3ERR_FBIG => libc::EFBIG,
        NFS3ERR_NOSPC => libc::ENOSPC,
        NFS3ERR_ROFS => libc::EROFS,
        NFS3ERR_MLINK => libc::EMLINK,
        NFS3ERR_NAMETOOLONG => libc::ENAMETOOLONG,
        NFS3ERR_NOTEMPTY => libc::ENOTEMPTY,
        NFS3ERR_DQUOT => libc::EDQUOT,
        NFS3ERR_STALE | NFS3ERR_BADHANDLE => libc::ESTALE,
        NFS3ERR_REMOTE => libc::EREMOTE,
        NFS3ERR_NOTSUPP => libc::EOPNOTSUPP,
        NFS3ERR_BADTYPE => libc::EINVAL,
        NFS3ERR_JUKEBOX => libc::EAGAIN,
        NFS3ERR_NOT_SYNC | NFS3ERR_BAD_COOKIE | NFS3ERR_TOOSMALL | NFS3ERR_SERVERFAULT => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_statuses() {
        assert_eq!(errno_of(nfsstat3::NFS3ERR_DQUOT), libc::EDQUOT);
        assert_eq!(errno_of(nfsstat3::NFS3ERR_ACCES), libc::EACCES);
        assert_eq!(errno_of(nfsstat3::NFS3ERR_NOTEMPTY), libc::ENOTEMPTY);
        assert_eq!(errno_of(nfsstat3::NFS3ERR_STALE), libc::ESTALE);
        assert_eq!(errno_of(nfsstat3::NFS3ERR_ROFS), libc::EROFS);
    }
}
