//! The operations behind the NFS procedures, one function each, on a [`View`]. Objects are found
//! by kernel handle (`open_by_handle_at`), names are resolved one component at a time with `*at`
//! calls and `O_NOFOLLOW`, and every namespace change runs under [`ActAs`] so that the kernel
//! applies the view's identity: ownership of new files, mode bits, sticky and setgid directories.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use nfs3_types::nfs3::{
    createverf3, fattr3, nfsstat3, nfstime3, post_op_attr, pre_op_attr, sattr3, set_atime,
    set_mtime, stable_how, wcc_data,
};
use rustix::fs::{AtFlags, Mode, OFlags, Stat, Timespec, Timestamps};

use super::attr::{self, check_name, check_new_name, fattr, wcc};
use super::creds::ActAs;
use super::kernel::{self, KernelHandle};
use super::open_files::{Kind, Open};
use super::{Fs, View, errno_to_nfs_rustix, io_to_nfs};

type R<T> = Result<T, nfsstat3>;

/// A file system object found or made by an operation.
#[derive(Debug, Clone)]
pub struct Obj {
    pub kh: KernelHandle,
    pub attr: fattr3,
}

/// How CREATE treats an existing name.
#[derive(Debug, Clone)]
pub enum CreateHow {
    Unchecked(sattr3),
    Guarded(sattr3),
    Exclusive(createverf3),
}

/// One directory entry of a READDIR(PLUS) page.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub fileid: u64,
    pub cookie: u64,
    /// Only for READDIRPLUS, and not for `.` and `..`.
    pub plus: Option<Obj>,
}

/// A page of a directory.
#[derive(Debug, Clone)]
pub struct DirPage {
    pub entries: Vec<DirEntry>,
    pub eof: bool,
    pub dir_attr: fattr3,
}

/// Bytes an entry takes in a READDIR reply: list marker, fileid, name, cookie.
fn entry_size(name_len: usize) -> usize {
    4 + 8 + 4 + name_len.div_ceil(4) * 4 + 8
}

/// Bytes a READDIRPLUS entry takes: the READDIR part, then the optional attributes and the
/// optional handle (its real length, so pages are as full as the client allows).
fn entry_plus_size(name_len: usize, obj: Option<&Obj>) -> usize {
    entry_size(name_len)
        + match obj {
            Some(o) => 4 + 84 + 4 + 4 + super::handle::wire_len(o.kh.bytes.len()).div_ceil(4) * 4,
            None => 4 + 4,
        }
}

fn fstat(fd: BorrowedFd<'_>) -> R<Stat> {
    rustix::fs::fstat(fd).map_err(errno_to_nfs_rustix)
}

fn post(view: &View, fd: BorrowedFd<'_>) -> post_op_attr {
    match rustix::fs::fstat(fd) {
        Ok(st) => post_op_attr::Some(fattr(view, &st)),
        Err(_) => post_op_attr::None,
    }
}

fn wcc_of(view: &View, before: &Stat, fd: BorrowedFd<'_>) -> wcc_data {
    wcc_data {
        before: pre_op_attr::Some(wcc(before)),
        after: post(view, fd),
    }
}

fn is_type(st: &Stat, t: u32) -> bool {
    st.st_mode & libc::S_IFMT == t
}

/// `/proc/self/fd/N`: reaches exactly the inode an `O_PATH` descriptor holds, without resolving
/// any name again. Used only for objects that are not symlinks.
fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// I/O happens on regular files only: a directory is `ISDIR`, anything else (FIFO, socket,
/// device, symlink) `INVAL`.
fn check_regular(st: &Stat) -> R<()> {
    if is_type(st, libc::S_IFDIR) {
        return Err(nfsstat3::NFS3ERR_ISDIR);
    }
    if !is_type(st, libc::S_IFREG) {
        return Err(nfsstat3::NFS3ERR_INVAL);
    }
    Ok(())
}

/// Opens the inode an `O_PATH` descriptor holds with `flags`. Only for regular files: callers
/// have checked the type on that descriptor, and the inode cannot change under it.
fn reopen(fd: BorrowedFd<'_>, flags: OFlags) -> R<OwnedFd> {
    rustix::fs::open(proc_path(fd), flags | OFlags::CLOEXEC, Mode::empty())
        .map_err(errno_to_nfs_rustix)
}

/// Share views make no symlinks, special files or hard links: a submitted symlink would have
/// the teacher's collect copy what it points at, a FIFO would block the collect, a hard link
/// would plant someone else's inode in a submission. Homes keep them.
fn refuse_in_share(view: &View, procedure: &str) -> R<()> {
    if view.shared {
        tracing::debug!(volume = %view.name, procedure, "refused in a share view");
        return Err(nfsstat3::NFS3ERR_ACCES);
    }
    Ok(())
}

fn nfs_time(t: nfstime3) -> Timespec {
    Timespec {
        tv_sec: i64::from(t.seconds),
        tv_nsec: i64::from(t.nseconds),
    }
}

