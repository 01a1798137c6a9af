"""The JAX training-step peer: a Llama block stack (RMSNorm, RoPE rotate_half as transformers,
GQA, SwiGLU, untied head) with ring attention written the way JAX expresses context
parallelism: shard_map over a mesh of --cp host devices (XLA's forced host platform device
count), the sequence split zigzag (device r holds chunks r and 2P-1-r of 2P, the same balance
as ours), K/V travelling with lax.ppermute one hop per ring step, partial results merged
exactly in fp32 with the log-sum-exp rule. Inside a ring step each (query chunk, KV chunk)
pair is skipped, computed in full or computed with the causal mask (lax.switch on the global
positions), query rows in blocks under jax.checkpoint so the score matrix never exists whole
and the backward recomputes it (flash-attention style memory). value_and_grad, then optax's
global-norm clipping and AdamW over every parameter, all in one jitted step compiled before
the timed steps. Weights come from our checkpoint's model.safetensors (numpy)."""
import json
import os

# query rows per checkpointed attention block
Q_BLOCK = int(os.environ.get("LONGCTX_JAX_QBLOCK", "512"))


def _set_xla_env(cp, threads):
    flags = os.environ.get("XLA_FLAGS", "")
    flags += f" --xla_force_host_platform_device_count={cp}"
    os.environ["XLA_FLAGS"] = flags.strip()
    os.environ["JAX_PLATFORMS"] = "cpu"


def _inv_freq(theta, d):
    import numpy as np
    # transformers: 1 / base ** (arange(0, dim, 2).float() / dim), in fp32
    e = np.arange(0, d, 2, dtype=np.int64).astype(np.float32) / np.float32(d)
    return (np.float32(1.0) / (np.float32(theta) ** e)).astype(np.float32)


