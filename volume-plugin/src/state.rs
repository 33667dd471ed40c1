//! What the plugin remembers on this node, persisted atomically to `<state dir>/state.json` after
//! every change and loaded before the socket listens: each volume's options and export, and the
//! references per mount ID. A plugin that forgot its volumes would make Docker create new empty
//! ones on the next mount, so losing this file is not an option; a torn file is refused loudly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
pub use swarmhub_persist::StateFile;

/// On-disk format version.
pub const FORMAT: u32 = 1;

/// One volume known on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeState {
    /// The options as Docker passed them (validated).
    pub options: BTreeMap<String, String>,
    /// nfsd's export path.
    pub export: String,
    pub created_at: String,
    /// References per Docker mount ID.
    #[serde(default)]
    pub refs: BTreeMap<String, u32>,
}

impl VolumeState {
    pub fn total_refs(&self) -> u32 {
        self.refs.values().sum()
    }
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginState {
    pub format: u32,
    pub volumes: BTreeMap<String, VolumeState>,
}

impl Default for PluginState {
    fn default() -> Self {
        Self {
            format: FORMAT,
            volumes: BTreeMap::new(),
        }
    }
}

impl StateFile for PluginState {
    const FORMAT: u32 = FORMAT;
    const WHAT: &'static str = "plugin state";
    const HINT: &'static str =
        "fix or restore it: starting without it would make Docker create empty volumes";
    fn format(&self) -> u32 {
        self.format
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert_eq!(PluginState::load(&p).unwrap(), PluginState::default());
        let mut s = PluginState::default();
        let mut v = VolumeState {
            options: [("user".to_string(), "alice".to_string())].into(),
            export: "/home-alice".into(),
            created_at: "t".into(),
            refs: BTreeMap::new(),
        };
        v.refs.insert("id1".into(), 2);
        s.volumes.insert("home-alice".into(), v);
        s.save(&p).unwrap();
        let back = PluginState::load(&p).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.volumes["home-alice"].total_refs(), 2);
        std::fs::write(&p, "{").unwrap();
        assert!(
            PluginState::load(&p)
                .unwrap_err()
                .to_string()
                .contains("not valid")
        );
    }
}
