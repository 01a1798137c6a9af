#!/usr/bin/env bash
# `longctx train` on the MPI backend (CP = 2, or the mesh in $MESH) gives the losses and weights
# of one PE (fp32 tolerance, as tests/train/equiv.sh) and exactly the weights of the same mesh
# on shm (both add in team-rank order). usage: train.sh LONGCTX CMP DATA WORK RUNNER...  where
# RUNNER starts its arguments as the mesh's MPI ranks (mpirun.sh 2, or netns.sh hA:1,hB:1 for
# two "hosts"). MESH: mesh options with the same global batch as --accum 2 on one PE.
set -uo pipefail
longctx=$1 cmp=$2 data=$3 work=$4
shift 4
read -r -a mesh <<<"${MESH:---cp 2 --accum 2}"
common=(--model tiny --seq 100 --steps 3 --lr 1e-2 --warmup 0 --eval-every 0 --eval-seqs 1
        --peak 1 --threads 1 --quiet --seed 7 --data "$data")
rm -rf "$work" && mkdir -p "$work"
set -e
"$longctx" train "${common[@]}" --cp 1 --accum 2 --out "$work/ref" --dump-params "$work/ref.f32" --dump-grads "$work/ref.g32"
"$longctx" train "${common[@]}" "${mesh[@]}" --out "$work/shm" --dump-params "$work/shm.f32"
set +e
"$@" "$longctx" train "${common[@]}" "${mesh[@]}" --backend mpi --out "$work/mpi" \
    --dump-params "$work/mpi.f32" --dump-grads "$work/mpi.g32"
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || { echo "FAIL: the MPI run exited with $rc"; exit 1; }
set -e
grep -q '"loss"' "$work/mpi/metrics.jsonl" || { echo "FAIL: no losses from the MPI run"; exit 1; }
echo -n "losses vs one PE: "
"$cmp" loss "$work/mpi/metrics.jsonl" "$work/ref/metrics.jsonl" 1e-5
echo -n "gradients of step 1 vs one PE: "
"$cmp" params "$work/mpi.g32" "$work/ref.g32" 1e-5
echo -n "weights after 3 steps vs one PE: "
"$cmp" params "$work/mpi.f32" "$work/ref.f32" 1e-4
echo -n "weights after 3 steps vs ${mesh[*]} on shm (bit-identical): "
"$cmp" params "$work/mpi.f32" "$work/shm.f32" 0
echo PASS
