//! The MOUNT protocol (v3): `MNT /<volume>` returns the view's root handle; EXPORT lists the
//! volumes; UMNT and UMNTALL are accepted (nfsd keeps no mount list, so DUMP is empty).

use nfs3_types::mount::{
    MOUNT_PROGRAM, dirpath, export_node, exports, fhandle3, mountlist, mountres3, mountres3_ok,
    mountstat3,
};
use nfs3_types::xdr_codec::{List, Opaque, Void};

use super::{Answer, NfsService, Outcome, decode};
use crate::rpc::Request;

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
            let list: exports<'static, 'static> = List(
                svc.volumes
                    .exports()
                    .into_iter()
                    .map(|e| export_node {
                        ex_dir: dirpath(Opaque::owned(e.into_bytes())),
                        ex_groups: List::default(),
                    })
                    .collect(),
            );
            Answer::Done(Outcome::ok(list))
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
    let Ok(path) = std::str::from_utf8(path) else {
        return err(mountstat3::MNT3ERR_INVAL);
    };
    match svc.volumes.by_export(path) {
        Some(view) => {
            tracing::info!(peer = %req.peer, export = path, "mounted");
            let fh = svc.codec.encode(view.id, &view.root);
            Outcome::ok(mountres3::Ok(mountres3_ok {
                fhandle: fhandle3(Opaque::owned(fh)),
                // AUTH_SYS and AUTH_NONE: identity comes from the view, not the credential
                auth_flavors: vec![1, 0],
            }))
        }
        None => {
            tracing::info!(peer = %req.peer, export = path.escape_default().to_string(), "mount of an unknown export");
            err(mountstat3::MNT3ERR_NOENT)
        }
    }
}
