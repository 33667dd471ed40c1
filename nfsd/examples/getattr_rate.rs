//! GETATTR rate of an in-process nfsd with N `nfs3_client` connections (default 8), each sending
//! one call at a time, for a fixed number of calls. Prints calls per second; run as root:
//!
//! `cargo run --release -p swarmhub-nfsd --example getattr_rate -- [connections] [calls-per-connection]`

use std::time::Instant;

use nfs3_client::Nfs3ConnectionBuilder;
use nfs3_client::nfs3_types::nfs3::GETATTR3args;
use nfs3_client::tokio::TokioConnector;
use swarmhub_control_api::{CreateVolume, ExplicitIdentity, VolumeOptions};
use swarmhub_nfsd::config::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    let conns: usize = argv.next().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let calls: usize = argv
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let settings = Settings::ephemeral(dir.path());
    let server = swarmhub_nfsd::server::start(settings).await?;
    server
        .volumes
        .create(CreateVolume {
            name: "bench".into(),
            options: VolumeOptions {
                user: Some("bench".into()),
                ..Default::default()
            },
            identity: Some(ExplicitIdentity {
                uid: 40000,
                gid: 40000,
                groups: vec![],
            }),
            client: None,
        })
        .await?;
    let port = server.nfs_addr.port();
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let conn = Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", "/bench")
                .mount_port(port)
                .nfs3_port(port)
                .connect_from_privileged_port(false)
                .mount()
                .await?;
            let root = conn.root_nfs_fh3();
            let mut client = conn.into_nfs3_client();
            let args = GETATTR3args { object: root };
            for _ in 0..calls {
                client.getattr(&args).await?.unwrap();
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = conns * calls;
    println!(
        "GETATTR: {total} calls over {conns} connections in {secs:.2} s = {:.0} calls/s",
        total as f64 / secs
    );
    server.stop().await
}
