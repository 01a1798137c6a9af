#!/usr/bin/env bash
# Downloads the cuDNN frontend wheel (nvidia-cudnn-frontend: the header-only C++ graph API of
# cuDNN) with pip and keeps only its include/ in .cudnn-frontend/ (in .gitignore), so that the
# GPU machine, which has no network, can build the cuDNN attention engine: carry
# ".cudnn-frontend" with the tree (about 3 MB).
# usage: scripts/fetch-cudnn-frontend.sh [VERSION]   (default: the newest)
# gpu.cmake looks in $CUDNN_FRONTEND_HOME, then here, then in the installed Python package.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=$ROOT/.cudnn-frontend
SPEC=nvidia-cudnn-frontend${1:+==$1}
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
