//! LDAP lookup of a user's POSIX identity (RFC 2307 `posixAccount`/`posixGroup`, plus `groupOfNames` membership by DN).
//! One short-lived connection per lookup, and a cache that keeps volumes working while the directory is down
//! (stale-if-error). It never writes to the directory and never hands out uid 0 or gid 0: volumes do not act as root.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};
use serde::{Deserialize, Serialize};

use super::{DirectoryError, PosixUser};

/// Filter that selects a user's entry; `{user}` is the name asked for.
pub const DEFAULT_USER_FILTER: &str = "(&(objectClass=posixAccount)(uid={user}))";
/// Filter that selects the groups of a user; `{user}` is the user's `uid`, `{dn}` the DN of the user's entry.
pub const DEFAULT_GROUP_FILTER: &str =
    "(|(&(objectClass=posixGroup)(memberUid={user}))(&(objectClass=groupOfNames)(member={dn})))";
/// How long a successful lookup is reused without asking the directory again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// Bound on a whole lookup: connect, bind and both searches.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest user name sent to the directory; longer names are unknown without asking (keeps filters and logs sane).
const MAX_USER_LEN: usize = 256;

/// Where and how to look users up. In the config file the durations are whole seconds, named `cache_ttl_seconds` and
/// `timeout_seconds`; every other field keeps its Rust name.
///
/// In `user_filter` and `group_filter`, `{user}` and `{dn}` are replaced by the user name and the user's entry DN,
/// escaped for a filter value (`*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`). Substitution is a
/// single pass, so a name containing `{dn}` stays literal. `{dn}` is empty in `user_filter` (there is no entry yet), and
/// the group search uses the `uid` spelling stored in the entry. An empty `group_filter` disables the group search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldap://host[:port]`, `ldaps://host[:port]` or `ldapi://<percent-encoded socket path>`.
    pub url: String,
    /// DN to simple-bind as; anonymous when absent. Needs `password_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// File holding the bind password, read at every lookup (so it can be rotated); one trailing newline is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Subtree searched for both users and groups.
    pub base_dn: String,
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    #[serde(
        rename = "cache_ttl_seconds",
        default = "default_cache_ttl",
        with = "seconds"
    )]
    pub cache_ttl: Duration,
    #[serde(
        rename = "timeout_seconds",
        default = "default_timeout",
        with = "seconds"
    )]
    pub timeout: Duration,
}

fn default_user_filter() -> String {
    DEFAULT_USER_FILTER.to_owned()
}

fn default_group_filter() -> String {
    DEFAULT_GROUP_FILTER.to_owned()
}

