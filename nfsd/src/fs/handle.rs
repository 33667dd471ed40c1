//! The NFS file handle: which view, which inode, and a keyed MAC over both. The view id tells the
//! server whose identity applies without trusting the client; the kernel handle keeps the handle
//! valid across nfsd restarts and renames; the MAC (BLAKE3 keyed with the persistent server
//! secret) makes handles unforgeable and binds them to their view, so editing the view id or the
//! inode of a real handle yields `NFS3ERR_BADHANDLE`.
//!
//! Layout (at most 64 bytes, the NFSv3 limit):
//! `version:1 | view_id:4 | handle_type:1 | len:1 | kernel handle:len | mac:16` (Linux handle
//! types are small numbers; a file system with a type above 255 is refused at start).

use std::io;

use constant_time_eq::constant_time_eq;
use std::path::Path;

use super::kernel::{KernelHandle, MAX_KERNEL_HANDLE};

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const HEADER: usize = 1 + 4 + 1 + 1;
/// Size of the secret key file.
pub const KEY_LEN: usize = 32;

/// Why a handle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// Malformed or forged: wrong length, version or MAC.
    Bad,
}

/// Decoded, authenticated contents of a handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub view_id: u32,
    pub kernel: KernelHandle,
}

/// Encodes and checks handles with one secret key.
#[derive(Clone)]
pub struct HandleCodec {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for HandleCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleCodec(<secret>)")
    }
}

/// Length of the wire handle for a kernel handle of `kernel_len` bytes.
pub const fn wire_len(kernel_len: usize) -> usize {
    HEADER + kernel_len + MAC_LEN
}

impl HandleCodec {
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        Self { key }
    }

    /// Loads the key from `path`, creating it (mode 0600, random) when missing. The key must
    /// outlive restarts: a new key invalidates every handle clients hold.
    pub fn load_or_create(path: &Path) -> io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    io::Error::other(format!(
                        "handle key {} holds {} bytes, expected {KEY_LEN}; restore it from a backup (a new key makes every client's handles stale)",
                        path.display(),
                        bytes.len()
                    ))
                })?;
                Ok(Self::new(key))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key: [u8; KEY_LEN] = rand::random();
                crate::volumes::atomic_write(path, &key, 0o600)?;
                Ok(Self::new(key))
            }
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("reading handle key {}: {e}", path.display()),
            )),
        }
    }

    /// The secrets of capability mounts, derived from this key (which never leaves the data
    /// directory), so they stay the same across restarts.
    pub fn mount_capabilities(&self) -> crate::volumes::MountCapabilities {
        crate::volumes::MountCapabilities::from_master_key(&self.key)
    }

    fn mac(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let full = blake3::keyed_hash(&self.key, body);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full.as_bytes()[..MAC_LEN]);
        out
    }

    /// The wire form of a handle for `kernel` seen through view `view_id`.
    pub fn encode(&self, view_id: u32, kernel: &KernelHandle) -> Vec<u8> {
        // name_to_handle and decode make handles of at most MAX_KERNEL_HANDLE bytes
        debug_assert!(kernel.bytes.len() <= MAX_KERNEL_HANDLE);
        let len = u8::try_from(kernel.bytes.len()).expect("a kernel handle longer than 255 bytes");
        let mut out = Vec::with_capacity(HEADER + kernel.bytes.len() + MAC_LEN);
        out.push(VERSION);
        out.extend_from_slice(&view_id.to_be_bytes());
        out.push(kernel.handle_type);
        out.push(len);
        out.extend_from_slice(&kernel.bytes);
        let mac = self.mac(&out);
        out.extend_from_slice(&mac);
        out
    }

    /// Checks and decodes a wire handle.
    pub fn decode(&self, wire: &[u8]) -> Result<Decoded, HandleError> {
        if wire.len() < HEADER + MAC_LEN || wire[0] != VERSION {
            return Err(HandleError::Bad);
        }
        let len = wire[6] as usize;
        if len > MAX_KERNEL_HANDLE || wire.len() != HEADER + len + MAC_LEN {
            return Err(HandleError::Bad);
        }
        let (body, mac) = wire.split_at(HEADER + len);
        let expected = self.mac(body);
        // constant-time comparison of the tag
        if !constant_time_eq(&expected, mac) {
            return Err(HandleError::Bad);
        }
        let view_id = u32::from_be_bytes(wire[1..5].try_into().expect("4 bytes"));
        let handle_type = wire[5];
        Ok(Decoded {
            view_id,
            kernel: KernelHandle {
                handle_type,
                bytes: body[HEADER..].to_vec(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kh() -> KernelHandle {
        KernelHandle {
            handle_type: 1,
            bytes: vec![1, 2, 3, 4, 5, 6, 7, 8],
        }
    }

    #[test]
    fn round_trip_and_size() {
        let c = HandleCodec::new([7; KEY_LEN]);
        let wire = c.encode(42, &kh());
        assert!(wire.len() <= 64);
        assert_eq!(
            c.decode(&wire).unwrap(),
            Decoded {
                view_id: 42,
                kernel: kh()
            }
        );
        let big = KernelHandle {
            handle_type: 0x4d,
            bytes: vec![9; MAX_KERNEL_HANDLE],
        };
        assert!(c.encode(1, &big).len() <= 64);
    }

    #[test]
    fn forged_handles_are_refused() {
        let c = HandleCodec::new([7; KEY_LEN]);
        let wire = c.encode(42, &kh());
        // another view id
        let mut other_view = wire.clone();
        other_view[4] ^= 1;
        assert_eq!(c.decode(&other_view), Err(HandleError::Bad));
        // another inode
        let mut other_inode = wire.clone();
        other_inode[12] ^= 0x80;
        assert_eq!(c.decode(&other_inode), Err(HandleError::Bad));
        // another key
        assert_eq!(
            HandleCodec::new([8; KEY_LEN]).decode(&wire),
            Err(HandleError::Bad)
        );
        // truncated, empty, oversized, junk
        assert_eq!(c.decode(&wire[..wire.len() - 1]), Err(HandleError::Bad));
        assert_eq!(c.decode(&[]), Err(HandleError::Bad));
        assert_eq!(c.decode(&[1; 64]), Err(HandleError::Bad));
    }

    #[test]
    fn key_file_persists() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        let a = HandleCodec::load_or_create(&p).unwrap();
        let b = HandleCodec::load_or_create(&p).unwrap();
        let wire = a.encode(1, &kh());
        b.decode(&wire).unwrap();
        std::fs::write(&p, b"short").unwrap();
        let err = HandleCodec::load_or_create(&p).unwrap_err().to_string();
        assert!(err.contains("holds 5 bytes"), "{err}");
    }
}
