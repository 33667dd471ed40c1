//! The operations the Linux client relies on, through a real NFS client: directory paging over
//! 10,000 entries, rename in all its forms, symlinks, hard links, SETATTR (size, times, mode),
//! mkdir modes, exclusive create, and restarts that keep handles and data.

mod common;

use std::collections::HashSet;

use common::*;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;

const U: (u32, u32) = (30001, 30000);

#[tokio::test]
async fn readdir_pages_10000_entries_exactly_once() {
    let srv = Server::start().await;
    srv.volume("big", None, U.0, U.1).await;
    let tree = srv.dir.join("volumes/big");
    let d = tree.join("d");
    std::fs::create_dir(&d).unwrap();
    let expected: HashSet<String> = (0..10_000)
        .map(|i| format!("entry-{i:05}-{}", "x".repeat(i % 40)))
        .collect();
    for n in &expected {
        std::fs::File::create(d.join(n)).unwrap();
    }
    let (mut c, root) = srv.mount("big", 1000).await;
    let (dir, _) = lookup(&mut c, &root, "d").await.unwrap();
    for (count, plus) in [(4096, false), (32768, false), (4096, true), (65536, true)] {
        let names = list(&mut c, &dir, count, plus).await.unwrap();
        let set: HashSet<String> = names.iter().cloned().collect();
        assert_eq!(
            names.len(),
            10_000,
            "count={count} plus={plus}: duplicates or missing"
        );
        assert_eq!(set, expected, "count={count} plus={plus}");
    }
    // a page too small for one entry is TOOSMALL, not an endless loop
    let r = c
        .readdir(&READDIR3args {
            dir: dir.clone(),
            cookie: 0,
            cookieverf: cookieverf3::default(),
            count: 100,
        })
        .await
        .unwrap();
    assert!(
        matches!(r, Nfs3Result::Err((nfsstat3::NFS3ERR_TOOSMALL, _))),
        "{r:?}"
    );
}

