"""The PyTorch training-step peer: transformers' LlamaForCausalLM with sdpa attention, fp32 (or
bf16 compute under autocast with --dtype bf16),
loaded with from_pretrained from our checkpoint directory; mean cross-entropy over the S-1
next-token targets (ours: targets[i] = tokens[i+1], the last ignored); clip_grad_norm_ and
torch.optim.AdamW over every parameter, as bench train's step."""


def run(a):
    import os
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory: never the network
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    import torch.nn.functional as F
    from train_peer import load_tokens, rss_now_bytes, timed_steps
    from transformers import LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    framework_rss = rss_now_bytes()

    if a.cp != 1:
        raise RuntimeError("the torch peer has no context parallelism (--cp 1)")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    tok = load_tokens(a.tokens, a.seq)
    model = LlamaForCausalLM.from_pretrained(a.ckpt, attn_implementation="sdpa",
                                             dtype=torch.float32)
    model.train()
    ids = torch.from_numpy(tok).long().unsqueeze(0)
    tgt = ids[0, 1:]
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps,
                            weight_decay=a.wd)

    # bf16 as a PyTorch user trains in it on a CPU: fp32 master weights, the forward (matmuls
    # and sdpa) under autocast to bf16, the loss in fp32
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16")

    def step():
        opt.zero_grad(set_to_none=True)
        with amp:
            logits = model(input_ids=ids, use_cache=False).logits[0, :-1]
        loss = F.cross_entropy(logits.float(), tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        return float(loss.detach())

    loss0, step_s, cpu_s = timed_steps(a, step)
    return {"loss0": loss0, "step_s": step_s, "cpu_s": cpu_s, "lowering": "none", "dtype": a.dtype,
            "attn": model.config._attn_implementation,
            "framework_rss_bytes": framework_rss, "torch": torch.__version__}
