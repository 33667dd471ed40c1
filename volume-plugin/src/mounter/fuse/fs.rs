//! The FUSE file system: every FUSE operation becomes one or a few NFSv3 calls on the pool.
//!
//! Inode numbers are NFS fileids (the root's fileid and FUSE's root inode 1 swap places); a
//! table maps each inode the kernel knows to its NFS file handle, counted by lookups and
//! dropped on `forget`. Writes go out as WRITE UNSTABLE and are committed (COMMIT, checking the
//! write verifier) on `flush` (every close), `fsync` and `release`, so data an application saw
//! acknowledged by fsync or close is durable on the storage node. Permission checks are the
//! kernel's (`default_permissions`) against the attributes nfsd presents; nfsd checks again as
//! the view's identity.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};
use nfs3_client::RpcError;
use nfs3_types::nfs3::*;
use nfs3_types::xdr_codec::Opaque;
use tokio::runtime::Runtime;

use super::client::{CallError, Client, Pool, errno_of};

type Res<T> = Result<T, Errno>;

/// Block size reported by stat(2); large so that stdio buffers make few, large WRITEs.
const BLKSIZE: u32 = 128 * 1024;
/// Entries remembered from READDIRPLUS for the LOOKUPs that usually follow (`ls -l`).
const RECENT_MAX: usize = 16 * 1024;

struct Node {
    fh: nfs_fh3,
    nlookup: u64,
}

/// Unstable writes not yet committed, kept so they can be sent again when nfsd's write verifier
/// changes (nfsd restarted and may have lost them), as the kernel NFS client does.
struct Dirty {
    verf: writeverf3,
    /// Unstable writes were answered with different verifiers (nfsd restarted with a new one).
    mixed: bool,
    pending: Vec<(u64, Vec<u8>)>,
    pending_bytes: usize,
}

/// Uncommitted bytes kept per file before a COMMIT is forced to bound memory.
const MAX_PENDING: usize = 32 << 20;

#[derive(Default)]
struct DirState {
    /// Cookie after which `entries` continue.
    from: u64,
    entries: Vec<DirEnt>,
    eof: bool,
}

struct DirEnt {
    ino: u64,
    cookie: u64,
    kind: FileType,
    name: Vec<u8>,
}

struct Recent {
    fh: nfs_fh3,
    attr: fattr3,
    at: Instant,
}

/// What the file system needs to know at creation.
pub struct Setup {
    pub rt: Arc<Runtime>,
    pub pool: Pool,
    pub root: nfs_fh3,
    pub root_fileid: u64,
    pub rtmax: u32,
    pub wtmax: u32,
    pub ttl: Duration,
    pub label: String,
}

/// A mounted export.
pub struct NfsFs {
    rt: Arc<Runtime>,
    pool: Pool,
    root_fileid: u64,
    rtmax: u32,
    wtmax: u32,
    ttl: Duration,
    label: String,
    inodes: Mutex<HashMap<u64, Node>>,
    dirty: Mutex<HashMap<u64, Dirty>>,
    dirs: Mutex<HashMap<u64, DirState>>,
    recent: Mutex<HashMap<(u64, Vec<u8>), Recent>>,
    next_fh: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn status(s: nfsstat3) -> Errno {
    Errno::from_i32(errno_of(s))
}

fn nfs<T, E>(r: Nfs3Result<T, E>) -> Res<T> {
    match r {
        Nfs3Result::Ok(t) => Ok(t),
        Nfs3Result::Err((s, _)) => Err(status(s)),
    }
}

fn name3(name: &[u8]) -> filename3<'_> {
    filename3(Opaque::borrowed(name))
}

fn dirop<'a>(dir: &nfs_fh3, name: &'a [u8]) -> diropargs3<'a> {
    diropargs3 {
        dir: dir.clone(),
        name: name3(name),
    }
}

fn time(t: nfstime3) -> SystemTime {
    UNIX_EPOCH + Duration::new(u64::from(t.seconds), t.nseconds.min(999_999_999))
}

fn nfstime(t: SystemTime) -> nfstime3 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    nfstime3 {
        seconds: u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
        nseconds: d.subsec_nanos(),
    }
}

fn kind(t: ftype3) -> FileType {
    match t {
        ftype3::NF3REG => FileType::RegularFile,
        ftype3::NF3DIR => FileType::Directory,
        ftype3::NF3BLK => FileType::BlockDevice,
        ftype3::NF3CHR => FileType::CharDevice,
        ftype3::NF3LNK => FileType::Symlink,
        ftype3::NF3SOCK => FileType::Socket,
        ftype3::NF3FIFO => FileType::NamedPipe,
    }
}

