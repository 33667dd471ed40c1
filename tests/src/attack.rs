//! A student's attack on nfsd, run inside a real notebook container (design brief §8: every
//! process in a notebook is untrusted, root included). Brings the attacker in with `docker cp`:
//! `tests/attack/nfs_attack.py` (raw ONC RPC: EXPORT, MNT, GETATTR, READDIR, LOOKUP, READ,
//! CREATE, WRITE, forged handles; the control API without a token) and the host's libnfs-utils
//! (`nfs-ls`, `nfs-cat`, `nfs-cp` + `libnfs.so.13`, run with `LD_LIBRARY_PATH`), as the issue's
//! reproduction did. Reports say which attacks got through; tests assert there are none.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;

use crate::docker::Out;

/// The attacker script, as committed.
pub const SCRIPT: &str = include_str!("../attack/nfs_attack.py");
/// Where the kit lands in the container.
pub const KIT: &str = "/tmp/attack";
const LIBNFS_FILES: [&str; 4] = [
    "/usr/bin/nfs-ls",
    "/usr/bin/nfs-cat",
    "/usr/bin/nfs-cp",
    "/usr/lib/x86_64-linux-gnu/libnfs.so.13",
];

/// A notebook container and how to run `docker ARGS` on its node.
pub struct Notebook<'a> {
    pub container: String,
    pub docker: &'a dyn Fn(&[&str], Duration) -> Out,
}

impl Notebook<'_> {
    /// Copies the script and the libnfs-utils binaries into the container at [`KIT`].
    pub fn install_kit(&self, scratch: &Path) -> anyhow::Result<()> {
        let kit = scratch.join("attack-kit");
        let _ = std::fs::remove_dir_all(&kit);
        std::fs::create_dir_all(&kit)?;
        std::fs::write(kit.join("nfs_attack.py"), SCRIPT)?;
        for f in LIBNFS_FILES {
            let name = Path::new(f).file_name().expect("a file name");
            // fs::copy follows the .so symlink: the container gets the library itself
            std::fs::copy(f, kit.join(name))
                .with_context(|| format!("{f} (apt-get install -y libnfs-utils)"))?;
        }
        std::fs::write(
            kit.join("planted.txt"),
            "planted by an attacker with nfs-cp\n",
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kit, std::fs::Permissions::from_mode(0o755))?;
        let src = format!("{}/.", kit.display());
        let _ = self.sh("0", &format!("rm -rf {KIT}; mkdir -p {KIT}"));
        let out = (self.docker)(
            &["cp", &src, &format!("{}:{KIT}", self.container)],
            Duration::from_secs(60),
        );
        ensure!(out.success(), "docker cp of the kit: {}", out.describe());
        Ok(())
    }

    /// `docker exec -u USER CONTAINER sh -c SCRIPT` (user `0` is root).
    pub fn sh(&self, user: &str, script: &str) -> Out {
        (self.docker)(
            &["exec", "-u", user, &self.container, "sh", "-c", script],
            Duration::from_secs(300),
        )
    }

    /// The container's default gateway (docker_gwbridge's address on its node), from
    /// /proc/net/route (no `ip` needed in the image).
    pub fn default_gateway(&self) -> anyhow::Result<String> {
        let out = self.sh("jovyan", "cat /proc/net/route");
        ensure!(out.success(), "/proc/net/route: {}", out.describe());
        let hex = out
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[1] == "00000000")
            .map(|f| f[2].to_string())
            .with_context(|| format!("no default route in\n{}", out.stdout))?;
        let v = u32::from_str_radix(&hex, 16)?;
        let b = v.to_le_bytes();
        Ok(format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]))
    }

    /// Runs the attacker as `user` with `args`; the report of its JSON lines.
    pub fn attack(&self, user: &str, args: &[String]) -> Report {
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        let out = self.sh(
            user,
            &format!(
                "python3 {KIT}/nfs_attack.py --label {} {}",
                shell_quote(&format!("{user}@notebook")),
                quoted.join(" ")
            ),
        );
        Report::new(&format!("{user}@notebook"), &out)
    }

    /// nfs-ls, nfs-cat and nfs-cp (libnfs-utils) against every `host:port` for every export
    /// path: list it, read `read` in it, plant `planted-by-nfs-cp`. In parallel, 10 s each.
    /// Returns one `(command, exit code, output)` per run; an error when they could not run.
    pub fn libnfs(
        &self,
        user: &str,
        targets: &[String],
        exports: &[String],
        read: &str,
    ) -> anyhow::Result<Vec<(String, i32, String)>> {
        let mut cmds = Vec::new();
        for t in targets {
            let (host, port) = t.rsplit_once(':').unwrap_or((t, "2049"));
            let q = format!("?version=3&nfsport={port}&mountport={port}");
            for e in exports {
                let base = format!("nfs://{host}{e}");
                cmds.push(format!("nfs-ls '{base}{q}'"));
                cmds.push(format!("nfs-cat '{base}/{read}{q}'"));
                cmds.push(format!(
                    "nfs-cp {KIT}/planted.txt '{base}/planted-by-nfs-cp{q}'"
                ));
            }
        }
        // the kit directory is root's: outputs go to a directory of the user's own
        let mut script = format!(
            "set -e; export LD_LIBRARY_PATH={KIT} PATH={KIT}:$PATH; O=$(mktemp -d); cd \"$O\"; set +e\n"
        );
        for (i, c) in cmds.iter().enumerate() {
            script.push_str(&format!(
                "(timeout 10 {c} >\"$O/out{i}\" 2>&1; echo $? >\"$O/rc{i}\") &\n"
            ));
        }
        script.push_str("wait\n");
        for i in 0..cmds.len() {
            script.push_str(&format!(
                "echo \"@@rc $(cat \"$O/rc{i}\")\"; cat \"$O/out{i}\"; echo @@end\n"
            ));
        }
        let out = self.sh(user, &script);
        let mut results = Vec::new();
        let mut it = out.stdout.split("@@end\n");
        for c in cmds {
            let chunk = it.next().unwrap_or_default();
            let (rc_line, text) = chunk.split_once('\n').unwrap_or((chunk, ""));
            let rc: i32 = rc_line
                .trim_start_matches("@@rc ")
                .trim()
                .parse()
                .with_context(|| format!("no exit code for {c}: {}", out.describe()))?;
            results.push((c, rc, text.to_string()));
        }
        Ok(results)
    }
}

