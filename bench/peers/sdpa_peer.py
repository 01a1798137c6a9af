"""PyTorch scaled_dot_product_attention on the CPU, shapes as `longctx bench attn`."""
import sys

from peer_common import configs, emit, parse_args, time_median


def main():
    a = parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001 - report any import failure as a row
        for c in configs(a):
            emit("torch_sdpa", c, error=f"import torch failed: {e}")
        return 0
    gqa_native = "enable_gqa" in F.scaled_dot_product_attention.__doc__
    for c in configs(a):
        torch.set_num_threads(c["threads"])
        dt = torch.bfloat16 if c["dtype"] == "bf16" else torch.float32
        s, d, hq, hkv = c["s"], c["d"], c["hq"], c["hkv"]
        g = torch.Generator().manual_seed(1)
        q = torch.randn(1, hq, s, d, generator=g).to(dt)
        k = torch.randn(1, hkv, s, d, generator=g).to(dt)
        v = torch.randn(1, hkv, s, d, generator=g).to(dt)
        dout = torch.randn(1, hq, s, d, generator=g).to(dt)
        causal = c["mask"] == "causal"

        def attn(q, k, v):
            if gqa_native:
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                      enable_gqa=hq != hkv)
            if hq != hkv:
                k = k.repeat_interleave(hq // hkv, dim=1)
                v = v.repeat_interleave(hq // hkv, dim=1)
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        if c["pass_"] == "fwd":
            def run():
                with torch.inference_mode():
                    attn(q, k, v)
        else:
            qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))

            def run():
                qg.grad = kg.grad = vg.grad = None
                attn(qg, kg, vg).backward(dout)
        try:
            emit("torch_sdpa", c, *time_median(run, a.reps), torch=torch.__version__)
        except Exception as e:  # noqa: BLE001
            emit("torch_sdpa", c, error=str(e).splitlines()[0][:200])
    return 0


if __name__ == "__main__":
    sys.exit(main())
