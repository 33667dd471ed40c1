//! The generated `jupyterhub_config.py` against the real Python packages.
//!
//! Each test renders a config, checks that `python3 -m py_compile` accepts it, and runs
//! `tests/python/check_hubconfig.py` in a virtual environment holding the real JupyterHub,
//! dockerspawner 14.x, jupyterhub-ldapauthenticator 2.x, docker and jupyterhub-idle-culler from
//! PyPI. The environment lives in `$SWARMHUB_PYENV` (default `/var/cache/swarmhub-pyenv`) and is
//! reused while it holds the same requirements. When it cannot be built (no `python3 -m venv`,
//! no PyPI) the tests fail: they never skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use hub_deployer::settings::Config;
use hub_deployer::settings::hub::{HubSettings, render};
use serde_json::json;

/// What the checks run against. Bump to rebuild every cached environment.
const REQUIREMENTS: &[&str] = &[
    "jupyterhub>=4,<6",
    "dockerspawner>=14,<15",
    "jupyterhub-ldapauthenticator>=2,<3",
    "docker>=7",
    "jupyterhub-idle-culler>=1.4",
];
const STAMP: &str = "swarmhub-requirements.txt";

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{}", show(what, &out));
    out
}

/// The Python of the environment with the real packages, built once per test process.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(build_env)
}

fn build_env() -> PathBuf {
    let dir = std::env::var_os("SWARMHUB_PYENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/swarmhub-pyenv"));
    let want = REQUIREMENTS.join("\n") + "\n";
    let ready = |d: &Path| {
        d.join("bin/python").exists() && fs::read_to_string(d.join(STAMP)).is_ok_and(|s| s == want)
    };
    if ready(&dir) {
        return dir.join("bin/python");
    }
    // Build next to the final place and rename it there, so that a concurrent test process never
    // sees a half-built environment (`python -m` works from a moved venv: pyvenv.cfg sits next
    // to bin/).
    let parent = dir.parent().expect("SWARMHUB_PYENV has a parent directory");
    fs::create_dir_all(parent)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        dir.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&tmp);
    run(
        "python3 -m venv (install python3-venv?)",
        Command::new("python3").arg("-m").arg("venv").arg(&tmp),
    );
    let py = tmp.join("bin/python");
    run(
        "pip install of the hub's Python packages from PyPI",
        Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
            ])
            .args(REQUIREMENTS),
    );
    fs::write(tmp.join(STAMP), &want).expect("write the requirements stamp");
    if dir.exists() && !ready(&dir) {
        let old = parent.join(format!(
            ".{}.old-{}",
            dir.file_name().unwrap().to_string_lossy(),
            std::process::id()
        ));
        fs::rename(&dir, &old).expect("move the outdated environment aside");
        let _ = fs::remove_dir_all(&old);
    }
    match fs::rename(&tmp, &dir) {
        Ok(()) => {}
        // another process installed it meanwhile
        Err(_) if ready(&dir) => {
            let _ = fs::remove_dir_all(&tmp);
        }
        Err(e) => panic!("cannot move {} to {}: {e}", tmp.display(), dir.display()),
    }
    assert!(ready(&dir), "environment {} is not complete", dir.display());
    dir.join("bin/python")
}

fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_hubconfig.py")
}

/// The hub's data directory `check_hubconfig.py` expects (the CLI's is `HUB_DATA_DIR`).
fn data_dir_of_the_checks(s: &mut HubSettings) {
    s.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite".into();
    s.cookie_secret_file = "/srv/jupyterhub/jupyterhub_cookie_secret".into();
}

/// Render, compile with the system python3, then run the checks with the real packages.
///
/// The TLS front's file is written into `dir` (the hub writes it under its container's `/run`);
/// the checks compare it, and the front's service, with the settings.
fn check(settings: &HubSettings, mut expect: serde_json::Value, dir: &Path) -> String {
    let mut settings = settings.clone();
    let front_file = dir.join("tls-front.conf");
    settings.tls_front_file = front_file.to_str().unwrap().into();
    expect["tls_front_file"] = json!(front_file);
    expect["tls_front_conf"] = json!(settings.tls_front_conf);
    let text = render(&settings);
    let config = dir.join("jupyterhub_config.py");
    fs::write(&config, &text).unwrap();
    run(
        "python3 -m py_compile of the generated config",
        Command::new("python3")
            .arg("-m")
            .arg("py_compile")
            .arg(&config),
    );
    let expect_file = dir.join("expect.json");
    fs::write(&expect_file, serde_json::to_vec_pretty(&expect).unwrap()).unwrap();
    let out = Command::new(python())
        .arg(driver())
        .arg(&config)
        .arg(&expect_file)
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run check_hubconfig.py");
    let report = show("check_hubconfig.py", &out);
    assert!(
        out.status.success(),
        "{report}\n--- generated config\n{text}"
    );
    println!("{report}");
    text
}

