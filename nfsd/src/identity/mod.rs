//! Identity lookup: turns a directory user name into the numeric identity a volume acts as on disk (store uid, gid and
//! supplementary groups). This module only reads the directory; it never writes to it and never decides what a client
//! sees (the client identity of a view is the volume layer's business).

pub mod ldap;

pub use ldap::{LdapDirectory, LdapSettings};

/// The POSIX identity of a directory user, as the store side of a volume uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosixUser {
    /// The user's name as the directory spells it (its `uid` value), which may differ in case from the name asked for.
    pub name: String,
    /// Distinguished name of the user's entry.
    pub dn: String,
    /// `uidNumber`; never 0.
    pub uid: u32,
    /// `gidNumber` (the primary group); never 0.
    pub gid: u32,
    /// `gidNumber`s of the groups the user is a member of, sorted and deduplicated, without the primary gid.
    pub groups: Vec<u32>,
    /// `cn`s of the groups in `groups`, sorted and deduplicated.
    pub group_names: Vec<String>,
}

/// Why a user's identity could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The directory answered, and no entry matches the user.
    #[error(
        "ldap user {user:?} not found under {base_dn}: check the user name and the user_filter setting"
    )]
    UnknownUser { user: String, base_dn: String },

    /// The directory could not be asked: connect, bind or search failed, or it did not answer in time.
    #[error(
        "ldap directory {url} is unavailable: {cause} (check the url, that the ldap server is up and reachable from \
         this host, and the bind_dn and password_file settings)"
    )]
    Unavailable { url: String, cause: String },

    /// The user's entry exists but cannot serve as a volume identity.
    #[error(
        "ldap entry {dn} cannot be used as a volume identity: {cause} (fix the entry in the directory)"
    )]
    BadEntry { dn: String, cause: String },

    /// More than one entry matches the user, so there is no telling whose identity to use.
    #[error(
        "ldap user {user:?} matches {count} entries: user_filter must select exactly one entry per user"
    )]
    Ambiguous { user: String, count: usize },

    /// The lookup settings themselves are unusable.
    #[error("ldap settings are unusable: {cause}")]
    Config { cause: String },
}
