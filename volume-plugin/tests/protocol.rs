//! Docker's volume plugin protocol over the plugin's unix socket, spoken the way dockerd speaks
//! it (HTTP POST with JSON through hyperlocal), with a recording mounter and, for the nfsd side,
//! either a recording provisioner or a real in-process swarmhub-nfsd.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyperlocal::{UnixClientExt, UnixConnector};
use serde_json::{Value, json};
use swarmhub_control_api::VolumeOptions;
use swarmhub_volume_plugin::config::{Args, ServeArgs};
use swarmhub_volume_plugin::driver::{NfsdProvisioner, ProvisionError, Provisioner};
use swarmhub_volume_plugin::mounter::Mounter;
use swarmhub_volume_plugin::mounter::recording::{Call, RecordingMounter};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct RecordingProvisioner {
    ensured: Mutex<Vec<(String, VolumeOptions)>>,
}

impl Provisioner for RecordingProvisioner {
    async fn ensure(&self, name: &str, options: &VolumeOptions) -> Result<String, ProvisionError> {
        self.ensured
            .lock()
            .unwrap()
            .push((name.to_string(), options.clone()));
        Ok(format!("/{name}"))
    }
}

struct Plugin {
    dir: tempfile::TempDir,
    socket: PathBuf,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    mounter: Arc<RecordingMounter>,
    http: Client<UnixConnector, Full<Bytes>>,
}

fn serve_args(dir: &Path) -> ServeArgs {
    use clap::Parser;
    let a = Args::parse_from([
        "p",
        "--state-dir",
        dir.join("state").to_str().unwrap(),
        "--mount-root",
        dir.join("mnt").to_str().unwrap(),
        "--socket",
        dir.join("run/swarmhub-nfs.sock").to_str().unwrap(),
        "--server",
        "127.0.0.1",
        "--nfs-port",
        &nfs_port().to_string(),
    ]);
    a.serve
}

