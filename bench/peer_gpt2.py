#!/usr/bin/env python3
"""The peer for bench_forward: a GPT-2 forward pass in PyTorch eager, written the way Hugging Face
transformers' modeling_gpt2.py computes it (Conv1D addmm, split heads, matmul, scale, causal
torch.where with finfo.min, softmax, NewGELU's tanh formula, tied lm_head). Random weights of
GPT-2-small's shapes; prints one JSON line with the best time per forward pass.
Run with Debian's /usr/bin/python3 (python3-torch)."""
import argparse
import json
import math
import time

import torch


def new_gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Gpt2:
    def __init__(self, n_layer, d, n_head, vocab, n_ctx, seed):
        g = torch.Generator().manual_seed(seed)
        r = lambda *s: torch.randn(*s, generator=g) * 0.02
        self.n_head, self.d = n_head, d
        self.wte, self.wpe = r(vocab, d), r(n_ctx, d)
        self.layers = []
        for _ in range(n_layer):
            self.layers.append(dict(
                ln1_w=torch.ones(d), ln1_b=torch.zeros(d),
                c_attn_w=r(d, 3 * d), c_attn_b=torch.zeros(3 * d),
                c_proj_w=r(d, d), c_proj_b=torch.zeros(d),
                ln2_w=torch.ones(d), ln2_b=torch.zeros(d),
                fc_w=r(d, 4 * d), fc_b=torch.zeros(4 * d),
                proj_w=r(4 * d, d), proj_b=torch.zeros(d)))
        self.lnf_w, self.lnf_b = torch.ones(d), torch.zeros(d)
        self.bias = torch.tril(torch.ones((n_ctx, n_ctx), dtype=torch.bool)).view(1, 1, n_ctx, n_ctx)

    @staticmethod
    def conv1d(x, w, b):  # transformers.pytorch_utils.Conv1D
        size_out = x.size()[:-1] + (w.size(-1),)
        return torch.addmm(b, x.view(-1, x.size(-1)), w).view(size_out)

    def split(self, t):
        b, s, _ = t.size()
        return t.view(b, s, self.n_head, self.d // self.n_head).permute(0, 2, 1, 3)

    def attn(self, x, p):
        q, k, v = self.conv1d(x, p["c_attn_w"], p["c_attn_b"]).split(self.d, dim=2)
        q, k, v = self.split(q), self.split(k), self.split(v)
        w = torch.matmul(q, k.transpose(-1, -2))
        w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype)
        t = q.size(-2)
        mask = self.bias[:, :, :t, :t]
        w = torch.where(mask, w, torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype))
        w = torch.softmax(w, dim=-1)
        o = torch.matmul(w, v).permute(0, 2, 1, 3).contiguous()
        o = o.view(o.size(0), o.size(1), self.d)
        return self.conv1d(o, p["c_proj_w"], p["c_proj_b"])

    def forward(self, ids):
        t = ids.size(1)
        h = self.wte[ids] + self.wpe[torch.arange(t)].unsqueeze(0)
        for p in self.layers:
            a = self.attn(torch.nn.functional.layer_norm(h, (self.d,), p["ln1_w"], p["ln1_b"], 1e-5), p)
            h = a + h
            m = torch.nn.functional.layer_norm(h, (self.d,), p["ln2_w"], p["ln2_b"], 1e-5)
            m = self.conv1d(new_gelu(self.conv1d(m, p["fc_w"], p["fc_b"])), p["proj_w"], p["proj_b"])
            h = h + m
        h = torch.nn.functional.layer_norm(h, (self.d,), self.lnf_w, self.lnf_b, 1e-5)
        return torch.nn.functional.linear(h, self.wte)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = Gpt2(args.layers, args.d_model, args.heads, args.vocab, max(1024, args.seq), 0)
    ids = torch.randint(0, args.vocab, (1, args.seq), generator=torch.Generator().manual_seed(1))
    best = float("inf")
    with torch.inference_mode():
        model.forward(ids)  # warm up
        for _ in range(args.reps):
            t0 = time.perf_counter()
            model.forward(ids)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"peer": "pytorch-eager", "torch": torch.__version__, "threads": args.threads,
                      "seq": args.seq, "seconds": best}))


if __name__ == "__main__":
    main()
