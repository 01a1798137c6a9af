#!/usr/bin/env bash
# longctx train refuses impossible meshes, shapes, layouts and bad data before any step:
# a non-zero exit, within seconds, with a message naming the problem (and the file).
# usage: cli_errors.sh LONGCTX DATA WORK
set -uo pipefail
longctx=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
fails=0
base=(--model tiny --seq 64 --steps 2 --peak 1 --quiet --data "$data" --out "$work/out")
expect() { # expect "message" command...
    local want=$1
    shift
    local out rc
    out=$(timeout 60 "$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -qF -- "$want" <<<"$out"; then
        echo "FAIL (rc $rc): $* -> expected '$want', got: $out"
        fails=$((fails + 1))
    else
        echo "ok: $(grep -F -- "$want" <<<"$out" | head -1)"
    fi
}
expect "2 PEs cannot form DP 1 x CP 3" "$longctx" train "${base[@]}" --cp 3 --pes 2
expect "3 PEs cannot form DP 1 x CP 2" "$longctx" launch -n 3 -- "$longctx" train "${base[@]}" --cp 2
expect "4 PEs cannot form DP 3 x CP 1" "$longctx" train "${base[@]}" --dp 3 --pes 4
expect "n_heads = 4 is not divisible by n_kv_heads = 3" "$longctx" train "${base[@]}" --kv-heads 3
expect "dim = 64 is not divisible by n_heads = 6" "$longctx" train "${base[@]}" --heads 6 --kv-heads 2
expect "sequence too short for the layout: --seq 5 over CP 3 with zigzag needs at least 6 tokens" \
    "$longctx" train "${base[@]}" --seq 5 --cp 3
expect "sequence too short for the layout: --seq 3 over CP 4 with striped needs at least 4 tokens" \
    "$longctx" train "${base[@]}" --seq 3 --cp 4 --layout striped
expect "--layout 'diagonal'" "$longctx" train "${base[@]}" --layout diagonal
expect "--permute 'carrier_pigeon'" "$longctx" train "${base[@]}" --permute carrier_pigeon
# tensor parallelism: shapes that do not split over TP, named, before any step, on every PE
expect "n_heads = 4 is not divisible by tp = 3" "$longctx" train "${base[@]}" --tp 3
expect "vocab = 255 is not divisible by tp = 2" "$longctx" train "${base[@]}" --tp 2 --vocab 255
expect "ffn_dim = 130 is not divisible by tp = 4" "$longctx" launch -n 4 -- "$longctx" train "${base[@]}" --tp 4 --ffn 130
expect "n_kv_heads = 3 and tp = 2" "$longctx" train "${base[@]}" --tp 2 --heads 6 --kv-heads 3 --dim 96
expect "3 PEs cannot form DP 1 x CP 1 x TP 2" "$longctx" launch -n 3 -- "$longctx" train "${base[@]}" --tp 2
expect "--sp (sequence parallelism) needs --tp 2 or more" "$longctx" train "${base[@]}" --sp
expect "--mesh-order 'tp,cp'" "$longctx" train "${base[@]}" --tp 2 --mesh-order tp,cp
# data: each corruption names the file
printf 'not a token file at all, just some text that is long enough' > "$work/text.bin"
head -c 1100 "$data/train.bin" > "$work/trunc.bin"
expect "token file $work/text.bin is truncated" "$longctx" train "${base[@]}" --train "$work/text.bin"
dd if=/dev/zero of="$work/zeros.bin" bs=1024 count=4 2>/dev/null
expect "token file $work/zeros.bin has bad magic 0" "$longctx" train "${base[@]}" --train "$work/zeros.bin"
expect "token file $work/trunc.bin is truncated: its header promises" "$longctx" train "${base[@]}" --train "$work/trunc.bin"
expect "token file $data/train.bin: token" "$longctx" train "${base[@]}" --vocab 100
expect "is shorter than one sequence" "$longctx" train "${base[@]}" --seq 100000
expect "cannot open token file $work/none/train.bin" "$longctx" train "${base[@]}" --data "$work/none"
[ -e "$work/out/metrics.jsonl" ] && { echo "FAIL: a refused run wrote metrics"; fails=$((fails + 1)); }
[ $fails -eq 0 ] && echo PASS || { echo "$fails failures"; exit 1; }
