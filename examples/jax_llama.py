"""A Llama-style model in plain jax.numpy + optax, trained with longctx's ring attention.

    build/longctx launch -n 2 -- .venv/bin/python examples/jax_llama.py --data data --seq 16K \\
        --init CKPT_OR_HF_DIR --steps 20

Each process is one PE with one CPU device; the sequence is split over them in zigzag order
(longctx.jax.shard_sequence) and attention is longctx.jax.ring_attention inside shard_map, so
the KV blocks travel over longctx's one-sided runtime. The model is the one `longctx train`
trains (RMSNorm, RoPE at the global positions the layout gives, GQA, SwiGLU, untied head), the
data come through longctx's own loader (the same sample at the same step and seed) and the
optimizer is optax set up as longctx's AdamW (decoupled decay except on norms, global-norm
clipping, warmup + cosine), so from the same weights its losses are longctx train's.
--init takes a longctx checkpoint or a Hugging Face save_pretrained folder (config.json and
model.safetensors); without it the weights are drawn at random (--model-size tiny|small).
"""
import argparse
import ctypes
import json
import math
import os
import time

import numpy as np

import longctx.jax as lcj


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = lambda s: int(s[:-1]) * 1024 if s[-1:] in "Kk" else int(s)
    p.add_argument("--data", required=True, help="folder with train.bin (longctx prepare-data)")
    p.add_argument("--init", help="longctx checkpoint or Hugging Face folder to start from")
    p.add_argument("--model-size", default="tiny", choices=["tiny", "small"], help="random init shape without --init")
    p.add_argument("--seq", type=size, default=16384)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--lr-min", type=float, default=None, help="the cosine's end (default lr/10)")
    p.add_argument("--warmup", type=int, default=None, help="default steps/10")
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--layout", default="zigzag", choices=["zigzag", "contiguous", "striped"])
    p.add_argument("--lowering", default="auto", choices=["auto", "one_sided", "two_sided", "zero_copy"])
    p.add_argument("--json", action="store_true", help="one JSON object per step on stdout (PE 0)")
    return p.parse_args()


PRESETS = {  # as longctx's presets (src/model/config.c)
    "tiny": dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, vocab_size=256, rope_theta=10000.0, rms_norm_eps=1e-5),
    "small": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=768, vocab_size=256, rope_theta=500000.0, rms_norm_eps=1e-5),
}


def load_weights(a):
    if a.init:
        from safetensors.numpy import load_file
        with open(os.path.join(a.init, "config.json")) as f:
            cfg = json.load(f)
        cfg["rope_theta"] = cfg.get("rope_theta") or cfg.get("rope_parameters", {}).get("rope_theta")
        w = {k: v.astype(np.float32) for k, v in load_file(os.path.join(a.init, "model.safetensors")).items()}
        if "lm_head.weight" not in w:  # tied
            w["lm_head.weight"] = w["model.embed_tokens.weight"]
        return cfg, w
    cfg = dict(PRESETS[a.model_size])
    rng = np.random.default_rng(a.seed)
    L, d, f = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"]
    hd = d // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    normal = lambda *s: (rng.standard_normal(s) * 0.02).astype(np.float32)
    w = {"model.embed_tokens.weight": normal(cfg["vocab_size"], d), "model.norm.weight": np.ones(d, np.float32),
         "lm_head.weight": normal(cfg["vocab_size"], d)}
    for i in range(L):
        pre = f"model.layers.{i}."
        w.update({pre + "input_layernorm.weight": np.ones(d, np.float32),
                  pre + "post_attention_layernorm.weight": np.ones(d, np.float32),
                  pre + "self_attn.q_proj.weight": normal(d, d), pre + "self_attn.k_proj.weight": normal(kv, d),
                  pre + "self_attn.v_proj.weight": normal(kv, d), pre + "self_attn.o_proj.weight": normal(d, d),
                  pre + "mlp.gate_proj.weight": normal(f, d), pre + "mlp.up_proj.weight": normal(f, d),
                  pre + "mlp.down_proj.weight": normal(d, f)})
    return cfg, w


