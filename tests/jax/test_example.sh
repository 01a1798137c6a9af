#!/usr/bin/env bash
# examples/jax_llama.py trains what `longctx train` trains: from the same weights (a longctx
# checkpoint, read as a Hugging Face folder by both), on the same data and seed, with the same
# schedule, its first loss equals longctx's within 1e-5 relative and steps 2-3 within 1e-4, on
# one process and over CP = 2 (ring attention over longctx's runtime).
# usage: test_example.sh LONGCTX PYTHON EXAMPLE WORKDIR
set -u
LC=$1 PY=$2 EX=$3 work=$4
rm -rf "$work" && mkdir -p "$work/html/a" && cd "$work" || exit 1
for i in $(seq 1 60); do printf '<html><body><p>page %d: %s</p></body></html>\n' "$i" \
    "$(head -c 1500 /dev/urandom | base64 -w0 | tr -d '+/=' | fold -w 7 | paste -sd ' ')" >"html/a/p$i.html"; done
"$LC" prepare-data data --source html >/dev/null || exit 1
hp=(--seq 256 --lr 1e-2 --lr-min 1e-3 --warmup 1 --wd 0.1 --clip 1 --seed 11)
# the starting weights: a longctx checkpoint after one step
"$LC" train --model tiny "${hp[@]}" --steps 1 --data data --out o0 --save-dir ck --peak 1 --quiet >/dev/null || exit 1
init=ck/step-00000001
"$LC" train --init-from "$init" "${hp[@]}" --steps 3 --data data --out lc --peak 1 --quiet --threads 1 >/dev/null || exit 1
loss_of() { sed -n "s/^{\"step\":$2,\"loss\":\([^,]*\),.*/\1/p" "$1"; }
fail=0
for P in 1 2; do
    if [ $P = 1 ]; then "$PY" "$EX" --data data --init "$init" "${hp[@]}" --steps 3 --json >"jax$P.jsonl" 2>"jax$P.err"
    else timeout 120 "$LC" launch -n 2 -- "$PY" "$EX" --data data --init "$init" "${hp[@]}" --steps 3 --json \
        >"jax$P.jsonl" 2>"jax$P.err"; fi || { echo "FAIL the example at CP $P:"; grep -v "^WARNING\|Gloo" "jax$P.err" | tail -5; exit 1; }
    for s in 1 2 3; do
        a=$(loss_of lc/metrics.jsonl $s) b=$(loss_of "jax$P.jsonl" $s)
        tol=$([ $s = 1 ] && echo 1e-5 || echo 1e-4)
        if "$PY" -c "import sys; a, b, t = map(float, sys.argv[1:]); sys.exit(not abs(a - b) <= t * abs(a))" "$a" "$b" "$tol"
        then echo "ok   CP $P step $s: longctx $a, jax $b (within $tol)"
        else echo "FAIL CP $P step $s: longctx '$a', jax '$b' (not within $tol)"; fail=1; fi
    done
done
echo "$([ $fail = 0 ] && echo 1 || echo 0) passed, $fail failed"
exit $fail
