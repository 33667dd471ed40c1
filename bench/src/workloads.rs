//! The workloads, each for an NFS endpoint (nfs3_client, one connection = one client with one
//! call in flight) and for the local file system (std::fs, one thread per connection).

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nfs3_client::nfs3_types::nfs3::stable_how;

use crate::Config;
use crate::nfs::{self, Client, Fh};
use crate::servers::{Endpoint, Target};

/// What one run of one workload on one target measured.
#[derive(Debug, Default)]
pub struct Outcome {
    pub metrics: Vec<(&'static str, f64)>,
    /// Operations done (files, calls, entries, autosaves): the divisor for server CPU per op.
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Outcome {
    fn err(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
    fn absorb(&mut self, errors: u64, first: Option<String>) {
        self.errors += errors;
        if self.first_error.is_none() {
            self.first_error = first;
        }
    }
}

/// Per-task error tally.
#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    first: Option<String>,
}

impl Tally {
    fn note<T>(&mut self, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors += 1;
                if self.first.is_none() {
                    self.first = Some(e);
                }
                None
            }
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| i.to_le_bytes()[0].wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub fn set_dir(round: usize) -> String {
    format!("set-r{round}")
}

fn file_name(i: usize) -> String {
    format!("f{i:06}")
}

fn ep(t: &Target) -> &Endpoint {
    t.endpoint.as_ref().expect("NFS target has an endpoint")
}

// ---------------------------------------------------------------------------------------------
// (a) create + write 4 KiB (UNSTABLE) + COMMIT, `files` files over `conns` connections

pub async fn create_files_nfs(cfg: &Config, t: &Target, dir_name: &str) -> anyhow::Result<Outcome> {
    let conns = nfs::connect_many(ep(t), cfg.conns).await?;
    let root = conns[0].1.clone();
    let mut conns: Vec<Client> = conns.into_iter().map(|c| c.0).collect();
    let dir = nfs::mkdir(&mut conns[0], &root, dir_name)
        .await
        .map_err(anyhow::Error::msg)?;
    let data = Arc::new(pattern(4096, 7));
    let n = cfg.conns;
    let files = cfg.files;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (k, mut c) in conns.into_iter().enumerate() {
        let dir = dir.clone();
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            for i in (k..files).step_by(n) {
                let name = file_name(i);
                let Some(fh) = t.note(nfs::create(&mut c, &dir, &name).await) else {
                    continue;
                };
                if t.note(nfs::write(&mut c, &fh, 0, &data, stable_how::UNSTABLE).await)
                    .is_none()
                {
                    continue;
                }
                if t.note(nfs::commit(&mut c, &fh).await).is_some() {
                    t.ok += 1;
                }
            }
            t
        }));
    }
    let mut out = Outcome::default();
    let mut ok = 0;
    for task in tasks {
        let t = task.await?;
        ok += t.ok;
        out.absorb(t.errors, t.first);
    }
    let secs = start.elapsed().as_secs_f64();
    out.metrics.push(("files_per_s", ok as f64 / secs));
    out.ops = ok;
    Ok(out)
}