fn default_cache_ttl() -> Duration {
    DEFAULT_CACHE_TTL
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// Durations as whole seconds in config files.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

impl LdapSettings {
    /// Settings with the default filters, cache TTL and timeout, and an anonymous bind.
    pub fn new(url: impl Into<String>, base_dn: impl Into<String>) -> Self {
        LdapSettings {
            url: url.into(),
            bind_dn: None,
            password_file: None,
            base_dn: base_dn.into(),
            user_filter: default_user_filter(),
            group_filter: default_group_filter(),
            cache_ttl: DEFAULT_CACHE_TTL,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Checks what can be checked without the network: URL scheme, filters, credentials pairing, timeout. Called by
    /// every lookup; call it at startup too so that a typo fails there instead of at the first mount.
    pub fn validate(&self) -> Result<(), DirectoryError> {
        let config = |cause: String| DirectoryError::Config { cause };
        let scheme_ok = ["ldap://", "ldaps://", "ldapi://"].iter().any(|scheme| {
            self.url
                .get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        });
        if !scheme_ok {
            return Err(config(format!(
                "url {:?} is not an ldap://, ldaps:// or ldapi:// url",
                self.url
            )));
        }
        if self.base_dn.trim().is_empty() {
            return Err(config(
                "base_dn is empty: set it to the subtree holding users and groups".into(),
            ));
        }
        if !self.user_filter.contains("{user}") {
            return Err(config(format!(
                "user_filter {:?} does not contain {{user}}, so it cannot select one user",
                self.user_filter
            )));
        }
        check_filter("user_filter", &self.user_filter)?;
        if !self.group_filter.is_empty() {
            // A group filter without placeholders would put every user in every group it matches.
            if !self.group_filter.contains("{user}") && !self.group_filter.contains("{dn}") {
                return Err(config(format!(
                    "group_filter {:?} contains neither {{user}} nor {{dn}}, so it would match the same groups for \
                     every user (leave it empty to skip the group search)",
                    self.group_filter
                )));
            }
            check_filter("group_filter", &self.group_filter)?;
        }
        match (&self.bind_dn, &self.password_file) {
            (Some(_), None) => {
                return Err(config(
                    "bind_dn is set without password_file (an empty password would be an anonymous bind)".into(),
                ));
            }
            (None, Some(_)) => return Err(config("password_file is set without bind_dn".into())),
            _ => {}
        }
        if self.timeout.is_zero() {
            return Err(config(
                "timeout_seconds is 0: every lookup would time out".into(),
            ));
        }
        Ok(())
    }
}

/// Checks that a filter template parses once its placeholders are filled in.
fn check_filter(setting: &str, template: &str) -> Result<(), DirectoryError> {
    let sample = expand_filter(template, "user", "uid=user,dc=example");
    ldap3::parse_filter(&sample)
        .map(|_| ())
        .map_err(|()| DirectoryError::Config {
            cause: format!("{setting} {template:?} is not a valid ldap filter"),
        })
}

/// Replaces `{user}` and `{dn}` with their filter-escaped values in one pass, so that a value containing a
/// placeholder is never expanded again.
fn expand_filter(template: &str, user: &str, dn: &str) -> String {
    let mut out = String::with_capacity(template.len() + user.len() + dn.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        if let Some(after) = tail.strip_prefix("{user}") {
            out.push_str(&ldap_escape(user));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{dn}") {
            out.push_str(&ldap_escape(dn));
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

struct CacheEntry {
    user: PosixUser,
    fetched: Instant,
}

/// Looks users up in an LDAP directory, with a cache. Share it behind an `Arc`; lookups may run concurrently.
pub struct LdapDirectory {
    settings: LdapSettings,
    /// Keyed by the name asked for. A std mutex, held only to read or update the map and never across an `.await`,
    /// so it cannot block the runtime on network I/O.
    cache: Mutex<HashMap<String, CacheEntry>>,
}

impl LdapDirectory {
    pub fn new(settings: LdapSettings) -> Self {
        LdapDirectory {
            settings,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The settings this directory was made with.
    pub fn settings(&self) -> &LdapSettings {
        &self.settings
    }

    /// The identity of `user`: from the cache while younger than `cache_ttl`, else from the directory. When the
    /// directory is unavailable, the last identity fetched for `user` is returned however old it is (with a warning),
    /// so that existing volumes keep working through an LDAP outage; only users never seen fail then.
    pub async fn lookup(&self, user: &str) -> Result<PosixUser, DirectoryError> {
        if let Some(fresh) = self.cached_within(user, self.settings.cache_ttl) {
            return Ok(fresh);
        }
        match self.query(user).await {
            Ok(found) => {
                tracing::debug!(user, uid = found.uid, gid = found.gid, groups = ?found.groups, "ldap lookup");
                self.lock_cache().insert(
                    user.to_owned(),
                    CacheEntry {
                        user: found.clone(),
                        fetched: Instant::now(),
                    },
                );
                Ok(found)
            }
            Err(err @ DirectoryError::Unavailable { .. }) => match self.cached_entry(user) {
                Some((stale, age)) => {
                    tracing::warn!(
                        user,
                        age_seconds = age.as_secs(),
                        error = %err,
                        "ldap unavailable, using the cached identity"
                    );
                    Ok(stale)
                }
                None => Err(err),
            },
            Err(err) => {
                // The directory answered and no longer vouches for this identity: forget it, so a later outage
                // cannot bring it back.
                if matches!(
                    err,
                    DirectoryError::UnknownUser { .. }
                        | DirectoryError::BadEntry { .. }
                        | DirectoryError::Ambiguous { .. }
                ) {
                    self.lock_cache().remove(user);
                }
                Err(err)
            }
        }
    }

    /// The identity last fetched for `user`, however old, without asking the directory.
    pub fn cached(&self, user: &str) -> Option<PosixUser> {
        self.cached_entry(user).map(|(user, _)| user)
    }

    fn cached_within(&self, user: &str, ttl: Duration) -> Option<PosixUser> {
        self.cached_entry(user)
            .and_then(|(user, age)| (age < ttl).then_some(user))
    }

    fn cached_entry(&self, user: &str) -> Option<(PosixUser, Duration)> {
        let cache = self.lock_cache();
        cache
            .get(user)
            .map(|entry| (entry.user.clone(), entry.fetched.elapsed()))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CacheEntry>> {
        // The map stays consistent even if a holder panicked: every update is a single insert or remove.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the directory, bounded by `timeout` as a whole.
    async fn query(&self, user: &str) -> Result<PosixUser, DirectoryError> {
        self.settings.validate()?;
        if user.is_empty() || user.len() > MAX_USER_LEN {
            return Err(self.unknown(user));
        }
        let password = self.bind_password().await?;
        let timeout = self.settings.timeout;
        match tokio::time::timeout(timeout, self.exchange(user, password.as_deref())).await {
            Ok(result) => result,
            Err(_) => {
                Err(self.unavailable(format!("no answer within {} s", timeout.as_secs_f32())))
            }
        }
    }

    async fn bind_password(&self) -> Result<Option<String>, DirectoryError> {
        let Some(path) = &self.settings.password_file else {
            return Ok(None);
        };
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| DirectoryError::Config {
                cause: format!("cannot read password_file {}: {e}", path.display()),
            })?;
        let password = text
            .strip_suffix('\n')
            .map(|p| p.strip_suffix('\r').unwrap_or(p))
            .unwrap_or(&text);
        if password.is_empty() {
            return Err(DirectoryError::Config {
                cause: format!(
                    "password_file {} is empty (an empty password would be an anonymous bind)",
                    path.display()
                ),
            });
        }
        Ok(Some(password.to_owned()))
    }

    async fn exchange(
        &self,
        user: &str,
        password: Option<&str>,
    ) -> Result<PosixUser, DirectoryError> {
        let settings = LdapConnSettings::new().set_conn_timeout(self.settings.timeout);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.settings.url)
            .await
            .map_err(|e| self.unavailable(format!("cannot connect: {e}")))?;
        // The driver task ends by itself once `ldap` is dropped or unbound.
        ldap3::drive!(conn);
        let result = self.bind_and_search(&mut ldap, user, password).await;
        // Courtesy only; a failure here changes nothing about the answer.
        let _ = ldap.unbind().await;
        result
    }

    async fn bind_and_search(
        &self,
        ldap: &mut Ldap,
        user: &str,
        password: Option<&str>,
    ) -> Result<PosixUser, DirectoryError> {
        let settings = &self.settings;
        if let (Some(bind_dn), Some(password)) = (&settings.bind_dn, password) {
            ldap.simple_bind(bind_dn, password)
                .await
                .and_then(|result| result.success())
                .map_err(|e| self.ldap_failure(&format!("bind as {bind_dn}"), e))?;
        }

        let filter = expand_filter(&settings.user_filter, user, "");
        let (entries, _) = ldap
            .search(
                &settings.base_dn,
                Scope::Subtree,
                &filter,
                ["uid", "uidNumber", "gidNumber"],
            )
            .await
            .and_then(|result| result.success())
            .map_err(|e| self.ldap_failure("user search", e))?;
        let entry = match entries.len() {
            0 => return Err(self.unknown(user)),
            1 => SearchEntry::construct(entries.into_iter().next().expect("one entry")),
            count => {
                return Err(DirectoryError::Ambiguous {
                    user: user.to_owned(),
                    count,
                });
            }
        };

        let dn = entry.dn.clone();
        let bad = |cause: String| DirectoryError::BadEntry {
            dn: dn.clone(),
            cause,
        };
        let uid = number(&entry, "uidNumber").map_err(bad)?;
        let gid = number(&entry, "gidNumber").map_err(bad)?;
        if uid == 0 {
            return Err(bad("uidNumber is 0: volumes never act as root".into()));
        }
        if gid == 0 {
            return Err(bad(
                "gidNumber is 0: volumes never act as the root group".into()
            ));
        }
        let name = canonical_name(&entry, user);

        let mut groups = Vec::new();
        if !settings.group_filter.is_empty() {
            let filter = expand_filter(&settings.group_filter, &name, &dn);
            let (entries, _) = ldap
                .search(
                    &settings.base_dn,
                    Scope::Subtree,
                    &filter,
                    ["cn", "gidNumber"],
                )
                .await
                .and_then(|result| result.success())
                .map_err(|e| self.ldap_failure("group search", e))?;
            for group in entries.into_iter().map(SearchEntry::construct) {
                // A group without a usable gidNumber (a plain groupOfNames, a typo) grants nothing on disk; skipping
                // it only ever gives less access.
                match number(&group, "gidNumber") {
                    Ok(0) => {
                        tracing::warn!(group = %group.dn, user = %name, "ignoring group with gidNumber 0")
                    }
                    Ok(group_gid) if group_gid != gid => {
                        let cn = attr(&group, "cn").and_then(|v| v.first()).cloned();
                        groups.push((group_gid, cn.unwrap_or_else(|| group.dn.clone())));
                    }
                    Ok(_) => {}
                    Err(cause) if attr(&group, "gidNumber").is_none() => {
                        tracing::debug!(group = %group.dn, user = %name, "group has no gidNumber: {cause}")
                    }
                    Err(cause) => {
                        tracing::warn!(group = %group.dn, user = %name, "ignoring group: {cause}")
                    }
                }
            }
        }
        let mut group_names: Vec<String> = groups.iter().map(|(_, cn)| cn.clone()).collect();
        group_names.sort();
        group_names.dedup();
        let mut groups: Vec<u32> = groups.into_iter().map(|(gid, _)| gid).collect();
        groups.sort_unstable();
        groups.dedup();

        Ok(PosixUser {
            name,
            dn,
            uid,
            gid,
            groups,
            group_names,
        })
    }

    fn unknown(&self, user: &str) -> DirectoryError {
        DirectoryError::UnknownUser {
            user: user.to_owned(),
            base_dn: self.settings.base_dn.clone(),
        }
    }

    fn unavailable(&self, cause: String) -> DirectoryError {
        DirectoryError::Unavailable {
            url: self.settings.url.clone(),
            cause,
        }
    }

    fn ldap_failure(&self, what: &str, err: LdapError) -> DirectoryError {
        match err {
            // Only reachable if validate() let a template through that the expanded value broke; report it as ours.
            LdapError::FilterParsing => DirectoryError::Config {
                cause: format!("{what}: the filter does not parse after substitution"),
            },
            // Also what slapd answers when the ACLs hide the base from this bind (e.g. anonymous).
            LdapError::LdapResult { result } if result.rc == 32 => self.unavailable(format!(
                "{what} failed: base_dn {} does not exist or is not readable with this bind (noSuchObject)",
                self.settings.base_dn
            )),
            err => self.unavailable(format!("{what} failed: {err}")),
        }
    }
}

/// Values of an attribute, matching its name without regard to case (servers may answer with another spelling).
fn attr<'a>(entry: &'a SearchEntry, name: &str) -> Option<&'a Vec<String>> {
    entry
        .attrs
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, values)| values)
}

/// A single-valued numeric attribute such as `uidNumber`.
fn number(entry: &SearchEntry, name: &str) -> Result<u32, String> {
    match attr(entry, name).map(Vec::as_slice) {
        None | Some([]) => Err(format!("{name} is missing")),
        Some([value]) => value
            .parse()
            .map_err(|_| format!("{name} {value:?} is not a number from 0 to {}", u32::MAX)),
        Some(values) => Err(format!("{name} has {} values, expected one", values.len())),
    }
}

/// The user's name as the directory spells it. `uid` matches without regard to case while `memberUid` usually does
/// not, so the group search must use the stored spelling.
fn canonical_name(entry: &SearchEntry, asked: &str) -> String {
    let values = attr(entry, "uid").map(Vec::as_slice).unwrap_or_default();
    values
        .iter()
        .find(|v| v.as_str() == asked)
        .or_else(|| values.iter().find(|v| v.eq_ignore_ascii_case(asked)))
        .or(values.first())
        .cloned()
        .unwrap_or_else(|| asked.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_substituted() {
        assert_eq!(
            expand_filter(DEFAULT_USER_FILTER, "alice", ""),
            "(&(objectClass=posixAccount)(uid=alice))"
        );
        assert_eq!(
            expand_filter(
                DEFAULT_GROUP_FILTER,
                "alice",
                "uid=alice,ou=people,dc=example"
            ),
            "(|(&(objectClass=posixGroup)(memberUid=alice))\
             (&(objectClass=groupOfNames)(member=uid=alice,ou=people,dc=example)))"
        );
    }

    #[test]
    fn filter_syntax_in_a_name_is_escaped() {
        let filter = expand_filter(DEFAULT_USER_FILTER, "a*)(uid=*", "");
        assert_eq!(
            filter,
            r"(&(objectClass=posixAccount)(uid=a\2a\29\28uid=\2a))"
        );
        assert!(ldap3::parse_filter(&filter).is_ok());

        let filter = expand_filter("(uid={user})", "x\\00\0", "");
        assert_eq!(filter, r"(uid=x\5c00\00)");
    }

    #[test]
    fn dn_values_are_escaped_too() {
        let filter = expand_filter("(member={dn})", "", "cn=a(b)*,dc=x");
        assert_eq!(filter, r"(member=cn=a\28b\29\2a,dc=x)");
    }

    #[test]
    fn substituted_values_are_not_expanded_again() {
        assert_eq!(
            expand_filter("(&(uid={user})(member={dn}))", "{dn}", "cn={user}"),
            "(&(uid={dn})(member=cn={user}))"
        );
    }

    #[test]
    fn unknown_braces_are_kept() {
        assert_eq!(expand_filter("(cn={x}{user}{)", "u", ""), "(cn={x}u{)");
    }

    #[test]
    fn defaults_validate() {
        LdapSettings::new("ldap://127.0.0.1:389", "dc=example")
            .validate()
            .unwrap();
    }

    #[test]
    fn validate_rejects_unusable_settings() {
        let good = LdapSettings::new("ldap://127.0.0.1:389", "dc=example");
        type Change = fn(&mut LdapSettings);
        let cases: [(&str, Change); 9] = [
            ("not an ldap://", |s| s.url = "http://x".into()),
            ("base_dn is empty", |s| s.base_dn = " ".into()),
            ("does not contain {user}", |s| {
                s.user_filter = "(uid=alice)".into()
            }),
            ("not a valid ldap filter", |s| {
                s.user_filter = "(uid={user}".into()
            }),
            ("neither {user} nor {dn}", |s| {
                s.group_filter = "(objectClass=posixGroup)".into()
            }),
            ("not a valid ldap filter", |s| {
                s.group_filter = "memberUid={user})".into()
            }),
            ("without password_file", |s| {
                s.bind_dn = Some("cn=nfsd".into())
            }),
            ("without bind_dn", |s| s.password_file = Some("/p".into())),
            ("timeout_seconds is 0", |s| s.timeout = Duration::ZERO),
        ];
        for (expected, change) in cases {
            let mut settings = good.clone();
            change(&mut settings);
            let err = settings.validate().expect_err(expected).to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
        let mut no_groups = good.clone();
        no_groups.group_filter = String::new();
        no_groups.validate().unwrap();
    }

    #[test]
    fn settings_from_config_file() {
        let settings: LdapSettings = toml::from_str(
            r#"
            url = "ldap://ldap.example:389"
            base_dn = "dc=example"
            bind_dn = "cn=nfsd,dc=example"
            password_file = "/run/secrets/ldap"
            timeout_seconds = 2
            "#,
        )
        .unwrap();
        assert_eq!(settings.timeout, Duration::from_secs(2));
        assert_eq!(settings.cache_ttl, DEFAULT_CACHE_TTL);
        assert_eq!(settings.user_filter, DEFAULT_USER_FILTER);
        assert_eq!(settings.group_filter, DEFAULT_GROUP_FILTER);
        assert_eq!(
            settings.password_file,
            Some(PathBuf::from("/run/secrets/ldap"))
        );

        let round_trip: LdapSettings =
            toml::from_str(&toml::to_string(&settings).unwrap()).unwrap();
        assert_eq!(round_trip, settings);

        let err = toml::from_str::<LdapSettings>(
            "url = \"ldap://x\"\nbase_dn = \"dc=x\"\ncache_ttl = 3\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `cache_ttl`"), "{err}");
    }

    #[tokio::test]
    async fn password_file_loses_one_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        let mut settings = LdapSettings::new("ldap://127.0.0.1:1", "dc=x");
        settings.bind_dn = Some("cn=nfsd,dc=x".into());
        settings.password_file = Some(path.clone());
        let directory = LdapDirectory::new(settings);

        std::fs::write(&path, "secret \n").unwrap();
        assert_eq!(
            directory.bind_password().await.unwrap().as_deref(),
            Some("secret ")
        );
        std::fs::write(&path, "secret\r\n").unwrap();
        assert_eq!(
            directory.bind_password().await.unwrap().as_deref(),
            Some("secret")
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            directory.bind_password().await,
            Err(DirectoryError::Config { .. })
        ));
        std::fs::remove_file(&path).unwrap();
        let err = directory.lookup("alice").await.unwrap_err();
        assert!(
            matches!(&err, DirectoryError::Config { cause } if cause.contains("cannot read password_file")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn empty_and_overlong_names_are_unknown_without_asking() {
        // Port 1 on loopback refuses; an answer other than UnknownUser would mean the directory was asked.
        let directory = LdapDirectory::new(LdapSettings::new("ldap://127.0.0.1:1", "dc=x"));
        for name in [String::new(), "a".repeat(MAX_USER_LEN + 1)] {
            let err = directory.lookup(&name).await.unwrap_err();
            assert!(matches!(err, DirectoryError::UnknownUser { .. }), "{err}");
        }
        let err = directory.lookup("alice").await.unwrap_err();
        assert!(matches!(err, DirectoryError::Unavailable { .. }), "{err}");
    }
}