fn mode_attr(mode: u32) -> sattr3 {
    sattr3 {
        mode: Nfs3Option::Some(mode & 0o7777),
        ..Default::default()
    }
}

impl NfsFs {
    pub fn new(s: Setup) -> NfsFs {
        let mut inodes = HashMap::new();
        inodes.insert(
            1,
            Node {
                fh: s.root,
                nlookup: 1,
            },
        );
        NfsFs {
            rt: s.rt,
            pool: s.pool,
            root_fileid: s.root_fileid,
            rtmax: s.rtmax.clamp(4096, 1 << 20),
            wtmax: s.wtmax.clamp(4096, 1 << 20),
            ttl: s.ttl,
            label: s.label,
            inodes: Mutex::new(inodes),
            dirty: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
    }

    /// FUSE inode of an NFS fileid.
    fn ino_of(&self, fileid: u64) -> u64 {
        if fileid == self.root_fileid {
            1
        } else if fileid == 1 {
            self.root_fileid
        } else if fileid == 0 {
            u64::MAX
        } else {
            fileid
        }
    }

    fn fh(&self, ino: INodeNo) -> Res<nfs_fh3> {
        lock(&self.inodes)
            .get(&ino.0)
            .map(|n| n.fh.clone())
            .ok_or(Errno::ESTALE)
    }

    fn attr(&self, a: &fattr3) -> FileAttr {
        let (major, minor) = (a.rdev.specdata1, a.rdev.specdata2);
        FileAttr {
            ino: INodeNo(self.ino_of(a.fileid)),
            size: a.size,
            blocks: a.used.div_ceil(512),
            atime: time(a.atime),
            mtime: time(a.mtime),
            ctime: time(a.ctime),
            crtime: time(a.ctime),
            kind: kind(a.type_),
            perm: (a.mode & 0o7777) as u16,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12),
            blksize: BLKSIZE,
            flags: 0,
        }
    }

    /// Records `fh` for the inode of `a` as one more kernel lookup and returns its attributes.
    fn remember(&self, fh: nfs_fh3, a: &fattr3) -> FileAttr {
        let attr = self.attr(a);
        let mut t = lock(&self.inodes);
        let n = t.entry(attr.ino.0).or_insert(Node {
            fh: fh.clone(),
            nlookup: 0,
        });
        n.fh = fh;
        n.nlookup += 1;
        attr
    }

    fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    async fn rpc<R>(
        &self,
        what: &'static str,
        f: impl AsyncFnMut(&mut Client) -> Result<R, RpcError>,
    ) -> Res<(R, bool)> {
        self.pool.call(what, f).await.map_err(|e| {
            match e {
                CallError::Gone(cause) => {
                    tracing::error!(mount = %self.label, %cause, "nfsd unreachable; failing {what} with EIO")
                }
                CallError::Rpc(cause) => {
                    tracing::error!(mount = %self.label, %cause, "{what} failed at the RPC level")
                }
            }
            Errno::EIO
        })
    }

    async fn getattr_fh(&self, fh: &nfs_fh3) -> Res<fattr3> {
        let args = GETATTR3args { object: fh.clone() };
        let (r, _) = self
            .rpc("GETATTR", async |c| c.getattr(&args).await)
            .await?;
        Ok(nfs(r)?.obj_attributes)
    }

    async fn lookup_fh(&self, dir: &nfs_fh3, name: &[u8]) -> Res<(nfs_fh3, fattr3)> {
        let args = LOOKUP3args {
            what: dirop(dir, name),
        };
        let (r, _) = self.rpc("LOOKUP", async |c| c.lookup(&args).await).await?;
        let ok = nfs(r)?;
        let a = match ok.obj_attributes {
            Nfs3Option::Some(a) => a,
            Nfs3Option::None => self.getattr_fh(&ok.object).await?,
        };
        Ok((ok.object, a))
    }

    /// The entry of an object just created in `dir` under `name`.
    async fn created(
        &self,
        dir: &nfs_fh3,
        name: &[u8],
        obj: post_op_fh3,
        attrs: post_op_attr,
    ) -> Res<FileAttr> {
        let (fh, a) = match (obj, attrs) {
            (Nfs3Option::Some(fh), Nfs3Option::Some(a)) => (fh, a),
            (Nfs3Option::Some(fh), Nfs3Option::None) => {
                let a = self.getattr_fh(&fh).await?;
                (fh, a)
            }
            _ => self.lookup_fh(dir, name).await?,
        };
        Ok(self.remember(fh, &a))
    }

