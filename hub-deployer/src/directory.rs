//! The LDAP directory of `[ldap]` as the CLI reads it: connect (StartTLS or LDAPS as configured),
//! bind (anonymous or as `ldap.bind_dn`), look up a group and read its members. Used by
//! `doctor`'s LDAP checks and by `volume prepare`. Every call is bounded by a timeout; a failure
//! is a [`Failure`] whose text names the cause, and [`connect_fix`] / [`bind_fix`] say what to
//! change.
//!
//! Group members are read the way ldapauthenticator 2.x tests membership of `allowed_groups`:
//! `memberUid` (posixGroup: user names), `member` (groupOfNames) and `uniqueMember`
//! (groupOfUniqueNames: user DNs, optionally with a `#'…'B` suffix). A member DN whose first
//! RDN is `ldap.user_attribute` (`uid=alice,ou=people,…`) names the user directly; any other
//! member DN is looked up for that attribute. The parsing ([`member_names`]) is pure.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};

use crate::settings::LdapConfig;

/// Why an LDAP step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with an LDAP result code (e.g. 32 noSuchObject, 49
    /// invalidCredentials); `text` is the code and the server's message.
    Refused {
        /// the result code
        rc: u32,
        /// `rc=49 (invalidCredentials): message`
        text: String,
    },
    /// No answer within the timeout.
    Timeout(Duration),
    /// Anything else (connection refused, TLS, protocol).
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused { text, .. } => f.write_str(text),
            Failure::Timeout(t) => write!(f, "no answer within {} s", t.as_secs_f32()),
            Failure::Other(s) => f.write_str(s),
        }
    }
}

impl Failure {
    fn of(e: &LdapError) -> Failure {
        if let LdapError::LdapResult { result } = e {
            // `rc=49 (invalidCredentials), dn: "", text: ""` without the empty parts
            let full = result.to_string();
            let code = full.split(", dn:").next().unwrap_or(&full).to_string();
            let text = if result.text.is_empty() {
                code
            } else {
                format!("{code}: {}", result.text)
            };
            return Failure::Refused {
                rc: result.rc,
                text,
            };
        }
        Failure::Other(crate::exit::error_text(e))
    }

    /// The server said noSuchObject (also what directories answer for entries a bind may not
    /// read).
    pub fn no_such_object(&self) -> bool {
        matches!(self, Failure::Refused { rc: 32, .. })
    }
}

/// `ldap.url` with StartTLS (`ldap://` and `starttls`), LDAPS or no TLS: whether StartTLS is
/// used, and the mode's name for messages.
pub fn tls_mode(l: &LdapConfig) -> (bool, &'static str) {
    let starttls = l.starttls && l.url.starts_with("ldap://");
    let mode = if l.url.starts_with("ldaps://") {
        "LDAPS"
    } else if starttls {
        "StartTLS"
    } else {
        "no TLS"
    };
    (starttls, mode)
}

/// What to do when the LDAP server cannot be reached (pure).
pub fn connect_fix(url: &str, starttls: bool) -> String {
    let mut fix =
        format!("check ldap.url ({url}) and that the server answers from here (firewall, port)");
    if url.starts_with("ldaps://") || starttls {
        fix.push_str(
            "; with TLS its certificate must be valid for that host name and trusted by this host's CA store",
        );
    }
    fix
}

/// What to do when the bind as `bind_dn` (empty: anonymous) was refused (pure).
pub fn bind_fix(l: &LdapConfig, bind_dn: &str) -> String {
    if bind_dn.is_empty() {
        "the directory wants a bind DN: set ldap.bind_dn, then swarmhub run --ldap-password-file FILE".into()
    } else {
        format!(
            "check ldap.bind_dn ({bind_dn}) and the password file given; the hub and nfsd read the password from the secret {}, which must hold the same one",
            l.password_secret
        )
    }
}

/// An open connection to the directory.
pub struct Session {
    ldap: Ldap,
    timeout: Duration,
}

impl Session {
    /// Connects to `l.url` (with StartTLS when configured), within `timeout`.
    pub async fn open(l: &LdapConfig, timeout: Duration) -> Result<Session, Failure> {
        let (starttls, _) = tls_mode(l);
        let settings = LdapConnSettings::new()
            .set_conn_timeout(timeout)
            .set_starttls(starttls);
        match tokio::time::timeout(timeout, LdapConnAsync::with_settings(settings, &l.url)).await {
            Ok(Ok((conn, ldap))) => {
                ldap3::drive!(conn);
                Ok(Session { ldap, timeout })
            }
            Ok(Err(e)) => Err(Failure::of(&e)),
            Err(_) => Err(Failure::Timeout(timeout)),
        }
    }

    /// A simple bind as `dn` with `password` (both empty: anonymous).
    pub async fn bind(&mut self, dn: &str, password: &str) -> Result<(), Failure> {
        let ldap = &mut self.ldap;
        bounded(self.timeout, async {
            ldap.simple_bind(dn, password).await?.success()
        })
        .await
        .map(|_| ())
    }

    /// The entry `dn` with `attrs` (`["1.1"]`: none); `Ok(None)` when it is not visible.
    pub async fn entry(
        &mut self,
        dn: &str,
        attrs: &[&str],
    ) -> Result<Option<SearchEntry>, Failure> {
        let ldap = &mut self.ldap;
        let attrs = attrs.to_vec();
        let (entries, _) = bounded(self.timeout, async {
            ldap.search(dn, Scope::Base, "(objectClass=*)", attrs)
                .await?
                .success()
        })
        .await?;
        Ok(entries.into_iter().next().map(SearchEntry::construct))
    }

