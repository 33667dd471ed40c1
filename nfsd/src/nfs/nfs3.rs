//! The NFSv3 procedures (RFC 1813): each decodes its arguments, resolves handles to a view,
//! runs one operation of [`crate::fs::ops`] on a blocking thread, and builds the reply with the
//! attributes the client caches. MKNOD makes FIFOs and sockets; device nodes are refused with
//! `NFS3ERR_PERM`. Share views refuse SYMLINK, MKNOD and LINK with `NFS3ERR_ACCES`. Handles of
//! two different views in one call (RENAME, LINK) are `NFS3ERR_XDEV`.

use nfs3_types::nfs3::*;
use nfs3_types::xdr_codec::{BoundedList, Opaque, Void};

use super::{Answer, NfsService, Outcome, decode};
use crate::fs::ops::{CreateHow, SpecialKind};
use crate::fs::replay::RenameLog;
use crate::rpc::Request;

/// Largest READ and WRITE we offer (and FSINFO advertises).
pub const MAX_IO: u32 = 1 << 20;

/// Procedures answered on the connection's task ([`crate::rpc::Service::inline`]): they read
/// attributes, names and links the kernel keeps cached, never flush anything, and each runs its
/// operation with [`NfsService::in_place`]. Everything else runs in a task of its own on a
/// thread that may block.
pub fn answered_inline(proc_: u32) -> bool {
    use NFS_PROGRAM::*;
    matches!(
        NFS_PROGRAM::try_from(proc_),
        Ok(NFSPROC3_NULL
            | NFSPROC3_GETATTR
            | NFSPROC3_LOOKUP
            | NFSPROC3_ACCESS
            | NFSPROC3_READLINK
            | NFSPROC3_FSSTAT
            | NFSPROC3_FSINFO
            | NFSPROC3_PATHCONF)
    )
}

/// Metric name of an NFS procedure.
pub fn name(proc_: u32) -> &'static str {
    crate::metrics::PROCEDURES
        .get(proc_ as usize)
        .filter(|_| proc_ <= 21)
        .copied()
        .unwrap_or("UNKNOWN")
}

fn done<
    T: nfs3_types::xdr_codec::Pack + Send + 'static,
    E: nfs3_types::xdr_codec::Pack + Send + 'static,
>(
    r: Nfs3Result<T, E>,
) -> Answer {
    let error = match &r {
        Nfs3Result::Ok(_) => None,
        Nfs3Result::Err((s, _)) => Some(*s),
    };
    Answer::Done(Outcome::with(r, error))
}

macro_rules! args {
    ($t:ty, $req:expr) => {
        match decode::<$t>($req.args()) {
            Some(a) => a,
            None => return Answer::Garbage,
        }
    };
}

