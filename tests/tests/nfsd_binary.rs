//! The built `swarmhub-nfsd` binary against clients nobody here wrote (libnfs-utils: nfs-cp,
//! nfs-ls, nfs-cat), and restarts of the real process: graceful (SIGTERM) and `kill -9`.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use nfs3_client::Nfs3ConnectionBuilder;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioConnector;
use swarmhub_tests::nfsd::Nfsd;

fn url(n: &Nfsd, path: &str) -> String {
    format!(
        "nfs://127.0.0.1{path}?nfsport={p}&mountport={p}&version=3",
        p = n.nfs.port()
    )
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("running {cmd:?}: {e}; install libnfs-utils (apt-get install libnfs-utils)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn libnfs_utils_copy_list_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let n = Nfsd::start(&data, &[]).unwrap();
    n.create_volume(r#"{"name":"home-alice","user":"alice","identity":{"uid":20001,"gid":20000}}"#)
        .unwrap();

    // the mount path the control API gives out: the volume's name and its capability secret
    let alice = n.export("home-alice").unwrap();
    let small = tmp.path().join("hello.txt");
    std::fs::write(&small, "hello from libnfs\n").unwrap();
    let big = tmp.path().join("big.bin");
    let pattern: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&big, &pattern).unwrap();

    run(Command::new("nfs-cp")
        .arg(&small)
        .arg(url(&n, &format!("{alice}/hello.txt"))));
    run(Command::new("nfs-cp")
        .arg(&big)
        .arg(url(&n, &format!("{alice}/big.bin"))));

    let listing = run(Command::new("nfs-ls").arg(url(&n, &alice)));
    assert!(
        listing.contains("hello.txt") && listing.contains("big.bin"),
        "{listing}"
    );
    // nfs-ls shows the client identity for the volume's own files
    let line = listing.lines().find(|l| l.contains("hello.txt")).unwrap();
    assert!(line.split_whitespace().any(|w| w == "1000"), "{line}");

    let text = run(Command::new("nfs-cat").arg(url(&n, &format!("{alice}/hello.txt"))));
    assert_eq!(text, "hello from libnfs\n");
    let back = tmp.path().join("back.bin");
    run(Command::new("nfs-cp")
        .arg(url(&n, &format!("{alice}/big.bin")))
        .arg(&back));
    assert!(
        std::fs::read(&back).unwrap() == pattern,
        "5 MiB round trip differs"
    );

    // on the storage side the files belong to the store identity
    let md = std::fs::metadata(data.join("volumes/home-alice/hello.txt")).unwrap();
    assert_eq!((md.uid(), md.gid()), (20001, 20000));

    // an export that does not exist, and the bare name without the secret, are errors for the
    // client (MNT3ERR_ACCES), not a crash of the server
    for path in ["/nope", "/home-alice"] {
        let out = Command::new("nfs-ls").arg(url(&n, path)).output().unwrap();
        assert!(!out.status.success(), "nfs-ls {path} must fail");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("MNT3ERR_ACCES"),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (status, _) = n.api("GET", "/v1/volumes/home-alice", None).unwrap();
    assert_eq!(status, 200);
}

async fn connect(n: &Nfsd, export: &str) -> (Client, nfs_fh3) {
    let conn = Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", export)
        .mount_port(n.nfs.port())
        .nfs3_port(n.nfs.port())
        .connect_from_privileged_port(false)
        .credential(opaque_auth::auth_unix(&auth_unix {
            stamp: 0,
            machinename: Opaque::borrowed(b"t"),
            uid: 1000,
            gid: 100,
            gids: vec![],
        }))
        .mount()
        .await
        .unwrap();
    let root = conn.root_nfs_fh3();
    (conn.into_nfs3_client(), root)
}

type Client = nfs3_client::Nfs3Client<nfs3_client::tokio::TokioIo<tokio::net::TcpStream>>;

async fn append(
    c: &mut Client,
    fh: &nfs_fh3,
    expected: &mut Vec<u8>,
    line: String,
    stable: stable_how,
) -> writeverf3 {
    let off = expected.len() as u64;
    expected.extend_from_slice(line.as_bytes());
    c.write(&WRITE3args {
        file: fh.clone(),
        offset: off,
        count: u32::try_from(line.len()).unwrap(),
        stable,
        data: Opaque::owned(line.into_bytes()),
    })
    .await
    .unwrap()
    .unwrap()
    .verf
}

#[tokio::test(flavor = "multi_thread")]
async fn handles_and_acknowledged_data_survive_sigterm_and_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut n = Nfsd::start(&data, &[]).unwrap();
    n.create_volume(r#"{"name":"keep","user":"bob","identity":{"uid":20002,"gid":20000}}"#)
        .unwrap();
    let (mut c, root) = connect(&n, &n.export("keep").unwrap()).await;
    let made = c
        .create(&CREATE3args {
            where_: diropargs3 {
                dir: root.clone(),
                name: filename3(Opaque::owned(b"log".to_vec())),
            },
            how: createhow3::UNCHECKED(sattr3::default()),
        })
        .await
        .unwrap()
        .unwrap();
    let fh = made.obj.unwrap();
    let mut expected = Vec::new();
    for i in 0..100 {
        append(
            &mut c,
            &fh,
            &mut expected,
            format!("stable {i}\n"),
            stable_how::FILE_SYNC,
        )
        .await;
    }
    let mut verf = writeverf3::default();
    for i in 0..100 {
        verf = append(
            &mut c,
            &fh,
            &mut expected,
            format!("unstable {i}\n"),
            stable_how::UNSTABLE,
        )
        .await;
    }
    let commit = c
        .commit(&COMMIT3args {
            file: fh.clone(),
            offset: 0,
            count: 0,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(commit.verf, verf);
    drop(c);

    let took = n.restart_graceful().unwrap();
    assert!(took.as_secs() < 10, "graceful shutdown took {took:?}");
    let (mut c, root2) = connect(&n, &n.export("keep").unwrap()).await;
    assert_eq!(root2, root);
    let r = c
        .read(&READ3args {
            file: fh.clone(),
            offset: 0,
            count: 1 << 20,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.data.as_ref(),
        expected.as_slice(),
        "data after SIGTERM restart"
    );
    for i in 0..50 {
        append(
            &mut c,
            &fh,
            &mut expected,
            format!("after {i}\n"),
            stable_how::FILE_SYNC,
        )
        .await;
    }
    drop(c);

    n.restart_killed().unwrap();
    let (mut c, _) = connect(&n, &n.export("keep").unwrap()).await;
    let r = c
        .read(&READ3args {
            file: fh.clone(),
            offset: 0,
            count: 1 << 20,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.data.as_ref(),
        expected.as_slice(),
        "data after kill -9 restart"
    );
    let attr = c
        .getattr(&GETATTR3args {
            object: root.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attr.obj_attributes.type_, ftype3::NF3DIR);
    assert!(!n.log_text().contains("panicked"), "{}", n.log_text());
}
