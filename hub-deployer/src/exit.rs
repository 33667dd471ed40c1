//! The CLI's errors and the exit code of each: what scripts driving `swarmhub` may rely on.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (the message says which) |
//! | 2 | bad usage or bad settings (flags, `swarmhub.toml`, `SWARMHUB_*` variables) |
//! | 3 | dockerd cannot be reached |
//! | 4 | dockerd is not a manager of a swarm |
//! | 5 | a wait timed out |
//! | 6 | a health check failed (`doctor`) |
//! | 7 | the swarm is not ready for the command (e.g. no storage node label, a missing image); the message says the fix |
//!
//! Commands return [`CliError`]; `main` prints its whole chain and exits with [`CliError::code`].
//! This module must not print or exit itself.

use thiserror::Error;

use crate::settings::ConfigError;

/// A failure of a command, classified by how a caller should react.
#[derive(Debug, Error)]
pub enum CliError {
    /// Bad usage that clap could not catch (e.g. a file that already exists).
    #[error("{0}")]
    Usage(String),
    /// The settings cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// dockerd does not answer at the address the CLI uses.
    #[error("cannot reach dockerd at {host}: {reason}\n  hint: {hint}")]
    DockerUnreachable {
        /// `unix:///var/run/docker.sock`, `tcp://...`
        host: String,
        /// what went wrong
        reason: String,
        /// what to do about it
        hint: String,
    },
    /// dockerd answers but is not a swarm manager.
    #[error(
        "dockerd at {host} is not a swarm manager ({state}); run swarmhub on a manager node, or create a swarm with `docker swarm init`"
    )]
    NotManager {
        /// the daemon's address
        host: String,
        /// its swarm state, e.g. `inactive`, `worker`
        state: String,
    },
    /// A wait ended before what it waited for happened.
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout {
        /// what was awaited, e.g. `service swarmhub-nfsd to run 1 task`
        what: String,
        /// the limit that ran out (from `[timeouts]`)
        seconds: u64,
    },
    /// The swarm lacks something the command needs, which the admin must provide.
    #[error("{what}\n  fix: {fix}")]
    Precondition {
        /// what is missing or wrong
        what: String,
        /// what to do about it
        fix: String,
    },
    /// A `doctor` check failed.
    #[error("health check failed: {0}")]
    HealthCheck(String),
    /// Anything else, with its context chain.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CliError {
    /// The process exit code of this error (see the module documentation).
    pub fn code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Config(_) => 2,
            CliError::DockerUnreachable { .. } => 3,
            CliError::NotManager { .. } => 4,
            CliError::Timeout { .. } => 5,
            CliError::HealthCheck(_) => 6,
            CliError::Precondition { .. } => 7,
            // a CliError wrapped in context keeps its code
            CliError::Other(e) => e.downcast_ref::<CliError>().map_or(1, CliError::code),
        }
    }

    /// The message and every cause below it, one per line, without repeats (a `transparent`
    /// variant shows its source's message as its own).
    pub fn chain(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |m: String| {
            if out.last() != Some(&m) {
                out.push(m);
            }
        };
        match self {
            CliError::Other(e) => e.chain().for_each(|c| push(c.to_string())),
            e => {
                let mut cur: Option<&dyn std::error::Error> = Some(e);
                while let Some(c) = cur {
                    push(c.to_string());
                    cur = c.source();
                }
            }
        }
        out
    }
}

/// An error with its causes (hyper hides the OS error, e.g. "connection refused", in a source).
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_are_the_documented_ones() {
        let cfg = ConfigError::Invalid {
            key: "cluster.hub_port".into(),
            reason: "must be 1..65535".into(),
        };
        let cases = [
            (CliError::Usage("x".into()), 2),
            (CliError::Config(cfg), 2),
            (
                CliError::DockerUnreachable {
                    host: "h".into(),
                    reason: "r".into(),
                    hint: "h".into(),
                },
                3,
            ),
            (
                CliError::NotManager {
                    host: "h".into(),
                    state: "inactive".into(),
                },
                4,
            ),
            (
                CliError::Timeout {
                    what: "x".into(),
                    seconds: 1,
                },
                5,
            ),
            (CliError::HealthCheck("x".into()), 6),
            (
                CliError::Precondition {
                    what: "x".into(),
                    fix: "y".into(),
                },
                7,
            ),
            (CliError::Other(anyhow::anyhow!("x")), 1),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e}");
        }
    }

    #[test]
    fn context_keeps_the_code_and_the_chain() {
        let inner: Result<(), CliError> = Err(CliError::Timeout {
            what: "service swarmhub-nfsd to run".into(),
            seconds: 180,
        });
        let e: CliError = inner.context("swarmhub nfs run").unwrap_err().into();
        assert_eq!(e.code(), 5);
        assert_eq!(
            e.chain(),
            [
                "swarmhub nfs run",
                "timed out after 180 s waiting for service swarmhub-nfsd to run"
            ]
        );
    }
}
