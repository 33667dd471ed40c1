//! The home layout with real parts: a home volume made the 0.x way (the control API call without
//! `layout`, its record without a layout, the user's files written at its top through a real NFS
//! client) is ensured with `layout=home` over HTTP by a restarted ("upgraded") nfsd; its files
//! are then under `work/` as the user sees it through NFS, with the same contents, owners as the
//! view maps them and the handles a running client held; a second ensure changes nothing. Also:
//! a migration interrupted midway (its staging directory recorded, half the entries moved)
//! continues at the next ensure, new volumes get the layout without moving anything, share
//! views refuse it, and a hostile top level (a `work` symlink out of the tree, a FIFO, odd
//! names) ends up under `work/` without anything being followed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use swarmhub_control_api::client::ControlClient;
use swarmhub_control_api::{CreateVolume, ExplicitIdentity, Layout, VolumeOptions};

const ALICE: (u32, u32) = (20001, 20000);

fn api(srv: &Server) -> ControlClient {
    let r = srv.running();
    ControlClient::new(
        format!("http://{}", r.api_addr),
        r.token.clone(),
        Duration::from_secs(10),
    )
}

/// The body 0.x's plugin sent (no layout), or with `layout=home`.
fn body(name: &str, layout: Option<Layout>) -> CreateVolume {
    CreateVolume {
        name: name.into(),
        options: VolumeOptions {
            user: Some("alice".into()),
            layout,
            ..Default::default()
        },
        identity: Some(ExplicitIdentity {
            uid: ALICE.0,
            gid: ALICE.1,
            groups: vec![],
        }),
        client: None,
    }
}

fn record(dir: &Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("registry.json")).unwrap();
    let reg: serde_json::Value = serde_json::from_str(&text).unwrap();
    reg["volumes"][name].clone()
}

/// Every path under `root` (relative, sorted), with `/` after directories.
fn tree_listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

async fn put_file(c: &mut Client, dir: &nfs_fh3, n: &str, data: &[u8]) -> nfs_fh3 {
    let fh = create(c, dir, n, 0o644).await.unwrap();
    write(c, &fh, 0, data, stable_how::FILE_SYNC).await.unwrap();
    fh
}

async fn symlink(c: &mut Client, dir: &nfs_fh3, n: &str, target: &str) {
    c.symlink(&SYMLINK3args {
        where_: dirop(dir, n),
        symlink: symlinkdata3 {
            symlink_attributes: sattr3::default(),
            symlink_data: nfspath3(Opaque::owned(target.as_bytes().to_vec())),
        },
    })
    .await
    .unwrap()
    .unwrap();
}