    /// The user names of the members of group `dn` (see the module documentation); member DNs
    /// that name no user (no such entry, no `user_attribute`) are returned as such.
    pub async fn group_members(
        &mut self,
        dn: &str,
        user_attribute: &str,
    ) -> Result<Members, Failure> {
        let Some(group) = self.entry(dn, &MEMBER_ATTRIBUTES).await? else {
            return Err(Failure::Refused {
                rc: 32,
                text: format!("{dn} is not visible to this bind"),
            });
        };
        let (mut names, lookups) = member_names(&group.attrs, user_attribute);
        let mut unresolved = Vec::new();
        for member in lookups {
            let found = match self.entry(&member, &[user_attribute]).await {
                Ok(Some(e)) => attr(&e.attrs, user_attribute).first().cloned(),
                Ok(None) => None,
                Err(f) if f.no_such_object() => None,
                Err(f) => return Err(f),
            };
            match found {
                Some(name) => {
                    names.insert(name);
                }
                None => unresolved.push(member),
            }
        }
        Ok(Members {
            users: names.into_iter().collect(),
            unresolved,
        })
    }

    /// Unbinds (best effort, bounded).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.ldap.unbind()).await;
    }
}

/// `f` within `timeout`.
async fn bounded<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = Result<T, LdapError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r.map_err(|e| Failure::of(&e)),
        Err(_) => Err(Failure::Timeout(timeout)),
    }
}

/// The members of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// User names, sorted, each once (not yet checked as volume names).
    pub users: Vec<String>,
    /// Member DNs that name no user this bind can see.
    pub unresolved: Vec<String>,
}

/// The membership attributes read from a group.
pub const MEMBER_ATTRIBUTES: [&str; 3] = ["memberUid", "member", "uniqueMember"];

/// Values of `name` in `attrs`, whatever case the server spelled the attribute in.
fn attr<'a>(attrs: &'a HashMap<String, Vec<String>>, name: &str) -> &'a [String] {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

/// The user names a group entry gives directly, and the member DNs that must be looked up
/// for their `user_attribute` (pure).
pub fn member_names(
    attrs: &HashMap<String, Vec<String>>,
    user_attribute: &str,
) -> (BTreeSet<String>, Vec<String>) {
    let mut names: BTreeSet<String> = attr(attrs, "memberUid")
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    let mut lookups = Vec::new();
    let dns = attr(attrs, "member").iter().map(|m| m.trim()).chain(
        attr(attrs, "uniqueMember")
            .iter()
            .map(|m| unique_member_dn(m)),
    );
    for dn in dns {
        match user_of_dn(dn, user_attribute) {
            Some(name) => {
                names.insert(name);
            }
            None if !dn.is_empty() && !lookups.iter().any(|l| l == dn) => {
                lookups.push(dn.to_string())
            }
            None => {}
        }
    }
    (names, lookups)
}

/// A `uniqueMember` value without its optional `#'0101'B` unique identifier.
fn unique_member_dn(v: &str) -> &str {
    v.split_once("#'").map_or(v, |(dn, _)| dn).trim()
}

/// `alice` of `uid=alice,ou=people,…` when the first RDN is a single `user_attribute=value`
/// without escapes (pure); anything else must be looked up.
pub fn user_of_dn(dn: &str, user_attribute: &str) -> Option<String> {
    let first = dn.split(',').next()?;
    if first.contains('+') || first.contains('\\') {
        return None;
    }
    let (k, v) = first.split_once('=')?;
    (k.trim().eq_ignore_ascii_case(user_attribute) && !v.trim().is_empty())
        .then(|| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn posix_groups_give_user_names() {
        let a = attrs(&[("memberUid", &["bob", "alice", "alice", " "])]);
        let (names, lookups) = member_names(&a, "uid");
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(lookups.is_empty());
    }

    #[test]
    fn member_dns_name_the_user_or_are_looked_up() {
        let a = attrs(&[
            (
                "member",
                &[
                    "uid=alice,ou=people,dc=x",
                    "UID = bob ,ou=people,dc=x",
                    "cn=Carol Smith,ou=people,dc=x",
                ],
            ),
            (
                "uniquemember",
                &[
                    "uid=dave,ou=people,dc=x#'0101'B",
                    "cn=Carol Smith,ou=people,dc=x",
                ],
            ),
            ("memberuid", &["erin"]),
        ]);
        let (names, lookups) = member_names(&a, "uid");
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["alice", "bob", "dave", "erin"]
        );
        assert_eq!(lookups, ["cn=Carol Smith,ou=people,dc=x"]);
    }

    #[test]
    fn dns_with_escapes_or_multi_valued_rdns_are_looked_up() {
        assert_eq!(user_of_dn("uid=a\\2Cb,dc=x", "uid"), None);
        assert_eq!(user_of_dn("uid=a+cn=b,dc=x", "uid"), None);
        assert_eq!(user_of_dn("cn=alice,dc=x", "uid"), None);
        assert_eq!(user_of_dn("cn=alice,dc=x", "cn"), Some("alice".into()));
        assert_eq!(user_of_dn("uid=,dc=x", "uid"), None);
    }

    #[test]
    fn tls_modes_and_fixes() {
        let mut l = LdapConfig::default();
        assert_eq!(tls_mode(&l), (true, "StartTLS"));
        l.starttls = false;
        assert_eq!(tls_mode(&l), (false, "no TLS"));
        l.url = "ldaps://ldap.example.org".into();
        assert_eq!(tls_mode(&l), (false, "LDAPS"));
        assert!(connect_fix(&l.url, false).contains("certificate"));
        assert!(bind_fix(&l, "").contains("ldap.bind_dn"));
        assert!(bind_fix(&l, "cn=reader,dc=x").contains(&l.password_secret));
    }
}
