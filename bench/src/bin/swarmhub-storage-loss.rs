//! `swarmhub-storage-loss`: the storage node lost mid-lecture on the three-node swarm harness
//! (docs/RELIABILITY.md, "The storage node lost mid-lecture"; the work is in
//! `swarmhub_bench::storage_loss`). Runs as root. Prints a table and one JSON line per round;
//! exits 1 when an acknowledged byte was lost or a notebook needed a restart.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use swarmhub_bench::storage_loss::{self, Config, Mode};

#[derive(Parser, Debug)]
#[command(
    name = "swarmhub-storage-loss",
    about = "Notebooks write while the storage node's dockerd is killed or its network cut"
)]
struct Args {
    /// How the storage node is lost; several (comma-separated) run one after the other on
    /// one deployment.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill-dockerd"
    )]
    mode: Vec<Mode>,
    /// Writing notebooks, spread over the two nodes that are not the storage node.
    #[arg(long, default_value_t = 6)]
    notebooks: usize,
    /// Seconds the storage node stays lost.
    #[arg(long, default_value_t = 60)]
    outage_secs: u64,
    /// Rounds per mode.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Seconds of writing before the fault.
    #[arg(long, default_value_t = 15)]
    warmup_secs: u64,
    /// After the node is back, each notebook must write on this many seconds without a hang.
    #[arg(long, default_value_t = 20)]
    steady_secs: u64,
    /// A notebook whose writes have not gone on this many seconds after the node is back
    /// needed a restart.
    #[arg(long, default_value_t = 300)]
    resume_limit_secs: u64,
    /// Outputs (status/doctor texts, writer logs, summaries) go to `run-<unix time>/` here.
    #[arg(long, default_value = "/var/tmp/swarmhub-storage-loss")]
    out_dir: PathBuf,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let cfg = Config {
        modes: a.mode,
        notebooks: a.notebooks,
        outage: Duration::from_secs(a.outage_secs),
        rounds: a.rounds,
        warmup: Duration::from_secs(a.warmup_secs),
        steady: Duration::from_secs(a.steady_secs),
        resume_limit: Duration::from_secs(a.resume_limit_secs),
        out_dir: a.out_dir,
    };
    match storage_loss::run(&cfg) {
        Ok(reports) => {
            if reports
                .iter()
                .any(|r| r.lost_bytes() > 0 || r.restarts() > 0)
            {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("swarmhub-storage-loss: {e:#}");
            ExitCode::from(2)
        }
    }
}
