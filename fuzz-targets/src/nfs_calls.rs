//! The `nfs_calls` target: whole MOUNT and NFSv3 calls through nfsd's real dispatch, against
//! an in-process server over a temp data dir, so that the handles a client learns reach the
//! file system layer with hostile names, offsets, attributes and credentials.
//!
//! **Server.** Once per process: a base directory (on `/dev/shm` when it is there, so fsyncs
//! cost nothing; else the temp dir) holding `data/` (nfsd's data dir, with a fixed handle key
//! so mount paths and handles are the same in every run) and `outside/` (a sentinel tree that
//! no call may touch). nfsd is built by `server::assemble`, exactly as `start` builds it; the
//! volumes are made through `Volumes::create` and `ensure_share_dir`, the code behind the
//! control API: a home volume `home-alice` (8 MiB) and three views of the share `exchange`
//! (alice with 4 MiB, bob, and a read-only one). The trees are seeded with a file, a FIFO,
//! files of other owners and modes, and symlinks that point outside the data dir, relative and
//! absolute. Calls run on a one-worker multi-thread runtime, as in nfsd (file operations run in
//! place under the view's fsuid), one at a time as a connection's records arrive.
//!
//! **Input.** A sequence of operations (at most [`MAX_CALLS`]); missing bytes read as zero.
//! Each starts with an op byte, `op % 26`:
//! - `0`: MNT: a byte picks a volume's export (with its secret), the volume without its
//!   secret, or a path from the input (a [`name`](Input::name));
//! - `1..=21`: that NFSv3 procedure, its arguments built from the input and packed with
//!   `nfs3_types` (handles by reference, see below);
//! - `22`: another MOUNT procedure (`byte % 8`: NULL, MNT, DUMP, UMNT, UMNTALL, EXPORT, and
//!   two that do not exist), with an input path where one is taken;
//! - `23`: a raw record (u16 length `% 4096`, then the bytes): parsed and answered as a
//!   connection does, the header by `parse_call`, the rest by the service;
//! - `24`: NFS procedure `byte` with a handle, then raw argument bytes (byte length);
//! - `25`: a call to another program, version or RPC version.
//!
//! Structured calls then take a credential byte (`% 6`: AUTH_NONE, AUTH_SYS 1000:100,
//! AUTH_SYS root, AUTH_SYS with ids, groups and machine name from the input, another flavor, a
//! malformed AUTH_SYS). A handle is one byte: with none learnt yet, or `0xff`, a literal handle
//! follows (length byte `% 65`, bytes); otherwise `h & 0x3f` counts back from the newest
//! handle learnt in this input (MNT's root, LOOKUP, CREATE, MKDIR, SYMLINK, MKNOD, READDIRPLUS),
//! and `h & 0x40` flips one bit of it (position from the next byte). A name is one byte: below
//! [`NAMES`]'s length a name from that list (`.`, `..`, the seeded entries, a slash, a NUL,
//! 256 bytes), else that many bytes less the list's length. Numbers are big-endian.
//!
//! **Asserted**, beyond no panic: every call gets exactly one reply (none for a record that is
//! not a call, as nfsd then closes the connection), framed as one last fragment, with the
//! call's xid, that decodes as an RPC reply whose result decodes as the procedure's result type
//! using the whole reply; MNT of an export with its secret succeeds and without it fails;
//! EXPORT lists nothing; a call with a forged or altered handle is `NFS3ERR_BADHANDLE` (or
//! refused before); no call takes more than [`SLOW_CALL`]; nothing outside the trees of the
//! volumes changes: the sentinel tree next to the data dir (every entry's type, mode, owner,
//! size, mtime, content), the base directory's and data dir's entries, the handle key and the
//! registry. After an input that may have changed the trees, they are reset to their seed
//! (what they hold is summed first and must stay under [`MAX_TREE_BYTES`]) and nfsd is
//! assembled again over them, so every input starts from the same state.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nfs3_types::mount::{exports, mountlist, mountres3};
use nfs3_types::nfs3::*;
use nfs3_types::rpc::{accept_stat_data, msg_body, reply_body, rpc_msg};
use nfs3_types::xdr_codec::{Opaque, Pack, Unpack};
use swarmhub_control_api::{CreateVolume, ExplicitIdentity, ShareDir, VolumeOptions};
use swarmhub_nfsd::config::Settings;
use swarmhub_nfsd::nfs::{NfsService, decode};
use swarmhub_nfsd::rpc::message::{HeaderError, auth_error, parse_call};
use swarmhub_nfsd::rpc::{Request, Service};
use swarmhub_nfsd::server::{Core, assemble};

/// Calls run per input at most.
pub const MAX_CALLS: usize = 64;
/// Handles remembered per input.
const MAX_SLOTS: usize = 32;
/// A call slower than this fails the input: nfsd's calls must not block.
pub const SLOW_CALL: Duration = Duration::from_secs(5);
/// What the trees may hold after one input (allocated bytes): the quotas and the input's own
/// length bound it far below this.
pub const MAX_TREE_BYTES: u64 = 64 << 20;

