#!/usr/bin/env bash
# Downloads the cuDNN frontend wheel (nvidia-cudnn-frontend: the header-only C++ graph API of
# cuDNN) with pip and keeps only its include/ in .cudnn-frontend/ (in .gitignore), so that the
# GPU machine, which has no network, can build the cuDNN attention engine: carry
# ".cudnn-frontend" with the tree (about 3 MB).
# usage: scripts/fetch-cudnn-frontend.sh [VERSION | latest | --pin]
# Default: the pinned version below, matched to the cuDNN of the lent GPU machines' image
# (PyTorch 2.11.0+cu130's nvidia-cudnn-cu13: cuDNN 9.19.0, the same as the CUDA toolkit here).
# A frontend newer than the image's cuDNN is written against headers it does not have, and a
# build that fails there cannot fetch another one. 1.21.0 is the oldest frontend that compiles
# against 9.19.0 and also validates SDPA graphs without a device once the graph names its
# sm_version (from 1.19.0: gpu_cudnn_host does that in CI) and needs no libcuda to load (from
# 1.21.0: 1.19 and 1.20 link the driver API, so every GPU test binary then fails to start on a
# machine without a driver instead of skipping). NVIDIA's and PyTorch 2.11's own pairing for
# 9.19.0, 1.18.0, reads the device during validation. Move the pin with the image's cuDNN
# (gpu-check's summary prints the frontend and cuDNN versions it compiled against).
# --pin prints the pinned version (scripts/setup-gpu-deps.sh and scripts/gpu-check read it).
# gpu.cmake looks in $CUDNN_FRONTEND_HOME, then here, then in the installed Python package.
set -euo pipefail
PIN=1.21.0
if [ "${1:-}" = --pin ]; then
    echo "$PIN"
    exit 0
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=$ROOT/.cudnn-frontend
VER=${1:-$PIN}
[ "$VER" = latest ] && VER=
SPEC=nvidia-cudnn-frontend${VER:+==$VER}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# the headers are the same in every wheel of a version; any platform's will do
python3 -m pip download --no-deps --only-binary=:all: -d "$TMP" "$SPEC"
WHL=$(ls "$TMP"/nvidia_cudnn_frontend-*.whl | head -1)
rm -rf "$DEST"
mkdir -p "$DEST"
python3 - "$WHL" "$DEST" <<'PY'
import sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith("include/")]
    if not any(n == "include/cudnn_frontend.h" for n in names):
        sys.exit("fetch-cudnn-frontend: %s has no include/cudnn_frontend.h" % whl)
    for n in names:
        z.extract(n, dest)
    ver = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
    if ver:
        meta = z.read(ver[0]).decode()
        v = next((l.split(":", 1)[1].strip() for l in meta.splitlines() if l.startswith("Version:")), "?")
        open(dest + "/VERSION", "w").write(v + "\n")
PY
du -sh "$DEST"
echo "cuDNN frontend $(cat "$DEST/VERSION" 2>/dev/null) unpacked in $DEST/include (gpu.cmake finds it there)"
