//! Volumes created by user name against a real OpenLDAP slapd: the disk records the user's
//! uidNumber/gidNumber, unknown users and an unreachable directory are clear API errors, and
//! existing volumes keep working while LDAP is down.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use swarmhub_tests::nfsd::Nfsd;
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};

#[test]
fn volume_by_user_name_gets_ldap_ids_on_disk() {
    let mut ldap = Slapd::start(
        &[
            TestUser::new("alice", 20001, 20000),
            TestUser::new("bob", 20002, 20000),
            TestUser::new("carol", 20003, 20000),
        ],
        &[
            TestGroup::new("students", 20000, &["alice", "bob", "carol"]),
            TestGroup::new("course101", 20200, &["alice"]),
        ],
    )
    .expect("slapd must be installed (apt-get install slapd ldap-utils)");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pw = ldap.reader_password_file().unwrap();
    let n = Nfsd::start(
        &data,
        &[
            "--ldap-url",
            &ldap.url,
            "--ldap-base-dn",
            &ldap.base_dn,
            "--ldap-bind-dn",
            &ldap.reader_dn,
            "--ldap-password-file",
            pw.to_str().unwrap(),
        ],
    )
    .unwrap();

    let v = n
        .create_volume(r#"{"name":"home-alice","user":"alice"}"#)
        .unwrap();
    assert_eq!(v["store_uid"], 20001);
    assert_eq!(v["store_gid"], 20000);
    assert_eq!(v["groups"], serde_json::json!([20200]));
    n.create_volume(r#"{"name":"home-bob","user":"bob"}"#)
        .unwrap();

    let url = |vol: &str, file: &str| {
        format!(
            "nfs://127.0.0.1{export}/{file}?nfsport={p}&mountport={p}&version=3",
            export = n.export(vol).unwrap(),
            p = n.nfs.port()
        )
    };
    let src = tmp.path().join("nb.ipynb");
    std::fs::write(&src, "{}").unwrap();
    let cp = |vol: &str, file: &str| {
        Command::new("nfs-cp")
            .arg(&src)
            .arg(url(vol, file))
            .output()
            .expect("nfs-cp (libnfs-utils) must be installed")
    };
    assert!(cp("home-alice", "a.ipynb").status.success());
    let md = std::fs::metadata(data.join("volumes/home-alice/a.ipynb")).unwrap();
    assert_eq!((md.uid(), md.gid()), (20001, 20000));
    let root = std::fs::metadata(data.join("volumes/home-alice")).unwrap();
    assert_eq!((root.uid(), root.gid()), (20001, 20000));

    // unknown user: 422 naming the user and the base
    let (status, body) = n
        .api(
            "POST",
            "/v1/volumes",
            Some(r#"{"name":"home-mallory","user":"mallory"}"#),
        )
        .unwrap();
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("mallory") && body.contains("unknown_user"),
        "{body}"
    );
    // filter injection does not get past name validation
    let (status, _) = n
        .api(
            "POST",
            "/v1/volumes",
            Some(r#"{"name":"x","user":"*)(uid=*"}"#),
        )
        .unwrap();
    assert_eq!(status, 400);

    // LDAP down: existing volumes keep working, ensure of an existing one works, a new user is a 503
    ldap.stop().unwrap();
    assert!(cp("home-bob", "b.ipynb").status.success());
    let md = std::fs::metadata(data.join("volumes/home-bob/b.ipynb")).unwrap();
    assert_eq!(md.uid(), 20002);
    n.create_volume(r#"{"name":"home-alice","user":"alice"}"#)
        .unwrap();
    let (status, body) = n
        .api(
            "POST",
            "/v1/volumes",
            Some(r#"{"name":"home-carol","user":"carol"}"#),
        )
        .unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&ldap.url),
        "error names the directory: {body}"
    );
    assert!(!data.join("volumes/home-carol").exists());
    // back up: carol works
    ldap.restart().unwrap();
    n.create_volume(r#"{"name":"home-carol","user":"carol"}"#)
        .unwrap();
}
