//! What the gate allows: the rules `swarmhub run` derives from `swarmhub.toml` (the same
//! settings the hub's generated config uses) and hands to the gate service as JSON in
//! [`RULES_ENV`]. Pure data; the checks that apply it are in [`crate::spec`] and
//! [`crate::route`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Environment variable of the gate service holding its [`GateRules`] as JSON.
pub const RULES_ENV: &str = "SWARMHUB_DOCKER_GATE_RULES";

/// Placeholder in [`MountRule::source`] and [`MountRule::options`] values that stands for the
/// user named by the service's [`GateRules::user_label`].
pub const USER_PLACEHOLDER: &str = "{user}";

/// Everything that makes a service a notebook service the hub may create, read, update or
/// remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRules {
    /// Notebook service names are this, a dash and the rest (dockerspawner's `prefix`,
    /// `jupyter`).
    pub name_prefix: String,
    /// Labels every notebook service carries with exactly these values
    /// (`swarmhub.component=notebook`).
    pub notebook_labels: BTreeMap<String, String>,
    /// Label naming the notebook's user; the mounts must be that user's.
    pub user_label: String,
    /// Label naming the notebook's role.
    pub role_label: String,
    /// The values the role label may have (`student`, `teacher`).
    pub roles: Vec<String>,
    /// Label keys starting with this are swarmhub's: a notebook service carries none but the
    /// ones above (`swarmhub.`).
    pub reserved_label_prefix: String,
    /// The longest user name.
    pub user_name_max: usize,
    /// The only images a notebook service may run, exactly as the hub names them.
    pub images: Vec<String>,
    /// The only network a notebook service may join (by this name or its id).
    pub network: String,
    /// The mounts a notebook service may have, each at most once.
    pub mounts: Vec<MountRule>,
}

/// One mount a notebook may have: a volume, never a bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountRule {
    /// Where it is mounted in the container.
    pub target: String,
    /// The volume's name, with [`USER_PLACEHOLDER`] for the user (`home-{user}`).
    pub source: String,
    /// The volume driver (`swarmhub-nfs`); `None`: Docker's `local` driver, with no options
    /// (local volume options can bind any host path).
    pub driver: Option<String>,
    /// The driver options exactly, values with [`USER_PLACEHOLDER`] for the user.
    pub options: BTreeMap<String, String>,
}

impl GateRules {
    /// The rules as the JSON the gate service gets in [`RULES_ENV`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Rules from that JSON; the error names what is wrong.
    pub fn from_json(s: &str) -> Result<GateRules, serde_json::Error> {
        serde_json::from_str(s)
    }
}

impl MountRule {
    /// The volume name for `user`.
    pub fn source_for(&self, user: &str) -> String {
        self.source.replace(USER_PLACEHOLDER, user)
    }

    /// The driver options for `user`.
    pub fn options_for(&self, user: &str) -> BTreeMap<String, String> {
        self.options
            .iter()
            .map(|(k, v)| (k.clone(), v.replace(USER_PLACEHOLDER, user)))
            .collect()
    }
}
