//! The `swarmhub` CLI (`cli → plan → apply` over bollard). This crate is laid out by the
//! workspace issue and filled in by the CLI issue; it holds no code yet beyond its place in the
//! workspace.

pub use swarmhub_control_api::API_PREFIX;
