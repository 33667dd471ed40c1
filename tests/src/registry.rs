//! A real container registry for tests (Debian's `docker-registry`, i.e. distribution 2.8), so
//! that an image or a managed plugin can be pushed once and pulled or installed on swarm nodes
//! that start with empty image stores, as on a real cluster. [`Registry::start`] runs
//! `docker-registry serve` on an address the test picks: [`REGISTRY_ADDR`] (the host's side of
//! the [`crate::swarm::SWARM`] node subnet, [`crate::swarm::HOST_IP`], which exists only while a
//! [`crate::swarm::Swarm`] is up and which every node and the test builder dockerd reach) or a
//! loopback address; never a wildcard address. Plain HTTP, no authentication: a dockerd trusts
//! it through `insecure-registries` ([`crate::swarm::Options::insecure_registry`]; the builder's
//! daemon.json names [`REGISTRY_ADDR`]).
//!
//! Each registry keeps its configuration, log and storage under [`ROOT`]`/<port>`, removed
//! first, and holds the lock `/tmp/swarmhub-registry-<port>.lock` through a flock(1) process
//! that kills the registry when the test process dies without dropping the [`Registry`]
//! (SIGKILL, abort). Dropping it kills the registry and removes the storage (the config and the
//! log stay until the next start on that port). Needs `/usr/bin/docker-registry`
//! (`apt-get install docker-registry`) and curl; not root, except to write under [`ROOT`] when
//! root made it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::docker::run_timeout;
use crate::swarm::{flock_guard, host_command};

/// The port of [`REGISTRY_ADDR`].
pub const REGISTRY_PORT: u16 = 5000;
/// The registry address of the swarm tests: [`crate::swarm::HOST_IP`]`:`[`REGISTRY_PORT`], on
/// the host's veth to the node subnet; reachable from every node and from the builder dockerd
/// while a [`crate::swarm::Swarm`] of the [`crate::swarm::SWARM`] instance is up.
pub const REGISTRY_ADDR: &str = "192.168.213.254:5000";

/// The `[registry]` and `[images]` sections of a `swarmhub.toml` whose images (tag `version`)
/// come from [`REGISTRY_ADDR`] over plain HTTP (every harness node's dockerd lists it in
/// `insecure-registries`).
pub fn swarmhub_sections(version: &str) -> String {
    format!(
        r#"[registry]
address = "{REGISTRY_ADDR}"
tls = false

[images]
# the registry is added to every reference
nfsd = "swarmhub/nfsd:{version}"
hub = "swarmhub/hub:{version}"
notebook_student = "swarmhub/notebook-student:{version}"
notebook_teacher = "swarmhub/notebook-teacher:{version}"
plugin = "swarmhub/swarmhub-nfs:{version}"
cli = "swarmhub/swarmhub:{version}"
"#
    )
}
/// The registry binary (Debian package `docker-registry`).
pub const BINARY: &str = "/usr/bin/docker-registry";
/// Every registry's directory is `ROOT/<port>`: `config.yml`, `registry.log`, `registry.pid`,
/// `data/` (the storage).
pub const ROOT: &str = "/var/tmp/swarmhub-tests/registry";
/// The manifest media types [`Registry::manifest_digest`] accepts (Docker schema 2 image and
/// list, OCI image manifest and index).
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
/// How long [`Registry::start`] waits for `GET /v2/` to answer 200.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP request (curl) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Kills the registry recorded in `$1/registry.pid` if that process still runs this directory's
/// config (the pid was not reused), then removes the storage. `$1` the registry's directory.
const KILL_REGISTRY: &str = r#"
D="$1"
p=$(cat "$D/registry.pid" 2>/dev/null)
if [ -n "$p" ] && tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF "$D/config.yml"; then
  kill -9 "$p" 2>/dev/null
fi
rm -f "$D/registry.pid"
rm -rf --one-file-system "$D/data"
exit 0
"#;

/// The flock(1) lock file of the registry on `port` (one per port and host at a time).
pub fn lock_file(port: u16) -> String {
    format!("/tmp/swarmhub-registry-{port}.lock")
}

/// A running `docker-registry serve`; dropping it kills it and removes its storage.
pub struct Registry {
    addr: String,
    dir: PathBuf,
    child: Option<Child>,
    /// flock(1) holding the port's lock; on EOF of its stdin it runs [`KILL_REGISTRY`], then unlocks
    guard: Child,
    guard_stdin: Option<ChildStdin>,
    /// how long [`Registry::start`] took from spawn until `/v2/` answered
    pub start_time: Duration,
}

