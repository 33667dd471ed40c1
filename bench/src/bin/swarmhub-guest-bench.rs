//! `swarmhub-guest-bench`: swarmhub-nfsd against nfs-ganesha as the Linux kernel NFS client in
//! one qemu guest sees them (1000 creates, renames, removes, 256 MiB written and read back), in
//! alternating rounds; prints a markdown table with every round. Runs as root. The work is in
//! `swarmhub_bench::guestbench`; docs/BENCHMARKS.md has the figures.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use swarmhub_bench::guestbench::{GuestBenchConfig, run};

/// The kernel NFS client (qemu guest) against swarmhub-nfsd and nfs-ganesha, one guest, both
/// mounted, alternating rounds.
#[derive(Parser, Debug)]
#[command(name = "swarmhub-guest-bench")]
struct Args {
    /// Rounds; each runs the workload once against each server, the first server alternating.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// The swarmhub-nfsd binary to measure (default: the workspace's release build, then the
    /// debug one; see --build).
    #[arg(long, env = "SWARMHUB_NFSD_BIN")]
    nfsd_bin: Option<PathBuf>,
    /// `cargo build --release -p swarmhub-nfsd` first (ignored with --nfsd-bin).
    #[arg(long)]
    build: bool,
    /// Host-side limit for the whole guest run, seconds (default: 300 + 200 per round; one
    /// round takes about 80 s on 2 host CPUs).
    #[arg(long)]
    timeout: Option<u32>,
    /// Parent of the run's temp dir (nfsd's data dir and ganesha's export live there, so both
    /// servers write to the same file system).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    work_dir: PathBuf,
    /// Also write the markdown report to FILE.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the temp dir (nfsd's data and log, ganesha's state, the guest script and output).
    /// It is kept anyway when the run fails.
    #[arg(long)]
    keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = GuestBenchConfig {
        rounds: args.rounds,
        nfsd_bin: args.nfsd_bin,
        build: args.build,
        timeout: args.timeout,
        work_dir: args.work_dir,
        out: args.out,
        keep: args.keep,
    };
    match run(&cfg) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("swarmhub-guest-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
