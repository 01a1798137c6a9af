#!/usr/bin/env bash
# `bench train --peers` plumbing without the real peers (never installed in CI): a stand-in
# peer, run as $LONGCTX_PEER_PYTHON, reads our row (ours.json beside the tokens it is given)
# and answers with our first-step loss (valid row: ratio, MFU and ceiling printed) or with a
# shifted loss (the row must be INVALID and carry no speed-up).
# usage: peers_fake.sh LONGCTX WORK
set -uo pipefail
longctx=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
fake=$work/fake-python
cat >"$fake" <<'PEER'
#!/usr/bin/env bash
# argv: train_peer.py --impl X --ckpt DIR --tokens FILE ...
impl= tokens=
while [ $# -gt 0 ]; do
    case $1 in --impl) impl=$2; shift ;; --tokens) tokens=$2; shift ;; esac
    shift
done
# FAKE_PEER_SLEEP: a peer that hangs (its pid in FAKE_PEER_PIDFILE), to be stopped from outside
if [ -n "${FAKE_PEER_SLEEP:-}" ]; then echo $$ >"$FAKE_PEER_PIDFILE"; exec sleep "$FAKE_PEER_SLEEP"; fi
ours=$(dirname "$tokens")/ours.json
loss=$(sed -n 's/.*"loss0":\([^,}]*\).*/\1/p' "$ours")
step=$(sed -n 's/.*"step_s":\([^,}]*\).*/\1/p' "$ours")
[ -n "$loss" ] && [ -n "$step" ] || { echo "fake peer: cannot read $ours" >&2; exit 1; }
if [ -n "${FAKE_PEER_SHIFT:-}" ]; then loss=$(awk -v l="$loss" 'BEGIN{printf "%.9g", l * 1.01}'); fi
# half our speed, twice our memory; or, with FAKE_PEER_TPS="a b c", a, b, c tokens/s on
# successive calls (the count kept in FAKE_PEER_COUNT)
if [ -n "${FAKE_PEER_TPS:-}" ]; then
    n=$(cat "$FAKE_PEER_COUNT" 2>/dev/null || echo 0)
    echo $((n + 1)) >"$FAKE_PEER_COUNT"
    set -- $FAKE_PEER_TPS
    shift "$n"
    step=$(awk -v t="$1" 'BEGIN{printf "%.6g", 64 / t / 2}')
fi
awk -v i="$impl" -v l="$loss" -v s="$step" 'BEGIN{printf "{\"bench\":\"train\",\"impl\":\"%s\",\"lowering\":\"none\",\"step_s\":%.6g,\"tokens_per_s\":%.6g,\"peak_mem_bytes\":%.0f,\"loss0\":%s,\"cpu_s\":%.6g}\n", i, 2*s, 64/(2*s), 1e9, l, 2*s}'
PEER
chmod +x "$fake"
fails=0
run() { LONGCTX_PEER_PYTHON=$fake timeout 120 "$longctx" bench train --model tiny --seq 64 --cp 1 --steps 1 \
    --warm 0 --threads 1 --peers torch "$@" 2>&1; }
check() { # check NAME PATTERN OUTPUT
    if grep -qE -- "$2" <<<"$3"; then echo "ok: $1"; else echo "FAIL: $1: no /$2/ in:"; echo "$3"; fails=$((fails + 1)); fi
}
out=$(run --rounds 1)
[ "$(grep -c '^# round' <<<"$out")" -eq 0 ] || { echo "FAIL: round lines with --rounds 1"; fails=$((fails + 1)); }
check "valid row: 2x ours, with its ceiling" \
    'torch .* ok ours \(cp 1\) 2\.00x tok/s \(ceiling [0-9.]+x\), [0-9.]+x cpu, [0-9.]+x memory/PE' "$out"