/// Single quotes for sh.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The attacker's JSON lines.
pub struct Report {
    pub label: String,
    pub raw: String,
    pub lines: Vec<Value>,
}

impl Report {
    pub fn new(label: &str, out: &Out) -> Report {
        let lines = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
        Report {
            label: label.to_string(),
            raw: format!("{}{}", out.stdout, out.stderr),
            lines,
        }
    }

    fn step<'a>(&'a self, step: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.lines.iter().filter(move |l| l["step"] == step)
    }

    /// The own exports the script found in the container's mountinfo.
    pub fn own_exports(&self) -> Vec<String> {
        self.step("own-mount")
            .filter_map(|l| l["export"].as_str().map(String::from))
            .collect()
    }

    /// Whether the run finished (its last line is `done`).
    pub fn finished(&self) -> bool {
        self.step("done").next().is_some()
    }

    /// TCP connections the attacker made to nfsd's ports (NFS + MOUNT, API).
    pub fn connections(&self) -> Vec<String> {
        let nfs = self
            .step("connect")
            .filter(|l| l["ok"] == true)
            .map(|l| format!("NFS {}", l["target"].as_str().unwrap_or("?")));
        let api = self
            .step("api")
            .filter(|l| l["connected"] == true && l["token"].is_null())
            .map(|l| format!("API {}", l["target"].as_str().unwrap_or("?")));
        nfs.chain(api).collect()
    }

    /// What got through that is not the attacker's own: a non-empty EXPORT, MNT of another
    /// user's volume, a forged handle, any operation on such handles, the API without the
    /// token, and any of `markers` (contents of the victims' files) in the output.
    pub fn thefts(&self, markers: &[&str]) -> Vec<String> {
        let mut v = Vec::new();
        for l in &self.lines {
            let step = l["step"].as_str().unwrap_or("");
            let got = l["ok"] == true && l["victim"] == true;
            let line = || format!("{}: {}", self.label, l);
            match step {
                "export" if l["entries"].as_u64().unwrap_or(0) > 0 => v.push(line()),
                "connect" => {}
                _ if got => v.push(line()),
                _ => {}
            }
        }
        for m in markers {
            if self.raw.contains(m) {
                v.push(format!("{}: the output holds {m:?}", self.label));
            }
        }
        v
    }

    /// Counts per step of attempts and successes, for the log.
    pub fn summary(&self) -> String {
        let mut counts: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
        for l in &self.lines {
            let e = counts
                .entry(l["step"].as_str().unwrap_or("?").to_string())
                .or_default();
            e.0 += 1;
            e.1 += usize::from(l["ok"] == true);
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|(k, (n, ok))| format!("{k} {ok}/{n}"))
            .collect();
        format!("{} (ok/tried): {}", self.label, parts.join(", "))
    }
}

/// Files and directories whose name starts with `planted-by` under `root`, except under a path
/// containing `allowed` (the attacker's own volume).
pub fn planted(root: &Path, allowed: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("planted-by") && !p.to_string_lossy().contains(allowed) {
                found.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    found
}
