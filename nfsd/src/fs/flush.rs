//! Group commit of directory flushes. Every namespace change (create, mkdir, remove, rename,
//! link, symlink, mknod) must be on disk before it is answered, which costs one `fsync` of the
//! directory. Calls that change the same directory at the same time share that flush:
//!
//! - a call announces its change before making it ([`DirFlushes::begin`]) and, once made, waits
//!   for a flush that *started after* it ([`Change::durable`]);
//! - one flush of a directory runs at a time; the call that leads the next one first gives the
//!   changes already under way in that directory up to [`JOIN_WINDOW`] to be made, so they ride
//!   on the same flush. A lone call never waits: nothing is under way.
//!
//! No call is answered before a flush that covers its change has finished.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

/// How long the leader of a flush waits, at most, for changes under way in the same directory.
/// Far below the cost of the flush itself (a millisecond or more), so a flush shared by two calls
/// is always cheaper than two.
pub const JOIN_WINDOW: Duration = Duration::from_micros(300);

/// A directory: its device and inode number.
type Key = (u64, u64);

/// The flush state of the directories being changed now; entries go away when no call needs them.
#[derive(Debug)]
pub struct DirFlushes {
    dirs: Mutex<HashMap<Key, Arc<Dir>>>,
    /// Flushes run.
    ran: Counter,
    /// Calls covered by a flush another call ran.
    shared: Counter,
    /// [`JOIN_WINDOW`], but for tests.
    window: Duration,
}

impl Default for DirFlushes {
    fn default() -> Self {
        Self::counted(Counter::default(), Counter::default())
    }
}

#[derive(Debug, Default)]
struct Dir {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Flushes begun so far (the number of the latest).
    started: u64,
    /// The latest flush that has finished.
    finished: u64,
    /// A call leads the next flush: it is gathering changes or flushing.
    leading: bool,
    /// The latest flush that failed.
    failed: Option<u64>,
    /// Changes announced and not yet made (or given up).
    under_way: usize,
    /// Calls holding this entry.
    users: usize,
}

/// What a call learns from [`Change::durable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// This call ran the `fsync` itself (false: another call's flush covered it).
    pub ran: bool,
    /// The flush that covered it failed (its errno).
    pub error: Option<i32>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // nothing panics while holding these locks; a poisoned one still holds consistent numbers
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DirFlushes {
    /// Counts flushes run and shared into these counters (the metrics').
    pub fn counted(ran: Counter, shared: Counter) -> Self {
        Self {
            dirs: Mutex::default(),
            ran,
            shared,
            window: JOIN_WINDOW,
        }
    }

    /// Announces a change about to be made in the directory `(dev, ino)`. Dropping the
    /// [`Change`] without calling [`Change::durable`] (the change failed) withdraws it.
    pub fn begin(&self, dev: u64, ino: u64) -> Change<'_> {
        let key = (dev, ino);
        let mut dirs = lock(&self.dirs);
        let dir = dirs.entry(key).or_default().clone();
        let mut st = lock(&dir.state);
        st.users += 1;
        st.under_way += 1;
        drop(st);
        Change {
            flushes: self,
            key,
            dir,
            made: false,
        }
    }

    /// Directories with a change under way or a call waiting now.
    pub fn busy(&self) -> usize {
        lock(&self.dirs).len()
    }

    fn release(&self, key: Key, dir: &Dir) {
        let mut st = lock(&dir.state);
        st.users -= 1;
        let unused = st.users == 0;
        drop(st);
        if unused {
            let mut dirs = lock(&self.dirs);
            // someone may have taken it again between the two locks
            if dirs.get(&key).is_some_and(|d| lock(&d.state).users == 0) {
                dirs.remove(&key);
            }
        }
    }
}

/// A change announced in one directory.
pub struct Change<'a> {
    flushes: &'a DirFlushes,
    key: Key,
    dir: Arc<Dir>,
    /// `durable` was called: the change no longer counts as under way.
    made: bool,
}

impl Change<'_> {
    /// The change is made: makes it durable with `fsync(fd)` of the directory, or by waiting for
    /// a flush of it that another call started after this point. Blocks.
    pub fn durable(self, fd: BorrowedFd<'_>) -> Flushed {
        self.durable_with(|| rustix::fs::fsync(fd).map_err(|e| e.raw_os_error()))
    }

    /// [`Self::durable`] with the flush itself given (tests count and slow it).
    pub fn durable_with(mut self, fsync: impl FnOnce() -> Result<(), i32>) -> Flushed {
        self.made = true;
        let dir = &self.dir;
        let mut st = lock(&dir.state);
        st.under_way -= 1;
        // a leader gathering changes may be waiting for this one
        dir.changed.notify_all();
        // a flush that already started may have missed this change: it needs the next one
        let need = st.started + 1;
        let mut fsync = Some(fsync);
        let out = loop {
            if st.finished >= need {
                break Flushed {
                    ran: false,
                    error: st.failed.filter(|f| *f >= need).map(|_| libc::EIO),
                };
            }
            if !st.leading {
                st.leading = true;
                let deadline = Instant::now() + self.flushes.window;
                while st.under_way > 0 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    st = dir
                        .changed
                        .wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                st.started += 1;
                let mine = st.started;
                drop(st);
                let result = (fsync.take().expect("a call leads at most one flush"))();
                st = lock(&dir.state);
                st.leading = false;
                st.finished = mine;
                if result.is_err() {
                    st.failed = Some(mine);
                }
                dir.changed.notify_all();
                break Flushed {
                    ran: true,
                    error: result.err(),
                };
            }
            st = dir.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        };
        drop(st);
        if out.ran {
            self.flushes.ran.inc();
        } else {
            self.flushes.shared.inc();
        }
        out
    }
}

