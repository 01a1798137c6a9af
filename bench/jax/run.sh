#!/usr/bin/env bash
# bench/jax: longctx.jax.ring_attention against JAX's own ring (bench/jax/jax_ring.py) as P
# processes over gloo and as one process with P forced host devices: forward and
# forward+backward, on the same cores, in interleaved rounds (longctx, jax-gloo, jax-devices,
# then again), medians per implementation, ratios, and each as a fraction of the machine's FMA
# peak (measured in this run by `longctx bench attn`). Results: JSON lines in OUT.
# usage: bench/jax/run.sh [--seq 16384,65536] [--cp 2] [--rounds 3] [--heads 8/2] [--dim 64] [--reps 2] [--out FILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seqs=16384 cp=2 rounds=3 heads=8/2 dim=64 reps=2 out=$root/bench/results/jax-ring-$(date +%F).jsonl
while [ $# -gt 0 ]; do
    case $1 in
        --seq) seqs=$2 ;; --cp) cp=$2 ;; --rounds) rounds=$2 ;; --heads) heads=$2 ;; --dim) dim=$2 ;; --reps) reps=$2 ;;
        --out) out=$2 ;; *) echo "usage: $0 [--seq S,S] [--cp P] [--rounds R] [--heads N/K] [--dim H] [--out FILE]"; exit 2 ;;
    esac
    shift 2
done
LC=$root/build/longctx PY=$root/.venv/bin/python
[ -x "$LC" ] && [ -x "$PY" ] || { echo "bench/jax: run scripts/setup.sh first (build/longctx, .venv)"; exit 1; }
mkdir -p "$(dirname "$out")"
: >"$out"
peak=$("$LC" bench attn --s 1K --d 64 --hq 8 --hkv 2 --pass fwd --dtype f32 --no-peers --json --reps 1 |
       sed -n 's/.*"best_impl".*"peak_gflops":\([0-9.e+]*\).*/\1/p' | head -1)
echo "{\"bench\":\"jax_ring_peak\",\"peak_gflops_per_core\":$peak,\"cores\":$(nproc)}" >>"$out"
t0=$(date +%s)
total=$(( $(echo "$seqs" | tr ',' '\n' | wc -l) * rounds * 3 )) done=0
for S in ${seqs//,/ }; do
    for r in $(seq 1 "$rounds"); do
        for impl in longctx jax-gloo jax-devices; do
            args=(--impl "$impl" --cp "$cp" --seq "$S" --heads "$heads" --dim "$dim" --reps "$reps")
            if [ "$impl" = jax-devices ]; then
                JAX_PLATFORMS=cpu "$PY" "$root/bench/jax/bench.py" "${args[@]}" 2>/dev/null | grep '^{' >>"$out"
            else
                JAX_PLATFORMS=cpu "$LC" launch -n "$cp" -- "$PY" "$root/bench/jax/bench.py" "${args[@]}" 2>/dev/null |
                    grep '^{' >>"$out"
            fi
            done=$((done + 1)) el=$(( $(date +%s) - t0 ))
            echo "bench/jax: seq $S round $r/$rounds $impl: $(tail -1 "$out" | cut -c1-140)"
            echo "bench/jax: $done/$total runs, ${el}s, ETA $(( el * (total - done) / done ))s"
        done
    done
done
"$PY" - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
peak = next(r for r in rows if r["bench"] == "jax_ring_peak")
limit = peak["peak_gflops_per_core"] * peak["cores"]
res = [r for r in rows if r["bench"] == "jax_ring"]
print(f"machine FMA peak {limit:.0f} GFLOP/s ({peak['cores']} cores x {peak['peak_gflops_per_core']:.1f})")
for S in sorted({r["seq"] for r in res}):
    med = {}
    for impl in ("longctx", "jax-gloo", "jax-devices"):
        xs = [r for r in res if r["seq"] == S and r["impl"] == impl]
        if xs:
            med[impl] = {k: statistics.median(r[k] for r in xs) for k in ("fwd_s", "fwd_bwd_s", "fwd_gflops", "fwd_bwd_gflops")}
            med[impl]["rss"] = statistics.median(max(r["peak_rss_bytes"]) for r in xs)
    for impl, m in med.items():
        line = (f"seq {S:6d} {impl:12s} fwd {m['fwd_s']:7.3f} s ({m['fwd_gflops'] / limit:5.1%} of peak)  "
                f"fwd+bwd {m['fwd_bwd_s']:7.3f} s ({m['fwd_bwd_gflops'] / limit:5.1%})  peak RSS/process "
                f"{m['rss'] / 2**20:6.0f} MiB")
        if impl != "longctx" and "longctx" in med:
            line += (f"  longctx is {m['fwd_s'] / med['longctx']['fwd_s']:.2f}x fwd, "
                     f"{m['fwd_bwd_s'] / med['longctx']['fwd_bwd_s']:.2f}x fwd+bwd")
        print(line)
        out = {"bench": "jax_ring_summary", "seq": S, "impl": impl, **m}
        print(json.dumps(out, separators=(",", ":")), file=open(sys.argv[1], "a"))
PY
