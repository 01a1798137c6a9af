#!/bin/bash
# The layer check (cmake/check_includes.cmake, with the table cmake/layers.cmake) passes on
# this tree, and on a copy of it fails for each include planted below, naming the file and
# line, the included file and both layers.
# usage: layers_check.sh SOURCE_DIR CMAKE
set -u
src=$1 cmake=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*"; exit 1; }
check() {
    "$cmake" -DROOT="$1" -DWORK="$tmp" -DTABLE="$src/cmake/layers.cmake" \
        -P "$src/cmake/check_includes.cmake" 2>&1
}

out=$(check "$src") || { echo "$out"; fail "the check fails on the tree itself"; }
ok=$(echo "$out" | grep '^longctx layers: ok') || { echo "$out"; fail "no 'longctx layers: ok' line"; }
echo "ok   the tree passes: $ok"

mkdir "$tmp/tree"
cp -r "$src/src" "$src/include" "$tmp/tree/" || fail "copying the tree"
# plant [--file] FILE LINE EXPECTED...: LINE appended to FILE (created if new) in the copy
# must make the check fail with output holding FILE:<its line number> (just FILE with
# --file: a finding about the file itself) and every EXPECTED text.
plant() {
    local at=line
    [ "$1" = --file ] && at=file && shift
    local f=$1 line=$2
    shift 2
    local had=0
    [ -e "$tmp/tree/$f" ] && had=1 && cp "$tmp/tree/$f" "$tmp/saved"
    mkdir -p "$(dirname "$tmp/tree/$f")"
    printf '%s\n' "$line" >>"$tmp/tree/$f"
    local n
    n=$(wc -l <"$tmp/tree/$f")
    local o
    if o=$(check "$tmp/tree"); then
        echo "$o"
        fail "$f: '$line' passed the check"
    fi
    local where="$f:$n: "
    [ $at = file ] && where="$f: "
    for want in "$where" "$@"; do
        case $o in
        *"$want"*) ;;
        *) echo "$o"; fail "$f: '$line': the report does not say '$want'" ;;
        esac
    done
    echo "ok   $f: '$line' fails: $(echo "$o" | grep -F "$where" | head -1)"
    if ((had)); then cp "$tmp/saved" "$tmp/tree/$f"; else rm "$tmp/tree/$f"; fi
}
# the attention kernels must not depend on the runtime
plant src/attn/common.c '#include "longctx/symm.h"' "includes longctx/symm.h" "layer attn may not use layer symm"
# the angle form, a header two layers up
plant src/symm/world.c '#include <longctx/cp.h>' "include/longctx/cp.h" "layer symm may not use layer cp"
# a relative path into a layer above
plant src/cp/layout.c '#include "../model/internal.h"' "src/model/internal.h" "layer cp may not use layer model"
# a public header including one above it
plant include/longctx/model.h '#include "longctx/train.h"' "layer model may not use layer train"
# a private header of a layer below (its public header is the way in)
plant src/train/trainer.c '#include "ckpt/dir.h"' "src/ckpt/dir.h" "a private header of layer ckpt"
# the benchmarks are above the library
plant src/train/loader.c '#include "bench/bench_util.h"' "layer train may not use layer bench"
# a public header nobody placed, a folder that is no layer
plant --file include/longctx/extra.h '#include <stddef.h>' "include/longctx/extra.h belongs to no layer"
plant --file src/misc/x.c '#include "longctx/attn.h"' "src/misc/ is no layer"
echo "ok   every planted include was caught"