const UTIME_NOW: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: libc::UTIME_NOW,
};
const UTIME_OMIT: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: libc::UTIME_OMIT,
};

impl Fs {
    fn act(&self, view: &View) -> R<ActAs> {
        ActAs::new(&view.ids).map_err(|e| {
            tracing::error!(volume = %view.name, "cannot switch identity: {e}");
            nfsstat3::NFS3ERR_SERVERFAULT
        })
    }

    /// The object behind a handle as [`super::open_files`] keeps it, and its attributes. On a
    /// miss the handle is opened `O_PATH`, which opens nothing, and only a directory or a
    /// regular file is then reopened through that pinned inode: opening a FIFO for reading
    /// waits for a writer (a worker thread stuck for good), a device's open runs its driver.
    /// An inode with no links left was removed (only a descriptor kept it): `STALE`.
    fn object(&self, kh: &KernelHandle) -> R<(Open, Stat)> {
        if let Some(open) = self.open_files.get(kh) {
            let st = fstat(open.fd.as_fd())?;
            if st.st_nlink > 0 {
                return Ok((open, st));
            }
            self.open_files.forget(kh);
            return Err(nfsstat3::NFS3ERR_STALE);
        }
        let pfd = self.open(kh, libc::O_PATH)?;
        let st = fstat(pfd.as_fd())?;
        if st.st_nlink == 0 {
            return Err(nfsstat3::NFS3ERR_STALE);
        }
        let open = if is_type(&st, libc::S_IFDIR) {
            let fd = rustix::fs::openat(
                &pfd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno_to_nfs_rustix)?;
            Open {
                fd: Arc::new(fd),
                kind: Kind::Dir,
            }
        } else if is_type(&st, libc::S_IFREG) {
            // read-write where the file system allows it (root opens it; callers check the
            // view's rights), else read-only: WRITE then reopens and gets the real error
            match reopen(pfd.as_fd(), OFlags::RDWR) {
                Ok(fd) => Open {
                    fd: Arc::new(fd),
                    kind: Kind::File { writable: true },
                },
                Err(_) => Open {
                    fd: Arc::new(reopen(pfd.as_fd(), OFlags::RDONLY)?),
                    kind: Kind::File { writable: false },
                },
            }
        } else {
            Open {
                fd: Arc::new(pfd),
                kind: Kind::Other,
            }
        };
        self.open_files
            .insert(kh, st.st_dev, st.st_ino, open.clone());
        Ok((open, st))
    }

    /// A directory: its descriptor (shared: never read through it) and attributes. A handle of
    /// anything else is `NOTDIR`.
    fn dir(&self, kh: &KernelHandle) -> R<(Arc<OwnedFd>, Stat)> {
        let (open, st) = self.object(kh)?;
        if open.kind != Kind::Dir {
            return Err(nfsstat3::NFS3ERR_NOTDIR);
        }
        Ok((open.fd, st))
    }

    /// Any object: a descriptor to `fstat`, `*at` with an empty path, or reach through
    /// `/proc/self/fd`, and its attributes.
    fn path(&self, kh: &KernelHandle) -> R<(Arc<OwnedFd>, Stat)> {
        let (open, st) = self.object(kh)?;
        Ok((open.fd, st))
    }

    /// A regular file for I/O at explicit offsets (`flags` says whether it is written), and its
    /// attributes. Other types are `ISDIR` or `INVAL`, as knfsd.
    fn regular(&self, kh: &KernelHandle, flags: OFlags) -> R<(Arc<OwnedFd>, Stat)> {
        let (open, st) = self.object(kh)?;
        check_regular(&st)?;
        let writes = flags.intersects(OFlags::WRONLY | OFlags::RDWR);
        match open.kind {
            Kind::File { writable: false } if writes => {
                Ok((Arc::new(reopen(open.fd.as_fd(), flags)?), st))
            }
            _ => Ok((open.fd, st)),
        }
    }

    fn obj_at(&self, view: &View, dir: BorrowedFd<'_>, name: &OsStr) -> R<(OwnedFd, Obj)> {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_to_nfs_rustix)?;
        let obj = self.obj_of(view, fd.as_fd())?;
        Ok((fd, obj))
    }

    fn obj_of(&self, view: &View, fd: BorrowedFd<'_>) -> R<Obj> {
        let st = fstat(fd)?;
        let kh = kernel::name_to_handle(fd, c"").map_err(|e| io_to_nfs(&e))?;
        Ok(Obj {
            kh,
            attr: fattr(view, &st),
        })
    }

