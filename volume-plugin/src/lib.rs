//! The `swarmhub-nfs` managed Docker volume plugin: Docker's volume plugin protocol on a unix
//! socket, a driver that asks nfsd for volumes, and mount backends (kernel NFS, FUSE). This crate
//! is laid out by the workspace issue and filled in by the plugin issue; today it only re-exports
//! the shared option parser it will use, so the workspace builds as one.

pub use swarmhub_control_api::VolumeOptions;
