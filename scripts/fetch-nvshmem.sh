#!/usr/bin/env bash
# Downloads the NVSHMEM wheel (nvidia-nvshmem-cu13) with pip and unpacks the parts the build
# and the runtime need into .nvshmem/ (ignored through .git/info/exclude), so that a machine
# without network can build and run the NVSHMEM path:  NVSHMEM_HOME=.nvshmem/nvidia/nvshmem.
# The LLVM bitcode and the network transports are left out: the tree that travels to the GPU
# machine must stay under 64 MiB, and one GPU needs neither.
# usage: scripts/fetch-nvshmem.sh [VERSION]   (default: the newest for CUDA 13)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=$ROOT/.nvshmem
SPEC=nvidia-nvshmem-cu13${1:+==$1}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if [ -d "$ROOT/.git" ] && ! grep -qx '/.nvshmem/' "$ROOT/.git/info/exclude" 2>/dev/null; then
    echo '/.nvshmem/' >>"$ROOT/.git/info/exclude"
fi
python3 -m pip download --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    --python-version 3.12 --implementation py -d "$TMP" "$SPEC"
WHL=$(ls "$TMP"/nvidia_nvshmem_cu13-*.whl | head -1)
rm -rf "$DEST"
mkdir -p "$DEST"
python3 - "$WHL" "$DEST" <<'PY'
import sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
keep_lib = ("libnvshmem_host.so", "libnvshmem_device.a", "nvshmem_bootstrap_uid.so")
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if not n.startswith("nvidia/nvshmem/"):
            continue
        if n.startswith("nvidia/nvshmem/share/"):
            continue
        if n.startswith("nvidia/nvshmem/lib/") and not any(k in n for k in keep_lib):
            continue
        z.extract(n, dest)
PY
du -sh "$DEST"
echo "NVSHMEM unpacked: export NVSHMEM_HOME=$DEST/nvidia/nvshmem (scripts/gpu-check finds it there by itself)"
