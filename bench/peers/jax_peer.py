"""jax.nn.dot_product_attention on the CPU (XLA), shapes as `longctx bench attn`.

XLA fixes its thread pool at import, so each thread count runs in its own process."""
import os
import subprocess
import sys

from peer_common import configs, emit, parse_args, time_median


def child(a, threads):
    import jax
    import jax.numpy as jnp

    for c in configs(a):
        if c["threads"] != threads:
            continue
        dt = jnp.bfloat16 if c["dtype"] == "bf16" else jnp.float32
        s, d, hq, hkv = c["s"], c["d"], c["hq"], c["hkv"]
        ks = jax.random.split(jax.random.PRNGKey(1), 4)
        q = jax.random.normal(ks[0], (1, s, hq, d), jnp.float32).astype(dt)
        k = jax.random.normal(ks[1], (1, s, hkv, d), jnp.float32).astype(dt)
        v = jax.random.normal(ks[2], (1, s, hkv, d), jnp.float32).astype(dt)
        dout = jax.random.normal(ks[3], (1, s, hq, d), jnp.float32).astype(dt)
        causal = c["mask"] == "causal"

        def attn(q, k, v):
            return jax.nn.dot_product_attention(q, k, v, is_causal=causal)

        if c["pass_"] == "fwd":
            f = jax.jit(attn)

            def run():
                f(q, k, v).block_until_ready()
        else:
            @jax.jit
            def f(q, k, v, dout):
                return jax.vjp(attn, q, k, v)[1](dout)

            def run():
                jax.block_until_ready(f(q, k, v, dout))
        try:
            emit("jax", c, *time_median(run, a.reps), jax=jax.__version__)
        except Exception as e:  # noqa: BLE001
            emit("jax", c, error=str(e).splitlines()[0][:200])


def main():
    a = parse_args()
    if os.environ.get("LONGCTX_JAX_CHILD"):
        child(a, int(os.environ["LONGCTX_JAX_CHILD"]))
        return 0
    try:
        import jax  # noqa: F401  (only to report its absence early)
    except Exception as e:  # noqa: BLE001
        for c in configs(a):
            emit("jax", c, error=f"import jax failed: {e}")
        return 0
    for t in sorted(set(a.threads)):
        env = dict(os.environ, LONGCTX_JAX_CHILD=str(t), JAX_PLATFORMS="cpu")
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_cpu_multi_thread_eigen={'true' if t > 1 else 'false'}"
                            f" intra_op_parallelism_threads={t}").strip()
        subprocess.run([sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env=env,
                       check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
