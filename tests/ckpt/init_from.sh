#!/usr/bin/env bash
# --init-from a hand-made Hugging Face folder: sharded with an index, BF16 and F16 tensors,
# a stale rotary_emb.inv_freq, transformers-style config.json; and a tied model without
# lm_head.weight. Each must give exactly the loss of the same (rounded) values stored as one
# F32 file, train from them, take --rope-theta, and refuse flag mismatches and broken indexes.
# usage: init_from.sh LONGCTX CMP DATA WORK
set -euo pipefail
longctx=$1 cmp=$2 data=$3 work=$4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work"
common=(--seq 100 --lr 1e-2 --warmup 2 --eval-every 0 --eval-seqs 1 --peak 1 --threads 1 --quiet --seed 7 --data "$data")
"$longctx" train --model tiny "${common[@]}" --steps 3 --out src --save-dir src_ck
python3 "$here/make_hf.py" src_ck/step-00000003 hf
toks=$(python3 -c "import random; random.seed(5); print(','.join(str(random.randrange(256)) for _ in range(80)))")
loss() { "$longctx" ckpt loss "$1" --hf --tokens "$toks" | sed -n 's/^loss //p'; }
for pair in "sharded sharded_f32" "tied tied_f32"; do
    set -- $pair
    a=$(loss "hf/$1") b=$(loss "hf/$2")
    echo "loss $1 $a, $2 $b"
    [ -n "$a" ] && [ "$a" = "$b" ] || { echo "FAIL: $1 does not load as $2"; exit 1; }
done
orig=$("$longctx" ckpt loss src_ck/step-00000003 --tokens "$toks" | sed -n 's/^loss //p')
echo "the unrounded F32 original: $orig (bf16 rounding moves it a little)"
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if a != b and abs(a - b) < 1e-2 * abs(b) else 1)" "$orig" "$(loss hf/sharded)" \
    || { echo "FAIL: the bf16 model's loss is not near (but different from) the original's"; exit 1; }
"$longctx" ckpt info hf/sharded >info.txt
grep -E "BF16|F16" info.txt | head -3
# train from it: no --model, the shapes come from config.json; the first loss equals the F32 folder's
"$longctx" train "${common[@]}" --steps 2 --init-from hf/sharded --out t1 --save-dir t1_ck
"$longctx" train "${common[@]}" --steps 2 --init-from hf/sharded_f32 --out t2
"$cmp" loss t1/metrics.jsonl t2/metrics.jsonl 0
"$longctx" ckpt info t1_ck >info1.txt && grep -q "^step 2, data position 2" info1.txt
# context extension: --rope-theta overrides the stored value and is what the new checkpoint holds
"$longctx" train "${common[@]}" --steps 1 --init-from hf/sharded --rope-theta 40000 --out t3 --save-dir t3_ck
grep -q '"rope_theta": 40000.0' t3_ck/step-00000001/config.json
fail() { # what, expected message part, command...
    local what=$1 want=$2 rc=0
    shift 2
    timeout 60 "$@" >out.txt 2>&1 || rc=$?
    if [ $rc -eq 0 ] || [ $rc -eq 124 ] || ! grep -qF -- "$want" out.txt; then
        echo "FAIL $what (exit $rc), wanted '$want':"; cat out.txt; exit 1
    fi
    echo "$what refused: $(grep -F -- "$want" out.txt | head -1 | cut -c1-160)"
}
fail flags_mismatch "intermediate_size = 128 but this run's model has 96" \
    "$longctx" train --model tiny --ffn 96 "${common[@]}" --steps 1 --init-from hf/sharded --out t4
fail missing_shard "model-00003-of-00002.safetensors" "$longctx" ckpt loss hf/bad_index_missing_shard --hf --tokens 1,2,3
fail wrong_shard "tensor \"model.embed_tokens.weight\" is in shard model-00001-of-00002.safetensors but the index names another shard" \
    "$longctx" ckpt loss hf/bad_index_wrong_shard --hf --tokens 1,2,3
fail resume_and_init "exclude each other" "$longctx" train "${common[@]}" --steps 1 --init-from hf/sharded --resume src_ck --out t5
echo PASS
