//! The ONC RPC transport: record marking, call headers and replies, and the TCP server with its
//! limits. It knows nothing of NFS; a [`server::Service`] answers the calls.

pub mod message;
pub mod record;
pub mod server;

pub use server::{Events, Limits, NoEvents, Request, Service, serve};
