# swarmhub images. Targets (tags as in swarmhub.toml's [images]):
#
#   nfsd               swarmhub/nfsd:0.1.0              swarmhub-nfsd (FROM scratch)
#   cli                swarmhub/swarmhub:0.1.0          the swarmhub CLI + the plugin bundle (FROM scratch)
#   plugin-rootfs      rootfs of the swarmhub-nfs managed plugin (exported, not run)
#   hub                swarmhub/hub:0.1.0               JupyterHub, SwarmSpawner, LDAP, idle culler, CHP
#   notebook-student   swarmhub/notebook-student:0.1.0  JupyterLab + nbgrader (assignment list, validate)
#   notebook-teacher   swarmhub/notebook-teacher:0.1.0  + create assignment, formgrader, course list
#   demo-ldap          swarmhub/demo-ldap:0.1.0         slapd seeded by `swarmhub demo up` (demo only)
#
# Two routes for the Rust images:
#
# 1. Compile in Docker (needs a Rust image; best with BuildKit, which skips unused stages):
#      docker build --target nfsd -t swarmhub/nfsd:0.1.0 .
#      docker build --target cli  -t swarmhub/swarmhub:0.1.0 .
#
# 2. Prebuilt static binaries from the build context (no Rust image, no registry):
#      images/build.sh --prebuilt nfsd cli
#    which runs, from the repository root,
#      RUSTFLAGS="-C target-feature=+crt-static" cargo build --release \
#        --target x86_64-unknown-linux-gnu -p swarmhub-nfsd -p swarmhub-volume-plugin -p hub-deployer
#      images/layout.sh target/dist target/x86_64-unknown-linux-gnu/release
#      docker build --target nfsd-prebuilt -t swarmhub/nfsd:0.1.0 .     (and cli-prebuilt, ...)
#
# The Python images need a Debian bookworm base with python3 and python3-venv. Anywhere with a
# registry the default debian:bookworm-slim works; without one, build a local base first:
#      images/debian-base.sh                          (debootstrap -> swarmhub/debian:bookworm)
#      docker build --build-arg BASE_IMAGE=swarmhub/debian:bookworm --target hub -t swarmhub/hub:0.1.0 .
# images/build.sh does all of this (`images/build.sh --help`). They download packages from PyPI,
# npm and Debian while building.
#
# Stage order matters for Docker's legacy builder (no BuildKit), which runs every stage before
# the target, used or not: the scratch-only prebuilt stages come first (they need nothing but
# the context; target/dist may be missing), then the Python images, the demo's directory, and the Rust build last, so
# that no target except nfsd, cli and plugin-rootfs needs the Rust image.

ARG BASE_IMAGE=debian:bookworm-slim
# The version rust-toolchain.toml pins: rustup in the image follows that file, so another version
# here would be downloaded over (and rustup adds the file's rustfmt and clippy on the first build).
ARG RUST_IMAGE=rust:1.95.0-bookworm

# ============================================================== prebuilt binaries (route 2)

# target/dist as images/layout.sh writes it. The [t] and the WORKDIRs (which create the
# directories) make a missing target/dist empty images instead of an error, so that the other
# targets build without it; images/build.sh --prebuilt refuses to build from a missing one.
FROM scratch AS prebuilt
WORKDIR /dist/nfsd
WORKDIR /dist/cli/usr/share/swarmhub/plugin/rootfs
COPY images/layout.sh target/dis[t] /dist/

FROM scratch AS nfsd-prebuilt
COPY --from=prebuilt /dist/nfsd/ /
ENV SWARMHUB_NFSD_DATA_DIR=/data \
    SWARMHUB_NFSD_LISTEN=0.0.0.0:2049 \
    SWARMHUB_NFSD_API_LISTEN=0.0.0.0:8049
EXPOSE 2049 8049
STOPSIGNAL SIGTERM
ENTRYPOINT ["/swarmhub-nfsd"]
ARG SWARMHUB_VERSION=dev
LABEL org.opencontainers.image.version=${SWARMHUB_VERSION}

FROM scratch AS plugin-rootfs-prebuilt
COPY --from=prebuilt /dist/cli/usr/share/swarmhub/plugin/rootfs/ /
ENTRYPOINT ["/swarmhub-volume-plugin"]

FROM scratch AS cli-prebuilt
COPY --from=prebuilt /dist/cli/ /
ENTRYPOINT ["/usr/local/bin/swarmhub"]
ARG SWARMHUB_VERSION=dev
LABEL org.opencontainers.image.version=${SWARMHUB_VERSION}

# ============================================================== Python images