/// One HTTP response, as curl printed it (`-i`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// header names as sent (compare them with [`Response::header`], case-insensitively)
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses curl's `-i` output: the status line and headers of the last response (a `100
/// Continue` before it is skipped), then the body.
pub fn parse_response(raw: &str) -> anyhow::Result<Response> {
    let mut rest = raw;
    loop {
        let (head, body) = match rest.find("\r\n\r\n") {
            Some(k) => (&rest[..k], &rest[k + 4..]),
            None => (rest.trim_end_matches(['\r', '\n']), ""),
        };
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        ensure!(
            status_line.starts_with("HTTP/"),
            "not an HTTP response: {:?}",
            raw.chars().take(200).collect::<String>()
        );
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status code in {status_line:?}"))?;
        if (100..200).contains(&status) && body.starts_with("HTTP/") {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        return Ok(Response {
            status,
            headers,
            body: body.to_string(),
        });
    }
}

/// The `tags` of a `GET /v2/<repo>/tags/list` body (`null` is none).
pub fn parse_tags(body: &str) -> anyhow::Result<Vec<String>> {
    string_list(body, "tags")
}

/// The `repositories` of a `GET /v2/_catalog` body.
pub fn parse_catalog(body: &str) -> anyhow::Result<Vec<String>> {
    string_list(body, "repositories")
}

fn string_list(body: &str, key: &str) -> anyhow::Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(body)
        .with_context(|| format!("registry answer is not JSON: {body:?}"))?;
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(String::from)
                    .with_context(|| format!("`{key}` holds a non-string: {body}"))
            })
            .collect(),
        Some(other) => bail!("`{key}` is not a list: {other}"),
    }
}

/// The registry's config: filesystem storage in `data`, deletes allowed, plain HTTP on `addr`,
/// no auth, no cache (an in-memory blob descriptor cache would outlive deletes).
fn config_yaml(addr: &str, data: &Path) -> String {
    // a JSON string is a YAML double-quoted scalar
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  fields:\n    service: swarmhub-test-registry\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {}\n",
        q(&data.to_string_lossy()),
        q(addr),
    )
}

impl Registry {
    /// Starts `docker-registry serve` on `addr` (`ip:port`, e.g. [`REGISTRY_ADDR`]; the address
    /// must exist on this host) with empty storage and waits (at most 30 s) until `GET /v2/`
    /// answers 200. Takes the port's lock first (waits at most 10 minutes for another test
    /// using the same port).
    pub fn start(addr: &str) -> anyhow::Result<Registry> {
        let sa: SocketAddr = addr
            .parse()
            .with_context(|| format!("registry address {addr:?}: want ip:port"))?;
        ensure!(
            !sa.ip().is_unspecified(),
            "registry address {addr}: tests bind loopback or their own addresses, not a wildcard"
        );
        ensure!(
            Path::new(BINARY).exists(),
            "{BINARY} is missing: apt-get install docker-registry (Debian's distribution 2.8 registry)"
        );
        let port = sa.port();
        let dir = Path::new(ROOT).join(port.to_string());
        std::fs::create_dir_all(ROOT).with_context(|| format!("creating {ROOT}"))?;
        let dir_s = dir.to_string_lossy().into_owned();
        let (guard, guard_stdin) = flock_guard(
            &lock_file(port),
            600,
            "exec sh -c \"$1\" kill-registry \"$2\"",
            &[KILL_REGISTRY, &dir_s],
        )?;
        let mut reg = Registry {
            addr: sa.to_string(),
            dir: dir.clone(),
            child: None,
            guard,
            guard_stdin: Some(guard_stdin),
            start_time: Duration::ZERO,
        };
        // a registry of an earlier run whose guard could not kill it, then its files
        let mut c = host_command("sh");
        c.args(["-c", KILL_REGISTRY, "kill-registry", &dir_s]);
        let out = run_timeout(c, Duration::from_secs(30))?;
        ensure!(
            out.success(),
            "removing an earlier registry: {}",
            out.describe()
        );
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
        }
        let data = dir.join("data");
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let config = dir.join("config.yml");
        std::fs::write(&config, config_yaml(&reg.addr, &data))
            .with_context(|| format!("writing {}", config.display()))?;
        let log = std::fs::File::create(reg.log_path())
            .with_context(|| format!("creating {}", reg.log_path().display()))?;
        let mut cmd = host_command(BINARY);
        cmd.arg("serve").arg(&config);
        // REGISTRY_* variables override the config file
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {BINARY} serve {}", config.display()))?;
        std::fs::write(dir.join("registry.pid"), child.id().to_string())?;
        reg.child = Some(child);
        let start = Instant::now();
        loop {
            let last = match reg.get("/v2/", None) {
                Ok(r) if r.status == 200 => break,
                Ok(r) => format!("HTTP {} {}", r.status, r.body.trim()),
                Err(e) => format!("{e:#}"),
            };
            if let Some(st) = reg.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                reg.child = None;
                let tail = reg.log_tail(30);
                let hint = if tail.contains("address already in use") {
                    " (something else listens on that port: Debian's own docker-registry \
                     service listens on :5000 when it runs; `systemctl disable --now docker-registry`)"
                } else if tail.contains("cannot assign requested address") {
                    " (the address is not on this host: REGISTRY_ADDR exists only while a Swarm \
                     of the SWARM instance is up; start the registry after Swarm::start)"
                } else {
                    ""
                };
                bail!(
                    "docker-registry on {addr} exited while starting ({st}){hint}; log tail ({}):\n{tail}",
                    reg.log_path().display(),
                );
            }
            if start.elapsed() > START_TIMEOUT {
                bail!(
                    "docker-registry on {addr}: GET /v2/ did not answer 200 within {START_TIMEOUT:?}; last: {last}\nlog tail ({}):\n{}",
                    reg.log_path().display(),
                    reg.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        reg.start_time = start.elapsed();
        Ok(reg)
    }

    /// `ip:port`, as in image references (`<address>/repo:tag`).
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// The registry's directory ([`ROOT`]`/<port>`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The registry's log (stdout and stderr of `docker-registry serve`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("registry.log")
    }

