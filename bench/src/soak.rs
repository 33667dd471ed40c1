//! The soak (issue 17, item 4): simulated notebooks autosave through the volume plugin's FUSE
//! mounts for a long time while swarmhub-nfsd is restarted every few minutes; every error a
//! notebook sees is counted by kind, the resident memory of nfsd and of the plugin is sampled
//! at a fixed interval, and at the end every saved file is checked on nfsd's disk.
//!
//! Everything is the real thing, outside Docker: the built `swarmhub-nfsd` on free loopback
//! ports (`swarmhub_tests::nfsd::Nfsd`), and the built `swarmhub-volume-plugin serve --backend
//! fuse` on a unix socket, driven the way dockerd drives it (`VolumeDriver.Create` and
//! `VolumeDriver.Mount` over HTTP on the socket, `VolumeDriver.Unmount` at the end). The
//! volumes are created on nfsd first with explicit store ids (no LDAP here); the plugin's
//! `Create` with `user=<name>` then confirms them, as it does for a hub whose volumes exist.
//!
//! A notebook saves like Jupyter's atomic save: write a temp file in the same directory, fsync
//! it, rename it over `notebook.ipynb`, fsync the directory; a save is *acknowledged* when the
//! rename returned. Notebooks save about once a second (uniform jitter of ±50 %) and every few
//! saves read the file back and compare it with the last acknowledged version. Restarts
//! alternate SIGTERM and SIGKILL (`RestartMode::Alternate`, the binary's `--kill`) or are all
//! SIGTERM: a graceful stop and a crash take different paths in nfsd (a flush on the way out
//! vs nothing), and the plugin's pool sees a closed connection in one case and a reset in the
//! other, so a soak that alternates covers both with one run. See docs/RELIABILITY.md.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use hyper::Method;

use crate::rng::Rng;
use serde_json::{Value, json};
use swarmhub_tests::nfsd::{self, Nfsd};

use crate::gate::Api;
use crate::servers;

/// Name of the saved file in every volume.
pub const NOTEBOOK_FILE: &str = "notebook.ipynb";
/// First store uid/gid of the notebooks' volumes (notebook i acts as 41000 + i on disk).
pub const STORE_ID_BASE: u32 = 41_000;

/// How nfsd is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartMode {
    /// Every restart is SIGTERM, wait for exit, start.
    Term,
    /// Every restart is SIGKILL, start.
    Kill,
    /// SIGTERM first, then SIGKILL, and so on.
    Alternate,
}

impl RestartMode {
    /// The signal of restart `n` (0-based).
    pub fn signal(self, n: usize) -> Signal {
        match self {
            RestartMode::Term => Signal::Term,
            RestartMode::Kill => Signal::Kill,
            RestartMode::Alternate if n.is_multiple_of(2) => Signal::Term,
            RestartMode::Alternate => Signal::Kill,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Kill => "SIGKILL",
        }
    }
}

/// Settings of one soak.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub duration: Duration,
    pub notebooks: usize,
    /// nfsd is restarted every this long (the first restart after this long).
    pub restart_every: Duration,
    pub restart_mode: RestartMode,
    /// RSS of nfsd and the plugin is read every this long.
    pub sample_every: Duration,
    /// Mean time between two saves of one notebook (each pause is uniform in ±50 % of it).
    pub save_every: Duration,
    /// Every this many saves a notebook reads its file back (0: never).
    pub read_every: u64,
    /// fsync the directory after the rename.
    pub fsync_dir: bool,
    /// Notebook sizes are uniform in this range (bytes).
    pub min_bytes: usize,
    pub max_bytes: usize,
    /// Parent of the run's temp directory (nfsd's data, the plugin's state, the mount root).
    pub work_base: PathBuf,
    /// Explicit binaries; `None`: found in the workspace's target directory.
    pub nfsd_bin: Option<PathBuf>,
    pub plugin_bin: Option<PathBuf>,
    /// Look for release builds first (else debug first).
    pub release: bool,
    /// `cargo build` the two binaries first (in the preferred profile).
    pub build: bool,
    /// Keep the temp directory.
    pub keep: bool,
    /// Progress lines on stderr.
    pub verbose: bool,
    /// Seed of the jitter and the contents.
    pub seed: u64,
}

impl SoakConfig {
    /// The documented soak: 30 minutes, 32 notebooks, a restart every 3 minutes alternating
    /// SIGTERM and SIGKILL, RSS every 10 s.
    pub fn full() -> SoakConfig {
        SoakConfig {
            duration: Duration::from_secs(30 * 60),
            notebooks: 32,
            restart_every: Duration::from_secs(180),
            restart_mode: RestartMode::Alternate,
            sample_every: Duration::from_secs(10),
            save_every: Duration::from_secs(1),
            read_every: 5,
            fsync_dir: true,
            min_bytes: 2 * 1024,
            max_bytes: 64 * 1024,
            work_base: std::env::temp_dir(),
            nfsd_bin: None,
            plugin_bin: None,
            release: true,
            build: false,
            keep: false,
            verbose: true,
            seed: 17,
        }
    }

    /// The CI version: 8 notebooks for 48 s, restarts at 16 s (SIGTERM) and 32 s (SIGKILL),
    /// with whatever build of the binaries is there (debug first).
    pub fn ci() -> SoakConfig {
        SoakConfig {
            duration: Duration::from_secs(48),
            notebooks: 8,
            restart_every: Duration::from_secs(16),
            sample_every: Duration::from_secs(2),
            read_every: 3,
            release: false,
            verbose: false,
            ..SoakConfig::full()
        }
    }

    /// Restarts that fit in the run (none in the last second).
    pub fn planned_restarts(&self) -> usize {
        if self.restart_every.is_zero() {
            return 0;
        }
        let n = self.duration.as_secs_f64() / self.restart_every.as_secs_f64();
        // a restart exactly at the end is not made
        whole_usize((n - 1e-9).floor())
    }
}

