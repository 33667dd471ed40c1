//! What runs on a node inside a one-shot job started by the CLI, and the protocol of its
//! answer: the job prints one line `PREFIX{json}` that the CLI reads back from the task's log.

pub mod firewall;
pub mod mounts;

/// The last line of `log` that carries `prefix`, without it.
pub fn result_after(log: &str, prefix: &str) -> Option<String> {
    log.lines()
        .rev()
        .find_map(|l| l.split_once(prefix))
        .map(|(_, json)| json.trim().to_string())
}
