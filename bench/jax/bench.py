"""One measurement of bench/jax (run.sh drives the interleaved rounds): ring attention over a
zigzag-split sequence, forward and forward+backward, by one implementation:
  longctx      longctx.jax.ring_attention (the FFI handler; KV over longctx's runtime), one
               process per PE (`longctx launch -n P`)
  jax-gloo     JAX's own ring (jax_ring.py: shard_map + ppermute + custom_vjp), one process
               per PE over jax.distributed with gloo (`longctx launch -n P`, for the process
               start-up and the core binding alone)
  jax-devices  the same JAX ring in one process with P forced host devices (JAX's fastest
               set-up on one host)
Times are medians of --reps after a compile-and-warm call; PE 0 prints one JSON object with
them and the peak RSS of every process (VmHWM, gathered)."""
import argparse
import json
import os
import statistics
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--impl", required=True, choices=["longctx", "jax-gloo", "jax-devices"])
p.add_argument("--cp", type=int, default=2)
p.add_argument("--seq", type=int, default=16384)
p.add_argument("--heads", default="8/2", help="query/KV heads")
p.add_argument("--dim", type=int, default=64)
p.add_argument("--reps", type=int, default=2)
a = p.parse_args()
N, K = (int(x) for x in a.heads.split("/"))
P, S, H = a.cp, a.seq, a.dim

if a.impl == "jax-devices":
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={P}").strip()
    pe, n = 0, 1
else:
    import longctx.jax as lcj
    pe, n = lcj.initialize()
    if n != P:
        sys.exit(f"bench: launched as {n} PEs, --cp {P}")
if a.impl == "jax-gloo" and n > 1:
    pass  # initialize() already set up jax.distributed over gloo

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as PS  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jax_ring import make_ring, zigzag_order  # noqa: E402

mesh = Mesh(np.array(jax.devices()[:P]), ("cp",))
rng = np.random.default_rng(0)
q = rng.standard_normal((S, N, H)).astype(np.float32)
k = rng.standard_normal((S, K, H)).astype(np.float32)
v = rng.standard_normal((S, K, H)).astype(np.float32)
order = zigzag_order(S, P)
spec = PS("cp")
sh = NamedSharding(mesh, spec)
glob = lambda x: jax.make_array_from_callback(x.shape, sh, lambda i: x[i])
qg, kg, vg, pg = tuple(glob(x[order]) for x in (q, k, v)) + (glob(order.astype(np.int32)),)
scale = 1.0 / np.sqrt(H)

if a.impl == "longctx":
    def attn(q, k, v, pos):
        return lcj.ring_attention(q[None], k[None], v[None], axis_name="cp", causal=True, layout="zigzag")[0]
else:
    ring = make_ring("cp", P, scale)

    def attn(q, k, v, pos):
        n_ = q.shape[0]
        return ring(q.reshape(n_, K, N // K, H), k, v, pos).reshape(n_, N, H)


def fwd(q, k, v, pos):
    return attn(q, k, v, pos)


def fwd_bwd(q, k, v, pos):
    out, vjp = jax.vjp(lambda q, k, v: attn(q, k, v, pos), q, k, v)
    return vjp(out)  # dout = out: a fixed, data-dependent cotangent


f1 = jax.jit(jax.shard_map(fwd, mesh=mesh, in_specs=(spec,) * 4, out_specs=spec))
f2 = jax.jit(jax.shard_map(fwd_bwd, mesh=mesh, in_specs=(spec,) * 4, out_specs=(spec,) * 3))


def timed(f):
    jax.block_until_ready(f(qg, kg, vg, pg))  # compile and warm
    ts = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(qg, kg, vg, pg))
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


t_fwd = timed(f1)
t_fb = timed(f2)


def vmhwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


mem = [vmhwm()]
if a.impl != "jax-devices" and n > 1:
    from jax.experimental import multihost_utils
    mem = [int(x) for x in np.asarray(multihost_utils.process_allgather(np.array([vmhwm()], np.int64))).reshape(-1)]
if pe == 0:
    flops = 4.0 * S * S * H * N * (S + 1) / (2 * S)  # causal forward (FlashAttention's count)
    print(json.dumps({"bench": "jax_ring", "impl": a.impl, "cp": P, "seq": S, "heads": a.heads, "dim": H,
                      "fwd_s": t_fwd, "fwd_bwd_s": t_fb, "fwd_gflops": flops / t_fwd * 1e-9,
                      "fwd_bwd_gflops": 3.5 * flops / t_fb * 1e-9, "peak_rss_bytes": mem,
                      "jax": jax.__version__}, separators=(",", ":")), flush=True)
