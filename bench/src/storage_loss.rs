//! The storage node lost mid-lecture (issue 17, item 3), on the three-node swarm harness
//! (`swarmhub_tests::swarm`): notebooks on the two other nodes are writing to their swarmhub
//! home volumes when the storage node's dockerd is SIGKILLed (`kill-dockerd`) or its network
//! link is cut (`cut-network`) for S seconds; then the node comes back.
//!
//! The deployment is what an admin makes, as `swarmhub-storm` makes it: the project's images
//! (test builder), a registry on the harness's host address, slapd holding the students, a
//! self-signed certificate, `swarmhub push --build-host <builder>` and `swarmhub run`.
//!
//! **The storage node is node 3, a worker** (label `swarmhub.storage=true`); the notebooks run
//! on node 1 (the manager) and node 2. Node 1 is the swarm's only manager: killing its dockerd
//! would take the control plane away (no `status`, no `doctor`, no scheduling), a different
//! failure from "the storage node is gone". Node 3 being a worker is also the shape a real
//! cluster with a dedicated file server has.
//!
//! Each "notebook" is a Swarm service with the labels the hub puts on notebook services
//! (`swarmhub.component=notebook`, `swarmhub.user`, `swarmhub.role=student`) and the user's
//! home volume `home-<user>` (driver `swarmhub-nfs`, `volume-opt=user=<user>`), pinned to node
//! 1 or 2 in turn. It runs a busybox writer: every 0.5 s it appends one numbered line with a
//! timestamp to `~/storage-loss-<mode>-r<round>.log` with `dd oflag=append conv=notrunc,fsync`
//! and logs into the container's own `/tmp` each line that finished (acknowledged: the write
//! and the fsync returned 0) and each error with its message. Times are `/proc/uptime`
//! seconds, one clock for the containers and this process.
//!
//! A round: the writers run `warmup` seconds; the fault; during the outage a thread runs
//! `swarmhub status` and `swarmhub doctor` (with time limits, so a hang shows as one) and
//! another records the storage node's state as the manager sees it; after `outage` seconds the
//! node comes back (`start_dockerd` / link up). Then the writers are watched until each has
//! written on for `steady` seconds without a gap (at most `resume_limit`), `status` and
//! `doctor` run again, and each writer's acknowledged lines are checked against the file in
//! nfsd's data dir on the storage node (a host path here): every acknowledged line present,
//! byte for byte, in order. A notebook "needed a restart" when its service has a new task
//! (the container was replaced) or its writes did not go on within `resume_limit`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use swarmhub_tests::builder::Builder;
use swarmhub_tests::docker::{BUSYBOX_IMAGE, run_timeout};
use swarmhub_tests::images::{Image, ensure_images};
use swarmhub_tests::registry::{self, REGISTRY_ADDR, Registry};
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};
use swarmhub_tests::swarm::{BASE, HOST_IP, Options, SWARM, Swarm, docker_cli, wait_until};

/// The storage node (a worker; see the module header).
pub const STORAGE_NODE: usize = 3;
/// Nodes the notebooks run on, in turn.
pub const NOTEBOOK_NODES: [usize; 2] = [1, 2];
const HUB_PORT: u16 = 8000;
/// A gap between two acknowledged lines longer than this is a hang (the period is 0.5 s).
pub const HANG_SECS: f64 = 2.0;
/// Time limit of one `swarmhub status` / `doctor` during the outage.
const INSPECT_LIMIT: Duration = Duration::from_secs(180);

/// The writer every notebook runs (busybox sh). `$NB` the user, `$F` the file.
const WRITER: &str = r#"
: > /tmp/ack.log; : > /tmp/err.log
i=0
while :; do
  i=$((i+1))
  read t0 rest < /proc/uptime
  line="$NB $(printf %08d $i) $t0"
  if out=$(echo "$line" | dd of="$F" oflag=append conv=notrunc,fsync 2>&1); then
    read t1 rest < /proc/uptime
    echo "$i $t0 $t1 $line" >> /tmp/ack.log
  else
    read t1 rest < /proc/uptime
    msg=$(echo "$out" | grep -v ' records ' | tr '\n' ' ')
    echo "$i $t0 $t1 $msg" >> /tmp/err.log
  fi
  sleep 0.5
done
"#;

/// How the storage node is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// SIGKILL of the storage node's dockerd (containerd and containers keep running), started
    /// again after the outage.
    KillDockerd,
    /// The storage node's link to the cluster bridge down (`ip link set nI down` on the bridge
    /// side), up again after the outage.
    CutNetwork,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::KillDockerd => "kill-dockerd",
            Mode::CutNetwork => "cut-network",
        }
    }
}

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// The modes, each for `rounds` rounds, on one deployment.
    pub modes: Vec<Mode>,
    pub notebooks: usize,
    pub outage: Duration,
    pub rounds: usize,
    /// Writing before the fault.
    pub warmup: Duration,
    /// After the node is back: each writer must write on without a hang this long.
    pub steady: Duration,
    /// After the node is back: a writer that has not written on by then needed a restart.
    pub resume_limit: Duration,
    /// Outputs of the run (status/doctor texts, writer logs, summaries), one directory per
    /// round.
    pub out_dir: PathBuf,
}

