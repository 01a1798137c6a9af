#!/usr/bin/env bash
# Runs the libFuzzer target on the safetensors reader for a bounded time (LONGCTX_FUZZ_S,
# default 25 s) from a seed corpus of valid and near-valid files; any crash, ASan or UBSan
# report fails the test. Without clang or its fuzzer runtime the test skips (77) and says why.
# usage: fuzz.sh FUZZER WORK CLANG
set -uo pipefail
fz=$1 work=$2 clang=${3:-}
if [ -z "$clang" ]; then echo "SKIP: clang not found (scripts/setup.sh installs clang and libclang-rt-14-dev)"; exit 77; fi
if [ ! -x "$fz" ]; then
    echo "SKIP: the fuzzer did not build with $clang (is libclang-rt-14-dev installed?):"
    cat "$fz.log" 2>/dev/null | tail -5
    exit 77
fi
rm -rf "$work" && mkdir -p "$work/corpus" "$work/new"
python3 - "$work/corpus" <<'PY'
import json, struct, sys, os
out = sys.argv[1]
def st(tensors, meta=None, pad=True, extra=b""):
    hdr, data = {}, b""
    if meta is not None: hdr["__metadata__"] = meta
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr).encode()
    if pad: h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data + extra
seeds = {
    "f32": st([("a", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))], {"format": "pt"}),
    "mixed": st([("model.embed_tokens.weight", "BF16", [3], b"\x80\x3f" * 3), ("h", "F16", [2], b"\x00\x3c\x00\xc0"),
                 ("i", "I64", [1], struct.pack("<q", 7)), ("s", "F32", [], struct.pack("<f", 1)),
                 ("z", "U8", [0], b"")], {"k": "v\u00e9"}),
    "empty": st([]),
    "nopad": st([("x", "F64", [1], struct.pack("<d", 2.0))], pad=False),
    "trailing": st([("a", "F32", [1], b"\0\0\0\0")], extra=b"junk"),
    "escapes": st([("q\"\\\u00e9\ud83d\ude00".encode("utf-16", "surrogatepass").decode("utf-16"), "BOOL", [1], b"\1")]),
}
for k, v in seeds.items():
    open(os.path.join(out, k), "wb").write(v)
PY
secs=${LONGCTX_FUZZ_S:-25}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$fz" "$work/new" "$work/corpus" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/" >"$work/log" 2>&1
rc=$?
tail -n 25 "$work/log"
if [ $rc -ne 0 ]; then echo "FAIL: the fuzzer found a crash (rc $rc); the input is in $work/"; exit 1; fi
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$')
echo "PASS: $runs inputs in ${secs} s, no crash"
