//! The file system side of nfsd: views of trees, handles, identity switching, attributes and the
//! operations NFS procedures need. Every operation here is blocking and is called from a blocking
//! thread; it works on file descriptors and `*at` calls only, one path component at a time, and
//! never follows a symlink, so nothing it does can leave a view's tree. It knows nothing of RPC.

pub mod attr;
pub mod creds;
pub mod handle;
pub mod kernel;
pub mod open_files;
pub mod ops;
pub mod replay;
pub mod usage;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nfs3_types::nfs3::nfsstat3;

use self::creds::StoreIds;
use self::kernel::KernelHandle;
use self::usage::TreeUsage;

/// One volume as the NFS side sees it: a tree and the identity that acts on it.
#[derive(Debug)]
pub struct View {
    pub id: u32,
    pub name: String,
    /// Handle of the tree's root directory.
    pub root: KernelHandle,
    /// Inode number of the root (the `fileid` clients see for it).
    pub root_ino: u64,
    pub ids: StoreIds,
    pub client_uid: u32,
    pub client_gid: u32,
    pub readonly: bool,
    /// One user's view of a shared tree (`share=`): no symlinks, special files or hard links
    /// are made through it, so nothing a student submits can point at or block someone else.
    pub shared: bool,
    pub usage: Arc<TreeUsage>,
}

/// Settings of the operations that are not per view.
#[derive(Debug, Clone, Copy)]
pub struct FsOptions {
    /// fsync the directory after namespace changes (create, mkdir, rename, remove, link,
    /// symlink), as NFSv3 requires of a server that acknowledges them.
    pub sync_metadata: bool,
    /// Descriptors kept open by handle ([`open_files`]); 0 keeps none.
    pub open_files: usize,
}

impl Default for FsOptions {
    fn default() -> Self {
        Self {
            sync_metadata: true,
            open_files: DEFAULT_OPEN_FILES,
        }
    }
}

/// Descriptors kept open by default: far below any sane `RLIMIT_NOFILE` once nfsd has raised
/// its soft limit to the hard one, and enough for the files a class works on at once.
pub const DEFAULT_OPEN_FILES: usize = 1024;

/// Shared state of the operations: a descriptor on the data root's file system (for
/// `open_by_handle_at`) and the write verifier of this server instance.
#[derive(Debug)]
pub struct Fs {
    mount: OwnedFd,
    /// Changes with every start, so clients resend writes that were never committed.
    pub write_verifier: [u8; 8],
    pub options: FsOptions,
    /// Counts directory fsyncs (the metrics' counter).
    pub dir_flushes: prometheus_client::metrics::counter::Counter,
    /// Descriptors kept open by handle.
    pub open_files: open_files::OpenFiles,
}

impl Fs {
    /// `dir_flushes` counts the directory fsyncs (the metrics' counter).
    pub fn new(
        mount: OwnedFd,
        options: FsOptions,
        dir_flushes: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Self {
            mount,
            write_verifier: rand::random(),
            options,
            dir_flushes,
            open_files: open_files::OpenFiles::new(options.open_files),
        }
    }

    /// Opens the object behind a kernel handle with `flags` (as root; callers check access).
    pub(crate) fn open(&self, kh: &KernelHandle, flags: libc::c_int) -> Result<OwnedFd, nfsstat3> {
        kernel::open_by_handle(self.mount.as_fd(), kh, flags).map_err(|e| match e.raw_os_error() {
            // the inode is gone, or the handle no longer decodes on this file system
            Some(libc::ESTALE) | Some(libc::ENOENT) | Some(libc::EINVAL) => nfsstat3::NFS3ERR_STALE,
            _ => io_to_nfs(&e),
        })
    }
}

/// Maps an OS error to the NFS status a client understands.
pub fn io_to_nfs(e: &io::Error) -> nfsstat3 {
    errno_to_nfs(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Maps a rustix errno.
pub fn errno_to_nfs_rustix(e: rustix::io::Errno) -> nfsstat3 {
    errno_to_nfs(e.raw_os_error())
}

fn errno_to_nfs(errno: i32) -> nfsstat3 {
    match errno {
        libc::EPERM => nfsstat3::NFS3ERR_PERM,
        libc::ENOENT => nfsstat3::NFS3ERR_NOENT,
        libc::ENXIO => nfsstat3::NFS3ERR_NXIO,
        libc::EACCES => nfsstat3::NFS3ERR_ACCES,
        libc::EEXIST => nfsstat3::NFS3ERR_EXIST,
        libc::EXDEV => nfsstat3::NFS3ERR_XDEV,
        libc::ENODEV => nfsstat3::NFS3ERR_NODEV,
        libc::ENOTDIR => nfsstat3::NFS3ERR_NOTDIR,
        libc::EISDIR => nfsstat3::NFS3ERR_ISDIR,
        libc::EINVAL | libc::ELOOP => nfsstat3::NFS3ERR_INVAL,
        libc::EFBIG => nfsstat3::NFS3ERR_FBIG,
        libc::ENOSPC => nfsstat3::NFS3ERR_NOSPC,
        libc::EROFS => nfsstat3::NFS3ERR_ROFS,
        libc::EMLINK => nfsstat3::NFS3ERR_MLINK,
        libc::ENAMETOOLONG => nfsstat3::NFS3ERR_NAMETOOLONG,
        libc::ENOTEMPTY => nfsstat3::NFS3ERR_NOTEMPTY,
        libc::EDQUOT => nfsstat3::NFS3ERR_DQUOT,
        libc::ESTALE => nfsstat3::NFS3ERR_STALE,
        libc::EOPNOTSUPP => nfsstat3::NFS3ERR_NOTSUPP,
        _ => nfsstat3::NFS3ERR_IO,
    }
}
