//! Share views (`share=`, e.g. the nbgrader exchange) through a real NFS client: the share root
//! belongs to nfsd, so no view creates, renames or removes anything at its top level (no course
//! squatting); top-level directories come from the control API, owned by one user; and share
//! views make no symlinks, special files or hard links, which homes keep.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::*;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::Opaque;

const TINA: (u32, u32) = (20010, 20100);
const BOB: (u32, u32) = (20002, 20003);
const ACCES: Option<nfsstat3> = Some(nfsstat3::NFS3ERR_ACCES);

/// The status of a reply, `None` for OK.
fn status<T, E>(r: Nfs3Result<T, E>) -> Option<nfsstat3> {
    match r {
        Nfs3Result::Ok(_) => None,
        Nfs3Result::Err((s, _)) => Some(s),
    }
}

async fn symlink(c: &mut Client, dir: &nfs_fh3, n: &str, target: &str) -> Option<nfsstat3> {
    let r = c
        .symlink(&SYMLINK3args {
            where_: dirop(dir, n),
            symlink: symlinkdata3 {
                symlink_attributes: sattr3::default(),
                symlink_data: nfspath3(Opaque::owned(target.as_bytes().to_vec())),
            },
        })
        .await
        .unwrap();
    status(r)
}

async fn mknod(c: &mut Client, dir: &nfs_fh3, n: &str, what: mknoddata3) -> Option<nfsstat3> {
    let r = c
        .mknod(&MKNOD3args {
            where_: dirop(dir, n),
            what,
        })
        .await
        .unwrap();
    status(r)
}

async fn link(c: &mut Client, file: &nfs_fh3, dir: &nfs_fh3, n: &str) -> Option<nfsstat3> {
    let r = c
        .link(&LINK3args {
            file: file.clone(),
            link: dirop(dir, n),
        })
        .await
        .unwrap();
    status(r)
}

async fn rename(c: &mut Client, dir: &nfs_fh3, from: &str, to: &str) -> Option<nfsstat3> {
    let r = c
        .rename(&RENAME3args {
            from: dirop(dir, from),
            to: dirop(dir, to),
        })
        .await
        .unwrap();
    status(r)
}

async fn remove(c: &mut Client, dir: &nfs_fh3, n: &str, rmdir: bool) -> Option<nfsstat3> {
    if rmdir {
        let r = c
            .rmdir(&RMDIR3args {
                object: dirop(dir, n),
            })
            .await
            .unwrap();
        status(r)
    } else {
        let r = c
            .remove(&REMOVE3args {
                object: dirop(dir, n),
            })
            .await
            .unwrap();
        status(r)
    }
}

/// Every kind of special file MKNOD knows.
fn specials() -> Vec<(&'static str, mknoddata3)> {
    let dev = || devicedata3 {
        dev_attributes: mode(0o666),
        spec: specdata3 {
            specdata1: 1,
            specdata2: 3,
        },
    };
    vec![
        ("fifo", mknoddata3::NF3FIFO(mode(0o666))),
        ("sock", mknoddata3::NF3SOCK(mode(0o666))),
        ("chr", mknoddata3::NF3CHR(dev())),
        ("blk", mknoddata3::NF3BLK(dev())),
    ]
}

