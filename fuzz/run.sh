#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for RUNS executions each with cargo-fuzz on the
# nightly toolchain, growing fuzz/corpus/<target>/ and minimising it afterwards (cargo fuzz
# cmin), and prints one line per target: executions, seconds, corpus files, crashes.
#
#   fuzz/run.sh [--runs N] [--jobs J] [target ...]   (default: 10000000 runs, 1 process)
#
# Needs: rustup toolchain install nightly; cargo install cargo-fuzz. A crash leaves its input
# in fuzz/artifacts/<target>/; after the fix, copy it to fuzz/regressions/<target>/ so that
# `cargo test -p swarmhub-fuzz-targets` replays it on stable.
set -euo pipefail
cd "$(dirname "$0")"
RUNS=10000000
JOBS=1
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cargo +nightly fuzz list)
printf '| target | executions | seconds | exec/s | corpus files | crashes, hangs, OOM |\n|---|--:|--:|--:|--:|--:|\n'
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # nfs_calls can stop while its thread acts as a volume's uid (nfsd's setfsuid), and
  # libFuzzer then writes the crash input as that uid
  chmod 1777 "artifacts/$t"
  log=$(mktemp)
  start=$(date +%s)
  status=0
  parallel=()
  [ "$JOBS" = 1 ] || parallel=(-fork="$JOBS")
  cargo +nightly fuzz run "$t" "corpus/$t" -- -runs="$RUNS" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 "${parallel[@]}" >"$log" 2>&1 || status=$?
  secs=$(( $(date +%s) - start ))
  execs=$( (grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" || true) | awk '{s+=$2} END {print s+0}')
  found=$(find "artifacts/$t" -type f | wc -l)
  cargo +nightly fuzz cmin "$t" "corpus/$t" >/dev/null 2>&1 || true
  files=$(find "corpus/$t" -type f | wc -l)
  rate=$(( secs > 0 ? execs / secs : execs ))
  printf '| %s | %s | %s | %s | %s | %s%s |\n' "$t" "$execs" "$secs" "$rate" "$files" "$found" \
    "$([ "$status" = 0 ] || echo " (exit $status: $log)")"
  [ "$status" = 0 ] && rm -f "$log"
done