/// The settings of a `swarmhub.toml` (after the checks `swarmhub` makes).
fn settings(toml_text: &str) -> HubSettings {
    Config::from_toml(toml_text, Path::new("swarmhub.toml"), [])
        .expect("settings parse")
        .hub_settings()
        .expect("settings are valid")
}

const BASE: &str = r#"
[cluster]
public_url = "https://hub.example.edu/"
hub_service = "swarmhub-hub"
[images]
notebook_student = "swarmhub/notebook-student:1.0"
notebook_teacher = "registry.example.edu:5000/swarmhub/notebook-teacher@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
[ldap]
url = "ldap://ldap.example.edu"
user_search_base = "ou=people,dc=example,dc=edu"
bind_dn = "cn=reader,dc=example,dc=edu"
student_groups = ["cn=students,ou=groups,dc=example,dc=edu"]
teacher_group = "cn=teachers,ou=groups,dc=example,dc=edu"
[hub]
admin_users = ["admin1"]
course_id = "intro-python"
cpu_limit = 1.5
mem_limit = "2G"
notebook_constraints = ["node.role==worker", "node.labels.swarmhub!=off"]
default_url = "/lab"
"#;

#[test]
fn generated_config_works_with_the_real_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let password = "pw with \"quotes\", \\backslash and spaces ";
    let password_file = dir.join("ldap-password");
    fs::write(&password_file, format!("{password}\n")).unwrap();
    let pwned = dir.join("pwned");

    // HTTPS, and plain HTTP on a second port redirected to the public port 443
    let mut s = settings(&BASE.replace(
        "[images]",
        "hub_port = 443\nhub_redirect_port = 80\n[tls]\nmode = \"self-signed\"\n[images]",
    ));
    // what swarmhub.toml does not set: the template still handles it
    data_dir_of_the_checks(&mut s);
    s.cpu_guarantee = Some(0.25);
    s.mem_guarantee = Some(512 << 20);
    s.ldap_search_password_file = Some(password_file.to_str().unwrap().into());
    // values that would break a naive template: quotes of every kind, backslashes, newlines,
    // braces (str.format), non-ASCII, and an attempt to run code when the config loads
    let teacher_group = format!(
        "cn=te\"ach'ers\\,x\n{{username}}\"\"\"),__import__('os').system('touch {}')#,dc=\u{e9}\u{1f600}",
        pwned.display()
    );
    let student_group = "cn=stu'''dents,ou=gr\\oups\r\n,dc=example,dc=edu".to_string();
    s.ldap_teacher_group = teacher_group.clone();
    s.ldap_allowed_groups = vec![student_group.clone(), teacher_group.clone()];
    s.ldap_search_user_dn = Some("cn=\"reader\",dc=example,dc=edu".into());
    s.ldap_user_search_base = Some("ou=people\\2c x,dc=example,dc=edu".into());

    let text = check(
        &s,
        json!({
            // behind the TLS front, which redirects plain HTTP on :8080 to https://host/
            "tls_front_lines": [
                "ssl_certificate /run/secrets/swarmhub-hub-tls.crt;",
                "ssl_certificate_key /run/secrets/swarmhub-hub-tls.key;",
                "listen 8080;",
                "return 301 https://$host$request_uri;",
            ],
            "proxy_ip": "127.0.0.1",
            "proxy_port": 8010,
            "base_path": "/",
            "public_url": "https://hub.example.edu/",
            "hub_api_port": 8081,
            "hub_service": "swarmhub-hub",
            "ldap_server_address": "ldap.example.edu",
            "ldap_server_port": 389,
            "tls_strategy": "before_bind",
            "lookup_dn": true,
            "user_search_base": s.ldap_user_search_base,
            "search_user_dn": s.ldap_search_user_dn,
            "password": password.trim_end_matches('\n'),
            "password_file": password_file,
            "bind_dn_templates": [],
            "allowed_groups": [student_group, teacher_group],
            "student_group": student_group,
            "teacher_group": teacher_group,
            "admin_users": ["admin1"],
            "cmd": ["jupyterhub-singleuser"],
            "student_image": s.student_image,
            "teacher_image": s.teacher_image,
            "network": "swarmhub",
            "start_timeout": 300,
            "http_timeout": 120,
            "placement_constraints": ["node.role==worker", "node.labels.swarmhub!=off"],
            "mem_limit": 2u64 << 30,
            "cpu_limit": 1.5,
            "volume_driver": "swarmhub-nfs",
            "home_target": "/home/jovyan",
            "exchange_share": "exchange",
            "exchange_target": "/srv/nbgrader/exchange",
            // the defaults: 10 GiB homes, 2 GiB per user in the exchange, as bytes
            "home_size": "10737418240",
            "exchange_size": "2147483648",
            "course_id": "intro-python",
            "idle_culler": true,
            "idle_culler_timeout": 3600,
        }),
        dir,
    );
    assert!(!text.contains(password), "the password is in the config");
    assert!(
        !pwned.exists(),
        "a setting ran code when the config was loaded"
    );
}

