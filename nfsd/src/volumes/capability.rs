//! Capability mounts. A volume is mounted by `MNT /<volume>/<secret>`, where the secret is a
//! keyed MAC of the view (its id and name) under a key derived from nfsd's persistent handle
//! key, which never leaves the data directory. Only token holders of the control API learn a
//! volume's mount path (`Volume.export`), so a client that can reach nfsd's port but holds no
//! token (a student's NFS client inside a notebook) cannot mount anything: NFSv3's AUTH_SYS
//! proves nothing, and without a root handle from MNT no other call can start.
//!
//! The secret changes only with the view: a volume removed and created again gets a new view id
//! and so a new secret; restarts and upgrades keep it. Handles are checked separately (their own
//! MAC), so mounts made before capabilities existed keep working.

use constant_time_eq::constant_time_eq;
#[cfg(test)]
use swarmhub_control_api::mount_path::public_export;

/// Hex digits of a secret (128 bits).
pub const SECRET_HEX_LEN: usize = 32;

/// Context string of the key derivation (BLAKE3 `derive_key`): a different purpose than handles.
const KEY_CONTEXT: &str = "swarmhub-nfsd 2026-12 mount capability v1";

/// Computes and checks the secrets of views.
#[derive(Clone)]
pub struct MountCapabilities {
    key: [u8; 32],
}

impl std::fmt::Debug for MountCapabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MountCapabilities(<secret>)")
    }
}

impl MountCapabilities {
    /// Derives the capability key from nfsd's handle key (`handle.key` in the data directory).
    pub fn from_master_key(master: &[u8; 32]) -> Self {
        Self {
            key: blake3::derive_key(KEY_CONTEXT, master),
        }
    }

    /// The secret of view `view_id` named `name`: 32 lowercase hex digits.
    pub fn secret(&self, view_id: u32, name: &str) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&view_id.to_be_bytes());
        h.update(name.as_bytes());
        let hex = h.finalize().to_hex();
        hex[..SECRET_HEX_LEN].to_string()
    }

    /// The path a client gives MOUNT for this view: `/<name>/<secret>`.
    pub fn export(&self, view_id: u32, name: &str) -> String {
        format!("/{name}/{}", self.secret(view_id, name))
    }

    /// Whether `given` is the secret of the view (in constant time).
    pub fn verify(&self, view_id: u32, name: &str, given: &str) -> bool {
        constant_time_eq(self.secret(view_id, name).as_bytes(), given.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> MountCapabilities {
        MountCapabilities::from_master_key(&[7u8; 32])
    }

    #[test]
    fn secrets_are_per_view_and_stable() {
        let c = caps();
        let s = c.secret(1, "home-alice");
        assert_eq!(s.len(), SECRET_HEX_LEN);
        assert_eq!(s, caps().secret(1, "home-alice"), "same key, same secret");
        assert_ne!(s, c.secret(2, "home-alice"), "a new view id changes it");
        assert_ne!(s, c.secret(1, "home-bob"), "another name changes it");
        let other = MountCapabilities::from_master_key(&[8u8; 32]);
        assert_ne!(s, other.secret(1, "home-alice"), "another key changes it");
        assert!(c.verify(1, "home-alice", &s));
        assert!(!c.verify(1, "home-alice", &s[..31]));
        assert!(!c.verify(1, "home-alice", &s.to_uppercase()));
        assert_eq!(c.export(1, "home-alice"), format!("/home-alice/{s}"));
        assert_eq!(public_export(&c.export(1, "home-alice")), "/home-alice");
    }
}