/// A port that accepts TCP connections for the whole test run, standing in for nfsd's NFS port
/// (a Mount of an already mounted volume checks that nfsd is reachable; the recording mounter
/// never talks NFS).
fn nfs_port() -> u16 {
    static LISTENER: std::sync::OnceLock<std::net::TcpListener> = std::sync::OnceLock::new();
    LISTENER
        .get_or_init(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .local_addr()
        .unwrap()
        .port()
}

impl Plugin {
    async fn start_in<P: Provisioner>(
        dir: tempfile::TempDir,
        mounter: Arc<RecordingMounter>,
        prov: Arc<P>,
    ) -> Plugin {
        let args = serve_args(dir.path());
        Self::start_args(args, dir, mounter, prov).await
    }

    async fn start_args<P: Provisioner>(
        args: swarmhub_volume_plugin::config::ServeArgs,
        dir: tempfile::TempDir,
        mounter: Arc<RecordingMounter>,
        prov: Arc<P>,
    ) -> Plugin {
        let socket = args.socket.clone();
        let driver = Arc::new(
            swarmhub_volume_plugin::server::driver(
                &args,
                mounter.clone() as Arc<dyn Mounter>,
                prov,
            )
            .unwrap(),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(swarmhub_volume_plugin::server::serve(
            args,
            driver,
            stop.clone(),
        ));
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Plugin {
            dir,
            socket,
            stop,
            task,
            mounter,
            http: Client::unix(),
        }
    }

    async fn start() -> Plugin {
        Self::start_in(
            tempfile::tempdir().unwrap(),
            Arc::default(),
            Arc::new(RecordingProvisioner::default()),
        )
        .await
    }

    async fn call(&self, endpoint: &str, body: Value) -> Value {
        let uri: hyper::Uri = hyperlocal::Uri::new(&self.socket, endpoint).into();
        let req = hyper::Request::post(uri)
            // exactly what dockerd sends: an Accept header and no Content-Type
            .header("accept", "application/vnd.docker.plugins.v1.2+json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let resp = self.http.request(req).await.unwrap();
        assert_eq!(resp.status(), 200, "{endpoint}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// `VolumeDriver.Create` of `name` with the option `user`.
    async fn create_for_user(&self, name: &str, user: &str) -> Value {
        self.call(
            "/VolumeDriver.Create",
            json!({"Name": name, "Opts": {"user": user}}),
        )
        .await
    }

    async fn restart(self) -> Plugin {
        self.restart_with(Arc::new(RecordingProvisioner::default()))
            .await
    }

    async fn restart_with<P: Provisioner>(self, prov: Arc<P>) -> Plugin {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        assert!(!self.socket.exists(), "socket removed on stop");
        Plugin::start_in(self.dir, self.mounter, prov).await
    }

    /// A new process over the same state directory, with another mount backend.
    async fn restart_with_mounter<P: Provisioner>(
        self,
        mounter: Arc<RecordingMounter>,
        prov: Arc<P>,
    ) -> Plugin {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        Plugin::start_in(self.dir, mounter, prov).await
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state/state.json")
    }

    /// The mount path this node keeps for `name` in state.json.
    fn state_export(&self, name: &str) -> String {
        let v: Value = serde_json::from_slice(&std::fs::read(self.state_file()).unwrap()).unwrap();
        v["volumes"][name]["export"].as_str().unwrap().to_string()
    }

    /// Rewrites the mount path of `name` in state.json (the plugin must be restarted to read it).
    fn set_state_export(&self, name: &str, export: &str) {
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(self.state_file()).unwrap()).unwrap();
        v["volumes"][name]["export"] = json!(export);
        std::fs::write(self.state_file(), v.to_string()).unwrap();
    }
}

/// A real in-process swarmhub-nfsd (no LDAP) and a plugin whose provisioner is its API.
async fn plugin_with_real_nfsd(
    mounter: Arc<RecordingMounter>,
) -> (tempfile::TempDir, swarmhub_nfsd::server::Running, Plugin) {
    let data = tempfile::tempdir().unwrap();
    let settings = swarmhub_nfsd::config::Settings::ephemeral(data.path());
    let nfsd = swarmhub_nfsd::server::start(settings).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prov = real_provisioner(&nfsd, dir.path());
    let p = Plugin::start_in(dir, mounter, prov).await;
    (data, nfsd, p)
}

/// The plugin's real provisioner for `nfsd`, its token in a file under `dir`.
fn real_provisioner(nfsd: &swarmhub_nfsd::server::Running, dir: &Path) -> Arc<NfsdProvisioner> {
    let token_file = dir.join("token");
    std::fs::write(&token_file, &nfsd.token).unwrap();
    Arc::new(NfsdProvisioner {
        base_url: format!("http://{}", nfsd.api_addr),
        token_file,
        timeout: Duration::from_secs(5),
    })
}

/// What an admin does on an nfsd without LDAP: alice's volume with explicit ids.
async fn admin_creates_alice(nfsd: &swarmhub_nfsd::server::Running) {
    admin_creates(nfsd, "home-alice").await
}

/// Volume `name` of alice (explicit ids) the way swarmhub 0.x made it: no layout.
async fn admin_creates(nfsd: &swarmhub_nfsd::server::Running, name: &str) {
    nfsd.volumes
        .create(swarmhub_control_api::CreateVolume {
            name: name.into(),
            options: VolumeOptions {
                user: Some("alice".into()),
                ..Default::default()
            },
            identity: Some(swarmhub_control_api::ExplicitIdentity {
                uid: 20001,
                gid: 20000,
                groups: vec![],
            }),
            client: None,
        })
        .await
        .unwrap();
}

fn err(v: &Value) -> &str {
    v["Err"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_whole_protocol() {
    let p = Plugin::start().await;
    assert_eq!(
        p.call("/Plugin.Activate", json!({})).await,
        json!({"Implements": ["VolumeDriver"]})
    );
    assert_eq!(
        p.call("/VolumeDriver.Capabilities", json!({})).await,
        json!({"Capabilities": {"Scope": "global"}})
    );
    // Docker calls Get before Create: unknown names must be an error so Create gets the options
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert!(err(&g).contains("no such volume"), "{g}");
    let c = p
        .call(
            "/VolumeDriver.Create",
            json!({"Name": "home-alice", "Opts": {"user": "alice", "size": "1G"}}),
        )
        .await;
    assert_eq!(err(&c), "", "{c}");
    // idempotent, and conflicting options are refused
    assert_eq!(
        err(&p
            .call(
                "/VolumeDriver.Create",
                json!({"Name": "home-alice", "Opts": {"user": "alice", "size": "1G"}})
            )
            .await),
        ""
    );
    let c = p
        .call(
            "/VolumeDriver.Create",
            json!({"Name": "home-alice", "Opts": {"user": "bob"}}),
        )
        .await;
    assert!(err(&c).contains("exists on this node"), "{c}");
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert_eq!(g["Volume"]["Status"]["export"], "/home-alice");
    assert_eq!(g["Volume"]["Status"]["references"], 0);
    let l = p.call("/VolumeDriver.List", json!({})).await;
    assert_eq!(l["Volumes"][0]["Name"], "home-alice");

    // mounts are counted per (volume, ID); one real mount
    let m1 = p
        .call(
            "/VolumeDriver.Mount",
            json!({"Name": "home-alice", "ID": "c1"}),
        )
        .await;
    assert_eq!(err(&m1), "");
    let mp = m1["Mountpoint"].as_str().unwrap().to_string();
    assert!(mp.ends_with("/mnt/home-alice"), "{mp}");
    assert_eq!(
        err(&p
            .call(
                "/VolumeDriver.Mount",
                json!({"Name": "home-alice", "ID": "c1"})
            )
            .await),
        ""
    );
    assert_eq!(
        err(&p
            .call(
                "/VolumeDriver.Mount",
                json!({"Name": "home-alice", "ID": "c2"})
            )
            .await),
        ""
    );
    let mounts = p
        .mounter
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Mount { .. }))
        .count();
    assert_eq!(mounts, 1);
    assert_eq!(
        p.call("/VolumeDriver.Path", json!({"Name": "home-alice"}))
            .await["Mountpoint"],
        mp
    );
    assert_eq!(
        p.call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
            .await["Volume"]["Status"]["references"],
        3
    );
    // removing a mounted volume is refused
    let r = p
        .call("/VolumeDriver.Remove", json!({"Name": "home-alice"}))
        .await;
    assert!(err(&r).contains("still mounted"), "{r}");
    // unknown ID and unknown volume unmount fine
    assert_eq!(
        err(&p
            .call(
                "/VolumeDriver.Unmount",
                json!({"Name": "home-alice", "ID": "nope"})
            )
            .await),
        ""
    );
    assert_eq!(
        err(&p
            .call("/VolumeDriver.Unmount", json!({"Name": "nope", "ID": "c1"}))
            .await),
        ""
    );
    for _ in 0..2 {
        assert_eq!(
            err(&p
                .call(
                    "/VolumeDriver.Unmount",
                    json!({"Name": "home-alice", "ID": "c1"})
                )
                .await),
            ""
        );
    }
    assert!(
        !p.mounter
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Unmount { .. })),
        "c2 still holds it"
    );
    assert_eq!(
        err(&p
            .call(
                "/VolumeDriver.Unmount",
                json!({"Name": "home-alice", "ID": "c2"})
            )
            .await),
        ""
    );
    assert!(
        p.mounter
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Unmount { .. }))
    );
    assert_eq!(
        p.call("/VolumeDriver.Path", json!({"Name": "home-alice"}))
            .await["Mountpoint"],
        ""
    );

    // a restart over the same state directory remembers volumes and references
    assert_eq!(
        err(&p
            .call(
                "/VolumeDriver.Mount",
                json!({"Name": "home-alice", "ID": "c3"})
            )
            .await),
        ""
    );
    let p = p.restart().await;
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert_eq!(g["Volume"]["Status"]["references"], 1, "{g}");
    assert_eq!(
        err(&p
            .call(
                "/VolumeDriver.Unmount",
                json!({"Name": "home-alice", "ID": "c3"})
            )
            .await),
        ""
    );
    // remove forgets the volume here; nfsd was never asked to delete anything
    assert_eq!(
        err(&p
            .call("/VolumeDriver.Remove", json!({"Name": "home-alice"}))
            .await),
        ""
    );
    assert!(
        err(&p
            .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
            .await)
        .contains("no such volume")
    );
    assert_eq!(
        err(&p
            .call("/VolumeDriver.Remove", json!({"Name": "home-alice"}))
            .await),
        "",
        "idempotent"
    );
    // mount of an unknown volume
    let m = p
        .call("/VolumeDriver.Mount", json!({"Name": "ghost", "ID": "x"}))
        .await;
    assert!(
        err(&m).contains("no such volume") && err(&m).contains("docker volume create"),
        "{m}"
    );
}