#[test]
fn generated_config_with_bind_templates_ldaps_and_no_culler() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = settings(&format!(
        "{BASE}{}",
        r#"
course_id = "ds101"
exchange_share = "ds101-exchange"
admin_users = []
start_timeout_seconds = 60
http_timeout_seconds = 30
notebook_cmd = ["start-singleuser.sh", "--debug"]
cpu_limit = 0
mem_limit = "1073741824"
notebook_constraints = []
default_url = "/lab"
home_size = "0"
exchange_size = "512M"
idle_timeout_seconds = 0
"#
    )
    // later keys of [hub] replace the base's: drop the base's
    .replace("admin_users = [\"admin1\"]\ncourse_id = \"intro-python\"\ncpu_limit = 1.5\nmem_limit = \"2G\"\nnotebook_constraints = [\"node.role==worker\", \"node.labels.swarmhub!=off\"]\ndefault_url = \"/lab\"\n", "")
    .replace(
        "public_url = \"https://hub.example.edu/\"\nhub_service = \"swarmhub-hub\"",
        "public_url = \"http://hub.example.edu:8080/jupyter\"\nhub_service = \"hub\"\nnetwork = \"course-net\"",
    )
    .replace("url = \"ldap://ldap.example.edu\"", "url = \"ldaps://ldap.example.edu\"")
    .replace("bind_dn = \"cn=reader,dc=example,dc=edu\"\n", ""));
    assert_eq!(s.ldap_search_password_file, None);
    // what swarmhub.toml does not set: the template still handles it
    data_dir_of_the_checks(&mut s);
    s.proxy_port = 9000;
    s.hub_api_port = 9081;
    s.default_url = None;
    s.ldap_lookup_dn = false;
    s.ldap_user_search_base = None;
    s.ldap_bind_dn_templates = vec![
        "uid={username},ou=people,dc=example,dc=edu".into(),
        "uid={username},ou=staff,dc=example,dc=edu".into(),
    ];
    s.home_target = "/home/student".into();
    s.exchange_target = "/srv/exchange".into();

    check(
        &s,
        json!({
            "proxy_ip": "",
            "proxy_port": 9000,
            "base_path": "/jupyter/",
            "public_url": "http://hub.example.edu:8080/jupyter/",
            "hub_api_port": 9081,
            "hub_service": "hub",
            "ldap_server_address": "ldap.example.edu",
            "ldap_server_port": 636,
            "tls_strategy": "on_connect",
            "lookup_dn": false,
            "bind_dn_templates": s.ldap_bind_dn_templates,
            "allowed_groups": s.ldap_allowed_groups,
            "student_group": s.ldap_allowed_groups[0],
            "teacher_group": s.ldap_teacher_group,
            "admin_users": [],
            "cmd": ["start-singleuser.sh", "--debug"],
            "student_image": s.student_image,
            "teacher_image": s.teacher_image,
            "network": "course-net",
            "start_timeout": 60,
            "http_timeout": 30,
            "placement_constraints": [],
            "mem_limit": 1u64 << 30,
            "cpu_limit": null,
            "volume_driver": "swarmhub-nfs",
            "home_target": "/home/student",
            "exchange_share": "ds101-exchange",
            "exchange_target": "/srv/exchange",
            "home_size": null,
            "exchange_size": "536870912",
            "course_id": "ds101",
            "idle_culler": false,
        }),
        tmp.path(),
    );
}
