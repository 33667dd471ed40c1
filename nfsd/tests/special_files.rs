//! Special files never block nfsd. Opening a FIFO for reading waits for a writer, so a READ,
//! WRITE, COMMIT, truncating SETATTR or CREATE that opened one would hold a worker thread for
//! good; a hostile client repeating it would starve every volume. Each such call must answer an
//! error at once, for FIFOs and sockets made through MKNOD and for special files found on disk.
//! The server runs on a two-worker runtime like production's, where a stuck call blocks a worker.

mod common;

use std::ffi::CString;
use std::io::Cursor;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{call_body, msg_body, opaque_auth, rpc_msg};
use nfs3_client::nfs3_types::xdr_codec::{Pack, Unpack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OWNER: (u32, u32) = (20001, 20000);
const OTHER: (u32, u32) = (20002, 20003);
/// Generous bound that only turns a hang into a failure; nothing here is timed.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Runs `f`, failing the whole test binary if it has not finished within [`HANG_GUARD`]. The
/// watchdog is a plain thread: when nfsd's calls block the runtime's workers, a tokio timer
/// would never fire.
async fn guarded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let what_ = what.to_string();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(HANG_GUARD) {
            eprintln!("{what_}: no answer within {HANG_GUARD:?}: nfsd is blocked");
            #[expect(
                clippy::exit,
                reason = "a blocked test cannot fail otherwise; end the binary"
            )]
            std::process::exit(101);
        }
    });
    let out = f.await;
    let _ = done.send(());
    out
}

async fn mknod(c: &mut Client, dir: &nfs_fh3, n: &str, what: mknoddata3) -> nfs_fh3 {
    match c
        .mknod(&MKNOD3args {
            where_: dirop(dir, n),
            what,
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => ok.obj.unwrap(),
        Nfs3Result::Err((s, _)) => panic!("MKNOD {n}: {s:?}"),
    }
}

fn mkfifo_on_disk(path: &Path) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(p.as_ptr(), 0o666) };
    assert_eq!(rc, 0, "mkfifo {path:?}");
}

fn mknod_null_on_disk(path: &Path) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; the device is /dev/null's (1, 3).
    let rc = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(rc, 0, "mknod {path:?}");
}