async fn readlink(c: &mut Client, fh: &nfs_fh3) -> String {
    let ok = c
        .readlink(&READLINK3args {
            symlink: fh.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(ok.data.0.to_vec()).unwrap()
}

async fn mkfifo(c: &mut Client, dir: &nfs_fh3, n: &str) {
    c.mknod(&MKNOD3args {
        where_: dirop(dir, n),
        what: mknoddata3::NF3FIFO(sattr3 {
            mode: Nfs3Option::Some(0o644),
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .unwrap();
}

async fn sorted(c: &mut Client, dir: &nfs_fh3) -> Vec<String> {
    let mut names = list(c, dir, 4096, true).await.unwrap();
    names.sort();
    names
}

#[tokio::test]
async fn a_0x_home_is_moved_into_work_by_the_first_ensure_with_layout_home() {
    let mut srv = Server::start().await;
    // 0.x: the plugin's create call, then the user's files at the top of the volume (~/work)
    let v = api(&srv).create(&body("home-alice", None)).await.unwrap();
    assert_eq!(v.options.layout, None);
    let rec = record(&srv.dir, "home-alice");
    assert!(
        rec.get("options").unwrap().get("layout").is_none() && rec.get("migration").is_none(),
        "0.x record: {rec}"
    );
    let (mut c, root) = srv.mount("home-alice", 1000).await;
    let nb = put_file(&mut c, &root, "analysis.ipynb", b"{\"cells\": []}").await;
    let course = mkdir(&mut c, &root, "intro-python", 0o755).await.unwrap();
    let source = mkdir(&mut c, &course, "source", 0o755).await.unwrap();
    put_file(&mut c, &source, "ps1.ipynb", b"ps1").await;
    put_file(&mut c, &root, ".hidden", b"dot").await;
    // the user's own `work` (0.x ~/work/work), and hostile entries
    let own_work = mkdir(&mut c, &root, "work", 0o700).await.unwrap();
    put_file(&mut c, &own_work, "inner.txt", b"inner").await;
    symlink(&mut c, &root, "escape", "/").await;
    mkfifo(&mut c, &root, "pipe").await;
    put_file(&mut c, &root, "odd\nname \u{202e}txt", b"odd").await;
    let before = tree_listing(&srv.dir.join("volumes/home-alice"));

    // the new version: restarted, and the hub's mount asks for layout=home
    srv.restart().await;
    let v = api(&srv)
        .create(&body("home-alice", Some(Layout::Home)))
        .await
        .unwrap();
    assert_eq!(v.options.layout, Some(Layout::Home));
    let rec = record(&srv.dir, "home-alice");
    assert_eq!(rec["options"]["layout"], "home", "{rec}");
    assert!(rec.get("migration").is_none(), "{rec}");

    // on disk: exactly the same entries, one level down; nothing added, nothing lost
    let tree = srv.dir.join("volumes/home-alice");
    let after = tree_listing(&tree);
    let mut expected: Vec<String> = before.iter().map(|p| format!("work/{p}")).collect();
    expected.push("work/".into());
    expected.sort();
    assert_eq!(after, expected);
    assert_eq!(owner(&tree.join("work")), ALICE);

    // the user's view (AUTH_SYS root changes nothing); a handle a client held from before the
    // restart and the move still reads the notebook
    let (mut c, root) = srv.mount("home-alice", 0).await;
    assert_eq!(read(&mut c, &nb, 0, 100).await.unwrap(), b"{\"cells\": []}");
    assert_eq!(sorted(&mut c, &root).await, ["work"]);
    let (work, attr) = lookup(&mut c, &root, "work").await.unwrap();
    assert!(matches!(attr.type_, ftype3::NF3DIR));
    assert_eq!((attr.uid, attr.gid, attr.mode & 0o7777), (1000, 100, 0o755));
    assert_eq!(
        sorted(&mut c, &work).await,
        [
            ".hidden",
            "analysis.ipynb",
            "escape",
            "intro-python",
            "odd\nname \u{202e}txt",
            "pipe",
            "work"
        ]
    );
    let (fh, _) = lookup(&mut c, &work, "analysis.ipynb").await.unwrap();
    assert_eq!(read(&mut c, &fh, 0, 100).await.unwrap(), b"{\"cells\": []}");
    let (course, _) = lookup(&mut c, &work, "intro-python").await.unwrap();
    let (source, _) = lookup(&mut c, &course, "source").await.unwrap();
    let (fh, attr) = lookup(&mut c, &source, "ps1.ipynb").await.unwrap();
    assert_eq!((attr.uid, attr.gid), (1000, 100));
    assert_eq!(read(&mut c, &fh, 0, 100).await.unwrap(), b"ps1");
    let (inner_work, _) = lookup(&mut c, &work, "work").await.unwrap();
    let (fh, _) = lookup(&mut c, &inner_work, "inner.txt").await.unwrap();
    assert_eq!(read(&mut c, &fh, 0, 100).await.unwrap(), b"inner");
    // the symlink is still a symlink to what the user wrote, never followed by the move
    let (link, attr) = lookup(&mut c, &work, "escape").await.unwrap();
    assert!(matches!(attr.type_, ftype3::NF3LNK));
    assert_eq!(readlink(&mut c, &link).await, "/");
    let (_, attr) = lookup(&mut c, &work, "pipe").await.unwrap();
    assert!(matches!(attr.type_, ftype3::NF3FIFO));
    // `..` of work/ is the view root, and the view root its own `..`
    let (up, _) = lookup(&mut c, &work, "..").await.unwrap();
    assert_eq!(sorted(&mut c, &up).await, ["work"]);

    // the user's new files go to the top of the home; a second ensure moves nothing
    put_file(&mut c, &root, ".bashrc", b"# mine").await;
    let registry = std::fs::read(srv.dir.join("registry.json")).unwrap();
    for layout in [Some(Layout::Home), None] {
        let v = api(&srv).create(&body("home-alice", layout)).await.unwrap();
        assert_eq!(v.options.layout, Some(Layout::Home));
    }
    assert_eq!(
        std::fs::read(srv.dir.join("registry.json")).unwrap(),
        registry
    );
    assert_eq!(sorted(&mut c, &root).await, [".bashrc", "work"]);
    srv.restart().await;
    api(&srv)
        .create(&body("home-alice", Some(Layout::Home)))
        .await
        .unwrap();
    let (mut c, root) = srv.mount("home-alice", 1000).await;
    assert_eq!(sorted(&mut c, &root).await, [".bashrc", "work"]);
}

#[tokio::test]
async fn an_interrupted_move_continues_at_the_next_ensure() {
    let mut srv = Server::start().await;
    api(&srv).create(&body("home-bob", None)).await.unwrap();
    let (mut c, root) = srv.mount("home-bob", 1000).await;
    for n in ["a.txt", "b.txt", "c.txt", "work"] {
        put_file(&mut c, &root, n, n.as_bytes()).await;
    }
    // an nfsd that died midway: staging directory recorded, two entries moved into it
    srv.running.take().unwrap().stop().await.unwrap();
    let tree = srv.dir.join("volumes/home-bob");
    let staging = ".swarmhub-layout-00000000c0ffee00";
    std::fs::create_dir(tree.join(staging)).unwrap();
    std::os::unix::fs::chown(tree.join(staging), Some(ALICE.0), Some(ALICE.1)).unwrap();
    for n in ["a.txt", "work"] {
        std::fs::rename(tree.join(n), tree.join(staging).join(n)).unwrap();
    }
    let ino = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(tree.join(staging)).unwrap().ino()
    };
    let path = srv.dir.join("registry.json");
    let mut reg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    reg["volumes"]["home-bob"]["migration"] = serde_json::json!({"dir": staging, "ino": ino});
    std::fs::write(&path, serde_json::to_vec_pretty(&reg).unwrap()).unwrap();
    srv.running = Some(
        swarmhub_nfsd::server::start(settings(&srv.dir))
            .await
            .unwrap(),
    );

    // an ensure without the layout (an old node) changes nothing
    api(&srv).create(&body("home-bob", None)).await.unwrap();
    assert!(tree.join(staging).is_dir() && tree.join("b.txt").exists());
    api(&srv)
        .create(&body("home-bob", Some(Layout::Home)))
        .await
        .unwrap();
    assert_eq!(
        tree_listing(&tree),
        [
            "work/",
            "work/a.txt",
            "work/b.txt",
            "work/c.txt",
            "work/work"
        ]
    );
    assert_eq!(std::fs::read(tree.join("work/work")).unwrap(), b"work");
    let rec = record(&srv.dir, "home-bob");
    assert!(rec.get("migration").is_none(), "{rec}");
    assert_eq!(rec["options"]["layout"], "home");
}

#[tokio::test]
async fn new_homes_get_the_layout_without_a_move_and_shares_refuse_it() {
    let srv = Server::start().await;
    let v = api(&srv)
        .create(&body("home-carol", Some(Layout::Home)))
        .await
        .unwrap();
    assert_eq!(v.options.layout, Some(Layout::Home));
    let tree = srv.dir.join("volumes/home-carol");
    assert!(tree_listing(&tree).is_empty(), "a new home starts empty");
    // an old node's ensure (no layout) is not a conflict and keeps the layout
    let v = api(&srv).create(&body("home-carol", None)).await.unwrap();
    assert_eq!(v.options.layout, Some(Layout::Home));
    assert!(tree_listing(&tree).is_empty());

    let mut share = body("exchange-carol", None);
    share.options.share = Some("exchange".into());
    share.options.layout = Some(Layout::Home);
    let err = api(&srv).create(&share).await.unwrap_err().to_string();
    assert!(
        err.contains("layout") && err.contains("exchange"),
        "share with a layout: {err}"
    );
}
