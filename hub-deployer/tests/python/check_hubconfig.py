"""Check a generated jupyterhub_config.py against the real JupyterHub, dockerspawner (14.x),
ldapauthenticator (2.x), docker and jupyterhub-idle-culler packages.

Usage: check_hubconfig.py CONFIG EXPECTATIONS_JSON

The config is loaded the way JupyterHub loads it (traitlets' PyFileConfigLoader via
JupyterHub.load_config_file), the spawner class it names is instantiated with a stand-in user, and
the hooks run in JupyterHub's order (auth_state_hook, then pre_spawn_hook) for a student, a teacher
and hostile user names. The service spec the spawner would send to Docker is captured from
SwarmSpawner.create_object with a fake `docker` method, and the start logic is driven with fake
task lists (rejected, failed, pending, running), as is a stop's wait for the old container. No
Docker daemon and no LDAP server are needed.

Run by hub-deployer/tests/hubconfig_python.rs; prints one line per check and exits non-zero on the
first failed one, with a traceback.
"""

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import traceback

from jupyterhub.app import JupyterHub
from jupyterhub.objects import Hub
from jupyterhub.proxy import ConfigurableHTTPProxy
from traitlets.config.loader import PyFileConfigLoader

import docker.errors
from dockerspawner import SwarmSpawner
import ldapauthenticator

CONFIG, EXPECT_FILE = sys.argv[1], sys.argv[2]
with open(EXPECT_FILE, encoding="utf-8") as f:
    EXPECT = json.load(f)


class Capture(logging.Handler):
    """Collects log records, to assert that no config key was ignored."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def messages(self, level=logging.WARNING):
        return [r.getMessage() for r in self.records if r.levelno >= level]


CAPTURE = Capture()
LOG = logging.getLogger("check_hubconfig")
LOG.setLevel(logging.DEBUG)
LOG.addHandler(CAPTURE)
LOG.propagate = False


def load_app():
    """A JupyterHub application with the config loaded as `jupyterhub -f CONFIG` does."""
    app = JupyterHub(log=LOG)
    app.load_config_file(os.path.basename(CONFIG), path=os.path.dirname(os.path.abspath(CONFIG)))
    return app


class FakeUser:
    """What DockerSpawner and Spawner.get_env need of jupyterhub.user.User."""

    def __init__(self, name):
        self.name = name
        self.escaped_name = name
        self.url = f"/user/{name}/"
        self.base_url = "/"

    def progress_url(self, server_name=""):
        return f"/hub/api/users/{self.name}/server/progress"


def make_spawner(app, name):
    hub = Hub(ip="0.0.0.0", port=app.hub_port, base_url="/hub/", connect_ip=app.hub_connect_ip)
    return app.spawner_class(
        user=FakeUser(name), hub=hub, config=app.config, log=LOG, api_token="t0ken"
    )


async def spawn_hooks(spawner, auth_state):
    """JupyterHub's order in User.spawn: auth_state_hook, then pre_spawn_hook."""
    await spawner.run_auth_state_hook(auth_state)
    r = spawner.run_pre_spawn_hook()
    if asyncio.iscoroutine(r):
        await r


def auth_state_for(groups):
    # ldapauthenticator 2.x authenticate(): {"ldap_groups": [...], "user_attributes": {...}}
    return {
        "ldap_groups": list(groups),
        "user_attributes": {"uidNumber": [20001], "gidNumber": [20000]},
    }


class FakeDocker:
    """Stands in for SwarmSpawner.docker(method, ...): answers `tasks` from a script of task lists
    and records create_service."""

    def __init__(self, task_lists=(), inspected=None):
        self.task_lists = list(task_lists)
        # task ID -> the states `inspect_task` answers in turn (the last one repeats); None: 404
        self.inspected = {tid: list(states) for tid, states in (inspected or {}).items()}
        self.calls = []
        self.created = None

    async def __call__(self, method, *args, **kwargs):
        self.calls.append((method, args, kwargs))
        if method == "create_service":
            self.created = kwargs
            return {"ID": "svc0123456789abcdef"}
        if method == "inspect_service":
            return {"ID": "svc0123456789abcdef"}
        if method == "remove_service":
            return True
        if method == "inspect_task":
            states = self.inspected[args[0]]
            state = states.pop(0) if len(states) > 1 else states[0]
            if state is None:
                raise docker.errors.NotFound(f"task {args[0]} not found")
            return task(state, desired="remove", tid=args[0])
        if method == "tasks":
            if len(self.task_lists) > 1:
                tasks = self.task_lists.pop(0)
            else:
                tasks = self.task_lists[0] if self.task_lists else []
            desired = (kwargs.get("filters") or {}).get("desired-state")
            if desired:
                tasks = [t for t in tasks if t["DesiredState"] == desired]
            return tasks
        raise AssertionError(f"unexpected docker call {method}")