FROM ${BASE_IMAGE} AS python-base
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive
# swarmhub/debian:bookworm has these already; debian:bookworm-slim does not
RUN if ! dpkg -s python3 python3-venv ca-certificates tini curl >/dev/null 2>&1; then \
      apt-get update -qq \
      && apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates tini curl \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# pip trusts the system's CA store (a base built on a host behind a TLS proxy trusts its CA)
RUN python3 -m venv /opt/venv \
 && PIP_CERT=/etc/ssl/certs/ca-certificates.crt /opt/venv/bin/pip install -q --upgrade pip==25.3
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ------------------------------------------------------------- hub
# Runs as root, without a Docker socket: it reaches dockerd only through the Docker gate's socket
# (/run/swarmhub-docker-gate/docker.sock, a volume the gate service shares). Working directory
# /srv/jupyterhub, where the service mounts the generated jupyterhub_config.py; the database and
# the cookie secret file live in /srv/jupyterhub/data, the hub's volume. The entrypoint exports JUPYTERHUB_CRYPT_KEY and
# JPY_COOKIE_SECRET from the files named by JUPYTERHUB_CRYPT_KEY_FILE and JPY_COOKIE_SECRET_FILE.
FROM python-base AS hub
# configurable-http-proxy from npm, installed with npm's own tarball: Debian's npm package pulls
# in hundreds of node-* packages (minutes of dpkg) that the image would not use.
# nginx is the TLS front (hub-deployer/src/settings/tls_front.rs): with TLS it serves HTTPS on
# the public port and redirects plain HTTP sent there; the proxy listens behind it. Its package
# must not start it (policy-rc.d); the hub runs it as a managed service.
ARG CHP_VERSION=5.3.0
ARG NPM_VERSION=10.9.8
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends nodejs nginx-light >/dev/null \
 && rm -f /usr/sbin/policy-rc.d \
 && rm -rf /var/lib/apt/lists/* \
 && nginx -v \
 && mkdir /tmp/npm \
 && curl -fsSL "https://registry.npmjs.org/npm/-/npm-${NPM_VERSION}.tgz" \
    | tar -xz -C /tmp/npm --strip-components=1 \
 && NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt node /tmp/npm/bin/npm-cli.js \
    install -g --prefix /usr/local --no-fund --no-audit --no-update-notifier --loglevel=error \
    "configurable-http-proxy@${CHP_VERSION}" \
 && rm -rf /tmp/npm /root/.npm \
 && configurable-http-proxy --version
COPY images/hub-requirements.txt /opt/swarmhub/hub-requirements.txt
RUN PIP_CERT=/etc/ssl/certs/ca-certificates.crt pip install -q -r /opt/swarmhub/hub-requirements.txt \
 && jupyterhub --version
COPY images/hub/entrypoint.sh /usr/local/bin/swarmhub-hub-entrypoint
RUN mkdir -p /srv/jupyterhub/data
WORKDIR /srv/jupyterhub
EXPOSE 8000 8081
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/swarmhub-hub-entrypoint"]
CMD ["jupyterhub", "--config", "/srv/jupyterhub/jupyterhub_config.py"]
ARG SWARMHUB_VERSION=dev
LABEL org.opencontainers.image.version=${SWARMHUB_VERSION}

# ------------------------------------------------------------- notebooks
# User jovyan 1000:100 (group users), HOME /home/jovyan: the user's home volume is mounted there.
# Nothing the image needs lives in the home directory (venv in /opt/venv, configuration in
# /etc/jupyter); swarmhub-notebook-start copies the skeleton (/etc/skel: .bashrc, .profile,
# .bash_logout, and an empty work/ where nbgrader keeps its files, as ~/work was in 0.x) into the
# home before the command, never over what the user has.
FROM python-base AS notebook
COPY images/notebook-requirements.txt /opt/swarmhub/notebook-requirements.txt
RUN PIP_CERT=/etc/ssl/certs/ca-certificates.crt pip install -q -r /opt/swarmhub/notebook-requirements.txt \
 && jupyterhub-singleuser --version && nbgrader --version
# `pip install --user` lands in ~/.local (on the home volume): a venv only reads the user's
# site-packages when it includes the system's, which in this image hold nothing else
RUN sed -i 's/^include-system-site-packages = false$/include-system-site-packages = true/' /opt/venv/pyvenv.cfg \
 && grep -qx 'include-system-site-packages = true' /opt/venv/pyvenv.cfg \
 && python -c 'import site, sys; sys.exit(0 if site.ENABLE_USER_SITE else 1)'
RUN useradd --uid 1000 --gid 100 --no-user-group --create-home --home-dir /home/jovyan \
      --shell /bin/bash jovyan \
 && mkdir -p /srv/nbgrader/exchange /etc/skel/work /home/jovyan/work \
 && chown 1000:100 /home/jovyan /home/jovyan/work \
 && chmod 1777 /srv/nbgrader/exchange
COPY images/notebook/nbgrader_config.py /etc/jupyter/nbgrader_config.py
COPY images/notebook/start.py /usr/local/bin/swarmhub-notebook-start
RUN chmod 755 /usr/local/bin/swarmhub-notebook-start
ENV HOME=/home/jovyan \
    SHELL=/bin/bash \
    NBGRADER_EXCHANGE_ROOT=/srv/nbgrader/exchange
WORKDIR /home/jovyan
EXPOSE 8888
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/swarmhub-notebook-start"]
CMD ["jupyterhub-singleuser"]

# Students: assignment list (fetch, submit) and validate. nbgrader enables all its extensions in
# the venv (sys-prefix); these switch the instructor ones off there.
FROM notebook AS notebook-student
RUN jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader \
 && jupyter server extension disable --sys-prefix nbgrader.server_extensions.course_list \
 && jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader \
 && jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:course-list \
 && jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:create-assignment
ENV SWARMHUB_ROLE=student
USER 1000:100
ARG SWARMHUB_VERSION=dev
LABEL org.opencontainers.image.version=${SWARMHUB_VERSION}

# Teachers: everything nbgrader has, with the course directory ~/work/<course id>.
FROM notebook AS notebook-teacher
ENV SWARMHUB_ROLE=teacher
USER 1000:100
ARG SWARMHUB_VERSION=dev
LABEL org.opencontainers.image.version=${SWARMHUB_VERSION}

# ============================================================== the demo's directory

# OpenLDAP for `swarmhub demo up`: loads the seed LDIF (a Docker secret) at every start.
FROM ${BASE_IMAGE} AS demo-ldap
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slapd ldap-utils \
 && rm -rf /var/lib/apt/lists/* /etc/ldap/slapd.d /var/lib/ldap/* /usr/sbin/policy-rc.d
COPY images/demo-ldap/entrypoint.sh /usr/local/bin/demo-ldap
EXPOSE 389
ENTRYPOINT ["/usr/local/bin/demo-ldap"]

# ============================================================== compile in Docker (route 1)

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu \
      -p swarmhub-nfsd -p swarmhub-volume-plugin -p hub-deployer \
 && images/layout.sh /dist target/x86_64-unknown-linux-gnu/release

# swarmhub-nfsd: runs as root and needs CAP_DAC_READ_SEARCH (open_by_handle_at) on top of
# Docker's defaults; mount the data root at /data on ext4, xfs or btrfs.
FROM scratch AS nfsd
COPY --from=build /dist/nfsd/ /
ENV SWARMHUB_NFSD_DATA_DIR=/data \
    SWARMHUB_NFSD_LISTEN=0.0.0.0:2049 \
    SWARMHUB_NFSD_API_LISTEN=0.0.0.0:8049
EXPOSE 2049 8049
STOPSIGNAL SIGTERM
ENTRYPOINT ["/swarmhub-nfsd"]
ARG SWARMHUB_VERSION=dev
LABEL org.opencontainers.image.version=${SWARMHUB_VERSION}

# The swarmhub-nfs managed plugin's rootfs. Docker installs plugins from a directory with
# config.json and rootfs/, so this image is exported rather than run:
#
#   docker build --target plugin-rootfs -t swarmhub/plugin-rootfs .
#   mkdir -p plugin/rootfs && cp plugin-config/config.json plugin/
#   docker export "$(docker create swarmhub/plugin-rootfs)" | tar -x -C plugin/rootfs
#   docker plugin create swarmhub-nfs plugin
#
# (plugin-config/build.sh does the same without this image, from a cargo build; the cli image
# carries the same directory at /usr/share/swarmhub/plugin.)
FROM scratch AS plugin-rootfs
COPY --from=build /dist/cli/usr/share/swarmhub/plugin/rootfs/ /
ENTRYPOINT ["/swarmhub-volume-plugin"]

# The swarmhub CLI. Its plugin rollout (`swarmhub plugin node-install`, run on every node as a
# Swarm job) creates the plugin from /usr/share/swarmhub/plugin/{config.json,rootfs/}.
FROM scratch AS cli
COPY --from=build /dist/cli/ /
ENTRYPOINT ["/usr/local/bin/swarmhub"]
# the version of the image (its tag), set by `swarmhub build`; last, so no layer depends on it
ARG SWARMHUB_VERSION=dev
LABEL org.opencontainers.image.version=${SWARMHUB_VERSION}
