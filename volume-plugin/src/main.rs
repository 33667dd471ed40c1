//! `swarmhub-volume-plugin`: serve Docker (default), mount/unmount one export for tests, or
//! `call` a running plugin like dockerd does (hidden; for tests without Docker).

use std::process::ExitCode;

use clap::Parser;
use swarmhub_volume_plugin::config::{Args, Command};
use swarmhub_volume_plugin::mounter::MountSpec;
use swarmhub_volume_plugin::server;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // dockerd logs plugin stdout at info and stderr at error
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .init();
    let result = match args.command {
        None | Some(Command::Serve) => run_serve(args.serve),
        Some(Command::Mount {
            server,
            export,
            target,
            readonly,
        }) => {
            use std::net::ToSocketAddrs;
            server::mounter(args.serve.backend).and_then(|mounter| {
                server
                    .to_socket_addrs()
                    .map_err(anyhow::Error::from)
                    .and_then(|mut a| {
                        a.next()
                            .ok_or_else(|| anyhow::anyhow!("{server} resolves to nothing"))
                    })
                    .and_then(|addr| {
                        let spec = MountSpec {
                            server: addr,
                            export,
                            readonly,
                            extra_options: args.serve.mount_options.clone(),
                        };
                        mounter
                            .mount(&spec, &target, args.serve.mount_timeout())
                            .map_err(Into::into)
                    })
            })
        }
        Some(Command::Unmount { target }) => {
            server::mounter(args.serve.backend).and_then(|m| m.unmount(&target).map_err(Into::into))
        }
        Some(Command::Call {
            socket,
            timeout_seconds,
            endpoint,
            body,
        }) => run_call(
            &socket.unwrap_or(args.serve.socket),
            &endpoint,
            body.as_deref().unwrap_or(""),
            std::time::Duration::from_secs(timeout_seconds),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swarmhub-volume-plugin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(args: swarmhub_volume_plugin::config::ServeArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let mounter = server::mounter(args.backend)?;
        let driver =
            std::sync::Arc::new(server::driver(&args, mounter, server::provisioner(&args))?);
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!("stopping");
            s.cancel();
        });
        server::serve(args, driver, stop).await
    })
}

/// Prints the plugin's answer (also an `Err` answer) on stdout; fails on `Err` or no answer.
fn run_call(
    socket: &std::path::Path,
    endpoint: &str,
    body: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(swarmhub_volume_plugin::client::call(
        socket, endpoint, body, timeout,
    ));
    if let Some(answer) = r
        .as_ref()
        .ok()
        .or(r.as_ref().err().and_then(|e| e.answer()))
    {
        println!("{answer}");
    }
    r.map(drop).map_err(Into::into)
}
