"""The transformers cross-check, the reference side: load our checkpoint with
LlamaForCausalLM.from_pretrained, run it in float64 (RoPE angles stay fp32, as transformers
computes them and as ours does) and compare with the logits and loss longctx wrote.
    hf_logits.py DIR P
Norm-wise relative error of all logits and relative error of the mean CE, both < 1e-5 (fp32
against a float64 reference); every position exactly once over the PEs; NaN never passes."""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402

RTOL = 1e-5


def main():
    d, P = sys.argv[1], int(sys.argv[2])
    tok = np.fromfile(os.path.join(d, "tokens.i32"), dtype="<i4")
    S = tok.size
    model = LlamaForCausalLM.from_pretrained(os.path.join(d, "ckpt", "step-00000000"), attn_implementation="eager",
                                             dtype=torch.float32)
    V = model.config.vocab_size
    model = model.to(torch.float64).eval()
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(tok).long()[None], use_cache=False).logits[0].numpy()
    ours = np.full((S, V), np.nan)
    seen = np.zeros(S, np.int64)
    for pe in range(P):
        pos = np.fromfile(os.path.join(d, f"pos.{pe}.i32"), dtype="<i4")
        lg = np.fromfile(os.path.join(d, f"logits.{pe}.f32"), dtype="<f4").reshape(pos.size, V)
        if pos.min() < 0 or pos.max() >= S:
            print(f"FAIL: PE {pe} has positions outside [0, {S})")
            return 1
        ours[pos] = lg
        np.add.at(seen, pos, 1)
    if not (seen == 1).all():
        print(f"FAIL: positions not covered exactly once over the PEs: {np.flatnonzero(seen != 1)[:8]}")
        return 1
    if not np.isfinite(ours).all():
        print("FAIL: non-finite logits from longctx")
        return 1
    err = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
    row = np.linalg.norm(ours - ref, axis=1) / np.linalg.norm(ref, axis=1)
    lse = np.log(np.exp(ref[:-1] - ref[:-1].max(1, keepdims=True)).sum(1)) + ref[:-1].max(1)
    ref_loss = float(np.mean(lse - ref[np.arange(S - 1), tok[1:]]))
    with open(os.path.join(d, "loss.txt")) as f:
        loss = float(f.read())
    lerr = abs(loss - ref_loss) / abs(ref_loss)
    print(f"S {S}, P {P}: logits rel err {err:.3g} (worst row {row.max():.3g} at position "
          f"{int(row.argmax())}), loss ours {loss:.9g} transformers {ref_loss:.9g} rel err {lerr:.3g}; "
          f"tolerance {RTOL}")
    ok = np.isfinite(err) and np.isfinite(lerr) and err < RTOL and lerr < RTOL
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
