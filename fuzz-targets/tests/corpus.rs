//! Replays the kept fuzz corpus (`fuzz/corpus/<target>/`) and the inputs of fixed crashes
//! (`fuzz/regressions/<target>/`) through every target on stable, so that a regression fails
//! `cargo test` without the fuzzer. Each target must have a corpus.

use std::path::Path;

use swarmhub_fuzz_targets::TARGETS;

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let p = e.path();
            let bytes = std::fs::read(&p).unwrap_or_else(|err| panic!("{}: {err}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_target_replays_its_corpus_without_a_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut counts = Vec::new();
    for (name, target) in TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(name));
        let regressions = inputs(&fuzz.join("regressions").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name}/ is empty: run fuzz/run.sh {name} (or add seeds)"
        );
        for (path, bytes) in corpus.iter().chain(&regressions) {
            let r = std::panic::catch_unwind(|| target(bytes));
            assert!(r.is_ok(), "{name} panics on {path}");
        }
        counts.push(format!("{name}: {} + {}", corpus.len(), regressions.len()));
    }
    eprintln!("replayed {}", counts.join(", "));
}
