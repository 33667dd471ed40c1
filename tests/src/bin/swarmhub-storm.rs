//! `swarmhub-storm`: the lecture-start benchmark (issue 15). On the three-node swarm harness,
//! with a real slapd holding the students, the real hub, nfsd and plugin deployed by the CLI
//! from the harness's registry, N students log in within W seconds ([`swarmhub_tests::storm`])
//! — first with nothing on disk (cold), then again with their volumes made (warm) — once with
//! the swarmhub volumes and once with Docker `local` volumes (`hub.volumes = "local"`) as the
//! baseline, in the same run and harness. Prints every student's figures, each storm's
//! summary and the swarmhub/local ratios. A figure, never a pass/fail: the exit code is 0
//! when the benchmark ran, whatever the storms did.
//!
//! Before the measured storms a warm-up storm of a few students (not counted) starts the
//! notebook image once on the nodes, so that the first measured storm does not pay for cold
//! page caches alone.
//!
//! Needs what the e2e test needs (root, docker.io, slapd, docker-registry, fuse3, curl) and the
//! images, built by the test builder when missing. Run it with
//! `cargo run --release -p swarmhub-tests --bin swarmhub-storm -- --students 40`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use swarmhub_tests::builder::Builder;
use swarmhub_tests::docker::Out;
use swarmhub_tests::hub::{self, wait_login_page};
use swarmhub_tests::images::{Image, ensure_images};
use swarmhub_tests::registry::{self, REGISTRY_ADDR, Registry};
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};
use swarmhub_tests::storm::{self, Plan, Report, Student};
use swarmhub_tests::swarm::{BASE, HOST_IP, Options, SWARM, Swarm};

const HUB_PORT: u16 = 8000;
const NFSD_API_PORT: u16 = 8049;

#[derive(Debug, Parser)]
#[command(about = "Lecture start: N students log in at once on the three-node swarm harness")]
struct Args {
    /// Students per storm.
    #[arg(long, default_value_t = 40)]
    students: usize,
    /// Logins start evenly over this many seconds (0: all at once).
    #[arg(long, default_value_t = 0)]
    within: u64,
    /// Rounds; each has its own students (cold storms need students without volumes).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Seconds one student may take from login to a saved notebook.
    #[arg(long, default_value_t = 600)]
    limit: u64,
    /// Students of the warm-up storm (not counted; 0: none).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Which volumes: swarmhub, local or both.
    #[arg(long, default_value = "both")]
    volumes: String,
    /// A `[hub]` setting for the whole run, KEY=VALUE as in swarmhub.toml (repeatable), e.g.
    /// `concurrent_spawn_limit=20` or `mem_limit="1G"`.
    #[arg(long = "hub-setting", value_name = "KEY=VALUE")]
    hub_settings: Vec<String>,
}

/// The deployment under test.
struct Bench {
    swarm: Swarm,
    _registry: Registry,
    config: PathBuf,
    password_file: PathBuf,
    dir: PathBuf,
    base_url: String,
    hub_env: Vec<(String, String)>,
}

impl Bench {
    /// `swarmhub ARGS` against the manager with the run's `[hub]` settings (and `volumes`).
    fn swarmhub(&self, args: &[&str], volumes: Option<&str>) -> anyhow::Result<String> {
        let mut cmd = self.swarm.swarmhub_cmd(&self.config, args);
        cmd.envs(self.hub_env.iter().map(|(k, v)| (k, v)));
        if let Some(v) = volumes {
            cmd.env("SWARMHUB_HUB_VOLUMES", v);
        }
        let out: Out = swarmhub_tests::docker::run_timeout(cmd, Duration::from_secs(900))?;
        ensure!(
            out.success(),
            "swarmhub {}: {}",
            args.join(" "),
            out.describe()
        );
        Ok(out.stdout)
    }

    /// The hub with `hub.volumes = volumes`, its login page answering.
    fn hub_with(&self, volumes: &str) -> anyhow::Result<()> {
        self.swarmhub(&["hub", "run"], Some(volumes))?;
        wait_login_page(&self.base_url)?;
        Ok(())
    }

