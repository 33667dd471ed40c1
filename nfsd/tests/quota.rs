//! Quotas through a running nfsd and a real NFSv3 client: a home's size in FSSTAT and in refused
//! WRITEs, other volumes unaffected, room again after a remove, counts that match the disk and
//! survive a restart, concurrent writers that cannot overshoot, and per-user sizes in a shared
//! tree (one student cannot fill the exchange for the others).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use nfs3_client::nfs3_types::nfs3::*;

const MIB: u64 = 1 << 20;
const CHUNK: usize = 64 * 1024;

/// Writes `total` bytes to a new file `name` in 64 KiB WRITEs until one is refused; returns the
/// bytes accepted and the refusal.
async fn fill(c: &mut Client, dir: &nfs_fh3, name: &str, total: u64) -> (u64, Option<nfsstat3>) {
    let f = create(c, dir, name, 0o644).await.unwrap();
    let chunk = vec![0xa5u8; CHUNK];
    let mut done = 0u64;
    while done < total {
        match write(c, &f, done, &chunk, stable_how::UNSTABLE).await {
            Ok(_) => done += CHUNK as u64,
            Err(s) => return (done, Some(s)),
        }
    }
    (done, None)
}

async fn remove(c: &mut Client, dir: &nfs_fh3, name: &str) {
    let r = c
        .remove(&REMOVE3args {
            object: dirop(dir, name),
        })
        .await
        .unwrap();
    assert!(matches!(r, Nfs3Result::Ok(_)), "remove {name}");
}

/// Bytes allocated under `dir` (all owners, or only `uid`'s).
fn on_disk(dir: &Path, uid: Option<u32>) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let md = std::fs::symlink_metadata(&d).unwrap();
        if uid.is_none_or(|u| md.uid() == u) {
            total += md.blocks() * 512;
        }
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else if uid.is_none_or(|u| md.uid() == u) {
                total += md.blocks() * 512;
            }
        }
    }
    total
}

fn used(srv: &Server, name: &str) -> u64 {
    srv.running()
        .volumes
        .get(name)
        .unwrap()
        .used_bytes
        .expect("a volume with a size is counted")
}

#[tokio::test]
async fn a_home_is_limited_to_its_size_and_others_are_not() {
    let mut srv = Server::start().await;
    srv.volume_with("home-a", None, 30001, 30000, Some(MIB), &[])
        .await;
    srv.volume_with("home-b", None, 30002, 30000, Some(MIB), &[])
        .await;
    let (mut a, ra) = srv.mount("home-a", 1000).await;
    let (mut b, rb) = srv.mount("home-b", 1000).await;

    // df shows the size
    let st = fsstat(&mut a, &ra).await;
    assert_eq!(st.tbytes, MIB);
    assert!(
        st.fbytes > MIB - 64 * 1024 && st.abytes == st.fbytes,
        "{st:?}"
    );

    // 2 MiB into a 1 MiB home: refused with DQUOT after about 1 MiB
    let (done, refused) = fill(&mut a, &ra, "big", 2 * MIB).await;
    assert_eq!(
        refused,
        Some(nfsstat3::NFS3ERR_DQUOT),
        "{done} bytes accepted"
    );
    assert!(
        (MIB - 128 * 1024..=MIB).contains(&done),
        "{done} bytes accepted"
    );
    let tree_a = srv.dir.join("volumes/home-a");
    assert_eq!(std::fs::metadata(tree_a.join("big")).unwrap().len(), done);
    // what nfsd counts is what the disk holds
    assert_eq!(used(&srv, "home-a"), on_disk(&tree_a, None));
    assert!(fsstat(&mut a, &ra).await.abytes < 128 * 1024);

    // the other home is not affected
    let (done_b, refused_b) = fill(&mut b, &rb, "mine", MIB - 128 * 1024).await;
    assert_eq!((done_b, refused_b), (MIB - 128 * 1024, None));

    // the count survives a restart (the tree is walked again) and still refuses
    let before = used(&srv, "home-a");
    drop((a, b));
    srv.restart().await;
    assert_eq!(used(&srv, "home-a"), before);
    let (mut a, ra) = srv.mount("home-a", 1000).await;
    let (_, refused) = fill(&mut a, &ra, "more", MIB).await;
    assert_eq!(refused, Some(nfsstat3::NFS3ERR_DQUOT));

    // removing files makes room again
    remove(&mut a, &ra, "big").await;
    remove(&mut a, &ra, "more").await;
    assert_eq!(used(&srv, "home-a"), on_disk(&tree_a, None));
    let (done, refused) = fill(&mut a, &ra, "again", MIB - 128 * 1024).await;
    assert_eq!((done, refused), (MIB - 128 * 1024, None));
    assert_eq!(used(&srv, "home-a"), on_disk(&tree_a, None));
}

