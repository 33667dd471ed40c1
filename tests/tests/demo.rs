//! The README's first command (issue 7): `./demo.sh up` brings the whole stack up on a plain
//! Docker host and prints the URL and the demo logins; the people it prints can use JupyterHub.
//!
//! Real parts: the system dockerd (started by the harness when none runs), the images of the
//! Dockerfile including `swarmhub/demo-ldap` (built when missing or stale), the CLI running from
//! its image as demo.sh runs it, the demo directory (OpenLDAP in a service), nfsd, the plugin
//! (fuse backend on this kernel), JupyterHub and the notebook images.
//!
//! Steps, each asserted (figures are printed):
//! 1. `./demo.sh up`: makes a one-node swarm when dockerd is in none (as on CI), labels the
//!    storage node, prints the URL and three logins that match `<dir>/logins` (mode 0600).
//! 2. `./demo.sh doctor` passes every check, LDAP ones included.
//! 3. A wrong password is refused; student1 logs in through the form, gets the student image,
//!    writes a notebook through the contents API, which is owned by student1's uidNumber and
//!    gidNumber on nfsd's disk; the teacher gets the teacher image.
//!    The hub speaks HTTPS with the demo's own CA (`tls/ca.pem`): curl trusts it, fails
//!    certificate verification without it, gets plain HTTP on the HTTPS port closed at once and
//!    a 301 on the redirect port; headless Chromium shows the certificate interstitial without
//!    the CA and, with it, logs student1 in through the form into JupyterLab and saves a file
//!    from the page, found on nfsd's disk with student1's ids (`tests/src/browser.rs`).
//! 4. A second `./demo.sh up` changes nothing and prints the same passwords.
//! 5. Login -> ready with and without the swarmhub volumes, alternating (figures only; each
//!    spawn is checked to have, or not have, the volumes).
//! 6. Bad input: an unknown option (exit 2), `down` of a directory with no demo (exit 7).
//! 7. `./demo.sh down` removes the notebooks, hub, nfsd and directory; the notebook file and the
//!    logins stay. `up` again: student1 reads the same notebook.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::json;
use swarmhub_tests::attack;
use swarmhub_tests::browser::browser_https_step;
use swarmhub_tests::docker::{
    self, Dockerd, Out, docker, docker_ok, docker_timeout, repo_root, run_timeout,
};
use swarmhub_tests::hub::{self, Browser, SPAWN_LIMIT, find_file, notebook};
use swarmhub_tests::images::{Image, ensure_images};
use swarmhub_tests::nfsd::{free_port, workspace_bin};

/// The demo's users as `swarmhub demo` seeds them: (name, uidNumber, gidNumber).
const STUDENT1: (&str, u32, u32) = ("student1", 20101, 20100);
const SERVICES: [&str; 5] = [
    "jupyter-student1",
    "jupyter-teacher",
    "swarmhub-demo-ldap",
    "swarmhub-hub",
    "swarmhub-nfsd",
];

/// Undo what the test made in the shared dockerd, whatever happened.
struct Cleanup {
    dir: PathBuf,
    swarm_created: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for s in SERVICES.iter().chain(&["swarmhub-plugin-rollout"]) {
            docker(&["service", "rm", s]);
        }
        std::thread::sleep(Duration::from_secs(3));
        // every notebook volume of the plugin (the A/B also made student2's)
        let volumes = docker(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]).stdout;
        for line in volumes.lines() {
            if let Some((driver, name)) = line.split_once(' ')
                && driver.starts_with("swarmhub-nfs")
            {
                docker(&["volume", "rm", "-f", name]);
            }
        }
        docker(&["volume", "rm", "-f", "swarmhub-hub-data"]);
        let secrets = docker(&["secret", "ls", "--format", "{{.Name}}"]).stdout;
        let ours: Vec<&str> = secrets
            .split_whitespace()
            .filter(|s| s.starts_with("swarmhub-"))
            .collect();
        docker::remove_deployment("swarmhub", &ours, self.swarm_created);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn demo_sh(args: &[&str]) -> Out {
    let mut cmd = Command::new(repo_root().join("demo.sh"));
    cmd.args(args).env_remove("SWARMHUB_DEMO_DIR");
    let out = run_timeout(cmd, Duration::from_secs(900)).expect("running demo.sh");
    out.echo(&format!("./demo.sh {}", args.join(" ")));
    out
}

/// `(user, password, role)` as `demo up` prints it.
type Login = (String, String, String);

