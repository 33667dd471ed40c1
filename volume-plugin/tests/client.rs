//! The dockerd-like client (`swarmhub_volume_plugin::client`, the hidden `call` subcommand)
//! against the real plugin server in-process (recording mounter and provisioner, as in
//! `protocol.rs`): successful answers come back as JSON, an `Err` answer is an error that
//! carries the answer, a dead socket is a transport error naming it; and the built binary's
//! `call` prints the answer and exits 1 on an `Err`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use swarmhub_control_api::VolumeOptions;
use swarmhub_volume_plugin::client::{CallError, call};
use swarmhub_volume_plugin::config::Args;
use swarmhub_volume_plugin::driver::{ProvisionError, Provisioner};
use swarmhub_volume_plugin::mounter::Mounter;
use swarmhub_volume_plugin::mounter::recording::RecordingMounter;
use tokio_util::sync::CancellationToken;

struct Fixed;

impl Provisioner for Fixed {
    async fn ensure(&self, name: &str, _: &VolumeOptions) -> Result<String, ProvisionError> {
        Ok(format!("/{name}/secret"))
    }
}

/// Stands in for nfsd's NFS port (a Mount of a mounted volume probes it).
fn nfs_port() -> u16 {
    static LISTENER: std::sync::OnceLock<std::net::TcpListener> = std::sync::OnceLock::new();
    LISTENER
        .get_or_init(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .local_addr()
        .unwrap()
        .port()
}

struct Plugin {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Plugin {
    async fn start() -> Plugin {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let p = |s: &str| dir.path().join(s).to_str().unwrap().to_owned();
        let args = Args::parse_from([
            "p",
            "--state-dir",
            &p("state"),
            "--mount-root",
            &p("mnt"),
            "--socket",
            &p("run/swarmhub-nfs.sock"),
            "--server",
            "127.0.0.1",
            "--nfs-port",
            &nfs_port().to_string(),
        ])
        .serve;
        let socket = args.socket.clone();
        let mounter: Arc<dyn Mounter> = Arc::new(RecordingMounter::default());
        let driver = Arc::new(
            swarmhub_volume_plugin::server::driver(&args, mounter, Arc::new(Fixed)).unwrap(),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(swarmhub_volume_plugin::server::serve(
            args,
            driver,
            stop.clone(),
        ));
        for _ in 0..500 {
            if socket.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            socket.exists(),
            "the plugin did not listen on {}",
            socket.display()
        );
        Plugin {
            _dir: dir,
            socket,
            stop,
            task,
        }
    }

    async fn call(&self, endpoint: &str, body: &str) -> Result<serde_json::Value, CallError> {
        call(&self.socket, endpoint, body, Duration::from_secs(10)).await
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn answers_come_back_and_err_answers_are_errors() {
    let p = Plugin::start().await;
    let a = p.call("Plugin.Activate", "").await.unwrap();
    assert_eq!(a, json!({"Implements": ["VolumeDriver"]}));

    // the life of a volume, as dockerd drives it
    let e = p
        .call("/VolumeDriver.Get", r#"{"Name":"v1"}"#)
        .await
        .unwrap_err();
    match &e {
        CallError::Refused {
            endpoint,
            err,
            answer,
        } => {
            assert_eq!(endpoint, "/VolumeDriver.Get");
            assert!(err.contains("v1"), "{err}");
            assert_eq!(answer["Err"], json!(err), "{answer}");
        }
        other => panic!("Get of an unknown volume: {other}"),
    }
    assert!(e.to_string().starts_with("/VolumeDriver.Get: "), "{e}");
    assert!(e.answer().is_some());

    let c = p
        .call(
            "/VolumeDriver.Create",
            r#"{"Name":"v1","Opts":{"user":"alice"}}"#,
        )
        .await
        .unwrap();
    assert_eq!(c, json!({"Err": ""}));
    let m = p
        .call("/VolumeDriver.Mount", r#"{"Name":"v1","ID":"c1"}"#)
        .await
        .unwrap();
    let mountpoint = m["Mountpoint"].as_str().unwrap();
    assert!(mountpoint.ends_with("/mnt/v1"), "{m}");
    let g = p
        .call("/VolumeDriver.Get", r#"{"Name":"v1"}"#)
        .await
        .unwrap();
    assert_eq!(g["Volume"]["Status"]["references"], json!(1), "{g}");
    assert_eq!(g["Volume"]["Mountpoint"], json!(mountpoint), "{g}");
    p.call("/VolumeDriver.Unmount", r#"{"Name":"v1","ID":"c1"}"#)
        .await
        .unwrap();
    let g = p
        .call("/VolumeDriver.Get", r#"{"Name":"v1"}"#)
        .await
        .unwrap();
    assert_eq!(g["Volume"]["Status"]["references"], json!(0), "{g}");

    // an option the plugin does not know: refused by the plugin, with its reason
    let e = p
        .call(
            "/VolumeDriver.Create",
            r#"{"Name":"v2","Opts":{"colour":"red"}}"#,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CallError::Refused { err, .. } if err.contains("colour")),
        "{e}"
    );
    // an endpoint the plugin does not have: HTTP 404, named
    let e = p.call("/VolumeDriver.Nope", "{}").await.unwrap_err();
    assert!(matches!(e, CallError::Status { status: 404, .. }), "{e}");
    // a body that is not JSON never leaves the client
    let e = p.call("/VolumeDriver.Get", "{Name}").await.unwrap_err();
    assert!(matches!(e, CallError::BadBody { .. }), "{e}");
    p.stop().await;
}

#[tokio::test]
async fn a_stopped_plugin_is_a_transport_error_naming_the_socket() {
    let p = Plugin::start().await;
    let socket = p.socket.clone();
    p.stop().await;
    let e = call(&socket, "/Plugin.Activate", "", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Transport { .. }), "{e}");
    assert!(
        e.to_string().contains(&socket.display().to_string())
            && e.to_string().contains("check that the plugin runs"),
        "{e}"
    );
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_swarmhub-volume-plugin"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_subcommand_prints_answers_and_fails_on_err() {
    let p = Plugin::start().await;
    let run = |args: Vec<String>| async move {
        let out = tokio::process::Command::new(bin())
            .args(&args)
            .output()
            .await
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let sock = p.socket.display().to_string();
    let args = |rest: &[&str]| {
        let mut v = vec!["call".to_owned(), "--socket".into(), sock.clone()];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };

    let (code, out, err) = run(args(&[
        "/VolumeDriver.Create",
        r#"{"Name":"v1","Opts":{"user":"alice"}}"#,
    ]))
    .await;
    assert_eq!(code, Some(0), "stdout {out} stderr {err}");
    let (code, out, err) = run(args(&["/VolumeDriver.Mount", r#"{"Name":"v1","ID":"c1"}"#])).await;
    assert_eq!(code, Some(0), "stdout {out} stderr {err}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        answer["Mountpoint"].as_str().unwrap().ends_with("/mnt/v1"),
        "{out}"
    );
    assert_eq!(answer["Err"], json!(""), "{out}");

    // an Err answer: printed, named on stderr, exit 1
    let (code, out, err) = run(args(&["/VolumeDriver.Get", r#"{"Name":"nope"}"#])).await;
    assert_eq!(code, Some(1), "stdout {out} stderr {err}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(answer["Err"].as_str().unwrap().contains("nope"), "{out}");
    assert!(
        err.contains("/VolumeDriver.Get: ") && err.contains("nope"),
        "{err}"
    );

    // no plugin on that socket: exit 1, nothing on stdout, the socket named
    let gone = format!("{sock}.gone");
    let (code, out, err) = run(vec![
        "call".into(),
        "--socket".into(),
        gone.clone(),
        "Plugin.Activate".into(),
    ])
    .await;
    assert_eq!(code, Some(1), "stdout {out} stderr {err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(&gone), "{err}");
    p.stop().await;
}
