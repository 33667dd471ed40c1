//! End to end (issue 7): the whole system on a real three-node Docker Swarm (tests/src/swarm.rs),
//! deployed by the `swarmhub` CLI, used through JupyterHub's HTTP interface like a browser would.
//!
//! Real parts: slapd on the host's address of the node subnet (`swarm::HOST_IP`, which every
//! node reaches), three dockerd nodes (node 1 the manager and storage node, nodes 2 and 3
//! workers for notebooks), the images of the Dockerfile loaded into every node, nfsd on node 1,
//! the `swarmhub-nfs` plugin (fuse backend: this host's kernel has no NFS client) installed on
//! every node by the CLI's rollout job, JupyterHub on the manager, notebooks as Swarm services.
//!
//! Steps, each asserted (figures are printed, never asserted):
//! 1. `swarmhub run` deploys everything; `status --output json` shows the plugin enabled with one
//!    version on all nodes; `doctor` passes. `volume prepare --group students` makes the five
//!    students' volumes with the hub's options (a dry run lists them missing first; a re-run
//!    finds them all there).
//! 2. alice logs in through the login form (xsrf cookie + form field), starts her server through
//!    the REST API (cookie + X-XSRFToken); it runs the student image on a worker.
//! 3. Her home is the home volume as a whole, with the image's skeleton (.bashrc): a notebook
//!    saved at its top through the contents API is read back; she changes a JupyterLab setting
//!    (the settings API: ~/.jupyter/lab/user-settings) and `pip install --user`s a small wheel
//!    the test builds in her notebook (no network; ~/.local).
//! 4. Stopped (service removed) and started on the other worker (the first one drained): the
//!    notebook, the setting and the installed package are still there, and on nfsd's disk the
//!    notebook is owned by alice's uidNumber/gidNumber.
//! 5. The dockerd of the node running her notebook is killed: Swarm starts a new task on the
//!    other worker, the hub reaches it and the notebook is intact; the dockerd is restarted.
//! 6. tina (teachers group) gets the teacher image.
//! 7. nbgrader: tina generates and releases ps1, alice fetches and submits it, tina collects it
//!    (submitted/alice/ps1), bob can neither list inbound nor read alice's submission.
//! 8. With nfsd stopped, bob's spawn fails fast with the task's volume error.
//! 9. A small lecture start (the storm benchmark's smoke size): three students log in at once
//!    as browsers do, each reaches JupyterLab and saves a notebook. Then with
//!    `hub.volumes = "local"` (applied by `swarmhub hub run`) bob's notebook gets a Docker local
//!    volume and no swarmhub volume; back to `swarmhub`, his next spawn is timed.
//!
//! Needs root, docker.io, iproute2, util-linux, fuse3, slapd + ldap-utils, curl, and the images
//! (built in the test builder by `ensure_images` when missing or stale). One test: one swarm.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use swarmhub_tests::attack;
use swarmhub_tests::builder::Builder;
use swarmhub_tests::docker::repo_root;
use swarmhub_tests::docker::{Out, run_timeout};
use swarmhub_tests::gate_attack;
use swarmhub_tests::https;
use swarmhub_tests::hub::{self, Browser, SPAWN_LIMIT, find_file, notebook};
use swarmhub_tests::images::{Image, ensure_images};
use swarmhub_tests::registry::{self, REGISTRY_ADDR, Registry};
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};
use swarmhub_tests::storm;
use swarmhub_tests::swarm::{BASE, HOST_IP, Options, SWARM, Swarm, wait_until};

const HUB_PORT: u16 = 8000;
/// Plain HTTP here is redirected to the hub's HTTPS URL.
const HUB_REDIRECT_PORT: u16 = 8080;
const HUB_SERVICE: &str = "swarmhub-hub";
const NFSD_SERVICE: &str = "swarmhub-nfsd";
const COURSE: &str = "course";
const EXCHANGE: &str = "/srv/nbgrader/exchange";
const ALICE: (u32, u32) = (4101, 4100);
const BOB: (u32, u32) = (4102, 4100);
const TINA: (u32, u32) = (4201, 4200);
/// The students of step 9's lecture start (uidNumber 4111.., group students).
const STORM_STUDENTS: [&str; 3] = ["s01", "s02", "s03"];
/// A JupyterLab setting through the settings API (stored in ~/.jupyter/lab/user-settings).
const THEME_SETTINGS: &str = "lab/api/settings/@jupyterlab/apputils-extension:themes";
const THEME_RAW: &str = r#"{"theme": "JupyterLab Dark"}"#;
/// Builds a tiny pure-Python wheel in the notebook (no network) and installs it with
/// `pip install --user`, which puts it under ~/.local.
const PIP_INSTALL_USER: &str = r#"set -e
python - <<'WHEEL'
import base64, hashlib, zipfile
name, ver = "thewheelmod", "1.0"
info = f"{name}-{ver}.dist-info"
files = {
    f"{name}/__init__.py": b"MARK = 'installed with pip --user'\n",
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n".encode(),
    f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: swarmhub-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for path, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{info}/RECORD,,")
files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
with zipfile.ZipFile(f"/tmp/{name}-{ver}-py3-none-any.whl", "w") as z:
    for path, data in files.items():
        z.writestr(path, data)
WHEEL
python -m pip install --user --no-index /tmp/thewheelmod-1.0-py3-none-any.whl"#;

/// Figures for the summary at the end.
#[derive(Default)]
struct Timings(Vec<(String, Duration)>);

impl Timings {
    fn add(&mut self, what: &str, d: Duration) {
        eprintln!("== {what}: {:.1} s", d.as_secs_f64());
        self.0.push((what.to_string(), d));
    }

    fn print(&self) {
        eprintln!("\n==== e2e timing summary ====");
        for (what, d) in &self.0 {
            eprintln!("{:>8.1} s  {what}", d.as_secs_f64());
        }
    }
}

/// The deployment: the swarm, its registry, the CLI's config and what the CLI needs besides.
struct Deploy {
    swarm: Swarm,
    registry: Registry,
    config: PathBuf,
    password_file: PathBuf,
    data_dir: PathBuf,
    /// The version (image tag) in the config's [images]; the upgrade changes it.
    version: std::cell::RefCell<String>,
}

impl Deploy {
    /// Runs `swarmhub ARGS` against node 1 (the manager) and echoes the output.
    fn swarmhub(&self, args: &[&str]) -> Out {
        self.swarm
            .swarmhub(&self.config, args, Duration::from_secs(900))
    }

    /// Like [`Deploy::swarmhub`], without echoing the output (for polling).
    fn swarmhub_quiet(&self, args: &[&str]) -> Out {
        run_timeout(
            self.swarm.swarmhub_cmd(&self.config, args),
            Duration::from_secs(120),
        )
        .expect("running swarmhub")
    }

    fn swarmhub_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        self.swarm
            .swarmhub_ok(&self.config, args, Duration::from_secs(900))
    }

    fn pw(&self) -> &str {
        self.password_file.to_str().expect("UTF-8 path")
    }

    /// Running tasks of the notebook service of `user`: (node index, task state).
    fn notebook_tasks(&self, user: &str) -> Result<Vec<(usize, String)>, String> {
        Ok(self
            .swarm
            .running_tasks(&format!("jupyter-{user}"))?
            .into_iter()
            .map(|(node, state)| (node_index(&node), state))
            .collect())
    }

    /// The node whose task of `user`'s notebook runs.
    fn notebook_node(&self, user: &str) -> anyhow::Result<usize> {
        let tasks = self.notebook_tasks(user).map_err(anyhow::Error::msg)?;
        let running: Vec<usize> = tasks
            .iter()
            .filter(|(_, s)| s.starts_with("Running"))
            .map(|(n, _)| *n)
            .collect();
        match running.as_slice() {
            [one] => Ok(*one),
            _ => bail!("jupyter-{user}: expected one running task, found {tasks:?}"),
        }
    }

    /// The image (reference as deployed) of service `name`.
    fn service_image(&self, name: &str) -> anyhow::Result<String> {
        let image = self.swarm.docker_ok(
            1,
            &[
                "service",
                "inspect",
                "-f",
                "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
                name,
            ],
        )?;
        Ok(image.trim().to_string())
    }

    /// The version label (`org.opencontainers.image.version`) of `image` on node `i`.
    fn image_version(&self, i: usize, image: &str) -> anyhow::Result<String> {
        let label = self.swarm.docker_ok(
            i,
            &[
                "image",
                "inspect",
                "-f",
                "{{index .Config.Labels \"org.opencontainers.image.version\"}}",
                image,
            ],
        )?;
        Ok(label.trim().to_string())
    }

    fn service_exists(&self, name: &str) -> bool {
        self.swarm
            .docker(1, &["service", "inspect", "-f", "{{.ID}}", name])
            .success()
    }

    /// The running container of `user`'s notebook on node `i`.
    fn notebook_container(&self, i: usize, user: &str) -> anyhow::Result<String> {
        let (id, _) = wait_until(
            &format!("a running container of jupyter-{user} on node {i}"),
            Duration::from_secs(60),
            || {
                let out = self.swarm.docker(
                    i,
                    &[
                        "ps",
                        "-q",
                        "--filter",
                        &format!("label=com.docker.swarm.service.name=jupyter-{user}"),
                    ],
                );
                match out.stdout.split_whitespace().collect::<Vec<_>>().as_slice() {
                    [one] => Ok(one.to_string()),
                    other => Err(format!("{other:?} {}", out.stderr.trim())),
                }
            },
        )?;
        Ok(id)
    }

    /// `docker exec -u jovyan` in `user`'s notebook container: `sh -c SCRIPT`.
    fn exec(&self, user: &str, script: &str) -> anyhow::Result<Out> {
        let i = self.notebook_node(user)?;
        let c = self.notebook_container(i, user)?;
        let out = self.swarm.docker_timeout(
            i,
            &[
                "exec",
                "-u",
                "jovyan",
                "-w",
                "/home/jovyan",
                &c,
                "sh",
                "-c",
                script,
            ],
            Duration::from_secs(180),
        );
        eprintln!(
            "[{user}@node{i}]$ {script}\n-> {:?}\n{}{}",
            out.code(),
            out.stdout,
            out.stderr
        );
        Ok(out)
    }

    fn exec_ok(&self, user: &str, script: &str) -> anyhow::Result<String> {
        let out = self.exec(user, script)?;
        ensure!(out.success(), "in {user}'s notebook: {}", out.describe());
        Ok(out.stdout)
    }

    /// What helps when a step fails: the hub's log, tasks, node states.
    fn diagnostics(&self) {
        let s = &self.swarm;
        let logs = s.docker_timeout(
            1,
            &["service", "logs", "--tail", "80", HUB_SERVICE],
            Duration::from_secs(30),
        );
        eprintln!("---- hub log tail ----\n{}{}", logs.stdout, logs.stderr);
        let logs = s.docker_timeout(
            1,
            &["service", "logs", "--tail", "30", NFSD_SERVICE],
            Duration::from_secs(30),
        );
        eprintln!("---- nfsd log tail ----\n{}{}", logs.stdout, logs.stderr);
        let ps = s.docker(
            1,
            &[
                "service",
                "ls",
                "--format",
                "{{.Name}} {{.Replicas}} {{.Image}}",
            ],
        );
        eprintln!("---- services ----\n{}", ps.stdout);
        for svc in ps.stdout.lines().filter_map(|l| l.split(' ').next()) {
            let t = s.docker(1, &["service", "ps", "--no-trunc", svc]);
            eprintln!("---- {svc} tasks ----\n{}", t.stdout);
        }
        eprintln!("---- nodes ----\n{:?}", s.node_states());
        for i in 1..=s.len() {
            eprintln!("---- dockerd n{i} log tail ----\n{}", s.log_tail(i, 15));
        }
    }
}

