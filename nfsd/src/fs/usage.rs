//! Space accounting for quotas (`size=`), per tree and per owner within a tree. The counts start
//! from one walk of the tree and are then kept current from the block counts that operations
//! change, so a WRITE past a limit is refused with `NFS3ERR_DQUOT` without walking again, and
//! FSSTAT can report the volume's own size and free space. One [`TreeUsage`] is shared by every
//! view of a tree.
//!
//! Two kinds of limit apply to a tree:
//! - the tree's own cap: a home's `size` (a home is the only view of its tree);
//! - a cap per owner: in a shared tree, a view with `size` limits the bytes owned on disk by
//!   that view's store uid, so one student cannot fill the nbgrader exchange for everyone.
//!
//! Bytes are charged to the file's owner (`st_uid`), as kernel quotas do: a write into another
//! user's file counts against that user. Growth is reserved before the data is written
//! ([`TreeUsage::reserve`]), so concurrent WRITEs cannot all pass the check at once and overshoot,
//! and settled afterwards from the real block counts ([`Reservation::settle`]), so the counts
//! follow what is on disk even when a write fails half way.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// The limits of one tree, from the options of its views.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Cap of the whole tree.
    pub tree: Option<u64>,
    /// Caps of the bytes owned by a store uid.
    pub owners: HashMap<u32, u64>,
}

impl Limits {
    /// Whether anything is limited (and so the tree must be counted).
    pub fn any(&self) -> bool {
        self.tree.is_some() || !self.owners.is_empty()
    }
}

/// Space used by one tree, in bytes of allocated blocks, in total and per owner.
#[derive(Debug, Default)]
pub struct TreeUsage {
    // held for a few arithmetic operations, never across I/O
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    limits: Limits,
    used: i64,
    owners: HashMap<u32, i64>,
}

/// The space one identity sees: its limit and what is left of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    pub left: u64,
}

/// Bytes as a signed count. The counts are signed because changes are added as signed deltas
/// and a count may dip below zero (it then reads as 0); one file system's bytes stay far below
/// 2^63, so the saturation is never reached.
fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// A signed count as bytes, below zero as none.
fn unsigned(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

impl Counts {
    fn owner_used(&self, uid: u32) -> u64 {
        unsigned(self.owners.get(&uid).copied().unwrap_or(0))
    }

    fn tree_used(&self) -> u64 {
        unsigned(self.used)
    }

    fn admits(&self, uid: u32, growth: u64) -> bool {
        if growth == 0 {
            return true;
        }
        let tree_ok = self
            .limits
            .tree
            .is_none_or(|l| self.tree_used().saturating_add(growth) <= l);
        let owner_ok = self
            .limits
            .owners
            .get(&uid)
            .is_none_or(|&l| self.owner_used(uid).saturating_add(growth) <= l);
        tree_ok && owner_ok
    }

    fn add(&mut self, uid: u32, delta: i64) {
        if delta != 0 {
            self.used += delta;
            *self.owners.entry(uid).or_default() += delta;
        }
    }
}

impl TreeUsage {
    /// Starts accounting for a tree by walking it once.
    pub fn count(root: &Path, limits: Limits) -> std::io::Result<Self> {
        let usage = Self::default();
        usage.set_limits(limits);
        usage.recount(root)?;
        Ok(usage)
    }

    /// Replaces the counts with a fresh walk of the tree.
    pub fn recount(&self, root: &Path) -> std::io::Result<()> {
        let (used, owners) = walk(root)?;
        let mut c = self.lock();
        c.used = signed(used);
        c.owners = owners
            .into_iter()
            .map(|(uid, bytes)| (uid, signed(bytes)))
            .collect();
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().expect("poisoned")
    }

    pub fn set_limits(&self, limits: Limits) {
        self.lock().limits = limits;
    }

    /// Puts `limits` in force on the tree at `root`, counting it first when nothing limited it
    /// before (an unlimited tree is not counted).
    pub fn apply_limits(&self, root: &Path, limits: Limits) -> std::io::Result<()> {
        if !self.is_limited() && limits.any() {
            self.recount(root)?;
        }
        self.set_limits(limits);
        Ok(())
    }

    pub fn limits(&self) -> Limits {
        self.lock().limits.clone()
    }

    /// Whether any limit applies to the tree.
    pub fn is_limited(&self) -> bool {
        self.lock().limits.any()
    }

    /// Bytes the whole tree uses.
    pub fn used(&self) -> u64 {
        self.lock().tree_used()
    }

    /// Bytes owned by `uid` in the tree.
    pub fn used_by(&self, uid: u32) -> u64 {
        self.lock().owner_used(uid)
    }

    /// Whether `growth` more bytes owned by `uid` fit under the limits.
    pub fn admits(&self, uid: u32, growth: u64) -> bool {
        self.lock().admits(uid, growth)
    }

    /// Reserves `growth` bytes for `uid` if they fit under the limits. The reservation counts
    /// until it is [settled](Reservation::settle) with the real block counts or dropped.
    pub fn reserve(&self, uid: u32, growth: u64) -> Option<Reservation<'_>> {
        let mut c = self.lock();
        if !c.admits(uid, growth) {
            return None;
        }
        c.add(uid, signed(growth));
        Some(Reservation {
            usage: self,
            uid,
            bytes: growth,
        })
    }

    /// Records a change of allocated blocks (512-byte units, as `st_blocks`) of an object owned
    /// by `uid`.
    pub fn add_blocks(&self, uid: u32, before: u64, after: u64) {
        let delta = signed(after.saturating_mul(512)) - signed(before.saturating_mul(512));
        self.lock().add(uid, delta);
    }

    /// Moves the blocks of an object from one owner to another (a chown).
    pub fn chown(&self, from: u32, to: u32, blocks: u64) {
        if from != to {
            let bytes = signed(blocks.saturating_mul(512));
            let mut c = self.lock();
            *c.owners.entry(from).or_default() -= bytes;
            *c.owners.entry(to).or_default() += bytes;
        }
    }

    /// The space `uid` sees: its own cap within the tree when it has one (bounded by what the
    /// tree's cap leaves), else the tree's cap; `None` without limits.
    pub fn space(&self, uid: u32) -> Option<Space> {
        let c = self.lock();
        let tree = c.limits.tree.map(|l| Space {
            total: l,
            left: l.saturating_sub(c.tree_used()),
        });
        match (c.limits.owners.get(&uid), tree) {
            (Some(&l), tree) => {
                let left = l.saturating_sub(c.owner_used(uid));
                Some(Space {
                    total: l,
                    left: tree.map_or(left, |t| left.min(t.left)),
                })
            }
            (None, tree) => tree,
        }
    }
}

