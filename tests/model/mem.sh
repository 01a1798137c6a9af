#!/bin/bash
# Peak memory per PE (VmHWM, measured after one forward+backward) must fall with CP for a
# fixed global sequence, P = 1 -> 2 -> 4: the whole peak strictly, and the model's share
# (the peak minus the process's RSS before the model was created: runtime, BLAS and, under
# the sanitizers, ASan's own memory excluded) below 75% of the previous each time.
#   mem.sh LONGCTX TEST_MODEL S
set -u
longctx=$1 test_model=$2 S=$3
# ASan's quarantine keeps freed blocks resident: measure without it (other tests check reuse)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
prev= prev_share=
fail=0
for p in 1 2 4; do
    out=$("$longctx" launch -n "$p" -- "$test_model" mem "$S" 2>&1) || { echo "$out"; echo "FAIL: P=$p run failed"; exit 1; }
    echo "$out" | grep "^mem"
    kib=$(echo "$out" | sed -n 's/.*max VmHWM \([0-9]*\) KiB.*/\1/p')
    share=$(echo "$out" | sed -n 's/.*model share \([0-9]*\) KiB.*/\1/p')
    if [ -z "$kib" ] || [ -z "$share" ]; then echo "FAIL: no VmHWM line at P=$p"; exit 1; fi
    if [ -n "$prev" ]; then
        if [ "$kib" -ge "$prev" ]; then
            echo "FAIL: P=$p peak $kib KiB is not below the previous $prev KiB"; fail=1
        fi
        if [ $((share * 100)) -ge $((prev_share * 75)) ]; then
            echo "FAIL: P=$p model share $share KiB is not below 75% of the previous $prev_share KiB"; fail=1
        fi
    fi
    prev=$kib prev_share=$share
done
[ $fail -eq 0 ] && echo "ok   peak memory per PE falls with CP (S=$S)"
exit $fail