/// `swarmhub-node-2` -> 2.
fn node_index(hostname: &str) -> usize {
    hostname
        .trim_start_matches("swarmhub-node-")
        .parse()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------

#[test]
fn students_and_a_teacher_use_jupyterhub_on_a_three_node_swarm() -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut timings = Timings::default();

    // ---- images (test builder), slapd, swarm, images into every node ----------------------
    let images = [
        Image::Nfsd,
        Image::Cli,
        Image::Hub,
        Image::NotebookStudent,
        Image::NotebookTeacher,
    ];
    let t = Instant::now();
    for e in ensure_images(&images)? {
        eprintln!(
            "image {}: built {} in {:.0} s",
            e.tag,
            e.built,
            e.took.as_secs_f64()
        );
    }
    timings.add("images ensured in the builder", t.elapsed());

    let t = Instant::now();
    let swarm = Swarm::start_with(SWARM, Options::swarm(3).insecure_registry(REGISTRY_ADDR))?;
    timings.add("three-node swarm up", t.elapsed());
    let registry = Registry::start(REGISTRY_ADDR)?;
    // the nodes start with empty image stores: everything they run comes from the registry
    for i in 1..=swarm.len() {
        let ids = swarm.docker_ok(i, &["image", "ls", "-q"])?;
        ensure!(ids.trim().is_empty(), "node {i} has images already: {ids}");
    }

    let slapd = Slapd::start_on(
        HOST_IP,
        &[
            TestUser::new("alice", ALICE.0, ALICE.1),
            TestUser::new("bob", BOB.0, BOB.1),
            TestUser::new("tina", TINA.0, TINA.1),
            TestUser::new(STORM_STUDENTS[0], 4111, 4100),
            TestUser::new(STORM_STUDENTS[1], 4112, 4100),
            TestUser::new(STORM_STUDENTS[2], 4113, 4100),
        ],
        &[
            TestGroup::new(
                "students",
                4100,
                &[
                    "alice",
                    "bob",
                    STORM_STUDENTS[0],
                    STORM_STUDENTS[1],
                    STORM_STUDENTS[2],
                ],
            ),
            TestGroup::new("teachers", 4200, &["tina"]),
        ],
    )?;
    let password_file = slapd.reader_password_file()?;
    let dir = Path::new(BASE).join("nodes").join("e2e");
    std::fs::create_dir_all(&dir)?;
    let data_dir = dir.join("nfsd-data");
    let config = dir.join("swarmhub.toml");
    let d = Deploy {
        swarm,
        registry,
        config,
        password_file,
        data_dir,
        version: std::cell::RefCell::new(env!("CARGO_PKG_VERSION").to_string()),
    };
    let mut d = d;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        steps(&mut d, &slapd, &dir, &mut timings)
    }));
    // Why it failed, said before the diagnostics and again after the teardown, so that the
    // last lines of a long log (all a CI summary may show) carry the reason.
    let failure = match &result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(panic) => Some(panic_message(panic.as_ref())),
    };
    if let Some(why) = &failure {
        eprintln!("FAILED: {why}");
        d.diagnostics();
    }
    timings.add("whole test until teardown", t0.elapsed());
    timings.print();
    drop(d);
    drop(slapd);
    if let Some(why) = &failure {
        eprintln!("e2e FAILED: {why}");
    }
    match result {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The text of a caught panic (`assert!` and `panic!` carry a `String` or a `&str`).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// The deployment's `swarmhub.toml` with `hub.volumes = volumes` and `extra_hub` lines in
/// `[hub]`.
fn write_config(d: &Deploy, slapd: &Slapd, volumes: &str, extra_hub: &str) -> anyhow::Result<()> {
    let v = d.version.borrow().clone();
    std::fs::write(
        &d.config,
        format!(
            r#"{registry}
{cluster}hub_port = {HUB_PORT}
hub_redirect_port = {HUB_REDIRECT_PORT}
public_url = "https://{hub_ip}:{HUB_PORT}/"

{ldap}
[hub]
course_id = "{COURSE}"
course_owner = "tina"
notebook_constraints = ["node.role==worker"]
volumes = "{volumes}"
{extra_hub}

[timeouts]
service_seconds = 300

[tls]
# made by `swarmhub tls self-signed` in step 1, given to the hub as files
mode = "files"
cert_file = "tls/hub.pem"
key_file = "tls/hub-key.pem"
"#,
            registry = registry::swarmhub_sections(&v),
            cluster = Swarm::swarmhub_cluster_section(&d.data_dir),
            hub_ip = d.swarm.ip(1),
            ldap = slapd.swarmhub_section(HOST_IP, "students", Some("teachers")),
        ),
    )?;
    Ok(())
}

fn steps(d: &mut Deploy, slapd: &Slapd, dir: &Path, timings: &mut Timings) -> anyhow::Result<()> {
    let base_url = format!("https://{}:{HUB_PORT}", d.swarm.ip(1));

    // ---- 1. setup with the CLI ---------------------------------------------------------------
    d.swarm.label_node(1, "swarmhub.storage", "true")?;
    write_config(d, slapd, "swarmhub", "")?;
    let ca = https_certificate(d, dir)?;
    let check = d.swarmhub_ok(&["config", "check"])?;
    assert!(check.contains("valid"), "{check}");
    // the build machine (the test builder, which built the images) pushes them and the plugin
    let t = Instant::now();
    let builder = Builder::start()?;
    let push = d.swarmhub_ok(&["push", "--build-host", &builder.host()])?;
    drop(builder);
    timings.add("swarmhub push (5 images and the plugin)", t.elapsed());
    let version = d.version.borrow().clone();
    assert!(
        push.contains(&format!(
            "plugin {REGISTRY_ADDR}/swarmhub/swarmhub-nfs:{version}"
        )),
        "{push}"
    );
    for repo in [
        "nfsd",
        "hub",
        "notebook-student",
        "notebook-teacher",
        "swarmhub",
        "swarmhub-nfs",
    ] {
        let tags = d.registry.tags(&format!("swarmhub/{repo}"))?;
        ensure!(
            tags.contains(&version),
            "swarmhub/{repo} in the registry: {tags:?}"
        );
    }
    let t = Instant::now();
    let run = d.swarmhub_ok(&["run", "--ldap-password-file", d.pw()])?;
    timings.add(
        "swarmhub run (nfsd, plugin rollout on 3 nodes, hub)",
        t.elapsed(),
    );
    assert!(run.contains("plugin swarmhub-nfs@"), "{run}");
    assert!(
        d.data_dir.is_dir(),
        "nfsd's data dir {} on the host",
        d.data_dir.display()
    );

    // Swarm refreshes a node's description (its enabled plugins) on its own schedule (swarmkit's
    // agent looks every 20 s), so right after the rollout the manager may not list the plugin yet
    let (v, took) = wait_until(
        "status to show the plugin enabled with one version on all 3 nodes",
        Duration::from_secs(90),
        || {
            let out = d.swarmhub_quiet(&["--output", "json", "status"]);
            if !out.success() {
                return Err(out.describe());
            }
            let v: Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
            let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
            let versions: BTreeSet<String> = nodes
                .iter()
                .map(|n| n["plugin_version"].as_str().unwrap_or_default().to_string())
                .collect();
            let enabled = nodes.iter().all(|n| n["plugin_enabled"] == json!(true));
            if nodes.len() == 3 && enabled && versions.len() == 1 && !versions.contains("") {
                Ok(v)
            } else {
                Err(v["nodes"].to_string())
            }
        },
    )?;
    timings.add(
        "run done -> status shows the plugin enabled on all nodes",
        took,
    );
    eprintln!(
        "==== swarmhub status --output json ====\n{}",
        serde_json::to_string_pretty(&v)?
    );
    from_the_registry(d, &v)?;
    let text_status = d.swarmhub_ok(&["status"])?;
    eprintln!("==== swarmhub status ====\n{text_status}");
    // `run` waits for the hub's task to run, not for JupyterHub to answer
    let took = hub::wait_login_page(&base_url)?;
    timings.add("run done -> hub login page answers", took);
    let doctor = d.swarmhub(&["doctor", "--ldap-password-file", d.pw()]);
    eprintln!("==== swarmhub doctor ====\n{}", doctor.stdout);
    assert_eq!(doctor.code(), Some(0), "{}", doctor.describe());
    // the registry holds every image and the plugin, and the manager reaches it as configured
    assert!(
        doctor
            .stdout
            .contains(&format!("{REGISTRY_ADDR} has every image and the plugin")),
        "{}",
        doctor.stdout
    );
    eprintln!(
        "==== https ====\n{}",
        https::check_hub_https(&base_url, &ca, Some(HUB_REDIRECT_PORT))?
    );
    prepare_volumes(d, timings)?;

    // ---- 2. alice logs in and starts her server -----------------------------------------------
    let mut alice = Browser::new(&base_url, dir, "alice");
    let took = alice.login_and_spawn("alice-password")?;
    timings.add(
        "alice: login -> ready notebook (volumes, first start)",
        took,
    );
    let first = d.notebook_node("alice")?;
    assert!(
        first == 2 || first == 3,
        "a worker runs it, not node {first}"
    );
    let image = d.service_image("jupyter-alice")?;
    assert!(
        image.starts_with(&format!(
            "{REGISTRY_ADDR}/{}@sha256:",
            Image::NotebookStudent.tag()
        )),
        "alice's image, pinned by digest: {image}"
    );
    // status probes her real notebook's mounts as her container sees them (the mount check
    // job on every node: CAP_SYS_PTRACE, the node's /proc): home and exchange, both live
    let v: serde_json::Value =
        serde_json::from_str(&d.swarmhub_ok(&["--output", "json", "status"])?)?;
    let m = &v["mounts"];
    assert_eq!(m["checked"], true, "{m}");
    assert_eq!(m["broken"].as_array().map(Vec::len), Some(0), "{m}");
    let alices: Vec<&serde_json::Value> = m["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["containers"].as_array())
        .flatten()
        .filter(|c| c["service"] == "jupyter-alice")
        .flat_map(|c| c["mounts"].as_array().into_iter().flatten())
        .collect();
    assert!(
        alices.len() >= 2 && alices.iter().all(|x| x["state"] == "live"),
        "alice's home and exchange, live: {m}"
    );

    // ---- 3. a notebook through the contents API ----------------------------------------------
    alice.ensure_token()?;
    let nb = notebook("# hello from alice");
    let r = alice.contents(
        "PUT",
        "hello.ipynb",
        Some(&json!({"type": "notebook", "content": nb})),
    )?;
    assert!(
        matches!(r.code, 200 | 201),
        "PUT hello.ipynb: {} {}",
        r.code,
        r.body
    );
    let read_back = |when: &str| -> anyhow::Result<()> {
        let r = alice.contents("GET", "hello.ipynb", None)?;
        ensure!(
            r.code == 200,
            "GET hello.ipynb {when}: HTTP {} {}",
            r.code,
            r.body
        );
        let v = r.json()?;
        ensure!(
            v["content"]["cells"][0]["source"] == json!("# hello from alice"),
            "hello.ipynb {when}: {}",
            v["content"]
        );
        Ok(())
    };
    read_back("after the PUT")?;
    // the skeleton of the image is in the new home, as jovyan
    let skel = d.exec_ok("alice", "stat -c '%u:%g %n' ~/.bashrc ~/.profile")?;
    assert_eq!(
        skel.lines().collect::<Vec<_>>(),
        [
            "1000:100 /home/jovyan/.bashrc",
            "1000:100 /home/jovyan/.profile"
        ],
        "the skeleton in alice's new home"
    );
    let r = alice.server("PUT", THEME_SETTINGS, Some(&json!({ "raw": THEME_RAW })))?;
    assert_eq!(r.code, 204, "PUT the theme setting: {}", r.body);
    let pip = d.exec_ok("alice", PIP_INSTALL_USER)?;
    assert!(
        pip.contains("Successfully installed thewheelmod-1.0"),
        "{pip}"
    );
    let home_persisted = |when: &str| -> anyhow::Result<()> {
        read_back(when)?;
        let r = alice.server("GET", THEME_SETTINGS, None)?;
        ensure!(
            r.code == 200,
            "GET the theme setting {when}: HTTP {} {}",
            r.code,
            r.body
        );
        let v = r.json()?;
        ensure!(
            v["raw"] == json!(THEME_RAW) && v["settings"]["theme"] == json!("JupyterLab Dark"),
            "the theme setting {when}: {v}"
        );
        let import = d.exec_ok(
            "alice",
            "cd /tmp && python -c 'import thewheelmod; print(thewheelmod.__file__, thewheelmod.MARK)'",
        )?;
        ensure!(
            import.contains("/home/jovyan/.local/lib/python3")
                && import.contains("installed with pip --user"),
            "thewheelmod {when}: {import}"
        );
        Ok(())
    };
    home_persisted("before the restart")?;

    // ---- 4. stop, start on the other worker, still there, owned by alice's LDAP ids ----------
    let t = Instant::now();
    alice.stop_server()?;
    wait_until(
        "the notebook service jupyter-alice to be removed",
        Duration::from_secs(60),
        || {
            if d.service_exists("jupyter-alice") {
                Err("still there".to_string())
            } else {
                Ok(())
            }
        },
    )?;
    timings.add(
        "alice: stop (service removed, container ended)",
        t.elapsed(),
    );
    // The stop returned only once the old container had ended (SwarmhubSpawner.remove_object),
    // so no node still runs it to answer at the service's name or hold alice's volumes.
    for node in 1..=d.swarm.len() {
        let running = d.swarm.docker_ok(
            node,
            &[
                "ps",
                "-q",
                "--filter",
                "label=com.docker.swarm.service.name=jupyter-alice",
            ],
        )?;
        ensure!(
            running.is_empty(),
            "alice's server was stopped but node {node} still runs its container(s) {running}"
        );
    }
    d.swarm.docker_ok(
        1,
        &[
            "node",
            "update",
            "--availability",
            "drain",
            &d.swarm.hostname(first),
        ],
    )?;
    let t = Instant::now();
    let r = alice.start_server()?;
    assert!(matches!(r.code, 201 | 202), "{} {}", r.code, r.body);
    alice.wait_ready(SPAWN_LIMIT)?;
    timings.add(
        "alice: start again on the other worker -> ready",
        t.elapsed(),
    );
    let second = d.notebook_node("alice")?;
    d.swarm.docker_ok(
        1,
        &[
            "node",
            "update",
            "--availability",
            "active",
            &d.swarm.hostname(first),
        ],
    )?;
    assert!(
        second != first && (second == 2 || second == 3),
        "started on node {second}, first ran on {first}"
    );
    home_persisted("on the other worker, after a stop and start")?;
    let on_disk =
        find_file(&d.data_dir, "hello.ipynb").context("hello.ipynb under nfsd's data dir")?;
    let meta = std::fs::metadata(&on_disk)?;
    eprintln!(
        "{}: owner {}:{} mode {:o}",
        on_disk.display(),
        meta.uid(),
        meta.gid(),
        meta.mode()
    );
    assert_eq!(
        (meta.uid(), meta.gid()),
        ALICE,
        "owned by alice's uidNumber/gidNumber"
    );
    let seen = d.exec_ok("alice", "stat -c '%u:%g' /home/jovyan/hello.ipynb")?;
    assert_eq!(seen.trim(), "1000:100", "the container sees jovyan:users");

    // ---- 5. the node running alice's notebook loses its dockerd -----------------------------
    let crashed = second;
    let t = Instant::now();
    d.swarm.kill_dockerd(crashed)?;
    let down = d
        .swarm
        .wait_node_status(crashed, "Down", Duration::from_secs(120))?;
    timings.add("killed dockerd -> node Down", down);
    let (moved_to, _) = wait_until(
        "a running task of jupyter-alice on another node",
        Duration::from_secs(180),
        || {
            let tasks = d.notebook_tasks("alice")?;
            tasks
                .iter()
                .find(|(n, s)| *n != crashed && s.starts_with("Running"))
                .map(|(n, _)| *n)
                .ok_or(format!("{tasks:?}"))
        },
    )?;
    timings.add(
        "killed dockerd -> alice's task running elsewhere (Swarm reschedule)",
        t.elapsed(),
    );
    assert_eq!(moved_to, first, "the only other worker");
    // the hub keeps the server (it polls the service, which has a running task again) and its
    // proxy reaches the new task by the service name
    let (_, took) = wait_until(
        "alice's notebook answering through the hub after the reschedule",
        Duration::from_secs(120),
        || match alice.contents("GET", "hello.ipynb", None) {
            Ok(r) if r.code == 200 => Ok(()),
            Ok(r) => Err(format!(
                "HTTP {} {}",
                r.code,
                r.body.chars().take(200).collect::<String>()
            )),
            Err(e) => Err(format!("{e:#}")),
        },
    )?;
    timings.add("reschedule -> notebook answers through the hub", took);
    assert!(
        alice.model()?["servers"][""]["ready"] == json!(true),
        "the hub still counts alice's server as ready"
    );
    read_back("after the reschedule")?;
    let t = Instant::now();
    d.swarm.start_dockerd(crashed)?;
    d.swarm
        .wait_node_status(crashed, "Ready", Duration::from_secs(180))?;
    timings.add("restarted dockerd -> node Ready", t.elapsed());
    assert_eq!(
        d.notebook_node("alice")?,
        first,
        "still one task, on node {first}"
    );
    read_back("after the crashed node came back")?;

    // ---- 6. the teacher gets the teacher image -----------------------------------------------
    let tina = Browser::new(&base_url, dir, "tina");
    let took = tina.login_and_spawn("tina-password")?;
    timings.add("tina: login -> ready notebook", took);
    let image = d.service_image("jupyter-tina")?;
    assert!(
        image.starts_with(&format!(
            "{REGISTRY_ADDR}/{}@sha256:",
            Image::NotebookTeacher.tag()
        )),
        "tina's image, pinned by digest: {image}"
    );

    // ---- 7. nbgrader round trip ----------------------------------------------------------------
    let bob = Browser::new(&base_url, dir, "bob");
    let took = bob.login_and_spawn("bob-password")?;
    timings.add("bob: login -> ready notebook", took);
    let t = Instant::now();
    let problem = notebook("Problem 1: print hello").to_string();
    d.exec_ok(
        "tina",
        &format!(
            "set -e; mkdir -p ~/work/{COURSE}/source/ps1 && cat > ~/work/{COURSE}/source/ps1/problem1.ipynb <<'EOF'\n{problem}\nEOF\n\
             nbgrader generate_assignment ps1 && nbgrader release_assignment ps1 && ls -la {EXCHANGE}/{COURSE}"
        ),
    )?;
    d.exec_ok(
        "alice",
        "set -e; nbgrader fetch_assignment ps1 && ls -la ~/work/ps1 && nbgrader submit ps1",
    )?;
    let inbound = d.exec_ok("tina", &format!("ls -1 {EXCHANGE}/{COURSE}/inbound"))?;
    let submission = inbound
        .lines()
        .find(|l| l.starts_with("alice+ps1+"))
        .with_context(|| format!("alice's submission in inbound: {inbound}"))?
        .trim()
        .to_string();
    let collected = d.exec_ok(
        "tina",
        &format!("set -e; nbgrader collect ps1 && ls -la ~/work/{COURSE}/submitted/alice/ps1"),
    )?;
    assert!(collected.contains("problem1.ipynb"), "{collected}");
    let ls = bob_denied(d, &format!("ls {EXCHANGE}/{COURSE}/inbound"))?;
    assert!(ls.contains("Permission denied"), "bob lists inbound: {ls}");
    // nbgrader's own model: inbound is 2733 (students may enter, not list), a submission is
    // `<student>+<assignment>+<timestamp>+<random>` with files 0644: unguessable, not unreadable;
    // the files stay alice's (store uid 4101), so bob cannot change them
    let glob = bob_denied(d, &format!("ls -d {EXCHANGE}/{COURSE}/inbound/alice+*"))?;
    assert!(
        glob.contains("No such file"),
        "bob finds alice's submission: {glob}"
    );
    let modes = d.exec_ok(
        "tina",
        &format!("ls -la '{EXCHANGE}/{COURSE}/inbound/{submission}'"),
    )?;
    eprintln!("alice's submission as tina sees it:\n{modes}");
    let write = bob_denied(
        d,
        &format!("echo x > '{EXCHANGE}/{COURSE}/inbound/{submission}/problem1.ipynb'"),
    )?;
    assert!(
        write.contains("Permission denied"),
        "bob overwrites alice's submission: {write}"
    );
    // (nbgrader chmods the submission directory 0777 "so the instructor can delete it later",
    // hidden by its name only: bob could remove it if he knew the name, as on any POSIX system)
    let by_name = d.exec(
        "bob",
        &format!("cat '{EXCHANGE}/{COURSE}/inbound/{submission}/problem1.ipynb' >/dev/null"),
    )?;
    eprintln!(
        "bob reading alice's submission by its exact (unlistable) name: {}",
        if by_name.success() {
            "allowed (nbgrader makes submissions 0644/0755)"
        } else {
            "denied"
        }
    );
    timings.add(
        "nbgrader round trip (generate, release, fetch, submit, collect)",
        t.elapsed(),
    );

    // ---- 7b. bob attacks nfsd, the other volumes and the exchange from his notebook ----------
    // Every breach is collected and printed here; the test fails on them at the end, after
    // the legitimate paths (alice's notebook, the steps below) have been shown to still work.
    let t = Instant::now();
    let breaches = attacks_from_bob(d, dir, timings)?;
    timings.add("7b: attacks from bob's notebook, all of them", t.elapsed());
    read_back("after bob's attacks")?;
    d.exec_ok(
        "alice",
        "set -e; echo still-mine > ~/after-attacks.txt; cat ~/after-attacks.txt",
    )?;
    bob.stop_server()?;

    // ---- 7d. a compromised hub attacks dockerd through the Docker gate -----------------------
    let t = Instant::now();
    let hub_breaches = attacks_from_the_hub(d, dir)?;
    timings.add(
        "7d: a compromised hub's attacks through the gate",
        t.elapsed(),
    );
    d.exec_ok("alice", "cat ~/after-attacks.txt")?;

    // ---- 7c. upgrade to the next version through the registry, alice's notebook up ---------
    upgrade(d, slapd, &alice, timings)?;
    read_back("after the upgrade")?;
    let import = d.exec_ok(
        "alice",
        "cd /tmp && python -c 'import thewheelmod; print(thewheelmod.MARK)'; cat ~/upgrade/log | wc -l",
    )?;
    ensure!(
        import.contains("installed with pip --user"),
        "alice's pip --user package on the new version: {import}"
    );

    // ---- 8. a rejected spawn fails fast ------------------------------------------------------
    d.swarmhub_ok(&["nfs", "stop"])?;
    let t = Instant::now();
    let r = bob.start_server()?;
    let error = if matches!(r.code, 201 | 202) {
        match bob.wait_ready(SPAWN_LIMIT) {
            Ok(_) => bail!("bob's server started with nfsd stopped"),
            Err(_) => spawn_error(&bob)?,
        }
    } else {
        // the task failed while the API call was still waiting: JupyterHub answers the call
        // with the spawner's message (SwarmhubSpawnError carries it as log_message)
        let message = r.json()?["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ensure!(
            message.contains("Swarm could not start the notebook service jupyter-bob"),
            "HTTP {} without the spawner's message: {}",
            r.code,
            r.body
        );
        format!("Spawn failed (HTTP {}): {message}", r.code)
    };
    let failed_after = t.elapsed();
    eprintln!("bob's spawn without nfsd: HTTP {}: {error}", r.code);
    timings.add(
        "rejected spawn (nfsd stopped) -> spawn failed",
        failed_after,
    );
    assert!(
        failed_after < Duration::from_secs(150),
        "failed after {failed_after:?}, start_timeout is 300 s"
    );
    // The plugin fails at once with the reason: Create on a node that never had bob's volume
    // ("nfsd control API at ... is unreachable"), Mount of a volume not mounted ("nfsd at ...
    // is unreachable for export ...") or of one the plugin still holds from his earlier
    // notebook ("... is mounted but nfsd at ... is unreachable"; it checks nfsd before handing
    // out a kept mount: before it did, runc's stat of the kept FUSE mount failed with EIO a
    // minute later). Which of bob's two volumes fails first is dockerd's choice (it prepares a
    // container's volumes in map order), so either may be named.
    let lower = error.to_lowercase();
    assert!(
        lower.contains("spawn failed")
            && lower.contains("nfsd")
            && lower.contains("unreachable")
            && (lower.contains("home-bob") || lower.contains("exchange-bob")),
        "the spawn error says nfsd is unreachable for one of bob's volumes: {error}"
    );
    d.swarmhub_ok(&["nfs", "start"])?;

    // ---- 9. a small lecture start; a spawn with Docker local volumes ---------------------------
    let t = Instant::now();
    let plan = storm::Plan {
        label: "e2e smoke".into(),
        students: STORM_STUDENTS
            .iter()
            .map(|s| storm::Student {
                name: s.to_string(),
                password: format!("{s}-password"),
            })
            .collect(),
        within: Duration::ZERO,
        limit: SPAWN_LIMIT,
        nfsd_api: format!("http://{}:8049", d.swarm.ip(1)),
    };
    let report = storm::run(&d.swarm, &base_url, &dir.join("storm"), &plan)?;
    report.print();
    ensure!(
        report.succeeded() == STORM_STUDENTS.len(),
        "a lecture start of {} students: {:?}",
        STORM_STUDENTS.len(),
        report.failures()
    );
    storm::stop_all(&base_url, &dir.join("storm"), &plan.students)?;
    timings.add("3 students log in at once, save, stop", t.elapsed());
    write_config(d, slapd, "local", "")?;
    d.swarmhub_ok(&["hub", "run"])?;
    hub::wait_login_page(&base_url)?;
    let took = bob.login_and_spawn("bob-password")?;
    timings.add(
        "bob: login -> ready notebook with a Docker local volume",
        took,
    );
    let mounts = d.swarm.docker_ok(
        1,
        &[
            "service",
            "inspect",
            "-f",
            "{{json .Spec.TaskTemplate.ContainerSpec.Mounts}}",
            "jupyter-bob",
        ],
    )?;
    assert!(
        !mounts.contains("swarmhub-nfs") && mounts.contains("local-home-bob"),
        "a local volume and no swarmhub volume with volumes = \"local\": {mounts}"
    );
    bob.stop_server()?;
    write_config(d, slapd, "swarmhub", "")?;
    d.swarmhub_ok(&["hub", "run"])?;
    hub::wait_login_page(&base_url)?;
    let took = bob.login_and_spawn("bob-password")?;
    timings.add("bob: login -> ready notebook WITH volumes (warm)", took);
    bob.stop_server()?;
    // alice's work survived everything
    read_back("at the end")?;

    // ---- 10. the idle culler stops an idle notebook, through the gate ----------------------
    write_config(d, slapd, "swarmhub", "idle_timeout_seconds = 60")?;
    d.swarmhub_ok(&["hub", "run"])?;
    hub::wait_login_page(&base_url)?;
    bob.login_and_spawn("bob-password")?;
    let t = Instant::now();
    let ((), took) = wait_until(
        "the idle culler to stop bob's idle notebook (timeout 60 s)",
        Duration::from_secs(300),
        || {
            if d.service_exists("jupyter-bob") {
                Err("jupyter-bob still exists".into())
            } else {
                Ok(())
            }
        },
    )?;
    timings.add(
        "bob's idle notebook culled (idle_timeout_seconds = 60)",
        took,
    );
    let gate_log = d.swarm.docker(
        1,
        &[
            "service",
            "logs",
            "--raw",
            &format!("{HUB_SERVICE}-docker-gate"),
        ],
    );
    let gate_log = format!("{}{}", gate_log.stdout, gate_log.stderr);
    ensure!(
        gate_log
            .lines()
            .any(|l| l.contains("removing notebook service") && l.contains("jupyter-bob")),
        "the gate logged no removal of jupyter-bob after the culler ran ({:.0} s):\n{}",
        t.elapsed().as_secs_f64(),
        gate_log
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Swarm's log streaming from a busy node can come back short (dockerd: "logs call
    // failed ... EOF"), so the hub's log is asked for again a few times before this fails
    let culled_in_log = || {
        let hub_log = d
            .swarm
            .docker(1, &["service", "logs", "--raw", HUB_SERVICE]);
        format!("{}{}", hub_log.stdout, hub_log.stderr).contains("Culling server bob")
    };
    let mut culled = culled_in_log();
    for _ in 0..5 {
        if culled {
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
        culled = culled_in_log();
    }
    ensure!(
        culled,
        "the hub's log does not show the culler stopping bob's server"
    );
    ensure!(
        breaches.is_empty(),
        "{} attacks from bob's notebook got through (step 7b):\n{}",
        breaches.len(),
        breaches.join("\n")
    );
    ensure!(
        hub_breaches.is_empty(),
        "{} calls of a compromised hub got through the Docker gate (step 7d):\n{}",
        hub_breaches.len(),
        hub_breaches.join("\n")
    );
    Ok(())
}

/// `reg/swarmhub/<repo>:<version>@<digest the registry has>`: what a pinned service runs.
fn pinned_ref(d: &Deploy, repo: &str) -> anyhow::Result<String> {
    let digest = d
        .registry
        .manifest_digest(&format!("swarmhub/{repo}"), &d.version.borrow())?
        .with_context(|| {
            format!(
                "swarmhub/{repo}:{} is not in the registry",
                d.version.borrow()
            )
        })?;
    Ok(format!(
        "{REGISTRY_ADDR}/swarmhub/{repo}:{}@{digest}",
        d.version.borrow()
    ))
}

/// nfsd and the hub run the registry's images of the version in effect, pinned by digest.
fn services_pinned(d: &Deploy) -> anyhow::Result<()> {
    for (service, repo) in [(NFSD_SERVICE, "nfsd"), (HUB_SERVICE, "hub")] {
        let image = d.service_image(service)?;
        ensure!(
            image == pinned_ref(d, repo)?,
            "{service} runs {image}, not the registry's {repo}"
        );
    }
    Ok(())
}

/// Everything the nodes run came from the registry, pinned by digest: the services' images,
/// the plugin on every node (`docker plugin install` of the registry's reference, with the
/// digest recorded as its version), and the notebook images waiting on every node.
fn from_the_registry(d: &Deploy, status: &Value) -> anyhow::Result<()> {
    services_pinned(d)?;
    let plugin = pinned_ref(d, "swarmhub-nfs")?;
    for node in status["nodes"].as_array().cloned().unwrap_or_default() {
        ensure!(
            node["plugin_version"] == json!(plugin),
            "node {} has plugin {}, not {plugin}",
            node["hostname"],
            node["plugin_version"]
        );
    }
    let student = pinned_ref(d, "notebook-student")?;
    for i in 1..=d.swarm.len() {
        let reference = d.swarm.docker_ok(
            i,
            &[
                "plugin",
                "inspect",
                "-f",
                "{{.PluginReference}}",
                "swarmhub-nfs",
            ],
        )?;
        // installed by its tag (dockerd 20.10 cannot pull a plugin by digest), which named
        // that digest when the CLI resolved it: the version recorded above
        let by_tag = plugin.split('@').next().unwrap_or_default();
        ensure!(
            reference.trim() == by_tag,
            "node {i}'s plugin was installed from {reference}, not {by_tag}"
        );
        // the rollout pulled the notebook images, so no spawn waits for a pull
        let label = d
            .image_version(i, &student)
            .with_context(|| format!("{student} on node {i}"))?;
        eprintln!("node {i}: plugin {reference}, {student} (version label {label:?})");
    }
    Ok(())
}

/// Step 7c: the next version (tag `<version>-next`) built by `swarmhub rebuild` in the build
/// machine, pushed to the registry and deployed while alice's notebook runs and writes:
/// nfsd and the hub move to it at once (alice's mounts see no ESTALE and lose nothing), the
/// plugin on the nodes her (and tina's) notebook keep busy is refused with the fix, and
/// `plugin rollout --drain` stops exactly those notebooks and finishes the rollout. Her next
/// server runs the new image, with her files.
fn upgrade(
    d: &Deploy,
    slapd: &Slapd,
    alice: &Browser,
    timings: &mut Timings,
) -> anyhow::Result<()> {
    let old_version = d.version.borrow().clone();
    let alice_node = d.notebook_node("alice")?;
    // a writer that keeps its cwd (a handle) and a file open in her home across the upgrade
    d.exec_ok(
        "alice",
        "set -e; mkdir -p ~/upgrade; cd ~/upgrade; nohup sh -c 'i=0; exec 3>>log; while :; do \
         echo $i >&3 || echo \"write $i: failed\" >> /tmp/upgrade-errors; \
         ls . > /dev/null 2>>/tmp/upgrade-errors || echo \"ls $i: failed\" >> /tmp/upgrade-errors; \
         i=$((i+1)); sleep 0.2; done' > /dev/null 2>&1 &",
    )?;
    d.version.replace(format!("{old_version}-next"));
    write_config(d, slapd, "swarmhub", "")?;
    let t = Instant::now();
    let builder = Builder::start()?;
    let context = repo_root();
    let out = d.swarmhub(&[
        "rebuild",
        "--prebuilt",
        "--build-host",
        &builder.host(),
        "--context",
        context.to_str().context("UTF-8 path")?,
        "--build-network",
        "host",
        "--build-arg",
        &format!("BASE_IMAGE={}", swarmhub_tests::images::BASE_TAG),
    ]);
    drop(builder);
    timings.add(
        "swarmhub rebuild (build, push, nfsd + hub, plugin)",
        t.elapsed(),
    );
    // the nodes running notebooks with swarmhub volumes keep their plugin: refused, with the fix
    ensure!(
        out.code() == Some(7)
            && out.stderr.contains("nfsd and the hub are upgraded")
            && out.stderr.contains("--drain"),
        "rebuild with notebooks running: {}",
        out.describe()
    );
    services_pinned(d)?;
    hub::wait_login_page(&format!("https://{}:{HUB_PORT}", d.swarm.ip(1)))?;
    // alice's notebook stayed up through nfsd's restart, and saw no error
    ensure!(
        d.notebook_node("alice")? == alice_node,
        "alice's notebook moved during the rebuild"
    );
    let (_, took) = wait_until(
        "alice's writer going on after nfsd's upgrade",
        Duration::from_secs(120),
        || {
            let n = |s: &str| s.trim().parse::<u64>().unwrap_or(0);
            let a = d
                .exec("alice", "tail -n1 ~/upgrade/log")
                .map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_secs(1));
            let b = d
                .exec("alice", "tail -n1 ~/upgrade/log")
                .map_err(|e| e.to_string())?;
            if n(&b.stdout) > n(&a.stdout) {
                Ok(())
            } else {
                Err(format!("{} then {}", a.stdout, b.stdout))
            }
        },
    )?;
    timings.add("rebuild done -> alice's writes go on", took);
    let errors = d.exec("alice", "cat /tmp/upgrade-errors 2>/dev/null; true")?;
    ensure!(
        errors.stdout.trim().is_empty(),
        "alice's writer saw errors through nfsd's upgrade: {}",
        errors.stdout
    );
    let count = d.exec_ok(
        "alice",
        "sort -n ~/upgrade/log | uniq | wc -l; tail -n1 ~/upgrade/log",
    )?;
    eprintln!("alice's writer: {count}");
    let lines: Vec<u64> = count
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    ensure!(
        lines.len() == 2 && lines[0] == lines[1] + 1,
        "every write is in the log exactly once, in order (count, last): {count}"
    );
    ensure!(
        alice.contents("GET", "hello.ipynb", None)?.code == 200,
        "alice's notebook through the new hub"
    );

    // --drain: exactly the notebooks in the way stop (files stay), every node gets the plugin
    let t = Instant::now();
    let drained = d.swarmhub_ok(&["plugin", "rollout", "--drain"])?;
    timings.add("plugin rollout --drain", t.elapsed());
    ensure!(
        drained.contains("jupyter-alice") && !drained.contains("jupyter-bob"),
        "the drain names alice's notebook and not bob's (stopped): {drained}"
    );
    ensure!(
        !d.service_exists("jupyter-alice"),
        "alice's notebook drained"
    );
    let out = d.swarmhub_ok(&["--output", "json", "status"])?;
    let v: Value = serde_json::from_str(&out)?;
    from_the_registry(d, &v)?;
    // her next server runs the new version, on her files
    let took = alice.login_and_spawn("alice-password")?;
    timings.add("alice: login -> ready notebook on the new version", took);
    let image = d.service_image("jupyter-alice")?;
    ensure!(
        image == pinned_ref(d, "notebook-student")?,
        "alice's new server runs {image}"
    );
    let node = d.notebook_node("alice")?;
    let label = d.image_version(node, &image)?;
    ensure!(
        label == *d.version.borrow(),
        "the image's version label: {label}"
    );
    Ok(())
}

/// The hub's certificate and key as files: a CA and certificate made by `swarmhub tls
/// self-signed` (names: the public host, the nodes' addresses) in `dir/tls`, which the config
/// gives as tls.cert_file/key_file. Returns the CA, which the test's browsers now trust.
fn https_certificate(d: &Deploy, dir: &Path) -> anyhow::Result<PathBuf> {
    let made = d.swarmhub_ok(&["tls", "self-signed"])?;
    let ca = dir.join("tls").join("ca.pem");
    ensure!(made.contains(&ca.display().to_string()), "{made}");
    hub::trust_ca(&ca);
    Ok(ca)
}

/// A command in bob's notebook that must fail; its stderr.
/// Step 7d: the hub container is taken over. Its only way to Docker is the gate's socket; every
/// call beyond notebook services answers 403, and dockerd (read with the manager's own CLI)
/// holds nothing new afterwards. Returns the breaches (checked at the end with bob's).
fn attacks_from_the_hub(d: &Deploy, dir: &Path) -> anyhow::Result<Vec<String>> {
    let (hub_node, hub_container) = (1..=3)
        .find_map(|i| {
            let out = d.swarm.docker(
                i,
                &[
                    "ps",
                    "-q",
                    "--filter",
                    &format!("label=com.docker.swarm.service.name={HUB_SERVICE}"),
                ],
            );
            let id = out.stdout.split_whitespace().next()?.to_string();
            Some((i, id))
        })
        .context("the hub's container on some node")?;
    let alice_node = d.notebook_node("alice")?;
    let victim_container = d.notebook_container(alice_node, "alice")?;
    let worker = d.swarm.docker(2, &["info", "-f", "{{.Swarm.NodeID}}"]);
    ensure!(worker.success(), "node 2's id: {}", worker.describe());
    let docker = |args: &[&str], timeout: Duration| d.swarm.docker_timeout(hub_node, args, timeout);
    let before = gate_attack::DockerState::read(&docker)?;
    let args = json!({
        "socket": "/run/swarmhub-docker-gate/docker.sock",
        "version": "1.41",
        "me": "bob",
        "victim": "alice",
        "victim_container": victim_container,
        "image": d.service_image("jupyter-alice")?,
        "unapproved_image": d.service_image(HUB_SERVICE)?,
        "network": "swarmhub",
        "home_target": "/home/jovyan",
        "hub_service": HUB_SERVICE,
        "nfsd_service": NFSD_SERVICE,
        "token_secret": "swarmhub-nfsd-token",
        "node_id": worker.stdout.trim(),
    });
    let report = gate_attack::run(&docker, &hub_container, &args, dir)?;
    eprintln!(
        "==== a compromised hub (node {hub_node}) through the gate ====\n{}",
        report.summary()
    );
    let mut breaches = report.breaches();
    ensure!(
        report.attacks.len() >= 35 && report.controls.len() >= 6,
        "the hub attack ran {} attacks and {} controls",
        report.attacks.len(),
        report.controls.len()
    );
    let after = gate_attack::DockerState::read(&docker)?;
    breaches.extend(before.added_in(&after));
    // every refusal is logged by the gate with its rule
    let logs = d.swarm.docker(
        hub_node,
        &[
            "service",
            "logs",
            "--raw",
            &format!("{HUB_SERVICE}-docker-gate"),
        ],
    );
    let refused = format!("{}{}", logs.stdout, logs.stderr)
        .lines()
        .filter(|l| l.contains("refused"))
        .count();
    eprintln!("the gate logged {refused} refusals");
    if refused < report.attacks.len() - 2 {
        breaches.push(format!(
            "the gate logged {refused} refusals for {} attacks",
            report.attacks.len()
        ));
    }
    for b in &breaches {
        eprintln!("BREACH [hub] {b}");
    }
    Ok(breaches)
}

fn bob_denied(d: &Deploy, script: &str) -> anyhow::Result<String> {
    let out = d.exec("bob", script)?;
    ensure!(!out.success(), "bob succeeded: {}", out.describe());
    Ok(out.stderr)
}

/// The spawn's failure message from the progress event stream.
fn spawn_error(b: &Browser) -> anyhow::Result<String> {
    let r = b.curl(
        &format!("/hub/api/users/{}/server/progress", b.user),
        &["-N"],
        Duration::from_secs(30),
    )?;
    let msg = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["failed"] == json!(true))
        .map(|v| v["message"].as_str().unwrap_or_default().to_string())
        .next_back();
    msg.with_context(|| format!("no failure event in the progress stream: {}", r.body))
}

/// nfsd's ports (the defaults: the test's config sets neither).
const NFSD_PORT: u16 = 2049;
const NFSD_API_PORT: u16 = 8049;
/// Other users' volumes bob attacks.
const VICTIM_VOLUMES: [&str; 4] = ["home-alice", "home-tina", "exchange-alice", "exchange-tina"];

/// Step 7b: bob, a student, attacks from inside his notebook container (as jovyan and as root):
/// the raw RPC attacker (`tests/attack/nfs_attack.py`) and libnfs-utils against every address a
/// notebook could try, with the secrets of his own mounts (his mountinfo); the same attacker
/// from his node's network namespace (a notebook whose packets got past the firewall look like
/// that node); the exchange through his own view (symlinks, FIFOs, hard links, a directory at
/// the root, a submission that links to the teacher's files); his home quota. Returns what got
/// through (empty when every defence holds); errors only when the test itself cannot run.
fn attacks_from_bob(d: &Deploy, dir: &Path, timings: &mut Timings) -> anyhow::Result<Vec<String>> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let alice_marker = format!("ALICE-PRIVATE-{nonce}");
    let tina_marker = format!("TINA-SOLUTIONS-{nonce}");
    d.exec_ok(
        "alice",
        &format!("printf '%s\\n' {alice_marker} > ~/private.txt"),
    )?;
    d.exec_ok(
        "tina",
        &format!("printf '%s\\n' {tina_marker} > ~/solutions.txt"),
    )?;
    let markers = [alice_marker.as_str(), tina_marker.as_str()];
    let mut breaches: Vec<String> = Vec::new();
    let mut note = |what: &str, found: Vec<String>| {
        for f in &found {
            eprintln!("BREACH [{what}] {f}");
        }
        breaches.extend(found.into_iter().map(|f| format!("[{what}] {f}")));
    };

    let node = d.notebook_node("bob")?;
    let container = d.notebook_container(node, "bob")?;
    let docker = |args: &[&str], t: Duration| d.swarm.docker_timeout(node, args, t);
    let nb = attack::Notebook {
        container,
        docker: &docker,
    };
    let t = Instant::now();
    nb.install_kit(dir)?;
    let gateway = nb.default_gateway()?;
    let mut hosts = vec![NFSD_SERVICE.to_string(), format!("tasks.{NFSD_SERVICE}")];
    hosts.extend((1..=d.swarm.len()).map(|i| d.swarm.ip(i)));
    hosts.push(gateway.clone());
    eprintln!("bob's notebook on node {node}, gateway {gateway}; attacking {hosts:?}");
    let hub_token = nb.sh("jovyan", "printenv JUPYTERHUB_API_TOKEN").stdout;
    let mut args: Vec<String> = vec!["--mountinfo".into()];
    for h in &hosts {
        args.extend(["--nfs".into(), format!("{h}:{NFSD_PORT}")]);
        args.extend(["--api".into(), format!("{h}:{NFSD_API_PORT}")]);
    }
    for v in VICTIM_VOLUMES {
        args.extend(["--victim-volume".into(), v.into()]);
    }
    for name in ["private.txt", "solutions.txt", "hello.ipynb"] {
        args.extend(["--lookup".into(), name.into()]);
    }
    if !hub_token.trim().is_empty() {
        args.extend(["--token".into(), hub_token.trim().to_string()]);
    }

    // ---- the raw RPC attacker, as jovyan and as root in the container
    let mut own: Vec<String> = Vec::new();
    for user in ["jovyan", "0"] {
        let report = nb.attack(user, &args);
        eprintln!("{}", report.summary());
        if !report.finished() {
            note(
                "attacker did not finish",
                vec![format!("{}: {}", report.label, report.raw)],
            );
        }
        note("network isolation: reached nfsd", report.connections());
        note("another user's data", report.thefts(&markers));
        own.extend(report.own_exports());
    }
    own.sort();
    own.dedup();
    ensure!(
        own.iter().any(|e| e.contains("home-bob")),
        "bob's mountinfo shows no swarmhub mount of his home: {own:?}"
    );
    // the secrets of bob's own mounts (whatever follows the volume name in the export path)
    let secrets: Vec<String> = own
        .iter()
        .flat_map(|e| e.trim_matches('/').split('/').skip(1).map(String::from))
        .filter(|s| !s.is_empty())
        .collect();
    eprintln!("bob's own exports {own:?}, stolen secrets {secrets:?}");
    timings.add(
        "7b: raw RPC attacker in bob's notebook (jovyan, root)",
        t.elapsed(),
    );

    // ---- the issue's reproduction: libnfs-utils in the container
    let t = Instant::now();
    let targets: Vec<String> = hosts.iter().map(|h| format!("{h}:{NFSD_PORT}")).collect();
    let mut exports: Vec<String> = vec!["/home-tina".into(), "/home-alice".into()];
    for s in &secrets {
        exports.push(format!("/home-tina/{s}"));
        exports.push(format!("/home-alice/{s}"));
    }
    for (cmd, rc, text) in nb.libnfs("jovyan", &targets, &exports, "solutions.txt")? {
        eprintln!("[bob libnfs] {cmd} -> {rc}: {}", text.trim());
        if rc == 0 || markers.iter().any(|m| text.contains(m)) {
            note(
                "libnfs-utils",
                vec![format!("{cmd} -> exit {rc}: {}", text.trim())],
            );
        }
    }
    timings.add("7b: libnfs-utils in bob's notebook", t.elapsed());

    // ---- the same attacker from bob's node's network namespace: what a notebook would be
    // if its packets got past the firewall (masqueraded to the node's address, which nfsd's
    // allow list admits). Capability mounts and handles must hold on their own.
    let t = Instant::now();
    let mut node_args: Vec<String> = vec![
        "--nfs".into(),
        format!("{}:{NFSD_PORT}", d.swarm.ip(1)),
        "--api".into(),
        format!("{}:{NFSD_API_PORT}", d.swarm.ip(1)),
        "--label".into(),
        format!("node{node}-netns"),
    ];
    for e in &own {
        node_args.extend(["--own".into(), e.clone()]);
    }
    for s in &secrets {
        node_args.extend(["--secret".into(), s.clone()]);
    }
    for v in VICTIM_VOLUMES {
        node_args.extend(["--victim-volume".into(), v.into()]);
    }
    for name in ["private.txt", "solutions.txt", "hello.ipynb"] {
        node_args.extend(["--lookup".into(), name.into()]);
    }
    let script = dir.join("attack-kit/nfs_attack.py");
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/swh-n{node}"))
        .args(["python3"])
        .arg(&script)
        .args(&node_args);
    let out = run_timeout(cmd, Duration::from_secs(300))?;
    let report = attack::Report::new(&format!("node{node}-netns"), &out);
    eprintln!("{}", report.summary());
    ensure!(
        report.finished(),
        "the attacker in node {node}'s netns: {}",
        out.describe()
    );
    note(
        "capability mounts, from a node address",
        report.thefts(&markers),
    );
    timings.add("7b: raw RPC attacker from bob's node's netns", t.elapsed());

    // ---- the exchange through bob's own view
    let t = Instant::now();
    let c = format!("{EXCHANGE}/{COURSE}");
    for (what, script) in [
        (
            "symlink at the exchange root",
            format!("ln -s /etc/passwd {EXCHANGE}/planted-by-bob-symlink-{{u}}"),
        ),
        (
            "symlink in inbound",
            format!("ln -s /etc/passwd {c}/inbound/planted-by-bob-symlink-{{u}}"),
        ),
        (
            "FIFO at the exchange root",
            format!("mkfifo {EXCHANGE}/planted-by-bob-fifo-{{u}}"),
        ),
        (
            "FIFO in inbound",
            format!("mkfifo {c}/inbound/planted-by-bob-fifo-{{u}}"),
        ),
        (
            "directory at the exchange root",
            format!("mkdir {EXCHANGE}/planted-by-bob-squat-{{u}}"),
        ),
        (
            "file at the exchange root",
            format!("echo x > {EXCHANGE}/planted-by-bob-file-{{u}}"),
        ),
        (
            "hard link to the teacher's release in inbound",
            format!("ln {c}/outbound/ps1/problem1.ipynb {c}/inbound/planted-by-bob-hardlink-{{u}}"),
        ),
    ] {
        for user in ["jovyan", "0"] {
            let script = script.replace("{u}", user);
            let out = nb.sh(user, &script);
            eprintln!(
                "[bob as {user}] {what}: {script} -> {:?} {}",
                out.code(),
                out.stderr.trim()
            );
            if out.success() {
                note(
                    "share-view hardening",
                    vec![format!("{what} as {user}: {script} succeeded")],
                );
            }
        }
    }
    // a submission whose notebook links to the teacher's files (the paths are the teacher's
    // own, in her container): nbgrader collect runs as the teacher and would copy them
    let sub = nb.sh(
        "jovyan",
        &format!(
            "ts=$(date -u '+%Y-%m-%d %H:%M:%S.%6N UTC'); S=\"{c}/inbound/bob+ps1+$ts+evil\"; mkdir \"$S\" && printf '%s' \"$ts\" > \"$S/timestamp.txt\"; \
             ln -s /home/jovyan/work/{COURSE}/source/ps1/problem1.ipynb \"$S/problem1.ipynb\"; \
             ln -s /home/jovyan/solutions.txt \"$S/solutions.ipynb\"; ls -la \"$S\""
        ),
    );
    eprintln!("bob's linked submission: {}", sub.describe());
    let collect = d.exec(
        "tina",
        &format!(
            "nbgrader collect ps1; echo '--- symlinks:'; find ~/work/{COURSE}/submitted/bob -type l 2>/dev/null; \
             echo '--- teacher content:'; grep -rRl {tina_marker} ~/work/{COURSE}/submitted/bob 2>/dev/null; \
             grep -rRl 'Problem 1' ~/work/{COURSE}/submitted/bob 2>/dev/null; echo '--- end'"
        ),
    )?;
    let found = collect
        .stdout
        .split("--- symlinks:")
        .nth(1)
        .unwrap_or_default()
        .replace("--- teacher content:", "")
        .replace("--- end", "");
    let found: Vec<String> = found
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("after nbgrader collect: {l}"))
        .collect();
    note("linked submission", found);
    let on_disk = attack::planted(&d.data_dir, "home-bob");
    note(
        "planted on nfsd's disk",
        on_disk.iter().map(|p| p.display().to_string()).collect(),
    );
    // what got created must not disturb the later steps (a FIFO in inbound, say)
    let _ = nb.sh(
        "0",
        &format!("rm -rf {EXCHANGE}/planted-by-* {c}/inbound/planted-by-*"),
    );
    for p in &on_disk {
        let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir_all(p));
    }
    timings.add(
        "7b: exchange attacks through bob's view + collect",
        t.elapsed(),
    );

    // ---- bob's home quota: writing past it fails in bob's notebook, alice still writes
    let t = Instant::now();
    let df = nb.sh("jovyan", "df -P -B1 /home/jovyan | tail -1");
    let host_df = Command::new("df")
        .args(["-P", "-B1"])
        .arg(&d.data_dir)
        .output()?;
    let field = |s: &str, i: usize| -> u64 {
        s.lines()
            .last()
            .and_then(|l| l.split_whitespace().nth(i)?.parse().ok())
            .unwrap_or(0)
    };
    let (size, avail) = (field(&df.stdout, 1), field(&df.stdout, 3));
    let disk = field(&String::from_utf8_lossy(&host_df.stdout), 1);
    eprintln!("bob's home: df size {size} avail {avail}; nfsd's disk {disk}");
    const FILL_LIMIT: u64 = 2 << 30;
    if size == 0 || size >= disk / 10 * 9 {
        note(
            "quotas by default",
            vec![format!(
                "bob's home has no quota: df shows {size} bytes, nfsd's disk is {disk}"
            )],
        );
    } else if avail > FILL_LIMIT {
        eprintln!("bob's quota leaves {avail} bytes: more than the test fills; not filled");
    } else {
        let mib = avail / (1 << 20) + 16;
        let dd = nb.sh(
            "jovyan",
            &format!(
                "dd if=/dev/zero of=/home/jovyan/planted-by-bob-fill bs=1M count={mib} conv=fsync"
            ),
        );
        eprintln!("bob fills his home: {}", dd.describe());
        if dd.success() {
            note(
                "quota",
                vec![format!("bob wrote {mib} MiB with {avail} bytes left")],
            );
        }
        let _ = nb.sh("jovyan", "rm -f /home/jovyan/planted-by-bob-fill");
    }
    d.exec_ok(
        "alice",
        "set -e; head -c 4194304 /dev/zero > ~/after-bob-quota; rm ~/after-bob-quota",
    )?;
    timings.add("7b: bob's quota", t.elapsed());
    Ok(breaches)
}

