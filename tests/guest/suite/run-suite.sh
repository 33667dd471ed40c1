#!/bin/bash
# Run one part of the conformance suite in the guest:
#   tests/guest/suite/run-suite.sh PART [run-guest.sh args...]
# PART is generic | home | views | restart (file suite/PART.sh); lib.sh is prepended and
# the bundle is handed to run-guest.sh --script. Extra env for the guest script can be
# given as SUITE_ENV='VAR=value VAR2=value' (exported at the top of the bundle).
# Exit status: run-guest.sh's (the part exits 1 when any case FAILs).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PART="${1:?usage: run-suite.sh PART [run-guest args...]}"; shift
[ -f "$HERE/$PART.sh" ] || { echo "run-suite: no part $HERE/$PART.sh" >&2; exit 240; }
B="$(mktemp "${TMPDIR:-/tmp}/swarmhub-suite-$PART.XXXXXX.sh")"
trap 'rm -f "$B"' EXIT
{
    for kv in ${SUITE_ENV:-}; do echo "export $kv"; done
    cat "$HERE/lib.sh" "$HERE/$PART.sh"
} >"$B"
set +e
"$HERE/../run-guest.sh" --script "$B" "$@"
