#!/usr/bin/env bash
# Builds the local Debian base image of swarmhub's Python images (hub, notebooks) with
# debootstrap and `docker import`, so that building them needs no registry.
#
#   images/debian-base.sh [options]
#
# Options:
#   --tag TAG        image to create (default: swarmhub/debian:bookworm)
#   --suite SUITE    Debian release (default: bookworm)
#   --mirror URL     Debian mirror (default: http://deb.debian.org/debian)
#   --label K=V      extra image label (repeatable)
#   --no-host-ca     do not copy the host's locally added CA certificates
#                    (/usr/local/share/ca-certificates/*.crt) into the image
#   --force          rebuild even if TAG exists
#
# The image is Debian minbase plus python3, python3-venv, ca-certificates, tini and curl, with
# the suite's -updates and -security sources enabled and applied. The host's locally added CA
# certificates are trusted in the image as on the host (a TLS-intercepting egress proxy or a
# company CA), unless --no-host-ca. Safe to re-run: an existing TAG is left alone without --force.
# Needs root, debootstrap (apt-get install -y debootstrap) and a dockerd.
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

TAG=swarmhub/debian:bookworm
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
HOST_CA=1
FORCE=0
LABELS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=$2; shift 2 ;;
    --suite) SUITE=$2; shift 2 ;;
    --mirror) MIRROR=$2; shift 2 ;;
    --label) LABELS+=("$2"); shift 2 ;;
    --no-host-ca) HOST_CA=0; shift ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "debian-base.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

say() { echo "debian-base.sh: $*" >&2; }
die() { echo "debian-base.sh: error: $*" >&2; exit 1; }

command -v docker >/dev/null || die "the docker CLI is not installed (apt-get install -y docker.io)"
docker version >/dev/null 2>&1 || die "dockerd does not answer (is it running? are you root?)"
if [ "$FORCE" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG exists; left as it is (--force rebuilds it)"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install -y debootstrap)"

WORK=$(mktemp -d /var/tmp/swarmhub-debian-base.XXXXXX)
cleanup() {
  # never leave a bind mount behind before deleting the tree
  for m in "$WORK/rootfs/proc" "$WORK/rootfs/dev/pts"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
R=$WORK/rootfs

say "debootstrap $SUITE (minbase) from $MIRROR"
debootstrap --variant=minbase \
  --include=ca-certificates,python3,python3-venv,tini,curl \
  "$SUITE" "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

cat > "$R/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
# what Docker's debian images do: no documentation, no recommends, no apt caches
cat > "$R/etc/apt/apt.conf.d/90swarmhub" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT
cat > "$R/etc/dpkg/dpkg.cfg.d/90swarmhub-nodoc" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
if [ "$HOST_CA" = 1 ] && compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  say "trusting the host's local CA certificates: $(cd /usr/local/share/ca-certificates && echo *.crt)"
  cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/"
fi
cp /etc/resolv.conf "$R/etc/resolv.conf"
mount -t proc proc "$R/proc"
say "applying $SUITE-updates and $SUITE-security"
chroot "$R" /bin/sh -c '
  set -e
  export DEBIAN_FRONTEND=noninteractive
  update-ca-certificates >/dev/null
  apt-get update -qq
  apt-get -y -qq upgrade >/dev/null
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log /tmp/* \
    /usr/share/doc/*/changelog* /usr/share/man/* /usr/share/info/*
' || die "updating the rootfs failed"
umount "$R/proc"
: > "$R/etc/resolv.conf"
echo swarmhub > "$R/etc/hostname"

CHANGES=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
         --change 'ENV LANG=C.UTF-8'
         --change 'CMD ["/bin/bash"]'
         --change "LABEL org.swarmhub.base.suite=$SUITE")
for l in "${LABELS[@]}"; do CHANGES+=(--change "LABEL $l"); done
say "importing $TAG"
tar -C "$R" --numeric-owner -c . | docker import "${CHANGES[@]}" - "$TAG" >/dev/null
say "$TAG: $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')"
