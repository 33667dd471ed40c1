//! Per-view identity through a real NFS client (nfs3_client over TCP): two views of one shared
//! tree, the nbgrader exchange modes, and what the disk and the clients see.

mod common;

use common::*;
use nfs3_client::nfs3_types::nfs3::*;

const ALICE: (u32, u32) = (20001, 20000);
const BOB: (u32, u32) = (20002, 20003);
const TEACHER: (u32, u32) = (20010, 20100);

#[tokio::test]
async fn two_views_of_one_shared_tree() {
    let srv = Server::start().await;
    srv.volume("course-alice", Some("course"), ALICE.0, ALICE.1)
        .await;
    srv.volume("course-bob", Some("course"), BOB.0, BOB.1).await;
    // the share root belongs to nfsd: the shared directory comes from the control API
    srv.share_dir("course", "work", TEACHER, 0o1777).await;
    // AUTH_SYS root: nfsd must not let the credential decide
    let (mut a, aroot) = srv.mount("course-alice", 0).await;
    let (mut b, broot) = srv.mount("course-bob", 1000).await;
    let (aroot, _) = lookup(&mut a, &aroot, "work").await.unwrap();
    let (broot, _) = lookup(&mut b, &broot, "work").await.unwrap();

    let f = create(&mut a, &aroot, "alice.txt", 0o600).await.unwrap();
    write(&mut a, &f, 0, b"private", stable_how::FILE_SYNC)
        .await
        .unwrap();
    // on disk: alice's store ids
    assert_eq!(owner(&srv.dir.join("shares/course/work/alice.txt")), ALICE);
    // alice sees her own file as the client identity (jovyan 1000:100)
    let attr = getattr(&mut a, &f).await.unwrap();
    assert_eq!((attr.uid, attr.gid, attr.mode), (1000, 100, 0o600));
    // bob sees it with alice's store ids, and may not read or write it
    let (bf, battr) = lookup(&mut b, &broot, "alice.txt").await.unwrap();
    assert_eq!((battr.uid, battr.gid), ALICE);
    assert_eq!(
        read(&mut b, &bf, 0, 100).await,
        Err(nfsstat3::NFS3ERR_ACCES)
    );
    assert_eq!(
        write(&mut b, &bf, 0, b"x", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_ACCES)
    );
    // ... nor remove it from the sticky shared directory
    let r = b
        .remove(&REMOVE3args {
            object: dirop(&broot, "alice.txt"),
        })
        .await
        .unwrap();
    assert!(
        matches!(
            r,
            Nfs3Result::Err((nfsstat3::NFS3ERR_PERM | nfsstat3::NFS3ERR_ACCES, _))
        ),
        "{r:?}"
    );
    // ACCESS agrees
    let acc = b
        .access(&ACCESS3args {
            object: bf.clone(),
            access: ACCESS3_READ | ACCESS3_MODIFY,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acc.access, 0);
    // bob's own file is his, alice reads it once it is world-readable
    let g = create(&mut b, &broot, "bob.txt", 0o644).await.unwrap();
    write(&mut b, &g, 0, b"shared", stable_how::UNSTABLE)
        .await
        .unwrap();
    assert_eq!(owner(&srv.dir.join("shares/course/work/bob.txt")), BOB);
    let (ag, _) = lookup(&mut a, &aroot, "bob.txt").await.unwrap();
    assert_eq!(read(&mut a, &ag, 0, 100).await.unwrap(), b"shared");
    // the owner may still write a file it created read-only (knfsd's owner override)
    let ro = create(&mut a, &aroot, "ro.txt", 0o444).await.unwrap();
    write(&mut a, &ro, 0, b"ok", stable_how::FILE_SYNC)
        .await
        .unwrap();
}

#[tokio::test]
async fn nbgrader_exchange_modes() {
    let srv = Server::start().await;
    srv.volume("ex-teacher", Some("exchange"), TEACHER.0, TEACHER.1)
        .await;
    srv.volume("ex-alice", Some("exchange"), ALICE.0, ALICE.1)
        .await;
    srv.volume("ex-bob", Some("exchange"), BOB.0, BOB.1).await;
    let (mut t, troot) = srv.mount("ex-teacher", 1000).await;
    let (mut a, aroot) = srv.mount("ex-alice", 1000).await;
    let (mut b, broot) = srv.mount("ex-bob", 1000).await;

    // the exchange root belongs to nfsd; the course directory is the teacher's, from the API
    srv.share_dir("exchange", "course101", TEACHER, 0o755).await;
    let (course, _) = lookup(&mut t, &troot, "course101").await.unwrap();
    let inbound = mkdir(&mut t, &course, "inbound", 0o2733).await.unwrap();
    mkdir(&mut t, &course, "outbound", 0o755).await.unwrap();
    mkdir(&mut t, &course, "feedback", 0o711).await.unwrap();
    let md = std::fs::metadata(srv.dir.join("shares/exchange/course101/inbound")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        md.permissions().mode() & 0o7777,
        0o2733,
        "mkdir must honour setgid"
    );
    assert_eq!(
        owner(&srv.dir.join("shares/exchange/course101/inbound")),
        TEACHER
    );

    // a student finds inbound by name, submits into it, but cannot list it
    let (acourse, _) = lookup(&mut a, &aroot, "course101").await.unwrap();
    let (ain, _) = lookup(&mut a, &acourse, "inbound").await.unwrap();
    let sub = mkdir(&mut a, &ain, "alice+ps1+2026-11-26 10:00:00+abc", 0o700)
        .await
        .unwrap();
    let nb = create(&mut a, &sub, "ps1.ipynb", 0o644).await.unwrap();
    write(&mut a, &nb, 0, b"{}", stable_how::FILE_SYNC)
        .await
        .unwrap();
    assert_eq!(
        list(&mut a, &ain, 4096, false).await,
        Err(nfsstat3::NFS3ERR_ACCES)
    );
    // setgid inbound: the submission gets the teacher's group, alice owns it
    let sub_path = srv
        .dir
        .join("shares/exchange/course101/inbound/alice+ps1+2026-11-26 10:00:00+abc");
    assert_eq!(owner(&sub_path), (ALICE.0, TEACHER.1));
    // bob cannot list inbound nor enter alice's submission
    let (bcourse, _) = lookup(&mut b, &broot, "course101").await.unwrap();
    let (bin, _) = lookup(&mut b, &bcourse, "inbound").await.unwrap();
    assert_eq!(
        list(&mut b, &bin, 4096, false).await,
        Err(nfsstat3::NFS3ERR_ACCES)
    );
    let (bsub, _) = lookup(&mut b, &bin, "alice+ps1+2026-11-26 10:00:00+abc")
        .await
        .unwrap();
    assert_eq!(
        lookup(&mut b, &bsub, "ps1.ipynb").await.err(),
        Some(nfsstat3::NFS3ERR_ACCES)
    );
    // the teacher lists inbound (alice made it 0700, so the teacher collects through group access only if granted)
    let names = list(&mut t, &inbound, 4096, true).await.unwrap();
    assert_eq!(names, vec!["alice+ps1+2026-11-26 10:00:00+abc".to_string()]);
    // students cannot write into outbound
    let (aout, _) = lookup(&mut a, &acourse, "outbound").await.unwrap();
    assert_eq!(
        create(&mut a, &aout, "x", 0o644).await.err(),
        Some(nfsstat3::NFS3ERR_ACCES)
    );
}
