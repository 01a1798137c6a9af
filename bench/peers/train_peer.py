"""One training-step peer of `longctx bench train --peers`: the same step as ours (forward +
backward + global-norm clipping + AdamW over every parameter) on the weights of our checkpoint
directory and our token sequence, on the same number of cores. Prints one JSON line:
{"bench":"train","impl":..,"s":..,"cp":..,"tokens_per_s":..,"peak_mem_bytes":..,"loss0":..}
or {"bench":"train","impl":..,"error":..} when it cannot run.

  --impl torch   transformers' LlamaForCausalLM (attn_implementation="sdpa"), fp32, no CP
  --impl jax     a Llama block stack in JAX with ring attention (shard_map + ppermute) over
                 --cp host devices (jax_train.py)

The process binds itself to --threads CPUs (the first ones it may use) before importing the
framework, so the peer runs on as many cores as ours, not more."""
import argparse
import json
import os
import resource
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--impl", choices=["torch", "jax"], required=True)
    p.add_argument("--ckpt", required=True, help="Hugging Face checkpoint directory (ours)")
    p.add_argument("--tokens", required=True, help="int32 tokens of the sequence")
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--cp", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="all cores of the run (not per PE)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warm", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.95)
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                   help="bf16: fp32 weights, the forward under autocast to bf16 (torch)")
    return p.parse_args(argv)


def emit(a, **kv):
    o = {"bench": "train", "impl": a.impl, "s": a.seq, "cp": a.cp, "tp": 1,
         "threads": a.threads}
    o.update(kv)
    print(json.dumps(o, separators=(",", ":")), flush=True)


def bind_cpus(n):
    cpus = sorted(os.sched_getaffinity(0))
    if n > len(cpus):
        raise RuntimeError(f"--threads {n} but only {len(cpus)} CPUs are allowed")
    os.sched_setaffinity(0, cpus[:n])


def load_tokens(path, seq):
    import numpy as np
    tok = np.fromfile(path, dtype="<i4")
    if tok.size != seq:
        raise RuntimeError(f"{path}: {tok.size} tokens, expected --seq {seq}")
    return tok


def rss_now_bytes():
    """Resident memory now: called after the framework's import, before the model exists, it
    is what the framework alone costs (reported beside the peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed_steps(a, step):
    """step() runs one full step and returns its loss (a float, synchronised). The first
    step's loss is the one checked against ours (same initial weights). Returns it, the median
    wall time and the median CPU time of the process (all threads) per timed step."""
    loss0, ts, cs = None, [], []
    for it in range(a.warm + a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if it == 0:
            loss0 = loss
        print(f"# {a.impl} peer, seq {a.seq}, cp {a.cp}: step {it + 1}/{a.warm + a.steps} "
              f"{dt:.3f} s, loss {loss:.7f}", file=sys.stderr, flush=True)
        if it >= a.warm:
            ts.append(dt)
            cs.append(dc)
    return loss0, statistics.median(ts), statistics.median(cs)


def main():
    a = parse_args()
    try:
        bind_cpus(a.threads)
        if a.impl == "torch":
            import torch_train as impl
        else:
            if a.dtype != "f32":
                raise RuntimeError("the JAX peer runs fp32 only")
            import jax_train as impl
        info = impl.run(a)
    except Exception as e:  # noqa: BLE001 - any failure is a row that says why, never a number
        emit(a, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
        return 0
    loss0, step_s, cpu_s = info.pop("loss0"), info.pop("step_s"), info.pop("cpu_s")
    proc = peak_rss_bytes()
    emit(a, step_s=step_s, tokens_per_s=a.seq / step_s, cpu_s=cpu_s, loss0=loss0,
         peak_mem_bytes=proc / a.cp, process_peak_bytes=proc, **info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
