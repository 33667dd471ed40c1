//! One-shot global jobs: run the swarmhub image once on every node (the plugin rollout, the
//! firewall check of `doctor`), wait until each node's task has ended, and read the one result
//! line each task printed after a known prefix. The job is removed afterwards, also when an
//! earlier run left one behind.

use std::time::{Duration, Instant};

use bollard::models::ServiceSpec;

use crate::apply;
use crate::cluster::{Cluster, TaskInfo};
use crate::exit::CliError;
use crate::progress::Progress;

/// What one node's task of a global job left.
#[derive(Debug, Clone)]
pub struct NodeRun {
    /// The task (its node, state, error).
    pub task: TaskInfo,
    /// Its log (stdout and stderr).
    pub log: String,
    /// The JSON after the result prefix, when the task printed one.
    pub result: Option<String>,
}

impl NodeRun {
    /// Why there is no result: the task's state and its log.
    pub fn failure(&self) -> String {
        format!(
            "{}{}",
            self.task.describe(),
            if self.log.trim().is_empty() {
                String::new()
            } else {
                format!("; log: {}", self.log.trim())
            }
        )
    }
}

/// The last line of `log` that carries `prefix`, without it.
pub fn result_after(log: &str, prefix: &str) -> Option<String> {
    log.lines()
        .rev()
        .find_map(|l| l.split_once(prefix))
        .map(|(_, json)| json.trim().to_string())
}

/// Run `spec` (a global job) on every usable node, wait up to `seconds` for all tasks to end,
/// and return each node's run, sorted by host name. `what` names the job in progress lines and
/// in the timeout error.
pub async fn run_global(
    c: &Cluster,
    spec: &ServiceSpec,
    prefix: &str,
    seconds: u64,
    what: &str,
    progress: &Progress,
) -> Result<Vec<NodeRun>, CliError> {
    let name = spec.name.clone().unwrap_or_default();
    if c.service(&name).await?.is_some() {
        apply::remove_service(c, &name).await?;
        apply::wait_stopped(c, &name, progress).await?;
    }
    apply::create_job(c, spec).await?;
    let nodes = c.nodes().await?;
    let expected = nodes.iter().filter(|n| n.usable()).count();
    let start = Instant::now();
    let bar = progress.spinner(format!("{what} on {expected} node(s)"));
    let tasks = loop {
        let tasks = c.tasks(&name).await?;
        let done = tasks
            .iter()
            .filter(|t| {
                matches!(
                    t.state.as_str(),
                    "complete" | "failed" | "rejected" | "shutdown" | "orphaned"
                )
            })
            .count();
        bar.set_message(format!(
            "{what}: {done} of {expected} node(s) done ({} s)",
            start.elapsed().as_secs()
        ));
        if done >= expected && tasks.len() >= expected {
            break tasks;
        }
        if start.elapsed() >= Duration::from_secs(seconds) {
            bar.finish();
            let pending = tasks
                .iter()
                .map(|t| t.describe())
                .collect::<Vec<_>>()
                .join("; ");
            let _ = apply::remove_service(c, &name).await;
            return Err(CliError::Timeout {
                what: format!("{what} on every node (job {name}; tasks: {pending})"),
                seconds,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish();
    let mut runs = Vec::new();
    for t in tasks {
        // a task that completed printed its result line (its log may still be on the way)
        let log = if t.state == "complete" {
            c.task_log_with(&t.id, prefix).await
        } else {
            c.task_log(&t.id).await
        };
        let result = result_after(&log, prefix);
        runs.push(NodeRun {
            task: t,
            log,
            result,
        });
    }
    apply::remove_service(c, &name).await?;
    runs.sort_by(|a, b| a.task.node.cmp(&b.task.node));
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_result_line_counts() {
        let log = "x: {\"a\":1}\nnoise\nx: {\"a\":2}\n";
        assert_eq!(result_after(log, "x: ").as_deref(), Some("{\"a\":2}"));
        assert_eq!(result_after("nothing", "x: "), None);
    }
}
