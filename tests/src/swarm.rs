//! A real multi-node Docker Swarm on one host, for tests: N (default 3) `dockerd` instances
//! (Debian docker.io 20.10), each in its own network, mount and UTS namespace, wired to a bridge
//! that lives in a network namespace of its own, with one veth to the host so test code can reach
//! node IPs (published `mode=host` ports, APIs). Node 1 is the manager, the others join as workers.
//! The same harness also makes one-node "machines" ([`Options::machine`]): a dockerd never in a
//! swarm, with a private `/run` where it listens on the default `/var/run/docker.sock`, that a
//! test thread can [`Swarm::enter`] to run as a process of that machine.
//!
//! It never touches the system dockerd (`/var/run/docker.sock`, `/var/lib/docker`): every node
//! has its own socket, data root, exec root, containerd, iptables (in its netns) and its own
//! copies of the paths dockerd 20.10 / containerd 1.6 write whatever the flags say
//! (`/var/lib/docker/network/files`, `/run/docker`, `/run/containerd`, `/etc/docker`), bound over
//! those paths inside the node's mount namespace only. Images come from the test builder
//! ([`crate::builder`]) as `docker save` files ([`crate::images::ensure_images`]).
//!
//! Fixed names per [`Instance`], so a crashed run's leftovers are found and removed at the next
//! start; two instances ([`SWARM`], [`MACHINE`]) can run at once. For [`SWARM`]: data and logs
//! under [`BASE`], network namespaces `swh-*`, host veth `swh-host`, subnet [`SUBNET`]`.0/24`
//! (host side `.254`, node i at `.i`), cgroup `/swarmhub-swarm` (pids hierarchy on cgroup v1, the
//! unified one on v2), lock [`LOCK_FILE`]. Every node process (dockerd, containerd, shims,
//! plugins, containers) lives in that cgroup tree or in a node netns; teardown SIGKILLs all of
//! them, unmounts, deletes the namespaces and veths and removes the data. The holder of the
//! instance's lock file (one swarm per instance and host at a time) runs the same teardown when
//! the test process dies without dropping the [`Swarm`] (SIGKILL, abort), so node processes never
//! outlive the test.
//!
//! Needs root, docker.io (`dockerd`, `containerd`), a docker CLI (`/usr/local/bin/docker` if present,
//! else `docker` on PATH), iproute2 (`ip`), util-linux (`nsenter`, `unshare`, `flock`) and a
//! filesystem under [`TESTS_ROOT`] where overlay2 works (ext4/xfs; not tmpfs on older kernels).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::docker::{CLI_TIMEOUT, Out, run_timeout};

/// Everything the test suite keeps on disk: harness instances, the image builder's cache, test
/// directories. Not under `/var/lib` (a machine's own Docker and swarmhub state live there).
pub const TESTS_ROOT: &str = "/var/tmp/swarmhub-tests";
/// Everything the [`SWARM`] instance writes: `nodes/nI/` (data root, exec root, sockets, bound
/// dirs), `logs/` (dockerd logs, teardown log).
pub const BASE: &str = "/var/tmp/swarmhub-tests/swarm";
/// flock(1) lock file of the [`SWARM`] instance: one such swarm per host at a time.
pub const LOCK_FILE: &str = "/tmp/swarmhub-swarm.lock";
/// First three octets of the [`SWARM`] node subnet (a /24): node i is `SUBNET.i`, the host
/// `SUBNET.254`.
pub const SUBNET: &str = "192.168.213";
/// The host's address on the [`SWARM`] node subnet.
pub const HOST_IP: &str = "192.168.213.254";
/// Name of the cgroup (under each hierarchy's root) holding every [`SWARM`] node process.
pub const CGROUP: &str = "swarmhub-swarm";
/// A directory at the same path in every node's mount namespace but private to each node (a
/// bind of `nodes/nI/node-local`), e.g. for settings that name one host path for all nodes
/// (a plugin's state directory). On the host it is an empty directory. (`BASE/node-local`; each
/// instance has its own: [`Instance::node_local_dir`].)
pub const NODE_LOCAL_DIR: &str = "/var/tmp/swarmhub-tests/swarm/node-local";
/// dockerd's second socket: the same path in every node's mount namespace (under the per-node
/// `/run/docker`), for settings that bind "the node's docker socket" into containers (the hub,
/// a plugin). Not reachable from the host: use [`Swarm::host`] there. A [`Options::machine`]
/// node listens on [`MACHINE_DOCKER_SOCKET`] instead.
pub const NODE_DOCKER_SOCKET: &str = "/run/docker/docker.sock";
/// dockerd's second socket on a [`Options::machine`] node: the default path, in its private `/run`.
pub const MACHINE_DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// Default node count.
pub const DEFAULT_NODES: usize = 3;

/// Names and paths of one harness instance. Instances with different values run at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    /// data and logs
    pub base: &'static str,
    /// flock(1) lock file: one swarm of this instance per host at a time
    pub lock_file: &'static str,
    /// first three octets of the node /24
    pub subnet: &'static str,
    /// cgroup name under each hierarchy's root
    pub cgroup: &'static str,
    /// network namespaces (`<prefix>br`, `<prefix>nI`) and the host veth (`<prefix>host`)
    pub ns_prefix: &'static str,
    /// node i's hostname is `<prefix>i`
    pub hostname_prefix: &'static str,
}

/// The multi-node swarm of the e2e, netiso and cluster tests, also the one-node machines of the
/// Docker-level tests (one at a time: they share the lock).
pub const SWARM: Instance = Instance {
    base: BASE,
    lock_file: LOCK_FILE,
    subnet: SUBNET,
    cgroup: CGROUP,
    ns_prefix: "swh-",
    hostname_prefix: "swarmhub-node-",
};

/// A second instance, for the demo test's machine: it runs while the Docker-level tests run on
/// [`SWARM`] beside it.
pub const MACHINE: Instance = Instance {
    base: "/var/tmp/swarmhub-tests/machine",
    lock_file: "/tmp/swarmhub-machine.lock",
    subnet: "192.168.214",
    cgroup: "swarmhub-machine",
    ns_prefix: "swm-",
    hostname_prefix: "swarmhub-machine-",
};

impl Instance {
    /// See [`NODE_LOCAL_DIR`].
    pub fn node_local_dir(&self) -> String {
        format!("{}/node-local", self.base)
    }

    fn host_veth(&self) -> String {
        format!("{}host", self.ns_prefix)
    }