def task(state, err=None, desired="running", index=1, exit_code=None, tid="task0123456789ab"):
    status = {"State": state, "Message": state, "Timestamp": "2025-01-01T00:00:00Z"}
    if err is not None:
        status["Err"] = err
    if exit_code is not None:
        status["ContainerStatus"] = {"ExitCode": exit_code}
    return {
        "ID": tid,
        "NodeID": "node0123456789abcdef",
        "DesiredState": desired,
        "Version": {"Index": index},
        "Status": status,
    }


# ------------------------------------------------------------------------------------ checks

def check_loads_like_jupyterhub():
    # the plain traitlets loader JupyterHub uses underneath
    cfg = PyFileConfigLoader(
        os.path.basename(CONFIG), path=os.path.dirname(os.path.abspath(CONFIG))
    ).load_config()
    assert cfg.JupyterHub.hub_ip == "0.0.0.0"
    app = load_app()
    # the proxy speaks plain HTTP: on every address without TLS, behind the TLS front with it
    want_bind = f"http://{EXPECT['proxy_ip']}:{EXPECT['proxy_port']}{EXPECT['base_path']}"
    assert app.bind_url == want_bind, app.bind_url
    assert app.ssl_cert == "" and app.ssl_key == "", (app.ssl_cert, app.ssl_key)
    proxy = ConfigurableHTTPProxy(config=app.config)
    front = EXPECT["tls_front_conf"]
    want = ["configurable-http-proxy"] + (["--no-x-forward"] if front else [])
    assert proxy.command == want, proxy.command
    assert app.base_url == EXPECT["base_path"], app.base_url
    if hasattr(JupyterHub, "public_url"):
        assert app.public_url == EXPECT["public_url"], app.public_url
    assert app.hub_ip == "0.0.0.0"
    assert app.hub_port == EXPECT["hub_api_port"]
    assert app.hub_connect_ip == EXPECT["hub_service"], app.hub_connect_ip
    assert app.db_url == "sqlite:////srv/jupyterhub/jupyterhub.sqlite", app.db_url
    assert app.cookie_secret_file == "/srv/jupyterhub/jupyterhub_cookie_secret"
    assert app.cleanup_servers is False
    assert app.authenticator_class is ldapauthenticator.LDAPAuthenticator, app.authenticator_class
    cls = app.spawner_class
    assert cls.__name__ == "SwarmhubSpawner" and issubclass(cls, SwarmSpawner), cls


def check_authenticator():
    app = load_app()
    auth = app.authenticator_class(config=app.config, log=LOG)
    assert auth.enable_auth_state is True
    assert auth.server_address == EXPECT["ldap_server_address"]
    assert auth.server_port == EXPECT["ldap_server_port"], auth.server_port
    assert auth.tls_strategy.name == EXPECT["tls_strategy"], auth.tls_strategy
    assert auth.lookup_dn is EXPECT["lookup_dn"]
    if EXPECT["lookup_dn"]:
        assert auth.user_search_base == EXPECT["user_search_base"], auth.user_search_base
        assert auth.user_attribute == "uid"
        assert auth.lookup_dn_user_dn_attribute == "uid"
        assert auth.lookup_dn_search_user == EXPECT["search_user_dn"], auth.lookup_dn_search_user
        # read from the secret file at load time; never written in the config
        assert auth.lookup_dn_search_password == EXPECT["password"]
        with open(CONFIG, encoding="utf-8") as f:
            assert EXPECT["password"] not in f.read()
    else:
        assert auth.bind_dn_template == EXPECT["bind_dn_templates"], auth.bind_dn_template
    assert auth.allowed_groups == EXPECT["allowed_groups"], auth.allowed_groups
    assert auth.auth_state_attributes == ["uidNumber", "gidNumber"]
    assert set(auth.admin_users) == set(EXPECT["admin_users"]), auth.admin_users


