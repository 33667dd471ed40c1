//! What the plugin remembers on this node, persisted atomically to `<state dir>/state.json` after
//! every change and loaded before the socket listens: each volume's options and export, and the
//! references per mount ID. A plugin that forgot its volumes would make Docker create new empty
//! ones on the next mount, so losing this file is not an option; a torn file is refused loudly.
//! Options are typed in memory and written as Docker's string map, the format every version
//! wrote (so records of earlier versions load, and an earlier version reads these).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use swarmhub_control_api::VolumeOptions;
pub use swarmhub_persist::StateFile;

/// On-disk format version.
pub const FORMAT: u32 = 1;

/// One volume known on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeState {
    /// The options, validated; on disk as Docker passed them (see [`docker_map`]).
    #[serde(with = "docker_map")]
    pub options: VolumeOptions,
    /// nfsd's export path.
    pub export: String,
    pub created_at: String,
    /// References per Docker mount ID.
    #[serde(default)]
    pub refs: BTreeMap<String, u32>,
}

/// [`VolumeOptions`] on disk as Docker's string map (`{"user": "alice", "readonly": "true"}`),
/// not as the control API's typed JSON: that is what every version of the plugin wrote.
/// Loading validates the map again; a record that is no longer valid is refused loudly like a
/// torn file.
mod docker_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use swarmhub_control_api::VolumeOptions;

    pub fn serialize<S: Serializer>(options: &VolumeOptions, s: S) -> Result<S::Ok, S::Error> {
        options.to_map().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VolumeOptions, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        VolumeOptions::from_map(&map).map_err(serde::de::Error::custom)
    }
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
            options: VolumeOptions {
                user: Some("alice".into()),
                ..Default::default()
            },
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

    /// A state file as the plugin has written it since its first version: options as Docker's
    /// string map. It loads typed and is written back byte for byte the same way.
    #[test]
    fn loads_records_in_the_docker_map_format() {
        let today = r#"{
  "format": 1,
  "volumes": {
    "home-alice": {
      "options": {"layout": "home", "size": "1073741824", "user": "alice"},
      "export": "/home-alice/c2VjcmV0",
      "created_at": "2026-11-02T10:00:00Z",
      "refs": {"4f1c": 1}
    },
    "exchange-bob": {
      "options": {"readonly": "true", "share": "exchange", "user": "bob"},
      "export": "/exchange-bob",
      "created_at": "2026-11-02T10:00:01Z"
    }
  }
}"#;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        std::fs::write(&p, today).unwrap();
        let s = PluginState::load(&p).unwrap();
        let home = &s.volumes["home-alice"];
        assert_eq!(home.options.user.as_deref(), Some("alice"));
        assert_eq!(home.options.size, Some(1 << 30));
        assert_eq!(
            home.options.layout,
            Some(swarmhub_control_api::Layout::Home)
        );
        assert!(!home.options.readonly);
        assert_eq!(home.total_refs(), 1);
        let view = &s.volumes["exchange-bob"];
        assert!(view.options.readonly);
        assert_eq!(view.options.share.as_deref(), Some("exchange"));
        assert!(view.refs.is_empty());

        s.save(&p).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let expected: serde_json::Value = serde_json::from_str(today).unwrap();
        assert_eq!(
            written["volumes"]["home-alice"]["options"],
            expected["volumes"]["home-alice"]["options"]
        );
        assert_eq!(
            written["volumes"]["exchange-bob"]["options"],
            expected["volumes"]["exchange-bob"]["options"]
        );
    }

    #[test]
    fn a_record_with_options_no_version_accepts_is_refused_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        std::fs::write(
            &p,
            r#"{"format":1,"volumes":{"v":{"options":{"user":"alice","sise":"1G"},"export":"/v","created_at":"t"}}}"#,
        )
        .unwrap();
        let msg = PluginState::load(&p).unwrap_err().to_string();
        assert!(
            msg.contains("not valid") && msg.contains("\"sise\""),
            "{msg}"
        );
    }
}