/// 1b. `volume prepare` before a lecture: the students' volumes, made ahead of their first
/// login with the hub's options (alice's spawn in step 2 then finds them and nfsd answers 200);
/// a dry run first lists them missing, a re-run finds them all there.
fn prepare_volumes(d: &Deploy, timings: &mut Timings) -> anyhow::Result<()> {
    let prepare = ["volume", "prepare", "--group", "students"];
    let pw = ["--ldap-password-file", d.pw()];
    let dry = d.swarmhub_ok(&[&prepare[..], &pw, &["--dry-run"]].concat())?;
    ensure!(
        dry.contains("dry run: 5 of 5 member(s) lack volumes"),
        "{dry}"
    );
    let t = Instant::now();
    let out = d.swarmhub_ok(&[&prepare[..], &pw].concat())?;
    timings.add("volume prepare --group students (5 users)", t.elapsed());
    ensure!(
        out.contains("10 created, 0 already there, 0 failed"),
        "{out}"
    );
    let list = d.swarmhub_ok(&["--output", "json", "volume", "list"])?;
    let volumes: Value = serde_json::from_str(&list)?;
    let options = |name: &str| -> Value {
        let all = volumes["volumes"].as_array().cloned().unwrap_or_default();
        let v = all.into_iter().find(|v| v["name"] == json!(name));
        v.map_or(Value::Null, |v| v["options"].clone())
    };
    for user in ["alice", "bob"] {
        let home = json!({"user": user, "layout": "home", "size": 10u64 << 30});
        ensure!(options(&format!("home-{user}")) == home, "{list}");
        let exchange = json!({"share": "exchange", "user": user, "size": 2u64 << 30});
        ensure!(options(&format!("exchange-{user}")) == exchange, "{list}");
    }
    let again = d.swarmhub_ok(&[&prepare[..], &pw].concat())?;
    ensure!(
        again.contains("0 created, 10 already there, 0 failed"),
        "{again}"
    );
    Ok(())
}
