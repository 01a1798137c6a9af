#!/usr/bin/env bash
# Installs what longctx needs on a fresh Debian machine (as root) and builds it into build/.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in cmake gcc make python3 pkg-config; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
# OpenBLAS for the model's linear layers (src/model): Debian's cblas.h lives under openblas-*.
have_blas=0
for f in /usr/include/*/openblas-pthread/cblas.h /usr/include/*/openblas-openmp/cblas.h \
         /usr/include/openblas/cblas.h; do
    [ -e "$f" ] && have_blas=1
done
[ "$have_blas" -eq 1 ] || need+=(libopenblas-dev)
# oneDNN for bf16 GEMMs where the CPU has bf16 instructions (src/model/gemm_bf16.c)
[ -e /usr/include/oneapi/dnnl/dnnl.h ] || need+=(libdnnl-dev)
# clang with its libFuzzer runtime: the checkpoint reader's fuzz test (tests/ckpt/fuzz.sh)
command -v clang >/dev/null 2>&1 || need+=(clang)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
    pkgs=()
    for t in "${need[@]}"; do
        case "$t" in
            gcc) pkgs+=(gcc libc6-dev) ;;
            python3) pkgs+=(python3 python3-pip) ;;
            pkg-config) pkgs+=(pkgconf) ;; # the install test links the example with pkg-config
            *) pkgs+=("$t") ;;
        esac
    done
    echo "setup: installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

# The training corpus: the Python documentation (HTML) of Debian's python3-doc.
if [ ! -d /usr/share/doc/python3-doc/html ] && ! ls -d /usr/share/doc/python3.*/html >/dev/null 2>&1; then
    echo "setup: installing python3-doc (the training corpus)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-doc >/dev/null
fi

# The MPI backend (src/symm/mpi.c) and its tests: OpenMPI, and iproute2 + util-linux for the
# network namespaces that stand in for hosts.
mpi_need=()
[ -e /usr/include/x86_64-linux-gnu/openmpi/mpi.h ] || [ -e /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h ] ||
    command -v mpicc >/dev/null 2>&1 || mpi_need+=(libopenmpi-dev)
command -v mpirun >/dev/null 2>&1 || mpi_need+=(openmpi-bin)
command -v ip >/dev/null 2>&1 || mpi_need+=(iproute2)
command -v unshare >/dev/null 2>&1 || mpi_need+=(util-linux)
if [ ${#mpi_need[@]} -gt 0 ]; then
    echo "setup: installing ${mpi_need[*]} (the MPI backend)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${mpi_need[@]}" >/dev/null
fi

if [ -x scripts/setup-gpu-deps.sh ]; then
    scripts/setup-gpu-deps.sh || echo "setup: GPU dependencies unavailable; the GPU parts will be skipped"
fi

# The Python side: the project's own virtualenv (.venv) with the JAX it is tested against
# (pinned: the FFI handlers are built against that jaxlib's headers) and the longctx package
# (python/, `pip install ./python`), which the JAX binding's tests import. Made before the
# CMake build so that it finds jax and builds liblongctx_jax.so and those tests.
py_pins=("jax[cpu]==0.10.2" "optax==0.2.8" "scikit-build-core>=0.10" safetensors)
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "setup: installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c 'import jax, optax, scikit_build_core, safetensors' >/dev/null 2>&1 ||
   [ "$(.venv/bin/python -c 'import jax; print(jax.__version__)')" != 0.10.2 ]; then
    echo "setup: installing ${py_pins[*]} into .venv"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q "${py_pins[@]}"
fi

build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/longctx"
# the package, as a user installs it (its own CMake build of the engine, in build-python/)
.venv/bin/pip install -q --no-build-isolation ./python
echo "setup: installed the longctx Python package into .venv ($(.venv/bin/python -c 'import longctx.jax, os; print(os.path.dirname(longctx.jax.__file__))'))"
