#!/bin/bash
# Build (idempotently) the throwaway qemu guest used to test NFSv3 exports with
# the real Linux kernel NFS client.
#
#   tests/guest/build-guest.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $SWARMHUB_GUEST_CACHE, else /var/cache/swarmhub-guest.
# Result (consumed by run-guest.sh):
#   CACHE_DIR/base/vmlinuz       Debian bookworm cloud kernel
#   CACHE_DIR/base/initrd.cpio   busybox-static + NFS/virtio modules + /init (newc, uncompressed)
#   CACHE_DIR/base/STAMP         what it was built from (kernel package, busybox, init hash)
#   CACHE_DIR/debs/*.deb         the downloaded packages (kept, so rebuilds are offline)
#
# Environment:
#   SWARMHUB_GUEST_KERNEL_PKG   exact kernel package (default: what linux-image-cloud-amd64 depends on)
#   SWARMHUB_GUEST_NO_INSTALL=1 never apt-get install missing host tools (fail instead)
#   SWARMHUB_GUEST_REBUILD=1    rebuild even if the stamp matches
#
# Only Debian packages are needed: qemu-system-x86 and cpio (host tools, installed with
# apt-get if missing and we are root), plus the kernel and busybox-static .debs (apt-get
# download into CACHE_DIR/debs; extracted with dpkg-deb, never installed).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${1:-${SWARMHUB_GUEST_CACHE:-/var/cache/swarmhub-guest}}"
# Root modules; their dependencies are resolved from each module's .modinfo "depends=".
ROOT_MODULES=(virtio_pci virtio_net nfsv3)

log() { echo "build-guest: $*" >&2; }
die() { echo "build-guest: ERROR: $*" >&2; exit 1; }

# --- host tools ---------------------------------------------------------------
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
command -v cpio >/dev/null || need_pkgs+=(cpio)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    [ "${SWARMHUB_GUEST_NO_INSTALL:-0}" = 1 ] && die "missing host packages: ${need_pkgs[*]}"
    [ "$(id -u)" = 0 ] || die "missing host packages (need root to install): ${need_pkgs[*]}"
    log "installing ${need_pkgs[*]}"
    # --no-install-recommends: qemu-system-x86's recommends pull in a GUI stack.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2
fi
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

mkdir -p "$CACHE_DIR/debs" "$CACHE_DIR/base"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd)"

# --- kernel package -----------------------------------------------------------
resolve_kernel_pkg() {
    if [ -n "${SWARMHUB_GUEST_KERNEL_PKG:-}" ]; then echo "$SWARMHUB_GUEST_KERNEL_PKG"; return; fi
    local p
    p="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null \
        | awk '/Depends: linux-image-6\.1\.0-[0-9]+-cloud-amd64$/ {print $2; exit}')"
    if [ -z "$p" ]; then
        p="$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' 2>/dev/null \
            | awk '{print $1}' | sort -V | tail -n1)"
    fi
    if [ -z "$p" ]; then
        # Offline and no apt lists: fall back to whatever is already cached.
        p="$(ls "$CACHE_DIR/debs" 2>/dev/null | sed -n 's/^\(linux-image-6\.1\.0-[0-9]*-cloud-amd64\)_.*\.deb$/\1/p' \
            | sort -V | tail -n1)"
    fi
    [ -n "$p" ] || die "cannot resolve the linux-image-6.1.0-*-cloud-amd64 package (apt-get update?)"
    echo "$p"
}
KPKG="$(resolve_kernel_pkg)"

# Pick the cached .deb for this package, downloading it if absent.
cached_deb() {
    local pkg="$1" f
    f="$(ls "$CACHE_DIR/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n1 || true)"
    if [ -z "$f" ]; then
        log "downloading $pkg"
        (cd "$CACHE_DIR/debs" && apt-get download "$pkg" >&2) || die "apt-get download $pkg failed"
        f="$(ls "$CACHE_DIR/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n1 || true)"
        [ -n "$f" ] || die "apt-get download $pkg produced no .deb"
    fi
    echo "$f"
}
KDEB="$(cached_deb "$KPKG")"
# busybox for the guest comes from the busybox-static .deb (not from the host).
BDEB="$(cached_deb busybox-static)"

INIT_SRC="$HERE/guest-init.sh"
[ -f "$INIT_SRC" ] || die "missing $INIT_SRC"
STAMP_WANT="kernel=$(basename "$KDEB")
busybox=$(basename "$BDEB")
init=$(sha256sum "$INIT_SRC" | cut -c1-16)
build=$(sha256sum "$0" | cut -c1-16)
modules=${ROOT_MODULES[*]}"

if [ "${SWARMHUB_GUEST_REBUILD:-0}" != 1 ] && [ -f "$CACHE_DIR/base/STAMP" ] \
    && [ -f "$CACHE_DIR/base/vmlinuz" ] && [ -f "$CACHE_DIR/base/initrd.cpio" ] \
    && [ "$(cat "$CACHE_DIR/base/STAMP")" = "$STAMP_WANT" ]; then
    log "up to date: $CACHE_DIR/base ($(basename "$KDEB"))"
    exit 0
