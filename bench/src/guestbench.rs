//! The guest benchmark behind `swarmhub-guest-bench`: swarmhub-nfsd against nfs-ganesha as the **Linux kernel NFS client**
//! sees them. One qemu guest (`tests/guest/`, software-emulated, 1 vCPU) mounts both servers at
//! once (nfsd at `/mnt/a`, ganesha at `/mnt/b`, both `vers=3,proto=tcp,nolock,hard`, the same
//! options as `tests/guest/guest-init.sh`) and runs the same workload against each, alternating
//! which server goes first every round:
//!
//! 1. `create`: mkdir, then 1000 files of 4 KiB (the shell's builtin `printf` into each file, so
//!    no fork per file; the client flushes and commits each file on close);
//! 2. `rename`: `mv f$i g$i` for each (one `mv` process per file);
//! 3. `remove`: one `rm` of all 1000, then `rmdir`;
//! 4. `write`: `dd if=/dev/zero bs=1M count=256 conv=fsync`;
//! 5. `read`: `drop_caches`, then `dd of=/dev/null bs=1M` of that file (removed afterwards).
//!
//! Every step is timed with the guest clock (`/proc/uptime`, 10 ms resolution; busybox `date`
//! has no `%N`) and reported as `TIME <server> <round> <step> <seconds>`. The host prints a
//! markdown table: per step and server the median over the rounds and every round's value, the
//! ratio ganesha/nfsd (> 1: nfsd is faster) and a total line, with the machine, the commit and
//! the exact command. Once, the three file steps also run on the guest's own initramfs: that is
//! the shell and fork cost contained in every NFS figure (TCG makes forks slow).
//!
//! Both servers keep their data under the same work dir on the host (`--work-dir`). Runs as root
//! (nfsd sets owners; ganesha and the guest image build need it), takes the guest lock
//! (`/tmp/swarmhub-kernel-client.lock`, shared with the kernel-client tests) and builds the guest
//! image when needed (`tests/guest/build-guest.sh`). Exits 0 when every step of every round has
//! a time, 1 when the guest reported a failure or a time is missing, 2 when the run could not be
//! set up.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use swarmhub_tests::guest::{self, Ganesha, GuestRun};
use swarmhub_tests::nfsd::{self, Nfsd};

use crate::servers;

/// What to run; the binary's flags.
#[derive(Debug, Clone)]
pub struct GuestBenchConfig {
    /// Rounds; each runs the workload once against each server, the first server alternating.
    pub rounds: u32,
    /// The swarmhub-nfsd binary to measure (default: the workspace's release build, then debug).
    pub nfsd_bin: Option<PathBuf>,
    /// `cargo build --release -p swarmhub-nfsd` first (ignored with `nfsd_bin`).
    pub build: bool,
    /// Host-side limit for the whole guest run, seconds (default: 300 + 200 per round).
    pub timeout: Option<u32>,
    /// Parent of the run's temp dir (both servers' data live there, on one file system).
    pub work_dir: PathBuf,
    /// Also write the markdown report here.
    pub out: Option<PathBuf>,
    /// Keep the temp dir (it is kept anyway when the run fails).
    pub keep: bool,
}

/// The steps, in order: (id in TIME lines, label in the table).
const STEPS: [(&str, &str); 5] = [
    ("create", "create 1000 files × 4 KiB"),
    ("rename", "rename 1000 (`mv` each)"),
    ("remove", "remove 1000 (`rm`) + rmdir"),
    ("write", "dd write 256 MiB, conv=fsync"),
    ("read", "dd read 256 MiB, cold cache"),
];
const SERVERS: [&str; 2] = ["nfsd", "ganesha"];
/// The guest's own initramfs: the reference for the shell's cost (file steps, round 1 only).
const LOCAL: &str = "local";

