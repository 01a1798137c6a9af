#!/usr/bin/env bash
# The command line as a user meets it (issue 27): every command and subcommand answers --help
# and -h on stdout with status 0, `longctx --version` names the build's version, prepare-data
# prints the paths it wrote without a doubled slash, and a bad setting read before any PE
# exists is named without a PE number ("PE -1" named nobody).
# usage: basics.sh LONGCTX_BINARY VERSION WORKDIR
set -u
LC=$1 VERSION=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
fail=0
check() { # description, then: want_rc regex -- command...
    local what=$1 want=$2 pat=$3
    shift 4
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if { [ "$want" = 0 ] && [ $rc -ne 0 ]; } || { [ "$want" != 0 ] && [ $rc -eq 0 ]; } ||
        ! grep -Eq -- "$pat" "$work/out" "$work/err"; then
        echo "FAIL $what: status $rc, wanted $want and /$pat/"; sed 's/^/  out: /' "$work/out" | head -5
        sed 's/^/  err: /' "$work/err" | head -5
        fail=1
    else
        echo "ok   $what"
    fi
}
for h in --help -h; do
    check "longctx $h" 0 "^usage: longctx" -- "$LC" $h
    check "launch $h" 0 "^usage: longctx launch" -- "$LC" launch $h
    check "launch -n 2 $h" 0 "^usage: longctx launch" -- "$LC" launch -n 2 $h
    check "prepare-data $h" 0 "^usage: longctx prepare-data" -- "$LC" prepare-data $h
    check "train $h" 0 "^usage: longctx train" -- "$LC" train $h
    check "ckpt $h" 0 "^usage: longctx ckpt" -- "$LC" ckpt $h
    for sub in info verify loss; do
        check "ckpt $sub $h" 0 "^usage: longctx ckpt" -- "$LC" ckpt $sub $h
        check "ckpt $sub DIR $h" 0 "^usage: longctx ckpt" -- "$LC" ckpt $sub "$work/none" $h
    done
    check "bench $h" 0 "^usage: longctx" -- "$LC" bench $h
    for b in permute attn tiles ring train; do
        check "bench $b $h" 0 "^usage: longctx bench $b" -- "$LC" bench $b $h
    done
done
# help goes to stdout: a user pipes it into less
"$LC" ckpt info --help 2>/dev/null | grep -q "^usage: longctx ckpt" || { echo "FAIL ckpt info --help not on stdout"; fail=1; }
check "--version" 0 "^longctx $VERSION\$" -- "$LC" --version
check "bench with no name is still an error" 2 "^usage: longctx" -- "$LC" bench
check "an unknown benchmark is still an error" 2 "unknown benchmark 'frob'" -- "$LC" bench frob
check "a missing checkpoint folder is still an error" 1 "does not exist|no checkpoint" -- "$LC" ckpt info "$work/none"

# prepare-data with the README's trailing slash (a small HTML source of our own)
mkdir -p "$work/html/a"
for i in $(seq 1 30); do printf '<html><body><p>page %d: %s</p></body></html>\n' "$i" \
    "$(head -c 600 /dev/zero | tr '\0' 'x')" >"$work/html/a/p$i.html"; done
check "prepare-data prints data/train.bin, not data//train.bin" 0 "-> $work/data/train.bin .*, $work/data/val.bin" \
    -- "$LC" prepare-data "$work/data/" --source "$work/html"
grep -q '//' "$work/out" && { echo "FAIL a doubled slash in: $(cat "$work/out")"; fail=1; }

# a bad setting at world start: named, with no PE number (there is none yet)
check "LONGCTX_TIMEOUT=abc is named" nonzero "LONGCTX_TIMEOUT=abc: expected seconds" -- \
    env LONGCTX_TIMEOUT=abc "$LC" launch -n 1 -- "$LC" train --model tiny --seq 64 --steps 1 --data "$work/data"
if grep -q "PE -1" "$work/out" "$work/err"; then echo "FAIL 'PE -1' in: $(cat "$work/err")"; fail=1; else echo "ok   no 'PE -1'"; fi
exit $fail
