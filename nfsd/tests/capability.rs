//! Capability mounts (isolation issue, defence 1) against an in-process nfsd with a real NFS
//! client (`nfs3_client`): only `/<volume>/<secret>` as the control API gives it out mounts;
//! the bare name, a wrong secret, another view's secret and guesses are MNT3ERR_ACCES; EXPORT
//! names nothing; secrets survive restarts and change when a volume is created again; handles
//! given out before keep working; the test-only `bare_mounts` setting is the only way around.

mod common;

use common::*;
use nfs3_client::nfs3_types::mount::{dirpath, mountstat3};
use nfs3_client::nfs3_types::nfs3::stable_how;
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioIo;
use nfs3_client::{MountClient, MountError};

type Mounter = MountClient<TokioIo<tokio::net::TcpStream>>;

async fn mount_client(srv: &Server) -> Mounter {
    let s = tokio::net::TcpStream::connect(srv.nfs_addr())
        .await
        .unwrap();
    MountClient::new(TokioIo::new(s))
}

/// MNT3ERR_ACCES as a number (mountstat3 has no PartialEq).
const ACCES: u32 = mountstat3::MNT3ERR_ACCES as u32;

/// MNT of `path`: Ok(handle bytes) or the refusal's mountstat3.
async fn mnt(m: &mut Mounter, path: &str) -> Result<Vec<u8>, u32> {
    match m.mnt(dirpath(Opaque::borrowed(path.as_bytes()))).await {
        Ok(ok) => Ok(ok.fhandle.0.to_vec()),
        Err(MountError::Denied(stat)) => Err(stat as u32),
        Err(e) => panic!("MNT {path:?}: {e}"),
    }
}

fn secret_of(export: &str) -> String {
    export.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn only_the_views_own_secret_mounts_it() {
    let srv = Server::start().await;
    srv.volume("home-alice", None, 20001, 20000).await;
    srv.volume("home-teacher", None, 20201, 20200).await;
    srv.volume("exchange-bob", Some("exchange"), 20102, 20000)
        .await;
    srv.volume("exchange-alice", Some("exchange"), 20001, 20000)
        .await;
    let alice = srv.export("home-alice");
    let teacher = srv.export("home-teacher");
    let bob_ex = srv.export("exchange-bob");
    assert!(alice.starts_with("/home-alice/") && alice.len() == "/home-alice/".len() + 32);
    assert_ne!(secret_of(&alice), secret_of(&teacher));

    // a planted file in the teacher's home, to prove nothing of it is reached
    let (mut t, troot) = srv.mount("home-teacher", 1000).await;
    let f = create(&mut t, &troot, "solutions.txt", 0o600)
        .await
        .unwrap();
    write(&mut t, &f, 0, b"answer key: 42", stable_how::FILE_SYNC)
        .await
        .unwrap();

    let mut m = mount_client(&srv).await;
    let own = mnt(&mut m, &alice)
        .await
        .expect("the API's mount path mounts");
    assert_eq!(mnt(&mut m, &format!("{alice}/")).await.unwrap(), own);

    let stolen = secret_of(&bob_ex);
    let attempts = [
        "/home-teacher".to_string(),
        "home-teacher".to_string(),
        "/home-teacher/".to_string(),
        format!("/home-teacher/{stolen}"),
        format!("/home-teacher/{}", secret_of(&alice)),
        format!("/home-teacher/{}", "0".repeat(32)),
        format!("/home-teacher/{}", secret_of(&teacher).to_uppercase()),
        format!("/home-teacher/{}", &secret_of(&teacher)[..31]),
        format!("{teacher}0"),
        format!("{teacher}/sub"),
        format!("/exchange-alice/{stolen}"),
        format!("/shares/exchange/{stolen}"),
        format!("/nosuchvolume/{stolen}"),
        "/".to_string(),
    ];
    for path in &attempts {
        assert_eq!(
            mnt(&mut m, path).await,
            Err(ACCES),
            "MNT {path:?} must be refused"
        );
    }
    // EXPORT names nothing a client can use
    let exports = m.export().await.unwrap();
    assert!(
        exports.0.is_empty(),
        "EXPORT listed {} entries",
        exports.0.len()
    );
    // the legitimate mount still works after all that
    let (mut t2, troot2) = srv.mount("home-teacher", 1000).await;
    let (f, _) = lookup(&mut t2, &troot2, "solutions.txt").await.unwrap();
    assert_eq!(read(&mut t2, &f, 0, 100).await.unwrap(), b"answer key: 42");
}

#[tokio::test]
async fn secrets_survive_restarts_and_change_with_the_view() {
    let mut srv = Server::start().await;
    srv.volume("home-alice", None, 20001, 20000).await;
    let before = srv.export("home-alice");
    let (mut c, root) = srv.mount("home-alice", 1000).await;
    let f = create(&mut c, &root, "kept.txt", 0o644).await.unwrap();
    write(&mut c, &f, 0, b"kept", stable_how::FILE_SYNC)
        .await
        .unwrap();
    srv.restart().await;
    assert_eq!(
        srv.export("home-alice"),
        before,
        "a restart keeps the secret"
    );
    // a handle from before the restart still works (capabilities gate MNT only)
    let (mut c, _) = srv.mount("home-alice", 1000).await;
    assert_eq!(read(&mut c, &f, 0, 10).await.unwrap(), b"kept");

    srv.running().volumes.remove("home-alice").await.unwrap();
    let mut m = mount_client(&srv).await;
    assert_eq!(mnt(&mut m, &before).await, Err(ACCES));
    srv.volume("home-alice", None, 20001, 20000).await;
    let after = srv.export("home-alice");
    assert_ne!(after, before, "a volume created again gets a new secret");
    assert_eq!(mnt(&mut m, &before).await, Err(ACCES));
    mnt(&mut m, &after).await.unwrap();
}

#[tokio::test]
async fn bare_mounts_setting_accepts_the_name_alone() {
    let srv = Server::start_with(|s| s.bare_mounts = true).await;
    srv.volume("home-alice", None, 20001, 20000).await;
    let mut m = mount_client(&srv).await;
    let bare = mnt(&mut m, "/home-alice").await.expect("bare MNT accepted");
    assert_eq!(mnt(&mut m, &srv.export("home-alice")).await.unwrap(), bare);
    // a wrong secret is still refused: the setting only waives a missing one
    assert_eq!(
        mnt(&mut m, &format!("/home-alice/{}", "0".repeat(32))).await,
        Err(ACCES)
    );
}
