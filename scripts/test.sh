#!/usr/bin/env bash
# Runs every test: the Release build's full ctest suite, then the runtime, attention, CP, model, train
# and checkpoint tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)
echo "== tests (Release) =="
(cd build && ctest --output-on-failure -j"$jobs" --timeout 600)
echo "== tests (ASan + UBSan) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLONGCTX_SANITIZE=ON -DLONGCTX_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
# The sanitizer pass skips the benchmark smoke tests (label bench): they time, not check.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LONGCTX_TEST_QUICK=1
# The fuzz test is instrumented on its own (clang, ASan + UBSan) and already ran above.
(cd build-asan && ctest --output-on-failure -j"$jobs" -L 'symm|attn|cp|model|train|ckpt|planner' -LE 'bench|fuzz|memory' --timeout 900)
