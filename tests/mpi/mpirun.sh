#!/usr/bin/env bash
# Runs CMD as P MPI ranks on this machine: mpirun.sh P CMD ARGS...
# Exits 77 (skipped, with the reason) when mpirun is missing. Sets what Debian's OpenMPI 4.1
# needs here: root (CI runs as root), more ranks than cores, TCP/shared memory only (no UCX,
# whose osc needs its pml and whose memory hooks can crash in finalize).
set -uo pipefail
p=$1
shift
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1} OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
export OMPI_MCA_osc=${OMPI_MCA_osc:-sm,pt2pt} OMPI_MCA_opal_common_ucx_opal_mem_hooks=0
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
export LONGCTX_HEAP_SIZE=${LONGCTX_HEAP_SIZE:-256M} LONGCTX_TIMEOUT=${LONGCTX_TIMEOUT:-120}
# Sanitizer builds: keep OpenMPI's components loaded so leak stacks resolve, and suppress
# OpenMPI's own process-lifetime allocations (tests/mpi/lsan.supp).
export OMPI_MCA_mca_base_component_disable_dlclose=1
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0}
exec mpirun --oversubscribe --bind-to none -n "$p" "$@"
