"""longctx.jax.ring_attention against a float64 reference, forward and gradients, on every
process of the world it runs in (one process, or `longctx launch -n P`): each process checks
the rows of its own shard. fp32 within 1e-5 relative, bf16 within 1e-2; NaN never passes.
usage: test_ring.py [quick]"""
import sys
import time

import numpy as np

from common import docs, inputs, reference, reference_grads, rel_err
import longctx.jax as lcj

pe, P = lcj.initialize()
import jax  # noqa: E402  (after initialize: jax.distributed first)
import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as PS  # noqa: E402

mesh = Mesh(np.array(jax.devices()), ("cp",))
print(f"PE {pe}/{P}: the {lcj._load().lcj_backend().decode()} backend, jax {jax.__version__}", flush=True)
seq_spec = PS(None, "cp")
failures = 0


def global_array(x):
    sh = NamedSharding(mesh, seq_spec)
    return jax.make_array_from_callback(x.shape, sh, lambda i: x[i])


def mine(x):
    return np.asarray(x.addressable_shards[0].data)


def case(name, B=1, S=64, N=4, K=2, H=32, dtype="float32", causal=True, window=None, n_docs=0, layout="zigzag",
         lowering="auto", algo="ring", seed=0):
    global failures
    t0 = time.time()
    rng = np.random.default_rng(seed + 1000 * P)
    q, k, v = inputs(rng, B, S, N, K, H, dtype)
    dout = rng.standard_normal((B, S, N, H)).astype(np.float32).astype(q.dtype)
    doc = docs(rng, B, S, n_docs) if n_docs else None
    want = reference(q, k, v, causal, window, doc)
    wq, wk, wv = reference_grads(q, k, v, dout, causal, window, doc)
    sh = lambda x: np.asarray(lcj.shard_sequence(x, axis=1, layout=layout, cp=P))
    args = [global_array(sh(x)) for x in (q, k, v, dout)]
    if doc is not None:
        args.append(global_array(sh(doc)))

    def local(q, k, v, g, d=None):
        f = lambda q, k, v: lcj.ring_attention(q, k, v, axis_name="cp", causal=causal, window=window, doc_ids=d,
                                                layout=layout, lowering=lowering, algo=algo, seq_len=S)
        out, vjp = jax.vjp(f, q, k, v)
        return (out,) + vjp(g)

    fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(seq_spec,) * len(args), out_specs=(seq_spec,) * 4))
    got = [mine(x) for x in fn(*args)]
    pos = lcj.layout_positions(layout, S, P)[pe]
    real = pos >= 0
    tol = 1e-2 if dtype == "bfloat16" else 1e-5
    errs = [rel_err(g[:, real], w[:, pos[real]]) for g, w in zip(got, (want, wq, wk, wv))]
    ok = all(e < tol for e in errs)
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} PE {pe}/{P} {name}: out {errs[0]:.1e}, dq {errs[1]:.1e}, dk {errs[2]:.1e}, "
          f"dv {errs[3]:.1e} (< {tol:g}; {time.time() - t0:.1f} s)", flush=True)


quick = len(sys.argv) > 1 and sys.argv[1] == "quick"
case("causal, GQA 4/2")
case("MQA 4/1, window 16, odd length 97", S=97, K=1, window=16)
case("packed documents crossing shards", S=80, n_docs=4)
case("documents and a window", S=96, n_docs=3, window=20)
case("no mask, batch 2", B=2, causal=False)
case("bf16, GQA", dtype="bfloat16")
if P > 1:
    for lay in ("zigzag", "contiguous", "striped"):
        for low in (("one_sided", "two_sided", "zero_copy") if not quick else ("one_sided",)):
            case(f"{lay}, {low}", S=96, layout=lay, lowering=low, n_docs=2)
    case("allgather", S=96, algo="allgather", n_docs=2)
    # Ulysses: heads 2P / P (KV heads split), and 2P / 1 (one KV head replicated on every PE)
    case("ulysses, KV heads split", S=96, N=2 * P, K=P, algo="ulysses", n_docs=2, window=40)
    case("ulysses, KV head replicated, bf16", S=97, N=2 * P, K=1, algo="ulysses", dtype="bfloat16")
    case("hybrid:1 (the ring through the groups' plan)", S=96, algo="hybrid:1", n_docs=2)
    case("zigzag padded: 101 tokens", S=101)
    case("contiguous padded, window: 103 tokens", S=103, layout="contiguous", window=30)
if P == 1:
    # and against JAX's own attention
    rng = np.random.default_rng(5)
    q, k, v = inputs(rng, 1, 64, 4, 2, 32, "float32")
    f = jax.jit(jax.shard_map(lambda q, k, v: lcj.ring_attention(q, k, v, axis_name="cp"), mesh=mesh,
                              in_specs=(seq_spec,) * 3, out_specs=seq_spec))
    e = rel_err(f(q, k, v), jax.nn.dot_product_attention(q, k, v, is_causal=True))
    failures += not e < 1e-5
    print(f"{'ok  ' if e < 1e-5 else 'FAIL'} PE 0/1 against jax.nn.dot_product_attention: {e:.1e}", flush=True)
    # vmap over a leading axis runs the calls one after another
    qb = np.stack([q, q * 0.5])
    fv = jax.jit(jax.vmap(f))
    e = rel_err(fv(qb, np.stack([k, k]), np.stack([v, v]))[1], reference(q * 0.5, k, v))
    failures += not e < 1e-5
    print(f"{'ok  ' if e < 1e-5 else 'FAIL'} PE 0/1 under vmap: {e:.1e}", flush=True)
print(f"PE {pe}: {failures} failures", flush=True)
sys.exit(1 if failures else 0)
