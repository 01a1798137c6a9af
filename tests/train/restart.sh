#!/usr/bin/env bash
# A run that survives a lost PE (train --max-restarts) and one that stops on request (SIGTERM):
#  1. kill -9 of a random PE at a random moment (inside saves too: they are slowed), twice, the
#     second time the same PE: the run completes and its weights equal the uninterrupted run's
#     bit for bit, with one restart record per kill in metrics.jsonl;
#  2. SIGSTOP of a PE: the heartbeat (3 s here) declares it lost, the run restarts and completes;
#  3. an error of the PEs' own is not restarted (it would repeat);
#  4. SIGTERM to the launcher: a checkpoint at the end of the step, exit 75; --resume completes
#     the run bit for bit;
#  5. a save that fails (a file-size limit set on the writer at save time, SIGXFSZ ignored:
#     LONGCTX_CKPT_TEST_FSIZE) keeps the previous checkpoint
#     loadable, names the path and leaves no partial folder;
#  6. a PE that dies at start every time (LONGCTX_TEST_FAIL_PE): with --min-pes the run goes
#     on with the largest valid smaller mesh; without, it ends naming the PE after N tries;
#  7. nothing is left behind: no process, no .tmp folder.
# The kill moments are drawn from LONGCTX_RESTART_SEED (printed; set it to replay a run).
# usage: restart.sh LONGCTX CMP DATA WORK
set -uo pipefail
LC=$1 cmp=$2 data=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
seed=${LONGCTX_RESTART_SEED:-$(( $(date +%s%N) % 32768 ))}
RANDOM=$seed
echo "LONGCTX_RESTART_SEED=$seed"
fail=0
bad() { echo "FAIL $*"; fail=1; }
common=(--model tiny --seq 100 --lr 1e-2 --warmup 2 --eval-every 0 --eval-seqs 1 --peak 1 --threads 1 --quiet
        --seed 7 --data "$data" --steps 8 --cp 2)
"$LC" train "${common[@]}" --out "$work/ref" --dump-params ref.f32 || { echo "FAIL the reference run"; exit 1; }
export LONGCTX_CKPT_TEST_SLOW_US=150 LONGCTX_ABORT_GRACE=1
t0=$(date +%s%N)
"$LC" train "${common[@]}" --out "$work/slow" --save-dir slow_ck --save-every 1 >/dev/null || exit 1
total_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "a run with slowed saves takes $total_ms ms"
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
pe_pid() { # the process of PE $2 among the children of train $1
    for c in $(pgrep -P "$1"); do
        tr '\0' '\n' <"/proc/$c/environ" 2>/dev/null | grep -qx "LONGCTX_PE=$2" && { echo "$c"; return; }
    done
}
restarts() { grep -c '^{"restart":' "$1/metrics.jsonl" 2>/dev/null || echo 0; }

echo "== 1. kill -9 twice, the second time the same PE"
"$LC" train "${common[@]}" --out "$work/k" --save-dir k_ck --save-every 1 --max-restarts 3 --dump-params k.f32 >k.log 2>&1 &
pid=$!
victim=$((RANDOM % 2)) kills=0
for n in 1 2; do
    sleep_ms $(( 100 + RANDOM % (total_ms / 2 + 1) ))
    p=""
    for _ in $(seq 1 400); do p=$(pe_pid "$pid" "$victim"); [ -n "$p" ] && break; sleep 0.005; done
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null && kills=$((kills + 1)) && echo "killed PE $victim (pid $p)"
done
wait "$pid"; rc=$?
[ $rc -eq 0 ] || { bad "1: the run exited $rc"; tail -5 k.log; }
"$cmp" params k.f32 ref.f32 0 >/dev/null || bad "1: the restarted run's weights differ from the uninterrupted run's"
[ "$(restarts k)" = "$kills" ] || bad "1: $kills kills but $(restarts k) restart records"
grep -q "restart 1/3: PE $victim was killed by signal 9" k.log || bad "1: no restart line naming PE $victim"

echo "== 2. SIGSTOP: the heartbeat finds it"
LONGCTX_HEARTBEAT_S=3 "$LC" train "${common[@]}" --out "$work/s" --save-dir s_ck --save-every 1 --max-restarts 1 \
    --dump-params s.f32 >s.log 2>&1 &
pid=$!
sleep_ms $(( 100 + RANDOM % (total_ms / 2 + 1) ))
p=$(pe_pid "$pid" 1)
[ -n "$p" ] && kill -STOP "$p" && echo "stopped PE 1 (pid $p)"
t0=$(date +%s)
wait "$pid"; rc=$?
echo "the run ended $(( $(date +%s) - t0 )) s after the stop"
[ $rc -eq 0 ] || { bad "2: the run exited $rc"; tail -5 s.log; }
grep -q "PE 1 stopped answering its heartbeat" s.log || bad "2: the restart does not name the silent PE 1"
"$cmp" params s.f32 ref.f32 0 >/dev/null || bad "2: the weights differ from the uninterrupted run's"

