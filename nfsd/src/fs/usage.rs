//! Per-tree space accounting for quotas (`size=`). The count starts from a walk of the tree and is
//! then kept current from the block counts that operations change, so a WRITE past the limit can
//! be refused with `NFS3ERR_DQUOT` without walking again, and FSSTAT can report the volume's own
//! size and free space. Shared by every view of a tree.

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Space used by one tree, in bytes of allocated blocks.
#[derive(Debug, Default)]
pub struct TreeUsage {
    /// 0 means no limit.
    limit: AtomicU64,
    used: AtomicI64,
}

impl TreeUsage {
    /// Starts accounting for a tree by walking it once.
    pub fn count(root: &Path, limit: Option<u64>) -> std::io::Result<Self> {
        let usage = Self::default();
        usage.set_limit(limit);
        usage.used.store(walk(root)? as i64, Ordering::Relaxed);
        Ok(usage)
    }

    pub fn set_limit(&self, limit: Option<u64>) {
        self.limit.store(limit.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn limit(&self) -> Option<u64> {
        match self.limit.load(Ordering::Relaxed) {
            0 => None,
            l => Some(l),
        }
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed).max(0) as u64
    }

    /// Whether `growth` more bytes fit under the limit.
    pub fn admits(&self, growth: u64) -> bool {
        match self.limit() {
            None => true,
            Some(limit) => growth == 0 || self.used().saturating_add(growth) <= limit,
        }
    }

    /// Records a change of allocated blocks (512-byte units, as `st_blocks`).
    pub fn add_blocks(&self, before: u64, after: u64) {
        let delta = (after as i64 - before as i64) * 512;
        if delta != 0 {
            self.used.fetch_add(delta, Ordering::Relaxed);
        }
    }
}

/// Bytes allocated below `root` (each inode counted once, hard links included once).
fn walk(root: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let md = std::fs::symlink_metadata(&dir)?;
        total += md.blocks() * 512;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let md = entry.metadata()?;
            if md.is_dir() {
                stack.push(entry.path());
            } else if md.nlink() <= 1 || seen.insert((md.dev(), md.ino())) {
                total += md.blocks() * 512;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/b"), vec![1u8; 5_000]).unwrap();
        std::fs::hard_link(dir.path().join("d/b"), dir.path().join("c")).unwrap();
        let u = TreeUsage::count(dir.path(), Some(1 << 20)).unwrap();
        // 12 KiB + 8 KiB of data blocks, plus two directories
        assert!(u.used() >= 20_480 && u.used() < 40_000, "{}", u.used());
        assert!(u.admits(100));
        assert!(!u.admits(2 << 20));
        u.add_blocks(0, 8);
        assert!(u.used() >= 24_576);
        u.set_limit(None);
        assert!(u.admits(u64::MAX));
    }
}
