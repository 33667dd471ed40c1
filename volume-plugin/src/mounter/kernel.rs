//! The kernel backend: mount(2) of an NFSv3 export with text options, the way mount.nfs would
//! pass them, so the plugin needs no mount helper, rpcbind or statd (`nolock`, explicit ports,
//! `addr=`). Kernel mounts outlive the plugin process. A TCP probe before mount(2) turns an
//! unreachable nfsd into an immediate, precise error instead of a hard-mount hang.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::{MountError, MountSpec, Mounter};

/// Mounts with the Linux NFS client.
#[derive(Debug, Default)]
pub struct KernelMounter;

/// The data string of mount(2) for `spec`.
pub fn mount_options(spec: &MountSpec) -> String {
    let ip = spec.server.ip();
    let port = spec.server.port();
    let mut opts = format!(
        "vers=3,proto=tcp,port={port},mountport={port},mountproto=tcp,nolock,hard,rsize=1048576,wsize=1048576,addr={ip},mountaddr={ip}"
    );
    if let Some(extra) = spec.extra_options.as_deref().filter(|e| !e.is_empty()) {
        opts.push(',');
        opts.push_str(extra);
    }
    opts
}

/// The mount source, `ip:/export` (`[ip]:/export` for IPv6).
pub fn mount_source(spec: &MountSpec) -> String {
    match spec.server {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), spec.export),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), spec.export),
    }
}

fn hint(errno: i32) -> &'static str {
    match errno {
        libc::ENODEV => {
            "; this kernel has no NFS client (load it with 'modprobe nfs', or run the plugin with SWARMHUB_NFS_BACKEND=fuse)"
        }
        libc::EPERM => "; the plugin needs CAP_SYS_ADMIN to mount",
        libc::EINVAL => "; the mount options were refused: check SWARMHUB_NFS_MOUNT_OPTIONS",
        libc::ETIMEDOUT | libc::ECONNREFUSED | libc::EHOSTUNREACH => {
            "; check that nfsd runs and that this node reaches its port"
        }
        _ => "",
    }
}

impl Mounter for KernelMounter {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn mount(&self, spec: &MountSpec, target: &Path, deadline: Duration) -> Result<(), MountError> {
        let probe = deadline.min(Duration::from_secs(5));
        TcpStream::connect_timeout(&spec.server, probe).map_err(|e| MountError::Unreachable {
            server: spec.server,
            export: spec.shown_export(),
            cause: e.to_string(),
        })?;
        let source = mount_source(spec);
        let data = mount_options(spec);
        let mut flags = rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV;
        if spec.readonly {
            flags |= rustix::mount::MountFlags::RDONLY;
        }
        let target_buf = target.to_path_buf();
        let (tx, rx) = mpsc::channel();
        // mount(2) of a hard NFS mount can block for a long time; the caller gets an answer by
        // the deadline while the thread finishes (or fails) on its own
        std::thread::spawn(move || {
            let data = std::ffi::CString::new(data).map_err(|_| rustix::io::Errno::INVAL);
            let r = data.and_then(|d| {
                rustix::mount::mount(
                    source.as_str(),
                    &target_buf,
                    "nfs",
                    flags,
                    Some(d.as_c_str()),
                )
            });
            let _ = tx.send(r);
        });
        match rx.recv_timeout(deadline) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.raw_os_error() == libc::ENOENT => Err(MountError::NoSuchExport {
                server: spec.server,
                export: spec.shown_export(),
                target: target.display().to_string(),
                cause: format!("{} (errno {})", e, e.raw_os_error()),
            }),
            Ok(Err(e)) if e.raw_os_error() == libc::EACCES => Err(MountError::Refused {
                server: spec.server,
                export: spec.shown_export(),
                target: target.display().to_string(),
                cause: format!("{} (errno {})", e, e.raw_os_error()),
            }),
            Ok(Err(e)) => Err(MountError::Failed {
                server: spec.server,
                export: spec.shown_export(),
                target: target.display().to_string(),
                cause: format!("{} (errno {})", e, e.raw_os_error()),
                hint: hint(e.raw_os_error()).to_string(),
            }),
            Err(_) => Err(MountError::TimedOut {
                server: spec.server,
                export: spec.shown_export(),
                after: deadline,
            }),
        }
    }

    fn unmount(&self, target: &Path) -> Result<(), MountError> {
        use rustix::mount::{UnmountFlags, unmount};
        match unmount(target, UnmountFlags::empty()) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(rustix::io::Errno::BUSY) => {
                // still in use by something Docker no longer tracks: detach, the kernel finishes
                // the unmount when the last user goes
                unmount(target, UnmountFlags::DETACH).map_err(|e| MountError::Unmount {
                    target: target.display().to_string(),
                    cause: e.to_string(),
                })
            }
            Err(e) => Err(MountError::Unmount {
                target: target.display().to_string(),
                cause: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MountSpec {
        MountSpec {
            server: "10.0.2.2:12049".parse().unwrap(),
            export: "/home-alice".into(),
            readonly: false,
            extra_options: Some("timeo=600".into()),
        }
    }

    #[test]
    fn options_follow_the_brief() {
        let o = mount_options(&spec());
        assert!(
            o.starts_with("vers=3,proto=tcp,port=12049,mountport=12049,mountproto=tcp,nolock,hard"),
            "{o}"
        );
        assert!(
            o.contains("addr=10.0.2.2") && o.ends_with(",timeo=600"),
            "{o}"
        );
        assert_eq!(mount_source(&spec()), "10.0.2.2:/home-alice");
    }

    #[test]
    fn unreachable_server_fails_fast_with_a_precise_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = MountSpec {
            server: format!("127.0.0.1:{port}").parse().unwrap(),
            ..spec()
        };
        let dir = tempfile::tempdir().unwrap();
        let start = std::time::Instant::now();
        let err = KernelMounter
            .mount(&s, dir.path(), Duration::from_secs(20))
            .unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(6));
        let msg = err.to_string();
        assert!(
            msg.contains("unreachable")
                && msg.contains("/home-alice")
                && msg.contains(&port.to_string()),
            "{msg}"
        );
    }
}
