//! What a command did, one [`Step`] per object: printed as `kind name: change (note)` lines or
//! as JSON with `--json`.

use serde::{Deserialize, Serialize};

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It did not exist and was made.
    Created,
    /// It existed and differed; it was updated.
    Updated,
    /// It existed as planned.
    Unchanged,
    /// Its tasks were started (replicas 0 → 1).
    Started,
    /// Its tasks were stopped (replicas → 0).
    Stopped,
    /// Its tasks were replaced (forced update).
    Restarted,
    /// It was removed.
    Removed,
    /// It was not there (nothing to do).
    Absent,
    /// Kept on purpose (e.g. a secret that `remove` does not delete).
    Kept,
}

/// One line of a command's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `network`, `secret`, `config`, `service`, `plugin`, `node`, `image`.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// What happened.
    pub change: Change,
    /// Anything worth saying (e.g. why it was kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Step {
    /// A step without a note.
    pub fn new(kind: &str, name: &str, change: Change) -> Step {
        Step {
            kind: kind.into(),
            name: name.into(),
            change,
            note: None,
        }
    }

    /// The same step with a note.
    pub fn note(mut self, note: impl Into<String>) -> Step {
        self.note = Some(note.into());
        self
    }

    /// `service swarmhub-nfsd: created (note)`.
    pub fn line(&self) -> String {
        let change = serde_json::to_value(self.change)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match &self.note {
            Some(n) => format!("{} {}: {change} ({n})", self.kind, self.name),
            None => format!("{} {}: {change}", self.kind, self.name),
        }
    }
}
