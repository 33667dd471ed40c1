//! The `swarmhub` CLI: deploys and operates JupyterHub, swarmhub-nfsd and the `swarmhub-nfs`
//! volume plugin on Docker Swarm, talking to dockerd through bollard (never the docker CLI).
//!
//! The folders are layers; a module may use the ones listed before it, never one after:
//!
//! - [`names`], [`progress`], [`steps`], [`wait`]: labels and names, progress lines, what a
//!   command did, polling until done.
//! - [`settings`]: `swarmhub.toml`, its overrides and validation, the hub's settings and template,
//!   the hub's certificate files.
//! - [`exit`]: errors and documented exit codes.
//! - [`directory`]: the LDAP directory of `[ldap]`: connect, bind, groups and their members.
//! - [`node`]: what runs on a node inside a one-shot job (the firewall guard) and the result
//!   line it prints.
//! - [`plan`]: the desired Docker objects as bollard types (pure).
//! - [`docker`]: the only edge to dockerd: the connection and the swarm as the CLI reads it.
//! - [`apply`]: make one object match its plan (create missing, leave equal, update different),
//!   one-shot jobs, secret values.
//! - [`inspect`]: `status` and `doctor` (reads and judgements, never changes).
//! - [`lifecycle`]: run/start/stop/remove/restart of the parts, plugin rollout, volumes, images.
//! - [`demo`]: `swarmhub demo up|down`, the whole stack on one machine.
//! - [`cli`]: the command line and what each subcommand does.

pub mod apply;
pub mod cli;
pub mod demo;
pub mod directory;
pub mod docker;
pub mod exit;
pub mod inspect;
pub mod lifecycle;
pub mod names;
pub mod node;
pub mod plan;
pub mod progress;
pub mod settings;
pub mod steps;
pub mod wait;

pub use swarmhub_control_api::API_PREFIX;