/// `x` rounded to a whole number, at least 0 (`as` saturates at the top).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "float-to-int `as` saturates, and the value is clamped at 0 first"
)]
pub fn whole(x: f64) -> u64 {
    x.round().max(0.0) as u64
}

fn whole_usize(x: f64) -> usize {
    usize::try_from(whole(x)).unwrap_or(usize::MAX)
}

/// The bytes of version `version` of notebook `nb`: a JSON-ish header naming both, then
/// pseudo-random filler; the size is in `[min, max]`. Any two versions differ.
pub fn content(seed: u64, nb: usize, version: u64, min: usize, max: usize) -> Vec<u8> {
    let mut rng =
        Rng::new(seed ^ ((nb as u64) << 40) ^ version.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let span = max.saturating_sub(min) as u64 + 1;
    let len = min + usize::try_from(rng.next_u64() % span).unwrap_or(0);
    let mut v =
        format!("{{\"notebook\": {nb}, \"version\": {version}, \"cells\": [\"").into_bytes();
    let body = len.saturating_sub(3);
    while v.len() < body {
        // printable ASCII, like a notebook's JSON
        v.push(b' ' + (rng.next_u64() % 94) as u8);
    }
    v.extend_from_slice(b"\"]}");
    v
}

/// One error a notebook saw.
#[derive(Clone, Debug)]
pub struct SoakError {
    /// `EIO`, `ENOTCONN`, `ESTALE`, `short read`, `wrong content`, ...
    pub kind: String,
    pub notebook: usize,
    pub version: u64,
    /// The step: `create temp`, `write temp`, `fsync temp`, `rename`, `fsync dir`, `read`.
    pub step: &'static str,
    /// Seconds since the start of the soak.
    pub at_s: f64,
    pub message: String,
}

/// An acknowledged save: when it began and when the rename returned (seconds since start).
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    pub version: u64,
    pub began_s: f64,
    pub acked_s: f64,
}

/// What one notebook did.
#[derive(Clone, Debug, Default)]
pub struct NotebookLog {
    pub acks: Vec<Ack>,
    /// The newest version whose rename was attempted (acknowledged or not).
    pub last_attempted: u64,
    pub reads_checked: u64,
    pub errors: Vec<SoakError>,
}

impl NotebookLog {
    pub fn last_acked(&self) -> Option<u64> {
        self.acks.last().map(|a| a.version)
    }
}

/// One restart of nfsd.
#[derive(Clone, Debug)]
pub struct RestartRecord {
    pub signal: Signal,
    /// Seconds since the start when the signal was sent.
    pub at_s: f64,
    /// nfsd's RSS just before the signal (KiB).
    pub rss_before_kib: Option<u64>,
    /// Signal until the new nfsd answered its health check and took TCP connections.
    pub down_ms: f64,
    /// Signal until the first acknowledged save that began after the signal.
    pub first_save_ms: Option<f64>,
    /// Signal until every notebook had an acknowledged save begun after the signal.
    pub all_saved_ms: Option<f64>,
}

/// One RSS sample (KiB); `None` when the process was not running.
#[derive(Clone, Copy, Debug)]
pub struct RssSample {
    pub at_s: f64,
    pub nfsd_kib: Option<u64>,
    pub plugin_kib: Option<u64>,
}

/// A notebook whose file on disk is not its last acknowledged version.
#[derive(Clone, Debug)]
pub struct Lost {
    pub notebook: usize,
    pub last_acked: Option<u64>,
    pub found: String,
}

/// first, min, max, last and the least-squares slope over the second half (KiB/min).
#[derive(Clone, Copy, Debug, Default)]
pub struct RssStats {
    pub first: u64,
    pub min: u64,
    pub max: u64,
    pub last: u64,
    pub slope_kib_per_min: f64,
    pub samples: usize,
}

impl RssStats {
    /// Statistics of `(seconds, KiB)` points; `None` without points.
    pub fn of(points: &[(f64, u64)]) -> Option<RssStats> {
        let first = points.first()?.1;
        let last = points.last()?.1;
        let half = &points[points.len() / 2..];
        Some(RssStats {
            first,
            min: points.iter().map(|p| p.1).min()?,
            max: points.iter().map(|p| p.1).max()?,
            last,
            slope_kib_per_min: slope(half) * 60.0,
            samples: points.len(),
        })
    }
}

