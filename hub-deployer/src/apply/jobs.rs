//! One-shot jobs: run the swarmhub image once on every node (global: the plugin rollout, the
//! firewall check of `doctor`) or once somewhere (the nfsd API calls of `volume` and `run`),
//! wait until each task has ended, and read the one result line each task printed after a
//! known prefix. The job is removed afterwards, also when an earlier run left one behind.

use std::time::{Duration, Instant};

use bollard::models::{ServiceSpec, TaskState};

use crate::apply;
use crate::docker::cluster::{Swarm, TaskInfo};
use crate::exit::CliError;
use crate::progress::Progress;
use crate::wait::{self, Look};

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

use crate::node::result_after;

/// Run `spec` (a global job) on every usable node, wait up to `seconds` for all tasks to end,
/// and return each node's run, sorted by host name. `what` names the job in progress lines and
/// in the timeout error.
pub async fn run_global(
    c: &Swarm,
    spec: &ServiceSpec,
    prefix: &str,
    seconds: u64,
    what: &str,
    progress: &Progress,
) -> Result<Vec<NodeRun>, CliError> {
    let expected = c.nodes().await?.iter().filter(|n| n.usable()).count();
    let what = format!("{what} on every node");
    let job = Job {
        spec,
        prefix,
        seconds,
        what: &what,
        expected,
        prints_when_failing: false,
    };
    run(c, &job, progress).await
}

/// Run `spec` (a replicated job of one task), wait up to `seconds` for it to end, and return
/// its run. The task prints its result line also when it fails (exit code 1).
pub async fn run_once(
    c: &Swarm,
    spec: &ServiceSpec,
    prefix: &str,
    seconds: u64,
    what: &str,
    progress: &Progress,
) -> Result<NodeRun, CliError> {
    let job = Job {
        spec,
        prefix,
        seconds,
        what,
        expected: 1,
        prints_when_failing: true,
    };
    let mut runs = run(c, &job, progress).await?;
    Ok(runs.swap_remove(0))
}

/// Whether a task has ended (Swarm starts no other for a job with restart condition none).
fn ended(t: &TaskInfo) -> bool {
    t.state.is_terminal()
}

/// One run of a job, as [`run`] carries it out.
struct Job<'a> {
    spec: &'a ServiceSpec,
    /// prefix of the result line
    prefix: &'a str,
    /// how long all tasks may take
    seconds: u64,
    /// the job in progress lines and the timeout error
    what: &'a str,
    /// how many tasks must end
    expected: usize,
    /// whether a failed task printed its result line (then its log is waited for)
    prints_when_failing: bool,
}

/// Creates the job (after removing one an earlier run left), waits until the expected tasks
/// have ended, reads their logs and removes the job.
async fn run(c: &Swarm, job: &Job<'_>, progress: &Progress) -> Result<Vec<NodeRun>, CliError> {
    let Job {
        spec,
        prefix,
        seconds,
        what,
        expected,
        prints_when_failing,
    } = *job;
    let name = spec.name.clone().unwrap_or_default();
    if c.service(&name).await?.is_some() {
        apply::remove_service(c, &name).await?;
        apply::wait_stopped(c, &name, progress).await?;
    }
    apply::create_job(c, spec).await?;
    let start = Instant::now();
    let bar = progress.spinner(format!("{what}: {expected} task(s)"));
    let waited = wait::until(
        Duration::from_secs(seconds),
        Duration::from_millis(500),
        || async {
            let tasks = c.tasks(&name).await?;
            let done = tasks.iter().filter(|t| ended(t)).count();
            bar.set_message(format!(
                "{what}: {done} of {expected} task(s) done ({} s)",
                start.elapsed().as_secs()
            ));
            Ok::<_, CliError>(if done >= expected.max(1) && tasks.len() >= expected {
                Look::Done(tasks)
            } else {
                Look::NotYet(tasks)
            })
        },
    )
    .await?;
    bar.finish();
    let tasks = match waited {
        Ok(tasks) => tasks,
        Err(timed_out) => {
            let pending = timed_out
                .last
                .iter()
                .map(|t| t.describe())
                .collect::<Vec<_>>()
                .join("; ");
            let _ = apply::remove_service(c, &name).await;
            return Err(CliError::Timeout {
                what: format!("{what} (job {name}; tasks: {pending})"),
                seconds,
            });
        }
    };
    let mut runs = Vec::new();
    for t in tasks.into_iter().filter(ended) {
        // a task that completed (or failed after printing) has its result line in its log,
        // which may still be on the way
        let printed = t.state.is(TaskState::COMPLETE)
            || (prints_when_failing && t.state.is(TaskState::FAILED));
        let log = if printed {
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

    #[tokio::test]
    async fn a_job_left_behind_is_replaced_and_removed_once_its_task_ended() {
        use bollard::models::{ServiceSpecMode, ServiceSpecModeReplicatedJob};
        let c = crate::apply::tests::fake_swarm();
        let name = "swarmhub-test-job";
        let spec = ServiceSpec {
            name: Some(name.into()),
            mode: Some(ServiceSpecMode {
                replicated_job: Some(ServiceSpecModeReplicatedJob {
                    max_concurrent: Some(1),
                    total_completions: Some(1),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        apply::create_job(&c, &spec).await.unwrap();
        c.engine().set_task_log("starting\nRESULT: {\"ok\":true}\n");
        c.engine().clear_calls();
        let run = run_once(&c, &spec, "RESULT: ", 5, "testing", &Progress::quiet())
            .await
            .unwrap();
        assert!(run.task.state.is_terminal(), "{:?}", run.task);
        assert_eq!(run.result.as_deref(), Some("{\"ok\":true}"));
        assert_eq!(
            c.engine().changes(),
            [
                format!("delete_service {name}"),
                format!("create_service {name}"),
                format!("delete_service {name}"),
            ]
        );
        let calls = c.engine().calls();
        let read = calls.iter().position(|c| c.starts_with("task_logs "));
        let removed = calls
            .iter()
            .rposition(|c| *c == format!("delete_service {name}"));
        assert!(read.is_some() && read < removed, "{calls:?}");
    }

    #[test]
    fn the_last_result_line_counts() {
        let log = "x: {\"a\":1}\nnoise\nx: {\"a\":2}\n";
        assert_eq!(result_after(log, "x: ").as_deref(), Some("{\"a\":2}"));
        assert_eq!(result_after("nothing", "x: "), None);
    }
}
