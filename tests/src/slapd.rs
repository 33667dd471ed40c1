//! A real OpenLDAP `slapd` for tests: a private config, an MDB database and a loopback port in a temporary directory,
//! filled with RFC 2307 users and groups. It needs Debian's `slapd` package (`/usr/sbin/slapd`, `/usr/sbin/slapadd`,
//! schemas in `/etc/ldap/schema`) and fails loudly without it rather than letting a test skip. It never touches the
//! system's own slapd configuration.
//!
//! ```no_run
//! use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};
//! let ldap = Slapd::start(
//!     &[TestUser::new("alice", 20001, 20000)],
//!     &[TestGroup::new("students", 20000, &["alice"])],
//! )?;
//! // ldap.url, ldap.base_dn; bind as ldap.reader_dn with ldap.reader_password (ldap.reader_password_file()).
//! # anyhow::Ok(())
//! ```

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tempfile::TempDir;

/// The server binary; `slapadd` sits next to it.
pub const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const SCHEMA_DIR: &str = "/etc/ldap/schema";
const MODULE_DIR: &str = "/usr/lib/ldap";
const INSTALL_HINT: &str =
    "install it with `apt-get install -y slapd ldap-utils` (CI does this in .ci/run)";

/// How long `start` and `restart` wait for slapd to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `posixAccount` + `inetOrgPerson` entry under `ou=people`.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub password: String,
}

impl TestUser {
    /// A user whose password is `<name>-password`.
    pub fn new(name: &str, uid: u32, gid: u32) -> Self {
        TestUser {
            name: name.to_owned(),
            uid,
            gid,
            password: format!("{name}-password"),
        }
    }
}

/// A `posixGroup` entry under `ou=groups` whose `memberUid`s are `members`.
#[derive(Debug, Clone)]
pub struct TestGroup {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

impl TestGroup {
    pub fn new(name: &str, gid: u32, members: &[&str]) -> Self {
        TestGroup {
            name: name.to_owned(),
            gid,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }
}

/// A running slapd. Dropping it kills slapd and removes its directory.
///
/// Access: `admin_dn` (the rootdn) may do anything; `reader_dn` and every user may read everything but passwords;
/// anonymous clients may bind and nothing else, so a search without a bind finds nothing.
pub struct Slapd {
    /// `ldap://127.0.0.1:<port>/`; stays the same across `stop` and `restart`.
    pub url: String,
    pub port: u16,
    /// `dc=swarmhub,dc=test`; users are `uid=<name>,ou=people,<base>`, groups `cn=<name>,ou=groups,<base>`.
    pub base_dn: String,
    pub admin_dn: String,
    pub admin_password: String,
    /// A read-only service account, as nfsd would use.
    pub reader_dn: String,
    pub reader_password: String,
    dir: TempDir,
    child: Option<Child>,
}

impl Slapd {
    /// Whether slapd is installed. Tests that need it should call [`Slapd::start`] anyway, which fails with
    /// installation instructions; this is for reporting, not for skipping.
    pub fn available() -> bool {
        Path::new(SLAPD).is_file() && Path::new(SLAPADD).is_file()
    }

    /// Writes the config, loads the entries with `slapadd`, starts slapd on a free loopback port and waits (up to
    /// 10 s) until it answers an LDAP bind.
    pub fn start(users: &[TestUser], groups: &[TestGroup]) -> anyhow::Result<Slapd> {
        Slapd::start_on("127.0.0.1", users, groups)
    }