#[tokio::test]
async fn hostile_names_options_and_bodies() {
    let p = Plugin::start().await;
    let long = "x".repeat(300);
    for name in ["../x", "a/b", "", long.as_str(), "a\u{0}b", "/"] {
        let c = p
            .call(
                "/VolumeDriver.Create",
                json!({"Name": name, "Opts": {"user": "alice"}}),
            )
            .await;
        assert!(!err(&c).is_empty(), "{name:?} accepted");
    }
    let c = p
        .call(
            "/VolumeDriver.Create",
            json!({"Name": "v", "Opts": {"user": "alice", "sise": "1G"}}),
        )
        .await;
    assert!(
        err(&c).contains("\"sise\"") && err(&c).contains("user, share, size, readonly, layout"),
        "{c}"
    );
    let c = p
        .call("/VolumeDriver.Create", json!({"Name": "v", "Opts": null}))
        .await;
    assert!(err(&c).contains("user=<ldap name>"), "{c}");
    let c = p
        .call(
            "/VolumeDriver.Create",
            json!({"Name": "v", "Opts": {"user": "alice", "size": "lots"}}),
        )
        .await;
    assert!(err(&c).contains("size"), "{c}");
    let c = p
        .call(
            "/VolumeDriver.Create",
            json!({"Name": "v", "Opts": {"user": "a)(uid=*"}}),
        )
        .await;
    assert!(!err(&c).is_empty());
    let c = p.call("/VolumeDriver.Create", json!({"Nom": "v"})).await;
    assert!(err(&c).contains("malformed request"), "{c}");
    assert_eq!(
        p.call("/VolumeDriver.List", json!({})).await["Volumes"],
        json!([])
    );
    assert!(!p.dir.path().join("mnt/..").join("x").exists());
}

