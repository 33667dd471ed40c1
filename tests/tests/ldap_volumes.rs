//! Volumes created by user name against a real OpenLDAP slapd: the disk records the user's
//! uidNumber/gidNumber, unknown users and an unreachable directory are clear API errors, and
//! existing volumes keep working while LDAP is down.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use swarmhub_tests::nfsd::{Nfsd, workspace_bin};
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};

/// nfsd on `data`, looking users up in `ldap` as its reader.
fn nfsd_with(ldap: &Slapd, data: &std::path::Path) -> Nfsd {
    let flags = ldap.nfsd_flags().unwrap();
    Nfsd::start(data, &flags.iter().map(String::as_str).collect::<Vec<_>>()).unwrap()
}

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
    let n = nfsd_with(&ldap, &data);

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

/// The job side of `swarmhub volume prepare` (`volume api create`, what the one-shot job runs)
/// against a real nfsd and slapd: one result line per volume, `created` the first time and
/// already there (`created: false`) the second; a volume asked for with other options is
/// refused with nfsd's reason while the others are still made.
#[test]
fn prepare_job_creates_each_volume_once() {
    let ldap = Slapd::start(
        &[
            TestUser::new("alice", 20001, 20000),
            TestUser::new("bob", 20002, 20000),
        ],
        &[TestGroup::new("students", 20000, &["alice", "bob"])],
    )
    .expect("slapd must be installed (apt-get install slapd ldap-utils)");
    let tmp = tempfile::tempdir().unwrap();
    let n = nfsd_with(&ldap, &tmp.path().join("data"));
    let token = tmp.path().join("token");
    std::fs::write(&token, &n.token).unwrap();
    let create = |volumes: &[&str]| -> Vec<serde_json::Value> {
        let out = Command::new(workspace_bin("swarmhub").unwrap())
            .args(["volume", "api", "--server", &format!("http://{}", n.api)])
            .arg("--token-file")
            .arg(&token)
            .arg("create")
            .args(volumes)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix("swarmhub-api-result: "))
            .map(|j| serde_json::from_str(j).unwrap())
            .collect()
    };
    let volumes = [
        "home-alice:layout=home,size=10737418240,user=alice",
        "exchange-alice:share=exchange,size=2147483648,user=alice",
        "home-bob:layout=home,size=10737418240,user=bob",
    ];
    let first = create(&volumes);
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(
        first
            .iter()
            .all(|r| r["result"] == "ensured" && r["created"] == true),
        "{first:?}"
    );
    let (status, body) = n.api("GET", "/v1/volumes/home-alice", None).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["store_uid"], 20001);
    assert_eq!(v["options"]["layout"], "home");
    assert_eq!(v["options"]["size"], 10737418240u64);
    let again = create(&[volumes[0], volumes[1], "home-bob:user=alice"]);
    assert_eq!(again[0]["created"], false, "{again:?}");
    assert_eq!(again[1]["created"], false, "{again:?}");
    assert_eq!(again[2]["result"], "not_ensured", "{again:?}");
    assert!(
        again[2]["error"].as_str().unwrap().contains("options"),
        "{again:?}"
    );
}
