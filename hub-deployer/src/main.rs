//! `swarmhub`: parse the command line, run the command, print the whole error chain and exit
//! with the documented code (see `hub_deployer::exit`).

use std::process::ExitCode;

use clap::Parser;
use hub_deployer::cli::Cli;
use hub_deployer::cli::commands;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with 2
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    // a variable that is not UTF-8 cannot be a setting (settings are UTF-8 TOML values)
    let env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    match commands::run(&cli, env, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut chain = e.chain().into_iter();
            eprintln!("swarmhub: error: {}", chain.next().unwrap_or_default());
            for cause in chain {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(e.code())
        }
    }
}