    async fn create_file(
        &self,
        parent: INodeNo,
        name: &[u8],
        mode: u32,
        excl: bool,
    ) -> Res<FileAttr> {
        self.forget_name(parent, name);
        let dir = self.fh(parent)?;
        let how = if excl {
            createhow3::GUARDED(mode_attr(mode))
        } else {
            createhow3::UNCHECKED(mode_attr(mode))
        };
        let args = CREATE3args {
            where_: dirop(&dir, name),
            how,
        };
        let (r, resent) = self.rpc("CREATE", async |c| c.create(&args).await).await?;
        match nfs(r) {
            Ok(ok) => self.created(&dir, name, ok.obj, ok.obj_attributes).await,
            // our first attempt created it before the connection broke
            Err(e) if resent && e == Errno::EEXIST => {
                let (fh, a) = self.lookup_fh(&dir, name).await?;
                Ok(self.remember(fh, &a))
            }
            Err(e) => Err(e),
        }
    }

    async fn commit_if_dirty(&self, ino: INodeNo) -> Res<()> {
        // take the writes this COMMIT covers; later writes stay for the next one
        let Some((verf, mixed, pending)) = lock(&self.dirty).get_mut(&ino.0).map(|d| {
            let mixed = std::mem::take(&mut d.mixed);
            d.pending_bytes = 0;
            (d.verf, mixed, std::mem::take(&mut d.pending))
        }) else {
            return Ok(());
        };
        let fh = self.fh(ino)?;
        let args = COMMIT3args {
            file: fh.clone(),
            offset: 0,
            count: 0,
        };
        let (r, _) = self.rpc("COMMIT", async |c| c.commit(&args).await).await?;
        let ok = nfs(r)?;
        if mixed || ok.verf != verf {
            // nfsd restarted between WRITE and COMMIT: send the data again, stable this time
            tracing::warn!(
                mount = %self.label,
                ino = ino.0,
                writes = pending.len(),
                "nfsd's write verifier changed before COMMIT; resending the uncommitted writes"
            );
            for (offset, data) in &pending {
                let args = WRITE3args {
                    file: fh.clone(),
                    offset: *offset,
                    count: u32::try_from(data.len()).map_err(|_| Errno::EIO)?,
                    stable: stable_how::FILE_SYNC,
                    data: Opaque::borrowed(data),
                };
                let (r, _) = self.rpc("WRITE", async |c| c.write(&args).await).await?;
                let w = nfs(r)?;
                if (w.count as usize) < data.len() {
                    return Err(Errno::EIO);
                }
            }
        }
        let mut dirty = lock(&self.dirty);
        if dirty.get(&ino.0).is_some_and(|d| d.pending.is_empty()) {
            dirty.remove(&ino.0);
        }
        Ok(())
    }

    /// Drops what READDIRPLUS said about `name` in `dir` (it is about to change).
    fn forget_name(&self, dir: INodeNo, name: &[u8]) {
        let mut recent = lock(&self.recent);
        if !recent.is_empty() {
            recent.remove(&(dir.0, name.to_vec()));
        }
    }