/// One acknowledged line or one error of a writer.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub seq: u64,
    /// `/proc/uptime` when the write began and when it returned.
    pub t0: f64,
    pub t1: f64,
    /// Acknowledged: the line written (without the newline); error: the message.
    pub text: String,
}

/// Parses a writer's `/tmp/ack.log` or `/tmp/err.log` (`SEQ T0 T1 TEXT`); a torn last line
/// (read while it was written) is left out.
pub fn parse_log(text: &str) -> Vec<Write> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            let seq = it.next()?.parse().ok()?;
            let t0 = it.next()?.parse().ok()?;
            let t1 = it.next()?.parse().ok()?;
            let text = it.next().unwrap_or("").trim_end().to_string();
            Some(Write { seq, t0, t1, text })
        })
        .collect()
}

/// Acknowledged lines checked against the file on disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub acked_lines: usize,
    pub acked_bytes: usize,
    /// Acknowledged lines not found, in order, byte for byte.
    pub lost_lines: usize,
    pub lost_bytes: usize,
    /// Lines on disk before the last acknowledged one that no acknowledgement covers (a write
    /// that failed or was cut short but landed): allowed.
    pub unacked_lines: usize,
    /// Lines on disk after the last acknowledged one (written after the log was read).
    pub later_lines: usize,
    /// The first lost line, for the report.
    pub first_lost: Option<String>,
}

/// Every acknowledged line (`acks`, in the order they were acknowledged) must be a whole line of
/// `disk`, in the same order.
pub fn verify(acks: &[Write], disk: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(disk);
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let mut v = Verdict {
        acked_lines: acks.len(),
        acked_bytes: acks.iter().map(|a| a.text.len() + 1).sum(),
        ..Verdict::default()
    };
    let mut at = 0;
    let mut matched = 0;
    for a in acks {
        match lines[at..].iter().position(|l| *l == a.text) {
            Some(p) => {
                at += p + 1;
                matched += 1;
            }
            None => {
                v.lost_lines += 1;
                v.lost_bytes += a.text.len() + 1;
                v.first_lost.get_or_insert_with(|| a.text.clone());
            }
        }
    }
    v.unacked_lines = at - matched;
    v.later_lines = lines.len() - at;
    v
}

/// Gaps between consecutive acknowledged lines (return times) longer than `min`, at or after
/// `from`: (start, length), start being the earlier line's return.
pub fn gaps(acks: &[Write], from: f64, min: f64) -> Vec<(f64, f64)> {
    acks.windows(2)
        .filter(|w| w[1].t1 >= from && w[1].t1 - w[0].t1 > min)
        .map(|w| (w[0].t1, w[1].t1 - w[0].t1))
        .collect()
}

/// When writes went on for good: the return time of the acknowledged line that ended the last
/// hang after `from` (the first line after `from` when there was none), and whether `steady`
/// seconds of acknowledged lines without a hang followed it, up to `now` (when the log was
/// read: a writer whose newest line is older than [`HANG_SECS`] hangs right now).
pub fn steady_since(acks: &[Write], from: f64, steady: f64, now: f64) -> (Option<f64>, bool) {
    let after: Vec<&Write> = acks.iter().filter(|a| a.t1 >= from).collect();
    let Some(last) = after.last() else {
        return (None, false);
    };
    let since = gaps(acks, from, HANG_SECS)
        .last()
        .map_or(after[0].t1, |(s, len)| s + len);
    (
        Some(since),
        last.t1 - since >= steady && now - last.t1 <= HANG_SECS,
    )
}

/// `/proc/uptime` of this host, seconds.
pub fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// One `swarmhub status` or `doctor` run.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub what: String,
    /// Seconds after the fault it began.
    pub at: f64,
    pub took: f64,
    /// None: timed out or killed.
    pub code: Option<i32>,
    pub timed_out: bool,
    /// The lines about nfsd, the nodes, the plugin and the notebooks.
    pub lines: Vec<String>,
    /// Where the whole output is.
    pub file: PathBuf,
}

/// One notebook's round.
#[derive(Debug, Clone)]
pub struct NotebookResult {
    pub user: String,
    pub node: usize,
    pub acked: usize,
    pub errors: Vec<Write>,
    /// Longest single write call (start to return), seconds, among acks and errors.
    pub longest_call: f64,
    /// Longest time without an acknowledged line since the fault (one still going on when
    /// the log was last read included), seconds.
    pub longest_gap: f64,
    /// Hangs (no acknowledged line for > [`HANG_SECS`]) since the fault: start after the
    /// fault, length.
    pub hangs: Vec<(f64, f64)>,
    /// Node back → the first line acknowledged after it.
    pub first_ack_after_restore: Option<f64>,
    /// Node back → writes went on for good (the end of the last hang; 0 when the writes
    /// were going on already).
    pub writes_on_after_restore: Option<f64>,
    pub resumed: bool,
    pub task_changed: bool,
    pub verdict: Verdict,
}

impl NotebookResult {
    pub fn needed_restart(&self) -> bool {
        self.task_changed || !self.resumed
    }

    pub fn longest_hang(&self) -> f64 {
        self.hangs.iter().map(|h| h.1).fold(0.0, f64::max)
    }
}

