#![no_main]
//! cargo-fuzz target: swarmhub_fuzz_targets::nfs_calls (see fuzz-targets/src/nfs_calls.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| swarmhub_fuzz_targets::nfs_calls(data));