    fn storm(&self, label: &str, students: &[Student], args: &Args) -> anyhow::Result<Report> {
        let plan = Plan {
            label: label.to_string(),
            students: students.to_vec(),
            within: Duration::from_secs(args.within),
            limit: Duration::from_secs(args.limit),
            nfsd_api: format!("http://{}:{NFSD_API_PORT}", self.swarm.ip(1)),
        };
        let dir = self.dir.join(label.replace(' ', "-"));
        let report = storm::run(&self.swarm, &self.base_url, &dir, &plan)?;
        report.print();
        let t = Instant::now();
        storm::stop_all(&self.base_url, &dir, students)?;
        println!(
            "(all {} servers stopped in {:.1} s)",
            students.len(),
            t.elapsed().as_secs_f64()
        );
        Ok(report)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        matches!(args.volumes.as_str(), "swarmhub" | "local" | "both"),
        "--volumes must be swarmhub, local or both"
    );
    let mut hub_env = Vec::new();
    for s in &args.hub_settings {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--hub-setting {s}: expected KEY=VALUE"))?;
        hub_env.push((
            format!("SWARMHUB_HUB_{}", k.trim().to_uppercase()),
            v.trim().to_string(),
        ));
    }
    print_machine(&args);

    let t = Instant::now();
    ensure_images(&[
        Image::Nfsd,
        Image::Cli,
        Image::Hub,
        Image::NotebookStudent,
        Image::NotebookTeacher,
    ])?;
    println!("images ready in {:.0} s", t.elapsed().as_secs_f64());
    let swarm = Swarm::start_with(SWARM, Options::swarm(3).insecure_registry(REGISTRY_ADDR))?;
    let registry = Registry::start(REGISTRY_ADDR)?;

    // students: per round one set for each volume kind, and the warm-up set
    let kinds: Vec<&str> = match args.volumes.as_str() {
        "both" => vec!["swarmhub", "local"],
        one => vec![one],
    };
    let mut sets: Vec<(String, Vec<Student>)> = Vec::new();
    let mut users = vec![TestUser::new("tina", 4201, 4200)];
    let mut uid = 20000;
    let mut add_set = |label: String, prefix: &str, n: usize, users: &mut Vec<TestUser>| {
        let set: Vec<Student> = (1..=n)
            .map(|i| {
                uid += 1;
                let u = TestUser::new(&format!("{prefix}{i:02}"), uid, 4100);
                let st = Student {
                    name: u.name.clone(),
                    password: u.password.clone(),
                };
                users.push(u);
                st
            })
            .collect();
        sets.push((label, set));
    };
    add_set("warm-up".into(), "w", args.warmup, &mut users);
    for r in 1..=args.rounds {
        // rounds alternate which volume kind goes first
        let mut order = kinds.clone();
        if r % 2 == 0 {
            order.reverse();
        }
        for kind in &order {
            add_set(
                format!("{kind} r{r}"),
                &format!("r{r}{}", &kind[..1]),
                args.students,
                &mut users,
            );
        }
    }
    let members: Vec<&str> = users
        .iter()
        .filter(|u| u.name != "tina")
        .map(|u| u.name.as_str())
        .collect();
    let slapd = Slapd::start_on(
        HOST_IP,
        &users,
        &[
            TestGroup::new("students", 4100, &members),
            TestGroup::new("teachers", 4200, &["tina"]),
        ],
    )?;
    let dir = Path::new(BASE).join("nodes").join("storm");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let bench = Bench {
        base_url: format!("https://{}:{HUB_PORT}", swarm.ip(1)),
        swarm,
        _registry: registry,
        config: dir.join("swarmhub.toml"),
        password_file: slapd.reader_password_file()?,
        dir: dir.clone(),
        hub_env,
    };
    write_config(&bench, &slapd)?;
    deploy(&bench)?;

    let mut reports: Vec<Report> = Vec::new();
    let warmup = sets.remove(0).1;
    if !warmup.is_empty() {
        bench.storm("warm-up", &warmup, &args)?;
    }
    let mut current = "swarmhub".to_string();
    for (label, students) in &sets {
        let kind = label.split(' ').next().unwrap_or("swarmhub");
        if kind != current {
            bench.hub_with(kind)?;
            current = kind.to_string();
        }
        reports.push(bench.storm(&format!("{label} cold"), students, &args)?);
        reports.push(bench.storm(&format!("{label} warm"), students, &args)?);
    }
    summary(&reports);
    drop(bench);
    drop(slapd);
    Ok(())
}