    /// Makes a namespace change made in `dir` durable (RFC 1813: a reply means it is on disk).
    /// Concurrent calls on one directory each fsync it: the kernel already overlaps and shares
    /// their writes, and a userspace group commit in front of it measured slower (BENCHMARKS.md).
    fn sync_dir(&self, dir: BorrowedFd<'_>) {
        if !self.options.sync_metadata {
            return;
        }
        self.dir_flushes.inc();
        if let Err(e) = rustix::fs::fsync(dir) {
            tracing::warn!("fsync of a directory failed: {e}");
        }
    }

    /// Attributes of any object.
    pub fn getattr(&self, view: &View, kh: &KernelHandle) -> R<fattr3> {
        let (_, st) = self.path(kh)?;
        Ok(fattr(view, &st))
    }

    /// Best-effort attributes for replies that carry them on failure.
    pub fn post_attr(&self, view: &View, kh: &KernelHandle) -> post_op_attr {
        self.getattr(view, kh)
            .map_or(post_op_attr::None, post_op_attr::Some)
    }

    /// Finds `name` in `dir`. `..` of the view's root is the root itself.
    pub fn lookup(&self, view: &View, dir: &KernelHandle, name: &[u8]) -> R<(Obj, fattr3)> {
        let name = check_name(name)?;
        let (dfd, dir_st) = self.dir(dir)?;
        let dir_attr = fattr(view, &dir_st);
        if name == "." || (name == ".." && *dir == view.root) {
            let obj = self.obj_of(view, dfd.as_fd())?;
            return Ok((obj, dir_attr));
        }
        let _as = self.act(view)?;
        let (_, obj) = self.obj_at(view, dfd.as_fd(), name)?;
        Ok((obj, dir_attr))
    }

    /// Reads up to `count` bytes at `offset`; returns the data and whether it reached the end.
    pub fn read(
        &self,
        view: &View,
        kh: &KernelHandle,
        offset: u64,
        count: u32,
    ) -> R<(Vec<u8>, bool, fattr3)> {
        let (fd, st) = self.regular(kh, OFlags::RDONLY)?;
        attr::may_read(view, &st)?;
        let size = attr::size(&st);
        // at most `count`, a u32
        let want = u32::try_from(size.saturating_sub(offset)).map_or(count, |left| left.min(count));
        let want = want as usize;
        // read into the spare capacity: a 1 MiB buffer is not zeroed first
        let mut buf = Vec::with_capacity(want);
        while buf.len() < want {
            let at = offset + buf.len() as u64;
            let n = rustix::io::pread(fd.as_fd(), rustix::buffer::spare_capacity(&mut buf), at)
                .map_err(errno_to_nfs_rustix)?;
            if n == 0 {
                break;
            }
        }
        let done = buf.len();
        let eof = offset + done as u64 >= size;
        Ok((buf, eof, fattr(view, &st)))
    }

