//! The node-side guard that keeps containers off nfsd's ports: swarmhub's own iptables chain
//! [`CHAIN`], jumped to from `INPUT` (traffic to this node's own addresses, the docker_gwbridge
//! gateway included) and `DOCKER-USER` (traffic forwarded to other nodes, which Docker then
//! masquerades to this node's address, so nfsd could not tell it from this node's plugin). Its
//! rules reject TCP to nfsd's NFS and API ports arriving from container bridges
//! ([`CONTAINER_INTERFACES`]); the plugin and swarmhub's jobs run in the host network and are
//! not affected.
//!
//! The rules are made with the node's own `iptables` (run by [`run_in_root`] after a
//! `chroot` into the host's root, bound into the job's container at [`HOST_ROOT`]), so they use
//! the backend (nf_tables or legacy) that the node's dockerd uses. Every action is idempotent:
//! [`apply`] adds what is missing and deletes what is not wanted (a changed port), never flushes
//! a working chain; [`check`] only lists; [`remove`] takes the jumps and the chain away as one.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::steps::Change;

/// swarmhub's chain in the filter table.
pub const CHAIN: &str = "SWARMHUB-NFSD";
/// The chains that jump to [`CHAIN`]: `INPUT` for the node's own addresses, `DOCKER-USER`
/// (first in `FORWARD`, kept by dockerd across restarts) for other nodes' addresses.
pub const HOOKS: [&str; 2] = ["INPUT", "DOCKER-USER"];
/// Where containers' traffic enters the node: swarm tasks' gateway bridge, the default bridge
/// and user-defined bridges (`br-+`: every interface named `br-...`).
pub const CONTAINER_INTERFACES: [&str; 3] = ["docker_gwbridge", "docker0", "br-+"];
/// Where the rollout and check jobs see the node's root file system.
pub const HOST_ROOT: &str = "/host";
/// Prefix of the one line of JSON that `swarmhub plugin node-firewall` prints.
pub const RESULT_PREFIX: &str = "swarmhub-firewall-result: ";

/// What to do with the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Install or correct the rules and jumps.
    Apply,
    /// List them and say what is missing or extra.
    Check,
    /// Remove the jumps and the chain.
    Remove,
}

/// What an action found or did on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// `iptables -V` of the node (e.g. `iptables v1.8.9 (nf_tables)`).
    pub backend: String,
    /// `created`, `updated`, `unchanged`, `removed`, `absent` (check: `unchanged`).
    pub change: Change,
    /// What is wrong after the action (empty: the guard is complete, or gone after remove).
    pub problems: Vec<String>,
    /// The chain's rules as `iptables -S` lists them after the action.
    pub rules: Vec<String>,
}

/// The rule specifications of [`CHAIN`] for nfsd's `ports`, as `iptables -S` prints them.
pub fn rule_specs(ports: &[u16]) -> Vec<String> {
    let mut ports: Vec<u16> = ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    let list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    CONTAINER_INTERFACES
        .iter()
        .map(|i| {
            format!("-i {i} -p tcp -m multiport --dports {list} -j REJECT --reject-with tcp-reset")
        })
        .collect()
}

/// The shell commands an admin runs on a node to remove the guard by hand.
pub fn removal_commands() -> String {
    let mut out: Vec<String> = HOOKS
        .iter()
        .map(|h| format!("iptables -D {h} -j {CHAIN}"))
        .collect();
    out.push(format!("iptables -F {CHAIN}"));
    out.push(format!("iptables -X {CHAIN}"));
    out.join("; ")
}

/// The outcome of one iptables command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `iptables ARGS` (the real one, or a fake in tests).
pub trait Iptables {
    /// Run it; an error only when it could not be started.
    fn run(&mut self, args: &[&str]) -> anyhow::Result<Output>;
}

/// The `iptables` on `PATH` (after [`enter_root`], the node's own), with `-w` so it waits for
/// the xtables lock that dockerd takes too.
pub struct HostIptables;