/// URL and logins from `demo up`'s summary.
fn parse_summary(stdout: &str) -> anyhow::Result<(String, Vec<Login>)> {
    let url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("swarmhub demo is up: "))
        .context("no `swarmhub demo is up: URL` line")?
        .trim()
        .to_string();
    let logins = stdout
        .lines()
        .skip_while(|l| !l.starts_with("log in as"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect();
    Ok((url, logins))
}

fn service_image(name: &str) -> String {
    docker_ok(&[
        "service",
        "inspect",
        "-f",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        name,
    ])
}

#[test]
fn demo_sh_brings_up_a_hub_the_printed_logins_can_use() -> anyhow::Result<()> {
    let _lock = docker::lock()?;
    let _dockerd = Dockerd::ensure()?;
    ensure_images(&Image::DEMO)?;
    let root = PathBuf::from(docker::TEST_ROOT).join("demo");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let dir = root.join("state");
    let dir_s = dir.display().to_string();
    let swarm_before = docker_ok(&["info", "-f", "{{.Swarm.LocalNodeState}}"]);
    let _cleanup = Cleanup {
        dir: root.clone(),
        swarm_created: swarm_before == "inactive",
    };
    if swarm_before == "active" {
        let services = docker_ok(&["service", "ls", "-q"]);
        ensure!(
            services.is_empty(),
            "the system dockerd's swarm runs services ({services}); the demo test needs it empty"
        );
    }
    let hub_port = free_port().to_string();
    let ldap_port = free_port().to_string();
    let redirect_port = free_port();
    let redirect_port_s = redirect_port.to_string();
    let up_args = [
        "up",
        "--dir",
        &dir_s,
        "--hub-port",
        &hub_port,
        "--ldap-port",
        &ldap_port,
        "--hub-redirect-port",
        &redirect_port_s,
    ];

    // ---- 1. up -----------------------------------------------------------------------------
    let up = demo_sh(&up_args);
    ensure!(up.success(), "demo.sh up failed: {}", up.describe());
    let took_up = up.took;
    if swarm_before == "inactive" {
        ensure!(
            up.stdout
                .contains("swarm this node: created (one-node swarm"),
            "demo up did not say it made the swarm:\n{}",
            up.stdout
        );
    }
    ensure!(docker_ok(&["info", "-f", "{{.Swarm.LocalNodeState}}"]) == "active");
    ensure!(
        docker_ok(&[
            "node",
            "inspect",
            "self",
            "-f",
            "{{index .Spec.Labels \"swarmhub.storage\"}}"
        ]) == "true",
        "this node is not labelled the storage node"
    );
    for s in ["swarmhub-demo-ldap", "swarmhub-hub", "swarmhub-nfsd"] {
        let replicas = docker_ok(&[
            "service",
            "ls",
            "--filter",
            &format!("name={s}"),
            "--format",
            "{{.Replicas}}",
        ]);
        ensure!(replicas.contains("1/1"), "{s}: {replicas}");
    }
    let (url, logins) = parse_summary(&up.stdout)?;
    // the hub serves HTTPS with a certificate of the demo's own CA
    hub::trust_ca(&dir.join("tls").join("ca.pem"));
    ensure!(
        url.ends_with(&format!(":{hub_port}/")),
        "the URL does not use the hub port: {url}"
    );
    let names: Vec<&str> = logins.iter().map(|l| l.0.as_str()).collect();
    ensure!(
        names == ["teacher", "student1", "student2"],
        "logins: {logins:?}"
    );
    ensure!(logins[0].2 == "teacher" && logins[1].2 == "student");
    let file = std::fs::read_to_string(dir.join("logins"))?;
    for (user, pw, _) in &logins {
        ensure!(
            file.lines().any(|l| l == format!("{user} {pw}")),
            "{user}'s printed password is not in the logins file:\n{file}"
        );
    }
    let mode = std::fs::metadata(dir.join("logins"))?.permissions().mode() & 0o777;
    ensure!(mode == 0o600, "logins file mode {mode:o}");
    let password = |user: &str| {
        logins
            .iter()
            .find(|l| l.0 == user)
            .map(|l| l.1.clone())
            .unwrap_or_default()
    };

    // ---- 2. doctor -------------------------------------------------------------------------
    let doctor = demo_sh(&["doctor", "--dir", &dir_s]);
    ensure!(doctor.success(), "doctor: {}", doctor.describe());
    ensure!(
        doctor.stdout.contains("ldap-student-group") && doctor.stdout.contains("healthy"),
        "doctor output: {}",
        doctor.stdout
    );

    // ---- 3. the printed logins work --------------------------------------------------------
    let intruder = Browser::new(&url, &root, "student1");
    let refused = intruder.login("not-the-password");
    ensure!(refused.is_err(), "a wrong password was accepted");

    let mut student = Browser::new(&url, &root, STUDENT1.0);
    let spawn = student.login_and_spawn(&password(STUDENT1.0))?;
    let image = service_image("jupyter-student1");
    ensure!(
        image.starts_with(&Image::NotebookStudent.tag()),
        "student1's image: {image}"
    );
    student.ensure_token()?;
    let nb = notebook("# demo notebook of student1");
    let r = student.contents(
        "PUT",
        "work/demo.ipynb",
        Some(&json!({"type": "notebook", "content": nb})),
    )?;
    ensure!(matches!(r.code, 200 | 201), "PUT: {} {}", r.code, r.body);
    let on_disk = find_file(&dir.join("data"), "demo.ipynb")
        .with_context(|| format!("demo.ipynb is not under {}/data", dir.display()))?;
    let meta = std::fs::metadata(&on_disk)?;
    ensure!(
        (meta.uid(), meta.gid()) == (STUDENT1.1, STUDENT1.2),
        "{} is owned by {}:{}, not student1's {}:{}",
        on_disk.display(),
        meta.uid(),
        meta.gid(),
        STUDENT1.1,
        STUDENT1.2
    );

    let teacher = Browser::new(&url, &root, "teacher");
    let teacher_spawn = teacher.login_and_spawn(&password("teacher"))?;
    let image = service_image("jupyter-teacher");
    ensure!(
        image.starts_with(&Image::NotebookTeacher.tag()),
        "the teacher's image: {image}"
    );

    // ---- 3a. a real browser over HTTPS, with and without the demo's CA trusted -------------
    let seen = browser_https_step(
        &url,
        &dir,
        Some(redirect_port),
        STUDENT1.0,
        &password(STUDENT1.0),
        (STUDENT1.1, STUDENT1.2),
    )?;
    eprintln!("==== https in a browser ====\n{seen}");

    // ---- 3b. student1 attacks the teacher's home from the notebook -----------------------
    // (the issue: nfs-ls/nfs-cat/nfs-cp from a student's notebook read and wrote it); checked
    // at the end so that one run also shows the rest working
    let breaches = attack_teacher_from_student1(&root, &dir.join("data"))?;

    // ---- 4. up again: nothing changes ------------------------------------------------------
    let again = demo_sh(&up_args);
    ensure!(again.success(), "second up: {}", again.describe());
    let changed: Vec<&str> = again
        .stdout
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.ends_with(": unchanged") && !l.contains(": unchanged ("))
        .collect();
    ensure!(changed.is_empty(), "second up changed: {changed:?}");
    ensure!(
        parse_summary(&again.stdout)?.1 == logins,
        "second up printed other logins"
    );

    // ---- 5. login -> ready with and without the swarmhub volumes (figures) -----------------
    let ab = spawn_times_with_and_without_volumes(&dir, &url, &root, &password("student2"))?;

    // ---- 6. bad input ----------------------------------------------------------------------
    let bogus = demo_sh(&["up", "--dir", &dir_s, "--no-such-option"]);
    ensure!(
        bogus.code() == Some(2) && bogus.stderr.contains("--no-such-option"),
        "unknown option: {}",
        bogus.describe()
    );
    let nowhere = root.join("no-demo-here");
    std::fs::create_dir_all(&nowhere)?;
    let no_demo = demo_sh(&["down", "--dir", &nowhere.display().to_string()]);
    ensure!(
        no_demo.code() == Some(7) && no_demo.stderr.contains("no demo in"),
        "down without a demo: {}",
        no_demo.describe()
    );

    // ---- 7. down keeps every file; up brings it back ----------------------------------------
    let down = demo_sh(&["down", "--dir", &dir_s]);
    ensure!(down.success(), "down: {}", down.describe());
    for s in SERVICES {
        ensure!(
            docker(&["service", "inspect", s]).code() == Some(1),
            "service {s} is still there after down"
        );
    }
    ensure!(on_disk.is_file(), "down lost {}", on_disk.display());
    ensure!(std::fs::read_to_string(dir.join("logins"))? == file);

    let start = Instant::now();
    let back = demo_sh(&up_args);
    ensure!(back.success(), "up after down: {}", back.describe());
    let took_back = start.elapsed();
    ensure!(parse_summary(&back.stdout)?.1 == logins);
    let mut student = Browser::new(&url, &root, STUDENT1.0);
    student.login_and_spawn(&password(STUDENT1.0))?;
    student.ensure_token()?;
    let r = student.contents("GET", "work/demo.ipynb", None)?;
    ensure!(r.code == 200, "GET after down/up: {} {}", r.code, r.body);
    ensure!(
        r.json()?["content"]["cells"][0]["source"] == json!("# demo notebook of student1"),
        "the notebook changed: {}",
        r.body
    );
    let down = demo_sh(&["down", "--dir", &dir_s]);
    ensure!(down.success(), "final down: {}", down.describe());

    eprintln!(
        "figures: demo up {:.1} s (images present), student1 login -> ready {:.1} s, teacher {:.1} s, up after down {:.1} s (limit per spawn {} s)",
        took_up.as_secs_f64(),
        spawn.as_secs_f64(),
        teacher_spawn.as_secs_f64(),
        took_back.as_secs_f64(),
        SPAWN_LIMIT.as_secs()
    );
    eprintln!("{ab}");
    ensure!(
        breaches.is_empty(),
        "{} attacks from student1's notebook got through (step 3b):\n{}",
        breaches.len(),
        breaches.join("\n")
    );
    Ok(())
}

