//! A lecture start (issue 15): N students log in within W seconds, each as a browser does, and
//! what the cluster did meanwhile.
//!
//! Each simulated browser (its own curl cookie jar, one thread) logs in through the form (the
//! `_xsrf` cookie and field), asks for its server as the home page's button does
//! (`GET /hub/spawn`; a "too many users, try again in N seconds" answer is retried after N
//! seconds, as a person would), listens to the spawn's progress event stream (what the
//! spawn-pending page listens to; a failed spawn ends it with the hub's message), opens
//! JupyterLab through the OAuth redirects (hub authorize, the server's callback, its cookie),
//! and saves a notebook through the contents API with the server's `_xsrf` cookie as
//! `X-XSRFToken`, then reads it back. Login → JupyterLab answering is "ready", login → the
//! save acknowledged is "saved".
//!
//! Meanwhile a sampler looks every second at nfsd's `/v1/health`, the memory of every node
//! (all its processes), of nfsd and of each node's plugin, and the host's available memory.
//! Afterwards the plugin's Mount latencies come from the nodes' logs (its
//! `VolumeDriver.Mount answered ... took_ms=N` lines since the storm began), nfsd's calls and
//! errors from its `/metrics` (before and after), and where each notebook ran from Swarm.
//!
//! Used by the `swarmhub-storm` benchmark (figures) and, with 3 students, by the e2e test
//! (which asserts only that every spawn succeeded).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::hub::{Browser, curl_ca_args, notebook};
use crate::swarm::Swarm;

/// A student who takes part: LDAP name and password.
#[derive(Debug, Clone)]
pub struct Student {
    pub name: String,
    pub password: String,
}

/// What one storm is: who, how spread out, how long a spawn may take.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A name for the report, e.g. `swarmhub cold`.
    pub label: String,
    pub students: Vec<Student>,
    /// Logins start evenly over this window (zero: all at once).
    pub within: Duration,
    /// How long one student may take from login to a saved notebook.
    pub limit: Duration,
    /// nfsd's control API, `http://IP:PORT`, for `/v1/health` and `/metrics`.
    pub nfsd_api: String,
}

/// What happened to one student.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub user: String,
    /// When the login began, from the storm's start.
    pub began: Duration,
    /// Login → JupyterLab answered.
    pub ready: Option<Duration>,
    /// Login → the first notebook saved (and read back).
    pub saved: Option<Duration>,
    /// "Too many users are starting servers, try again" answers before the spawn began.
    pub turned_away: u32,
    /// Why it failed: the hub's or Swarm's message.
    pub failure: Option<String>,
    /// The node (host name) whose task ran the notebook.
    pub node: Option<String>,
}

/// One storm's figures.
#[derive(Debug, Clone)]
pub struct Report {
    pub label: String,
    pub outcomes: Vec<Outcome>,
    /// Storm start → the last student ready (all of them; none when one failed).
    pub all_ready: Option<Duration>,
    /// Plugin Mount answers on all nodes during the storm, milliseconds.
    pub mounts_ms: Vec<u64>,
    /// Plugin Mount failures (log lines) during the storm.
    pub mount_failures: Vec<String>,
    /// nfsd RPC calls by procedure during the storm.
    pub nfsd_calls: BTreeMap<String, f64>,
    /// nfsd's error replies during the storm by `PROCEDURE STATUS` (a LOOKUP of a name that
    /// does not exist yet is one; a Jupyter server looks for many).
    pub nfsd_errors: BTreeMap<String, f64>,
    /// `/v1/health` looks and the ones that failed (with the first failure).
    pub health_looks: u32,
    pub health_failures: u32,
    pub health_first_failure: Option<String>,
    /// Peak RSS in KiB: per node (everything it runs), nfsd, the plugin per node.
    pub peak_node_kib: Vec<u64>,
    pub peak_nfsd_kib: u64,
    pub peak_plugin_kib: Vec<u64>,
    /// The host's lowest MemAvailable during the storm, KiB.
    pub min_available_kib: u64,
    /// The highest 1-minute load average seen.
    pub peak_load: f64,
}

impl Report {
    /// Students whose notebook was saved.
    pub fn succeeded(&self) -> usize {
        self.outcomes.iter().filter(|o| o.saved.is_some()).count()
    }