const NFS: u32 = 100_003;
const MOUNT: u32 = 100_005;
const HOME: &str = "home-alice";
const SHARE: &str = "exchange";
/// The volumes, in the order MNT's export byte picks them.
const VOLUMES: &[&str] = &[HOME, "exchange-alice", "exchange-bob", "exchange-ro"];
const ALICE: (u32, u32) = (4101, 4100);
const BOB: (u32, u32) = (4102, 4100);
const CAROL: (u32, u32) = (4103, 4100);

/// Names a name byte below this list's length picks.
pub const NAMES: &[&[u8]] = &[
    b".",
    b"..",
    b"work",
    b"notebook.ipynb",
    b"escape",
    b"up",
    b"secret-link",
    b"fifo",
    b"ro.txt",
    b"root.txt",
    b"course",
    b"inbound",
    b"a",
    b"b",
    b"",
    b"x/y",
    b"nul\0",
    &[b'n'; 256],
    b"../../../outside/secret",
    b"/",
];

/// The server and what the checks compare against, made once per process.
struct Harness {
    rt: tokio::runtime::Runtime,
    settings: Settings,
    base: PathBuf,
    core: Core,
    /// Mount paths (`/<volume>/<secret>`) in [`VOLUMES`] order.
    exports: Vec<String>,
    /// The state outside the trees that no call may change.
    untouchable: Snapshot,
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

/// Runs `data` as a sequence of calls (see the module documentation).
pub fn nfs_calls(data: &[u8]) {
    HARNESS.with(|h| {
        let mut h = h.borrow_mut();
        let h = h.get_or_insert_with(Harness::new);
        let dirty = h.run(data, None);
        let now = h.snapshot();
        if now != h.untouchable {
            panic!(
                "a call changed something outside the volumes' trees:\n{}",
                h.untouchable.diff(&now)
            );
        }
        if dirty {
            h.reset();
        }
    });
}

/// Bytes of the input, read front to back; past the end everything reads as zero.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let start = self.pos.min(self.data.len());
        let end = (self.pos + n).min(self.data.len());
        self.pos += n;
        self.data[start..end].to_vec()
    }
    fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        for x in &mut b {
            *x = self.u8();
        }
        u32::from_be_bytes(b)
    }
    fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }
    /// A name: from [`NAMES`], or that many bytes of the input.
    fn name(&mut self) -> Vec<u8> {
        let b = self.u8() as usize;
        match NAMES.get(b) {
            Some(n) => n.to_vec(),
            None => self.bytes(b - NAMES.len()),
        }
    }
    fn time(&mut self) -> nfstime3 {
        nfstime3 {
            seconds: self.u32(),
            nseconds: self.u32(),
        }
    }
    fn sattr(&mut self) -> sattr3 {
        let f = self.u8();
        let opt32 = |on: bool, i: &mut Self| match on {
            true => Nfs3Option::Some(i.u32()),
            false => Nfs3Option::None,
        };
        let mode = opt32(f & 1 != 0, self);
        let uid = opt32(f & 2 != 0, self);
        let gid = opt32(f & 4 != 0, self);
        let size = match f & 8 != 0 {
            true => Nfs3Option::Some(self.u64()),
            false => Nfs3Option::None,
        };
        let atime = match (f >> 4) & 3 {
            0 => set_atime::DONT_CHANGE,
            1 => set_atime::SET_TO_SERVER_TIME,
            _ => set_atime::SET_TO_CLIENT_TIME(self.time()),
        };
        let mtime = match (f >> 6) & 3 {
            0 => set_mtime::DONT_CHANGE,
            1 => set_mtime::SET_TO_SERVER_TIME,
            _ => set_mtime::SET_TO_CLIENT_TIME(self.time()),
        };
        sattr3 {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        }
    }
}

/// One call as the target builds it.
struct Call {
    record: Vec<u8>,
    /// MOUNT or NFS procedure whose result type the reply must decode as (None: do not know).
    expect: Option<(u32, u32)>,
    /// A handle in the call was forged or altered.
    forged: bool,
    /// What MNT must answer: Some(true) must mount, Some(false) must be refused.
    mnt_must: Option<bool>,
}

/// The state of one input: handles learnt and whether the trees may have changed.
struct Session {
    slots: Vec<Vec<u8>>,
    xid: u32,
    dirty: bool,
    /// What each reply said, when tracing (tests).
    trace: Option<Vec<String>>,
}

impl Session {
    /// A handle by reference (see the module documentation); true when forged or altered.
    fn handle(&mut self, i: &mut Input<'_>) -> (nfs_fh3, bool) {
        let h = i.u8();
        if self.slots.is_empty() || h == 0xff {
            let n = (i.u8() % 65) as usize;
            let bytes = i.bytes(n);
            return (fh(bytes), true);
        }
        let k = (h & 0x3f) as usize % self.slots.len();
        let mut bytes = self.slots[self.slots.len() - 1 - k].clone();
        if h & 0x40 != 0 {
            let p = i.u8() as usize;
            let at = p % bytes.len();
            bytes[at] ^= 1 << (p % 8);
            return (fh(bytes), true);
        }
        (fh(bytes), false)
    }

