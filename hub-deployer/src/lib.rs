//! The `swarmhub` CLI: deploys and operates JupyterHub, swarmhub-nfsd and the `swarmhub-nfs`
//! volume plugin on Docker Swarm, talking to dockerd through bollard (never the docker CLI).
//!
//! Layers: `cli` (flags) → [`config`] (settings) → [`plan`] (desired Docker objects, pure) →
//! apply (makes the swarm match; next). Lifecycle commands never touch user data.
//!
//! - [`cli`]: the command line and its `--help`.
//! - [`commands`]: what each subcommand does.
//! - [`config`]: `swarmhub.toml`, `SWARMHUB_<SECTION>_<KEY>` overrides, validation.
//! - [`plan`]: network, secrets, the hub's Docker config, the nfsd, hub and plugin-rollout
//!   services as bollard types.
//! - [`hubconfig`]: the generator of the hub's `jupyterhub_config.py` (stored as a Docker config).
//! - [`secrets`]: values of secrets the CLI creates (random or given by the admin).
//! - [`docker`]: reaching dockerd.
//! - [`demo`]: `swarmhub demo up|down`, the whole stack on one machine with a demo directory.
//! - [`status`]: what the swarm runs now (`swarmhub status`), and the judgements doctor shares.
//! - [`doctor`]: health checks with a fix for each failure (`swarmhub doctor`).
//! - [`probe`]: HTTP GETs of JSON with a timeout (nfsd's health, the hub's API).
//! - [`exit`]: errors and documented exit codes.
//! - [`firewall`]: the node-side iptables guard that keeps containers off nfsd's ports.
//! - [`jobs`]: one-shot global jobs on every node and their result lines.
//! - [`tls`]: the hub's certificate: given files checked, or a small CA and certificate made and kept.
//!
//! This version offers `init` and `config check|render-hub|plan`, which need no daemon. Next,
//! with the apply layer (which needs dockerd): `run`, `start`, `stop`, `remove`, `restart`,
//! `rerun`, `rebuild`; `nfs run|config|start|stop|remove|restart`;
//! `hub run|start|remove|restart|build|push`; `status`; `doctor`; `plugin install|rollout`; and
//! the separate, confirmed command that deletes user data.

pub mod apply;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod demo;
pub mod docker;
pub mod doctor;
pub mod exit;
pub mod firewall;
pub mod hubconfig;
pub mod images;
pub mod jobs;
pub mod lifecycle;
pub mod plan;
pub mod plugin;
pub mod probe;
pub mod progress;
pub mod secrets;
pub mod status;
pub mod tls;
pub mod volume;

pub use swarmhub_control_api::API_PREFIX;
