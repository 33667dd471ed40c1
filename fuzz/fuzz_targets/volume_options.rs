#![no_main]
//! cargo-fuzz target: swarmhub_fuzz_targets::volume_options (see fuzz-targets/src/lib.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| swarmhub_fuzz_targets::volume_options(data));
