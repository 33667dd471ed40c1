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
