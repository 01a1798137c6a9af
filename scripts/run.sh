#!/usr/bin/env bash
# Sets up and runs the main job on the built-in shared-memory backend. Until the trainer
# lands, the main job is the collective-permute benchmark: one-sided vs two-sided vs the
# machine's memcpy limit, P = 2. Extra arguments go to the benchmark (e.g. --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/longctx bench permute "$@"