pub async fn dispatch(svc: &NfsService, req: Request) -> Answer {
    let Ok(proc_) = NFS_PROGRAM::try_from(req.header.proc_) else {
        return Answer::NoProc;
    };
    use NFS_PROGRAM::*;
    match proc_ {
        NFSPROC3_NULL => match req.args().is_empty() {
            true => Answer::Done(Outcome::ok(Void)),
            false => Answer::Garbage,
        },
        NFSPROC3_GETATTR => done(getattr(svc, args!(GETATTR3args, req)).await),
        NFSPROC3_SETATTR => done(setattr(svc, args!(SETATTR3args, req)).await),
        NFSPROC3_LOOKUP => done(lookup(svc, args!(LOOKUP3args<'static>, req)).await),
        NFSPROC3_ACCESS => done(access(svc, args!(ACCESS3args, req)).await),
        NFSPROC3_READLINK => done(readlink(svc, args!(READLINK3args, req)).await),
        NFSPROC3_READ => done(read(svc, args!(READ3args, req)).await),
        NFSPROC3_WRITE => match WriteArgs::decode(req.args()) {
            Some(a) => done(write(svc, a, req).await),
            None => Answer::Garbage,
        },
        NFSPROC3_CREATE => done(create(svc, args!(CREATE3args<'static>, req)).await),
        NFSPROC3_MKDIR => done(mkdir(svc, args!(MKDIR3args<'static>, req)).await),
        NFSPROC3_SYMLINK => done(symlink(svc, args!(SYMLINK3args<'static>, req)).await),
        NFSPROC3_MKNOD => done(mknod(svc, args!(MKNOD3args<'static>, req)).await),
        NFSPROC3_REMOVE => {
            let a = args!(REMOVE3args<'static>, req);
            done(match remove(svc, a.object, false).await {
                Ok(dir_wcc) => REMOVE3res::Ok(REMOVE3resok { dir_wcc }),
                Err((s, dir_wcc)) => REMOVE3res::Err((s, REMOVE3resfail { dir_wcc })),
            })
        }
        NFSPROC3_RMDIR => {
            let a = args!(RMDIR3args<'static>, req);
            done(match remove(svc, a.object, true).await {
                Ok(dir_wcc) => RMDIR3res::Ok(RMDIR3resok { dir_wcc }),
                Err((s, dir_wcc)) => RMDIR3res::Err((s, RMDIR3resfail { dir_wcc })),
            })
        }
        NFSPROC3_RENAME => {
            let key = RenameLog::key(req.peer.ip(), req.header.xid, req.args());
            done(rename(svc, args!(RENAME3args<'static, 'static>, req), key).await)
        }
        NFSPROC3_LINK => done(link(svc, args!(LINK3args<'static>, req)).await),
        NFSPROC3_READDIR => done(readdir(svc, args!(READDIR3args, req)).await),
        NFSPROC3_READDIRPLUS => done(readdirplus(svc, args!(READDIRPLUS3args, req)).await),
        NFSPROC3_FSSTAT => done(fsstat(svc, args!(FSSTAT3args, req)).await),
        NFSPROC3_FSINFO => done(fsinfo(svc, args!(FSINFO3args, req)).await),
        NFSPROC3_PATHCONF => done(pathconf(svc, args!(PATHCONF3args, req)).await),
        NFSPROC3_COMMIT => done(commit(svc, args!(COMMIT3args, req)).await),
    }
}

/// Resolves a handle or returns the error reply built by `fail`.
macro_rules! resolve {
    ($svc:expr, $fh:expr, $fail:expr) => {
        match $svc.resolve(&$fh) {
            Ok(x) => x,
            Err(s) => return Nfs3Result::Err((s, $fail)),
        }
    };
}

async fn getattr(svc: &NfsService, a: GETATTR3args) -> GETATTR3res {
    let (view, kh) = resolve!(svc, a.object, Void);
    match svc.in_place(|fs| fs.getattr(&view, &kh)) {
        Ok(obj_attributes) => GETATTR3res::Ok(GETATTR3resok { obj_attributes }),
        Err(s) => GETATTR3res::Err((s, Void)),
    }
}

async fn setattr(svc: &NfsService, a: SETATTR3args) -> SETATTR3res {
    let (view, kh) = resolve!(svc, a.object, SETATTR3resfail::default());
    let guard = match a.guard {
        Nfs3Option::Some(t) => Some(t),
        Nfs3Option::None => None,
    };
    let set = a.new_attributes;
    let r = svc
        .blocking(move |fs| fs.setattr(&view, &kh, &set, guard))
        .await;
    match r {
        Ok(obj_wcc) => SETATTR3res::Ok(SETATTR3resok { obj_wcc }),
        Err(s) => SETATTR3res::Err((s, SETATTR3resfail::default())),
    }
}

async fn lookup(svc: &NfsService, a: LOOKUP3args<'static>) -> LOOKUP3res {
    let (view, dir) = resolve!(svc, a.what.dir, LOOKUP3resfail::default());
    let r = svc.in_place(|fs| fs.lookup(&view, &dir, &a.what.name.0));
    match r {
        Ok((obj, dir_attr)) => LOOKUP3res::Ok(LOOKUP3resok {
            object: svc.handle(&view, &obj.kh),
            obj_attributes: post_op_attr::Some(obj.attr),
            dir_attributes: post_op_attr::Some(dir_attr),
        }),
        Err(s) => {
            let dir_attributes = svc
                .in_place(|fs| Ok(fs.post_attr(&view, &dir)))
                .unwrap_or(post_op_attr::None);
            LOOKUP3res::Err((s, LOOKUP3resfail { dir_attributes }))
        }
    }
}

async fn access(svc: &NfsService, a: ACCESS3args) -> ACCESS3res {
    let (view, kh) = resolve!(svc, a.object, ACCESS3resfail::default());
    let asked = a.access;
    match svc.in_place(|fs| fs.access(&view, &kh, asked)) {
        Ok((access, attr)) => ACCESS3res::Ok(ACCESS3resok {
            obj_attributes: post_op_attr::Some(attr),
            access,
        }),
        Err(s) => ACCESS3res::Err((s, ACCESS3resfail::default())),
    }
}

async fn readlink(svc: &NfsService, a: READLINK3args) -> READLINK3res<'static> {
    let (view, kh) = resolve!(svc, a.symlink, READLINK3resfail::default());
    match svc.in_place(|fs| fs.readlink(&view, &kh)) {
        Ok((target, attr)) => READLINK3res::Ok(READLINK3resok {
            symlink_attributes: post_op_attr::Some(attr),
            data: nfspath3(Opaque::owned(target)),
        }),
        Err(s) => READLINK3res::Err((s, READLINK3resfail::default())),
    }
}

async fn read(svc: &NfsService, a: READ3args) -> READ3res<'static> {
    let (view, kh) = resolve!(svc, a.file, READ3resfail::default());
    let count = a.count.min(MAX_IO);
    let offset = a.offset;
    match svc
        .blocking(move |fs| fs.read(&view, &kh, offset, count))
        .await
    {
        Ok((data, eof, attr)) => {
            svc.metrics.read_bytes.inc_by(data.len() as u64);
            READ3res::Ok(READ3resok {
                file_attributes: post_op_attr::Some(attr),
                // fs.read returns at most `count` bytes
                count: u32::try_from(data.len()).unwrap_or(count),
                eof,
                data: Opaque::owned(data),
            })
        }
        Err(s) => READ3res::Err((s, READ3resfail::default())),
    }
}

/// WRITE's arguments with the data left where it arrived: a 1 MiB WRITE is not copied to be
/// decoded (`nfs3_types` decodes opaque data into a new buffer).
struct WriteArgs {
    file: nfs_fh3,
    offset: u64,
    count: u32,
    stable: stable_how,
    /// Where the data lies in the arguments.
    data: std::ops::Range<usize>,
}

impl WriteArgs {
    /// Decodes WRITE3args (RFC 1813 §3.3.7) from the whole argument area, or `None`.
    fn decode(args: &[u8]) -> Option<Self> {
        use nfs3_types::xdr_codec::Unpack;
        let mut c = std::io::Cursor::new(args);
        let (file, _) = nfs_fh3::unpack(&mut c).ok()?;
        let (offset, _) = u64::unpack(&mut c).ok()?;
        let (count, _) = u32::unpack(&mut c).ok()?;
        let (stable, _) = stable_how::unpack(&mut c).ok()?;
        let (len, _) = u32::unpack(&mut c).ok()?;
        let start = usize::try_from(c.position()).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        // the opaque is padded to four bytes, and must end the arguments
        (end.next_multiple_of(4) == args.len()).then_some(Self {
            file,
            offset,
            count,
            stable,
            data: start..end,
        })
    }
}

async fn write(svc: &NfsService, a: WriteArgs, req: Request) -> WRITE3res {
    let (view, kh) = resolve!(svc, a.file, WRITE3resfail::default());
    if a.data.len() != a.count as usize || a.count > MAX_IO {
        return WRITE3res::Err((nfsstat3::NFS3ERR_INVAL, WRITE3resfail::default()));
    }
    let len = a.count; // the length of the data, checked above
    let (offset, stable) = (a.offset, a.stable);
    let data = req.header.args_at + a.data.start..req.header.args_at + a.data.end;
    let record = req.record;
    match svc
        .blocking(move |fs| fs.write(&view, &kh, offset, &record[data], stable))
        .await
    {
        Ok((file_wcc, committed)) => {
            svc.metrics.write_bytes.inc_by(u64::from(len));
            WRITE3res::Ok(WRITE3resok {
                file_wcc,
                count: len,
                committed,
                verf: writeverf3(svc.fs.write_verifier),
            })
        }
        Err(s) => WRITE3res::Err((s, WRITE3resfail::default())),
    }
}

async fn commit(svc: &NfsService, a: COMMIT3args) -> COMMIT3res {
    let (view, kh) = resolve!(
        svc,
        a.file,
        COMMIT3resfail {
            file_wcc: wcc_data::default()
        }
    );
    match svc.blocking(move |fs| fs.commit(&view, &kh)).await {
        Ok(file_wcc) => COMMIT3res::Ok(COMMIT3resok {
            file_wcc,
            verf: writeverf3(svc.fs.write_verifier),
        }),
        Err(s) => COMMIT3res::Err((
            s,
            COMMIT3resfail {
                file_wcc: wcc_data::default(),
            },
        )),
    }
}

async fn create(svc: &NfsService, a: CREATE3args<'static>) -> CREATE3res {
    let (view, dir) = resolve!(svc, a.where_.dir, CREATE3resfail::default());
    let name = a.where_.name.0.into_owned();
    let how = match a.how {
        createhow3::UNCHECKED(s) => CreateHow::Unchecked(s),
        createhow3::GUARDED(s) => CreateHow::Guarded(s),
        createhow3::EXCLUSIVE(v) => CreateHow::Exclusive(v),
    };
    let v = view.clone();
    match svc
        .blocking(move |fs| fs.create(&v, &dir, &name, &how))
        .await
    {
        Ok((obj, dir_wcc)) => CREATE3res::Ok(CREATE3resok {
            obj: post_op_fh3::Some(svc.handle(&view, &obj.kh)),
            obj_attributes: post_op_attr::Some(obj.attr),
            dir_wcc,
        }),
        Err(s) => CREATE3res::Err((s, CREATE3resfail::default())),
    }
}

async fn mkdir(svc: &NfsService, a: MKDIR3args<'static>) -> MKDIR3res {
    let (view, dir) = resolve!(svc, a.where_.dir, MKDIR3resfail::default());
    let name = a.where_.name.0.into_owned();
    let set = a.attributes;
    let v = view.clone();
    match svc
        .blocking(move |fs| fs.mkdir(&v, &dir, &name, &set))
        .await
    {
        Ok((obj, dir_wcc)) => MKDIR3res::Ok(MKDIR3resok {
            obj: post_op_fh3::Some(svc.handle(&view, &obj.kh)),
            obj_attributes: post_op_attr::Some(obj.attr),
            dir_wcc,
        }),
        Err(s) => MKDIR3res::Err((s, MKDIR3resfail::default())),
    }
}

async fn symlink(svc: &NfsService, a: SYMLINK3args<'static>) -> SYMLINK3res {
    let (view, dir) = resolve!(svc, a.where_.dir, SYMLINK3resfail::default());
    let name = a.where_.name.0.into_owned();
    let target = a.symlink.symlink_data.0.into_owned();
    let set = a.symlink.symlink_attributes;
    let v = view.clone();
    match svc
        .blocking(move |fs| fs.symlink(&v, &dir, &name, &target, &set))
        .await
    {
        Ok((obj, dir_wcc)) => SYMLINK3res::Ok(SYMLINK3resok {
            obj: post_op_fh3::Some(svc.handle(&view, &obj.kh)),
            obj_attributes: post_op_attr::Some(obj.attr),
            dir_wcc,
        }),
        Err(s) => SYMLINK3res::Err((s, SYMLINK3resfail::default())),
    }
}

async fn mknod(svc: &NfsService, a: MKNOD3args<'static>) -> MKNOD3res {
    let fail = || MKNOD3resfail {
        dir_wcc: wcc_data::default(),
    };
    let (view, dir) = resolve!(svc, a.where_.dir, fail());
    let name = a.where_.name.0.into_owned();
    let (kind, set) = match a.what {
        mknoddata3::NF3FIFO(s) => (SpecialKind::Fifo, s),
        mknoddata3::NF3SOCK(s) => (SpecialKind::Socket, s),
        mknoddata3::NF3CHR(d) | mknoddata3::NF3BLK(d) => (SpecialKind::Device, d.dev_attributes),
        mknoddata3::default => return MKNOD3res::Err((nfsstat3::NFS3ERR_BADTYPE, fail())),
    };
    let v = view.clone();
    match svc
        .blocking(move |fs| fs.mknod(&v, &dir, &name, kind, &set))
        .await
    {
        Ok((obj, dir_wcc)) => MKNOD3res::Ok(MKNOD3resok {
            obj: post_op_fh3::Some(svc.handle(&view, &obj.kh)),
            obj_attributes: post_op_attr::Some(obj.attr),
            dir_wcc,
        }),
        Err(s) => MKNOD3res::Err((s, fail())),
    }
}

async fn remove(
    svc: &NfsService,
    what: diropargs3<'static>,
    rmdir: bool,
) -> Result<wcc_data, (nfsstat3, wcc_data)> {
    let (view, dir) = svc
        .resolve(&what.dir)
        .map_err(|s| (s, wcc_data::default()))?;
    let name = what.name.0.into_owned();
    svc.blocking(move |fs| fs.remove(&view, &dir, &name, rmdir))
        .await
        .map_err(|s| (s, wcc_data::default()))
}

/// RENAME; `key` names the call for the replay after a restart ([`RenameLog`]): a resend whose
/// first copy renamed the file before nfsd died is answered OK, not NOENT.
async fn rename(svc: &NfsService, a: RENAME3args<'static, 'static>, key: u64) -> RENAME3res {
    let (view, from) = resolve!(svc, a.from.dir, RENAME3resfail::default());
    let (to_view, to) = resolve!(svc, a.to.dir, RENAME3resfail::default());
    if view.id != to_view.id {
        return RENAME3res::Err((nfsstat3::NFS3ERR_XDEV, RENAME3resfail::default()));
    }
    let from_name = a.from.name.0.into_owned();
    let to_name = a.to.name.0.into_owned();
    let log = svc.renames.clone();
    match svc
        .blocking(move |fs| {
            let r = fs.rename_noting(&view, &from, &from_name, &to, &to_name, |dev, ino| {
                log.record(key, dev, ino)
            });
            match r {
                Err(nfsstat3::NFS3ERR_NOENT) => match log.lookup(key) {
                    Some((dev, ino))
                        if fs
                            .names_inode(&view, &to, &to_name, dev, ino)
                            .unwrap_or(false) =>
                    {
                        tracing::info!("a resent RENAME whose first copy took effect: answered OK");
                        Ok((wcc_data::default(), wcc_data::default()))
                    }
                    _ => r,
                },
                r => r,
            }
        })
        .await
    {
        Ok((fromdir_wcc, todir_wcc)) => RENAME3res::Ok(RENAME3resok {
            fromdir_wcc,
            todir_wcc,
        }),
        Err(s) => RENAME3res::Err((s, RENAME3resfail::default())),
    }
}

async fn link(svc: &NfsService, a: LINK3args<'static>) -> LINK3res {
    let (view, file) = resolve!(
        svc,
        a.file,
        LINK3resfail {
            file_attributes: post_op_attr::None,
            linkdir_wcc: wcc_data::default()
        }
    );
    let (dir_view, dir) = resolve!(
        svc,
        a.link.dir,
        LINK3resfail {
            file_attributes: post_op_attr::None,
            linkdir_wcc: wcc_data::default()
        }
    );
    if view.id != dir_view.id {
        return LINK3res::Err((
            nfsstat3::NFS3ERR_XDEV,
            LINK3resfail {
                file_attributes: post_op_attr::None,
                linkdir_wcc: wcc_data::default(),
            },
        ));
    }
    let name = a.link.name.0.into_owned();
    match svc
        .blocking(move |fs| fs.link(&view, &file, &dir, &name))
        .await
    {
        Ok((attr, linkdir_wcc)) => LINK3res::Ok(LINK3resok {
            file_attributes: post_op_attr::Some(attr),
            linkdir_wcc,
        }),
        Err(s) => LINK3res::Err((
            s,
            LINK3resfail {
                file_attributes: post_op_attr::None,
                linkdir_wcc: wcc_data::default(),
            },
        )),
    }
}

/// Bytes of a READDIR(PLUS) reply that are not entries: status, directory attributes,
/// verifier, list end and eof.
const DIR_REPLY_OVERHEAD: usize = 4 + 4 + 84 + 8 + 4 + 4;

async fn readdir(svc: &NfsService, a: READDIR3args) -> READDIR3res<'static> {
    let (view, dir) = resolve!(svc, a.dir, READDIR3resfail::default());
    let budget = (a.count as usize)
        .min(MAX_IO as usize)
        .saturating_sub(DIR_REPLY_OVERHEAD);
    let cookie = a.cookie;
    match svc
        .blocking(move |fs| fs.readdir(&view, &dir, cookie, budget, None))
        .await
    {
        Ok(page) => {
            let mut list = BoundedList::new(usize::MAX);
            for e in page.entries {
                let _ = list.try_push(entry3 {
                    fileid: e.fileid,
                    name: filename3(Opaque::owned(e.name)),
                    cookie: e.cookie,
                });
            }
            READDIR3res::Ok(READDIR3resok {
                dir_attributes: post_op_attr::Some(page.dir_attr),
                cookieverf: cookieverf3::default(),
                reply: dirlist3 {
                    entries: list.into_inner(),
                    eof: page.eof,
                },
            })
        }
        Err(s) => READDIR3res::Err((s, READDIR3resfail::default())),
    }
}

async fn readdirplus(svc: &NfsService, a: READDIRPLUS3args) -> READDIRPLUS3res<'static> {
    let (view, dir) = resolve!(svc, a.dir, READDIRPLUS3resfail::default());
    let budget = (a.maxcount as usize)
        .min(MAX_IO as usize)
        .saturating_sub(DIR_REPLY_OVERHEAD);
    let dircount = (a.dircount as usize).max(512);
    let cookie = a.cookie;
    let v = view.clone();
    match svc
        .blocking(move |fs| fs.readdir(&v, &dir, cookie, budget, Some(dircount)))
        .await
    {
        Ok(page) => {
            let mut entries = Vec::with_capacity(page.entries.len());
            for e in page.entries {
                let (name_attributes, name_handle) = match e.plus {
                    Some(obj) => (
                        post_op_attr::Some(obj.attr),
                        post_op_fh3::Some(svc.handle(&view, &obj.kh)),
                    ),
                    None => (post_op_attr::None, post_op_fh3::None),
                };
                entries.push(entryplus3 {
                    fileid: e.fileid,
                    name: filename3(Opaque::owned(e.name)),
                    cookie: e.cookie,
                    name_attributes,
                    name_handle,
                });
            }
            READDIRPLUS3res::Ok(READDIRPLUS3resok {
                dir_attributes: post_op_attr::Some(page.dir_attr),
                cookieverf: cookieverf3::default(),
                reply: dirlistplus3 {
                    entries: nfs3_types::xdr_codec::List(entries),
                    eof: page.eof,
                },
            })
        }
        Err(s) => READDIRPLUS3res::Err((s, READDIRPLUS3resfail::default())),
    }
}

async fn fsstat(svc: &NfsService, a: FSSTAT3args) -> FSSTAT3res {
    let (view, kh) = resolve!(svc, a.fsroot, FSSTAT3resfail::default());
    match svc.in_place(|fs| fs.fsstat(&view, &kh)) {
        Ok((st, attr)) => FSSTAT3res::Ok(FSSTAT3resok {
            obj_attributes: post_op_attr::Some(attr),
            tbytes: st.total,
            fbytes: st.free,
            abytes: st.avail,
            tfiles: st.files,
            ffiles: st.ffree,
            afiles: st.ffree,
            invarsec: 0,
        }),
        Err(s) => FSSTAT3res::Err((s, FSSTAT3resfail::default())),
    }
}

async fn fsinfo(svc: &NfsService, a: FSINFO3args) -> FSINFO3res {
    let (view, kh) = resolve!(svc, a.fsroot, FSINFO3resfail::default());
    match svc.in_place(|fs| fs.getattr(&view, &kh)) {
        Ok(attr) => FSINFO3res::Ok(FSINFO3resok {
            obj_attributes: post_op_attr::Some(attr),
            rtmax: MAX_IO,
            rtpref: MAX_IO,
            rtmult: 4096,
            wtmax: MAX_IO,
            wtpref: MAX_IO,
            wtmult: 4096,
            dtpref: 64 * 1024,
            maxfilesize: 1 << 44,
            time_delta: nfstime3 {
                seconds: 0,
                nseconds: 1,
            },
            properties: FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
        }),
        Err(s) => FSINFO3res::Err((s, FSINFO3resfail::default())),
    }
}

async fn pathconf(svc: &NfsService, a: PATHCONF3args) -> PATHCONF3res {
    let (view, kh) = resolve!(svc, a.object, PATHCONF3resfail::default());
    match svc.in_place(|fs| fs.getattr(&view, &kh)) {
        Ok(attr) => PATHCONF3res::Ok(PATHCONF3resok {
            obj_attributes: post_op_attr::Some(attr),
            linkmax: 65_000,
            name_max: crate::fs::attr::NAME_MAX,
            no_trunc: true,
            chown_restricted: true,
            case_insensitive: false,
            case_preserving: true,
        }),
        Err(s) => PATHCONF3res::Err((s, PATHCONF3resfail::default())),
    }
}
