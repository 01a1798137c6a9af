#!/usr/bin/env bash
# SIGKILL at random moments of checkpoint saves never leaves an unloadable newest checkpoint.
# A 6-step run saves after every step with LONGCTX_CKPT_TEST_SLOW_US (a pause after every
# 4 KiB written and between the fsync/rename steps), so that saves take a good share of the run.
# Odd trials kill at a moment drawn over the whole run (start-up, steps, between saves and inside
# them); even trials wait for a save to begin (its .tmp folder appears) and kill at a moment drawn
# over one save's length, so that kills inside saves do not depend on how the host's speed splits
# the run (under ASan on a slow host, compute and start-up dwarf the saves).
# After each kill: the newest complete checkpoint must load (`longctx ckpt verify`), and
# resuming from it to step 6 must give the uninterrupted run's weights bit for bit.
# usage: kill.sh LONGCTX CMP DATA WORK   (LONGCTX_KILL_TRIALS, default 30)
set -euo pipefail
longctx=$1 cmp=$2 data=$3 work=$4
trials=${LONGCTX_KILL_TRIALS:-30}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
common=(--model tiny --seq 100 --lr 1e-2 --warmup 2 --eval-every 0 --eval-seqs 1 --peak 1 --threads 1 --quiet
        --seed 7 --data "$data" --steps 6)
t0=$(date +%s%N)
"$longctx" train "${common[@]}" --out ref --dump-params ref.f32
ref_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
export LONGCTX_CKPT_TEST_SLOW_US=${LONGCTX_CKPT_TEST_SLOW_US:-150}
t0=$(date +%s%N)
"$longctx" train "${common[@]}" --out slow --save-dir slow_ck --save-every 1
total_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# 6 saves; the slow run's extra time over the run without saves is theirs
save_ms=$(( (total_ms - ref_ms) / 6 )); [ "$save_ms" -ge 1 ] || save_ms=1
echo "a slow run takes ${total_ms} ms (${ref_ms} ms without saves, ~${save_ms} ms a save); $trials kills"
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
mid=0 none=0
for i in $(seq 1 "$trials"); do
    d=s$i
    "$longctx" train "${common[@]}" --out "o$i" --save-dir "$d" --save-every 1 >/dev/null 2>&1 &
    pid=$!
    ms=$(( (RANDOM * 32768 + RANDOM) % (total_ms + 1) ))
    if [ $((i % 2)) -eq 1 ]; then
        sleep_ms "$ms"
    else
        # a random point of the run, then the next save to begin, then a random point of that save
        sleep_ms $((ms / 2))
        while kill -0 "$pid" 2>/dev/null && ! compgen -G "$d/step-*.tmp-*" >/dev/null; do sleep 0.002; done
        ms=$(( (RANDOM * 32768 + RANDOM) % (save_ms + 1) ))
        sleep_ms "$ms"
    fi
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ls -d "$d"/step-*.tmp-* >/dev/null 2>&1 && mid=$((mid + 1)) || true
    if ! ls -d "$d"/step-???????? >/dev/null 2>&1; then
        none=$((none + 1)) # killed before the first save completed: nothing to load, nothing lost
        continue
    fi
    if ! "$longctx" ckpt verify "$d" >"v$i.log" 2>&1; then
        echo "FAIL: trial $i (kill after $ms ms): the newest checkpoint does not load:"; cat "v$i.log"; ls -la "$d"; exit 1
    fi
    # every other trial resumes without saving: the resume itself removes the dead writer's .tmp
    save=(--save-dir "$d" --save-every 1)
    [ $((i % 2)) -eq 0 ] && save=()
    LONGCTX_CKPT_TEST_SLOW_US=0 "$longctx" train "${common[@]}" --out "r$i" --dump-params "r$i.f32" --resume "$d" \
        "${save[@]}" >/dev/null
    if ! "$cmp" params "r$i.f32" ref.f32 0 >/dev/null; then
        echo "FAIL: trial $i: resuming from $(cat "v$i.log") did not reproduce the uninterrupted run"; exit 1
    fi
    if ls -d "$d"/step-*.tmp-* >/dev/null 2>&1; then echo "FAIL: trial $i: the resumed run left .tmp folders"; exit 1; fi
done
echo "$trials kills: $mid inside a save (a .tmp folder left), $none before the first checkpoint completed"
# the kills must have landed inside saves often enough to mean something
if [ "$mid" -lt $((trials / 3)) ]; then echo "FAIL: only $mid of $trials kills landed inside a save"; exit 1; fi
echo "PASS"
