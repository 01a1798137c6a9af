#!/bin/sh
# Creates bench/peers/.venv with the CPU peers of `longctx bench attn`: PyTorch (for
# scaled_dot_product_attention) and JAX (jax.nn.dot_product_attention), from plain PyPI.
# The PyPI torch wheel is large (it pulls CUDA libraries too); only its CPU path is used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
"$py" -m venv "$here/.venv"
"$here/.venv/bin/pip" install --upgrade pip
"$here/.venv/bin/pip" install numpy torch "jax[cpu]"
"$here/.venv/bin/python" -c 'import torch, jax; print("torch", torch.__version__, "jax", jax.__version__)'
