//! Volumes: the registry on disk and the live set of views built from it.

pub mod capability;
pub mod layout;
pub mod manager;
pub mod registry;
pub mod shares;

pub use capability::MountCapabilities;
pub use manager::{VolumeError, Volumes, export_of};
pub use registry::atomic_write;
pub use swarmhub_control_api::mount_path::MountPath;