    fn bridge_ns(&self) -> String {
        format!("{}br", self.ns_prefix)
    }
}

/// How [`Swarm::start_with`] sets the nodes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub nodes: usize,
    /// `swarm init` on node 1 and `join` on the others; false: dockerds never in a swarm
    pub swarm: bool,
    /// each node gets a private `/run` (tmpfs) and listens on [`MACHINE_DOCKER_SOCKET`], the
    /// default socket path, like a machine's own dockerd
    pub machine: bool,
    /// a registry (`ip:port`) every node's dockerd reaches over plain HTTP: `insecure-registries`
    /// in its daemon.json ([`Options::insecure_registry`]); `None` (the default): none
    pub insecure_registry: Option<&'static str>,
}

impl Options {
    /// `n` nodes in one swarm (node 1 the manager).
    pub fn swarm(n: usize) -> Options {
        Options {
            nodes: n,
            swarm: true,
            machine: false,
            insecure_registry: None,
        }
    }

    /// One machine: a dockerd that was never in a swarm, on the default socket path.
    pub fn machine() -> Options {
        Options {
            nodes: 1,
            swarm: false,
            machine: true,
            insecure_registry: None,
        }
    }

    /// These options, with every node's dockerd trusting the registry at `addr` (`ip:port`)
    /// over plain HTTP (`"insecure-registries": [addr]` in its daemon.json), e.g.
    /// `Options::swarm(2).insecure_registry(registry::REGISTRY_ADDR)` for a
    /// [`crate::registry::Registry`] on [`HOST_IP`], which every node reaches.
    pub fn insecure_registry(mut self, addr: &'static str) -> Options {
        self.insecure_registry = Some(addr);
        self
    }
}

/// A node dockerd's daemon.json: cgroupfs, log level info and, when given, one registry it
/// trusts over plain HTTP.
fn daemon_json(insecure_registry: Option<&str>) -> String {
    let registries = insecure_registry
        .map(|r| {
            format!(
                ",\n  \"insecure-registries\": [{}]",
                serde_json::Value::from(r)
            )
        })
        .unwrap_or_default();
    format!(
        "{{\n  \"exec-opts\": [\"native.cgroupdriver=cgroupfs\"],\n  \"log-level\": \"info\"{registries}\n}}\n"
    )
}

