"""What longctx.jax refuses, on every process, fast (each in under 5 s): PEs that make
different ring calls (named, both of them; the world stays usable), a dtype it does not
take, a mesh whose CP axis lists the processes out of PE order (last: it ends the world).
Run as `longctx launch -n 2 -- python test_refusals.py`; with `outside`, as one plain
process: ring_attention without initialize()."""
import sys
import time

import numpy as np

from common import inputs
import longctx.jax as lcj

failures = 0


def expect(name, fn, *words):
    global failures
    t0 = time.time()
    try:
        fn()
        msg, ok = "no error", False
    except Exception as e:  # noqa: BLE001  (XLA's runtime error, TypeError, ValueError alike)
        msg = f"{type(e).__name__}: {e}"
        ok = all(w in msg for w in words)
    dt = time.time() - t0
    ok = ok and dt < 5
    failures += not ok
    first = msg.strip().splitlines()[0] if msg.strip() else msg
    print(f"{'ok  ' if ok else 'FAIL'} {name} ({dt:.1f} s): {first[:300]}", flush=True)


if sys.argv[1:] == ["outside"]:
    import jax
    from jax.sharding import Mesh, PartitionSpec as PS
    mesh = Mesh(np.array(jax.devices()[:1]), ("cp",))
    q, k, v = inputs(np.random.default_rng(0), 1, 64, 4, 2, 32, "float32")
    f = jax.shard_map(lambda q, k, v: lcj.ring_attention(q, k, v), mesh=mesh, in_specs=(PS(None, "cp"),) * 3,
                      out_specs=PS(None, "cp"))
    expect("outside a longctx world", lambda: jax.jit(f)(q, k, v), "not in a longctx world", "initialize")
    print(f"PE 0: {failures} failures")
    sys.exit(1 if failures else 0)

pe, P = lcj.initialize()
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as PS  # noqa: E402

spec = PS(None, "cp")


def run(mesh, dtype=np.float32, causal=True):
    q, k, v = (x.astype(dtype) for x in inputs(np.random.default_rng(0), 1, 64, 4, 2, 32, "float32"))
    sh = NamedSharding(mesh, spec)
    g = [jax.make_array_from_callback(x.shape, sh, lambda i, x=x: x[i]) for x in (q, k, v)]
    f = jax.jit(jax.shard_map(lambda q, k, v: lcj.ring_attention(q, k, v, causal=causal), mesh=mesh,
                              in_specs=(spec,) * 3, out_specs=spec))
    return np.asarray(f(*g).addressable_shards[0].data)


mesh = Mesh(np.array(jax.devices()), ("cp",))
expect("PEs that disagree on the mask", lambda: run(mesh, causal=(pe == 0)), "do not make the same ring calls",
       "causal", "full")
t0 = time.time()
out = run(mesh)
good = np.all(np.isfinite(out))
failures += not good
print(f"{'ok  ' if good else 'FAIL'} the world still works after that ({time.time() - t0:.1f} s)", flush=True)
expect("float16", lambda: run(mesh, dtype=np.float16), "float32 or bfloat16")
rev = Mesh(np.array(jax.devices()[::-1]), ("cp",))
expect("a CP axis out of PE order", lambda: run(rev), "shard_map axis", "PE order")
print(f"PE {pe}: {failures} failures", flush=True)
sys.exit(1 if failures else 0)
