//! The TCP listener and per-connection loop. The listener owns the limits: a cap on connections
//! (refused ones are closed at once), an allowlist of client networks, a cap on in-flight calls
//! per connection (reading stops until one finishes: back-pressure, not errors), a record size
//! cap, and an idle timeout. Shutdown is one token fanned out: the listener stops accepting,
//! connections stop reading, calls in flight finish and their replies are written.
//!
//! The hot path has no hops: records are read through a buffer (pipelined calls arrive in one
//! read), a call the service marks [`Service::inline`] is answered on the connection's own task,
//! any other gets a task of its own, and whichever task computed a reply writes it to the socket
//! itself ([`Replies`]); replies that are ready together leave in one vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::BufReader;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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

    /// Whether a call is cheap and never waits (no disk flush, no lock held by another call), so
    /// it is answered on the connection's own task, in order, before the next record is read:
    /// no task spawned, no thread woken. Everything else runs in a task of its own.
    fn inline(&self, _header: &CallHeader) -> bool {
        false
    }
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

/// Read buffer of a connection: small calls that a client pipelines arrive in one read; a large
/// WRITE's data bypasses it and lands in its record directly.
const READ_BUFFER: usize = 64 * 1024;

async fn connection<S: Service, E: Events>(
    socket: TcpStream,
    peer: SocketAddr,
    service: Arc<S>,
    events: Arc<E>,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
) {
    tracing::debug!(%peer, "connection opened");
    let (rd, wr) = socket.into_split();
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let replies = Arc::new(Replies::new(peer, wr));
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    let calls = TaskTracker::new();
    loop {
        // wait for a free slot first: a full connection stops reading. A reply travels with its
        // call's permit, given back only once it is written: a client that never reads its
        // replies holds at most max_in_flight calls and replies in memory
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
                if !replies.send(reply, permit).await {
                    break;
                }
                continue;
            }
        };
        let req = Request {
            peer,
            header,
            record,
        };
        if service.inline(&req.header) {
            if let Some(reply) = service.call(req).await
                && !replies.send(reply, permit).await
            {
                break;
            }
            continue;
        }
        let service = service.clone();
        let replies = replies.clone();
        calls.spawn(async move {
            if let Some(reply) = service.call(req).await {
                replies.send(reply, permit).await;
            }
        });
    }
    calls.close();
    calls.wait().await;
    // every reply is written (or the socket failed); dropping the write half shuts it down
    drop(replies);
    tracing::debug!(%peer, "connection closed");
}

/// The write side of a connection. The task that computed a reply writes it; if another task is
/// writing at that moment, the reply joins a queue which that writer drains before it lets go,
/// so replies ready at the same time leave together in one `writev`, in the order they joined.
struct Replies {
    peer: SocketAddr,
    wr: OwnedWriteHalf,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<(Vec<u8>, OwnedSemaphorePermit)>,
    /// A task is writing and will drain `frames` before it stops.
    writing: bool,
    /// A write failed: the connection is going away, replies are dropped.
    broken: bool,
}

impl Replies {
    fn new(peer: SocketAddr, wr: OwnedWriteHalf) -> Self {
        Self {
            peer,
            wr,
            queue: Mutex::new(Queue::default()),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // the lock is never held across a panic point that leaves the queue inconsistent
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one framed reply; its permit is released once it is written. False once the
    /// connection can no longer be written to.
    async fn send(&self, frame: Vec<u8>, permit: OwnedSemaphorePermit) -> bool {
        {
            let mut q = self.queue();
            if q.broken {
                return false;
            }
            q.frames.push_back((frame, permit));
            if q.writing {
                return true;
            }
            q.writing = true;
        }
        loop {
            let batch: Vec<_> = {
                let mut q = self.queue();
                if q.frames.is_empty() {
                    q.writing = false;
                    return true;
                }
                q.frames.drain(..).collect()
            };
            if let Err(e) = self.write_all(&batch).await {
                tracing::debug!(peer = %self.peer, "writing a reply failed: {e}");
                let mut q = self.queue();
                q.broken = true;
                q.writing = false;
                q.frames.clear();
                return false;
            }
            // the permits of the batch are released here
        }
    }

    async fn write_all(&self, batch: &[(Vec<u8>, OwnedSemaphorePermit)]) -> std::io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|(f, _)| IoSlice::new(f)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match self.wr.try_write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.wr.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