async fn commit(c: &mut Client, fh: &nfs_fh3) -> Result<(), nfsstat3> {
    match c
        .commit(&COMMIT3args {
            file: fh.clone(),
            offset: 0,
            count: 0,
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(_) => Ok(()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

async fn truncate(c: &mut Client, fh: &nfs_fh3) -> Result<(), nfsstat3> {
    let set = sattr3 {
        size: Nfs3Option::Some(0),
        ..Default::default()
    };
    setattr(c, fh, set).await
}

async fn create_how(c: &mut Client, dir: &nfs_fh3, n: &str, how: createhow3) -> Option<nfsstat3> {
    match c
        .create(&CREATE3args {
            where_: dirop(dir, n),
            how,
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(_) => None,
        Nfs3Result::Err((s, _)) => Some(s),
    }
}

/// Every call that would open the object answers an error, and CREATE over its name is EXIST.
async fn assert_never_opened(c: &mut Client, dir: &nfs_fh3, n: &str) {
    let what = format!("special file {n:?}");
    guarded(&what, async {
        let (fh, _) = lookup(c, dir, n).await.unwrap();
        let inval = Some(nfsstat3::NFS3ERR_INVAL);
        assert_eq!(read(c, &fh, 0, 4096).await.err(), inval, "READ {n}");
        assert_eq!(
            write(c, &fh, 0, b"x", stable_how::FILE_SYNC).await.err(),
            inval,
            "WRITE {n}"
        );
        assert_eq!(commit(c, &fh).await.err(), inval, "COMMIT {n}");
        assert_eq!(truncate(c, &fh).await.err(), inval, "SETATTR size {n}");
        let exist = Some(nfsstat3::NFS3ERR_EXIST);
        let unchecked = createhow3::UNCHECKED(mode(0o644));
        assert_eq!(
            create_how(c, dir, n, unchecked).await,
            exist,
            "UNCHECKED {n}"
        );
        let guarded = createhow3::GUARDED(mode(0o644));
        assert_eq!(create_how(c, dir, n, guarded).await, exist, "GUARDED {n}");
        let exclusive = createhow3::EXCLUSIVE(createverf3([7; 8]));
        assert_eq!(
            create_how(c, dir, n, exclusive).await,
            exist,
            "EXCLUSIVE {n}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_on_special_files_answers_an_error_at_once() {
    let srv = Server::start().await;
    srv.volume("home-sf", None, OWNER.0, OWNER.1).await;
    let (mut c, root) = srv.mount("home-sf", 1000).await;
    mknod(&mut c, &root, "fifo", mknoddata3::NF3FIFO(mode(0o666))).await;
    mknod(&mut c, &root, "sock", mknoddata3::NF3SOCK(mode(0o666))).await;
    // what a tree may hold without nfsd having made it
    let tree = srv.dir.join("volumes/home-sf");
    mkfifo_on_disk(&tree.join("disk-fifo"));
    mknod_null_on_disk(&tree.join("disk-null"));
    for n in ["fifo", "sock", "disk-fifo", "disk-null"] {
        assert_never_opened(&mut c, &root, n).await;
    }

    // a FIFO on disk in a shared tree, below a directory the view may write
    srv.volume("share-sf", Some("sftree"), OWNER.0, OWNER.1)
        .await;
    let course = srv.dir.join("shares/sftree/course");
    std::fs::create_dir(&course).unwrap();
    std::os::unix::fs::chown(&course, Some(OWNER.0), Some(OWNER.1)).unwrap();
    mkfifo_on_disk(&course.join("fifo"));
    let (mut s, sroot) = srv.mount("share-sf", 1000).await;
    let (scourse, _) = lookup(&mut s, &sroot, "course").await.unwrap();
    assert_never_opened(&mut s, &scourse, "fifo").await;

    // directories: I/O and truncation are ISDIR, CREATE over one is EXIST
    let d = mkdir(&mut c, &root, "dir", 0o755).await.unwrap();
    assert_eq!(
        read(&mut c, &d, 0, 10).await.err(),
        Some(nfsstat3::NFS3ERR_ISDIR)
    );
    assert_eq!(
        truncate(&mut c, &d).await.err(),
        Some(nfsstat3::NFS3ERR_ISDIR)
    );
    assert_eq!(
        commit(&mut c, &d).await.err(),
        Some(nfsstat3::NFS3ERR_ISDIR)
    );
    let unchecked = createhow3::UNCHECKED(mode(0o644));
    assert_eq!(
        create_how(&mut c, &root, "dir", unchecked).await,
        Some(nfsstat3::NFS3ERR_EXIST)
    );

    // an UNCHECKED create of an existing regular file still reuses it, data kept
    let f = create(&mut c, &root, "plain", 0o644).await.unwrap();
    write(&mut c, &f, 0, b"kept", stable_how::FILE_SYNC)
        .await
        .unwrap();
    let again = create(&mut c, &root, "plain", 0o644).await.unwrap();
    assert_eq!(read(&mut c, &again, 0, 10).await.unwrap(), b"kept");
    // ... and a file the view may not read is not reopened for it
    let other = tree.join("not-mine");
    std::fs::write(&other, b"secret").unwrap();
    std::os::unix::fs::chown(&other, Some(OTHER.0), Some(OTHER.1)).unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert_eq!(
        create(&mut c, &root, "not-mine", 0o644).await.err(),
        Some(nfsstat3::NFS3ERR_ACCES)
    );
}

// ---------------------------------------------------------------------------------------------
// many hostile calls at once, pipelined on raw connections (encoded with nfs3_types)

const HOSTILE_CONNECTIONS: u32 = 6;
const CALLS_PER_CONNECTION: u32 = 100;

fn read_call(xid: u32, fh: &nfs_fh3) -> Vec<u8> {
    let msg = rpc_msg {
        xid,
        body: msg_body::CALL(call_body {
            rpcvers: 2,
            prog: PROGRAM,
            vers: VERSION,
            proc: NFS_PROGRAM::NFSPROC3_READ as u32,
            cred: opaque_auth::default(),
            verf: opaque_auth::default(),
        }),
    };
    let args = READ3args {
        file: fh.clone(),
        offset: 0,
        count: 4096,
    };
    let mut body = Vec::new();
    msg.pack(&mut body).unwrap();
    args.pack(&mut body).unwrap();
    let mut rec = (0x8000_0000u32 | u32::try_from(body.len()).unwrap())
        .to_be_bytes()
        .to_vec();
    rec.extend(body);
    rec
}

/// Reads one reply record: its xid and the NFS status of the READ it answers.
async fn read_reply(s: &mut TcpStream) -> (u32, nfsstat3) {
    let mut mark = [0u8; 4];
    s.read_exact(&mut mark).await.unwrap();
    let len = (u32::from_be_bytes(mark) & 0x7fff_ffff) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    let mut cur = Cursor::new(&body[..]);
    let (msg, _) = rpc_msg::unpack(&mut cur).unwrap();
    assert!(
        matches!(msg.body, msg_body::REPLY(_)),
        "not a reply: {msg:?}"
    );
    let (res, _) = READ3res::unpack(&mut cur).unwrap();
    let status = match res {
        Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
        Nfs3Result::Err((s, _)) => s,
    };
    (msg.xid, status)
}

/// Sends every READ of one connection before reading any reply, so all are in flight together
/// (100 is under the per-connection in-flight cap of 128).
async fn hostile_connection(
    addr: std::net::SocketAddr,
    fh: nfs_fh3,
    first_xid: u32,
) -> Vec<(u32, nfsstat3)> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut calls = Vec::new();
    for i in 0..CALLS_PER_CONNECTION {
        calls.extend(read_call(first_xid + i, &fh));
    }
    s.write_all(&calls).await.unwrap();
    let mut replies = Vec::new();
    for _ in 0..CALLS_PER_CONNECTION {
        replies.push(read_reply(&mut s).await);
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_reads_of_a_fifo_do_not_starve_other_volumes() {
    let srv = Server::start().await;
    srv.volume("hostile", None, OWNER.0, OWNER.1).await;
    srv.volume("victim", None, OTHER.0, OTHER.1).await;
    let (mut h, hroot) = srv.mount("hostile", 0).await;
    let fifo = mknod(&mut h, &hroot, "fifo", mknoddata3::NF3FIFO(mode(0o666))).await;
    let (mut v, vroot) = srv.mount("victim", 1000).await;

    let addr = srv.nfs_addr();
    let attack: Vec<_> = (0..HOSTILE_CONNECTIONS)
        .map(|k| tokio::spawn(hostile_connection(addr, fifo.clone(), k * 1000)))
        .collect();
    // the other volume keeps answering while the hostile calls are in flight
    let (answered, replies) = guarded("600 READs of a FIFO", async {
        let mut answered = 0;
        while answered < 20 || !attack.iter().all(|t| t.is_finished()) {
            assert!(getattr(&mut v, &vroot).await.is_ok(), "GETATTR on victim");
            answered += 1;
        }
        let mut replies = Vec::new();
        for task in attack {
            replies.extend(task.await.unwrap());
        }
        (answered, replies)
    })
    .await;
    assert!(answered >= 20);
    assert_eq!(
        replies.len(),
        (HOSTILE_CONNECTIONS * CALLS_PER_CONNECTION) as usize
    );
    let mut xids: Vec<u32> = replies.iter().map(|r| r.0).collect();
    xids.sort();
    xids.dedup();
    assert_eq!(xids.len(), replies.len(), "every call answered once");
    for (xid, status) in &replies {
        assert_eq!(*status, nfsstat3::NFS3ERR_INVAL, "READ xid {xid}");
    }
    guarded("GETATTR after the attack", getattr(&mut v, &vroot))
        .await
        .unwrap();
}
