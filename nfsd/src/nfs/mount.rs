//! The MOUNT protocol (v3): `MNT /<volume>/<secret>` returns the view's root handle when the
//! secret is the view's capability ([`crate::volumes::capability`]); anything else is
//! `MNT3ERR_ACCES`, logged with the client's address (rate-limited). EXPORT lists nothing, so a
//! client learns no volume names; UMNT and UMNTALL are accepted (nfsd keeps no mount list, so
//! DUMP is empty).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use nfs3_types::mount::{
    MOUNT_PROGRAM, dirpath, exports, fhandle3, mountlist, mountres3, mountres3_ok, mountstat3,
};
use nfs3_types::xdr_codec::{Opaque, Void};

use super::{Answer, NfsService, Outcome, decode};
use crate::rpc::Request;
use crate::volumes::MountPath;

/// Refused mounts logged per [`REFUSAL_WINDOW`]; the rest are counted and summed up once.
pub const REFUSALS_LOGGED: u32 = 20;
/// The window of the refusal log's rate limit.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// What MNT accepts, and the rate-limited log of refused mounts.
#[derive(Debug)]
pub struct MountPolicy {
    /// Also accept a bare `/<volume>` (insecure; only for tests of the network defence).
    bare_mounts: bool,
    refusals: Mutex<RefusalLog>,
}

#[derive(Debug)]
struct RefusalLog {
    window_start: Instant,
    logged: u32,
    suppressed: u64,
}

/// Why a mount was refused (for the log; the client only ever sees `MNT3ERR_ACCES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// not `/<volume>` or `/<volume>/<secret>`, or not UTF-8
    Malformed,
    /// no such volume
    UnknownVolume,
    /// `/<volume>` without the secret
    NoSecret,
    /// a secret that is not this view's
    WrongSecret,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed mount path",
            Refusal::UnknownVolume => "no such volume",
            Refusal::NoSecret => "no capability secret",
            Refusal::WrongSecret => "wrong capability secret",
        }
    }
}

impl MountPolicy {
    pub fn new(bare_mounts: bool) -> Self {
        if bare_mounts {
            tracing::warn!(
                "bare_mounts is on: MNT /<volume> works without the volume's secret, so anyone who reaches nfsd's port can mount any volume; use it only to test the network defence"
            );
        }
        Self {
            bare_mounts,
            refusals: Mutex::new(RefusalLog {
                window_start: Instant::now(),
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Logs a refused mount, at most [`REFUSALS_LOGGED`] lines per [`REFUSAL_WINDOW`].
    fn log_refusal(&self, peer: &std::net::SocketAddr, volume: &str, why: Refusal) {
        let mut log = self.refusals.lock().expect("poisoned");
        if log.window_start.elapsed() >= REFUSAL_WINDOW {
            if log.suppressed > 0 {
                tracing::warn!(
                    suppressed = log.suppressed,
                    "more mounts were refused in the last {REFUSAL_WINDOW:?} than logged"
                );
            }
            *log = RefusalLog {
                window_start: Instant::now(),
                logged: 0,
                suppressed: 0,
            };
        }
        if log.logged < REFUSALS_LOGGED {
            log.logged += 1;
            tracing::warn!(%peer, volume, reason = why.as_str(), "mount refused");
        } else {
            log.suppressed += 1;
        }
    }
}

/// Metric name of a MOUNT procedure.
pub fn name(proc_: u32) -> &'static str {
    match MOUNT_PROGRAM::try_from(proc_) {
        Ok(MOUNT_PROGRAM::MOUNTPROC3_NULL) => "MOUNT_NULL",
        Ok(MOUNT_PROGRAM::MOUNTPROC3_MNT) => "MOUNT_MNT",
        Ok(MOUNT_PROGRAM::MOUNTPROC3_DUMP) => "MOUNT_DUMP",
        Ok(MOUNT_PROGRAM::MOUNTPROC3_UMNT) => "MOUNT_UMNT",
        Ok(MOUNT_PROGRAM::MOUNTPROC3_UMNTALL) => "MOUNT_UMNTALL",
        Ok(MOUNT_PROGRAM::MOUNTPROC3_EXPORT) => "MOUNT_EXPORT",
        Err(_) => "UNKNOWN",
    }
}

pub async fn dispatch(svc: &NfsService, req: &Request) -> Answer {
    let args = req.args();
    let Ok(proc_) = MOUNT_PROGRAM::try_from(req.header.proc_) else {
        return Answer::NoProc;
    };
    match proc_ {
        MOUNT_PROGRAM::MOUNTPROC3_NULL | MOUNT_PROGRAM::MOUNTPROC3_UMNTALL => {
            Answer::Done(Outcome::ok(Void))
        }
        MOUNT_PROGRAM::MOUNTPROC3_UMNT => match decode::<dirpath<'static>>(args) {
            Some(_) => Answer::Done(Outcome::ok(Void)),
            None => Answer::Garbage,
        },
        MOUNT_PROGRAM::MOUNTPROC3_DUMP => {
            Answer::Done(Outcome::ok(mountlist::<'static, 'static>::default()))
        }
        MOUNT_PROGRAM::MOUNTPROC3_EXPORT => {
            // volume names are not for whoever reaches the port; mount paths come from the API
            Answer::Done(Outcome::ok(exports::<'static, 'static>::default()))
        }
        MOUNT_PROGRAM::MOUNTPROC3_MNT => {
            let Some(path) = decode::<dirpath<'static>>(args) else {
                return Answer::Garbage;
            };
            Answer::Done(mnt(svc, req, &path.0))
        }
    }
}

fn mnt(svc: &NfsService, req: &Request, path: &[u8]) -> Outcome {
    let err = |stat: mountstat3| Outcome::ok(mountres3::Err(stat));
    if path.len() > nfs3_types::mount::MNTPATHLEN {
        return err(mountstat3::MNT3ERR_NAMETOOLONG);
    }
    let refuse = |volume: &str, why: Refusal| {
        svc.mounts.log_refusal(&req.peer, volume, why);
        err(mountstat3::MNT3ERR_ACCES)
    };
    let Some(parsed) = std::str::from_utf8(path).ok().and_then(MountPath::parse) else {
        let shown = String::from_utf8_lossy(path).escape_default().to_string();
        return refuse(&shown, Refusal::Malformed);
    };
    let Some(view) = svc.volumes.by_name(parsed.name) else {
        return refuse(
            &parsed.name.escape_default().to_string(),
            Refusal::UnknownVolume,
        );
    };
    let caps = svc.volumes.capabilities();
    match parsed.secret {
        Some(s) if caps.verify(view.id, parsed.name, s) => {}
        None if svc.mounts.bare_mounts => {}
        None => return refuse(parsed.name, Refusal::NoSecret),
        Some(_) => return refuse(parsed.name, Refusal::WrongSecret),
    }
    tracing::info!(peer = %req.peer, volume = parsed.name, "mounted");
    let fh = svc.codec.encode(view.id, &view.root);
    Outcome::ok(mountres3::Ok(mountres3_ok {
        fhandle: fhandle3(Opaque::owned(fh)),
        // AUTH_SYS and AUTH_NONE: identity comes from the view, not the credential
        auth_flavors: vec![1, 0],
    }))
}
