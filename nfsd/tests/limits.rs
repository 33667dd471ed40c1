//! The listener's limits with real sockets: client allowlist, connection cap, idle timeout, and
//! back-pressure from the in-flight cap (deep pipelines are served, not refused).

mod common;

use std::time::Duration;

use common::*;
use swarmhub_nfsd::server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An RPC NULL call to NFS v3 (AUTH_NONE), framed.
fn null_call(xid: u32) -> Vec<u8> {
    let words = [xid, 0, 2, 100_003, 3, 0, 0, 0, 0, 0];
    let body: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let mut f = (0x8000_0000u32 | u32::try_from(body.len()).unwrap())
        .to_be_bytes()
        .to_vec();
    f.extend(body);
    f
}

async fn read_reply_xid(s: &mut TcpStream) -> std::io::Result<u32> {
    let mut mark = [0u8; 4];
    s.read_exact(&mut mark).await?;
    let len = (u32::from_be_bytes(mark) & 0x7fff_ffff) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(u32::from_be_bytes(body[..4].try_into().unwrap()))
}

/// True when the server closed the connection (EOF or reset) within 5 s.
async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn start_with(
    tune: impl FnOnce(&mut swarmhub_nfsd::config::Settings),
) -> (tempfile::TempDir, server::Running) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    tune(&mut s);
    let r = server::start(s).await.unwrap();
    (dir, r)
}

#[tokio::test]
async fn clients_outside_the_allowlist_are_closed_on_accept() {
    let (_d, r) = start_with(|s| s.limits.allow = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let mut s = TcpStream::connect(r.nfs_addr).await.unwrap();
    let _ = s.write_all(&null_call(1)).await;
    assert!(
        closed(&mut s).await,
        "a loopback client must be refused by allow=10.0.0.0/8"
    );
    let (_d2, r2) = start_with(|s| s.limits.allow = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let mut s = TcpStream::connect(r2.nfs_addr).await.unwrap();
    s.write_all(&null_call(2)).await.unwrap();
    assert_eq!(read_reply_xid(&mut s).await.unwrap(), 2);
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_others_keep_working() {
    let (_d, r) = start_with(|s| s.limits.max_connections = 2).await;
    let mut a = TcpStream::connect(r.nfs_addr).await.unwrap();
    let mut b = TcpStream::connect(r.nfs_addr).await.unwrap();
    a.write_all(&null_call(1)).await.unwrap();
    b.write_all(&null_call(2)).await.unwrap();
    assert_eq!(read_reply_xid(&mut a).await.unwrap(), 1);
    assert_eq!(read_reply_xid(&mut b).await.unwrap(), 2);
    let mut c = TcpStream::connect(r.nfs_addr).await.unwrap();
    let _ = c.write_all(&null_call(3)).await;
    assert!(
        closed(&mut c).await,
        "third connection over max_connections=2"
    );
    // the two admitted connections are unaffected; closing one frees a place
    a.write_all(&null_call(4)).await.unwrap();
    assert_eq!(read_reply_xid(&mut a).await.unwrap(), 4);
    drop(b);
    let mut d = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut s = TcpStream::connect(r.nfs_addr).await.unwrap();
        let answered = s.write_all(&null_call(5)).await.is_ok()
            && matches!(
                tokio::time::timeout(Duration::from_millis(500), read_reply_xid(&mut s)).await,
                Ok(Ok(5))
            );
        if answered {
            d = Some(s);
            break;
        }
    }
    assert!(
        d.is_some(),
        "a place freed by a closed connection is reused"
    );
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let (_d, r) = start_with(|s| s.limits.idle_timeout = Duration::from_millis(300)).await;
    let mut s = TcpStream::connect(r.nfs_addr).await.unwrap();
    s.write_all(&null_call(1)).await.unwrap();
    assert_eq!(read_reply_xid(&mut s).await.unwrap(), 1);
    assert!(
        closed(&mut s).await,
        "idle connection must be closed after idle_timeout"
    );
    // a peer that sends half a record and stalls is closed too
    let mut s = TcpStream::connect(r.nfs_addr).await.unwrap();
    s.write_all(&(0x8000_0000u32 | 40).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&[0u8; 10]).await.unwrap();
    assert!(
        closed(&mut s).await,
        "a stalled partial record must not hold the connection"
    );
}

#[tokio::test]
async fn deep_pipelines_are_served_not_refused() {
    let (_d, r) = start_with(|s| s.limits.max_in_flight = 4).await;
    let mut s = TcpStream::connect(r.nfs_addr).await.unwrap();
    // 1000 calls written at once: the server stops reading at 4 in flight, never errors
    let mut all = Vec::new();
    for xid in 0..1000u32 {
        all.extend(null_call(xid));
    }
    let (mut rd, mut wr) = s.split();
    let writer = async {
        wr.write_all(&all).await.unwrap();
    };
    let reader = async {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let mut mark = [0u8; 4];
            rd.read_exact(&mut mark).await.unwrap();
            let len = (u32::from_be_bytes(mark) & 0x7fff_ffff) as usize;
            let mut body = vec![0u8; len];
            rd.read_exact(&mut body).await.unwrap();
            let xid = u32::from_be_bytes(body[..4].try_into().unwrap());
            // accept_stat SUCCESS (0) at offset 20 of an AUTH_NONE accepted reply
            assert_eq!(&body[20..24], &[0, 0, 0, 0], "xid {xid} not SUCCESS");
            seen.insert(xid);
        }
        seen
    };
    let (_, seen) = tokio::join!(writer, reader);
    assert_eq!(seen.len(), 1000);
}
