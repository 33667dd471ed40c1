//! A real dockerd for tests, driven through the `docker` CLI: [`Dockerd::ensure`] gives a test a
//! one-node machine of its own (a dockerd the swarm harness starts in its own namespaces, never
//! the machine's `/var/run/docker.sock`) and runs the test's thread inside it; restarts that
//! daemon for real, builds a tiny local image without a registry, builds and installs the
//! `swarmhub-nfs` managed plugin with `plugin-config/build.sh`, and talks to the plugin's socket
//! directly.
//!
//! The harness needs root, the `docker` CLI and `dockerd` (Debian: `docker.io`), `/dev/fuse`
//! (Debian: `fuse3`, kernel module `fuse`), `busybox-static` and what [`crate::swarm`] needs;
//! without them it fails with what to install, never skips. Tests of one process take turns on
//! their machine; processes take turns through the swarm harness's lock.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::swarm::{Entered, Options, SWARM, Swarm};

/// Directory for what the Docker-level tests write (plugin state, test directories, image rootfs).
pub const TEST_ROOT: &str = "/var/tmp/swarmhub-tests/docker";
/// Label put on containers and services the tests create, so cleanup finds leftovers.
pub const LABEL: &str = "swarmhub-test";
const DOCKER_HINT: &str =
    "install Docker with `apt-get install -y docker.io` (CI does this in .ci/run)";

/// How long a docker CLI call may take before the harness kills it.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// processes

/// Output of a finished command.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmd: String,
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    pub timed_out: bool,
}

impl Out {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// The exit code (None when killed by a signal or timed out).
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Prints `$ <what> -> <code> in <seconds> s` and the output, for the test's log.
    pub fn echo(&self, what: &str) {
        eprintln!(
            "$ {what} -> {:?} in {:.1} s\n{}{}",
            self.code(),
            self.took.as_secs_f64(),
            self.stdout,
            self.stderr
        );
    }

