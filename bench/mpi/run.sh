#!/usr/bin/env bash
# The MPI backend's permute benchmark, both tables: inside one host (shm and mpi backends in
# the same run, MPI_Put and MPI_Sendrecv measured in the same processes), and across two
# network namespaces joined by a veth link (tests/mpi/netns.sh; needs root).
# usage: bench/mpi/run.sh BUILD OUT_PREFIX [REPS]   (HOST_BYTES, NETNS_BYTES: the sizes)
set -euo pipefail
build=$1 out=$2 reps=${3:-11}
hb=${HOST_BYTES:-8,4K,64K,1M,4M,16M} nb=${NETNS_BYTES:-8,64K,1M,4M}
here=$(cd "$(dirname "$0")/../.." && pwd)
{
    echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# cmd: $build/longctx bench permute --backend shm,mpi --pes 2 --bytes $hb --reps $reps (OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-unset})"
    "$build/longctx" bench permute --backend shm,mpi --pes 2 --bytes "$hb" --reps "$reps"
    echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out-host.txt"
{
    echo "# $(date -u +%FT%TZ) two network namespaces (veth, TCP), 1 rank each, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# cmd: LONGCTX_HEAP_SIZE=1G tests/mpi/netns.sh hA:1,hB:1 $build/longctx bench permute --bytes $nb --reps $reps (OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-unset})"
    LONGCTX_HEAP_SIZE=1G "$here/tests/mpi/netns.sh" hA:1,hB:1 "$build/longctx" bench permute --bytes "$nb" --reps "$reps"
    echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out-netns.txt"
