//! Boots the throwaway qemu guest of `tests/guest/` (Linux kernel NFS client under TCG; see
//! `tests/guest/README.md`) from Rust tests, and the nfs-ganesha reference server next to it.
//!
//! ```no_run
//! use swarmhub_tests::guest::{self, GuestRun};
//! guest::require_root();
//! let _lock = guest::lock(); // one guest at a time, across processes
//! guest::ensure_built();
//! let r = GuestRun::script("demo", "echo hello > f && cat f\n", 2049, 2049, "/vol").run().unwrap();
//! r.assert_passed("demo");
//! ```
//!
//! Requirements (callers FAIL, never skip, when they are missing): root for `build-guest.sh` and
//! `ganesha.sh` (they install packages via apt the first time), and apt access the first time
//! (kernel and busybox `.deb`s are cached in `SWARMHUB_GUEST_CACHE`, default
//! `/var/cache/swarmhub-guest`).

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use tempfile::TempDir;

use crate::nfsd::free_port;

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `tests/guest/`: the shell harness (build-guest.sh, run-guest.sh, ganesha.sh, suite/).
pub fn guest_dir() -> PathBuf {
    repo_root().join("tests/guest")
}

/// Where `build-guest.sh` keeps the .debs and the base image.
pub fn guest_cache() -> PathBuf {
    std::env::var_os("SWARMHUB_GUEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/swarmhub-guest"))
}

/// Held while a guest runs. TCG on 2 vCPUs is CPU-bound and parallel guests only make timings and
/// timeouts flaky: the mutex serialises one process's tests, the file lock other processes.
pub struct GuestLock {
    _guard: MutexGuard<'static, ()>,
    _file: File,
}

/// Waits for the guest lock (`/tmp/swarmhub-kernel-client.lock` across processes).
pub fn lock() -> GuestLock {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/swarmhub-kernel-client.lock")
        .expect("open /tmp/swarmhub-kernel-client.lock");
    file.lock().expect("lock /tmp/swarmhub-kernel-client.lock");
    GuestLock {
        _guard: guard,
        _file: file,
    }
}

/// Panics unless running as root.
pub fn require_root() {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "the guest tests need root (nfsd sets file owners; build-guest.sh and ganesha.sh \
         install packages): run them as root"
    );
}

/// Builds the guest image once per process (`build-guest.sh` is a no-op when it is current);
/// panics with the script's output when that fails.
pub fn ensure_built() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let out = Command::new(guest_dir().join("build-guest.sh"))
            .arg(guest_cache())
            .output()
            .map_err(|e| format!("cannot run build-guest.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "build-guest.sh {} failed ({}): the guest image (kernel + busybox .debs from apt) \
                 could not be built; it needs root and apt access the first time.\n--- stdout ---\n{}\n--- stderr ---\n{}",
                guest_cache().display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Two consecutive free ports on 127.0.0.1 (ganesha: NFS on P, MOUNT on P+1).
pub fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let p = free_port();
        if p < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports found");
}

/// A statically linked (`+crt-static`) release build of a workspace binary, for the guest (which
/// has busybox and no libc). Built with `cargo build --release --target x86_64-unknown-linux-gnu
/// -p PACKAGE` into the workspace target dir (`$CARGO_TARGET_DIR` or `target/`), under its own
/// target-triple directory so normal builds keep their flags; cargo makes this a no-op when
/// current, so the binary is never stale. `SWARMHUB_STATIC_<BIN>_BIN` (e.g.
/// `SWARMHUB_STATIC_VOLUME_PLUGIN_BIN`) points at a prebuilt one instead. Checked to have no ELF
/// interpreter. Built once per process.
pub fn static_bin(package: &str, bin: &str) -> Result<PathBuf> {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(b, _)| b == bin) {
        return Ok(p.clone());
    }
    let env_name = format!(
        "SWARMHUB_STATIC_{}_BIN",
        bin.trim_start_matches("swarmhub-")
            .replace('-', "_")
            .to_uppercase()
    );
    let path = if let Some(p) = std::env::var_os(&env_name) {
        PathBuf::from(p)
    } else {
        const TRIPLE: &str = "x86_64-unknown-linux-gnu";
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"));
        let t0 = Instant::now();
        let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                TRIPLE,
                "-p",
                package,
                "--bin",
                bin,
            ])
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .current_dir(repo_root())
            .output()
            .context("running cargo")?;
        ensure!(
            out.status.success(),
            "static build of {bin} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "static {bin}: cargo build took {:.1}s",
            t0.elapsed().as_secs_f64()
        );
        target.join(TRIPLE).join("release").join(bin)
    };
    ensure!(
        !has_elf_interpreter(&path)?,
        "{} is dynamically linked (has an ELF interpreter); the guest has no libc",
        path.display()
    );
    built.push((bin.to_owned(), path.clone()));
    Ok(path)
}

