//! A RENAME sent again after nfsd restarted, whose first copy had renamed the file, is answered
//! NFS3_OK as the first copy was, not NOENT (`fs::replay`). Found by `swarmhub-kill-nfsd guest`:
//! with nfsd killed under the autosave load, the Linux client resent RENAMEs in flight at the
//! kill and `mv` failed with "No such file or directory" although it had taken effect.
//! The calls go out as raw RPC records so that the resend carries the same XID, as the kernel
//! client's does.

mod common;

use std::net::SocketAddr;

use common::*;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, call_body, msg_body, opaque_auth, rpc_msg};
use nfs3_client::nfs3_types::xdr_codec::{Opaque, Pack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const U: (u32, u32) = (30002, 30000);

/// Sends RENAME `args` with `xid` on a fresh connection; returns the NFS status of the reply.
async fn rename_raw(addr: SocketAddr, xid: u32, args: &RENAME3args<'_, '_>) -> nfsstat3 {
    let msg = rpc_msg {
        xid,
        body: msg_body::CALL(call_body {
            rpcvers: 2,
            prog: 100_003,
            vers: 3,
            proc: 14,
            cred: opaque_auth::auth_unix(&auth_unix {
                stamp: 1,
                machinename: Opaque::borrowed(b"replay-test"),
                uid: 1000,
                gid: 100,
                gids: vec![],
            }),
            verf: opaque_auth::default(),
        }),
    };
    let mut body = Vec::new();
    msg.pack(&mut body).unwrap();
    args.pack(&mut body).unwrap();
    let len = u32::try_from(body.len()).unwrap();
    let mut rec = (len | 0x8000_0000).to_be_bytes().to_vec();
    rec.extend(body);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&rec).await.unwrap();
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await.unwrap();
    let n = usize::try_from(u32::from_be_bytes(h) & 0x7fff_ffff).unwrap();
    let mut reply = vec![0u8; n];
    s.read_exact(&mut reply).await.unwrap();
    let word = |i: usize| u32::from_be_bytes(reply[i * 4..i * 4 + 4].try_into().unwrap());
    // xid, REPLY, MSG_ACCEPTED, verifier (flavor, empty body), SUCCESS, then the NFS status
    assert_eq!(
        (word(0), word(1), word(2), word(4), word(5)),
        (xid, 1, 0, 0, 0),
        "not an accepted reply"
    );
    match word(6) {
        0 => nfsstat3::NFS3_OK,
        2 => nfsstat3::NFS3ERR_NOENT,
        other => panic!("RENAME answered status {other}"),
    }
}

#[tokio::test]
async fn a_rename_resent_after_a_restart_is_answered_as_the_first_copy_was() {
    let mut srv = Server::start().await;
    srv.volume("rr", None, U.0, U.1).await;
    let tree = srv.dir.join("volumes/rr");
    let (mut c, root) = srv.mount("rr", 1000).await;
    create(&mut c, &root, "nb.ipynb", 0o644).await.unwrap();
    create(&mut c, &root, ".nb.tmp", 0o644).await.unwrap();
    std::fs::write(tree.join(".nb.tmp"), "version 2").unwrap();
    let args = RENAME3args {
        from: dirop(&root, ".nb.tmp"),
        to: dirop(&root, "nb.ipynb"),
    };
    assert_eq!(
        rename_raw(srv.nfs_addr(), 7001, &args).await,
        nfsstat3::NFS3_OK
    );
    drop(c);

    // nfsd goes away before the client saw the reply; the client resends the same call
    srv.restart().await;
    assert_eq!(
        rename_raw(srv.nfs_addr(), 7001, &args).await,
        nfsstat3::NFS3_OK,
        "the resent RENAME (same XID) must be answered as the first copy was"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("nb.ipynb")).unwrap(),
        "version 2"
    );
    assert!(!tree.join(".nb.tmp").exists());

    // another call with the same arguments is a new rename of a missing file
    assert_eq!(
        rename_raw(srv.nfs_addr(), 7002, &args).await,
        nfsstat3::NFS3ERR_NOENT
    );
    // once the target is another file, even the old XID is NOENT: no blind OK
    let (mut c, root) = srv.mount("rr", 1000).await;
    create(&mut c, &root, ".nb2.tmp", 0o644).await.unwrap();
    let r = c
        .rename(&RENAME3args {
            from: dirop(&root, ".nb2.tmp"),
            to: dirop(&root, "nb.ipynb"),
        })
        .await
        .unwrap();
    assert!(matches!(r, Nfs3Result::Ok(_)), "{r:?}");
    assert_eq!(
        rename_raw(srv.nfs_addr(), 7001, &args).await,
        nfsstat3::NFS3ERR_NOENT
    );
}
