#!/usr/bin/env python3
"""Before/after benchmark of two longctx binaries (e.g. a refactor against its base): the
same bench permute / attn / train commands, alternated round by round (before then after, then
after then before, ...) so a host's slow spell does not favour one side; prints one JSON
object per result line with each side's median rate and after/before (> 1: after faster),
then the worst ratio.
usage: bench/ab/ab.py BEFORE_BINARY AFTER_BINARY ROUNDS [permute,attn,train]"""
import json, statistics, subprocess, sys
before, after, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
only = sys.argv[4].split(",") if len(sys.argv) > 4 else None
cmds = {
    "permute": ["bench", "permute", "--pes", "2", "--bytes", "64K,16M", "--lowering", "one_sided,two_sided", "--json"],
    "attn": ["bench", "attn", "--s", "2K,4K", "--no-peers", "--json"],
    "train": ["bench", "train", "--model", "small", "--seq", "4K,16K", "--cp", "1,2", "--steps", "2", "--warm", "1", "--json"],
}
if only:
    cmds = {k: v for k, v in cmds.items() if k in only}
def key_and_rate(o):
    b = o.get("bench")
    if b == "permute": return (b, o["lowering"], o["bytes"]), o["gbps"]
    if b == "attn" and "pass" in o: return (b, o["pass"], o["dtype"], o["s"]), o["gflops"]
    if b == "train": return (b, o["seq"], o["cp"], o["dtype"]), o["tokens_per_s"]
    return None, None
res = {}
for r in range(rounds):
    for side, binp in (("before", before), ("after", after)) if r % 2 == 0 else (("after", after), ("before", before)):
        for name, c in cmds.items():
            out = subprocess.run([binp] + c, capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                if not line.startswith("{"): continue
                k, v = key_and_rate(json.loads(line))
                if k: res.setdefault(k, {"before": [], "after": []})[side].append(v)
    print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
worst = 9
for k, v in res.items():
    mb, ma = statistics.median(v["before"]), statistics.median(v["after"])
    worst = min(worst, ma / mb)
    print(json.dumps({"key": "/".join(map(str, k)), "before_median": mb, "after_median": ma, "after_over_before": round(ma / mb, 4), "rounds": len(v["after"])}))
print(json.dumps({"worst_after_over_before": round(worst, 4)}))
