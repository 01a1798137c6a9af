#!/usr/bin/env bash
# GPU build dependencies, run by scripts/setup.sh when present: NVSHMEM from PyPI
# (nvidia-nvshmem-cu13) for the python3 on PATH, and the cuDNN frontend's headers (PyPI's
# nvidia-cudnn-frontend, into .cudnn-frontend/) so the cuDNN engine is compiled and its graphs
# validated wherever cuDNN is, only where the CUDA compiler is installed. NCCL and cuDNN come
# with the CUDA toolkit. Idempotent; a failure here only skips the GPU parts.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "setup-gpu-deps: no nvcc; the GPU parts will be skipped, nothing to install"
    exit 0
fi
# the pinned frontend (scripts/fetch-cudnn-frontend.sh says why that one); another version
# left here by an earlier setup is replaced, since it is what travels to the GPU machine
fe_pin=$(scripts/fetch-cudnn-frontend.sh --pin)
fe_have=$(cat .cudnn-frontend/VERSION 2>/dev/null || true)
if [ -f .cudnn-frontend/include/cudnn_frontend.h ] && [ "$fe_have" = "$fe_pin" ]; then
    echo "setup-gpu-deps: cuDNN frontend $fe_pin already in .cudnn-frontend"
else
    [ -n "$fe_have" ] && echo "setup-gpu-deps: .cudnn-frontend holds $fe_have, the pin is $fe_pin: fetching it"
    scripts/fetch-cudnn-frontend.sh "$fe_pin" ||
        echo "setup-gpu-deps: cuDNN frontend unavailable; the cuDNN engine will be compiled out"
fi
if python3 -c 'import nvidia.nvshmem' 2>/dev/null; then
    echo "setup-gpu-deps: nvidia-nvshmem-cu13 already installed"
    exit 0
fi
echo "setup-gpu-deps: pip install nvidia-nvshmem-cu13"
# Debian's own python3 refuses pip installs without the flag (PEP 668); pyenv or venv ones
# take the plain form
python3 -m pip install -q nvidia-nvshmem-cu13 ||
    python3 -m pip install -q --break-system-packages nvidia-nvshmem-cu13
