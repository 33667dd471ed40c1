//! swarmhub's Docker gate. The hub never holds dockerd's socket: it talks to this gate over a
//! unix socket in a volume the two share on the manager, and the gate forwards only what
//! SwarmSpawner and the idle culler need, for notebook services only, after checking the
//! decoded request body. Everything else answers 403 with the rule that refused it, and is
//! logged.
//!
//! Modules, in the order a request meets them: [`route`] turns method, path and query into one
//! of the calls the gate knows (or a refusal), [`spec`] checks a service spec against the
//! [`rules`], [`upstream`] is the way to dockerd, [`server`] ties them together and answers.

pub mod route;
pub mod rules;
pub mod server;
pub mod spec;
pub mod upstream;

pub use rules::{GateRules, MountRule, RULES_ENV};
pub use server::{GateOptions, serve};
