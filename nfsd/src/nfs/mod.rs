//! The NFS service: routes each RPC call to MOUNT or NFSv3, decodes its arguments with
//! `nfs3_types`, resolves handles to views, runs the file system operation (in place for the
//! quick procedures, on a thread that may block for the others), and records metrics. The
//! procedures themselves live in [`mount`] and [`nfs3`].

pub mod mount;
pub mod nfs3;
pub mod precheck;

use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use nfs3_types::nfs3::{nfs_fh3, nfsstat3};
use nfs3_types::rpc::{accept_stat_data, auth_stat, rejected_reply};
use nfs3_types::xdr_codec::Unpack;

use crate::fs::handle::HandleCodec;
use crate::fs::kernel::KernelHandle;
use crate::fs::{Fs, View};
use crate::metrics::Metrics;
use crate::rpc::message::{self, Credential, PackInto};
use crate::rpc::{Request, Service};
use crate::volumes::Volumes;

/// Everything a procedure needs.
pub struct NfsService {
    pub volumes: Arc<Volumes>,
    pub fs: Arc<Fs>,
    pub codec: HandleCodec,
    pub metrics: Arc<Metrics>,
    /// What MNT accepts, and the log of refused mounts.
    pub mounts: mount::MountPolicy,
    /// Recent RENAMEs, so that a resend after a restart is answered as the first copy was.
    pub renames: Arc<crate::fs::replay::RenameLog>,
}

/// Outcome of one procedure: the result to pack and, for metrics, its status when not OK.
pub struct Outcome {
    pub result: Box<dyn PackInto + Send>,
    pub error: Option<nfsstat3>,
}

impl Outcome {
    pub fn ok(result: impl PackInto + Send + 'static) -> Self {
        Self {
            result: Box::new(result),
            error: None,
        }
    }
    pub fn with(result: impl PackInto + Send + 'static, error: Option<nfsstat3>) -> Self {
        Self {
            result: Box::new(result),
            error,
        }
    }
}

/// A procedure's reply before framing.
pub enum Answer {
    Done(Outcome),
    /// The arguments did not decode.
    Garbage,
    /// No such procedure.
    NoProc,
}

/// Decodes arguments that must use the whole argument area.
pub fn decode<T: Unpack>(args: &[u8]) -> Option<T> {
    let mut c = Cursor::new(args);
    let (v, n) = T::unpack(&mut c).ok()?;
    (n == args.len()).then_some(v)
}

impl NfsService {
    /// The view and kernel handle a wire handle names: forged or malformed → BADHANDLE, a
    /// removed volume → STALE.
    pub fn resolve(&self, fh: &nfs_fh3) -> Result<(Arc<View>, KernelHandle), nfsstat3> {
        let d = self
            .codec
            .decode(&fh.data)
            .map_err(|_| nfsstat3::NFS3ERR_BADHANDLE)?;
        let view = self
            .volumes
            .view(d.view_id)
            .ok_or(nfsstat3::NFS3ERR_STALE)?;
        Ok((view, d.kernel))
    }

    /// The wire handle of `kh` in `view`.
    pub fn handle(&self, view: &View, kh: &KernelHandle) -> nfs_fh3 {
        nfs_fh3 {
            data: nfs3_types::xdr_codec::Opaque::owned(self.codec.encode(view.id, kh)),
        }
    }

    /// Runs a quick file system operation right here, on the connection's task: only for the
    /// procedures of [`nfs3::answered_inline`].
    pub fn in_place<T>(&self, f: impl FnOnce(&Fs) -> Result<T, nfsstat3>) -> Result<T, nfsstat3> {
        f(&self.fs)
    }

    /// Runs a file system operation, which may block. On the multi-threaded runtime it runs in
    /// place (`block_in_place` hands this worker's other tasks to another thread), which saves the
    /// two thread hops of `spawn_blocking` that dominated the cost of a GETATTR; on a
    /// current-thread runtime (tests) it goes to the blocking pool.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Fs) -> Result<T, nfsstat3> + Send + 'static,
    ) -> Result<T, nfsstat3> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
            return tokio::task::block_in_place(|| f(&self.fs));
        }
        let fs = self.fs.clone();
        tokio::task::spawn_blocking(move || f(&fs))
            .await
            .unwrap_or_else(|e| {
                tracing::error!("file system operation failed: {e}");
                Err(nfsstat3::NFS3ERR_SERVERFAULT)
            })
    }
}

impl Service for Arc<NfsService> {
    fn inline(&self, h: &message::CallHeader) -> bool {
        h.prog == nfs3_types::nfs3::PROGRAM
            && h.vers == nfs3_types::nfs3::VERSION
            && nfs3::answered_inline(h.proc_)
    }

    async fn call(&self, req: Request) -> Option<Vec<u8>> {
        let h = &req.header;
        let (xid, peer) = (h.xid, req.peer);
        if h.rpcvers != 2 {
            return Some(message::denied(
                xid,
                rejected_reply::RPC_MISMATCH { low: 2, high: 2 },
            ));
        }
        if let Credential::Other(flavor) = h.cred {
            tracing::debug!(peer = %req.peer, flavor, "refusing an unsupported credential flavor");
            return Some(message::auth_error(xid, auth_stat::AUTH_TOOWEAK));
        }
        let (name, answer) = match (h.prog, h.vers) {
            (nfs3_types::nfs3::PROGRAM, nfs3_types::nfs3::VERSION) => {
                let name = nfs3::name(h.proc_);
                let start = Instant::now();
                let answer = if precheck::nfs_args_bounded(h.proc_, req.args()) {
                    nfs3::dispatch(self, req).await
                } else {
                    Answer::Garbage
                };
                (Some((name, start)), answer)
            }
            (nfs3_types::mount::PROGRAM, nfs3_types::mount::VERSION) => {
                let name = mount::name(h.proc_);
                let start = Instant::now();
                let answer = if precheck::mount_args_bounded(h.proc_, req.args()) {
                    mount::dispatch(self, &req).await
                } else {
                    Answer::Garbage
                };
                (Some((name, start)), answer)
            }
            (nfs3_types::nfs3::PROGRAM, _) | (nfs3_types::mount::PROGRAM, _) => {
                return Some(message::accept_error(
                    xid,
                    accept_stat_data::PROG_MISMATCH { low: 3, high: 3 },
                ));
            }
            _ => {
                tracing::debug!(peer = %req.peer, prog = h.prog, "call to an unknown program");
                return Some(message::accept_error(xid, accept_stat_data::PROG_UNAVAIL));
            }
        };
        let (proc_name, start) = name.expect("set for known programs");
        let pm = self.metrics.procedure(proc_name);
        match answer {
            Answer::Done(out) => {
                let frame = message::success(xid, out.result.as_ref());
                let err = out.error.map(|s| format!("{s:?}"));
                self.metrics.observe(pm, start.elapsed(), err.as_deref());
                Some(frame)
            }
            Answer::Garbage => {
                tracing::warn!(%peer, procedure = proc_name, "arguments do not decode");
                self.metrics
                    .observe(pm, start.elapsed(), Some("GARBAGE_ARGS"));
                Some(message::accept_error(xid, accept_stat_data::GARBAGE_ARGS))
            }
            Answer::NoProc => {
                self.metrics
                    .observe(pm, start.elapsed(), Some("PROC_UNAVAIL"));
                Some(message::accept_error(xid, accept_stat_data::PROC_UNAVAIL))
            }
        }
    }
}
