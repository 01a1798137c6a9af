#!/usr/bin/env python3
"""The training stage of scripts/gpu-check: `longctx train --device cuda` on this GPU, within
--budget seconds, one JSON line per check or run on stdout (report.py reads them from
OUTDIR/train.jsonl):

1. correctness of the first step, the same seed giving the same weights and tokens everywhere
   (the `small` model, head dim 64, 2K tokens):
   - fp32 on the GPU (fp32 reference attention, GEMMs without TF32) against the CPU's fp32:
     first-step loss within 1e-5 relative;
   - bf16 on the GPU against the CPU's bf16: within 1e-2;
   - CP 2 (two PEs on the one GPU) against CP 1 on the GPU, fp32: within 1e-5.
2. speed, bf16, median step time of the steps after the first:
   - `small` at 16K tokens over CP 2 (two PEs sharing the GPU): tokens/s, MFU, GPU memory;
   - `small` at 16K on one PE beside transformers' LlamaForCausalLM (sdpa, bf16, AdamW) on the
     same GPU from the checkpoint that run wrote (the same weights) and the same token file:
     target longctx >= 1.0x transformers' tokens/s;
   - the Llama-3-8B-shaped layer (dim 4096, 32/8 heads, ffn 14336, vocab 128256; 1 layer,
     CP 1, recompute) at 64K tokens: tokens/s, MFU, GPU memory.
Each run has its own timeout; a run that does not fit in what is left is "not measured", never
met. Exit 1 when a correctness check is not met or a run failed or timed out, else 0 (the
speed targets are reported, met or not, and do not fail it)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def emit(**kw):
    print(json.dumps(kw), flush=True)


class Runner:
    def __init__(self, args):
        self.a = args
        self.t_end = time.time() + args.budget
        self.failed = False

    def left(self):
        return self.t_end - time.time()

    def train(self, tag, extra, steps, seq, timeout):
        """longctx train; returns the metrics rows, or None (with a row saying why)."""
        out = os.path.join(self.a.work, tag)
        cmd = [self.a.longctx, "train", "--data", self.a.data, "--seq", str(seq), "--steps", str(steps),
               "--warmup", "0", "--eval-every", "0", "--eval-seqs", "1", "--quiet", "--seed", "11",
               "--out", out] + extra
        t = min(timeout, self.left() - 3)
        if t < 5:
            emit(kind="train_run", name=tag, status="not measured", why="no time left", cmd=" ".join(cmd))
            return None
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=t)
        except subprocess.TimeoutExpired:
            self.failed = True
            emit(kind="train_run", name=tag, status="timed out", seconds=round(t), cmd=" ".join(cmd))
            return None
        if p.returncode != 0:
            self.failed = True
            emit(kind="train_run", name=tag, status="failed", rc=p.returncode, cmd=" ".join(cmd),
                 why=(p.stderr or p.stdout).strip().splitlines()[-3:])
            return None
        with open(os.path.join(out, "metrics.jsonl")) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return rows

    def compare(self, name, a, b, tol):
        if not a or not b:
            emit(kind="train_check", name=name, status="not measured", detail="a run did not finish (see above)")
            return
        la, lb = a[0]["loss"], b[0]["loss"]
        rel = abs(la - lb) / abs(lb)
        ok = rel < tol
        self.failed |= not ok
        emit(kind="train_check", name=name, status="met" if ok else "NOT met",
             detail="first-step loss %.7f vs %.7f: rel %.2e (tolerance %g)" % (la, lb, rel, tol))

    def speed(self, tag, rows, seq, pes):
        if not rows:
            return None
        later = rows[1:] or rows
        dt = statistics.median(r["step_s"] for r in later)
        r = dict(kind="train_run", name=tag, status="ran", seq=seq, pes=pes, steps=len(rows), step_s=dt,
                 tokens_per_s=seq / dt, mfu=statistics.median(r.get("mfu") or 0 for r in later),
                 gpu_mem_bytes=max(r.get("gpu_mem_bytes", 0) for r in rows), loss_first=rows[0]["loss"],
                 loss_last=rows[-1]["loss"])
        emit(**r)
        return r


def hf_peer(a, ckpt, seq, steps, timeout):
    """transformers' step on the same GPU from our checkpoint: tokens/s, or None."""
    code = r'''
import json, sys, time, numpy as np, torch
from transformers import LlamaForCausalLM
ckpt, data, seq, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tok = np.fromfile(data, dtype=np.uint16, offset=1024)[: seq + 1].astype(np.int64)
m = LlamaForCausalLM.from_pretrained(ckpt, torch_dtype=torch.bfloat16, attn_implementation="sdpa").cuda()
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=True)
x = torch.tensor(tok[:-1], device="cuda")[None]
y = torch.tensor(tok[1:], device="cuda")[None]
ts = []
for i in range(steps):
    torch.cuda.synchronize(); t0 = time.time()
    loss = m(input_ids=x, labels=y).loss
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize(); ts.append(time.time() - t0)
later = sorted(ts[1:] or ts)
dt = later[len(later) // 2]
print(json.dumps({"step_s": dt, "tokens_per_s": seq / dt, "torch": torch.__version__,
                  "peak_mem_bytes": torch.cuda.max_memory_allocated()}))
'''
    try:
        p = subprocess.run([sys.executable, "-c", code, ckpt, a.data + "/train.bin", str(seq), str(steps)],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % timeout
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["rc %d" % p.returncode])[-1]
    return json.loads(p.stdout.strip().splitlines()[-1]), ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--longctx", required=True)
    ap.add_argument("--data", required=True, help="folder with train.bin and val.bin (byte tokens)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--budget", type=float, default=100)
    ap.add_argument("--check-seq", type=int, default=2048, help="tokens of the correctness runs")
    ap.add_argument("--no-speed", action="store_true", help="the correctness checks only")
    ap.add_argument("--check-model", default="small", help="the correctness runs' model (head dim 64 for bf16)")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    r = Runner(a)
    small = ["--model", a.check_model]
    gpu = ["--device", "cuda"]
    # 1. correctness, 2K tokens, one step
    S = a.check_seq
    cpu32 = r.train("cpu_f32", small, 1, S, 40)
    gpu32 = r.train("gpu_f32", small + gpu, 1, S, 30)
    r.compare("first-step loss, GPU fp32 vs CPU fp32 (<= 1e-5)", gpu32, cpu32, 1e-5)
    cpu16 = r.train("cpu_bf16", small + ["--dtype", "bf16"], 1, S, 40)
    gpu16 = r.train("gpu_bf16", small + gpu + ["--dtype", "bf16"], 1, S, 30)
    r.compare("first-step loss, GPU bf16 vs CPU bf16 (<= 1e-2)", gpu16, cpu16, 1e-2)
    gcp2 = r.train("gpu_f32_cp2", small + gpu + ["--cp", "2"], 1, S, 30)
    r.compare("first-step loss, GPU CP 2 vs CP 1, fp32 (<= 1e-5)", gcp2, gpu32, 1e-5)
    if a.no_speed:
        return 1 if r.failed else 0
    # 2. speed, bf16
    small = ["--model", "small"]
    r.speed("small 16K CP 2 (2 PEs on the GPU)", r.train("small16k_cp2", small + gpu + ["--dtype", "bf16", "--cp", "2"],
                                                         6, 16384, 40), 16384, 2)
    ck = os.path.join(a.work, "small16k_ck")
    ours = r.speed("small 16K CP 1", r.train("small16k_cp1", small + gpu + ["--dtype", "bf16", "--save-dir", ck], 6,
                                             16384, 40), 16384, 1)
    if ours and r.left() > 20:
        step = sorted(d for d in os.listdir(ck) if d.startswith("step-"))[-1] if os.path.isdir(ck) else None
        peer, why = hf_peer(a, os.path.join(ck, step), 16384, 6, min(60, r.left() - 5)) if step else (None, "no ckpt")
        if peer:
            ratio = ours["tokens_per_s"] / peer["tokens_per_s"]
            emit(kind="train_check", name="small 16K step: longctx >= 1.0x transformers tokens/s",
                 status="met" if ratio >= 1.0 else "NOT met",
                 detail="%.0f vs %.0f tokens/s (%.2fx); transformers %s sdpa bf16, fused AdamW" % (
                     ours["tokens_per_s"], peer["tokens_per_s"], ratio, peer["torch"]), peer=peer)
        else:
            emit(kind="train_check", name="small 16K step: longctx >= 1.0x transformers tokens/s",
                 status="not measured", detail="transformers peer: " + why)
    else:
        emit(kind="train_check", name="small 16K step: longctx >= 1.0x transformers tokens/s", status="not measured",
             detail="our run did not finish" if not ours else "no time left")
    big = ["--model", "small", "--layers", "1", "--dim", "4096", "--heads", "32", "--kv-heads", "8", "--ffn", "14336",
           "--vocab", "128256", "--recompute"]
    r.speed("Llama-3-8B-shaped layer, 64K, CP 1", r.train("l8b_64k", big + gpu + ["--dtype", "bf16"], 3, 65536, 90),
            65536, 1)
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