impl Drop for Change<'_> {
    fn drop(&mut self) {
        if !self.made {
            let mut st = lock(&self.dir.state);
            st.under_way -= 1;
            self.dir.changed.notify_all();
        }
        self.flushes.release(self.key, &self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn calls_that_change_a_directory_at_once_share_one_flush() {
        let flushes = Arc::new(DirFlushes {
            window: Duration::from_secs(60),
            ..DirFlushes::default()
        });
        let runs = Arc::new(AtomicUsize::new(0));
        // all 16 announce their change before any makes it
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (flushes, runs, barrier) = (flushes.clone(), runs.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let change = flushes.begin(1, 2);
                    barrier.wait();
                    change.durable_with(|| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                })
            })
            .collect();
        let out: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one flush for 16 changes");
        assert_eq!(out.iter().filter(|f| f.ran).count(), 1);
        assert!(out.iter().all(|f| f.error.is_none()));
        assert_eq!(flushes.busy(), 0, "entries are dropped when unused");
        assert_eq!(flushes.ran.get(), 1);
        assert_eq!(flushes.shared.get(), 15);
    }

    #[test]
    fn a_call_never_counts_on_a_flush_that_started_before_its_change() {
        let flushes = Arc::new(DirFlushes::default());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let f = flushes.clone();
        let first = std::thread::spawn(move || {
            f.begin(1, 2).durable_with(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
        });
        started_rx.recv().unwrap();
        // this change comes after the running flush began: it needs a flush of its own
        let f = flushes.clone();
        let second = std::thread::spawn(move || f.begin(1, 2).durable_with(|| Ok(())));
        std::thread::sleep(Duration::from_millis(50));
        release_tx.send(()).unwrap();
        assert!(first.join().unwrap().ran);
        assert!(second.join().unwrap().ran);
    }

    #[test]
    fn the_leader_waits_for_a_change_under_way_but_not_forever() {
        // a window long enough that the order the two threads run in cannot matter
        let flushes = Arc::new(DirFlushes {
            window: Duration::from_secs(60),
            ..DirFlushes::default()
        });
        // two changes announced before either is made: whoever leads waits for the other
        let slow = flushes.begin(1, 2);
        let (begun_tx, begun_rx) = std::sync::mpsc::channel();
        let f = flushes.clone();
        let leader = std::thread::spawn(move || {
            let change = f.begin(1, 2);
            begun_tx.send(()).unwrap();
            change.durable_with(|| Ok(()))
        });
        begun_rx.recv().unwrap();
        let joined = slow.durable_with(|| Ok(()));
        let led = leader.join().unwrap();
        assert_eq!(
            [led.ran, joined.ran].iter().filter(|r| **r).count(),
            1,
            "one flush for both"
        );
        assert_eq!(flushes.busy(), 0);
        // a change that is never made holds a leader for the window only (here the real one)
        let flushes = DirFlushes::default();
        let stuck = flushes.begin(1, 2);
        assert!(flushes.begin(1, 2).durable_with(|| Ok(())).ran);
        drop(stuck);
        assert_eq!(flushes.busy(), 0);
    }

    #[test]
    fn a_failed_flush_is_reported_and_other_directories_are_apart() {
        let flushes = DirFlushes::default();
        let out = flushes.begin(1, 2).durable_with(|| Err(libc::EIO));
        assert_eq!(
            out,
            Flushed {
                ran: true,
                error: Some(libc::EIO)
            }
        );
        // a later change in the same directory gets a fresh flush
        let out = flushes.begin(1, 2).durable_with(|| Ok(()));
        assert_eq!(
            out,
            Flushed {
                ran: true,
                error: None
            }
        );
        // another directory's change is never covered by this one's flush
        let a = flushes.begin(1, 2);
        let b = flushes.begin(1, 3);
        assert!(a.durable_with(|| Ok(())).ran);
        assert!(b.durable_with(|| Ok(())).ran);
        assert_eq!(flushes.busy(), 0);
    }

    #[test]
    fn flushes_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let fd = std::fs::File::open(dir.path()).unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        let flushes = DirFlushes::default();
        let change = flushes.begin(st.st_dev, st.st_ino);
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let out = change.durable(std::os::fd::AsFd::as_fd(&fd));
        assert_eq!(
            out,
            Flushed {
                ran: true,
                error: None
            }
        );
    }
}