def check_no_config_key_ignored():
    CAPTURE.records.clear()
    app = load_app()
    app.authenticator_class(config=app.config, log=LOG)
    make_spawner(app, "alice")
    ignored = [m for m in CAPTURE.messages() if "not recognized" in m or "deprecated" in m]
    if not hasattr(JupyterHub, "public_url"):
        ignored = [m for m in ignored if "public_url" not in m]
    assert not ignored, ignored


def check_spawner_static_settings():
    app = load_app()
    sp = make_spawner(app, "alice")
    assert isinstance(sp, SwarmSpawner) and type(sp).__name__ == "SwarmhubSpawner"
    assert sp.allowed_images == {}, sp.allowed_images
    assert sp.options_form == "", "no image choice form"
    assert list(sp.cmd) == EXPECT["cmd"], sp.cmd
    assert sp.image == EXPECT["student_image"]
    assert sp.network_name == EXPECT["network"], sp.network_name
    assert sp.use_internal_ip is True
    assert sp.extra_endpoint_spec == {"mode": "dnsrr"}, sp.extra_endpoint_spec
    assert sp.start_timeout == EXPECT["start_timeout"], sp.start_timeout
    assert sp.http_timeout == EXPECT["http_timeout"], sp.http_timeout
    assert sp.remove is True
    assert sp.pull_policy == "skip"
    if EXPECT["placement_constraints"]:
        assert sp.extra_placement_spec == {"constraints": EXPECT["placement_constraints"]}
    else:
        assert sp.extra_placement_spec == {}
    assert sp.mem_limit == EXPECT["mem_limit"], sp.mem_limit
    assert (sp.cpu_limit or None) == EXPECT["cpu_limit"], sp.cpu_limit
    # the per-user hooks are what the config installs
    assert sp.auth_state_hook.__name__ == "swarmhub_auth_state_hook"
    assert sp.pre_spawn_hook.__name__ == "swarmhub_pre_spawn_hook"


def sized(options, size):
    """The volume options the hub passes: size=<bytes> when the setting has a quota."""
    return {**options, "size": size} if size is not None else options


def expected_mounts(user):
    driver = EXPECT["volume_driver"]
    return [
        {
            "Target": EXPECT["home_target"],
            "Source": f"home-{user}",
            "Type": "volume",
            "ReadOnly": False,
            "VolumeOptions": {
                "NoCopy": True,
                "DriverConfig": {
                    "Name": driver,
                    "Options": sized({"user": user, "layout": "home"}, EXPECT["home_size"]),
                },
            },
        },
        {
            "Target": EXPECT["exchange_target"],
            "Source": f"{EXPECT['exchange_share']}-{user}",
            "Type": "volume",
            "ReadOnly": False,
            "VolumeOptions": {
                "NoCopy": True,
                "DriverConfig": {
                    "Name": driver,
                    "Options": sized(
                        {"share": EXPECT["exchange_share"], "user": user},
                        EXPECT["exchange_size"],
                    ),
                },
            },
        },
    ]


def spawn_and_capture(name, groups, role, image):
    """Run the hooks, check the spawner, then capture the service spec create_object sends."""
    app = load_app()
    sp = make_spawner(app, name)
    auth_state = None if groups is None else auth_state_for(groups)
    asyncio.run(spawn_hooks(sp, auth_state))
    assert sp.image == image, (sp.image, image)
    mounts = sp.extra_container_spec["mounts"]
    assert [dict(m) for m in mounts] == expected_mounts(name), json.dumps(mounts, indent=1)
    assert sp.environment["SWARMHUB_ROLE"] == role
    assert sp.environment["NBGRADER_COURSE_ID"] == EXPECT["course_id"]
    assert sp.environment["NBGRADER_EXCHANGE_ROOT"] == EXPECT["exchange_target"]
    assert sp.environment["SWARMHUB_HOME_DIR"] == EXPECT["home_target"]
    assert "SWARMHUB_WORK_DIR" not in sp.environment

    fake = FakeDocker([[task("pending")]])
    sp.docker = fake
    svc = asyncio.run(sp.create_object())
    assert svc == {"ID": "svc0123456789abcdef"}
    kw = fake.created
    # dockerspawner's own escaping names the service (jupyter-bob-2et-2d1-5fx for bob.t-1_x)
    assert kw["name"] == sp.service_name and kw["name"].startswith("jupyter-"), kw["name"]
    assert kw["labels"] == {
        "swarmhub.component": "notebook",
        "swarmhub.user": name,
        "swarmhub.role": role,
    }, kw.get("labels")
    tt = kw["task_template"]
    cs = tt["ContainerSpec"]
    assert cs["Image"] == image
    assert cs["Mounts"] == expected_mounts(name), cs["Mounts"]
    assert cs["Args"][: len(EXPECT["cmd"])] == EXPECT["cmd"], cs["Args"]
    env = dict(e.split("=", 1) for e in cs["Env"])
    assert env["SWARMHUB_ROLE"] == role
    assert env["NBGRADER_COURSE_ID"] == EXPECT["course_id"]
    assert env["JUPYTERHUB_USER"] == name
    assert env["JUPYTERHUB_API_URL"] == f"http://{EXPECT['hub_service']}:{EXPECT['hub_api_port']}/hub/api", env["JUPYTERHUB_API_URL"]
    assert tt["Networks"] == [{"Target": EXPECT["network"]}], tt["Networks"]
    placement = tt.get("Placement") or {}
    assert placement.get("Constraints") == (EXPECT["placement_constraints"] or None), placement
    limits = (tt.get("Resources") or {}).get("Limits") or {}
    if EXPECT["mem_limit"] is not None:
        assert limits["MemoryBytes"] == EXPECT["mem_limit"], limits
    if EXPECT["cpu_limit"] is not None:
        assert limits["NanoCPUs"] == int(EXPECT["cpu_limit"] * 1e9), limits
    ep = kw["endpoint_spec"]
    assert ep == {"Mode": "dnsrr"}, ep
    return sp