echo "== 3. an error of the PEs' own is not restarted"
"$LC" train "${common[@]}" --lr 1e30 --out "$work/e" --save-dir e_ck --max-restarts 2 >e.log 2>&1; rc=$?
[ $rc -ne 0 ] || bad "3: a diverging run succeeded"
grep -q "restart" e.log && bad "3: an error was restarted"

echo "== 4. SIGTERM: save at the end of the step, exit 75, resume"
"$LC" train "${common[@]}" --out "$work/t" --save-dir t_ck --save-every 1 --dump-params t.f32 >t.log 2>&1 &
pid=$!
sleep_ms $(( 100 + RANDOM % (total_ms / 3 + 1) ))
kill -TERM "$pid"
wait "$pid"; rc=$?
echo "SIGTERM: exit $rc; $(grep 'stopped on request' t.log)"
if [ $rc -eq 75 ]; then
    grep -q "stopped on request after step" t.log || bad "4: no stop line"
    "$LC" train "${common[@]}" --out "$work/t" --save-dir t_ck --save-every 1 --dump-params t.f32 --resume >t2.log 2>&1 ||
        bad "4: the resume failed"
    "$cmp" params t.f32 ref.f32 0 >/dev/null || bad "4: stopped + resumed weights differ from the uninterrupted run's"
elif [ $rc -eq 0 ]; then
    echo "(the run had finished before the signal)"
else
    bad "4: exit $rc after SIGTERM (want 75)"; tail -5 t.log
fi

echo "== 5. a save that fails keeps the previous checkpoint"
"$LC" train "${common[@]}" --steps 2 --out "$work/d" --save-dir d_ck >/dev/null 2>&1 || bad "5: the first run failed"
# a 64 KiB file-size limit on the writer from its first save on (the model alone is 440 KB)
LONGCTX_CKPT_TEST_FSIZE=65536 "$LC" train "${common[@]}" --steps 3 --out "$work/d" --save-dir d_ck --resume >d.log 2>&1
rc=$?
[ $rc -ne 0 ] || bad "5: a save beyond the file-size limit succeeded"
grep -q "d_ck/step-00000003" d.log || { bad "5: the error does not name the checkpoint's path"; tail -3 d.log; }
[ -d d_ck/step-00000003 ] && bad "5: a partial step-00000003 folder was left"
ls -d d_ck/step-*.tmp-* >/dev/null 2>&1 && bad "5: a .tmp folder was left"
"$LC" ckpt verify d_ck >/dev/null 2>&1 || bad "5: the previous checkpoint does not load"

echo "== 6. a PE that cannot start: --min-pes goes on with fewer PEs; without it the run ends"
args3=("${common[@]}" --cp 3)
LONGCTX_TEST_FAIL_PE=2 "$LC" train "${args3[@]}" --out "$work/m" --save-dir m_ck --max-restarts 3 --min-pes 2 \
    --dump-params m.f32 >m.log 2>&1; rc=$?
[ $rc -eq 0 ] || { bad "6: with --min-pes 2 the run exited $rc"; tail -5 m.log; }
grep -q "PE 2 cannot be started again .*going on with DP 1 x CP 2 x TP 1 (2 PEs) instead of DP 1 x CP 3 x TP 1" m.log ||
    { bad "6: no line saying the mesh shrank to CP 2"; tail -5 m.log; }
"$cmp" params m.f32 ref.f32 0 >/dev/null || bad "6: the run on CP 2 differs from the CP 2 reference"
LONGCTX_TEST_FAIL_PE=2 "$LC" train "${args3[@]}" --out "$work/n" --save-dir n_ck --max-restarts 2 >n.log 2>&1; rc=$?
[ $rc -ne 0 ] || bad "6: without --min-pes a PE that cannot start did not end the run"
grep -q "PE 2 was killed by signal 9.*no restart left after 2" n.log || { bad "6: the end does not name PE 2"; tail -3 n.log; }

echo "== 7. nothing left behind"
sleep 0.5
left=$(pgrep -f -- "--out $work" || true)
[ -z "$left" ] || bad "7: processes left: $left"
ls -d ./*_ck/step-*.tmp-* >/dev/null 2>&1 && bad "7: .tmp folders left: $(ls -d ./*_ck/step-*.tmp-*)"
[ $fail = 0 ] && echo PASS
exit $fail
