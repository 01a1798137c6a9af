#!/bin/sh
# Creates bench/peers/.venv with the CPU peers of `longctx bench attn` (PyTorch's
# scaled_dot_product_attention, JAX's dot_product_attention) and `longctx bench train --peers`
# (transformers' LlamaForCausalLM, safetensors, a JAX ring-attention stack with optax), from
# plain PyPI. Also used, when present, by the transformers logits cross-check test.
# The PyPI torch wheel is large (it pulls CUDA libraries too); only its CPU path is used.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
"$py" -m venv "$here/.venv"
"$here/.venv/bin/pip" install --upgrade pip
"$here/.venv/bin/pip" install numpy torch "jax[cpu]" transformers safetensors optax
"$here/.venv/bin/python" -c 'import torch, jax, transformers, safetensors, optax; print("torch", torch.__version__, "jax", jax.__version__, "transformers", transformers.__version__)'
