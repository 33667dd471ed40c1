//! Safe wrappers around the two Linux calls that make handles survive restarts and renames:
//! `name_to_handle_at(2)` turns a name into the file system's own persistent handle, and
//! `open_by_handle_at(2)` (needs `CAP_DAC_READ_SEARCH`) opens an inode from it again, wherever it
//! has been renamed to. Nothing else lives here.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Largest kernel handle we accept; ext4 uses 8 bytes, xfs up to 24, btrfs up to 40.
pub const MAX_KERNEL_HANDLE: usize = KERNEL_HANDLE_BYTES as usize;
const KERNEL_HANDLE_BYTES: u8 = 40;

/// A file system handle as the kernel gives it out.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KernelHandle {
    /// The kernel's type (an int); swarmhub's wire handles keep one byte of it, so
    /// [`name_to_handle`] refuses a file system whose types do not fit.
    pub handle_type: u8,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for KernelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KernelHandle({}:", self.handle_type)?;
        for b in &self.bytes {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

#[repr(C)]
struct RawHandle {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    f_handle: [u8; MAX_KERNEL_HANDLE],
}

/// The handle of `name` in `dir` (the entry itself when it is a symlink; `name` may be empty to
/// mean `dir` itself).
pub fn name_to_handle(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<KernelHandle> {
    let mut raw = RawHandle {
        handle_bytes: libc::c_uint::from(KERNEL_HANDLE_BYTES),
        handle_type: 0,
        f_handle: [0; MAX_KERNEL_HANDLE],
    };
    let mut mount_id: libc::c_int = 0;
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        0
    };
    // SAFETY: `raw` is a valid `struct file_handle` with room for MAX_KERNEL_HANDLE bytes, as
    // `handle_bytes` says; `name` is NUL-terminated; `mount_id` is a valid out pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut raw as *mut RawHandle,
            &mut mount_id as *mut libc::c_int,
            flags,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EOVERFLOW) {
            return Err(io::Error::other(format!(
                "the file system's handles are longer than {MAX_KERNEL_HANDLE} bytes"
            )));
        }
        return Err(err);
    }
    let handle_type = u8::try_from(raw.handle_type).map_err(|_| {
        io::Error::other(format!(
            "the file system's handle type {} does not fit swarmhub's handles",
            raw.handle_type
        ))
    })?;
    let len = (raw.handle_bytes as usize).min(MAX_KERNEL_HANDLE);
    Ok(KernelHandle {
        handle_type,
        bytes: raw.f_handle[..len].to_vec(),
    })
}

/// Opens the inode behind `handle` on the file system that `mount` lives on.
pub fn open_by_handle(
    mount: BorrowedFd<'_>,
    handle: &KernelHandle,
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    let handle_bytes = match libc::c_uint::try_from(handle.bytes.len()) {
        Ok(n) if handle.bytes.len() <= MAX_KERNEL_HANDLE => n,
        _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    let mut raw = RawHandle {
        handle_bytes,
        handle_type: libc::c_int::from(handle.handle_type),
        f_handle: [0; MAX_KERNEL_HANDLE],
    };
    raw.f_handle[..handle.bytes.len()].copy_from_slice(&handle.bytes);
    // SAFETY: `raw` is a valid `struct file_handle` whose `handle_bytes` fits its buffer.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            &mut raw as *mut RawHandle,
            flags | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // a descriptor is a C int; the syscall's return value is a long only to carry other results
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::other("open_by_handle_at: no fd"))?;
    // SAFETY: the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn handle_survives_rename() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"hello").unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        let h = name_to_handle(root.as_fd(), c"a").unwrap();
        std::fs::rename(dir.path().join("a"), dir.path().join("b")).unwrap();
        let fd = open_by_handle(root.as_fd(), &h, libc::O_RDONLY).unwrap();
        let text = std::io::read_to_string(std::fs::File::from(fd)).unwrap();
        assert_eq!(text, "hello");
        let own = name_to_handle(root.as_fd(), c"").unwrap();
        assert_ne!(own, h);
    }
}
