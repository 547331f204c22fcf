"""Self-checks for the Python reference and the parity fixtures.

    /usr/bin/python3 scripts/reference/self_check.py [--fixtures DIR] [--skip-regen]

Exits non-zero if any check fails.  The checks validate the reference on its
own (no C++ involved):

  1. RoPE: a Meta-style Llama forward (q/k weights permuted from the HF layout to
     Meta's interleaved layout, rotary applied by multiplying complex pairs by
     e^{i*theta*p}) gives the same logits, scores and rotated queries/keys.
  2. Masks: pattern rows sum to 1; entries are -inf / 0 exactly where the causal
     (and sliding-window) mask forbids them, finite elsewhere.
  3. sum over heads of hook_result + output bias == hook_attn_out.
  4. KV cache: running the 9 tokens as two chunks through a KV cache gives the
     same logits (and the same per-position hooks) as the full run.
  5. HF-style recomputation of each block straight from the HF-named tensors with
     torch built-ins (F.linear, F.layer_norm, F.gelu, F.silu, softmax), checking
     the weight-layout parsing (Conv1D, fused NeoX qkv, GQA) independently.
  6. Fixtures: every case folder re-loads, its stored .npy files match a fresh
     float64 run (to float32 rounding), the residual stream adds up, and
     regenerating the fixtures into a temp folder gives byte-identical files.
"""

import argparse
import filecmp
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_parity_fixtures as mpf  # noqa: E402
import reference_models as rm  # noqa: E402

DT = torch.float64
FAILURES = []
COUNT = [0]


def check(cond, what):
    COUNT[0] += 1
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def rel_err(a, b):
    a = torch.as_tensor(a, dtype=DT)
    b = torch.as_tensor(b, dtype=DT)
    finite = torch.isfinite(b)
    if not torch.equal(finite, torch.isfinite(a)):
        return float("inf")
    if not torch.equal(a[~finite], b[~finite]):
        return float("inf")
    denom = b[finite].abs().max()
    return float((a[finite] - b[finite]).abs().max() / denom) if denom > 0 else float((a - b).abs().max())


def load_case(root, name):
    case_dir = os.path.join(root, name)
    model = rm.load_model(case_dir)
    with open(os.path.join(case_dir, "reference", "tokens.json")) as f:
        tokens = torch.tensor(json.load(f)["input_ids"])
    return case_dir, model, tokens


# ---------------------------------------------------------------------------
# 1. Meta-style RoPE (complex numbers, interleaved pairs)
# ---------------------------------------------------------------------------