check "MFU column on both rows" '^longctx .* [0-9.]+% ' "$out"
out=$(run --json)
check "json: ceiling and MFU" '"impl":"torch".*"mfu":[0-9.]+.*"valid":true,"ours_speedup":2,.*"speedup_ceiling":[0-9.]+' "$out"
# the ceiling is 1 / the peer's MFU, so ours at our MFU is ceiling x our MFU = our speed-up (2)
num() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"; }
mfu_ours=$(num mfu "$(grep '"impl":"longctx"' <<<"$out")")
ceil=$(num speedup_ceiling "$(grep '"impl":"torch"' <<<"$out")")
if awk -v m="$mfu_ours" -v c="$ceil" 'BEGIN{x = m * c; exit !(x > 1.98 && x < 2.02)}'; then
    echo "ok: ceiling $ceil x our MFU $mfu_ours = our speed-up"
else
    echo "FAIL: ceiling $ceil x our MFU $mfu_ours is not our speed-up 2"; fails=$((fails + 1))
fi
out=$(run)
check "three rounds by default, then the median rows" \
    '# round 3/3, seq 64: ours cp 1 [0-9.]+ tok/s; torch [0-9.]+ tok/s' "$out"
[ "$(grep -c '^# round' <<<"$out")" -eq 3 ] || { echo "FAIL: not 3 round lines"; fails=$((fails + 1)); }
# the peer at 300, 200, 100 tok/s in its three rounds: its reported row is the median, 200
# (neither the first nor the last round)
out=$(FAKE_PEER_TPS="300 200 100" FAKE_PEER_COUNT=$work/count run --rounds 3)
check "the peer's median round is reported" '^torch +tiny +64 +1 +1 none +0\.320 +200\.0 ' "$out"
out=$(FAKE_PEER_SHIFT=1 run)
check "shifted loss is INVALID" 'torch .* BAD INVALID: loss .*\(rel 0\.01' "$out"
if grep -q "ours (cp 1)" <<<"$out"; then echo "FAIL: an invalid row printed a speed-up"; fails=$((fails + 1)); fi

# SIGTERM while a peer runs (a scheduler ending the job): the command ends with the signal's
# status, the peer's process group is gone, and so is the temporary folder (issue 27)
mkdir -p "$work/tmp"
TMPDIR=$work/tmp FAKE_PEER_SLEEP=60 FAKE_PEER_PIDFILE=$work/peer.pid LONGCTX_PEER_PYTHON=$fake \
    "$longctx" bench train --model tiny --seq 64 --cp 1 --steps 1 --warm 0 --threads 1 --peers torch \
    >"$work/term.out" 2>&1 &
bench=$!
for _ in $(seq 1 600); do [ -s "$work/peer.pid" ] && break; sleep 0.1; done
if [ ! -s "$work/peer.pid" ]; then
    echo "FAIL: the hanging peer never started"; cat "$work/term.out"; fails=$((fails + 1)); kill -KILL $bench
else
    peer=$(cat "$work/peer.pid")
    kill -TERM $bench
    t0=$(date +%s)
    wait $bench
    st=$?
    sleep 0.3
    if [ $st -ne 143 ]; then echo "FAIL: SIGTERM gave status $st, not 143"; cat "$work/term.out"; fails=$((fails + 1)); fi
    if [ $(( $(date +%s) - t0 )) -gt 10 ]; then echo "FAIL: SIGTERM took over 10 s"; fails=$((fails + 1)); fi
    # a zombie is dead (the peer's shell, reparented to init, waits to be reaped there)
    state=$(ps -o stat= -p "$peer" 2>/dev/null | tr -d ' ')
    if [ -n "$state" ] && [ "${state#Z}" = "$state" ]; then
        echo "FAIL: the peer $peer outlived the command (state $state)"; kill -KILL "$peer"; fails=$((fails + 1))
    fi
    if ls "$work/tmp" | grep -q longctx-bench-peers; then echo "FAIL: left $(ls "$work/tmp")"; fails=$((fails + 1)); fi
    [ $fails -eq 0 ] && echo "ok: SIGTERM during a peer: status 143, no orphan, no temporary folder"
fi
exit $((fails > 0))
