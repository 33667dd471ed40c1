"""Writes the hand-made seeds of every fuzz target into corpus/<target>/ (run once; the
fuzzer grows the corpus from them and `cargo fuzz cmin` keeps it small).

    python3 fuzz/seeds.py [target ...]   (default: every target)"""

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ONLY = set(sys.argv[1:])


def put(target, name, data):
    if ONLY and target not in ONLY:
        return
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def u32(x):
    return struct.pack(">I", x)


def opaque(b):
    pad = (4 - len(b) % 4) % 4
    return u32(len(b)) + b + b"\0" * pad


def auth_sys(uid=1000, gid=100):
    body = u32(0) + opaque(b"node1") + u32(uid) + u32(gid) + u32(1) + u32(gid)
    return u32(1) + opaque(body)


def call(prog, vers, proc_, args, cred=None):
    cred = cred if cred is not None else auth_sys()
    return u32(7) + u32(0) + u32(2) + u32(prog) + u32(vers) + u32(proc_) + cred + u32(0) + u32(0) + args


def frame(record, last=True):
    return u32(len(record) | (0x80000000 if last else 0)) + record


fh = opaque(bytes(range(40)))
name = opaque(b"notebook.ipynb")
calls = {
    "null": call(100003, 3, 0, b""),
    "getattr": call(100003, 3, 1, fh),
    "lookup": call(100003, 3, 3, fh + name),
    "read": call(100003, 3, 6, fh + struct.pack(">Q", 0) + u32(4096)),
    "write": call(100003, 3, 7, fh + struct.pack(">Q", 0) + u32(5) + u32(2) + opaque(b"hello")),
    "create": call(100003, 3, 8, fh + name + u32(0) + u32(1) + u32(0o644) + u32(0) * 5),
    "rename": call(100003, 3, 14, fh + name + fh + opaque(b"new.ipynb")),
    "readdirplus": call(100003, 3, 17, fh + struct.pack(">Q", 0) + b"\0" * 8 + u32(4096) + u32(32768)),
    "commit": call(100003, 3, 21, fh + struct.pack(">Q", 0) + u32(0)),
    "mnt": call(100005, 3, 1, opaque(b"/home-alice/0123456789abcdef")),
    "export": call(100005, 3, 5, b""),
    "auth_none": call(100003, 3, 0, b"", cred=u32(0) + u32(0)),
    "bad_rpcvers": u32(1) + u32(0) + u32(3) + u32(100003) + u32(3) + u32(0),
}
for k, v in calls.items():
    put("rpc_call", k, v)
    put("rpc_record", k, frame(v))
put("rpc_record", "two_fragments", frame(calls["getattr"][:20], last=False) + frame(calls["getattr"][20:]))
put("rpc_record", "two_records", frame(calls["null"]) + frame(calls["lookup"]))
put("rpc_record", "huge_header", u32(0xFFFFFFFF) + b"x" * 8)
put("rpc_record", "truncated", u32(0x80000100) + b"abc")

put("control_api_bodies", "home", json.dumps({"name": "home-alice", "user": "alice", "layout": "home", "size": "10G"}))
put("control_api_bodies", "share", json.dumps({"name": "exchange-alice", "share": "exchange", "user": "alice", "size": "2147483648"}))
put("control_api_bodies", "identity", json.dumps({"name": "v1", "identity": {"uid": 4101, "gid": 4100}, "client": {"uid": 1000, "gid": 100}, "readonly": "true"}))
put("control_api_bodies", "sharedir", json.dumps({"user": "tina", "mode": 493}))
put("control_api_bodies", "unknown", json.dumps({"name": "x", "user": "a", "evil": 1}))

put("plugin_bodies", "create", json.dumps({"Name": "home-alice", "Opts": {"user": "alice", "layout": "home", "size": "10737418240"}}))
put("plugin_bodies", "mount", json.dumps({"Name": "home-alice", "ID": "0123abcd"}))
put("plugin_bodies", "name", json.dumps({"Name": "../etc"}))
put("plugin_bodies", "bad_opts", json.dumps({"Name": "v", "Opts": {"share": "exchange"}}))

put("volume_options", "home", "user=alice\nlayout=home\nsize=10G\n")
put("volume_options", "share", "share=exchange\nuser=alice\nsize=2147483648\n")
put("volume_options", "readonly", "user=bob\nreadonly=true\n")
put("volume_options", "bad", "size=-1\nuser=../x\nshare=.\n")

