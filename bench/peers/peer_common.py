"""Shared by the attention peers: the same flags as `longctx bench attn`, the same FLOP
convention (FlashAttention: forward 4*s*s*d*hq times the unmasked fraction, backward 2.5x),
one JSON object per line."""
import argparse
import itertools
import json
import statistics
import sys
import time


def _words(allowed):
    def parse(s):
        items = s.split(",")
        for x in items:
            if x not in allowed:
                raise argparse.ArgumentTypeError(f"'{x}' is not one of {', '.join(allowed)}")
        return items
    return parse


def _ints(s):
    out = []
    for x in s.split(","):
        m = 1
        if x[-1:] in ("K", "k"):
            m, x = 1024, x[:-1]
        out.append(int(x) * m)
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--pass", dest="passes", type=_words(["fwd", "fwd_bwd"]), default=["fwd"])
    p.add_argument("--dtype", type=_words(["f32", "bf16"]), default=["f32"])
    p.add_argument("--s", type=_ints, default=[1024])
    p.add_argument("--d", type=_ints, default=[128])
    p.add_argument("--hq", type=_ints, default=[8])
    p.add_argument("--hkv", type=_ints, default=[2])
    p.add_argument("--mask", type=_words(["none", "causal"]), default=["causal"])
    p.add_argument("--threads", type=_ints, default=[1])
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args(argv)
    n = max(len(a.hq), len(a.hkv))
    a.heads = [(a.hq[0 if len(a.hq) == 1 else i], a.hkv[0 if len(a.hkv) == 1 else i])
               for i in range(n)]
    return a


def configs(a):
    for ps, dt, s, d, (hq, hkv), mask, thr in itertools.product(
            a.passes, a.dtype, a.s, a.d, a.heads, a.mask, a.threads):
        yield dict(pass_=ps, dtype=dt, s=s, d=d, hq=hq, hkv=hkv, mask=mask, threads=thr)


def flops(c):
    s = c["s"]
    frac = (s * (s + 1) / 2) / (s * s) if c["mask"] == "causal" else 1.0
    return 4.0 * s * s * c["d"] * c["hq"] * frac * (3.5 if c["pass_"] == "fwd_bwd" else 1.0)


def time_median(fn, reps):
    """(median wall seconds, median process CPU seconds). The CPU time is what a loaded
    machine does not inflate; with one thread it is comparable to longctx's cpuGF/s."""
    fn()  # warm-up: compilation, allocation
    ts, cs = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    return statistics.median(ts), statistics.median(cs)


def emit(impl, c, median_s=None, median_cpu_s=None, error=None, **extra):
    o = {"bench": "attn", "impl": impl, "pass": c["pass_"], "dtype": c["dtype"], "s": c["s"],
         "d": c["d"], "hq": c["hq"], "hkv": c["hkv"], "mask": c["mask"],
         "threads": c["threads"]}
    if error is not None:
        o["error"] = error
    else:
        o["median_s"] = median_s
        o["gflops"] = flops(c) / median_s * 1e-9
        if median_cpu_s:
            o["median_cpu_s"] = median_cpu_s
            o["gflops_cpu"] = flops(c) / median_cpu_s * 1e-9
    o.update(extra)
    print(json.dumps(o, separators=(",", ":")), flush=True)