def check_student_spawn():
    spawn_and_capture(
        "alice", [EXPECT["student_group"]], "student", EXPECT["student_image"]
    )


def check_teacher_spawn():
    spawn_and_capture(
        "bob.t-1_x", [EXPECT["student_group"], EXPECT["teacher_group"]], "teacher",
        EXPECT["teacher_image"],
    )


def check_teacher_only_by_exact_group():
    tg = EXPECT["teacher_group"]
    for groups in (
        [],
        [EXPECT["student_group"]],
        ["cn=assistant," + tg],          # the teacher DN as a substring
        [tg + "x"],
        [tg.upper() if tg.upper() != tg else tg.lower()],
        [tg[:-1]],
    ):
        spawn_and_capture("carol", groups, "student", EXPECT["student_image"])
    # no auth state (e.g. admin-started server of a user who never logged in): student
    spawn_and_capture("dave", None, "student", EXPECT["student_image"])


def check_hostile_user_names_are_refused():
    app = load_app()
    for name in ["../x", "a b", "", ".hidden", "-x", "a/b", "alice\n", "x" * 65, "\u00e9", "a:b", "a\x00"]:
        sp = make_spawner(app, name)
        try:
            asyncio.run(spawn_hooks(sp, auth_state_for([EXPECT["student_group"]])))
        except Exception as e:
            assert type(e).__name__ == "SwarmhubSpawnError", repr(e)
            assert "cannot name a swarmhub volume" in str(e), str(e)
        else:
            raise AssertionError(f"user name {name!r} was accepted")
        assert "mounts" not in sp.extra_container_spec, name
    # the longest accepted name still gives valid volume names
    spawn_and_capture("x" * 64, [EXPECT["student_group"]], "student", EXPECT["student_image"])


def fast_spawner(app, task_lists):
    sp = make_spawner(app, "alice")
    sp.task_poll_first = 0.001
    sp.task_poll_max = 0.002
    sp.stop_poll_seconds = 0.001
    sp.object_id = "svc0123456789abcdef"
    fake = FakeDocker(task_lists)
    sp.docker = fake
    return sp, fake