/// Least-squares slope of `(x, y)` in y per x; 0 for fewer than two distinct x.
pub fn slope(points: &[(f64, u64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 as f64 - my)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// Everything a soak found.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    pub config_line: String,
    pub machine: String,
    pub nfsd_bin: PathBuf,
    pub plugin_bin: PathBuf,
    pub wall_s: f64,
    pub notebooks: Vec<NotebookLog>,
    pub restarts: Vec<RestartRecord>,
    pub rss: Vec<RssSample>,
    pub lost: Vec<Lost>,
    /// Notebooks whose file on disk is a version newer than the last acknowledged one (a
    /// rename that took effect but whose reply was lost: not a loss).
    pub newer_unacked: usize,
    /// FUSE mounts left under the mount root after Unmount and the plugin's exit.
    pub leftover_mounts: Vec<String>,
    /// Problems of the harness itself (plugin or nfsd failing to stop, Unmount errors).
    pub harness_errors: Vec<String>,
    pub plugin_cpu_s: Option<f64>,
    /// The plugin's reconnects to nfsd by the NFS call that found the connection broken (from
    /// its log): only a mutating call here means one was in flight at a restart and was resent.
    pub plugin_reconnects: BTreeMap<String, usize>,
    /// ERROR lines in the plugin's log (a call failed with EIO after its retry window, ...).
    pub plugin_log_errors: usize,
    /// Seconds the `VolumeDriver.Unmount` calls of all volumes took at the end.
    pub unmount_s: f64,
}

impl SoakReport {
    pub fn errors(&self) -> impl Iterator<Item = &SoakError> {
        self.notebooks.iter().flat_map(|n| n.errors.iter())
    }

    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    pub fn errors_by_kind(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for e in self.errors() {
            *m.entry(e.kind.clone()).or_default() += 1;
        }
        m
    }

    pub fn saves_acked(&self) -> usize {
        self.notebooks.iter().map(|n| n.acks.len()).sum()
    }

    pub fn reads_checked(&self) -> u64 {
        self.notebooks.iter().map(|n| n.reads_checked).sum()
    }

    /// No error, nothing lost, no mount left behind, the harness itself fine.
    pub fn ok(&self) -> bool {
        self.error_count() == 0
            && self.lost.is_empty()
            && self.leftover_mounts.is_empty()
            && self.harness_errors.is_empty()
    }

    pub fn nfsd_rss(&self) -> Option<RssStats> {
        let p: Vec<_> = self
            .rss
            .iter()
            .filter_map(|s| s.nfsd_kib.map(|k| (s.at_s, k)))
            .collect();
        RssStats::of(&p)
    }

    pub fn plugin_rss(&self) -> Option<RssStats> {
        let p: Vec<_> = self
            .rss
            .iter()
            .filter_map(|s| s.plugin_kib.map(|k| (s.at_s, k)))
            .collect();
        RssStats::of(&p)
    }

    /// The one-line JSON summary.
    pub fn summary_json(&self) -> Value {
        let rss = |s: Option<RssStats>| match s {
            Some(s) => json!({
                "first_kib": s.first, "min_kib": s.min, "max_kib": s.max, "last_kib": s.last,
                "slope_second_half_kib_per_min": (s.slope_kib_per_min * 10.0).round() / 10.0,
                "samples": s.samples,
            }),
            None => Value::Null,
        };
        let ms = |v: Option<f64>| v.map(whole);
        json!({
            "wall_s": whole(self.wall_s),
            "notebooks": self.notebooks.len(),
            "restarts": self.restarts.len(),
            "restart_signals": self.restarts.iter().map(|r| r.signal.name()).collect::<Vec<_>>(),
            "saves_acked": self.saves_acked(),
            "reads_checked": self.reads_checked(),
            "errors": self.error_count(),
            "errors_by_kind": self.errors_by_kind(),
            "lost": self.lost.len(),
            "newer_unacked": self.newer_unacked,
            "leftover_mounts": self.leftover_mounts.len(),
            "harness_errors": self.harness_errors.len(),
            "plugin_reconnects": self.plugin_reconnects,
            "plugin_log_errors": self.plugin_log_errors,
            "unmount_all_s": (self.unmount_s * 10.0).round() / 10.0,
            "down_ms": self.restarts.iter().map(|r| whole(r.down_ms)).collect::<Vec<_>>(),
            "first_save_ms": self.restarts.iter().map(|r| ms(r.first_save_ms)).collect::<Vec<_>>(),
            "all_saved_ms": self.restarts.iter().map(|r| ms(r.all_saved_ms)).collect::<Vec<_>>(),
            "rss_nfsd": rss(self.nfsd_rss()),
            "rss_plugin": rss(self.plugin_rss()),
            "ok": self.ok(),
        })
    }

    /// The human-readable report: restarts, errors, RSS (every sample, one row per minute of
    /// samples), and the summary line last.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.config_line);
        let _ = writeln!(s, "machine: {}", self.machine);
        let _ = writeln!(
            s,
            "binaries: {} and {}",
            self.nfsd_bin.display(),
            self.plugin_bin.display()
        );
        let _ = writeln!(
            s,
            "\nsaves acknowledged: {}, reads checked: {}, errors: {}, lost: {}, newer than acknowledged on disk: {}, mounts left: {}",
            self.saves_acked(),
            self.reads_checked(),
            self.error_count(),
            self.lost.len(),
            self.newer_unacked,
            self.leftover_mounts.len()
        );
        for (kind, n) in self.errors_by_kind() {
            let first = self.errors().find(|e| e.kind == kind);
            if let Some(e) = first {
                let _ = writeln!(
                    s,
                    "  {kind}: {n} (first: notebook {} version {} at {:.1} s, {}: {})",
                    e.notebook, e.version, e.at_s, e.step, e.message
                );
            }
        }
        for l in &self.lost {
            let _ = writeln!(
                s,
                "  LOST: notebook {} last acknowledged {:?}, on disk: {}",
                l.notebook, l.last_acked, l.found
            );
        }
        for m in &self.leftover_mounts {
            let _ = writeln!(s, "  mount left behind: {m}");
        }
        for h in &self.harness_errors {
            let _ = writeln!(s, "  harness: {h}");
        }
        let _ = writeln!(
            s,
            "\n| # | at s | signal | nfsd RSS before, MiB | down ms | first save ms | all notebooks saved ms |"
        );
        let _ = writeln!(s, "|--:|--:|---|--:|--:|--:|--:|");
        let opt = |v: Option<f64>| {
            v.map(|x| format!("{x:.0}"))
                .unwrap_or_else(|| "none".into())
        };
        for (i, r) in self.restarts.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {} | {} | {:.0} | {} | {} |",
                i + 1,
                r.at_s,
                r.signal.name(),
                r.rss_before_kib
                    .map(|k| format!("{:.1}", k as f64 / 1024.0))
                    .unwrap_or_else(|| "?".into()),
                r.down_ms,
                opt(r.first_save_ms),
                opt(r.all_saved_ms)
            );
        }
        let _ = writeln!(
            s,
            "\n| process | first MiB | min MiB | max MiB | last MiB | slope over the second half, KiB/min | samples |"
        );
        let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|");
        for (name, st) in [("nfsd", self.nfsd_rss()), ("plugin", self.plugin_rss())] {
            if let Some(st) = st {
                let m = |k: u64| k as f64 / 1024.0;
                let _ = writeln!(
                    s,
                    "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                    m(st.first),
                    m(st.min),
                    m(st.max),
                    m(st.last),
                    st.slope_kib_per_min,
                    st.samples
                );
            }
        }
        if let Some(cpu) = self.plugin_cpu_s {
            let _ = writeln!(s, "plugin CPU time over the run: {cpu:.1} s");
        }
        let _ = writeln!(
            s,
            "plugin reconnects to nfsd, by the call that found the connection broken: {:?}; ERROR lines in its log: {}; Unmount of every volume at the end: {:.1} s",
            self.plugin_reconnects, self.plugin_log_errors, self.unmount_s
        );
        let _ = writeln!(s, "\n{}", self.rss_rows());
        let _ = writeln!(s, "{}", self.summary_json());
        s
    }

    /// Every RSS sample, MiB, one row per group of samples spanning about a minute:
    /// `| from s | nfsd MiB ... | plugin MiB ... |`; `-` while nfsd was down.
    pub fn rss_rows(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let per_row = self.samples_per_row();
        let _ = writeln!(
            s,
            "RSS every sample ({per_row} per row), MiB; `-`: nfsd not running at that moment"
        );
        let _ = writeln!(s, "| from s | nfsd | plugin |");
        let _ = writeln!(s, "|--:|---|---|");
        let f = |v: Option<u64>| {
            v.map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_else(|| "-".into())
        };
        for chunk in self.rss.chunks(per_row.max(1)) {
            let n: Vec<_> = chunk.iter().map(|x| f(x.nfsd_kib)).collect();
            let p: Vec<_> = chunk.iter().map(|x| f(x.plugin_kib)).collect();
            let _ = writeln!(
                s,
                "| {:.0} | {} | {} |",
                chunk[0].at_s,
                n.join(" "),
                p.join(" ")
            );
        }
        s
    }

    fn samples_per_row(&self) -> usize {
        if self.rss.len() < 2 {
            return 1;
        }
        let span = self.rss.last().unwrap().at_s - self.rss[0].at_s;
        let every = span / (self.rss.len() - 1) as f64;
        if every <= 0.0 {
            6
        } else {
            whole_usize(60.0 / every).max(1)
        }
    }
}

