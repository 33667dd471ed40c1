//! The FUSE backend against the real nfsd, in process: mounts a volume with `FuseMounter` on a
//! temp dir and uses it with std::fs (and a non-root child process). Needs root and /dev/fuse;
//! skipped (with a message) without them.

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use swarmhub_control_api::{CreateVolume, ExplicitIdentity, VolumeOptions};
use swarmhub_nfsd::config::Settings;
use swarmhub_nfsd::server::{self, Running};
use swarmhub_volume_plugin::mounter::fuse::FuseMounter;
use swarmhub_volume_plugin::mounter::{MountError, MountSpec, Mounter, is_mounted};

const STORE: (u32, u32) = (4242, 4343);
const DEADLINE: Duration = Duration::from_secs(20);

/// The FUSE backend needs root and /dev/fuse; without them the tests fail (they never skip).
fn require_fuse() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let fuse = Path::new("/dev/fuse").exists();
    assert!(
        root && fuse,
        "the FUSE backend tests need root and /dev/fuse (root={root}, /dev/fuse={fuse}); run as root with the fuse module loaded"
    );
}

struct Nfsd {
    rt: tokio::runtime::Runtime,
    running: Option<Running>,
    dir: PathBuf,
    addr: SocketAddr,
    _tmp: tempfile::TempDir,
}

fn settings(dir: &Path, listen: SocketAddr) -> Settings {
    let mut s = Settings::ephemeral(dir);
    s.listen = listen;
    s.sync_metadata = false;
    s
}

impl Nfsd {
    fn start() -> Nfsd {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = rt
            .block_on(server::start(settings(
                &dir,
                "127.0.0.1:0".parse().unwrap(),
            )))
            .unwrap();
        let addr = running.nfs_addr;
        Nfsd {
            rt,
            running: Some(running),
            dir,
            addr,
            _tmp: tmp,
        }
    }

    fn stop(&mut self) {
        let r = self.running.take().unwrap();
        self.rt.block_on(r.stop()).unwrap();
    }

    fn start_again(&mut self) {
        let s = settings(&self.dir, self.addr);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.rt.block_on(server::start(s.clone())) {
                Ok(r) => {
                    self.running = Some(r);
                    return;
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart: {e:#}; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("nfsd did not start again: {e:#}"),
            }
        }
    }

    fn volume(&self, name: &str, size: Option<u64>) {
        let volumes = self.running.as_ref().unwrap().volumes.clone();
        self.rt
            .block_on(volumes.create(CreateVolume {
                name: name.into(),
                options: VolumeOptions {
                    user: Some(format!("u{}", STORE.0)),
                    share: None,
                    size,
                    readonly: false,
                    layout: None,
                },
                identity: Some(ExplicitIdentity {
                    uid: STORE.0,
                    gid: STORE.1,
                    groups: vec![],
                }),
                client: None,
            }))
            .unwrap();
    }

    fn tree(&self, name: &str) -> PathBuf {
        self.dir.join("volumes").join(name)
    }

    /// The mount path nfsd's API gives out for `name` (`/<name>/<secret>`), or the bare name
    /// for a volume nfsd does not have.
    fn export(&self, name: &str) -> String {
        let volumes = self.running.as_ref().unwrap().volumes.clone();
        volumes
            .get(name)
            .map_or_else(|_| format!("/{name}"), |v| v.export)
    }

    fn spec(&self, name: &str) -> MountSpec {
        self.spec_at(&self.export(name))
    }

    fn spec_at(&self, export: &str) -> MountSpec {
        MountSpec {
            server: self.addr,
            export: export.to_string(),
            readonly: false,
            extra_options: None,
        }
    }
}

impl Drop for Nfsd {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = self.rt.block_on(r.stop());
        }
    }
}

