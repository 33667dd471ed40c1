//! swarmhub-bench: drives NFSv3 from userspace against swarmhub-nfsd and nfs-ganesha (FSAL VFS)
//! and runs the same workloads on the local file system, interleaving the targets round by
//! round, and reports medians and ratios as a markdown table. See docs/BENCHMARKS.md.

pub mod gate;
pub mod guestbench;
pub mod killnfsd;
pub mod nfs;
pub mod rng;
pub mod servers;
pub mod soak;
pub mod storage_loss;
pub mod workloads;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use servers::{BENCH_GID, BENCH_UID, Endpoint, Kind, Target};
use swarmhub_tests::guest::Ganesha;
use swarmhub_tests::nfsd::Nfsd;
use workloads::Outcome;

pub const ALL_WORKLOADS: &str = "abcdefg";

/// Everything a run needs; `Config::full()` is the documented table, `Config::smoke()` a
/// seconds-long run with tiny sizes.
#[derive(Clone, Debug)]
pub struct Config {
    pub rounds: usize,
    /// Workload letters, in order.
    pub workloads: Vec<char>,
    /// `nfsd`, `nfsd-nosync` (`--sync-metadata false`), `ganesha`, `local`.
    pub targets: Vec<String>,
    pub smoke: bool,
    /// (a) (c) (d): files in the directory.
    pub files: usize,
    /// (a) (b) (d): concurrent connections.
    pub conns: usize,
    pub getattr_secs: f64,
    /// (c) READDIRPLUS maxcount.
    pub readdir_maxcount: u32,
    /// (c) READDIRPLUS dircount (Linux ≥ 5.17 sends dircount = maxcount; older kernels
    /// maxcount / 8).
    pub readdir_dircount: u32,
    pub autosave_clients: usize,
    pub autosave_count: usize,
    /// Each client autosaves every this many ms (random phase); the closed-loop phase that
    /// follows uses no pause.
    pub autosave_period_ms: u64,
    pub autosave_bytes: usize,
    pub big_mib: usize,
    pub rss_volumes: usize,
    pub rss_files_per_volume: usize,
    pub rss_sample_per_volume: usize,
    /// Parent of the temp directory (must be on the disk being measured).
    pub work_base: PathBuf,
    /// Set by `run`: the temp directory of this run.
    pub work_dir: PathBuf,
    pub nfsd_bin: Option<PathBuf>,
    /// Build swarmhub-nfsd (release) before running unless a binary is given.
    pub build: bool,
    pub release_nfsd: bool,
    /// Record `perf record` profiles of nfsd per workload (round 0) into this directory.
    pub perf: Option<PathBuf>,
    pub keep: bool,
    pub verbose: bool,
}

impl Config {
    pub fn full() -> Config {
        Config {
            rounds: 3,
            workloads: ALL_WORKLOADS.chars().collect(),
            targets: vec!["nfsd".into(), "ganesha".into(), "local".into()],
            smoke: false,
            files: 10_000,
            conns: 8,
            getattr_secs: 5.0,
            readdir_maxcount: 32768,
            readdir_dircount: 32768,
            autosave_clients: 64,
            autosave_count: 10,
            autosave_period_ms: 1000,
            autosave_bytes: 64 * 1024,
            big_mib: 1024,
            rss_volumes: 1000,
            rss_files_per_volume: 1000,
            rss_sample_per_volume: 10,
            work_base: std::env::temp_dir(),
            work_dir: PathBuf::new(),
            nfsd_bin: None,
            build: true,
            release_nfsd: true,
            perf: None,
            keep: false,
            verbose: true,
        }
    }

    pub fn smoke() -> Config {
        Config {
            rounds: 1,
            smoke: true,
            files: 200,
            conns: 4,
            getattr_secs: 0.3,
            autosave_clients: 8,
            autosave_count: 3,
            autosave_period_ms: 100,
            big_mib: 4,
            rss_volumes: 10,
            rss_files_per_volume: 50,
            rss_sample_per_volume: 5,
            build: false,
            release_nfsd: false,
            ..Config::full()
        }
    }
}

/// One measured value.
#[derive(Clone, Debug)]
pub struct Sample {
    pub workload: char,
    pub metric: String,
    pub target: String,
    pub round: usize,
    pub value: f64,
}

