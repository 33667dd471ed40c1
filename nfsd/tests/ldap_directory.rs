//! The LDAP identity lookup against a real OpenLDAP slapd (Debian's `slapd` package must be installed; the tests fail,
//! they do not skip, without it).

use std::time::{Duration, Instant};

use swarmhub_nfsd::identity::{DirectoryError, LdapDirectory, LdapSettings, PosixUser};
use swarmhub_tests::slapd::{Slapd, TestGroup, TestUser};

fn school() -> Slapd {
    let users = [
        TestUser::new("alice", 20001, 20000),
        TestUser::new("bob", 20002, 20000),
        TestUser::new("teacher", 20010, 20100),
    ];
    let groups = [
        TestGroup::new("students", 20000, &["alice", "bob"]),
        TestGroup::new("teachers", 20100, &["teacher"]),
        TestGroup::new("course101", 20200, &["alice", "teacher"]),
    ];
    Slapd::start(&users, &groups).expect("start slapd")
}

/// Bound as the read-only service account, as deployed.
fn settings(ldap: &Slapd) -> LdapSettings {
    let mut settings = LdapSettings::new(&ldap.url, &ldap.base_dn);
    settings.bind_dn = Some(ldap.reader_dn.clone());
    settings.password_file = Some(ldap.reader_password_file().expect("password file"));
    settings
}

#[tokio::test]
async fn users_resolve_to_their_numbers_and_groups() {
    let ldap = school();
    let directory = LdapDirectory::new(settings(&ldap));

    assert_eq!(
        directory.lookup("alice").await.unwrap(),
        PosixUser {
            name: "alice".into(),
            dn: ldap.user_dn("alice"),
            uid: 20001,
            gid: 20000,
            groups: vec![20200],
            group_names: vec!["course101".into()],
        }
    );

    let bob = directory.lookup("bob").await.unwrap();
    assert_eq!((bob.uid, bob.gid), (20002, 20000));
    assert!(
        bob.groups.is_empty() && bob.group_names.is_empty(),
        "{bob:?}"
    );

    let teacher = directory.lookup("teacher").await.unwrap();
    assert_eq!((teacher.uid, teacher.gid), (20010, 20100));
    assert_eq!(teacher.groups, [20200]);
    assert_eq!(teacher.group_names, ["course101"]);
}

#[tokio::test]
async fn a_name_in_another_case_gets_the_stored_spelling_and_its_groups() {
    // uid matches without regard to case, memberUid does not: the group search must use the stored name.
    let ldap = school();
    let directory = LdapDirectory::new(settings(&ldap));
    let alice = directory.lookup("ALICE").await.unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.groups, [20200]);
}

#[tokio::test]
async fn unknown_user_is_reported_with_the_base_dn() {
    let ldap = school();
    let directory = LdapDirectory::new(settings(&ldap));
    let err = directory.lookup("mallory").await.unwrap_err();
    assert_eq!(
        err,
        DirectoryError::UnknownUser {
            user: "mallory".into(),
            base_dn: ldap.base_dn.clone()
        }
    );
    assert!(err.to_string().contains("dc=swarmhub,dc=test"), "{err}");
}