def sample(a, g):
    """Sample g of --data/train.bin as `longctx train` reads it (its own loader)."""
    lib = lcj._load()
    lib.lcj_sample.argtypes = [ctypes.c_char_p, ctypes.c_longlong, ctypes.c_ulonglong, ctypes.c_int,
                               ctypes.c_longlong, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.lcj_data_error.restype = ctypes.c_char_p
    tok = np.empty(a.seq, np.int32)
    tgt = np.empty(a.seq, np.int32)
    if lib.lcj_sample(os.path.join(a.data, "train.bin").encode(), a.seq, a.seed, -1, g, tok.ctypes.data,
                      tgt.ctypes.data, None):
        raise SystemExit(f"jax_llama: {lib.lcj_data_error().decode()}")
    return tok, tgt


def lr_at(step, warmup, total, lr, lr_min):
    """longctx's schedule (src/optim/adamw.c lc_lr_at): linear warmup, then cosine to lr_min."""
    import jax.numpy as jnp
    step = jnp.asarray(step, jnp.float32)
    warm = lr * (step + 1) / max(warmup, 1)
    frac = jnp.clip((step - warmup) / max(total - warmup, 1), 0, 1)
    cos = lr_min + 0.5 * (1 + jnp.cos(math.pi * frac)) * (lr - lr_min)
    return jnp.where(step < warmup, warm, lr if total <= warmup else cos)


def main():
    a = parse()
    pe, P = lcj.initialize()
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as PS

    cfg, w = load_weights(a)
    L, D = cfg["num_hidden_layers"], cfg["hidden_size"]
    Hq, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = D // Hq
    eps = np.float32(cfg.get("rms_norm_eps", 1e-5))
    e = np.arange(0, hd, 2, dtype=np.int64).astype(np.float32) / np.float32(hd)
    inv_freq = jnp.asarray((np.float32(1.0) / (np.float32(cfg["rope_theta"]) ** e)).astype(np.float32))
    mesh = Mesh(np.array(jax.devices()), ("cp",))
    rep, seq = NamedSharding(mesh, PS()), NamedSharding(mesh, PS("cp"))
    glob = lambda x, s: jax.make_array_from_callback(x.shape, s, lambda i: x[i])
    params = {k: glob(v, rep) for k, v in w.items()}
    pos_all = lcj.layout_positions(a.layout, a.seq, P).reshape(-1)
    pos_g = glob(np.maximum(pos_all, 0).astype(np.int32), seq)

    def rmsnorm(x, g):
        return x * lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * g

    def rope(x, pos):  # x [n, H, hd]; transformers' rotate_half
        f = pos.astype(jnp.float32)[:, None] * inv_freq[None, :]
        emb = jnp.concatenate([f, f], axis=-1)
        cos, sin = jnp.cos(emb)[:, None, :], jnp.sin(emb)[:, None, :]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + jnp.concatenate([-x2, x1], axis=-1) * sin

    def local_loss(p, x, t, pos, n_real):
        n = x.shape[0]
        h = p["model.embed_tokens.weight"][x]
        for i in range(L):
            pre = f"model.layers.{i}."
            u = rmsnorm(h, p[pre + "input_layernorm.weight"])
            q = rope((u @ p[pre + "self_attn.q_proj.weight"].T).reshape(n, Hq, hd), pos)
            k = rope((u @ p[pre + "self_attn.k_proj.weight"].T).reshape(n, Hkv, hd), pos)
            v = (u @ p[pre + "self_attn.v_proj.weight"].T).reshape(n, Hkv, hd)
            o = lcj.ring_attention(q[None], k[None], v[None], axis_name="cp", causal=True, layout=a.layout,
                                   lowering=a.lowering, seq_len=a.seq)[0]
            h = h + o.reshape(n, D) @ p[pre + "self_attn.o_proj.weight"].T
            u = rmsnorm(h, p[pre + "post_attention_layernorm.weight"])
            g = u @ p[pre + "mlp.gate_proj.weight"].T
            h = h + (jax.nn.silu(g) * (u @ p[pre + "mlp.up_proj.weight"].T)) @ p[pre + "mlp.down_proj.weight"].T
        logits = rmsnorm(h, p["model.norm.weight"]) @ p["lm_head.weight"].T
        lse = jax.nn.logsumexp(logits, axis=-1)
        picked = jnp.take_along_axis(logits, jnp.maximum(t, 0)[:, None], axis=-1)[:, 0]
        return lax.psum(jnp.sum(jnp.where(t >= 0, lse - picked, 0.0)), "cp") / n_real

    loss_fn = jax.shard_map(local_loss, mesh=mesh, in_specs=(PS(), PS("cp"), PS("cp"), PS("cp"), PS()),
                            out_specs=PS())
    warmup = a.steps // 10 if a.warmup is None else a.warmup
    lr_min = a.lr / 10 if a.lr_min is None else a.lr_min
    sched = lambda count: lr_at(count, warmup, a.steps, a.lr, lr_min)
    decay = {k: v.ndim >= 2 for k, v in w.items()}  # longctx: no decay on the norms
    opt = optax.chain(optax.clip_by_global_norm(a.clip),
                      optax.adamw(sched, b1=0.9, b2=0.95, eps=1e-8, weight_decay=a.wd, mask=decay))
    state = opt.init(params)

    @jax.jit
    def step(p, st, x, t, pos, n_real):
        loss, g = jax.value_and_grad(loss_fn)(p, x, t, pos, n_real)
        upd, st = opt.update(g, st, p)
        return optax.apply_updates(p, upd), st, loss

    if pe == 0 and not a.json:
        print(f"jax_llama: {L} layers, dim {D}, heads {Hq}/{Hkv}, seq {a.seq} over CP {P} ({a.layout}, "
              f"{a.lowering}); {sum(v.size for v in w.values()) / 1e6:.2f}M params; jax {jax.__version__}", flush=True)
    t_all = time.time()
    for s in range(a.steps):
        t0 = time.time()
        tok, tgt = sample(a, s)
        x = np.where(pos_all >= 0, tok[np.maximum(pos_all, 0)], 0).astype(np.int32)
        t = np.where(pos_all >= 0, tgt[np.maximum(pos_all, 0)], -1).astype(np.int32)
        n_real = np.float32((tgt >= 0).sum())
        params, state, loss = step(params, state, glob(x, seq), glob(t, seq), pos_g, n_real)
        loss = float(loss)
        dt = time.time() - t0
        if pe == 0:
            rec = {"step": s + 1, "loss": loss, "tokens_per_s": a.seq / dt, "step_s": dt, "lr": float(sched(s))}
            if a.json:
                print(json.dumps(rec, separators=(",", ":")), flush=True)
            else:
                eta = (time.time() - t_all) / (s + 1) * (a.steps - s - 1)
                print(f"step {s + 1:5d}/{a.steps} | loss {loss:.4f} | {a.seq / dt:9.0f} tok/s | {dt:6.2f} s/step | "
                      f"ETA {eta:.0f}s", flush=True)


if __name__ == "__main__":
    main()
