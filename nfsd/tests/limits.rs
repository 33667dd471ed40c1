//! The listener's limits with real sockets: client allowlist, connection cap, idle timeout, and
//! back-pressure from the in-flight cap (deep pipelines are served, not refused; a client that
//! stops reading stalls only itself), and replies written by many tasks arriving whole.

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

/// An RPC NULL call (AUTH_NONE) to `prog` version `vers`, framed.
fn null_call_to(xid: u32, prog: u32, vers: u32) -> Vec<u8> {
    let words = [xid, 0, 2, prog, vers, 0, 0, 0, 0, 0];
    let body: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let mut f = (0x8000_0000u32 | u32::try_from(body.len()).unwrap())
        .to_be_bytes()
        .to_vec();
    f.extend(body);
    f
}

/// Reads `n` replies to NULL calls, checking that each is one whole record (last fragment, the
/// 24 bytes of an accepted SUCCESS reply with no verifier), and returns their xids.
async fn read_null_replies(rd: &mut (impl AsyncReadExt + Unpin), n: usize) -> Vec<u32> {
    let mut xids = Vec::with_capacity(n);
    for _ in 0..n {
        let mut mark = [0u8; 4];
        rd.read_exact(&mut mark).await.unwrap();
        let mark = u32::from_be_bytes(mark);
        assert_eq!(mark, 0x8000_0000 | 24, "a NULL reply is one 24-byte record");
        let mut body = [0u8; 24];
        rd.read_exact(&mut body).await.unwrap();
        assert_eq!(
            &body[4..24],
            &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        xids.push(u32::from_be_bytes(body[..4].try_into().unwrap()));
    }
    xids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_written_by_many_tasks_arrive_whole_and_all() {
    // NFS NULL is answered on the connection's task, MOUNT NULL in a task of its own: their
    // replies are written by different tasks, batched when ready together
    let (_d, r) = start_with(|s| s.limits.max_in_flight = 8).await;
    let mut s = TcpStream::connect(r.nfs_addr).await.unwrap();
    let mut all = Vec::new();
    for xid in 0..4000u32 {
        all.extend(if xid % 2 == 0 {
            null_call_to(xid, 100_003, 3)
        } else {
            null_call_to(xid, 100_005, 3)
        });
    }
    let (mut rd, mut wr) = s.split();
    let writer = async { wr.write_all(&all).await.unwrap() };
    let (_, xids) = tokio::join!(writer, read_null_replies(&mut rd, 4000));
    let seen: std::collections::HashSet<u32> = xids.into_iter().collect();
    assert_eq!(seen.len(), 4000, "every call answered exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_stalls_only_its_own_connection() {
    let (_d, r) = start_with(|s| s.limits.max_in_flight = 4).await;
    // far more replies than the socket buffers hold, and the client reads none of them yet
    const CALLS: u32 = 300_000;
    let hog = TcpStream::connect(r.nfs_addr).await.unwrap();
    let (mut hog_rd, mut hog_wr) = hog.into_split();
    let flood = tokio::spawn(async move {
        let mut all = Vec::new();
        for xid in 0..CALLS {
            all.extend(null_call_to(xid, 100_005, 3));
        }
        hog_wr.write_all(&all).await.unwrap();
        hog_wr
    });
    // the server answers 4 calls, cannot write their replies once the buffers are full, and
    // stops reading: 12 MB of calls cannot all be taken in (at 100k calls/s they would take
    // seconds even if it kept reading)
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !flood.is_finished(),
        "the server read all 300,000 calls of a client that reads nothing"
    );
    // meanwhile another client is served
    let mut other = TcpStream::connect(r.nfs_addr).await.unwrap();
    other.write_all(&null_call(7)).await.unwrap();
    let xid = tokio::time::timeout(Duration::from_secs(30), read_reply_xid(&mut other))
        .await
        .expect("another client waited for the one that does not read")
        .unwrap();
    assert_eq!(xid, 7);
    // once the hog reads, everything it sent is answered
    let xids = read_null_replies(&mut hog_rd, CALLS as usize).await;
    assert_eq!(xids.len(), CALLS as usize);
    let _hog_wr = flood.await.unwrap();
}
