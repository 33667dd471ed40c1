//! The descriptors nfsd keeps open by handle (`fs::open_files`) never keep a removed file alive,
//! through a real NFS client: a REMOVE, a RENAME over a file, a removal on the storage node
//! itself, and a hard link that loses one of its names. The server runs in this test's process,
//! so `/proc/self/fd` shows what it holds. One test in its own binary: no other test's
//! descriptors are in the count.

mod common;

use common::*;
use nfs3_client::nfs3_types::nfs3::*;
use std::path::Path;

const U: (u32, u32) = (30001, 30000);

/// Descriptors this process holds on files under `tree` that have no name any more.
fn deleted_held(tree: &Path) -> Vec<String> {
    let tree = tree.to_string_lossy().to_string();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().to_string())
        .filter(|p| p.starts_with(&tree) && p.ends_with(" (deleted)"))
        .collect()
}

async fn remove(c: &mut Client, dir: &nfs_fh3, n: &str) -> Result<(), nfsstat3> {
    match c
        .remove(&REMOVE3args {
            object: dirop(dir, n),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(_) => Ok(()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_descriptors_never_hold_a_removed_file() {
    let srv = Server::start().await;
    srv.volume("v", None, U.0, U.1).await;
    let tree = srv.dir.join("volumes/v");
    let (mut c, root) = srv.mount("v", 1000).await;
    let mib = vec![7u8; 1 << 20];

    // written and read through NFS (kept open), then removed through NFS: closed at once
    let f = create(&mut c, &root, "big", 0o644).await.unwrap();
    write(&mut c, &f, 0, &mib, stable_how::UNSTABLE)
        .await
        .unwrap();
    assert_eq!(read(&mut c, &f, 0, 16).await.unwrap(), vec![7u8; 16]);
    remove(&mut c, &root, "big").await.unwrap();
    assert_eq!(deleted_held(&tree), Vec::<String>::new(), "after REMOVE");
    assert_eq!(
        getattr(&mut c, &f).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(
        write(&mut c, &f, 0, b"x", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_STALE),
        "a write to a removed file is refused, not lost in an unlinked inode"
    );

    // removed on the storage node, behind nfsd's back: the next call answers STALE and lets go
    let g = create(&mut c, &root, "g", 0o644).await.unwrap();
    write(&mut c, &g, 0, &mib, stable_how::UNSTABLE)
        .await
        .unwrap();
    std::fs::remove_file(tree.join("g")).unwrap();
    assert_eq!(deleted_held(&tree).len(), 1, "kept until used or idle");
    assert_eq!(
        getattr(&mut c, &g).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(deleted_held(&tree), Vec::<String>::new(), "after STALE");

    // RENAME over a kept file closes the file it replaced; the renamed one stays usable
    let a = create(&mut c, &root, "a", 0o644).await.unwrap();
    write(&mut c, &a, 0, b"old", stable_how::FILE_SYNC)
        .await
        .unwrap();
    let b = create(&mut c, &root, "b", 0o644).await.unwrap();
    write(&mut c, &b, 0, b"new", stable_how::FILE_SYNC)
        .await
        .unwrap();
    let r = c
        .rename(&RENAME3args {
            from: dirop(&root, "b"),
            to: dirop(&root, "a"),
        })
        .await
        .unwrap();
    assert!(matches!(r, Nfs3Result::Ok(_)), "{r:?}");
    assert_eq!(deleted_held(&tree), Vec::<String>::new(), "after RENAME");
    assert_eq!(
        getattr(&mut c, &a).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(read(&mut c, &b, 0, 16).await.unwrap(), b"new");
    assert_eq!(std::fs::read(tree.join("a")).unwrap(), b"new");

    // a hard link keeps the inode: removing one name leaves it open and readable
    std::fs::hard_link(tree.join("a"), tree.join("a2")).unwrap();
    remove(&mut c, &root, "a").await.unwrap();
    assert_eq!(read(&mut c, &b, 0, 16).await.unwrap(), b"new");
    assert_eq!(getattr(&mut c, &b).await.unwrap().nlink, 1);
    remove(&mut c, &root, "a2").await.unwrap();
    assert_eq!(deleted_held(&tree), Vec::<String>::new(), "last name gone");
    assert_eq!(
        getattr(&mut c, &b).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );

    // a removed directory's handle is STALE too
    let d = mkdir(&mut c, &root, "d", 0o755).await.unwrap();
    create(&mut c, &d, "inside", 0o644).await.unwrap();
    std::fs::remove_dir_all(tree.join("d")).unwrap();
    assert_eq!(
        getattr(&mut c, &d).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(deleted_held(&tree), Vec::<String>::new());
}
