//! kill -9 of swarmhub-nfsd under load, small enough for CI (about 6 s here): 16 autosave clients
//! and 2 streaming writers on their own connections while nfsd is killed with SIGKILL 3 times
//! and restarted on the same port and data dir; then every acknowledged RENAME, COMMIT and
//! FILE_SYNC WRITE is checked on disk byte for byte (`swarmhub_bench::killnfsd`; the full runs
//! and their figures are in docs/RELIABILITY.md). Uses the built nfsd
//! (`cargo build --workspace --bins` first, or `SWARMHUB_NFSD_BIN`); needs root, like the
//! other tests that start nfsd.

use std::time::Duration;

use swarmhub_bench::killnfsd::{HostConfig, run_host};
use swarmhub_bench::servers;

#[test]
fn kill_9_under_autosave_and_stream_load_loses_nothing() {
    let mut cfg = HostConfig::full();
    cfg.clients = 16;
    cfg.streams = 2;
    cfg.kills = 3;
    cfg.seed = 17;
    cfg.gap_ms = (300, 1500);
    cfg.warmup = Duration::from_millis(500);
    cfg.settle = Duration::from_secs(1);
    cfg.stream.mib_per_s = 2.0;
    cfg.verbose = false;
    cfg.nfsd_bin = Some(servers::nfsd_binary(false, false).expect("the built swarmhub-nfsd"));
    let rep = run_host(&cfg).expect("the kill run");
    let table = rep.table();
    eprintln!("{table}\n{}", rep.json());
    assert_eq!(rep.restarts.len(), 3, "kills done:\n{table}");
    assert_eq!(rep.lost, 0, "acknowledged data lost:\n{table}");
    assert_eq!(rep.corrupt, 0, "corrupt data on disk:\n{table}");
    assert_eq!(rep.tally.estale, 0, "ESTALE seen by clients:\n{table}");
    assert_eq!(rep.tally.errors, 0, "errors seen by clients:\n{table}");
    // the load really ran across the kills, and the check really looked at it
    assert!(rep.min_client_acks > 0, "a client never saved:\n{table}");
    assert!(rep.acked_stream_ops > 0, "no stream acknowledged:\n{table}");
    assert_eq!(rep.checked_targets, 16, "{table}");
    assert!(rep.tally.reconnects > 0, "no client saw a kill:\n{table}");
}