fi

# --- build ---------------------------------------------------------------------
WORK="$(mktemp -d "$CACHE_DIR/.build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log "extracting $(basename "$KDEB")"
dpkg-deb -x "$KDEB" "$WORK/kpkg"
KVER="$(ls "$WORK/kpkg/lib/modules" | head -n1)"
[ -n "$KVER" ] || die "no /lib/modules in $KDEB"
VMLINUZ="$WORK/kpkg/boot/vmlinuz-$KVER"
[ -f "$VMLINUZ" ] || die "no vmlinuz in $KDEB"
MODDIR="$WORK/kpkg/lib/modules/$KVER"
dpkg-deb -x "$BDEB" "$WORK/bbpkg"
BUSYBOX="$WORK/bbpkg/bin/busybox"
[ -x "$BUSYBOX" ] || die "no /bin/busybox in $BDEB"

# name -> path index (module names use '_' even when file names use '-').
declare -A MODPATH=()
while IFS= read -r f; do
    b="$(basename "$f")"; b="${b%%.ko*}"; b="${b//-/_}"
    MODPATH[$b]="$f"
done < <(find "$MODDIR/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')

is_builtin() {
    local m="$1"
    [ -f "$MODDIR/modules.builtin" ] || return 1
    sed 's#.*/##; s#\.ko$##; s#-#_#g' "$MODDIR/modules.builtin" | grep -qx "$m"
}

# Decompress (if needed) into $WORK/mods/NAME.ko and print its depends= list.
declare -A LOADED=()
ORDER=()
mkdir -p "$WORK/mods"
fetch_module() {
    local m="$1" src="${MODPATH[$1]}" dst="$WORK/mods/$1.ko"
    case "$src" in
        *.ko) cp "$src" "$dst" ;;
        *.ko.xz) xz -dc "$src" >"$dst" ;;
        *.ko.zst) zstd -dc "$src" >"$dst" ;;
        *.ko.gz) gzip -dc "$src" >"$dst" ;;
    esac
}
resolve() {
    local m="${1//-/_}" deps d
    [ -n "${LOADED[$m]:-}" ] && return 0
    LOADED[$m]=visiting
    if [ -z "${MODPATH[$m]:-}" ]; then
        if is_builtin "$m"; then log "module $m is built in"; LOADED[$m]=builtin; return 0; fi
        die "module $m not found in $KPKG"
    fi
    fetch_module "$m"
    deps="$(tr '\0' '\n' <"$WORK/mods/$m.ko" | grep -a '^depends=' | head -n1 | cut -d= -f2)"
    for d in ${deps//,/ }; do
        [ "${LOADED[${d//-/_}]:-}" = visiting ] && die "module dependency cycle at $d"
        resolve "$d"
    done
    LOADED[$m]=done
    ORDER+=("$m")
}
for m in "${ROOT_MODULES[@]}"; do resolve "$m"; done
log "modules (load order): ${ORDER[*]}"

R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,mnt/nfs,mnt/nfs2,etc,harness,lib/modules}
cp "$BUSYBOX" "$R/bin/busybox"
chmod 755 "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
for m in "${ORDER[@]}"; do cp "$WORK/mods/$m.ko" "$R/lib/modules/$m.ko"; done
printf '%s\n' "${ORDER[@]}" >"$R/lib/modules/load-order"
echo "$KVER" >"$R/etc/guest-kernel"
cp "$INIT_SRC" "$R/init"
chmod 755 "$R/init"
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'jovyan:x:1000:100::/tmp:/bin/sh' >>"$R/etc/passwd"
printf 'root:x:0:\nusers:x:100:\n' >"$R/etc/group"
# /dev/console must exist before devtmpfs is mounted, or early init output is lost.
# (cpio from a non-root build would not be able to mknod; we only record it in the archive.)
(
    cd "$R"
    # newc archive; device node entries are added via a cpio listing trick: create them only if root.
    if [ "$(id -u)" = 0 ]; then mknod -m 600 dev/console c 5 1; mknod -m 666 dev/null c 1 3; fi
    find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 >"$WORK/initrd.cpio"
)

cp "$VMLINUZ" "$WORK/vmlinuz"
mv -f "$WORK/vmlinuz" "$CACHE_DIR/base/vmlinuz.new"
mv -f "$WORK/initrd.cpio" "$CACHE_DIR/base/initrd.cpio.new"
mv -f "$CACHE_DIR/base/vmlinuz.new" "$CACHE_DIR/base/vmlinuz"
mv -f "$CACHE_DIR/base/initrd.cpio.new" "$CACHE_DIR/base/initrd.cpio"
printf '%s\n' "$STAMP_WANT" >"$CACHE_DIR/base/STAMP"
log "built $CACHE_DIR/base (kernel $KVER, initrd $(du -h "$CACHE_DIR/base/initrd.cpio" | cut -f1))"
