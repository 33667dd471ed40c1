//! Runs the built `swarmhub-nfsd` binary as a child process on free loopback ports, the way an
//! admin would, and talks to its control API over real HTTP. The binary is found in the
//! workspace's target directory (or `$SWARMHUB_NFSD_BIN`); `cargo build --workspace --bins`
//! builds it, and the README's test command does that first.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Path of a binary built in this workspace (debug build first, then release).
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    workspace_bin_prefer(name, false)
}

/// Like `workspace_bin`, but looks for the release build first when `release`.
pub fn workspace_bin_prefer(name: &str, release: bool) -> anyhow::Result<PathBuf> {
    if let Some(p) = bin_override(name)? {
        return Ok(p);
    }
    let target = target_dir();
    for profile in profiles(release) {
        let p = target.join(profile).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "{name} is not built under {}; run `cargo build --workspace --bins` first (or set {})",
        target.display(),
        bin_env_name(name)
    )
}

/// Builds `cargo build [--release] -p PACKAGE --bin NAME` into `target_dir()` (a no-op when
/// current) and returns the binary's path; `$SWARMHUB_<NAME>_BIN` instead when set.
pub fn build_workspace_bin(package: &str, name: &str, release: bool) -> anyhow::Result<PathBuf> {
    if let Some(p) = bin_override(name)? {
        return Ok(p);
    }
    let target = target_dir();
    let profile = profiles(release)[0];
    eprintln!("building {name} ({profile}) into {}", target.display());
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "--locked", "-p", package, "--bin", name]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .arg("--target-dir")
        .arg(&target)
        .current_dir(crate::guest::repo_root())
        .status()
        .with_context(|| format!("running cargo to build {name} (is cargo on PATH?)"))?;
    if !status.success() {
        bail!("cargo build -p {package} failed with {status}");
    }
    let p = target.join(profile).join(name);
    if !p.exists() {
        bail!("cargo built {name} but {} is missing", p.display());
    }
    Ok(p)
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative to the workspace root), else the
/// one the running executable was built into (`<target>/<profile>/[deps/]<exe>`), else
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    let root = crate::guest::repo_root();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return root.join(t);
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        if dir.as_ref().is_some_and(|d| d.ends_with("deps")) {
            dir = dir.and_then(|d| d.parent().map(Path::to_path_buf));
        }
        if let Some(profile_dir) = dir
            && let Some(t) = profile_dir.parent()
            && t.join("CACHEDIR.TAG").exists()
        {
            return t.to_path_buf();
        }
    }
    root.join("target")
}

fn profiles(release: bool) -> [&'static str; 2] {
    if release {
        ["release", "debug"]
    } else {
        ["debug", "release"]
    }
}

/// `SWARMHUB_NFSD_BIN` for `swarmhub-nfsd`.
fn bin_env_name(name: &str) -> String {
    format!(
        "SWARMHUB_{}_BIN",
        name.trim_start_matches("swarmhub-")
            .replace('-', "_")
            .to_uppercase()
    )
}

/// The binary `$SWARMHUB_<NAME>_BIN` names, if set; an error when it does not exist.
fn bin_override(name: &str) -> anyhow::Result<Option<PathBuf>> {
    let env_name = bin_env_name(name);
    let Some(p) = std::env::var_os(&env_name).map(PathBuf::from) else {
        return Ok(None);
    };
    if !p.is_file() {
        bail!("{env_name}={} does not exist", p.display());
    }
    Ok(Some(p))
}

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests that start right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding port 0 on loopback")
}

/// How `Nfsd::start_with` runs the server; the default is what `Nfsd::start` does.
#[derive(Clone, Debug)]
pub struct NfsdOptions {
    /// The binary; `None`: `workspace_bin("swarmhub-nfsd")`.
    pub bin: Option<PathBuf>,
    /// The server's `RUST_LOG`.
    pub rust_log: String,
    /// On drop: `stop` (SIGTERM, wait) instead of SIGKILL.
    pub stop_on_drop: bool,
}

impl Default for NfsdOptions {
    fn default() -> Self {
        NfsdOptions {
            bin: None,
            rust_log: "info".into(),
            stop_on_drop: false,
        }
    }
}

/// A running `swarmhub-nfsd`.
pub struct Nfsd {
    pub data_dir: PathBuf,
    pub nfs: SocketAddr,
    pub api: SocketAddr,
    pub token: String,
    extra_args: Vec<String>,
    options: NfsdOptions,
    child: Option<Child>,
    log: PathBuf,
}

