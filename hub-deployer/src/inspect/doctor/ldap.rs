//! Checks `ldap-connect`, `ldap-bind` and one per group: connects to the directory of
//! `ldap.url` (may touch the LDAP server, never dockerd), each step bounded by a timeout.
//! [`ldap_connect_fix`] is the pure part: what to change when the connection fails.

use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope};

use super::{Check, DoctorOptions, Outcome};
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

    let starttls = l.starttls && l.url.starts_with("ldap://");
    let mode = if l.url.starts_with("ldaps://") {
        "LDAPS"
    } else if starttls {
        "StartTLS"
    } else {
        "no TLS"
    };
    let settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(starttls);
    let connected =
        tokio::time::timeout(timeout, LdapConnAsync::with_settings(settings, &l.url)).await;
    let mut ldap = match connected {
        Ok(Ok((conn, ldap))) => {
            ldap3::drive!(conn);
            out.push(Check::ok("ldap-connect", format!("{} ({mode})", l.url)));
            ldap
        }
        failed => {
            let cause = match failed {
                Ok(Err(e)) => ldap_error_text(&e),
                _ => format!("no answer within {} s", timeout.as_secs_f32()),
            };
            out.push(Check::fail(
                "ldap-connect",
                format!("cannot connect to {} ({mode}): {cause}", l.url),
                ldap_connect_fix(&l.url, starttls),
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
            let _ = tokio::time::timeout(timeout, ldap.unbind()).await;
            return out;
        }
        (Some(dn), Some(pw)) => (dn.as_str(), pw.as_str()),
        (None, _) => ("", ""),
    };
    let bound = tokio::time::timeout(timeout, async {
        ldap.simple_bind(bind.0, bind.1).await?.success()
    })
    .await;
    let bind_check = match bound {
        Ok(Ok(_)) if bind.0.is_empty() => Check::ok("ldap-bind", "anonymous bind accepted"),
        Ok(Ok(_)) => Check::ok("ldap-bind", format!("bound as {}", bind.0)),
        failed => {
            let cause = match failed {
                Ok(Err(e)) => ldap_error_text(&e),
                _ => format!("no answer within {} s", timeout.as_secs_f32()),
            };
            if bind.0.is_empty() {
                Check::fail(
                    "ldap-bind",
                    format!("anonymous bind refused: {cause}"),
                    "the directory wants a bind DN: set ldap.bind_dn, then swarmhub run --ldap-password-file FILE",
                )
            } else {
                Check::fail(
                    "ldap-bind",
                    format!("bind as {} failed: {cause}", bind.0),
                    format!(
                        "check ldap.bind_dn ({}) and the password file given; the hub and nfsd read the password from the secret {}, which must hold the same one",
                        bind.0, l.password_secret
                    ),
                )
            }
        }
    };
    let bound_ok = bind_check.outcome == Outcome::Ok;
    out.push(bind_check);
    if !bound_ok {
        out.extend(skip_groups("the bind failed"));
        return out;
    }
    for (name, key, dn) in &groups {
        out.push(group_check(&mut ldap, name, key, dn, bind.0.is_empty(), timeout).await);
    }
    let _ = tokio::time::timeout(timeout, ldap.unbind()).await;
    out
}

async fn group_check(
    ldap: &mut Ldap,
    name: &str,
    key: &str,
    dn: &str,
    anonymous: bool,
    timeout: Duration,
) -> Check {
    let search = tokio::time::timeout(timeout, async {
        ldap.search(dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await?
            .success()
    })
    .await;
    let fix = format!("create the group {dn} in the directory, or correct {key} in swarmhub.toml");
    match search {
        Ok(Ok((entries, _))) if !entries.is_empty() => Check::ok(name, format!("{dn} exists")),
        Ok(Ok(_)) => Check::fail(name, format!("{dn}: not visible to this bind"), fix),
        // directories answer noSuchObject also for entries the bind may not read
        Ok(Err(LdapError::LdapResult { result })) if result.rc == 32 && anonymous => Check::fail(
            name,
            format!("{dn} does not exist or is hidden from anonymous binds"),
            format!(
                "{fix}; if the directory hides it from anonymous binds, set ldap.bind_dn and give --ldap-password-file"
            ),
        ),
        Ok(Err(LdapError::LdapResult { result })) if result.rc == 32 => {
            Check::fail(name, format!("{dn} does not exist"), fix)
        }
        Ok(Err(e)) => Check::fail(
            name,
            format!("cannot look up {dn}: {}", ldap_error_text(&e)),
            format!("check {key} ({dn}) and that the bind DN may read it"),
        ),
        Err(_) => Check::fail(
            name,
            format!(
                "looking up {dn}: no answer within {} s",
                timeout.as_secs_f32()
            ),
            "check the LDAP server's load and the network",
        ),
    }
}

// Judgements of what was read (pure: no I/O).

fn ldap_error_text(e: &LdapError) -> String {
    if let LdapError::LdapResult { result } = e {
        // `rc=49 (invalidCredentials), dn: "", text: ""` without the empty parts
        let full = result.to_string();
        let code = full.split(", dn:").next().unwrap_or(&full).to_string();
        return if result.text.is_empty() {
            code
        } else {
            format!("{code}: {}", result.text)
        };
    }
    crate::exit::error_text(e)
}

/// What to do when the LDAP server cannot be reached (pure).
pub fn ldap_connect_fix(url: &str, starttls: bool) -> String {
    let mut fix =
        format!("check ldap.url ({url}) and that the server answers from here (firewall, port)");
    if url.starts_with("ldaps://") || starttls {
        fix.push_str(
            "; with TLS its certificate must be valid for that host name and trusted by this host's CA store",
        );
    }
    fix
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
}