/// Kills every node process, unmounts, removes namespaces, veths, cgroups and data.
/// `$1` base dir, `$2` cgroup name, `$3` `all` (also logs) or `keep-logs`, `$4` netns prefix.
/// Spares its parent (a test process whose thread may be inside a node's namespaces).
pub(crate) const TEARDOWN: &str = r#"
B="$1"; CGN="$2"; MODE="$3"; P="$4"
[ -n "$B" ] && [ "$B" != / ] && [ -n "$CGN" ] && [ -n "$P" ] || { echo "teardown: bad arguments" >&2; exit 2; }
cgdirs() { for d in /sys/fs/cgroup/*/"$CGN" /sys/fs/cgroup/"$CGN"; do [ -d "$d" ] && echo "$d"; done; }
nslist() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P"; }
alive() { # drops zombies (their parent reaps them) and ourselves
  while read -r p; do
    [ "$p" = "$$" ] && continue
    [ "$p" = "$PPID" ] && continue
    s=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ] && echo "$p"
  done
}
rc=0
round=0
while :; do
  pids=$( { for ns in $(nslist); do ip netns pids "$ns" 2>/dev/null; done
            for d in $(cgdirs); do find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null; done; } \
          | sort -un | alive)
  [ -z "$pids" ] && break
  round=$((round + 1))
  if [ "$round" -gt 100 ]; then echo "teardown: processes survive SIGKILL:" $pids >&2; rc=1; break; fi
  kill -9 $pids 2>/dev/null
  sleep 0.1
done
mounts() { awk -v b="$B" '$5 == b || index($5, b "/") == 1 {print $5}' /proc/self/mountinfo; }
for m in $(mounts | sort -r); do umount -l "$m" || { echo "teardown: umount -l $m failed" >&2; rc=1; }; done
for d in $(cgdirs); do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
for d in $(cgdirs); do echo "teardown: cgroup $d remains" >&2; rc=1; done
for ns in $(nslist); do ip netns del "$ns" || { echo "teardown: ip netns del $ns failed" >&2; rc=1; }; done
ip link del "${P}host" 2>/dev/null
if [ -n "$(mounts)" ]; then
  echo "teardown: mounts remain under $B, not removing it:" $(mounts) >&2; exit 1
fi
rm -rf --one-file-system "$B/nodes" "$B/images" "$B/plugin" "$B/node-local"
[ "$MODE" = all ] && rm -rf --one-file-system "$B/logs"
exit $rc
"#;

/// Builds the bridge namespace, the host veth and one veth + netns per node. `$1` = N, `$2` the
/// subnet prefix, `$3` the netns prefix. Nodes get no default route: a registry lookup (Swarm
/// tries to pull before it uses a local image) then fails at once instead of after a 20 s DNS
/// timeout.
const NETWORK_UP: &str = r#"
set -e
N=$1; S=$2; P=$3
ip netns add "${P}br"
ip -n "${P}br" link set lo up
ip -n "${P}br" link add br0 type bridge
ip -n "${P}br" link set br0 up
ip link add "${P}host" type veth peer name host netns "${P}br"
ip -n "${P}br" link set host master br0 up
ip addr add "$S.254/24" dev "${P}host"
ip link set "${P}host" up
i=1
while [ "$i" -le "$N" ]; do
  ip netns add "${P}n$i"
  ip -n "${P}br" link add "n$i" type veth peer name eth0 netns "${P}n$i"
  ip -n "${P}br" link set "n$i" master br0 up
  ip -n "${P}n$i" link set lo up
  ip -n "${P}n$i" addr add "$S.$i/24" dev eth0
  ip -n "${P}n$i" link set eth0 up
  i=$((i + 1))
done
"#;

/// Runs in the node's fresh mount + UTS namespace: cgroup, hostname, the per-node binds, then
/// holds the namespaces (`sleep`) so dockerd can be killed and restarted inside the same ones.
/// `$1` node index, `$2` node dir, `$3` cgroup dir for the holder, `$4` the node-local dir,
/// `$5` the hostname, `$6` `machine` (a private tmpfs on `/run`) or `shared-run`.
const HOLDER: &str = r#"
set -e
i=$1; D=$2; CG=$3
echo $$ > "$CG/cgroup.procs"
hostname "$5"
[ "$6" = machine ] && mount -n -t tmpfs -o mode=755,size=64m swarmhub-run /run
for pair in netfiles:/var/lib/docker/network/files run-docker:/run/docker \
            run-containerd:/run/containerd etc-docker:/etc/docker; do
  src="$D/${pair%%:*}"; dst="${pair#*:}"
  mkdir -p "$src" "$dst"
  mount -n --bind "$src" "$dst"
done
mkdir -p "$D/node-local" "$4"
mount -n --bind "$D/node-local" "$4"
mkdir -p /run/docker/plugins /run/containerd/s
echo ready
exec sleep infinity
"#;

/// Runs inside the node's namespaces (nsenter): joins the daemon cgroup, execs dockerd.
/// `$1` node dir, `$2` cgroup dir, `$3` cgroup parent for containers, `$4` the second socket
/// ([`NODE_DOCKER_SOCKET`] or [`MACHINE_DOCKER_SOCKET`], inside the node's own `/run`).
const DOCKERD: &str = r#"
D=$1; CG=$2; PARENT=$3
echo $$ > "$CG/cgroup.procs" || exit 1
exec dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
  --host "unix://$D/docker.sock" --host "unix://$4" --config-file "$D/daemon.json" --cgroup-parent "$PARENT"
"#;

/// The docker CLI the harness uses: the v28 client in /usr/local/bin when present.
pub fn docker_cli() -> &'static str {
    if Path::new("/usr/local/bin/docker").exists() {
        "/usr/local/bin/docker"
    } else {
        "docker"
    }
}

/// The namespaces (net, mnt, uts) of the first thread that called [`Swarm::enter`], before it
/// entered: the host's.
static HOST_NS: std::sync::OnceLock<[OwnedFd; 3]> = std::sync::OnceLock::new();

fn set_namespaces(fds: &[OwnedFd; 3]) -> std::io::Result<()> {
    for (fd, kind) in fds
        .iter()
        .zip([libc::CLONE_NEWNET, libc::CLONE_NEWNS, libc::CLONE_NEWUTS])
    {
        // SAFETY: setns(2) on a namespace fd this process holds open
        if unsafe { libc::setns(fd.as_raw_fd(), kind) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A thread inside a node's namespaces ([`Swarm::enter`]); dropping it moves the thread back.
pub struct Entered {
    saved: [OwnedFd; 3],
    cwd: PathBuf,
}

impl Entered {
    /// `program` run in the namespaces this thread had before it entered (the host's).
    pub fn host_command(&self, program: &str) -> Command {
        host_command(program)
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Err(e) = set_namespaces(&self.saved) {
            eprintln!("swarm harness: moving a test thread back to the host's namespaces: {e}");
        }
        let _ = std::env::set_current_dir(&self.cwd);
    }
}

/// A command for `program` that runs in the host's namespaces even when the calling thread has
/// [`Swarm::enter`]ed a node (harness plumbing, image builds, nested test runs); in the same
/// working directory path (the command's own, if it is given one).
pub fn host_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    if let Some(fds) = HOST_NS.get() {
        let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let mut cwd = vec![0u8; 4096];
        // SAFETY: only async-signal-safe syscalls between fork and exec, into buffers allocated
        // before the fork
        unsafe {
            cmd.pre_exec(move || {
                // the working directory the command was given (or inherited), as a path
                if libc::getcwd(cwd.as_mut_ptr().cast(), cwd.len()).is_null() {
                    return Err(std::io::Error::last_os_error());
                }
                for (fd, kind) in
                    raw.iter()
                        .zip([libc::CLONE_NEWNET, libc::CLONE_NEWNS, libc::CLONE_NEWUTS])
                {
                    if libc::setns(*fd, kind) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // setns(CLONE_NEWNS) moved the working directory to the root
                if libc::chdir(cwd.as_ptr().cast()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd
}

/// Polls `f` every 200 ms until it returns `Ok`; `Err` is the last observed state, quoted in the
/// timeout error. Returns the value and how long it took.
pub fn wait_until<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> anyhow::Result<(T, Duration)> {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return Ok((v, start.elapsed())),
            Err(last) => {
                if start.elapsed() > limit {
                    bail!("waited {limit:?} for {what}; last seen: {last}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One row of `docker node ls` on the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub hostname: String,
    /// `Ready`, `Down`, `Unknown`, `Disconnected`
    pub status: String,
    /// `Active`, `Pause`, `Drain`
    pub availability: String,
    /// `Leader`, `Reachable`, `Unreachable`, or empty for a worker
    pub manager_status: String,
}

struct Node {
    dir: PathBuf,
    holder: Child,
    dockerd: Option<Child>,
}

/// A running swarm of [`Swarm::len`] nodes; node indices are 1-based (node 1 = manager,
/// hostname `swarmhub-node-1`). Dropping it tears everything down.
pub struct Swarm {
    inst: Instance,
    opts: Options,
    nodes: Vec<Node>,
    cgroup_root: PathBuf,
    /// flock(1) holding the instance's lock file; on EOF of its stdin it runs [`TEARDOWN`], then unlocks
    guard: Child,
    guard_stdin: Option<ChildStdin>,
    /// how long [`Swarm::start`] took from lock to all nodes Ready
    pub bring_up: Duration,
}

fn on_path(bin: &str) -> bool {
    if bin.contains('/') {
        return Path::new(bin).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).exists()))
        .unwrap_or(false)
}

fn sh(what: &str, script: &str, args: &[&str], timeout: Duration) -> anyhow::Result<Out> {
    let mut c = host_command("sh");
    c.arg("-c").arg(script).arg(what).args(args);
    run_timeout(c, timeout).with_context(|| format!("running the {what} script"))
}

/// The cgroup hierarchy node processes go to: v1 `pids` if mounted, else the v2 root.
pub(crate) fn cgroup_root() -> anyhow::Result<PathBuf> {
    let v1 = Path::new("/sys/fs/cgroup/pids");
    if v1.join("cgroup.procs").exists() {
        return Ok(v1.to_path_buf());
    }
    let v2 = Path::new("/sys/fs/cgroup");
    if v2.join("cgroup.controllers").exists() {
        return Ok(v2.to_path_buf());
    }
    bail!("no cgroup hierarchy found (neither /sys/fs/cgroup/pids nor cgroup v2 at /sys/fs/cgroup)")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cgroup_pids(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return pids;
    };
    if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            pids.extend(cgroup_pids(&e.path()));
        }
    }
    pids
}

impl Swarm {
    /// [`Swarm::start`] with [`DEFAULT_NODES`] nodes.
    pub fn start_default() -> anyhow::Result<Swarm> {
        Swarm::start(DEFAULT_NODES)
    }

    /// A swarm of `n` nodes of the [`SWARM`] instance: [`Swarm::start_with`]`(&SWARM,
    /// Options::swarm(n))`.
    pub fn start(n: usize) -> anyhow::Result<Swarm> {
        Swarm::start_with(SWARM, Options::swarm(n))
    }

    /// Takes the instance's lock (waits at most 15 minutes), removes leftovers of earlier runs,
    /// builds the network, starts the dockerds and, with `opts.swarm`, makes node 1 the manager
    /// (`swarm init`), joins the others as workers and waits until all are Ready.
    pub fn start_with(inst: Instance, opts: Options) -> anyhow::Result<Swarm> {
        let n = opts.nodes;
        ensure!((1..=200).contains(&n), "a swarm of {n} nodes: use 1..=200");
        ensure!(
            crate::docker::is_root(),
            "the swarm harness needs root (network namespaces, mounts, dockerd)"
        );
        for (bin, hint) in [
            ("dockerd", "apt-get install -y docker.io"),
            ("containerd", "apt-get install -y docker.io"),
            (docker_cli(), "apt-get install -y docker.io (docker CLI)"),
            ("ip", "apt-get install -y iproute2"),
            ("nsenter", "apt-get install -y util-linux"),
            ("unshare", "apt-get install -y util-linux"),
            ("flock", "apt-get install -y util-linux"),
            (
                "iptables",
                "apt-get install -y iptables (dockerd needs it in each node)",
            ),
        ] {
            ensure!(on_path(bin), "`{bin}` is not on PATH; {hint}");
        }
        let t0 = Instant::now();
        let cgroup_root = cgroup_root()?;
        let (guard, guard_stdin) = lock_and_guard(&inst)?;
        let mut swarm = Swarm {
            inst,
            opts,
            nodes: Vec::new(),
            cgroup_root,
            guard,
            guard_stdin: Some(guard_stdin),
            bring_up: Duration::ZERO,
        };
        let out = sh(
            "teardown",
            TEARDOWN,
            &[inst.base, inst.cgroup, "all", inst.ns_prefix],
            Duration::from_secs(120),
        )?;
        ensure!(
            out.success(),
            "removing leftovers of an earlier swarm run failed: {}",
            out.describe()
        );
        let subnet = inst.subnet;
        let routes = Command::new("ip")
            .args(["-o", "route", "show", "to", "match", &format!("{subnet}.1")])
            .output()
            .context("ip route")?;
        let routes = String::from_utf8_lossy(&routes.stdout).into_owned();
        ensure!(
            !routes.lines().any(|l| l.contains(&format!("{subnet}."))),
            "the swarm subnet {subnet}.0/24 is already routed on this host ({}); the harness needs it free",
            routes.trim()
        );
        for d in ["nodes", "logs"] {
            std::fs::create_dir_all(Path::new(inst.base).join(d))
                .with_context(|| format!("creating {}/{d}", inst.base))?;
        }
        let out = sh(
            "network-up",
            NETWORK_UP,
            &[&n.to_string(), subnet, inst.ns_prefix],
            Duration::from_secs(60),
        )?;
        ensure!(
            out.success(),
            "building the swarm network (netns {}, veth {}, {}nI): {}",
            inst.bridge_ns(),
            inst.host_veth(),
            inst.ns_prefix,
            out.describe()
        );
        for i in 1..=n {
            swarm.start_holder(i)?;
        }
        for i in 1..=n {
            swarm.spawn_dockerd(i)?;
        }
        for i in 1..=n {
            swarm.wait_dockerd(i, Duration::from_secs(90))?;
        }
        if !opts.swarm {
            swarm.bring_up = t0.elapsed();
            return Ok(swarm);
        }
        swarm.docker_ok(
            1,
            &[
                "swarm",
                "init",
                "--advertise-addr",
                &swarm.ip(1),
                "--listen-addr",
                &format!("{}:2377", swarm.ip(1)),
            ],
        )?;
        let token = swarm.docker_ok(1, &["swarm", "join-token", "-q", "worker"])?;
        let manager = format!("{}:2377", swarm.ip(1));
        let joins: Vec<Out> = std::thread::scope(|s| {
            let handles: Vec<_> = (2..=n)
                .map(|i| {
                    let (sw, token, manager) = (&swarm, &token, &manager);
                    s.spawn(move || {
                        sw.docker(
                            i,
                            &[
                                "swarm",
                                "join",
                                "--token",
                                token,
                                "--advertise-addr",
                                &sw.ip(i),
                                "--listen-addr",
                                &format!("{}:2377", sw.ip(i)),
                                manager,
                            ],
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("join thread"))
                .collect()
        });
        for (k, out) in joins.iter().enumerate() {
            ensure!(
                out.success(),
                "node {} joining the swarm: {}",
                k + 2,
                out.describe()
            );
        }
        swarm.wait_all_ready(Duration::from_secs(90))?;
        swarm.bring_up = t0.elapsed();
        Ok(swarm)
    }

    fn node(&self, i: usize) -> &Node {
        assert!(
            (1..=self.nodes.len()).contains(&i),
            "node {i}: the swarm has nodes 1..={}",
            self.nodes.len()
        );
        &self.nodes[i - 1]
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        let n = self.nodes.len();
        assert!(
            (1..=n).contains(&i),
            "node {i}: the swarm has nodes 1..={n}"
        );
        &mut self.nodes[i - 1]
    }

    fn cgroup_dir(&self, i: usize) -> PathBuf {
        self.cgroup_root
            .join(self.inst.cgroup)
            .join(format!("n{i}"))
    }

    /// Starts node i's namespace holder (nodes are pushed in order).
    fn start_holder(&mut self, i: usize) -> anyhow::Result<()> {
        assert_eq!(self.nodes.len() + 1, i, "holders start in order");
        let dir = Path::new(self.inst.base)
            .join("nodes")
            .join(format!("n{i}"));
        for d in ["data", "exec", "plugin-state"] {
            std::fs::create_dir_all(dir.join(d))
                .with_context(|| format!("creating {}/{d}", dir.display()))?;
        }
        std::fs::write(
            dir.join("daemon.json"),
            daemon_json(self.opts.insecure_registry),
        )?;
        for sub in ["holder", "daemon"] {
            let cg = self.cgroup_dir(i).join(sub);
            std::fs::create_dir_all(&cg)
                .with_context(|| format!("creating cgroup {}", cg.display()))?;
        }
        let mut holder = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}n{i}", self.inst.ns_prefix))
            .args([
                "--",
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "slave",
                "--",
                "sh",
                "-c",
                HOLDER,
                "holder",
                &i.to_string(),
            ])
            .arg(&dir)
            .arg(self.cgroup_dir(i).join("holder"))
            .arg(self.inst.node_local_dir())
            .arg(format!("{}{i}", self.inst.hostname_prefix))
            .arg(if self.opts.machine {
                "machine"
            } else {
                "shared-run"
            })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting node {i}'s namespace holder (nsenter, unshare)"))?;
        let mut line = String::new();
        let mut out = BufReader::new(holder.stdout.take().expect("piped"));
        let _ = out.read_line(&mut line);
        if line.trim() != "ready" {
            let _ = holder.kill();
            let _ = holder.wait();
            let mut err = String::new();
            if let Some(mut e) = holder.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            bail!(
                "node {i}'s namespace holder failed setting up hostname and bind mounts: {}{}",
                line.trim(),
                err.trim()
            );
        }
        self.nodes.push(Node {
            dir,
            holder,
            dockerd: None,
        });
        Ok(())
    }

    fn spawn_dockerd(&mut self, i: usize) -> anyhow::Result<()> {
        let log_path = self.log_path(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let daemon_cg = self.cgroup_dir(i).join("daemon");
        let parent = format!("/{}/n{i}", self.inst.cgroup);
        let socket = if self.opts.machine {
            MACHINE_DOCKER_SOCKET
        } else {
            NODE_DOCKER_SOCKET
        };
        let node = self.node(i);
        ensure!(node.dockerd.is_none(), "node {i}'s dockerd already runs");
        let child = Command::new("nsenter")
            .arg(format!("--target={}", node.holder.id()))
            .args([
                "--mount", "--uts", "--net", "--", "sh", "-c", DOCKERD, "dockerd",
            ])
            .arg(&node.dir)
            .arg(&daemon_cg)
            .arg(&parent)
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting node {i}'s dockerd (nsenter)"))?;
        self.node_mut(i).dockerd = Some(child);
        Ok(())
    }

    fn wait_dockerd(&mut self, i: usize, limit: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            let out = self.docker_timeout(
                i,
                &["version", "--format", "{{.Server.Version}}"],
                Duration::from_secs(10),
            );
            if out.success() {
                return Ok(start.elapsed());
            }
            let exited = self
                .node_mut(i)
                .dockerd
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(st) = exited {
                self.node_mut(i).dockerd = None;
                bail!(
                    "node {i}'s dockerd exited while starting ({st}); log tail ({}):\n{}",
                    self.log_path(i).display(),
                    self.log_tail(i, 40)
                );
            }
            if start.elapsed() > limit {
                bail!(
                    "node {i}'s dockerd did not answer on {} within {limit:?}; last: {}\nlog tail ({}):\n{}",
                    self.host(i),
                    out.describe(),
                    self.log_path(i).display(),
                    self.log_tail(i, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true for a started swarm (clippy wants it beside `len`).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node i's IP on the node subnet (reachable from the host).
    pub fn ip(&self, i: usize) -> String {
        self.node(i);
        format!("{}.{i}", self.inst.subnet)
    }

    /// Node i's hostname, as `docker node ls` shows it.
    pub fn hostname(&self, i: usize) -> String {
        self.node(i);
        format!("{}{i}", self.inst.hostname_prefix)
    }

    /// Node i's docker host string (`unix:///.../docker.sock`).
    pub fn host(&self, i: usize) -> String {
        format!("unix://{}", self.node(i).dir.join("docker.sock").display())
    }

    /// `swarmhub --config CONFIG ARGS` against node 1 (the manager), as an admin on the
    /// manager would run it.
    pub fn swarmhub_cmd(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(
            crate::nfsd::workspace_bin("swarmhub")
                .expect("the swarmhub binary (cargo build -p hub-deployer --bins)"),
        );
        cmd.env("DOCKER_HOST", self.host(1))
            .env_remove("DOCKER_CONTEXT")
            .arg("--config")
            .arg(config)
            .args(args);
        cmd
    }

    /// Runs [`Swarm::swarmhub_cmd`] within `timeout` and echoes its output.
    pub fn swarmhub(&self, config: &Path, args: &[&str], timeout: Duration) -> Out {
        let out = run_timeout(self.swarmhub_cmd(config, args), timeout).expect("running swarmhub");
        out.echo(&format!("swarmhub {}", args.join(" ")));
        out
    }

    /// Like [`Swarm::swarmhub`]; its stdout, or an error with the whole output.
    pub fn swarmhub_ok(
        &self,
        config: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let out = self.swarmhub(config, args, timeout);
        ensure!(
            out.success(),
            "swarmhub {} failed: {}",
            args.join(" "),
            out.describe()
        );
        Ok(out.stdout)
    }

    /// Node i's [`NODE_LOCAL_DIR`] as the host sees it.
    pub fn node_local_dir(&self, i: usize) -> PathBuf {
        self.node(i).dir.join("node-local")
    }

    /// Node i's own directory (data root `data/`, exec root `exec/`, `plugin-state/`, ...).
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.node(i).dir.clone()
    }

    /// A host directory for a managed plugin's state mount on node i (exists, empty at start).
    pub fn plugin_state_dir(&self, i: usize) -> PathBuf {
        self.node(i).dir.join("plugin-state")
    }

    /// Node i's dockerd log (appended across restarts).
    pub fn log_path(&self, i: usize) -> PathBuf {
        Path::new(self.inst.base)
            .join("logs")
            .join(format!("dockerd-n{i}.log"))
    }

    /// Last `n` lines of node i's dockerd log.
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// A `docker` CLI command against node i (`-H`; DOCKER_HOST and DOCKER_CONTEXT cleared).
    pub fn docker_cmd(&self, i: usize, args: &[&str]) -> Command {
        let mut c = Command::new(docker_cli());
        c.env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .arg("-H")
            .arg(self.host(i))
            .args(args);
        c
    }

    /// `docker -H <node i> ARGS`, killed after `timeout`.
    pub fn docker_timeout(&self, i: usize, args: &[&str], timeout: Duration) -> Out {
        run_timeout(self.docker_cmd(i, args), timeout)
            .unwrap_or_else(|e| panic!("running the docker CLI ({}): {e:#}", docker_cli()))
    }

    /// `docker -H <node i> ARGS` with [`CLI_TIMEOUT`].
    pub fn docker(&self, i: usize, args: &[&str]) -> Out {
        self.docker_timeout(i, args, CLI_TIMEOUT)
    }

    /// `docker -H <node i> ARGS` that must succeed; trimmed stdout, or an error with the output.
    pub fn docker_ok(&self, i: usize, args: &[&str]) -> anyhow::Result<String> {
        let out = self.docker(i, args);
        ensure!(
            out.success(),
            "docker on node {i} failed: {}",
            out.describe()
        );
        Ok(out.stdout.trim().to_string())
    }

    /// `docker service ps` rows of the running tasks of `service`, asked on the manager (node
    /// 1): (node host name, current state).
    pub fn running_tasks(&self, service: &str) -> Result<Vec<(String, String)>, String> {
        let out = self
            .docker_ok(
                1,
                &[
                    "service",
                    "ps",
                    service,
                    "--filter",
                    "desired-state=running",
                    "--format",
                    "{{.Node}}\t{{.CurrentState}}",
                ],
            )
            .map_err(|e| format!("{e:#}"))?;
        Ok(out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (n, s) = l.split_once('\t').unwrap_or((l, ""));
                (n.trim().to_string(), s.trim().to_string())
            })
            .collect())
    }

    /// `docker node ls` on the manager (node 1).
    pub fn node_states(&self) -> anyhow::Result<Vec<NodeState>> {
        let out = self.docker_ok(
            1,
            &[
                "node",
                "ls",
                "--format",
                "{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}",
            ],
        )?;
        Ok(out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut f = l.split('\t').map(str::trim).map(String::from);
                NodeState {
                    hostname: f.next().unwrap_or_default(),
                    status: f.next().unwrap_or_default(),
                    availability: f.next().unwrap_or_default(),
                    manager_status: f.next().unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Node i's status as the manager sees it (`Ready`, `Down`, ...).
    pub fn node_status(&self, i: usize) -> anyhow::Result<String> {
        let host = self.hostname(i);
        let states = self.node_states()?;
        let s = states
            .iter()
            .find(|s| s.hostname == host)
            .with_context(|| format!("node {host} is not in `docker node ls`: {states:?}"))?;
        Ok(s.status.clone())
    }

    /// Waits until the manager lists every node once, all `Ready`.
    pub fn wait_all_ready(&self, limit: Duration) -> anyhow::Result<Duration> {
        let want: Vec<String> = (1..=self.len()).map(|i| self.hostname(i)).collect();
        let (_, took) = wait_until(
            &format!("all {} swarm nodes to be Ready", self.len()),
            limit,
            || {
                let states = self.node_states().map_err(|e| format!("{e:#}"))?;
                let ok = states.len() == want.len()
                    && want.iter().all(|h| {
                        states
                            .iter()
                            .any(|s| &s.hostname == h && s.status == "Ready")
                    });
                if ok {
                    Ok(())
                } else {
                    Err(format!("{states:?}"))
                }
            },
        )?;
        Ok(took)
    }

    /// Waits until the manager reports node i with `status` (`Ready`, `Down`, ...).
    pub fn wait_node_status(
        &self,
        i: usize,
        status: &str,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        let (_, took) = wait_until(
            &format!("node {} to be {status}", self.hostname(i)),
            limit,
            || match self.node_status(i) {
                Ok(s) if s == status => Ok(()),
                Ok(s) => Err(s),
                Err(e) => Err(format!("{e:#}")),
            },
        )?;
        Ok(took)
    }

    /// SIGKILLs node i's dockerd (a crash: containerd, shims and containers keep running) and
    /// reaps it.
    pub fn kill_dockerd(&mut self, i: usize) -> anyhow::Result<()> {
        let node = self.node_mut(i);
        let mut child = node
            .dockerd
            .take()
            .with_context(|| format!("node {i}'s dockerd is not running"))?;
        child
            .kill()
            .with_context(|| format!("SIGKILL to node {i}'s dockerd"))?;
        child.wait()?;
        Ok(())
    }

    /// Starts node i's dockerd again in the same namespaces, data root and swarm state; waits
    /// until it answers (not until the manager sees it Ready: [`Swarm::wait_node_status`]).
    pub fn start_dockerd(&mut self, i: usize) -> anyhow::Result<Duration> {
        let start = Instant::now();
        self.spawn_dockerd(i)?;
        self.wait_dockerd(i, Duration::from_secs(90))?;
        Ok(start.elapsed())
    }

    /// Loads `tag` into every node (`docker load`, in parallel) from the file
    /// [`crate::images::ensure_images`] saved it to.
    pub fn load_image(&self, tag: &str) -> anyhow::Result<()> {
        let file = crate::images::saved_image(tag)?;
        let file = file.to_string_lossy().into_owned();
        self.on_every_node(&format!("loading image {tag}"), |i| {
            self.docker_timeout(i, &["load", "-i", &file], Duration::from_secs(600))
        })
    }

    /// Imports the busybox test image `tag` ([`crate::docker::busybox_tar`]) into every node.
    pub fn load_busybox(&self, tag: &str) -> anyhow::Result<()> {
        let file = crate::docker::busybox_tar()?;
        let file = file.to_string_lossy().into_owned();
        self.on_every_node(&format!("importing {tag}"), |i| {
            self.docker(i, &["import", "--change", "ENV PATH=/bin", &file, tag])
        })
    }

    /// Runs `f` for every node in parallel; an error names the first node that failed.
    fn on_every_node(&self, what: &str, f: impl Fn(usize) -> Out + Sync) -> anyhow::Result<()> {
        let outs: Vec<(usize, Out)> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..=self.len())
                .map(|i| {
                    let f = &f;
                    s.spawn(move || (i, f(i)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("node thread"))
                .collect()
        });
        for (i, out) in outs {
            ensure!(out.success(), "{what} on node {i}: {}", out.describe());
        }
        Ok(())
    }

    /// Stops node i's dockerd gracefully (SIGTERM; SIGKILL after 60 s) and starts it again in
    /// the same namespaces and data root; returns how long until it answered again.
    pub fn restart_dockerd(&mut self, i: usize) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut child = self
            .node_mut(i)
            .dockerd
            .take()
            .with_context(|| format!("node {i}'s dockerd is not running"))?;
        // dockerd is exec'd by the sh the child started: same pid
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        ensure!(st.success(), "kill -TERM node {i}'s dockerd failed");
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                eprintln!("swarm harness: node {i}'s dockerd ignored SIGTERM for 60 s; killing it");
                let _ = child.kill();
                child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.spawn_dockerd(i)?;
        self.wait_dockerd(i, Duration::from_secs(90))?;
        Ok(start.elapsed())
    }

    /// Moves the calling thread into node i's network, mount and UTS namespaces (its working
    /// directory stays the same path), so that what it runs from then on runs on that node as
    /// on a machine of its own: the `docker` CLI without `-H` reaches the node's dockerd on a
    /// [`Options::machine`] node, servers it starts listen in the node's network. Other threads
    /// are not affected; [`host_command`] runs a program in the host's namespaces again.
    /// Dropping the returned guard moves the thread back.
    pub fn enter(&self, i: usize) -> anyhow::Result<Entered> {
        let holder = self.node(i).holder.id();
        let cwd = std::env::current_dir().context("the current directory")?;
        let own = |ns: &str| -> anyhow::Result<OwnedFd> {
            Ok(std::fs::File::open(format!("/proc/thread-self/ns/{ns}"))
                .with_context(|| format!("opening this thread's {ns} namespace"))?
                .into())
        };
        let saved = [own("net")?, own("mnt")?, own("uts")?];
        let _ = HOST_NS.set([
            saved[0].try_clone()?,
            saved[1].try_clone()?,
            saved[2].try_clone()?,
        ]);
        let target = |ns: &str| -> anyhow::Result<OwnedFd> {
            Ok(std::fs::File::open(format!("/proc/{holder}/ns/{ns}"))
                .with_context(|| format!("opening node {i}'s {ns} namespace (holder {holder})"))?
                .into())
        };
        let fds = [target("net")?, target("mnt")?, target("uts")?];
        // SAFETY: plain syscalls on this thread; unshare(CLONE_FS) gives it its own root and
        // working directory, which setns(CLONE_NEWNS) requires of a thread in a process with others
        unsafe {
            ensure!(
                libc::unshare(libc::CLONE_FS) == 0,
                "unshare(CLONE_FS): {}",
                std::io::Error::last_os_error()
            );
        }
        set_namespaces(&fds).with_context(|| format!("entering node {i}'s namespaces"))?;
        std::env::set_current_dir(&cwd)
            .with_context(|| format!("{} in node {i}'s mount namespace", cwd.display()))?;
        Ok(Entered { saved, cwd })
    }

    /// `docker node update --label-add KEY=VALUE <node i>` on the manager.
    pub fn label_node(&self, i: usize, key: &str, value: &str) -> anyhow::Result<()> {
        self.docker_ok(
            1,
            &[
                "node",
                "update",
                "--label-add",
                &format!("{key}={value}"),
                &self.hostname(i),
            ],
        )?;
        Ok(())
    }

    /// Installs a managed plugin from a plugin directory (`config.json` + `rootfs/`, see
    /// [`build_plugin_dir`]) on every node: `plugin create NAME DIR`, `plugin set` with the
    /// node's own state dir ([`Swarm::plugin_state_dir`]) and docker socket plus `settings`
    /// (`KEY=VALUE`), `plugin enable`. Returns each node's enable time.
    pub fn install_plugin(
        &self,
        name: &str,
        dir: &Path,
        settings: &[String],
    ) -> anyhow::Result<Vec<Duration>> {
        let dir_s = dir.to_string_lossy().into_owned();
        let mut took = Vec::new();
        for i in 1..=self.len() {
            self.docker_ok(i, &["plugin", "create", name, &dir_s])
                .with_context(|| format!("creating plugin {name} on node {i}"))?;
            let mut set = vec![
                "plugin".to_string(),
                "set".into(),
                name.into(),
                format!("state.source={}", self.plugin_state_dir(i).display()),
                format!(
                    "docker-socket.source={}",
                    self.node(i).dir.join("docker.sock").display()
                ),
            ];
            set.extend(settings.iter().cloned());
            let set: Vec<&str> = set.iter().map(String::as_str).collect();
            self.docker_ok(i, &set)
                .with_context(|| format!("configuring plugin {name} on node {i}"))?;
            let out = self.docker_timeout(i, &["plugin", "enable", name], Duration::from_secs(60));
            ensure!(
                out.success(),
                "enabling plugin {name} on node {i}: {}\nlog tail:\n{}",
                out.describe(),
                self.log_tail(i, 20)
            );
            took.push(out.took);
        }
        Ok(took)
    }

    /// A short path to plugin `name`'s socket on node i, usable from the host: the real one
    /// (`run-docker/plugins/<id>/<socket>` in the node dir) is longer than a unix socket address
    /// may be, so this is a symlink `nodes/nI/sock-<id prefix>` to its directory plus the socket.
    pub fn plugin_socket(&self, i: usize, name: &str) -> anyhow::Result<PathBuf> {
        let info = self.docker_ok(
            i,
            &[
                "plugin",
                "inspect",
                "-f",
                "{{.Id}} {{.Config.Interface.Socket}}",
                name,
            ],
        )?;
        let (id, socket) = info
            .split_once(' ')
            .with_context(|| format!("plugin {name} on node {i}: inspect said {info:?}"))?;
        let dir = self.node(i).dir.join("run-docker/plugins").join(id);
        let link = self
            .node(i)
            .dir
            .join(format!("sock-{}", &id[..id.len().min(12)]));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&dir, &link)
            .with_context(|| format!("symlink {} -> {}", link.display(), dir.display()))?;
        Ok(link.join(socket))
    }

    /// RSS (KiB) of node i's own processes: dockerd, containerd, shims (not the containers).
    pub fn daemon_rss_kib(&self, i: usize) -> u64 {
        cgroup_pids(&self.cgroup_dir(i).join("daemon"))
            .into_iter()
            .map(rss_kib)
            .sum()
    }

    /// RSS (KiB) of everything node i runs: daemons, plugins and containers.
    pub fn total_rss_kib(&self, i: usize) -> u64 {
        cgroup_pids(&self.cgroup_dir(i))
            .into_iter()
            .map(rss_kib)
            .sum()
    }

    /// The start of a `swarmhub.toml`'s `[cluster]` section for this harness: nfsd's data in
    /// `data_dir` (a host path: node 1 sees the host's file system), the plugin's state in each
    /// node's private [`NODE_LOCAL_DIR`], the FUSE backend (the host kernel has no NFS client),
    /// dockerd's socket as the nodes place it. Callers add the section's other keys.
    pub fn swarmhub_cluster_section(data_dir: &Path) -> String {
        format!(
            "[cluster]\nnfsd_data_dir = \"{}\"\nplugin_state_dir = \"{NODE_LOCAL_DIR}/swarmhub-nfs\"\nplugin_backend = \"fuse\"\ndocker_socket = \"{NODE_DOCKER_SOCKET}\"\n",
            data_dir.display()
        )
    }

    /// RSS (KiB) of node i's processes (daemons, plugins, containers) whose command name
    /// (`/proc/PID/comm`, at most 15 bytes) starts with `comm`, e.g. `swarmhub-nfsd`.
    pub fn process_rss_kib(&self, i: usize, comm: &str) -> u64 {
        cgroup_pids(&self.cgroup_dir(i))
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim().starts_with(comm))
            })
            .map(rss_kib)
            .sum()
    }

    /// Processes of node i's daemon cgroup as `(pid, comm)`.
    pub fn daemon_processes(&self, i: usize) -> Vec<(u32, String)> {
        cgroup_pids(&self.cgroup_dir(i).join("daemon"))
            .into_iter()
            .map(|p| {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                (p, comm.trim().to_string())
            })
            .collect()
    }
}

/// Takes the instance's lock file through a flock(1) child that, once its stdin closes (the
/// [`Swarm`] is dropped or the test process dies), runs [`TEARDOWN`] before releasing the lock.
fn lock_and_guard(inst: &Instance) -> anyhow::Result<(Child, ChildStdin)> {
    let base = inst.base;
    std::fs::create_dir_all(Path::new(base).join("logs"))
        .with_context(|| format!("creating {base}/logs"))?;
    flock_guard(
        inst.lock_file,
        900,
        "exec sh -c \"$1\" teardown \"$2\" \"$3\" keep-logs \"$4\" >>\"$2/teardown.log\" 2>&1",
        &[TEARDOWN, base, inst.cgroup, inst.ns_prefix],
    )
}

/// Takes `lock_file` (exclusive, waiting at most `timeout_s` seconds) through a flock(1) child
/// in the host's namespaces and its own process group (a ^C of the test run does not stop it);
/// once its stdin closes (dropped, or the test process died in any way) it runs `on_release`
/// (`sh -c`, with `args` as `$1`...) and then releases the lock.
pub(crate) fn flock_guard(
    lock_file: &str,
    timeout_s: u32,
    on_release: &str,
    args: &[&str],
) -> anyhow::Result<(Child, ChildStdin)> {
    let mut child = host_command("flock")
        .args([
            "--exclusive",
            "--timeout",
            &timeout_s.to_string(),
            lock_file,
        ])
        .args([
            "sh",
            "-c",
            &format!("echo locked; cat >/dev/null; {on_release}"),
            "guard",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .with_context(|| format!("running flock(1) (util-linux) for the lock {lock_file}"))?;
    let mut buf = [0u8; 7];
    child
        .stdout
        .as_mut()
        .expect("piped")
        .read_exact(&mut buf)
        .with_context(|| format!("waiting for the lock {lock_file}"))?;
    ensure!(
        &buf == b"locked\n",
        "flock on {lock_file} said {:?}",
        String::from_utf8_lossy(&buf)
    );
    let stdin = child.stdin.take().expect("piped");
    Ok((child, stdin))
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let t = Instant::now();
        match sh(
            "teardown",
            TEARDOWN,
            &[
                self.inst.base,
                self.inst.cgroup,
                "keep-logs",
                self.inst.ns_prefix,
            ],
            Duration::from_secs(180),
        ) {
            Ok(out) if out.success() => {}
            Ok(out) => eprintln!("swarm harness: teardown: {}", out.describe()),
            Err(e) => eprintln!("swarm harness: teardown: {e:#}"),
        }
        for node in &mut self.nodes {
            // all were SIGKILLed by the teardown: reap them
            if let Some(mut d) = node.dockerd.take() {
                let _ = d.kill();
                let _ = d.wait();
            }
            let _ = node.holder.kill();
            let _ = node.holder.wait();
        }
        if let Some(mut stdin) = self.guard_stdin.take() {
            let _ = stdin.flush();
        }
        // EOF: the guard runs the (now idle) teardown once more and releases the lock
        let _ = self.guard.wait();
        eprintln!(
            "swarm harness: {} nodes torn down in {:.1?}",
            self.nodes.len(),
            t.elapsed()
        );
    }
}

/// Lays out the `swarmhub-nfs` plugin directory with `plugin-config/build.sh --no-create --out
/// OUT` (binary from `$SWARMHUB_PLUGIN_STATIC_BIN` if set, else a release crt-static build; the
/// script honours `CARGO_TARGET_DIR`). Returns the build time.
pub fn build_plugin_dir(out: &Path) -> anyhow::Result<Duration> {
    let mut build = Command::new(crate::docker::repo_root().join("plugin-config/build.sh"));
    build.arg("--no-create").arg("--out").arg(out);
    if let Ok(bin) = std::env::var("SWARMHUB_PLUGIN_STATIC_BIN") {
        build.arg("--binary").arg(bin);
    }
    let res = run_timeout(build, Duration::from_secs(1200))?;
    ensure!(
        res.success(),
        "plugin-config/build.sh --no-create --out {} failed: {}",
        out.display(),
        res.describe()
    );
    Ok(res.took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_json_default_and_with_a_registry() {
        assert_eq!(
            daemon_json(None),
            "{\n  \"exec-opts\": [\"native.cgroupdriver=cgroupfs\"],\n  \"log-level\": \"info\"\n}\n"
        );
        let opts = Options::swarm(2).insecure_registry(crate::registry::REGISTRY_ADDR);
        assert_eq!(opts.insecure_registry, Some("192.168.213.254:5000"));
        assert_eq!(Options::swarm(2).insecure_registry, None);
        let v: serde_json::Value =
            serde_json::from_str(&daemon_json(opts.insecure_registry)).unwrap();
        assert_eq!(
            v["insecure-registries"],
            serde_json::json!(["192.168.213.254:5000"])
        );
        assert_eq!(v["log-level"], "info");
    }
}
