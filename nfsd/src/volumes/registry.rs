//! The volume registry on disk: one JSON file in the data root, rewritten atomically (temp file,
//! fsync, rename, fsync of the directory) after every change, so a crash leaves either the old or
//! the new registry and never a torn one. It also remembers the next view id: ids are never
//! reused, so a handle of a removed volume can never name a later one.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

pub use swarmhub_persist::{StateFile, atomic_write};

use serde::{Deserialize, Serialize};
use swarmhub_control_api::{ExplicitIdentity, VolumeKind, VolumeOptions};

use super::layout::Staging;

/// Current on-disk format.
pub const FORMAT: u32 = 1;

/// One volume as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeRecord {
    pub view_id: u32,
    pub name: String,
    pub kind: VolumeKind,
    /// Relative to the data root.
    pub tree: String,
    pub options: VolumeOptions,
    /// Set when the identity was given explicitly rather than looked up in LDAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit: Option<ExplicitIdentity>,
    pub store_uid: u32,
    pub store_gid: u32,
    #[serde(default)]
    pub groups: Vec<u32>,
    pub client_uid: u32,
    pub client_gid: u32,
    pub created_at: String,
    /// A change to the home layout that started and has not finished (see [`super::layout`]);
    /// the layout itself is `options.layout`, recorded once the change is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Staging>,
}

/// The whole registry file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub format: u32,
    pub next_view_id: u32,
    pub volumes: BTreeMap<String, VolumeRecord>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            format: FORMAT,
            next_view_id: 1,
            volumes: BTreeMap::new(),
        }
    }
}

impl StateFile for Registry {
    const FORMAT: u32 = FORMAT;
    const WHAT: &'static str = "registry";
    const HINT: &'static str =
        "nothing was changed: restore it from registry.json.bak or fix it by hand";
    fn format(&self) -> u32 {
        self.format
    }

    /// Writes the registry atomically, keeping the previous version as `<path>.bak`.
    fn save(&self, path: &Path) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        json.push(b'\n');
        if path.exists() {
            std::fs::copy(path, path.with_extension("json.bak"))?;
        }
        atomic_write(path, &json, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("registry.json");
        assert_eq!(Registry::load(&p).unwrap(), Registry::default());
        let mut r = Registry::default();
        r.volumes.insert(
            "home-a".into(),
            VolumeRecord {
                view_id: 1,
                name: "home-a".into(),
                kind: VolumeKind::Home,
                tree: "volumes/home-a".into(),
                options: VolumeOptions::default(),
                explicit: None,
                store_uid: 5,
                store_gid: 6,
                groups: vec![],
                client_uid: 1000,
                client_gid: 100,
                created_at: "now".into(),
                migration: None,
            },
        );
        r.next_view_id = 2;
        r.save(&p).unwrap();
        r.save(&p).unwrap();
        assert_eq!(Registry::load(&p).unwrap(), r);
        assert!(dir.path().join("registry.json.bak").exists());
        std::fs::write(&p, b"{torn").unwrap();
        let err = Registry::load(&p).unwrap_err().to_string();
        assert!(err.contains("not valid"), "{err}");
    }
}
