"""Shared by the JAX binding's tests: a float64 reference and the error measure."""
import os
import sys

import numpy as np

# with LONGCTX_JAX_LIB (a build tree's engine) the tree's package too; without, the installed one
if os.environ.get("LONGCTX_JAX_LIB"):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))


def _probs(q, k, v, causal, window, doc, scale):
    """float64 attention probabilities p (B, N, S, S) over global token order, with k and v
    repeated to the query heads, and the scale."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    B, S, N, H = q.shape
    rep = N // k.shape[2]
    k = np.repeat(k, rep, axis=2)
    v = np.repeat(v, rep, axis=2)
    sc = 1 / np.sqrt(H) if scale is None else scale
    s = np.einsum("bqnh,bknh->bnqk", q, k) * sc
    pos = np.arange(S)
    allow = np.ones((B, S, S), bool)
    if causal:
        allow &= pos[None, :, None] >= pos[None, None, :]
    if window:
        allow &= pos[None, :, None] - pos[None, None, :] < window
    if doc is not None:
        doc = np.asarray(doc)
        allow &= doc[:, :, None] == doc[:, None, :]
    s = np.where(allow[:, None], s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    p = np.exp(s - m)
    den = p.sum(axis=-1, keepdims=True)
    p = np.where(den > 0, p / np.where(den > 0, den, 1), 0)
    return p, k, v, sc


def reference(q, k, v, causal=True, window=None, doc=None, scale=None):
    """float64 attention over global token order: q (B, S, N, H), k v (B, S, K, H)."""
    p, _, vr, _ = _probs(q, k, v, causal, window, doc, scale)
    return np.einsum("bnqk,bknh->bqnh", p, vr)


def rel_err(got, want):
    """max |got - want| / max |want|; inf when got has a NaN or an inf."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"shape {got.shape} != {want.shape}")
    if not np.all(np.isfinite(got)):
        return float("inf")
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def inputs(rng, B, S, N, K, H, dtype):
    q = rng.standard_normal((B, S, N, H)).astype(np.float32)
    k = rng.standard_normal((B, S, K, H)).astype(np.float32)
    v = rng.standard_normal((B, S, K, H)).astype(np.float32)
    if dtype == "bfloat16":
        import ml_dtypes
        q, k, v = (x.astype(ml_dtypes.bfloat16) for x in (q, k, v))
    return q, k, v


def docs(rng, B, S, n_docs):
    """(B, S) int32 document ids: n_docs runs of random lengths."""
    out = np.zeros((B, S), np.int32)
    for b in range(B):
        cuts = np.sort(rng.choice(np.arange(1, S), n_docs - 1, replace=False))
        out[b] = np.searchsorted(cuts, np.arange(S), side="right")
    return out


def reference_grads(q, k, v, dout, causal=True, window=None, doc=None, scale=None):
    """float64 (dq, dk, dv) of sum(out * dout)."""
    p, kr, vr, sc = _probs(q, k, v, causal, window, doc, scale)
    q, dout = np.asarray(q, np.float64), np.asarray(dout, np.float64)
    B, S, N, H = q.shape
    K = np.asarray(k).shape[2]
    rep = N // K
    do = dout.transpose(0, 2, 1, 3)  # b n q h
    dv = np.einsum("bnqk,bnqh->bknh", p, do)
    dp = np.einsum("bnqh,bknh->bnqk", do, vr)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = np.einsum("bnqk,bknh->bqnh", ds, kr) * sc
    dk = np.einsum("bnqk,bqnh->bknh", ds, q) * sc
    dk = dk.reshape(B, S, K, rep, H).sum(axis=3)
    dv = dv.reshape(B, S, K, rep, H).sum(axis=3)
    return dq, dk, dv
