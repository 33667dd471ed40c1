//! The TCP listener and per-connection loop. The listener owns the limits: a cap on connections
//! (refused ones are closed at once), an allowlist of client networks, a cap on in-flight calls
//! per connection (reading stops until one finishes: back-pressure, not errors), a record size
//! cap, and an idle timeout. Shutdown is one token fanned out: the listener stops accepting,
//! connections stop reading, calls in flight finish and their replies are written.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::message::{CallHeader, HeaderError, auth_error, parse_call};
use super::record::{RecordError, read_record};

/// Limits enforced on every peer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest RPC record accepted (a 1 MiB WRITE plus headers needs a little over 1 MiB).
    pub max_record: usize,
    /// Concurrent connections; more are closed on accept.
    pub max_connections: usize,
    /// Calls processed at once per connection.
    pub max_in_flight: usize,
    /// A connection with no complete record for this long and nothing in flight is closed.
    pub idle_timeout: Duration,
    /// Client networks allowed to connect; empty means everyone.
    pub allow: Vec<IpNet>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_record: (1 << 20) + 64 * 1024,
            max_connections: 512,
            max_in_flight: 128,
            idle_timeout: Duration::from_secs(360),
            allow: Vec::new(),
        }
    }
}

/// One call as the service receives it.
#[derive(Debug)]
pub struct Request {
    pub peer: SocketAddr,
    pub header: CallHeader,
    /// The whole record; arguments start at `header.args_at`.
    pub record: Vec<u8>,
}

impl Request {
    pub fn args(&self) -> &[u8] {
        &self.record[self.header.args_at..]
    }
}

/// What answers calls. Returns a framed reply, or `None` to send nothing.
pub trait Service: Send + Sync + 'static {
    fn call(&self, req: Request) -> impl Future<Output = Option<Vec<u8>>> + Send;
}

/// Events the server reports for metrics.
pub trait Events: Send + Sync + 'static {
    fn connection_opened(&self) {}
    fn connection_closed(&self) {}
    fn connection_refused(&self, _why: &'static str) {}
    fn bad_record(&self, _why: &'static str) {}
}

/// Ignores all events.
pub struct NoEvents;
impl Events for NoEvents {}

/// Accepts connections until `shutdown` fires, then waits for open connections to drain.
pub async fn serve<S: Service, E: Events>(
    listener: TcpListener,
    service: Arc<S>,
    events: Arc<E>,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let tracker = TaskTracker::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (socket, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(10);
                x
            }
            Err(e) => {
                // EMFILE and friends: wait a little instead of spinning
                tracing::warn!("accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if !limits.allow.is_empty() && !limits.allow.iter().any(|n| n.contains(&peer.ip())) {
            tracing::warn!(%peer, "connection refused: address not in the allowed client networks");
            events.connection_refused("not_allowed");
            continue;
        }
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many connections");
            events.connection_refused("too_many");
            continue;
        };
        let service = service.clone();
        let events = events.clone();
        let limits = limits.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            events.connection_opened();
            let _ = socket.set_nodelay(true);
            connection(socket, peer, service, events.clone(), limits, shutdown).await;
            events.connection_closed();
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

async fn connection<S: Service, E: Events>(
    socket: TcpStream,
    peer: SocketAddr,
    service: Arc<S>,
    events: Arc<E>,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
) {
    tracing::debug!(%peer, "connection opened");
    let (mut rd, mut wr) = socket.into_split();
    // a reply travels with its call's in-flight permit, given back only once it is written: a
    // client that never reads its replies holds at most max_in_flight calls and replies in
    // memory, then nfsd stops reading from it
    let (tx, mut rx) =
        mpsc::channel::<(Vec<u8>, OwnedSemaphorePermit)>(limits.max_in_flight.max(1));
    let writer = tokio::spawn(async move {
        while let Some((frame, permit)) = rx.recv().await {
            let written = wr.write_all(&frame).await;
            drop(permit);
            if let Err(e) = written {
                tracing::debug!(%peer, "writing a reply failed: {e}");
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    let calls = TaskTracker::new();
    loop {
        // wait for a free slot first: a full connection stops reading
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = in_flight.clone().acquire_owned() => p.expect("semaphore never closed"),
        };
        let idle = in_flight.available_permits() + 1 == limits.max_in_flight.max(1);
        let read = read_record(&mut rd, limits.max_record);
        let record = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = tokio::time::timeout(limits.idle_timeout, read) => match r {
                Err(_) if idle => {
                    tracing::info!(%peer, "closing idle connection");
                    break;
                }
                Err(_) => {
                    tracing::warn!(%peer, "closing connection: no complete record within the idle timeout");
                    break;
                }
                Ok(Ok(Some(rec))) => rec,
                Ok(Ok(None)) => break,
                Ok(Err(RecordError::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    tracing::debug!(%peer, "connection reset by the client");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(%peer, "closing connection: {e}");
                    events.bad_record(match e {
                        RecordError::TooLarge { .. } => "too_large",
                        RecordError::Truncated => "truncated",
                        RecordError::Io(_) => "io",
                    });
                    break;
                }
            },
        };
        let header = match parse_call(&record) {
            Ok(h) => h,
            Err(HeaderError::NotACall) => {
                tracing::warn!(%peer, len = record.len(), "closing connection: record is not an RPC call");
                events.bad_record("not_a_call");
                break;
            }
            Err(HeaderError::BadCredential { xid }) => {
                events.bad_record("bad_credential");
                let reply = auth_error(xid, nfs3_types::rpc::auth_stat::AUTH_BADCRED);
                if tx.send((reply, permit)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let service = service.clone();
        let tx = tx.clone();
        calls.spawn(async move {
            let reply = service
                .call(Request {
                    peer,
                    header,
                    record,
                })
                .await;
            if let Some(reply) = reply {
                let _ = tx.send((reply, permit)).await;
            }
        });
    }
    calls.close();
    calls.wait().await;
    drop(tx);
    let _ = writer.await;
    tracing::debug!(%peer, "connection closed");
}
