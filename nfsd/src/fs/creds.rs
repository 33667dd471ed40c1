//! Acting as a view's identity on the current thread. The kernel then does the permission
//! checks (mode bits, sticky directories, setgid inheritance, ownership rules) and records the
//! store uid/gid as owner of what gets created — exactly as if the user worked on the storage
//! node. Only the calling thread changes (`setfsuid`, `setfsgid` and the raw per-thread
//! `setgroups` syscall; glibc's `setgroups` would change every thread). The guard restores root
//! on drop, so a blocking-pool thread never leaks an identity into the next task.

use std::io;

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
        set_groups(&ids.groups)?;
        // SAFETY: setfsgid/setfsuid only change the calling thread's credentials.
        unsafe {
            libc::setfsgid(ids.gid);
            libc::setfsuid(ids.uid);
        }
        // setfsuid reports no errors; a second call returns the value now in force (as a C int:
        // the id's bits, which cast_unsigned gives back).
        // SAFETY: as above; -1 (u32::MAX) is an invalid id, so the call only reads.
        let now_uid = unsafe { libc::setfsuid(u32::MAX) }.cast_unsigned();
        // SAFETY: as above.
        let now_gid = unsafe { libc::setfsgid(u32::MAX) }.cast_unsigned();
        let guard = ActAs {
            _not_send: std::marker::PhantomData,
        };
        if now_uid != ids.uid || now_gid != ids.gid {
            return Err(io::Error::other(format!(
                "could not act as uid {} gid {} (now {now_uid}:{now_gid}); swarmhub-nfsd must run as root with CAP_SETUID and CAP_SETGID",
                ids.uid, ids.gid
            )));
        }
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
        let _ = set_groups(&[]);
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
    }
}
