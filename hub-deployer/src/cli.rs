//! The command line of `swarmhub`: flags, subcommands and their `--help` text (clap derive).
//! Parsing only; what a command does is in `commands`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::DEFAULT_CONFIG_PATH;

/// Deploy and operate JupyterHub with per-user NFS storage on Docker Swarm.
///
/// Settings come from swarmhub.toml (`swarmhub init` writes a commented one) and from
/// SWARMHUB_<SECTION>_<KEY> environment variables, which win over the file.
///
/// Exit codes: 0 ok, 1 other failure, 2 bad usage or settings, 3 dockerd unreachable,
/// 4 not a swarm manager, 5 a wait timed out, 6 a health check failed.
#[derive(Debug, Parser)]
#[command(name = "swarmhub", version, max_term_width = 100)]
pub struct Cli {
    /// The settings file.
    #[arg(
        long,
        global = true,
        env = "SWARMHUB_CONFIG",
        value_name = "FILE",
        default_value = DEFAULT_CONFIG_PATH
    )]
    pub config: PathBuf,
    /// Output format of results: text for people, json for scripts.
    #[arg(
        long,
        global = true,
        env = "SWARMHUB_OUTPUT",
        value_enum,
        default_value_t = Output::Text
    )]
    pub output: Output,
    /// Answer yes to confirmations (for scripts); commands that delete user data still need
    /// their own explicit flags.
    #[arg(long, global = true, env = "SWARMHUB_YES")]
    pub yes: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented swarmhub.toml with the defaults (refuses to overwrite one).
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Inspect the settings and what they produce, without touching Docker.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `swarmhub config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the settings and print them as in effect (file + environment).
    Check,
    /// Print the generated jupyterhub_config.py of the hub.
    RenderHub,
    /// Print the Docker objects a deployment consists of (network, secrets by name, the hub's
    /// config, the nfsd and hub services); secret values are never shown.
    Plan,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_every_command() {
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        for word in [
            "init",
            "config",
            "--config",
            "--output",
            "--yes",
            "SWARMHUB_CONFIG",
            "Exit codes",
        ] {
            assert!(help.contains(word), "{word} missing from:\n{help}");
        }
        let config = cmd.find_subcommand_mut("config").unwrap();
        let help = config.render_long_help().to_string();
        for word in ["check", "render-hub", "plan"] {
            assert!(help.contains(word), "{word} missing from:\n{help}");
        }
        // every subcommand has help text
        fn walk(c: &clap::Command) {
            for s in c.get_subcommands() {
                assert!(s.get_about().is_some(), "{} has no help", s.get_name());
                walk(s);
            }
        }
        walk(&Cli::command());
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "swarmhub", "config", "check", "--config", "/x.toml", "--output", "json", "--yes",
        ])
        .unwrap();
        assert_eq!(cli.config, PathBuf::from("/x.toml"));
        assert_eq!(cli.output, Output::Json);
        assert!(cli.yes);
        assert!(matches!(cli.command, Command::Config(ConfigCommand::Check)));
    }

    #[test]
    fn usage_errors_exit_with_2() {
        let e = Cli::try_parse_from(["swarmhub", "deploy"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = Cli::try_parse_from(["swarmhub", "--output", "yaml", "init"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
