#!/bin/bash
# One PE passes a bad argument to lc_cp_forward / lc_cp_backward: every PE must fail within a
# second (measured inside each PE around the call) with the reason in its error, and the
# launcher must return non-zero.
#   badarg.sh LONGCTX TEST_CP P VICTIM WHAT LOWERING REASON
set -u
longctx=$1 test_cp=$2 P=$3 victim=$4 what=$5 lowering=$6 reason=$7
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
LONGCTX_TIMEOUT=60 timeout 90 "$longctx" launch -n "$P" -- "$test_cp" badarg "$victim" "$what" "$lowering" \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/err"
fail=0
if [ "$rc" -eq 0 ]; then echo "FAIL: launcher returned 0"; fail=1; fi
if [ "$rc" -eq 124 ]; then echo "FAIL: hang (killed by timeout)"; fail=1; fi
failed=$(grep -c "failed after" "$tmp/err")
with_reason=$(grep "failed after" "$tmp/err" | grep -c -- "$reason")
named=$(grep "failed after" "$tmp/err" | grep -v "^test_cp: PE $victim " | grep -c "PE $victim aborted")
slow=$(grep -c "(SLOW)" "$tmp/err")
if [ "$failed" -ne "$P" ]; then echo "FAIL: $failed of $P PEs reported an error"; fail=1; fi
if [ "$with_reason" -ne "$P" ]; then echo "FAIL: only $with_reason of $P errors carry the reason '$reason'"; fail=1; fi
if [ "$named" -ne $((P - 1)) ]; then echo "FAIL: only $named of $((P - 1)) peers name PE $victim"; fail=1; fi
if [ "$slow" -ne 0 ]; then echo "FAIL: $slow PEs took a second or more"; fail=1; fi
[ $fail -eq 0 ] && echo "ok   bad $what on PE $victim ($lowering, P=$P): every PE failed fast with the reason"
exit $fail