impl Nfsd {
    /// Starts nfsd over `data_dir` with extra flags; waits until `/v1/health` answers.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> anyhow::Result<Nfsd> {
        Self::start_with(data_dir, extra_args, NfsdOptions::default())
    }

    /// `start` with another binary or log level.
    pub fn start_with(
        data_dir: &Path,
        extra_args: &[&str],
        options: NfsdOptions,
    ) -> anyhow::Result<Nfsd> {
        let mut n = Nfsd {
            data_dir: data_dir.to_path_buf(),
            nfs: SocketAddr::from(([127, 0, 0, 1], free_port())),
            api: SocketAddr::from(([127, 0, 0, 1], free_port())),
            token: String::new(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            options,
            child: None,
            log: data_dir.with_extension("log"),
        };
        // a free port can be taken by someone else before nfsd binds it: retry on new ports
        for attempt in 0.. {
            match n.spawn() {
                Ok(()) => break,
                Err(e) if attempt < 5 && n.log_text().contains("Address already in use") => {
                    eprintln!("retrying on other ports: {e:#}");
                    n.nfs.set_port(free_port());
                    n.api.set_port(free_port());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let bin = match &self.options.bin {
            Some(b) => b.clone(),
            None => workspace_bin("swarmhub-nfsd")?,
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&bin)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(self.nfs.to_string())
            .arg("--api-listen")
            .arg(self.api.to_string())
            .args(&self.extra_args)
            .env("RUST_LOG", &self.options.rust_log)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait()? {
                self.child = None;
                bail!(
                    "swarmhub-nfsd exited with {status} at start; log:\n{}",
                    self.log_text()
                );
            }
            // the API answering is not enough for clients that connect right away (the kernel
            // client after a restart): wait for the NFS port too
            if http(self.api, "GET", "/v1/health", None, None).is_ok()
                && std::net::TcpStream::connect_timeout(&self.nfs, Duration::from_secs(1)).is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "swarmhub-nfsd did not answer /v1/health within 20 s; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.token = std::fs::read_to_string(self.data_dir.join("api-token"))?
            .trim()
            .to_string();
        Ok(())
    }

    /// The server process's id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, wait for exit (at most 15 s), start again on the same ports.
    pub fn restart_graceful(&mut self) -> anyhow::Result<Duration> {
        let took = self.stop()?;
        self.spawn()?;
        Ok(took)
    }

    /// SIGKILL, then start again on the same ports.
    pub fn restart_killed(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        self.spawn()
    }

    /// SIGKILL and reap, without starting again (see `start_again`).
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Starts the stopped (`stop`) or killed (`kill`) server again on the same ports and data
    /// dir; returns how long it took until it answered.
    pub fn start_again(&mut self) -> anyhow::Result<Duration> {
        if self.child.is_some() {
            bail!("swarmhub-nfsd is still running");
        }
        let start = Instant::now();
        self.spawn()?;
        Ok(start.elapsed())
    }

    /// SIGTERM and wait; returns how long the exit took.
    pub fn stop(&mut self) -> anyhow::Result<Duration> {
        let Some(mut c) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let start = Instant::now();
        // SAFETY-free: kill(1) keeps this crate free of libc
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()?;
        loop {
            if let Some(status) = c.try_wait()? {
                if !status.success() {
                    bail!(
                        "swarmhub-nfsd exited with {status} after SIGTERM; log:\n{}",
                        self.log_text()
                    );
                }
                return Ok(start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = c.kill();
                let _ = c.wait();
                bail!("swarmhub-nfsd did not exit within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A control API call with the bearer token; returns (status, body).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        http(self.api, method, path, body, Some(&self.token))
    }

    /// Creates a volume from a JSON body, failing unless the API says 200 or 201.
    pub fn create_volume(&self, json: &str) -> anyhow::Result<serde_json::Value> {
        let (status, body) = self.api("POST", "/v1/volumes", Some(json))?;
        if status != 200 && status != 201 {
            bail!("creating volume {json}: HTTP {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// The mount path of volume `name` as the control API gives it out (`/<name>/<secret>`).
    pub fn export(&self, name: &str) -> anyhow::Result<String> {
        let (status, body) = self.api("GET", &format!("/v1/volumes/{name}"), None)?;
        if status != 200 {
            bail!("getting volume {name}: HTTP {status}: {body}");
        }
        let v: serde_json::Value = serde_json::from_str(&body)?;
        v["export"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("volume {name} has no export in {body}"))
    }
}

impl Drop for Nfsd {
    fn drop(&mut self) {
        if self.options.stop_on_drop {
            let _ = self.stop();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = self.log_text();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- swarmhub-nfsd log tail ({}) ---\n{}",
                self.log.display(),
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
    }
}

/// A minimal HTTP/1.1 request over a fresh connection (no proxies, no TLS): enough for the
/// control API and independent of the server's own HTTP stack.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("malformed HTTP response: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    Ok((status, body))
}
