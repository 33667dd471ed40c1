//! `swarmhub doctor`'s LDAP checks against a real slapd, without dockerd (`DOCKER_HOST` names
//! a socket nobody listens on, so the Docker checks are skipped and LDAP is still checked):
//! connect, bind as the reader DN with `--ldap-password-file`, base-scope lookups of the teacher
//! and student groups; a wrong password and a missing group fail with a fix naming the DN and
//! the setting; without the password file the bind is skipped with the reason.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use swarmhub_tests::docker::run_timeout;
use swarmhub_tests::nfsd::workspace_bin;
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};

fn doctor(dir: &Path, ldap: &Slapd, students: &str, extra: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(workspace_bin("swarmhub").unwrap());
    cmd.current_dir(dir)
        .args(["--config", "swarmhub.toml", "--output", "json", "doctor"])
        .args(extra);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SWARMHUB_") {
            cmd.env_remove(k);
        }
    }
    cmd.env(
        "DOCKER_HOST",
        format!("unix://{}/nothing.sock", dir.display()),
    )
    .env("SWARMHUB_LDAP_URL", ldap.url.trim_end_matches('/'))
    .env("SWARMHUB_LDAP_STARTTLS", "false")
    .env("SWARMHUB_LDAP_BASE_DN", &ldap.base_dn)
    .env("SWARMHUB_LDAP_BIND_DN", &ldap.reader_dn)
    .env("SWARMHUB_LDAP_TEACHER_GROUP", ldap.group_dn("teachers"))
    .env("SWARMHUB_LDAP_STUDENT_GROUPS", students);
    let out = run_timeout(cmd, Duration::from_secs(60)).unwrap();
    // dockerd is missing, so doctor always fails (exit 6)
    assert_eq!(out.code(), Some(6), "{}", out.describe());
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.describe()))
}

fn outcome<'a>(v: &'a serde_json::Value, name: &str, nth: usize) -> &'a serde_json::Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .nth(nth)
        .unwrap_or_else(|| panic!("no check {name} #{nth} in {v:#}"))
}

#[test]
fn doctor_checks_bind_and_groups() {
    let ldap = Slapd::start(
        &[
            TestUser::new("alice", 20001, 20000),
            TestUser::new("tom", 20002, 20000),
        ],
        &[
            TestGroup::new("students", 20000, &["alice"]),
            TestGroup::new("teachers", 20010, &["tom"]),
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("swarmhub.toml"), "").unwrap();
    let pw = ldap.reader_password_file().unwrap();
    let pw = pw.to_str().unwrap();
    let students = format!(
        "[\"{}\", \"{}\"]",
        ldap.group_dn("students"),
        ldap.group_dn("nosuch")
    );

    let v = doctor(dir.path(), &ldap, &students, &["--ldap-password-file", pw]);
    assert_eq!(outcome(&v, "dockerd", 0)["outcome"], "fail");
    assert_eq!(outcome(&v, "ldap-connect", 0)["outcome"], "ok", "{v:#}");
    assert_eq!(outcome(&v, "ldap-bind", 0)["outcome"], "ok", "{v:#}");
    assert_eq!(
        outcome(&v, "ldap-teacher-group", 0)["outcome"],
        "ok",
        "{v:#}"
    );
    assert_eq!(
        outcome(&v, "ldap-student-group", 0)["outcome"],
        "ok",
        "{v:#}"
    );
    let missing = outcome(&v, "ldap-student-group", 1);
    assert_eq!(missing["outcome"], "fail", "{v:#}");
    let fix = missing["fix"].as_str().unwrap();
    assert!(
        fix.contains(&ldap.group_dn("nosuch")) && fix.contains("ldap.student_groups"),
        "{fix}"
    );

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let v = doctor(
        dir.path(),
        &ldap,
        &students,
        &["--ldap-password-file", wrong.to_str().unwrap()],
    );
    let bind = outcome(&v, "ldap-bind", 0);
    assert_eq!(bind["outcome"], "fail", "{v:#}");
    assert!(
        bind["detail"]
            .as_str()
            .unwrap()
            .contains("invalidCredentials"),
        "{bind}"
    );
    assert!(
        bind["fix"].as_str().unwrap().contains("ldap.bind_dn"),
        "{bind}"
    );
    assert_eq!(outcome(&v, "ldap-teacher-group", 0)["outcome"], "skip");

    let v = doctor(dir.path(), &ldap, &students, &[]);
    let bind = outcome(&v, "ldap-bind", 0);
    assert_eq!(bind["outcome"], "skip", "{v:#}");
    assert_eq!(
        bind["detail"],
        "give --ldap-password-file to check the bind"
    );
}