    fn reply_entry(&self, r: Res<FileAttr>, reply: ReplyEntry) {
        match r {
            Ok(a) => reply.entry(&self.ttl, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn reply_empty(r: Res<()>, reply: ReplyEmpty) {
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// Fetches the page of `dir` after `cookie`.
    async fn read_dir_page(&self, ino: INodeNo, cookie: u64) -> Res<(Vec<DirEnt>, bool)> {
        let dir = self.fh(ino)?;
        let args = READDIRPLUS3args {
            dir: dir.clone(),
            cookie,
            cookieverf: cookieverf3::default(),
            dircount: 16 * 1024,
            maxcount: 64 * 1024,
        };
        let (r, _) = self
            .rpc("READDIRPLUS", async |c| c.readdirplus(&args).await)
            .await?;
        let ok = nfs(r)?;
        let now = Instant::now();
        let mut out = Vec::with_capacity(ok.reply.entries.0.len());
        let mut recent = lock(&self.recent);
        if recent.len() > RECENT_MAX {
            recent.clear();
        }
        for e in ok.reply.entries.0 {
            let name = e.name.0.to_vec();
            let dots = name == b"." || name == b"..";
            let k = match &e.name_attributes {
                Nfs3Option::Some(a) => kind(a.type_),
                Nfs3Option::None if dots => FileType::Directory,
                Nfs3Option::None => FileType::RegularFile,
            };
            if let (Nfs3Option::Some(a), Nfs3Option::Some(fh), false) =
                (e.name_attributes, e.name_handle, dots)
            {
                recent.insert(
                    (ino.0, name.clone()),
                    Recent {
                        fh,
                        attr: a,
                        at: now,
                    },
                );
            }
            out.push(DirEnt {
                ino: self.ino_of(e.fileid),
                cookie: e.cookie,
                kind: k,
                name,
            });
        }
        Ok((out, ok.reply.eof))
    }

    fn do_readdir(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> Res<()> {
        let mut st = lock(&self.dirs).remove(&fh.0).unwrap_or_default();
        if st.from != offset {
            st = DirState {
                from: offset,
                ..Default::default()
            };
        }
        let result = (|| {
            loop {
                if st.entries.is_empty() {
                    if st.eof {
                        return Ok(());
                    }
                    let (entries, eof) = self.block(self.read_dir_page(ino, st.from))?;
                    st.eof = eof || entries.is_empty();
                    st.entries = entries;
                    st.entries.reverse();
                    continue;
                }
                let e = st.entries.last().expect("not empty");
                if reply.add(INodeNo(e.ino), e.cookie, e.kind, OsStr::from_bytes(&e.name)) {
                    return Ok(());
                }
                st.from = e.cookie;
                st.entries.pop();
            }
        })();
        lock(&self.dirs).insert(fh.0, st);
        result
    }
}

impl Filesystem for NfsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let w = self.wtmax;
        if let Err(max) = config.set_max_write(w) {
            let _ = config.set_max_write(max);
        }
        if let Err(max) = config.set_max_readahead(self.rtmax) {
            let _ = config.set_max_readahead(max);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.as_bytes();
        if let Some(r) = lock(&self.recent).remove(&(parent.0, name.to_vec()))
            && r.at.elapsed() < self.ttl
        {
            let a = self.remember(r.fh, &r.attr);
            return reply.entry(&self.ttl, &a, Generation(0));
        }
        let r = self.block(async {
            let dir = self.fh(parent)?;
            let (fh, a) = self.lookup_fh(&dir, name).await?;
            Ok(self.remember(fh, &a))
        });
        self.reply_entry(r, reply)
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if ino.0 == 1 {
            return;
        }
        let mut t = lock(&self.inodes);
        if let Some(n) = t.get_mut(&ino.0) {
            n.nlookup = n.nlookup.saturating_sub(nlookup);
            if n.nlookup == 0 {
                t.remove(&ino.0);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = self.block(async {
            let fh = self.fh(ino)?;
            let a = self.getattr_fh(&fh).await?;
            Ok(self.attr(&a))
        });
        match r {
            Ok(mut a) => {
                // the kernel asked for this inode: keep the number it knows even if the file
                // system reuses fileids (it cannot here, but the root swap must hold)
                a.ino = ino;
                reply.attr(&self.ttl, &a)
            }
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let opt = |v: Option<u32>| match v {
            Some(v) => Nfs3Option::Some(v),
            None => Nfs3Option::None,
        };
        let new_attributes = sattr3 {
            mode: opt(mode.map(|m| m & 0o7777)),
            uid: opt(uid),
            gid: opt(gid),
            size: match size {
                Some(s) => Nfs3Option::Some(s),
                None => Nfs3Option::None,
            },
            atime: match atime {
                None => set_atime::DONT_CHANGE,
                Some(TimeOrNow::Now) => set_atime::SET_TO_SERVER_TIME,
                Some(TimeOrNow::SpecificTime(t)) => set_atime::SET_TO_CLIENT_TIME(nfstime(t)),
            },
            mtime: match mtime {
                None => set_mtime::DONT_CHANGE,
                Some(TimeOrNow::Now) => set_mtime::SET_TO_SERVER_TIME,
                Some(TimeOrNow::SpecificTime(t)) => set_mtime::SET_TO_CLIENT_TIME(nfstime(t)),
            },
        };
        let r = self.block(async {
            let fh = self.fh(ino)?;
            let args = SETATTR3args {
                object: fh.clone(),
                new_attributes,
                guard: Nfs3Option::None,
            };
            let (r, _) = self
                .rpc("SETATTR", async |c| c.setattr(&args).await)
                .await?;
            let a = match nfs(r)?.obj_wcc.after {
                Nfs3Option::Some(a) => a,
                Nfs3Option::None => self.getattr_fh(&fh).await?,
            };
            Ok(self.attr(&a))
        });
        match r {
            Ok(mut a) => {
                a.ino = ino;
                reply.attr(&self.ttl, &a)
            }
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let r = self.block(async {
            let args = READLINK3args {
                symlink: self.fh(ino)?,
            };
            let (r, _) = self
                .rpc("READLINK", async |c| c.readlink(&args).await)
                .await?;
            Ok(nfs(r)?.data.0.to_vec())
        });
        match r {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let name = name.as_bytes();
        let r = self.block(async {
            let what = match mode & libc::S_IFMT {
                libc::S_IFREG => return self.create_file(parent, name, mode, true).await,
                libc::S_IFIFO => mknoddata3::NF3FIFO(mode_attr(mode)),
                libc::S_IFSOCK => mknoddata3::NF3SOCK(mode_attr(mode)),
                _ => return Err(Errno::EPERM),
            };
            let dir = self.fh(parent)?;
            let args = MKNOD3args {
                where_: dirop(&dir, name),
                what,
            };
            let (r, _) = self.rpc("MKNOD", async |c| c.mknod(&args).await).await?;
            let ok = nfs(r)?;
            self.created(&dir, name, ok.obj, ok.obj_attributes).await
        });
        self.reply_entry(r, reply)
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let name = name.as_bytes();
        self.forget_name(parent, name);
        let r = self.block(async {
            let dir = self.fh(parent)?;
            let args = MKDIR3args {
                where_: dirop(&dir, name),
                attributes: mode_attr(mode),
            };
            let (r, resent) = self.rpc("MKDIR", async |c| c.mkdir(&args).await).await?;
            match nfs(r) {
                Ok(ok) => self.created(&dir, name, ok.obj, ok.obj_attributes).await,
                Err(e) if resent && e == Errno::EEXIST => {
                    let (fh, a) = self.lookup_fh(&dir, name).await?;
                    Ok(self.remember(fh, &a))
                }
                Err(e) => Err(e),
            }
        });
        self.reply_entry(r, reply)
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.as_bytes();
        self.forget_name(parent, name);
        let r = self.block(async {
            let args = REMOVE3args {
                object: dirop(&self.fh(parent)?, name),
            };
            let (r, resent) = self.rpc("REMOVE", async |c| c.remove(&args).await).await?;
            match nfs(r) {
                Err(e) if resent && e == Errno::ENOENT => Ok(()),
                r => r.map(drop),
            }
        });
        Self::reply_empty(r, reply)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.as_bytes();
        self.forget_name(parent, name);
        let r = self.block(async {
            let args = RMDIR3args {
                object: dirop(&self.fh(parent)?, name),
            };
            let (r, resent) = self.rpc("RMDIR", async |c| c.rmdir(&args).await).await?;
            match nfs(r) {
                Err(e) if resent && e == Errno::ENOENT => Ok(()),
                r => r.map(drop),
            }
        });
        Self::reply_empty(r, reply)
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let name = link_name.as_bytes();
        self.forget_name(parent, name);
        let r = self.block(async {
            let dir = self.fh(parent)?;
            let args = SYMLINK3args {
                where_: dirop(&dir, name),
                symlink: symlinkdata3 {
                    symlink_attributes: sattr3::default(),
                    symlink_data: nfspath3(Opaque::borrowed(target.as_os_str().as_bytes())),
                },
            };
            let (r, resent) = self
                .rpc("SYMLINK", async |c| c.symlink(&args).await)
                .await?;
            match nfs(r) {
                Ok(ok) => self.created(&dir, name, ok.obj, ok.obj_attributes).await,
                Err(e) if resent && e == Errno::EEXIST => {
                    let (fh, a) = self.lookup_fh(&dir, name).await?;
                    Ok(self.remember(fh, &a))
                }
                Err(e) => Err(e),
            }
        });
        self.reply_entry(r, reply)
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (name, newname) = (name.as_bytes(), newname.as_bytes());
        self.forget_name(parent, name);
        self.forget_name(newparent, newname);
        let r = self.block(async {
            if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
                return Err(Errno::EINVAL);
            }
            let from = self.fh(parent)?;
            let to = self.fh(newparent)?;
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                // NFSv3 has no exclusive rename: check, then rename (racy across clients)
                match self.lookup_fh(&to, newname).await {
                    Ok(_) => return Err(Errno::EEXIST),
                    Err(e) if e == Errno::ENOENT => {}
                    Err(e) => return Err(e),
                }
            }
            let args = RENAME3args {
                from: dirop(&from, name),
                to: dirop(&to, newname),
            };
            let (r, resent) = self.rpc("RENAME", async |c| c.rename(&args).await).await?;
            match nfs(r) {
                Err(e) if resent && e == Errno::ENOENT => Ok(()),
                r => r.map(drop),
            }
        });
        Self::reply_empty(r, reply)
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let name = newname.as_bytes();
        self.forget_name(newparent, name);
        let r = self.block(async {
            let fh = self.fh(ino)?;
            let dir = self.fh(newparent)?;
            let args = LINK3args {
                file: fh.clone(),
                link: dirop(&dir, name),
            };
            let (r, resent) = self.rpc("LINK", async |c| c.link(&args).await).await?;
            let a = match nfs(r) {
                Ok(ok) => match ok.file_attributes {
                    Nfs3Option::Some(a) => a,
                    Nfs3Option::None => self.getattr_fh(&fh).await?,
                },
                Err(e) if resent && e == Errno::EEXIST => self.getattr_fh(&fh).await?,
                Err(e) => return Err(e),
            };
            let mut attr = self.remember(fh, &a);
            attr.ino = ino;
            Ok(attr)
        });
        self.reply_entry(r, reply)
    }

    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.block(async {
            let fh = self.fh(ino)?;
            let mut out = Vec::with_capacity(size as usize);
            while out.len() < size as usize {
                let args = READ3args {
                    file: fh.clone(),
                    offset: offset + out.len() as u64,
                    count: (size - u32::try_from(out.len()).map_err(|_| Errno::EIO)?)
                        .min(self.rtmax),
                };
                let (r, _) = self.rpc("READ", async |c| c.read(&args).await).await?;
                let ok = nfs(r)?;
                let data = ok.data.0;
                out.extend_from_slice(&data);
                if ok.eof || data.is_empty() {
                    break;
                }
            }
            Ok(out)
        });
        match r {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.block(async {
            let fh = self.fh(ino)?;
            let mut done = 0usize;
            while done < data.len() {
                let chunk = &data[done..data.len().min(done + self.wtmax as usize)];
                let args = WRITE3args {
                    file: fh.clone(),
                    offset: offset + done as u64,
                    count: u32::try_from(chunk.len()).map_err(|_| Errno::EIO)?,
                    stable: stable_how::UNSTABLE,
                    data: Opaque::borrowed(chunk),
                };
                let (r, _) = self.rpc("WRITE", async |c| c.write(&args).await).await?;
                let ok = nfs(r)?;
                let written = (ok.count as usize).min(chunk.len());
                if ok.committed != stable_how::FILE_SYNC {
                    let full = {
                        let mut dirty = lock(&self.dirty);
                        let d = dirty.entry(ino.0).or_insert(Dirty {
                            verf: ok.verf,
                            mixed: false,
                            pending: Vec::new(),
                            pending_bytes: 0,
                        });
                        d.mixed |= d.verf != ok.verf;
                        d.pending
                            .push((offset + done as u64, chunk[..written].to_vec()));
                        d.pending_bytes += written;
                        d.pending_bytes > MAX_PENDING
                    };
                    if full {
                        self.commit_if_dirty(ino).await?;
                    }
                }
                if ok.count == 0 {
                    return Err(Errno::EIO);
                }
                done += written;
            }
            u32::try_from(done).map_err(|_| Errno::EIO)
        });
        match r {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty(self.block(self.commit_if_dirty(ino)), reply)
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty(self.block(self.commit_if_dirty(ino)), reply)
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty(self.block(self.commit_if_dirty(ino)), reply)
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.dirs).insert(fh, DirState::default());
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.do_readdir(ino, fh, offset, &mut reply) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.dirs).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let r = self.block(async {
            let args = FSSTAT3args {
                fsroot: self.fh(INodeNo(1))?,
            };
            let (r, _) = self.rpc("FSSTAT", async |c| c.fsstat(&args).await).await?;
            nfs(r)
        });
        const BS: u32 = 4096;
        match r {
            Ok(s) => reply.statfs(
                s.tbytes / u64::from(BS),
                s.fbytes / u64::from(BS),
                s.abytes / u64::from(BS),
                s.tfiles,
                s.afiles,
                BS,
                255,
                BS,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let excl = flags & libc::O_EXCL != 0;
        let r = self.block(self.create_file(parent, name.as_bytes(), mode, excl));
        match r {
            Ok(a) => reply.created(
                &self.ttl,
                &a,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}
