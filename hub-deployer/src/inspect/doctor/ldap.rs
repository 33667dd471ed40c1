//! Checks `ldap-connect`, `ldap-bind` and one per group: connects to the directory of
//! `ldap.url` (may touch the LDAP server, never dockerd), each step bounded by a timeout. The
//! connection, the bind and the lookups are [`crate::directory`]'s; this file turns their
//! results into checks.

use std::time::Duration;

use super::{Check, DoctorOptions, Outcome};
use crate::directory::{self, Failure, Session};
use crate::settings::Config;

// Reads (I/O): the LDAP server.

/// `ldap-connect`, `ldap-bind` and one check per group.
pub(super) async fn ldap_checks(
    cfg: &Config,
    opts: &DoctorOptions,
    timeout: Duration,
) -> Vec<Check> {
    let l = &cfg.ldap;
    let mut groups: Vec<(&str, &str, &str)> =
        vec![("ldap-teacher-group", "ldap.teacher_group", &l.teacher_group)];
    groups.extend(
        l.student_groups
            .iter()
            .map(|g| ("ldap-student-group", "ldap.student_groups", g.as_str())),
    );
    let skip_groups = |reason: &str| -> Vec<Check> {
        groups
            .iter()
            .map(|(name, _, dn)| Check::skip(name, format!("{dn}: {reason}")))
            .collect()
    };
    let mut out = Vec::new();

    let (starttls, mode) = directory::tls_mode(l);
    let mut session = match Session::open(l, timeout).await {
        Ok(s) => {
            out.push(Check::ok("ldap-connect", format!("{} ({mode})", l.url)));
            s
        }
        Err(cause) => {
            out.push(Check::fail(
                "ldap-connect",
                format!("cannot connect to {} ({mode}): {cause}", l.url),
                directory::connect_fix(&l.url, starttls),
            ));
            out.push(Check::skip("ldap-bind", "the LDAP server was not reached"));
            out.extend(skip_groups("the LDAP server was not reached"));
            return out;
        }
    };

    let bind = match (&l.bind_dn, &opts.ldap_password) {
        (Some(_), None) => {
            out.push(Check::skip(
                "ldap-bind",
                "give --ldap-password-file to check the bind",
            ));
            out.extend(skip_groups(
                "not searched without the bind (give --ldap-password-file)",
            ));
            session.close().await;
            return out;
        }
        (Some(dn), Some(pw)) => (dn.as_str(), pw.as_str()),
        (None, _) => ("", ""),
    };
    let bind_check = match session.bind(bind.0, bind.1).await {
        Ok(()) if bind.0.is_empty() => Check::ok("ldap-bind", "anonymous bind accepted"),
        Ok(()) => Check::ok("ldap-bind", format!("bound as {}", bind.0)),
        Err(cause) if bind.0.is_empty() => Check::fail(
            "ldap-bind",
            format!("anonymous bind refused: {cause}"),
            directory::bind_fix(l, bind.0),
        ),
        Err(cause) => Check::fail(
            "ldap-bind",
            format!("bind as {} failed: {cause}", bind.0),
            directory::bind_fix(l, bind.0),
        ),
    };
    let bound_ok = bind_check.outcome == Outcome::Ok;
    out.push(bind_check);
    if !bound_ok {
        out.extend(skip_groups("the bind failed"));
        return out;
    }
    for (name, key, dn) in &groups {
        let found = session.entry(dn, &["1.1"]).await;
        out.push(check_group(name, key, dn, bind.0.is_empty(), found));
    }
    session.close().await;
    out
}

// Judgements of what was read (pure: no I/O).

/// The check of group `dn` (setting `key`) from its lookup.
fn check_group<T>(
    name: &str,
    key: &str,
    dn: &str,
    anonymous: bool,
    found: Result<Option<T>, Failure>,
) -> Check {
    let fix = format!("create the group {dn} in the directory, or correct {key} in swarmhub.toml");
    match found {
        Ok(Some(_)) => Check::ok(name, format!("{dn} exists")),
        Ok(None) => Check::fail(name, format!("{dn}: not visible to this bind"), fix),
        // directories answer noSuchObject also for entries the bind may not read
        Err(f) if f.no_such_object() && anonymous => Check::fail(
            name,
            format!("{dn} does not exist or is hidden from anonymous binds"),
            format!(
                "{fix}; if the directory hides it from anonymous binds, set ldap.bind_dn and give --ldap-password-file"
            ),
        ),
        Err(f) if f.no_such_object() => Check::fail(name, format!("{dn} does not exist"), fix),
        Err(f @ Failure::Timeout(_)) => Check::fail(
            name,
            format!("looking up {dn}: {f}"),
            "check the LDAP server's load and the network",
        ),
        Err(f) => Check::fail(
            name,
            format!("cannot look up {dn}: {f}"),
            format!("check {key} ({dn}) and that the bind DN may read it"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::doctor::Outcome;

    #[tokio::test]
    async fn a_silent_ldap_server_times_out() {
        // accepts connections (kernel backlog) and never answers
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut cfg = Config::default();
        cfg.ldap.url = format!("ldap://{}", l.local_addr().unwrap());
        cfg.ldap.starttls = true; // the StartTLS request is never answered
        let t0 = std::time::Instant::now();
        let checks = ldap_checks(&cfg, &DoctorOptions::default(), Duration::from_millis(500)).await;
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_eq!(checks[0].outcome, Outcome::Fail, "{:?}", checks[0]);
        assert!(checks[0].fix.as_deref().unwrap().contains("certificate"));
        drop(l);
    }

    #[test]
    fn missing_groups_name_the_setting() {
        let dn = "cn=students,ou=groups,dc=x";
        let gone = Failure::Refused {
            rc: 32,
            text: "rc=32 (noSuchObject)".into(),
        };
        let c = check_group::<()>("g", "ldap.student_groups", dn, true, Err(gone.clone()));
        assert!(c.detail.contains("hidden from anonymous"), "{c:?}");
        let c = check_group::<()>("g", "ldap.student_groups", dn, false, Err(gone));
        assert_eq!(c.detail, format!("{dn} does not exist"));
        assert!(c.fix.unwrap().contains("ldap.student_groups"));
        let c = check_group("g", "k", dn, false, Ok(Some(())));
        assert_eq!(c.outcome, Outcome::Ok);
    }
}