def check_rejected_task_fails_the_spawn_with_its_error():
    app = load_app()
    err = (
        "VolumeDriver.Mount: swarmhub-nfs: mount of home-alice from nfsd 10.0.0.5:2049 failed:"
        " connection refused (ECONNREFUSED); is swarmhub-nfsd running?"
    )
    sp, fake = fast_spawner(app, [
        [task("pending")],
        [task("rejected", err=err, desired="shutdown", index=5),
         task("pending", desired="running", index=6, tid="task2")],
    ])
    try:
        asyncio.run(asyncio.wait_for(sp.start_object(), 10))
    except Exception as e:
        assert type(e).__name__ == "SwarmhubSpawnError", repr(e)
        assert err in str(e) and "rejected" in str(e) and "jupyter-alice" in str(e), str(e)
        # what JupyterHub's REST API answers a fast failure with (APIHandler.write_error)
        assert e.log_message % e.args == str(e), (e.log_message, e.args)
        assert e.jupyterhub_message == str(e)
    else:
        raise AssertionError("a rejected task did not fail the spawn")
    assert all(c[0] == "tasks" for c in fake.calls)
    assert fake.calls[0][2] == {"filters": {"service": "svc0123456789abcdef"}}, fake.calls[0]

    # The stock SwarmSpawner.start_object (dockerspawner 14) keeps waiting on the same tasks, until
    # JupyterHub's start_timeout: this is the behaviour the subclass replaces.
    for tasks in (
        [task("rejected", err=err, desired="running", index=5)],
        [task("rejected", err=err, desired="shutdown", index=5),
         task("pending", desired="running", index=6, tid="task2")],
    ):
        stock = make_spawner(app, "alice")
        stock.docker = FakeDocker([tasks])
        try:
            asyncio.run(asyncio.wait_for(SwarmSpawner.start_object(stock), 1.5))
        except asyncio.TimeoutError:
            pass
        else:
            raise AssertionError("stock SwarmSpawner returned on a rejected task")


def check_failed_container_reports_exit_code():
    app = load_app()
    sp, _ = fast_spawner(app, [[task("failed", err="task: non-zero exit (127)", exit_code=127, desired="shutdown")]])
    try:
        asyncio.run(asyncio.wait_for(sp.start_object(), 10))
    except Exception as e:
        assert "non-zero exit (127)" in str(e) and "exit code 127" in str(e), str(e)
    else:
        raise AssertionError("a failed task did not fail the spawn")


def check_pending_then_running_succeeds():
    app = load_app()
    sp, fake = fast_spawner(app, [
        [task("pending", err="no suitable node (insufficient resources on 2 nodes)")],
        [task("pending", err="no suitable node (insufficient resources on 2 nodes)")],
        [task("preparing")],
        [task("starting")],
        [task("running")],
    ])
    asyncio.run(asyncio.wait_for(sp.start_object(), 10))
    assert len(fake.calls) == 5, fake.calls
    # an earlier rejected task does not fail a spawn whose current task already runs
    sp, _ = fast_spawner(app, [[
        task("rejected", err="VolumeDriver.Mount: transient", desired="shutdown", index=3),
        task("running", index=4, tid="task2"),
    ]])
    asyncio.run(asyncio.wait_for(sp.start_object(), 10))


def check_vanished_service_fails():
    app = load_app()
    sp, _ = fast_spawner(app, [[]])
    try:
        asyncio.run(asyncio.wait_for(sp.start_object(), 10))
    except Exception as e:
        assert "has no task" in str(e), str(e)
    else:
        raise AssertionError("a service without tasks did not fail the spawn")


def check_stop_waits_until_the_old_container_ended():
    app = load_app()
    # one task running, one that failed earlier: only the running one is waited for
    sp, fake = fast_spawner(app, [[task("running", tid="run0"), task("failed", desired="shutdown", tid="old0")]])
    fake.inspected = {"run0": ["running", "running", "shutdown"]}
    asyncio.run(asyncio.wait_for(sp.remove_object(), 10))
    methods = [c[0] for c in fake.calls]
    assert methods == ["tasks", "remove_service", "inspect_task", "inspect_task", "inspect_task"], methods
    assert fake.calls[0][2] == {"filters": {"service": "svc0123456789abcdef"}}, fake.calls[0]
    assert all(c[1] == ("run0",) for c in fake.calls if c[0] == "inspect_task"), fake.calls

    # a task Swarm already deleted (404) has ended too
    sp, fake = fast_spawner(app, [[task("running", tid="run0"), task("starting", tid="run1")]])
    fake.inspected = {"run0": [None], "run1": ["running", None]}
    asyncio.run(asyncio.wait_for(sp.remove_object(), 10))
    assert [c[0] for c in fake.calls].count("inspect_task") == 3, fake.calls

    # a container that does not end in time: the stop returns anyway and says which task runs
    sp, fake = fast_spawner(app, [[task("running", tid="stuck0123456789")]])
    fake.inspected = {"stuck0123456789": ["running"]}
    sp.stop_wait_seconds = 0.05
    before = len(CAPTURE.records)
    asyncio.run(asyncio.wait_for(sp.remove_object(), 10))
    warned = [r.getMessage() for r in CAPTURE.records[before:] if r.levelno == logging.WARNING]
    assert any("stuck0123456" in m and "still running" in m for m in warned), warned

    # the whole stop, as JupyterHub calls it: the service is removed and the state cleared
    sp, fake = fast_spawner(app, [[task("running", tid="run0")]])
    fake.inspected = {"run0": ["shutdown"]}
    asyncio.run(asyncio.wait_for(sp.stop(), 10))
    assert ("remove_service", ("svc0123456789abcdef",), {}) in fake.calls, fake.calls
    assert sp.object_id == "", sp.object_id