/// The errno name of an I/O error (`EIO`, `ENOTCONN`, ...), or its kind.
pub fn error_kind(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EIO) => "EIO".into(),
        Some(libc::ENOTCONN) => "ENOTCONN".into(),
        Some(libc::ESTALE) => "ESTALE".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::ENOSPC) => "ENOSPC".into(),
        Some(libc::EDQUOT) => "EDQUOT".into(),
        Some(libc::ETIMEDOUT) => "ETIMEDOUT".into(),
        Some(libc::EINTR) => "EINTR".into(),
        Some(libc::EBADF) => "EBADF".into(),
        Some(n) => format!("errno {n}"),
        None => format!("{:?}", e.kind()),
    }
}

/// The notebook worker: saves until `stop`, logging acknowledged versions and errors.
struct Worker {
    nb: usize,
    dir: PathBuf,
    cfg: SoakConfig,
    start: Instant,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn run(self) -> NotebookLog {
        let mut log = NotebookLog::default();
        let mut rng = Rng::new(self.cfg.seed.wrapping_mul(31).wrapping_add(self.nb as u64));
        let target = self.dir.join(NOTEBOOK_FILE);
        let temp = self.dir.join(format!(".~{NOTEBOOK_FILE}.tmp"));
        let mut version = 0u64;
        // spread the first saves over one period
        let mut next = Instant::now() + self.cfg.save_every.mul_f64(rng.unit());
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(Duration::from_millis(100)));
                continue;
            }
            next = Instant::now() + self.cfg.save_every.mul_f64(0.5 + rng.unit());
            version += 1;
            let bytes = content(
                self.cfg.seed,
                self.nb,
                version,
                self.cfg.min_bytes,
                self.cfg.max_bytes,
            );
            let began = self.secs();
            match self.save(&temp, &target, &bytes, &mut log, version) {
                Ok(()) => log.acks.push(Ack {
                    version,
                    began_s: began,
                    acked_s: self.secs(),
                }),
                Err((step, e)) => {
                    self.record(&mut log, error_kind(&e), version, step, e.to_string())
                }
            }
            if self.cfg.read_every > 0
                && version.is_multiple_of(self.cfg.read_every)
                && let Some(acked) = log.last_acked()
            {
                self.check_read(&target, acked, &mut log);
            }
        }
        log
    }

    fn save(
        &self,
        temp: &Path,
        target: &Path,
        bytes: &[u8],
        log: &mut NotebookLog,
        version: u64,
    ) -> Result<(), (&'static str, std::io::Error)> {
        let mut f = std::fs::File::create(temp).map_err(|e| ("create temp", e))?;
        f.write_all(bytes).map_err(|e| ("write temp", e))?;
        f.sync_all().map_err(|e| ("fsync temp", e))?;
        drop(f);
        log.last_attempted = version;
        std::fs::rename(temp, target).map_err(|e| ("rename", e))?;
        if self.cfg.fsync_dir {
            // the rename is acknowledged already; a failing directory fsync is still an error
            // the notebook saw
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| ("fsync dir", e))?;
        }
        Ok(())
    }

    fn check_read(&self, target: &Path, acked: u64, log: &mut NotebookLog) {
        let want = content(
            self.cfg.seed,
            self.nb,
            acked,
            self.cfg.min_bytes,
            self.cfg.max_bytes,
        );
        let mut got = Vec::new();
        let r = std::fs::File::open(target).and_then(|mut f| f.read_to_end(&mut got));
        match r {
            Err(e) => self.record(log, error_kind(&e), acked, "read", e.to_string()),
            Ok(_) if got.len() < want.len() => self.record(
                log,
                "short read".into(),
                acked,
                "read",
                format!("{} of {} bytes", got.len(), want.len()),
            ),
            Ok(_) if got != want => self.record(
                log,
                "wrong content".into(),
                acked,
                "read",
                format!(
                    "{} bytes, expected {}: {}",
                    got.len(),
                    want.len(),
                    describe(&got)
                ),
            ),
            Ok(_) => log.reads_checked += 1,
        }
    }

    fn record(
        &self,
        log: &mut NotebookLog,
        kind: String,
        version: u64,
        step: &'static str,
        message: String,
    ) {
        let e = SoakError {
            kind,
            notebook: self.nb,
            version,
            step,
            at_s: self.secs(),
            message,
        };
        if self.cfg.verbose {
            eprintln!(
                "soak: notebook {} version {} {}: {} ({}) at {:.1} s",
                e.notebook, e.version, e.step, e.kind, e.message, e.at_s
            );
        }
        log.errors.push(e);
    }
}

