//! The benchmark's smoke mode, so CI exercises the tool in seconds: every workload against the
//! built swarmhub-nfsd, a private nfs-ganesha and the local file system, with tiny sizes.
//! Needs root and the packages `.ci/run` installs (nfs-ganesha, nfs-ganesha-vfs, rpcbind,
//! libnfs-utils), like the other cross-component tests.

use swarmhub_bench::{ALL_WORKLOADS, Config, run};

#[test]
fn smoke_run_completes_without_errors() {
    let mut cfg = Config::smoke();
    cfg.verbose = false;
    let report = run(&cfg).expect("benchmark smoke run");
    let md = report.markdown(&cfg);
    eprintln!("{md}");

    assert_eq!(report.total_errors(), 0, "errors in the smoke run:\n{md}");
    for w in ALL_WORKLOADS.chars() {
        let targets: &[&str] = if w == 'g' {
            &["nfsd"]
        } else {
            &["nfsd", "ganesha", "local"]
        };
        for t in targets {
            assert!(
                report.completed.iter().any(|(cw, ct)| *cw == w && ct == t),
                "workload ({w}) did not complete on {t}:\n{md}"
            );
        }
    }
    // every value is a finite number; every rate and latency is positive (CPU time per
    // operation may round to 0 in so short a run)
    let mut rates = 0;
    for s in &report.samples {
        let must_be_positive = s.metric.ends_with("_per_s")
            || s.metric.ends_with("_mib_s")
            || s.metric.ends_with("_ms")
            || s.metric.starts_with("rss");
        let ok = s.value.is_finite() && s.value >= 0.0 && (!must_be_positive || s.value > 0.0);
        assert!(
            ok,
            "({}) {} on {}: {} is not a valid value:\n{md}",
            s.workload, s.metric, s.target, s.value
        );
        if must_be_positive && (s.metric.ends_with("_per_s") || s.metric.ends_with("_mib_s")) {
            rates += 1;
        }
    }
    // a, b, c, d: 1 rate each; e: 2; f: 4 — on 3 targets; g: 1
    assert!(rates > 3 * 10, "only {rates} rates measured:\n{md}");
    // (g) read nfsd's RSS
    assert!(
        report
            .median('g', "rss_mib", "nfsd")
            .is_some_and(|m| m > 1.0)
    );
    // the table has every target and the ratio columns
    assert!(md.contains("| nfsd/ganesha | nfsd/local |"), "{md}");
}
