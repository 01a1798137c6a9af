#!/bin/bash
# Peak memory per PE (VmHWM, measured after one forward+backward) must fall with CP for a
# fixed global sequence: P = 1 -> 2 -> 4, each step below 80% of the previous.
#   mem.sh LONGCTX TEST_MODEL S
set -u
longctx=$1 test_model=$2 S=$3
# the sanitizer pass (LONGCTX_TEST_QUICK) halves the sequence: still well above the baseline
if [ -n "${LONGCTX_TEST_QUICK:-}" ]; then S=$((S / 2)); fi
prev=
fail=0
for p in 1 2 4; do
    out=$("$longctx" launch -n "$p" -- "$test_model" mem "$S" 2>&1) || { echo "$out"; echo "FAIL: P=$p run failed"; exit 1; }
    echo "$out" | grep "^mem"
    kib=$(echo "$out" | sed -n 's/.*max VmHWM \([0-9]*\) KiB.*/\1/p')
    if [ -z "$kib" ]; then echo "FAIL: no VmHWM line at P=$p"; exit 1; fi
    if [ -n "$prev" ] && [ $((kib * 10)) -ge $((prev * 8)) ]; then
        echo "FAIL: P=$p peak $kib KiB is not below 80% of the previous $prev KiB"; fail=1
    fi
    prev=$kib
done
[ $fail -eq 0 ] && echo "ok   peak memory per PE falls with CP (S=$S)"
exit $fail
