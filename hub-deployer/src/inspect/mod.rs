//! What the swarm runs and whether it is healthy: `swarmhub status` and `swarmhub doctor`.
//! Reads and judgements only; nothing here changes the swarm except the one-shot job doctor
//! runs to read every node's firewall guard.
//!
//! Each file says what it may touch:
//!
//! - [`status`]: the model (`mod.rs`), the reads that fill it (`gather.rs`: dockerd, nfsd),
//!   its own judgements (`judge.rs`, pure) and the text for people (`text.rs`, pure).
//! - [`doctor`]: the checks and their order (`mod.rs`); `swarm.rs` (dockerd, the firewall job,
//!   nfsd), `ldap.rs` (the directory) and `hub.rs` (the hub's API and certificate) each read
//!   first and judge after, the `check_*` judgements pure.
//! - [`health`]: the judgements both share (pure).
//! - [`probe`]: the HTTP(S) probes both use (network I/O only).

pub mod doctor;
pub mod health;
pub mod probe;
pub mod status;
