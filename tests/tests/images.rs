//! The project's container images (top-level `Dockerfile`, `images/`), built here without a
//! registry by `swarmhub_tests::images::ensure_images` and checked by running them:
//!
//! - hub: the pinned JupyterHub, configurable-http-proxy, dockerspawner, ldapauthenticator and
//!   idle culler; the entrypoint exports the secrets from their files and stops with a clear
//!   message when one is missing or empty; the config `swarmhub config render-hub` writes loads in
//!   the image and JupyterHub initializes with it (database in /srv/jupyterhub/data) and picks
//!   the notebook images this file builds;
//! - notebooks: jovyan 1000:100, jupyterhub-singleuser and nbgrader, nbgrader's instructor
//!   extensions only in the teacher image, the system nbgrader config (work directory ~/work),
//!   and a Jupyter server that runs on an empty home volume mounted as the home directory, which
//!   gets the image's skeleton (.bashrc, .profile) without overwriting what a home has, and
//!   starts even when the skeleton cannot be copied;
//! - cli: the static `swarmhub` and the plugin bundle exactly as plugin-config/build.sh lays it
//!   out (and `docker plugin create` accepts it);
//! - nfsd: starts with the capabilities the CLI gives it and answers /v1/health.
//!
//! Needs root, docker.io, debootstrap and access to Debian's mirror, PyPI and npm (first build
//! about 6 minutes, then seconds); fails, never skips. The tests take turns on one test machine
//! (`swarmhub_tests::docker::Dockerd`), never the host's dockerd.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use swarmhub_tests::docker::{self, Dockerd, LABEL, docker, docker_ok, repo_root};
use swarmhub_tests::images::{Image, ensure_images};

const TEACHER_GROUP: &str = "cn=teachers,ou=groups,dc=example,dc=org";
const COURSE: &str = "intro-python";

/// The test's machine (this thread runs in it) with the images (built when missing or outdated).
fn setup(images: &[Image]) -> Dockerd {
    for e in ensure_images(images).expect("images") {
        eprintln!(
            "{}: {}",
            e.tag,
            if e.built {
                format!("built in {:.1?}", e.took)
            } else {
                "current".into()
            }
        );
    }
    Dockerd::ensure().expect("the test machine's dockerd")
}

/// `docker run --rm ARGS`; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["run", "--rm", "--label", LABEL];
    all.extend_from_slice(args);
    let out = docker::docker_timeout(&all, Duration::from_secs(300));
    assert!(!out.timed_out, "{}", out.describe());
    (out.success(), out.stdout, out.stderr)
}

#[track_caller]
fn run_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(args);
    assert!(
        ok,
        "docker run {args:?} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout
}

