//! The test suite's own dockerd for image builds (never the machine's): [`Builder::start`] takes
//! [`LOCK_FILE`], starts `dockerd` with its data root in [`DIR`]`/data` (kept across runs: it is
//! the image cache), its own socket, pidfile and exec root, and in a private mount namespace its
//! own copies of `/run/docker`, `/run/containerd`, `/etc/docker` and
//! `/var/lib/docker/network/files` (dockerd 20.10 / containerd 1.6 write there whatever the flags
//! say). It runs in the host's network namespace, because builds fetch from Debian's mirror, PyPI
//! and npm, but with `--bridge=none --iptables=false --ip-forward=false`: it makes no `docker0`
//! and changes no firewall rule, so a system dockerd running beside it is not disturbed. Builds
//! therefore run with `--network host` (`images/build.sh --network host`).
//!
//! Every builder process (dockerd, containerd, shims, build containers) lives in the cgroup
//! [`CGROUP`]; when the [`Builder`] is dropped, dockerd is stopped with SIGTERM, and the holder of
//! the lock kills whatever is left in that cgroup, also when the test process died without
//! dropping it. Needs root, docker.io, util-linux (`unshare`, `flock`).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::docker::{CLI_TIMEOUT, Out, run_timeout};
use crate::swarm::{cgroup_root, docker_cli, flock_guard, host_command};

/// The builder's directory: `data/` (data root, the image cache), `exec/`, `docker.sock`,
/// `dockerd.log`, the private copies of the paths above.
pub const DIR: &str = "/var/tmp/swarmhub-tests/builder";
/// flock(1) lock file: one builder per host at a time (its data root is one cache).
pub const LOCK_FILE: &str = "/tmp/swarmhub-tests-builder.lock";
/// The cgroup (under the pids hierarchy on cgroup v1, the root on v2) of every builder process.
pub const CGROUP: &str = "swarmhub-tests-builder";

