#!/bin/bash
# Where the fused backward's time goes, as shares that a noisy host moves less than rates
# (still by a few per cent between runs: compare builds in one run, several rounds): each build's
# parts (rdtsc, summed over the run) are divided by its own recomputation part (Q K^T, dO V^T,
# the softmax and its gradient; a change to that part's code moves every share), and the
# backward's time by the forward's, run just before it each time (a change to the forward's
# code moves that one). Builds: driver.c at each git rev
# given (default: HEAD~1 and the work tree), timers added to a copy only (instrument.py),
# linked against build/liblongctx.a; the builds alternate, ROUNDS times.
#
# usage: bench/attn-parts/run.sh [--rounds 3] [--shape "4096 128 8 2"] [REV ...]   (REV . = work tree)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=3
shape="4096 128 8 2"
revs=()
while (($#)); do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    *) revs+=("$1"); shift ;;
    esac
done
((${#revs[@]})) || revs=(HEAD~1 .)
lib=$root/build/liblongctx.a
[[ -f $lib ]] || { echo "run.sh: build the library first (scripts/setup.sh)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in "${!revs[@]}"; do
    r=${revs[$i]}
    if [[ $r == . ]]; then cp "$root/src/attn/driver.c" "$tmp/d$i.c"; else git -C "$root" show "$r:src/attn/driver.c" > "$tmp/d$i.c"; fi
    python3 "$here/instrument.py" "$tmp/d$i.c" "$tmp/i$i.c"
    gcc -O2 -D_GNU_SOURCE -std=gnu11 -I"$root/include" -I"$root/src" -c "$tmp/i$i.c" -o "$tmp/i$i.o"
    gcc -O2 -I"$root/include" "$here/time_bwd.c" "$tmp/i$i.o" "$lib" -lm -lpthread -o "$tmp/t$i"
done
echo "# fused backward parts, fp32 causal, S D Hq Hkv = $shape, 1 thread; shares of each build's recompute part"
printf '%-12s %6s %8s %8s %8s %8s %10s %8s\n' rev round dq dvdk copies total "GFLOP/s" "bwd/fwd"
for ((k = 1; k <= rounds; k++)); do
    order=("${!revs[@]}")
    ((k % 2)) || order=($(printf '%s\n' "${order[@]}" | tac))
    for i in "${order[@]}"; do
        # shellcheck disable=SC2086
        out=$("$tmp/t$i" $shape 2 2>&1)
        echo "$out" | awk -v rev="${revs[$i]}" -v k="$k" '
            /^parts/ { r = $3; dq = $5 / r; dv = $7 / r; cp = $9 / r }
            /^bwd/ { g = $2; bf = $7 }
            END { printf "%-12s %6d %8.3f %8.3f %8.3f %8.3f %10.1f %8.3f\n", rev, k, dq, dv, cp, 1 + dq + dv + cp, g, bf }'
    done
done
