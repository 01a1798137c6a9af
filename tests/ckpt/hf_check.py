"""transformers against longctx on the same folders (run by hf_transformers.sh in the peers'
venv). 1) LlamaForCausalLM.from_pretrained(our checkpoint) gives our loss on random sequences;
2) a model transformers made and saved with save_pretrained (F32, then BF16) loads in longctx
(`ckpt loss --hf`, the --init-from path) with transformers' loss.
usage: hf_check.py LONGCTX CKPT WORK"""
import subprocess, sys
import torch
from transformers import LlamaConfig, LlamaForCausalLM

longctx, ckpt, work = sys.argv[1:4]
torch.manual_seed(0)
worst = 0.0

def ours(path, ids, hf):
    cmd = [longctx, "ckpt", "loss", path, "--tokens", ",".join(map(str, ids))] + (["--hf"] if hf else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode: sys.exit("FAIL: %s: %s" % (" ".join(cmd[:4]), r.stderr))
    return float(r.stdout.split()[-1])

def theirs(m, ids):
    with torch.no_grad():
        t = torch.tensor([ids])
        return m(t, labels=t).loss.double().item()

def compare(what, m, path, hf, tol):
    global worst
    for n in (17, 64, 100):
        ids = torch.randint(0, m.config.vocab_size, (n,)).tolist()
        a, b = ours(path, ids, hf), theirs(m, ids)
        rel = abs(a - b) / abs(b)
        worst = max(worst, rel) if tol < 1e-3 else worst
        print("%-32s seq %3d: longctx %.7f transformers %.7f rel %.2e" % (what, n, a, b, rel))
        if not rel < tol: sys.exit("FAIL: %s differs (rel %.3g > %g)" % (what, rel, tol))

m = LlamaForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32, attn_implementation="eager").eval()
# a RoPE base other than the default, so that a config field transformers ignored would show
theta = getattr(m.config, "rope_theta", None) or m.config.rope_parameters["rope_theta"]
if theta != 30000.0: sys.exit("FAIL: transformers read rope_theta %r from our config.json, not 30000" % theta)
compare("our checkpoint in transformers", m, ckpt, False, 1e-5)

c = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=512, rope_theta=50000.0, rms_norm_eps=1e-5,
                tie_word_embeddings=False)
hm = LlamaForCausalLM(c).eval()
with torch.no_grad():  # norms away from 1 so that they matter
    for p in hm.parameters():
        if p.dim() == 1: p.add_(0.1 * torch.randn_like(p))
hm.save_pretrained(work + "/hf_f32", safe_serialization=True)
compare("save_pretrained F32 in longctx", hm, work + "/hf_f32", True, 1e-5)
hb = hm.to(torch.bfloat16)
hb.save_pretrained(work + "/hf_bf16", safe_serialization=True)
# the reference: the bf16 weights computed in fp32
hm32 = LlamaForCausalLM.from_pretrained(work + "/hf_bf16", torch_dtype=torch.float32, attn_implementation="eager").eval()
compare("save_pretrained BF16 in longctx", hm32, work + "/hf_bf16", True, 1e-5)
print("PASS: worst relative loss difference %.2e" % worst)