def hf_to_meta_rows(w, n_heads, d_head):
    """Inverse of HF's convert_llama_weights_to_hf permute: per head, HF output rows
    [first halves | second halves] -> Meta's interleaved pairs (2i, 2i+1)."""
    rest = w.shape[1:]
    return w.reshape(n_heads, 2, d_head // 2, *rest).transpose(1, 2).reshape(n_heads * d_head, *rest)


def meta_to_hf_dims(x, d_head):
    """Per head, reorder the last dim from Meta's interleaved layout to HF's halves."""
    shp = x.shape
    return x.reshape(*shp[:-1], d_head // 2, 2).transpose(-1, -2).reshape(shp)


def meta_rotary(x, positions, theta):
    """x [b, p, h, dh] in Meta layout: view (2i, 2i+1) as a complex number and
    multiply by exp(i * p * theta^(-2i/dh))."""
    dh = x.shape[-1]
    freqs = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=DT)[: dh // 2] / dh))
    angles = torch.outer(positions.to(DT), freqs)
    freqs_cis = torch.polar(torch.ones_like(angles), angles)  # complex128 [p, dh/2]
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], dh // 2, 2).contiguous())
    out = xc * freqs_cis[None, :, None, :]
    return torch.view_as_real(out).reshape(x.shape)


def meta_llama_forward(config, weights, tokens):
    """A separate Llama-family forward in Meta's weight layout with complex RoPE."""
    a = rm.describe(config)
    H, Hkv, dh, eps = a["n_heads"], a["n_kv_heads"], a["d_head"], a["eps"]
    g = lambda n: weights[n].to(DT)  # noqa: E731
    x = g("model.embed_tokens.weight")[tokens]
    b, p, _ = x.shape
    pos = torch.arange(p)
    mask = rm.allowed_mask(pos, pos, a["sliding_window"])
    out = {}

    def rms(v, w):
        return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps) * w

    for L in range(a["n_layers"]):
        h = f"model.layers.{L}."
        wq = hf_to_meta_rows(g(h + "self_attn.q_proj.weight"), H, dh)
        wk = hf_to_meta_rows(g(h + "self_attn.k_proj.weight"), Hkv, dh)
        bq = hf_to_meta_rows(g(h + "self_attn.q_proj.bias"), H, dh) if h + "self_attn.q_proj.bias" in weights else 0.0
        bk = hf_to_meta_rows(g(h + "self_attn.k_proj.bias"), Hkv, dh) if h + "self_attn.k_proj.bias" in weights else 0.0
        bv = g(h + "self_attn.v_proj.bias") if h + "self_attn.v_proj.bias" in weights else 0.0
        xn = rms(x, g(h + "input_layernorm.weight"))
        q = (xn @ wq.T + bq).reshape(b, p, H, dh)
        k = (xn @ wk.T + bk).reshape(b, p, Hkv, dh)
        v = (xn @ g(h + "self_attn.v_proj.weight").T + bv).reshape(b, p, Hkv, dh)
        q = meta_rotary(q, pos, a["rotary_base"])
        k = meta_rotary(k, pos, a["rotary_base"])
        out[f"blocks.{L}.attn.hook_rot_q"] = meta_to_hf_dims(q, dh)
        out[f"blocks.{L}.attn.hook_rot_k"] = meta_to_hf_dims(k, dh)
        rep = H // Hkv
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
        scores = scores.masked_fill(~mask, float("-inf"))
        out[f"blocks.{L}.attn.hook_attn_scores"] = scores
        attn = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(b, p, H * dh)
        x = x + attn @ g(h + "self_attn.o_proj.weight").T
        xn = rms(x, g(h + "post_attention_layernorm.weight"))
        gate = xn @ g(h + "mlp.gate_proj.weight").T
        up = xn @ g(h + "mlp.up_proj.weight").T
        x = x + (F.silu(gate) * up) @ g(h + "mlp.down_proj.weight").T
    x = rms(x, g("model.norm.weight"))
    head = weights["lm_head.weight"] if "lm_head.weight" in weights else weights["model.embed_tokens.weight"]
    return x @ head.to(DT).T, out


def check_rope(root):
    print("[1] RoPE vs Meta-style complex rotary")
    for name in ("llama-gqa", "llama-headdim", "mistral-window", "qwen2", "llama-bf16"):
        case_dir, model, tokens = load_case(root, name)
        logits, hooks = model.forward(tokens)
        from safetensors_io import read_checkpoint
        weights = read_checkpoint(case_dir)
        m_logits, m_hooks = meta_llama_forward(model.config, weights, tokens)
        e = rel_err(m_logits, logits)
        worst = max(rel_err(m_hooks[k], hooks[k]) for k in m_hooks)
        print(f"    {name:16s} logits rel err {e:.2e}; rot_q/rot_k/attn_scores worst {worst:.2e}")
        check(e < 1e-12, f"rope logits {name}: {e}")
        check(worst < 1e-12, f"rope hooks {name}: {worst}")
    # The permutation must matter: rotating HF-layout q with the Meta (adjacent pair)
    # convention gives different scores, so the test above is not vacuous.
    _, model, tokens = load_case(root, "llama-gqa")
    _, hooks = model.forward(tokens)
    q = hooks["blocks.0.attn.hook_q"]
    wrong = meta_rotary(q, torch.arange(q.shape[1]), model.arch["rotary_base"])
    e = rel_err(wrong, hooks["blocks.0.attn.hook_rot_q"])
    print(f"    (adjacent-pair rotary on HF layout differs by {e:.2e}, as it should)")
    check(e > 1e-2, "wrong rotary convention would go unnoticed")


# ---------------------------------------------------------------------------
# 2-3. Masks, pattern normalisation, per-head results
# ---------------------------------------------------------------------------

