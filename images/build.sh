#!/usr/bin/env bash
# Builds swarmhub's images with the tags of swarmhub.toml's [images] section.
#
#   images/build.sh [options] [TARGET...]
#
# TARGETs (default: all but plugin-rootfs):
#   nfsd              -> swarmhub/nfsd:VERSION
#   cli               -> swarmhub/swarmhub:VERSION
#   hub               -> swarmhub/hub:VERSION
#   notebook-student  -> swarmhub/notebook-student:VERSION
#   notebook-teacher  -> swarmhub/notebook-teacher:VERSION
#   plugin-rootfs     -> swarmhub/plugin-rootfs:VERSION
#   demo-ldap         -> swarmhub/demo-ldap:VERSION (the directory of `swarmhub demo up`)
# VERSION is the workspace version (Cargo.toml).
#
# Options:
#   --prebuilt          build the static binaries here with cargo (into $CARGO_TARGET_DIR or
#                       target/), lay them out in target/dist (images/layout.sh) and use the
#                       Dockerfile's *-prebuilt targets: no Rust image needed
#   --base IMAGE        base of the Python images (default: swarmhub/debian:bookworm, built by
#                       images/debian-base.sh when missing; elsewhere e.g. debian:bookworm-slim)
#   --rust-image IMAGE  Rust image of the compile route (default: the Dockerfile's)
#   --network MODE      network of the build containers (default: Docker's default bridge)
#   --label K=V         label for the built images (repeatable)
#   --tag-version V     tag images :V instead of the workspace version
#   -q, --quiet         print only errors and the built tags
#
# Uses the docker CLI with the legacy builder (DOCKER_BUILDKIT=0), as dockerd 20.10 without
# buildx offers; the CLI's deprecation warning about it is expected.
set -euo pipefail

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREBUILT=0
BASE=""
RUST_IMAGE=""
NETWORK=""
QUIET=0
LABELS=()
TARGETS=()
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt) PREBUILT=1; shift ;;
    --base) BASE=$2; shift 2 ;;
    --rust-image) RUST_IMAGE=$2; shift 2 ;;
    --network) NETWORK=$2; shift 2 ;;
    --label) LABELS+=("$2"); shift 2 ;;
    --tag-version) VERSION=$2; shift 2 ;;
    -q|--quiet) QUIET=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "build.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[ -n "$VERSION" ] || { echo "build.sh: cannot read the workspace version from Cargo.toml" >&2; exit 1; }
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=(nfsd cli hub notebook-student notebook-teacher demo-ldap)

say() { echo "images/build.sh: $*" >&2; }
die() { echo "images/build.sh: error: $*" >&2; exit 1; }

tag_of() {
  case "$1" in
    nfsd) echo "swarmhub/nfsd:$VERSION" ;;
    cli) echo "swarmhub/swarmhub:$VERSION" ;;
    hub) echo "swarmhub/hub:$VERSION" ;;
    notebook-student) echo "swarmhub/notebook-student:$VERSION" ;;
    notebook-teacher) echo "swarmhub/notebook-teacher:$VERSION" ;;
    plugin-rootfs) echo "swarmhub/plugin-rootfs:$VERSION" ;;
    demo-ldap) echo "swarmhub/demo-ldap:$VERSION" ;;
    *) return 1 ;;
  esac
}
for t in "${TARGETS[@]}"; do tag_of "$t" >/dev/null || die "unknown target $t (see --help)"; done

command -v docker >/dev/null || die "the docker CLI is not installed (apt-get install -y docker.io)"
docker version >/dev/null 2>&1 || die "dockerd does not answer (is it running? are you root?)"

needs_python=0
needs_rust=0
for t in "${TARGETS[@]}"; do
  case "$t" in
    hub|notebook-*|demo-ldap) needs_python=1 ;;
    *) needs_rust=1 ;;
  esac
done

# the Python images' base
if [ -z "$BASE" ]; then
  BASE=swarmhub/debian:bookworm
  if [ "$needs_python" = 1 ] && ! docker image inspect "$BASE" >/dev/null 2>&1; then
    "$ROOT/images/debian-base.sh" --tag "$BASE"
  fi
fi

# the static binaries, laid out in target/dist
if [ "$PREBUILT" = 1 ] && [ "$needs_rust" = 1 ]; then
  command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
  # shellcheck source=images/pinned-rust.sh
  . "$ROOT/images/pinned-rust.sh"
  pinned_rust "$ROOT" || die "install the pinned Rust (see above), or build without --prebuilt"
  TRIPLE=x86_64-unknown-linux-gnu
  TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
  say "building the static binaries (release, crt-static, $TRIPLE) into $TARGET_DIR"
  (cd "$ROOT" && RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$TRIPLE" \
      -p swarmhub-nfsd -p swarmhub-volume-plugin -p hub-deployer >&2)
  "$ROOT/images/layout.sh" "$ROOT/target/dist" "$TARGET_DIR/$TRIPLE/release" >/dev/null
fi

ARGS=(--build-arg "BASE_IMAGE=$BASE")
[ -z "$RUST_IMAGE" ] || ARGS+=(--build-arg "RUST_IMAGE=$RUST_IMAGE")
[ -z "$NETWORK" ] || ARGS+=(--network "$NETWORK")
for l in "${LABELS[@]}"; do ARGS+=(--label "$l"); done
[ "$QUIET" = 0 ] || ARGS+=(-q)

for t in "${TARGETS[@]}"; do
  target=$t
  case "$t" in
    nfsd|cli|plugin-rootfs)
      if [ "$PREBUILT" = 1 ]; then
        target=$t-prebuilt
        [ -d "$ROOT/target/dist/cli" ] && [ -d "$ROOT/target/dist/nfsd" ] \
          || die "target/dist is incomplete (images/layout.sh did not run?)"
      fi ;;
  esac
  tag=$(tag_of "$t")
  say "building $tag (target $target)"
  start=$(date +%s)
  # the image's version label is its tag, as `swarmhub build` sets it
  (cd "$ROOT" && DOCKER_BUILDKIT=0 docker build "${ARGS[@]}" --build-arg "SWARMHUB_VERSION=${tag##*:}" \
    --target "$target" -t "$tag" . >&2) \
    || die "building $tag failed"
  say "built $tag in $(( $(date +%s) - start )) s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
  echo "$tag"
done
