#!/usr/bin/env python3
"""Plot `longctx bench permute --json` output: bandwidth per lowering vs the memcpy limit.

usage: plot_permute.py RESULTS.jsonl OUT.png
Needs matplotlib (scripts/plot-env.sh makes a virtualenv with it)."""
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    series = defaultdict(dict)  # (pes, label) -> {bytes: gbps}
    hop = {}
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r["bench"] == "permute":
                series[(r["pes"], r["lowering"])][r["bytes"]] = r["gbps"]
            elif r["bench"] == "memcpy":
                series[(r["pes"], "memcpy limit (P concurrent copies)")][r["bytes"]] = r["gbps"]
            elif r["bench"] == "putsignal_hop":
                hop[r["pes"]] = r["median_s"]
    if not series:
        sys.exit("no permute results in " + sys.argv[1])
    fig, ax = plt.subplots(figsize=(8, 5))
    for (pes, label), pts in sorted(series.items()):
        xs = sorted(pts)
        style = "--" if label.startswith("memcpy") else "-o"
        ax.plot(xs, [pts[x] for x in xs], style, label=f"{label}, P={pes}", markersize=3)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("bytes per PE per permute")
    ax.set_ylabel("GB/s per PE (median)")
    title = "longctx ring collective-permute, shm backend"
    if hop:
        title += "\n8-byte put-with-signal hop: " + ", ".join(
            f"P={p}: {t * 1e6:.2f} us" for p, t in sorted(hop.items()))
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print("wrote", sys.argv[2])


if __name__ == "__main__":
    main()
