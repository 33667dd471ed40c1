# Sourced by .ci/run, demo.sh, images/build.sh and plugin-config/build.sh (bash): makes the
# cargo they call the Rust release rust-toolchain.toml pins. This rustup does not fetch a
# toolchain file's channel by itself (cargo only says it is not installed), and a stable of the
# same release cannot be linked under the release's name, so:
#   - the pinned toolchain installed, or no rustup at all: nothing to do;
#   - the machine's stable is that release: RUSTUP_TOOLCHAIN=stable (nothing to download);
#   - otherwise, with --install: `rustup toolchain install` it; without: fail, saying how.
# With --install, rustfmt and clippy are made sure of too.
# Usage: pinned_rust ROOT [--install]; returns 1 (after a message on stderr) when it cannot.
pinned_rust() {
  local root=$1 install=${2:-} want
  want=$(sed -n 's/^channel *= *"\(.*\)"$/\1/p' "$root/rust-toolchain.toml")
  [ -n "$want" ] || { echo "no channel in $root/rust-toolchain.toml" >&2; return 1; }
  command -v rustup >/dev/null || return 0
  if rustup toolchain list | grep -q "^$want-"; then
    :
  elif rustc +stable --version 2>/dev/null | grep -q "^rustc $want "; then
    export RUSTUP_TOOLCHAIN=stable
  elif [ "$install" = --install ]; then
    rustup toolchain install "$want" --profile minimal --component rustfmt,clippy
  else
    echo "Rust $want (rust-toolchain.toml) is not installed: rustup toolchain install $want" >&2
    return 1
  fi
  # with --install also rustfmt and clippy (a toolchain installed earlier may lack them)
  [ "$install" = --install ] || return 0
  { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1 \
    || rustup component add --toolchain "${RUSTUP_TOOLCHAIN:-$want}" rustfmt clippy
}
