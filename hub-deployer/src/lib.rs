//! The `swarmhub` CLI (`cli → plan → apply` over bollard). This crate is laid out by the
//! workspace issue and filled in by the CLI issue.
//!
//! - [`hubconfig`]: the generator of the hub's `jupyterhub_config.py` (stored as a Docker config).

pub mod hubconfig;

pub use swarmhub_control_api::API_PREFIX;
