#!/usr/bin/env bash
# usage: bench/ab/train_eq.sh LONGCTX_BINARY OUTDIR: short training runs over the layouts and
# lowerings, each with --dump-params, so that two builds can be compared byte for byte
set -euo pipefail
bin=$1; out=$2; data=/tmp/lcdata
mkdir -p "$out"
[ -f $data/train.bin ] || $bin prepare-data $data >/dev/null
common="--data $data --steps 3 --peak 10 --quiet --eval-every 0"
run() { name=$1; shift; $bin train "$@" $common --out $out/run-$name --dump-params $out/$name.params > $out/$name.log 2>&1 || { echo "FAIL $name"; tail -5 $out/$name.log; }; }
run tiny_cp1      --model tiny --seq 2K --cp 1
run tiny_cp2_ring --model tiny --seq 2K --cp 2 --permute one_sided
run tiny_cp2_2s   --model tiny --seq 2K --cp 2 --permute two_sided
run tiny_cp2_zc   --model tiny --seq 2K --cp 2 --permute zero_copy
run tiny_cp2_ag   --model tiny --seq 2K --cp 2 --cp-algo allgather
run tiny_cp2_tp2  --model tiny --seq 2K --cp 2 --tp 2
run tiny_bf16     --model tiny --seq 2K --cp 2 --dtype bf16
run tiny_doc      --model tiny --seq 2K --cp 2 --doc-mask --layout striped
run small_cp2     --model small --seq 4K --cp 2 --steps 2
md5sum $out/*.params