/// Many WRITEs in flight at once (as a kernel client sends them) must not all pass the check
/// before any of them is counted.
#[tokio::test]
async fn concurrent_writers_cannot_overshoot_the_size() {
    let srv = Server::start().await;
    srv.volume_with("home-c", None, 30003, 30000, Some(MIB), &[])
        .await;
    let mut tasks = Vec::new();
    let export = srv.export("home-c");
    for i in 0..8 {
        let addr = srv.nfs_addr();
        let export = export.clone();
        tasks.push(tokio::spawn(async move {
            let (mut c, root) = mount_at(addr, &export, 1000).await;
            fill(&mut c, &root, &format!("f{i}"), MIB).await
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        let (done, refused) = t.await.unwrap();
        assert_eq!(refused, Some(nfsstat3::NFS3ERR_DQUOT));
        accepted += done;
    }
    let tree = srv.dir.join("volumes/home-c");
    let disk = on_disk(&tree, None);
    assert!(
        accepted <= MIB && disk <= MIB,
        "{accepted} accepted, {disk} on disk"
    );
    assert_eq!(used(&srv, "home-c"), disk);
}

/// In a shared tree a view's size limits that user's own bytes: a student who fills his share
/// of the exchange does not stop another student's submission, and the teacher's view without
/// a size is bounded only by the disk.
#[tokio::test]
async fn one_student_cannot_fill_the_exchange() {
    let mut srv = Server::start().await;
    srv.volume_with("exchange-a", Some("exchange"), 30011, 30000, Some(MIB), &[])
        .await;
    srv.volume_with("exchange-b", Some("exchange"), 30012, 30000, Some(MIB), &[])
        .await;
    srv.volume_with("exchange-t", Some("exchange"), 30013, 30000, None, &[])
        .await;
    let (mut a, ra) = srv.mount("exchange-a", 1000).await;
    let (mut b, rb) = srv.mount("exchange-b", 1000).await;
    let (mut t, rt) = srv.mount("exchange-t", 1000).await;
    // the share root belongs to nfsd: everyone writes in a directory made through the API
    srv.share_dir("exchange", "course", (30013, 30000), 0o1777)
        .await;
    let (da, _) = lookup(&mut a, &ra, "course").await.unwrap();
    let (db, _) = lookup(&mut b, &rb, "course").await.unwrap();
    let (dt, _) = lookup(&mut t, &rt, "course").await.unwrap();

    assert_eq!(fsstat(&mut a, &ra).await.tbytes, MIB);
    let (done_a, refused) = fill(&mut a, &da, "a-sub", 2 * MIB).await;
    assert_eq!(refused, Some(nfsstat3::NFS3ERR_DQUOT), "{done_a} accepted");
    assert!(done_a >= MIB - 128 * 1024, "{done_a} accepted");
    assert!(fsstat(&mut a, &ra).await.abytes < 128 * 1024);

    // B still has his whole MiB, and df says so
    let st = fsstat(&mut b, &rb).await;
    assert_eq!(st.tbytes, MIB);
    assert!(st.abytes > MIB - 64 * 1024, "{st:?}");
    let (done_b, refused_b) = fill(&mut b, &db, "b-sub", MIB - 128 * 1024).await;
    assert_eq!((done_b, refused_b), (MIB - 128 * 1024, None));

    // the teacher's view has no size of its own
    let (done_t, refused_t) = fill(&mut t, &dt, "release", 2 * MIB).await;
    assert_eq!((done_t, refused_t), (2 * MIB, None));

    // each count matches the bytes its owner holds on disk, also after a restart
    let tree = srv.dir.join("shares/exchange");
    assert_eq!(used(&srv, "exchange-a"), on_disk(&tree, Some(30011)));
    assert_eq!(used(&srv, "exchange-b"), on_disk(&tree, Some(30012)));
    drop((a, b, t));
    srv.restart().await;
    assert_eq!(used(&srv, "exchange-a"), on_disk(&tree, Some(30011)));
    let (mut a, ra) = srv.mount("exchange-a", 1000).await;
    let (da, _) = lookup(&mut a, &ra, "course").await.unwrap();
    let (_, refused) = fill(&mut a, &da, "a-more", MIB).await;
    assert_eq!(refused, Some(nfsstat3::NFS3ERR_DQUOT));

    // A deletes and can submit again
    remove(&mut a, &da, "a-sub").await;
    remove(&mut a, &da, "a-more").await;
    let (done, refused) = fill(&mut a, &da, "a-sub2", MIB - 128 * 1024).await;
    assert_eq!((done, refused), (MIB - 128 * 1024, None));
    assert_eq!(used(&srv, "exchange-a"), on_disk(&tree, Some(30011)));
}

/// A size given to an existing volume applies at once (the hub's home_size may change).
#[tokio::test]
async fn a_new_size_applies_to_an_existing_volume() {
    let srv = Server::start().await;
    srv.volume_with("home-d", None, 30004, 30000, None, &[])
        .await;
    let (mut c, root) = srv.mount("home-d", 1000).await;
    let (done, refused) = fill(&mut c, &root, "before", MIB).await;
    assert_eq!((done, refused), (MIB, None));
    srv.volume_with("home-d", None, 30004, 30000, Some(MIB + MIB / 2), &[])
        .await;
    assert_eq!(fsstat(&mut c, &root).await.tbytes, MIB + MIB / 2);
    let (done, refused) = fill(&mut c, &root, "after", MIB).await;
    assert_eq!(refused, Some(nfsstat3::NFS3ERR_DQUOT));
    assert!(done <= MIB / 2, "{done} accepted");
    let tree = srv.dir.join("volumes/home-d");
    assert_eq!(used(&srv, "home-d"), on_disk(&tree, None));
}
