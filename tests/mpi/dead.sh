#!/usr/bin/env bash
# A rank dies (SIGKILL) mid-ring on the MPI backend: the job must end non-zero within seconds,
# never hang, and the output must name the dead rank (mpirun's report: the runtime cannot
# watch a peer on another host itself). usage: dead.sh VICTIM TEST_CP RUNNER...
set -u
victim=$1 test_cp=$2
shift 2
t0=$(date +%s.%N)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
LONGCTX_TIMEOUT=60 timeout 90 "$@" "$test_cp" die "$victim" kill one_sided >"$out" 2>&1
rc=$?
el=$(awk "BEGIN{print $(date +%s.%N) - $t0}")
cat "$out"
[ $rc -eq 77 ] && exit 77
fail=0
[ $rc -eq 0 ] && { echo "FAIL: the job returned 0"; fail=1; }
[ $rc -eq 124 ] && { echo "FAIL: hang (killed by timeout)"; fail=1; }
awk "BEGIN{exit !($el > 30)}" && { echo "FAIL: took ${el}s"; fail=1; }
grep -Eq "(process rank|PE) $victim\b" "$out" || { echo "FAIL: nothing names rank $victim"; fail=1; }
echo "rc=$rc after ${el}s"
[ $fail -eq 0 ] && echo "ok   dead rank $victim"
exit $fail
