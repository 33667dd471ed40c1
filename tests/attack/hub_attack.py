"""A compromised hub attacks dockerd through swarmhub's Docker gate (issue 16).

Run inside the real hub container with the hub's own python, as root:

    python3 hub_attack.py '<json args>'

The args name the gate's socket, the API version, the approved notebook image, the notebook
network, the victim (a user whose notebook runs) and its container, the attacker's own user and
the names of swarmhub's own services. Every attack is one Docker Engine API call a hub
taken over could make; the report (JSON on stdout) gives each call's HTTP status and message.
Controls first: the calls SwarmSpawner makes must still answer 200, so a 403 below is the
gate's decision and not a broken channel. The test asserts every attack got 403 and then checks
with dockerd directly that nothing was created.
"""

import copy
import http.client
import json
import os
import socket
import sys
import urllib.parse


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, unix_path):
        super().__init__("localhost", timeout=60)
        self.unix_path = unix_path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.unix_path)
        self.sock = s


def call(sock, method, path, body=None, raw=None, headers=None):
    conn = UnixConnection(sock)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    hdrs = dict(headers or {})
    if data is not None:
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        try:
            message = json.loads(text).get("message", "") if text.startswith("{") else text
        except ValueError:
            message = text
        return {"status": r.status, "message": message[:400], "body": text}
    except OSError as e:
        return {"status": 0, "message": f"{type(e).__name__}: {e}", "body": ""}
    finally:
        conn.close()


