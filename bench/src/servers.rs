//! The systems under test: swarmhub-nfsd (started from the built binary), nfs-ganesha 4.3 with
//! FSAL VFS (started through `tests/guest/ganesha.sh`), and the local file system.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;
use swarmhub_tests::guest::Ganesha;
use swarmhub_tests::nfsd::{self, Nfsd};

/// The uid/gid every benchmark client sends (AUTH_SYS) and the bench volume's store identity.
pub const BENCH_UID: u32 = 40000;
pub const BENCH_GID: u32 = 40000;

/// Where an NFS export is reachable.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub host: String,
    pub nfs_port: u16,
    pub mount_port: u16,
    /// The path given to MOUNT.
    pub export: String,
}

impl Endpoint {
    /// A libnfs URL for `rel` (a path relative to the export root).
    pub fn url(&self, rel: &str) -> String {
        format!(
            "nfs://{}{}/{}?nfsport={}&mountport={}&version=3",
            self.host,
            self.export.trim_end_matches('/'),
            rel.trim_start_matches('/'),
            self.nfs_port,
            self.mount_port
        )
    }

    /// Volume `volume` of a running nfsd (MOUNT on the NFS port).
    pub fn nfsd(n: &Nfsd, volume: &str) -> Endpoint {
        Endpoint {
            host: n.nfs.ip().to_string(),
            nfs_port: n.nfs.port(),
            mount_port: n.nfs.port(),
            export: n
                .export(volume)
                .unwrap_or_else(|e| panic!("the mount path of {volume}: {e:#}")),
        }
    }

    /// The export of a running ganesha.
    pub fn ganesha(g: &Ganesha) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            nfs_port: g.port,
            mount_port: g.port + 1,
            export: g.export_path(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Nfsd,
    Ganesha,
    Local,
}

/// One system under test, as the workloads see it.
#[derive(Clone, Debug)]
pub struct Target {
    /// Column name in the table (`nfsd`, `nfsd-nosync`, `ganesha`, `local`).
    pub name: String,
    pub kind: Kind,
    /// None for the local file system.
    pub endpoint: Option<Endpoint>,
    /// The export root's directory on disk (for local: the directory the workload uses).
    pub root_dir: PathBuf,
    /// The server process (for RSS), if any.
    pub pid: Option<u32>,
    /// nfsd's control API, whose `/metrics` counts directory flushes.
    pub metrics: Option<std::net::SocketAddr>,
}

/// Finds (or builds) the `swarmhub-nfsd` binary.
///
/// Order: `$SWARMHUB_NFSD_BIN`; then, if `build` is set, `cargo build [--release] -p
/// swarmhub-nfsd` into the target directory this program runs from (so the binary is current);
/// then `<target>/<profile>/swarmhub-nfsd` for the preferred profile and the other one.
pub fn nfsd_binary(release: bool, build: bool) -> anyhow::Result<PathBuf> {
    if build {
        nfsd::build_workspace_bin("swarmhub-nfsd", "swarmhub-nfsd", release)
    } else {
        nfsd::workspace_bin_prefer("swarmhub-nfsd", release)
    }
}

/// Starts swarmhub-nfsd (`bin`, quiet log) over `data_dir`; dropping it stops it with SIGTERM.
pub fn start_nfsd(bin: &Path, data_dir: &Path, extra: &[&str]) -> anyhow::Result<Nfsd> {
    std::fs::create_dir_all(data_dir)?;
    let options = nfsd::NfsdOptions {
        bin: Some(bin.to_path_buf()),
        rust_log: "warn".into(),
        stop_on_drop: true,
    };
    Nfsd::start_with(data_dir, extra, options)
}

/// Creates a home volume `name` for `user` with explicit store ids.
pub fn create_volume(n: &Nfsd, name: &str, user: &str, uid: u32, gid: u32) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "name": name, "user": user, "identity": {"uid": uid, "gid": gid}
    });
    n.create_volume(&body.to_string())?;
    Ok(())
}

/// `VmRSS` and `VmHWM` of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Checks root and the Debian packages the selected targets and workloads need.
pub fn check_prerequisites(need_ganesha: bool, need_nfs_cp: bool) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        problems.push(
            "must run as root (nfsd acts as each volume's identity; ganesha needs a mount namespace)"
                .to_string(),
        );
    }
    let mut pkgs = Vec::new();
    if need_ganesha {
        pkgs.extend(["nfs-ganesha", "nfs-ganesha-vfs", "rpcbind"]);
    }
    if need_nfs_cp {
        pkgs.push("libnfs-utils");
    }
    let mut missing = Vec::new();
    for p in &pkgs {
        let ok = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", p])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
            .unwrap_or(false);
        if !ok {
            missing.push(*p);
        }
    }
    if !missing.is_empty() {
        problems.push(format!(
            "missing Debian packages: {} (apt-get install -y {})",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    for (needed, bin) in [
        (need_ganesha, "/usr/bin/ganesha.nfsd"),
        (
            need_ganesha,
            "/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so",
        ),
        (need_ganesha, "/usr/sbin/rpcbind"),
        (need_nfs_cp, "/usr/bin/nfs-cp"),
    ] {
        if needed && missing.is_empty() && !Path::new(bin).exists() {
            problems.push(format!("{bin} is missing"));
        }
    }
    if !problems.is_empty() {
        bail!("prerequisites not met:\n  - {}", problems.join("\n  - "));
    }
    Ok(())
}

/// CPU time (user + system, all threads including exited ones) of a process and the context
/// switches (voluntary + involuntary) of each of its live threads.
#[derive(Debug, Default, Clone)]
pub struct ProcUsage {
    pub cpu_secs: f64,
    pub switches: std::collections::HashMap<u32, u64>,
}

/// Directory fsyncs an nfsd has run so far (`swarmhub_nfsd_directory_flushes_total`).
pub fn dir_flushes(api: std::net::SocketAddr) -> Option<u64> {
    let (status, body) = swarmhub_tests::nfsd::http(api, "GET", "/metrics", None, None).ok()?;
    if status != 200 {
        return None;
    }
    body.lines()
        .find_map(|l| l.strip_prefix("swarmhub_nfsd_directory_flushes_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
}

pub fn proc_usage(pid: u32) -> Option<ProcUsage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the ")" of comm: state is field 3; utime 14, stime 15
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut switches = std::collections::HashMap::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(st) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let n: u64 = st
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            switches.insert(tid, n);
        }
    }
    Some(ProcUsage {
        cpu_secs: (utime + stime) as f64 / hz,
        switches,
    })
}

impl ProcUsage {
    /// (CPU seconds, context switches) from `before` to `self`; threads that exited in between
    /// are not counted (undercount only).
    pub fn since(&self, before: &ProcUsage) -> (f64, u64) {
        let sw = self
            .switches
            .iter()
            .map(|(tid, n)| n.saturating_sub(before.switches.get(tid).copied().unwrap_or(0)))
            .sum();
        (self.cpu_secs - before.cpu_secs, sw)
    }
}
