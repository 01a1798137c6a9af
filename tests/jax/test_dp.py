"""A mesh with a DP axis beside the CP axis: ("dp", "cp") over jax.devices() in PE order, each
DP group a ring of its own over consecutive PEs (a longctx team), each with its own batch row;
forward and gradients against the float64 reference. Then a mesh with the CP axis outermost
is refused on the PEs whose place it gets wrong (ending the world). Run with P = 4."""
import sys

import numpy as np

from common import inputs, reference, reference_grads, rel_err
import longctx.jax as lcj

pe, P = lcj.initialize()
import jax  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as PS  # noqa: E402

CP = 2
DP = P // CP
mesh = Mesh(np.array(jax.devices()).reshape(DP, CP), ("dp", "cp"))
spec = PS("dp", "cp")
failures = 0
S = 96
rng = np.random.default_rng(7)
q, k, v = inputs(rng, DP, S, 4, 2, 32, "float32")
dout = rng.standard_normal(q.shape).astype(np.float32)
want = reference(q, k, v)
wq, wk, wv = reference_grads(q, k, v, dout)
sh = lambda x: np.asarray(lcj.shard_sequence(x, axis=1, layout="zigzag", cp=CP))
glob = lambda x: jax.make_array_from_callback(x.shape, NamedSharding(mesh, spec), lambda i: x[i])


def local(q, k, v, g):
    out, vjp = jax.vjp(lambda q, k, v: lcj.ring_attention(q, k, v, axis_name="cp"), q, k, v)
    return (out,) + vjp(g)


fn = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(spec,) * 4, out_specs=(spec,) * 4))
got = [np.asarray(x.addressable_shards[0].data) for x in fn(*(glob(sh(x)) for x in (q, k, v, dout)))]
b, c = pe // CP, pe % CP
pos = lcj.layout_positions("zigzag", S, CP)[c]
errs = [rel_err(g[0], w[b][pos][None][0]) for g, w in zip(got, (want, wq, wk, wv))]
ok = all(e < 1e-5 for e in errs)
failures += not ok
print(f"{'ok  ' if ok else 'FAIL'} PE {pe}/{P} DP {DP} x CP {CP}, batch row {b}, CP rank {c}: out {errs[0]:.1e}, "
      f"dq {errs[1]:.1e}, dk {errs[2]:.1e}, dv {errs[3]:.1e}", flush=True)
# the CP axis outermost: its groups are not consecutive PEs
bad = Mesh(np.array(jax.devices()).reshape(CP, DP).T, ("dp", "cp"))
try:
    f = jax.jit(jax.shard_map(lambda q, k, v: lcj.ring_attention(q, k, v, axis_name="cp"), mesh=bad,
                              in_specs=(spec,) * 3, out_specs=spec))
    shb = NamedSharding(bad, spec)
    gb = lambda x: jax.make_array_from_callback(x.shape, shb, lambda i: x[i])
    np.asarray(f(*(gb(sh(x)) for x in (q, k, v))).addressable_shards[0].data)
    msg = "no error"
except Exception as e:  # noqa: BLE001
    msg = str(e)
refused = "innermost" in msg or "aborted" in msg or "PE order" in msg
failures += not refused
print(f"{'ok  ' if refused else 'FAIL'} PE {pe}: the CP axis outermost: {msg.strip().splitlines()[0][:200]}", flush=True)
print(f"PE {pe}: {failures} failures", flush=True)
sys.exit(1 if failures else 0)
