"""longctx ring attention for JAX.

    import longctx.jax as lcj
    lcj.initialize()                      # first, before JAX touches a device
    xs = lcj.shard_sequence(x, axis=1, layout="zigzag", cp=P)
    out = lcj.ring_attention(q, k, v, axis_name="cp", causal=True)   # inside shard_map

Each process is one longctx PE (`longctx launch -n P -- python train.py`, or mpirun) with one
JAX CPU device; the shard_map axis named `axis_name` is the CP team. The attention runs in the
C library (liblongctx_jax.so, an XLA FFI handler): KV blocks travel over longctx's runtime
(one-sided puts by default), not over XLA's collectives. Gradients are the exact ring
backward (residuals: the output and its log-sum-exp, never the attention matrix).
"""
import atexit
import ctypes
import functools
import math
import os
import pathlib
import socket
import sys

import numpy as np
import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["initialize", "shard_sequence", "unshard_sequence", "ring_attention", "layout_positions",
           "my_pe", "n_pes"]

_LAYOUTS = ("zigzag", "contiguous", "striped")
_LOWERINGS = ("auto", "one_sided", "two_sided", "zero_copy")
_ALGOS = ("ring", "allgather", "ulysses")  # and "hybrid:U"
_lib = None


def _load():
    """The C engine, loaded once; its FFI targets registered with XLA."""
    global _lib
    if _lib is not None:
        return _lib
    here = pathlib.Path(__file__).with_name("liblongctx_jax.so")
    path = os.environ.get("LONGCTX_JAX_LIB") or str(here)
    if not os.path.exists(path):
        raise RuntimeError(f"longctx.jax: the engine {path} is missing (pip install ./python builds it; "
                           "LONGCTX_JAX_LIB names a build tree's liblongctx_jax.so)")
    lib = ctypes.CDLL(path)
    lib.lcj_last_error.restype = ctypes.c_char_p
    lib.lcj_backend.restype = ctypes.c_char_p
    lib.lcj_broadcast.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
    lib.lcj_layout_positions.argtypes = [ctypes.c_char_p, ctypes.c_longlong, ctypes.c_int, ctypes.c_int,
                                         ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    for name in ("fwd", "bwd"):
        jax.ffi.register_ffi_target(f"longctx_ring_{name}", jax.ffi.pycapsule(getattr(lib, f"lcj_ring_{name}")),
                                    platform="cpu")
    _lib = lib
    return lib


def _error(lib):
    return lib.lcj_last_error().decode(errors="replace")


def initialize():
    """Joins this process's longctx world (a world of one without a launcher) and, with more
    than one PE, starts jax.distributed with matching process ids: PE 0 picks a free
    coordinator port and broadcasts it over the world, and JAX's CPU collectives are set to
    gloo. Call it before anything asks JAX for its devices. Returns (pe, n_pes)."""
    lib = _load()
    n = lib.lcj_init()
    if n < 0:
        raise RuntimeError(f"longctx.jax.initialize: {_error(lib)}")
    pe = lib.lcj_my_pe()
    _end_with_the_process(lib, pe)
    if n > 1 and not jax.distributed.is_initialized():
        buf = ctypes.create_string_buffer(256)
        if pe == 0:
            host = "127.0.0.1"
            if lib.lcj_backend().decode() == "mpi":  # the other PEs may be on other hosts
                host = socket.gethostbyname(socket.gethostname())
            with socket.socket() as s:
                s.bind((host, 0))
                buf.value = f"{host}:{s.getsockname()[1]}".encode()
        if lib.lcj_broadcast(buf, 256, 0):
            raise RuntimeError(f"longctx.jax.initialize: {_error(lib)}")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=buf.value.decode(), num_processes=n, process_id=pe)
    return pe, n


_ending = []


def _end_with_the_process(lib, pe):
    """A PE leaves the world when its process ends: by lc_world_finalize after a normal exit,
    by an abort that names the exception after an uncaught one (its peers would otherwise
    wait for calls it will never make)."""
    if _ending:
        return
    _ending.append(True)
    lib.lcj_abort.argtypes = [ctypes.c_char_p]
    previous = sys.excepthook

    def hook(kind, value, tb):
        _ending.append("aborted")
        lib.lcj_abort(f"PE {pe}: {kind.__name__}: {value}"[:900].encode(errors="replace"))
        previous(kind, value, tb)

    sys.excepthook = hook
    atexit.register(lambda: None if "aborted" in _ending else lib.lcj_finalize())


def my_pe():
    return _load().lcj_my_pe()


def n_pes():
    return _load().lcj_n_pes()


