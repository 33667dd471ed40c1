//! Hostile input against a running nfsd: raw RPC records built and decoded by hand (this tests the
//! wire, not our own encoder), forged and stale handles, `..` and symlinks that try to leave a
//! view, hostile names, a quota and a read-only volume. Every case asserts a precise error and
//! then that nothing was lost: the server still serves a normal client and the data written
//! before still reads back.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::*;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use swarmhub_control_api::{CreateVolume, ExplicitIdentity, VolumeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UID: u32 = 20001;
const GID: u32 = 20000;
const KEEP: &[u8] = b"precious data written before the attack";

// ---------------------------------------------------------------------------------------------
// shared set-up and checks

/// A server with volume `name`, a client on it and `keep.txt` holding [`KEEP`].
async fn setup(name: &str) -> (Server, Client, nfs_fh3) {
    let srv = Server::start().await;
    srv.volume(name, None, UID, GID).await;
    let (mut c, root) = srv.mount(name, 1000).await;
    let f = create(&mut c, &root, "keep.txt", 0o644).await.unwrap();
    write(&mut c, &f, 0, KEEP, stable_how::FILE_SYNC)
        .await
        .unwrap();
    (srv, c, root)
}

/// A brand-new client mounts `name`, finds `keep.txt` and reads [`KEEP`] back.
async fn still_serves(srv: &Server, name: &str) {
    let (mut c, root) = srv.mount(name, 1000).await;
    let (f, attr) = lookup(&mut c, &root, "keep.txt").await.unwrap();
    assert_eq!(attr.size, KEEP.len() as u64);
    assert_eq!(read(&mut c, &f, 0, 4096).await.unwrap(), KEEP);
    let tree = srv.dir.join("volumes").join(name).join("keep.txt");
    assert_eq!(std::fs::read(tree).unwrap(), KEEP);
}

fn fh(bytes: Vec<u8>) -> nfs_fh3 {
    nfs_fh3 {
        data: Opaque::owned(bytes),
    }
}

fn tree_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// GETATTR that keeps RPC-level failures (GARBAGE_ARGS and friends) apart from NFS statuses.
/// On success, the object's fileid.
async fn getattr_any(c: &mut Client, h: &nfs_fh3) -> Result<Result<u64, nfsstat3>, String> {
    match c.getattr(&GETATTR3args { object: h.clone() }).await {
        Ok(Nfs3Result::Ok(ok)) => Ok(Ok(ok.obj_attributes.fileid)),
        Ok(Nfs3Result::Err((s, _))) => Ok(Err(s)),
        Err(e) => Err(format!("{e:?}")),
    }
}