#[tokio::test]
async fn the_exchange_root_belongs_to_nfsd_and_courses_to_their_teacher() {
    let srv = Server::start().await;
    srv.volume("exchange-tina", Some("exchange"), TINA.0, TINA.1)
        .await;
    srv.volume("exchange-bob", Some("exchange"), BOB.0, BOB.1)
        .await;
    let tree = srv.dir.join("shares/exchange");
    let md = std::fs::metadata(&tree).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (0, 0, 0o755));
    // AUTH_SYS root changes nothing: the view decides
    let (mut b, broot) = srv.mount("exchange-bob", 0).await;
    let (mut t, troot) = srv.mount("exchange-tina", 1000).await;

    // clients see the root as nbgrader wants it (1777, access() says writable: nbgrader's
    // release would chmod it otherwise, and its submit refuses an unwritable root) ...
    let root_attr = getattr(&mut b, &broot).await.unwrap();
    assert_eq!(root_attr.mode, 0o1777);
    let asked = ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY | ACCESS3_EXTEND;
    let granted = match b
        .access(&ACCESS3args {
            object: broot.clone(),
            access: asked,
        })
        .await
        .unwrap()
    {
        Nfs3Result::Ok(ok) => ok.access,
        Nfs3Result::Err((s, _)) => panic!("ACCESS of the exchange root: {s:?}"),
    };
    assert_eq!(granted, asked);
    // ... but bob cannot squat the course before the teacher, in any way
    assert_eq!(mkdir(&mut b, &broot, "demo101", 0o755).await.err(), ACCES);
    assert_eq!(create(&mut b, &broot, "demo101", 0o644).await.err(), ACCES);
    assert!(!tree.join("demo101").exists());

    // the course comes from the control API, as tina's, 0755
    srv.share_dir("exchange", "demo101", TINA, 0o755).await;
    let course = tree.join("demo101");
    let md = std::fs::metadata(&course).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (TINA.0, TINA.1, 0o755)
    );
    let (tcourse, attr) = lookup(&mut t, &troot, "demo101").await.unwrap();
    assert_eq!(
        (attr.uid, attr.gid),
        (1000, 100),
        "tina sees her own course as jovyan"
    );

    // nobody renames or removes anything at the root, the course's owner included
    for (c, root) in [(&mut b, &broot), (&mut t, &troot)] {
        assert_eq!(rename(c, root, "demo101", "mine").await, ACCES);
        assert_eq!(remove(c, root, "demo101", true).await, ACCES);
        assert_eq!(mkdir(c, root, "other", 0o755).await.err(), ACCES);
    }
    // a stray file an admin left at the root cannot be removed or renamed by a view either
    std::fs::write(tree.join("README"), b"exchange").unwrap();
    assert_eq!(remove(&mut b, &broot, "README", false).await, ACCES);
    assert_eq!(rename(&mut b, &broot, "README", "x").await, ACCES);
    assert!(course.is_dir() && tree.join("README").is_file());

    // tina builds the course; bob submits into inbound but cannot list it
    let inbound = mkdir(&mut t, &tcourse, "inbound", 0o2733).await.unwrap();
    let md = std::fs::metadata(course.join("inbound")).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o7777), (TINA.0, 0o2733));
    let (bcourse, _) = lookup(&mut b, &broot, "demo101").await.unwrap();
    let (bin, _) = lookup(&mut b, &bcourse, "inbound").await.unwrap();
    let sub = create(&mut b, &bin, "bob+ps1+2026-12-05+x", 0o644)
        .await
        .unwrap();
    write(&mut b, &sub, 0, b"{}", stable_how::FILE_SYNC)
        .await
        .unwrap();
    assert_eq!(
        owner(&course.join("inbound/bob+ps1+2026-12-05+x")),
        (BOB.0, TINA.1)
    );
    assert_eq!(list(&mut b, &bin, 4096, false).await.err(), ACCES);
    let names = list(&mut t, &inbound, 4096, true).await.unwrap();
    assert_eq!(names, vec!["bob+ps1+2026-12-05+x".to_string()]);
    // bob cannot add to or rename in the teacher's course directory itself
    assert_eq!(
        mkdir(&mut b, &bcourse, "outbound", 0o755).await.err(),
        ACCES
    );
    assert_eq!(rename(&mut b, &bcourse, "inbound", "gone").await, ACCES);
}

#[tokio::test]
async fn share_views_make_no_symlinks_special_files_or_hard_links() {
    let srv = Server::start().await;
    srv.volume("exchange-bob", Some("exchange"), BOB.0, BOB.1)
        .await;
    srv.volume("home-bob", None, BOB.0, BOB.1).await;
    srv.share_dir("exchange", "drop", BOB, 0o755).await;
    let (mut b, broot) = srv.mount("exchange-bob", 1000).await;
    let (drop_dir, _) = lookup(&mut b, &broot, "drop").await.unwrap();
    let f = create(&mut b, &drop_dir, "nb.ipynb", 0o644).await.unwrap();

    // even in a directory bob owns: a symlink would have the teacher's collect copy its target
    assert_eq!(
        symlink(&mut b, &drop_dir, "ln", "/srv/teacher/solutions").await,
        ACCES
    );
    for (n, what) in specials() {
        assert_eq!(mknod(&mut b, &drop_dir, n, what).await, ACCES, "MKNOD {n}");
    }
    assert_eq!(link(&mut b, &f, &drop_dir, "hard").await, ACCES);
    let on_disk = srv.dir.join("shares/exchange/drop");
    let mut left: Vec<_> = std::fs::read_dir(&on_disk)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, vec!["nb.ipynb"]);

    // homes keep symlinks and FIFOs (and sockets, and hard links)
    let (mut h, hroot) = srv.mount("home-bob", 1000).await;
    let hf = create(&mut h, &hroot, "f", 0o644).await.unwrap();
    assert_eq!(symlink(&mut h, &hroot, "ln", "f").await, None);
    assert_eq!(
        mknod(&mut h, &hroot, "fifo", mknoddata3::NF3FIFO(mode(0o600))).await,
        None
    );
    assert_eq!(
        mknod(&mut h, &hroot, "sock", mknoddata3::NF3SOCK(mode(0o600))).await,
        None
    );
    assert_eq!(link(&mut h, &hf, &hroot, "hard").await, None);
    let home = srv.dir.join("volumes/home-bob");
    assert!(
        std::fs::symlink_metadata(home.join("ln"))
            .unwrap()
            .is_symlink()
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(home.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[tokio::test]
async fn a_share_root_of_someone_else_is_taken_back_when_views_are_built() {
    let mut srv = Server::start().await;
    srv.volume("course-bob", Some("course"), BOB.0, BOB.1).await;
    // a tree from before share roots belonged to nfsd: 1777 (or squatted by a user)
    let tree = srv.dir.join("shares/course");
    std::fs::set_permissions(&tree, PermissionsExt::from_mode(0o1777)).unwrap();
    std::os::unix::fs::chown(&tree, Some(BOB.0), Some(BOB.1)).unwrap();
    srv.restart().await;
    let md = std::fs::metadata(&tree).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (0, 0, 0o755));
    let (mut b, broot) = srv.mount("course-bob", 1000).await;
    assert_eq!(mkdir(&mut b, &broot, "squat", 0o755).await.err(), ACCES);
}