/// Whether an ELF64 file has a PT_INTERP program header (i.e. needs a dynamic loader).
fn has_elf_interpreter(path: &Path) -> Result<bool> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        b.len() > 64 && b.starts_with(b"\x7fELF") && b[4] == 2 && b[5] == 1,
        "{} is not a little-endian ELF64 file",
        path.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = usize::try_from(u64::from_le_bytes(b[0x20..0x28].try_into()?))?;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        ensure!(o + 4 <= b.len(), "truncated program headers");
        if u32::from_le_bytes(b[o..o + 4].try_into()?) == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}

// ----------------------------------------------------------------------------------------------
// nfs-ganesha reference server
// ----------------------------------------------------------------------------------------------

/// A private nfs-ganesha (`tests/guest/ganesha.sh`) exporting a directory: NFS on `port`, MOUNT
/// on `port + 1`, export path = the directory's absolute path. Stopped on drop.
pub struct Ganesha {
    /// The exported directory (absolute, symlinks resolved).
    pub dir: PathBuf,
    pub port: u16,
    state: PathBuf,
    /// The export and state temp dirs of `start`, removed after the server stopped.
    _temp: Option<(TempDir, TempDir)>,
}

impl Ganesha {
    /// Exports a fresh temp dir, with its state in another one.
    pub fn start() -> Result<Self> {
        let export = tempfile::Builder::new()
            .prefix("swarmhub-ganesha-export.")
            .tempdir()?;
        let state = tempfile::Builder::new()
            .prefix("swarmhub-ganesha-state.")
            .tempdir()?;
        let mut g = Self::start_in(export.path(), state.path())?;
        g._temp = Some((export, state));
        Ok(g)
    }

