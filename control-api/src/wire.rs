//! JSON bodies of nfsd's control API. Requests refuse unknown fields so a misspelt field is an
//! error, not a silently different volume. Endpoints (all under `/v1`):
//!
//! | method | path | body → reply |
//! |---|---|---|
//! | `GET` | `/v1/health` | → [`Health`] (no token needed) |
//! | `POST` | `/v1/volumes` | [`CreateVolume`] → [`Volume`] (201 created, 200 already there) |
//! | `GET` | `/v1/volumes` | → [`VolumeList`] |
//! | `GET` | `/v1/volumes/{name}` | → [`Volume`] |
//! | `DELETE` | `/v1/volumes/{name}` | → [`Removed`] (the tree is moved aside, never deleted) |
//! | `GET` | `/v1/removed` | → [`RemovedList`] |
//! | `DELETE` | `/v1/removed/{entry}` | → [`Purged`] (deletes a moved-aside tree for good) |
//! | `PUT` | `/v1/shares/{share}/dirs/{name}` | [`ShareDir`] → [`ShareDirInfo`] (201 created, 200 already that user's; 409 someone else's) |
//! | `GET` | `/metrics` | Prometheus text (no token needed) |
//!
//! Errors are [`ApiError`] with an HTTP status that matches [`ErrorKind`].

use serde::{Deserialize, Serialize};

use crate::options::VolumeOptions;

/// Default identity that containers see: `jovyan:users`.
pub const DEFAULT_CLIENT_UID: u32 = 1000;
/// Default group that containers see.
pub const DEFAULT_CLIENT_GID: u32 = 100;

/// `POST /v1/volumes`: create a volume, or return it if one with the same name and the same
/// options exists already (create-or-ensure). Conflicting options are a 409.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateVolume {
    /// Volume name; also the export path (`/<name>`).
    pub name: String,
    /// The user-facing options (`user`, `share`, `size`, `readonly`).
    #[serde(flatten)]
    pub options: VolumeOptions,
    /// Explicit store identity instead of an LDAP lookup of `user` (for admins and tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ExplicitIdentity>,
    /// What containers see for the view's own files; default 1000:100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientIdentity>,
}

/// Store ids given explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplicitIdentity {
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub groups: Vec<u32>,
}

/// The ids presented to clients for the view's own files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientIdentity {
    pub uid: u32,
    pub gid: u32,
}

impl Default for ClientIdentity {
    fn default() -> Self {
        Self {
            uid: DEFAULT_CLIENT_UID,
            gid: DEFAULT_CLIENT_GID,
        }
    }
}

/// Whether a volume is the only view of its own tree, or one user's view of a shared tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    Home,
    Share,
}

/// A volume as nfsd knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    /// Path to give MOUNT (and the kernel's `:/<export>` source): `/<name>/<secret>`, where the
    /// secret is the view's capability. Only token holders see it; whoever knows it can mount
    /// the volume, so it is never shown to users or put where docker users read (show
    /// `/<name>` instead).
    pub export: String,
    pub kind: VolumeKind,
    /// The tree, relative to nfsd's data root (`volumes/<name>` or `shares/<share>`).
    pub tree: String,
    pub options: VolumeOptions,
    /// What the disk records for files created through this volume.
    pub store_uid: u32,
    pub store_gid: u32,
    /// Supplementary groups (store gids) used for permission checks.
    pub groups: Vec<u32>,
    /// What containers see for the volume's own files.
    pub client_uid: u32,
    pub client_gid: u32,
    /// RFC 3339 time of creation.
    pub created_at: String,
    /// Bytes the tree uses, when nfsd has counted them (volumes with a size always do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
}

/// `GET /v1/volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeList {
    pub volumes: Vec<Volume>,
}

/// `DELETE /v1/volumes/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub name: String,
    /// Where the tree went, relative to the data root (`removed/<name>.<timestamp>`); `None` for a
    /// share view, whose shared tree stays in place for the other views.
    pub tree_moved_to: Option<String>,
}

/// A tree moved aside by a removal, waiting for an explicit purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedTree {
    /// Entry name under `removed/`, as given to `DELETE /v1/removed/{entry}`.
    pub entry: String,
}

/// `GET /v1/removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedList {
    pub removed: Vec<RemovedTree>,
}

/// `DELETE /v1/removed/{entry}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    pub entry: String,
}

/// `PUT /v1/shares/{share}/dirs/{name}`: make sure the top-level directory `name` of a shared
/// tree exists, owned by one user's store ids with exactly `mode`. Share roots belong to nfsd,
/// so this is the only way such a directory (a course in the nbgrader exchange) comes to be.
/// The shared tree is created when missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareDir {
    /// LDAP user whose store uid/gid will own the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Explicit store ids instead of an LDAP lookup of `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ExplicitIdentity>,
    /// Permission bits, setuid/setgid/sticky included (at most `0o7777`; JSON has no octal:
    /// 493 is 0755).
    pub mode: u32,
}

/// Reply of `PUT /v1/shares/{share}/dirs/{name}`: the directory as it now is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareDirInfo {
    pub share: String,
    pub name: String,
    /// Store ids that own it on disk.
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// Whether this request made it (201) or found it (200, owner and mode made right).
    pub created: bool,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    pub version: String,
    pub volumes: usize,
    /// `host:port` of the NFS listener.
    pub nfs_listen: String,
    pub uptime_seconds: u64,
}

/// Classes of failure; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400: malformed body, bad name, bad option.
    Invalid,
    /// 401: missing or wrong bearer token.
    Unauthorized,
    /// 404: no such volume or removed tree.
    NotFound,
    /// 409: a volume of that name exists with other options, or a share directory belongs to
    /// someone else.
    Conflict,
    /// 422: the LDAP directory has no such user.
    UnknownUser,
    /// 503: the LDAP directory cannot be reached.
    DirectoryUnavailable,
    /// 413: body too large.
    TooLarge,
    /// 500: anything else; the message names the cause.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code of this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::TooLarge => 413,
            ErrorKind::UnknownUser => 422,
            ErrorKind::DirectoryUnavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// Body of every error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Lower-case sentence naming the thing and the cause, with a hint where there is one.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_is_flat_and_strict() {
        let body: CreateVolume =
            serde_json::from_str(r#"{"name":"home-alice","user":"alice","size":1024}"#).unwrap();
        assert_eq!(body.options.user.as_deref(), Some("alice"));
        assert_eq!(body.options.size, Some(1024));
        let err = serde_json::from_str::<CreateVolume>(r#"{"name":"x","usr":"alice"}"#);
        assert!(err.unwrap_err().to_string().contains("usr"));
    }

    #[test]
    fn share_dir_body_takes_a_user_or_ids_and_a_mode() {
        let body: ShareDir = serde_json::from_str(r#"{"user":"tina","mode":493}"#).unwrap();
        assert_eq!((body.user.as_deref(), body.mode), (Some("tina"), 0o755));
        let body: ShareDir =
            serde_json::from_str(r#"{"identity":{"uid":20010,"gid":20100},"mode":1517}"#).unwrap();
        assert_eq!(body.identity.unwrap().uid, 20010);
        serde_json::from_str::<ShareDir>(r#"{"user":"tina"}"#).unwrap_err();
        serde_json::from_str::<ShareDir>(r#"{"user":"t","mode":1,"owner":2}"#).unwrap_err();
    }
}
