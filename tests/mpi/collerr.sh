#!/usr/bin/env bash
# One rank's bad argument in a collective (a broadcast root out of range) aborts the world on
# the MPI backend: every other rank's call ends fast with LC_ERR_ABORT and the culprit's
# reason. usage: collerr.sh P TEST_FAULT RUNNER...
set -u
p=$1 test_fault=$2
shift 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
LONGCTX_TIMEOUT=60 timeout 90 "$@" "$test_fault" bad-root >"$out" 2>&1
rc=$?
cat "$out"
[ $rc -eq 77 ] && exit 77
fail=0
[ $rc -eq 0 ] && { echo "FAIL: the job returned 0"; fail=1; }
[ $rc -eq 124 ] && { echo "FAIL: hang"; fail=1; }
got=$(grep -c "rc=-4 (aborted) after [0-4]\.[0-9]* s: .*lc_broadcast stopped: PE 1: lc_broadcast: root 99 not in team of $p" "$out")
[ "$got" -eq $((p - 1)) ] || { echo "FAIL: $got of $((p - 1)) ranks failed fast with the reason"; fail=1; }
[ $fail -eq 0 ] && echo "ok   collective error aborts the world with its reason"
exit $fail
