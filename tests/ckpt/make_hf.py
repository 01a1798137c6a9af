#!/usr/bin/env python3
"""Hand-made Hugging Face folders (as save_pretrained writes them, safetensors form) from a
longctx checkpoint, with plain python3:
  OUT/sharded   config.json (transformers-style extras, no head_dim), two shards + index,
                BF16 tensors except the MLP weights in F16, a stale rotary_emb.inv_freq
  OUT/sharded_f32  the same values (bf16/f16-rounded) in one F32 file: the expected result
  OUT/tied      tie_word_embeddings true, no lm_head.weight, BF16
  OUT/tied_f32  the expected result: lm_head = the embedding, untied, F32
  OUT/bad_index_missing_shard, OUT/bad_index_wrong_shard: broken indexes
usage: make_hf.py CKPT OUT"""
import json, os, struct, sys

src, out = sys.argv[1], sys.argv[2]

def read_st(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n]); hdr.pop("__metadata__", None)
    d = b[8 + n:]
    return {k: (v["shape"], list(struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4),
                                              d[v["data_offsets"][0]:v["data_offsets"][1]]))) for k, v in hdr.items()}

def bf16(x):
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return struct.pack("<H", u), struct.unpack("<f", struct.pack("<I", u << 16))[0]

def f16(x):
    b = struct.pack("<e", x)
    return b, struct.unpack("<e", b)[0]

def write_st(p, ts):
    hdr, data = {"__metadata__": {"format": "pt"}}, b""
    for name, (dt, shape, raw) in ts.items():
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    open(p, "wb").write(struct.pack("<Q", len(h)) + h + data)

cfg = json.load(open(os.path.join(src, "config.json")))
t = read_st(os.path.join(src, "model.safetensors"))

def hf_config(tied, dtype):
    c = {"_name_or_path": "hand-made", "architectures": ["LlamaForCausalLM"], "attention_bias": False,
         "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
         "hidden_size": cfg["hidden_size"], "initializer_range": 0.02, "intermediate_size": cfg["intermediate_size"],
         "max_position_embeddings": 4096, "mlp_bias": False, "model_type": "llama",
         "num_attention_heads": cfg["num_attention_heads"], "num_hidden_layers": cfg["num_hidden_layers"],
         "num_key_value_heads": cfg["num_key_value_heads"], "pretraining_tp": 1, "rms_norm_eps": cfg["rms_norm_eps"],
         "rope_scaling": None, "rope_theta": cfg["rope_theta"], "tie_word_embeddings": tied, "torch_dtype": dtype,
         "transformers_version": "4.44.0", "use_cache": True, "vocab_size": cfg["vocab_size"]}
    return json.dumps(c, indent=2)

def convert(name, vals):
    conv = f16 if ".mlp." in name else bf16
    pairs = [conv(v) for v in vals]
    return ("F16" if conv is f16 else "BF16"), b"".join(p[0] for p in pairs), [p[1] for p in pairs]

def mk(d, cfgtxt):
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "config.json"), "w").write(cfgtxt)

# sharded, mixed BF16/F16
d = os.path.join(out, "sharded"); mk(d, hf_config(False, "bfloat16"))
e = os.path.join(out, "sharded_f32"); mk(e, hf_config(False, "float32"))
names = list(t)
half = len(names) // 2
shards = {"model-00001-of-00002.safetensors": {}, "model-00002-of-00002.safetensors": {}}
expected, wmap = {}, {}
for i, n in enumerate(names):
    shape, vals = t[n]
    dt, raw, rounded = convert(n, vals)
    fn = "model-00001-of-00002.safetensors" if i < half else "model-00002-of-00002.safetensors"
    shards[fn][n] = (dt, shape, raw)
    wmap[n] = fn
    expected[n] = ("F32", shape, struct.pack("<%df" % len(rounded), *rounded))
# older transformers saved the RoPE buffer: ignored on load
shards["model-00002-of-00002.safetensors"]["model.layers.0.self_attn.rotary_emb.inv_freq"] = ("F32", [8], b"\0" * 32)
wmap["model.layers.0.self_attn.rotary_emb.inv_freq"] = "model-00002-of-00002.safetensors"
for fn, ts in shards.items(): write_st(os.path.join(d, fn), ts)
json.dump({"metadata": {"total_size": 0}, "weight_map": wmap}, open(os.path.join(d, "model.safetensors.index.json"), "w"), indent=2)
write_st(os.path.join(e, "model.safetensors"), expected)

# tied
d = os.path.join(out, "tied"); mk(d, hf_config(True, "bfloat16"))
e = os.path.join(out, "tied_f32"); mk(e, hf_config(False, "float32"))
ts, ex = {}, {}
for n in names:
    if n == "lm_head.weight": continue
    shape, vals = t[n]
    pairs = [bf16(v) for v in vals]
    ts[n] = ("BF16", shape, b"".join(p[0] for p in pairs))
    ex[n] = ("F32", shape, struct.pack("<%df" % len(pairs), *[p[1] for p in pairs]))
ex["lm_head.weight"] = ex["model.embed_tokens.weight"]
write_st(os.path.join(d, "model.safetensors"), ts)
write_st(os.path.join(e, "model.safetensors"), ex)

# broken indexes
import shutil
for bad in ("bad_index_missing_shard", "bad_index_wrong_shard"):
    b = os.path.join(out, bad)
    shutil.copytree(os.path.join(out, "sharded"), b)
    w = dict(wmap)
    if bad == "bad_index_missing_shard": w["model.norm.weight"] = "model-00003-of-00002.safetensors"
    else: w[names[0]] = "model-00002-of-00002.safetensors"
    json.dump({"metadata": {}, "weight_map": w}, open(os.path.join(b, "model.safetensors.index.json"), "w"))