@functools.lru_cache(maxsize=None)
def layout_positions(layout, seq_len, cp):
    """(cp, rows) int32: the global position of each row of each PE's shard in the layout's
    order, -1 for padding (the map longctx's CP core uses)."""
    if layout not in _LAYOUTS:
        raise ValueError(f"layout {layout!r}: one of {', '.join(_LAYOUTS)}")
    lib = _load()
    n_pad = ctypes.c_int(0)
    if lib.lcj_layout_positions(layout.encode(), seq_len, cp, 0, None, ctypes.byref(n_pad)) < 0:
        raise ValueError(f"longctx.jax: {_error(lib)}")
    pos = np.full((cp, n_pad.value), -1, np.int32)
    for pe in range(cp):
        if lib.lcj_layout_positions(layout.encode(), seq_len, cp, pe, pos[pe].ctypes.data, ctypes.byref(n_pad)) < 0:
            raise ValueError(f"longctx.jax: {_error(lib)}")
    pos.setflags(write=False)
    return pos


def shard_sequence(x, axis=1, layout="zigzag", cp=1):
    """Global token order -> layout order: the result's `axis` holds PE 0's rows, then PE 1's,
    ... (each cp-th slice is one shard_map shard), padded with zeros where the layout needs
    more rows than x has tokens. Pass x.shape[axis] as ring_attention's seq_len when padded."""
    seq = x.shape[axis]
    pos = layout_positions(layout, seq, cp).reshape(-1)
    take = jnp.take(jnp.asarray(x), jnp.asarray(np.maximum(pos, 0)), axis=axis)
    if (pos < 0).any():
        keep = jnp.asarray(pos >= 0).reshape([-1 if d == axis % x.ndim else 1 for d in range(x.ndim)])
        take = jnp.where(keep, take, jnp.zeros((), take.dtype))
    return take


def unshard_sequence(y, axis=1, layout="zigzag", cp=1, seq_len=None):
    """Layout order -> global token order, dropping the padding (seq_len: the true length,
    default y.shape[axis], which means no padding)."""
    seq = y.shape[axis] if seq_len is None else seq_len
    pos = layout_positions(layout, seq, cp).reshape(-1)
    if pos.size != y.shape[axis]:
        raise ValueError(f"unshard_sequence: {y.shape[axis]} rows along axis {axis}, but {layout} over {cp} PEs "
                         f"holds {pos.size} rows for seq_len {seq}")
    inv = np.empty(seq, np.int64)
    inv[pos[pos >= 0]] = np.nonzero(pos >= 0)[0]
    return jnp.take(jnp.asarray(y), jnp.asarray(inv), axis=axis)


def _axis_size(axis_name):
    try:
        return lax.axis_size(axis_name)
    except NameError as e:
        raise ValueError(f"ring_attention: axis {axis_name!r} is not a shard_map axis here: call it inside "
                         f"jax.shard_map over a mesh with that axis") from e


def _attrs(cfg):
    causal, window, has_doc, seq_len, scale, layout, lowering, algo, cp = cfg
    return dict(causal=np.int64(causal), window=np.int64(window), has_doc=np.int64(has_doc),
                seq_len=np.int64(seq_len), scale=np.float32(scale), layout=layout, lowering=lowering, algo=algo,
                cp=np.int64(cp))


def _varying_like(xs, like):
    """FFI results vary over the same shard_map axes as `like` (so shard_map's varying-axes
    check passes): jax >= 0.9 keeps them in manual_axis_type, earlier ones in vma."""
    t = jax.typeof(like)
    mat = getattr(t, "manual_axis_type", None)
    axes = tuple(sorted(mat.varying)) if mat is not None else tuple(sorted(getattr(t, "vma", ()) or ()))
    if not axes:
        return xs
    cast = getattr(lax, "pcast", None)
    return [cast(x, axes, to="varying") if cast else lax.pvary(x, axes) for x in xs]


def _fwd_call(cfg, q, k, v, doc, idx):
    B, T, N, _ = q.shape
    outs = [jax.ShapeDtypeStruct(q.shape, q.dtype)]
    if q.dtype == jnp.bfloat16:
        outs.append(jax.ShapeDtypeStruct(q.shape, jnp.float32))
    outs.append(jax.ShapeDtypeStruct((B, T, N), jnp.float32))
    res = jax.ffi.ffi_call("longctx_ring_fwd", outs, vmap_method="sequential")(q, k, v, doc, idx, **_attrs(cfg))
    res = _varying_like(res, q)
    if q.dtype == jnp.bfloat16:
        return res[0], res[1], res[2]
    return res[0], res[0], res[1]  # f32: the output is its own fp32 copy


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _ring(cfg, q, k, v, doc, idx):
    return _fwd_call(cfg, q, k, v, doc, idx)[0]