#[tokio::test]
async fn mounting_a_mounted_volume_fails_fast_while_nfsd_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = serve_args(dir.path());
    // a port nobody listens on
    args.nfs_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = Plugin::start_args(
        args,
        dir,
        Arc::default(),
        Arc::new(RecordingProvisioner::default()),
    )
    .await;
    p.call(
        "/VolumeDriver.Create",
        json!({"Name": "v", "Opts": {"user": "alice"}}),
    )
    .await;
    // the first mount is the mounter's (which reports its own errors)
    let m1 = p
        .call("/VolumeDriver.Mount", json!({"Name": "v", "ID": "c1"}))
        .await;
    assert_eq!(err(&m1), "");
    // a second container would hang on the kept mount: refused at once, naming nfsd
    let m2 = p
        .call("/VolumeDriver.Mount", json!({"Name": "v", "ID": "c2"}))
        .await;
    assert!(
        err(&m2).contains("is unreachable") && err(&m2).contains("swarmhub nfs start"),
        "{m2}"
    );
    let g = p.call("/VolumeDriver.Get", json!({"Name": "v"})).await;
    assert_eq!(g["Volume"]["Status"]["references"], 1, "{g}");
}

#[tokio::test]
async fn a_failed_mount_is_reported_and_leaves_no_reference() {
    let p = Plugin::start().await;
    p.call(
        "/VolumeDriver.Create",
        json!({"Name": "v", "Opts": {"user": "alice"}}),
    )
    .await;
    p.mounter.fail(Some("connection refused (errno 111)"));
    let m = p
        .call("/VolumeDriver.Mount", json!({"Name": "v", "ID": "c"}))
        .await;
    assert!(
        err(&m).contains("errno 111") && err(&m).contains("/v"),
        "{m}"
    );
    let g = p.call("/VolumeDriver.Get", json!({"Name": "v"})).await;
    assert_eq!(g["Volume"]["Status"]["references"], 0);
    assert!(
        g["Volume"]["Status"]["last_error"]
            .as_str()
            .unwrap()
            .contains("errno 111"),
        "{g}"
    );
    p.mounter.fail(None);
    assert_eq!(
        err(&p
            .call("/VolumeDriver.Mount", json!({"Name": "v", "ID": "c"}))
            .await),
        ""
    );
    assert!(
        p.call("/VolumeDriver.Get", json!({"Name": "v"})).await["Volume"]["Status"]
            .get("last_error")
            .is_none()
    );
}

