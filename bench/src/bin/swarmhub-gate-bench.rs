//! `swarmhub-gate-bench`: the Docker calls of a spawn, straight to dockerd and through the
//! Docker gate, interleaved; prints every round and the medians (docs/BENCHMARKS.md, "The
//! Docker gate"). Runs as root (it starts the test harness's one-node swarm).

use std::time::Duration;

use clap::Parser;
use swarmhub_bench::gate::{Api, CALLS, median_p95, rules, spawn_and_stop, start_gate};
use swarmhub_tests::swarm::Swarm;

/// Spawner calls (create, tasks, inspect, remove) direct vs through swarmhub-docker-gate.
#[derive(Parser, Debug)]
#[command(name = "swarmhub-gate-bench")]
struct Args {
    /// Rounds; each round runs both paths, the order alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Spawn-and-stop sequences per path per round.
    #[arg(long, default_value_t = 40)]
    spawns: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rules = rules()?;
    let swarm = Swarm::start(1)?;
    let out = swarm.docker(
        1,
        &[
            "network",
            "create",
            "-d",
            "overlay",
            "--attachable",
            &rules.network,
        ],
    );
    anyhow::ensure!(out.success(), "network create: {}", out.describe());
    let docker = swarm.host(1).trim_start_matches("unix://").to_string();
    let dir = tempfile::tempdir()?;
    let gate_sock = dir.path().join("gate/docker.sock");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        start_gate(&gate_sock, docker.as_ref(), rules.clone()).await?;
        let direct = Api::new(docker.as_ref());
        let gated = Api::new(&gate_sock);
        // warm both paths (connections, dockerd's caches)
        spawn_and_stop(&direct, &rules, "warm-direct").await?;
        spawn_and_stop(&gated, &rules, "warm-gate").await?;
        let mut all: [Vec<Vec<Duration>>; 2] = [vec![Vec::new(); 5], vec![Vec::new(); 5]];
        println!(
            "| round | path | create ms | tasks ms | inspect ms | remove ms | spawn+stop ms |"
        );
        println!("|--:|---|--:|--:|--:|--:|--:|");
        for round in 0..args.rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for path in order {
                let api = if path == 0 { &direct } else { &gated };
                let mut r: Vec<Vec<Duration>> = vec![Vec::new(); 5];
                for i in 0..args.spawns {
                    let user = format!("b{round}p{path}n{i}");
                    let times = spawn_and_stop(api, &rules, &user).await?;
                    for (k, t) in times.iter().enumerate() {
                        r[k].push(*t);
                    }
                    r[4].push(times.iter().sum());
                }
                let medians: Vec<String> = r
                    .iter_mut()
                    .map(|v| format!("{:.2}", median_p95(v).0))
                    .collect();
                println!(
                    "| {} | {} | {} |",
                    round + 1,
                    if path == 0 { "direct" } else { "gate" },
                    medians.join(" | ")
                );
                for (k, v) in r.into_iter().enumerate() {
                    all[path][k].extend(v);
                }
            }
        }
        println!(
            "\nAll rounds ({} spawn-and-stops per path): median / p95 in ms",
            args.rounds * args.spawns
        );
        println!("| call | direct | gate | gate - direct (median) |");
        println!("|---|--:|--:|--:|");
        for (k, name) in CALLS.iter().chain(["spawn+stop"].iter()).enumerate() {
            let (dm, dp) = median_p95(&mut all[0][k]);
            let (gm, gp) = median_p95(&mut all[1][k]);
            println!(
                "| {name} | {dm:.2} / {dp:.2} | {gm:.2} / {gp:.2} | {:+.2} |",
                gm - dm
            );
        }
        anyhow::Ok(())
    })?;
    drop(swarm);
    Ok(())
}