/// SIGKILLs every process left in the builder's cgroups and removes them. `$1` the cgroup name.
const KILL_LEFTOVERS: &str = r#"
CGN="$1"
cgdirs() { for d in /sys/fs/cgroup/*/"$CGN" /sys/fs/cgroup/"$CGN"; do [ -d "$d" ] && echo "$d"; done; }
round=0
while :; do
  pids=$(for d in $(cgdirs); do find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null; done | grep -vx "$$" | sort -un)
  [ -z "$pids" ] && break
  round=$((round + 1))
  [ "$round" -gt 100 ] && { echo "builder teardown: processes survive SIGKILL:" $pids >&2; exit 1; }
  kill -9 $pids 2>/dev/null
  sleep 0.1
done
for d in $(cgdirs); do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
exit 0
"#;

/// Runs in a fresh mount namespace: joins the cgroup, binds the private copies, execs dockerd.
/// `$1` the builder dir, `$2` the cgroup dir.
const DOCKERD: &str = r#"
set -e
D=$1
echo $$ > "$2/cgroup.procs"
for pair in netfiles:/var/lib/docker/network/files run-docker:/run/docker \
            run-containerd:/run/containerd etc-docker:/etc/docker; do
  src="$D/${pair%%:*}"; dst="${pair#*:}"
  mkdir -p "$src" "$dst"
  mount -n --bind "$src" "$dst"
done
exec dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
  --host "unix://$D/docker.sock" --config-file "$D/daemon.json" \
  --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
  --cgroup-parent "/swarmhub-tests-builder/containers"
"#;

/// The running builder dockerd; dropping it stops it (the data root stays).
pub struct Builder {
    dockerd: Option<Child>,
    guard: Child,
    guard_stdin: Option<ChildStdin>,
}

impl Builder {
    /// Takes [`LOCK_FILE`] (waits at most an hour: another process may be building), starts the
    /// builder dockerd and waits (at most 90 s) until it answers. The lock is held until the
    /// `Builder` drops: a caller holding one must not call [`crate::images::ensure_images`] (it
    /// starts a builder of its own and would wait for the lock); call that first. The builder
    /// trusts [`crate::registry::REGISTRY_ADDR`] over plain HTTP (reachable while a swarm is up).
    pub fn start() -> anyhow::Result<Builder> {
        ensure!(
            crate::docker::is_root(),
            "the image builder needs root (mount namespace, dockerd)"
        );
        let dir = Path::new(DIR);
        std::fs::create_dir_all(dir.join("data"))
            .with_context(|| format!("creating {DIR}/data"))?;
        std::fs::write(
            dir.join("daemon.json"),
            format!(
                "{{\n  \"exec-opts\": [\"native.cgroupdriver=cgroupfs\"],\n  \"storage-driver\": \"overlay2\",\n  \"log-level\": \"warn\",\n  \"insecure-registries\": [\"{}\"]\n}}\n",
                crate::registry::REGISTRY_ADDR
            ),
        )?;
        let (guard, guard_stdin) = flock_guard(
            LOCK_FILE,
            3600,
            "exec sh -c \"$1\" teardown \"$2\"",
            &[KILL_LEFTOVERS, CGROUP],
        )?;
        let mut b = Builder {
            dockerd: None,
            guard_stdin: Some(guard_stdin),
            guard,
        };
        // leftovers of a run that died (its guard normally cleaned up already)
        let out = run_timeout(
            {
                let mut c = host_command("sh");
                c.args(["-c", KILL_LEFTOVERS, "teardown", CGROUP]);
                c
            },
            Duration::from_secs(60),
        )?;
        ensure!(
            out.success(),
            "removing leftovers of an earlier builder: {}",
            out.describe()
        );
        let cg = cgroup_root()?.join(CGROUP).join("daemon");
        std::fs::create_dir_all(&cg)
            .with_context(|| format!("creating cgroup {}", cg.display()))?;
        let _ = std::fs::remove_file(dir.join("docker.sock"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))?;
        let child = host_command("unshare")
            .args(["--mount", "--propagation", "slave", "--", "sh", "-c"])
            .arg(DOCKERD)
            .arg("builder")
            .arg(dir)
            .arg(&cg)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting the builder dockerd (unshare, dockerd: apt-get install -y docker.io util-linux)")?;
        b.dockerd = Some(child);
        let start = Instant::now();
        loop {
            let out = b.docker_timeout(
                &["version", "-f", "{{.Server.Version}}"],
                Duration::from_secs(10),
            );
            if out.success() {
                break;
            }
            if let Some(st) = b.dockerd.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                b.dockerd = None;
                bail!(
                    "the builder dockerd exited while starting ({st}); log tail ({DIR}/dockerd.log):\n{}",
                    log_tail(30)
                );
            }
            if start.elapsed() > Duration::from_secs(90) {
                bail!(
                    "the builder dockerd did not answer within 90 s: {}\nlog tail ({DIR}/dockerd.log):\n{}",
                    out.describe(),
                    log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(b)
    }

    /// `unix://` address of the builder's socket (for `DOCKER_HOST`).
    pub fn host(&self) -> String {
        format!("unix://{DIR}/docker.sock")
    }

    /// `program` in the host's namespaces with `DOCKER_HOST` set to the builder.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = host_command(&program.as_ref().to_string_lossy());
        c.env("DOCKER_HOST", self.host())
            .env_remove("DOCKER_CONTEXT");
        c
    }

    /// `docker ARGS` against the builder, killed after `timeout`.
    pub fn docker_timeout(&self, args: &[&str], timeout: Duration) -> Out {
        let mut c = self.command(docker_cli());
        c.args(args);
        run_timeout(c, timeout)
            .unwrap_or_else(|e| panic!("running the docker CLI ({}): {e:#}", docker_cli()))
    }

    /// `docker ARGS` against the builder with [`CLI_TIMEOUT`].
    pub fn docker(&self, args: &[&str]) -> Out {
        self.docker_timeout(args, CLI_TIMEOUT)
    }
}

fn log_tail(n: usize) -> String {
    let text = std::fs::read_to_string(Path::new(DIR).join("dockerd.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Builder {
    fn drop(&mut self) {
        if let Some(mut d) = self.dockerd.take() {
            // dockerd is exec'd by the sh that unshare started: the child's pid is dockerd's
            let _ = Command::new("kill")
                .args(["-TERM", &d.id().to_string()])
                .status();
            let start = Instant::now();
            while d.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(60) {
                    eprintln!("image builder: dockerd ignored SIGTERM for 60 s; killing it");
                    let _ = d.kill();
                    let _ = d.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Some(mut stdin) = self.guard_stdin.take() {
            let _ = stdin.flush();
        }
        // EOF: the guard kills what is left in the cgroup and releases the lock
        let _ = self.guard.wait();
    }
}
