#!/usr/bin/env python3
"""Makes corrupt copies of a good checkpoint folder, one per case (plain python3, no venv).
usage: corrupt.py GOOD_CKPT OUT_DIR  -> OUT_DIR/<case>/ and prints '<case>\t<expected message part>'"""
import json, os, shutil, struct, sys

good, out = sys.argv[1], sys.argv[2]

def read_st(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n])
    meta = hdr.pop("__metadata__", None)
    data = b[8 + n:]
    ts = [(k, v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in hdr.items()]
    return meta, ts

def write_st(p, meta, ts, mangle=None):
    hdr, data = {}, b""
    if meta is not None: hdr["__metadata__"] = meta
    for name, dt, shape, raw in ts:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr)
    if mangle: h = mangle(h)
    h = h.encode()
    open(p, "wb").write(struct.pack("<Q", len(h)) + h + data)

cases = []
def case(name, want, fn):
    d = os.path.join(out, name)
    shutil.copytree(good, d)
    fn(d)
    cases.append((name, want))

M, T, C = "model.safetensors", "training_state.safetensors", "config.json"
def edit(fname, f):
    def go(d):
        meta, ts = read_st(os.path.join(d, fname))
        r = f(meta, ts)
        if r is None: r = (meta, ts, None)
        write_st(os.path.join(d, fname), *r)
    return go
def raw(fname, f):
    def go(d):
        p = os.path.join(d, fname)
        b = open(p, "rb").read()
        open(p, "wb").write(f(b))
    return go

def set_tensor(ts, name, **kw):
    for i, (n, dt, sh, r) in enumerate(ts):
        if n == name:
            ts[i] = (n, kw.get("dtype", dt), kw.get("shape", sh), kw.get("raw", r))
            return
    raise KeyError(name)

case("header_len_beyond_file", "header length", raw(M, lambda b: struct.pack("<Q", len(b) + 100) + b[8:]))
case("empty_file", "shorter than the 8-byte header length", raw(M, lambda b: b""))
case("truncated_data", "tensor \"lm_head.weight\": data_offsets", raw(M, lambda b: b[:-100]))
case("trailing_bytes", "data bytes but the file has", raw(M, lambda b: b + b"\0" * 8))
def out_of_range(h):
    j = json.loads(h); j["model.norm.weight"]["data_offsets"] = [10**9, 10**9 + 256]; return json.dumps(j)
case("offsets_out_of_range", "tensor \"model.norm.weight\": data_offsets [1000000000", edit(M, lambda m, t: (m, t, out_of_range)))
def overlap(h):
    j = json.loads(h); j["model.norm.weight"]["data_offsets"] = j["model.layers.1.mlp.down_proj.weight"]["data_offsets"][:]
    j["model.norm.weight"]["data_offsets"][1] = j["model.norm.weight"]["data_offsets"][0] + 256
    return json.dumps(j)
case("offsets_overlap", "overlap", edit(M, lambda m, t: (m, t, overlap)))
case("wrong_dtype", "tensor \"model.norm.weight\" has dtype I32, expected F32", edit(M, lambda m, t: set_tensor(t, "model.norm.weight", dtype="I32")))
case("wrong_shape", "tensor \"model.layers.0.self_attn.q_proj.weight\" has shape [32, 128], the model needs [64, 64]",
     edit(M, lambda m, t: set_tensor(t, "model.layers.0.self_attn.q_proj.weight", shape=[32, 128])))
case("missing_tensor", "tensor \"model.norm.weight\" is missing", edit(M, lambda m, t: t.pop([x[0] for x in t].index("model.norm.weight")) and None))
case("unknown_tensor", "unknown tensor \"model.layers.7.mlp.up_proj.weight\"",
     edit(M, lambda m, t: t.append(("model.layers.7.mlp.up_proj.weight", "F32", [2], b"\0" * 8))))
case("bad_json_header", "bad JSON", edit(M, lambda m, t: (m, t, lambda h: h[:-1] + ",}")))
case("duplicate_tensor", "duplicate key \"lm_head.weight\"",
     edit(M, lambda m, t: (m, t, lambda h: h[:-1] + ", \"lm_head.weight\": " + json.dumps(json.loads(h)["lm_head.weight"]) + "}")))
case("bad_config_json", "config.json: bad JSON", raw(C, lambda b: b[:-10]))
case("config_field", "field \"hidden_act\"", raw(C, lambda b: b.replace(b"\"silu\"", b"\"relu\"")))
case("state_missing_step", "metadata field \"step\" is missing", edit(T, lambda m, t: (m.pop("step"), None)[1]))
case("state_bad_position", "metadata field \"data_position\"", edit(T, lambda m, t: m.update(data_position="-3")))
case("state_truncated", "training_state.safetensors", raw(T, lambda b: b[:len(b) // 2]))
case("state_missing_moment", "tensor \"exp_avg_sq.model.norm.weight\" is missing",
     edit(T, lambda m, t: t.pop([x[0] for x in t].index("exp_avg_sq.model.norm.weight")) and None))
case("state_missing_file", "training_state.safetensors", lambda d: os.remove(os.path.join(d, T)))
for n, w in cases: print(n + "\t" + w)
