#!/bin/bash
# Where the forward's and the fused backward's time goes, as shares that a noisy host moves less than rates
# (still by a few per cent between runs: compare builds in one run, several rounds): each build's
# parts (rdtsc, summed over the run) are divided by its own recomputation part (Q K^T, dO V^T,
# the softmax and its gradient; a change to that part's code moves every share), and the
# backward's time by the forward's, run just before it each time (a change to the forward's
# code moves that one). Builds: driver.c at each git rev given (default: HEAD~1 and the work
# tree), compiled with its named timing points on (-DLONGCTX_ATTN_PARTS: src/attn/parts.h;
# the library itself is built without them) and linked against build/liblongctx.a; the
# builds alternate, ROUNDS times. A rev older than the timing points is refused.
#
# usage: bench/attn-parts/run.sh [--rounds 3] [--shape "4096 128 8 2"] [--lib LIB.a]
#                                [--cflags "EXTRA"] [REV ...]   (REV . = work tree)
# (--lib and --cflags let the test suite run it against a sanitizer build.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=3
shape="4096 128 8 2"
revs=()
lib=$root/build/liblongctx.a
cflags=""
while (($#)); do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    --lib) lib=$2; shift 2 ;;
    --cflags) cflags=$2; shift 2 ;;
    *) revs+=("$1"); shift ;;
    esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rounds takes a positive integer, not '$rounds'" >&2; exit 2; }
[[ $shape =~ ^[0-9]+\ [0-9]+\ [0-9]+\ [0-9]+$ ]] || { echo "run.sh: --shape takes \"S D HQ HKV\", not '$shape'" >&2; exit 2; }
((${#revs[@]})) || revs=(HEAD~1 .)
[[ -f $lib ]] || { echo "run.sh: build the library first (scripts/setup.sh)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in "${!revs[@]}"; do
    r=${revs[$i]}
    # the rev's driver.c and parts.h side by side: "attn/parts.h" resolves beside driver.c
    mkdir -p "$tmp/r$i/attn"
    for f in driver.c parts.h; do
        if [[ $r == . ]]; then
            cp "$root/src/attn/$f" "$tmp/r$i/attn/$f"
        elif ! git -C "$root" show "$r:src/attn/$f" >"$tmp/r$i/attn/$f" 2>/dev/null; then
            echo "run.sh: $r has no src/attn/$f: it predates the timing points (LC_ATTN_TIME_POINT)" >&2
            exit 1
        fi
    done
    grep -q 'LC_ATTN_TIME_POINT(bwd_dvdk)' "$tmp/r$i/attn/driver.c" ||
        { echo "run.sh: $r's driver.c has no timing points (LC_ATTN_TIME_POINT)" >&2; exit 1; }
    # shellcheck disable=SC2086
    gcc -O2 $cflags -D_GNU_SOURCE -DLONGCTX_ATTN_PARTS -std=gnu11 -I"$tmp/r$i" -I"$root/include" -I"$root/src" \
        -c "$tmp/r$i/attn/driver.c" -o "$tmp/i$i.o"
    # shellcheck disable=SC2086
    gcc -O2 $cflags -I"$root/include" "$here/time_bwd.c" "$tmp/i$i.o" "$lib" -lm -lpthread -o "$tmp/t$i"
done
echo "# fp32 causal, S D Hq Hkv = $shape, 1 thread. Forward: score matmul, mask + softmax, the rest, as shares of"
echo "# each build's P.V part. Backward: dQ, dV + dK, copies, as shares of each build's recompute part."
printf '%-12s %5s | %6s %7s %6s %6s | %6s %6s %6s %6s %8s %8s\n' rev round qk softmax other total dq dvdk copies total "bwd GF/s" "bwd/fwd"
for ((k = 1; k <= rounds; k++)); do
    order=("${!revs[@]}")
    ((k % 2)) || order=($(printf '%s\n' "${order[@]}" | tac))
    for i in "${order[@]}"; do
        # shellcheck disable=SC2086
        out=$("$tmp/t$i" $shape 2 2>&1) || { echo "$out" >&2; echo "run.sh: ${revs[$i]} failed" >&2; exit 1; }
        echo "$out" | awk -v rev="${revs[$i]}" -v k="$k" '
            /^parts/ { r = $3; dq = $5 / r; dv = $7 / r; cp = $9 / r }
            /^fparts/ { pv = $3; qk = $5 / pv; sm = $7 / pv; ot = $9 / pv }
            /^bwd/ { g = $2; bf = $7 }
            END { printf "%-12s %5d | %6.3f %7.3f %6.3f %6.3f | %6.3f %6.3f %6.3f %6.3f %8.1f %8.3f\n",
                         rev, k, qk, sm, ot, 1 + qk + sm + ot, dq, dv, cp, 1 + dq + dv + cp, g, bf }'
    done
done