async fn rename(
    c: &mut Client,
    from: &nfs_fh3,
    f: &str,
    to: &nfs_fh3,
    t: &str,
) -> Result<(), nfsstat3> {
    match c
        .rename(&RENAME3args {
            from: dirop(from, f),
            to: dirop(to, t),
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(_) => Ok(()),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

#[tokio::test]
async fn rename_symlink_link_setattr_mkdir() {
    let srv = Server::start().await;
    srv.volume("ops", None, U.0, U.1).await;
    let tree = srv.dir.join("volumes/ops");
    let (mut c, root) = srv.mount("ops", 0).await;

    // rename within a directory keeps the handle valid
    let a = create(&mut c, &root, "a", 0o644).await.unwrap();
    write(&mut c, &a, 0, b"alpha", stable_how::FILE_SYNC)
        .await
        .unwrap();
    rename(&mut c, &root, "a", &root, "b").await.unwrap();
    assert_eq!(read(&mut c, &a, 0, 10).await.unwrap(), b"alpha");
    // across directories
    let sub = mkdir(&mut c, &root, "sub", 0o755).await.unwrap();
    rename(&mut c, &root, "b", &sub, "c").await.unwrap();
    assert_eq!(std::fs::read(tree.join("sub/c")).unwrap(), b"alpha");
    assert_eq!(read(&mut c, &a, 0, 10).await.unwrap(), b"alpha");
    // over an existing file (the autosave pattern)
    let tmp = create(&mut c, &sub, ".c.tmp", 0o644).await.unwrap();
    write(&mut c, &tmp, 0, b"beta", stable_how::UNSTABLE)
        .await
        .unwrap();
    rename(&mut c, &sub, ".c.tmp", &sub, "c").await.unwrap();
    assert_eq!(std::fs::read(tree.join("sub/c")).unwrap(), b"beta");
    assert_eq!(
        getattr(&mut c, &a).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    // a directory over a non-empty directory is refused
    let d1 = mkdir(&mut c, &root, "d1", 0o755).await.unwrap();
    mkdir(&mut c, &root, "d2", 0o755).await.unwrap();
    let (d2, _) = lookup(&mut c, &root, "d2").await.unwrap();
    create(&mut c, &d2, "keep", 0o644).await.unwrap();
    assert_eq!(
        rename(&mut c, &root, "d1", &root, "d2").await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    assert!(tree.join("d2/keep").exists());
    let _ = d1;

    // symlink and readlink: stored verbatim, never followed
    let r = c
        .symlink(&SYMLINK3args {
            where_: dirop(&root, "ln"),
            symlink: symlinkdata3 {
                symlink_attributes: sattr3::default(),
                symlink_data: nfspath3(Opaque::owned(b"sub/c".to_vec())),
            },
        })
        .await
        .unwrap()
        .unwrap();
    let ln = r.obj.unwrap();
    assert_eq!(r.obj_attributes.unwrap().type_, ftype3::NF3LNK);
    let target = c
        .readlink(&READLINK3args {
            symlink: ln.clone(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(target.data.0.as_ref(), b"sub/c");
    assert_eq!(owner(&tree.join("ln")), U);

    // hard link
    let (cfh, _) = lookup(&mut c, &sub, "c").await.unwrap();
    let l = c
        .link(&LINK3args {
            file: cfh.clone(),
            link: dirop(&root, "hard"),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(l.file_attributes.unwrap().nlink, 2);
    assert_eq!(std::fs::read(tree.join("hard")).unwrap(), b"beta");

    // SETATTR: truncate, mode, times, then the guard
    let set = |s: sattr3| SETATTR3args {
        object: cfh.clone(),
        new_attributes: s,
        guard: Nfs3Option::None,
    };
    c.setattr(&set(sattr3 {
        size: Nfs3Option::Some(2),
        ..Default::default()
    }))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(std::fs::read(tree.join("sub/c")).unwrap(), b"be");
    c.setattr(&set(sattr3 {
        size: Nfs3Option::Some(10 << 20),
        ..Default::default()
    }))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        std::fs::metadata(tree.join("sub/c")).unwrap().len(),
        10 << 20
    );
    c.setattr(&set(mode(0o640))).await.unwrap().unwrap();
    let when = nfstime3 {
        seconds: 1_000_000_000,
        nseconds: 5,
    };
    c.setattr(&set(sattr3 {
        atime: set_atime::SET_TO_CLIENT_TIME(when),
        mtime: set_mtime::SET_TO_CLIENT_TIME(when),
        ..Default::default()
    }))
    .await
    .unwrap()
    .unwrap();
    let attr = getattr(&mut c, &cfh).await.unwrap();
    assert_eq!(attr.mode, 0o640);
    assert_eq!(attr.mtime, when);
    assert_eq!((attr.uid, attr.gid), (1000, 100));
    let stale_guard = SETATTR3args {
        object: cfh.clone(),
        new_attributes: mode(0o600),
        guard: Nfs3Option::Some(nfstime3 {
            seconds: 1,
            nseconds: 0,
        }),
    };
    assert!(matches!(
        c.setattr(&stale_guard).await.unwrap(),
        Nfs3Result::Err((nfsstat3::NFS3ERR_NOT_SYNC, _))
    ));
    // chown to the client identity maps back to the store identity; to root is refused
    c.setattr(&set(sattr3 {
        uid: Nfs3Option::Some(1000),
        gid: Nfs3Option::Some(100),
        ..Default::default()
    }))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(owner(&tree.join("sub/c")), U);
    assert!(matches!(
        c.setattr(&set(sattr3 {
            uid: Nfs3Option::Some(0),
            ..Default::default()
        }))
        .await
        .unwrap(),
        Nfs3Result::Err((nfsstat3::NFS3ERR_PERM, _))
    ));

    // mkdir honours the mode, sticky bit included
    mkdir(&mut c, &root, "sticky", 0o1777).await.unwrap();
    mkdir(&mut c, &root, "private", 0o700).await.unwrap();
    use std::os::unix::fs::PermissionsExt;
    let m = |p: &str| {
        std::fs::metadata(tree.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(m("sticky"), 0o1777);
    assert_eq!(m("private"), 0o700);
    assert_eq!(owner(&tree.join("private")), U);

    // exclusive create: a retransmission with the same verifier succeeds, another one fails
    let excl = |v: u8| CREATE3args {
        where_: dirop(&root, "excl"),
        how: createhow3::EXCLUSIVE(createverf3([v; 8])),
    };
    assert!(matches!(
        c.create(&excl(1)).await.unwrap(),
        Nfs3Result::Ok(_)
    ));
    assert!(matches!(
        c.create(&excl(1)).await.unwrap(),
        Nfs3Result::Ok(_)
    ));
    assert!(matches!(
        c.create(&excl(2)).await.unwrap(),
        Nfs3Result::Err((nfsstat3::NFS3ERR_EXIST, _))
    ));

    // MKNOD: FIFOs and sockets are made as the view; device nodes are refused
    let fifo = c
        .mknod(&MKNOD3args {
            where_: dirop(&root, "fifo"),
            what: mknoddata3::NF3FIFO(mode(0o600)),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fifo.obj_attributes.unwrap().type_, ftype3::NF3FIFO);
    assert_eq!(owner(&tree.join("fifo")), U);
    let sock = c
        .mknod(&MKNOD3args {
            where_: dirop(&root, "sock"),
            what: mknoddata3::NF3SOCK(mode(0o600)),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sock.obj_attributes.unwrap().type_, ftype3::NF3SOCK);
    let dev = c
        .mknod(&MKNOD3args {
            where_: dirop(&root, "null"),
            what: mknoddata3::NF3CHR(devicedata3 {
                dev_attributes: mode(0o666),
                spec: specdata3 {
                    specdata1: 1,
                    specdata2: 3,
                },
            }),
        })
        .await
        .unwrap();
    assert!(
        matches!(dev, Nfs3Result::Err((nfsstat3::NFS3ERR_PERM, _))),
        "{dev:?}"
    );
    assert!(!tree.join("null").exists());

    // remove and rmdir
    let rm = c
        .rmdir(&RMDIR3args {
            object: dirop(&root, "d2"),
        })
        .await
        .unwrap();
    assert!(
        matches!(rm, Nfs3Result::Err((nfsstat3::NFS3ERR_NOTEMPTY, _))),
        "{rm:?}"
    );
    let rm = c
        .remove(&REMOVE3args {
            object: dirop(&root, "sub"),
        })
        .await
        .unwrap();
    assert!(
        matches!(rm, Nfs3Result::Err((nfsstat3::NFS3ERR_ISDIR, _))),
        "{rm:?}"
    );
    c.remove(&REMOVE3args {
        object: dirop(&root, "hard"),
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!tree.join("hard").exists());
    assert!(tree.join("sub/c").exists());
}

#[tokio::test]
async fn handles_and_data_survive_a_restart() {
    let mut srv = Server::start().await;
    srv.volume("keep", None, U.0, U.1).await;
    let (mut c, root) = srv.mount("keep", 1000).await;
    let d = mkdir(&mut c, &root, "dir", 0o755).await.unwrap();
    let f = create(&mut c, &d, "f", 0o644).await.unwrap();
    let w = write(&mut c, &f, 0, b"unstable", stable_how::UNSTABLE)
        .await
        .unwrap();
    assert_eq!(w.committed, stable_how::UNSTABLE);
    let commit = c
        .commit(&COMMIT3args {
            file: f.clone(),
            offset: 0,
            count: 0,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(commit.verf, w.verf, "one verifier per server instance");
    drop(c);

    srv.restart().await;
    // the old root handle and file handle still work on the new instance
    let (mut c2, root2) = srv.mount("keep", 1000).await;
    assert_eq!(root2, root, "root handle is stable");
    assert_eq!(read(&mut c2, &f, 0, 100).await.unwrap(), b"unstable");
    assert_eq!(lookup(&mut c2, &d, "f").await.unwrap().0, f);
    // a new instance has a new write verifier, so clients resend uncommitted writes
    let w2 = write(&mut c2, &f, 8, b"!", stable_how::UNSTABLE)
        .await
        .unwrap();
    assert_ne!(w2.verf, w.verf);
    // renamed on the storage side while down: the handle follows the inode
    srv.running.take().unwrap().stop().await.unwrap();
    std::fs::rename(
        srv.dir.join("volumes/keep/dir/f"),
        srv.dir.join("volumes/keep/moved"),
    )
    .unwrap();
    srv.running = Some(
        swarmhub_nfsd::server::start(settings(&srv.dir))
            .await
            .unwrap(),
    );
    let (mut c3, _) = srv.mount("keep", 1000).await;
    assert_eq!(read(&mut c3, &f, 0, 100).await.unwrap(), b"unstable!");
}
