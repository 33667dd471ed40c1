//! The `swarmhub-nfs` managed Docker volume plugin. Layers: `api` (Docker's protocol on a unix
//! socket, wire types in `protocol`) → `driver` (volume semantics, references, persisted `state`)
//! → `mounter` (kernel NFS or FUSE, behind one trait); `error` says why a call failed. `reaper` releases mounts of containers
//! that no longer run; `server` assembles it; `client` speaks to a running plugin like dockerd (the hidden `call`
//! subcommand); `main.rs` only parses arguments.

pub mod api;
pub mod client;
pub mod config;
pub mod driver;
pub mod error;
pub mod mounter;
pub mod protocol;
pub mod reaper;
pub mod server;
pub mod state;