    /// The failures as `user: why` lines.
    pub fn failures(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter_map(|o| o.failure.as_ref().map(|f| format!("{}: {f}", o.user)))
            .collect()
    }

    /// Everything, for a person: one row per student, then the summary.
    pub fn print(&self) {
        println!(
            "\n==== storm: {} ({} students) ====",
            self.label,
            self.outcomes.len()
        );
        println!(
            "{:<10} {:>8} {:>9} {:>9} {:>5}  {:<16} failure",
            "user", "began_s", "ready_s", "saved_s", "429s", "node"
        );
        for o in &self.outcomes {
            println!(
                "{:<10} {:>8.1} {:>9} {:>9} {:>5}  {:<16} {}",
                o.user,
                o.began.as_secs_f64(),
                secs(o.ready),
                secs(o.saved),
                o.turned_away,
                o.node.as_deref().unwrap_or("-"),
                o.failure.as_deref().unwrap_or("")
            );
        }
        let ready: Vec<Duration> = self.outcomes.iter().filter_map(|o| o.ready).collect();
        let saved: Vec<Duration> = self.outcomes.iter().filter_map(|o| o.saved).collect();
        println!(
            "login->ready  {}\nlogin->saved  {}",
            spread(&ready),
            spread(&saved)
        );
        println!(
            "all ready after {} s; {} of {} saved; {} failed; {} answers 'try again later'",
            secs(self.all_ready),
            self.succeeded(),
            self.outcomes.len(),
            self.outcomes.len() - self.succeeded(),
            self.outcomes.iter().map(|o| o.turned_away).sum::<u32>()
        );
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &self.outcomes {
            *per_node
                .entry(o.node.as_deref().unwrap_or("-"))
                .or_default() += 1;
        }
        println!("notebooks per node: {per_node:?}");
        let mut ms = self.mounts_ms.clone();
        ms.sort_unstable();
        println!(
            "plugin Mount: {} answered, p50 {} ms, p95 {} ms, max {} ms; {} failed",
            ms.len(),
            pct(&ms, 50).map_or("-".into(), |v| v.to_string()),
            pct(&ms, 95).map_or("-".into(), |v| v.to_string()),
            ms.last().map_or("-".into(), |v| v.to_string()),
            self.mount_failures.len()
        );
        for f in self.mount_failures.iter().take(5) {
            println!("  mount failure: {f}");
        }
        let calls: f64 = self.nfsd_calls.values().sum();
        let top: Vec<String> = {
            let mut v: Vec<(&String, &f64)> = self.nfsd_calls.iter().collect();
            v.sort_by(|a, b| b.1.total_cmp(a.1));
            v.iter().take(6).map(|(p, n)| format!("{p} {n}")).collect()
        };
        println!(
            "nfsd: {calls} RPC calls ({}), error replies {:?}; /v1/health {} of {} looks failed{}",
            top.join(", "),
            self.nfsd_errors,
            self.health_failures,
            self.health_looks,
            self.health_first_failure
                .as_ref()
                .map(|f| format!(" (first: {f})"))
                .unwrap_or_default()
        );
        println!(
            "peak RSS MiB: nodes {:?}, nfsd {}, plugin per node {:?}; host MemAvailable low {} MiB; load1 peak {:.1}",
            self.peak_node_kib
                .iter()
                .map(|k| k / 1024)
                .collect::<Vec<_>>(),
            self.peak_nfsd_kib / 1024,
            self.peak_plugin_kib
                .iter()
                .map(|k| k / 1024)
                .collect::<Vec<_>>(),
            self.min_available_kib / 1024,
            self.peak_load
        );
        for f in self.failures() {
            println!("FAILED {f}");
        }
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64()))
}

/// `p50 X s, p95 Y s, max Z s (n)` of `v`.
pub fn spread(v: &[Duration]) -> String {
    let mut ms: Vec<u64> = v.iter().copied().map(millis).collect();
    ms.sort_unstable();
    let f = |p: Option<u64>| p.map_or("-".into(), |m| format!("{:.1}", m as f64 / 1000.0));
    format!(
        "p50 {} s, p95 {} s, max {} s (n={})",
        f(pct(&ms, 50)),
        f(pct(&ms, 95)),
        f(ms.last().copied()),
        ms.len()
    )
}