pub fn create_files_local(cfg: &Config, t: &Target, dir_name: &str) -> anyhow::Result<Outcome> {
    let dir = t.root_dir.join(dir_name);
    std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let data = pattern(4096, 7);
    let start = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..cfg.conns)
            .map(|k| {
                let dir = &dir;
                let data = &data;
                s.spawn(move || {
                    let mut t = Tally::default();
                    for i in (k..cfg.files).step_by(cfg.conns) {
                        let r = (|| -> std::io::Result<()> {
                            let mut f = std::fs::File::create(dir.join(file_name(i)))?;
                            f.write_all(data)?;
                            f.sync_all()
                        })();
                        if t.note(r.map_err(|e| e.to_string())).is_some() {
                            t.ok += 1;
                        }
                    }
                    t
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut out = Outcome::default();
    let mut ok = 0;
    for t in tallies {
        ok += t.ok;
        out.absorb(t.errors, t.first);
    }
    out.metrics.push(("files_per_s", ok as f64 / secs));
    out.ops = ok;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// (b) GETATTR for a fixed time over `conns` connections, each on its own file

pub async fn getattr_nfs(cfg: &Config, t: &Target, round: usize) -> anyhow::Result<Outcome> {
    let conns = nfs::connect_many(ep(t), cfg.conns).await?;
    let root = conns[0].1.clone();
    let mut conns: Vec<Client> = conns.into_iter().map(|c| c.0).collect();
    let dir = nfs::mkdir(&mut conns[0], &root, &format!("getattr-r{round}"))
        .await
        .map_err(anyhow::Error::msg)?;
    let mut fhs = Vec::new();
    for k in 0..cfg.conns {
        fhs.push(
            nfs::create(&mut conns[0], &dir, &file_name(k))
                .await
                .map_err(anyhow::Error::msg)?,
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (mut c, fh) in conns.into_iter().zip(fhs) {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            while !stop.load(Ordering::Relaxed) {
                if t.note(nfs::getattr(&mut c, &fh).await).is_some() {
                    t.ok += 1;
                }
            }
            t
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(cfg.getattr_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut out = Outcome::default();
    let mut ok = 0;
    for task in tasks {
        let t = task.await?;
        ok += t.ok;
        out.absorb(t.errors, t.first);
    }
    let secs = start.elapsed().as_secs_f64();
    out.metrics.push(("ops_per_s", ok as f64 / secs));
    out.ops = ok;
    Ok(out)
}

pub fn getattr_local(cfg: &Config, t: &Target, round: usize) -> anyhow::Result<Outcome> {
    let dir = t.root_dir.join(format!("getattr-r{round}"));
    std::fs::create_dir(&dir)?;
    for k in 0..cfg.conns {
        std::fs::File::create(dir.join(file_name(k)))?;
    }
    let stop = AtomicBool::new(false);
    let ok = AtomicU64::new(0);
    let start = Instant::now();
    let mut out = Outcome::default();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..cfg.conns)
            .map(|k| {
                let p = dir.join(file_name(k));
                let (stop, ok) = (&stop, &ok);
                s.spawn(move || {
                    let mut t = Tally::default();
                    while !stop.load(Ordering::Relaxed) {
                        if t.note(std::fs::metadata(&p).map_err(|e| e.to_string()))
                            .is_some()
                        {
                            t.ok += 1;
                        }
                    }
                    ok.fetch_add(t.ok, Ordering::Relaxed);
                    t
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(cfg.getattr_secs));
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            let t = h.join().unwrap();
            out.absorb(t.errors, t.first);
        }
    });
    let secs = start.elapsed().as_secs_f64();
    out.metrics
        .push(("ops_per_s", ok.load(Ordering::Relaxed) as f64 / secs));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// (c) list the `files`-entry directory with READDIRPLUS on one connection

pub async fn list_nfs(cfg: &Config, t: &Target, dir_name: &str) -> anyhow::Result<Outcome> {
    let (mut c, root) = nfs::connect(ep(t)).await?;
    let dir = nfs::lookup(&mut c, &root, dir_name)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut out = Outcome::default();
    let start = Instant::now();
    let r = nfs::readdirplus_all(&mut c, &dir, cfg.readdir_dircount, cfg.readdir_maxcount).await;
    let secs = start.elapsed().as_secs_f64();
    match r {
        Ok((n, pages)) => {
            if n != cfg.files {
                out.err(format!("listed {n} entries, expected {}", cfg.files));
                out.ops = n as u64;
            }
            out.metrics.push(("entries_per_s", n as f64 / secs));
            out.metrics.push(("listing_ms", secs * 1000.0));
            out.metrics.push(("pages", pages as f64));
        }
        Err(e) => out.err(e),
    }
    Ok(out)
}

pub fn list_local(cfg: &Config, t: &Target, dir_name: &str) -> anyhow::Result<Outcome> {
    let dir = t.root_dir.join(dir_name);
    let mut out = Outcome::default();
    let start = Instant::now();
    let mut n = 0;
    for e in std::fs::read_dir(&dir)? {
        match e.and_then(|e| e.metadata()) {
            Ok(_) => n += 1,
            Err(e) => out.err(e),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if n != cfg.files {
        out.err(format!("listed {n} entries, expected {}", cfg.files));
    }
    out.metrics.push(("entries_per_s", n as f64 / secs));
    out.metrics.push(("listing_ms", secs * 1000.0));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// (d) REMOVE the `files` files over `conns` connections

pub async fn remove_nfs(cfg: &Config, t: &Target, dir_name: &str) -> anyhow::Result<Outcome> {
    let conns = nfs::connect_many(ep(t), cfg.conns).await?;
    let root = conns[0].1.clone();
    let mut conns: Vec<Client> = conns.into_iter().map(|c| c.0).collect();
    let dir = nfs::lookup(&mut conns[0], &root, dir_name)
        .await
        .map_err(anyhow::Error::msg)?;
    let n = cfg.conns;
    let files = cfg.files;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (k, mut c) in conns.into_iter().enumerate() {
        let dir = dir.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            for i in (k..files).step_by(n) {
                if t.note(nfs::remove(&mut c, &dir, &file_name(i)).await)
                    .is_some()
                {
                    t.ok += 1;
                }
            }
            (t, c)
        }));
    }
    let mut out = Outcome::default();
    let mut ok = 0;
    let mut last = None;
    for task in tasks {
        let (t, c) = task.await?;
        ok += t.ok;
        out.absorb(t.errors, t.first);
        last = Some(c);
    }
    let secs = start.elapsed().as_secs_f64();
    out.metrics.push(("files_per_s", ok as f64 / secs));
    out.ops = ok;
    if let Err(e) = nfs::rmdir(last.as_mut().unwrap(), &root, dir_name).await {
        out.err(e);
    }
    Ok(out)
}

pub fn remove_local(cfg: &Config, t: &Target, dir_name: &str) -> anyhow::Result<Outcome> {
    let dir = t.root_dir.join(dir_name);
    let start = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..cfg.conns)
            .map(|k| {
                let dir = &dir;
                s.spawn(move || {
                    let mut t = Tally::default();
                    for i in (k..cfg.files).step_by(cfg.conns) {
                        let r = std::fs::remove_file(dir.join(file_name(i)));
                        if t.note(r.map_err(|e| e.to_string())).is_some() {
                            t.ok += 1;
                        }
                    }
                    t
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut out = Outcome::default();
    let mut ok = 0;
    for t in tallies {
        ok += t.ok;
        out.absorb(t.errors, t.first);
    }
    out.metrics.push(("files_per_s", ok as f64 / secs));
    out.ops = ok;
    if let Err(e) = std::fs::remove_dir(&dir) {
        out.err(e);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// (e) notebook autosave: CREATE temp, WRITE 64 KiB UNSTABLE, COMMIT, RENAME over the notebook

/// Client `i`'s offset into `period` in round `round`: spread by a hash, so that the clients do
/// not all write at once.
fn phase(period: Duration, round: usize, i: usize) -> Duration {
    if period.is_zero() {
        return Duration::ZERO;
    }
    // a period of 584 years or more saturates; the configured ones are seconds
    let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(crate::rng::splitmix(&mut ((round * 1000 + i) as u64)) % period_ns)
}

/// When the `k`-th save after `phase` is due (`k` beyond u32 saturates; counts are far smaller).
fn due(phase: Duration, period: Duration, k: usize) -> Duration {
    phase + period.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX))
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "float-to-int `as` saturates, and the rank is clamped to 1..=len"
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn latency_metrics(out: &mut Outcome, mut lat_ms: Vec<f64>, secs: f64, suffix: Suffix) {
    lat_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = lat_ms.len() as f64;
    out.ops += lat_ms.len() as u64;
    let (p50, p99, max, rate) = match suffix {
        Suffix::Paced => ("p50_ms", "p99_ms", "max_ms", "saves_per_s"),
        Suffix::Closed => (
            "closed_p50_ms",
            "closed_p99_ms",
            "closed_max_ms",
            "closed_saves_per_s",
        ),
    };
    out.metrics.push((p50, percentile(&lat_ms, 50.0)));
    out.metrics.push((p99, percentile(&lat_ms, 99.0)));
    out.metrics
        .push((max, lat_ms.last().copied().unwrap_or(f64::NAN)));
    out.metrics.push((rate, n / secs));
}

#[derive(Clone, Copy)]
enum Suffix {
    Paced,
    Closed,
}

const NOTEBOOK: &str = "Untitled.ipynb";
const TEMP: &str = ".~Untitled.ipynb";

async fn autosave_phase_nfs(
    cfg: &Config,
    t: &Target,
    round: usize,
    period: Duration,
    suffix: Suffix,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let tag = match suffix {
        Suffix::Paced => "p",
        Suffix::Closed => "c",
    };
    let mut clients = Vec::new();
    for i in 0..cfg.autosave_clients {
        let (mut c, root) = nfs::connect(ep(t)).await?;
        let dir = nfs::mkdir(&mut c, &root, &format!("nb-r{round}{tag}-{i:02}"))
            .await
            .map_err(anyhow::Error::msg)?;
        let fh = nfs::create(&mut c, &dir, NOTEBOOK)
            .await
            .map_err(anyhow::Error::msg)?;
        nfs::write(&mut c, &fh, 0, b"{}", stable_how::FILE_SYNC)
            .await
            .map_err(anyhow::Error::msg)?;
        clients.push((c, dir));
    }
    let data = Arc::new(pattern(cfg.autosave_bytes, 3));
    let count = cfg.autosave_count;
    let start = Instant::now();
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for (i, (mut c, dir)) in clients.into_iter().enumerate() {
        let data = data.clone();
        let phase = phase(period, round, i);
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut lat = Vec::with_capacity(count);
            for k in 0..count {
                if !period.is_zero() {
                    tokio::time::sleep_until(t0 + due(phase, period, k)).await;
                }
                let s = Instant::now();
                let r: Result<(), String> = async {
                    let fh = nfs::create(&mut c, &dir, TEMP).await?;
                    nfs::write(&mut c, &fh, 0, &data, stable_how::UNSTABLE).await?;
                    nfs::commit(&mut c, &fh).await?;
                    nfs::rename(&mut c, &dir, TEMP, NOTEBOOK).await
                }
                .await;
                if t.note(r).is_some() {
                    lat.push(s.elapsed().as_secs_f64() * 1000.0);
                }
            }
            (t, lat)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let (t, lat) = task.await?;
        out.absorb(t.errors, t.first);
        all.extend(lat);
    }
    latency_metrics(out, all, start.elapsed().as_secs_f64(), suffix);
    Ok(())
}

pub async fn autosave_nfs(cfg: &Config, t: &Target, round: usize) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let period = Duration::from_millis(cfg.autosave_period_ms);
    autosave_phase_nfs(cfg, t, round, period, Suffix::Paced, &mut out).await?;
    autosave_phase_nfs(cfg, t, round, Duration::ZERO, Suffix::Closed, &mut out).await?;
    Ok(out)
}

fn autosave_phase_local(
    cfg: &Config,
    t: &Target,
    round: usize,
    period: Duration,
    suffix: Suffix,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let tag = match suffix {
        Suffix::Paced => "p",
        Suffix::Closed => "c",
    };
    let mut dirs = Vec::new();
    for i in 0..cfg.autosave_clients {
        let d = t.root_dir.join(format!("nb-r{round}{tag}-{i:02}"));
        std::fs::create_dir(&d)?;
        std::fs::write(d.join(NOTEBOOK), b"{}")?;
        dirs.push(d);
    }
    let data = pattern(cfg.autosave_bytes, 3);
    let start = Instant::now();
    let results: Vec<(Tally, Vec<f64>)> = std::thread::scope(|s| {
        let hs: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                let data = &data;
                let phase = phase(period, round, i);
                s.spawn(move || {
                    let mut t = Tally::default();
                    let mut lat = Vec::new();
                    for k in 0..cfg.autosave_count {
                        if !period.is_zero() {
                            let at = start + due(phase, period, k);
                            let now = Instant::now();
                            if at > now {
                                std::thread::sleep(at - now);
                            }
                        }
                        let s = Instant::now();
                        let r = (|| -> std::io::Result<()> {
                            let mut f = std::fs::File::create(dir.join(TEMP))?;
                            f.write_all(data)?;
                            f.sync_all()?;
                            drop(f);
                            std::fs::rename(dir.join(TEMP), dir.join(NOTEBOOK))
                        })();
                        if t.note(r.map_err(|e| e.to_string())).is_some() {
                            lat.push(s.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    (t, lat)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut all = Vec::new();
    for (t, lat) in results {
        out.absorb(t.errors, t.first);
        all.extend(lat);
    }
    latency_metrics(out, all, secs, suffix);
    Ok(())
}

pub fn autosave_local(cfg: &Config, t: &Target, round: usize) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let period = Duration::from_millis(cfg.autosave_period_ms);
    autosave_phase_local(cfg, t, round, period, Suffix::Paced, &mut out)?;
    autosave_phase_local(cfg, t, round, Duration::ZERO, Suffix::Closed, &mut out)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// (f) sequential large file: nfs-cp to the server and back; nfs3_client 1 MiB WRITE/READ

const CHUNK: usize = CHUNK_U32 as usize;
const CHUNK_U32: u32 = 1 << 20;

/// Makes a file's data durable and drops it from the page cache, so the next read comes from
/// the disk (for every target alike).
pub fn evict(path: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    f.sync_all()?;
    // SAFETY: valid fd; fadvise has no memory effects.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        bail!("posix_fadvise: {}", std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn nfs_cp(src: &str, dst: &str) -> Result<Duration, String> {
    let s = Instant::now();
    let o = std::process::Command::new("nfs-cp")
        .arg(src)
        .arg(dst)
        .output()
        .map_err(|e| format!("nfs-cp: {e}"))?;
    let d = s.elapsed();
    if !o.status.success() {
        return Err(format!(
            "nfs-cp {src} {dst}: {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(d)
}

/// The local source file of the large-file workload (created once, durable, not cached).
pub fn big_source(cfg: &Config) -> anyhow::Result<PathBuf> {
    let p = cfg.work_dir.join(format!("source-{}MiB.bin", cfg.big_mib));
    if !p.exists() {
        let mut f = std::fs::File::create(&p)?;
        let chunk = pattern(CHUNK, 11);
        for _ in 0..cfg.big_mib {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
    }
    Ok(p)
}

pub async fn big_nfs(cfg: &Config, t: &Target, round: usize) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let size = cfg.big_mib as u64 * CHUNK as u64;
    let src = big_source(cfg)?;
    evict(&src)?;
    let e = ep(t);
    // nfs-cp: local file -> server, then server -> local file
    let cp_name = format!("big-r{round}-cp.bin");
    let back = cfg.work_dir.join(format!("back-{}-r{round}.bin", t.name));
    match nfs_cp(src.to_str().unwrap(), &e.url(&cp_name)) {
        Ok(d) => out.metrics.push(("nfscp_write_mib_s", mib_per_s(size, d))),
        Err(e) => out.err(e),
    }
    let on_disk = t.root_dir.join(&cp_name);
    if on_disk.exists() {
        let len = std::fs::metadata(&on_disk)?.len();
        if len != size {
            out.err(format!("nfs-cp wrote {len} bytes, expected {size}"));
        }
        evict(&on_disk)?;
        match nfs_cp(&e.url(&cp_name), back.to_str().unwrap()) {
            Ok(d) => out.metrics.push(("nfscp_read_mib_s", mib_per_s(size, d))),
            Err(e) => out.err(e),
        }
        let len = std::fs::metadata(&back).map(|m| m.len()).unwrap_or(0);
        if len != size {
            out.err(format!("nfs-cp read back {len} bytes, expected {size}"));
        }
        let _ = std::fs::remove_file(&back);
        let _ = std::fs::remove_file(&on_disk);
    }
    // nfs3_client: 1 MiB UNSTABLE WRITEs + COMMIT, then 1 MiB READs
    let (mut c, root) = nfs::connect(e).await?;
    let name = format!("big-r{round}-direct.bin");
    let fh = nfs::create(&mut c, &root, &name)
        .await
        .map_err(anyhow::Error::msg)?;
    let chunk = pattern(CHUNK, 13);
    let s = Instant::now();
    let mut ok = true;
    for i in 0..cfg.big_mib as u64 {
        if let Err(e) =
            nfs::write(&mut c, &fh, i * CHUNK as u64, &chunk, stable_how::UNSTABLE).await
        {
            out.err(e);
            ok = false;
            break;
        }
    }
    if ok {
        match nfs::commit(&mut c, &fh).await {
            Ok(()) => out
                .metrics
                .push(("direct_write_mib_s", mib_per_s(size, s.elapsed()))),
            Err(e) => out.err(e),
        }
    }
    let on_disk = t.root_dir.join(&name);
    evict(&on_disk)?;
    let s = Instant::now();
    let mut off = 0u64;
    loop {
        match nfs::read(&mut c, &fh, off, CHUNK_U32).await {
            Ok((n, eof)) => {
                off += n as u64;
                if eof || n == 0 {
                    break;
                }
            }
            Err(e) => {
                out.err(e);
                break;
            }
        }
    }
    let d = s.elapsed();
    if off != size {
        out.err(format!("READ returned {off} bytes, expected {size}"));
    } else {
        out.metrics.push(("direct_read_mib_s", mib_per_s(size, d)));
    }
    drop(c);
    let _ = std::fs::remove_file(&on_disk);
    Ok(out)
}

fn copy_loop(src: &Path, dst: &Path, fsync: bool) -> std::io::Result<u64> {
    let mut r = std::fs::File::open(src)?;
    let mut w = std::fs::File::create(dst)?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
    if fsync {
        w.sync_all()?;
    }
    Ok(total)
}

pub fn big_local(cfg: &Config, t: &Target, round: usize) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let size = cfg.big_mib as u64 * CHUNK as u64;
    let src = big_source(cfg)?;
    evict(&src)?;
    // "cp" rows: read the source, write the copy (+ fsync, as COMMIT would); copy it back
    let cp = t.root_dir.join(format!("big-r{round}-cp.bin"));
    let back = cfg.work_dir.join(format!("back-{}-r{round}.bin", t.name));
    let s = Instant::now();
    match copy_loop(&src, &cp, true) {
        Ok(n) if n == size => out
            .metrics
            .push(("nfscp_write_mib_s", mib_per_s(size, s.elapsed()))),
        Ok(n) => out.err(format!("copied {n} bytes")),
        Err(e) => out.err(e),
    }
    evict(&cp)?;
    let s = Instant::now();
    match copy_loop(&cp, &back, false) {
        Ok(n) if n == size => out
            .metrics
            .push(("nfscp_read_mib_s", mib_per_s(size, s.elapsed()))),
        Ok(n) => out.err(format!("copied {n} bytes")),
        Err(e) => out.err(e),
    }
    let _ = std::fs::remove_file(&back);
    let _ = std::fs::remove_file(&cp);
    // "direct" rows: 1 MiB writes + fsync, then 1 MiB reads
    let p = t.root_dir.join(format!("big-r{round}-direct.bin"));
    let chunk = pattern(CHUNK, 13);
    let s = Instant::now();
    let r = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&p)?;
        for _ in 0..cfg.big_mib {
            f.write_all(&chunk)?;
        }
        f.sync_all()
    })();
    match r {
        Ok(()) => out
            .metrics
            .push(("direct_write_mib_s", mib_per_s(size, s.elapsed()))),
        Err(e) => out.err(e),
    }
    evict(&p)?;
    let s = Instant::now();
    let r = (|| -> std::io::Result<u64> {
        let mut f = std::fs::File::open(&p)?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    })();
    match r {
        Ok(n) if n == size => out
            .metrics
            .push(("direct_read_mib_s", mib_per_s(size, s.elapsed()))),
        Ok(n) => out.err(format!("read {n} bytes")),
        Err(e) => out.err(e),
    }
    let _ = std::fs::remove_file(&p);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// (g) nfsd resident memory with many volumes and files

/// Creates `per_volume` empty files in each of `dirs` directly on disk, owned by (uid, gid)
/// of each directory (as the storage side would have them), with `threads` threads.
pub fn populate_trees(
    dirs: &[(PathBuf, u32, u32)],
    per_volume: usize,
    threads: usize,
) -> anyhow::Result<()> {
    let next = AtomicUsize::new(0);
    let failed: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= dirs.len() {
                        break;
                    }
                    let (dir, uid, gid) = &dirs[i];
                    for k in 0..per_volume {
                        let p = dir.join(format!("file{k:04}.txt"));
                        let r = std::fs::File::create(&p)
                            .and_then(|f| std::os::unix::fs::fchown(&f, Some(*uid), Some(*gid)));
                        if let Err(e) = r {
                            *failed.lock().unwrap() = Some(format!("{}: {e}", p.display()));
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap() {
        bail!("populating trees: {e}");
    }
    Ok(())
}

/// LOOKUP + GETATTR of `sample` files in each volume, `workers` volumes at a time.
pub async fn sample_volumes(
    eps: Vec<Endpoint>,
    sample: usize,
    per_volume: usize,
    workers: usize,
) -> anyhow::Result<(u64, u64, Option<String>)> {
    let eps = Arc::new(eps);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (eps, next) = (eps.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= eps.len() {
                    break;
                }
                let (mut c, root): (Client, Fh) = match nfs::connect(&eps[i]).await {
                    Ok(x) => x,
                    Err(e) => {
                        t.note::<()>(Err(format!("{e:#}")));
                        continue;
                    }
                };
                for k in 0..sample {
                    let k = (k * per_volume / sample.max(1)) % per_volume.max(1);
                    let name = format!("file{k:04}.txt");
                    let Some(fh) = t.note(nfs::lookup(&mut c, &root, &name).await) else {
                        continue;
                    };
                    if t.note(nfs::getattr(&mut c, &fh).await).is_some() {
                        t.ok += 2;
                    }
                }
            }
            t
        }));
    }
    let (mut ok, mut errors, mut first) = (0, 0, None);
    for task in tasks {
        let t = task.await?;
        ok += t.ok;
        errors += t.errors;
        if first.is_none() {
            first = t.first;
        }
    }
    Ok((ok, errors, first))
}
