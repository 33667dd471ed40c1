//! `swarmhub-soak`: simulated notebooks autosave through the volume plugin's FUSE mounts while
//! swarmhub-nfsd is restarted every few minutes; prints errors by kind, the recovery after each
//! restart, the RSS of nfsd and the plugin, and a one-line JSON summary. Exits non-zero when a
//! notebook saw any error or a saved file was lost. Runs as root with /dev/fuse, outside Docker.
//! See `swarmhub_bench::soak` and docs/RELIABILITY.md ("30-minute soak").

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use swarmhub_bench::soak::{RestartMode, SoakConfig, run};

/// The soak of issue 17: autosaving notebooks through the plugin, nfsd restarted periodically.
#[derive(Parser, Debug)]
#[command(name = "swarmhub-soak")]
struct Args {
    /// How long the notebooks save.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Simulated notebooks, each on its own volume mounted through the plugin.
    #[arg(long, default_value_t = 32)]
    notebooks: usize,
    /// nfsd is restarted every this many seconds (0: never).
    #[arg(long, default_value_t = 180)]
    restart_every_secs: u64,
    /// RSS of nfsd and the plugin is read every this many seconds.
    #[arg(long, default_value_t = 10.0)]
    sample_secs: f64,
    /// Alternate SIGTERM and SIGKILL restarts (first SIGTERM); without it every restart is a
    /// SIGTERM.
    #[arg(long)]
    kill: bool,
    /// Mean seconds between two saves of a notebook (±50 % jitter).
    #[arg(long, default_value_t = 1.0)]
    save_secs: f64,
    /// Parent of the run's temp directory.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// swarmhub-nfsd binary (default: the workspace's release build, then debug).
    #[arg(long)]
    nfsd_bin: Option<PathBuf>,
    /// swarmhub-volume-plugin binary (default: the workspace's release build, then debug).
    #[arg(long)]
    plugin_bin: Option<PathBuf>,
    /// `cargo build --release` both binaries first.
    #[arg(long)]
    build: bool,
    /// Keep the temp directory (nfsd's data, logs, the plugin's state).
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let mut cfg = SoakConfig::full();
    cfg.duration = Duration::from_secs_f64(a.minutes.max(0.0) * 60.0);
    cfg.notebooks = a.notebooks;
    cfg.restart_every = Duration::from_secs(a.restart_every_secs);
    cfg.restart_mode = if a.kill {
        RestartMode::Alternate
    } else {
        RestartMode::Term
    };
    cfg.sample_every = Duration::from_secs_f64(a.sample_secs.max(0.1));
    cfg.save_every = Duration::from_secs_f64(a.save_secs.max(0.01));
    if let Some(w) = a.work_dir {
        cfg.work_base = w;
    }
    cfg.nfsd_bin = a.nfsd_bin;
    cfg.plugin_bin = a.plugin_bin;
    cfg.build = a.build;
    cfg.keep = a.keep;
    match run(&cfg) {
        Ok(report) => {
            println!("{}", report.render());
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "swarmhub-soak: {} errors, {} lost, {} mounts left, {} harness problems",
                    report.error_count(),
                    report.lost.len(),
                    report.leftover_mounts.len(),
                    report.harness_errors.len()
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("swarmhub-soak: {e:#}");
            ExitCode::from(2)
        }
    }
}