    /// stdout and stderr for messages.
    pub fn describe(&self) -> String {
        format!(
            "`{}` {} after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd,
            if self.timed_out {
                "timed out".to_string()
            } else {
                format!("exited with {:?}", self.status)
            },
            self.took,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `cmd`, killing it after `timeout`; captures stdout and stderr.
pub fn run_timeout(mut cmd: Command, timeout: Duration) -> anyhow::Result<Out> {
    let desc = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| {
                let a = a.to_string_lossy();
                if a.contains(' ') || a.is_empty() {
                    format!("'{a}'")
                } else {
                    a.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{desc}`"))?;
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    Ok(Out {
        cmd: desc,
        status,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned(),
        took,
        timed_out,
    })
}

/// `docker ARGS` with [`CLI_TIMEOUT`].
pub fn docker(args: &[&str]) -> Out {
    docker_timeout(args, CLI_TIMEOUT)
}

/// `docker ARGS`, killed after `timeout`.
pub fn docker_timeout(args: &[&str], timeout: Duration) -> Out {
    let mut c = Command::new("docker");
    c.args(args);
    run_timeout(c, timeout).unwrap_or_else(|e| panic!("{e:#}; {DOCKER_HINT}"))
}

/// `docker ARGS` that must succeed; returns trimmed stdout, panics with the full output otherwise.
#[track_caller]
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(out.success(), "docker command failed: {}", out.describe());
    out.stdout.trim().to_string()
}

/// `docker ARGS` that must fail; returns stderr (and stdout), panics if it succeeded.
#[track_caller]
pub fn docker_fails(args: &[&str]) -> Out {
    let out = docker(args);
    assert!(
        !out.success() && !out.timed_out,
        "docker command was expected to fail: {}",
        out.describe()
    );
    out
}

/// Whether this process runs as root (uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// dockerd

/// This process's one-node machine ([`Dockerd`]): started by the first test that asks, kept
/// until the process exits (the swarm harness's lock holder then tears it down), so the tests of
/// one binary share it and its loaded images.
static MACHINE: Mutex<Option<Swarm>> = Mutex::new(None);
/// One test at a time on [`MACHINE`] (plugin, volume and swarm state are global to a daemon).
static SERIAL: Mutex<()> = Mutex::new(());

/// A test's dockerd: node 1 of a one-node [`Swarm`] of the [`crate::swarm::SWARM`] instance
/// ([`Options::machine`]: never in a swarm at start, its socket at the default
/// `/var/run/docker.sock` in its own `/run`), with the calling thread inside that node's
/// network, mount and UTS namespaces until the `Dockerd` is dropped. So the test's `docker` CLI
/// calls, the programs it starts (`swarmhub`, `plugin-config/build.sh`, slapd, nfsd) and the
/// addresses it uses (127.0.0.1) are that machine's, and the host's own dockerd, if one runs,
/// is never reached.
pub struct Dockerd {
    // field order: leave the namespaces before letting the next test in
    _entered: Entered,
    _serial: MutexGuard<'static, ()>,
}

/// Checks that the host can run the docker tests at all.
pub fn preflight() -> anyhow::Result<()> {
    ensure!(
        is_root(),
        "the docker tests need root (dockerd, plugins, /dev/fuse); run them as root"
    );
    for (bin, hint) in [
        ("docker", DOCKER_HINT),
        ("dockerd", DOCKER_HINT),
        ("flock", "install util-linux"),
        ("tar", "install tar"),
    ] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).exists()))
            .unwrap_or(false);
        ensure!(found, "`{bin}` is not on PATH; {hint}");
    }
    ensure!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: the plugin's fuse backend needs it; `apt-get install -y fuse3` and `modprobe fuse`"
    );
    for var in ["DOCKER_HOST", "DOCKER_CONTEXT"] {
        ensure!(
            std::env::var_os(var).is_none(),
            "{var} is set; the docker tests use dockerds they start themselves: unset it"
        );
    }
    Ok(())
}

fn machine() -> MutexGuard<'static, Option<Swarm>> {
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}

impl Dockerd {
    /// Waits for the other tests of this process, starts this process's machine when it has
    /// none yet (waits at most 15 minutes for the swarm harness's lock), and moves the calling
    /// thread into it. Checks that the default socket reaches the machine's dockerd.
    pub fn ensure() -> anyhow::Result<Dockerd> {
        preflight()?;
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let entered = {
            let mut m = machine();
            if m.is_none() {
                let swarm = Swarm::start_with(SWARM, Options::machine())?;
                eprintln!(
                    "docker harness: one-node machine {} up in {:.1?} (dockerd log {})",
                    swarm.hostname(1),
                    swarm.bring_up,
                    swarm.log_path(1).display()
                );
                *m = Some(swarm);
            }
            m.as_ref().expect("started above").enter(1)?
        };
        let name = docker_timeout(&["info", "-f", "{{.Name}}"], Duration::from_secs(30));
        let want = machine().as_ref().expect("started").hostname(1);
        ensure!(
            name.success() && name.stdout.trim() == want,
            "inside the test machine, `docker info` should answer from {want}'s dockerd: {}",
            name.describe()
        );
        // images ensured before the machine existed
        for tag in crate::images::ensured_tags() {
            load_into_machine(&tag)?;
        }
        Ok(Dockerd {
            _entered: entered,
            _serial: serial,
        })
    }

    /// The machine's dockerd log.
    pub fn log_path(&self) -> PathBuf {
        machine().as_ref().expect("started").log_path(1)
    }

    /// Last `n` lines of the dockerd log that contain `needle` (all lines if empty).
    pub fn log_tail(&self, needle: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Really restarts the daemon (SIGTERM, wait for exit, start it again in the same
    /// namespaces and data root); returns how long until it answered again.
    pub fn restart(&mut self) -> anyhow::Result<Duration> {
        machine().as_mut().expect("started").restart_dockerd(1)
    }
}

/// Loads the image [`crate::images::ensure_images`] saved as `tag` into this process's machine,
/// if it has one and the image there is not the same (by id). [`crate::images::ensure_images`]
/// calls it, and [`Dockerd::ensure`] for what was ensured before the machine started: so a test
/// may ensure its images first and hold the swarm harness's lock only while it runs.
pub fn load_into_machine(tag: &str) -> anyhow::Result<()> {
    let m = machine();
    let Some(swarm) = m.as_ref() else {
        return Ok(());
    };
    let (file, id) = crate::images::saved_image_with_id(tag)?;
    let have = swarm.docker(1, &["image", "inspect", "-f", "{{.Id}}", tag]);
    if have.success() && have.stdout.trim() == id.trim() {
        return Ok(());
    }
    let t = Instant::now();
    let out = swarm.docker_timeout(
        1,
        &["load", "-i", &file.to_string_lossy()],
        Duration::from_secs(600),
    );
    ensure!(
        out.success(),
        "loading {tag} into the test machine: {}",
        out.describe()
    );
    eprintln!("docker harness: loaded {tag} in {:.1?}", t.elapsed());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// image

/// The tag of [`busybox_image`]'s image; a new tag whenever its contents change, because an
/// image of the same tag left by an earlier run is reused as it is.
pub const BUSYBOX_IMAGE: &str = "swarmhub-test/busybox:2";

/// Builds (once) a tiny image from busybox-static ([`busybox_tar`]) in the default dockerd (the
/// test's machine: [`Dockerd::ensure`] first). `docker import`, no registry.
pub fn busybox_image(tag: &str) -> anyhow::Result<()> {
    if docker(&["image", "inspect", tag]).success() {
        return Ok(());
    }
    let tar = busybox_tar()?;
    let out = docker(&[
        "import",
        "--change",
        "ENV PATH=/bin",
        &tar.to_string_lossy(),
        tag,
    ]);
    ensure!(out.success(), "docker import failed: {}", out.describe());
    Ok(())
}

/// A root file system tarball of busybox-static: `/bin/busybox` and its applets, `/tmp`, and
/// `/etc/passwd` with `jovyan` 1000:100 whose home `/home/jovyan` is jovyan's, as in the
/// notebook images (Docker gives an empty volume mounted there the owner of the image's
/// directory, and nfsd, acting as the volume's user, refuses to give it away to root). Made
/// once per process, in [`TEST_ROOT`].
pub fn busybox_tar() -> anyhow::Result<PathBuf> {
    static MADE: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = made.as_ref() {
        return Ok(p.clone());
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .context("busybox is missing; `apt-get install -y busybox-static`")?;
    let bytes = std::fs::read(busybox)?;
    ensure!(
        !bytes
            .windows(b"/lib64/ld-linux".len())
            .take(8192)
            .any(|w| w == b"/lib64/ld-linux"),
        "{} is dynamically linked; `apt-get install -y busybox-static`",
        busybox.display()
    );
    let root = Path::new(TEST_ROOT).join(format!("busybox-rootfs.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["bin", "etc", "tmp", "home/jovyan"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))?;
    std::os::unix::fs::chown(root.join("home/jovyan"), Some(1000), Some(100))?;
    std::fs::write(root.join("bin/busybox"), &bytes)?;
    std::fs::set_permissions(
        root.join("bin/busybox"),
        std::fs::Permissions::from_mode(0o755),
    )?;
    let list = Command::new(busybox).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\njovyan:x:1000:100:jovyan:/home/jovyan:/bin/sh\n",
    )?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nusers:x:100:jovyan\n")?;
    let tar = root.with_extension("tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["--numeric-owner", "-cf"])
        .arg(&tar)
        .arg(".")
        .output()?;
    ensure!(
        out.status.success(),
        "tar of {}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&root);
    *made = Some(tar.clone());
    Ok(tar)
}

// ---------------------------------------------------------------------------------------------
// plugin

/// The repository root (for `plugin-config/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// An installed managed plugin.
pub struct Plugin {
    pub name: String,
    pub id: String,
    /// host directory bound at the plugin's /state
    pub state_dir: PathBuf,
}

/// Removes what a swarmhub deployment left in this dockerd, for tests' cleanup (errors are
/// ignored: parts may be gone already): the `swarmhub-nfs` plugin, the network, the secrets,
/// the configs labelled `swarmhub.managed=true`, and the swarm itself and the firewall chain
/// of the plugin rollout when `leave_swarm` (the test made the swarm).
/// Services must be removed first (the caller knows their names).
pub fn remove_deployment(network: &str, secrets: &[&str], leave_swarm: bool) {
    // the plugin rollout put swarmhub's firewall chain into this host's iptables; a swarm that
    // was here before the test (a deployment of this machine's own) keeps its chain
    if leave_swarm && let Ok(bin) = crate::nfsd::workspace_bin("swarmhub") {
        let _ = Command::new(bin)
            .args(["plugin", "node-firewall", "--root", "/", "remove"])
            .output();
    }
    docker(&["plugin", "disable", "-f", "swarmhub-nfs"]);
    docker(&["plugin", "rm", "-f", "swarmhub-nfs"]);
    docker(&["network", "rm", network]);
    for s in secrets {
        docker(&["secret", "rm", s]);
    }
    let configs = docker(&[
        "config",
        "ls",
        "-q",
        "--filter",
        "label=swarmhub.managed=true",
    ]);
    for id in configs.stdout.split_whitespace() {
        docker(&["config", "rm", id]);
    }
    if leave_swarm {
        docker(&["swarm", "leave", "--force"]);
    }
}

/// Removes what earlier runs of the tests left in the daemon: labelled containers and
/// services, volumes of `driver`, and the plugin `name` if its state directory lies under
/// [`TEST_ROOT`] (a plugin installed by someone else is never touched: that is an error).
pub fn remove_leftovers(name: &str) -> anyhow::Result<()> {
    let ids = docker_ok(&["ps", "-aq", "--filter", &format!("label={LABEL}")]);
    for id in ids.lines().filter(|l| !l.is_empty()) {
        docker(&["rm", "-f", id]);
    }
    if docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"])
        .stdout
        .trim()
        == "true"
    {
        let ids = docker(&["service", "ls", "-q", "--filter", &format!("label={LABEL}")]).stdout;
        for id in ids.lines().filter(|l| !l.is_empty()) {
            docker(&["service", "rm", id]);
        }
    }
    let inspect = docker(&[
        "plugin",
        "inspect",
        "-f",
        "{{range .Settings.Mounts}}{{if eq .Name \"state\"}}{{.Source}}{{end}}{{end}}",
        name,
    ]);
    if inspect.success() {
        let state = inspect.stdout.trim();
        ensure!(
            state.starts_with(TEST_ROOT),
            "a plugin {name} that the tests did not install exists in this daemon (state dir {state:?}); the tests will not touch it. Remove it, or set SWARMHUB_TEST_PLUGIN to another name"
        );
        for vol in docker_ok(&["volume", "ls", "-q", "--filter", &format!("driver={name}")])
            .lines()
            .filter(|l| !l.is_empty())
        {
            docker(&["volume", "rm", "-f", vol]);
        }
        docker(&["plugin", "disable", "-f", name]);
        docker_ok(&["plugin", "rm", "-f", name]);
    }
    Ok(())
}

impl Plugin {
    /// Builds the plugin with `plugin-config/build.sh` (binary from `$SWARMHUB_PLUGIN_STATIC_BIN`
    /// if set, else `cargo build --release` with crt-static), creates it as `name`, copies
    /// `token` to its state directory, applies `settings` (`KEY=VALUE`) and enables it.
    pub fn install(name: &str, token: &str, settings: &[String]) -> anyhow::Result<Plugin> {
        remove_leftovers(name)?;
        let state_dir = Path::new(TEST_ROOT).join("plugin-state");
        let _ = std::fs::remove_dir_all(&state_dir);
        std::fs::create_dir_all(&state_dir)?;
        std::fs::write(state_dir.join("nfsd-token"), token)?;
        std::fs::set_permissions(
            state_dir.join("nfsd-token"),
            std::fs::Permissions::from_mode(0o600),
        )?;
        let mut build = Command::new(repo_root().join("plugin-config/build.sh"));
        build
            .arg("--out")
            .arg(Path::new(TEST_ROOT).join("plugin-dir"))
            .arg("--state-dir")
            .arg(&state_dir);
        if let Ok(bin) = std::env::var("SWARMHUB_PLUGIN_STATIC_BIN") {
            build.arg("--binary").arg(bin);
        }
        build.arg(name);
        let out = run_timeout(build, Duration::from_secs(1200))?;
        ensure!(
            out.success(),
            "plugin-config/build.sh failed: {}",
            out.describe()
        );
        let mut set = vec![
            "plugin".to_string(),
            "set".into(),
            name.into(),
            format!("state.source={}", state_dir.display()),
        ];
        set.extend(settings.iter().cloned());
        let set: Vec<&str> = set.iter().map(String::as_str).collect();
        docker_ok(&set);
        let p = Plugin {
            name: name.to_string(),
            id: docker_ok(&["plugin", "inspect", "-f", "{{.Id}}", name]),
            state_dir,
        };
        p.enable()?;
        Ok(p)
    }

    /// `docker plugin enable` (bounded), then waits until the socket answers.
    pub fn enable(&self) -> anyhow::Result<Duration> {
        let out = docker_timeout(&["plugin", "enable", &self.name], Duration::from_secs(60));
        ensure!(
            out.success(),
            "enabling plugin {}: {}",
            self.name,
            out.describe()
        );
        let start = Instant::now();
        while self.call("/Plugin.Activate", "{}").is_err() {
            ensure!(
                start.elapsed() < Duration::from_secs(10),
                "plugin {} is enabled but its socket {} does not answer",
                self.name,
                self.socket().display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(out.took)
    }

    /// `docker plugin disable -f`.
    pub fn disable_force(&self) -> Out {
        docker_timeout(
            &["plugin", "disable", "-f", &self.name],
            Duration::from_secs(60),
        )
    }

    /// Disables (forced), sets `KEY=VALUE`s, enables.
    pub fn reconfigure(&self, settings: &[String]) -> anyhow::Result<()> {
        let out = self.disable_force();
        ensure!(out.success(), "{}", out.describe());
        let mut args = vec!["plugin", "set", self.name.as_str()];
        args.extend(settings.iter().map(String::as_str));
        docker_ok(&args);
        self.enable()?;
        Ok(())
    }

    /// The plugin's socket as dockerd sees it on the host.
    pub fn socket(&self) -> PathBuf {
        Path::new("/run/docker/plugins")
            .join(&self.id)
            .join("swarmhub-nfs.sock")
    }

    /// A call as dockerd makes it: POST, JSON body, `Accept: application/vnd.docker.plugins.v1.2+json`
    /// and no Content-Type (moby's pkg/plugins/transport sets none). Returns (status, body).
    pub fn call(&self, method: &str, body: &str) -> anyhow::Result<(u16, String)> {
        let mut s = std::os::unix::net::UnixStream::connect(self.socket())
            .with_context(|| format!("connecting to {}", self.socket().display()))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            s,
            "POST {method} HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp)?;
        let text = String::from_utf8_lossy(&resp).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("malformed HTTP response: {text:?}"))?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        Ok((status, body))
    }

    /// A call whose reply must carry an empty `Err`; returns the parsed reply.
    pub fn call_ok(&self, method: &str, body: &str) -> anyhow::Result<serde_json::Value> {
        let (status, text) = self.call(method, body)?;
        ensure!(status == 200, "{method} {body}: HTTP {status}: {text}");
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{method}: {text:?}"))?;
        let err = v.get("Err").and_then(|e| e.as_str()).unwrap_or("");
        ensure!(err.is_empty(), "{method} {body}: Err {err:?}");
        Ok(v)
    }

    /// Disables (forced) and removes the plugin.
    pub fn remove(&self) {
        let _ = self.disable_force();
        let out = docker(&["plugin", "rm", "-f", &self.name]);
        if !out.success() {
            eprintln!("docker harness: removing plugin: {}", out.describe());
        }
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percentile (0..=100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "float-to-int `as` saturates, and the rank is clamped to the last index below"
    )]
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
