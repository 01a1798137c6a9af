#!/bin/bash
# Our checkpoint in Hugging Face transformers: longctx (P PEs) writes a tiny checkpoint and its
# logits, LlamaForCausalLM.from_pretrained loads the directory, the logits and the loss must
# agree (hf_logits.py). Needs the peers' virtualenv (bench/peers/install.sh, never in CI):
# without it the test exits 77 and says so.
#   hf_logits.sh LONGCTX TEST_BIN SRC_DIR P SEQ
set -u
longctx=$1 bin=$2 src=$3 P=$4 S=$5
py=${LONGCTX_PEER_PYTHON:-$src/bench/peers/.venv/bin/python}
if [ ! -x "$py" ]; then
    echo "SKIP: no $py (run bench/peers/install.sh, or set LONGCTX_PEER_PYTHON)"
    exit 77
fi
if ! why=$("$py" -c 'import torch, transformers, safetensors' 2>&1); then
    echo "SKIP: $py cannot import torch, transformers and safetensors: ${why##*$'\n'}"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/longctx-hf-logits.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
"$longctx" launch -n "$P" -- "$bin" "$dir" "$S" || { echo "FAIL: longctx side"; exit 1; }
"$py" "$src/tests/peers/hf_logits.py" "$dir" "$P"