    fn note(&mut self, what: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(what());
        }
    }

    fn learn(&mut self, h: &[u8]) {
        if self.slots.len() == MAX_SLOTS {
            self.slots.remove(0);
        }
        self.slots.push(h.to_vec());
    }
}

fn fh(bytes: Vec<u8>) -> nfs_fh3 {
    nfs_fh3 {
        data: Opaque::owned(bytes),
    }
}

fn fname(n: Vec<u8>) -> filename3<'static> {
    filename3(Opaque::owned(n))
}

fn pack(v: &impl Pack) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.packed_size());
    v.pack(&mut out).expect("packing into a Vec");
    out
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_opaque(out: &mut Vec<u8>, b: &[u8]) {
    put32(out, u32::try_from(b.len()).expect("a short opaque"));
    out.extend_from_slice(b);
    out.resize(out.len().div_ceil(4) * 4, 0);
}

/// The credential and verifier of a call.
fn credential(i: &mut Input<'_>) -> Vec<u8> {
    fn unix(uid: u32, gid: u32, groups: &[u32], machine: &[u8], out: &mut Vec<u8>) {
        let mut body = Vec::new();
        put32(&mut body, 1);
        put_opaque(&mut body, machine);
        put32(&mut body, uid);
        put32(&mut body, gid);
        put32(&mut body, u32::try_from(groups.len()).expect("few groups"));
        for g in groups {
            put32(&mut body, *g);
        }
        put32(out, 1);
        put_opaque(out, &body);
    }
    let mut out = Vec::new();
    match i.u8() % 6 {
        0 => {
            put32(&mut out, 0);
            put32(&mut out, 0);
        }
        1 => unix(1000, 100, &[100], b"node1", &mut out),
        2 => unix(0, 0, &[], b"node1", &mut out),
        3 => {
            let (uid, gid) = (i.u32(), i.u32());
            let groups: Vec<u32> = (0..i.u8() % 17).map(|_| i.u32()).collect();
            let mut machine = i.name();
            machine.truncate(255);
            unix(uid, gid, &groups, &machine, &mut out);
        }
        4 => {
            put32(&mut out, i.u32());
            let n = (i.u8() % 64) as usize;
            put_opaque(&mut out, &i.bytes(n));
        }
        // 17 groups: one more than RFC 5531 allows
        _ => unix(1000, 100, &[100; 17], b"node1", &mut out),
    }
    // verifier: AUTH_NONE
    put32(&mut out, 0);
    put32(&mut out, 0);
    out
}

fn header(xid: u32, rpcvers: u32, prog: u32, vers: u32, proc_: u32, cred: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(64);
    for w in [xid, 0, rpcvers, prog, vers, proc_] {
        put32(&mut r, w);
    }
    r.extend_from_slice(cred);
    r
}