    /// Exports `dir` (which must exist), keeping ganesha's config, logs and pids in `state`
    /// (`ganesha.sh` recreates it). Retries on other ports when one is taken meanwhile.
    pub fn start_in(dir: &Path, state: &Path) -> Result<Self> {
        let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port_pair();
            let out = Command::new(guest_dir().join("ganesha.sh"))
                .arg("start")
                .arg(&dir)
                .arg(port.to_string())
                .env("SWARMHUB_GANESHA_STATE", state)
                .output()
                .context("running ganesha.sh")?;
            if out.status.success() {
                return Ok(Ganesha {
                    dir,
                    port,
                    state: state.to_path_buf(),
                    _temp: None,
                });
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            ensure!(
                attempt < 3 && stderr.contains("in use"),
                "ganesha.sh start failed ({}):\n{}{stderr}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    /// The export path clients mount.
    pub fn export_path(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// The ganesha.nfsd process's id (from the state dir).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.state.join("ganesha.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

impl Drop for Ganesha {
    fn drop(&mut self) {
        let _ = Command::new(guest_dir().join("ganesha.sh"))
            .arg("stop")
            .arg(&self.dir)
            .arg(self.port.to_string())
            .env("SWARMHUB_GANESHA_STATE", &self.state)
            .output();
    }
}

// ----------------------------------------------------------------------------------------------
// running a script in the guest
// ----------------------------------------------------------------------------------------------

/// What the guest runs (as root, busybox sh).
#[derive(Clone, Debug)]
pub enum Script {
    /// A part of the conformance suite: `suite/lib.sh` + `suite/<part>.sh`.
    Suite(String),
    /// Literal script text.
    Text(String),
}

/// One `run-guest.sh` invocation. Fields are public: adjust after `suite`/`script`.
#[derive(Clone, Debug)]
pub struct GuestRun {
    /// Used in file names and messages.
    pub name: String,
    pub script: Script,
    /// Ports as the guest reaches them on 10.0.2.2 (= host 127.0.0.1).
    pub nfs_port: u16,
    pub mount_port: u16,
    /// Mounted at /mnt/nfs by the guest's init (unless `mount` is false).
    pub export: String,
    /// Optional second export at /mnt/nfs2.
    pub export2: Option<String>,
    /// Exported at the top of the script.
    pub env: Vec<(String, String)>,
    /// Host-side hard limit for the whole run.
    pub timeout_s: u32,
    /// false = `--no-mount`: the init mounts nothing, the script mounts by itself (cwd /).
    pub mount: bool,
    /// `--extra-file SRC:DEST`: host files shipped into the guest.
    pub extra_files: Vec<(PathBuf, String)>,
}

/// How a run ended.
#[derive(Debug)]
pub struct GuestResult {
    /// run-guest.sh's exit code: the script's, or 240-245 (see the README).
    pub code: Option<i32>,
    /// The script's stdout+stderr followed by run-guest's stage/timing lines.
    pub output: String,
    /// Host wall clock of the whole run.
    pub wall: Duration,
}

/// A guest booting or running; drop kills it (run-guest.sh's trap then kills qemu).
pub struct RunningGuest {
    child: Option<Child>,
    out_path: PathBuf,
    t0: Instant,
    _work: Option<TempDir>,
}

impl GuestRun {
    /// A suite part (`tests/guest/suite/<part>.sh`) against an export mounted by the init.
    pub fn suite(part: &str, nfs_port: u16, mount_port: u16, export: &str) -> Self {
        Self::new(
            part,
            Script::Suite(part.to_owned()),
            nfs_port,
            mount_port,
            export,
        )
    }

    /// A literal script against an export mounted by the init.
    pub fn script(name: &str, text: &str, nfs_port: u16, mount_port: u16, export: &str) -> Self {
        Self::new(
            name,
            Script::Text(text.to_owned()),
            nfs_port,
            mount_port,
            export,
        )
    }

    fn new(name: &str, script: Script, nfs_port: u16, mount_port: u16, export: &str) -> Self {
        GuestRun {
            name: name.to_owned(),
            script,
            nfs_port,
            mount_port,
            export: export.to_owned(),
            export2: None,
            env: Vec::new(),
            timeout_s: 300,
            mount: true,
            extra_files: Vec::new(),
        }
    }

    /// Adds `export KEY='VALUE'` at the top of the script.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Starts run-guest.sh with its files in `work` (or a temp dir when `None`, removed when the
    /// returned guest is dropped); wait with `finish`.
    pub fn spawn(&self, work: Option<&Path>) -> Result<RunningGuest> {
        let tmp = match work {
            Some(_) => None,
            None => Some(
                tempfile::Builder::new()
                    .prefix("swarmhub-guest-run.")
                    .tempdir()?,
            ),
        };
        let work = work.unwrap_or_else(|| tmp.as_ref().unwrap().path());
        let mut bundle = String::new();
        for (k, v) in &self.env {
            ensure!(
                !v.contains('\''),
                "env value for {k} contains a single quote"
            );
            bundle.push_str(&format!("export {k}='{v}'\n"));
        }
        match &self.script {
            Script::Suite(part) => {
                let suite = guest_dir().join("suite");
                bundle.push_str(&std::fs::read_to_string(suite.join("lib.sh"))?);
                bundle.push_str(&std::fs::read_to_string(suite.join(format!("{part}.sh")))?);
            }
            Script::Text(t) => bundle.push_str(t),
        }
        let script = work.join(format!("script-{}.sh", self.name));
        std::fs::write(&script, bundle)?;
        let out_path = work.join(format!("guest-{}.out", self.name));
        let out = File::create(&out_path)?;
        let mut cmd = Command::new(guest_dir().join("run-guest.sh"));
        cmd.args(["--nfs-port", &self.nfs_port.to_string()])
            .args(["--mount-port", &self.mount_port.to_string()])
            .args(["--export", &self.export])
            .arg("--script")
            .arg(&script)
            .args(["--timeout", &self.timeout_s.to_string()])
            .arg("--cache")
            .arg(guest_cache())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        if let Some(e2) = &self.export2 {
            cmd.args(["--export2", e2]);
        }
        if !self.mount {
            cmd.arg("--no-mount");
        }
        for (src, dest) in &self.extra_files {
            let src = src.to_str().context("extra file path is not UTF-8")?;
            ensure!(!src.contains(':'), "extra file path {src} contains ':'");
            cmd.args(["--extra-file", &format!("{src}:{dest}")]);
        }
        Ok(RunningGuest {
            child: Some(cmd.spawn().context("spawn run-guest.sh")?),
            out_path,
            t0: Instant::now(),
            _work: tmp,
        })
    }

    /// Boots the guest, runs the script, waits.
    pub fn run(&self) -> Result<GuestResult> {
        self.spawn(None)?.finish()
    }
}

impl RunningGuest {
    /// When the guest started.
    pub fn started(&self) -> Instant {
        self.t0
    }

    /// `Some(status)` once run-guest.sh has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self
            .child
            .as_mut()
            .context("already finished")?
            .try_wait()?)
    }

    /// Waits for the end of the run.
    pub fn finish(mut self) -> Result<GuestResult> {
        let status = self.child.take().context("already finished")?.wait()?;
        Ok(GuestResult {
            code: status.code(),
            output: std::fs::read_to_string(&self.out_path)?,
            wall: self.t0.elapsed(),
        })
    }
}

impl Drop for RunningGuest {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM, so that run-guest.sh's trap kills qemu (SIGKILL would orphan it)
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}

impl GuestResult {
    /// The `FAIL ...` lines of the suite and run-guest.
    pub fn fail_lines(&self) -> String {
        self.output
            .lines()
            .filter(|l| l.starts_with("FAIL ") || l.starts_with("run-guest: FAIL"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Lines starting with `prefix`, prefix removed.
    pub fn lines_with<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.output
            .lines()
            .filter_map(move |l| l.strip_prefix(prefix))
    }

    /// Panics (with the FAIL lines first, then the whole output) unless the script passed.
    /// Prints timings and diagnostics (TIME, run-guest timings, `info: ` ...) in any case.
    pub fn assert_passed(&self, what: &str) {
        let summary = self
            .output
            .lines()
            .find(|l| l.starts_with("SUMMARY "))
            .unwrap_or("no SUMMARY line");
        eprintln!(
            "{what}: exit {:?}, {summary}, host wall {:.1}s",
            self.code,
            self.wall.as_secs_f64()
        );
        for l in self.output.lines().filter(|l| {
            [
                "TIME ",
                "run-guest: timings",
                "restart: ",
                "df: ",
                "quota: ",
                "info: ",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        }) {
            eprintln!("  {l}");
        }
        if self.code != Some(0) {
            panic!(
                "{what}: guest run failed (run-guest exit {:?}; 1 = a case failed, 240-245 = harness, see \
                 tests/guest/README.md)\n==== failing cases ====\n{}\n==== {summary} ====\n==== full guest output ====\n{}",
                self.code,
                self.fail_lines(),
                self.output
            );
        }
    }
}

// ----------------------------------------------------------------------------------------------
// host-side checks of what a guest left on disk
// ----------------------------------------------------------------------------------------------

/// Collects mismatches of on-disk owners/modes, so that all of them are reported at once (and
/// after the guest's own verdict, which usually explains them).
#[derive(Debug, Default)]
pub struct OwnerChecks(Vec<String>);

impl OwnerChecks {
    pub fn new() -> Self {
        Self::default()
    }

    /// `p` (lstat) must be owned by `uid` (and `gid`), with permission bits (incl.
    /// setuid/setgid/sticky) `mode` when given.
    pub fn check(&mut self, p: &Path, uid: u32, gid: Option<u32>, mode: Option<u32>) -> &mut Self {
        match std::fs::symlink_metadata(p) {
            Err(e) => self.0.push(format!("{}: lstat: {e}", p.display())),
            Ok(m) => {
                let (u, g, md) = (m.uid(), m.gid(), m.mode() & 0o7777);
                if u != uid || gid.is_some_and(|want| want != g) {
                    self.0.push(format!(
                        "{}: on-disk owner, expected {uid}:{}, got {u}:{g}",
                        p.display(),
                        gid.map_or("*".into(), |g| g.to_string())
                    ));
                }
                if let Some(want) = mode
                    && want != md
                {
                    self.0.push(format!(
                        "{}: mode, expected {want:o}, got {md:o}",
                        p.display()
                    ));
                }
            }
        }
        self
    }

    /// Each of `files` under `root` must be owned by `uid:gid`.
    pub fn files(&mut self, root: &Path, files: &[&str], uid: u32, gid: u32) -> &mut Self {
        for f in files {
            self.check(&root.join(f), uid, Some(gid), None);
        }
        self
    }

    /// Panics listing every mismatch, if any.
    pub fn assert_ok(&self, what: &str) {
        assert!(self.0.is_empty(), "{what}:\n{}", self.0.join("\n"));
    }
}