/// The header of a notebook file (which version it is), for messages.
fn describe(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(40)];
    format!("starts {:?}", String::from_utf8_lossy(head))
}

/// The version a file holds, from its header.
fn version_in(bytes: &[u8]) -> Option<u64> {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned();
    let rest = s.split("\"version\": ").nth(1)?;
    rest.split(',').next()?.parse().ok()
}

/// The running plugin.
struct Plugin {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
    mount_root: PathBuf,
}

impl Plugin {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_tail(&self) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM and wait (at most 20 s, then SIGKILL); an error when it had to be killed or
    /// exited with a failure.
    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        signal(c.id(), libc::SIGTERM);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = c.try_wait()? {
                ensure!(
                    status.success(),
                    "swarmhub-volume-plugin exited with {status} after SIGTERM; log tail:\n{}",
                    self.log_tail()
                );
                return Ok(());
            }
            if Instant::now() > until {
                let _ = c.kill();
                let _ = c.wait();
                bail!("swarmhub-volume-plugin did not exit within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // a run that failed half way leaves the killed plugin's FUSE mounts (ENOTCONN) behind:
        // detach them so the temp dir can go and the next run starts clean
        for m in mounts_under(&self.mount_root) {
            let _ = detach(Path::new(&m));
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) on our own child, not yet waited for, so the pid is not reused.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn start_plugin(bin: &Path, n: &Nfsd, work: &Path, mount_root: &Path) -> anyhow::Result<Plugin> {
    let socket = work.join("run/swarmhub-nfs.sock");
    let log = work.join("plugin.log");
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    // the settings are flags of the program, before the subcommand
    let child = Command::new(bin)
        .args(["--backend", "fuse", "--server", "127.0.0.1"])
        .arg("--nfs-port")
        .arg(n.nfs.port().to_string())
        .arg("--api-port")
        .arg(n.api.port().to_string())
        .arg("--token-file")
        .arg(n.data_dir.join("api-token"))
        .arg("--state-dir")
        .arg(work.join("plugin-state"))
        .arg("--mount-root")
        .arg(mount_root)
        .arg("--socket")
        .arg(&socket)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut p = Plugin {
        child: Some(child),
        socket,
        log,
        mount_root: mount_root.to_path_buf(),
    };
    let until = Instant::now() + Duration::from_secs(10);
    while !p.socket.exists() {
        if let Some(status) = p.child.as_mut().unwrap().try_wait()? {
            p.child = None;
            bail!(
                "swarmhub-volume-plugin exited with {status} at start; log:\n{}",
                p.log_tail()
            );
        }
        ensure!(
            Instant::now() < until,
            "swarmhub-volume-plugin did not listen on {} within 10 s; log:\n{}",
            p.socket.display(),
            p.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(p)
}

/// A `VolumeDriver.*` call; fails on a non-200 status or a non-empty `Err`.
fn driver_call(
    rt: &tokio::runtime::Runtime,
    api: &Api,
    endpoint: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let (status, reply) = rt
        .block_on(api.call(Method::POST, endpoint, Some(&body)))
        .with_context(|| format!("{endpoint} {body}"))?;
    ensure!(status == 200, "{endpoint} {body}: HTTP {status}: {reply}");
    let err = reply["Err"].as_str().unwrap_or_default();
    ensure!(err.is_empty(), "{endpoint} {body}: {err}");
    Ok(reply)
}

/// FUSE mounts (`fuse.swarmhub`) whose mount point lies under `root`.
fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|mp| Path::new(mp).starts_with(&root))
        .map(str::to_string)
        .collect()
}

fn binary(name: &str, explicit: &Option<PathBuf>, cfg: &SoakConfig) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        ensure!(p.is_file(), "{} does not exist", p.display());
        return Ok(p.clone());
    }
    if cfg.build {
        nfsd::build_workspace_bin(name, name, cfg.release)
    } else {
        nfsd::workspace_bin_prefer(name, cfg.release)
    }
}

/// Checks that the soak can run here: root and /dev/fuse.
pub fn check_prerequisites() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let fuse = Path::new("/dev/fuse").exists();
    ensure!(
        root && fuse,
        "the soak needs root (the plugin mounts FUSE with mount(2), nfsd acts as each volume's identity) and /dev/fuse (root={root}, /dev/fuse={fuse})"
    );
    Ok(())
}

fn say(cfg: &SoakConfig, msg: impl AsRef<str>) {
    if cfg.verbose {
        eprintln!("soak: {}", msg.as_ref());
    }
}

