#!/usr/bin/env bash
# Runs one JAX binding test script as N PEs (`longctx launch -n N`, or a plain process for
# N = 0) and passes only when every PE printed "PE i: 0 failures" and none printed FAIL.
# --world-ends: the script's last refusal ends the world on purpose, so the launcher's own
# status is not looked at (the per-PE lines still are).
# N = mpi:K: K ranks under mpirun (tests/mpi/mpirun.sh), the MPI backend.
# usage: run.sh [--world-ends] LONGCTX PYTHON N SCRIPT [ARGS...]
set -u
ends=0
[ "$1" = --world-ends ] && { ends=1; shift; }
LC=$1 PY=$2 N=$3 SCRIPT=$4
shift 4
cd "$(dirname "$SCRIPT")"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ "$N" = 0 ]; then
    timeout 120 "$PY" "$SCRIPT" "$@" >"$out" 2>&1
    rc=$?
elif [ "${N#mpi:}" != "$N" ]; then
    N=${N#mpi:}
    timeout 120 "$(dirname "$0")/../mpi/mpirun.sh" "$N" "$PY" "$SCRIPT" "$@" >"$out" 2>&1
    rc=$?
    [ $rc -eq 77 ] && { cat "$out"; exit 77; }
    grep -q "PE 0/$N: the mpi backend" "$out" || { echo "FAIL: the ranks did not run on the mpi backend"; cat "$out"; exit 1; }
else
    timeout 120 "$LC" launch -n "$N" -- "$PY" "$SCRIPT" "$@" >"$out" 2>&1
    rc=$?
fi
# JAX and gloo log to stderr; keep what the test says
grep -Ev '^(WARNING|I0000|E0000)|Gloo' "$out"
fail=0
[ $rc -eq 124 ] && { echo "FAIL: timed out after 120 s"; fail=1; }
[ $ends -eq 0 ] && [ $rc -ne 0 ] && { echo "FAIL: exit status $rc"; fail=1; }
for pe in $(seq 0 $(( (N > 0 ? N : 1) - 1 ))); do
    grep -q "PE $pe: 0 failures" "$out" || { echo "FAIL: PE $pe did not report 0 failures"; fail=1; }
done
grep -q '^FAIL' "$out" && fail=1
exit $fail
