//! Shared trees belong to nfsd at their top: the root of a share is `root:root 0755`, so no view
//! (each acts as its user's store uid) can create, rename or remove anything there, and no
//! student can squat a course directory before the teacher. Top-level directories are made here
//! instead, for holders of the control API token, owned by the user the course belongs to.
//! Everything works on descriptors of the tree, never on a path below it.

use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use thiserror::Error;

/// Mode of every share root.
pub const ROOT_MODE: u32 = 0o755;
/// Bits a share directory's mode may have: permissions, setuid, setgid, sticky.
pub const DIR_MODE_BITS: u32 = 0o7777;

/// Why a share directory cannot be made as asked. Each names the directory and the way out.
#[derive(Debug, Error)]
pub enum ShareDirError {
    /// bits outside 0o7777
    #[error(
        "mode {mode:#o} of share directory {share}/{name} has bits outside 0o7777; give permission, setuid, setgid and sticky bits only (e.g. 493 for 0755)"
    )]
    BadMode {
        share: String,
        name: String,
        mode: u32,
    },
    /// the name is taken by another user's directory
    #[error(
        "share directory {share}/{name} exists and belongs to uid {uid} (gid {gid}), not to uid {wanted}; it was made before nfsd owned share roots: move it aside on the storage node (shares/{share}/{name} under nfsd's data root) and ask again"
    )]
    Foreign {
        share: String,
        name: String,
        uid: u32,
        gid: u32,
        wanted: u32,
    },
    /// the name is taken by something that is not a directory
    #[error(
        "shares/{share}/{name} exists and is not a directory; move it aside on the storage node and ask again"
    )]
    NotADirectory { share: String, name: String },
    /// a file system call failed
    #[error("share directory {share}/{name}: {what}: {source}")]
    Io {
        share: String,
        name: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Makes an opened share root `root:root 0755`. A root with another owner or mode (a tree from
/// before this rule, or changed by hand) is corrected, with a log line saying what it was.
pub fn own_root(root: &File, path: &Path) -> std::io::Result<()> {
    let md = root.metadata()?;
    let mode = md.mode() & 0o7777;
    if (md.uid(), md.gid(), mode) == (0, 0, ROOT_MODE) {
        return Ok(());
    }
    std::os::unix::fs::fchown(root, Some(0), Some(0))?;
    root.set_permissions(std::fs::Permissions::from_mode(ROOT_MODE))?;
    tracing::warn!(
        tree = %path.display(),
        uid = md.uid(),
        gid = md.gid(),
        mode = format!("{mode:o}"),
        "share root now belongs to nfsd (root:root 0755): views cannot create, rename or remove at its top level; top-level directories come from PUT /v1/shares/<share>/dirs/<name>"
    );
    Ok(())
}

/// A share directory as [`ensure_dir`] left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirState {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub created: bool,
}

/// What [`ensure_dir`] is asked for.
#[derive(Debug, Clone, Copy)]
pub struct DirRequest<'a> {
    pub share: &'a str,
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl DirRequest<'_> {
    fn io(&self, what: &'static str) -> impl FnOnce(rustix::io::Errno) -> ShareDirError + '_ {
        move |e| ShareDirError::Io {
            share: self.share.into(),
            name: self.name.into(),
            what,
            source: e.into(),
        }
    }
}

/// Makes `name` in the share root `root` a directory owned by `uid:gid` with exactly `mode`:
/// created when missing, owner group and mode corrected when it is already that user's, refused
/// when it belongs to someone else or is not a directory.
pub fn ensure_dir(root: BorrowedFd<'_>, req: DirRequest<'_>) -> Result<DirState, ShareDirError> {
    if req.mode & !DIR_MODE_BITS != 0 {
        return Err(ShareDirError::BadMode {
            share: req.share.into(),
            name: req.name.into(),
            mode: req.mode,
        });
    }
    // made as root 0700: nobody can use it before it has its owner and mode
    let created = match rustix::fs::mkdirat(root, req.name, Mode::from_raw_mode(0o700)) {
        Ok(()) => true,
        Err(rustix::io::Errno::EXIST) => false,
        Err(e) => return Err(req.io("creating")(e)),
    };
    let dir = open_dir(root, &req)?;
    let st = rustix::fs::fstat(&dir).map_err(req.io("reading"))?;
    if !created && st.st_uid != req.uid {
        return Err(ShareDirError::Foreign {
            share: req.share.into(),
            name: req.name.into(),
            uid: st.st_uid,
            gid: st.st_gid,
            wanted: req.uid,
        });
    }
    if (st.st_uid, st.st_gid) != (req.uid, req.gid) {
        rustix::fs::fchown(
            &dir,
            Some(rustix::fs::Uid::from_raw(req.uid)),
            Some(rustix::fs::Gid::from_raw(req.gid)),
        )
        .map_err(req.io("changing the owner"))?;
    }
    // after the chown, which may clear setgid
    rustix::fs::fchmod(&dir, Mode::from_raw_mode(req.mode)).map_err(req.io("changing the mode"))?;
    let st = rustix::fs::fstat(&dir).map_err(req.io("reading"))?;
    if created {
        rustix::fs::fsync(root).map_err(req.io("syncing the share root"))?;
    }
    Ok(DirState {
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode & DIR_MODE_BITS,
        created,
    })
}

fn open_dir(root: BorrowedFd<'_>, req: &DirRequest<'_>) -> Result<OwnedFd, ShareDirError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(root, req.name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => {
            Err(ShareDirError::NotADirectory {
                share: req.share.into(),
                name: req.name.into(),
            })
        }
        Err(e) => Err(req.io("opening")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn req(name: &str, uid: u32, mode: u32) -> DirRequest<'_> {
        DirRequest {
            share: "exchange",
            name,
            uid,
            gid: 20100,
            mode,
        }
    }

    #[test]
    fn made_then_found_then_refused_for_another_user() {
        let tmp = tempfile::tempdir().unwrap();
        let root = File::open(tmp.path()).unwrap();
        let made = ensure_dir(root.as_fd(), req("course", 20010, 0o2755)).unwrap();
        assert_eq!(
            (made.uid, made.gid, made.mode, made.created),
            (20010, 20100, 0o2755, true)
        );
        // the owner's chmod is undone by the next ensure
        std::fs::set_permissions(tmp.path().join("course"), PermissionsExt::from_mode(0o777))
            .unwrap();
        let found = ensure_dir(root.as_fd(), req("course", 20010, 0o2755)).unwrap();
        assert_eq!((found.mode, found.created), (0o2755, false));
        let err = ensure_dir(root.as_fd(), req("course", 20002, 0o755)).unwrap_err();
        assert!(err.to_string().contains("uid 20010"), "{err}");
        assert!(err.to_string().contains("move it aside"), "{err}");
        std::fs::write(tmp.path().join("file"), b"").unwrap();
        let err = ensure_dir(root.as_fd(), req("file", 20010, 0o755)).unwrap_err();
        assert!(matches!(err, ShareDirError::NotADirectory { .. }), "{err}");
        let err = ensure_dir(root.as_fd(), req("x", 20010, 0o10755)).unwrap_err();
        assert!(matches!(err, ShareDirError::BadMode { .. }), "{err}");
        assert!(!tmp.path().join("x").exists());
    }

    #[test]
    fn a_foreign_root_is_taken_back() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), PermissionsExt::from_mode(0o1777)).unwrap();
        std::os::unix::fs::chown(tmp.path(), Some(20002), Some(20003)).unwrap();
        let root = File::open(tmp.path()).unwrap();
        own_root(&root, tmp.path()).unwrap();
        let md = std::fs::metadata(tmp.path()).unwrap();
        assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (0, 0, 0o755));
    }
}