/// Errors of one run of one workload on one target.
#[derive(Clone, Debug)]
pub struct ErrorRecord {
    pub workload: char,
    pub target: String,
    pub round: usize,
    pub errors: u64,
    pub first: Option<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub config_summary: String,
    pub machine: String,
    pub targets: Vec<String>,
    pub samples: Vec<Sample>,
    pub errors: Vec<ErrorRecord>,
    /// (workload, target) pairs that completed (with or without errors).
    pub completed: Vec<(char, String)>,
    pub wall: Duration,
}

impl Report {
    pub fn values(&self, w: char, metric: &str, target: &str) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|s| s.workload == w && s.metric == metric && s.target == target)
            .map(|s| s.value)
            .collect()
    }

    pub fn median(&self, w: char, metric: &str, target: &str) -> Option<f64> {
        let mut v = self.values(w, metric, target);
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        })
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().map(|e| e.errors).sum()
    }
}

struct MetricInfo {
    label: String,
    lower_better: bool,
    goal: &'static str,
}

fn metric_info(cfg: &Config, w: char, m: &str) -> MetricInfo {
    let (label, lower, goal): (String, bool, &'static str) = match (w, m) {
        (_, "server_cpu_us_per_op") => (format!("({w}) server CPU per operation: µs"), true, ""),
        (_, "client_cpu_us_per_op") => (
            format!(
                "({w}) benchmark process CPU per operation (client; for local: everything): µs"
            ),
            true,
            "",
        ),
        (_, "server_switches_per_op") => (
            format!("({w}) server context switches per operation"),
            true,
            "",
        ),
        (_, "dir_flushes_per_op") => (
            format!("({w}) directory fsyncs per operation (nfsd's durable namespace changes)"),
            true,
            "",
        ),
        ('a', "files_per_s") => (
            format!(
                "(a) CREATE + 4 KiB WRITE UNSTABLE + COMMIT, {} files, {} conns: files/s",
                cfg.files, cfg.conns
            ),
            false,
            "≥ 2× ganesha",
        ),
        ('b', "ops_per_s") => (
            format!(
                "(b) GETATTR, {} conns, {} s: ops/s",
                cfg.conns, cfg.getattr_secs
            ),
            false,
            "≥ 2× ganesha",
        ),
        ('c', "entries_per_s") => (
            format!(
                "(c) READDIRPLUS of {} entries, 1 conn: entries/s",
                cfg.files
            ),
            false,
            "≥ 1.5× ganesha",
        ),
        ('c', "listing_ms") => ("(c) time for the full listing: ms".into(), true, ""),
        ('c', "pages") => ("(c) READDIRPLUS calls".into(), true, ""),
        ('d', "files_per_s") => (
            format!(
                "(d) REMOVE {} files, {} conns: files/s",
                cfg.files, cfg.conns
            ),
            false,
            "",
        ),
        ('e', m) => {
            let closed = m.starts_with("closed_");
            let phase = if closed {
                format!(
                    "(e) autosave, {} clients back to back (closed loop)",
                    cfg.autosave_clients
                )
            } else {
                format!(
                    "(e) autosave, {} clients, 1 per client every {} ms",
                    cfg.autosave_clients, cfg.autosave_period_ms
                )
            };
            let what = match m.trim_start_matches("closed_") {
                "p50_ms" => "p50 ms",
                "p99_ms" => "p99 ms",
                "max_ms" => "max ms",
                "saves_per_s" => "autosaves/s",
                _ => "?",
            };
            let goal = if m == "p99_ms" { "≤ 20 ms" } else { "" };
            (format!("{phase}: {what}"), m.ends_with("_ms"), goal)
        }
        ('f', m) => {
            let what = match m {
                "nfscp_write_mib_s" => "nfs-cp local → server",
                "nfscp_read_mib_s" => "nfs-cp server → local (cold)",
                "direct_write_mib_s" => "1 MiB WRITE UNSTABLE + COMMIT",
                "direct_read_mib_s" => "1 MiB READ (cold)",
                _ => "?",
            };
            (
                format!("(f) {} MiB {what}: MiB/s", cfg.big_mib),
                false,
                "≥ 1× ganesha, ≥ 0.9× local",
            )
        }
        ('g', m) => {
            let what = match m {
                "rss_idle_mib" => "RSS at start, MiB",
                "rss_volumes_mib" => "RSS after creating the volumes, MiB",
                "rss_mib" => "RSS after the NFS sample, MiB",
                "hwm_mib" => "peak RSS (VmHWM), MiB",
                "sample_ops_per_s" => "LOOKUP+GETATTR sample (mount per volume): ops/s",
                _ => "?",
            };
            let goal = if m == "rss_mib" { "≤ 100 MB" } else { "" };
            (
                format!(
                    "(g) {} volumes × {} files: {what}",
                    cfg.rss_volumes, cfg.rss_files_per_volume
                ),
                m != "sample_ops_per_s",
                goal,
            )
        }
        _ => (format!("({w}) {m}"), false, ""),
    };
    MetricInfo {
        label,
        lower_better: lower,
        goal,
    }
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Report {
    /// The markdown table of medians and ratios, the per-round values and the errors.
    pub fn markdown(&self, cfg: &Config) -> String {
        let mut s = String::new();
        let ratio_bases: Vec<&str> = ["ganesha", "local"]
            .into_iter()
            .filter(|b| self.targets.iter().any(|t| t == b))
            .collect();
        let nfsds: Vec<&String> = self
            .targets
            .iter()
            .filter(|t| t.starts_with("nfsd"))
            .collect();
        let mut header = vec!["workload: metric".to_string()];
        header.extend(self.targets.iter().cloned());
        for n in &nfsds {
            for b in &ratio_bases {
                header.push(format!("{n}/{b}"));
            }
        }
        header.push("goal".into());
        s.push_str(&format!("| {} |\n", header.join(" | ")));
        s.push_str(&format!(
            "|{}\n",
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
                .collect::<String>()
        ));
        // rows in first-seen order
        let mut rows: Vec<(char, String)> = Vec::new();
        for smp in &self.samples {
            let k = (smp.workload, smp.metric.clone());
            if !rows.contains(&k) {
                rows.push(k);
            }
        }
        for (w, m) in &rows {
            if m == "pages" {
                continue;
            }
            let info = metric_info(cfg, *w, m);
            let mut cells = vec![if info.lower_better {
                format!("{} (lower is better)", info.label)
            } else {
                info.label.clone()
            }];
            for t in &self.targets {
                cells.push(
                    self.median(*w, m, t)
                        .map(fmt_num)
                        .unwrap_or_else(|| "–".into()),
                );
            }
            for n in &nfsds {
                for b in &ratio_bases {
                    let r = match (self.median(*w, m, n), self.median(*w, m, b)) {
                        (Some(x), Some(y)) if y != 0.0 => format!("{:.2}", x / y),
                        _ => "–".into(),
                    };
                    cells.push(r);
                }
            }
            cells.push(info.goal.into());
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        // errors per workload
        let mut ws: Vec<char> = rows.iter().map(|r| r.0).collect();
        ws.dedup();
        for w in ws {
            let mut cells = vec![format!("({w}) errors (all rounds)")];
            for t in &self.targets {
                let ran = self.completed.iter().any(|(cw, ct)| *cw == w && ct == t);
                let n: u64 = self
                    .errors
                    .iter()
                    .filter(|e| e.workload == w && &e.target == t)
                    .map(|e| e.errors)
                    .sum();
                cells.push(if ran || n > 0 {
                    n.to_string()
                } else {
                    "–".into()
                });
            }
            for _ in 0..nfsds.len() * ratio_bases.len() {
                cells.push(String::new());
            }
            cells.push(if w == 'e' { "0".into() } else { String::new() });
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        // per-round values
        s.push_str(
            "\nAll rounds (in the order they ran; targets interleaved within each round):\n\n",
        );
        s.push_str(&format!(
            "| workload: metric | {} |\n",
            self.targets.join(" | ")
        ));
        s.push_str(&format!("|---|{}\n", "---|".repeat(self.targets.len())));
        for (w, m) in &rows {
            let info = metric_info(cfg, *w, m);
            let mut cells = vec![info.label];
            for t in &self.targets {
                let v = self.values(*w, m, t);
                cells.push(if v.is_empty() {
                    "–".into()
                } else {
                    v.iter()
                        .map(|x| fmt_num(*x))
                        .collect::<Vec<_>>()
                        .join(" / ")
                });
            }
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        let errs: Vec<&ErrorRecord> = self.errors.iter().filter(|e| e.errors > 0).collect();
        if !errs.is_empty() {
            s.push_str("\nErrors:\n\n");
            for e in errs {
                s.push_str(&format!(
                    "- ({}) {} round {}: {} errors, first: {}\n",
                    e.workload,
                    e.target,
                    e.round,
                    e.errors,
                    e.first.as_deref().unwrap_or("?")
                ));
            }
        }
        s.push_str(&format!(
            "\n{}\n\nMachine: {}\n\nWall time: {:.0} s\n",
            self.config_summary,
            self.machine,
            self.wall.as_secs_f64()
        ));
        s
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "targets": self.targets,
            "machine": self.machine,
            "config": self.config_summary,
            "samples": self.samples.iter().map(|s| serde_json::json!({
                "workload": s.workload.to_string(), "metric": s.metric, "target": s.target,
                "round": s.round, "value": s.value})).collect::<Vec<_>>(),
            "errors": self.errors.iter().map(|e| serde_json::json!({
                "workload": e.workload.to_string(), "target": e.target, "round": e.round,
                "errors": e.errors, "first": e.first})).collect::<Vec<_>>(),
        })
    }
}

/// nproc, CPU model, RAM, and the file system of `dir`.
pub fn machine_description(dir: &Path) -> String {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|x| x.1.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let fs = Command::new("findmnt")
        .args(["-no", "SOURCE,FSTYPE,OPTIONS", "-T"])
        .arg(dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{nproc} CPUs ({model}), {mem_gib:.1} GiB RAM, work dir {} on {fs}; load average at the end: {load}",
        dir.display()
    )
}

/// A started system under test (keeps the server process alive).
enum Running {
    Nfsd(#[allow(dead_code)] Nfsd),
    Ganesha(#[allow(dead_code)] Ganesha),
    Local,
}

fn say(cfg: &Config, msg: impl AsRef<str>) {
    if cfg.verbose {
        eprintln!("bench: {}", msg.as_ref());
    }
}

fn start_target(cfg: &Config, name: &str, bin: Option<&Path>) -> anyhow::Result<(Target, Running)> {
    let w = &cfg.work_dir;
    match name {
        "nfsd" | "nfsd-nosync" => {
            let data = w.join(format!("{name}-data"));
            let extra: &[&str] = if name == "nfsd" {
                &[]
            } else {
                &["--sync-metadata", "false"]
            };
            let n = servers::start_nfsd(bin.unwrap(), &data, extra)?;
            servers::create_volume(&n, "bench", "bench", BENCH_UID, BENCH_GID)?;
            let t = Target {
                name: name.into(),
                kind: Kind::Nfsd,
                endpoint: Some(Endpoint::nfsd(&n, "bench")),
                root_dir: data.join("volumes/bench"),
                pid: n.pid(),
                metrics: Some(n.api),
            };
            Ok((t, Running::Nfsd(n)))
        }
        "ganesha" => {
            let dir = w.join("ganesha-export");
            std::fs::create_dir_all(&dir)?;
            std::os::unix::fs::chown(&dir, Some(BENCH_UID), Some(BENCH_GID))?;
            let g = Ganesha::start_in(&dir, &w.join("ganesha-state"))?;
            let t = Target {
                name: name.into(),
                kind: Kind::Ganesha,
                endpoint: Some(Endpoint::ganesha(&g)),
                root_dir: g.dir.clone(),
                pid: g.pid(),
                metrics: None,
            };
            Ok((t, Running::Ganesha(g)))
        }
        "local" => {
            let dir = w.join("local");
            std::fs::create_dir_all(&dir)?;
            let t = Target {
                name: name.into(),
                kind: Kind::Local,
                endpoint: None,
                root_dir: dir,
                pid: None,
                metrics: None,
            };
            Ok((t, Running::Local))
        }
        other => bail!("unknown target {other} (nfsd, nfsd-nosync, ganesha, local)"),
    }
}

/// `perf record` of a process while a workload runs.
struct Perf(Option<Child>);

impl Perf {
    fn start(cfg: &Config, t: &Target, w: char, round: usize) -> Perf {
        let (Some(dir), Some(pid)) = (&cfg.perf, t.pid) else {
            return Perf(None);
        };
        if round != 0 || t.kind == Kind::Local {
            return Perf(None);
        }
        let _ = std::fs::create_dir_all(dir);
        let out = dir.join(format!("{}-{w}.data", t.name));
        let child = Command::new("perf")
            .args([
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "499",
                "--call-graph",
                "dwarf,16384",
                "-p",
            ])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        std::thread::sleep(Duration::from_millis(500));
        Perf(child)
    }

    fn stop(mut self) {
        if let Some(mut c) = self.0.take() {
            // a pid fits pid_t (the kernel's pid_max is at most 2^22)
            if let Ok(pid) = libc::pid_t::try_from(c.id()) {
                // SAFETY: kill(2) on our own child's pid, not yet waited for, so not reused.
                unsafe {
                    libc::kill(pid, libc::SIGINT);
                }
            }
            let _ = c.wait();
        }
    }
}

fn run_one(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    w: char,
    t: &Target,
    round: usize,
) -> anyhow::Result<Outcome> {
    let set = workloads::set_dir(round);
    let local = t.kind == Kind::Local;
    // (c) and (d) use the directory (a) made; make it (untimed) when (a) did not run
    if matches!(w, 'c' | 'd') && !t.root_dir.join(&set).exists() {
        let o = if local {
            workloads::create_files_local(cfg, t, &set)?
        } else {
            rt.block_on(workloads::create_files_nfs(cfg, t, &set))?
        };
        if o.errors > 0 {
            bail!(
                "setting up {set}: {} errors, first: {}",
                o.errors,
                o.first_error.unwrap_or_default()
            );
        }
    }
    let perf = Perf::start(cfg, t, w, round);
    let flushes_before = t.metrics.and_then(servers::dir_flushes);
    let before = t.pid.and_then(servers::proc_usage);
    let me = std::process::id();
    let client_before = servers::proc_usage(me);
    let r = match (w, local) {
        ('a', false) => rt.block_on(workloads::create_files_nfs(cfg, t, &set)),
        ('a', true) => workloads::create_files_local(cfg, t, &set),
        ('b', false) => rt.block_on(workloads::getattr_nfs(cfg, t, round)),
        ('b', true) => workloads::getattr_local(cfg, t, round),
        ('c', false) => rt.block_on(workloads::list_nfs(cfg, t, &set)),
        ('c', true) => workloads::list_local(cfg, t, &set),
        ('d', false) => rt.block_on(workloads::remove_nfs(cfg, t, &set)),
        ('d', true) => workloads::remove_local(cfg, t, &set),
        ('e', false) => rt.block_on(workloads::autosave_nfs(cfg, t, round)),
        ('e', true) => workloads::autosave_local(cfg, t, round),
        ('f', false) => rt.block_on(workloads::big_nfs(cfg, t, round)),
        ('f', true) => workloads::big_local(cfg, t, round),
        _ => bail!("unknown workload {w}"),
    };
    let after = t.pid.and_then(servers::proc_usage);
    let client_after = servers::proc_usage(me);
    let flushes_after = t.metrics.and_then(servers::dir_flushes);
    perf.stop();
    let mut r = r;
    if let (Ok(o), Some(b), Some(a)) = (r.as_mut(), &client_before, &client_after)
        && o.ops > 0
        && w != 'e'
    {
        let (cpu, _) = a.since(b);
        o.metrics
            .push(("client_cpu_us_per_op", cpu * 1e6 / o.ops as f64));
    }
    if let (Ok(o), Some(b), Some(a)) = (r.as_mut(), before, after)
        && o.ops > 0
    {
        let (cpu, sw) = a.since(&b);
        o.metrics
            .push(("server_cpu_us_per_op", cpu * 1e6 / o.ops as f64));
        o.metrics
            .push(("server_switches_per_op", sw as f64 / o.ops as f64));
    }
    if let (Ok(o), Some(b), Some(a)) = (r.as_mut(), flushes_before, flushes_after)
        && o.ops > 0
        && matches!(w, 'a' | 'd' | 'e')
    {
        o.metrics
            .push(("dir_flushes_per_op", (a - b) as f64 / o.ops as f64));
    }
    r
}

/// (g): a dedicated nfsd with `rss_volumes` volumes of `rss_files_per_volume` files each.
fn run_rss(
    rt: &tokio::runtime::Runtime,
    cfg: &Config,
    bin: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let data = cfg.work_dir.join("rss-data");
    let n = servers::start_nfsd(bin, &data, &[])?;
    let pid = n.pid().context("nfsd pid")?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let push = |report: &mut Report, m: &str, v: f64| {
        report.samples.push(Sample {
            workload: 'g',
            metric: m.into(),
            target: "nfsd".into(),
            round: 0,
            value: v,
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (idle, _) = servers::rss_kib(pid).context("reading /proc/<nfsd>/status")?;
    push(report, "rss_idle_mib", mib(idle));
    say(cfg, format!("(g) creating {} volumes", cfg.rss_volumes));
    let mut dirs = Vec::new();
    for i in 0..cfg.rss_volumes {
        let name = format!("v{i:04}");
        let (uid, gid) = (50_000 + u32::try_from(i)?, 50_000);
        servers::create_volume(&n, &name, &format!("user{i:04}"), uid, gid)?;
        dirs.push((data.join("volumes").join(&name), uid, gid));
    }
    let (after_volumes, _) = servers::rss_kib(pid).context("nfsd gone")?;
    push(report, "rss_volumes_mib", mib(after_volumes));
    say(
        cfg,
        format!(
            "(g) writing {} files directly into the trees",
            cfg.rss_volumes * cfg.rss_files_per_volume
        ),
    );
    let t = Instant::now();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    workloads::populate_trees(&dirs, cfg.rss_files_per_volume, threads)?;
    say(
        cfg,
        format!("(g) trees written in {:.0} s", t.elapsed().as_secs_f64()),
    );
    let eps: Vec<_> = (0..cfg.rss_volumes)
        .map(|i| Endpoint::nfsd(&n, &format!("v{i:04}")))
        .collect();
    let t = Instant::now();
    let (ok, errors, first) = rt.block_on(workloads::sample_volumes(
        eps,
        cfg.rss_sample_per_volume,
        cfg.rss_files_per_volume,
        cfg.conns,
    ))?;
    let secs = t.elapsed().as_secs_f64();
    push(report, "sample_ops_per_s", ok as f64 / secs);
    std::thread::sleep(Duration::from_millis(300));
    let (rss, hwm) = servers::rss_kib(pid).context("nfsd gone")?;
    push(report, "rss_mib", mib(rss));
    push(report, "hwm_mib", mib(hwm));
    report.errors.push(ErrorRecord {
        workload: 'g',
        target: "nfsd".into(),
        round: 0,
        errors,
        first,
    });
    report.completed.push(('g', "nfsd".into()));
    drop(n);
    if !cfg.keep {
        say(cfg, "(g) deleting the trees");
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(())
}

/// Runs the selected workloads on the selected targets and returns the report.
pub fn run(cfg: &Config) -> anyhow::Result<Report> {
    let started = Instant::now();
    let need_ganesha = cfg.targets.iter().any(|t| t == "ganesha");
    let need_nfs_cp = cfg.workloads.contains(&'f') && cfg.targets.iter().any(|t| t != "local");
    servers::check_prerequisites(need_ganesha, need_nfs_cp)?;
    let need_nfsd =
        cfg.targets.iter().any(|t| t.starts_with("nfsd")) || cfg.workloads.contains(&'g');
    let bin = if !need_nfsd {
        None
    } else if let Some(b) = &cfg.nfsd_bin {
        Some(b.clone())
    } else {
        Some(
            servers::nfsd_binary(cfg.release_nfsd, cfg.build).or_else(|e| {
                if cfg.build {
                    Err(e)
                } else {
                    // not built at all: build it rather than fail
                    servers::nfsd_binary(cfg.release_nfsd, true)
                }
            })?,
        )
    };
    if let Some(b) = &bin {
        say(cfg, format!("nfsd binary: {}", b.display()));
    }
    std::fs::create_dir_all(&cfg.work_base)?;
    let tmp = tempfile::Builder::new()
        .prefix("swarmhub-bench-")
        .tempdir_in(&cfg.work_base)
        .with_context(|| format!("creating a temp dir in {}", cfg.work_base.display()))?;
    let mut cfg = cfg.clone();
    cfg.work_dir = tmp.path().to_path_buf();
    let cfg = &cfg;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let mut report = Report {
        targets: cfg.targets.clone(),
        config_summary: format!(
            "Rounds: {}; workloads: {}; files {}, conns {}, GETATTR {} s, READDIRPLUS dircount {} maxcount {}, autosave {} clients × {} saves of {} KiB every {} ms, large file {} MiB, RSS {} volumes × {} files (sample {} per volume).",
            cfg.rounds,
            cfg.workloads.iter().collect::<String>(),
            cfg.files,
            cfg.conns,
            cfg.getattr_secs,
            cfg.readdir_dircount,
            cfg.readdir_maxcount,
            cfg.autosave_clients,
            cfg.autosave_count,
            cfg.autosave_bytes / 1024,
            cfg.autosave_period_ms,
            cfg.big_mib,
            cfg.rss_volumes,
            cfg.rss_files_per_volume,
            cfg.rss_sample_per_volume
        ),
        ..Default::default()
    };

    let mut running = Vec::new();
    let mut targets = Vec::new();
    for name in &cfg.targets {
        say(cfg, format!("starting {name}"));
        let (t, r) = start_target(cfg, name, bin.as_deref())
            .with_context(|| format!("starting target {name}"))?;
        targets.push(t);
        running.push(r);
    }
    if cfg.workloads.contains(&'f') {
        workloads::big_source(cfg)?;
    }

    for &w in &cfg.workloads {
        if w == 'g' {
            continue;
        }
        for round in 0..cfg.rounds {
            for t in &targets {
                let s = Instant::now();
                let res = run_one(&rt, cfg, w, t, round);
                let (errors, first) = match res {
                    Ok(o) => {
                        for (m, v) in &o.metrics {
                            report.samples.push(Sample {
                                workload: w,
                                metric: (*m).into(),
                                target: t.name.clone(),
                                round,
                                value: *v,
                            });
                        }
                        say(
                            cfg,
                            format!(
                                "({w}) {} round {round}: {} ({} errors) in {:.1} s",
                                t.name,
                                o.metrics
                                    .iter()
                                    .map(|(m, v)| format!("{m}={}", fmt_num(*v)))
                                    .collect::<Vec<_>>()
                                    .join(" "),
                                o.errors,
                                s.elapsed().as_secs_f64()
                            ),
                        );
                        report.completed.push((w, t.name.clone()));
                        (o.errors, o.first_error)
                    }
                    Err(e) => {
                        say(cfg, format!("({w}) {} round {round} FAILED: {e:#}", t.name));
                        (1, Some(format!("{e:#}")))
                    }
                };
                report.errors.push(ErrorRecord {
                    workload: w,
                    target: t.name.clone(),
                    round,
                    errors,
                    first,
                });
            }
        }
    }
    if cfg.workloads.contains(&'g')
        && let Some(b) = &bin
        && let Err(e) = run_rss(&rt, cfg, b, &mut report)
    {
        say(cfg, format!("(g) FAILED: {e:#}"));
        report.errors.push(ErrorRecord {
            workload: 'g',
            target: "nfsd".into(),
            round: 0,
            errors: 1,
            first: Some(format!("{e:#}")),
        });
    }
    // peak RSS of the servers over the whole run
    for t in &targets {
        if let Some((_, hwm)) = t.pid.and_then(servers::rss_kib) {
            say(
                cfg,
                format!(
                    "{} peak RSS over the run: {:.1} MiB",
                    t.name,
                    hwm as f64 / 1024.0
                ),
            );
        }
    }
    drop(running);
    report.machine = machine_description(&cfg.work_dir);
    report.wall = started.elapsed();
    if cfg.keep {
        let p = tmp.keep();
        say(cfg, format!("kept {}", p.display()));
    }
    Ok(report)
}

/// Parses `a,b,c` or `abc` into workload letters.
pub fn parse_workloads(s: &str) -> anyhow::Result<Vec<char>> {
    let mut v = Vec::new();
    for c in s.chars().filter(|c| *c != ',' && !c.is_whitespace()) {
        let c = c.to_ascii_lowercase();
        if !ALL_WORKLOADS.contains(c) {
            bail!("unknown workload {c:?} (a..g)");
        }
        if !v.contains(&c) {
            v.push(c);
        }
    }
    // keep the canonical order: (c) and (d) follow (a)
    v.sort();
    Ok(v)
}