    /// Last `n` lines of the registry's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `GET http://<address><path>` (curl, in the host's namespaces, no proxy), with an
    /// `Accept` header when given.
    pub fn get(&self, path: &str, accept: Option<&str>) -> anyhow::Result<Response> {
        let url = format!("http://{}{path}", self.addr);
        let mut c = host_command("curl");
        c.args(["-sS", "-i", "--noproxy", "*", "--max-time"])
            .arg(REQUEST_TIMEOUT.as_secs().to_string());
        if let Some(a) = accept {
            c.arg("-H").arg(format!("Accept: {a}"));
        }
        c.arg(&url);
        let out = run_timeout(c, REQUEST_TIMEOUT + Duration::from_secs(5))
            .context("running curl (apt-get install curl)")?;
        ensure!(out.success(), "GET {url}: {}", out.describe());
        parse_response(&out.stdout).with_context(|| format!("GET {url}"))
    }

    /// The tags of `repo` (`GET /v2/<repo>/tags/list`); none for a repository the registry does
    /// not know.
    pub fn tags(&self, repo: &str) -> anyhow::Result<Vec<String>> {
        let r = self.get(&format!("/v2/{repo}/tags/list"), None)?;
        match r.status {
            200 => parse_tags(&r.body),
            404 => Ok(Vec::new()),
            s => bail!("tags of {repo}: HTTP {s} {}", r.body.trim()),
        }
    }

    /// The digest (`sha256:...`, the `Docker-Content-Digest` header) of `repo`'s manifest
    /// `reference` (a tag or a digest) as the registry serves it to a client accepting
    /// [`MANIFEST_ACCEPT`], i.e. the digest a `docker pull` records in `RepoDigests`; `None` if
    /// the registry has no such manifest.
    pub fn manifest_digest(&self, repo: &str, reference: &str) -> anyhow::Result<Option<String>> {
        let r = self.get(
            &format!("/v2/{repo}/manifests/{reference}"),
            Some(MANIFEST_ACCEPT),
        )?;
        match r.status {
            200 => r
                .header("Docker-Content-Digest")
                .map(|d| Some(d.to_string()))
                .with_context(|| {
                    format!("manifest {repo}:{reference}: no Docker-Content-Digest header")
                }),
            404 => Ok(None),
            s => bail!("manifest {repo}:{reference}: HTTP {s} {}", r.body.trim()),
        }
    }

