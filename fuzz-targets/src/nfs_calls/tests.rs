//! The harness reaches the file system: the seeds' calls succeed or fail as nfsd must answer
//! them, so a harness that stopped at the RPC layer (or a seed format gone stale) fails here.
//! The seeds are written by `fuzz/seeds.py nfs_calls` into `seeds/` next to this file (and
//! into the corpus, which `cargo fuzz cmin` may thin out).

use super::trace;

fn seed(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/nfs_calls/seeds")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn seeds_reach_the_file_system() {
    let t = trace(&seed("home_read_write"));
    assert_eq!(
        t,
        [
            "MNT OK",
            "LOOKUP OK",
            "LOOKUP OK",
            "READ OK",
            "WRITE OK",
            "GETATTR OK",
            "COMMIT OK",
            "ACCESS OK"
        ],
        "{t:?}"
    );
    let t = trace(&seed("escape"));
    eprintln!("escape: {t:?}");
    assert_eq!(
        t[..3],
        ["MNT OK", "LOOKUP OK", "WRITE NFS3ERR_INVAL"],
        "{t:?}"
    );
    for seed_name in [
        "create_write_rename_remove",
        "readdir",
        "dotdot",
        "dirs",
        "setattr",
        "special",
        "share_views",
        "forged_handles",
        "mount_procs",
        "raw_records",
    ] {
        eprintln!("{seed_name}: {:?}", trace(&seed(seed_name)));
    }
}

#[test]
fn the_state_is_the_same_for_every_input() {
    // the same input twice gives the same answers: the trees were reset in between
    let s = seed("create_write_rename_remove");
    let first = trace(&s);
    assert_eq!(first[..3], ["MNT OK", "CREATE OK", "WRITE OK"], "{first:?}");
    assert_eq!(trace(&s), first);
}
