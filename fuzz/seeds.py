"""Writes the hand-made seeds of every fuzz target into corpus/<target>/ (run once; the
fuzzer grows the corpus from them and `cargo fuzz cmin` keeps it small)."""

import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
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
