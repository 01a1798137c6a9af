#!/usr/bin/env bash
# Bad sizes, counts, durations and names, from the command line and the environment alike:
# each must fail fast with a message that names the setting and the value (issue 8 item 11).
# usage: cli_errors.sh LONGCTX_BIN TEST_FAULT_BIN
set -u
LC=$1
TF=$2
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() { # want_rc(nonzero|0) pattern -- command...
    local want=$1 pat=$2
    shift 3
    timeout -k 5 60 "$@" >"$tmp/out" 2>&1
    local rc=$?
    local ok=1
    if [ "$want" = nonzero ]; then [ $rc != 0 ] && [ $rc != 124 ] || ok=0; else [ $rc = "$want" ] || ok=0; fi
    grep -q -- "$pat" "$tmp/out" || ok=0
    if [ $ok = 1 ]; then echo "ok   $*"
    else echo "FAIL $* (exit $rc, want $want, pattern '$pat'):"; sed 's/^/    /' "$tmp/out" | head -20; fail=1; fi
}

expect nonzero "-n=4294967298: must be in \[1, 1024\]" -- "$LC" launch -n 4294967298 -- true
expect nonzero "--pes=4294967298: must be in \[1, 1024\]" -- "$LC" launch --pes 4294967298 -- true
expect nonzero "--pes=99999999999999999999: the number is too large" -- "$LC" launch --pes 99999999999999999999 -- true
expect nonzero "--heap=-1: expected a size" -- "$LC" launch -n 1 --heap -1 -- true
expect nonzero "unknown option '--frob'" -- "$LC" launch --frob -n 1 -- true
expect nonzero "LONGCTX_HEAP_SIZE=8388608T: the size is too large" -- env LONGCTX_HEAP_SIZE=8388608T "$LC" launch -n 2 -- true
expect nonzero "more than this machine can map.*lower --heap or LONGCTX_HEAP_SIZE" -- env LONGCTX_HEAP_SIZE=4096T "$LC" launch -n 2 -- true
expect nonzero "LONGCTX_HEAP_SIZE=12Q: unexpected 'Q'" -- env LONGCTX_HEAP_SIZE=12Q "$LC" launch -n 1 -- true
expect nonzero "LONGCTX_ABORT_GRACE=-1: expected seconds" -- env LONGCTX_ABORT_GRACE=-1 "$LC" launch -n 1 -- true
expect nonzero "LONGCTX_BIND=weird: expected core" -- env LONGCTX_BIND=weird "$LC" launch -n 1 -- true
# The same variables read by a PE (lc_world_init): refused, never replaced by a default.
expect nonzero "more than this machine can map.*lower LONGCTX_HEAP_SIZE" -- env LONGCTX_HEAP_SIZE=8388607T "$TF" cores
expect nonzero "LONGCTX_SPIN_US=-1: expected a count" -- env LONGCTX_SPIN_US=-1 "$TF" cores
expect nonzero "LONGCTX_SPIN_US=12x: unexpected 'x'" -- env LONGCTX_SPIN_US=12x "$TF" cores
expect nonzero "LONGCTX_TIMEOUT=abc: expected seconds" -- env LONGCTX_TIMEOUT=abc "$TF" cores
expect nonzero "LONGCTX_TIMEOUT=0: must be greater than 0" -- env LONGCTX_TIMEOUT=0 "$TF" cores
expect nonzero "LONGCTX_HEARTBEAT_S=-3: expected seconds" -- env LONGCTX_HEARTBEAT_S=-3 "$TF" cores
expect nonzero "LONGCTX_DEBUG=maybe: expected 0 or 1" -- env LONGCTX_DEBUG=maybe "$TF" cores
expect nonzero "LONGCTX_BIND=weird: expected core" -- env LONGCTX_BIND=weird "$TF" cores
expect 0 "cores=" -- env LONGCTX_TIMEOUT=inf LONGCTX_SPIN_US=99999999999 "$TF" cores
expect 0 "cores=" -- env LONGCTX_TIMEOUT=500ms "$TF" cores
# LONGCTX_DEBUG=0 is off: no log line at all; 1 is on.
env LONGCTX_DEBUG=0 "$TF" cores >"$tmp/out" 2>&1
if grep -q "longctx\[PE" "$tmp/out"; then echo "FAIL LONGCTX_DEBUG=0 logged:"; cat "$tmp/out"; fail=1; else echo "ok   LONGCTX_DEBUG=0 is silent"; fi
expect 0 "longctx\[PE 0\]: joined world" -- env LONGCTX_DEBUG=1 "$TF" cores
# The benches use the same parser, and say which setting to change.
expect nonzero "unknown option '--frob'" -- "$LC" bench permute --frob 1
expect nonzero "--reps=0: must be in \[1, 64\]" -- "$LC" bench permute --reps 0
expect nonzero "--bytes=1.5M: unexpected '.5M'" -- "$LC" bench permute --bytes 1.5M
expect nonzero "LONGCTX_HEAP_SIZE=1M (1 MiB) is less than" -- env LONGCTX_HEAP_SIZE=1M "$LC" bench permute --pes 2 --bytes 8
"$LC" bench permute --pes 2 --bytes 0 --reps 1 --json >"$tmp/out" 2>&1
if [ $? != 0 ] || grep -qi nan "$tmp/out" || ! grep -q '"bytes":0,.*"frac_of_memcpy":null' "$tmp/out"; then
    echo "FAIL bench permute --bytes 0 --json is not valid JSON:"; cat "$tmp/out"; fail=1
else echo "ok   bench permute --bytes 0 --json: no NaN"; fi
if "$LC" bench 2>&1 | grep -q ring || "$LC" --help | grep -q "bench ring"; then
    expect nonzero "--pes=9999999999999999K: must be in \[1, 1024\]" -- "$LC" bench ring --pes 9999999999999999K
    expect nonzero "--pes=99999999999999999999: the number is too large" -- "$LC" bench ring --pes 99999999999999999999
    expect nonzero "--s=4194303T: must be in \[1, 2147483647\]" -- "$LC" bench ring --s 4194303T
    expect nonzero "--s=3G: must be in \[1, 2147483647\]" -- "$LC" bench ring --s 3G
    expect nonzero "--s=99999999999: must be in" -- "$LC" bench ring --s 99999999999
    expect nonzero "--s 2000000000 with --pes 2.*(lower --s or raise --pes) needs about" -- "$LC" bench ring --pes 2 --s 2000000000
    expect nonzero "--threads=-2: expected a count" -- "$LC" bench ring --threads -2
    expect nonzero "unknown option '--frob'" -- "$LC" bench ring --frob 1
fi
[ $fail = 0 ] && echo "cli and environment errors: all named"
exit $fail
