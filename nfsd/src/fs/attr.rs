//! Attributes as a view presents them, and the permission rules nfsd applies itself (READ, WRITE
//! and ACCESS; namespace operations leave the checks to the kernel under the view's identity).
//! Owner mapping: what the view's store identity owns is shown as the client identity (1000:100
//! by default); everything else keeps its store ids.

use nfs3_types::nfs3::{
    ACCESS3_DELETE, ACCESS3_EXECUTE, ACCESS3_EXTEND, ACCESS3_LOOKUP, ACCESS3_MODIFY, ACCESS3_READ,
    fattr3, ftype3, nfsstat3, nfstime3, specdata3, wcc_attr,
};
use rustix::fs::Stat;

use super::View;

/// Longest name accepted in one path component.
pub const NAME_MAX: u32 = 255;
/// Longest symlink target accepted.
pub const PATH_MAX: usize = 4096;

pub fn file_type(mode: u32) -> ftype3 {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => ftype3::NF3DIR,
        libc::S_IFLNK => ftype3::NF3LNK,
        libc::S_IFBLK => ftype3::NF3BLK,
        libc::S_IFCHR => ftype3::NF3CHR,
        libc::S_IFSOCK => ftype3::NF3SOCK,
        libc::S_IFIFO => ftype3::NF3FIFO,
        _ => ftype3::NF3REG,
    }
}

/// An NFS time from a stat time. nfstime3 has unsigned 32-bit seconds, so a time before 1970
/// shows as 1970 and one after 2106 as 2106; the kernel keeps nanoseconds below 10^9.
fn time(sec: i64, nsec: impl TryInto<u32>) -> nfstime3 {
    nfstime3 {
        seconds: u32::try_from(sec.max(0)).unwrap_or(u32::MAX),
        nseconds: nsec.try_into().map_or(0, |n| n.min(999_999_999)),
    }
}

/// `st_size` unsigned (the kernel reports no negative size; a negative one would read as 0).
pub fn size(st: &Stat) -> u64 {
    u64::try_from(st.st_size).unwrap_or(0)
}

/// `st_blocks`, in 512-byte units, unsigned (the kernel reports no negative count).
pub fn blocks(st: &Stat) -> u64 {
    u64::try_from(st.st_blocks).unwrap_or(0)
}

/// Mode a shared tree's root is presented with. On disk it is `root:root 0755` and nfsd acts
/// as the view's user, so the kernel refuses every create, rename and remove at the root (no
/// course-directory squatting); nbgrader, though, refuses an exchange root that `access()` does
/// not call writable and chmods it to 0777 when its mode differs, so clients see the mode
/// nbgrader recommends and get EACCES from the operations themselves.
pub const SHARE_ROOT_MODE: u32 = 0o1777;