/// `d` in whole milliseconds.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The nearest-rank percentile `p` of sorted `v`.
pub fn pct(v: &[u64], p: usize) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let rank = (p * v.len()).div_ceil(100).max(1);
    v.get(rank - 1).copied()
}

/// Runs the storm against the hub at `base` (cookie jars and bodies under `dir`) on `swarm`.
pub fn run(swarm: &Swarm, base: &str, dir: &Path, plan: &Plan) -> anyhow::Result<Report> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let before_metrics = nfsd_metrics(&plan.nfsd_api).unwrap_or_default();
    let log_offsets: Vec<u64> = (1..=swarm.len())
        .map(|i| std::fs::metadata(swarm.log_path(i)).map_or(0, |m| m.len()))
        .collect();
    let n = u32::try_from(plan.students.len().max(1)).unwrap_or(u32::MAX);
    let running = AtomicBool::new(true);
    let start = Instant::now();
    let (mut outcomes, samples) = std::thread::scope(|s| {
        let sampler = s.spawn(|| sample(swarm, &plan.nfsd_api, &running));
        let users: Vec<_> = plan
            .students
            .iter()
            .enumerate()
            .map(|(k, st)| {
                let at = plan.within * u32::try_from(k).unwrap_or(u32::MAX) / n;
                s.spawn(move || {
                    if let Some(wait) = at.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    let began = start.elapsed();
                    let mut o = one(base, dir, st, plan.limit);
                    o.began = began;
                    o
                })
            })
            .collect();
        let outcomes: Vec<Outcome> = users
            .into_iter()
            .map(|h| h.join().expect("a student's thread panicked"))
            .collect();
        running.store(false, Ordering::Relaxed);
        let samples = sampler.join().expect("the sampler panicked");
        (outcomes, samples)
    });
    for o in &mut outcomes {
        o.node = swarm
            .running_tasks(&format!("jupyter-{}", o.user))
            .ok()
            .and_then(|t| t.first().map(|(node, _)| node.clone()));
    }
    let all_ready = outcomes
        .iter()
        .map(|o| o.ready.map(|r| o.began + r))
        .collect::<Option<Vec<Duration>>>()
        .and_then(|v| v.into_iter().max());
    let after_metrics = nfsd_metrics(&plan.nfsd_api).unwrap_or_default();
    let (calls, errors) = metrics_delta(&before_metrics, &after_metrics);
    let (mounts_ms, mount_failures) = mount_lines(swarm, &log_offsets);
    Ok(Report {
        label: plan.label.clone(),
        outcomes,
        all_ready,
        mounts_ms,
        mount_failures,
        nfsd_calls: calls,
        nfsd_errors: errors,
        health_looks: samples.health_looks,
        health_failures: samples.health_failures,
        health_first_failure: samples.health_first_failure,
        peak_node_kib: samples.peak_node_kib,
        peak_nfsd_kib: samples.peak_nfsd_kib,
        peak_plugin_kib: samples.peak_plugin_kib,
        min_available_kib: samples.min_available_kib,
        peak_load: samples.peak_load,
    })
}

/// Every student stops their own server (the hub's REST API with their login cookie), all at
/// once; returns when the hub has no server for any of them.
pub fn stop_all(base: &str, dir: &Path, students: &[Student]) -> anyhow::Result<()> {
    let errors: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = students
            .iter()
            .map(|st| {
                s.spawn(move || {
                    let b = Browser::new(base, dir, &st.name);
                    let r = (|| {
                        let m = b.model()?;
                        if m["servers"][""].is_null() && m["pending"].is_null() {
                            return Ok(());
                        }
                        b.stop_server().map(|_| ())
                    })();
                    r.err().map(|e| format!("{}: {e:#}", st.name))
                })
            })
            .collect();
        hs.into_iter()
            .filter_map(|h| h.join().expect("a stopping thread panicked"))
            .collect()
    });
    ensure!(
        errors.is_empty(),
        "stopping the storm's servers:\n{}",
        errors.join("\n")
    );
    Ok(())
}