/// One round's figures.
#[derive(Debug, Clone)]
pub struct RoundReport {
    pub mode: Mode,
    pub round: usize,
    pub outage: f64,
    /// The storage node's state as the manager saw it: (seconds after the fault, state).
    pub node_states: Vec<(f64, String)>,
    /// Seconds after the restore until the manager saw the node ready again.
    pub node_ready_after_restore: Option<f64>,
    pub during: Vec<Inspection>,
    pub after: Vec<Inspection>,
    pub notebooks: Vec<NotebookResult>,
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

impl RoundReport {
    pub fn lost_bytes(&self) -> usize {
        self.notebooks.iter().map(|n| n.verdict.lost_bytes).sum()
    }

    pub fn restarts(&self) -> usize {
        self.notebooks.iter().filter(|n| n.needed_restart()).count()
    }

    pub fn print(&self) {
        println!(
            "\n==== storage node lost: {} round {} (outage {:.0} s) ====",
            self.mode.name(),
            self.round,
            self.outage
        );
        let states: Vec<String> = self
            .node_states
            .iter()
            .map(|(t, s)| format!("{s} at {t:+.1} s"))
            .collect();
        println!(
            "storage node (node {STORAGE_NODE}) as the manager saw it: {}; ready {} s after the restore",
            states.join(", "),
            opt(self.node_ready_after_restore)
        );
        println!(
            "{:<7} {:>4} {:>6} {:>6} {:>9} {:>9} {:>10} {:>10} {:>7} {:>8} {:>8}  errors (first)",
            "user",
            "node",
            "acked",
            "errors",
            "gap_max",
            "call_max",
            "first_ack",
            "writes_on",
            "lost_B",
            "unacked",
            "restart"
        );
        for n in &self.notebooks {
            println!(
                "{:<7} {:>4} {:>6} {:>6} {:>9.1} {:>9.1} {:>10} {:>10} {:>7} {:>8} {:>8}  {}",
                n.user,
                n.node,
                n.acked,
                n.errors.len(),
                n.longest_gap,
                n.longest_call,
                opt(n.first_ack_after_restore),
                opt(n.writes_on_after_restore),
                n.verdict.lost_bytes,
                n.verdict.unacked_lines,
                if n.needed_restart() { "yes" } else { "no" },
                n.errors.first().map_or(String::new(), |e| e.text.clone())
            );
            for (s, len) in &n.hangs {
                println!("        hang {len:.1} s from {s:+.1} s after the fault");
            }
        }
        for (when, list) in [("during the outage", &self.during), ("after", &self.after)] {
            for i in list {
                println!(
                    "{} {when} (at {:+.1} s): exit {} in {:.1} s{} ({})",
                    i.what,
                    i.at,
                    i.code.map_or("none".into(), |c| c.to_string()),
                    i.took,
                    if i.timed_out { ", TIMED OUT" } else { "" },
                    i.file.display()
                );
                for l in &i.lines {
                    println!("    {l}");
                }
            }
        }
        println!("{}", self.json());
    }

    pub fn json(&self) -> Value {
        let max = |f: &dyn Fn(&NotebookResult) -> Option<f64>| {
            self.notebooks
                .iter()
                .filter_map(f)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        };
        let inspect = |l: &[Inspection]| -> Vec<Value> {
            l.iter()
                .map(|i| {
                    json!({"what": i.what, "at_s": i.at, "took_s": i.took, "exit": i.code,
                       "timed_out": i.timed_out})
                })
                .collect()
        };
        json!({
            "bench": "swarmhub-storage-loss",
            "mode": self.mode.name(),
            "round": self.round,
            "outage_s": self.outage,
            "notebooks": self.notebooks.len(),
            "acked_lines": self.notebooks.iter().map(|n| n.verdict.acked_lines).sum::<usize>(),
            "acked_bytes": self.notebooks.iter().map(|n| n.verdict.acked_bytes).sum::<usize>(),
            "lost_bytes": self.lost_bytes(),
            "write_errors": self.notebooks.iter().map(|n| n.errors.len()).sum::<usize>(),
            "hang_max_s": max(&|n| Some(n.longest_hang())),
            "gap_max_s": max(&|n| Some(n.longest_gap)),
            "call_max_s": max(&|n| Some(n.longest_call)),
            "writes_on_after_restore_max_s": max(&|n| n.writes_on_after_restore),
            "first_ack_after_restore_max_s": max(&|n| n.first_ack_after_restore),
            "needed_restart": self.restarts(),
            "node_ready_after_restore_s": self.node_ready_after_restore,
            "during": inspect(&self.during),
            "after": inspect(&self.after),
        })
    }
}

/// The deployment under test.
struct Deployment {
    swarm: Swarm,
    _registry: Registry,
    config: PathBuf,
    password_file: PathBuf,
    data_dir: PathBuf,
    /// Where the round's outputs are kept (outside the harness, which removes its nodes' data).
    out: PathBuf,
    users: Vec<String>,
    /// The directory nfsd asks for every new volume's owner.
    _slapd: Slapd,
}

impl Deployment {
    fn swarmhub_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let cmd = self.swarm.swarmhub_cmd(&self.config, args);
        let out = run_timeout(cmd, Duration::from_secs(900))?;
        ensure!(
            out.success(),
            "swarmhub {}: {}",
            args.join(" "),
            out.describe()
        );
        Ok(out.stdout)
    }

