"""JAX's own ring attention, the baseline of bench/jax: written the way MaxText and the source
system write it. shard_map over the CP axis, the sequence in zigzag order, K and V travelling
one hop per step with lax.ppermute, the blocks merged exactly with the log-sum-exp rule, and a
custom_vjp whose backward runs the ring again: dQ accumulates at home while dK and dV travel
with their K and V block and arrive home after a full turn. Each (query chunk, KV chunk) pair
is skipped, computed in full or computed with the causal mask by its global positions
(lax.switch), as longctx's ring does, query rows in blocks of QB so that no score matrix of a
whole chunk pair exists. Plain jax.numpy: XLA compiles it for the CPU."""
import functools

import jax
import jax.numpy as jnp
from jax import lax


def _scores(q, k, scale):
    # q [c, K, G, H], k [c, K, H] -> [K, G, cq, ck]
    return jnp.einsum("qkgh,skh->kgqs", q, k) * scale


def _mask(qpos, kpos):
    return (qpos[:, None] >= kpos[None, :])[None, None]


def _kind(qpos, kpos):
    """0: every key after every query (skip), 1: every key before (full), 2: causal."""
    return jnp.where(kpos[0] > qpos[-1], 0, jnp.where(kpos[-1] < qpos[0], 1, 2))


QB = 512  # query rows per block: the score matrix of a chunk pair never exists whole


def _blocks(t):
    n = t.shape[0]
    b = QB if n % QB == 0 else n
    return t.reshape((n // b, b) + t.shape[1:])


def _fwd_block(q, k, v, qpos, kpos, o, lse, scale):
    def compute(causal):
        def one(args):
            q, qpos, o, lse = args
            s = _scores(q, k, scale)
            if causal:
                s = jnp.where(_mask(qpos, kpos), s, -jnp.inf)
            m = jnp.max(s, axis=-1)
            p = jnp.exp(s - m[..., None])
            l = jnp.sum(p, axis=-1)
            ob = jnp.einsum("kgqs,skh->qkgh", p, v) / jnp.transpose(l, (2, 0, 1))[..., None]
            lb = jnp.transpose(m + jnp.log(l), (2, 0, 1))
            ln = jnp.logaddexp(lse, lb)
            return o * jnp.exp(lse - ln)[..., None] + ob * jnp.exp(lb - ln)[..., None], ln

        def f(o, lse):
            o2, l2 = lax.map(one, (_blocks(q), _blocks(qpos), _blocks(o), _blocks(lse)))
            return o2.reshape(o.shape), l2.reshape(lse.shape)
        return f
    return lax.switch(_kind(qpos, kpos), [lambda o, l: (o, l), compute(False), compute(True)], o, lse)


def _bwd_block(q, k, v, qpos, kpos, do, lse, delta, dq, dk, dv, scale):
    def compute(causal):
        def one(carry, args):
            dk, dv = carry
            q, qpos, do, lse, delta, dq = args
            s = _scores(q, k, scale)
            if causal:
                s = jnp.where(_mask(qpos, kpos), s, -jnp.inf)
            p = jnp.exp(s - jnp.transpose(lse, (1, 2, 0))[..., None])
            dv = dv + jnp.einsum("kgqs,qkgh->skh", p, do)
            dp = jnp.einsum("qkgh,skh->kgqs", do, v)
            ds = p * (dp - jnp.transpose(delta, (1, 2, 0))[..., None]) * scale
            dq = dq + jnp.einsum("kgqs,skh->qkgh", ds, k)
            dk = dk + jnp.einsum("kgqs,qkgh->skh", ds, q)
            return (dk, dv), dq

        def f(dq, dk, dv):
            (dk, dv), dq2 = lax.scan(one, (dk, dv), tuple(_blocks(t) for t in (q, qpos, do, lse, delta, dq)))
            return dq2.reshape(dq.shape), dk, dv
        return f
    return lax.switch(_kind(qpos, kpos), [lambda a, b, c: (a, b, c), compute(False), compute(True)], dq, dk, dv)


def _halves(t, c):
    return t[:c], t[c:]


def _ring_fwd_impl(q, k, v, pos, axis, P, scale):
    """q [n, K, G, H] (n = 2c rows: two zigzag chunks), k v [n, K, H], pos [n]."""
    c = q.shape[0] // 2
    o = jnp.zeros_like(q)
    lse = jnp.full_like(q[..., 0], -jnp.inf)  # from q: it varies over the axis like q
    kv = (k, v, pos)
    perm = [(i, (i + 1) % P) for i in range(P)]
    for step in range(P):
        nxt = lax.ppermute(kv, axis, perm) if step + 1 < P else None
        ks, vs, kps = (_halves(t, c) for t in kv)
        os_, ls_ = [], []
        for qi in range(2):
            qq, qp = _halves(q, c)[qi], _halves(pos, c)[qi]
            oo, ll = _halves(o, c)[qi], _halves(lse, c)[qi]
            for ki in range(2):
                oo, ll = _fwd_block(qq, ks[ki], vs[ki], qp, kps[ki], oo, ll, scale)
            os_.append(oo)
            ls_.append(ll)
        o, lse = jnp.concatenate(os_), jnp.concatenate(ls_)
        kv = nxt
    return o, lse


def make_ring(axis, P, scale):
    @jax.custom_vjp
    def ring(q, k, v, pos):
        return _ring_fwd_impl(q, k, v, pos, axis, P, scale)[0]

    def fwd(q, k, v, pos):
        o, lse = _ring_fwd_impl(q, k, v, pos, axis, P, scale)
        return o, (q, k, v, pos, o, lse)

    def bwd(res, do):
        q, k, v, pos, o, lse = res
        c = q.shape[0] // 2
        delta = jnp.sum(do * o, axis=-1)
        dq = jnp.zeros_like(q)
        dk, dv = jnp.zeros_like(k), jnp.zeros_like(v)
        perm = [(i, (i + 1) % P) for i in range(P)]
        kv = (k, v, pos, dk, dv)
        for step in range(P):
            kk, vv, kp, dk, dv = kv
            ks, vs, kps = _halves(kk, c), _halves(vv, c), _halves(kp, c)
            dks, dvs = list(_halves(dk, c)), list(_halves(dv, c))
            dqs = []
            for qi in range(2):
                sl = lambda t: _halves(t, c)[qi]
                dqq = sl(dq)
                for ki in range(2):
                    dqq, dks[ki], dvs[ki] = _bwd_block(sl(q), ks[ki], vs[ki], sl(pos), kps[ki], sl(do), sl(lse),
                                                       sl(delta), dqq, dks[ki], dvs[ki], scale)
                dqs.append(dqq)
            dq = jnp.concatenate(dqs)
            # dK, dV travel with their block: after P hops they are home
            kv = lax.ppermute((kk, vv, kp, jnp.concatenate(dks), jnp.concatenate(dvs)), axis, perm)
        return dq, kv[3], kv[4], None

    ring.defvjp(fwd, bwd)
    return ring


@functools.lru_cache(maxsize=None)
def zigzag_order(S, P):
    import numpy as np
    c = S // (2 * P)
    return np.concatenate([np.concatenate([np.arange(r * c, (r + 1) * c), np.arange((2 * P - 1 - r) * c, (2 * P - r) * c)])
                           for r in range(P)])