/// NFSv3 arguments of procedure `p` from the input; true when a handle is forged.
fn nfs_args(s: &mut Session, i: &mut Input<'_>, p: u32) -> (Vec<u8>, bool) {
    let mut forged = false;
    let mut h = |i: &mut Input<'_>, s: &mut Session| {
        let (h, f) = s.handle(i);
        forged |= f;
        h
    };
    let args = match p {
        1 => pack(&GETATTR3args { object: h(i, s) }),
        2 => {
            let object = h(i, s);
            let new_attributes = i.sattr();
            let guard = match i.u8() & 1 {
                1 => Nfs3Option::Some(i.time()),
                _ => Nfs3Option::None,
            };
            pack(&SETATTR3args {
                object,
                new_attributes,
                guard,
            })
        }
        3 => {
            let dir = h(i, s);
            pack(&LOOKUP3args {
                what: diropargs3 {
                    dir,
                    name: fname(i.name()),
                },
            })
        }
        4 => {
            let object = h(i, s);
            pack(&ACCESS3args {
                object,
                access: i.u32(),
            })
        }
        5 => pack(&READLINK3args { symlink: h(i, s) }),
        6 => {
            let file = h(i, s);
            pack(&READ3args {
                file,
                offset: i.u64(),
                count: i.u32(),
            })
        }
        7 => {
            let file = h(i, s);
            let offset = i.u64();
            let st = i.u8();
            let stable = match st % 3 {
                0 => stable_how::UNSTABLE,
                1 => stable_how::DATA_SYNC,
                _ => stable_how::FILE_SYNC,
            };
            let n = (usize::from(i.u8()) << 8 | usize::from(i.u8())) % 8192;
            let data = i.bytes(n);
            let count = match st & 0x80 {
                0 => u32::try_from(data.len()).expect("at most 8 KiB"),
                _ => i.u32(),
            };
            pack(&WRITE3args {
                file,
                offset,
                count,
                stable,
                data: Opaque::owned(data),
            })
        }
        8 => {
            let dir = h(i, s);
            let name = fname(i.name());
            let how = match i.u8() % 3 {
                0 => createhow3::UNCHECKED(i.sattr()),
                1 => createhow3::GUARDED(i.sattr()),
                _ => {
                    let v: [u8; 8] = i.bytes(8).try_into().unwrap_or_default();
                    createhow3::EXCLUSIVE(createverf3(v))
                }
            };
            pack(&CREATE3args {
                where_: diropargs3 { dir, name },
                how,
            })
        }
        9 => {
            let dir = h(i, s);
            let name = fname(i.name());
            pack(&MKDIR3args {
                where_: diropargs3 { dir, name },
                attributes: i.sattr(),
            })
        }
        10 => {
            let dir = h(i, s);
            let name = fname(i.name());
            let symlink_attributes = i.sattr();
            pack(&SYMLINK3args {
                where_: diropargs3 { dir, name },
                symlink: symlinkdata3 {
                    symlink_attributes,
                    symlink_data: nfspath3(Opaque::owned(i.name())),
                },
            })
        }
        11 => {
            let dir = h(i, s);
            let mut out = pack(&diropargs3 {
                dir,
                name: fname(i.name()),
            });
            // CHR, BLK, SOCK, FIFO, and two types MKNOD does not make (REG, DIR)
            let t = [4u32, 3, 6, 7, 1, 2][usize::from(i.u8()) % 6];
            put32(&mut out, t);
            match t {
                3 | 4 => {
                    out.extend(pack(&i.sattr()));
                    put32(&mut out, i.u32());
                    put32(&mut out, i.u32());
                }
                6 | 7 => out.extend(pack(&i.sattr())),
                _ => {}
            }
            out
        }
        12 | 13 => {
            let dir = h(i, s);
            pack(&diropargs3 {
                dir,
                name: fname(i.name()),
            })
        }
        14 => {
            let from = h(i, s);
            let from_name = fname(i.name());
            let to = h(i, s);
            pack(&RENAME3args {
                from: diropargs3 {
                    dir: from,
                    name: from_name,
                },
                to: diropargs3 {
                    dir: to,
                    name: fname(i.name()),
                },
            })
        }
        15 => {
            let file = h(i, s);
            let dir = h(i, s);
            pack(&LINK3args {
                file,
                link: diropargs3 {
                    dir,
                    name: fname(i.name()),
                },
            })
        }
        16 => {
            let dir = h(i, s);
            pack(&READDIR3args {
                dir,
                cookie: i.u64(),
                cookieverf: cookieverf3(i.u64().to_be_bytes()),
                count: i.u32(),
            })
        }
        17 => {
            let dir = h(i, s);
            pack(&READDIRPLUS3args {
                dir,
                cookie: i.u64(),
                cookieverf: cookieverf3(i.u64().to_be_bytes()),
                dircount: i.u32(),
                maxcount: i.u32(),
            })
        }
        18 => pack(&FSSTAT3args { fsroot: h(i, s) }),
        19 => pack(&FSINFO3args { fsroot: h(i, s) }),
        20 => pack(&PATHCONF3args { object: h(i, s) }),
        21 => {
            let file = h(i, s);
            pack(&COMMIT3args {
                file,
                offset: i.u64(),
                count: i.u32(),
            })
        }
        _ => Vec::new(),
    };
    (args, forged)
}

#[cfg(test)]
mod tests;

/// Procedures that may change the trees.
fn changes_trees(p: u32) -> bool {
    matches!(p, 2 | 7..=15)
}