async fn readlink(c: &mut Client, h: &nfs_fh3) -> Result<Vec<u8>, nfsstat3> {
    match c
        .readlink(&READLINK3args { symlink: h.clone() })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok(ok.data.0.to_vec()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

async fn symlink(
    c: &mut Client,
    dir: &nfs_fh3,
    n: &[u8],
    target: &[u8],
) -> Result<nfs_fh3, nfsstat3> {
    match c
        .symlink(&SYMLINK3args {
            where_: diropargs3 {
                dir: dir.clone(),
                name: filename3(Opaque::owned(n.to_vec())),
            },
            symlink: symlinkdata3 {
                symlink_attributes: sattr3::default(),
                symlink_data: nfspath3(Opaque::owned(target.to_vec())),
            },
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok(ok.obj.unwrap()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

fn bytes_dirop(dir: &nfs_fh3, n: &[u8]) -> diropargs3<'static> {
    diropargs3 {
        dir: dir.clone(),
        name: filename3(Opaque::owned(n.to_vec())),
    }
}

async fn create_b(c: &mut Client, dir: &nfs_fh3, n: &[u8]) -> Result<nfs_fh3, nfsstat3> {
    match c
        .create(&CREATE3args {
            where_: bytes_dirop(dir, n),
            how: createhow3::UNCHECKED(mode(0o644)),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok(ok.obj.unwrap()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

async fn mkdir_b(c: &mut Client, dir: &nfs_fh3, n: &[u8]) -> Result<nfs_fh3, nfsstat3> {
    match c
        .mkdir(&MKDIR3args {
            where_: bytes_dirop(dir, n),
            attributes: mode(0o755),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok(ok.obj.unwrap()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

async fn lookup_b(c: &mut Client, dir: &nfs_fh3, n: &[u8]) -> Result<(nfs_fh3, fattr3), nfsstat3> {
    match c
        .lookup(&LOOKUP3args {
            what: bytes_dirop(dir, n),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => Ok((ok.object, ok.obj_attributes.unwrap())),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

async fn remove_b(c: &mut Client, dir: &nfs_fh3, n: &[u8]) -> Result<(), nfsstat3> {
    match c
        .remove(&REMOVE3args {
            object: bytes_dirop(dir, n),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(_) => Ok(()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

async fn rmdir_b(c: &mut Client, dir: &nfs_fh3, n: &[u8]) -> Result<(), nfsstat3> {
    match c
        .rmdir(&RMDIR3args {
            object: bytes_dirop(dir, n),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(_) => Ok(()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

async fn rename_b(
    c: &mut Client,
    from: &nfs_fh3,
    a: &[u8],
    to: &nfs_fh3,
    b: &[u8],
) -> Result<(), nfsstat3> {
    match c
        .rename(&RENAME3args {
            from: bytes_dirop(from, a),
            to: bytes_dirop(to, b),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(_) => Ok(()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

async fn link_b(c: &mut Client, file: &nfs_fh3, dir: &nfs_fh3, n: &[u8]) -> Result<(), nfsstat3> {
    match c
        .link(&LINK3args {
            file: file.clone(),
            link: bytes_dirop(dir, n),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(_) => Ok(()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

/// Names of `dir` including `.` and `..`, with their fileids (one READDIR page).
async fn readdir_ids(c: &mut Client, dir: &nfs_fh3) -> Vec<(String, u64)> {
    let ok = c
        .readdir(&READDIR3args {
            dir: dir.clone(),
            cookie: 0,
            cookieverf: cookieverf3::default(),
            count: 64 * 1024,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(ok.reply.eof);
    ok.reply
        .entries
        .0
        .into_iter()
        .map(|e| (String::from_utf8(e.name.0.to_vec()).unwrap(), e.fileid))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// raw ONC RPC over TCP, encoded and decoded by hand

const LAST_FRAGMENT: u32 = 0x8000_0000;
const NFS_PROGRAM: u32 = 100_003;
const MSG_REPLY: u32 = 1;
const MSG_ACCEPTED: u32 = 0;
const MSG_DENIED: u32 = 1;
const AUTH_NONE: u32 = 0;
const AUTH_SYS: u32 = 1;
// accept_stat
const SUCCESS: u32 = 0;
const PROG_UNAVAIL: u32 = 1;
const PROG_MISMATCH: u32 = 2;
const PROC_UNAVAIL: u32 = 3;
const GARBAGE_ARGS: u32 = 4;
// reject_stat
const RPC_MISMATCH: u32 = 0;
const AUTH_ERROR: u32 = 1;
// auth_stat
const AUTH_BADCRED: u32 = 1;
const AUTH_TOOWEAK: u32 = 5;

fn be(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn xdr_opaque(body: &[u8]) -> Vec<u8> {
    let mut v = be(&[u32::try_from(body.len()).unwrap()]);
    v.extend_from_slice(body);
    v.resize(v.len().div_ceil(4) * 4, 0);
    v
}

/// One complete record (a single last fragment) holding `body`.
fn record(body: &[u8]) -> Vec<u8> {
    let mut v = (LAST_FRAGMENT | u32::try_from(body.len()).unwrap())
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(body);
    v
}

/// A CALL with the given header words, credential and raw argument bytes; verifier AUTH_NONE.
#[allow(clippy::too_many_arguments)]
fn call(
    xid: u32,
    rpcvers: u32,
    prog: u32,
    vers: u32,
    proc_: u32,
    flavor: u32,
    cred: &[u8],
    args: &[u8],
) -> Vec<u8> {
    let mut v = be(&[xid, 0, rpcvers, prog, vers, proc_, flavor]);
    v.extend(xdr_opaque(cred));
    v.extend(be(&[AUTH_NONE, 0]));
    v.extend_from_slice(args);
    record(&v)
}

/// An NFSv3 call with AUTH_NONE.
fn nfs_call(xid: u32, proc_: u32, args: &[u8]) -> Vec<u8> {
    call(xid, 2, NFS_PROGRAM, 3, proc_, AUTH_NONE, &[], args)
}

/// An AUTH_SYS body that claims `claimed` groups and carries `sent` of them.
fn auth_sys(claimed: u32, sent: u32) -> Vec<u8> {
    let mut v = be(&[1]);
    v.extend(xdr_opaque(b"hostile"));
    v.extend(be(&[1000, 100, claimed]));
    for g in 0..sent {
        v.extend(be(&[5000 + g]));
    }
    v
}

async fn read_reply_record(s: &mut TcpStream) -> Vec<u8> {
    let read = async {
        let mut rec = Vec::new();
        loop {
            let mut mark = [0u8; 4];
            s.read_exact(&mut mark)
                .await
                .expect("reading a reply's record mark");
            let mark = u32::from_be_bytes(mark);
            let len = (mark & !LAST_FRAGMENT) as usize;
            assert!(len <= 1 << 20, "reply fragment of {len} bytes");
            let start = rec.len();
            rec.resize(start + len, 0);
            s.read_exact(&mut rec[start..])
                .await
                .expect("reading a reply");
            if mark & LAST_FRAGMENT != 0 {
                return rec;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("no reply within 10 s")
}

/// A reply as the wire says it, decoded word by word.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// MSG_ACCEPTED: the accept_stat and the words after it.
    Accepted { stat: u32, rest: Vec<u32> },
    /// MSG_DENIED: the reject_stat and the words after it.
    Denied { stat: u32, rest: Vec<u32> },
}

/// Sends `rec` and decodes the reply, checking that it answers `xid`.
async fn exchange(s: &mut TcpStream, rec: &[u8], xid: u32) -> Reply {
    s.write_all(rec).await.unwrap();
    let r = read_reply_record(s).await;
    assert_eq!(
        r.len() % 4,
        0,
        "reply of {} bytes is not XDR-aligned",
        r.len()
    );
    let w: Vec<u32> = r
        .chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(w[0], xid, "reply answers another xid");
    assert_eq!(w[1], MSG_REPLY, "message type");
    match w[2] {
        MSG_ACCEPTED => {
            // verifier: flavor, length, body
            let verf_words = (w[4] as usize).div_ceil(4);
            let at = 5 + verf_words;
            Reply::Accepted {
                stat: w[at],
                rest: w[at + 1..].to_vec(),
            }
        }
        MSG_DENIED => Reply::Denied {
            stat: w[3],
            rest: w[4..].to_vec(),
        },
        other => panic!("reply_stat {other}"),
    }
}

/// Waits for the server to close the connection: EOF or a reset, and no bytes.
async fn expect_closed(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
        Err(_) => panic!("{what}: the server kept the connection open"),
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("{what}: the server sent {n} bytes instead of closing"),
    }
}

/// Peak resident memory of this process (the server runs in it), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[tokio::test]
async fn oversized_record_marks_close_the_connection_without_allocating() {
    let (srv, _c, _root) = setup("bombed").await;
    let addr = srv.nfs_addr();
    let before = peak_rss_kib();

    // one last fragment announcing 0x7fffffff bytes
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&(LAST_FRAGMENT | 0x7fff_ffff).to_be_bytes())
        .await
        .unwrap();
    expect_closed(&mut s, "last fragment of 2 GiB").await;

    // the same as a non-last fragment
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&0x7fff_ffffu32.to_be_bytes()).await.unwrap();
    expect_closed(&mut s, "non-last fragment of 2 GiB").await;

    // fragments that are each acceptable but add up past the cap
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut wire = (1u32 << 20).to_be_bytes().to_vec();
    wire.extend(std::iter::repeat_n(0xabu8, 1 << 20));
    wire.extend_from_slice(&(LAST_FRAGMENT | (128 << 10)).to_be_bytes());
    s.write_all(&wire).await.unwrap();
    expect_closed(&mut s, "fragments adding up to 1.125 MiB").await;

    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 256,
        "peak memory grew by {grown_mib} MiB while refusing oversized records"
    );
    // a second, normal client is served and the data is intact
    still_serves(&srv, "bombed").await;
}

#[tokio::test]
async fn garbage_records_close_the_connection() {
    let (srv, _c, _root) = setup("garbage").await;
    let addr = srv.nfs_addr();

    // 64 random bytes as one complete record; the message type word is made non-zero so it
    // cannot be a CALL by chance
    let mut junk: [u8; 64] = rand::random();
    junk[7] |= 0x5a;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&record(&junk)).await.unwrap();
    expect_closed(&mut s, "64 random bytes").await;

    // a record too short to hold an xid and a message type
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&record(b"\x01\x02")).await.unwrap();
    expect_closed(&mut s, "2-byte record").await;

    // a REPLY sent to the server
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&record(&be(&[42, MSG_REPLY, MSG_ACCEPTED, 0, 0, SUCCESS])))
        .await
        .unwrap();
    expect_closed(&mut s, "a REPLY from the client").await;

    // a record cut short by the peer
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&(LAST_FRAGMENT | 100).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&[0u8; 10]).await.unwrap();
    s.shutdown().await.unwrap();
    expect_closed(&mut s, "truncated record").await;

    still_serves(&srv, "garbage").await;
}

/// Virtual memory peak of this process (the server runs in it), in KiB.
fn peak_vm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPeak:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmPeak in /proc/self/status")
}

/// The record cap bounds what a peer makes the server allocate for a record; the arguments inside
/// must not announce more than that either. A 52-byte GETATTR whose handle claims 4 GiB must be
/// GARBAGE_ARGS without reserving 4 GiB: where overcommit is strict (vm.overcommit_memory=2) or
/// address space is limited, that allocation fails and aborts the whole server.
#[tokio::test]
async fn garbage_args_do_not_allocate_what_they_announce() {
    let (srv, _c, _root) = setup("announce").await;
    let mut s = TcpStream::connect(srv.nfs_addr()).await.unwrap();
    // warm up the connection and the server's threads first
    exchange(&mut s, &nfs_call(1, 0, &[]), 1).await;
    let before = peak_vm_kib();
    let args = [be(&[0xffff_fff0]), vec![0; 8]].concat();
    assert_eq!(
        exchange(&mut s, &nfs_call(2, 1, &args), 2).await,
        Reply::Accepted {
            stat: GARBAGE_ARGS,
            rest: vec![]
        }
    );
    let grown_mib = peak_vm_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 2048,
        "a 52-byte record made the server reserve {grown_mib} MiB of memory"
    );
    still_serves(&srv, "announce").await;
}

/// MNT of `path` on a raw connection: the mountstat3, and the handle when it is MNT3_OK.
async fn raw_mnt(s: &mut TcpStream, xid: u32, path: &[u8]) -> (u32, Option<Vec<u8>>) {
    let rec = call(xid, 2, 100_005, 3, 1, AUTH_NONE, &[], &xdr_opaque(path));
    match exchange(s, &rec, xid).await {
        Reply::Accepted {
            stat: SUCCESS,
            rest,
        } => {
            if rest[0] == 0 {
                let len = rest[1] as usize;
                let bytes: Vec<u8> = rest[2..].iter().flat_map(|w| w.to_be_bytes()).collect();
                (0, Some(bytes[..len].to_vec()))
            } else {
                (rest[0], None)
            }
        }
        other => panic!("MNT {:?}: {other:?}", String::from_utf8_lossy(path)),
    }
}

#[tokio::test]
async fn mount_of_hostile_paths_is_refused() {
    let (srv, _c, root) = setup("mnt").await;
    srv.volume("mnt-gone", None, UID, GID).await;
    srv.running().volumes.remove("mnt-gone").await.unwrap();
    let mut s = TcpStream::connect(srv.nfs_addr()).await.unwrap();
    // the real mount path, by hand: the same handle the client library got
    let export = srv.export("mnt");
    assert_eq!(
        raw_mnt(&mut s, 1, export.as_bytes()).await,
        (0, Some(root.data.to_vec()))
    );
    let secret = export.rsplit('/').next().unwrap().to_string();
    const ACCES: u32 = 13;
    const NAMETOOLONG: u32 = 63;
    let long = [b"/".as_slice(), &[b'x'; 2000]].concat();
    let with = |p: &str| format!("{p}/{secret}").into_bytes();
    for (xid, path, want) in [
        (2, b"/".to_vec(), ACCES),
        (3, b"".to_vec(), ACCES),
        (4, b"/..".to_vec(), ACCES),
        (5, b"/mnt/..".to_vec(), ACCES),
        (6, b"/mnt/../mnt-gone".to_vec(), ACCES),
        (7, b"/../volumes/mnt".to_vec(), ACCES),
        (8, b"/volumes/mnt".to_vec(), ACCES),
        (9, b"/mnt-gone".to_vec(), ACCES),
        (10, b"/mnt\0".to_vec(), ACCES),
        (11, b"/mnt\xff".to_vec(), ACCES),
        (12, b"/etc".to_vec(), ACCES),
        (13, long.clone(), NAMETOOLONG),
        (14, with("/mnt-gone"), ACCES),
        (15, with("/mnt/.."), ACCES),
        (16, with("/../mnt"), ACCES),
        (17, format!("{export}/x").into_bytes(), ACCES),
        (18, format!("{export}\0").into_bytes(), ACCES),
    ] {
        let (stat, fh) = raw_mnt(&mut s, xid, &path).await;
        assert!(
            stat == want && fh.is_none(),
            "MNT {:?}: status {stat}, expected {want}",
            String::from_utf8_lossy(&path)
        );
    }
    still_serves(&srv, "mnt").await;
}

#[tokio::test]
async fn hostile_offsets_counts_and_targets() {
    let (srv, mut c, root) = setup("offsets").await;
    let (f, _) = lookup(&mut c, &root, "keep.txt").await.unwrap();
    // READ far past the end, and with an absurd count
    let r = c
        .read(&READ3args {
            file: f.clone(),
            offset: u64::MAX,
            count: 1000,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(r.data.is_empty() && r.eof);
    let r = read(&mut c, &f, 0, u32::MAX).await.unwrap();
    assert_eq!(r, KEEP);
    // WRITE whose end overflows, or lies beyond any file size
    for off in [u64::MAX - 2, i64::MAX as u64, 1 << 62] {
        let got = write(&mut c, &f, off, b"0123456789", stable_how::FILE_SYNC)
            .await
            .err();
        assert!(
            matches!(got, Some(nfsstat3::NFS3ERR_FBIG | nfsstat3::NFS3ERR_INVAL)),
            "WRITE at {off}: {got:?}"
        );
    }
    // WRITE whose count disagrees with its data, or is over the advertised maximum
    for (count, len) in [(10u32, 5usize), (5, 10), ((1 << 20) + 4, (1 << 20) + 4)] {
        let got = c
            .write(&WRITE3args {
                file: f.clone(),
                offset: 0,
                count,
                stable: stable_how::FILE_SYNC,
                data: Opaque::owned(vec![b'!'; len]),
            })
            .await
            .unwrap();
        assert!(
            matches!(got, Nfs3Result::Err((nfsstat3::NFS3ERR_INVAL, _))),
            "WRITE count {count} with {len} bytes: {got:?}"
        );
    }
    // SETATTR to an impossible size
    let got = setattr(
        &mut c,
        &f,
        sattr3 {
            size: Nfs3Option::Some(u64::MAX),
            ..Default::default()
        },
    )
    .await;
    assert!(
        matches!(got, Err(nfsstat3::NFS3ERR_FBIG | nfsstat3::NFS3ERR_INVAL)),
        "{got:?}"
    );
    // directory listings with no room, and a made-up cookie
    let got = c
        .readdir(&READDIR3args {
            dir: root.clone(),
            cookie: 0,
            cookieverf: cookieverf3::default(),
            count: 0,
        })
        .await
        .unwrap();
    assert!(
        matches!(got, Nfs3Result::Err((nfsstat3::NFS3ERR_TOOSMALL, _))),
        "{got:?}"
    );
    let got = c
        .readdirplus(&READDIRPLUS3args {
            dir: root.clone(),
            cookie: 0,
            cookieverf: cookieverf3::default(),
            dircount: 0,
            maxcount: 0,
        })
        .await
        .unwrap();
    assert!(
        matches!(got, Nfs3Result::Err((nfsstat3::NFS3ERR_TOOSMALL, _))),
        "{got:?}"
    );
    let got = c
        .readdir(&READDIR3args {
            dir: root.clone(),
            cookie: u64::MAX,
            cookieverf: cookieverf3::default(),
            count: 4096,
        })
        .await
        .unwrap();
    match got {
        Nfs3Result::Ok(ok) => assert!(ok.reply.eof),
        Nfs3Result::Err((s, _)) => assert_eq!(s, nfsstat3::NFS3ERR_BAD_COOKIE),
    }
    // symlink targets that are empty, hold a NUL, or are longer than PATH_MAX
    assert_eq!(
        symlink(&mut c, &root, b"l1", b"").await.err(),
        Some(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        symlink(&mut c, &root, b"l2", b"a\0b").await.err(),
        Some(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        symlink(&mut c, &root, b"l3", &[b'a'; 5000]).await.err(),
        Some(nfsstat3::NFS3ERR_NAMETOOLONG)
    );
    assert_eq!(
        tree_names(&srv.dir.join("volumes/offsets")),
        vec!["keep.txt"]
    );
    still_serves(&srv, "offsets").await;
}

#[tokio::test]
async fn rpc_level_errors_are_answered_on_the_wire() {
    let (srv, _c, root) = setup("wire").await;
    let mut s = TcpStream::connect(srv.nfs_addr()).await.unwrap();

    // our hand encoding is right: NULL succeeds with an empty result
    assert_eq!(
        exchange(&mut s, &nfs_call(1, 0, &[]), 1).await,
        Reply::Accepted {
            stat: SUCCESS,
            rest: vec![]
        }
    );
    // a real GETATTR on the root handle: NFS3_OK, then fattr3 whose first word is NF3DIR
    let root_args = xdr_opaque(&root.data);
    match exchange(&mut s, &nfs_call(2, 1, &root_args), 2).await {
        Reply::Accepted {
            stat: SUCCESS,
            rest,
        } => {
            assert_eq!(rest[0], 0, "nfsstat3");
            assert_eq!(rest[1], 2, "ftype3 NF3DIR");
        }
        other => panic!("{other:?}"),
    }

    // GETATTR with garbage arguments
    for (xid, args) in [
        (10, b"\xde\xad\xbe".to_vec()),
        (11, Vec::new()),
        // a handle announcing more bytes than the record holds (the 4 GiB variant is
        // `garbage_args_do_not_allocate_what_they_announce`)
        (12, [be(&[1000]), vec![0; 8]].concat()),
        // a valid handle followed by junk
        (13, [root_args.clone(), be(&[0xdead_beef])].concat()),
    ] {
        assert_eq!(
            exchange(&mut s, &nfs_call(xid, 1, &args), xid).await,
            Reply::Accepted {
                stat: GARBAGE_ARGS,
                rest: vec![]
            },
            "xid {xid}"
        );
    }

    // RPC version 3
    assert_eq!(
        exchange(
            &mut s,
            &call(20, 3, NFS_PROGRAM, 3, 0, AUTH_NONE, &[], &[]),
            20
        )
        .await,
        Reply::Denied {
            stat: RPC_MISMATCH,
            rest: vec![2, 2]
        }
    );
    // an unknown program
    assert_eq!(
        exchange(&mut s, &call(21, 2, 100_099, 1, 0, AUTH_NONE, &[], &[]), 21).await,
        Reply::Accepted {
            stat: PROG_UNAVAIL,
            rest: vec![]
        }
    );
    // NFS version 2
    assert_eq!(
        exchange(
            &mut s,
            &call(22, 2, NFS_PROGRAM, 2, 0, AUTH_NONE, &[], &[]),
            22
        )
        .await,
        Reply::Accepted {
            stat: PROG_MISMATCH,
            rest: vec![3, 3]
        }
    );
    // an NFSv3 procedure that does not exist
    assert_eq!(
        exchange(&mut s, &nfs_call(23, 22, &[]), 23).await,
        Reply::Accepted {
            stat: PROC_UNAVAIL,
            rest: vec![]
        }
    );
    // AUTH_SYS claiming 1000 groups (and carrying them: a 4 KiB credential) ...
    assert_eq!(
        exchange(
            &mut s,
            &call(
                24,
                2,
                NFS_PROGRAM,
                3,
                0,
                AUTH_SYS,
                &auth_sys(1000, 1000),
                &[]
            ),
            24
        )
        .await,
        Reply::Denied {
            stat: AUTH_ERROR,
            rest: vec![AUTH_BADCRED]
        }
    );
    // ... or claiming 1000 and carrying 2
    assert_eq!(
        exchange(
            &mut s,
            &call(25, 2, NFS_PROGRAM, 3, 0, AUTH_SYS, &auth_sys(1000, 2), &[]),
            25
        )
        .await,
        Reply::Denied {
            stat: AUTH_ERROR,
            rest: vec![AUTH_BADCRED]
        }
    );
    // a credential whose length runs past the record
    let mut lying = be(&[26, 0, 2, NFS_PROGRAM, 3, 0, AUTH_SYS, 0xffff_0000]);
    lying.extend_from_slice(&[0; 16]);
    assert_eq!(
        exchange(&mut s, &record(&lying), 26).await,
        Reply::Denied {
            stat: AUTH_ERROR,
            rest: vec![AUTH_BADCRED]
        }
    );
    // a flavor nfsd does not speak (RPCSEC_GSS)
    assert_eq!(
        exchange(&mut s, &call(27, 2, NFS_PROGRAM, 3, 0, 6, &[0; 8], &[]), 27).await,
        Reply::Denied {
            stat: AUTH_ERROR,
            rest: vec![AUTH_TOOWEAK]
        }
    );
    // a forged handle is an NFS status, not an RPC error
    let mut forged = root.data.to_vec();
    forged[3] ^= 0x10;
    match exchange(&mut s, &nfs_call(28, 1, &xdr_opaque(&forged)), 28).await {
        Reply::Accepted {
            stat: SUCCESS,
            rest,
        } => assert_eq!(rest, vec![10001], "NFS3ERR_BADHANDLE"),
        other => panic!("{other:?}"),
    }
    // a sane AUTH_SYS call on the same connection: none of the above closed it
    match exchange(
        &mut s,
        &call(
            29,
            2,
            NFS_PROGRAM,
            3,
            1,
            AUTH_SYS,
            &auth_sys(2, 2),
            &root_args,
        ),
        29,
    )
    .await
    {
        Reply::Accepted {
            stat: SUCCESS,
            rest,
        } => assert_eq!(rest[0], 0),
        other => panic!("{other:?}"),
    }

    still_serves(&srv, "wire").await;
}

// ---------------------------------------------------------------------------------------------
// handles

#[tokio::test]
async fn forged_handles_are_badhandle() {
    let (srv, mut c, root) = setup("hand-a").await;
    srv.volume("hand-b", None, UID + 1, GID).await;
    let (mut b, broot) = srv.mount("hand-b", 1000).await;
    let (f, _) = lookup(&mut c, &root, "keep.txt").await.unwrap();
    let real = f.data.to_vec();
    // layout: version | view id (bytes 1..5) | handle type, length | kernel handle | mac (16)
    assert!(
        real.len() > 7 + 16 && real.len() <= 64,
        "handle of {} bytes",
        real.len()
    );
    let kernel_last = real.len() - 16 - 1;

    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    cases.push((
        "random 40 bytes".into(),
        rand::random::<[u8; 40]>().to_vec(),
    ));
    for i in 1..5 {
        let mut h = real.clone();
        h[i] ^= 0x01;
        cases.push((format!("view id byte {i} flipped"), h));
    }
    let mut h = real.clone();
    h[kernel_last] ^= 0x01;
    cases.push(("kernel handle byte flipped".into(), h));
    // every single bit flip of every byte, whatever the layout
    for i in 0..real.len() {
        for bit in [0x01u8, 0x80] {
            let mut h = real.clone();
            h[i] ^= bit;
            cases.push((format!("byte {i} ^ {bit:#04x}"), h));
        }
    }
    let mut h = root.data.to_vec();
    h[1..5].copy_from_slice(&broot.data[1..5]);
    cases.push(("A's root with B's view id".into(), h));
    let mut h = broot.data.to_vec();
    h[1..5].copy_from_slice(&root.data[1..5]);
    cases.push(("B's root with A's view id".into(), h));
    cases.push(("truncated".into(), real[..real.len() - 1].to_vec()));
    cases.push(("empty".into(), Vec::new()));
    cases.push(("65 bytes".into(), vec![1; 65]));
    cases.push(("real handle padded to 65 bytes".into(), {
        let mut h = real.clone();
        h.resize(65, 0);
        h
    }));
    cases.push(("1 KiB".into(), vec![1; 1024]));

    // handles over the NFSv3 limit of 64 bytes violate the XDR of nfs_fh3: GARBAGE_ARGS, an RPC
    // error, before anything is decoded; the rest are refused as forgeries
    for (what, bytes) in cases {
        let oversized = bytes.len() > 64;
        let h = fh(bytes);
        let got = getattr_any(&mut c, &h).await;
        if oversized {
            assert!(got.is_err(), "{what}: {got:?}");
        } else {
            assert_eq!(got, Ok(Err(nfsstat3::NFS3ERR_BADHANDLE)), "{what}");
        }
    }

    // forged handles in the other argument positions change nothing
    let mut bad = real.clone();
    bad[12] ^= 0x40;
    let bad = fh(bad);
    assert_eq!(
        write(&mut c, &bad, 0, b"overwritten", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_BADHANDLE)
    );
    assert_eq!(
        read(&mut c, &bad, 0, 10).await,
        Err(nfsstat3::NFS3ERR_BADHANDLE)
    );
    assert_eq!(
        create(&mut c, &bad, "x", 0o644).await.err(),
        Some(nfsstat3::NFS3ERR_BADHANDLE)
    );
    assert_eq!(
        lookup(&mut c, &bad, "keep.txt").await.err(),
        Some(nfsstat3::NFS3ERR_BADHANDLE)
    );
    assert_eq!(
        list(&mut c, &bad, 4096, true).await,
        Err(nfsstat3::NFS3ERR_BADHANDLE)
    );
    assert_eq!(
        rename_b(&mut c, &root, b"keep.txt", &bad, b"stolen").await,
        Err(nfsstat3::NFS3ERR_BADHANDLE)
    );
    assert_eq!(
        link_b(&mut c, &bad, &root, b"alias").await,
        Err(nfsstat3::NFS3ERR_BADHANDLE)
    );
    assert_eq!(
        setattr(
            &mut c,
            &bad,
            sattr3 {
                size: Nfs3Option::Some(0),
                ..Default::default()
            }
        )
        .await,
        Err(nfsstat3::NFS3ERR_BADHANDLE)
    );
    // real handles of two views in one call are XDEV, not a way across
    assert_eq!(
        rename_b(&mut c, &root, b"keep.txt", &broot, b"stolen").await,
        Err(nfsstat3::NFS3ERR_XDEV)
    );
    assert_eq!(
        link_b(&mut c, &f, &broot, b"alias").await,
        Err(nfsstat3::NFS3ERR_XDEV)
    );
    assert_eq!(
        list(&mut b, &broot, 4096, false).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        tree_names(&srv.dir.join("volumes/hand-a")),
        vec!["keep.txt"]
    );
    still_serves(&srv, "hand-a").await;
}

#[tokio::test]
async fn handles_of_a_removed_volume_are_stale() {
    let (srv, mut c, root) = setup("gone").await;
    let (f, _) = lookup(&mut c, &root, "keep.txt").await.unwrap();
    let sub = mkdir(&mut c, &root, "sub", 0o755).await.unwrap();
    let moved = srv.running().volumes.remove("gone").await.unwrap();
    let moved_to = srv
        .dir
        .join(moved.tree_moved_to.expect("a home tree is moved aside"));

    for (what, h) in [("root", &root), ("file", &f), ("dir", &sub)] {
        assert_eq!(
            getattr_any(&mut c, h).await,
            Ok(Err(nfsstat3::NFS3ERR_STALE)),
            "{what}"
        );
    }
    assert_eq!(read(&mut c, &f, 0, 100).await, Err(nfsstat3::NFS3ERR_STALE));
    assert_eq!(
        write(&mut c, &f, 0, b"x", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(
        create(&mut c, &root, "new", 0o644).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(
        lookup(&mut c, &root, "keep.txt").await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );

    // a new volume of the same name is a new view: the old handles stay stale
    srv.volume("gone", None, UID, GID).await;
    for h in [&root, &f, &sub] {
        assert_eq!(
            getattr_any(&mut c, h).await,
            Ok(Err(nfsstat3::NFS3ERR_STALE))
        );
    }
    let (mut c2, root2) = srv.mount("gone", 1000).await;
    assert_ne!(root2, root);
    assert_eq!(
        list(&mut c2, &root2, 4096, false).await.unwrap(),
        Vec::<String>::new()
    );
    // the moved-aside tree still holds the data
    assert_eq!(std::fs::read(moved_to.join("keep.txt")).unwrap(), KEEP);
}

// ---------------------------------------------------------------------------------------------
// leaving the view: `..` and symlinks

#[tokio::test]
async fn dotdot_never_leaves_the_view() {
    let (srv, mut c, root) = setup("dots").await;
    srv.volume("dots-share", Some("dots-tree"), UID, GID).await;
    let root_attr = getattr(&mut c, &root).await.unwrap();
    let tree_ino = std::fs::metadata(srv.dir.join("volumes/dots"))
        .unwrap()
        .ino();
    assert_eq!(root_attr.fileid, tree_ino);

    // `..` of the root is the root
    let (up, up_attr) = lookup(&mut c, &root, "..").await.unwrap();
    assert_eq!(up_attr.fileid, root_attr.fileid);
    assert_eq!(up, root, "`..` of the root gives the root's own handle");
    // twice, for good measure
    let (up2, up2_attr) = lookup(&mut c, &up, "..").await.unwrap();
    assert_eq!((up2, up2_attr.fileid), (root.clone(), root_attr.fileid));
    // `.` of the root too
    let (dot, _) = lookup(&mut c, &root, ".").await.unwrap();
    assert_eq!(dot, root);

    // `..` of a subdirectory is the root; of a deeper one, its parent
    let sub = mkdir(&mut c, &root, "sub", 0o755).await.unwrap();
    let deeper = mkdir(&mut c, &sub, "deeper", 0o755).await.unwrap();
    let sub_attr = getattr(&mut c, &sub).await.unwrap();
    let (p, pa) = lookup(&mut c, &sub, "..").await.unwrap();
    assert_eq!((p, pa.fileid), (root.clone(), root_attr.fileid));
    let (p, pa) = lookup(&mut c, &deeper, "..").await.unwrap();
    assert_eq!((p.clone(), pa.fileid), (sub.clone(), sub_attr.fileid));
    let (pp, ppa) = lookup(&mut c, &p, "..").await.unwrap();
    assert_eq!((pp, ppa.fileid), (root.clone(), root_attr.fileid));

    // READDIR of the root shows `..` as the root itself
    let ids = readdir_ids(&mut c, &root).await;
    let dotdot = ids.iter().find(|(n, _)| n == "..").expect("`..` entry");
    assert_eq!(dotdot.1, root_attr.fileid);
    assert!(ids.iter().all(|(n, _)| n != "volumes" && n != "dots-tree"));

    // the same at the root of a shared tree
    let (mut s, sroot) = srv.mount("dots-share", 1000).await;
    let sattr = getattr(&mut s, &sroot).await.unwrap();
    let (sup, supa) = lookup(&mut s, &sroot, "..").await.unwrap();
    assert_eq!((sup, supa.fileid), (sroot.clone(), sattr.fileid));
    still_serves(&srv, "dots").await;
}

/// A directory outside every tree, with a file nothing may touch.
fn decoy(srv: &Server) -> std::path::PathBuf {
    let outside = srv.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"outside secret").unwrap();
    std::fs::set_permissions(
        outside.join("victim"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    outside
}

fn assert_decoy_intact(outside: &Path) {
    let victim = outside.join("victim");
    assert_eq!(std::fs::read(&victim).unwrap(), b"outside secret");
    let md = std::fs::metadata(&victim).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o666);
    assert_eq!((md.uid(), md.gid()), (0, 0));
    assert_eq!(
        tree_names(outside),
        vec!["victim"],
        "something was created outside the tree"
    );
}

#[tokio::test]
async fn client_symlinks_are_stored_but_never_followed() {
    let (srv, mut c, root) = setup("links").await;
    let outside = decoy(&srv);
    let passwd_before = std::fs::read("/etc/passwd").unwrap();

    let link = symlink(&mut c, &root, b"link", b"/etc/passwd")
        .await
        .unwrap();
    let attr = getattr(&mut c, &link).await.unwrap();
    assert_eq!(attr.type_, ftype3::NF3LNK);
    assert_eq!(readlink(&mut c, &link).await.unwrap(), b"/etc/passwd");
    let on_disk = srv.dir.join("volumes/links/link");
    assert_eq!(
        std::fs::read_link(&on_disk).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(owner(&on_disk), (UID, GID));
    // READ of the link's handle does not read /etc/passwd
    assert_eq!(
        read(&mut c, &link, 0, 4096).await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    // nor can the link be used as a directory (the exact status is checked by
    // `symlink_handles_used_as_directories_are_notdir`)
    not_a_dir(
        lookup(&mut c, &link, "x").await.map(drop),
        "LOOKUP in a link",
    );
    assert_eq!(
        lookup(&mut c, &root, "link/x").await.err(),
        Some(nfsstat3::NFS3ERR_INVAL)
    );
    not_a_dir(
        list(&mut c, &link, 4096, false).await.map(drop),
        "READDIR of a link",
    );
    not_a_dir(
        create(&mut c, &link, "x", 0o644).await.map(drop),
        "CREATE in a link",
    );

    // a link to the decoy: writes, truncation, chmod and times never reach the target
    let dlink = symlink(
        &mut c,
        &root,
        b"dlink",
        outside.join("victim").as_os_str().as_encoded_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(
        write(&mut c, &dlink, 0, b"pwned", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        setattr(
            &mut c,
            &dlink,
            sattr3 {
                size: Nfs3Option::Some(0),
                ..Default::default()
            }
        )
        .await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    let _ = setattr(
        &mut c,
        &dlink,
        sattr3 {
            mode: Nfs3Option::Some(0o4777),
            atime: set_atime::SET_TO_CLIENT_TIME(nfstime3 {
                seconds: 1,
                nseconds: 0,
            }),
            mtime: set_mtime::SET_TO_CLIENT_TIME(nfstime3 {
                seconds: 1,
                nseconds: 0,
            }),
            ..Default::default()
        },
    )
    .await;
    // CREATE over the link name must not create or open the target
    create(&mut c, &root, "dlink", 0o644).await.unwrap_err();
    // a dangling link to a new name outside: CREATE must not make that file
    symlink(
        &mut c,
        &root,
        b"dangling",
        outside
            .join("planted-by-client")
            .as_os_str()
            .as_encoded_bytes(),
    )
    .await
    .unwrap();
    create(&mut c, &root, "dangling", 0o644).await.unwrap_err();
    mkdir(&mut c, &root, "dangling", 0o755).await.unwrap_err();
    // hard-linking the symlink and removing it touch only the tree
    let _ = link_b(&mut c, &dlink, &root, b"dlink2").await;
    remove_b(&mut c, &root, b"dlink").await.unwrap();
    let _ = remove_b(&mut c, &root, b"dlink2").await;

    assert_decoy_intact(&outside);
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd_before);
    still_serves(&srv, "links").await;
}

/// Using a symlink's handle as a directory must fail. NOTDIR is what RFC 1813 and knfsd answer;
/// INVAL is tolerated here (it leaks nothing) and refused by the dedicated test below.
fn not_a_dir(r: Result<(), nfsstat3>, what: &str) {
    assert!(
        matches!(r, Err(nfsstat3::NFS3ERR_NOTDIR | nfsstat3::NFS3ERR_INVAL)),
        "{what}: {r:?}"
    );
}

/// RFC 1813: a directory operation on a non-directory is NFS3ERR_NOTDIR (knfsd maps a symlink
/// given as a directory to NOTDIR too). Clients rely on it (`ENOTDIR` for `cat link/x`).
#[tokio::test]
async fn symlink_handles_used_as_directories_are_notdir() {
    let (srv, mut c, root) = setup("notdir").await;
    std::os::unix::fs::symlink("/etc", srv.dir.join("volumes/notdir/etc")).unwrap();
    let client_link = symlink(&mut c, &root, b"link", b"/etc/passwd")
        .await
        .unwrap();
    let (planted, _) = lookup(&mut c, &root, "etc").await.unwrap();
    let (file, _) = lookup(&mut c, &root, "keep.txt").await.unwrap();
    let mut got = Vec::new();
    for (what, h) in [
        ("client link", &client_link),
        ("planted link", &planted),
        ("regular file", &file),
    ] {
        got.push((what, "LOOKUP", lookup(&mut c, h, "passwd").await.err()));
        got.push((what, "READDIR", list(&mut c, h, 4096, false).await.err()));
        got.push((what, "READDIRPLUS", list(&mut c, h, 4096, true).await.err()));
        got.push((what, "CREATE", create(&mut c, h, "x", 0o644).await.err()));
        got.push((what, "MKDIR", mkdir(&mut c, h, "x", 0o755).await.err()));
    }
    let wrong: Vec<_> = got
        .into_iter()
        .filter(|(_, _, s)| *s != Some(nfsstat3::NFS3ERR_NOTDIR))
        .collect();
    assert!(wrong.is_empty(), "expected NFS3ERR_NOTDIR, got: {wrong:?}");
    still_serves(&srv, "notdir").await;
}

#[tokio::test]
async fn storage_side_symlinks_are_never_followed() {
    let (srv, mut c, root) = setup("planted").await;
    let outside = decoy(&srv);
    let tree = srv.dir.join("volumes/planted");
    std::os::unix::fs::symlink("/etc", tree.join("etc")).unwrap();
    std::os::unix::fs::symlink("../../..", tree.join("up")).unwrap();
    std::os::unix::fs::symlink(&outside, tree.join("outdir")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), tree.join("victim")).unwrap();
    std::os::unix::fs::symlink(outside.join("new-file"), tree.join("dangling")).unwrap();

    // LOOKUP gives the link itself
    let (etc, etc_attr) = lookup(&mut c, &root, "etc").await.unwrap();
    assert_eq!(etc_attr.type_, ftype3::NF3LNK);
    assert_eq!(readlink(&mut c, &etc).await.unwrap(), b"/etc");
    // and nothing behind it (the exact status is checked by
    // `symlink_handles_used_as_directories_are_notdir`)
    not_a_dir(
        lookup(&mut c, &etc, "passwd").await.map(drop),
        "LOOKUP passwd in /etc link",
    );
    not_a_dir(
        lookup(&mut c, &etc, "..").await.map(drop),
        "LOOKUP .. in /etc link",
    );
    not_a_dir(
        list(&mut c, &etc, 4096, true).await.map(drop),
        "READDIRPLUS of /etc link",
    );
    assert_eq!(
        read(&mut c, &etc, 0, 4096).await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        lookup(&mut c, &root, "etc/passwd").await.err(),
        Some(nfsstat3::NFS3ERR_INVAL)
    );
    for n in ["up", "outdir"] {
        let (h, a) = lookup(&mut c, &root, n).await.unwrap();
        assert_eq!(a.type_, ftype3::NF3LNK, "{n}");
        not_a_dir(lookup(&mut c, &h, "victim").await.map(drop), n);
        not_a_dir(create(&mut c, &h, "x", 0o644).await.map(drop), n);
        not_a_dir(mkdir(&mut c, &h, "x", 0o755).await.map(drop), n);
    }
    let (v, _) = lookup(&mut c, &root, "victim").await.unwrap();
    assert_eq!(
        read(&mut c, &v, 0, 4096).await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        write(&mut c, &v, 0, b"pwned", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_INVAL)
    );
    create(&mut c, &root, "victim", 0o644).await.unwrap_err();
    create(&mut c, &root, "dangling", 0o644).await.unwrap_err();
    // READDIRPLUS presents them as links, with the links' own attributes
    let page = c
        .readdirplus(&READDIRPLUS3args {
            dir: root.clone(),
            cookie: 0,
            cookieverf: cookieverf3::default(),
            dircount: 8192,
            maxcount: 65536,
        })
        .await
        .unwrap()
        .unwrap();
    for e in page.reply.entries.0 {
        let n = String::from_utf8(e.name.0.to_vec()).unwrap();
        if ["etc", "up", "outdir", "victim", "dangling"].contains(&n.as_str()) {
            match e.name_attributes {
                post_op_attr::Some(a) => assert_eq!(a.type_, ftype3::NF3LNK, "{n}"),
                post_op_attr::None => panic!("{n} without attributes"),
            }
        }
    }
    // removing a planted link removes the link only
    remove_b(&mut c, &root, b"victim").await.unwrap();
    remove_b(&mut c, &root, b"etc").await.unwrap();
    assert!(Path::new("/etc/passwd").exists());
    assert_decoy_intact(&outside);
    still_serves(&srv, "planted").await;
}

// ---------------------------------------------------------------------------------------------
// names

#[tokio::test]
async fn hostile_names_are_refused_and_create_nothing() {
    let (srv, mut c, root) = setup("names").await;
    let (keep, _) = lookup(&mut c, &root, "keep.txt").await.unwrap();
    let tree = srv.dir.join("volumes/names");
    let long = vec![b'x'; 300];
    let just_over = vec![b'y'; 256];
    let bad: Vec<(&str, &[u8], nfsstat3)> = vec![
        ("slash", b"a/b", nfsstat3::NFS3ERR_INVAL),
        ("leading slash", b"/etc", nfsstat3::NFS3ERR_INVAL),
        ("dotdot slash", b"../x", nfsstat3::NFS3ERR_INVAL),
        ("NUL", b"a\0b", nfsstat3::NFS3ERR_INVAL),
        ("empty", b"", nfsstat3::NFS3ERR_INVAL),
        ("300 bytes", &long, nfsstat3::NFS3ERR_NAMETOOLONG),
        ("256 bytes", &just_over, nfsstat3::NFS3ERR_NAMETOOLONG),
    ];
    for (what, n, want) in &bad {
        let want = Err(*want);
        assert_eq!(
            create_b(&mut c, &root, n).await.map(drop),
            want,
            "CREATE {what}"
        );
        assert_eq!(
            mkdir_b(&mut c, &root, n).await.map(drop),
            want,
            "MKDIR {what}"
        );
        assert_eq!(
            symlink(&mut c, &root, n, b"target").await.map(drop),
            want,
            "SYMLINK {what}"
        );
        assert_eq!(
            lookup_b(&mut c, &root, n).await.map(drop),
            want,
            "LOOKUP {what}"
        );
        assert_eq!(remove_b(&mut c, &root, n).await, want, "REMOVE {what}");
        assert_eq!(rmdir_b(&mut c, &root, n).await, want, "RMDIR {what}");
        assert_eq!(
            rename_b(&mut c, &root, b"keep.txt", &root, n).await,
            want,
            "RENAME to {what}"
        );
        assert_eq!(
            rename_b(&mut c, &root, n, &root, b"other").await,
            want,
            "RENAME from {what}"
        );
        assert_eq!(link_b(&mut c, &keep, &root, n).await, want, "LINK {what}");
    }
    for n in [&b"."[..], b".."] {
        let what = String::from_utf8_lossy(n);
        let inval = Err(nfsstat3::NFS3ERR_INVAL);
        assert_eq!(
            create_b(&mut c, &root, n).await.map(drop),
            inval,
            "CREATE {what}"
        );
        assert_eq!(
            mkdir_b(&mut c, &root, n).await.map(drop),
            inval,
            "MKDIR {what}"
        );
        assert_eq!(
            symlink(&mut c, &root, n, b"t").await.map(drop),
            inval,
            "SYMLINK {what}"
        );
        assert_eq!(remove_b(&mut c, &root, n).await, inval, "REMOVE {what}");
        assert_eq!(rmdir_b(&mut c, &root, n).await, inval, "RMDIR {what}");
        assert_eq!(
            rename_b(&mut c, &root, b"keep.txt", &root, n).await,
            inval,
            "RENAME to {what}"
        );
        assert_eq!(
            rename_b(&mut c, &root, n, &root, b"x").await,
            inval,
            "RENAME from {what}"
        );
        assert_eq!(link_b(&mut c, &keep, &root, n).await, inval, "LINK {what}");
    }
    assert_eq!(
        tree_names(&tree),
        vec!["keep.txt"],
        "a hostile name created something"
    );
    assert_eq!(tree_names(&srv.dir.join("volumes")), vec!["names"]);

    // the longest legal name works, and goes away again
    let max = "m".repeat(255);
    create(&mut c, &root, &max, 0o644).await.unwrap();
    assert!(tree.join(&max).exists());
    remove_b(&mut c, &root, max.as_bytes()).await.unwrap();
    assert_eq!(tree_names(&tree), vec!["keep.txt"]);
    still_serves(&srv, "names").await;
}

// ---------------------------------------------------------------------------------------------
// quota and read-only

const KIB: usize = 1024;

#[tokio::test]
async fn writes_past_the_quota_are_dquot() {
    let srv = Server::start().await;
    srv.volume_with("quota", None, UID, GID, Some(1 << 20), &[])
        .await;
    let (mut c, root) = srv.mount("quota", 1000).await;
    let f = create(&mut c, &root, "big", 0o644).await.unwrap();
    let first: Vec<u8> = (0..512 * KIB)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    write(&mut c, &f, 0, &first, stable_how::FILE_SYNC)
        .await
        .unwrap();

    // another MiB does not fit, wherever it goes
    let more = vec![0x5au8; 1 << 20];
    assert_eq!(
        write(&mut c, &f, 512 * KIB as u64, &more, stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_DQUOT)
    );
    let g = create(&mut c, &root, "other", 0o644).await.unwrap();
    assert_eq!(
        write(&mut c, &g, 0, &more, stable_how::UNSTABLE)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_DQUOT)
    );
    // FSSTAT reports the volume's own size and what is left of it
    let st = fsstat(&mut c, &root).await;
    assert_eq!(st.tbytes, 1 << 20);
    assert!(st.fbytes <= 512 * KIB as u64, "fbytes {}", st.fbytes);
    assert!(st.fbytes >= 400 * KIB as u64, "fbytes {}", st.fbytes);
    assert!(st.abytes <= st.fbytes);
    // the refused write left nothing behind, and the first 512 KiB are intact
    assert_eq!(getattr(&mut c, &f).await.unwrap().size, 512 * KIB as u64);
    let mut back = Vec::new();
    while back.len() < first.len() {
        let chunk = read(
            &mut c,
            &f,
            back.len() as u64,
            u32::try_from(128 * KIB).unwrap(),
        )
        .await
        .unwrap();
        assert!(!chunk.is_empty());
        back.extend(chunk);
    }
    assert_eq!(back, first);
    assert_eq!(
        std::fs::read(srv.dir.join("volumes/quota/big")).unwrap(),
        first
    );
    // what still fits is still accepted, and the volume goes on serving
    write(&mut c, &g, 0, &[7u8; 64 * KIB], stable_how::FILE_SYNC)
        .await
        .unwrap();
    assert_eq!(
        read(&mut c, &g, 0, u32::try_from(64 * KIB).unwrap())
            .await
            .unwrap(),
        vec![7u8; 64 * KIB]
    );
    // freeing space makes room again
    remove_b(&mut c, &root, b"big").await.unwrap();
    write(
        &mut c,
        &g,
        64 * KIB as u64,
        &[8u8; 512 * KIB],
        stable_how::FILE_SYNC,
    )
    .await
    .unwrap();
}

/// A sparse file must not be a way around the quota: growing it with SETATTR allocates nothing,
/// but WRITEs into the hole allocate real blocks.
#[tokio::test]
async fn quota_cannot_be_bypassed_with_a_sparse_file() {
    let srv = Server::start().await;
    srv.volume_with("sparse", None, UID, GID, Some(1 << 20), &[])
        .await;
    let (mut c, root) = srv.mount("sparse", 1000).await;
    let f = create(&mut c, &root, "holey", 0o644).await.unwrap();
    setattr(
        &mut c,
        &f,
        sattr3 {
            size: Nfs3Option::Some(64 << 20),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // four MiB of real data into the hole of a volume limited to one MiB
    let chunk = vec![0x33u8; 1 << 20];
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..4u64 {
        match write(&mut c, &f, i << 20, &chunk, stable_how::FILE_SYNC).await {
            Ok(_) => accepted += 1,
            Err(s) => {
                refused = Some(s);
                break;
            }
        }
    }
    let used = std::fs::metadata(srv.dir.join("volumes/sparse/holey"))
        .unwrap()
        .blocks()
        * 512;
    assert_eq!(
        refused,
        Some(nfsstat3::NFS3ERR_DQUOT),
        "{accepted} MiB written into a sparse file of a 1 MiB volume; {used} bytes allocated on disk"
    );
    assert!(used <= 1 << 20, "{used} bytes allocated in a 1 MiB volume");
}

#[tokio::test]
async fn readonly_volume_refuses_changes_and_serves_reads() {
    let srv = Server::start().await;
    // a tree with content, then a read-only view of it
    let tree = srv.dir.join("volumes/ro");
    std::fs::create_dir_all(tree.join("dir")).unwrap();
    std::fs::write(tree.join("data.txt"), b"read me").unwrap();
    for p in [tree.clone(), tree.join("dir"), tree.join("data.txt")] {
        std::os::unix::fs::chown(&p, Some(UID), Some(GID)).unwrap();
    }
    std::fs::set_permissions(
        tree.join("data.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&tree, std::fs::Permissions::from_mode(0o750)).unwrap();
    srv.running()
        .volumes
        .create(CreateVolume {
            name: "ro".into(),
            options: VolumeOptions {
                user: Some("u20001".into()),
                share: None,
                size: None,
                readonly: true,
                layout: None,
            },
            identity: Some(ExplicitIdentity {
                uid: UID,
                gid: GID,
                groups: vec![],
            }),
            client: None,
        })
        .await
        .unwrap();
    let (mut c, root) = srv.mount("ro", 1000).await;
    let (f, _) = lookup(&mut c, &root, "data.txt").await.unwrap();
    let (d, _) = lookup(&mut c, &root, "dir").await.unwrap();
    let rofs = Some(nfsstat3::NFS3ERR_ROFS);

    assert_eq!(read(&mut c, &f, 0, 100).await.unwrap(), b"read me");
    assert_eq!(
        list(&mut c, &root, 4096, true).await.unwrap().len(),
        2,
        "READDIRPLUS on a read-only volume"
    );
    assert_eq!(create(&mut c, &root, "new", 0o644).await.err(), rofs);
    assert_eq!(mkdir(&mut c, &root, "newdir", 0o755).await.err(), rofs);
    assert_eq!(symlink(&mut c, &root, b"l", b"data.txt").await.err(), rofs);
    assert_eq!(
        write(&mut c, &f, 0, b"changed", stable_how::FILE_SYNC)
            .await
            .err(),
        rofs
    );
    assert_eq!(remove_b(&mut c, &root, b"data.txt").await.err(), rofs);
    assert_eq!(rmdir_b(&mut c, &root, b"dir").await.err(), rofs);
    assert_eq!(
        rename_b(&mut c, &root, b"data.txt", &d, b"moved")
            .await
            .err(),
        rofs
    );
    assert_eq!(link_b(&mut c, &f, &d, b"alias").await.err(), rofs);
    assert_eq!(
        setattr(&mut c, &f, mode(0o777)).await.err(),
        rofs,
        "SETATTR mode"
    );
    assert_eq!(
        setattr(
            &mut c,
            &f,
            sattr3 {
                size: Nfs3Option::Some(0),
                ..Default::default()
            }
        )
        .await
        .err(),
        rofs,
        "SETATTR size"
    );
    // ACCESS grants no modification, FSSTAT no space
    let acc = c
        .access(&ACCESS3args {
            object: f.clone(),
            access: ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acc.access, ACCESS3_READ);
    assert_eq!(fsstat(&mut c, &root).await.abytes, 0);

    // nothing changed on disk
    assert_eq!(std::fs::read(tree.join("data.txt")).unwrap(), b"read me");
    assert_eq!(tree_names(&tree), vec!["data.txt", "dir"]);
    assert_eq!(tree_names(&tree.join("dir")), Vec::<String>::new());
    let md = std::fs::metadata(tree.join("data.txt")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o644);
    // and reads go on working
    assert_eq!(read(&mut c, &f, 5, 100).await.unwrap(), b"me");
}

/// Found by the `nfs_calls` fuzz target: an owner or group of -1 (`0xffffffff`) in SETATTR or
/// in the attributes of SYMLINK, CREATE, MKDIR or MKNOD panicked in rustix's `Uid::from_raw`
/// while the call acted as the view; on the multi-thread runtime nfsd runs on, the call was
/// never answered and a hard-mounted client retried it for good. It is `NFS3ERR_INVAL` now,
/// and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_or_group_of_minus_one_is_invalid_not_a_lost_call() {
    let (srv, mut c, root) = setup("ids").await;
    let (f, _) = lookup(&mut c, &root, "keep.txt").await.unwrap();
    let tree = srv.dir.join("volumes/ids");
    let before = owner(&tree.join("keep.txt"));
    for (uid, gid) in [(Some(u32::MAX), None), (None, Some(u32::MAX))] {
        let set = sattr3 {
            uid: uid.map_or(Nfs3Option::None, Nfs3Option::Some),
            gid: gid.map_or(Nfs3Option::None, Nfs3Option::Some),
            ..Default::default()
        };
        let r = tokio::time::timeout(Duration::from_secs(10), setattr(&mut c, &f, set.clone()))
            .await
            .expect("SETATTR with an id of -1 got no reply");
        assert_eq!(r, Err(nfsstat3::NFS3ERR_INVAL), "SETATTR {uid:?} {gid:?}");
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            c.symlink(&SYMLINK3args {
                where_: dirop(&root, "l"),
                symlink: symlinkdata3 {
                    symlink_attributes: set,
                    symlink_data: nfspath3(Opaque::owned(b"keep.txt".to_vec())),
                },
            }),
        )
        .await
        .expect("SYMLINK with an id of -1 got no reply")
        .unwrap();
        assert!(
            matches!(r, Nfs3Result::Err((nfsstat3::NFS3ERR_INVAL, _))),
            "SYMLINK {uid:?} {gid:?}: {r:?}"
        );
        // SYMLINK makes the link before it applies the attributes
        let _ = std::fs::remove_file(tree.join("l"));
    }
    assert_eq!(owner(&tree.join("keep.txt")), before);
    still_serves(&srv, "ids").await;
}
