#!/usr/bin/env bash
# Fault tests: every failure ends in bounded time, with the right error, and leaves nothing
# behind in /dev/shm or in the process table.
# usage: fault_test.sh LONGCTX_BIN TEST_FAULT_BIN
set -u
LC=$1
TF=$2
fail=0
# Other tests may run beside this one (ctest -j), so only names that could be ours count.
shm_ours() { ls -A /dev/shm 2>/dev/null | grep -i -e longctx -e '^lc_' | sort; }
shm_before=$(shm_ours)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

wait_kids() { # launcher pid: waits (loaded machines are slow) until its 3 PEs exist
    local i
    for i in $(seq 50); do
        [ "$(pgrep -c -P "$1")" -ge 3 ] && break
        sleep 0.1
    done
    sleep 0.5
}

check() { # name expected_rc max_seconds grep_pattern [env...]
    local name=$1 want=$2 max=$3 pat=$4
    shift 4
    local t0 t1 rc
    t0=$(date +%s.%N)
    env "$@" timeout -k 5 60 "$LC" launch -n 3 -- "$TF" "$name" >"$tmp/out" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    local dt
    dt=$(awk "BEGIN{print $t1-$t0}")
    if [ "$rc" != "$want" ]; then
        echo "FAIL $name: exit $rc, expected $want"; cat "$tmp/out"; fail=1; return
    fi
    if awk "BEGIN{exit !($dt > $max)}"; then
        echo "FAIL $name: took ${dt}s, limit ${max}s"; fail=1; return
    fi
    if ! grep -q -- "$pat" "$tmp/out"; then
        echo "FAIL $name: output lacks '$pat'"; cat "$tmp/out"; fail=1; return
    fi
    # each surviving PE must report the error itself, not only the launcher
    local n
    n=$(grep -c "rc=-" "$tmp/out")
    if [ "$n" -lt 2 ]; then
        echo "FAIL $name: only $n PEs reported an error"; cat "$tmp/out"; fail=1; return
    fi
    echo "ok   $name: exit $rc in ${dt}s"
}

check exit-early 3 10 "PE 1 exited with status 3 before lc_world_finalize"
check sigkill 137 10 "PE 1 was killed by signal 9"
check timeout 1 15 "timed out after 1.0 s in lc_signal_wait_until (user signal: signal at heap+0x0 on PE 0 expected >= 1, observed 0)" LONGCTX_TIMEOUT=1

check heap-mismatch 1 10 "symmetric heap sizes differ"
# The spin phase obeys the deadline too: a 30 s spin budget must not outlast a 2 s bound.
check timeout 1 8 "timed out after 2.0 s in lc_signal_wait_until" LONGCTX_TIMEOUT=2 LONGCTX_SPIN_US=30000000
check timeout 1 8 "timed out after 2.0 s in lc_signal_wait_until" LONGCTX_TIMEOUT=2 LONGCTX_SPIN_US=99999999999
# A bad argument on one PE inside a collective: every PE fails fast with that reason.
check bad-root 1 5 "lc_broadcast: root 99 not in team of 3"
check bad-map 1 5 "lc_permute_start_map: dest_of\[0\] = 3 is not a team rank or -1"
check private-dst 1 5 "lc_permute_start: one_sided needs dst in the symmetric heap"
check zero-copy-permute 1 5 "lc_permute_start: lowering zero_copy moves no bytes"
# A stopped PE is named by its missing heartbeat (bound scaled down to 1 s).
check stop 1 12 "PE 1 stopped responding (no heartbeat for .* s, LONGCTX_HEARTBEAT_S=1; process [0-9]* is stopped) while PE [02] waited in lc_barrier" LONGCTX_HEARTBEAT_S=1 LONGCTX_ABORT_GRACE=1

# A healthy PE that computes for 2.5 heartbeat bounds without communicating is not aborted.
t0=$(date +%s.%N)
LONGCTX_HEARTBEAT_S=2 timeout -k 5 60 "$LC" launch -n 3 -- "$TF" busy 5 >"$tmp/out" 2>&1
rc=$?
dt=$(awk "BEGIN{print $(date +%s.%N)-$t0}")
if [ $rc != 0 ] || [ "$(grep -c 'rc=0 ' "$tmp/out")" != 3 ]; then
    echo "FAIL busy: exit $rc (a busy, beating peer was treated as dead)"; cat "$tmp/out"; fail=1
else echo "ok   busy: a peer computing 5 s past a 2 s heartbeat bound was waited for (${dt}s)"; fi