def check_attention_invariants(name, hooks, model):
    arch = model.arch
    worst_sum = worst_res = 0.0
    for L in range(arch["n_layers"]):
        pre = f"blocks.{L}.attn."
        scores = hooks[pre + "hook_attn_scores"]
        pattern = hooks[pre + "hook_pattern"]
        q = scores.shape[-2]
        pos = torch.arange(q)
        diff = pos[:, None] - pos[None, :]
        expect = diff >= 0
        window = arch["layer_windows"][L]
        if window is not None:
            expect &= diff < window
        expect = expect[None, None].expand_as(scores)
        check(torch.equal(torch.isfinite(scores), expect), f"{name} L{L} finite scores != mask")
        check(bool((scores[~expect] == float("-inf")).all()), f"{name} L{L} masked scores not -inf")
        check(bool((pattern[~expect] == 0).all()), f"{name} L{L} masked pattern not 0")
        check(bool((pattern[expect] > 0).all()), f"{name} L{L} allowed pattern entries not > 0")
        worst_sum = max(worst_sum, float((pattern.sum(-1) - 1).abs().max()))
        b_O = model.params["layers"][L]["b_O"]
        summed = hooks[pre + "hook_result"].sum(dim=2) + b_O
        if arch["post_norm"]:  # hook_attn_out is after ln1_post: undo it with its own scale and weight
            w = model.params["layers"][L]["ln1_post_w"]
            w = 1.0 + w if arch["norm_plus_one"] else w
            summed = summed / hooks[f"blocks.{L}.ln1_post.hook_scale"] * w
        worst_res = max(worst_res, rel_err(summed, hooks[f"blocks.{L}.hook_attn_out"]))
    check(worst_sum < 1e-12, f"{name} pattern rows do not sum to 1 ({worst_sum})")
    check(worst_res < 1e-12, f"{name} sum(result)+b_O != attn_out ({worst_res})")
    return worst_sum, worst_res


def check_masks_and_results(root):
    print("[2,3] masks, row sums, sum_h result + b_O == attn_out")
    for name in mpf.build_cases():
        _, model, tokens = load_case(root, name)
        _, hooks = model.forward(tokens)
        s, r = check_attention_invariants(name, hooks, model)
        extra = ""
        if model.arch["layer_windows"][0] is not None:
            w = model.arch["layer_windows"][0]
            vis = torch.isfinite(hooks["blocks.0.attn.hook_attn_scores"][0, 0]).sum(-1)
            extra = f"; window {w}: visible keys per query {vis.tolist()}"
            check(vis.tolist() == [min(i + 1, w) for i in range(vis.numel())], "sliding window count")
        print(f"    {name:20s} |row sum - 1| {s:.1e}; result-sum rel err {r:.1e}{extra}")


# ---------------------------------------------------------------------------
# 4. KV cache
# ---------------------------------------------------------------------------

def check_kv_cache(root):
    print("[4] KV cache: chunked run == full run")
    for name in mpf.build_cases():
        _, model, tokens = load_case(root, name)
        full_logits, full_hooks = model.forward(tokens)
        p = tokens.shape[1]
        worst_all = 0.0
        for split in ([4, 5], [5, 4], [1] * p):
            cache = model.new_cache()
            start = 0
            parts = []
            worst_hook = 0.0
            for n in split:
                logits, hooks = model.forward(tokens[:, start:start + n], cache=cache)
                parts.append(logits)
                for k, v in hooks.items():
                    if "hook_attn_scores" in k or "hook_pattern" in k:
                        ref = full_hooks[k][:, :, start:start + n, : start + n]
                    else:
                        ref = full_hooks[k][:, start:start + n]
                    worst_hook = max(worst_hook, rel_err(v, ref))
                start += n
            e = rel_err(torch.cat(parts, dim=1), full_logits)
            worst_all = max(worst_all, e, worst_hook)
            check(e < 1e-12, f"{name} kv cache split {split} logits {e}")
            check(worst_hook < 1e-12, f"{name} kv cache split {split} hooks {worst_hook}")
        print(f"    {name:20s} splits 4+5, 5+4, 1x9: worst rel err {worst_all:.1e}")


# ---------------------------------------------------------------------------
# 5. HF-style recomputation with torch built-ins
# ---------------------------------------------------------------------------

