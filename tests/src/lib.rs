//! Harness for cross-component tests: real servers and clients (slapd, ...) started from any test in the workspace.
//! Nothing here depends on the crates under test, so every crate can use it as a dev-dependency.

pub mod attack;
pub mod browser;
pub mod builder;
pub mod docker;
pub mod gate_attack;
pub mod guest;
pub mod https;
pub mod hub;
pub mod images;
pub mod nfsd;
pub mod registry;
pub mod slapd;
pub mod storm;
pub mod swarm;