# The whole job stopped and resumed (Ctrl-Z, fg) for longer than the heartbeat bound: every
# PE was silent together, which is no failure.
LONGCTX_HEARTBEAT_S=1 "$LC" launch -n 3 -- "$TF" busy 3 >"$tmp/out" 2>&1 &
lp=$!
wait_kids $lp
pes=$(pgrep -P $lp | tr '\n' ' ')
kill -STOP $lp $pes
sleep 2.5
kill -CONT $pes $lp
wait $lp
rc=$?
if [ $rc != 0 ] || [ "$(grep -c 'rc=0 ' "$tmp/out")" != 3 ]; then
    echo "FAIL job-stopped: exit $rc (PEs stopped and resumed together were declared dead)"; cat "$tmp/out"; fail=1
else echo "ok   job-stopped: a whole job stopped 2.5 s past a 1 s heartbeat bound carried on"; fi

# The launcher is stopped, PE 1 is killed, then the launcher resumes: the survivors name
# PE 1 from its silence, and the launcher reports how it died.
pe_pid() { # launcher pid, PE number
    local k
    for k in $(pgrep -P "$1"); do
        tr '\0' '\n' </proc/$k/environ 2>/dev/null | grep -qx "LONGCTX_PE=$2" && echo "$k"
    done
}
LONGCTX_HEARTBEAT_S=1 LONGCTX_ABORT_GRACE=1 "$LC" launch -n 3 -- "$TF" hang >"$tmp/out" 2>&1 &
lp=$!
wait_kids $lp
p1=$(pe_pid $lp 1)
kill -STOP $lp
# The stop takes effect when the launcher next runs: until then it could still reap PE 1.
for i in $(seq 50); do case "$(ps -o stat= -p $lp)" in T*) break;; esac; sleep 0.1; done
kill -KILL "$p1"
sleep 2
kill -CONT $lp
wait $lp
rc=$?
if [ -z "$p1" ] || [ $rc = 0 ] || ! grep -q "PE 1 stopped responding (no heartbeat for .*process $p1 has exited) while PE [02] waited in lc_barrier" "$tmp/out" ||
   ! grep -q "longctx launch: PE 1 was killed by signal 9" "$tmp/out" || [ "$(grep -c 'rc=-' "$tmp/out")" -lt 2 ]; then
    echo "FAIL launcher-stopped: PE 1 ($p1) killed while the launcher was stopped, exit $rc"; cat "$tmp/out"; fail=1
else echo "ok   launcher-stopped: PE 1's death named (exit $rc)"; fi

# Ctrl-C of the launcher: SIGINT is forwarded, every PE ends, status 130.
"$LC" launch -n 3 -- "$TF" sleep >"$tmp/out" 2>&1 &
lp=$!
wait_kids $lp
# While the PEs run, their segment must be an anonymous memfd, never a /dev/shm file:
# that is what makes "nothing left behind" hold even for SIGKILL.
for k in $(pgrep -P $lp); do
    if ! grep -q "memfd:longctx" /proc/$k/maps || grep -q "/dev/shm/" /proc/$k/maps; then
        echo "FAIL PE process $k does not map the segment as a memfd"; grep -e memfd -e /dev/shm /proc/$k/maps; fail=1
    fi
done
kill -INT $lp
t0=$(date +%s)
wait $lp
rc=$?
if [ $rc != 130 ] || [ $(( $(date +%s) - t0 )) -gt 10 ]; then echo "FAIL sigint: exit $rc"; fail=1; else echo "ok   sigint: exit $rc"; fi

# SIGKILL of the launcher: the PEs die with it (parent-death signal), no orphans.
"$LC" launch -n 3 -- "$TF" sleep >"$tmp/out" 2>&1 &
lp=$!
wait_kids $lp
kids=$(pgrep -P $lp | tr '\n' ' ')
kill -KILL $lp
wait $lp 2>/dev/null
sleep 1
left=0
# a dead PE whose new parent has not reaped it yet is a zombie (state Z): it is gone
for k in $kids; do
    st=$(ps -o stat= -p "$k" 2>/dev/null | tr -d ' ')
    case "$st" in ""|Z*) ;; *) left=1; echo "PE process $k still running (state $st)";; esac
done
if [ -z "$kids" ] || [ $left = 1 ]; then echo "FAIL launcher-sigkill: PEs ($kids) survived or never started"; fail=1; else echo "ok   launcher-sigkill: PEs $kids gone"; fi

shm_after=$(shm_ours)
if [ "$shm_before" != "$shm_after" ]; then echo "FAIL /dev/shm changed:"; diff <(echo "$shm_before") <(echo "$shm_after"); fail=1; else echo "ok   /dev/shm unchanged"; fi
[ $fail = 0 ] && echo "fault tests passed"
exit $fail