def hf_style_block(model, weights, L, hooks):
    """Recompute block L's attention and MLP outputs from HF-named tensors the way the
    HF modeling code lays them out; returns {hook name: tensor}."""
    a = model.arch
    mt = a["model_type"]
    H, Hkv, dh, dm = a["n_heads"], a["n_kv_heads"], a["d_head"], a["d_model"]
    g = lambda n: weights[n].to(DT)  # noqa: E731
    resid = hooks[f"blocks.{L}.hook_resid_pre"]
    b, p, _ = resid.shape
    pos = torch.arange(p)
    out = {}
    if mt == "gpt2":
        pre = "transformer." if "transformer.wte.weight" in weights else ""
        h = f"{pre}h.{L}."
        x = F.layer_norm(resid, (dm,), g(h + "ln_1.weight"), g(h + "ln_1.bias"), a["eps"])
        qkv = torch.addmm(g(h + "attn.c_attn.bias"), x.reshape(-1, dm), g(h + "attn.c_attn.weight")).reshape(b, p, 3 * dm)
        q, k, v = qkv.split(dm, dim=2)
        q, k, v = (t.reshape(b, p, H, dh).permute(0, 2, 1, 3) for t in (q, k, v))
        w = torch.matmul(q, k.transpose(-1, -2)) / (v.size(-1) ** 0.5)
        causal = torch.tril(torch.ones(p, p, dtype=torch.bool))
        w = torch.where(causal, w, torch.tensor(torch.finfo(DT).min, dtype=DT))
        att = torch.matmul(w.softmax(-1), v).permute(0, 2, 1, 3).reshape(b, p, dm)
        att = torch.addmm(g(h + "attn.c_proj.bias"), att.reshape(-1, dm), g(h + "attn.c_proj.weight")).reshape(b, p, dm)
        out[f"blocks.{L}.hook_attn_out"] = att
        mid = resid + att
        x2 = F.layer_norm(mid, (dm,), g(h + "ln_2.weight"), g(h + "ln_2.bias"), a["eps"])
        hid = F.gelu(x2 @ g(h + "mlp.c_fc.weight") + g(h + "mlp.c_fc.bias"), approximate="tanh")
        out[f"blocks.{L}.hook_mlp_out"] = hid @ g(h + "mlp.c_proj.weight") + g(h + "mlp.c_proj.bias")
        return out
    if mt == "gpt_neox":
        h = f"gpt_neox.layers.{L}."
        x = F.layer_norm(resid, (dm,), g(h + "input_layernorm.weight"), g(h + "input_layernorm.bias"), a["eps"])
        qkv = F.linear(x, g(h + "attention.query_key_value.weight"), g(h + "attention.query_key_value.bias"))
        qkv = qkv.view(b, p, H, 3 * dh)
        q = qkv[..., :dh].permute(0, 2, 1, 3)
        k = qkv[..., dh:2 * dh].permute(0, 2, 1, 3)
        v = qkv[..., 2 * dh:].permute(0, 2, 1, 3)
        out[f"blocks.{L}.attn.hook_q"] = q.permute(0, 2, 1, 3)
        rd = a["rotary_dim"]
        inv = 1.0 / (a["rotary_base"] ** (torch.arange(0, rd, 2, dtype=DT) / rd))
        emb = torch.cat([torch.outer(pos.to(DT), inv)] * 2, dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]

        def rot(t):
            t_rot, t_pass = t[..., :rd], t[..., rd:]
            half = torch.cat([-t_rot[..., rd // 2:], t_rot[..., : rd // 2]], dim=-1)
            return torch.cat([t_rot * cos + half * sin, t_pass], dim=-1)

        q, k = rot(q), rot(k)
        w = torch.baddbmm(torch.zeros(b * H, p, p, dtype=DT), q.reshape(b * H, p, dh),
                          k.reshape(b * H, p, dh).transpose(1, 2), beta=1.0, alpha=dh ** -0.5).view(b, H, p, p)
        causal = torch.tril(torch.ones(p, p, dtype=torch.bool))
        w = torch.where(causal, w, torch.tensor(torch.finfo(DT).min, dtype=DT))
        att = torch.matmul(w.softmax(-1), v).permute(0, 2, 1, 3).reshape(b, p, dm)
        att = F.linear(att, g(h + "attention.dense.weight"), g(h + "attention.dense.bias"))
        out[f"blocks.{L}.hook_attn_out"] = att
        mlp_in = resid if a["parallel"] else resid + att
        x2 = F.layer_norm(mlp_in, (dm,), g(h + "post_attention_layernorm.weight"),
                          g(h + "post_attention_layernorm.bias"), a["eps"])
        hid = F.gelu(F.linear(x2, g(h + "mlp.dense_h_to_4h.weight"), g(h + "mlp.dense_h_to_4h.bias")))
        out[f"blocks.{L}.hook_mlp_out"] = F.linear(hid, g(h + "mlp.dense_4h_to_h.weight"), g(h + "mlp.dense_4h_to_h.bias"))
        return out
    if mt in ("qwen3", "phi3", "olmo2", "gemma2", "gemma3_text"):
        return hf_style_block_2025(model, weights, L, hooks)
    # llama / mistral / qwen2
    h = f"model.layers.{L}."

    def rms(t, w):
        return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + a["eps"]))

    def lin(t, name):
        bias = weights.get(name + ".bias")
        return F.linear(t, g(name + ".weight"), None if bias is None else bias.to(DT))

    x = rms(resid, g(h + "input_layernorm.weight"))
    q = lin(x, h + "self_attn.q_proj").view(b, p, -1, dh).transpose(1, 2)
    k = lin(x, h + "self_attn.k_proj").view(b, p, -1, dh).transpose(1, 2)
    v = lin(x, h + "self_attn.v_proj").view(b, p, -1, dh).transpose(1, 2)
    inv = 1.0 / (a["rotary_base"] ** (torch.arange(0, dh, 2, dtype=DT) / dh))
    emb = torch.cat([torch.outer(pos.to(DT), inv)] * 2, dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]

    def rot_half(t):
        return torch.cat([-t[..., dh // 2:], t[..., : dh // 2]], dim=-1)

    q = q * cos + rot_half(q) * sin
    k = k * cos + rot_half(k) * sin
    n_rep = H // Hkv
    k = k[:, :, None].expand(b, Hkv, n_rep, p, dh).reshape(b, H, p, dh)  # repeat_kv
    v = v[:, :, None].expand(b, Hkv, n_rep, p, dh).reshape(b, H, p, dh)
    w = torch.matmul(q, k.transpose(2, 3)) * dh ** -0.5
    qi, kj = pos[:, None], pos[None, :]
    allowed = kj <= qi
    if a["sliding_window"] is not None:
        allowed &= kj > qi - a["sliding_window"]
    w = w + torch.where(allowed, torch.tensor(0.0, dtype=DT), torch.tensor(torch.finfo(DT).min, dtype=DT))
    att = torch.matmul(F.softmax(w, dim=-1), v).transpose(1, 2).reshape(b, p, H * dh)
    att = lin(att, h + "self_attn.o_proj")
    out[f"blocks.{L}.hook_attn_out"] = att
    x2 = rms(resid + att, g(h + "post_attention_layernorm.weight"))
    out[f"blocks.{L}.hook_mlp_out"] = lin(F.silu(lin(x2, h + "mlp.gate_proj")) * lin(x2, h + "mlp.up_proj"), h + "mlp.down_proj")
    return out


def hf_style_block_2025(model, weights, L, hooks):
    """Qwen3, Phi-3, OLMo 2, Gemma 2/3 as their HF modeling code lays the block out, read from the
    config itself (not the reference's describe()): fused Phi-3 projections split by chunk, q/k
    norms before or after the head reshape, Gemma's 1 + w norms, soft-capping, layer_types."""
    cfg = model.config
    mt = cfg["model_type"]
    gemma = mt.startswith("gemma")
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    dm = cfg["hidden_size"]
    dh = cfg.get("head_dim") or dm // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    g = lambda n: weights[n].to(DT)  # noqa: E731
    h = f"model.layers.{L}."
    resid = hooks[f"blocks.{L}.hook_resid_pre"]
    b, p, _ = resid.shape
    pos = torch.arange(p)

    def rms(t, name):
        w = g(name)
        return (1.0 + w if gemma else w) * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + eps))

    def lin(t, name):
        bias = weights.get(name + ".bias")
        return F.linear(t, g(name + ".weight"), None if bias is None else bias.to(DT))

    x = resid if mt == "olmo2" else rms(resid, h + "input_layernorm.weight")
    if mt == "phi3":
        q, k, v = lin(x, h + "self_attn.qkv_proj").split([H * dh, Hkv * dh, Hkv * dh], dim=-1)
    else:
        q, k, v = (lin(x, h + f"self_attn.{n}_proj") for n in "qkv")
    if mt == "olmo2":
        q, k = rms(q, h + "self_attn.q_norm.weight"), rms(k, h + "self_attn.k_norm.weight")
    q, k, v = (t.view(b, p, -1, dh) for t in (q, k, v))
    if mt in ("qwen3", "gemma3_text"):
        q, k = rms(q, h + "self_attn.q_norm.weight"), rms(k, h + "self_attn.k_norm.weight")
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    if gemma:
        types = cfg.get("layer_types") or [
            "sliding_attention" if (i + 1) % cfg.get("sliding_window_pattern", 6 if mt == "gemma3_text" else 2)
            else "full_attention" for i in range(cfg["num_hidden_layers"])]
        sliding = types[L] == "sliding_attention"
        window = cfg.get("sliding_window", 4096) if sliding else None
        base = cfg.get("rope_local_base_freq", 10000.0) if (mt == "gemma3_text" and sliding) else cfg["rope_theta"]
    else:
        window = cfg.get("sliding_window") if mt == "phi3" else None
        base = cfg["rope_theta"]
    rd = int(dh * cfg.get("partial_rotary_factor", 1.0)) if mt == "phi3" else dh
    inv = 1.0 / (base ** (torch.arange(0, rd, 2, dtype=DT) / rd))
    emb = torch.cat([torch.outer(pos.to(DT), inv)] * 2, dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]

    def rope(t):
        t_rot, t_pass = t[..., :rd], t[..., rd:]
        half = torch.cat([-t_rot[..., rd // 2:], t_rot[..., : rd // 2]], dim=-1)
        return torch.cat([t_rot * cos + half * sin, t_pass], dim=-1)

    q, k = rope(q), rope(k)
    n_rep = H // Hkv
    k = k[:, :, None].expand(b, Hkv, n_rep, p, dh).reshape(b, H, p, dh)
    v = v[:, :, None].expand(b, Hkv, n_rep, p, dh).reshape(b, H, p, dh)
    scaling = cfg.get("query_pre_attn_scalar", 256) ** -0.5 if gemma else dh ** -0.5
    w = torch.matmul(q, k.transpose(2, 3)) * scaling
    cap = cfg.get("attn_logit_softcapping", 50.0 if mt == "gemma2" else None) if gemma else None
    if cap is not None:
        w = torch.tanh(w / cap) * cap
    qi, kj = pos[:, None], pos[None, :]
    allowed = kj <= qi
    if window is not None:
        allowed &= kj > qi - window
    w = w + torch.where(allowed, torch.tensor(0.0, dtype=DT), torch.tensor(torch.finfo(DT).min, dtype=DT))
    att = lin(torch.matmul(F.softmax(w, dim=-1), v).transpose(1, 2).reshape(b, p, H * dh), h + "self_attn.o_proj")
    if gemma or mt == "olmo2":
        att = rms(att, h + "post_attention_layernorm.weight")
    out = {f"blocks.{L}.hook_attn_out": att}
    mid = resid + att
    if gemma:
        x2 = rms(mid, h + "pre_feedforward_layernorm.weight")
    elif mt == "olmo2":
        x2 = mid
    else:
        x2 = rms(mid, h + "post_attention_layernorm.weight")
    if mt == "phi3":
        gate, up = lin(x2, h + "mlp.gate_up_proj").chunk(2, dim=-1)
    else:
        gate, up = lin(x2, h + "mlp.gate_proj"), lin(x2, h + "mlp.up_proj")
    act = (lambda t: F.gelu(t, approximate="tanh")) if gemma else F.silu
    mlp = lin(act(gate) * up, h + "mlp.down_proj")
    if gemma or mt == "olmo2":
        mlp = rms(mlp, h + "post_feedforward_layernorm.weight")
    out[f"blocks.{L}.hook_mlp_out"] = mlp
    return out


def check_hf_style(root):
    print("[5] HF-style recomputation from HF-named tensors (torch built-ins)")
    from safetensors_io import read_checkpoint
    for name in mpf.build_cases():
        case_dir, model, tokens = load_case(root, name)
        weights = read_checkpoint(case_dir)
        logits, hooks = model.forward(tokens)
        worst = 0.0
        for L in range(model.arch["n_layers"]):
            for k, v in hf_style_block(model, weights, L, hooks).items():
                worst = max(worst, rel_err(v, hooks[k]))
        # Final norm + unembedding.
        a = model.arch
        last = hooks[f"blocks.{a['n_layers'] - 1}.hook_resid_post"]
        if a["norm"] == "LN":
            key_w = [k for k in weights if k.endswith("ln_f.weight") or k.endswith("final_layer_norm.weight")][0]
            xf = F.layer_norm(last, (a["d_model"],), weights[key_w].to(DT),
                              weights[key_w.replace("weight", "bias")].to(DT), a["eps"])
        else:
            wn = weights["model.norm.weight"].to(DT)
            if model.config["model_type"].startswith("gemma"):
                wn = 1.0 + wn
            xf = wn * (last * torch.rsqrt(last.pow(2).mean(-1, keepdim=True) + a["eps"]))
        head_key = {"gpt2": None, "gpt_neox": "embed_out.weight"}.get(a["model_type"], "lm_head.weight")
        if head_key is None or head_key not in weights:
            head_key = [k for k in weights if k.endswith("wte.weight") or k.endswith("embed_tokens.weight")][0]
        hf_logits = xf @ weights[head_key].to(DT).T
        cap = model.config.get("final_logit_softcapping", 30.0 if a["model_type"] == "gemma2" else None)
        if a["model_type"].startswith("gemma") and cap is not None:
            hf_logits = torch.tanh(hf_logits / cap) * cap
        worst = max(worst, rel_err(hf_logits, logits))
        print(f"    {name:20s} attn_out / mlp_out / logits worst rel err {worst:.1e}")
        check(worst < 1e-12, f"{name} HF-style recomputation {worst}")


# ---------------------------------------------------------------------------
# 6. Fixture files
# ---------------------------------------------------------------------------

def read_checkpoint_raw_total(case_dir, files):
    total = 0
    for fst in files:
        with open(os.path.join(case_dir, fst), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            total += os.path.getsize(os.path.join(case_dir, fst)) - 8 - n
    return total


def check_safetensors_layout(path):
    """Byte-level format check, independent of safetensors_io.decode."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    text = blob[8:8 + n]
    check((8 + n) % 8 == 0, f"{path}: data section not 8-byte aligned")
    body = text.rstrip(b" ")
    check(body.endswith(b"}") and len(text) - len(body) < 8, f"{path}: header padding")
    header = json.loads(text)
    check(header.get("__metadata__") == {"format": "pt"}, f"{path}: metadata")
    sizes = {"F32": 4, "BF16": 2, "F16": 2, "F64": 8}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        check(end - begin == math.prod(info["shape"]) * sizes[info["dtype"]], f"{path}:{name} size")
        spans.append((begin, end))
    spans.sort()
    pos = 0
    for begin, end in spans:
        check(begin == pos, f"{path}: gap or overlap at {begin}")
        pos = end
    check(pos == len(blob) - 8 - n, f"{path}: trailing bytes")
    return header


def check_fixture_files(root, regen):
    from safetensors_io import read_checkpoint
    print("[6] fixture files")
    cases = mpf.build_cases()
    for name, (cfg, _w, dtype, shards) in cases.items():
        case_dir, model, tokens = load_case(root, name)
        check(tokens.shape == (mpf.BATCH, mpf.SEQ), f"{name} tokens shape")
        check(int(tokens.min()) >= 0 and int(tokens.max()) < cfg["vocab_size"], f"{name} token range")
        logits, hooks = model.forward(tokens)
        hooks["logits"] = logits
        ref_dir = os.path.join(case_dir, "reference")
        files = sorted(f[:-4] for f in os.listdir(ref_dir) if f.endswith(".npy"))
        expected = rm.hook_names(cfg)
        if name in mpf.LOADER_VARIANTS:
            expected = mpf.loader_variant_hooks(expected)
        check(sorted(expected + ["logits"]) == files, f"{name} hook file list")
        worst = 0.0
        for f in files:
            arr = np.load(os.path.join(ref_dir, f + ".npy"))
            check(arr.dtype == np.dtype("<f4"), f"{name}/{f} dtype {arr.dtype}")
            check(tuple(arr.shape) == tuple(hooks[f].shape), f"{name}/{f} shape {arr.shape} vs {tuple(hooks[f].shape)}")
            worst = max(worst, rel_err(torch.from_numpy(arr.astype(np.float64)), hooks[f]))
        check(worst < 1e-6, f"{name} stored npy vs fresh run {worst}")
        # Residual stream bookkeeping, from the stored float64 run.
        a = model.arch
        rs = 0.0
        for L in range(a["n_layers"]):
            pre = hooks[f"blocks.{L}.hook_resid_pre"]
            post = hooks[f"blocks.{L}.hook_resid_post"]
            rs = max(rs, rel_err(pre + hooks[f"blocks.{L}.hook_attn_out"] + hooks[f"blocks.{L}.hook_mlp_out"], post))
            if L + 1 < a["n_layers"]:
                rs = max(rs, rel_err(hooks[f"blocks.{L + 1}.hook_resid_pre"], post))
        check(rs < 1e-12, f"{name} residual bookkeeping {rs}")
        # Storage dtype and layout.
        files_st = sorted(f for f in os.listdir(case_dir) if f.endswith(".safetensors"))
        names_in_files = []
        for fst in files_st:
            names_in_files += [k for k in check_safetensors_layout(os.path.join(case_dir, fst)) if k != "__metadata__"]
        if shards is None:
            check(files_st == ["model.safetensors"], f"{name} single file")
        else:
            check(files_st == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], f"{name} shard names")
            with open(os.path.join(case_dir, "model.safetensors.index.json")) as f:
                idx = json.load(f)
            check(set(idx["weight_map"].values()) == set(files_st), f"{name} index shard set")
            check(sorted(idx["weight_map"]) == sorted(names_in_files), f"{name} index names")
            st = read_checkpoint_raw_total(case_dir, files_st)
            check(idx["metadata"]["total_size"] == st, f"{name} index total_size")
        w = read_checkpoint(case_dir)
        check(all(t.dtype == dtype for t in w.values()), f"{name} storage dtype")
        if cfg.get("tie_word_embeddings", cfg["model_type"] == "gpt2"):
            check(not any(k.endswith("lm_head.weight") for k in w), f"{name}: tied but lm_head present")
        else:
            check(any(k in w for k in ("lm_head.weight", "embed_out.weight")), f"{name}: untied but no head")
        print(f"    {name:20s} {len(files):2d} npy files, stored vs fresh rel err {worst:.1e}, "
              f"{dtype}, {len(files_st)} safetensors file(s)")
    if regen:
        with tempfile.TemporaryDirectory() as tmp:
            mpf.main(["--out", tmp, "--quiet"])
            cmp = filecmp.dircmp(root, tmp)
            diffs = []

            def walk(c, prefix=""):
                diffs.extend(prefix + n for n in c.left_only + c.right_only + c.diff_files + c.funny_files)
                # dircmp compares by os.stat signature first; force byte comparison.
                for n in c.same_files:
                    if not filecmp.cmp(os.path.join(c.left, n), os.path.join(c.right, n), shallow=False):
                        diffs.append(prefix + n)
                for sub, sc in c.subdirs.items():
                    walk(sc, prefix + sub + "/")

            walk(cmp)
            diffs = [d for d in diffs if d != "README.md"]
            print(f"    regenerated into a temp folder: {len(diffs)} differing files")
            check(not diffs, f"regeneration differs: {diffs[:10]}")


def op_checks():
    print("[0] building blocks vs torch built-ins")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 16, generator=g, dtype=DT) * 2
    w = 1 + 0.2 * torch.randn(16, generator=g, dtype=DT)
    b = 0.1 * torch.randn(16, generator=g, dtype=DT)
    out, scale, normalized = rm.layer_norm(x, w, b, 1e-5)
    check(rel_err(out, F.layer_norm(x, (16,), w, b, 1e-5)) < 1e-13, "layer_norm")
    check(torch.equal(normalized, out), "LN hook_normalized is the LN output (TL 2.x)")
    out, scale, normalized = rm.rms_norm(x, w, 1e-6)
    check(rel_err(out, w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))) < 1e-13, "rms_norm")
    check(rel_err(normalized * w, out) < 1e-15, "RMS hook_normalized is before the weight")
    check(rel_err(rm.gelu_new(x), F.gelu(x, approximate="tanh")) < 1e-13, "gelu_new")
    check(rel_err(rm.gelu_exact(x), F.gelu(x)) < 1e-13, "gelu")
    check(rel_err(rm.silu(x), F.silu(x)) < 1e-13, "silu")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default=mpf.DEFAULT_OUT)
    ap.add_argument("--skip-regen", action="store_true", help="skip the byte-identical regeneration check")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    op_checks()
    check_rope(args.fixtures)
    check_masks_and_results(args.fixtures)
    check_kv_cache(args.fixtures)
    check_hf_style(args.fixtures)
    check_fixture_files(args.fixtures, not args.skip_regen)
    if FAILURES:
        print(f"\nself_check: {len(FAILURES)} of {COUNT[0]} checks FAILED")
        return 1
    print(f"\nself_check: all {COUNT[0]} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