for i, p in enumerate(["/home-alice", "/home-alice/0123456789abcdef", "home-alice/", "//", "/a/b/c", "/a//b", "/x/../y"]):
    put("mount_path", f"p{i}", p)

put("gate_request", "create", "POST /v1.41/services/create\n" + json.dumps({
    "Name": "jupyter-alice",
    "Labels": {"swarmhub.component": "notebook", "swarmhub.user": "alice", "swarmhub.role": "student"},
    "TaskTemplate": {
        "ContainerSpec": {
            "Image": "swarmhub/notebook-student:0.1.0",
            "Args": ["jupyterhub-singleuser"],
            "Mounts": [{"Target": "/home/jovyan", "Source": "home-alice", "Type": "volume",
                        "VolumeOptions": {"NoCopy": True, "DriverConfig": {"Name": "swarmhub-nfs",
                        "Options": {"user": "alice", "layout": "home", "size": "10737418240"}}}}],
        },
        "Networks": [{"Target": "swarmhub"}],
    },
    "EndpointSpec": {"Mode": "dnsrr"},
}))
put("gate_request", "bind", "POST /v1.41/services/create\n" + json.dumps({
    "Name": "jupyter-x", "TaskTemplate": {"ContainerSpec": {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/h"}]}}}))
put("gate_request", "tasks", 'GET /v1.41/tasks?filters=%7B%22service%22%3A%5B%22jupyter-alice%22%5D%7D\n')
put("gate_request", "update", "POST /v1.41/services/jupyter-alice/update?version=3\n{}")
put("gate_request", "traversal", "GET /v1.41/services/..%2F..%2Fsecrets\n")
put("gate_request", "exec", 'POST /containers/abc/exec\n{"Cmd":["sh"]}')


# nfs_calls: sequences of calls in the target's input format (fuzz-targets/src/nfs_calls.rs)
MNT, MOUNTP, RAW, NFSRAW, OTHER = 0, 22, 23, 24, 25
GETATTR, SETATTR, LOOKUP, ACCESS, READLINK, READ, WRITE, CREATE, MKDIR, SYMLINK, MKNOD = range(1, 12)
REMOVE, RMDIR, RENAME, LINK, READDIR, READDIRPLUS, FSSTAT, FSINFO, PATHCONF, COMMIT = range(12, 22)
NAMES = [".", "..", "work", "notebook.ipynb", "escape", "up", "secret-link", "fifo", "ro.txt",
         "root.txt", "course", "inbound", "a", "b", "", "x/y", "nul\0", "n" * 256,
         "../../../outside/secret", "/"]
SYS = b"\x01"  # credential: AUTH_SYS 1000:100


def nm(n):
    """A name: its index in NAMES, else its length (+ len(NAMES)) and bytes."""
    if n in NAMES:
        return bytes([NAMES.index(n)])
    b = n.encode() if isinstance(n, str) else n
    return bytes([len(NAMES) + len(b)]) + b


def u64(x):
    return struct.pack(">Q", x)


def h(k=0, flip=None):
    """The handle learnt k replies back (0: the newest), one bit flipped when flip is a position."""
    return bytes([k | (0x40 if flip is not None else 0)]) + (bytes([flip]) if flip is not None else b"")


def sattr(mode=None, uid=None, gid=None, size=None, atime=0, mtime=0):
    f = (mode is not None) | (uid is not None) << 1 | (gid is not None) << 2 | (size is not None) << 3
    out = bytes([f | atime << 4 | mtime << 6])
    for v in (mode, uid, gid):
        if v is not None:
            out += u32(v)
    if size is not None:
        out += u64(size)
    if atime == 2:
        out += u32(1700000000) + u32(0)
    if mtime == 2:
        out += u32(1700000000) + u32(0)
    return out


def mnt(export=0, cred=SYS):
    return bytes([MNT]) + cred + bytes([export])


def op(p, *parts, cred=SYS):
    return bytes([p]) + cred + b"".join(parts)


def write(k, data, offset=0, stable=2):
    return op(WRITE, h(k), u64(offset), bytes([stable]), struct.pack(">H", len(data)), data)


nfs_seeds = {
    "home_read_write": mnt() + op(LOOKUP, h(0), nm("work")) + op(LOOKUP, h(0), nm("notebook.ipynb"))
    + op(READ, h(0), u64(0), u32(4096)) + write(0, b"hello") + op(GETATTR, h(0))
    + op(COMMIT, h(0), u64(0), u32(0)) + op(ACCESS, h(0), u32(0x3f)),
    "create_write_rename_remove": mnt() + op(CREATE, h(0), nm("a"), b"\x00", sattr(mode=0o644))
    + write(0, b"x" * 100, offset=4096, stable=0) + op(RENAME, h(1), nm("a"), h(1), nm("b"))
    + op(READDIRPLUS, h(1), u64(0), u64(0), u32(4096), u32(32768)) + op(REMOVE, h(2), nm("b")),
    "readdir": mnt() + op(READDIR, h(0), u64(0), u64(0), u32(4096))
    + op(READDIRPLUS, h(0), u64(0), u64(0), u32(512), u32(1024)) + op(GETATTR, h(0))
    + op(READLINK, h(1)) + op(FSSTAT, h(2)) + op(FSINFO, h(2)) + op(PATHCONF, h(2)),
    "escape": mnt() + op(LOOKUP, h(0), nm("escape")) + write(0, b"out") + op(READLINK, h(0))
    + op(SETATTR, h(0), sattr(mode=0o777, uid=0), b"\x00")
    + op(CREATE, h(1), nm("escape"), b"\x00", sattr(size=0))
    + op(CREATE, h(1), nm("secret-link"), b"\x01", sattr())
    + op(MKDIR, h(1), nm("up"), sattr(mode=0o777)) + op(LOOKUP, h(1), nm("up"))
    + op(LINK, h(0), h(2), nm("hard")) + op(RENAME, h(2), nm("escape"), h(2), nm("work"))
    + op(LOOKUP, h(2), nm("work")) + op(LOOKUP, h(0), nm("escape")) + write(0, b"out", stable=0)
    + op(SYMLINK, h(3), nm("s"), sattr(), nm("../../../outside/secret")) + op(LOOKUP, h(0), nm("..")),
    "dotdot": mnt() + op(LOOKUP, h(0), nm("..")) + op(LOOKUP, h(0), nm("..")) + op(LOOKUP, h(0), nm("work"))
    + op(LOOKUP, h(0), nm("..")) + op(LOOKUP, h(0), nm("..")) + op(RENAME, h(0), nm("work"), h(0), nm("."))
    + op(REMOVE, h(0), nm("..")) + op(RMDIR, h(0), nm(".")) + op(LOOKUP, h(0), nm("x/y"))
    + op(LOOKUP, h(0), nm("nul\0")) + op(LOOKUP, h(0), nm("n" * 256)),
    "dirs": mnt() + op(MKDIR, h(0), nm("a"), sattr(mode=0o2775)) + op(MKDIR, h(0), nm("b"), sattr(mode=0o1777))
    + op(RENAME, h(2), nm("a"), h(0), nm("c")) + op(RENAME, h(2), nm("a"), h(2), nm("work"))
    + op(RMDIR, h(2), nm("a")) + op(RMDIR, h(2), nm("work")) + op(READDIRPLUS, h(0), u64(0), u64(0), u32(4096), u32(65536)),
    "setattr": mnt() + op(LOOKUP, h(0), nm("work")) + op(LOOKUP, h(0), nm("notebook.ipynb"))
    + op(SETATTR, h(0), sattr(size=1 << 40), b"\x00") + op(SETATTR, h(0), sattr(mode=0o4777, gid=0), b"\x00")
    + op(SETATTR, h(0), sattr(uid=1000, gid=100, atime=1, mtime=2), b"\x01" + u32(0) + u32(0))
    + op(READ, h(0), u64((1 << 40) - 10), u32(1 << 20)) + write(0, b"z", offset=(1 << 64) - 1)
    + op(LOOKUP, h(2), nm("root.txt")) + op(READ, h(0), u64(0), u32(100)) + write(0, b"no")
    + op(LOOKUP, h(3), nm("ro.txt")) + write(0, b"no") + op(SETATTR, h(0), sattr(mode=0o666), b"\x00"),
    "special": mnt() + op(MKNOD, h(0), nm("f"), b"\x03", sattr(mode=0o644)) + op(MKNOD, h(1), nm("c"), b"\x00", sattr(), u32(1), u32(3))
    + op(MKNOD, h(1), nm("s"), b"\x02", sattr()) + op(MKNOD, h(2), nm("r"), b"\x04")
    + op(LOOKUP, h(2), nm("fifo")) + op(READ, h(0), u64(0), u32(10)) + write(0, b"x") + op(COMMIT, h(0), u64(0), u32(0))
    + op(SETATTR, h(0), sattr(size=0), b"\x00") + op(CREATE, h(3), nm("fifo"), b"\x00", sattr())
    + op(CREATE, h(3), nm("fifo"), b"\x02", b"verifier") + op(LINK, h(0), h(3), nm("fifo2"))
    + op(SYMLINK, h(3), nm("sl"), sattr(mode=0o777), nm("/")),
    "share_views": mnt(1) + op(LOOKUP, h(0), nm("course")) + op(CREATE, h(0), nm("a"), b"\x01", sattr(mode=0o600))
    + write(0, b"submission") + op(SYMLINK, h(2), nm("s"), sattr(), nm("escape")) + op(MKNOD, h(2), nm("f"), b"\x03", sattr())
    + op(LINK, h(0), h(2), nm("l")) + mnt(2) + op(LOOKUP, h(0), nm("inbound"))
    + op(CREATE, h(0), nm("bob+ps1+1"), b"\x01", sattr(mode=0o644)) + write(0, b"bob's")
    + op(READDIR, h(1), u64(0), u64(0), u32(4096)) + op(LOOKUP, h(4), nm("a")) + op(READ, h(0), u64(0), u32(10))
    + mnt(3) + op(CREATE, h(0), nm("ro"), b"\x00", sattr()) + op(LOOKUP, h(0), nm("course"))
    + op(LOOKUP, h(0), nm("escape")) + op(SETATTR, h(1), sattr(mode=0o777), b"\x00")
    + op(RENAME, h(5), nm("a"), h(2), nm("x")) + op(LINK, h(5), h(2), nm("y")),
    "forged_handles": mnt() + op(GETATTR, h(0, flip=3)) + op(GETATTR, h(0, flip=60))
    + op(GETATTR, b"\xff\x08" + b"\x01" * 8) + op(LOOKUP, b"\xff\x40" + bytes(range(64)), nm("work"))
    + op(RENAME, h(0), nm("work"), h(0, flip=0), nm("x")) + op(LINK, h(0, flip=200), h(0), nm("l")),
    "mount_procs": b"".join(bytes([MOUNTP, p]) + SYS + (nm("/home-alice") if p in (1, 3) else b"") for p in range(8))
    + mnt(4) + mnt(5) + nm("/home-alice/0123") + mnt(5) + nm("/../../etc") + mnt(0, b"\x00") + mnt(0, b"\x02")
    + mnt(0, b"\x03" + u32(0) + u32(0) + b"\x02" + u32(0) + u32(10) + nm("evil"))
    + mnt(0, b"\x04" + u32(6) + b"\x04abcd") + mnt(0, b"\x05")
    + b"".join(bytes([OTHER, k]) + SYS for k in range(5)) + bytes([OTHER, 5]) + u32(2) + u32(100005) + u32(3) + SYS,
    "raw_records": b"".join(bytes([RAW]) + struct.pack(">H", len(r)) + r for r in [
        calls["null"], calls["getattr"], calls["mnt"], calls["export"], calls["auth_none"],
        calls["bad_rpcvers"], calls["write"], b"\x00\x00\x00\x07\x00\x00\x00\x01"])
    + mnt() + bytes([NFSRAW, GETATTR]) + SYS + h(0) + b"\x00"
    + bytes([NFSRAW, LOOKUP]) + SYS + h(0) + b"\x0c" + u32(4) + b"work" + u32(0)
    + bytes([NFSRAW, 0]) + SYS + h(0) + b"\x00" + bytes([NFSRAW, 99]) + SYS + h(0) + b"\x00",
}
for k, v in nfs_seeds.items():
    put("nfs_calls", k, v)
    # also where the target's unit tests read them: cmin may drop them from the corpus
    if not ONLY or "nfs_calls" in ONLY:
        d = os.path.join(HERE, "..", "fuzz-targets", "src", "nfs_calls", "seeds")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)
