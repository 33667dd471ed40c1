//! Acting as a view's identity on the current thread. The kernel then does the permission
//! checks (mode bits, sticky directories, setgid inheritance, ownership rules) and records the
//! store uid/gid as owner of what gets created — exactly as if the user worked on the storage
//! node. Only the calling thread changes (`setfsuid`, `setfsgid` and the raw per-thread
//! `setgroups` syscall; glibc's `setgroups` would change every thread). The guard restores root's
//! fsuid and fsgid on drop, so a thread never leaks an identity into the next task.
//!
//! A switch costs two syscalls in and two out. The supplementary groups stay after the guard
//! (with fsuid 0 they grant nothing root does not have) and are set again only when the next
//! identity's differ; that the kernel honours the switch is checked once per thread (a process
//! that may switch once may always: nfsd never drops a capability while it runs).

use std::cell::{Cell, RefCell};
use std::io;

thread_local! {
    /// The supplementary groups this thread holds now, when an `ActAs` has set them.
    static GROUPS: RefCell<Option<Vec<u32>>> = const { RefCell::new(None) };
    /// A switch on this thread has been checked to take effect.
    static CHECKED: Cell<bool> = const { Cell::new(false) };
}

/// The store identity a view acts as on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// While alive, the current thread's file system identity is that of a view.
pub struct ActAs {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ActAs {
    /// Switches the calling thread to `ids`. Fails (and stays root) if the process lacks the
    /// capabilities to do so.
    pub fn new(ids: &StoreIds) -> io::Result<Self> {
        let same_groups = GROUPS.with_borrow(|g| g.as_deref() == Some(&ids.groups[..]));
        if !same_groups {
            GROUPS.set(None);
            set_groups(&ids.groups)?;
            GROUPS.set(Some(ids.groups.clone()));
        }
        // SAFETY: setfsgid/setfsuid only change the calling thread's credentials.
        unsafe {
            libc::setfsgid(ids.gid);
            libc::setfsuid(ids.uid);
        }
        let guard = ActAs {
            _not_send: std::marker::PhantomData,
        };
        if CHECKED.get() {
            return Ok(guard);
        }
        // setfsuid reports no errors; a second call returns the value now in force (as a C int:
        // the id's bits, which cast_unsigned gives back).
        // SAFETY: as above; -1 (u32::MAX) is an invalid id, so the call only reads.
        let now_uid = unsafe { libc::setfsuid(u32::MAX) }.cast_unsigned();
        // SAFETY: as above.
        let now_gid = unsafe { libc::setfsgid(u32::MAX) }.cast_unsigned();
        if now_uid != ids.uid || now_gid != ids.gid {
            return Err(io::Error::other(format!(
                "could not act as uid {} gid {} (now {now_uid}:{now_gid}); swarmhub-nfsd must run as root with CAP_SETUID and CAP_SETGID",
                ids.uid, ids.gid
            )));
        }
        CHECKED.set(true);
        Ok(guard)
    }
}

impl Drop for ActAs {
    fn drop(&mut self) {
        // SAFETY: restores this thread to root's file system identity.
        unsafe {
            libc::setfsuid(0);
            libc::setfsgid(0);
        }
    }
}

fn set_groups(groups: &[u32]) -> io::Result<()> {
    // SAFETY: the raw syscall changes only this thread's supplementary groups; the pointer and
    // length describe a valid slice of gid_t.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_setgroups,
            groups.len() as libc::size_t,
            groups.as_ptr().cast::<libc::gid_t>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn files_created_while_acting_belong_to_the_identity_and_root_returns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let ids = StoreIds {
            uid: 4242,
            gid: 4343,
            groups: vec![4444],
        };
        {
            let _g = ActAs::new(&ids).unwrap();
            std::fs::write(dir.path().join("f"), b"x").unwrap();
            // root-only file: denied while acting
            std::fs::read("/etc/shadow").unwrap_err();
        }
        let md = std::fs::metadata(dir.path().join("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (4242, 4343));
        // back to root: can chown again
        std::os::unix::fs::chown(dir.path().join("f"), Some(1), Some(1)).unwrap();
        // a second identity with other groups: the groups follow, the owner too
        let other = StoreIds {
            uid: 4545,
            gid: 4646,
            groups: vec![],
        };
        std::fs::set_permissions(
            dir.path().join("f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o060),
        )
        .unwrap();
        std::os::unix::fs::chown(dir.path().join("f"), Some(1), Some(4444)).unwrap();
        {
            // 4444 is a supplementary group of the first identity only
            let _g = ActAs::new(&ids).unwrap();
            std::fs::read(dir.path().join("f")).unwrap();
        }
        {
            let _g = ActAs::new(&other).unwrap();
            std::fs::read(dir.path().join("f")).unwrap_err();
            std::fs::write(dir.path().join("g"), b"y").unwrap();
        }
        let md = std::fs::metadata(dir.path().join("g")).unwrap();
        assert_eq!((md.uid(), md.gid()), (4545, 4646));
    }
}
