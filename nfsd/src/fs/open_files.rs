//! Open descriptors kept by kernel handle, so that a GETATTR, a WRITE or a CREATE in a known
//! directory does not pay for `open_by_handle_at`, a reopen through `/proc` and a `close` each
//! time. What is kept, and how:
//!
//! - a directory as `O_RDONLY | O_DIRECTORY` (for `*at` calls and `fsync`; never read through,
//!   since its offset would be shared: READDIR opens `.` afresh), a regular file as `O_RDWR`
//!   (`O_RDONLY` where writing is refused) for `pread`/`pwrite`/`fsync` at explicit offsets,
//!   anything else as the `O_PATH` descriptor it was found with (never opened: a FIFO or a
//!   device is not opened by nfsd);
//! - opened as root, like every descriptor nfsd opens by handle: callers check the view's
//!   rights on each call, as before;
//! - bounded: when full, the least recently used half is closed;
//! - forgotten when its inode goes: on REMOVE, RMDIR and RENAME over it (so a removed file's
//!   blocks are freed at once), when it is found with no links left (removed some other way),
//!   and after [`IDLE`] without use ([`OpenFiles::sweep`]).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::kernel::KernelHandle;

/// Descriptors unused for this long are closed by [`OpenFiles::sweep`].
pub const IDLE: Duration = Duration::from_secs(30);

/// What a kept descriptor was opened as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File {
        writable: bool,
    },
    /// Symlinks, FIFOs, sockets, devices: the `O_PATH` descriptor.
    Other,
}

/// A kept descriptor.
#[derive(Debug, Clone)]
pub struct Open {
    pub fd: Arc<OwnedFd>,
    pub kind: Kind,
}

#[derive(Debug)]
struct Entry {
    open: Open,
    inode: (u64, u64),
    used: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    by_handle: HashMap<KernelHandle, Entry>,
    by_inode: HashMap<(u64, u64), KernelHandle>,
}

/// The kept descriptors of one nfsd.
#[derive(Debug)]
pub struct OpenFiles {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl OpenFiles {
    /// Keeps at most `capacity` descriptors (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // nothing panics while holding the lock; a poisoned map is still a valid map
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept descriptor of `kh`, if any.
    pub fn get(&self, kh: &KernelHandle) -> Option<Open> {
        let mut inner = self.lock();
        let e = inner.by_handle.get_mut(kh)?;
        e.used = Instant::now();
        Some(e.open.clone())
    }

    /// Keeps `open` for `kh`, whose inode is `(dev, ino)`.
    pub fn insert(&self, kh: &KernelHandle, dev: u64, ino: u64, open: Open) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if inner.by_handle.len() >= self.capacity && !inner.by_handle.contains_key(kh) {
            evict_oldest_half(&mut inner);
        }
        let inode = (dev, ino);
        let old = inner.by_handle.insert(
            kh.clone(),
            Entry {
                open,
                inode,
                used: Instant::now(),
            },
        );
        if let Some(old) = old
            && old.inode != inode
        {
            inner.by_inode.remove(&old.inode);
        }
        if let Some(other) = inner.by_inode.insert(inode, kh.clone())
            && other != *kh
        {
            // another handle of the same inode (a new handle type): keep one
            inner.by_handle.remove(&other);
        }
    }

    /// Closes the descriptor kept for `kh` (found with no links left, or no longer usable).
    pub fn forget(&self, kh: &KernelHandle) {
        let mut inner = self.lock();
        if let Some(e) = inner.by_handle.remove(kh) {
            inner.by_inode.remove(&e.inode);
        }
    }

    /// Closes the descriptor kept for the inode `(dev, ino)`, which lost its last name.
    pub fn forget_inode(&self, dev: u64, ino: u64) {
        let mut inner = self.lock();
        if let Some(kh) = inner.by_inode.remove(&(dev, ino)) {
            inner.by_handle.remove(&kh);
        }
    }

    /// Closes the descriptors unused for `idle`.
    pub fn sweep(&self, idle: Duration) -> usize {
        let now = Instant::now();
        retain(&mut self.lock(), |e| now.duration_since(e.used) < idle)
    }

    /// Descriptors kept now.
    pub fn len(&self) -> usize {
        self.lock().by_handle.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn evict_oldest_half(inner: &mut Inner) {
    let mut used: Vec<Instant> = inner.by_handle.values().map(|e| e.used).collect();
    used.sort_unstable();
    if let Some(&cut) = used.get(used.len() / 2) {
        retain(inner, |e| e.used > cut);
    }
}

/// Keeps the entries `keep` says yes to, closes the others; returns how many were closed.
fn retain(inner: &mut Inner, keep: impl Fn(&Entry) -> bool) -> usize {
    let Inner {
        by_handle,
        by_inode,
    } = inner;
    let before = by_handle.len();
    by_handle.retain(|_, e| {
        let kept = keep(e);
        if !kept {
            by_inode.remove(&e.inode);
        }
        kept
    });
    before - by_handle.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kh(n: u8) -> KernelHandle {
        KernelHandle {
            handle_type: 1,
            bytes: vec![n; 8],
        }
    }

    fn open() -> Open {
        Open {
            fd: Arc::new(std::fs::File::open("/").unwrap().into()),
            kind: Kind::Dir,
        }
    }

    #[test]
    fn kept_until_forgotten_by_handle_or_inode() {
        let files = OpenFiles::new(16);
        files.insert(&kh(1), 1, 10, open());
        files.insert(&kh(2), 1, 20, open());
        assert!(files.get(&kh(1)).is_some());
        files.forget_inode(1, 10);
        assert!(files.get(&kh(1)).is_none());
        assert!(files.get(&kh(2)).is_some());
        files.forget(&kh(2));
        assert!(files.is_empty());
        // an inode that is not kept: nothing happens
        files.forget_inode(1, 99);
    }

    #[test]
    fn full_closes_the_least_recently_used_half() {
        let files = OpenFiles::new(8);
        for n in 0..8 {
            files.insert(&kh(n), 1, u64::from(n), open());
            std::thread::sleep(Duration::from_millis(2));
        }
        // 0 is used again: it is now the most recent
        assert!(files.get(&kh(0)).is_some());
        files.insert(&kh(100), 1, 100, open());
        assert!(files.len() <= 5, "{} kept", files.len());
        assert!(files.get(&kh(0)).is_some(), "recently used stays");
        assert!(files.get(&kh(1)).is_none(), "least recently used goes");
        assert!(files.get(&kh(100)).is_some());
    }

    #[test]
    fn idle_descriptors_are_swept_and_capacity_zero_keeps_nothing() {
        let files = OpenFiles::new(8);
        files.insert(&kh(1), 1, 1, open());
        assert_eq!(files.sweep(Duration::from_secs(3600)), 0);
        assert_eq!(files.sweep(Duration::ZERO), 1);
        assert!(files.is_empty());
        let none = OpenFiles::new(0);
        none.insert(&kh(1), 1, 1, open());
        assert!(none.get(&kh(1)).is_none());
    }

    #[test]
    fn a_new_handle_for_a_kept_inode_replaces_the_old() {
        let files = OpenFiles::new(8);
        files.insert(&kh(1), 1, 10, open());
        files.insert(&kh(2), 1, 10, open());
        assert!(files.get(&kh(1)).is_none());
        assert!(files.get(&kh(2)).is_some());
        files.forget_inode(1, 10);
        assert!(files.is_empty());
    }
}