/// The running container of `user`'s notebook.
fn notebook_container(user: &str) -> anyhow::Result<String> {
    let ids = docker_ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name=jupyter-{user}"),
    ]);
    match ids.split_whitespace().collect::<Vec<_>>().as_slice() {
        [one] => Ok(one.to_string()),
        other => anyhow::bail!("jupyter-{user}: expected one container, found {other:?}"),
    }
}

/// From student1's notebook (jovyan and root): the Python attacker and libnfs-utils against
/// the teacher's home by every address a notebook could try (nfsd's service name,
/// `tasks.<service>`, the container's gateway, every address of this host) with the secrets of
/// student1's own mounts. Returns what got through.
fn attack_teacher_from_student1(
    root: &std::path::Path,
    data: &std::path::Path,
) -> anyhow::Result<Vec<String>> {
    let t = Instant::now();
    let marker = format!(
        "TEACHER-SOLUTIONS-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let teacher = notebook_container("teacher")?;
    docker_ok(&[
        "exec",
        "-u",
        "jovyan",
        &teacher,
        "sh",
        "-c",
        &format!("printf '%s\\n' {marker} > /home/jovyan/work/solutions.txt"),
    ]);
    let docker = |args: &[&str], t: Duration| docker_timeout(args, t);
    let nb = attack::Notebook {
        container: notebook_container(STUDENT1.0)?,
        docker: &docker,
    };
    nb.install_kit(root)?;
    let mut hosts = vec!["swarmhub-nfsd".to_string(), "tasks.swarmhub-nfsd".into()];
    hosts.push(nb.default_gateway()?);
    let own_ips = Command::new("hostname").arg("-I").output()?;
    hosts.extend(
        String::from_utf8_lossy(&own_ips.stdout)
            .split_whitespace()
            .filter(|a| !a.contains(':'))
            .map(String::from),
    );
    hosts.dedup();
    let mut args: Vec<String> = vec!["--mountinfo".into()];
    for h in &hosts {
        args.extend(["--nfs".into(), format!("{h}:2049")]);
        args.extend(["--api".into(), format!("{h}:8049")]);
    }
    for v in ["home-teacher", "exchange-teacher", "home-student2"] {
        args.extend(["--victim-volume".into(), v.into()]);
    }
    args.extend(["--lookup".into(), "solutions.txt".into()]);
    let mut breaches = Vec::new();
    let mut secrets = Vec::new();
    for user in ["jovyan", "0"] {
        let report = nb.attack(user, &args);
        eprintln!("{}", report.summary());
        ensure!(report.finished(), "the attacker as {user}: {}", report.raw);
        breaches.extend(
            report
                .connections()
                .into_iter()
                .map(|c| format!("reached nfsd: {c}")),
        );
        breaches.extend(report.thefts(&[&marker]));
        for e in report.own_exports() {
            secrets.extend(e.trim_matches('/').split('/').skip(1).map(String::from));
        }
    }
    let mut exports = vec!["/home-teacher".to_string()];
    exports.extend(secrets.iter().map(|s| format!("/home-teacher/{s}")));
    let targets: Vec<String> = hosts.iter().map(|h| format!("{h}:2049")).collect();
    for (cmd, rc, text) in nb.libnfs("jovyan", &targets, &exports, "solutions.txt")? {
        eprintln!("[student1 libnfs] {cmd} -> {rc}: {}", text.trim());
        if rc == 0 || text.contains(&marker) {
            breaches.push(format!("{cmd} -> exit {rc}: {}", text.trim()));
        }
    }
    let planted = attack::planted(data, "home-student1");
    breaches.extend(planted.iter().map(|p| format!("planted: {}", p.display())));
    for b in &breaches {
        eprintln!("BREACH {b}");
    }
    eprintln!(
        "student1's attacks on the teacher's home: {:.1} s, {} got through",
        t.elapsed().as_secs_f64(),
        breaches.len()
    );
    Ok(breaches)
}

/// Rounds of the A/B: each round applies one setting (the hub restarts), spawns once to warm
/// up, then measures `SPAWNS` spawns; the settings alternate with, without, with, without.
const ROUNDS: usize = 4;
const SPAWNS: usize = 3;

/// Login -> ready of student2, alternately with the swarmhub volumes and without
/// (`hub.mount_volumes = false`, applied by `swarmhub hub run` with SWARMHUB_HUB_MOUNT_VOLUMES),
/// each spawn checked to have (or not have) the volumes. Returns the printed summary; the
/// setting is back to the demo's (with volumes) afterwards.
fn spawn_times_with_and_without_volumes(
    dir: &std::path::Path,
    url: &str,
    root: &std::path::Path,
    password: &str,
) -> anyhow::Result<String> {
    let cli = workspace_bin("swarmhub")?;
    let config = dir.join("swarmhub.toml");
    let hub_run = |volumes: bool| -> anyhow::Result<()> {
        let mut cmd = Command::new(&cli);
        cmd.arg("--config")
            .arg(&config)
            .args(["hub", "run"])
            .env("SWARMHUB_HUB_MOUNT_VOLUMES", volumes.to_string());
        let out = run_timeout(cmd, Duration::from_secs(300))?;
        ensure!(
            out.success(),
            "hub run (volumes {volumes}): {}",
            out.describe()
        );
        Ok(())
    };
    let b = Browser::new(url, root, "student2");
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        let volumes = round % 2 == 0;
        hub_run(volumes)?;
        for i in 0..=SPAWNS {
            let took = b.login_and_spawn(password)?;
            let mounts = docker_ok(&[
                "service",
                "inspect",
                "-f",
                "{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}",
                "jupyter-student2",
            ]);
            ensure!(
                mounts.contains("swarmhub-nfs") == volumes,
                "spawn with volumes = {volumes} has the mounts {mounts}"
            );
            b.stop_server()?;
            if i > 0 {
                times[usize::from(!volumes)].push(took.as_secs_f64());
            }
        }
    }
    hub_run(true)?;
    let stats = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let mean = s.iter().sum::<f64>() / s.len() as f64;
        let each: Vec<String> = v.iter().map(|t| format!("{t:.1}")).collect();
        format!(
            "median {:.1} s, mean {:.1} s, min {:.1} s, max {:.1} s over {} spawns (in order: {})",
            s[s.len() / 2],
            mean,
            s[0],
            s[s.len() - 1],
            s.len(),
            each.join(", ")
        )
    };
    Ok(format!(
        "login -> ready notebook, warm hub, one node:\n  with the swarmhub volumes:    {}\n  without (mount_volumes = false): {}",
        stats(&times[0]),
        stats(&times[1])
    ))
}

#[test]
fn summary_parsing_reads_url_and_logins() {
    let text = "swarm this node: unchanged (manager)\n\nswarmhub demo is up: http://10.0.0.5:8000/\n\
                log in as (also in /x/logins):\n  teacher    abc   teacher\n  student1   def   student\n\
                users' files: /x/data\n";
    let (url, logins) = parse_summary(text).unwrap();
    assert_eq!(url, "http://10.0.0.5:8000/");
    assert_eq!(logins.len(), 2);
    assert_eq!(
        logins[1],
        ("student1".into(), "def".into(), "student".into())
    );
    assert!(parse_summary("nothing").is_err());
}