impl Harness {
    fn new() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "the nfs_calls target runs nfsd in-process and needs root, as nfsd does"
        );
        let base = base_dir();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a one-worker runtime");
        let data = base.join("data");
        std::fs::create_dir_all(&data)
            .unwrap_or_else(|e| panic!("creating {}: {e}", data.display()));
        std::fs::write(data.join("handle.key"), [0x5a; 32])
            .unwrap_or_else(|e| panic!("writing the handle key in {}: {e}", data.display()));
        make_outside(&base.join("outside"));
        let mut settings = Settings::ephemeral(&data);
        // what a test server does too; the fuzzer makes no crash-consistency claims
        settings.sync_metadata = false;
        let core = assemble(&settings)
            .unwrap_or_else(|e| panic!("assembling nfsd over {}: {e:#}", data.display()));
        rt.block_on(async {
            for (name, share, ids, readonly, size) in [
                (HOME, None, ALICE, false, Some(8 << 20)),
                ("exchange-alice", Some(SHARE), ALICE, false, Some(4 << 20)),
                ("exchange-bob", Some(SHARE), BOB, false, None),
                ("exchange-ro", Some(SHARE), CAROL, true, None),
            ] {
                core.volumes
                    .create(CreateVolume {
                        name: name.into(),
                        options: VolumeOptions {
                            user: Some(format!("u{}", ids.0)),
                            share: share.map(Into::into),
                            size,
                            readonly,
                            layout: None,
                        },
                        identity: Some(ExplicitIdentity {
                            uid: ids.0,
                            gid: ids.1,
                            groups: vec![ids.1],
                        }),
                        client: None,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("creating volume {name}: {e}"));
            }
        });
        let exports = VOLUMES
            .iter()
            .map(|v| core.volumes.get(v).expect("a volume just made").export)
            .collect();
        let mut h = Harness {
            rt,
            settings,
            base,
            core,
            exports,
            untouchable: Snapshot::default(),
        };
        h.reset();
        h.untouchable = h.snapshot();
        h
    }

    fn home(&self) -> PathBuf {
        self.settings.data_dir.join("volumes").join(HOME)
    }

    fn share(&self) -> PathBuf {
        self.settings.data_dir.join("shares").join(SHARE)
    }

    /// Puts the trees back to their seed and assembles nfsd again over them.
    fn reset(&mut self) {
        let (home, share) = (self.home(), self.share());
        let mut held = 0;
        for tree in [&home, &share] {
            held += empty_dir(tree);
        }
        assert!(
            held <= MAX_TREE_BYTES,
            "the volumes' trees hold {held} bytes after one input (at most {MAX_TREE_BYTES})"
        );
        // the home root as Volumes::create made it; the share root is taken over by Volumes::open
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o750))
            .expect("chmod home");
        std::os::unix::fs::chown(&home, Some(ALICE.0), Some(ALICE.1)).expect("chown home");
        let outside = self.base.join("outside");
        seed(&home, &outside, ALICE);
        self.core =
            assemble(&self.settings).unwrap_or_else(|e| panic!("assembling nfsd again: {e:#}"));
        let volumes = self.core.volumes.clone();
        self.rt.block_on(async {
            for (dir, owner, mode) in [("course", ALICE, 0o755), ("inbound", ALICE, 0o2733)] {
                volumes
                    .ensure_share_dir(
                        SHARE,
                        dir,
                        ShareDir {
                            user: None,
                            identity: Some(ExplicitIdentity {
                                uid: owner.0,
                                gid: owner.1,
                                groups: vec![],
                            }),
                            mode,
                        },
                    )
                    .await
                    .unwrap_or_else(|e| panic!("share dir {dir}: {e}"));
            }
        });
        seed(&share.join("course"), &outside, ALICE);
    }

    /// What no call may change.
    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        s.walk(&self.base.join("outside"), "outside");
        let data = &self.settings.data_dir;
        s.names("base", &self.base);
        s.names("data", data);
        for sub in ["volumes", "shares", "removed"] {
            s.names(sub, &data.join(sub));
        }
        for f in ["handle.key", "registry.json"] {
            let bytes = std::fs::read(data.join(f)).unwrap_or_default();
            s.0.insert(format!("data/{f}"), digest(&bytes));
        }
        s
    }

    /// Runs the input's calls; true when the trees may have changed.
    fn run(&self, data: &[u8], trace: Option<&mut Vec<String>>) -> bool {
        let mut i = Input { data, pos: 0 };
        let mut s = Session {
            slots: Vec::new(),
            xid: 0x5157_0000,
            dirty: false,
            trace: trace.as_ref().map(|_| Vec::new()),
        };
        let svc = self.core.service.clone();
        for _ in 0..MAX_CALLS {
            if i.done() {
                break;
            }
            s.xid = s.xid.wrapping_add(1);
            let Some(call) = self.build(&mut s, &mut i) else {
                continue;
            };
            self.answer(&svc, &mut s, call);
        }
        if let (Some(out), Some(t)) = (trace, s.trace) {
            *out = t;
        }
        s.dirty
    }

    fn build(&self, s: &mut Session, i: &mut Input<'_>) -> Option<Call> {
        let xid = s.xid;
        let op = i.u8() % 26;
        let call = match op {
            0 => {
                let cred = credential(i);
                let pick = usize::from(i.u8()) % (self.exports.len() + 2);
                let (path, must) = match pick {
                    k if k < self.exports.len() => {
                        (self.exports[k].clone().into_bytes(), Some(true))
                    }
                    k if k == self.exports.len() => (format!("/{HOME}").into_bytes(), Some(false)),
                    _ => (i.name(), None),
                };
                let mut record = header(xid, 2, MOUNT, 3, 1, &cred);
                put_opaque(&mut record, &path);
                Call {
                    record,
                    expect: Some((MOUNT, 1)),
                    forged: false,
                    mnt_must: must,
                }
            }
            1..=21 => {
                let p = u32::from(op);
                let cred = credential(i);
                let (args, forged) = nfs_args(s, i, p);
                s.dirty |= changes_trees(p);
                let mut record = header(xid, 2, NFS, 3, p, &cred);
                record.extend(args);
                Call {
                    record,
                    expect: Some((NFS, p)),
                    forged,
                    mnt_must: None,
                }
            }
            22 => {
                let p = u32::from(i.u8() % 8);
                let cred = credential(i);
                let mut record = header(xid, 2, MOUNT, 3, p, &cred);
                if matches!(p, 1 | 3) {
                    put_opaque(&mut record, &i.name());
                }
                Call {
                    record,
                    expect: Some((MOUNT, p)),
                    forged: false,
                    mnt_must: None,
                }
            }
            23 => {
                let n = (usize::from(i.u8()) << 8 | usize::from(i.u8())) % 4096;
                s.dirty = true;
                Call {
                    record: i.bytes(n),
                    expect: None,
                    forged: false,
                    mnt_must: None,
                }
            }
            24 => {
                let p = u32::from(i.u8());
                let cred = credential(i);
                let (h, forged) = s.handle(i);
                let n = usize::from(i.u8());
                let mut record = header(xid, 2, NFS, 3, p, &cred);
                record.extend(pack(&h));
                record.extend(i.bytes(n));
                s.dirty |= changes_trees(p);
                Call {
                    record,
                    expect: None,
                    forged,
                    mnt_must: None,
                }
            }
            _ => {
                let (rpcvers, prog, vers) = match i.u8() % 6 {
                    0 => (2, NFS, 2),
                    1 => (2, NFS, 4),
                    2 => (2, MOUNT, 1),
                    3 => (2, 100_000, 2),
                    4 => (3, NFS, 3),
                    _ => (i.u32(), i.u32(), i.u32()),
                };
                let cred = credential(i);
                Call {
                    record: header(xid, rpcvers, prog, vers, 0, &cred),
                    expect: None,
                    forged: false,
                    mnt_must: None,
                }
            }
        };
        Some(call)
    }

    /// Answers one record as a connection does after record framing, and checks the reply.
    fn answer(&self, svc: &Arc<NfsService>, s: &mut Session, call: Call) {
        let peer: SocketAddr = "127.0.0.1:700".parse().expect("an address");
        let started = Instant::now();
        let (xid, reply) = match parse_call(&call.record) {
            // nfsd closes the connection and answers nothing
            Err(HeaderError::NotACall) => return s.note(|| "not a call".into()),
            Err(HeaderError::BadCredential { xid }) => (
                xid,
                Some(auth_error(xid, nfs3_types::rpc::auth_stat::AUTH_BADCRED)),
            ),
            Ok(header) => {
                let xid = header.xid;
                let req = Request {
                    peer,
                    header,
                    record: call.record,
                };
                (xid, self.rt.block_on(svc.call(req)))
            }
        };
        let took = started.elapsed();
        assert!(
            took < SLOW_CALL,
            "a call took {took:?}: nfsd's calls must not block"
        );
        let reply = reply.unwrap_or_else(|| panic!("no reply to call {xid:#x}"));
        check_reply(s, xid, &reply, &call.expect, call.forged, call.mnt_must);
    }
}