def check_missing_password_file_is_a_clear_error():
    if not EXPECT["lookup_dn"] or not EXPECT.get("password_file"):
        return
    path = EXPECT["password_file"]
    aside = path + ".aside"
    shutil.move(path, aside)
    try:
        load_app()
    except Exception as e:
        assert "cannot read the LDAP search password" in str(e) and path in str(e), str(e)
    else:
        raise AssertionError("config loaded without the password file")
    finally:
        shutil.move(aside, path)


def check_tls_front_service():
    # with TLS the config writes nginx's configuration and runs nginx as a managed service
    path = EXPECT["tls_front_file"]
    if os.path.exists(path):
        os.unlink(path)
    app = load_app()
    fronts = [s for s in app.services if s["name"] == "swarmhub-tls-front"]
    front = EXPECT["tls_front_conf"]
    if not front:
        assert not fronts, app.services
        assert not os.path.exists(path), path
        return
    (svc,) = fronts
    assert svc["command"] == ["nginx", "-c", path, "-g", "daemon off;"], svc
    assert "url" not in svc, svc
    with open(path, encoding="utf-8") as f:
        written = f.read()
    assert written == front, written
    for line in EXPECT.get("tls_front_lines", []):
        assert line in written, (line, written)


def check_idle_culler_service():
    app = load_app()
    culler = [s for s in app.services if s["name"] != "swarmhub-tls-front"]
    if not EXPECT["idle_culler"]:
        assert not culler and not app.load_roles, (app.services, app.load_roles)
        return
    (svc,) = culler
    assert svc["name"] == "jupyterhub-idle-culler"
    cmd = svc["command"]
    assert cmd[:3] == [sys.executable, "-m", "jupyterhub_idle_culler"], cmd
    assert f"--timeout={EXPECT['idle_culler_timeout']}" in cmd, cmd
    (role,) = app.load_roles
    assert role["services"] == ["jupyterhub-idle-culler"]
    assert set(role["scopes"]) == {"list:users", "read:users:activity", "read:servers", "delete:servers"}
    try:
        from jupyterhub.scopes import _check_scopes_exist
    except ImportError:
        pass
    else:
        _check_scopes_exist(role["scopes"])
    # the installed culler accepts exactly these flags (--generate-config parses them, prints, exits 0)
    r = subprocess.run(cmd + ["--generate-config"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]


CHECKS = [
    check_loads_like_jupyterhub,
    check_authenticator,
    check_no_config_key_ignored,
    check_spawner_static_settings,
    check_student_spawn,
    check_teacher_spawn,
    check_teacher_only_by_exact_group,
    check_hostile_user_names_are_refused,
    check_rejected_task_fails_the_spawn_with_its_error,
    check_failed_container_reports_exit_code,
    check_pending_then_running_succeeds,
    check_vanished_service_fails,
    check_stop_waits_until_the_old_container_ended,
    check_missing_password_file_is_a_clear_error,
    check_tls_front_service,
    check_idle_culler_service,
]


def main():
    import jupyterhub
    import dockerspawner
    import docker
    from importlib.metadata import version

    print(
        f"python {sys.version.split()[0]}, jupyterhub {jupyterhub.__version__},"
        f" dockerspawner {dockerspawner.__version__},"
        f" ldapauthenticator {version('jupyterhub-ldapauthenticator')}, docker {docker.__version__},"
        f" idle-culler {version('jupyterhub-idle-culler')}"
    )
    for check in CHECKS:
        try:
            check()
        except Exception:
            print(f"FAIL {check.__name__}")
            traceback.print_exc(file=sys.stdout)
            print("--- log of the hub objects:")
            for m in CAPTURE.messages(logging.INFO)[-30:]:
                print("   ", m)
            sys.exit(1)
        print(f"ok   {check.__name__}")
    print(f"all {len(CHECKS)} hubconfig checks ok")


if __name__ == "__main__":
    main()