/// Whether `st` is the root of a shared tree seen through `view`.
fn is_share_root(view: &View, st: &Stat) -> bool {
    view.shared && st.st_ino == view.root_ino && st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// The attributes of `st` as `view` presents them.
pub fn fattr(view: &View, st: &Stat) -> fattr3 {
    let uid = if st.st_uid == view.ids.uid {
        view.client_uid
    } else {
        st.st_uid
    };
    let gid = if st.st_gid == view.ids.gid {
        view.client_gid
    } else {
        st.st_gid
    };
    let rdev = st.st_rdev;
    fattr3 {
        type_: file_type(st.st_mode),
        mode: if is_share_root(view, st) {
            SHARE_ROOT_MODE
        } else {
            st.st_mode & 0o7777
        },
        // no file system nfsd serves counts 2^32 links; saturate rather than wrap
        nlink: u32::try_from(st.st_nlink).unwrap_or(u32::MAX),
        uid,
        gid,
        size: size(st),
        used: blocks(st).saturating_mul(512),
        rdev: specdata3 {
            specdata1: rustix::fs::major(rdev),
            specdata2: rustix::fs::minor(rdev),
        },
        fsid: u64::from(view.id),
        fileid: st.st_ino,
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
    }
}

/// Weak cache consistency attributes (size and times before an operation).
pub fn wcc(st: &Stat) -> wcc_attr {
    wcc_attr {
        size: size(st),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
    }
}

/// The rwx bits (`4|2|1`) that apply to the view's identity for `st`.
pub fn perm_bits(view: &View, st: &Stat) -> u32 {
    let mode = st.st_mode;
    if st.st_uid == view.ids.uid {
        (mode >> 6) & 7
    } else if st.st_gid == view.ids.gid || view.ids.groups.contains(&st.st_gid) {
        (mode >> 3) & 7
    } else {
        mode & 7
    }
}

/// READ is allowed to the owner whatever the mode (a file created 0444 must still be written and
/// read back by the process that created it, as knfsd allows), and to others with `r` or `x`.
pub fn may_read(view: &View, st: &Stat) -> Result<(), nfsstat3> {
    if st.st_uid == view.ids.uid || perm_bits(view, st) & 0o5 != 0 {
        Ok(())
    } else {
        Err(nfsstat3::NFS3ERR_ACCES)
    }
}

/// WRITE: the owner always (see [`may_read`]), others with `w`.
pub fn may_write(view: &View, st: &Stat) -> Result<(), nfsstat3> {
    if view.readonly {
        return Err(nfsstat3::NFS3ERR_ROFS);
    }
    if st.st_uid == view.ids.uid || perm_bits(view, st) & 0o2 != 0 {
        Ok(())
    } else {
        Err(nfsstat3::NFS3ERR_ACCES)
    }
}

/// The ACCESS3 bits granted out of `asked`.
pub fn access_bits(view: &View, st: &Stat, asked: u32) -> u32 {
    // as presented (see SHARE_ROOT_MODE); the operations at a share root still fail
    let bits = if is_share_root(view, st) {
        7
    } else {
        perm_bits(view, st)
    };
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let mut granted = 0;
    if bits & 4 != 0 {
        granted |= ACCESS3_READ;
    }
    if bits & 2 != 0 && !view.readonly {
        granted |= ACCESS3_MODIFY | ACCESS3_EXTEND;
        if is_dir {
            granted |= ACCESS3_DELETE;
        }
    }
    if bits & 1 != 0 {
        granted |= if is_dir {
            ACCESS3_LOOKUP
        } else {
            ACCESS3_EXECUTE
        };
    }
    granted & asked
}

/// Checks one path component from the wire: not empty, no `/`, no NUL, at most 255 bytes.
/// `.` and `..` pass; callers that create or remove refuse them.
pub fn check_name(name: &[u8]) -> Result<&std::ffi::OsStr, nfsstat3> {
    use std::os::unix::ffi::OsStrExt;
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(nfsstat3::NFS3ERR_INVAL);
    }
    if name.len() > NAME_MAX as usize {
        return Err(nfsstat3::NFS3ERR_NAMETOOLONG);
    }
    Ok(std::ffi::OsStr::from_bytes(name))
}

/// Like [`check_name`], and refuses `.` and `..` (for operations that create or remove).
pub fn check_new_name(name: &[u8]) -> Result<&std::ffi::OsStr, nfsstat3> {
    if name == b"." || name == b".." {
        return Err(nfsstat3::NFS3ERR_INVAL);
    }
    check_name(name)
}

/// A uid from the client, mapped back to the store (the client identity means the view's own).
pub fn store_uid(view: &View, uid: u32) -> u32 {
    if uid == view.client_uid {
        view.ids.uid
    } else {
        uid
    }
}

/// A gid from the client, mapped back to the store.
pub fn store_gid(view: &View, gid: u32) -> u32 {
    if gid == view.client_gid {
        view.ids.gid
    } else {
        gid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        check_name(b"ok.txt").unwrap();
        assert_eq!(check_name(b"a/b"), Err(nfsstat3::NFS3ERR_INVAL));
        assert_eq!(check_name(b"a\0b"), Err(nfsstat3::NFS3ERR_INVAL));
        assert_eq!(check_name(b""), Err(nfsstat3::NFS3ERR_INVAL));
        assert_eq!(check_name(&[b'x'; 300]), Err(nfsstat3::NFS3ERR_NAMETOOLONG));
        check_name(b"..").unwrap();
        assert_eq!(check_new_name(b".."), Err(nfsstat3::NFS3ERR_INVAL));
        assert_eq!(check_new_name(b"."), Err(nfsstat3::NFS3ERR_INVAL));
    }
}