def _ring_fwd(cfg, q, k, v, doc, idx):
    out, out32, lse = _fwd_call(cfg, q, k, v, doc, idx)
    return out, (q, k, v, doc, idx, out32, lse)


def _ring_bwd(cfg, res, g):
    q, k, v, doc, idx, out32, lse = res
    outs = [jax.ShapeDtypeStruct(x.shape, jnp.float32) for x in (q, k, v)]
    dq, dk, dv = jax.ffi.ffi_call("longctx_ring_bwd", outs, vmap_method="sequential")(
        q, k, v, doc, idx, out32, lse, g.astype(q.dtype), **_attrs(cfg))
    dq, = _varying_like([dq], q)
    dk, = _varying_like([dk], k)
    dv, = _varying_like([dv], v)
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None, None


_ring.defvjp(_ring_fwd, _ring_bwd)


def ring_attention(q, k, v, *, axis_name="cp", causal=True, window=None, doc_ids=None, layout="zigzag",
                   lowering="auto", algo="ring", scale=None, seq_len=None):
    """Exact attention over the whole sequence for this shard's queries, inside shard_map.

    q (B, T, N, H), k and v (B, T, K, H) with N a multiple of K, float32 or bfloat16, as
    jax.nn.dot_product_attention takes them, each one shard of a sequence that
    shard_sequence put in `layout` order over the `axis_name` axis. doc_ids (B, T) int32:
    packed documents (no attention across). window: a left sliding window (keys with
    q_pos - k_pos < window). seq_len: the true sequence length when shard_sequence padded
    (default: T x the axis size). lowering: how KV blocks travel (auto, one_sided,
    two_sided, zero_copy); algo: ring, allgather, ulysses (all-to-all to head shards: the heads
    must split over the axis) or "hybrid:U" (Ulysses over U neighbouring shards x the ring over
    the groups; U divides the axis size and the heads). Other mesh axes (DP, ...) are CP groups: the
    CP axis must be the mesh's innermost over the processes in PE order (mesh devices
    jax.devices() reshaped to (..., cp)), so that each group is cp consecutive PEs."""
    if layout not in _LAYOUTS:
        raise ValueError(f"ring_attention: layout {layout!r}: one of {', '.join(_LAYOUTS)}")
    if lowering not in _LOWERINGS:
        raise ValueError(f"ring_attention: lowering {lowering!r}: one of {', '.join(_LOWERINGS)}")
    hyb = isinstance(algo, str) and algo.startswith("hybrid:") and algo[7:].isdigit() and int(algo[7:]) >= 1
    if algo not in _ALGOS and not hyb:
        raise ValueError(f"ring_attention: algo {algo!r}: one of {', '.join(_ALGOS)} or hybrid:U")
    if window is not None and window < 1:
        raise ValueError(f"ring_attention: window {window} must be >= 1 (or None)")
    for name, a, rank in (("q", q, 4), ("k", k, 4), ("v", v, 4)):
        if a.ndim != rank:
            raise ValueError(f"ring_attention: {name} has shape {a.shape}; expected (batch, tokens, heads, head_dim)")
    if q.dtype not in (jnp.float32, jnp.bfloat16) or k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(f"ring_attention: q, k, v are {q.dtype}, {k.dtype}, {v.dtype}: float32 or bfloat16, all alike")
    lib = _load()
    world = lib.lcj_n_pes()
    if world < 1:
        raise RuntimeError("ring_attention: this process is not in a longctx world: call longctx.jax.initialize() "
                           "first (and start the processes with `longctx launch -n P` or mpirun)")
    P = _axis_size(axis_name)
    if world % P:
        raise ValueError(f"ring_attention: the shard_map axis {axis_name!r} has {P} shards, which does not divide the "
                         f"longctx world's {world} PEs")
    B, T = q.shape[0], q.shape[1]
    seq = T * P if seq_len is None else int(seq_len)
    if doc_ids is None:
        doc = jnp.zeros((B, T), jnp.int32)
    else:
        if doc_ids.shape != (B, T) or doc_ids.dtype != jnp.int32:
            raise ValueError(f"ring_attention: doc_ids is {doc_ids.dtype}{doc_ids.shape}; expected int32{(B, T)}")
        doc = doc_ids
    sc = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    cfg = (int(bool(causal)), int(window or 0), int(doc_ids is not None), seq, sc, layout, lowering, algo, P)
    idx = lax.axis_index(axis_name).astype(jnp.int32)
    return _ring(cfg, q, k, v, doc, idx)