#[tokio::test]
async fn create_asks_the_real_nfsd_and_unreachable_nfsd_fails_fast() {
    let (_data, nfsd, p) = plugin_with_real_nfsd(Arc::default()).await;
    // nfsd has no LDAP here, so a user name alone is refused by nfsd with its own message
    let c = p.create_for_user("home-alice", "alice").await;
    assert!(err(&c).contains("LDAP"), "{c}");
    nfsd.volumes.get("home-alice").unwrap_err();
    // with the volume made on nfsd by an admin, the plugin's create ensures the same one
    admin_creates_alice(&nfsd).await;
    let c = p.create_for_user("home-alice", "alice").await;
    assert_eq!(err(&c), "", "{c}");
    // nfsd unreachable: Create fails quickly naming the URL; List still answers at once
    nfsd.stop().await.unwrap();
    let start = std::time::Instant::now();
    let c = p
        .call(
            "/VolumeDriver.Create",
            json!({"Name": "home-bob", "Opts": {"user": "bob"}}),
        )
        .await;
    assert!(err(&c).contains("unreachable"), "{c}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let start = std::time::Instant::now();
    let l = p.call("/VolumeDriver.List", json!({})).await;
    assert_eq!(l["Volumes"].as_array().unwrap().len(), 1);
    assert!(start.elapsed() < Duration::from_secs(1));
}

/// A node's state can outlive nfsd's volume (a replaced data directory, a volume deleted there),
/// and dockerd does not call Create again for a volume it knows: when nfsd answers a mount with
/// "no such export", the driver asks nfsd to create the volume again and mounts once more; when
/// nfsd cannot, the mount fails with both reasons and mounts nothing.
#[tokio::test]
async fn a_volume_nfsd_lost_is_created_again_at_mount() {
    let prov = Arc::new(RecordingProvisioner::default());
    let p = Plugin::start_in(tempfile::tempdir().unwrap(), Arc::default(), prov.clone()).await;
    let c = p.create_for_user("v", "alice").await;
    assert_eq!(err(&c), "", "{c}");
    assert_eq!(prov.ensured.lock().unwrap().len(), 1);
    p.mounter.missing_once("/v");
    let m = p
        .call("/VolumeDriver.Mount", json!({"Name": "v", "ID": "c1"}))
        .await;
    assert_eq!(err(&m), "", "{m}");
    let ensured = prov.ensured.lock().unwrap().clone();
    assert_eq!(ensured.len(), 2, "{ensured:?}");
    assert_eq!(ensured[1].0, "v");
    assert_eq!(ensured[1].1.user.as_deref(), Some("alice"));
    assert_eq!(p.mounter.calls().len(), 1, "{:?}", p.mounter.calls());
}

#[tokio::test]
async fn a_volume_nfsd_lost_and_cannot_make_again_fails_the_mount() {
    let mounter: Arc<RecordingMounter> = Arc::default();
    let (_data, nfsd, p) = plugin_with_real_nfsd(mounter.clone()).await;
    admin_creates_alice(&nfsd).await;
    let c = p.create_for_user("home-alice", "alice").await;
    assert_eq!(err(&c), "", "{c}");
    // nfsd loses it (moved aside); this node still knows it; without LDAP nfsd cannot make
    // alice's volume by itself
    nfsd.volumes.remove("home-alice").await.unwrap();
    mounter.refuse_once(&p.state_export("home-alice"));
    let m = p
        .call(
            "/VolumeDriver.Mount",
            json!({"Name": "home-alice", "ID": "c1"}),
        )
        .await;
    assert!(
        err(&m).contains("refused to mount /home-alice")
            && err(&m).contains("volume home-alice again failed")
            && err(&m).contains("LDAP"),
        "{m}"
    );
    assert!(mounter.calls().is_empty(), "{:?}", mounter.calls());
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert_eq!(g["Volume"]["Status"]["references"], 0, "{g}");
}

/// An upgrade from a version without capability mounts: this node's state holds the bare
/// `/home-alice` for a volume (written by the old plugin), nfsd refuses that path now. The
/// first Mount asks nfsd (real, in-process) for the volume, keeps the capability path it
/// answers in state.json and mounts with it; nothing is re-created. The secret is never shown
/// in `docker volume inspect` (Get's status) or in errors.
#[tokio::test]
async fn an_upgraded_node_learns_the_mount_path_at_its_next_mount() {
    let mounter: Arc<RecordingMounter> = Arc::default();
    let (_data, nfsd, p) = plugin_with_real_nfsd(mounter.clone()).await;
    admin_creates_alice(&nfsd).await;
    let c = p.create_for_user("home-alice", "alice").await;
    assert_eq!(err(&c), "", "{c}");
    let current = nfsd.volumes.get("home-alice").unwrap().export;
    assert_eq!(p.state_export("home-alice"), current);
    // what the old version left: the bare name
    p.set_state_export("home-alice", "/home-alice");
    let prov = real_provisioner(&nfsd, p.dir.path());
    let p = p.restart_with(prov).await;
    mounter.refuse_once("/home-alice");
    let created_before = nfsd.volumes.get("home-alice").unwrap().created_at;
    let m = p
        .call(
            "/VolumeDriver.Mount",
            json!({"Name": "home-alice", "ID": "c1"}),
        )
        .await;
    assert_eq!(err(&m), "", "{m}");
    assert_eq!(
        mounter.calls().last(),
        Some(&Call::Mount {
            export: current.clone(),
            target: p.dir.path().join("mnt/home-alice"),
        }),
        "{:?}",
        mounter.calls()
    );
    assert_eq!(p.state_export("home-alice"), current, "kept in state.json");
    assert_eq!(
        nfsd.volumes.get("home-alice").unwrap().created_at,
        created_before,
        "the volume was ensured, not made again"
    );
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert_eq!(g["Volume"]["Status"]["export"], "/home-alice");
    assert!(!g.to_string().contains(current.rsplit('/').next().unwrap()));
}

/// Docker forgot a volume this node knows and calls Create again: options that differ only in
/// `size` and `layout` are applied (nfsd is asked with them, the node records them), a recorded
/// layout is kept when the new options have none, anything else is still a conflict.
#[tokio::test]
async fn create_again_may_add_a_layout_or_change_the_size_only() {
    let prov = Arc::new(RecordingProvisioner::default());
    let p = Plugin::start_in(tempfile::tempdir().unwrap(), Arc::default(), prov.clone()).await;
    let create = |opts: Value| {
        p.call(
            "/VolumeDriver.Create",
            json!({"Name": "home-bob", "Opts": opts}),
        )
    };
    assert_eq!(err(&create(json!({"user": "bob"})).await), "");
    let c = create(json!({"user": "bob", "layout": "home", "size": "1G"})).await;
    assert_eq!(err(&c), "", "{c}");
    let ensured = prov.ensured.lock().unwrap().clone();
    assert_eq!(ensured.len(), 2, "{ensured:?}");
    assert_eq!(
        ensured[1].1.layout,
        Some(swarmhub_control_api::Layout::Home)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(p.state_file()).unwrap()).unwrap();
    assert_eq!(v["volumes"]["home-bob"]["options"]["layout"], "home", "{v}");
    // without a layout now: the recorded one stays, nothing to ask nfsd
    assert_eq!(err(&create(json!({"user": "bob", "size": "1G"})).await), "");
    assert_eq!(prov.ensured.lock().unwrap().len(), 2);
    let c = create(json!({"user": "bob", "readonly": "true"})).await;
    assert!(err(&c).contains("exists on this node with options"), "{c}");
}

/// An upgraded node (plugin with `--home-prefix home-`, as the swarmhub CLI installs it) whose
/// state holds alice's home volume from 0.x (no layout: Docker created it before the hub passed
/// `layout=home` and will never call Create for it again): the first Mount asks the real nfsd
/// for it with `layout=home`, which moves the 0.x files into `work/` on disk, and records the
/// layout; a volume not named like the hub's homes is mounted as it is; later mounts ask
/// nothing more.
#[tokio::test]
async fn an_upgraded_node_asks_for_layout_home_at_the_first_mount_of_a_hub_home() {
    use std::os::unix::fs::MetadataExt;
    let data = tempfile::tempdir().unwrap();
    let settings = swarmhub_nfsd::config::Settings::ephemeral(data.path());
    let nfsd = swarmhub_nfsd::server::start(settings).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prov = real_provisioner(&nfsd, dir.path());
    let mut args = serve_args(dir.path());
    args.home_prefix = "home-".into();
    let mounter: Arc<RecordingMounter> = Arc::default();
    let p = Plugin::start_args(args, dir, mounter.clone(), prov).await;
    for name in ["home-alice", "scratch-alice"] {
        admin_creates(&nfsd, name).await;
        // what the 0.x hub sent: no layout
        let c = p.create_for_user(name, "alice").await;
        assert_eq!(err(&c), "", "{c}");
        let tree = data.path().join("volumes").join(name);
        std::fs::write(tree.join("notes.ipynb"), b"{}").unwrap();
        std::fs::create_dir(tree.join("intro-python")).unwrap();
    }
    let mount = |name: &'static str, id: &'static str| {
        p.call("/VolumeDriver.Mount", json!({"Name": name, "ID": id}))
    };
    let m = mount("home-alice", "c1").await;
    assert_eq!(err(&m), "", "{m}");
    let home = data.path().join("volumes/home-alice");
    let mut top: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, ["work"]);
    assert_eq!(std::fs::read(home.join("work/notes.ipynb")).unwrap(), b"{}");
    assert!(home.join("work/intro-python").is_dir());
    assert_eq!(std::fs::metadata(home.join("work")).unwrap().uid(), 20001);
    assert_eq!(
        nfsd.volumes.get("home-alice").unwrap().options.layout,
        Some(swarmhub_control_api::Layout::Home)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(p.state_file()).unwrap()).unwrap();
    assert_eq!(
        v["volumes"]["home-alice"]["options"]["layout"], "home",
        "{v}"
    );

    // not a hub home: mounted as it is
    let m = mount("scratch-alice", "c2").await;
    assert_eq!(err(&m), "", "{m}");
    let scratch = data.path().join("volumes/scratch-alice");
    assert!(scratch.join("notes.ipynb").is_file() && !scratch.join("work").exists());
    assert_eq!(
        nfsd.volumes.get("scratch-alice").unwrap().options.layout,
        None
    );

    // unmount and mount again: nothing more moves
    let u = p
        .call(
            "/VolumeDriver.Unmount",
            json!({"Name": "home-alice", "ID": "c1"}),
        )
        .await;
    assert_eq!(err(&u), "", "{u}");
    std::fs::write(home.join("new-at-top.txt"), b"n").unwrap();
    let m = mount("home-alice", "c3").await;
    assert_eq!(err(&m), "", "{m}");
    assert!(home.join("new-at-top.txt").is_file());
    assert_eq!(
        mounter.calls().len(),
        4,
        "mount, mount, unmount, mount: {:?}",
        mounter.calls()
    );
}

