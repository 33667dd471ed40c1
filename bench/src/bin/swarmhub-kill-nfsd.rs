//! `swarmhub-kill-nfsd`: SIGKILL swarmhub-nfsd again and again under the notebook autosave load
//! plus streaming writers, then check every acknowledged operation on disk byte for byte
//! (docs/RELIABILITY.md, "kill -9 of nfsd under load"; the work is in
//! `swarmhub_bench::killnfsd`). Runs as root. Prints a table and one JSON line; exits 1 when any
//! acknowledged operation is lost or corrupt or a client saw an error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use swarmhub_bench::killnfsd::{self, GuestConfig, HostConfig};

#[derive(Parser, Debug)]
#[command(name = "swarmhub-kill-nfsd")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Args, Debug)]
struct Common {
    /// Autosave clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Streaming writers.
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// SIGKILLs of nfsd (each followed by a restart on the same port and data dir).
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Seed of the kill moments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Shortest pause before a kill, ms.
    #[arg(long)]
    min_gap_ms: Option<u64>,
    /// Longest pause before a kill, ms.
    #[arg(long)]
    max_gap_ms: Option<u64>,
    /// The swarmhub-nfsd binary (default: build the release binary of this workspace).
    #[arg(long)]
    nfsd_bin: Option<PathBuf>,
    /// Parent of the temp dir holding nfsd's data dir.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    work_dir: PathBuf,
    /// Keep the temp dir.
    #[arg(long)]
    keep: bool,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Userspace clients (nfs3_client) on this host.
    Host {
        #[command(flatten)]
        common: Common,
        /// Per streaming writer, MiB/s (0: as fast as it goes).
        #[arg(long, default_value_t = 4.0)]
        stream_mib_s: f64,
    },
    /// The Linux kernel client in the qemu guest (hard mount).
    Guest {
        #[command(flatten)]
        common: Common,
        /// Autosave payload, KiB.
        #[arg(long, default_value_t = 16)]
        payload_kib: usize,
        /// Stream chunk (one `dd conv=fsync` each), KiB.
        #[arg(long, default_value_t = 256)]
        chunk_kib: usize,
        /// Host-side limit for the whole guest run, s.
        #[arg(long, default_value_t = 900)]
        timeout: u32,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let report = match Args::parse().mode {
        Mode::Host {
            common: c,
            stream_mib_s,
        } => {
            let mut cfg = HostConfig::full();
            cfg.clients = c.clients;
            cfg.streams = c.streams;
            cfg.kills = c.kills;
            cfg.seed = c.seed;
            cfg.gap_ms = (
                c.min_gap_ms.unwrap_or(cfg.gap_ms.0),
                c.max_gap_ms.unwrap_or(cfg.gap_ms.1),
            );
            anyhow::ensure!(cfg.gap_ms.0 <= cfg.gap_ms.1, "--min-gap-ms > --max-gap-ms");
            cfg.stream.mib_per_s = stream_mib_s;
            cfg.nfsd_bin = c.nfsd_bin;
            cfg.work_base = c.work_dir;
            cfg.keep = c.keep;
            killnfsd::run_host(&cfg)?
        }
        Mode::Guest {
            common: c,
            payload_kib,
            chunk_kib,
            timeout,
        } => {
            let mut cfg = GuestConfig::full();
            cfg.clients = c.clients;
            cfg.streams = c.streams;
            cfg.kills = c.kills;
            cfg.seed = c.seed;
            cfg.gap_ms = (
                c.min_gap_ms.unwrap_or(cfg.gap_ms.0),
                c.max_gap_ms.unwrap_or(cfg.gap_ms.1),
            );
            anyhow::ensure!(cfg.gap_ms.0 <= cfg.gap_ms.1, "--min-gap-ms > --max-gap-ms");
            anyhow::ensure!(c.streams <= 26, "at most 26 streams in guest mode");
            cfg.payload_kib = payload_kib;
            cfg.stream_chunk_kib = chunk_kib;
            cfg.timeout_s = timeout;
            cfg.nfsd_bin = c.nfsd_bin;
            cfg.work_base = c.work_dir;
            cfg.keep = c.keep;
            killnfsd::run_guest(&cfg)?
        }
    };
    println!("{}", report.table());
    println!("{}", report.json());
    Ok(if report.failures() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
