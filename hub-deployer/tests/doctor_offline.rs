//! `swarmhub status` and `swarmhub doctor` when dockerd is not there (`DOCKER_HOST` names a
//! socket nobody listens on) and the LDAP server is not there either (a closed loopback port):
//! exit codes, what stdout and stderr say, and that every failed check comes with its fix.
//! No daemon is needed and nothing is changed anywhere.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A dead dockerd socket (bound, then closed: the file stays, connecting is refused) and a
/// directory with a default `swarmhub.toml`.
struct Setup {
    dir: tempfile::TempDir,
    docker_host: String,
    ldap_url: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let out = swarmhub_in(dir.path(), &["init"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    Setup {
        docker_host: format!("unix://{}", sock.display()),
        ldap_url: format!("ldap://127.0.0.1:{port}"),
        dir,
    }
}

fn swarmhub_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarmhub"));
    cmd.current_dir(dir).args(args);
    // the test runner's environment must not change the settings
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SWARMHUB_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run swarmhub")
}

impl Setup {
    fn run(&self, args: &[&str]) -> Output {
        let t0 = Instant::now();
        let out = swarmhub_in(
            self.dir.path(),
            args,
            &[
                ("DOCKER_HOST", &self.docker_host),
                ("SWARMHUB_TIMEOUTS_DOCKER_SECONDS", "3"),
                ("SWARMHUB_LDAP_URL", &self.ldap_url),
                ("SWARMHUB_LDAP_STARTTLS", "false"),
            ],
        );
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "swarmhub {args:?} took {:?}",
            t0.elapsed()
        );
        out
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn status_without_dockerd_exits_3_naming_the_socket() {
    let s = setup();
    let out = s.run(&["status"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {err}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert!(
        err.contains(&format!("cannot reach dockerd at {}", s.docker_host)),
        "{err}"
    );
    assert!(err.contains("systemctl start docker"), "{err}");
    // the same for scripts
    let out = s.run(&["--output", "json", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

#[test]
fn doctor_without_dockerd_fails_the_dockerd_check_with_its_fix_and_exits_6() {
    let s = setup();
    let out = s.run(&["doctor"]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(6),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "✗ dockerd: cannot reach dockerd at {}",
            s.docker_host
        )),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("    fix: ") && lines[1].contains("systemctl start docker"),
        "{stdout}"
    );
    // the checks that need dockerd are skipped with the reason, LDAP is still checked
    assert!(
        stdout.contains("- nodes: skipped: dockerd is not usable"),
        "{stdout}"
    );
    let ldap = lines
        .iter()
        .position(|l| l.starts_with("✗ ldap-connect: "))
        .unwrap_or_else(|| panic!("no failed ldap-connect check in\n{stdout}"));
    assert!(lines[ldap].contains(&s.ldap_url), "{stdout}");
    assert!(
        lines[ldap + 1].starts_with("    fix: check ldap.url"),
        "{stdout}"
    );
    // every failure has its fix on the next line
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with('✗') {
            assert!(
                lines.get(i + 1).is_some_and(|f| f.starts_with("    fix: ")),
                "no fix under {l:?} in\n{stdout}"
            );
        }
    }
    assert!(lines.last().unwrap().starts_with("unhealthy: "), "{stdout}");
    assert!(stderr.contains("health check failed"), "{stderr}");
}

#[test]
fn doctor_json_lists_every_check() {
    let s = setup();
    let out = s.run(&["--output", "json", "doctor"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(v["ok"], false);
    let checks = v["checks"].as_array().unwrap();
    let by_name = |n: &str| {
        checks
            .iter()
            .find(|c| c["name"] == n)
            .unwrap_or_else(|| panic!("no check {n} in {v:#}"))
    };
    assert_eq!(checks[0]["name"], "dockerd");
    assert_eq!(by_name("dockerd")["outcome"], "fail");
    assert!(by_name("dockerd")["fix"].is_string());
    assert_eq!(by_name("nfsd-api")["outcome"], "skip");
    assert_eq!(by_name("ldap-connect")["outcome"], "fail");
    assert_eq!(by_name("ldap-bind")["outcome"], "skip");
    assert_eq!(by_name("hub-api")["outcome"], "skip");
    assert_eq!(
        v["failed"].as_u64().unwrap(),
        checks.iter().filter(|c| c["outcome"] == "fail").count() as u64
    );
}
