#!/usr/bin/env bash
# `bench attn --peers sdpa --rounds R` plumbing without torch (never installed in CI): a
# stand-in peer, run as $LONGCTX_PEER_PYTHON, answers successive calls with the rates in
# FAKE_PEER_GF. The peer's row must be the median round, the ratio ours over that median,
# one "# round" line per round, none with --rounds 1; a peer error row gives no ratio.
# usage: peers_fake.sh LONGCTX WORK
set -uo pipefail
longctx=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
fake=$work/fake-python
cat >"$fake" <<'PEER'
#!/usr/bin/env bash
# argv: DIR/sdpa_peer.py --pass P --dtype T --s S --d D --hq H --hkv K --mask M --threads N --reps R
shift
declare -A a
while [ $# -gt 1 ]; do a[${1#--}]=$2; shift 2; done
n=$(cat "$FAKE_PEER_COUNT" 2>/dev/null || echo 0)
echo $((n + 1)) >"$FAKE_PEER_COUNT"
set -- $FAKE_PEER_GF
shift "$n"
if [ "$1" = err ]; then
    printf '{"bench":"attn","impl":"torch_sdpa","pass":"%s","error":"fake failure"}\n' "${a[pass]}"
    exit 0
fi
printf '{"bench":"attn","impl":"torch_sdpa","pass":"%s","dtype":"%s","s":%s,"d":%s,"hq":%s,"hkv":%s,"mask":"%s","threads":%s,"median_s":%s,"gflops":%s,"gflops_cpu":%s}\n' \
    "${a[pass]}" "${a[dtype]}" "${a[s]}" "${a[d]}" "${a[hq]}" "${a[hkv]}" "${a[mask]}" "${a[threads]}" \
    "$(awk -v g="$1" 'BEGIN{printf "%.6g", 1 / g}')" "$1" "$1"
PEER
chmod +x "$fake"
fails=0
run() { # run GF_LIST ARGS...
    local gf=$1; shift
    rm -f "$work/count"
    FAKE_PEER_GF=$gf FAKE_PEER_COUNT=$work/count LONGCTX_PEER_PYTHON=$fake timeout 120 \
        "$longctx" bench attn --s 256 --d 64 --hq 4 --hkv 2 --pass fwd --dtype f32 --reps 1 \
        --peers sdpa "$@" 2>&1
}
check() { # check NAME PATTERN OUTPUT
    if grep -qE -- "$2" <<<"$3"; then echo "ok: $1"; else echo "FAIL: $1: no /$2/ in:"; echo "$3"; fails=$((fails + 1)); fi
}
num() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"; }
out=$(run "10 40 20" --rounds 3)
check "one line per round" '# round 3/3, fwd f32 S=256 d=64: ours [0-9.]+ GFLOP/s; torch_sdpa 20\.0 GFLOP/s' "$out"
check "the peer's median round" '^torch_sdpa fwd +f32 +256 +64 +4/2 +causal +1 +0\.0500 +20\.0 ' "$out"
[ "$(grep -c '^# round' <<<"$out")" -eq 3 ] || { echo "FAIL: not 3 round lines"; fails=$((fails + 1)); }
out=$(run "10 40 20" --rounds 3 --json)
ours=$(grep '"impl":"avx2\|"impl":"avx512\|"impl":"scalar' <<<"$out" | grep '"pass"')
peer=$(grep '"impl":"torch_sdpa"' <<<"$out")
check "json: peer median 20, rounds 3" '"gflops":20,.*"rounds":3' "$peer"
g=$(num gflops "$ours") vs=$(num vs_sdpa "$ours")
if awk -v g="$g" -v v="$vs" 'BEGIN{x = g / 20; exit !(v > 0 && (v - x) / x < 1e-3 && (x - v) / x < 1e-3)}'; then
    echo "ok: vs_sdpa $vs = ours $g / the peer's median 20"
else
    echo "FAIL: vs_sdpa '$vs' is not ours '$g' / 20"; echo "$out"; fails=$((fails + 1))
fi
out=$(run "25" --rounds 1)
[ "$(grep -c '^# round' <<<"$out")" -eq 0 ] || { echo "FAIL: round lines with --rounds 1"; fails=$((fails + 1)); }
check "one round: the peer's row and a ratio" '^torch_sdpa .* 25\.0 ' "$out"
check "one round: ours with a ratio" '^(avx2|avx512|scalar) .*[0-9.]+x +[0-9.]+x$' "$out"
# a round where the peer failed: the median of the rounds that gave a rate
out=$(run "10 err 30" --rounds 3 --json)
check "a failed round is skipped" '"impl":"torch_sdpa".*"gflops":20,' "$out"
out=$(run "err" --rounds 1 --json)
if grep -q '"vs_sdpa"' <<<"$out"; then echo "FAIL: a ratio without a peer rate"; fails=$((fails + 1)); else echo "ok: no peer rate, no ratio"; fi
out=$("$longctx" bench attn --rounds 16 2>&1)
check "--rounds out of range" 'rounds' "$out"
out=$("$longctx" bench attn --peers sdpa,jax,sdpa 2>&1)
check "a peer named twice" "--peers names 'sdpa' twice" "$out"
[ "$fails" -eq 0 ] && echo PASS || exit 1