def run(a):
    _set_xla_env(a.cp, a.threads)
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as PS
    from safetensors.numpy import load_file
    from train_peer import load_tokens, rss_now_bytes, timed_steps

    try:
        import optax
    except ImportError as e:
        raise RuntimeError("optax is not installed in the peers' venv (run bench/peers/install.sh)") from e

    framework_rss = rss_now_bytes()
    P, S = a.cp, a.seq
    if len(jax.devices()) < P:
        raise RuntimeError(f"JAX sees {len(jax.devices())} CPU devices, need {P}")
    if S % (2 * P):
        raise RuntimeError(f"the JAX peer needs --seq divisible by 2*cp = {2 * P}")
    with open(os.path.join(a.ckpt, "config.json")) as f:
        cfg = json.load(f)
    L, dim = cfg["num_hidden_layers"], cfg["hidden_size"]
    Hq, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or dim // Hq
    G, eps = Hq // Hkv, np.float32(cfg["rms_norm_eps"])
    theta = cfg.get("rope_theta") or cfg.get("rope_parameters", {}).get("rope_theta")
    w = load_file(os.path.join(a.ckpt, "model.safetensors"))
    params = {k: jnp.asarray(v, jnp.float32) for k, v in w.items()}
    inv_freq = jnp.asarray(_inv_freq(theta, D))

    # zigzag: device r holds chunks r and 2P-1-r (c tokens each); host arrays in device order
    tok = load_tokens(a.tokens, S).astype(np.int32)
    tgt = np.concatenate([tok[1:], np.array([-1], np.int32)])
    c = S // (2 * P)
    order = np.concatenate([np.concatenate([np.arange(r * c, (r + 1) * c),
                                            np.arange((2 * P - 1 - r) * c, (2 * P - r) * c)])
                            for r in range(P)])
    mesh = Mesh(np.array(jax.devices()[:P]), ("cp",))
    seq_sh, rep_sh = NamedSharding(mesh, PS("cp")), NamedSharding(mesh, PS())
    x_z, t_z, pos_z = (jax.device_put(v, seq_sh) for v in (tok[order], tgt[order], order.astype(np.int32)))
    params = jax.device_put(params, rep_sh)
    n_real = int((tgt >= 0).sum())
    scale = np.float32(1.0 / np.sqrt(D))

    def rmsnorm(x, g):
        var = jnp.mean(x * x, axis=-1, keepdims=True)
        return x * lax.rsqrt(var + eps) * g

    def rope(x, pos):  # x [n, H, D]
        f = pos.astype(jnp.float32)[:, None] * inv_freq[None, :]
        emb = jnp.concatenate([f, f], axis=-1)
        cos, sin = jnp.cos(emb)[:, None, :], jnp.sin(emb)[:, None, :]
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return x * cos + jnp.concatenate([-x2, x1], axis=-1) * sin

    def attend_block(q, qpos, o, lse, k, v, kpos, causal):
        """One query block (q [b, Hkv, G, D]) against one KV chunk, merged into (o, lse)."""
        s = jnp.einsum("qhgd,khd->hgqk", q, k) * scale
        if causal:
            s = jnp.where((qpos[:, None] >= kpos[None, :])[None, None], s, -jnp.inf)
        m = jnp.max(s, axis=-1)
        p = jnp.exp(s - m[..., None])
        l = jnp.sum(p, axis=-1)
        ob = jnp.einsum("hgqk,khd->qhgd", p, v) / jnp.transpose(l, (2, 0, 1))[..., None]
        lb = jnp.transpose(m + jnp.log(l), (2, 0, 1))  # [b, Hkv, G]
        ln = jnp.logaddexp(lse, lb)
        o = o * jnp.exp(lse - ln)[..., None] + ob * jnp.exp(lb - ln)[..., None]
        return o, ln

    blk_full = jax.checkpoint(lambda *t: attend_block(*t, causal=False))
    blk_diag = jax.checkpoint(lambda *t: attend_block(*t, causal=True))

    def attend_chunk(q, qpos, o, lse, k, v, kpos):
        """q/o/lse: one zigzag chunk of queries; k/v/kpos: one KV chunk. Skip when every key
        is after every query, no mask when every key is before, else the causal mask."""
        n = q.shape[0]
        b = Q_BLOCK if n % Q_BLOCK == 0 else n
        resh = lambda t: t.reshape((n // b, b) + t.shape[1:])

        def over_blocks(fn):
            def go(q, qpos, o, lse):
                def body(args):
                    return fn(*args, k, v, kpos)
                o2, l2 = lax.map(body, (resh(q), resh(qpos), resh(o), resh(lse)))
                return o2.reshape(o.shape), l2.reshape(lse.shape)
            return go

        kind = jnp.where(kpos[0] > qpos[-1], 0, jnp.where(kpos[-1] < qpos[0], 1, 2))
        return lax.switch(kind, [lambda q, qp, o, l: (o, l), over_blocks(blk_full),
                                 over_blocks(blk_diag)], q, qpos, o, lse)

    def ring_attention(q, k, v, pos):
        """q [n, Hkv, G, D], k/v [n, Hkv, D], pos [n] (n = 2c local rows, two zigzag chunks)."""
        # derived from q so that they vary over the mesh like every value they merge with
        o = jnp.zeros_like(q)
        lse = jnp.full_like(q[..., 0], -jnp.inf)
        kv = (k, v, pos)
        halves = lambda t: (t[:c], t[c:])
        for step in range(P):  # unrolled: XLA overlaps each ppermute with the step's compute
            nxt = lax.ppermute(kv, "cp", [(i, (i + 1) % P) for i in range(P)]) if step + 1 < P else None
            ks, vs, kps = (halves(t) for t in kv)
            outs = []
            for qi in range(2):
                qq, qp = halves(q)[qi], halves(pos)[qi]
                oo, ll = halves(o)[qi], halves(lse)[qi]
                for ki in range(2):
                    oo, ll = attend_chunk(qq, qp, oo, ll, ks[ki], vs[ki], kps[ki])
                outs.append((oo, ll))
            o = jnp.concatenate([outs[0][0], outs[1][0]])
            lse = jnp.concatenate([outs[0][1], outs[1][1]])
            kv = nxt
        return o

    def local_loss(p, x, t, pos):
        h = p["model.embed_tokens.weight"][x]
        n = x.shape[0]
        for i in range(L):
            pre = f"model.layers.{i}."
            u = rmsnorm(h, p[pre + "input_layernorm.weight"])
            q = (u @ p[pre + "self_attn.q_proj.weight"].T).reshape(n, Hq, D)
            k = (u @ p[pre + "self_attn.k_proj.weight"].T).reshape(n, Hkv, D)
            v = (u @ p[pre + "self_attn.v_proj.weight"].T).reshape(n, Hkv, D)
            q, k = rope(q, pos), rope(k, pos)
            o = ring_attention(q.reshape(n, Hkv, G, D), k, v, pos).reshape(n, Hq * D)
            h = h + o @ p[pre + "self_attn.o_proj.weight"].T
            u = rmsnorm(h, p[pre + "post_attention_layernorm.weight"])
            g = u @ p[pre + "mlp.gate_proj.weight"].T
            h = h + (jax.nn.silu(g) * (u @ p[pre + "mlp.up_proj.weight"].T)) @ p[pre + "mlp.down_proj.weight"].T
        h = rmsnorm(h, p["model.norm.weight"])
        logits = h @ p["lm_head.weight"].T
        lse = jax.nn.logsumexp(logits, axis=-1)
        picked = jnp.take_along_axis(logits, jnp.maximum(t, 0)[:, None], axis=-1)[:, 0]
        part = jnp.sum(jnp.where(t >= 0, lse - picked, 0.0))
        return lax.psum(part, "cp") / n_real

    sharded_loss = jax.shard_map(local_loss, mesh=mesh, in_specs=(PS(), PS("cp"), PS("cp"), PS("cp")),
                                 out_specs=PS())
    opt = optax.chain(optax.clip_by_global_norm(a.clip),
                      optax.adamw(a.lr, b1=a.beta1, b2=a.beta2, eps=a.eps, weight_decay=a.wd))
    opt_state = opt.init(params)

    def train_step(p, st, x, t, pos):
        loss, g = jax.value_and_grad(sharded_loss)(p, x, t, pos)
        upd, st = opt.update(g, st, p)
        return optax.apply_updates(p, upd), st, loss

    step_fn = jax.jit(train_step, donate_argnums=(0, 1)).lower(params, opt_state, x_z, t_z, pos_z).compile()
    state = [params, opt_state]

    def step():
        p, st, loss = step_fn(state[0], state[1], x_z, t_z, pos_z)
        state[0], state[1] = p, st
        return float(loss)

    loss0, step_s, cpu_s = timed_steps(a, step)
    return {"loss0": loss0, "step_s": step_s, "cpu_s": cpu_s, "lowering": "ppermute", "jax": jax.__version__,
            "devices": P,
            "framework_rss_bytes": framework_rss}