/// `name==version` pins of a requirements file of images/.
fn pins(file: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(repo_root().join("images").join(file))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (n, v) = l.split_once("==").expect("pinned with ==");
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

fn chown_jovyan(p: &Path) {
    let st = Command::new("chown")
        .arg("-R")
        .arg("1000:100")
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

// ---------------------------------------------------------------------------------------------
// hub

#[test]
fn hub_image_has_the_pinned_hub_stack() {
    let _d = setup(&[Image::Hub]);
    let hub = Image::Hub.tag();
    let pins = pins("hub-requirements.txt");

    let v = run_ok(&[&hub, "jupyterhub", "--version"]);
    assert_eq!(v.trim(), pins["jupyterhub"], "jupyterhub --version");
    let v = run_ok(&[&hub, "configurable-http-proxy", "--version"]);
    assert!(
        v.trim().starts_with("5."),
        "configurable-http-proxy --version: {v}"
    );
    let script = r#"
import json, os, sys
from importlib.metadata import version
import dockerspawner, ldapauthenticator, jupyterhub_idle_culler, docker
from dockerspawner import SwarmSpawner
names = ["jupyterhub", "dockerspawner", "jupyterhub-ldapauthenticator", "jupyterhub-idle-culler", "docker"]
print(json.dumps({"versions": {n: version(n) for n in names}, "cwd": os.getcwd(),
                  "python": sys.executable, "data": os.path.isdir("/srv/jupyterhub/data"),
                  "uid": os.getuid()}))
"#;
    let out: serde_json::Value =
        serde_json::from_str(run_ok(&[&hub, "python", "-c", script]).trim()).unwrap();
    for (name, want) in &pins {
        assert_eq!(
            out["versions"][name].as_str(),
            Some(want.as_str()),
            "{name} in the hub image: {out}"
        );
    }
    assert_eq!(out["cwd"], "/srv/jupyterhub", "{out}");
    assert_eq!(out["python"], "/opt/venv/bin/python", "{out}");
    assert_eq!(out["data"], true, "/srv/jupyterhub/data is missing: {out}");
    assert_eq!(out["uid"], 0, "the hub runs as root (docker socket): {out}");
    // the idle culler runs as `python -m jupyterhub_idle_culler` (the generated config)
    let help = run_ok(&[&hub, "python", "-m", "jupyterhub_idle_culler", "--help"]);
    assert!(help.contains("--timeout"), "{help}");
}

#[test]
fn hub_entrypoint_exports_secrets_from_files() {
    let _d = setup(&[Image::Hub]);
    let hub = Image::Hub.tag();
    let dir = tempfile::tempdir().unwrap();
    let key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let cookie = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    std::fs::write(dir.path().join("crypt-key"), format!("{key}\n")).unwrap();
    std::fs::write(dir.path().join("cookie"), format!("{cookie}\n")).unwrap();
    std::fs::write(dir.path().join("empty"), "").unwrap();
    let vol = format!("{}:/run/secrets:ro", dir.path().display());
    let crypt = "JUPYTERHUB_CRYPT_KEY_FILE=/run/secrets/crypt-key";
    let cookie_file = "JPY_COOKIE_SECRET_FILE=/run/secrets/cookie";

    let out = run_ok(&[
        "-v",
        &vol,
        "-e",
        crypt,
        "-e",
        cookie_file,
        &hub,
        "sh",
        "-c",
        "printf '%s|%s' \"$JUPYTERHUB_CRYPT_KEY\" \"$JPY_COOKIE_SECRET\"",
    ]);
    assert_eq!(out, format!("{key}|{cookie}"), "exported values");

    // JupyterHub accepts the exported key: auth state round-trips through it
    let script = "import asyncio\nfrom jupyterhub.crypto import encrypt, decrypt\n\
                  async def main():\n    print(await decrypt(await encrypt({'groups': ['t']})))\n\
                  asyncio.run(main())";
    let out = run_ok(&["-v", &vol, "-e", crypt, &hub, "python", "-c", script]);
    assert_eq!(out.trim(), "{'groups': ['t']}");

    // unset *_FILE: nothing exported, the command still runs
    let out = run_ok(&[
        &hub,
        "sh",
        "-c",
        "echo \"${JUPYTERHUB_CRYPT_KEY-unset} ${JPY_COOKIE_SECRET-unset}\"",
    ]);
    assert_eq!(out.trim(), "unset unset");

    // a named file that is missing or empty stops the container with a message naming it
    let (ok, _, err) = run(&[
        "-v",
        &vol,
        "-e",
        crypt,
        "-e",
        "JPY_COOKIE_SECRET_FILE=/run/secrets/no-such-secret",
        &hub,
        "echo",
        "must not run",
    ]);
    assert!(!ok, "a missing secret file must fail the container");
    assert!(
        err.contains("JPY_COOKIE_SECRET_FILE=/run/secrets/no-such-secret: no such file"),
        "{err}"
    );
    let (ok, out, err) = run(&[
        "-v",
        &vol,
        "-e",
        "JUPYTERHUB_CRYPT_KEY_FILE=/run/secrets/empty",
        &hub,
        "echo",
        "must not run",
    ]);
    assert!(!ok && !out.contains("must not run"), "{out}");
    assert!(
        err.contains("JUPYTERHUB_CRYPT_KEY_FILE=/run/secrets/empty: the file is empty"),
        "{err}"
    );
    // the container's exit code tells the two failures from a failing command
    let status = docker::docker_timeout(
        &[
            "run",
            "--rm",
            "--label",
            LABEL,
            "-e",
            "JUPYTERHUB_CRYPT_KEY_FILE=/nope",
            &hub,
            "true",
        ],
        Duration::from_secs(120),
    )
    .status
    .and_then(|s| s.code());
    assert_eq!(status, Some(64), "exit code of a missing secret file");
}

/// Loads the generated config as `jupyterhub --config` does, initializes JupyterHub (database,
/// crypt key, authenticator, services) without starting it, and spawns a teacher and a student
/// through the configured spawner's hooks. Prints JSON.
const HUB_CONFIG_CHECK: &str = r#"
import asyncio, json, os, sys
from jupyterhub.app import JupyterHub
from jupyterhub.objects import Hub
from dockerspawner import SwarmSpawner
import ldapauthenticator

teacher_group = sys.argv[1]

class FakeUser:
    def __init__(self, name):
        self.name = name
        self.escaped_name = name
        self.url = f"/user/{name}/"
        self.base_url = "/"
    def progress_url(self, server_name=""):
        return f"/hub/api/users/{self.name}/server/progress"

async def main():
    app = JupyterHub()
    await app.initialize(["--config", "/srv/jupyterhub/jupyterhub_config.py"])
    cls = app.spawner_class
    assert issubclass(cls, SwarmSpawner), cls.__mro__
    hub = Hub(ip="0.0.0.0", port=app.hub_port, base_url="/hub/", connect_ip=app.hub_connect_ip)
    spawns = {}
    for name, groups in [("tina", [teacher_group]), ("sam", ["cn=students"])]:
        sp = cls(user=FakeUser(name), hub=hub, config=app.config, api_token="t0ken")
        await sp.run_auth_state_hook({"ldap_groups": groups, "user_attributes": {}})
        r = sp.run_pre_spawn_hook()
        if asyncio.iscoroutine(r):
            await r
        spawns[name] = {
            "image": sp.image,
            "cmd": sp.cmd,
            "env": {k: v for k, v in sp.environment.items() if k.startswith(("NBGRADER_", "SWARMHUB_"))},
            "mounts": [m["Target"] for m in sp.extra_container_spec["mounts"]],
        }
    services = [s.command for s in app._service_map.values() if s.command]
    print(json.dumps({
        "spawner": cls.__name__,
        "authenticator": type(app.authenticator).__name__,
        "db_url": app.db_url,
        "cookie_secret_file": app.cookie_secret_file,
        "services": services,
        "service_commands_exist": all(os.path.exists(c[0]) for c in services),
        "spawns": spawns,
    }))

asyncio.run(main())
"#;

#[test]
fn generated_hub_config_initializes_in_the_hub_image() {
    let _d = setup(&[Image::Hub, Image::NotebookStudent, Image::NotebookTeacher]);
    let swarmhub = swarmhub_tests::nfsd::build_workspace_bin("hub-deployer", "swarmhub", false)
        .expect("the swarmhub binary");
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("swarmhub.toml");
    let cli = |args: &[&str]| {
        let out = Command::new(&swarmhub)
            .arg("--config")
            .arg(&toml)
            .args(args)
            .env("SWARMHUB_HUB_COURSE_ID", COURSE)
            .env("SWARMHUB_LDAP_TEACHER_GROUP", TEACHER_GROUP)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "swarmhub {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    cli(&["init"]);
    let config = cli(&["config", "render-hub"]);
    let config_file = dir.path().join("jupyterhub_config.py");
    std::fs::write(&config_file, &config).unwrap();
    let check = dir.path().join("check.py");
    std::fs::write(&check, HUB_CONFIG_CHECK).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("crypt"), "ab".repeat(32)).unwrap();
    std::fs::write(secrets.join("cookie"), "cd".repeat(32)).unwrap();

    let out = run_ok(&[
        "-v",
        &format!(
            "{}:/srv/jupyterhub/jupyterhub_config.py:ro",
            config_file.display()
        ),
        "-v",
        &format!("{}:/check.py:ro", check.display()),
        "-v",
        &format!("{}:/srv/jupyterhub/data", data.display()),
        "-v",
        &format!("{}:/run/secrets:ro", secrets.display()),
        "-e",
        "JUPYTERHUB_CRYPT_KEY_FILE=/run/secrets/crypt",
        "-e",
        "JPY_COOKIE_SECRET_FILE=/run/secrets/cookie",
        &Image::Hub.tag(),
        "python",
        "/check.py",
        TEACHER_GROUP,
    ]);
    let json_line = out.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(json_line).unwrap_or_else(|e| panic!("{e}: check.py printed {out}"));
    println!("{v:#}");
    assert_eq!(v["spawner"], "SwarmhubSpawner");
    assert_eq!(v["authenticator"], "LDAPAuthenticator");
    assert_eq!(
        v["db_url"],
        "sqlite:////srv/jupyterhub/data/jupyterhub.sqlite"
    );
    assert!(
        data.join("jupyterhub.sqlite").exists(),
        "JupyterHub did not create its database in the data volume"
    );
    assert_eq!(
        v["cookie_secret_file"],
        "/srv/jupyterhub/data/jupyterhub_cookie_secret"
    );
    assert_eq!(
        v["services"][0][0], "/opt/venv/bin/python",
        "idle culler command: {v}"
    );
    assert_eq!(v["service_commands_exist"], true, "{v}");
    let teacher = &v["spawns"]["tina"];
    let student = &v["spawns"]["sam"];
    // the config names exactly the images built here, and they run its command
    assert_eq!(teacher["image"], Image::NotebookTeacher.tag().as_str());
    assert_eq!(student["image"], Image::NotebookStudent.tag().as_str());
    assert_eq!(student["cmd"], serde_json::json!(["jupyterhub-singleuser"]));
    for s in [teacher, student] {
        assert_eq!(s["env"]["NBGRADER_COURSE_ID"], COURSE, "{s}");
        assert_eq!(
            s["env"]["NBGRADER_EXCHANGE_ROOT"], "/srv/nbgrader/exchange",
            "{s}"
        );
        // the home volume is the whole home directory; the exchange is a mount of its own
        assert_eq!(
            s["mounts"],
            serde_json::json!(["/home/jovyan", "/srv/nbgrader/exchange"]),
            "{s}"
        );
        assert_eq!(s["env"]["SWARMHUB_HOME_DIR"], "/home/jovyan", "{s}");
    }
    assert_eq!(teacher["env"]["SWARMHUB_ROLE"], "teacher");
    assert_eq!(student["env"]["SWARMHUB_ROLE"], "student");
    for image in [Image::NotebookStudent, Image::NotebookTeacher] {
        let which = run_ok(&[&image.tag(), "sh", "-c", "command -v jupyterhub-singleuser"]);
        assert_eq!(which.trim(), "/opt/venv/bin/jupyterhub-singleuser");
    }
}

// ---------------------------------------------------------------------------------------------
// notebooks

/// nbgrader's settings in effect in a notebook image, as JSON.
const NBGRADER_CONFIG_CHECK: &str = r#"
import json, os
from nbgrader.apps.baseapp import NbGrader
app = NbGrader()
app.load_config_file()
c = app.config
root = c.CourseDirectory.get("root")
print(json.dumps({
    "course_id": c.CourseDirectory.course_id,
    "root": root,
    "root_source_exists": bool(root) and os.path.isdir(os.path.join(root, "source")),
    "exchange_root": c.Exchange.root,
    "assignment_dir": c.Exchange.assignment_dir,
}))
"#;

#[test]
fn notebook_images_have_jovyan_jupyter_and_nbgrader_per_role() {
    let _d = setup(&[Image::NotebookStudent, Image::NotebookTeacher]);
    let pins = pins("notebook-requirements.txt");
    for (image, teacher) in [
        (Image::NotebookStudent, false),
        (Image::NotebookTeacher, true),
    ] {
        let tag = image.tag();
        let ids = run_ok(&[
            &tag,
            "sh",
            "-c",
            "id -u; id -g; id -un; id -gn; echo $HOME; pwd",
        ]);
        assert_eq!(
            ids.lines().collect::<Vec<_>>(),
            [
                "1000",
                "100",
                "jovyan",
                "users",
                "/home/jovyan",
                "/home/jovyan"
            ],
            "{tag}: user and home"
        );
        // `pip install --user` goes to ~/.local (the home volume) and the venv reads it
        let user_site = run_ok(&[
            &tag,
            "python",
            "-c",
            "import site, sys; print(site.ENABLE_USER_SITE, site.getusersitepackages())",
        ]);
        assert!(
            user_site
                .trim()
                .starts_with("True /home/jovyan/.local/lib/python3"),
            "{tag}: user site-packages: {user_site}"
        );
        let v = run_ok(&[&tag, "jupyterhub-singleuser", "--version"]);
        assert_eq!(v.trim(), pins["jupyterhub"], "{tag}: jupyterhub-singleuser");
        let v = run_ok(&[&tag, "nbgrader", "--version"]);
        assert!(
            v.contains(&pins["nbgrader"]),
            "{tag}: nbgrader --version: {v}"
        );
        let v = run_ok(&[&tag, "jupyter", "lab", "--version"]);
        assert_eq!(v.trim(), pins["jupyterlab"], "{tag}: jupyter lab --version");

        // server extensions: validate and the assignment list for everyone, the rest for teachers
        let (ok, so, se) = run(&[&tag, "jupyter", "server", "extension", "list"]);
        assert!(ok, "{so}{se}");
        let text = format!("{so}{se}");
        // "    <ext> enabled" / "    <ext> disabled" (colored), then a validation line
        let enabled = |ext: &str| {
            let state: Vec<&str> = text
                .lines()
                .filter(|l| l.trim_start().starts_with(&format!("{ext} ")) && l.contains("abled"))
                .collect();
            assert_eq!(state.len(), 1, "{ext} in: {text}");
            !state[0].contains("disabled")
        };
        assert!(
            enabled("nbgrader.server_extensions.assignment_list"),
            "{tag}: {text}"
        );
        assert!(
            enabled("nbgrader.server_extensions.validate_assignment"),
            "{tag}: {text}"
        );
        for ext in [
            "nbgrader.server_extensions.formgrader",
            "nbgrader.server_extensions.course_list",
        ] {
            assert_eq!(enabled(ext), teacher, "{tag}: {ext}\n{text}");
        }

        // lab extensions: the instructor plugins are disabled for students only
        let (ok, so, se) = run(&[&tag, "jupyter", "labextension", "list"]);
        assert!(ok, "{so}{se}");
        let text = format!("{so}{se}");
        assert!(
            text.contains("@jupyter/nbgrader") && text.contains("enabled") && text.contains("OK"),
            "{tag}: {text}"
        );
        let disabled_part = text.split("Disabled extensions:").nth(1).unwrap_or("");
        for plugin in [
            "@jupyter/nbgrader:formgrader",
            "@jupyter/nbgrader:create-assignment",
            "@jupyter/nbgrader:course-list",
        ] {
            assert_eq!(
                disabled_part.contains(plugin),
                !teacher,
                "{tag}: {plugin}\n{text}"
            );
        }
        for plugin in [
            "@jupyter/nbgrader:assignment-list",
            "@jupyter/nbgrader:validate-assignment",
        ] {
            assert!(!disabled_part.contains(plugin), "{tag}: {plugin}\n{text}");
        }

        // the system nbgrader config follows the hub's environment
        let out = run_ok(&[
            "-e",
            &format!("NBGRADER_COURSE_ID={COURSE}"),
            "-e",
            "NBGRADER_EXCHANGE_ROOT=/srv/exchange-x",
            &tag,
            "python",
            "-c",
            NBGRADER_CONFIG_CHECK,
        ]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        // a hub of swarmhub 0.x names the volume's mount point: nbgrader keeps using it
        let legacy = run_ok(&[
            "-e",
            "SWARMHUB_WORK_DIR=/tmp/legacy-work",
            &tag,
            "python",
            "-c",
            NBGRADER_CONFIG_CHECK,
        ]);
        let legacy: serde_json::Value = serde_json::from_str(legacy.trim()).unwrap();
        assert_eq!(
            legacy["assignment_dir"], "/tmp/legacy-work",
            "{tag}: {legacy}"
        );
        assert_eq!(v["course_id"], COURSE, "{tag}: {v}");
        assert_eq!(v["exchange_root"], "/srv/exchange-x", "{tag}: {v}");
        assert_eq!(v["assignment_dir"], "/home/jovyan/work", "{tag}: {v}");
        if teacher {
            assert_eq!(
                v["root"],
                format!("/home/jovyan/work/{COURSE}").as_str(),
                "{tag}: {v}"
            );
            assert_eq!(v["root_source_exists"], true, "{tag}: {v}");
        } else {
            assert!(
                v["root"].is_null(),
                "{tag}: students have no course root: {v}"
            );
        }
    }
}

/// Starts a Jupyter server (the extensions jupyterhub-singleuser loads, without a hub) in `tag`
/// with the empty directory `home` mounted at `target`, waits until it answers, and returns the
/// HTTP status of each path.
fn serve_on_empty_home(tag: &str, home: &Path, target: &str, paths: &[&str]) -> Vec<u16> {
    let name = format!("swarmhub-test-nb-{}", std::process::id());
    docker(&["rm", "-f", &name]);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        LABEL,
        "-v",
        &format!("{}:{target}", home.display()),
        "-e",
        &format!("NBGRADER_COURSE_ID={COURSE}"),
        tag,
        "jupyter",
        "lab",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=8888",
        "--ServerApp.token=t0ken",
        "--ServerApp.open_browser=False",
    ]);
    struct Rm(String);
    impl Drop for Rm {
        fn drop(&mut self) {
            docker(&["rm", "-f", &self.0]);
        }
    }
    let _rm = Rm(name.clone());
    let status = |path: &str| -> Option<u16> {
        let out = docker(&[
            "exec",
            &name,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Authorization: token t0ken",
            &format!("http://127.0.0.1:8888{path}"),
        ]);
        out.stdout.trim().parse().ok().filter(|c| *c != 0)
    };
    let start = Instant::now();
    while status("/api/status") != Some(200) {
        if start.elapsed() > Duration::from_secs(90) {
            let logs = docker(&["logs", &name]);
            panic!(
                "{tag}: the Jupyter server did not answer within 90 s\n{}",
                logs.describe()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let codes = paths.iter().map(|p| status(p).unwrap_or(0)).collect();
    let logs = docker(&["logs", &name]);
    assert!(
        !logs.stderr.contains("Traceback"),
        "{tag}: the server logged a traceback\n{}",
        logs.stderr
    );
    codes
}

/// `(uid, gid, content)` of a file the skeleton put into a home.
fn skel_file(home: &Path, name: &str) -> (u32, u32, String) {
    let p = home.join(name);
    let md = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(md.is_file(), "{} is not a regular file", p.display());
    (md.uid(), md.gid(), std::fs::read_to_string(&p).unwrap())
}

#[test]
fn notebook_images_run_on_an_empty_home_volume() {
    let _d = setup(&[Image::NotebookStudent, Image::NotebookTeacher]);
    // teacher: an empty home volume is the whole home directory (the default)
    let home = tempfile::tempdir().unwrap();
    chown_jovyan(home.path());
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let work = home.path().join("work");
    let codes = serve_on_empty_home(
        &Image::NotebookTeacher.tag(),
        home.path(),
        "/home/jovyan",
        &["/formgrader", "/assignments?course_id=intro-python", "/lab"],
    );
    // the skeleton of the image came in before the server started, as jovyan
    let skel = run_ok(&[&Image::NotebookTeacher.tag(), "cat", "/etc/skel/.bashrc"]);
    let (uid, gid, text) = skel_file(home.path(), ".bashrc");
    assert_eq!((uid, gid, text.as_str()), (1000, 100, skel.as_str()));
    assert_eq!(skel_file(home.path(), ".profile").0, 1000);
    // and the work directory of 0.x homes, where nbgrader keeps its files
    let md = std::fs::symlink_metadata(&work).expect("~/work from the skeleton");
    assert!(
        md.is_dir() && (md.uid(), md.gid()) == (1000, 100),
        "~/work: {md:?}"
    );
    // formgrader redirects to its assignment page
    assert!(
        matches!(codes[0], 200 | 302),
        "teacher: formgrader answers {}",
        codes[0]
    );
    assert_eq!(codes[1..], [200, 200], "teacher: assignments, lab");
    // nbgrader's work directory is ~/work, for new homes as for 0.x homes moved into work/
    let course = work.join(COURSE);
    let meta = std::fs::metadata(course.join("source")).expect("the course directory");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (1000, 100),
        "course directory owner"
    );

    // student: a home that has its own .bashrc and a .profile symlink keeps them; what is
    // missing (.bash_logout) is added
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".bashrc"), "# alice's own\n").unwrap();
    std::os::unix::fs::symlink("/nonexistent", home.path().join(".profile")).unwrap();
    chown_jovyan(home.path());
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let codes = serve_on_empty_home(
        &Image::NotebookStudent.tag(),
        home.path(),
        "/home/jovyan",
        &["/formgrader", "/assignments?course_id=intro-python", "/lab"],
    );
    assert_eq!(
        codes,
        [404, 200, 200],
        "student: no formgrader; assignments, lab"
    );
    assert_eq!(
        skel_file(home.path(), ".bashrc"),
        (1000, 100, "# alice's own\n".to_string()),
        "the skeleton overwrote the user's .bashrc"
    );
    assert_eq!(
        std::fs::read_link(home.path().join(".profile")).unwrap(),
        Path::new("/nonexistent")
    );
    assert_eq!(skel_file(home.path(), ".bash_logout").0, 1000);
    // what the server wrote went to the volume, as jovyan
    let runtime = home.path().join(".local/share/jupyter/runtime");
    let meta = std::fs::metadata(&runtime).expect("the Jupyter runtime directory on the volume");
    assert_eq!((meta.uid(), meta.gid()), (1000, 100));
    assert!(
        !home.path().join(COURSE).exists() && !home.path().join("work").join(COURSE).exists(),
        "a student got a course directory"
    );

    // a home the skeleton cannot be copied into (owned by root): logged, and the command runs
    let locked = tempfile::tempdir().unwrap();
    std::fs::set_permissions(locked.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, so, se) = run(&[
        "-v",
        &format!("{}:/home/jovyan", locked.path().display()),
        &Image::NotebookStudent.tag(),
        "sh",
        "-c",
        "echo the command ran",
    ]);
    assert!(ok, "{so}{se}");
    assert_eq!(so.trim(), "the command ran");
    assert!(
        se.contains(
            "swarmhub-notebook-start: cannot copy /etc/skel/.bashrc to /home/jovyan/.bashrc"
        ),
        "no log of the failed copy: {se}"
    );
}

// ---------------------------------------------------------------------------------------------
// cli, plugin rootfs, nfsd

/// The files of an image's file system (`docker export`), extracted into `dir`.
fn export(tag: &str, dir: &Path) {
    let id = docker_ok(&["create", "--label", LABEL, tag]);
    let mut exp = Command::new("docker")
        .args(["export", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let st = Command::new("tar")
        .arg("-x")
        .arg("-p")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(dir)
        .stdin(exp.stdout.take().unwrap())
        .status()
        .unwrap();
    let exp_status = exp.wait().unwrap();
    docker(&["rm", "-f", &id]);
    assert!(st.success() && exp_status.success(), "exporting {tag}");
}

/// path -> (kind, mode, size) under `root`, except the entries Docker adds to every container.
fn listing(root: &Path) -> BTreeMap<String, (char, u32, u64)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (char, u32, u64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let kind = if meta.is_dir() {
                'd'
            } else if meta.file_type().is_symlink() {
                'l'
            } else {
                'f'
            };
            let size = if kind == 'f' { meta.len() } else { 0 };
            out.insert(rel, (kind, meta.permissions().mode() & 0o7777, size));
            if kind == 'd' {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// An ELF executable without a program interpreter (PT_INTERP): statically linked.
fn assert_static_elf(path: &Path) {
    let mut f = std::fs::File::open(path).unwrap();
    let mut b = Vec::new();
    f.read_to_end(&mut b).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(b[4], 2, "{} is not ELF64", path.display());
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = usize::try_from(u64::from_le_bytes(b[0x20..0x28].try_into().unwrap())).unwrap();
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let p_type = u32::from_le_bytes(
            b[phoff + i * phentsize..phoff + i * phentsize + 4]
                .try_into()
                .unwrap(),
        );
        assert_ne!(p_type, 3, "{} is dynamically linked", path.display());
    }
    assert!(std::fs::metadata(path).unwrap().permissions().mode() & 0o111 != 0);
}

#[test]
fn cli_image_carries_the_plugin_bundle() {
    let _d = setup(&[Image::Cli, Image::PluginRootfs]);
    let cli = Image::Cli.tag();
    let entry = docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Entrypoint}}",
        &cli,
    ]);
    assert_eq!(entry, r#"["/usr/local/bin/swarmhub"]"#);
    let v = run_ok(&[&cli, "--version"]);
    assert!(
        v.contains(env!("CARGO_PKG_VERSION")),
        "swarmhub --version: {v}"
    );

    let dir = tempfile::tempdir().unwrap();
    export(&cli, dir.path());
    let root = dir.path();
    assert_static_elf(&root.join("usr/local/bin/swarmhub"));
    let tmp = std::fs::metadata(root.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777, "/tmp mode");
    let bundle = root.join("usr/share/swarmhub/plugin");
    assert_eq!(
        std::fs::read(bundle.join("config.json")).unwrap(),
        std::fs::read(repo_root().join("plugin-config/config.json")).unwrap(),
        "the bundle's config.json is plugin-config/config.json"
    );
    assert_static_elf(&bundle.join("rootfs/swarmhub-volume-plugin"));

    // exactly what plugin-config/build.sh lays out from the same binary
    let reference = tempfile::tempdir().unwrap();
    let out_dir = reference.path().join("plugin");
    let st = Command::new(repo_root().join("plugin-config/build.sh"))
        .arg("--no-create")
        .arg("--binary")
        .arg(bundle.join("rootfs/swarmhub-volume-plugin"))
        .arg("--out")
        .arg(&out_dir)
        .status()
        .unwrap();
    assert!(st.success(), "plugin-config/build.sh --no-create");
    let got = listing(&bundle);
    let want = listing(&out_dir);
    assert_eq!(
        got, want,
        "the bundle differs from plugin-config/build.sh's"
    );
    for (path, kind, mode) in [
        ("rootfs/run/docker/plugins", 'd', None),
        ("rootfs/mnt/volumes", 'd', None),
        ("rootfs/state", 'd', None),
        ("rootfs/tmp", 'd', Some(0o1777)),
        ("rootfs/proc", 'd', None),
        ("rootfs/sys", 'd', None),
        ("rootfs/dev", 'd', None),
        ("rootfs/etc", 'd', None),
        ("rootfs/run/docker.sock", 'f', None),
    ] {
        let (k, m, size) = got[path];
        assert_eq!(k, kind, "{path}");
        if let Some(mode) = mode {
            assert_eq!(m, mode, "{path}");
        }
        if kind == 'f' {
            assert_eq!(size, 0, "{path} is empty");
        }
    }

    // dockerd accepts the bundle as a managed plugin
    let name = format!("swarmhub-test-bundle-{}", std::process::id());
    docker(&["plugin", "rm", "-f", &name]);
    let created = docker(&["plugin", "create", &name, &bundle.display().to_string()]);
    let inspect = docker(&[
        "plugin",
        "inspect",
        "-f",
        "{{json .Config.Entrypoint}}",
        &name,
    ]);
    docker(&["plugin", "rm", "-f", &name]);
    assert!(created.success(), "{}", created.describe());
    assert_eq!(inspect.stdout.trim(), r#"["/swarmhub-volume-plugin"]"#);

    // the plugin-rootfs image is the bundle's rootfs
    let rootfs = tempfile::tempdir().unwrap();
    export(&Image::PluginRootfs.tag(), rootfs.path());
    let mut got_rootfs = listing(rootfs.path());
    // docker export adds these to every container file system
    for extra in [
        ".dockerenv",
        "etc/hostname",
        "etc/hosts",
        "etc/resolv.conf",
        "etc/mtab",
    ] {
        got_rootfs.remove(extra);
    }
    got_rootfs.retain(|k, _| !k.starts_with("dev/") && !k.starts_with("proc/"));
    let mut want_rootfs: BTreeMap<_, _> = want
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("rootfs/").map(|k| (k.to_string(), *v)))
        .collect();
    want_rootfs.retain(|k, _| !k.starts_with("dev/") && !k.starts_with("proc/"));
    // modes of the mount points Docker creates may differ; compare names and files
    let names = |m: &BTreeMap<String, (char, u32, u64)>| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.0, v.2))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&got_rootfs),
        names(&want_rootfs),
        "plugin-rootfs image"
    );
}

fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: nfsd\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((code, body.to_string()))
}

/// `NFSD_CAPABILITIES` of hub-deployer/src/plan/mod.rs (this crate does not depend on the CLI).
fn nfsd_capabilities() -> Vec<String> {
    let plan = std::fs::read_to_string(repo_root().join("hub-deployer/src/plan/mod.rs")).unwrap();
    let list = plan
        .split_once("pub const NFSD_CAPABILITIES: &[&str] = &[")
        .and_then(|(_, rest)| rest.split_once("];"))
        .map(|(list, _)| list)
        .expect("NFSD_CAPABILITIES in hub-deployer/src/plan/mod.rs");
    let caps: Vec<String> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    assert!(
        caps.iter().any(|c| c == "CAP_DAC_READ_SEARCH"),
        "NFSD_CAPABILITIES: {caps:?}"
    );
    caps
}

#[test]
fn nfsd_image_starts_and_answers_health() {
    let _d = setup(&[Image::Nfsd]);
    let tag = Image::Nfsd.tag();
    let entry = docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Entrypoint}}",
        &tag,
    ]);
    assert_eq!(entry, r#"["/swarmhub-nfsd"]"#);
    let data = tempfile::tempdir().unwrap();
    let name = format!("swarmhub-test-nfsd-{}", std::process::id());
    docker(&["rm", "-f", &name]);
    // exactly the capabilities the CLI gives the nfsd service (hub-deployer's NFSD_CAPABILITIES)
    let mut args: Vec<String> = ["run", "-d", "--name", &name, "--label", LABEL]
        .map(String::from)
        .into();
    for cap in nfsd_capabilities() {
        args.extend(["--cap-add".into(), cap]);
    }
    args.extend([
        "-v".into(),
        format!("{}:/data", data.path().display()),
        tag.clone(),
    ]);
    docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    struct Rm(String);
    impl Drop for Rm {
        fn drop(&mut self) {
            docker(&["rm", "-f", &self.0]);
        }
    }
    let _rm = Rm(name.clone());
    let ip = docker_ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &name,
    ]);
    assert!(
        !ip.is_empty(),
        "the nfsd container has no IP address (exited?)\n{}",
        docker(&["logs", &name]).describe()
    );
    let start = Instant::now();
    let (code, body) = loop {
        match http_get(&format!("{ip}:8049"), "/v1/health") {
            Ok(r) if r.0 == 200 => break r,
            r if start.elapsed() > Duration::from_secs(30) => {
                panic!(
                    "nfsd did not answer /v1/health: {r:?}\n{}",
                    docker(&["logs", &name]).describe()
                )
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert_eq!(code, 200);
    let health: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["nfs_listen"], "0.0.0.0:2049", "{health}");
    // it took the data root mounted at /data: the API token and the handle key are there
    assert!(
        data.path().join("api-token").exists(),
        "no api-token in the data dir"
    );
    // NFS is served on 2049 too
    assert!(
        std::net::TcpStream::connect(format!("{ip}:2049")).is_ok(),
        "nothing listens on 2049"
    );
    let stop = Instant::now();
    docker_ok(&["stop", "-t", "15", &name]);
    assert!(
        stop.elapsed() < Duration::from_secs(12),
        "nfsd did not stop on SIGTERM"
    );
}