/// A mount point that is unmounted (lazily) whatever happens in the test.
struct Target {
    path: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Target {
    fn new() -> Target {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        Target { path, _tmp: tmp }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if is_mounted(&self.path) {
            let c = std::ffi::CString::new(self.path.to_str().unwrap()).unwrap();
            // SAFETY: valid C string.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[test]
fn files_directories_links_and_attributes() {
    require_fuse();
    let nfsd = Nfsd::start();
    nfsd.volume("alice", None);
    let t = Target::new();
    let m = FuseMounter::new().unwrap();
    m.mount(&nfsd.spec("alice"), &t.path, DEADLINE).unwrap();
    assert!(is_mounted(&t.path));
    let p = |s: &str| t.path.join(s);

    // write / read / append
    std::fs::write(p("a.txt"), b"hello").unwrap();
    assert_eq!(std::fs::read(p("a.txt")).unwrap(), b"hello");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(p("a.txt"))
        .unwrap();
    f.write_all(b" world").unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(std::fs::read_to_string(p("a.txt")).unwrap(), "hello world");
    assert_eq!(
        std::fs::read_to_string(nfsd.tree("alice").join("a.txt")).unwrap(),
        "hello world"
    );

    // a larger file, written in pieces and read back with seeks
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(p("big.bin"), &big).unwrap();
    assert_eq!(std::fs::read(p("big.bin")).unwrap(), big);
    let mut f = std::fs::File::open(p("big.bin")).unwrap();
    f.seek(SeekFrom::Start(3_000_001)).unwrap();
    let mut buf = vec![0; 1000];
    f.read_exact(&mut buf).unwrap();
    assert_eq!(buf, big[3_000_001..3_001_001]);

    // ownership: storage side records the store identity, the mount shows the client identity
    let md = std::fs::metadata(nfsd.tree("alice").join("a.txt")).unwrap();
    assert_eq!((md.uid(), md.gid()), STORE);
    let md = std::fs::metadata(p("a.txt")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 100));

    // mkdir and a directory of 2000 entries
    std::fs::create_dir(p("many")).unwrap();
    for i in 0..2000 {
        std::fs::write(p(&format!("many/file-{i:04}")), b"").unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(p("many"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want: Vec<String> = (0..2000).map(|i| format!("file-{i:04}")).collect();
    assert_eq!(names, want);
    // readdir with file types (d_type) and stat of every entry
    for e in std::fs::read_dir(p("many")).unwrap().take(50) {
        let e = e.unwrap();
        assert!(e.file_type().unwrap().is_file());
        assert_eq!(e.metadata().unwrap().len(), 0);
    }

    // rename over an existing file
    std::fs::write(p("old"), b"old").unwrap();
    std::fs::write(p("new"), b"new").unwrap();
    std::fs::rename(p("new"), p("old")).unwrap();
    assert_eq!(std::fs::read(p("old")).unwrap(), b"new");
    assert_eq!(
        errno(&std::fs::metadata(p("new")).unwrap_err()),
        libc::ENOENT
    );
    // rename of a directory across directories
    std::fs::create_dir(p("d1")).unwrap();
    std::fs::write(p("d1/x"), b"x").unwrap();
    std::fs::rename(p("d1"), p("many/d1")).unwrap();
    assert_eq!(std::fs::read(p("many/d1/x")).unwrap(), b"x");

    // symlink / readlink
    std::os::unix::fs::symlink("a.txt", p("link")).unwrap();
    assert_eq!(
        std::fs::read_link(p("link")).unwrap(),
        PathBuf::from("a.txt")
    );
    assert_eq!(std::fs::read_to_string(p("link")).unwrap(), "hello world");
    assert!(
        std::fs::symlink_metadata(p("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // hard link
    match std::fs::hard_link(p("a.txt"), p("hard")) {
        Ok(()) => {
            assert_eq!(std::fs::read_to_string(p("hard")).unwrap(), "hello world");
            assert_eq!(std::fs::metadata(p("a.txt")).unwrap().nlink(), 2);
            std::fs::remove_file(p("hard")).unwrap();
        }
        Err(e) => panic!("link: {e}"),
    }

    // chmod
    std::fs::set_permissions(p("a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(
        std::fs::metadata(p("a.txt")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(
        std::fs::metadata(nfsd.tree("alice").join("a.txt"))
            .unwrap()
            .mode()
            & 0o7777,
        0o640
    );

    // truncate (shrink and grow)
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(p("a.txt"))
        .unwrap();
    f.set_len(5).unwrap();
    drop(f);
    assert_eq!(std::fs::read(p("a.txt")).unwrap(), b"hello");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(p("a.txt"))
        .unwrap();
    f.set_len(8).unwrap();
    drop(f);
    assert_eq!(std::fs::read(p("a.txt")).unwrap(), b"hello\0\0\0");
    // O_TRUNC
    std::fs::write(p("a.txt"), b"hi").unwrap();
    assert_eq!(std::fs::read(p("a.txt")).unwrap(), b"hi");

    // utimens
    let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let f = std::fs::File::options()
        .write(true)
        .open(p("a.txt"))
        .unwrap();
    f.set_modified(when).unwrap();
    drop(f);
    assert_eq!(
        std::fs::metadata(p("a.txt")).unwrap().modified().unwrap(),
        when
    );

    // exclusive create of an existing file
    let e = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p("a.txt"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);

    // unlink, rmdir, and their errors
    assert_eq!(
        errno(&std::fs::remove_dir(p("many")).unwrap_err()),
        libc::ENOTEMPTY
    );
    std::fs::remove_file(p("link")).unwrap();
    std::fs::remove_dir_all(p("many")).unwrap();
    assert!(!nfsd.tree("alice").join("many").exists());
    assert_eq!(
        errno(&std::fs::remove_file(p("nope")).unwrap_err()),
        libc::ENOENT
    );

    // unmount leaves nothing mounted
    m.unmount(&t.path).unwrap();
    assert!(!is_mounted(&t.path));
    assert!(std::fs::read_dir(&t.path).unwrap().next().is_none());
    // unmounting again is fine
    m.unmount(&t.path).unwrap();
}

#[test]
fn quota_shows_in_statfs_and_refuses_writes_past_it() {
    require_fuse();
    let nfsd = Nfsd::start();
    nfsd.volume("quota", Some(8 << 20));
    let t = Target::new();
    let m = FuseMounter::new().unwrap();
    m.mount(&nfsd.spec("quota"), &t.path, DEADLINE).unwrap();

    let c = std::ffi::CString::new(t.path.to_str().unwrap()).unwrap();
    // SAFETY: statvfs is plain data, for which all-zero bytes are a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a statvfs for the call to fill.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(rc, 0);
    let total = st.f_blocks * st.f_frsize;
    assert_eq!(total, 8 << 20, "df shows the quota");
    assert!(st.f_bavail * st.f_frsize <= 8 << 20);

    // df agrees
    let out = std::process::Command::new("df")
        .arg("-B1")
        .arg(&t.path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&(8u64 << 20).to_string()), "df: {text}");

    let mut f = std::fs::File::create(t.path.join("fill")).unwrap();
    let chunk = vec![1u8; 1 << 20];
    let mut err = None;
    for _ in 0..16 {
        if let Err(e) = f.write_all(&chunk) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("writing 16 MiB into an 8 MiB volume must fail");
    assert_eq!(errno(&err), libc::EDQUOT, "{err}");
    drop(f);
    m.unmount(&t.path).unwrap();
}

#[test]
fn non_root_users_can_write() {
    require_fuse();
    let nfsd = Nfsd::start();
    nfsd.volume("jovyan", None);
    let t = Target::new();
    // the user must be able to reach the mount point
    std::fs::set_permissions(
        t.path.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let m = FuseMounter::new().unwrap();
    m.mount(&nfsd.spec("jovyan"), &t.path, DEADLINE).unwrap();
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "1000",
            "--regid",
            "100",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(format!(
            "cd {} && echo hi > mine && mkdir d && echo there > d/f && cat mine d/f && id -u",
            t.path.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stdout: {} stderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\nthere\n1000\n");
    let md = std::fs::metadata(nfsd.tree("jovyan").join("d/f")).unwrap();
    assert_eq!((md.uid(), md.gid()), STORE);

    // another user is refused by the mode bits (default_permissions)
    std::fs::set_permissions(t.path.join("mine"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "1001", "--regid", "100", "--clear-groups", "cat"])
        .arg(t.path.join("mine"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    m.unmount(&t.path).unwrap();
}

#[test]
fn unreachable_server_fails_fast() {
    require_fuse();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = Target::new();
    let m = FuseMounter::new().unwrap();
    let spec = MountSpec {
        server: SocketAddr::from(([127, 0, 0, 1], port)),
        export: "/nobody".into(),
        readonly: false,
        extra_options: None,
    };
    let started = Instant::now();
    let e = m.mount(&spec, &t.path, DEADLINE).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, MountError::Unreachable { .. }), "{e:?}");
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(
        msg.contains(&port.to_string()) && msg.contains("/nobody") && msg.contains("111"),
        "{msg}"
    );
    assert!(!is_mounted(&t.path));

    // the same from inside a tokio runtime (the driver may call from async code)
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(async { m.mount(&spec, &t.path, DEADLINE) })
        .unwrap_err();
    assert!(matches!(e, MountError::Unreachable { .. }), "{e:?}");
}

/// Capability mounts through the FUSE backend's real MNT: an unknown volume, the bare name of a
/// real one and a wrong secret are all refused, and the message names the volume but never the
/// secret (users read it as `VolumeDriver.Mount: ...`).
#[test]
fn mount_paths_without_the_capability_are_refused() {
    require_fuse();
    let nfsd = Nfsd::start();
    nfsd.volume("capped", None);
    let real = nfsd.export("capped");
    let secret = real.rsplit('/').next().unwrap().to_string();
    let t = Target::new();
    let m = FuseMounter::new().unwrap();
    for (path, shown) in [
        ("/missing".to_string(), "/missing"),
        ("/capped".to_string(), "/capped"),
        (format!("/capped/{}", "0".repeat(32)), "/capped"),
        (format!("/missing/{secret}"), "/missing"),
    ] {
        let e = m
            .mount(&nfsd.spec_at(&path), &t.path, DEADLINE)
            .unwrap_err();
        assert!(matches!(e, MountError::Refused { .. }), "{path}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("MNT3ERR_ACCES") && msg.contains(&format!("refused to mount {shown} ")),
            "{msg}"
        );
        assert!(!msg.contains(&secret), "the secret leaked into {msg}");
        assert!(!is_mounted(&t.path));
    }
    m.mount(&nfsd.spec_at(&real), &t.path, DEADLINE).unwrap();
    assert!(is_mounted(&t.path));
    m.unmount(&t.path).unwrap();
}

#[test]
fn readonly_mount_refuses_writes() {
    require_fuse();
    let nfsd = Nfsd::start();
    nfsd.volume("ro", None);
    std::fs::write(nfsd.tree("ro").join("f"), b"data").unwrap();
    let t = Target::new();
    let m = FuseMounter::new().unwrap();
    let mut spec = nfsd.spec("ro");
    spec.readonly = true;
    m.mount(&spec, &t.path, DEADLINE).unwrap();
    assert_eq!(std::fs::read(t.path.join("f")).unwrap(), b"data");
    let e = std::fs::write(t.path.join("g"), b"x").unwrap_err();
    assert_eq!(errno(&e), libc::EROFS);
    m.unmount(&t.path).unwrap();
}

#[test]
fn mount_survives_an_nfsd_restart() {
    require_fuse();
    let mut nfsd = Nfsd::start();
    nfsd.volume("bob", None);
    let t = Target::new();
    let m = FuseMounter::new().unwrap();
    m.mount(&nfsd.spec("bob"), &t.path, DEADLINE).unwrap();
    std::fs::write(t.path.join("before"), b"1").unwrap();
    let mut open = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(t.path.join("before"))
        .unwrap();
    // an unstable write that is not committed before nfsd goes away: the new instance has a new
    // write verifier, so the backend must send it again at fsync instead of failing with EIO
    open.seek(SeekFrom::End(0)).unwrap();
    open.write_all(b"u").unwrap();

    nfsd.stop();
    // an operation while nfsd is down waits for it to come back
    let path = t.path.clone();
    let during = std::thread::spawn(move || std::fs::write(path.join("during"), b"2"));
    std::thread::sleep(Duration::from_millis(500));
    nfsd.start_again();
    let waited = Instant::now();
    during.join().unwrap().unwrap();
    assert!(
        waited.elapsed() < Duration::from_secs(10),
        "{:?}",
        waited.elapsed()
    );

    assert_eq!(std::fs::read(t.path.join("before")).unwrap(), b"1u");
    assert_eq!(std::fs::read(t.path.join("during")).unwrap(), b"2");
    std::fs::write(t.path.join("after"), b"3").unwrap();
    assert_eq!(std::fs::read(nfsd.tree("bob").join("after")).unwrap(), b"3");
    // a file opened before the restart keeps working (handles are stable), and the write
    // left uncommitted across the restart is committed, not lost
    open.sync_all().unwrap();
    open.seek(SeekFrom::End(0)).unwrap();
    open.write_all(b"+").unwrap();
    open.sync_all().unwrap();
    drop(open);
    assert_eq!(
        std::fs::read(nfsd.tree("bob").join("before")).unwrap(),
        b"1u+"
    );
    m.unmount(&t.path).unwrap();
}

#[test]
fn stale_mount_on_the_target_is_replaced() {
    require_fuse();
    let nfsd = Nfsd::start();
    nfsd.volume("carol", None);
    let t = Target::new();
    // a FUSE mount whose server is gone, as an earlier plugin process would leave it
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .unwrap();
    let opts = std::ffi::CString::new(format!(
        "fd={},rootmode=40000,user_id=0,group_id=0",
        std::os::fd::AsRawFd::as_raw_fd(&dev)
    ))
    .unwrap();
    let target = std::ffi::CString::new(t.path.to_str().unwrap()).unwrap();
    // SAFETY: valid C strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            c"stale".as_ptr(),
            target.as_ptr(),
            c"fuse.stale".as_ptr(),
            libc::MS_NODEV | libc::MS_NOSUID,
            opts.as_ptr().cast(),
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    drop(dev);
    assert!(is_mounted(&t.path));
    assert_eq!(
        errno(&std::fs::metadata(&t.path).unwrap_err()),
        libc::ENOTCONN
    );

    let m = FuseMounter::new().unwrap();
    m.mount(&nfsd.spec("carol"), &t.path, DEADLINE).unwrap();
    std::fs::write(t.path.join("x"), b"ok").unwrap();
    assert_eq!(std::fs::read(nfsd.tree("carol").join("x")).unwrap(), b"ok");
    m.unmount(&t.path).unwrap();
    assert!(!is_mounted(&t.path));
}

#[test]
fn concurrent_readers_and_writers() {
    require_fuse();
    let nfsd = Nfsd::start();
    nfsd.volume("busy", None);
    let t = Target::new();
    let m = FuseMounter::new().unwrap();
    m.mount(&nfsd.spec("busy"), &t.path, DEADLINE).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let dir = t.path.clone();
            std::thread::spawn(move || {
                for j in 0..50 {
                    let p = dir.join(format!("t{i}-{j}"));
                    let data = format!("{i}:{j}").repeat(100);
                    std::fs::write(&p, &data).unwrap();
                    assert_eq!(std::fs::read_to_string(&p).unwrap(), data);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert_eq!(std::fs::read_dir(&t.path).unwrap().count(), 400);
    m.unmount(&t.path).unwrap();
}

/// Large transfers through the mount come back intact; the rates are printed, not asserted
/// (`cargo test --release --test fuse_backend -- throughput --nocapture`).
#[test]
fn throughput_smoke() {
    require_fuse();
    let nfsd = Nfsd::start();
    nfsd.volume("perf", None);
    let t = Target::new();
    let m = FuseMounter::new().unwrap();
    m.mount(&nfsd.spec("perf"), &t.path, DEADLINE).unwrap();
    let data = vec![7u8; 64 << 20];
    let started = Instant::now();
    let mut f = std::fs::File::create(t.path.join("big")).unwrap();
    for c in data.chunks(1 << 20) {
        f.write_all(c).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    eprintln!("write 64 MiB + fsync: {:?}", started.elapsed());
    let started = Instant::now();
    let back = std::fs::read(t.path.join("big")).unwrap();
    assert_eq!(back.len(), data.len());
    eprintln!("read 64 MiB: {:?}", started.elapsed());
    std::fs::create_dir(t.path.join("many")).unwrap();
    let started = Instant::now();
    for i in 0..2000 {
        std::fs::write(t.path.join(format!("many/f{i}")), b"x").unwrap();
    }
    eprintln!("2000 small creates: {:?}", started.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let n = std::fs::read_dir(t.path.join("many"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().metadata().unwrap().len() == 1)
        .count();
    assert_eq!(n, 2000);
    eprintln!("ls -l of 2000 entries: {:?}", started.elapsed());
    m.unmount(&t.path).unwrap();
}

/// Docker copies an image directory's owner onto an empty volume mounted there (copy-up):
/// the root's own presented ids (jovyan 1000:100, the notebook images' home) are accepted,
/// giving the volume away to root is refused (nfsd acts as the volume's user), and the root
/// keeps its owner.
#[test]
fn the_volume_root_takes_its_own_ids_but_is_not_given_to_root() {
    require_fuse();
    let nfsd = Nfsd::start();
    nfsd.volume("owned", None);
    let t = Target::new();
    let m = FuseMounter::new().unwrap();
    m.mount(&nfsd.spec("owned"), &t.path, DEADLINE).unwrap();
    let ids = |p: &Path| {
        let md = std::fs::symlink_metadata(p).unwrap();
        (md.uid(), md.gid())
    };
    assert_eq!(ids(&t.path), (1000, 100));
    std::os::unix::fs::lchown(&t.path, Some(1000), Some(100)).unwrap();
    let e = std::os::unix::fs::lchown(&t.path, Some(0), Some(0)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    assert_eq!(ids(&t.path), (1000, 100));
    assert_eq!(ids(&nfsd.tree("owned")), STORE);
    m.unmount(&t.path).unwrap();
}
