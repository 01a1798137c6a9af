#!/bin/bash
# bench/attn-parts/run.sh still works: the work tree's driver.c builds with its timing points
# on (LONGCTX_ATTN_PARTS) and links against this build's library (with its sanitizer flags),
# and one round prints a row of positive forward and backward parts (every point was
# reached), a rate and a bwd/fwd ratio.
# usage: parts_tool.sh LIB.a "EXTRA_CFLAGS"
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$("$root/bench/attn-parts/run.sh" --rounds 1 --shape "320 64 4 2" --lib "$1" --cflags "$2" .)
echo "$out"
echo "$out" | awk '
    $1 == "." && $2 == 1 { rows++; for (i = 4; i <= NF; i++) if ($i != "|" && !($i + 0 > 0)) bad = bad " field " i " = " $i }
    END {
        if (rows != 1) { print "parts_tool: expected one row for ., got " rows + 0; exit 1 }
        if (bad != "") { print "parts_tool: non-positive" bad; exit 1 }
        print "parts_tool: ok"
    }'