/// Checks a framed reply and learns the handles it carries.
fn check_reply(
    s: &mut Session,
    xid: u32,
    reply: &[u8],
    expect: &Option<(u32, u32)>,
    forged: bool,
    mnt_must: Option<bool>,
) {
    assert!(reply.len() >= 8, "a reply of {} bytes", reply.len());
    let mark = u32::from_be_bytes(reply[..4].try_into().expect("4 bytes"));
    assert!(
        mark & 0x8000_0000 != 0 && (mark & 0x7fff_ffff) as usize == reply.len() - 4,
        "the record mark {mark:#x} does not frame a reply of {} bytes as one last fragment",
        reply.len() - 4
    );
    let body = &reply[4..];
    let mut c = Cursor::new(body);
    let (msg, used) = rpc_msg::unpack(&mut c)
        .unwrap_or_else(|e| panic!("the reply to {xid:#x} is not an RPC reply: {e:?}"));
    assert_eq!(msg.xid, xid, "a reply with another xid than its call's");
    let rest = &body[used..];
    let msg_body::REPLY(reply_body::MSG_ACCEPTED(acc)) = msg.body else {
        if let msg_body::REPLY(reply_body::MSG_DENIED(d)) = msg.body {
            assert!(rest.is_empty(), "bytes after a denied reply");
            return s.note(|| format!("denied {d:?}"));
        }
        panic!("the reply to {xid:#x} is a CALL");
    };
    let accept_stat_data::SUCCESS = acc.reply_data else {
        assert!(rest.is_empty(), "bytes after a failed accepted reply");
        return s.note(|| format!("{:?}", acc.reply_data));
    };
    let Some((prog, p)) = *expect else {
        return s.note(|| "SUCCESS".into());
    };
    fn whole<T: Unpack>(rest: &[u8], what: &str) -> T {
        decode::<T>(rest)
            .unwrap_or_else(|| panic!("the result of {what} does not decode as its type"))
    }
    if prog == MOUNT {
        match p {
            1 => match whole::<mountres3<'static>>(rest, "MNT") {
                mountres3::Ok(ok) => {
                    assert_ne!(
                        mnt_must,
                        Some(false),
                        "MNT of a volume without its secret succeeded"
                    );
                    s.learn(&ok.fhandle.0);
                    s.note(|| "MNT OK".into());
                }
                mountres3::Err(e) => {
                    assert_ne!(
                        mnt_must,
                        Some(true),
                        "MNT of an export with its secret failed: {e:?}"
                    );
                    s.note(|| format!("MNT {e:?}"));
                }
            },
            2 => drop(whole::<mountlist<'static, 'static>>(rest, "DUMP")),
            5 => assert!(
                whole::<exports<'static, 'static>>(rest, "EXPORT")
                    .0
                    .is_empty(),
                "EXPORT lists volumes"
            ),
            _ => assert!(rest.is_empty(), "bytes after a MOUNT result without a body"),
        }
        if p != 1 {
            s.note(|| format!("MOUNT {p} OK"));
        }
        return;
    }
    let status = rest
        .get(..4)
        .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")));
    if forged && p != 0 {
        assert_eq!(
            status,
            Some(nfsstat3::NFS3ERR_BADHANDLE as u32),
            "NFS procedure {p} took a forged or altered handle"
        );
    }
    let ok = status == Some(0);
    macro_rules! res {
        ($t:ty) => {
            whole::<$t>(rest, swarmhub_nfsd::nfs::nfs3::name(p))
        };
    }
    let mut learnt: Vec<Vec<u8>> = Vec::new();
    match p {
        0 => assert!(rest.is_empty(), "bytes after the result of NULL"),
        1 => drop(res!(GETATTR3res)),
        2 => drop(res!(SETATTR3res)),
        3 => {
            if let Nfs3Result::Ok(ok) = res!(LOOKUP3res) {
                learnt.push(ok.object.data.to_vec());
            }
        }
        4 => drop(res!(ACCESS3res)),
        5 => drop(res!(READLINK3res<'static>)),
        6 => drop(res!(READ3res<'static>)),
        7 => drop(res!(WRITE3res)),
        8..=11 => {
            let obj = match p {
                8 => res!(CREATE3res).ok_map(|o| o.obj),
                9 => res!(MKDIR3res).ok_map(|o| o.obj),
                10 => res!(SYMLINK3res).ok_map(|o| o.obj),
                _ => res!(MKNOD3res).ok_map(|o| o.obj),
            };
            if let Some(Nfs3Option::Some(h)) = obj {
                learnt.push(h.data.to_vec());
            }
        }
        12 => drop(res!(REMOVE3res)),
        13 => drop(res!(RMDIR3res)),
        14 => drop(res!(RENAME3res)),
        15 => drop(res!(LINK3res)),
        16 => drop(res!(READDIR3res<'static>)),
        17 => {
            if let Nfs3Result::Ok(ok) = res!(READDIRPLUS3res<'static>) {
                for e in ok.reply.entries.0.iter().take(8) {
                    if let Nfs3Option::Some(h) = &e.name_handle {
                        learnt.push(h.data.to_vec());
                    }
                }
            }
        }
        18 => drop(res!(FSSTAT3res)),
        19 => drop(res!(FSINFO3res)),
        20 => drop(res!(PATHCONF3res)),
        21 => drop(res!(COMMIT3res)),
        _ => {}
    }
    assert!(ok || learnt.is_empty(), "a failed call returned a handle");
    s.note(|| {
        let name = swarmhub_nfsd::nfs::nfs3::name(p);
        match rest.get(..4).and_then(decode::<nfsstat3>) {
            Some(nfsstat3::NFS3_OK) => format!("{name} OK"),
            Some(e) => format!("{name} {e:?}"),
            None => format!("{name} ?"),
        }
    });
    for h in learnt {
        s.learn(&h);
    }
}

/// The result of a call that returns a handle, as an Option of its OK part.
trait OkPart<T> {
    fn ok_map<U>(self, f: impl FnOnce(T) -> U) -> Option<U>;
}

impl<T, E> OkPart<T> for Nfs3Result<T, E> {
    fn ok_map<U>(self, f: impl FnOnce(T) -> U) -> Option<U> {
        match self {
            Nfs3Result::Ok(t) => Some(f(t)),
            Nfs3Result::Err(_) => None,
        }
    }
}

/// The base directory of this thread: on `/dev/shm` when it is there. Those of processes that
/// are gone are removed first.
fn base_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let parent = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    const PREFIX: &str = "swarmhub-fuzz-nfs_calls-";
    if let Ok(rd) = std::fs::read_dir(&parent) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next())
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    // one per thread: test threads each have their own harness
    static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = THREADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = parent.join(format!("{PREFIX}{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap_or_else(|e| panic!("creating {}: {e}", base.display()));
    base
}

/// The sentinel tree next to the data dir.
fn make_outside(outside: &Path) {
    let _ = std::fs::remove_dir_all(outside);
    std::fs::create_dir_all(outside.join("dir"))
        .unwrap_or_else(|e| panic!("creating {}: {e}", outside.display()));
    std::fs::write(
        outside.join("secret"),
        b"sentinel: no call may change this\n",
    )
    .expect("sentinel");
    std::fs::write(outside.join("dir/file"), b"sentinel\n").expect("sentinel");
    // writable by everyone, so only confinement keeps a view out
    for (p, m) in [
        ("", 0o777),
        ("secret", 0o666),
        ("dir", 0o777),
        ("dir/file", 0o666),
    ] {
        std::fs::set_permissions(outside.join(p), std::fs::Permissions::from_mode(m))
            .expect("sentinel mode");
    }
}

/// Removes everything in `dir` (as root) and returns the bytes it held.
fn empty_dir(dir: &Path) -> u64 {
    let mut held = 0;
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for e in rd.flatten() {
        let p = e.path();
        let md = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        held += md.blocks() * 512;
        if md.is_dir() {
            held += empty_dir(&p);
            std::fs::remove_dir(&p).unwrap_or_else(|e| panic!("removing {}: {e}", p.display()));
        } else {
            std::fs::remove_file(&p).unwrap_or_else(|e| panic!("removing {}: {e}", p.display()));
        }
    }
    held
}

/// The seed entries of a directory in a tree, owned by `owner`: a work dir with a notebook, a
/// FIFO, a read-only file, a root-only file, and symlinks out of the data dir.
fn seed(dir: &Path, outside: &Path, owner: (u32, u32)) {
    let own = |p: &Path| {
        std::os::unix::fs::lchown(p, Some(owner.0), Some(owner.1))
            .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()))
    };
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap_or_else(|e| panic!("creating {}: {e}", work.display()));
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    own(&work);
    let nb = work.join("notebook.ipynb");
    std::fs::write(&nb, b"{\"cells\": []}\n").expect("seed file");
    std::fs::set_permissions(&nb, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    own(&nb);
    let ro = dir.join("ro.txt");
    std::fs::write(&ro, b"read only\n").expect("seed file");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    own(&ro);
    let root = dir.join("root.txt");
    std::fs::write(&root, b"root's\n").expect("seed file");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let fifo = dir.join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o666),
        0,
    )
    .expect("mkfifo");
    own(&fifo);
    // relative, from any depth of the data dir, and absolute
    let up = "../".repeat(8) + &outside.to_string_lossy()[1..];
    for (name, target) in [
        ("escape", outside.to_path_buf()),
        ("secret-link", outside.join("secret")),
        ("up", PathBuf::from(up)),
    ] {
        let p = dir.join(name);
        std::os::unix::fs::symlink(&target, &p)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", p.display()));
        own(&p);
        let w = work.join(name);
        std::os::unix::fs::symlink(&target, &w)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", w.display()));
        own(&w);
    }
}

/// A file's content in short: its length and SipHash (with fixed keys).
fn digest(bytes: &[u8]) -> String {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    h.write(bytes);
    format!("{} bytes, hash {:016x}", bytes.len(), h.finish())
}

/// What must not change, by a readable key.
#[derive(Debug, Default, PartialEq, Eq)]
struct Snapshot(BTreeMap<String, String>);

impl Snapshot {
    fn walk(&mut self, p: &Path, key: &str) {
        let Ok(md) = std::fs::symlink_metadata(p) else {
            return;
        };
        let content = if md.is_file() {
            digest(&std::fs::read(p).unwrap_or_default())
        } else {
            String::new()
        };
        self.0.insert(
            key.to_string(),
            format!(
                "mode {:o} owner {}:{} size {} mtime {}.{} nlink {} {content}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.size(),
                md.mtime(),
                md.mtime_nsec(),
                md.nlink()
            ),
        );
        if md.is_dir()
            && let Ok(rd) = std::fs::read_dir(p)
        {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                self.walk(&e.path(), &format!("{key}/{name}"));
            }
        }
    }

    fn names(&mut self, key: &str, dir: &Path) {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        self.0.insert(format!("entries of {key}"), names.join(" "));
    }

    fn diff(&self, now: &Snapshot) -> String {
        let mut out = String::new();
        for (k, v) in &self.0 {
            match now.0.get(k) {
                Some(n) if n == v => {}
                Some(n) => out += &format!("{k}: was {v}, now {n}\n"),
                None => out += &format!("{k}: gone (was {v})\n"),
            }
        }
        for (k, v) in &now.0 {
            if !self.0.contains_key(k) {
                out += &format!("{k}: new: {v}\n");
            }
        }
        out
    }
}

/// What each reply of `data` said (`MNT OK`, `LOOKUP NFS3ERR_NOENT`, `GARBAGE_ARGS`, ...), for
/// tests: runs like [`nfs_calls`], with the same checks.
pub fn trace(data: &[u8]) -> Vec<String> {
    HARNESS.with(|h| {
        let mut h = h.borrow_mut();
        let h = h.get_or_insert_with(Harness::new);
        let mut out = Vec::new();
        let dirty = h.run(data, Some(&mut out));
        assert!(
            h.snapshot() == h.untouchable,
            "a call changed something outside the trees"
        );
        if dirty {
            h.reset();
        }
        out
    })
}
