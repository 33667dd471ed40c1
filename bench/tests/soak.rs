//! The soak of issue 17 (item 4) in CI size: 8 notebooks autosave for about 48 s through the
//! real `swarmhub-volume-plugin` (FUSE backend) while the real `swarmhub-nfsd` is restarted
//! twice, once with SIGTERM and once with SIGKILL. No notebook may see any error, every
//! acknowledged save must be on nfsd's disk, and no mount may be left behind. Uses the builds
//! `cargo build --workspace --bins` makes (debug first, then release). Needs root and
//! /dev/fuse, like the FUSE backend's own tests. The 30-minute figures are in
//! docs/RELIABILITY.md.

use swarmhub_bench::soak::{SoakConfig, run};

#[test]
fn notebooks_see_no_error_and_lose_nothing_across_nfsd_restarts() {
    let cfg = SoakConfig::ci();
    let report = run(&cfg).expect("running the soak");
    let text = report.render();
    eprintln!("{text}");

    assert_eq!(report.error_count(), 0, "notebooks saw errors:\n{text}");
    assert!(report.lost.is_empty(), "acknowledged saves lost:\n{text}");
    assert!(
        report.leftover_mounts.is_empty(),
        "mounts left behind:\n{text}"
    );
    assert!(
        report.harness_errors.is_empty(),
        "the harness failed:\n{text}"
    );
    assert!(report.ok(), "{text}");

    // the restarts happened, one of each kind, and every notebook saved after each
    let signals: Vec<_> = report.restarts.iter().map(|r| r.signal.name()).collect();
    assert_eq!(signals, ["SIGTERM", "SIGKILL"], "{text}");
    for (i, r) in report.restarts.iter().enumerate() {
        assert!(
            r.all_saved_ms.is_some(),
            "after restart {} ({}) not every notebook saved again:\n{text}",
            i + 1,
            r.signal.name()
        );
    }
    // every notebook saved and read back, and its last save is on disk
    assert_eq!(report.notebooks.len(), cfg.notebooks, "{text}");
    for (i, n) in report.notebooks.iter().enumerate() {
        assert!(
            n.acks.len() > 3,
            "notebook {i} saved {} times:\n{text}",
            n.acks.len()
        );
        assert!(n.reads_checked > 0, "notebook {i} never read back:\n{text}");
    }
    // both processes were sampled, and the summary says what the fields say
    let nfsd = report.nfsd_rss().expect("nfsd RSS samples");
    let plugin = report.plugin_rss().expect("plugin RSS samples");
    assert!(nfsd.min > 0 && plugin.min > 0, "{text}");
    let summary = report.summary_json();
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(summary["ok"], true, "{summary}");
}