/// One student's login, spawn, JupyterLab and first save.
fn one(base: &str, dir: &Path, st: &Student, limit: Duration) -> Outcome {
    let b = Browser::new(base, dir, &st.name);
    let t0 = Instant::now();
    let mut turned_away = 0;
    let mut ready = None;
    let r = (|| -> anyhow::Result<Duration> {
        b.login(&st.password)?;
        // the home page's "Start My Server": GET /hub/spawn, which starts the spawn and sends
        // the browser to the spawn-pending page
        loop {
            let r = b.curl("/hub/spawn", &[], Duration::from_secs(120))?;
            match r.code {
                200 | 302 | 303 => break,
                429 => {
                    turned_away += 1;
                    let wait = retry_after(&r.body);
                    ensure!(
                        t0.elapsed() + wait < limit,
                        "still turned away after {turned_away} tries: {}",
                        page_text(&r.body)
                    );
                    std::thread::sleep(wait);
                }
                c => bail!("GET /hub/spawn: HTTP {c}: {}", page_text(&r.body)),
            }
        }
        let left = limit.saturating_sub(t0.elapsed());
        wait_progress(&b, left)?;
        // JupyterLab, through the hub's OAuth authorize and the server's callback
        let user = &st.name;
        let lab = b.curl(
            &format!("/user/{user}/lab"),
            &["-L"],
            Duration::from_secs(120),
        )?;
        ensure!(
            lab.code == 200 && lab.body.contains("jupyter-config-data"),
            "JupyterLab of {user}: HTTP {}: {}",
            lab.code,
            page_text(&lab.body)
        );
        ready = Some(t0.elapsed());
        let xsrf = format!(
            "X-XSRFToken: {}",
            b.cookie("_xsrf", &format!("/user/{user}/"))?
        );
        let marker = format!("{user} was at the lecture");
        let body =
            json!({"type": "notebook", "content": notebook(&format!("# {marker}"))}).to_string();
        let path = format!("/user/{user}/api/contents/lecture.ipynb");
        let put = b.curl(
            &path,
            &[
                "-X",
                "PUT",
                "-H",
                &xsrf,
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body,
            ],
            Duration::from_secs(120),
        )?;
        ensure!(
            matches!(put.code, 200 | 201),
            "saving {user}'s notebook: HTTP {}: {}",
            put.code,
            page_text(&put.body)
        );
        let saved = t0.elapsed();
        let back = b.curl(&path, &[], Duration::from_secs(60))?;
        ensure!(
            back.code == 200 && back.body.contains(&marker),
            "{user}'s notebook read back: HTTP {}: {}",
            back.code,
            page_text(&back.body)
        );
        Ok(saved)
    })();
    let (saved, failure) = match r {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    Outcome {
        user: st.name.clone(),
        began: Duration::ZERO,
        ready,
        saved,
        turned_away,
        failure,
        node: None,
    }
}

/// The spawn's progress event stream until it ends: Ok when the last event says ready, the
/// hub's message when it says failed.
fn wait_progress(b: &Browser, limit: Duration) -> anyhow::Result<()> {
    let r = b.curl(
        &format!("/hub/api/users/{}/server/progress", b.user),
        &["-N", "-H", "Accept: text/event-stream"],
        limit.max(Duration::from_secs(5)),
    )?;
    ensure!(
        r.code == 200,
        "the spawn's progress: HTTP {}: {}",
        r.code,
        page_text(&r.body)
    );
    let last = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .next_back()
        .context("the spawn's progress stream had no event")?;
    if last["ready"] == json!(true) {
        return Ok(());
    }
    if last["failed"] == json!(true) {
        bail!(
            "{}",
            last["message"]
                .as_str()
                .unwrap_or("the spawn failed without a message")
        );
    }
    bail!("no ready event within {limit:?}; the last: {last}")
}

/// "Try again in N seconds" in JupyterHub's 429 page, else 30 s.
fn retry_after(page: &str) -> Duration {
    page.split("again in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(Duration::from_secs(30), Duration::from_secs)
}

/// The text of an HTML page or JSON answer, short: tags dropped, whitespace folded.
pub fn page_text(body: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let from = body.find("<body").unwrap_or(0);
    for c in body[from..].chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let folded = out.split_whitespace().collect::<Vec<_>>().join(" ");
    folded.chars().take(400).collect()
}

#[derive(Default)]
struct Samples {
    health_looks: u32,
    health_failures: u32,
    health_first_failure: Option<String>,
    peak_node_kib: Vec<u64>,
    peak_nfsd_kib: u64,
    peak_plugin_kib: Vec<u64>,
    min_available_kib: u64,
    peak_load: f64,
}

/// Every second until `running` is false: nfsd's health, memory, load.
fn sample(swarm: &Swarm, nfsd_api: &str, running: &AtomicBool) -> Samples {
    let nodes = swarm.len();
    let mut s = Samples {
        peak_node_kib: vec![0; nodes],
        peak_plugin_kib: vec![0; nodes],
        min_available_kib: u64::MAX,
        ..Samples::default()
    };
    while running.load(Ordering::Relaxed) {
        let t = Instant::now();
        s.health_looks += 1;
        if let Err(e) = http_get(&format!("{nfsd_api}/v1/health"), 2) {
            s.health_failures += 1;
            s.health_first_failure.get_or_insert(e);
        }
        for i in 1..=nodes {
            s.peak_node_kib[i - 1] = s.peak_node_kib[i - 1].max(swarm.total_rss_kib(i));
            s.peak_plugin_kib[i - 1] =
                s.peak_plugin_kib[i - 1].max(swarm.process_rss_kib(i, "swarmhub-volume"));
            s.peak_nfsd_kib = s
                .peak_nfsd_kib
                .max(swarm.process_rss_kib(i, "swarmhub-nfsd"));
        }
        if let Some(kib) = meminfo("MemAvailable:") {
            s.min_available_kib = s.min_available_kib.min(kib);
        }
        if let Some(l) = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        {
            s.peak_load = s.peak_load.max(l);
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
    if s.min_available_kib == u64::MAX {
        s.min_available_kib = 0;
    }
    s
}

fn meminfo(key: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// GET `url` with curl (`secs` at most): the body, or why not.
fn http_get(url: &str, secs: u64) -> Result<String, String> {
    let out = std::process::Command::new("curl")
        .args(curl_ca_args())
        .args(["-sS", "-f", "--max-time", &secs.to_string(), url])
        .output()
        .map_err(|e| format!("running curl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// nfsd's `/metrics` as `name{labels}` → value.
fn nfsd_metrics(api: &str) -> Result<BTreeMap<String, f64>, String> {
    Ok(parse_metrics(&http_get(&format!("{api}/metrics"), 5)?))
}

/// OpenMetrics text as `name{labels}` → value (comments skipped).
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse::<f64>().ok()?))
        })
        .collect()
}

/// nfsd's RPC calls by procedure and error replies by `PROCEDURE STATUS` between two
/// `/metrics` readings (`swarmhub_nfsd_rpc_calls_total{procedure=..}`,
/// `swarmhub_nfsd_rpc_errors_total{procedure=..,status=..}`).
pub fn metrics_delta(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let mut calls = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for (k, v) in after {
        let d = v - before.get(k).copied().unwrap_or(0.0);
        let name = k.split('{').next().unwrap_or(k);
        let procedure = label(k, "procedure").unwrap_or_else(|| k.clone());
        if name.ends_with("rpc_calls_total") {
            *calls.entry(procedure).or_insert(0.0) += d;
        } else if name.ends_with("rpc_errors_total") {
            let status = label(k, "status").unwrap_or_default();
            *errors.entry(format!("{procedure} {status}")).or_insert(0.0) += d;
        }
    }
    calls.retain(|_, v| *v > 0.0);
    errors.retain(|_, v| *v > 0.0);
    (calls, errors)
}

/// The value of `label="..."` in a metric key.
fn label(key: &str, label: &str) -> Option<String> {
    let at = key.find(&format!("{label}=\""))? + label.len() + 2;
    let end = key[at..].find('"')?;
    Some(key[at..at + end].to_string())
}

/// The plugin's Mount answers (milliseconds) and failures in the nodes' logs after the offsets.
fn mount_lines(swarm: &Swarm, offsets: &[u64]) -> (Vec<u64>, Vec<String>) {
    let mut ms = Vec::new();
    let mut failures = Vec::new();
    for (k, off) in offsets.iter().enumerate() {
        let Ok(bytes) = std::fs::read(swarm.log_path(k + 1)) else {
            continue;
        };
        let from = usize::try_from(*off).unwrap_or(usize::MAX).min(bytes.len());
        let text = String::from_utf8_lossy(&bytes[from..]);
        for line in text.lines() {
            let line = strip_ansi(line);
            if line.contains("VolumeDriver.Mount answered") {
                if let Some(v) = field(&line, "took_ms") {
                    ms.push(v);
                }
            } else if line.contains("VolumeDriver.Mount failed") {
                failures.push(format!("node {}: {line}", k + 1));
            }
        }
    }
    (ms, failures)
}

/// `line` without terminal colours, raw (`ESC[..m`) or as dockerd quotes them (`\x1b[..m`).
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        let raw = rest.find('\u{1b}');
        let quoted = rest.find("\\x1b");
        let (at, skip) = match (raw, quoted) {
            (Some(r), Some(q)) if q < r => (q, 4),
            (Some(r), _) => (r, 1),
            (None, Some(q)) => (q, 4),
            (None, None) => break,
        };
        out.push_str(&rest[..at]);
        let after = &rest[at + skip..];
        rest = match after.find('m') {
            Some(m) if after.starts_with('[') => &after[m + 1..],
            _ => after,
        };
    }
    out.push_str(rest);
    out
}

/// The number after `name=` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=40).collect();
        assert_eq!(pct(&v, 50), Some(20));
        assert_eq!(pct(&v, 95), Some(38));
        assert_eq!(pct(&v, 100), Some(40));
        assert_eq!(pct(&[7], 95), Some(7));
        assert_eq!(pct(&[], 50), None);
    }

    #[test]
    fn mount_latency_is_read_from_plugin_lines_as_dockerd_logs_them() {
        let line = r#"time="2026-12-06T12:00:00Z" level=info msg="\x1b[2m2026-12-06T12:00:00Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mswarmhub_volume_plugin::api\x1b[0m\x1b[2m:\x1b[0m VolumeDriver.Mount answered \x1b[3mvolume\x1b[0m\x1b[2m=\x1b[0m\"home-r1s01\" \x1b[3mtook_ms\x1b[0m\x1b[2m=\x1b[0m187" plugin=abc"#;
        let clean = strip_ansi(line);
        assert!(clean.contains("took_ms=187"), "{clean}");
        assert_eq!(field(&clean, "took_ms"), Some(187));
        assert_eq!(
            field("VolumeDriver.Mount answered took_ms=12", "took_ms"),
            Some(12)
        );
    }

    #[test]
    fn metrics_deltas_group_calls_by_procedure() {
        let before = parse_metrics(
            "# TYPE swarmhub_nfsd_rpc_calls counter\nswarmhub_nfsd_rpc_calls_total{procedure=\"GETATTR\"} 10\nswarmhub_nfsd_rpc_errors_total{procedure=\"LOOKUP\",status=\"NOENT\"} 1\n",
        );
        let after = parse_metrics(
            "swarmhub_nfsd_rpc_calls_total{procedure=\"GETATTR\"} 15\nswarmhub_nfsd_rpc_calls_total{procedure=\"WRITE\"} 3\nswarmhub_nfsd_rpc_errors_total{procedure=\"LOOKUP\",status=\"NOENT\"} 4\n# EOF\n",
        );
        let (calls, errors) = metrics_delta(&before, &after);
        assert_eq!(calls.get("GETATTR"), Some(&5.0));
        assert_eq!(calls.get("WRITE"), Some(&3.0));
        assert_eq!(errors.get("LOOKUP NOENT"), Some(&3.0));
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn hub_pages_become_short_text() {
        let page = "<html><head><title>x</title></head><body><div><p>Too many users trying to log in right now. Try again in 45 seconds.</p></div></body></html>";
        assert_eq!(
            page_text(page),
            "Too many users trying to log in right now. Try again in 45 seconds."
        );
        assert_eq!(retry_after(page), Duration::from_secs(45));
        assert_eq!(retry_after("no hint"), Duration::from_secs(30));
    }
}