/// Runs one soak and returns what it found (an `Err` only when the harness could not run).
pub fn run(cfg: &SoakConfig) -> anyhow::Result<SoakReport> {
    check_prerequisites()?;
    ensure!(cfg.notebooks > 0, "--notebooks must be at least 1");
    ensure!(
        cfg.min_bytes <= cfg.max_bytes && cfg.min_bytes >= 64,
        "notebook sizes {}..{} bytes: need 64 <= min <= max",
        cfg.min_bytes,
        cfg.max_bytes
    );
    let nfsd_bin = binary("swarmhub-nfsd", &cfg.nfsd_bin, cfg)?;
    let plugin_bin = binary("swarmhub-volume-plugin", &cfg.plugin_bin, cfg)?;
    say(
        cfg,
        format!(
            "binaries: {} and {}",
            nfsd_bin.display(),
            plugin_bin.display()
        ),
    );
    std::fs::create_dir_all(&cfg.work_base)
        .with_context(|| format!("creating {}", cfg.work_base.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("swarmhub-soak-")
        .tempdir_in(&cfg.work_base)
        .with_context(|| format!("creating a temp dir in {}", cfg.work_base.display()))?;
    let work = tmp.path().to_path_buf();
    let data = work.join("nfsd-data");
    let mount_root = work.join("mnt");
    std::fs::create_dir_all(&mount_root)?;

    let mut report = SoakReport {
        config_line: format!(
            "soak: {} s, {} notebooks saving every {:?} (±50 %) {}..{} KiB, read back every {} saves, dir fsync {}, nfsd restarted every {} s ({:?}), RSS every {} s",
            cfg.duration.as_secs(),
            cfg.notebooks,
            cfg.save_every,
            cfg.min_bytes / 1024,
            cfg.max_bytes / 1024,
            cfg.read_every,
            cfg.fsync_dir,
            cfg.restart_every.as_secs(),
            cfg.restart_mode,
            cfg.sample_every.as_secs_f64(),
        ),
        nfsd_bin: nfsd_bin.clone(),
        plugin_bin: plugin_bin.clone(),
        ..Default::default()
    };

    let mut n = servers::start_nfsd(&nfsd_bin, &data, &[])?;
    let names: Vec<String> = (0..cfg.notebooks)
        .map(|i| format!("soak-nb{i:03}"))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let id = STORE_ID_BASE + u32::try_from(i)?;
        servers::create_volume(&n, name, name, id, id)
            .with_context(|| format!("creating volume {name} on nfsd"))?;
    }
    let mut plugin = start_plugin(&plugin_bin, &n, &work, &mount_root)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let api = Api::new(&plugin.socket);
    driver_call(&rt, &api, "/Plugin.Activate", json!({}))?;
    let mut dirs = Vec::new();
    for name in &names {
        driver_call(
            &rt,
            &api,
            "/VolumeDriver.Create",
            json!({"Name": name, "Opts": {"user": name}}),
        )?;
        let r = driver_call(
            &rt,
            &api,
            "/VolumeDriver.Mount",
            json!({"Name": name, "ID": format!("soak-{name}")}),
        )?;
        let mp = PathBuf::from(
            r["Mountpoint"]
                .as_str()
                .with_context(|| format!("VolumeDriver.Mount {name}: no Mountpoint in {r}"))?,
        );
        ensure!(
            mounts_under(&mount_root).iter().any(|m| Path::new(m) == mp),
            "VolumeDriver.Mount {name} answered {} but nothing is mounted there",
            mp.display()
        );
        dirs.push(mp);
    }
    say(
        cfg,
        format!(
            "{} volumes mounted through the plugin (FUSE) under {}",
            dirs.len(),
            mount_root.display()
        ),
    );
    let plugin_cpu_start = plugin.pid().and_then(servers::proc_usage);

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(nb, dir)| {
            let w = Worker {
                nb,
                dir: dir.clone(),
                cfg: cfg.clone(),
                start,
                stop: stop.clone(),
            };
            std::thread::Builder::new()
                .name(format!("soak-nb{nb}"))
                .spawn(move || w.run())
                .context("starting a notebook thread")
        })
        .collect::<anyhow::Result<_>>()?;

    // the main thread restarts nfsd and samples RSS
    let rss_now = |n: &Nfsd, p: &Plugin, at: Instant| RssSample {
        at_s: at.duration_since(start).as_secs_f64(),
        nfsd_kib: n.pid().and_then(servers::rss_kib).map(|r| r.0),
        plugin_kib: p.pid().and_then(servers::rss_kib).map(|r| r.0),
    };
    let harness: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut next_sample = start;
    let mut next_restart = start + cfg.restart_every;
    let end = start + cfg.duration;
    let mut failure = None;
    while Instant::now() < end {
        let now = Instant::now();
        if now >= next_sample {
            report.rss.push(rss_now(&n, &plugin, now));
            next_sample += cfg.sample_every;
        }
        if !cfg.restart_every.is_zero() && now >= next_restart && now < end {
            let k = report.restarts.len();
            let sig = cfg.restart_mode.signal(k);
            let rss_before_kib = n.pid().and_then(servers::rss_kib).map(|r| r.0);
            let t = Instant::now();
            say(
                cfg,
                format!(
                    "restart {} ({}) at {:.0} s",
                    k + 1,
                    sig.name(),
                    t.duration_since(start).as_secs_f64()
                ),
            );
            let r = match sig {
                Signal::Term => n.restart_graceful().map(|_| ()),
                Signal::Kill => n.restart_killed(),
            };
            if let Err(e) = r {
                failure = Some(e.context(format!("restart {} of nfsd ({})", k + 1, sig.name())));
                break;
            }
            report.restarts.push(RestartRecord {
                signal: sig,
                at_s: t.duration_since(start).as_secs_f64(),
                rss_before_kib,
                down_ms: t.elapsed().as_secs_f64() * 1e3,
                first_save_ms: None,
                all_saved_ms: None,
            });
            next_restart += cfg.restart_every;
        }
        if let Some(c) = plugin.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            plugin.child = None;
            failure = Some(anyhow::anyhow!(
                "swarmhub-volume-plugin exited with {status} during the soak; log tail:\n{}",
                plugin.log_tail()
            ));
            break;
        }
        let wake = next_sample.min(next_restart).min(end);
        let now = Instant::now();
        if wake > now {
            std::thread::sleep((wake - now).min(Duration::from_millis(200)));
        }
    }
    report.rss.push(rss_now(&n, &plugin, Instant::now()));
    stop.store(true, Ordering::Relaxed);
    say(cfg, "stopping the notebooks");
    for w in workers {
        match w.join() {
            Ok(log) => report.notebooks.push(log),
            Err(_) => harness
                .lock()
                .unwrap()
                .push("a notebook thread panicked".into()),
        }
    }
    report.wall_s = start.elapsed().as_secs_f64();
    if let Some(e) = failure {
        // the run could not go on: say so, but still clean up
        harness.lock().unwrap().push(format!("{e:#}"));
    }
    report.plugin_cpu_s = match (plugin_cpu_start, plugin.pid().and_then(servers::proc_usage)) {
        (Some(a), Some(b)) => Some(b.since(&a).0),
        _ => None,
    };

    // what dockerd does when the containers stop, then the plugin and nfsd stop
    let unmounting = Instant::now();
    for name in &names {
        if let Err(e) = driver_call(
            &rt,
            &api,
            "/VolumeDriver.Unmount",
            json!({"Name": name, "ID": format!("soak-{name}")}),
        ) {
            harness.lock().unwrap().push(format!("{e:#}"));
        }
    }
    report.unmount_s = unmounting.elapsed().as_secs_f64();
    report.leftover_mounts = mounts_under(&mount_root);
    if let Err(e) = plugin.stop() {
        harness.lock().unwrap().push(format!("{e:#}"));
    }
    let log = std::fs::read_to_string(&plugin.log).unwrap_or_default();
    (report.plugin_reconnects, report.plugin_log_errors) = scan_plugin_log(&log);
    // whatever is still mounted now was left behind; detach it so the temp dir can go
    for m in mounts_under(&mount_root) {
        if !report.leftover_mounts.contains(&m) {
            report.leftover_mounts.push(m.clone());
        }
        let _ = detach(Path::new(&m));
    }
    if let Err(e) = n.stop() {
        harness
            .lock()
            .unwrap()
            .push(format!("stopping nfsd at the end: {e:#}"));
    }

    verify_on_disk(cfg, &data, &names, &mut report);
    recovery(&mut report);
    report.harness_errors = std::mem::take(&mut *harness.lock().unwrap());
    report.machine = crate::machine_description(&work);
    if cfg.keep {
        let p = tmp.keep();
        say(cfg, format!("kept {}", p.display()));
    }
    Ok(report)
}