impl Iptables for HostIptables {
    fn run(&mut self, args: &[&str]) -> anyhow::Result<Output> {
        let out = Command::new("iptables")
            .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
            .arg("-w")
            .args(args)
            .output()
            .context(
                "cannot run the node's iptables (is the iptables package installed on the node?)",
            )?;
        Ok(Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Make `root` this process's root directory (the node's `/` bound at [`HOST_ROOT`]), so the
/// commands it runs are the node's own. `/` is left as it is.
pub fn enter_root(root: &Path) -> anyhow::Result<()> {
    if root == Path::new("/") {
        return Ok(());
    }
    std::os::unix::fs::chroot(root).with_context(|| {
        format!(
            "cannot chroot into the node's root {} (the job needs a bind of / there and CAP_SYS_CHROOT)",
            root.display()
        )
    })?;
    std::env::set_current_dir("/").context("cannot change into / after chroot")
}

fn must(ipt: &mut dyn Iptables, args: &[&str]) -> anyhow::Result<Output> {
    let out = ipt.run(args)?;
    if !out.ok {
        bail!("iptables {} failed: {}", args.join(" "), out.stderr);
    }
    Ok(out)
}

/// The rules of `chain` (`-A` lines of `iptables -S`), or `None` when it does not exist.
fn chain_rules(ipt: &mut dyn Iptables, chain: &str) -> anyhow::Result<Option<Vec<String>>> {
    let out = ipt.run(&["-S", chain])?;
    if !out.ok {
        return Ok(None);
    }
    let prefix = format!("-A {chain} ");
    Ok(Some(
        out.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect(),
    ))
}

fn hook_present(ipt: &mut dyn Iptables, hook: &str) -> anyhow::Result<bool> {
    Ok(ipt.run(&["-C", hook, "-j", CHAIN])?.ok)
}

fn backend(ipt: &mut dyn Iptables) -> anyhow::Result<String> {
    Ok(must(ipt, &["-V"])?.stdout.trim().to_string())
}

/// What differs from the guard for `ports`: missing or extra rules, missing jumps.
fn problems(ipt: &mut dyn Iptables, ports: &[u16]) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let wanted = rule_specs(ports);
    let mut problems = Vec::new();
    let rules = match chain_rules(ipt, CHAIN)? {
        Some(rules) => {
            for w in wanted.iter().filter(|w| !rules.contains(w)) {
                problems.push(format!("rule missing in {CHAIN}: {w}"));
            }
            for r in rules.iter().filter(|r| !wanted.contains(r)) {
                problems.push(format!("unexpected rule in {CHAIN}: {r}"));
            }
            rules
        }
        None => {
            problems.push(format!("chain {CHAIN} does not exist"));
            Vec::new()
        }
    };
    for hook in HOOKS {
        if !hook_present(ipt, hook)? {
            problems.push(format!("{hook} does not jump to {CHAIN}"));
        }
    }
    Ok((
        problems,
        rules.iter().map(|r| format!("-A {CHAIN} {r}")).collect(),
    ))
}

/// Install or correct the guard for nfsd's `ports` (see the module docs).
pub fn apply(ipt: &mut dyn Iptables, ports: &[u16]) -> anyhow::Result<Report> {
    let backend = backend(ipt)?;
    let wanted = rule_specs(ports);
    let mut change = Change::Unchanged;
    let current = match chain_rules(ipt, CHAIN)? {
        Some(r) => r,
        None => {
            must(ipt, &["-N", CHAIN])?;
            change = Change::Created;
            Vec::new()
        }
    };
    let mut touched = false;
    // add first, delete after: the chain never lacks a wanted rule in between
    for w in wanted.iter().filter(|w| !current.contains(w)) {
        let mut args = vec!["-A", CHAIN];
        args.extend(w.split_whitespace());
        must(ipt, &args)?;
        touched = true;
    }
    for (i, r) in current.iter().enumerate().rev() {
        if !wanted.contains(r) {
            must(ipt, &["-D", CHAIN, &(i + 1).to_string()])?;
            touched = true;
        }
    }
    for hook in HOOKS {
        if chain_rules(ipt, hook)?.is_none() {
            bail!(
                "chain {hook} does not exist on this node: dockerd makes it when it manages iptables (is dockerd running with --iptables=false?); swarmhub's guard of nfsd's ports needs it"
            );
        }
        if !hook_present(ipt, hook)? {
            must(ipt, &["-I", hook, "1", "-j", CHAIN])?;
            touched = true;
        }
    }
    if touched && change == Change::Unchanged {
        change = Change::Updated;
    }
    let (problems, rules) = problems(ipt, ports)?;
    Ok(Report {
        backend,
        change,
        problems,
        rules,
    })
}

/// List the guard and say what is missing (see the module docs); changes nothing.
pub fn check(ipt: &mut dyn Iptables, ports: &[u16]) -> anyhow::Result<Report> {
    let backend = backend(ipt)?;
    let (problems, rules) = problems(ipt, ports)?;
    Ok(Report {
        backend,
        change: Change::Unchanged,
        problems,
        rules,
    })
}

/// Remove the jumps and the chain.
pub fn remove(ipt: &mut dyn Iptables) -> anyhow::Result<Report> {
    let backend = backend(ipt)?;
    let mut change = Change::Absent;
    for hook in HOOKS {
        while hook_present(ipt, hook)? {
            must(ipt, &["-D", hook, "-j", CHAIN])?;
            change = Change::Removed;
        }
    }
    if chain_rules(ipt, CHAIN)?.is_some() {
        must(ipt, &["-F", CHAIN])?;
        must(ipt, &["-X", CHAIN])?;
        change = Change::Removed;
    }
    Ok(Report {
        backend,
        change,
        problems: Vec::new(),
        rules: Vec::new(),
    })
}

/// The node side (`swarmhub plugin node-firewall`): enter `root`, then run `action` with the
/// node's iptables.
pub fn node_firewall(root: &Path, ports: &[u16], action: Action) -> anyhow::Result<Report> {
    enter_root(root)?;
    let ipt = &mut HostIptables;
    match action {
        Action::Apply => apply(ipt, ports),
        Action::Check => check(ipt, ports),
        Action::Remove => remove(ipt),
    }
}

/// The result line the node side prints.
pub fn result_line(r: &Report) -> String {
    format!(
        "{RESULT_PREFIX}{}",
        serde_json::to_string(r).unwrap_or_default()
    )
}

/// Find the result in a task's log or a child's output.
pub fn parse_result(log: &str) -> Option<Report> {
    crate::node::result_after(log, RESULT_PREFIX).and_then(|json| serde_json::from_str(&json).ok())
}

/// The arguments of `swarmhub plugin node-firewall` for `action`.
pub fn node_args(root: &str, ports: &[u16], action: Action) -> Vec<String> {
    let mut args = vec![
        "plugin".to_string(),
        "node-firewall".into(),
        "--root".into(),
        root.into(),
    ];
    for p in ports {
        args.extend(["--port".into(), p.to_string()]);
    }
    args.push(
        match action {
            Action::Apply => "apply",
            Action::Check => "check",
            Action::Remove => "remove",
        }
        .into(),
    );
    args
}

/// Run the node side in a child process of this binary (the chroot must not change the root
/// of the caller, which still talks to dockerd's socket and reads the plugin bundle).
pub fn run_in_root(root: &str, ports: &[u16], action: Action) -> anyhow::Result<Report> {
    let exe =
        std::env::current_exe().context("cannot find this binary to run the firewall step")?;
    let out = Command::new(&exe)
        .args(node_args(root, ports, action))
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match parse_result(&stdout) {
        Some(r) if out.status.success() => Ok(r),
        _ => bail!(
            "the firewall step ({}) failed: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// An iptables that keeps chains in memory and understands the commands used here.
    #[derive(Default)]
    struct Fake {
        chains: BTreeMap<String, Vec<String>>,
        log: Vec<String>,
    }

    impl Fake {
        fn docker_node() -> Fake {
            let mut f = Fake::default();
            f.chains.insert("INPUT".into(), vec![]);
            f.chains
                .insert("DOCKER-USER".into(), vec!["-j RETURN".into()]);
            f
        }

        fn writes(&self) -> Vec<&String> {
            self.log
                .iter()
                .filter(|l| !l.starts_with("-S") && !l.starts_with("-C") && !l.starts_with("-V"))
                .collect()
        }
    }

    impl Iptables for Fake {
        fn run(&mut self, args: &[&str]) -> anyhow::Result<Output> {
            self.log.push(args.join(" "));
            let ok = |stdout: String| Output {
                ok: true,
                stdout,
                stderr: String::new(),
            };
            let err = || Output {
                ok: false,
                stdout: String::new(),
                stderr: "No chain/target/match by that name.".into(),
            };
            let rest = args.get(2..).unwrap_or_default().join(" ");
            Ok(match args {
                ["-V"] => ok("iptables v1.8.9 (nf_tables)\n".into()),
                ["-S", c] => match self.chains.get(*c) {
                    Some(rules) => ok(std::iter::once(format!("-N {c}"))
                        .chain(rules.iter().map(|r| format!("-A {c} {r}")))
                        .map(|l| l + "\n")
                        .collect()),
                    None => err(),
                },
                ["-N", c] => {
                    self.chains.insert(c.to_string(), vec![]);
                    ok(String::new())
                }
                ["-A", c, ..] => {
                    self.chains.get_mut(*c).unwrap().push(rest);
                    ok(String::new())
                }
                ["-I", c, "1", ..] => {
                    let spec = args[3..].join(" ");
                    self.chains.get_mut(*c).unwrap().insert(0, spec);
                    ok(String::new())
                }
                ["-C", c, ..] => match self.chains.get(*c) {
                    Some(rules) if rules.contains(&rest) => ok(String::new()),
                    _ => err(),
                },
                ["-D", c, n] if n.parse::<usize>().is_ok() => {
                    self.chains
                        .get_mut(*c)
                        .unwrap()
                        .remove(n.parse::<usize>()? - 1);
                    ok(String::new())
                }
                ["-D", c, ..] => {
                    let rules = self.chains.get_mut(*c).unwrap();
                    let i = rules.iter().position(|r| *r == rest).unwrap();
                    rules.remove(i);
                    ok(String::new())
                }
                ["-F", c] => {
                    self.chains.get_mut(*c).unwrap().clear();
                    ok(String::new())
                }
                ["-X", c] => {
                    self.chains.remove(*c);
                    ok(String::new())
                }
                other => panic!("unexpected iptables {other:?}"),
            })
        }
    }

    #[test]
    fn rules_reject_container_bridges_on_both_ports() {
        assert_eq!(
            rule_specs(&[8049, 2049, 2049]),
            [
                "-i docker_gwbridge -p tcp -m multiport --dports 2049,8049 -j REJECT --reject-with tcp-reset",
                "-i docker0 -p tcp -m multiport --dports 2049,8049 -j REJECT --reject-with tcp-reset",
                "-i br-+ -p tcp -m multiport --dports 2049,8049 -j REJECT --reject-with tcp-reset",
            ]
        );
        assert_eq!(
            removal_commands(),
            "iptables -D INPUT -j SWARMHUB-NFSD; iptables -D DOCKER-USER -j SWARMHUB-NFSD; iptables -F SWARMHUB-NFSD; iptables -X SWARMHUB-NFSD"
        );
    }

    #[test]
    fn apply_is_idempotent_and_jumps_come_first() {
        let mut f = Fake::docker_node();
        let r = apply(&mut f, &[2049, 8049]).unwrap();
        assert_eq!(r.change, Change::Created);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.rules.len(), 3);
        assert_eq!(r.backend, "iptables v1.8.9 (nf_tables)");
        assert_eq!(f.chains["INPUT"][0], "-j SWARMHUB-NFSD");
        assert_eq!(
            f.chains["DOCKER-USER"],
            ["-j SWARMHUB-NFSD", "-j RETURN"],
            "before dockerd's RETURN"
        );
        f.log.clear();
        let again = apply(&mut f, &[2049, 8049]).unwrap();
        assert_eq!(again.change, Change::Unchanged);
        assert!(f.writes().is_empty(), "a re-run adds nothing: {:?}", f.log);
        assert!(check(&mut f, &[2049, 8049]).unwrap().problems.is_empty());
    }

    #[test]
    fn a_changed_port_replaces_the_rules_without_a_gap() {
        let mut f = Fake::docker_node();
        apply(&mut f, &[2049, 8049]).unwrap();
        f.chains
            .get_mut(CHAIN)
            .unwrap()
            .push("-s 10.0.0.1/32 -j ACCEPT".into());
        let c = check(&mut f, &[2050, 8049]).unwrap();
        assert_eq!(c.problems.len(), 7, "{:?}", c.problems);
        f.log.clear();
        let r = apply(&mut f, &[2050, 8049]).unwrap();
        assert_eq!(r.change, Change::Updated);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(f.chains[CHAIN], rule_specs(&[2050, 8049]));
        // every add comes before the first delete
        let first_delete = f.log.iter().position(|l| l.starts_with("-D")).unwrap();
        let last_add = f.log.iter().rposition(|l| l.starts_with("-A")).unwrap();
        assert!(last_add < first_delete, "{:?}", f.log);
    }

    #[test]
    fn check_names_what_is_missing_and_remove_takes_everything() {
        let mut f = Fake::docker_node();
        let c = check(&mut f, &[2049, 8049]).unwrap();
        assert_eq!(
            c.problems,
            [
                "chain SWARMHUB-NFSD does not exist",
                "INPUT does not jump to SWARMHUB-NFSD",
                "DOCKER-USER does not jump to SWARMHUB-NFSD"
            ]
        );
        apply(&mut f, &[2049, 8049]).unwrap();
        f.chains.get_mut("INPUT").unwrap().clear();
        assert_eq!(
            check(&mut f, &[2049, 8049]).unwrap().problems,
            ["INPUT does not jump to SWARMHUB-NFSD"]
        );
        apply(&mut f, &[2049, 8049]).unwrap();
        assert_eq!(remove(&mut f).unwrap().change, Change::Removed);
        assert!(!f.chains.contains_key(CHAIN));
        assert_eq!(f.chains["DOCKER-USER"], ["-j RETURN"]);
        assert!(f.chains["INPUT"].is_empty());
        assert_eq!(remove(&mut f).unwrap().change, Change::Absent);
    }

    #[test]
    fn a_node_without_docker_user_is_an_error_that_says_why() {
        let mut f = Fake::default();
        f.chains.insert("INPUT".into(), vec![]);
        let e = apply(&mut f, &[2049]).unwrap_err();
        assert!(format!("{e:#}").contains("--iptables=false"), "{e:#}");
    }

    #[test]
    fn results_survive_the_log_and_args_round_trip() {
        let r = Report {
            backend: "iptables v1.8.9 (legacy)".into(),
            change: Change::Created,
            problems: vec![],
            rules: rule_specs(&[2049]),
        };
        let log = format!("noise\n{}\n", result_line(&r));
        assert_eq!(parse_result(&log), Some(r));
        assert_eq!(
            node_args("/host", &[2049, 8049], Action::Check).join(" "),
            "plugin node-firewall --root /host --port 2049 --port 8049 check"
        );
    }
}