/// A backend whose mounts end with the process (FUSE): after a restart the plugin knows which
/// references an earlier process gave out, says so in `Status` (and its log), remounts for new
/// containers, and forgets each dead reference when its container lets go of it. A backend whose
/// mounts outlive the process (kernel NFS) has no dead references after a restart.
#[tokio::test]
async fn references_of_an_earlier_process_are_dead_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let prov = Arc::new(RecordingProvisioner::default());
    let p = Plugin::start_in(
        dir,
        Arc::new(RecordingMounter::process_bound()),
        prov.clone(),
    )
    .await;
    for v in ["home-alice", "home-bob"] {
        assert_eq!(err(&p.create_for_user(v, "alice").await), "");
    }
    for (v, id) in [
        ("home-alice", "a1"),
        ("home-alice", "a2"),
        ("home-bob", "b1"),
    ] {
        let m = p
            .call("/VolumeDriver.Mount", json!({"Name": v, "ID": id}))
            .await;
        assert_eq!(err(&m), "", "{m}");
    }
    let status = |g: &Value| g["Volume"]["Status"].clone();
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert!(status(&g).get("dead_references").is_none(), "{g}");

    // the process ends, and its mounts with it: a new process with nothing mounted
    p.stop.cancel();
    p.task.await.unwrap().unwrap();
    let fresh = Arc::new(RecordingMounter::process_bound());
    let p = Plugin::start_in(p.dir, fresh.clone(), prov.clone()).await;
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert_eq!(status(&g)["references"], 2, "{g}");
    assert_eq!(status(&g)["dead_references"], 2, "{g}");
    assert!(
        status(&g)["dead_references_fix"]
            .as_str()
            .unwrap()
            .contains("swarmhub notebooks restart --dead-mounts"),
        "{g}"
    );
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-bob"}))
        .await;
    assert_eq!(status(&g)["dead_references"], 1, "{g}");

    // reconcile mounts again what is referenced, so a new container gets a live mount
    for _ in 0..200 {
        if fresh.calls().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fresh.calls().len(), 2, "{:?}", fresh.calls());
    let m = p
        .call(
            "/VolumeDriver.Mount",
            json!({"Name": "home-alice", "ID": "a3"}),
        )
        .await;
    assert_eq!(err(&m), "", "{m}");
    // the restarted containers let go of their dead mounts one by one
    let unmount = |v: &'static str, id: &'static str| {
        let p = &p;
        async move {
            let u = p
                .call("/VolumeDriver.Unmount", json!({"Name": v, "ID": id}))
                .await;
            assert_eq!(err(&u), "", "{u}");
        }
    };
    unmount("home-alice", "a1").await;
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert_eq!(status(&g)["references"], 2, "{g}");
    assert_eq!(status(&g)["dead_references"], 1, "{g}");
    unmount("home-alice", "a2").await;
    unmount("home-bob", "b1").await;
    for v in ["home-alice", "home-bob"] {
        let g = p.call("/VolumeDriver.Get", json!({"Name": v})).await;
        assert!(status(&g).get("dead_references").is_none(), "{g}");
    }
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert_eq!(status(&g)["references"], 1, "the new container's: {g}");

    // mounts that outlive the process: nothing is dead after a restart
    let p = p.restart_with_mounter(Arc::default(), prov).await;
    let g = p
        .call("/VolumeDriver.Get", json!({"Name": "home-alice"}))
        .await;
    assert_eq!(status(&g)["references"], 1, "{g}");
    assert!(status(&g).get("dead_references").is_none(), "{g}");
}