    /// Writes `data` at `offset`. Unstable writes are acknowledged as such (with this instance's
    /// verifier); stable ones are on disk before the reply.
    pub fn write(
        &self,
        view: &View,
        kh: &KernelHandle,
        offset: u64,
        data: &[u8],
        stable: stable_how,
    ) -> R<(wcc_data, stable_how)> {
        if view.readonly {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        let (fd, before) = self.regular(kh, OFlags::WRONLY)?;
        attr::may_write(view, &before)?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(nfsstat3::NFS3ERR_FBIG)?;
        let growth = write_growth(fd.as_fd(), &before, offset, end, view.usage.is_limited());
        // the file's owner pays, as with kernel quotas; the reservation keeps concurrent WRITEs
        // from all passing the check at once
        let reserved = view
            .usage
            .reserve(before.st_uid, growth)
            .ok_or(nfsstat3::NFS3ERR_DQUOT)?;
        let written = pwrite_all(fd.as_fd(), data, offset);
        // settle from what the disk holds now, also after a write that failed half way
        let after = fstat(fd.as_fd())?;
        reserved.settle(attr::blocks(&before), attr::blocks(&after));
        written?;
        let committed = match stable {
            stable_how::UNSTABLE => stable_how::UNSTABLE,
            stable_how::DATA_SYNC => {
                rustix::fs::fdatasync(fd.as_fd()).map_err(errno_to_nfs_rustix)?;
                stable_how::DATA_SYNC
            }
            stable_how::FILE_SYNC => {
                rustix::fs::fsync(fd.as_fd()).map_err(errno_to_nfs_rustix)?;
                stable_how::FILE_SYNC
            }
        };
        Ok((
            wcc_data {
                before: pre_op_attr::Some(wcc(&before)),
                after: post_op_attr::Some(fattr(view, &after)),
            },
            committed,
        ))
    }

    /// Makes everything written to the file durable.
    pub fn commit(&self, view: &View, kh: &KernelHandle) -> R<wcc_data> {
        let (fd, before) = self.regular(kh, OFlags::RDONLY)?;
        rustix::fs::fsync(fd.as_fd()).map_err(errno_to_nfs_rustix)?;
        Ok(wcc_of(view, &before, fd.as_fd()))
    }

    /// Changes attributes. `guard` is the ctime the client expects (SETATTR's sattrguard3).
    pub fn setattr(
        &self,
        view: &View,
        kh: &KernelHandle,
        set: &sattr3,
        guard: Option<nfstime3>,
    ) -> R<wcc_data> {
        let (fd, before) = self.path(kh)?;
        if let Some(ctime) = guard
            && wcc(&before).ctime != ctime
        {
            return Err(nfsstat3::NFS3ERR_NOT_SYNC);
        }
        self.apply_sattr(view, fd.as_fd(), &before, set, true)?;
        Ok(wcc_of(view, &before, fd.as_fd()))
    }

    fn apply_sattr(
        &self,
        view: &View,
        fd: BorrowedFd<'_>,
        st: &Stat,
        set: &sattr3,
        with_mode: bool,
    ) -> R<()> {
        use nfs3_types::nfs3::Nfs3Option::Some as Set;
        let changes_anything = matches!(set.mode, Set(_)) && with_mode
            || matches!(set.uid, Set(_))
            || matches!(set.gid, Set(_))
            || matches!(set.size, Set(_))
            || !matches!(set.atime, set_atime::DONT_CHANGE)
            || !matches!(set.mtime, set_mtime::DONT_CHANGE);
        if !changes_anything {
            return Ok(());
        }
        if view.readonly {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        let uid = match set.uid {
            Set(u) => Some(attr::store_uid(view, u)),
            _ => None,
        };
        let gid = match set.gid {
            Set(g) => Some(attr::store_gid(view, g)),
            _ => None,
        };
        // -1 is no id: chown(2) reads it as "leave unchanged", and rustix's Uid/Gid refuse it
        // with a panic, which on the multi-thread runtime left the call without a reply
        if uid == Some(u32::MAX) || gid == Some(u32::MAX) {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let symlink = is_type(st, libc::S_IFLNK);
        if let Set(size) = set.size {
            check_regular(st)?;
            attr::may_write(view, st)?;
            let wfd = reopen(fd, OFlags::WRONLY)?;
            rustix::fs::ftruncate(&wfd, size).map_err(errno_to_nfs_rustix)?;
            let after = fstat(wfd.as_fd())?;
            view.usage
                .add_blocks(st.st_uid, attr::blocks(st), attr::blocks(&after));
        }
        let _as = self.act(view)?;
        if let (Set(mode), true, false) = (set.mode, with_mode, symlink) {
            rustix::fs::chmod(proc_path(fd), Mode::from_raw_mode(mode & 0o7777))
                .map_err(errno_to_nfs_rustix)?;
        }
        if uid.is_some() || gid.is_some() {
            rustix::fs::chownat(
                fd,
                "",
                uid.map(rustix::fs::Uid::from_raw),
                gid.map(rustix::fs::Gid::from_raw),
                AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(errno_to_nfs_rustix)?;
            // the blocks now count against the new owner
            let now = fstat(fd)?;
            view.usage.chown(st.st_uid, now.st_uid, attr::blocks(&now));
        }
        let atime = match set.atime {
            set_atime::DONT_CHANGE => UTIME_OMIT,
            set_atime::SET_TO_SERVER_TIME => UTIME_NOW,
            set_atime::SET_TO_CLIENT_TIME(t) => nfs_time(t),
        };
        let mtime = match set.mtime {
            set_mtime::DONT_CHANGE => UTIME_OMIT,
            set_mtime::SET_TO_SERVER_TIME => UTIME_NOW,
            set_mtime::SET_TO_CLIENT_TIME(t) => nfs_time(t),
        };
        let times_change = atime.tv_nsec != libc::UTIME_OMIT || mtime.tv_nsec != libc::UTIME_OMIT;
        if times_change && !symlink {
            rustix::fs::utimensat(
                rustix::fs::CWD,
                proc_path(fd),
                &Timestamps {
                    last_access: atime,
                    last_modification: mtime,
                },
                AtFlags::empty(),
            )
            .map_err(errno_to_nfs_rustix)?;
        }
        Ok(())
    }

    /// Creates a regular file.
    pub fn create(
        &self,
        view: &View,
        dir: &KernelHandle,
        name: &[u8],
        how: &CreateHow,
    ) -> R<(Obj, wcc_data)> {
        let name = check_new_name(name)?;
        if view.readonly {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        let (dfd, before) = self.dir(dir)?;
        let mode = match how {
            CreateHow::Unchecked(s) | CreateHow::Guarded(s) => mode_of(s, 0o644),
            CreateHow::Exclusive(_) => 0o600,
        };
        // always O_EXCL: an open without it would open whatever holds the name, and a FIFO
        // opened for reading blocks until a writer appears
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let act = self.act(view)?;
        let (fd, created) =
            match rustix::fs::openat(dfd.as_fd(), name, flags, Mode::from_raw_mode(mode)) {
                Ok(fd) => (fd, true),
                Err(rustix::io::Errno::EXIST) => match how {
                    CreateHow::Unchecked(_) => {
                        // UNCHECKED of an existing name: a regular file is reused (opened as the
                        // view, so it needs read permission as before), anything else is EXIST
                        // (knfsd's answer), found without opening it
                        let (pfd, _) = self.obj_at(view, dfd.as_fd(), name)?;
                        if !is_type(&fstat(pfd.as_fd())?, libc::S_IFREG) {
                            return Err(nfsstat3::NFS3ERR_EXIST);
                        }
                        (reopen(pfd.as_fd(), OFlags::RDONLY)?, false)
                    }
                    CreateHow::Guarded(_) => return Err(nfsstat3::NFS3ERR_EXIST),
                    CreateHow::Exclusive(verf) => {
                        // a retransmitted exclusive create finds its own verifier in the times
                        let (fd, obj) = self.obj_at(view, dfd.as_fd(), name)?;
                        let st = fstat(fd.as_fd())?;
                        if is_type(&st, libc::S_IFREG) && verifier_matches(&st, verf) {
                            return Ok((obj, wcc_of(view, &before, dfd.as_fd())));
                        }
                        return Err(nfsstat3::NFS3ERR_EXIST);
                    }
                },
                Err(e) => return Err(errno_to_nfs_rustix(e)),
            };
        let st = fstat(fd.as_fd())?;
        drop(act);
        match how {
            CreateHow::Unchecked(s) | CreateHow::Guarded(s) => {
                // the mode was applied by the create itself (umask is 0)
                self.apply_sattr(view, fd.as_fd(), &st, s, false)?;
            }
            CreateHow::Exclusive(verf) => {
                let _as = self.act(view)?;
                let (a, m) = verifier_times(verf);
                rustix::fs::futimens(
                    &fd,
                    &Timestamps {
                        last_access: a,
                        last_modification: m,
                    },
                )
                .map_err(errno_to_nfs_rustix)?;
            }
        }
        if created {
            // a reused file was counted when it was made (and a truncation by apply_sattr)
            view.usage.add_blocks(st.st_uid, 0, attr::blocks(&st));
        }
        let obj = self.obj_of(view, fd.as_fd())?;
        self.sync_dir(dfd.as_fd());
        Ok((obj, wcc_of(view, &before, dfd.as_fd())))
    }

    /// Creates a directory with the requested mode (setgid and sticky bits included).
    pub fn mkdir(
        &self,
        view: &View,
        dir: &KernelHandle,
        name: &[u8],
        set: &sattr3,
    ) -> R<(Obj, wcc_data)> {
        let name = check_new_name(name)?;
        if view.readonly {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        // the new directory belongs to the view's store uid
        let reserved = view
            .usage
            .reserve(view.ids.uid, 4096)
            .ok_or(nfsstat3::NFS3ERR_DQUOT)?;
        let (dfd, before) = self.dir(dir)?;
        let mode = mode_of(set, 0o755);
        let (fd, st) = {
            let _as = self.act(view)?;
            rustix::fs::mkdirat(dfd.as_fd(), name, Mode::from_raw_mode(mode & 0o1777))
                .map_err(errno_to_nfs_rustix)?;
            let fd = rustix::fs::openat(
                dfd.as_fd(),
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno_to_nfs_rustix)?;
            if mode & 0o6000 != 0 {
                // mkdir(2) ignores setuid/setgid bits; nbgrader's inbound wants 2733
                rustix::fs::chmod(proc_path(fd.as_fd()), Mode::from_raw_mode(mode & 0o7777))
                    .map_err(errno_to_nfs_rustix)?;
            }
            let st = fstat(fd.as_fd())?;
            (fd, st)
        };
        reserved.settle(0, attr::blocks(&st));
        self.apply_sattr(view, fd.as_fd(), &st, set, false)?;
        let obj = self.obj_of(view, fd.as_fd())?;
        self.sync_dir(dfd.as_fd());
        Ok((obj, wcc_of(view, &before, dfd.as_fd())))
    }

    /// Creates a FIFO or a unix socket (MKNOD). Device nodes are refused with `NFS3ERR_PERM`,
    /// everything in a share view with `NFS3ERR_ACCES`.
    pub fn mknod(
        &self,
        view: &View,
        dir: &KernelHandle,
        name: &[u8],
        kind: SpecialKind,
        set: &sattr3,
    ) -> R<(Obj, wcc_data)> {
        let name = check_new_name(name)?;
        if view.readonly {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        refuse_in_share(view, "MKNOD")?;
        let file_type = match kind {
            SpecialKind::Fifo => rustix::fs::FileType::Fifo,
            SpecialKind::Socket => rustix::fs::FileType::Socket,
            SpecialKind::Device => return Err(nfsstat3::NFS3ERR_PERM),
        };
        let (dfd, before) = self.dir(dir)?;
        let mode = mode_of(set, 0o644) & 0o777;
        let (fd, obj) = {
            let _as = self.act(view)?;
            rustix::fs::mknodat(dfd.as_fd(), name, file_type, Mode::from_raw_mode(mode), 0)
                .map_err(errno_to_nfs_rustix)?;
            self.obj_at(view, dfd.as_fd(), name)?
        };
        let st = fstat(fd.as_fd())?;
        self.apply_sattr(view, fd.as_fd(), &st, set, false)?;
        self.sync_dir(dfd.as_fd());
        Ok((obj, wcc_of(view, &before, dfd.as_fd())))
    }

    /// Creates a symlink holding `target` verbatim (the server never follows it). Not in a share
    /// view (`NFS3ERR_ACCES`).
    pub fn symlink(
        &self,
        view: &View,
        dir: &KernelHandle,
        name: &[u8],
        target: &[u8],
        set: &sattr3,
    ) -> R<(Obj, wcc_data)> {
        let name = check_new_name(name)?;
        if target.is_empty() || target.contains(&0) {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        if target.len() > attr::PATH_MAX {
            return Err(nfsstat3::NFS3ERR_NAMETOOLONG);
        }
        if view.readonly {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        refuse_in_share(view, "SYMLINK")?;
        let (dfd, before) = self.dir(dir)?;
        let (fd, obj) = {
            let _as = self.act(view)?;
            rustix::fs::symlinkat(OsStr::from_bytes(target), dfd.as_fd(), name)
                .map_err(errno_to_nfs_rustix)?;
            self.obj_at(view, dfd.as_fd(), name)?
        };
        let st = fstat(fd.as_fd())?;
        let no_mode = sattr3 {
            mode: nfs3_types::nfs3::Nfs3Option::None,
            ..set.clone()
        };
        self.apply_sattr(view, fd.as_fd(), &st, &no_mode, false)?;
        self.sync_dir(dfd.as_fd());
        Ok((obj, wcc_of(view, &before, dfd.as_fd())))
    }

    /// The target of a symlink.
    pub fn readlink(&self, view: &View, kh: &KernelHandle) -> R<(Vec<u8>, fattr3)> {
        let (fd, st) = self.path(kh)?;
        if !is_type(&st, libc::S_IFLNK) {
            return Err(nfsstat3::NFS3ERR_INVAL);
        }
        let target = rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(errno_to_nfs_rustix)?;
        Ok((target.into_bytes(), fattr(view, &st)))
    }

    /// Removes a non-directory (`rmdir == false`) or an empty directory.
    pub fn remove(&self, view: &View, dir: &KernelHandle, name: &[u8], rmdir: bool) -> R<wcc_data> {
        let name = check_new_name(name)?;
        if view.readonly {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        let (dfd, before) = self.dir(dir)?;
        {
            let _as = self.act(view)?;
            let victim = rustix::fs::statat(dfd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno_to_nfs_rustix)?;
            let is_dir = is_type(&victim, libc::S_IFDIR);
            if rmdir && !is_dir {
                return Err(nfsstat3::NFS3ERR_NOTDIR);
            }
            if !rmdir && is_dir {
                return Err(nfsstat3::NFS3ERR_ISDIR);
            }
            let flags = if rmdir {
                AtFlags::REMOVEDIR
            } else {
                AtFlags::empty()
            };
            rustix::fs::unlinkat(dfd.as_fd(), name, flags).map_err(|e| {
                if rmdir && e == rustix::io::Errno::EXIST {
                    nfsstat3::NFS3ERR_NOTEMPTY
                } else {
                    errno_to_nfs_rustix(e)
                }
            })?;
            if victim.st_nlink <= 1 || is_dir {
                view.usage
                    .add_blocks(victim.st_uid, attr::blocks(&victim), 0);
                // its last name is gone: a kept descriptor would hold its blocks
                self.open_files.forget_inode(victim.st_dev, victim.st_ino);
            }
        }
        self.sync_dir(dfd.as_fd());
        Ok(wcc_of(view, &before, dfd.as_fd()))
    }

    /// Renames within one view; an existing compatible target is replaced.
    pub fn rename(
        &self,
        view: &View,
        from_dir: &KernelHandle,
        from_name: &[u8],
        to_dir: &KernelHandle,
        to_name: &[u8],
    ) -> R<(wcc_data, wcc_data)> {
        self.rename_noting(view, from_dir, from_name, to_dir, to_name, |_, _| {})
    }

    /// `rename`, calling `before(dev, ino)` with the source's inode right before rename(2)
    /// (the replay record of [`super::replay`]).
    pub fn rename_noting(
        &self,
        view: &View,
        from_dir: &KernelHandle,
        from_name: &[u8],
        to_dir: &KernelHandle,
        to_name: &[u8],
        before: impl FnOnce(u64, u64),
    ) -> R<(wcc_data, wcc_data)> {
        let from_name = check_new_name(from_name)?;
        let to_name = check_new_name(to_name)?;
        if view.readonly {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        let (from, from_before) = self.dir(from_dir)?;
        let (to, to_before) = self.dir(to_dir)?;
        {
            let _as = self.act(view)?;
            let source = rustix::fs::statat(from.as_fd(), from_name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno_to_nfs_rustix)?;
            let target = rustix::fs::statat(to.as_fd(), to_name, AtFlags::SYMLINK_NOFOLLOW).ok();
            before(source.st_dev, source.st_ino);
            rustix::fs::renameat(from.as_fd(), from_name, to.as_fd(), to_name).map_err(|e| {
                if e == rustix::io::Errno::NOTEMPTY {
                    nfsstat3::NFS3ERR_EXIST
                } else {
                    errno_to_nfs_rustix(e)
                }
            })?;
            if let Some(t) = target {
                let same = t.st_ino == source.st_ino && t.st_dev == source.st_dev;
                if !same && (t.st_nlink <= 1 || is_type(&t, libc::S_IFDIR)) {
                    view.usage.add_blocks(t.st_uid, attr::blocks(&t), 0);
                    self.open_files.forget_inode(t.st_dev, t.st_ino);
                }
            }
        }
        self.sync_dir(from.as_fd());
        if from_before.st_ino != to_before.st_ino {
            self.sync_dir(to.as_fd());
        }
        Ok((
            wcc_of(view, &from_before, from.as_fd()),
            wcc_of(view, &to_before, to.as_fd()),
        ))
    }

    /// Whether `name` in `dir` is the inode `(dev, ino)` (looked up as the view, without
    /// following a symlink); false when it does not exist.
    pub fn names_inode(
        &self,
        view: &View,
        dir: &KernelHandle,
        name: &[u8],
        dev: u64,
        ino: u64,
    ) -> R<bool> {
        let name = check_new_name(name)?;
        let (dfd, _) = self.dir(dir)?;
        let _as = self.act(view)?;
        Ok(
            rustix::fs::statat(dfd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_dev == dev && st.st_ino == ino),
        )
    }

    /// Makes a hard link to `file` named `name` in `dir`. Not in a share view (`NFS3ERR_ACCES`).
    pub fn link(
        &self,
        view: &View,
        file: &KernelHandle,
        dir: &KernelHandle,
        name: &[u8],
    ) -> R<(fattr3, wcc_data)> {
        let name = check_new_name(name)?;
        if view.readonly {
            return Err(nfsstat3::NFS3ERR_ROFS);
        }
        refuse_in_share(view, "LINK")?;
        let (ffd, fst) = self.path(file)?;
        if is_type(&fst, libc::S_IFDIR) {
            return Err(nfsstat3::NFS3ERR_ISDIR);
        }
        let (dfd, before) = self.dir(dir)?;
        {
            let _as = self.act(view)?;
            // linking through /proc needs no CAP_DAC_READ_SEARCH, so the kernel checks the
            // view's own rights (protected_hardlinks included)
            rustix::fs::linkat(
                rustix::fs::CWD,
                proc_path(ffd.as_fd()),
                dfd.as_fd(),
                name,
                AtFlags::SYMLINK_FOLLOW,
            )
            .map_err(errno_to_nfs_rustix)?;
        }
        self.sync_dir(dfd.as_fd());
        let attr = fattr(view, &fstat(ffd.as_fd())?);
        Ok((attr, wcc_of(view, &before, dfd.as_fd())))
    }

    /// ACCESS: the rights out of `asked` that the view's identity has.
    pub fn access(&self, view: &View, kh: &KernelHandle, asked: u32) -> R<(u32, fattr3)> {
        let (_, st) = self.path(kh)?;
        Ok((attr::access_bits(view, &st, asked), fattr(view, &st)))
    }

    /// Space of the view: its quota when it has one (a home's size, or in a shared tree the
    /// size of the view's own bytes), else the file system's.
    pub fn fsstat(&self, view: &View, kh: &KernelHandle) -> R<(FsStat, fattr3)> {
        let (fd, st) = self.path(kh)?;
        let vfs = rustix::fs::fstatvfs(&fd).map_err(errno_to_nfs_rustix)?;
        let frsize = vfs.f_frsize.max(1);
        let mut out = FsStat {
            total: vfs.f_blocks * frsize,
            free: vfs.f_bfree * frsize,
            avail: vfs.f_bavail * frsize,
            files: vfs.f_files,
            ffree: vfs.f_ffree,
        };
        if let Some(space) = view.usage.space(view.ids.uid) {
            out.total = space.total;
            out.free = space.left.min(out.free);
            out.avail = space.left.min(out.avail);
        }
        if view.readonly {
            out.avail = 0;
        }
        Ok((out, fattr(view, &st)))
    }

    /// One page of `dir` from `cookie` (0 = start), filling at most `budget` bytes of entries and,
    /// for READDIRPLUS, at most `dircount` bytes of names.
    pub fn readdir(
        &self,
        view: &View,
        dir: &KernelHandle,
        cookie: u64,
        budget: usize,
        dircount: Option<usize>,
    ) -> R<DirPage> {
        let plus = dircount.is_some();
        let (root_fd, _) = self.dir(dir)?;
        let at_root = *dir == view.root;
        let _as = self.act(view)?;
        // reopening "." as the view checks its read permission on the directory
        let dfd = rustix::fs::openat(
            root_fd.as_fd(),
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_to_nfs_rustix)?;
        let dir_st = fstat(dfd.as_fd())?;
        if cookie != 0 {
            rustix::fs::seek(&dfd, rustix::fs::SeekFrom::Start(cookie))
                .map_err(|_| nfsstat3::NFS3ERR_BAD_COOKIE)?;
        }
        let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 64 * 1024];
        let mut raw = rustix::fs::RawDir::new(dfd.as_fd(), &mut buf);
        let mut entries = Vec::new();
        let mut used = 0usize;
        let mut names = 0usize;
        let mut eof = true;
        while let Some(item) = raw.next() {
            let e = item.map_err(errno_to_nfs_rustix)?;
            let name = e.file_name().to_bytes();
            let name_size = entry_size(name.len());
            if dircount.is_some_and(|d| names + name_size > d) {
                eof = false;
                break;
            }
            let dots = name == b"." || name == b"..";
            let plus_obj = if plus && !dots {
                self.obj_at(view, dfd.as_fd(), OsStr::from_bytes(name))
                    .ok()
                    .map(|(_, obj)| obj)
            } else {
                None
            };
            let size = if plus {
                entry_plus_size(name.len(), plus_obj.as_ref())
            } else {
                name_size
            };
            if used + size > budget {
                eof = false;
                break;
            }
            used += size;
            names += name_size;
            let fileid = if name == b".." && at_root {
                view.root_ino
            } else {
                e.ino()
            };
            entries.push(DirEntry {
                name: name.to_vec(),
                fileid,
                cookie: e.next_entry_cookie(),
                plus: plus_obj,
            });
        }
        if !eof && entries.is_empty() {
            return Err(nfsstat3::NFS3ERR_TOOSMALL);
        }
        Ok(DirPage {
            entries,
            eof,
            dir_attr: fattr(view, &dir_st),
        })
    }
}

/// Writes all of `data` at `offset`.
fn pwrite_all(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> R<()> {
    let mut done = 0;
    while done < data.len() {
        let n = rustix::io::pwrite(fd, &data[done..], offset + done as u64)
            .map_err(errno_to_nfs_rustix)?;
        done += n;
    }
    Ok(())
}

/// Bytes a write of `[offset, end)` may allocate: what lies past the end of the file, and, when
/// quotas matter, the whole range if it touches a hole (a sparse file must not dodge the quota).
fn write_growth(fd: BorrowedFd<'_>, st: &Stat, offset: u64, end: u64, exact: bool) -> u64 {
    let size = attr::size(st);
    let past_end = end.saturating_sub(size.max(offset));
    let inside = end.min(size).saturating_sub(offset);
    let hole_inside = exact
        && inside > 0
        && match rustix::fs::seek(fd, rustix::fs::SeekFrom::Hole(offset)) {
            Ok(hole) => hole < offset + inside,
            Err(_) => true,
        };
    let growth = if hole_inside { end - offset } else { past_end };
    growth.div_ceil(4096) * 4096
}

/// What MKNOD may create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialKind {
    Fifo,
    Socket,
    /// Character and block devices: never created for clients.
    Device,
}

/// FSSTAT figures in bytes and inodes.
#[derive(Debug, Clone, Copy)]
pub struct FsStat {
    pub total: u64,
    pub free: u64,
    pub avail: u64,
    pub files: u64,
    pub ffree: u64,
}

fn mode_of(s: &sattr3, default: u32) -> u32 {
    match s.mode {
        nfs3_types::nfs3::Nfs3Option::Some(m) => m & 0o7777,
        nfs3_types::nfs3::Nfs3Option::None => default,
    }
}

/// Exclusive create keeps the client's verifier in atime/mtime seconds, as knfsd does.
fn verifier_times(verf: &createverf3) -> (Timespec, Timespec) {
    let a = u32::from_be_bytes(verf.0[0..4].try_into().expect("4 bytes"));
    let m = u32::from_be_bytes(verf.0[4..8].try_into().expect("4 bytes"));
    (
        Timespec {
            tv_sec: i64::from(a),
            tv_nsec: 0,
        },
        Timespec {
            tv_sec: i64::from(m),
            tv_nsec: 0,
        },
    )
}

fn verifier_matches(st: &Stat, verf: &createverf3) -> bool {
    let (a, m) = verifier_times(verf);
    st.st_atime == a.tv_sec && st.st_mtime == m.tv_sec
}