#[tokio::test]
async fn filter_syntax_in_names_matches_nothing() {
    let ldap = school();
    let directory = LdapDirectory::new(settings(&ldap));
    for hostile in [
        "*",
        "a*)(uid=*",
        "alice)(uid=*",
        "alice*",
        "*)(|(uid=*",
        "alice)(objectClass=*",
        "\\2a",
        "alice\0",
        "{dn}",
    ] {
        match directory.lookup(hostile).await {
            Err(DirectoryError::UnknownUser { user, .. }) => assert_eq!(user, hostile),
            other => panic!("{hostile:?} should be unknown, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn wrong_bind_password_is_unavailable_and_names_the_url() {
    let ldap = school();
    let settings = settings(&ldap);
    std::fs::write(
        settings.password_file.as_ref().unwrap(),
        "not-the-password\n",
    )
    .unwrap();
    let directory = LdapDirectory::new(settings);
    let err = directory.lookup("alice").await.unwrap_err();
    assert!(matches!(err, DirectoryError::Unavailable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&ldap.url), "{message}");
    assert!(message.contains("invalidCredentials"), "{message}");
}

#[tokio::test]
async fn the_password_file_is_read_at_each_lookup() {
    let ldap = school();
    let settings = settings(&ldap);
    let password_file = settings.password_file.clone().unwrap();
    std::fs::write(&password_file, "stale-password\n").unwrap();
    let directory = LdapDirectory::new(settings);
    directory.lookup("alice").await.unwrap_err();
    std::fs::write(&password_file, format!("{}\n", ldap.reader_password)).unwrap();
    assert_eq!(directory.lookup("alice").await.unwrap().uid, 20001);
}

#[tokio::test]
async fn cached_identities_outlive_an_outage_and_new_users_do_not() {
    let mut ldap = school();
    let mut settings = settings(&ldap);
    settings.cache_ttl = Duration::ZERO; // every cached entry is already expired
    let directory = LdapDirectory::new(settings);
    let alice = directory.lookup("alice").await.unwrap();

    ldap.stop().unwrap();
    assert_eq!(directory.lookup("alice").await.unwrap(), alice);
    let err = directory.lookup("bob").await.unwrap_err();
    assert!(
        matches!(&err, DirectoryError::Unavailable { url, .. } if *url == ldap.url),
        "{err:?}"
    );
    assert!(err.to_string().contains(&ldap.url), "{err}");
    assert_eq!(directory.cached("bob"), None);

    ldap.restart().unwrap();
    assert_eq!(directory.lookup("bob").await.unwrap().uid, 20002);
}

#[tokio::test]
async fn fresh_cache_entries_are_served_without_the_directory() {
    let mut ldap = school();
    let directory = LdapDirectory::new(settings(&ldap)); // default TTL: 300 s
    let alice = directory.lookup("alice").await.unwrap();
    ldap.stop().unwrap();
    assert_eq!(directory.lookup("alice").await.unwrap(), alice);
    assert_eq!(directory.cached("alice"), Some(alice));
}

#[tokio::test]
async fn expired_entries_are_refreshed_and_deleted_users_are_forgotten() {
    let mut ldap = school();
    let mut settings = settings(&ldap);
    settings.cache_ttl = Duration::ZERO;
    let directory = LdapDirectory::new(settings);
    assert_eq!(directory.lookup("bob").await.unwrap().gid, 20000);

    ldap.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: gidNumber\ngidNumber: 20100\n",
        ldap.user_dn("bob")
    ))
    .unwrap();
    let bob = directory.lookup("bob").await.unwrap();
    assert_eq!(bob.gid, 20100);
    assert_eq!(bob.groups, [20000], "students is now a supplementary group");

    ldap.modify(&format!(
        "dn: {}\nchangetype: delete\n",
        ldap.user_dn("bob")
    ))
    .unwrap();
    assert!(matches!(
        directory.lookup("bob").await,
        Err(DirectoryError::UnknownUser { .. })
    ));
    // The directory said bob is gone; an outage must not bring him back.
    ldap.stop().unwrap();
    assert!(matches!(
        directory.lookup("bob").await,
        Err(DirectoryError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn a_hung_directory_times_out() {
    let ldap = school();
    let mut settings = settings(&ldap);
    settings.timeout = Duration::from_secs(1);
    let directory = LdapDirectory::new(settings);
    ldap.pause().unwrap();
    let started = Instant::now();
    let err = directory.lookup("alice").await.unwrap_err();
    let elapsed = started.elapsed();
    ldap.resume().unwrap();
    assert!(
        matches!(&err, DirectoryError::Unavailable { cause, .. } if cause.contains("no answer within")),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[tokio::test]
async fn group_of_names_membership_counts_by_dn() {
    let ldap = school();
    let base = &ldap.base_dn;
    // A groupOfNames carrying a gidNumber (extensibleObject allows it), and one without, which grants nothing on disk.
    ldap.modify(&format!(
        "dn: cn=lab,ou=groups,{base}\nchangetype: add\nobjectClass: groupOfNames\nobjectClass: extensibleObject\n\
         cn: lab\ngidNumber: 20300\nmember: {alice}\n\n\
         dn: cn=mailing,ou=groups,{base}\nchangetype: add\nobjectClass: groupOfNames\ncn: mailing\nmember: {alice}\n",
        alice = ldap.user_dn("alice")
    ))
    .unwrap();
    let directory = LdapDirectory::new(settings(&ldap));
    let alice = directory.lookup("alice").await.unwrap();
    assert_eq!(alice.groups, [20200, 20300]);
    assert_eq!(alice.group_names, ["course101", "lab"]);
}

#[tokio::test]
async fn root_and_duplicate_entries_are_refused() {
    let ldap = Slapd::start(
        &[
            TestUser::new("alice", 20001, 20000),
            TestUser::new("toor", 0, 20000),
            TestUser::new("wheel", 20003, 0),
        ],
        &[],
    )
    .unwrap();
    let directory = LdapDirectory::new(settings(&ldap));

    for (user, cause) in [("toor", "uidNumber is 0"), ("wheel", "gidNumber is 0")] {
        let err = directory.lookup(user).await.unwrap_err();
        assert!(
            matches!(&err, DirectoryError::BadEntry { dn, cause: c } if *dn == ldap.user_dn(user) && c.contains(cause)),
            "{user}: {err:?}"
        );
    }

    ldap.modify(&format!(
        "dn: uid=alice,ou=services,{}\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n\
         uid: alice\ncn: alice\nsn: alice\nuidNumber: 20999\ngidNumber: 20000\nhomeDirectory: /home/alice\n",
        ldap.base_dn
    ))
    .unwrap();
    assert_eq!(
        directory.lookup("alice").await.unwrap_err(),
        DirectoryError::Ambiguous {
            user: "alice".into(),
            count: 2
        }
    );
}

#[tokio::test]
async fn without_a_bind_the_test_directory_is_hidden() {
    // Guards the tests above: they pass because the service account bind works, not because anyone may read.
    let ldap = school();
    let directory = LdapDirectory::new(LdapSettings::new(&ldap.url, &ldap.base_dn));
    // The base DN itself is hidden from anonymous clients, so slapd says noSuchObject.
    let err = directory.lookup("alice").await.unwrap_err();
    assert!(
        matches!(&err, DirectoryError::Unavailable { cause, .. } if cause.contains("not readable with this bind")),
        "{err:?}"
    );
}
