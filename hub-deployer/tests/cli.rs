//! The `swarmhub` binary end to end for the commands that need no daemon: files, stdout,
//! stderr and exit codes as an admin's script sees them.

use std::path::Path;
use std::process::{Command, Output};

fn swarmhub(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarmhub"));
    cmd.current_dir(dir).args(args);
    // the test runner's environment must not change the settings
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SWARMHUB_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run swarmhub")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn init_check_render_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let out = swarmhub(d, &["init"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(d.join("swarmhub.toml").exists());

    let out = swarmhub(d, &["init"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );

    let out = swarmhub(d, &["--output", "json", "config", "check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cluster"]["storage_node_label"], "swarmhub.storage");

    let out = swarmhub(d, &["config", "render-hub"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("c.JupyterHub.cookie_secret_file"));

    // env typo: exit 2, the variable named on stderr, nothing on stdout
    let out = swarmhub(d, &["config", "check"], &[("SWARMHUB_HUB_COURSEID", "x")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr)
            .starts_with("swarmhub: error: SWARMHUB_HUB_COURSEID: no setting hub.courseid"),
        "{}",
        text(&out.stderr)
    );

    // a missing file: the path, the hint and the OS error as its cause
    let out = swarmhub(
        d,
        &["config", "check"],
        &[("SWARMHUB_CONFIG", "missing.toml")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "swarmhub: error: cannot read missing.toml (create one with `swarmhub init`)\n  caused by: No such file or directory (os error 2)\n"
    );

    // clap's usage errors are code 2 as well
    let out = swarmhub(d, &["deploy"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// `tls self-signed` without a swarm (names from the settings), kept on a second run, served as
/// files after `config check` read them; a key of another certificate is refused with exit 2.
#[test]
fn tls_self_signed_makes_keeps_and_checks() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let no_docker = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    std::fs::write(
        d.join("swarmhub.toml"),
        "[cluster]\npublic_url = \"https://hub.example.edu/\"\n[tls]\nmode = \"self-signed\"\nnames = [\"10.1.2.3\"]\n",
    )
    .unwrap();
    let out = swarmhub(
        d,
        &["tls", "self-signed", "--name", "jupyter.example.edu"],
        &no_docker,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("new CA"), "{stdout}");
    assert!(
        stdout.contains(
            "made for 10.1.2.3, 127.0.0.1, hub.example.edu, jupyter.example.edu, localhost"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("curl --cacert"), "{stdout}");
    assert!(stdout.contains("no swarm manager here"), "{stdout}");
    let mode = std::fs::metadata(d.join("tls/ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let ca = std::fs::read(d.join("tls/ca.pem")).unwrap();

    // the same names again: nothing is made
    let out = swarmhub(
        d,
        &["tls", "self-signed", "--name", "jupyter.example.edu"],
        &no_docker,
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ca.pem: kept") && stdout.contains("hub.pem: kept"),
        "{stdout}"
    );
    // a name less: the certificate again, from the same CA, saying why
    let out = swarmhub(d, &["tls", "self-signed"], &no_docker);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("made again: the names changed"), "{stdout}");
    assert_eq!(std::fs::read(d.join("tls/ca.pem")).unwrap(), ca);

    // given as files: config check reads them
    std::fs::write(
        d.join("files.toml"),
        "[cluster]\npublic_url = \"https://hub.example.edu/\"\n[tls]\nmode = \"files\"\ncert_file = \"tls/hub.pem\"\nkey_file = \"tls/hub-key.pem\"\n",
    )
    .unwrap();
    let out = swarmhub(d, &["--config", "files.toml", "config", "check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = swarmhub(d, &["--config", "files.toml", "config", "render-hub"], &[]);
    assert!(
        text(&out.stdout).contains("ssl_certificate /run/secrets/swarmhub-hub-tls.crt;"),
        "{}",
        text(&out.stdout)
    );
    let bad = std::fs::read_to_string(d.join("files.toml"))
        .unwrap()
        .replace("tls/hub-key.pem", "tls/ca-key.pem");
    std::fs::write(d.join("files.toml"), bad).unwrap();
    let out = swarmhub(d, &["--config", "files.toml", "config", "check"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("tls.key_file")
            && err.contains("ca-key.pem")
            && err.contains("does not belong"),
        "{err}"
    );
}