/// `umount2(MNT_DETACH)` without another dependency.
fn detach(p: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())?;
    // SAFETY: umount2 with a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Reconnects by call and ERROR lines in the plugin's log.
pub fn scan_plugin_log(log: &str) -> (BTreeMap<String, usize>, usize) {
    let mut reconnects = BTreeMap::new();
    let mut errors = 0;
    for line in log.lines() {
        if let Some(rest) = line.split("reconnecting cause=").nth(1) {
            let call = rest.split_whitespace().next().unwrap_or("?").to_string();
            *reconnects.entry(call).or_default() += 1;
        }
        if line.split_whitespace().nth(1) == Some("ERROR") {
            errors += 1;
        }
    }
    (reconnects, errors)
}

/// Every notebook's file in nfsd's data dir must be its last acknowledged version (or a later
/// attempted one whose rename reply was lost).
fn verify_on_disk(cfg: &SoakConfig, data: &Path, names: &[String], report: &mut SoakReport) {
    for (nb, name) in names.iter().enumerate() {
        let Some(log) = report.notebooks.get(nb) else {
            continue;
        };
        let path = data.join("volumes").join(name).join(NOTEBOOK_FILE);
        let last = log.last_acked();
        let found = std::fs::read(&path);
        let ok_versions = last.unwrap_or(0)..=log.last_attempted.max(last.unwrap_or(0));
        let verdict = match (&found, last) {
            (Err(e), None) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            (Err(e), _) => Err(format!("{}: {e}", path.display())),
            (Ok(bytes), _) => {
                let hit = ok_versions.clone().rev().find(|v| {
                    *v > 0 && *bytes == content(cfg.seed, nb, *v, cfg.min_bytes, cfg.max_bytes)
                });
                match hit {
                    Some(v) if Some(v) == last => Ok(false),
                    Some(_) => Ok(true),
                    None => Err(format!(
                        "{}: {} bytes, version {:?} by its header, not a version in {:?}",
                        path.display(),
                        bytes.len(),
                        version_in(bytes),
                        ok_versions
                    )),
                }
            }
        };
        match verdict {
            Ok(newer) => report.newer_unacked += usize::from(newer),
            Err(found) => report.lost.push(Lost {
                notebook: nb,
                last_acked: last,
                found,
            }),
        }
    }
}

