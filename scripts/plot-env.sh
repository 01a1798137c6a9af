#!/usr/bin/env bash
# Makes .venv with matplotlib (from PyPI) for the plotting scripts; prints its python.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import matplotlib" 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install -q matplotlib
fi
echo "$PWD/.venv/bin/python"
