//! The one home of everything that crosses a process boundary between swarmhub's programs:
//! the JSON bodies of nfsd's control API (`/v1/...`), the volume options users write
//! (`-o user=alice,size=10G`), and the rules for names. The plugin and the CLI depend on this
//! crate instead of restating any of it. Its only I/O is the optional control API client
//! (feature `client`); the daemons' state files are `swarmhub-persist`'s.

#[cfg(feature = "client")]
pub mod client;
pub mod mount_path;
pub mod names;
pub mod options;
pub mod wire;

pub use names::{
    NameError, validate_share_dir_name, validate_share_name, validate_user_name,
    validate_volume_name,
};
pub use options::{Layout, OptionError, VolumeOptions, parse_size};
pub use wire::*;

/// Path prefix of every control API endpoint.
pub const API_PREFIX: &str = "/v1";