/// Fills each restart's time to the first save and to every notebook's save from the logs.
fn recovery(report: &mut SoakReport) {
    let notebooks = &report.notebooks;
    for r in &mut report.restarts {
        let firsts: Vec<Option<f64>> = notebooks
            .iter()
            .map(|n| {
                n.acks
                    .iter()
                    .find(|a| a.began_s >= r.at_s)
                    .map(|a| (a.acked_s - r.at_s) * 1e3)
            })
            .collect();
        r.first_save_ms = firsts.iter().flatten().copied().reduce(f64::min);
        r.all_saved_ms = if firsts.iter().all(Option::is_some) {
            firsts.iter().flatten().copied().reduce(f64::max)
        } else {
            None
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_differ_by_version_and_carry_it() {
        let a = content(1, 3, 7, 100, 5000);
        let b = content(1, 3, 8, 100, 5000);
        assert_ne!(a, b);
        assert_eq!(a, content(1, 3, 7, 100, 5000));
        assert!((100..=5000).contains(&a.len()), "{}", a.len());
        assert_eq!(version_in(&a), Some(7));
        assert!(a.ends_with(b"\"]}"));
        for v in 0..200 {
            let c = content(9, 1, v, 64, 64);
            assert_eq!(c.len(), 64, "version {v}");
        }
    }

    #[test]
    fn slope_and_stats() {
        let pts: Vec<(f64, u64)> = (0..10).map(|i| (i as f64 * 10.0, 1000 + i * 5)).collect();
        assert!((slope(&pts) - 0.5).abs() < 1e-9);
        let s = RssStats::of(&pts).unwrap();
        assert_eq!((s.first, s.min, s.max, s.last), (1000, 1000, 1045, 1045));
        assert!((s.slope_kib_per_min - 30.0).abs() < 1e-6);
        assert_eq!(slope(&[(1.0, 5)]), 0.0);
        assert!(RssStats::of(&[]).is_none());
    }

    #[test]
    fn restart_plan() {
        let c = SoakConfig::ci();
        assert_eq!(c.planned_restarts(), 2);
        assert_eq!(c.restart_mode.signal(0), Signal::Term);
        assert_eq!(c.restart_mode.signal(1), Signal::Kill);
        let f = SoakConfig::full();
        assert_eq!(f.planned_restarts(), 9);
    }

    fn acked(versions: &[u64], attempted: u64) -> NotebookLog {
        NotebookLog {
            acks: versions
                .iter()
                .map(|&v| Ack {
                    version: v,
                    began_s: v as f64,
                    acked_s: v as f64 + 0.5,
                })
                .collect(),
            last_attempted: attempted,
            ..NotebookLog::default()
        }
    }

    #[test]
    fn disk_check_finds_lost_and_newer_saves() {
        let cfg = SoakConfig {
            min_bytes: 100,
            max_bytes: 300,
            ..SoakConfig::ci()
        };
        let data = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..4).map(|i| format!("v{i}")).collect();
        let put = |nb: usize, bytes: &[u8]| {
            let d = data.path().join("volumes").join(&names[nb]);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(NOTEBOOK_FILE), bytes).unwrap();
        };
        let c = |nb, v| content(cfg.seed, nb, v, cfg.min_bytes, cfg.max_bytes);
        put(0, &c(0, 5)); // the last acknowledged version: fine
        put(1, &c(1, 4)); // an older version: lost
        put(2, &c(2, 6)); // newer than acknowledged, its rename attempted: not lost
        // notebook 3: no file although version 2 was acknowledged: lost
        let mut report = SoakReport {
            notebooks: vec![
                acked(&[4, 5], 5),
                acked(&[4, 5], 5),
                acked(&[5], 6),
                acked(&[1, 2], 2),
            ],
            ..SoakReport::default()
        };
        verify_on_disk(&cfg, data.path(), &names, &mut report);
        let lost: Vec<usize> = report.lost.iter().map(|l| l.notebook).collect();
        assert_eq!(lost, [1, 3], "{:?}", report.lost);
        assert!(
            report.lost[0].found.contains("Some(4)"),
            "{:?}",
            report.lost
        );
        assert_eq!(report.newer_unacked, 1);
        assert!(!report.ok());
    }

    #[test]
    fn recovery_counts_saves_begun_after_the_signal() {
        let mut report = SoakReport {
            notebooks: vec![acked(&[1, 2, 3], 3), acked(&[1, 3], 3)],
            restarts: vec![RestartRecord {
                signal: Signal::Kill,
                at_s: 1.2,
                rss_before_kib: None,
                down_ms: 50.0,
                first_save_ms: None,
                all_saved_ms: None,
            }],
            ..SoakReport::default()
        };
        recovery(&mut report);
        let r = &report.restarts[0];
        // notebook 0: version 2 began at 2.0, acked at 2.5; notebook 1: version 3 at 3.5
        assert!((r.first_save_ms.unwrap() - 1300.0).abs() < 1e-6, "{r:?}");
        assert!((r.all_saved_ms.unwrap() - 2300.0).abs() < 1e-6, "{r:?}");
        report.notebooks.push(acked(&[1], 1));
        recovery(&mut report);
        assert!(report.restarts[0].all_saved_ms.is_none());
    }

    #[test]
    fn plugin_log_scan() {
        let log = "2026-12-06T17:53:17.956251Z  WARN swarmhub_volume_plugin::mounter::fuse::client: nfsd connection failed; reconnecting cause=GETATTR to nfsd at 127.0.0.1:43845: nfsd closed the connection
2026-12-06T17:53:18.071597Z  WARN swarmhub_volume_plugin::mounter::fuse::client: nfsd connection failed; reconnecting cause=RENAME to nfsd at 127.0.0.1:43845: reset
2026-12-06T17:53:18.071597Z  WARN swarmhub_volume_plugin::mounter::fuse::client: nfsd connection failed; reconnecting cause=GETATTR to nfsd at 127.0.0.1:43845: reset
2026-12-06T17:53:19.000000Z ERROR swarmhub_volume_plugin::mounter::fuse::fs: nfsd unreachable; failing WRITE with EIO
2026-12-06T17:53:19.000000Z  INFO an ERROR in a message is not an error line";
        let (r, e) = scan_plugin_log(log);
        assert_eq!(r.get("GETATTR"), Some(&2));
        assert_eq!(r.get("RENAME"), Some(&1));
        assert_eq!(r.len(), 2);
        assert_eq!(e, 1);
    }

    #[test]
    fn errno_names() {
        let e = std::io::Error::from_raw_os_error(libc::ENOTCONN);
        assert_eq!(error_kind(&e), "ENOTCONN");
        let e = std::io::Error::from_raw_os_error(libc::ESTALE);
        assert_eq!(error_kind(&e), "ESTALE");
    }
}