/// Bytes held for an operation that may allocate them. Dropping it gives them back.
#[derive(Debug)]
#[must_use = "a reservation is given back when dropped"]
pub struct Reservation<'a> {
    usage: &'a TreeUsage,
    uid: u32,
    bytes: u64,
}

impl Reservation<'_> {
    /// Replaces the reservation by the real change of allocated blocks of the object.
    pub fn settle(self, before: u64, after: u64) {
        self.usage.add_blocks(self.uid, before, after);
        // Drop gives the reserved bytes back
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.usage.lock().add(self.uid, -signed(self.bytes));
    }
}

/// Bytes allocated below `root`, in total and per owner (each inode counted once, hard links
/// included once).
fn walk(root: &Path) -> std::io::Result<(u64, HashMap<u32, u64>)> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut owners: HashMap<u32, u64> = HashMap::new();
    let mut charge = |md: &std::fs::Metadata| {
        let bytes = md.blocks() * 512;
        total += bytes;
        *owners.entry(md.uid()).or_default() += bytes;
    };
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        charge(&std::fs::symlink_metadata(&dir)?);
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let md = entry.metadata()?;
            if md.is_dir() {
                stack.push(entry.path());
            } else if md.nlink() <= 1 || seen.insert((md.dev(), md.ino())) {
                charge(&md);
            }
        }
    }
    Ok((total, owners))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn counts_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/b"), vec![1u8; 5_000]).unwrap();
        std::fs::hard_link(dir.path().join("d/b"), dir.path().join("c")).unwrap();
        let me = std::fs::metadata(dir.path()).unwrap().uid();
        let limits = Limits {
            tree: Some(1 << 20),
            ..Limits::default()
        };
        let u = TreeUsage::count(dir.path(), limits).unwrap();
        // 12 KiB + 8 KiB of data blocks, plus two directories
        assert!(u.used() >= 20_480 && u.used() < 40_000, "{}", u.used());
        assert_eq!(u.used_by(me), u.used());
        assert!(u.admits(me, 100));
        assert!(!u.admits(me, 2 << 20));
        u.add_blocks(me, 0, 8);
        assert!(u.used() >= 24_576);
        u.set_limits(Limits::default());
        assert!(u.admits(me, u64::MAX));
        assert_eq!(u.space(me), None);
    }

    #[test]
    fn owners_have_their_own_caps_within_the_tree() {
        let u = TreeUsage::default();
        u.set_limits(Limits {
            tree: Some(3 << 20),
            owners: HashMap::from([(1, 1 << 20), (2, 1 << 20)]),
        });
        let one = u.reserve(1, 1 << 20).unwrap();
        // 1 is full, 2 is not
        assert!(u.reserve(1, 4096).is_none());
        u.reserve(2, 1 << 20).unwrap().settle(0, 2048);
        // an owner without a cap is bounded by the tree's cap only
        u.reserve(3, 1 << 20).unwrap().settle(0, 2048);
        assert!(u.reserve(3, 4096).is_none());
        assert_eq!(
            u.space(1),
            Some(Space {
                total: 1 << 20,
                left: 0
            })
        );
        // a settled reservation counts what the disk allocated, not what was reserved
        one.settle(0, 8);
        assert_eq!(u.used_by(1), 4096);
        assert_eq!(u.used(), 4096 + (2 << 20));
        // a dropped reservation gives its bytes back
        drop(u.reserve(1, 4096).unwrap());
        assert_eq!(u.used_by(1), 4096);
        // the tree's cap bounds what an owner's cap leaves
        assert_eq!(u.space(1).unwrap().left, (1 << 20) - 4096);
        let _held = u.reserve(1, 512 << 10).unwrap();
        assert_eq!(u.space(2).unwrap().left, 0);
        // a chown moves bytes between owners, not in or out of the tree
        let before = u.used();
        u.chown(2, 1, 2048);
        assert_eq!(u.used(), before);
        assert_eq!(u.used_by(2), 0);
    }

    #[test]
    fn the_walk_charges_each_owner() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::write(dir.path().join("b"), vec![1u8; 10_000]).unwrap();
        std::os::unix::fs::chown(dir.path().join("b"), Some(4242), None).unwrap();
        let u = TreeUsage::count(dir.path(), Limits::default()).unwrap();
        let b = std::fs::metadata(dir.path().join("b")).unwrap().blocks() * 512;
        assert_eq!(u.used_by(4242), b);
        assert!(u.used() > b);
    }
}