fn print_machine(args: &Args) {
    let sh = |c: &str| {
        Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    println!(
        "==== swarmhub-storm ====\ndate {}\nmachine: {} vCPU ({}), {} RAM, kernel {}\ncommit {}\nargs {args:?}",
        sh("date -u +%FT%TZ"),
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
        sh("free -h | awk '/Mem:/ {print $2}'"),
        sh("uname -r"),
        sh("git rev-parse --short HEAD 2>/dev/null"),
    );
}

fn write_config(b: &Bench, slapd: &Slapd) -> anyhow::Result<()> {
    std::fs::write(
        &b.config,
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
            cluster = Swarm::swarmhub_cluster_section(&b.dir.join("nfsd-data")),
            hub_ip = b.swarm.ip(1),
            ldap = slapd.swarmhub_section(HOST_IP, "students", Some("teachers")),
        ),
    )?;
    Ok(())
}

/// Certificate, push from the test builder, `run`: the deployment as an admin makes it.
fn deploy(b: &Bench) -> anyhow::Result<()> {
    b.swarm.label_node(1, "swarmhub.storage", "true")?;
    b.swarmhub(&["tls", "self-signed"], None)?;
    hub::trust_ca(&b.dir.join("tls").join("ca.pem"));
    let t = Instant::now();
    let builder = Builder::start()?;
    b.swarmhub(&["push", "--build-host", &builder.host()], None)?;
    drop(builder);
    println!("pushed in {:.0} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let pw = b.password_file.display().to_string();
    b.swarmhub(&["run", "--ldap-password-file", &pw], Some("swarmhub"))?;
    wait_login_page(&b.base_url)?;
    println!("deployed in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// The storms side by side and the swarmhub/local ratios of "all ready".
fn summary(reports: &[Report]) {
    println!("\n==== summary ====");
    println!(
        "{:<22} {:>9} {:>10} {:>10} {:>10} {:>10} {:>7} {:>9}",
        "storm",
        "all_ready",
        "ready_p50",
        "ready_p95",
        "ready_max",
        "saved_p95",
        "failed",
        "mount_p95"
    );
    for r in reports {
        let mut ready: Vec<u64> = r
            .outcomes
            .iter()
            .filter_map(|o| o.ready.map(storm::millis))
            .collect();
        let mut saved: Vec<u64> = r
            .outcomes
            .iter()
            .filter_map(|o| o.saved.map(storm::millis))
            .collect();
        let mut mounts = r.mounts_ms.clone();
        ready.sort_unstable();
        saved.sort_unstable();
        mounts.sort_unstable();
        let s = |v: Option<u64>| v.map_or("-".into(), |m| format!("{:.1}", m as f64 / 1000.0));
        println!(
            "{:<22} {:>9} {:>10} {:>10} {:>10} {:>10} {:>7} {:>9}",
            r.label,
            r.all_ready
                .map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64())),
            s(storm::pct(&ready, 50)),
            s(storm::pct(&ready, 95)),
            s(ready.last().copied()),
            s(storm::pct(&saved, 95)),
            r.outcomes.len() - r.succeeded(),
            storm::pct(&mounts, 95).map_or("-".into(), |m| format!("{m} ms")),
        );
    }
    for temp in ["cold", "warm"] {
        let all = |kind: &str| -> Vec<f64> {
            reports
                .iter()
                .filter(|r| r.label.starts_with(kind) && r.label.ends_with(temp))
                .filter_map(|r| r.all_ready.map(|d| d.as_secs_f64()))
                .collect()
        };
        let (s, l) = (all("swarmhub"), all("local"));
        if !s.is_empty() && s.len() == l.len() {
            let ratios: Vec<String> = s
                .iter()
                .zip(&l)
                .map(|(a, b)| format!("{:.2}", a / b))
                .collect();
            println!("all ready, swarmhub/local, {temp}: {}", ratios.join(", "));
        }
    }
}