/// The guest script (busybox sh, run as root with cwd /). Parameters come as `GB_*` variables.
const GUEST_SCRIPT: &str = r#"
# swarmhub-guest-bench workload (bench/src/bin/swarmhub-guest-bench.rs)
FILES=1000
MIB=256
SRV=10.0.2.2
failed=0
fail() { echo "FAIL $*"; failed=1; }
# centiseconds since boot without a fork: /proc/uptime is "SECONDS.CC IDLE"
now() { read _up _idle </proc/uptime; NOW=$(( ${_up%.*} * 100 + 1${_up#*.} - 100 )); }
# report SERVER ROUND STEP START_CS
report() { now; _d=$((NOW - $4)); printf 'TIME %s %s %s %d.%02d\n' "$1" "$2" "$3" $((_d / 100)) $((_d % 100)); }
# 4096 bytes in a variable: written by the builtin printf, no fork per file
BLOB=x; _i=0; while [ $_i -lt 12 ]; do BLOB=$BLOB$BLOB; _i=$((_i + 1)); done

mount_one() { # NAME MOUNTPOINT NFS_PORT MOUNT_PORT EXPORT
    mkdir -p "$2"
    _o="vers=3,proto=tcp,port=$3,mountport=$4,mountproto=tcp,nolock,hard,addr=$SRV"
    if ! _out=$(mount -t nfs -o "$_o" "$SRV:$5" "$2" 2>&1); then
        echo "FAIL mount $1: mount -t nfs -o $_o $SRV:$5 $2: $_out"; dmesg | tail -n 10; exit 3
    fi
    echo "MOUNT $1 $(grep " $2 nfs " /proc/mounts | cut -d' ' -f4)"
}

file_steps() { # SERVER DIR ROUND
    s=$1 d=$2 r=$3
    now; t=$NOW
    mkdir "$d" || { fail "$s $r create: mkdir $d failed"; return 1; }
    i=1
    while [ $i -le $FILES ]; do
        printf '%s' "$BLOB" >"$d/f$i" || { fail "$s $r create: writing $d/f$i failed"; return 1; }
        i=$((i + 1))
    done
    report $s $r create $t
    # the builtin's close is not checked by the shell: check every size instead (not timed)
    n=$(ls -ln "$d" | awk '$5 == 4096 { n++ } END { print n + 0 }')
    [ "$n" -eq $FILES ] || { fail "$s $r create: $n of $FILES files have 4096 bytes"; return 1; }
    now; t=$NOW
    i=1
    while [ $i -le $FILES ]; do
        mv "$d/f$i" "$d/g$i" || { fail "$s $r rename: mv $d/f$i $d/g$i failed"; return 1; }
        i=$((i + 1))
    done
    report $s $r rename $t
    now; t=$NOW
    rm -- "$d"/g* || { fail "$s $r remove: rm failed"; return 1; }
    rmdir "$d" || { fail "$s $r remove: rmdir $d failed (not empty?)"; return 1; }
    report $s $r remove $t
}

big_steps() { # SERVER FILE ROUND
    s=$1 f=$2 r=$3
    now; t=$NOW
    dd if=/dev/zero of="$f" bs=1M count=$MIB conv=fsync 2>/tmp/dd.err \
        || { fail "$s $r write: dd: $(cat /tmp/dd.err)"; return 1; }
    report $s $r write $t
    sync; echo 3 >/proc/sys/vm/drop_caches
    now; t=$NOW
    dd if="$f" of=/dev/null bs=1M 2>/tmp/dd.err || { fail "$s $r read: dd: $(cat /tmp/dd.err)"; return 1; }
    report $s $r read $t
    # busybox dd prints records only ("256+0 records in"), no byte count
    grep -q "^$MIB+0 records in" /tmp/dd.err \
        || { fail "$s $r read: expected $MIB MiB, dd said: $(cat /tmp/dd.err | tr '\n' ' ')"; return 1; }
    rm "$f" || { fail "$s $r read: rm $f failed"; return 1; }
}

bench() { # SERVER MOUNTPOINT ROUND
    echo "INFO round $3: $1"
    file_steps $1 "$2/guestbench-$3" $3 && big_steps $1 "$2/guestbench-$3.big" $3 \
        || rm -rf "$2/guestbench-$3" "$2/guestbench-$3.big"
}

echo "INFO guest: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) vCPU, $(awk '/^MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB RAM"
mount_one nfsd /mnt/a "$GB_NFSD_PORT" "$GB_NFSD_PORT" "$GB_NFSD_EXPORT"
mount_one ganesha /mnt/b "$GB_G_PORT" "$GB_G_MOUNT_PORT" "$GB_G_EXPORT"
file_steps local /tmp/guestbench-local 1 || rm -rf /tmp/guestbench-local
r=1
while [ $r -le "$GB_ROUNDS" ]; do
    if [ $((r % 2)) -eq 1 ]; then
        bench nfsd /mnt/a $r; bench ganesha /mnt/b $r
    else
        bench ganesha /mnt/b $r; bench nfsd /mnt/a $r
    fi
    r=$((r + 1))
done
cd /
umount /mnt/a || fail "umount /mnt/a (nfsd) failed"
umount /mnt/b || fail "umount /mnt/b (ganesha) failed"
exit $failed
"#;

/// Sets up, runs the guest, reports. `Ok(false)`: the guest failed or a time is missing.
pub fn run(a: &GuestBenchConfig) -> Result<bool> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    ensure!(
        euid == 0,
        "swarmhub-guest-bench must run as root (euid is {euid}): nfsd sets file owners, and \
         nfs-ganesha and the guest image build (tests/guest/build-guest.sh) need root"
    );
    ensure!(a.rounds >= 1, "--rounds must be at least 1");
    let command = shell_command_line();
    let nfsd_bin = match &a.nfsd_bin {
        Some(p) => {
            ensure!(p.is_file(), "--nfsd-bin {} is not a file", p.display());
            p.clone()
        }
        None if a.build => nfsd::build_workspace_bin("swarmhub-nfsd", "swarmhub-nfsd", true)?,
        None => nfsd::workspace_bin_prefer("swarmhub-nfsd", true)
            .context("no swarmhub-nfsd binary (pass --nfsd-bin PATH or --build)")?,
    };
    let nfsd_version = Command::new(&nfsd_bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .with_context(|| format!("running {} --version", nfsd_bin.display()))?;

    std::fs::create_dir_all(&a.work_dir)
        .with_context(|| format!("creating the work dir {}", a.work_dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("swarmhub-guest-bench.")
        .tempdir_in(&a.work_dir)
        .with_context(|| format!("creating a temp dir in {}", a.work_dir.display()))?;
    let work = tmp.path().to_path_buf();
    // run-guest.sh's per-run dir (live result.log, logs kept on failure) goes into our work dir
    let log_dir = std::env::var_os("SWARMHUB_GUEST_LOGDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| work.clone());
    if std::env::var_os("SWARMHUB_GUEST_LOGDIR").is_none() {
        // SAFETY: nothing else runs yet: this process has no other thread here.
        unsafe { std::env::set_var("SWARMHUB_GUEST_LOGDIR", &work) };
    }

    eprintln!(
        "guest-bench: taking the guest lock /tmp/swarmhub-kernel-client.lock (waits while another guest runs)"
    );
    let _lock = guest::lock();
    eprintln!("guest-bench: checking the guest image (tests/guest/build-guest.sh)");
    std::panic::catch_unwind(guest::ensure_built)
        .map_err(|_| anyhow::anyhow!("the guest image could not be built (message above)"))?;

    let nfsd = start_nfsd(&nfsd_bin, &work)?;
    let nfsd_export = nfsd
        .export("guestbench")
        .context("asking nfsd for the export path of volume guestbench")?;
    let ganesha = start_ganesha(&work)?;
    eprintln!(
        "guest-bench: nfsd {} on 127.0.0.1:{} ({}), ganesha on 127.0.0.1:{} (MOUNT {}), export {}",
        nfsd_bin.display(),
        nfsd.nfs.port(),
        nfsd_version,
        ganesha.port,
        ganesha.port + 1,
        ganesha.dir.display()
    );

    let timeout = a.timeout.unwrap_or(300 + 200 * a.rounds);
    let mut run = GuestRun::script(
        "guestbench",
        GUEST_SCRIPT,
        nfsd.nfs.port(),
        nfsd.nfs.port(),
        "",
    )
    .env("GB_ROUNDS", a.rounds.to_string())
    .env("GB_NFSD_PORT", nfsd.nfs.port().to_string())
    .env("GB_NFSD_EXPORT", nfsd_export)
    .env("GB_G_PORT", ganesha.port.to_string())
    .env("GB_G_MOUNT_PORT", (ganesha.port + 1).to_string())
    .env("GB_G_EXPORT", ganesha.export_path());
    run.mount = false;
    run.timeout_s = timeout;
    eprintln!(
        "guest-bench: booting the guest ({} rounds, timeout {timeout} s; TCG, so this takes minutes)",
        a.rounds
    );
    let result = run_guest(&run, &work, &log_dir)?;
    drop(ganesha);
    drop(nfsd);

    let times = Times::parse(&result.output);
    let missing = times.missing(a.rounds);
    let fails: Vec<&str> = result
        .output
        .lines()
        .filter(|l| l.starts_with("FAIL ") || l.starts_with("run-guest: FAIL"))
        .collect();
    let meta = Meta {
        command,
        machine: machine_line(&a.work_dir),
        nfsd: format!("{} ({nfsd_version})", nfsd_bin.display()),
        guest: result
            .output
            .lines()
            .find_map(|l| l.strip_prefix("INFO guest: "))
            .unwrap_or("?")
            .to_owned(),
        mounts: result
            .output
            .lines()
            .filter_map(|l| l.strip_prefix("MOUNT "))
            .map(str::to_owned)
            .collect(),
        wall: result.wall,
        rounds: a.rounds,
    };
    let md = render(&times, &meta, &missing, &fails);
    println!("{md}");
    if let Some(out) = &a.out {
        std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
    }
    let ok = result.code == Some(0) && missing.is_empty() && fails.is_empty();
    if !ok {
        eprintln!(
            "guest-bench: FAILED (run-guest exit {:?}; 1 = a step failed, 240-245 = harness, see \
             tests/guest/README.md); {} time(s) missing. Full guest output:\n{}",
            result.code,
            missing.len(),
            result.output
        );
        let kept = tmp.keep();
        eprintln!("guest-bench: work dir kept in {}", kept.display());
    } else if a.keep {
        let kept = tmp.keep();
        eprintln!("guest-bench: work dir kept in {}", kept.display());
    }
    Ok(ok)
}

/// swarmhub-nfsd over `work/nfsd-data` with one volume, `guestbench`.
fn start_nfsd(bin: &Path, work: &Path) -> Result<Nfsd> {
    let data = work.join("nfsd-data");
    let n = servers::start_nfsd(bin, &data, &[])
        .with_context(|| format!("starting {} over {}", bin.display(), data.display()))?;
    servers::create_volume(&n, "guestbench", "guestbench", 20010, 20000)
        .context("creating nfsd volume guestbench")?;
    Ok(n)
}

/// nfs-ganesha exporting `work/ganesha-export` (root-owned; ganesha does not squash root).
fn start_ganesha(work: &Path) -> Result<Ganesha> {
    let export = work.join("ganesha-export");
    std::fs::create_dir_all(&export).with_context(|| format!("creating {}", export.display()))?;
    Ganesha::start_in(&export, &work.join("ganesha-state"))
        .context("starting nfs-ganesha (tests/guest/ganesha.sh)")
}

/// Runs the guest, echoing its TIME/FAIL/INFO/MOUNT lines to stderr as they arrive.
fn run_guest(run: &GuestRun, work: &Path, log_dir: &Path) -> Result<guest::GuestResult> {
    let started = Instant::now();
    let mut guest = run
        .spawn(Some(work))
        .context("starting tests/guest/run-guest.sh")?;
    let progress = |l: &str| {
        ["TIME ", "FAIL ", "INFO ", "MOUNT "]
            .iter()
            .any(|p| l.starts_with(p))
    };
    // lines of result.log read so far, and how many of them were progress lines
    let (mut read, mut shown) = (0, 0);
    loop {
        let done = guest.try_wait()?.is_some();
        if let Some(text) = live_result_log(log_dir) {
            let complete = text.rfind('\n').map_or(0, |i| i + 1);
            for line in text[..complete].lines().skip(read) {
                read += 1;
                let line = line.trim_end_matches('\r');
                if progress(line) {
                    shown += 1;
                    eprintln!("guest-bench: [{:>4} s] {line}", started.elapsed().as_secs());
                }
            }
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let result = guest.finish().context("waiting for run-guest.sh")?;
    // the last lines may have come after the last look (run-guest.sh removes its run dir on
    // success); the output has the same progress lines in the same order
    for l in result.output.lines().filter(|l| progress(l)).skip(shown) {
        eprintln!("guest-bench: [{:>4} s] {l}", started.elapsed().as_secs());
    }
    for l in result
        .output
        .lines()
        .filter(|l| l.starts_with("run-guest: "))
    {
        eprintln!("guest-bench: {l}");
    }
    Ok(result)
}

/// The live `result.log` of the run dir run-guest.sh made under `log_dir` (gone after success).
fn live_result_log(log_dir: &Path) -> Option<String> {
    let dir = std::fs::read_dir(log_dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("swarmhub-guest.")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())?;
    std::fs::read_to_string(dir.path().join("result.log")).ok()
}

/// `TIME server round step seconds` lines: (server, step) → round → seconds.
struct Times(BTreeMap<(String, String), BTreeMap<u32, f64>>);

impl Times {
    fn parse(output: &str) -> Times {
        let mut m: BTreeMap<(String, String), BTreeMap<u32, f64>> = BTreeMap::new();
        for l in output.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if let ["TIME", server, round, step, secs] = f.as_slice()
                && let (Ok(round), Ok(secs)) = (round.parse::<u32>(), secs.parse::<f64>())
            {
                m.entry(((*server).to_owned(), (*step).to_owned()))
                    .or_default()
                    .insert(round, secs);
            }
        }
        Times(m)
    }

    fn get(&self, server: &str, step: &str, round: u32) -> Option<f64> {
        self.0
            .get(&(server.to_owned(), step.to_owned()))
            .and_then(|r| r.get(&round))
            .copied()
    }

    /// The per-round values of a server and step, round 1 first (None: missing).
    fn rounds(&self, server: &str, step: &str, rounds: u32) -> Vec<Option<f64>> {
        (1..=rounds).map(|r| self.get(server, step, r)).collect()
    }

    /// Per-round totals over all steps (None when a step of that round is missing).
    fn totals(&self, server: &str, rounds: u32) -> Vec<Option<f64>> {
        (1..=rounds)
            .map(|r| STEPS.iter().map(|(s, _)| self.get(server, s, r)).sum())
            .collect()
    }

    /// `server round step` of every expected time that is not there.
    fn missing(&self, rounds: u32) -> Vec<String> {
        let mut v = Vec::new();
        for server in SERVERS {
            for r in 1..=rounds {
                for (step, _) in STEPS {
                    if self.get(server, step, r).is_none() {
                        v.push(format!("{server} {r} {step}"));
                    }
                }
            }
        }
        v
    }
}

/// The median of the values that are there (None if any is missing).
fn median(values: &[Option<f64>]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().collect::<Option<_>>()?;
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// What the report says besides the times.
struct Meta {
    command: String,
    machine: String,
    nfsd: String,
    guest: String,
    mounts: Vec<String>,
    wall: Duration,
    rounds: u32,
}

/// One table row: the medians of nfsd's and ganesha's rounds (bold for the total), their ratio,
/// then every round of each.
fn row(label: &str, n: &[Option<f64>], g: &[Option<f64>], bold: bool) -> String {
    let (mn, mg) = (median(n), median(g));
    let b = if bold { "**" } else { "" };
    format!(
        "| {label} | {b}{}{b} | {b}{}{b} | {b}{}{b} | {} | {} |",
        secs(mn),
        secs(mg),
        ratio(mg, mn),
        list(n),
        list(g)
    )
}

/// Every round's value, in order.
fn list(v: &[Option<f64>]) -> String {
    v.iter().map(|x| secs(*x)).collect::<Vec<_>>().join(" / ")
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |x| format!("{x:.2}"))
}

fn ratio(ganesha: Option<f64>, nfsd: Option<f64>) -> String {
    match (ganesha, nfsd) {
        (Some(g), Some(n)) if n > 0.0 => format!("{:.2}", g / n),
        _ => "—".to_owned(),
    }
}

fn render(t: &Times, m: &Meta, missing: &[String], fails: &[&str]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Kernel NFS client (qemu guest): swarmhub-nfsd vs nfs-ganesha\n"
    );
    let _ = writeln!(s, "- command: `{}`", m.command);
    let _ = writeln!(s, "- machine: {}", m.machine);
    let _ = writeln!(s, "- nfsd: {}", m.nfsd);
    let _ = writeln!(
        s,
        "- guest: {}, TCG; {} round(s), order per round: odd nfsd then ganesha, even ganesha \
         then nfsd; guest run {:.0} s (host wall)",
        m.guest,
        m.rounds,
        m.wall.as_secs_f64()
    );
    for mount in &m.mounts {
        let (name, opts) = mount.split_once(' ').unwrap_or((mount, ""));
        let _ = writeln!(s, "- mount {name}: `{opts}`");
    }
    let _ = writeln!(
        s,
        "\nSeconds (guest clock, 10 ms resolution); median over the rounds, then each round \
         (round 1 first). ratio = ganesha / nfsd: > 1 means nfsd is faster.\n"
    );
    let _ = writeln!(
        s,
        "| step | nfsd | ganesha | ratio | nfsd rounds | ganesha rounds |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---|---|");
    for (step, label) in STEPS {
        let (n, g) = (
            t.rounds("nfsd", step, m.rounds),
            t.rounds("ganesha", step, m.rounds),
        );
        let _ = writeln!(s, "{}", row(label, &n, &g, false));
    }
    let (n, g) = (t.totals("nfsd", m.rounds), t.totals("ganesha", m.rounds));
    let _ = writeln!(
        s,
        "{}",
        row("**total** (per round, then median)", &n, &g, true)
    );
    let local: Vec<String> = STEPS[..3]
        .iter()
        .map(|(step, _)| format!("{step} {} s", secs(t.get(LOCAL, step, 1))))
        .collect();
    let _ = writeln!(
        s,
        "\nThe same file steps on the guest's own initramfs (no NFS; the shell's and the forks' \
         share of each figure above): {}.",
        local.join(", ")
    );
    if !missing.is_empty() {
        let _ = writeln!(s, "\n**Missing times:** {}", missing.join(", "));
    }
    if !fails.is_empty() {
        let _ = writeln!(s, "\n**Failures:**\n");
        for f in fails {
            let _ = writeln!(s, "    {f}");
        }
    }
    s
}

/// CPU model, nproc, RAM, host kernel, work dir file system, date, commit.
fn machine_line(work_dir: &Path) -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned());
    let date = output_of(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let root = guest::repo_root();
    let rev =
        output_of(
            Command::new("git")
                .arg("-C")
                .arg(&root)
                .args(["rev-parse", "--short", "HEAD"]),
        );
    let dirty = !output_of(Command::new("git").arg("-C").arg(&root).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))
    .is_empty();
    format!(
        "{}; host kernel {kernel}; {date}; git {rev}{}",
        crate::machine_description(work_dir),
        if dirty { " (work tree modified)" } else { "" }
    )
}

/// A command's trimmed stdout, or "?" when it cannot run.
fn output_of(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "?".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}

/// This process's command line, quoted for a shell.
fn shell_command_line() -> String {
    std::env::args()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_and_finds_missing_ones() {
        let out = "INFO x\nTIME nfsd 1 create 1.50\nTIME ganesha 1 create 3.00\nTIME nfsd 2 create 2.50\n\
                   garbage TIME\nTIME nfsd x create 1\n";
        let t = Times::parse(out);
        assert_eq!(t.get("nfsd", "create", 1), Some(1.5));
        assert_eq!(t.get("nfsd", "create", 2), Some(2.5));
        assert_eq!(median(&t.rounds("nfsd", "create", 2)), Some(2.0));
        assert_eq!(median(&t.rounds("ganesha", "create", 2)), None);
        assert_eq!(ratio(Some(3.0), Some(1.5)), "2.00");
        let missing = t.missing(1);
        assert!(missing.contains(&"nfsd 1 rename".to_owned()));
        assert!(!missing.contains(&"nfsd 1 create".to_owned()));
        assert_eq!(missing.len(), 2 * STEPS.len() - 2);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[Some(3.0), Some(1.0), Some(2.0)]), Some(2.0));
        assert_eq!(median(&[Some(4.0), Some(1.0)]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
