#!/bin/bash
# A PE dies mid-ring: the launcher must return non-zero within a few seconds, stderr must
# name the dead PE, and nothing may be left in /dev/shm.
#   die.sh LONGCTX TEST_CP P VICTIM exit|kill LOWERING
set -u
longctx=$1 test_cp=$2 P=$3 victim=$4 how=$5 lowering=$6
if ! command -v awk >/dev/null; then echo "SKIP: awk is missing (needed to time the run)"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
touch "$tmp/stamp"
t0=$(date +%s.%N)
LONGCTX_TIMEOUT=60 timeout 60 "$longctx" launch -n "$P" -- "$test_cp" die "$victim" "$how" "$lowering" \
    >"$tmp/out" 2>"$tmp/err"
rc=$?
t1=$(date +%s.%N)
el=$(awk "BEGIN{print $t1 - $t0}")
cat "$tmp/err"
fail=0
if [ "$rc" -eq 0 ]; then echo "FAIL: launcher returned 0"; fail=1; fi
if [ "$rc" -eq 124 ]; then echo "FAIL: hang (killed by timeout)"; fail=1; fi
if awk "BEGIN{exit !($el > 8)}"; then echo "FAIL: took ${el}s"; fail=1; fi
# Every survivor must report the abort, and the message must name the dead PE.
survivors=$(grep -c "stopped at step" "$tmp/err")
if [ "$survivors" -ne $((P - 1)) ]; then echo "FAIL: $survivors of $((P - 1)) survivors reported an error"; fail=1; fi
if ! grep "stopped at step" "$tmp/err" | grep -q "PE $victim"; then echo "FAIL: the error does not name PE $victim"; fail=1; fi
left=$(find /dev/shm -maxdepth 1 -newer "$tmp/stamp" -name '*longctx*' 2>/dev/null | wc -l)
if [ "$left" -ne 0 ]; then echo "FAIL: $left files left in /dev/shm"; fail=1; fi
echo "launcher rc=$rc after ${el}s; survivors reporting: $survivors"
[ $fail -eq 0 ] && echo "ok   dead PE $victim ($how, $lowering, P=$P)"
exit $fail
