use std::path::PathBuf;

use clap::Parser;
use swarmhub_bench::{Config, parse_workloads, run};

/// NFSv3 benchmark: swarmhub-nfsd vs nfs-ganesha 4.3 (FSAL VFS) vs the local file system.
///
/// `swarmhub-bench all` reproduces the table in docs/BENCHMARKS.md. Must run as root with
/// nfs-ganesha, nfs-ganesha-vfs, rpcbind and libnfs-utils installed.
#[derive(Parser, Debug)]
#[command(name = "swarmhub-bench")]
struct Args {
    /// `all` (default) runs every selected workload; `smoke` is the same as --smoke.
    #[arg(default_value = "all")]
    command: String,
    /// Rounds; the targets are interleaved within each round.
    #[arg(long)]
    rounds: Option<usize>,
    /// Workloads to run, e.g. `a,b,e` (a..g).
    #[arg(long)]
    only: Option<String>,
    /// Targets: nfsd, nfsd-nosync (nfsd with --sync-metadata false), ganesha, local.
    #[arg(long, value_delimiter = ',')]
    targets: Option<Vec<String>>,
    /// A seconds-long run with tiny sizes (1 round).
    #[arg(long)]
    smoke: bool,
    /// Files in (a), (c), (d).
    #[arg(long)]
    files: Option<usize>,
    /// Connections in (a), (b), (d).
    #[arg(long)]
    conns: Option<usize>,
    /// Seconds of GETATTR in (b).
    #[arg(long)]
    getattr_secs: Option<f64>,
    /// READDIRPLUS maxcount in (c).
    #[arg(long)]
    readdir_maxcount: Option<u32>,
    /// READDIRPLUS dircount in (c) (default: = maxcount, as Linux ≥ 5.17 sends).
    #[arg(long)]
    readdir_dircount: Option<u32>,
    /// Clients in (e).
    #[arg(long)]
    autosave_clients: Option<usize>,
    /// Autosaves per client in (e).
    #[arg(long)]
    autosave_count: Option<usize>,
    /// Period of each client's autosaves in (e), ms.
    #[arg(long)]
    autosave_period_ms: Option<u64>,
    /// Size of the large file in (f), MiB.
    #[arg(long)]
    big_mib: Option<usize>,
    /// Volumes in (g).
    #[arg(long)]
    rss_volumes: Option<usize>,
    /// Files per volume in (g).
    #[arg(long)]
    rss_files: Option<usize>,
    /// Parent of the temp work directory (must be on the disk to measure).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// The swarmhub-nfsd binary (default: build it with cargo, release).
    #[arg(long, env = "SWARMHUB_NFSD_BIN")]
    nfsd_bin: Option<PathBuf>,
    /// Do not run cargo build; use an existing binary from the target dir.
    #[arg(long)]
    no_build: bool,
    /// Record `perf record` profiles of nfsd (round 0 of each workload) into DIR.
    #[arg(long)]
    perf: Option<PathBuf>,
    /// Also write the markdown report to FILE.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write all samples as JSON to FILE.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the work directory.
    #[arg(long)]
    keep: bool,
}

fn main() {
    let a = Args::parse();
    let smoke = a.smoke || a.command == "smoke";
    if a.command != "all" && a.command != "smoke" {
        eprintln!(
            "swarmhub-bench: unknown command {:?} (all, smoke)",
            a.command
        );
        std::process::exit(2);
    }
    let mut cfg = if smoke {
        Config::smoke()
    } else {
        Config::full()
    };
    if smoke {
        cfg.build = true;
    }
    macro_rules! set {
        ($($f:ident <- $v:expr),*) => { $( if let Some(v) = $v { cfg.$f = v; } )* };
    }
    set!(rounds <- a.rounds, targets <- a.targets, files <- a.files, conns <- a.conns,
        getattr_secs <- a.getattr_secs, readdir_maxcount <- a.readdir_maxcount,
        readdir_dircount <- a.readdir_dircount,
        autosave_clients <- a.autosave_clients, autosave_count <- a.autosave_count,
        autosave_period_ms <- a.autosave_period_ms, big_mib <- a.big_mib,
        rss_volumes <- a.rss_volumes, rss_files_per_volume <- a.rss_files,
        work_base <- a.work_dir);
    cfg.perf = a.perf;
    if let Some(o) = &a.only {
        match parse_workloads(o) {
            Ok(w) => cfg.workloads = w,
            Err(e) => {
                eprintln!("swarmhub-bench: {e}");
                std::process::exit(2);
            }
        }
    }
    cfg.nfsd_bin = a.nfsd_bin;
    if a.no_build {
        cfg.build = false;
    }
    cfg.keep = a.keep;
    if cfg.rounds == 0 || cfg.files == 0 || cfg.conns == 0 || cfg.autosave_clients == 0 {
        eprintln!("swarmhub-bench: --rounds, --files, --conns and --autosave-clients must be > 0");
        std::process::exit(2);
    }
    let report = match run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("swarmhub-bench: {e:#}");
            std::process::exit(1);
        }
    };
    let md = report.markdown(&cfg);
    println!("{md}");
    if let Some(p) = &a.out
        && let Err(e) = std::fs::write(p, &md)
    {
        eprintln!("swarmhub-bench: writing {}: {e}", p.display());
    }
    if let Some(p) = &a.json
        && let Err(e) = std::fs::write(p, serde_json::to_string_pretty(&report.json()).unwrap())
    {
        eprintln!("swarmhub-bench: writing {}: {e}", p.display());
    }
    if report.total_errors() > 0 {
        eprintln!(
            "swarmhub-bench: {} errors (see the report)",
            report.total_errors()
        );
        std::process::exit(1);
    }
}