    /// Like [`Slapd::start`], listening on `ip` instead of loopback: an address the test owns
    /// that containers reach, e.g. the gateway of Docker's `docker_gwbridge`.
    pub fn start_on(ip: &str, users: &[TestUser], groups: &[TestGroup]) -> anyhow::Result<Slapd> {
        for binary in [SLAPD, SLAPADD] {
            ensure!(
                Path::new(binary).is_file(),
                "{binary} not found: these tests run a real OpenLDAP server; {INSTALL_HINT}"
            );
        }
        for name in users
            .iter()
            .map(|u| &u.name)
            .chain(groups.iter().map(|g| &g.name))
        {
            check_name(name)?;
        }
        for member in groups.iter().flat_map(|g| &g.members) {
            check_name(member)?;
        }

        let dir = tempfile::Builder::new()
            .prefix("swarmhub-slapd-")
            .tempdir()
            .context("cannot create a temporary directory for slapd")?;
        let base_dn = "dc=swarmhub,dc=test".to_owned();
        let mut slapd = Slapd {
            url: String::new(),
            port: 0,
            admin_dn: format!("cn=admin,{base_dn}"),
            admin_password: "admin-secret".to_owned(),
            reader_dn: format!("cn=nfsd,ou=services,{base_dn}"),
            reader_password: "reader-secret".to_owned(),
            base_dn,
            dir,
            child: None,
        };
        std::fs::create_dir(slapd.db_dir())
            .context("cannot create the slapd database directory")?;
        std::fs::write(slapd.conf_path(), slapd.config()).context("cannot write slapd.conf")?;
        let ldif_path = slapd.dir.path().join("entries.ldif");
        std::fs::write(&ldif_path, slapd.entries(users, groups))
            .context("cannot write entries.ldif")?;

        let output = Command::new(SLAPADD)
            .arg("-f")
            .arg(slapd.conf_path())
            .arg("-l")
            .arg(&ldif_path)
            .output()
            .with_context(|| format!("cannot run {SLAPADD}"))?;
        ensure!(
            output.status.success(),
            "slapadd failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );

        // The port is free when probed but could be taken before slapd binds it; try a few.
        let mut last_error = None;
        for _ in 0..5 {
            slapd.port = free_port()?;
            slapd.url = format!("ldap://{ip}:{}/", slapd.port);
            match slapd.spawn() {
                Ok(()) => return Ok(slapd),
                Err(err) if slapd.log().contains("Address already in use") => {
                    last_error = Some(err)
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// DN of a test user's entry.
    pub fn user_dn(&self, name: &str) -> String {
        format!("uid={name},ou=people,{}", self.base_dn)
    }

    /// DN of a test group's entry.
    pub fn group_dn(&self, name: &str) -> String {
        format!("cn={name},ou=groups,{}", self.base_dn)
    }

    /// A file holding `reader_password` followed by a newline, the way secrets files usually end.
    pub fn reader_password_file(&self) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join("reader-password");
        std::fs::write(&path, format!("{}\n", self.reader_password))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// nfsd's flags to look users up in this directory as its reader (the password in
    /// [`Slapd::reader_password_file`]).
    pub fn nfsd_flags(&self) -> anyhow::Result<Vec<String>> {
        let pw = self.reader_password_file()?;
        Ok([
            "--ldap-url",
            &self.url,
            "--ldap-base-dn",
            &self.base_dn,
            "--ldap-bind-dn",
            &self.reader_dn,
            "--ldap-password-file",
            &pw.display().to_string(),
        ]
        .map(String::from)
        .to_vec())
    }

    /// The `[ldap]` section of a `swarmhub.toml` for this directory, reached at `host` (an
    /// address the nodes reach) in plain LDAP, read as the reader; the groups `students` and,
    /// if given, `teachers` (names of [`TestGroup`]s).
    pub fn swarmhub_section(&self, host: &str, students: &str, teachers: Option<&str>) -> String {
        let mut out = format!(
            "[ldap]\nurl = \"ldap://{host}:{port}\"\nstarttls = false\nbase_dn = \"{base}\"\nbind_dn = \"{reader}\"\nstudent_groups = [\"{students}\"]\n",
            port = self.port,
            base = self.base_dn,
            reader = self.reader_dn,
            students = self.group_dn(students),
        );
        if let Some(t) = teachers {
            let _ = writeln!(out, "teacher_group = \"{}\"", self.group_dn(t));
        }
        out
    }

    /// Kills slapd (SIGKILL; MDB survives that) and waits for it to exit. The data stays for [`Slapd::restart`].
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // It may have exited already; either way wait() reaps it.
            let _ = child.kill();
            child.wait().context("cannot wait for slapd to exit")?;
        }
        Ok(())
    }

    /// Starts slapd again on the same port with the same data (stopping it first if it runs).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Suspends slapd (SIGSTOP): connections are still accepted by the kernel but never answered, which is how a hung
    /// server looks to a client with a timeout. Undo with [`Slapd::resume`].
    /// Returns once every slapd thread has stopped.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP", true)
    }

    /// Resumes a slapd suspended by [`Slapd::pause`].
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT", false)
    }

    /// Whether slapd is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Applies an LDIF change (`changetype: add|modify|delete`, ...) as the admin, with `ldapmodify` from ldap-utils.
    pub fn modify(&self, ldif: &str) -> anyhow::Result<()> {
        let mut child = Command::new("ldapmodify")
            .args([
                "-x",
                "-H",
                &self.url,
                "-D",
                &self.admin_dn,
                "-w",
                &self.admin_password,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run ldapmodify: {INSTALL_HINT}"))?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(ldif.as_bytes())
            .context("cannot write to ldapmodify")?;
        let output = child
            .wait_with_output()
            .context("cannot wait for ldapmodify")?;
        ensure!(
            output.status.success(),
            "ldapmodify failed ({}):\n{}{}\nldif was:\n{ldif}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// slapd's log so far (errors and one line per operation, `-d stats`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.log_path()).context("cannot create slapd.log")?;
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(self.conf_path())
            .args(["-h", &self.url])
            // -d keeps slapd in the foreground, a child we can kill; "stats" logs errors and each operation.
            .args(["-d", "stats"])
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .context("cannot duplicate the log file handle")?,
            )
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {SLAPD}"))?;
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!("slapd exited at start ({status}); its log:\n{}", self.log());
            }
            // the address slapd listens on is the URL's host
            let ip = self
                .url
                .trim_start_matches("ldap://")
                .split(':')
                .next()
                .and_then(|h| h.parse().ok())
                .unwrap_or(Ipv4Addr::LOCALHOST);
            match probe(ip, self.port) {
                Ok(()) => return Ok(()),
                Err(err) if Instant::now() >= deadline => {
                    let _ = self.stop();
                    bail!(
                        "slapd did not answer on {} within {} s (last error: {err:#}); its log:\n{}",
                        self.url,
                        START_TIMEOUT.as_secs(),
                        self.log()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Sends a job-control signal and waits (up to 5 s) until all of slapd's threads are stopped, or none is.
    fn signal(&self, signal: &str, stopped: bool) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("slapd is not running")?;
        let pid = child.id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .context("cannot run kill")?;
        ensure!(status.success(), "kill -{signal} {pid} failed: {status}");
        // kill(2) only queues the signal; the threads stop (or continue) a moment later.
        let deadline = Instant::now() + Duration::from_secs(5);
        while threads_stopped(pid)? != stopped {
            ensure!(
                Instant::now() < deadline,
                "slapd (pid {pid}) did not {} within 5 s of SIGSTOP/SIGCONT",
                if stopped { "stop" } else { "continue" }
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("slapd.conf")
    }

    fn db_dir(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("slapd.log")
    }

    fn config(&self) -> String {
        let mut conf = String::new();
        for schema in ["core", "cosine", "nis", "inetorgperson"] {
            let _ = writeln!(conf, "include {SCHEMA_DIR}/{schema}.schema");
        }
        let _ = write!(
            conf,
            "modulepath {MODULE_DIR}\n\
             moduleload back_mdb\n\
             pidfile {dir}/slapd.pid\n\
             database mdb\n\
             maxsize 67108864\n\
             suffix \"{base}\"\n\
             rootdn \"{admin}\"\n\
             rootpw {admin_password}\n\
             directory {dir}/db\n\
             index objectClass,uid,memberUid,member eq\n\
             access to attrs=userPassword by self write by anonymous auth by * none\n\
             access to * by users read by * none\n",
            dir = self.dir.path().display(),
            base = self.base_dn,
            admin = self.admin_dn,
            admin_password = self.admin_password,
        );
        conf
    }

    fn entries(&self, users: &[TestUser], groups: &[TestGroup]) -> String {
        let base = &self.base_dn;
        let mut ldif = format!(
            "dn: {base}\nobjectClass: dcObject\nobjectClass: organization\ndc: swarmhub\no: swarmhub\n\n\
             dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{base}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: ou=services,{base}\nobjectClass: organizationalUnit\nou: services\n\n\
             dn: {reader}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: nfsd\n\
             userPassword: {reader_password}\n\n",
            reader = self.reader_dn,
            reader_password = self.reader_password,
        );
        for user in users {
            let _ = write!(
                ldif,
                "dn: {dn}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: {name}\ncn: {name}\n\
                 sn: {name}\nuidNumber: {uid}\ngidNumber: {gid}\nhomeDirectory: /home/{name}\n\
                 loginShell: /bin/bash\nuserPassword: {password}\n\n",
                dn = self.user_dn(&user.name),
                name = user.name,
                uid = user.uid,
                gid = user.gid,
                password = user.password,
            );
        }
        for group in groups {
            let _ = write!(
                ldif,
                "dn: {dn}\nobjectClass: posixGroup\ncn: {name}\ngidNumber: {gid}\n",
                dn = self.group_dn(&group.name),
                name = group.name,
                gid = group.gid,
            );
            for member in &group.members {
                let _ = writeln!(ldif, "memberUid: {member}");
            }
            ldif.push('\n');
        }
        ldif
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        // A paused slapd still dies of SIGKILL. The TempDir field then removes the directory.
        let _ = self.stop();
    }
}

/// Names go into DNs and LDIF unescaped, so the harness only takes plain ones.
fn check_name(name: &str) -> anyhow::Result<()> {
    ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
        "test user or group name {name:?} is not plain (letters, digits, '-', '_', '.'): the slapd harness writes names \
         into DNs unescaped; add such entries with Slapd::modify and a hand-written LDIF instead"
    );
    Ok(())
}

/// Whether every thread of `pid` is in the stopped state (`T` in /proc/<pid>/task/*/stat).
fn threads_stopped(pid: u32) -> anyhow::Result<bool> {
    let tasks = format!("/proc/{pid}/task");
    let mut all_stopped = true;
    for task in std::fs::read_dir(&tasks).with_context(|| format!("cannot list {tasks}"))? {
        let stat = std::fs::read_to_string(task?.path().join("stat")).unwrap_or_default();
        // The state follows the parenthesised command name, which may itself contain ") ".
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        all_stopped &= matches!(state, Some('T' | 't'));
    }
    Ok(all_stopped)
}

fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Sends an anonymous LDAPv3 bind and expects a successful BindResponse: proves slapd is past startup and serving.
fn probe(ip: Ipv4Addr, port: u16) -> anyhow::Result<()> {
    // LDAPMessage { messageID 1, BindRequest { version 3, name "", simple "" } }
    const BIND: [u8; 14] = [
        0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
    ];
    // LDAPMessage { messageID 1, BindResponse { resultCode success, matchedDN "", diagnosticMessage "" } }
    const SUCCESS: [u8; 14] = [
        0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
    ];
    let addr = SocketAddr::from((ip, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(&BIND)?;
    let mut answer = [0u8; SUCCESS.len()];
    stream.read_exact(&mut answer)?;
    ensure!(answer == SUCCESS, "unexpected bind response {answer:02x?}");
    Ok(())
}