    /// `swarmhub status` and `swarmhub doctor` as commands (owned, for another thread).
    fn inspect_cmds(&self) -> Vec<(String, Command)> {
        let pw = self.password_file.display().to_string();
        vec![
            (
                "status".into(),
                self.swarm.swarmhub_cmd(&self.config, &["status"]),
            ),
            (
                "doctor".into(),
                self.swarm
                    .swarmhub_cmd(&self.config, &["doctor", "--ldap-password-file", &pw]),
            ),
        ]
    }
}

/// Runs `swarmhub status` / `doctor`, keeps the whole output in `dir` and the lines that matter.
fn inspect(what: &str, cmd: Command, fault_at: f64, dir: &Path, tag: &str) -> Inspection {
    let at = uptime() - fault_at;
    let file = dir.join(format!("{tag}-{what}.txt"));
    let (code, timed_out, took, text) = match run_timeout(cmd, INSPECT_LIMIT) {
        Ok(out) => (
            out.code(),
            out.timed_out,
            out.took.as_secs_f64(),
            format!("{}{}", out.stdout, out.stderr),
        ),
        Err(e) => (
            None,
            false,
            0.0,
            format!("could not run swarmhub {what}: {e:#}"),
        ),
    };
    let _ = std::fs::write(&file, &text);
    let lines = text
        .lines()
        .filter(|l| {
            let l = l.to_lowercase();
            [
                "nfsd", "node", "notebook", "storage", "plugin", "healthy", "problem", "fail",
                "error", "unreach", "down", "lec",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .map(|l| l.chars().take(220).collect())
        .take(40)
        .collect();
    Inspection {
        what: what.into(),
        at,
        took,
        code,
        timed_out,
        lines,
        file,
    }
}

/// The storage node's state (`docker node inspect` on the manager).
fn node_state_cmd(manager: &str, hostname: &str) -> Command {
    let mut c = Command::new(docker_cli());
    c.env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .args(["-H", manager, "node", "inspect", "--format"])
        .arg("{{.Status.State}}/{{.Spec.Availability}}")
        .arg(hostname);
    c
}

/// A notebook of this round.
struct Notebook {
    user: String,
    node: usize,
    service: String,
    file: String,
    tasks_before: Vec<String>,
}

fn service_tasks(swarm: &Swarm, service: &str) -> anyhow::Result<Vec<String>> {
    Ok(swarm
        .docker_ok(1, &["service", "ps", "-q", "--no-trunc", service])?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// The running container of `service` on node `node`.
fn container(swarm: &Swarm, node: usize, service: &str) -> anyhow::Result<String> {
    let out = swarm.docker_ok(
        node,
        &[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={service}"),
        ],
    )?;
    out.lines()
        .next()
        .map(str::to_string)
        .with_context(|| format!("no running container of {service} on node {node}"))
}

/// A writer's acknowledged lines and errors so far (`docker exec cat` in its container).
fn read_logs(swarm: &Swarm, nb: &Notebook) -> anyhow::Result<(Vec<Write>, Vec<Write>)> {
    let c = container(swarm, nb.node, &nb.service)?;
    let out = swarm.docker_timeout(
        nb.node,
        &["exec", &c, "cat", "/tmp/ack.log", "/tmp/err.log"],
        Duration::from_secs(60),
    );
    ensure!(
        out.success(),
        "reading {}'s writer logs on node {}: {}",
        nb.user,
        nb.node,
        out.describe()
    );
    // ack lines have 4+ fields whose 4th is the user; errors carry a message instead
    let all = parse_log(&out.stdout);
    let (acks, errors) = all
        .into_iter()
        .partition(|w| w.text.starts_with(&format!("{} ", nb.user)));
    Ok((acks, errors))
}

/// Deploys the stack as an admin does and returns it.
fn deploy(cfg: &Config) -> anyhow::Result<Deployment> {
    let t = Instant::now();
    ensure_images(&[
        Image::Nfsd,
        Image::Cli,
        Image::Hub,
        Image::NotebookStudent,
        Image::NotebookTeacher,
    ])?;
    println!("images ready in {:.0} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let swarm = Swarm::start_with(SWARM, Options::swarm(3).insecure_registry(REGISTRY_ADDR))?;
    println!(
        "three-node swarm up in {:.0} s (waited for the harness lock too)",
        t.elapsed().as_secs_f64()
    );
    let registry = Registry::start(REGISTRY_ADDR)?;
    let users: Vec<String> = (1..=cfg.notebooks).map(|k| format!("lec{k:02}")).collect();
    let mut ldap_users = vec![TestUser::new("tina", 4201, 4200)];
    for (k, u) in users.iter().enumerate() {
        ldap_users.push(TestUser::new(u, 21001 + u32::try_from(k)?, 4100));
    }
    let members: Vec<&str> = users.iter().map(String::as_str).collect();
    let slapd = Slapd::start_on(
        HOST_IP,
        &ldap_users,
        &[
            TestGroup::new("students", 4100, &members),
            TestGroup::new("teachers", 4200, &["tina"]),
        ],
    )?;
    let dir = Path::new(BASE).join("nodes").join("storage-loss");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let data_dir = dir.join("nfsd-data");
    let config = dir.join("swarmhub.toml");
    std::fs::write(
        &config,
        format!(
            r#"{registry}
{cluster}hub_port = {HUB_PORT}
public_url = "https://{hub_ip}:{HUB_PORT}/"

{ldap}
[hub]
course_owner = "tina"

[timeouts]
service_seconds = 300

[tls]
mode = "files"
cert_file = "tls/hub.pem"
key_file = "tls/hub-key.pem"
"#,
            registry = registry::swarmhub_sections(env!("CARGO_PKG_VERSION")),
            cluster = Swarm::swarmhub_cluster_section(&data_dir),
            hub_ip = swarm.ip(1),
            ldap = slapd.swarmhub_section(HOST_IP, "students", Some("teachers")),
        ),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let d = Deployment {
        swarm,
        _registry: registry,
        config,
        password_file: slapd.reader_password_file()?,
        data_dir,
        out: cfg.out_dir.clone(),
        users,
        _slapd: slapd,
    };
    d.swarm
        .label_node(STORAGE_NODE, "swarmhub.storage", "true")?;
    // as the admin does on the storage node (the CLI makes it only where it runs, the manager)
    std::fs::create_dir_all(&d.data_dir)
        .with_context(|| format!("creating nfsd's data dir {}", d.data_dir.display()))?;
    d.swarmhub_ok(&["tls", "self-signed"])?;
    let t = Instant::now();
    let builder = Builder::start()?;
    d.swarmhub_ok(&["push", "--build-host", &builder.host()])?;
    drop(builder);
    println!("pushed in {:.0} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let pw = d.password_file.display().to_string();
    d.swarmhub_ok(&["run", "--ldap-password-file", &pw])?;
    println!(
        "deployed (swarmhub run) in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    d.swarm.load_busybox(BUSYBOX_IMAGE)?;
    let nfsd = d
        .swarm
        .running_tasks("swarmhub-nfsd")
        .map_err(anyhow::Error::msg)?;
    ensure!(
        nfsd.iter()
            .any(|(n, _)| *n == d.swarm.hostname(STORAGE_NODE)),
        "swarmhub-nfsd runs on {nfsd:?}, not on the storage node {}",
        d.swarm.hostname(STORAGE_NODE)
    );
    Ok(d)
}

/// Starts the round's writers and waits until each has acknowledged lines.
fn start_notebooks(
    d: &Deployment,
    cfg: &Config,
    mode: Mode,
    round: usize,
) -> anyhow::Result<Vec<Notebook>> {
    let mut nbs = Vec::new();
    for (k, user) in d.users.iter().enumerate() {
        let node = NOTEBOOK_NODES[k % NOTEBOOK_NODES.len()];
        let service = format!("sl-{}-r{round}-{user}", mode.name());
        let file = format!("storage-loss-{}-r{round}.log", mode.name());
        d.swarm.docker_ok(
            1,
            &[
                "service",
                "create",
                "--detach",
                "--no-resolve-image",
                "--name",
                &service,
                "--label",
                "swarmhub.component=notebook",
                "--label",
                &format!("swarmhub.user={user}"),
                "--label",
                "swarmhub.role=student",
                "--container-label",
                "swarmhub.component=notebook",
                "--container-label",
                &format!("swarmhub.user={user}"),
                "--constraint",
                &format!("node.hostname=={}", d.swarm.hostname(node)),
                "--mount",
                &format!(
                    "type=volume,source=home-{user},target=/home/jovyan,volume-driver=swarmhub-nfs,volume-opt=user={user}"
                ),
                "--env",
                &format!("NB={user}"),
                "--env",
                &format!("F=/home/jovyan/{file}"),
                BUSYBOX_IMAGE,
                "sh",
                "-c",
                WRITER,
            ],
        )?;
        nbs.push(Notebook {
            user: user.clone(),
            node,
            service,
            file,
            tasks_before: Vec::new(),
        });
    }
    // Swarm places a task only where the manager lists the plugin (refreshed every ~20 s)
    wait_until(
        "every writer running with acknowledged lines",
        Duration::from_secs(300),
        || {
            let mut short = Vec::new();
            for nb in &nbs {
                match read_logs(&d.swarm, nb) {
                    Ok((acks, _)) if acks.len() >= 4 => {}
                    Ok((acks, errs)) => short.push(format!(
                        "{}: {} acked, errors {:?}",
                        nb.user,
                        acks.len(),
                        errs.first().map(|e| e.text.clone())
                    )),
                    Err(e) => short.push(format!("{e:#}")),
                }
            }
            if short.is_empty() {
                Ok(())
            } else {
                Err(short.join("; "))
            }
        },
    )?;
    std::thread::sleep(cfg.warmup);
    for nb in &mut nbs {
        nb.tasks_before = service_tasks(&d.swarm, &nb.service)?;
    }
    Ok(nbs)
}

/// The fault on the storage node.
fn fault(d: &mut Deployment, mode: Mode) -> anyhow::Result<()> {
    match mode {
        Mode::KillDockerd => d.swarm.kill_dockerd(STORAGE_NODE),
        Mode::CutNetwork => link(STORAGE_NODE, "down"),
    }
}

/// Node i's link to the bridge (the bridge side of its veth) up or down.
fn link(i: usize, state: &str) -> anyhow::Result<()> {
    let ns = format!("{}br", SWARM.ns_prefix);
    let dev = format!("n{i}");
    let out = Command::new("ip")
        .args(["-n", &ns, "link", "set", &dev, state])
        .output()
        .context("running ip")?;
    ensure!(
        out.status.success(),
        "ip -n {ns} link set {dev} {state}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn restore(d: &mut Deployment, mode: Mode) -> anyhow::Result<()> {
    match mode {
        Mode::KillDockerd => d.swarm.start_dockerd(STORAGE_NODE).map(|_| ()),
        Mode::CutNetwork => link(STORAGE_NODE, "up"),
    }
}

/// Keeps a writer's log (as the writer wrote it) for the record; a failure only costs the copy.
fn save_log(path: &Path, writes: &[Write]) {
    let text: String = writes
        .iter()
        .map(|w| format!("{} {:.2} {:.2} {}\n", w.seq, w.t0, w.t1, w.text))
        .collect();
    if let Err(e) = std::fs::write(path, text) {
        println!("  (could not keep {}: {e})", path.display());
    }
}

/// One round of one mode.
fn round(d: &mut Deployment, cfg: &Config, mode: Mode, r: usize) -> anyhow::Result<RoundReport> {
    let dir = d.out.join(format!("{}-r{r}", mode.name()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "\n[{}] round {r}: starting {} writers",
        mode.name(),
        d.users.len()
    );
    let nbs = start_notebooks(d, cfg, mode, r)?;
    let cmds = d.inspect_cmds();
    let manager = d.swarm.host(1);
    let storage_host = d.swarm.hostname(STORAGE_NODE);
    let watching = Arc::new(AtomicBool::new(true));
    let states: Arc<Mutex<Vec<(f64, String)>>> = Arc::default();

    println!("[{}] round {r}: fault", mode.name());
    let fault_at = uptime();
    fault(d, mode)?;
    let watcher = {
        let (watching, states) = (watching.clone(), states.clone());
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                let t = uptime() - fault_at;
                let s = match run_timeout(
                    node_state_cmd(&manager, &storage_host),
                    Duration::from_secs(20),
                ) {
                    Ok(o) if o.success() => o.stdout.trim().to_string(),
                    Ok(o) => format!("unknown ({})", o.describe().trim()),
                    Err(e) => format!("unknown ({e:#})"),
                };
                let mut v = states.lock().unwrap_or_else(|e| e.into_inner());
                if v.last().is_none_or(|(_, last)| *last != s) {
                    v.push((t, s));
                }
                drop(v);
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    // status and doctor once the manager can have noticed (a node is Down after ~12 s)
    let inspector = {
        let dir = dir.clone();
        let wait = Duration::from_secs(20).min(cfg.outage / 3);
        std::thread::spawn(move || {
            std::thread::sleep(wait);
            cmds.into_iter()
                .map(|(what, cmd)| {
                    let i = inspect(&what, cmd, fault_at, &dir, "during");
                    println!(
                        "  {what} during the outage: exit {:?} in {:.1} s",
                        i.code, i.took
                    );
                    i
                })
                .collect::<Vec<Inspection>>()
        })
    };
    std::thread::sleep(
        cfg.outage
            .saturating_sub(Duration::from_secs_f64(uptime() - fault_at)),
    );
    println!("[{}] round {r}: restoring the storage node", mode.name());
    restore(d, mode)?;
    let restore_at = uptime();
    let outage = restore_at - fault_at;

    // watch the writers until each writes on steadily (or the limit)
    let steady = cfg.steady.as_secs_f64();
    let mut last: BTreeMap<String, (Vec<Write>, Vec<Write>, f64)> = BTreeMap::new();
    let watch_start = Instant::now();
    loop {
        let mut all_steady = true;
        for nb in &nbs {
            match read_logs(&d.swarm, nb) {
                Ok((acks, errs)) => {
                    let now = uptime();
                    let (_, ok) = steady_since(&acks, restore_at, steady, now);
                    all_steady &= ok;
                    last.insert(nb.user.clone(), (acks, errs, now));
                }
                Err(e) => {
                    all_steady = false;
                    println!("  {e:#}");
                }
            }
        }
        if all_steady || watch_start.elapsed() >= cfg.resume_limit {
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    let ready = d
        .swarm
        .wait_node_status(STORAGE_NODE, "Ready", Duration::from_secs(300));
    let node_ready_after_restore = ready.ok().map(|_| {
        states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .find(|(_, s)| s.starts_with("ready"))
            .map_or(uptime() - restore_at, |(t, _)| t + fault_at - restore_at)
    });
    watching.store(false, Ordering::Relaxed);
    let _ = watcher.join();
    let during = inspector
        .join()
        .map_err(|_| anyhow::anyhow!("the status/doctor thread panicked"))?;
    let after: Vec<Inspection> = d
        .inspect_cmds()
        .into_iter()
        .map(|(what, cmd)| inspect(&what, cmd, fault_at, &dir, "after"))
        .collect();

    let mut notebooks = Vec::new();
    for nb in &nbs {
        let (acks, errors, read_at) = last.remove(&nb.user).unwrap_or_default();
        let tasks = service_tasks(&d.swarm, &nb.service).unwrap_or_default();
        let path = d
            .data_dir
            .join("volumes")
            .join(format!("home-{}", nb.user))
            .join(&nb.file);
        let disk = std::fs::read(&path)
            .with_context(|| format!("reading {}'s file on the storage node", nb.user))?;
        let verdict = verify(&acks, &disk);
        let longest_call = acks
            .iter()
            .chain(&errors)
            .filter(|w| w.t1 >= fault_at - 5.0)
            .map(|w| w.t1 - w.t0)
            .fold(0.0, f64::max);
        let (since, resumed) = steady_since(&acks, restore_at, steady, read_at);
        let longest_gap = gaps(&acks, fault_at, 0.0)
            .iter()
            .map(|g| g.1)
            .chain(acks.last().map(|a| read_at - a.t1))
            .fold(0.0, f64::max);
        save_log(&dir.join(format!("{}-acked.log", nb.user)), &acks);
        save_log(&dir.join(format!("{}-errors.log", nb.user)), &errors);
        let mut hangs: Vec<(f64, f64)> = gaps(&acks, fault_at, HANG_SECS)
            .into_iter()
            .map(|(s, len)| (s - fault_at, len))
            .collect();
        // a hang still going on when the log was read
        if let Some(a) = acks.last()
            && read_at - a.t1 > HANG_SECS
        {
            hangs.push((a.t1 - fault_at, read_at - a.t1));
        }
        notebooks.push(NotebookResult {
            user: nb.user.clone(),
            node: nb.node,
            acked: acks.len(),
            errors: errors
                .iter()
                .filter(|e| e.t1 >= fault_at - 5.0)
                .map(|e| Write {
                    t0: e.t0 - fault_at,
                    t1: e.t1 - fault_at,
                    ..e.clone()
                })
                .collect(),
            longest_call,
            longest_gap,
            hangs,
            first_ack_after_restore: acks
                .iter()
                .find(|a| a.t1 >= restore_at)
                .map(|a| a.t1 - restore_at),
            writes_on_after_restore: since.map(|s| (s - restore_at).max(0.0)),
            resumed,
            task_changed: tasks != nb.tasks_before,
            verdict,
        });
    }
    for nb in &nbs {
        let _ = d.swarm.docker_ok(1, &["service", "rm", &nb.service]);
    }
    let report = RoundReport {
        mode,
        round: r,
        outage,
        node_states: states.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        node_ready_after_restore,
        during,
        after,
        notebooks,
    };
    std::fs::write(dir.join("summary.json"), report.json().to_string())?;
    // the next round starts with nfsd back on the storage node
    wait_until(
        "swarmhub-nfsd running on the storage node again",
        Duration::from_secs(300),
        || {
            let t = d.swarm.running_tasks("swarmhub-nfsd")?;
            t.iter()
                .any(|(_, s)| s.starts_with("Running"))
                .then_some(())
                .ok_or(format!("{t:?}"))
        },
    )?;
    Ok(report)
}

/// Prints the machine and the run's settings.
pub fn print_machine(cfg: &Config) {
    let sh = |c: &str| {
        Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    println!(
        "==== swarmhub-storage-loss ====\ndate {}\nmachine: {} vCPU ({}), {} RAM, kernel {}\ncommit {} (working tree: {})\nmodes {:?}, {} notebooks on nodes {NOTEBOOK_NODES:?}, storage node {STORAGE_NODE}, outage {} s, {} rounds, warm-up {} s, steady {} s, resume limit {} s",
        sh("date -u +%FT%TZ"),
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
        sh("free -h | awk '/Mem:/ {print $2}'"),
        sh("uname -r"),
        sh("git rev-parse --short HEAD 2>/dev/null"),
        sh("git status --short --untracked-files=no | tr '\\n' ' '"),
        cfg.modes.iter().map(|m| m.name()).collect::<Vec<_>>(),
        cfg.notebooks,
        cfg.outage.as_secs(),
        cfg.rounds,
        cfg.warmup.as_secs(),
        cfg.steady.as_secs(),
        cfg.resume_limit.as_secs()
    );
}

/// Deploys once and runs every mode's rounds; the reports of the rounds that ran. A round that
/// fails ends the run with its error after the reports so far were printed.
pub fn run(cfg: &Config) -> anyhow::Result<Vec<RoundReport>> {
    ensure!(cfg.notebooks >= 1, "--notebooks must be at least 1");
    ensure!(!cfg.modes.is_empty(), "no --mode given");
    print_machine(cfg);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut cfg = cfg.clone();
    cfg.out_dir = cfg.out_dir.join(format!("run-{secs}"));
    std::fs::create_dir_all(&cfg.out_dir)
        .with_context(|| format!("creating {}", cfg.out_dir.display()))?;
    println!("outputs in {}", cfg.out_dir.display());
    let cfg = &cfg;
    let mut d = deploy(cfg)?;
    let mut reports = Vec::new();
    for &mode in &cfg.modes {
        for r in 1..=cfg.rounds {
            match round(&mut d, cfg, mode, r) {
                Ok(rep) => {
                    rep.print();
                    reports.push(rep);
                }
                Err(e) => {
                    println!("\n[{}] round {r} FAILED: {e:#}", mode.name());
                    for i in 1..=d.swarm.len() {
                        println!("--- node {i} dockerd log ---\n{}", d.swarm.log_tail(i, 15));
                    }
                    summary(&reports);
                    bail!("{} round {r}: {e:#}", mode.name());
                }
            }
        }
    }
    summary(&reports);
    Ok(reports)
}

/// One line per round.
pub fn summary(reports: &[RoundReport]) {
    println!("\n==== summary ====");
    println!(
        "{:<13} {:>5} {:>7} {:>6} {:>9} {:>9} {:>10} {:>7} {:>8} {:>11}",
        "mode",
        "round",
        "outage",
        "errors",
        "gap_max",
        "writes_on",
        "acked_B",
        "lost_B",
        "restarts",
        "status/doc"
    );
    for r in reports {
        let j = r.json();
        let codes: Vec<String> = r
            .during
            .iter()
            .map(|i| i.code.map_or("T/O".into(), |c| c.to_string()))
            .collect();
        println!(
            "{:<13} {:>5} {:>7.0} {:>6} {:>9} {:>9} {:>10} {:>7} {:>8} {:>11}",
            r.mode.name(),
            r.round,
            r.outage,
            j["write_errors"],
            opt(j["gap_max_s"].as_f64()),
            opt(j["writes_on_after_restore_max_s"].as_f64()),
            j["acked_bytes"],
            r.lost_bytes(),
            r.restarts(),
            codes.join("/")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: u64, t1: f64, user: &str) -> Write {
        Write {
            seq,
            t0: t1 - 0.01,
            t1,
            text: format!("{user} {seq:08} {:.2}", t1 - 0.01),
        }
    }

    #[test]
    fn logs_parse_and_a_torn_last_line_is_left_out() {
        let text = "1 100.10 100.12 lec01 00000001 100.10\n2 100.70 101.00 dd: can't open '/home/jovyan/x': Transport endpoint is not connected \n3 101.5";
        let v = parse_log(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].text, "lec01 00000001 100.10");
        assert_eq!(v[0].t1, 100.12);
        assert!(v[1].text.ends_with("not connected"), "{:?}", v[1].text);
    }

    #[test]
    fn every_acknowledged_line_must_be_on_disk_in_order() {
        let acks: Vec<Write> = (1u32..=4)
            .map(|i| ack(u64::from(i), f64::from(i), "lec01"))
            .collect();
        let disk: String = acks.iter().map(|a| format!("{}\n", a.text)).collect();
        let v = verify(&acks, disk.as_bytes());
        assert_eq!((v.lost_lines, v.lost_bytes, v.unacked_lines), (0, 0, 0));
        assert_eq!(v.acked_bytes, disk.len());
        // lines after the last acknowledged one were written after the log was read
        let v = verify(&acks[..3], disk.as_bytes());
        assert_eq!((v.lost_lines, v.unacked_lines, v.later_lines), (0, 0, 1));

        // an unacknowledged line that landed is fine; a missing acknowledged one is lost
        let disk2 = format!(
            "{}\n{}\nlec01 00000099 9.99\n{}\n",
            acks[0].text, acks[1].text, acks[3].text
        );
        let v = verify(&acks, disk2.as_bytes());
        assert_eq!(v.lost_lines, 1);
        assert_eq!(v.lost_bytes, acks[2].text.len() + 1);
        assert_eq!(v.first_lost.as_deref(), Some(acks[2].text.as_str()));
        assert_eq!(v.unacked_lines, 1);

        // out of order counts as lost; a torn (partial) line does not match
        let disk3 = format!("{}\n{}\n", acks[1].text, &acks[0].text[..5]);
        let v = verify(&acks[..2], disk3.as_bytes());
        assert_eq!(v.lost_lines, 1);
    }

    #[test]
    fn hangs_and_the_moment_writes_go_on() {
        // lines every 0.5 s, a 30 s hang from 10 to 40, then lines again
        let mut acks: Vec<Write> = (0u32..=20)
            .map(|i| ack(u64::from(i), f64::from(i) * 0.5, "a"))
            .collect();
        for k in 0u32..40 {
            acks.push(ack(21 + u64::from(k), 40.0 + f64::from(k) * 0.5, "a"));
        }
        let g = gaps(&acks, 5.0, HANG_SECS);
        assert_eq!(g.len(), 1);
        assert!((g[0].0 - 10.0).abs() < 1e-9 && (g[0].1 - 30.0).abs() < 1e-9);
        // restored at 35: writes went on at 40, and 19.5 s of lines followed
        assert_eq!(steady_since(&acks, 35.0, 10.0, 60.0), (Some(40.0), true));
        assert_eq!(steady_since(&acks, 35.0, 30.0, 60.0), (Some(40.0), false));
        // read long after the newest line: hanging right now
        assert_eq!(steady_since(&acks, 35.0, 10.0, 70.0), (Some(40.0), false));
        // restored at 45, after the hang: writes were going on (from the first line after 45)
        let (s, ok) = steady_since(&acks, 45.0, 5.0, 60.0);
        assert!(ok && (s.unwrap() - 45.0).abs() < 1e-9);
        // nothing after the restore: not resumed
        assert_eq!(steady_since(&acks, 100.0, 1.0, 101.0), (None, false));
    }
}