def main():
    a = json.loads(sys.argv[1])
    sock = a["socket"]
    v = "/v" + a["version"]
    me = a["me"]
    victim = a["victim"]

    report = {"controls": {}, "attacks": {}, "socket": {}}

    # the hub has no Docker socket of its own
    for p in ("/var/run/docker.sock", "/run/docker.sock"):
        report["socket"][p] = os.path.exists(p)
    report["socket"]["DOCKER_HOST"] = os.environ.get("DOCKER_HOST", "")

    report["controls"]["version"] = call(sock, "GET", "/version")
    report["controls"]["inspect victim's notebook"] = call(
        sock, "GET", f"{v}/services/jupyter-{victim}"
    )
    report["controls"]["victim's tasks"] = call(
        sock,
        "GET",
        f"{v}/tasks?filters="
        + urllib.parse.quote(json.dumps({"service": [f"jupyter-{victim}"]})),
    )
    report["controls"]["nodes"] = call(sock, "GET", f"{v}/nodes")
    victim_version = 0
    try:
        victim_version = json.loads(report["controls"]["inspect victim's notebook"]["body"])[
            "Version"
        ]["Index"]
    except (ValueError, KeyError, TypeError):
        pass
    # the victim's notebook exactly as the hub made it, and the attacker's own made from it: each
    # attack below changes one thing of a spec the gate lets through (the control proves it)
    victim_spec = json.loads(report["controls"]["inspect victim's notebook"]["body"])["Spec"]
    base = json.loads(json.dumps(victim_spec).replace(victim, me))
    base["Name"] = f"jupyter-{me}-evil"
    base["TaskTemplate"]["ContainerSpec"]["Args"] = ["sleep", "infinity"]
    created = call(sock, "POST", f"{v}/services/create", body=base)
    report["controls"]["create the attacker's own notebook (the unchanged spec)"] = created
    try:
        evil_id = json.loads(created["body"])["ID"]
    except (ValueError, KeyError, TypeError):
        evil_id = base["Name"]
    report["controls"]["remove it"] = call(sock, "DELETE", f"{v}/services/{evil_id}")
    for c in report["controls"].values():
        c.pop("body", None)

    def variant(change):
        spec = copy.deepcopy(base)
        change(spec)
        return spec

    def cs(spec):
        return spec["TaskTemplate"]["ContainerSpec"]

    def mounts(spec):
        return spec["TaskTemplate"]["ContainerSpec"]["Mounts"]

    def own_home_with(option, value):
        def change(spec):
            mounts(spec)[0]["VolumeOptions"]["DriverConfig"]["Options"][option] = value

        return change

    attacks = {
        "service with a bind mount of /": (
            "POST",
            f"{v}/services/create",
            variant(
                lambda s: cs(s)["Mounts"].append(
                    {"Type": "bind", "Source": "/", "Target": "/host"}
                )
            ),
        ),
        "privileged service (all capabilities)": (
            "POST",
            f"{v}/services/create",
            variant(lambda s: cs(s).update({"CapabilityAdd": ["ALL"]})),
        ),
        "service without seccomp and apparmor": (
            "POST",
            f"{v}/services/create",
            variant(
                lambda s: cs(s).update(
                    {
                        "Privileges": {
                            "Seccomp": {"Mode": "unconfined"},
                            "AppArmor": {"Mode": "disabled"},
                        }
                    }
                )
            ),
        ),
        "privileges spelled in lower case": (
            "POST",
            f"{v}/services/create",
            variant(lambda s: cs(s).update({"capabilityadd": ["ALL"]})),
        ),
        "another user's home volume": (
            "POST",
            f"{v}/services/create",
            variant(lambda s: cs(s).update({"Mounts": [copy.deepcopy(mounts(victim_spec)[0])]})),
        ),
        "own volume name with another user's user= option": (
            "POST",
            f"{v}/services/create",
            variant(own_home_with("user", victim)),
        ),
        "another user's exchange view": (
            "POST",
            f"{v}/services/create",
            variant(lambda s: cs(s).update({"Mounts": [copy.deepcopy(mounts(victim_spec)[1])]})),
        ),
        "local volume binding the host's root": (
            "POST",
            f"{v}/services/create",
            variant(
                lambda s: cs(s).update(
                    {
                        "Mounts": [
                            {
                                "Type": "volume",
                                "Source": f"home-{me}",
                                "Target": a["home_target"],
                                "VolumeOptions": {
                                    "DriverConfig": {
                                        "Name": "local",
                                        "Options": {"type": "none", "o": "bind", "device": "/"},
                                    }
                                },
                            }
                        ]
                    }
                )
            ),
        ),
        "unapproved image (the hub's own)": (
            "POST",
            f"{v}/services/create",
            variant(lambda s: cs(s).update({"Image": a["unapproved_image"]})),
        ),
        "host networking": (
            "POST",
            f"{v}/services/create",
            variant(lambda s: s["TaskTemplate"].update({"Networks": [{"Target": "host"}]})),
        ),
        "an alias that takes over the hub's name": (
            "POST",
            f"{v}/services/create",
            variant(
                lambda s: s["TaskTemplate"].update(
                    {"Networks": [{"Target": a["network"], "Aliases": [a["hub_service"]]}]}
                )
            ),
        ),
        "the nfsd token as a secret of the service": (
            "POST",
            f"{v}/services/create",
            variant(
                lambda s: cs(s).update(
                    {
                        "Secrets": [
                            {
                                "SecretName": a["token_secret"],
                                "File": {"Name": "t", "UID": "0", "GID": "0", "Mode": 292},
                            }
                        ]
                    }
                )
            ),
        ),
        "a published host port": (
            "POST",
            f"{v}/services/create",
            variant(
                lambda s: s.update(
                    {
                        "EndpointSpec": {
                            "Ports": [
                                {"TargetPort": 22, "PublishedPort": 2222, "PublishMode": "host"}
                            ]
                        }
                    }
                )
            ),
        ),
        "a global service": (
            "POST",
            f"{v}/services/create",
            variant(lambda s: s.update({"Mode": {"Global": {}}})),
        ),
        "a plugin runtime (installs a plugin)": (
            "POST",
            f"{v}/services/create",
            variant(
                lambda s: s["TaskTemplate"].update(
                    {
                        "Runtime": "plugin",
                        "PluginSpec": {"Name": "evil", "Remote": "evil/plugin:latest"},
                    }
                )
            ),
        ),
        "a service named like nfsd": (
            "POST",
            f"{v}/services/create",
            variant(lambda s: s.update({"Name": a["nfsd_service"] + "-2"})),
        ),
        "bind mount added to the victim's notebook by update": (
            "POST",
            f"{v}/services/jupyter-{victim}/update?version={victim_version}",
            dict(
                victim_spec,
                TaskTemplate=dict(
                    victim_spec["TaskTemplate"],
                    ContainerSpec=dict(
                        cs(victim_spec),
                        Mounts=mounts(victim_spec)
                        + [{"Type": "bind", "Source": "/", "Target": "/host"}],
                    ),
                ),
            ),
        ),
        "the layout option dropped (a 0.x home move)": (
            "POST",
            f"{v}/services/create",
            variant(own_home_with("layout", "flat")),
        ),
        "a quota lifted": (
            "POST",
            f"{v}/services/create",
            variant(own_home_with("size", "0")),
        ),
        "a container outside Swarm": (
            "POST",
            f"{v}/containers/create",
            {
                "Image": a["image"],
                "Cmd": ["sh", "-c", "cat /host/etc/shadow"],
                "HostConfig": {"Privileged": True, "Binds": ["/:/host"], "NetworkMode": "host"},
            },
        ),
        "exec into the victim's notebook": (
            "POST",
            f"{v}/containers/{a['victim_container']}/exec",
            {"Cmd": ["cat", "/home/jovyan/secret.txt"], "AttachStdout": True, "User": "root"},
        ),
        "list containers": ("GET", f"{v}/containers/json?all=1", None),
        "list secrets": ("GET", f"{v}/secrets", None),
        "read the nfsd token secret": ("GET", f"{v}/secrets/{a['token_secret']}", None),
        "install a plugin": (
            "POST",
            f"{v}/plugins/pull?remote=evil/plugin:latest&name=evil",
            [{"Name": "network", "Value": ["host"]}],
        ),
        "raw POST /build": ("RAW", f"{v}/build?t=evil:latest", b""),
        "create a local volume binding /": (
            "POST",
            f"{v}/volumes/create",
            {
                "Name": "evil-root",
                "Driver": "local",
                "DriverOpts": {"type": "none", "o": "bind", "device": "/"},
            },
        ),
        "remove nfsd's service": ("DELETE", f"{v}/services/{a['nfsd_service']}", None),
        "inspect the hub's own service": ("GET", f"{v}/services/{a['hub_service']}", None),
        "nfsd's tasks (their specs)": (
            "GET",
            f"{v}/tasks?filters="
            + urllib.parse.quote(json.dumps({"service": [a["nfsd_service"]]})),
            None,
        ),
        "all tasks": ("GET", f"{v}/tasks", None),
        "nfsd's logs": ("GET", f"{v}/services/{a['nfsd_service']}/logs?stdout=1", None),
        "the swarm's join tokens": ("GET", f"{v}/swarm", None),
        "promote a node": ("POST", f"{v}/nodes/{a['node_id']}/update?version=1", {"Role": "manager"}),
        "path traversal to secrets": ("GET", f"{v}/services/..%2F..%2Fsecrets", None),
        "dot segments to secrets": ("GET", f"{v}/services/x/../../secrets", None),
        "an unversioned container create": ("POST", "/containers/create", {"Image": a["image"]}),
    }
    for name, (method, path, body) in attacks.items():
        if method == "RAW":
            r = call(sock, "POST", path, raw=body, headers={"Content-Type": "application/x-tar"})
        else:
            r = call(sock, method, path, body=body)
        r.pop("body", None)
        report["attacks"][name] = r
    json.dump(report, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
