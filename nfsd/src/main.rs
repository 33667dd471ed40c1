//! `swarmhub-nfsd`: parses settings, sets up logging, runs the server until SIGTERM or SIGINT.

use std::process::ExitCode;

use clap::Parser;
use swarmhub_nfsd::config::{Args, LogFormat, Settings};

fn main() -> ExitCode {
    let settings = match Settings::resolve(Args::parse()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("swarmhub-nfsd: {e:#}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("swarmhub-nfsd: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(swarmhub_nfsd::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("swarmhub-nfsd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
