//! The attacker of the e2e and demo tests (`tests/attack/nfs_attack.py` + libnfs-utils, see
//! `tests/src/attack.rs`) works: in a real notebook-student container (host network, so it
//! reaches an nfsd binary on loopback), given the export a token holder learns from the control
//! API (`Volume.export`), it mounts, lists, reads and writes with raw RPC and with nfs-cat. So
//! when those tests find that nothing got through, the defences held, not a broken attacker.
//! It also checks what holds on main already: forged handles and the API without a token.
//!
//! Needs root, docker.io, libnfs-utils and the notebook-student image (built when missing).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use swarmhub_tests::attack::{Notebook, Report};
use swarmhub_tests::docker::{Dockerd, docker, docker_ok, docker_timeout};
use swarmhub_tests::images::{Image, ensure_images};
use swarmhub_tests::nfsd::Nfsd;

const CONTAINER: &str = "swarmhub-attack-kit-test";

#[test]
fn the_attacker_reads_what_a_valid_export_opens_and_forges_nothing() -> anyhow::Result<()> {
    ensure_images(&[Image::NotebookStudent])?;
    // then nfsd (on loopback) in the test machine, where the container's host network is
    let _dockerd = Dockerd::ensure()?;
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let n = Nfsd::start(&data, &[])?;
    let tina = n.create_volume(
        r#"{"name":"home-tina","user":"tina","identity":{"uid":4201,"gid":4200}}"#,
    )?;
    let export = tina["export"].as_str().context("export")?.to_string();
    let marker = "TINA-SOLUTIONS-attack-kit";
    let file = data
        .join(tina["tree"].as_str().context("tree")?)
        .join("solutions.txt");
    std::fs::write(&file, format!("{marker}\n"))?;
    std::os::unix::fs::chown(&file, Some(4201), Some(4200))?;

    docker(&["rm", "-f", CONTAINER]);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        CONTAINER,
        "--network",
        "host",
        &Image::NotebookStudent.tag(),
        "sleep",
        "600",
    ]);
    struct Remove;
    impl Drop for Remove {
        fn drop(&mut self) {
            docker(&["rm", "-f", CONTAINER]);
        }
    }
    let _remove = Remove;
    let run = |args: &[&str], t: Duration| docker_timeout(args, t);
    let nb = Notebook {
        container: CONTAINER.to_string(),
        docker: &run,
    };
    nb.install_kit(tmp.path())?;

    let target = n.nfs.to_string();
    let args: Vec<String> = [
        "--nfs",
        &target,
        "--api",
        &n.api.to_string(),
        "--own",
        &export,
        "--lookup",
        "solutions.txt",
        "--relabel",
        "4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for user in ["jovyan", "0"] {
        let r: Report = nb.attack(user, &args);
        eprintln!("{}", r.summary());
        ensure!(r.finished(), "{}", r.raw);
        let read = r
            .lines
            .iter()
            .any(|l| l["step"] == "read" && l["data"].as_str().unwrap_or("").contains(marker));
        ensure!(
            read,
            "{user}: the attacker did not read through {export}:\n{}",
            r.raw
        );
        for step in ["readdir", "create", "write"] {
            ensure!(
                r.lines.iter().any(|l| l["step"] == step && l["ok"] == true),
                "{user}: no successful {step} through {export}:\n{}",
                r.raw
            );
        }
        let forged: Vec<_> = r
            .lines
            .iter()
            .filter(|l| l["step"] == "forged" && l["ok"] == true)
            .collect();
        ensure!(forged.is_empty(), "forged handles accepted: {forged:?}");
        ensure!(
            r.lines.iter().filter(|l| l["step"] == "forged").count() > 20,
            "{user}: too few forgeries tried:\n{}",
            r.raw
        );
        let api: Vec<_> = r.lines.iter().filter(|l| l["step"] == "api").collect();
        ensure!(
            !api.is_empty()
                && api
                    .iter()
                    .all(|l| l["connected"] == true && l["ok"] == false),
            "{user}: the API without the token: {api:?}"
        );
    }
    let libnfs = nb.libnfs(
        "jovyan",
        &[target],
        std::slice::from_ref(&export),
        "solutions.txt",
    )?;
    for (cmd, rc, text) in &libnfs {
        eprintln!("{cmd} -> {rc}: {}", text.trim());
        ensure!(*rc == 0, "{cmd} failed ({rc}): {text}");
    }
    ensure!(
        libnfs
            .iter()
            .any(|(c, _, t)| c.starts_with("nfs-cat") && t.contains(marker)),
        "nfs-cat did not read solutions.txt: {libnfs:?}"
    );
    ensure!(Path::new(&file).exists());
    Ok(())
}
