#!/usr/bin/env bash
# Every corrupt or mismatched checkpoint is refused with a clear message naming the tensor or
# field, fast, and nothing is overwritten: header length beyond the file, truncated data,
# offsets out of range or overlapping, wrong dtype or shape, a missing or unknown tensor,
# bad JSON (header, config.json), a bad config field, bad or missing training state; then
# config mismatches with the flags, and the same refusal on every PE of a CP 2 resume.
# usage: corrupt.sh LONGCTX CMP DATA WORK
set -euo pipefail
longctx=$1 cmp=$2 data=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work"
common=(--model tiny --seq 100 --lr 1e-2 --warmup 2 --eval-every 0 --eval-seqs 1 --peak 1 --threads 1 --quiet
        --seed 7 --data "$data" --steps 4)
"$longctx" train "${common[@]}" --steps 2 --out good --save-dir good_ck
good=good_ck/step-00000002
"$longctx" ckpt verify "$good"
sum_before=$(cat "$good"/* | md5sum)
python3 "$here/corrupt.py" "$good" bad >cases.tsv
fails=0
expect_fail() { # what, expected message part, command...
    local what=$1 want=$2
    shift 2
    local t0=$(date +%s%N) rc=0
    timeout 60 "$@" >out.txt 2>&1 || rc=$?
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then
        echo "FAIL $what: exit $rc (accepted or hung)"; cat out.txt; fails=$((fails + 1)); return
    fi
    if ! grep -qF -- "$want" out.txt; then
        echo "FAIL $what: the message lacks '$want':"; cat out.txt; fails=$((fails + 1)); return
    fi
    printf '%-24s refused in %4d ms: %s\n' "$what" "$ms" "$(grep -F -- "$want" out.txt | head -1 | cut -c1-150)"
}
while IFS=$'\t' read -r name want; do
    expect_fail "$name" "$want" "$longctx" ckpt verify "bad/$name"
done <cases.tsv
[ "$(wc -l <cases.tsv)" -ge 18 ] || { echo "FAIL: too few cases"; exit 1; }
# config mismatches with the flags, through the trainer
expect_fail flags_ffn "intermediate_size = 128 but this run's model has 96" \
    "$longctx" train "${common[@]}" --ffn 96 --out r --resume "$good"
expect_fail flags_preset "hidden_size = 64 but this run's model has 256" \
    "$longctx" train "${common[@]/tiny/small}" --out r --resume "$good"
expect_fail flags_seed "--seed 7, this run has 8" "$longctx" train "${common[@]}" --seed 8 --out r --resume "$good"
expect_fail flags_seq "--seq 100, this run has 50" "$longctx" train "${common[@]}" --seq 50 --out r --resume "$good"
mkdir -p theta && cp -r "$good" theta/ck && sed -i 's/"rope_theta": 10000.0/"rope_theta": 20000.0/' theta/ck/config.json
expect_fail flags_rope_theta "rope_theta = 20000 but this run's model has 10000" \
    "$longctx" train "${common[@]}" --out r --resume theta/ck
# ... which --rope-theta overrides
"$longctx" train "${common[@]}" --out r --resume theta/ck --rope-theta 20000
expect_fail no_checkpoint "no complete checkpoint" "$longctx" train "${common[@]}" --out r --resume bad
# checkpoint flags that cannot work together, before any PE starts
expect_fail save_every_alone "--save-every needs --save-dir" "$longctx" train "${common[@]}" --out r --save-every 2
expect_fail resume_no_dir "--resume without a folder needs --save-dir" "$longctx" train "${common[@]}" --out r --resume
expect_fail keep_negative "--keep '-1' must be an integer >= 0" "$longctx" train "${common[@]}" --out r --keep -1
# a CP 2 run says what is wrong (not just that a peer died), once: the PEs agree on the error
# and the lowest failing one speaks for all (issue 27: it used to be printed once per PE)
expect_fail cp2_truncated "tensor \"lm_head.weight\": data_offsets" \
    "$longctx" train "${common[@]}" --cp 2 --out r --resume bad/truncated_data
n=$(grep -c 'PE [01]: --resume: .*lm_head.weight' out.txt || true)
[ "$n" -eq 1 ] || { echo "FAIL: the tensor is named $n times, not once"; cat out.txt; fails=$((fails + 1)); }
if grep -qi 'died\|another PE' out.txt; then echo "FAIL: a PE blamed a peer instead:"; cat out.txt; fails=$((fails + 1)); fi
# nothing was overwritten
[ "$(cat "$good"/* | md5sum)" = "$sum_before" ] || { echo "FAIL: the good checkpoint changed"; fails=$((fails + 1)); }
"$longctx" ckpt verify "$good"
[ $fails -eq 0 ] && echo PASS || { echo "$fails failures"; exit 1; }
