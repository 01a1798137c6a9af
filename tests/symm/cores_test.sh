#!/usr/bin/env bash
# Cores per PE, seen from inside the PE (lc_cores_per_pe): the launcher gives PE i the i-th
# block of allowed CPUs / P and binds it there; the allowed set is the job's (taskset), so
# a job restricted to one CPU binds to that CPU, not to CPU 0.
# usage: cores_test.sh LONGCTX_BIN TEST_FAULT_BIN
set -u
LC=$1
TF=$2
fail=0
ncpu=$(nproc)
for p in 1 2 3; do
    want=$(( ncpu >= p ? ncpu / p : 1 ))
    out=$("$LC" launch -n $p -- "$TF" cores 2>&1)
    got=$(echo "$out" | grep -c "cores=$want\$")
    if [ "$got" != $p ]; then echo "FAIL P=$p on $ncpu CPUs: expected cores=$want on every PE"; echo "$out"; fail=1
    else echo "ok   P=$p on $ncpu CPUs: cores=$want per PE"; fi
done
# Unbound PEs share the CPUs and still count their share, not the whole machine.
out=$(LONGCTX_BIND=none "$LC" launch -n 2 -- "$TF" cores 2>&1)
want=$(( ncpu >= 2 ? ncpu / 2 : 1 ))
if [ "$(echo "$out" | grep -c "cores=$want\$")" != 2 ]; then echo "FAIL BIND=none: expected cores=$want"; echo "$out"; fail=1
else echo "ok   LONGCTX_BIND=none: cores=$want per PE"; fi
if command -v taskset >/dev/null; then
    # the highest CPU this job may use: a job confined there must bind its PE 0 there
    last=$(taskset -cp $$ | sed 's/.*: //' | tr ',' '\n' | sed 's/.*-//' | sort -n | tail -1)
    out=$(LONGCTX_DEBUG=1 taskset -c "$last" "$LC" launch -n 1 -- "$TF" cores 2>&1)
    if ! echo "$out" | grep -q "PE 0 on CPU $last, 1 core for its threads" || ! echo "$out" | grep -q "cores=1\$" ||
       ! echo "$out" | grep -q "CPUs $last, 1 core for this PE's threads"; then
        echo "FAIL taskset -c $last: PE 0 not bound to CPU $last with 1 core"; echo "$out"; fail=1
    else echo "ok   taskset -c $last: PE 0 bound to CPU $last, cores=1"; fi
    out=$(LONGCTX_DEBUG=1 taskset -c "$last" "$LC" launch -n 2 -- "$TF" cores 2>&1)
    if [ "$(echo "$out" | grep -c "cores=1\$")" != 2 ] || ! echo "$out" | grep -q "unbound, sharing them"; then
        echo "FAIL taskset -c $last, 2 PEs: expected shared, cores=1"; echo "$out"; fail=1
    else echo "ok   taskset -c $last, 2 PEs on 1 CPU: shared, cores=1 each"; fi
else
    echo "note: taskset missing, the cpuset cases were not run"
fi
out=$(LONGCTX_BIND=weird "$LC" launch -n 1 -- "$TF" cores 2>&1)
if [ $? = 0 ] || ! echo "$out" | grep -q "LONGCTX_BIND=weird: expected core"; then echo "FAIL LONGCTX_BIND=weird accepted"; echo "$out"; fail=1
else echo "ok   LONGCTX_BIND=weird rejected"; fi
[ $fail = 0 ] && echo "cores tests passed"
exit $fail
