# Helpers shared by the conformance suite parts (busybox sh inside the guest).
# Not a standalone script: run-suite.sh / the Rust tests prepend it to each part, so a
# part is shipped to the guest as one file ("lib.sh + part.sh").
#
# Every case prints exactly one line:
#   PASS name
#   FAIL name: op, expected X, got Y
# and `suite_end` prints a summary and exits 1 if any case failed.

SUITE_PASSED=0
SUITE_FAILED=0
SUITE_T0=$(cut -d' ' -f1 /proc/uptime)

pass() { # name
    echo "PASS $1"
    SUITE_PASSED=$((SUITE_PASSED + 1))
}
fail() { # name op expected got
    echo "FAIL $1: $2, expected $3, got $4"
    SUITE_FAILED=$((SUITE_FAILED + 1))
}
# check NAME OP EXPECTED GOT: PASS when GOT = EXPECTED (string compare).
check() {
    if [ "$4" = "$3" ]; then pass "$1"; else fail "$1" "$2" "'$3'" "'$4'"; fi
}
# Run a command and record its status and (single-line) stderr for messages:
#   try CMD...   -> sets TRY_RC, TRY_ERR (stderr, newlines folded), TRY_OUT (stdout)
try() {
    TRY_OUT=$("$@" 2>/tmp/.try.err)
    TRY_RC=$?
    TRY_ERR=$(tr '\n' ' ' </tmp/.try.err | sed 's/ *$//')
}
# must NAME OP CMD...: the command must succeed; FAIL shows its exit status and stderr.
# Returns the command's status so callers can skip dependent steps.
must() {
    _n=$1; _op=$2; shift 2
    try "$@"
    if [ "$TRY_RC" = 0 ]; then return 0; fi
    fail "$_n" "$_op" "success" "exit $TRY_RC${TRY_ERR:+ ($TRY_ERR)}"
    return 1
}
# must_fail NAME OP PATTERN CMD...: the command must fail with stderr matching PATTERN
# (grep -iE regex, e.g. "quota" or "not empty|exists"); PASS on that.
must_fail() {
    _n=$1; _op=$2; _pat=$3; shift 3
    try "$@"
    if [ "$TRY_RC" = 0 ]; then
        fail "$_n" "$_op" "failure matching /$_pat/" "success${TRY_OUT:+ (output: $(echo "$TRY_OUT" | head -c 200 | tr '\n' ' '))}"
    elif echo "$TRY_ERR" | grep -qiE -- "$_pat"; then
        pass "$_n"
    else
        fail "$_n" "$_op" "failure matching /$_pat/" "exit $TRY_RC ($TRY_ERR)"
    fi
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# timed LABEL CMD...: run CMD, print "TIME label seconds" (guest clock) on stderr, keep its status.
timed() {
    _l=$1; shift
    _a=$(uptime_s)
    "$@"
    _rc=$?
    echo "TIME $_l $(awk -v a="$_a" -v b="$(uptime_s)" 'BEGIN{printf "%.2f", b-a}')" >&2
    return $_rc
}
suite_end() {
    echo "SUMMARY passed=$SUITE_PASSED failed=$SUITE_FAILED seconds=$(awk -v a="$SUITE_T0" -v b="$(uptime_s)" 'BEGIN{printf "%.1f", b-a}')"
    [ "$SUITE_FAILED" = 0 ] || exit 1
    exit 0
}
