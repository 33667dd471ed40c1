//! Bounds on variable-length arguments, checked before `nfs3_types` decodes them: its decoder
//! allocates whatever length a client announces before reading, so a 52-byte call announcing a
//! 4 GiB handle would reserve 4 GiB. Here every opaque length is checked against its protocol
//! limit and against the bytes actually left in the record, without allocating.

use nfs3_types::mount::MOUNT_PROGRAM;
use nfs3_types::nfs3::NFS_PROGRAM;

struct Walk<'a> {
    b: &'a [u8],
    p: usize,
}

impl Walk<'_> {
    fn u32(&mut self) -> Option<u32> {
        let v = self.b.get(self.p..self.p + 4)?;
        self.p += 4;
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        (self.p + n <= self.b.len()).then(|| self.p += n)
    }
    /// An opaque of at most `max` bytes that fits in what is left.
    fn opaque(&mut self, max: usize) -> Option<()> {
        let len = self.u32()? as usize;
        if len > max {
            return None;
        }
        self.skip(len.div_ceil(4) * 4)
    }
    fn fh(&mut self) -> Option<()> {
        self.opaque(nfs3_types::nfs3::NFS3_FHSIZE)
    }
    /// File names may be longer than NAME_MAX here, so the procedure can answer NAMETOOLONG.
    fn name(&mut self) -> Option<()> {
        self.opaque(8192)
    }
    fn optional(&mut self, size: usize) -> Option<()> {
        match self.u32()? {
            0 => Some(()),
            1 => self.skip(size),
            _ => None,
        }
    }
    fn time_how(&mut self) -> Option<()> {
        match self.u32()? {
            0 | 1 => Some(()),
            2 => self.skip(8),
            _ => None,
        }
    }
    fn sattr(&mut self) -> Option<()> {
        self.optional(4)?; // mode
        self.optional(4)?; // uid
        self.optional(4)?; // gid
        self.optional(8)?; // size
        self.time_how()?; // atime
        self.time_how() // mtime
    }
}

/// Whether the arguments of NFS procedure `proc_` keep every length within bounds. Calls that
/// fail here are answered with GARBAGE_ARGS.
pub fn nfs_args_bounded(proc_: u32, args: &[u8]) -> bool {
    use NFS_PROGRAM::*;
    let mut w = Walk { b: args, p: 0 };
    let Ok(p) = NFS_PROGRAM::try_from(proc_) else {
        return true;
    };
    let ok = match p {
        NFSPROC3_NULL => Some(()),
        NFSPROC3_LOOKUP | NFSPROC3_REMOVE | NFSPROC3_RMDIR | NFSPROC3_CREATE | NFSPROC3_MKDIR
        | NFSPROC3_MKNOD => w.fh().and_then(|_| w.name()),
        NFSPROC3_SYMLINK => w
            .fh()
            .and_then(|_| w.name())
            .and_then(|_| w.sattr())
            .and_then(|_| w.opaque(64 * 1024)),
        NFSPROC3_RENAME => w
            .fh()
            .and_then(|_| w.name())
            .and_then(|_| w.fh())
            .and_then(|_| w.name()),
        NFSPROC3_LINK => w.fh().and_then(|_| w.fh()).and_then(|_| w.name()),
        NFSPROC3_WRITE => w
            .fh()
            .and_then(|_| w.skip(8 + 4 + 4))
            .and_then(|_| w.opaque(usize::MAX)),
        _ => w.fh(),
    };
    ok.is_some()
}

/// Whether the arguments of MOUNT procedure `proc_` keep the path within bounds.
pub fn mount_args_bounded(proc_: u32, args: &[u8]) -> bool {
    let mut w = Walk { b: args, p: 0 };
    match MOUNT_PROGRAM::try_from(proc_) {
        Ok(MOUNT_PROGRAM::MOUNTPROC3_MNT | MOUNT_PROGRAM::MOUNTPROC3_UMNT) => {
            w.opaque(64 * 1024).is_some()
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn lying_lengths_are_refused() {
        // GETATTR with a handle announcing 4 GiB
        assert!(!nfs_args_bounded(1, &words(&[0xffff_fff0, 1, 2])));
        // a 65-byte handle
        let mut v = words(&[65]);
        v.extend([0u8; 68]);
        assert!(!nfs_args_bounded(1, &v));
        // a handle that fits, then a name longer than the record
        let mut v = words(&[4, 7]);
        v.extend(words(&[1000]));
        assert!(!nfs_args_bounded(3, &v));
        // a sane LOOKUP
        let mut v = words(&[4, 7, 3]);
        v.extend(b"abc\0");
        assert!(nfs_args_bounded(3, &v));
        // WRITE whose data length runs past the record
        let v = words(&[4, 7, 0, 0, 10, 0, 1 << 30]);
        assert!(!nfs_args_bounded(7, &v));
        // MNT with a path announcing 2 GiB
        assert!(!mount_args_bounded(1, &words(&[0x8000_0000])));
    }
}