    /// The repositories the registry holds (`GET /v2/_catalog`, the first 1000: its page limit).
    pub fn catalog(&self) -> anyhow::Result<Vec<String>> {
        let r = self.get("/v2/_catalog?n=1000", None)?;
        ensure!(
            r.status == 200,
            "catalog: HTTP {} {}",
            r.status,
            r.body.trim()
        );
        parse_catalog(&r.body)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.dir.join("registry.pid"));
        if let Some(mut stdin) = self.guard_stdin.take() {
            let _ = stdin.flush();
        }
        // EOF: the guard removes the storage and releases the lock
        let _ = self.guard.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_addr_is_on_the_swarm_host_veth() {
        assert_eq!(
            REGISTRY_ADDR,
            format!("{}:{REGISTRY_PORT}", crate::swarm::HOST_IP)
        );
    }

    #[test]
    fn parses_curl_output() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.distribution.manifest.v2+json\r\n\
                   docker-content-digest: sha256:abc\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n{\"x\":1}";
        let r = parse_response(raw).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Docker-Content-Digest"), Some("sha256:abc"));
        assert_eq!(r.body, "{\"x\":1}");

        let r =
            parse_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nA: b\r\n\r\n")
                .unwrap();
        assert_eq!(
            (r.status, r.header("a"), r.body.as_str()),
            (404, Some("b"), "")
        );

        // HEAD: headers only, possibly without the final blank line
        let r = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n").unwrap();
        assert_eq!((r.status, r.header("content-length")), (200, Some("2")));

        parse_response("curl: (7) Failed to connect").unwrap_err();
    }

    #[test]
    fn parses_tags_and_catalog() {
        assert_eq!(
            parse_tags(r#"{"name":"t/busybox","tags":["1","latest"]}"#).unwrap(),
            ["1", "latest"]
        );
        assert!(
            parse_tags(r#"{"name":"t/busybox","tags":null}"#)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            parse_catalog(r#"{"repositories":["a/b","c"]}"#).unwrap(),
            ["a/b", "c"]
        );
        assert!(parse_catalog(r#"{"repositories":[]}"#).unwrap().is_empty());
        parse_catalog("<html>").unwrap_err();
        parse_tags(r#"{"tags":"1"}"#).unwrap_err();
    }

    #[test]
    fn config_quotes_paths() {
        let c = config_yaml("127.0.0.1:5000", Path::new("/var/tmp/x/data"));
        assert!(c.contains("rootdirectory: \"/var/tmp/x/data\"\n"), "{c}");
        assert!(c.contains("addr: \"127.0.0.1:5000\"\n"), "{c}");
        assert!(c.starts_with("version: 0.1\n"), "{c}");
    }

    #[test]
    fn rejects_wildcard_and_bad_addresses() {
        for (addr, want) in [("0.0.0.0:5000", "wildcard"), ("localhost", "want ip:port")] {
            let Err(e) = Registry::start(addr) else {
                panic!("Registry::start({addr:?}) succeeded")
            };
            assert!(format!("{e:#}").contains(want), "{addr}: {e:#}");
        }
    }

    /// A real registry on a free loopback port: empty, answers, and is gone after drop.
    #[test]
    fn serves_on_loopback_and_stops_on_drop() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let t = Instant::now();
        let reg = Registry::start(&addr).unwrap_or_else(|e| panic!("{e:#}"));
        eprintln!("registry on {addr} answered after {:?}", reg.start_time);
        assert_eq!(reg.address(), addr);
        let v2 = reg.get("/v2/", None).unwrap();
        assert_eq!(v2.status, 200, "{v2:?}");
        assert_eq!(
            v2.header("Docker-Distribution-Api-Version"),
            Some("registry/2.0")
        );
        assert!(reg.catalog().unwrap().is_empty());
        assert!(reg.tags("t/none").unwrap().is_empty());
        assert_eq!(reg.manifest_digest("t/none", "1").unwrap(), None);
        let data = reg.dir().join("data");
        assert!(data.is_dir());
        drop(reg);
        assert!(
            std::net::TcpStream::connect(&addr).is_err(),
            "the registry still listens on {addr} after drop"
        );
        assert!(!data.exists(), "{} outlived the registry", data.display());
        // config and log of this one-off port
        std::fs::remove_dir_all(Path::new(ROOT).join(port.to_string())).unwrap();
        let _ = std::fs::remove_file(lock_file(port));
        eprintln!("whole registry round trip: {:?}", t.elapsed());
    }
}
