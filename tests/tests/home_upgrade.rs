//! Upgrading a 0.x home in place, with real parts: the built swarmhub-nfsd, a real dockerd and
//! the `swarmhub-nfs` managed plugin (fuse backend). As in 0.x, a user's home volume is created
//! without a layout (nfsd's control API call of 0.x, then `docker volume create -o user=<user>`,
//! what the 0.x hub's mount did) and a container writes her files at its top (0.x mounted it at
//! `~/work`), a top-level `work` and a symlink out of the tree among them. Then the plugin gets
//! the settings `swarmhub run` gives it now (`SWARMHUB_NFS_HOME_PREFIX=home-`); dockerd still
//! knows the volume, so it never sends Create (nor options) again. The next `docker run` that
//! mounts it at `/home/jovyan` finds every file at `~/work/...` as the user expects, owned by
//! 1000:100 in the container and by the user's ids on disk, the symlink still a symlink; nothing
//! was copied by hand. A second mount moves nothing more.
//!
//! Needs root, docker.io, fuse3 (/dev/fuse), busybox-static; fails (never skips) without them.
//! Runs on a one-node test machine of its own (`Dockerd::ensure`), never the host's dockerd.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use swarmhub_tests::docker::{self, Dockerd, LABEL, Plugin, docker, docker_ok};
use swarmhub_tests::nfsd::Nfsd;

const IMAGE: &str = docker::BUSYBOX_IMAGE;
const PLUGIN: &str = "swarmhub-test-home";
/// The hub's name of the home volume of user `oldtimer`.
const VOLUME: &str = "home-oldtimer";

/// Removes the test's containers, volume and plugin, also when it panics half-way.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = docker(&["ps", "-aq", "--filter", &format!("label={LABEL}")]).stdout;
        for id in ids.lines().filter(|l| !l.is_empty()) {
            docker(&["rm", "-f", id]);
        }
        docker(&["volume", "rm", "-f", VOLUME]);
        let _ = docker::remove_leftovers(PLUGIN);
    }
}

/// `docker run --rm` as jovyan (1000:100) with `mount`: `sh -c script`; its stdout.
fn run_as_jovyan(mount: &str, script: &str, dockerd: &Dockerd, plugin: &Plugin) -> String {
    let out = docker(&[
        "run", "--rm", "--label", LABEL, "--user", "1000:100", "--mount", mount, IMAGE, "sh", "-c",
        script,
    ]);
    assert!(
        out.success(),
        "docker run: {}\nplugin log:\n{}",
        out.describe(),
        dockerd.log_tail(&plugin.id, 40)
    );
    out.stdout
}

fn registry_layout(data: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(data.join("registry.json")).unwrap();
    let reg: serde_json::Value = serde_json::from_str(&text).unwrap();
    reg["volumes"][VOLUME]["options"]["layout"].clone()
}

#[test]
fn a_0x_home_known_to_dockerd_is_the_whole_home_after_the_upgrade() {
    let dockerd = Dockerd::ensure().expect("a dockerd for the tests");
    docker::remove_leftovers(PLUGIN).expect("removing leftovers of earlier runs");
    docker::busybox_image(IMAGE).expect("building the busybox test image");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let nfsd = Nfsd::start(&data, &[]).expect("starting swarmhub-nfsd");
    let _cleanup = Cleanup;

    // ---- 0.x: the volume without a layout, the plugin without the home prefix
    nfsd.create_volume(&format!(
        r#"{{"name":"{VOLUME}","user":"oldtimer","identity":{{"uid":20001,"gid":20000}}}}"#
    ))
    .expect("0.x's create call");
    let base = vec![
        "SWARMHUB_NFS_SERVER=127.0.0.1".to_string(),
        format!("SWARMHUB_NFS_PORT={}", nfsd.nfs.port()),
        format!("SWARMHUB_NFS_API_PORT={}", nfsd.api.port()),
        "SWARMHUB_NFS_BACKEND=fuse".into(),
        "RUST_LOG=info".into(),
    ];
    let plugin = Plugin::install(PLUGIN, &nfsd.token, &base)
        .unwrap_or_else(|e| panic!("installing the plugin: {e:#}"));
    docker_ok(&[
        "volume",
        "create",
        "-d",
        PLUGIN,
        "-o",
        "user=oldtimer",
        VOLUME,
    ]);
    let at = |target: &str| {
        format!("type=volume,source={VOLUME},target={target},volume-driver={PLUGIN}")
    };
    run_as_jovyan(
        &at("/home/jovyan/work"),
        "set -e; cd /home/jovyan/work; echo nb > notes.ipynb; mkdir -p intro-python/source; \
         echo ps1 > intro-python/source/ps1.ipynb; mkdir work; echo inner > work/inner.txt; \
         ln -s / escape; echo dot > .hidden",
        &dockerd,
        &plugin,
    );
    let tree = data.join("volumes").join(VOLUME);
    assert!(
        tree.join("notes.ipynb").is_file(),
        "0.x layout: files at the top"
    );
    assert_eq!(registry_layout(&data), serde_json::Value::Null);

    // ---- the upgrade: the plugin's settings as `swarmhub run` gives them now; dockerd keeps
    // its record of the volume, so Create is never called again
    let mut upgraded = base.clone();
    upgraded.push("SWARMHUB_NFS_HOME_PREFIX=home-".into());
    plugin
        .reconfigure(&upgraded)
        .unwrap_or_else(|e| panic!("reconfiguring the plugin: {e:#}"));
    assert_eq!(
        docker_ok(&["volume", "ls", "-q", "--filter", &format!("name={VOLUME}")]),
        VOLUME
    );
    let seen = run_as_jovyan(
        &at("/home/jovyan"),
        "set -e; cd /home/jovyan; ls -A; echo ---; cat work/notes.ipynb work/intro-python/source/ps1.ipynb \
         work/work/inner.txt work/.hidden; readlink work/escape; stat -c '%u:%g %a' work; \
         echo mine > .bashrc",
        &dockerd,
        &plugin,
    );
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        [
            "work",
            "---",
            "nb",
            "ps1",
            "inner",
            "dot",
            "/",
            "1000:100 755"
        ],
        "the user's 0.x files at ~/work"
    );
    assert_eq!(registry_layout(&data), "home");
    let md = std::fs::metadata(tree.join("work/notes.ipynb")).unwrap();
    assert_eq!((md.uid(), md.gid()), (20001, 20000));
    assert!(
        std::fs::symlink_metadata(tree.join("work/escape"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        nfsd.log_text()
            .contains("home volume is now the whole home"),
        "nfsd logs the move:\n{}",
        nfsd.log_text()
    );

    // ---- a second mount moves nothing more
    let seen = run_as_jovyan(&at("/home/jovyan"), "ls -A /home/jovyan", &dockerd, &plugin);
    assert_eq!(seen.lines().collect::<Vec<_>>(), [".bashrc", "work"]);
    assert_eq!(
        nfsd.log_text()
            .matches("home volume is now the whole home")
            .count(),
        1
    );
}
