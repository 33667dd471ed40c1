//! What the swarm runs and whether it is healthy: `swarmhub status` and `swarmhub doctor`.
//! Reads and judgements only; nothing here changes the swarm except the one-shot job doctor
//! runs to read every node's firewall guard.

pub mod doctor;
pub mod health;
pub mod probe;
pub mod status;
