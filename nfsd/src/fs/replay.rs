//! Recent RENAMEs, remembered across restarts: a duplicate request cache for RENAME that
//! survives nfsd being killed.
//!
//! A client whose connection breaks sends its calls again once it reconnects, with the same
//! XID. When nfsd had renamed the file but died before its reply went out, the new nfsd finds
//! the source name gone and would answer NOENT: the application's `mv` (or a notebook's save)
//! fails although it took effect. Seen with the Linux client in the qemu guest while nfsd was
//! killed under the autosave load (docs/RELIABILITY.md, "kill -9 of nfsd under load").
//!
//! Before each rename(2), the call's key (client address, XID, arguments) and the source's
//! device and inode go into one slot of `rename-replay` in the data dir (one pwrite, no fsync:
//! the record has to outlive the process, like the rename itself, not the machine). A RENAME
//! whose source is missing looks up its key; when the slot holds it and the target name now
//! names that very inode, the first copy did the work and the answer is NFS3_OK. A slot
//! overwritten by another call, or a target changed since, leaves the answer NOENT.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

const SLOTS: u64 = 4096;
const RECORD: usize = 32;
/// Marks a used slot (and the record layout: magic, key, dev, ino; little-endian u64s).
const MAGIC: u64 = 0x7377_6872_6E6D_0001;

/// The slots file; see the module header.
#[derive(Debug)]
pub struct RenameLog {
    file: File,
}

impl RenameLog {
    /// Opens (or creates, mode 0600) the slots file at `path`.
    pub fn open(path: &Path) -> io::Result<RenameLog> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let len = SLOTS * RECORD as u64;
        if file.metadata()?.len() != len {
            file.set_len(len)?;
        }
        Ok(RenameLog { file })
    }

    /// The key of one call: who sent it, its XID and its argument bytes (FNV-1a).
    pub fn key(peer: IpAddr, xid: u32, args: &[u8]) -> u64 {
        let ip = match peer {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        let mut h = 0xCBF2_9CE4_8422_2325u64;
        for b in ip.iter().chain(&xid.to_le_bytes()).chain(args) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01B3);
        }
        h
    }

    fn offset(key: u64) -> u64 {
        (key % SLOTS) * RECORD as u64
    }

    /// Notes that the call `key` is about to rename the inode `(dev, ino)`. Best effort: a
    /// failure only costs the replay.
    pub fn record(&self, key: u64, dev: u64, ino: u64) {
        let mut b = [0u8; RECORD];
        for (i, v) in [MAGIC, key, dev, ino].into_iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        if let Err(e) = self.file.write_all_at(&b, Self::offset(key)) {
            tracing::warn!("noting a RENAME for replay after a restart failed: {e}");
        }
    }

    /// The inode the call `key` renamed, if its record is still there.
    pub fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        let mut b = [0u8; RECORD];
        self.file.read_exact_at(&mut b, Self::offset(key)).ok()?;
        let at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        (at(0) == MAGIC && at(1) == key).then(|| (at(2), at(3)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_only_their_key_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rename-replay");
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let k = RenameLog::key(ip, 42, b"args");
        RenameLog::open(&p).unwrap().record(k, 5, 77);
        let log = RenameLog::open(&p).unwrap();
        assert_eq!(log.lookup(k), Some((5, 77)));
        // another XID, client or argument is another call
        for other in [
            RenameLog::key(ip, 43, b"args"),
            RenameLog::key("10.0.0.8".parse().unwrap(), 42, b"args"),
            RenameLog::key(ip, 42, b"argz"),
        ] {
            assert_ne!(other, k);
            assert_eq!(log.lookup(other), None);
        }
        assert_eq!(std::fs::metadata(&p).unwrap().len(), SLOTS * RECORD as u64);
    }
}
