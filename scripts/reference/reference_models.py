"""Independent float64 reference forward passes with TransformerLens hook points.

Architectures (config.json "model_type"):
  gpt2                      -- HF GPT2LMHeadModel / GPT2Model checkpoints
  gpt_neox                  -- HF GPTNeoXForCausalLM (Pythia)
  llama, mistral, qwen2     -- HF LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM
  qwen3                     -- HF Qwen3ForCausalLM (per-head q/k RMSNorm before RoPE)
  phi3                      -- HF Phi3ForCausalLM (fused qkv_proj and gate_up_proj, partial rotary)
  olmo2                     -- HF Olmo2ForCausalLM (no pre-norms; norms on the branch outputs;
                               q/k RMSNorm over all heads)
  gemma2, gemma3_text       -- HF Gemma2ForCausalLM / Gemma3ForCausalLM ((1 + w) RMSNorm,
                               sqrt(d) embedding scale, soft-capping, local/global layers,
                               pre- and post-norms; Gemma 3: q/k norms, local RoPE base)

The code reads weights under their Hugging Face names and follows the HF modeling
code's arithmetic; activations are reported under TransformerLens (2.x) hook
names with TransformerLens shapes (batch first).  All arithmetic is float64.
See docs/reference-impl.md for every convention and where it was confirmed.

Public entry points:
  load_model(model_dir)                    -> Model (config dict + float64 weights)
  Model.forward(tokens, cache=None)        -> (logits [b,p,vocab], hooks {name: tensor})
  hook_names(config)                       -> ordered list of hook names for a config
  KVCache                                  -> tiny per-layer key/value cache

Usage as a script:
  /usr/bin/python3 scripts/reference/reference_models.py <hf model dir> <tokens.json>
prints the logits' shape and a few statistics.
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

DT = torch.float64
NEG_INF = float("-inf")


# ---------------------------------------------------------------------------
# Small numeric building blocks (written out explicitly, float64 throughout)
# ---------------------------------------------------------------------------

def layer_norm(x, weight, bias, eps):
    """LayerNorm as nn.LayerNorm computes it (biased variance, eps inside sqrt).

    Returns (output, scale, normalized_tl) where scale = sqrt(var + eps) is
    TransformerLens' hook_scale and normalized_tl is TL 2.x's hook_normalized,
    which for LayerNorm is taken AFTER the weight and bias (the LN output)."""
    centered = x - x.mean(dim=-1, keepdim=True)
    scale = torch.sqrt((centered * centered).mean(dim=-1, keepdim=True) + eps)
    out = (centered / scale) * weight + bias
    return out, scale, out


def rms_norm(x, weight, eps):
    """RMSNorm as LlamaRMSNorm computes it: x * rsqrt(mean(x^2) + eps) * weight
    (HF upcasts to fp32 for this; here everything is float64 already).

    Returns (output, scale, normalized_tl): TL's hook_scale = sqrt(mean(x^2)+eps)
    and TL's RMSNorm hook_normalized = x / scale, i.e. BEFORE the weight."""
    scale = torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps)
    normalized = x / scale
    return normalized * weight, scale, normalized


def gelu_new(x):
    """GPT-2's "gelu_new": tanh approximation of GELU."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_exact(x):
    """HF "gelu" (GELUActivation): exact erf-based GELU."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def silu(x):
    return x * torch.sigmoid(x)


ACTIVATIONS = {
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": gelu_new,
    "gelu": gelu_exact,
    "silu": silu,
    "swish": silu,
}


def rotary_cos_sin(positions, rotary_dim, base):
    """cos/sin tables [len(positions), rotary_dim] in the HF "rotate_half" layout:
    inv_freq[i] = base ** (-2i / rotary_dim), i < rotary_dim/2, and the table is
    cat(freqs, freqs) so that dim i and dim i + rotary_dim/2 share a frequency."""
    half = rotary_dim // 2
    inv_freq = 1.0 / (float(base) ** (torch.arange(0, rotary_dim, 2, dtype=DT) / rotary_dim))
    assert inv_freq.numel() == half
    angles = positions.to(DT)[:, None] * inv_freq[None, :]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rotary(x, positions, rotary_dim, base):
    """x: [b, p, heads, d_head].  Rotates the first rotary_dim dims of each head."""
    cos, sin = rotary_cos_sin(positions, rotary_dim, base)
    cos = cos[None, :, None, :]
    sin = sin[None, :, None, :]
    x_rot = x[..., :rotary_dim]
    x_pass = x[..., rotary_dim:]
    rotated = x_rot * cos + rotate_half(x_rot) * sin
    return torch.cat([rotated, x_pass], dim=-1)


def allowed_mask(query_positions, key_positions, sliding_window=None):
    """Boolean [q, k]: query i may attend key j iff j <= i and (no window or i - j < window)."""
    diff = query_positions[:, None] - key_positions[None, :]
    ok = diff >= 0
    if sliding_window is not None:
        ok = ok & (diff < sliding_window)
    return ok


# ---------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------

class KVCache:
    """Per-layer cache of keys (after rotary) and values, [b, t, n_kv_heads, d_head]."""

    def __init__(self, n_layers):
        self.keys = [None] * n_layers
        self.values = [None] * n_layers

    @property
    def length(self):
        return 0 if self.keys[0] is None else self.keys[0].shape[1]

    def append(self, layer, k, v):
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=1)
            v = torch.cat([self.values[layer], v], dim=1)
        self.keys[layer] = k
        self.values[layer] = v
        return k, v


# ---------------------------------------------------------------------------
# Architecture description normalised from config.json
# ---------------------------------------------------------------------------

def describe(config):
    """Pull every hyper-parameter the forward pass needs out of an HF config."""
    mt = config["model_type"]
    d = {"model_type": mt}
    if mt == "gpt2":
        d_model = config["n_embd"]
        n_heads = config["n_head"]
        d.update(
            d_model=d_model,
            n_layers=config["n_layer"],
            n_heads=n_heads,
            n_kv_heads=n_heads,
            d_head=d_model // n_heads,
            d_mlp=config.get("n_inner") or 4 * d_model,
            eps=config.get("layer_norm_epsilon", 1e-5),
            act=config.get("activation_function", "gelu_new"),
            norm="LN",
            positional="learned",
            rotary_dim=None,
            parallel=False,
            gated=False,
            sliding_window=None,
            tied=config.get("tie_word_embeddings", True),
        )
        if config.get("scale_attn_by_inverse_layer_idx") or config.get("scale_attn_weights") is False:
            raise NotImplementedError("only the default GPT-2 attention scaling is implemented")
    elif mt == "gpt_neox":
        d_model = config["hidden_size"]
        n_heads = config["num_attention_heads"]
        d_head = d_model // n_heads
        d.update(
            d_model=d_model,
            n_layers=config["num_hidden_layers"],
            n_heads=n_heads,
            n_kv_heads=n_heads,
            d_head=d_head,
            d_mlp=config["intermediate_size"],
            eps=config.get("layer_norm_eps", 1e-5),
            act=config.get("hidden_act", "gelu"),
            norm="LN",
            positional="rotary",
            rotary_dim=int(d_head * config.get("rotary_pct", 0.25)),
            rotary_base=config.get("rotary_emb_base", 10000),
            parallel=config.get("use_parallel_residual", True),
            gated=False,
            sliding_window=None,
            tied=config.get("tie_word_embeddings", False),
        )
        if config.get("rope_scaling"):
            raise NotImplementedError("rope_scaling is not implemented")
    elif mt in ("llama", "mistral", "qwen2"):
        d_model = config["hidden_size"]
        n_heads = config["num_attention_heads"]
        d_head = config.get("head_dim") or d_model // n_heads
        window = None
        if mt == "mistral":
            window = config.get("sliding_window")
        elif mt == "qwen2" and config.get("use_sliding_window"):
            raise NotImplementedError("qwen2 use_sliding_window is not implemented")
        d.update(
            d_model=d_model,
            n_layers=config["num_hidden_layers"],
            n_heads=n_heads,
            n_kv_heads=config.get("num_key_value_heads") or n_heads,
            d_head=d_head,
            d_mlp=config["intermediate_size"],
            eps=config.get("rms_norm_eps", 1e-6),
            act=config.get("hidden_act", "silu"),
            norm="RMS",
            positional="rotary",
            rotary_dim=d_head,
            rotary_base=config.get("rope_theta", 10000.0),
            parallel=False,
            gated=True,
            sliding_window=window,
            tied=config.get("tie_word_embeddings", False),
        )
        if config.get("rope_scaling"):
            raise NotImplementedError("rope_scaling is not implemented")
    elif mt in ("qwen3", "phi3", "olmo2", "gemma2", "gemma3_text"):
        gemma = mt.startswith("gemma")
        d_model = config["hidden_size"]
        n_heads = config["num_attention_heads"]
        default_head = {"qwen3": 128, "gemma2": 256, "gemma3_text": 256}.get(mt)
        d_head = config.get("head_dim") or default_head or d_model // n_heads
        rotary_dim = d_head
        if mt == "phi3":
            rotary_dim = int(d_head * config.get("partial_rotary_factor", 1.0))
        n_layers = config["num_hidden_layers"]
        window = config.get("sliding_window") if mt in ("phi3", "gemma2", "gemma3_text") else None
        if gemma:
            if config.get("sliding_window") is None and "sliding_window" not in config:
                window = 4096
            types = config.get("layer_types")
            if types is None:
                period = config.get("sliding_window_pattern", 6 if mt == "gemma3_text" else 2)
                types = ["sliding_attention" if (i + 1) % period else "full_attention" for i in range(n_layers)]
            windows = [window if t == "sliding_attention" else None for t in types]
        else:
            windows = [window] * n_layers
        if mt == "qwen3" and config.get("use_sliding_window"):
            raise NotImplementedError("qwen3 use_sliding_window is not implemented")
        default_softcap = lambda key, v: config[key] if key in config else v  # noqa: E731
        d.update(
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            n_kv_heads=config.get("num_key_value_heads") or n_heads,
            d_head=d_head,
            d_mlp=config["intermediate_size"],
            eps=config.get("rms_norm_eps", 1e-6 if mt in ("qwen3",) or gemma else 1e-5),
            act=(config.get("hidden_activation") or config.get("hidden_act") or "gelu_pytorch_tanh") if gemma
            else config.get("hidden_act", "silu"),
            norm="RMS",
            positional="rotary",
            rotary_dim=rotary_dim,
            rotary_base=config.get("rope_theta", 1000000.0 if mt == "gemma3_text" else 10000.0),
            local_rotary_base=config.get("rope_local_base_freq", 10000.0) if mt == "gemma3_text" else None,
            parallel=False,
            gated=True,
            sliding_window=None,
            layer_windows=windows,
            tied=config.get("tie_word_embeddings", gemma),
            qk_norm={"qwen3": "head", "gemma3_text": "head", "olmo2": "all"}.get(mt),
            pre_norm=mt != "olmo2",
            post_norm=gemma or mt == "olmo2",
            norm_plus_one=gemma,
            embed_scale=math.sqrt(d_model) if gemma else None,
            attn_scale=(config.get("query_pre_attn_scalar", 256) ** -0.5) if gemma else d_head ** -0.5,
            attn_softcap=default_softcap("attn_logit_softcapping", 50.0 if mt == "gemma2" else None) if gemma else None,
            final_softcap=default_softcap("final_logit_softcapping", 30.0 if mt == "gemma2" else None) if gemma else None,
        )
        if config.get("rope_scaling"):
            raise NotImplementedError("rope_scaling is not implemented")
    else:
        raise NotImplementedError(f"model_type {mt!r}")
    d.setdefault("layer_windows", [d["sliding_window"]] * d["n_layers"])
    for key in ("qk_norm", "embed_scale", "attn_softcap", "final_softcap", "local_rotary_base"):
        d.setdefault(key, None)
    d.setdefault("pre_norm", True)
    d.setdefault("post_norm", False)
    d.setdefault("norm_plus_one", False)
    d.setdefault("attn_scale", d["d_head"] ** -0.5)
    if d["n_heads"] % d["n_kv_heads"] != 0:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    if d["rotary_dim"] is not None and d["rotary_dim"] % 2:
        raise ValueError("rotary dimension must be even")
    return d


def hook_names(config):
    """TransformerLens hook names this reference records, in execution order."""
    a = describe(config)
    names = ["hook_embed"]
    if a["positional"] == "learned":
        names.append("hook_pos_embed")
    for L in range(a["n_layers"]):
        b = f"blocks.{L}."
        names.append(b + "hook_resid_pre")
        if a["pre_norm"]:
            names += [b + "ln1.hook_scale", b + "ln1.hook_normalized"]
        names += [b + "attn.hook_q", b + "attn.hook_k", b + "attn.hook_v"]
        if a["qk_norm"]:
            names += [b + "attn.q_norm.hook_scale", b + "attn.q_norm.hook_normalized",
                      b + "attn.k_norm.hook_scale", b + "attn.k_norm.hook_normalized"]
        if a["positional"] == "rotary":
            names += [b + "attn.hook_rot_q", b + "attn.hook_rot_k"]
        names += [b + "attn.hook_attn_scores", b + "attn.hook_pattern", b + "attn.hook_z",
                  b + "attn.hook_result"]
        if a["post_norm"]:
            names += [b + "ln1_post.hook_scale", b + "ln1_post.hook_normalized"]
        names.append(b + "hook_attn_out")
        if not a["parallel"]:
            names.append(b + "hook_resid_mid")
        if a["pre_norm"]:
            names += [b + "ln2.hook_scale", b + "ln2.hook_normalized"]
        names.append(b + "mlp.hook_pre")
        if a["gated"]:
            names.append(b + "mlp.hook_pre_linear")
        names.append(b + "mlp.hook_post")
        if a["post_norm"]:
            names += [b + "ln2_post.hook_scale", b + "ln2_post.hook_normalized"]
        names += [b + "hook_mlp_out", b + "hook_resid_post"]
    names += ["ln_final.hook_scale", "ln_final.hook_normalized"]
    return names


# ---------------------------------------------------------------------------
# Weight extraction: HF names -> per-layer float64 matrices in "x @ W" form
# ---------------------------------------------------------------------------

def _get(weights, name):
    if name not in weights:
        raise KeyError(f"missing tensor {name!r}")
    return weights[name].to(DT)


def extract_params(config, weights):
    """Return a dict of float64 parameters in a uniform layout:
    embed [vocab, d], pos [n_pos, d] (gpt2), unembed [d, vocab], and per layer
    W_Q [d, H*dh], W_K/W_V [d, Hkv*dh], b_Q/b_K/b_V, W_O [H*dh, d], b_O,
    ln1/ln2 weight (+bias), W_in/W_gate [d, d_mlp], b_in, W_out [d_mlp, d], b_out."""
    a = describe(config)
    H, Hkv, dh, dm = a["n_heads"], a["n_kv_heads"], a["d_head"], a["d_model"]
    p = {"layers": []}
    mt = a["model_type"]
    if mt == "gpt2":
        pre = "transformer." if "transformer.wte.weight" in weights else ""
        p["embed"] = _get(weights, pre + "wte.weight")
        p["pos"] = _get(weights, pre + "wpe.weight")
        for L in range(a["n_layers"]):
            h = f"{pre}h.{L}."
            # Conv1D stores [in, out]; c_attn's output columns are [q | k | v], each d_model wide,
            # and within each the heads are contiguous blocks of d_head.
            w_attn = _get(weights, h + "attn.c_attn.weight")
            b_attn = _get(weights, h + "attn.c_attn.bias")
            p["layers"].append({
                "ln1_w": _get(weights, h + "ln_1.weight"), "ln1_b": _get(weights, h + "ln_1.bias"),
                "W_Q": w_attn[:, 0:dm], "W_K": w_attn[:, dm:2 * dm], "W_V": w_attn[:, 2 * dm:3 * dm],
                "b_Q": b_attn[0:dm], "b_K": b_attn[dm:2 * dm], "b_V": b_attn[2 * dm:3 * dm],
                "W_O": _get(weights, h + "attn.c_proj.weight"), "b_O": _get(weights, h + "attn.c_proj.bias"),
                "ln2_w": _get(weights, h + "ln_2.weight"), "ln2_b": _get(weights, h + "ln_2.bias"),
                "W_in": _get(weights, h + "mlp.c_fc.weight"), "b_in": _get(weights, h + "mlp.c_fc.bias"),
                "W_out": _get(weights, h + "mlp.c_proj.weight"), "b_out": _get(weights, h + "mlp.c_proj.bias"),
            })
        p["lnf_w"] = _get(weights, pre + "ln_f.weight")
        p["lnf_b"] = _get(weights, pre + "ln_f.bias")
        if "lm_head.weight" in weights and not a["tied"]:
            p["unembed"] = _get(weights, "lm_head.weight").T
        else:
            p["unembed"] = p["embed"].T
    elif mt == "gpt_neox":
        pre = "gpt_neox."
        p["embed"] = _get(weights, pre + "embed_in.weight")
        for L in range(a["n_layers"]):
            h = f"{pre}layers.{L}."
            # nn.Linear stores [out, in]; the fused output dim is laid out [H, 3, dh].
            w = _get(weights, h + "attention.query_key_value.weight").reshape(H, 3, dh, dm)
            b = _get(weights, h + "attention.query_key_value.bias").reshape(H, 3, dh)
            layer = {
                "ln1_w": _get(weights, h + "input_layernorm.weight"),
                "ln1_b": _get(weights, h + "input_layernorm.bias"),
                "W_Q": w[:, 0].reshape(H * dh, dm).T, "W_K": w[:, 1].reshape(H * dh, dm).T,
                "W_V": w[:, 2].reshape(H * dh, dm).T,
                "b_Q": b[:, 0].reshape(-1), "b_K": b[:, 1].reshape(-1), "b_V": b[:, 2].reshape(-1),
                "W_O": _get(weights, h + "attention.dense.weight").T,
                "b_O": _get(weights, h + "attention.dense.bias"),
                "ln2_w": _get(weights, h + "post_attention_layernorm.weight"),
                "ln2_b": _get(weights, h + "post_attention_layernorm.bias"),
                "W_in": _get(weights, h + "mlp.dense_h_to_4h.weight").T,
                "b_in": _get(weights, h + "mlp.dense_h_to_4h.bias"),
                "W_out": _get(weights, h + "mlp.dense_4h_to_h.weight").T,
                "b_out": _get(weights, h + "mlp.dense_4h_to_h.bias"),
            }
            p["layers"].append(layer)
        p["lnf_w"] = _get(weights, pre + "final_layer_norm.weight")
        p["lnf_b"] = _get(weights, pre + "final_layer_norm.bias")
        if "embed_out.weight" in weights and not a["tied"]:
            p["unembed"] = _get(weights, "embed_out.weight").T
        else:
            p["unembed"] = p["embed"].T
    elif mt in ("qwen3", "phi3", "olmo2", "gemma2", "gemma3_text"):
        pre = "model."
        p["embed"] = _get(weights, pre + "embed_tokens.weight")
        zeros = lambda n: torch.zeros(n, dtype=DT)  # noqa: E731
        opt = lambda name, n: _get(weights, name) if name in weights else zeros(n)  # noqa: E731
        for L in range(a["n_layers"]):
            h = f"{pre}layers.{L}."
            layer = {}
            if mt == "phi3":
                # qkv_proj rows: all q heads, then k heads, then v heads; gate_up_proj rows: gate, then up.
                qkv = _get(weights, h + "self_attn.qkv_proj.weight")
                layer["W_Q"] = qkv[:H * dh].T
                layer["W_K"] = qkv[H * dh:(H + Hkv) * dh].T
                layer["W_V"] = qkv[(H + Hkv) * dh:].T
                gate_up = _get(weights, h + "mlp.gate_up_proj.weight")
                f = a["d_mlp"]
                layer["W_gate"] = gate_up[:f].T
                layer["W_in"] = gate_up[f:].T
            else:
                layer["W_Q"] = _get(weights, h + "self_attn.q_proj.weight").T
                layer["W_K"] = _get(weights, h + "self_attn.k_proj.weight").T
                layer["W_V"] = _get(weights, h + "self_attn.v_proj.weight").T
                layer["W_gate"] = _get(weights, h + "mlp.gate_proj.weight").T
                layer["W_in"] = _get(weights, h + "mlp.up_proj.weight").T
            layer["b_Q"] = opt(h + "self_attn.q_proj.bias", H * dh)
            layer["b_K"] = opt(h + "self_attn.k_proj.bias", Hkv * dh)
            layer["b_V"] = opt(h + "self_attn.v_proj.bias", Hkv * dh)
            layer["W_O"] = _get(weights, h + "self_attn.o_proj.weight").T
            layer["b_O"] = opt(h + "self_attn.o_proj.bias", dm)
            layer["W_out"] = _get(weights, h + "mlp.down_proj.weight").T
            if a["qk_norm"]:
                layer["q_norm_w"] = _get(weights, h + "self_attn.q_norm.weight")
                layer["k_norm_w"] = _get(weights, h + "self_attn.k_norm.weight")
            if mt.startswith("gemma"):
                layer["ln1_w"] = _get(weights, h + "input_layernorm.weight")
                layer["ln1_post_w"] = _get(weights, h + "post_attention_layernorm.weight")
                layer["ln2_w"] = _get(weights, h + "pre_feedforward_layernorm.weight")
                layer["ln2_post_w"] = _get(weights, h + "post_feedforward_layernorm.weight")
            elif mt == "olmo2":
                layer["ln1_post_w"] = _get(weights, h + "post_attention_layernorm.weight")
                layer["ln2_post_w"] = _get(weights, h + "post_feedforward_layernorm.weight")
            else:
                layer["ln1_w"] = _get(weights, h + "input_layernorm.weight")
                layer["ln2_w"] = _get(weights, h + "post_attention_layernorm.weight")
            p["layers"].append(layer)
        p["lnf_w"] = _get(weights, pre + "norm.weight")
        if "lm_head.weight" in weights and not a["tied"]:
            p["unembed"] = _get(weights, "lm_head.weight").T
        elif a["tied"]:
            p["unembed"] = p["embed"].T
        else:
            raise KeyError("lm_head.weight missing and tie_word_embeddings is false")
    else:  # llama / mistral / qwen2
        pre = "model."
        p["embed"] = _get(weights, pre + "embed_tokens.weight")
        zeros = lambda n: torch.zeros(n, dtype=DT)  # noqa: E731
        for L in range(a["n_layers"]):
            h = f"{pre}layers.{L}."
            opt = lambda name, n: _get(weights, name) if name in weights else zeros(n)  # noqa: E731
            p["layers"].append({
                "ln1_w": _get(weights, h + "input_layernorm.weight"),
                "W_Q": _get(weights, h + "self_attn.q_proj.weight").T,
                "W_K": _get(weights, h + "self_attn.k_proj.weight").T,
                "W_V": _get(weights, h + "self_attn.v_proj.weight").T,
                "b_Q": opt(h + "self_attn.q_proj.bias", H * dh),
                "b_K": opt(h + "self_attn.k_proj.bias", Hkv * dh),
                "b_V": opt(h + "self_attn.v_proj.bias", Hkv * dh),
                "W_O": _get(weights, h + "self_attn.o_proj.weight").T,
                "b_O": opt(h + "self_attn.o_proj.bias", dm),
                "ln2_w": _get(weights, h + "post_attention_layernorm.weight"),
                "W_gate": _get(weights, h + "mlp.gate_proj.weight").T,
                "W_in": _get(weights, h + "mlp.up_proj.weight").T,
                "W_out": _get(weights, h + "mlp.down_proj.weight").T,
            })
        p["lnf_w"] = _get(weights, pre + "norm.weight")
        if "lm_head.weight" in weights and not a["tied"]:
            p["unembed"] = _get(weights, "lm_head.weight").T
        elif a["tied"]:
            p["unembed"] = p["embed"].T
        else:
            raise KeyError("lm_head.weight missing and tie_word_embeddings is false")
    # Shape sanity checks.
    for layer in p["layers"]:
        assert layer["W_Q"].shape == (dm, H * dh), layer["W_Q"].shape
        assert layer["W_K"].shape == (dm, Hkv * dh), layer["W_K"].shape
        assert layer["W_V"].shape == (dm, Hkv * dh), layer["W_V"].shape
        assert layer["W_O"].shape == (H * dh, dm), layer["W_O"].shape
    return p


# ---------------------------------------------------------------------------
# Forward pass
# ---------------------------------------------------------------------------

class Model:
    def __init__(self, config, weights):
        self.config = config
        self.arch = describe(config)
        self.params = extract_params(config, weights)

    def new_cache(self):
        return KVCache(self.arch["n_layers"])

    def _norm(self, x, which, layer=None):
        src = self.params if layer is None else layer
        if self.arch["norm"] == "LN":
            return layer_norm(x, src[which + "_w"], src[which + "_b"], self.arch["eps"])
        w = src[which + "_w"]
        if self.arch["norm_plus_one"]:  # Gemma's RMSNorm: x_hat * (1 + w)
            w = 1.0 + w
        return rms_norm(x, w, self.arch["eps"])

    def _attention(self, x_normed, layer, L, positions, cache, hooks):
        a = self.arch
        b, p, _ = x_normed.shape
        H, Hkv, dh = a["n_heads"], a["n_kv_heads"], a["d_head"]
        pre = f"blocks.{L}.attn."
        q = (x_normed @ layer["W_Q"] + layer["b_Q"]).reshape(b, p, H, dh)
        k = (x_normed @ layer["W_K"] + layer["b_K"]).reshape(b, p, Hkv, dh)
        v = (x_normed @ layer["W_V"] + layer["b_V"]).reshape(b, p, Hkv, dh)
        hooks[pre + "hook_q"] = q
        hooks[pre + "hook_k"] = k
        hooks[pre + "hook_v"] = v
        if a["qk_norm"]:
            for name, t, heads in (("q_norm", q, H), ("k_norm", k, Hkv)):
                flat = t.reshape(b, p, heads * dh) if a["qk_norm"] == "all" else t
                out, scale, normalized = self._norm(flat, name, layer)
                hooks[pre + name + ".hook_scale"] = scale
                hooks[pre + name + ".hook_normalized"] = normalized
                if name == "q_norm":
                    q = out.reshape(b, p, heads, dh)
                else:
                    k = out.reshape(b, p, heads, dh)
        window = a["layer_windows"][L]
        if a["positional"] == "rotary":
            base = a["rotary_base"]
            if a["local_rotary_base"] is not None and window is not None:
                base = a["local_rotary_base"]
            q = apply_rotary(q, positions, a["rotary_dim"], base)
            k = apply_rotary(k, positions, a["rotary_dim"], base)
            hooks[pre + "hook_rot_q"] = q
            hooks[pre + "hook_rot_k"] = k
        if cache is not None:
            k, v = cache.append(L, k, v)
        key_positions = torch.arange(k.shape[1])
        # Query head h reads key/value head h // (H / Hkv)  (repeat_interleave / repeat_kv).
        group = H // Hkv
        k_full = k.repeat_interleave(group, dim=2)
        v_full = v.repeat_interleave(group, dim=2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k_full) * a["attn_scale"]
        if a["attn_softcap"]:
            scores = a["attn_softcap"] * torch.tanh(scores / a["attn_softcap"])
        ok = allowed_mask(positions, key_positions, window)
        scores = torch.where(ok[None, None], scores, torch.tensor(NEG_INF, dtype=DT))
        hooks[pre + "hook_attn_scores"] = scores
        pattern = torch.softmax(scores, dim=-1)
        hooks[pre + "hook_pattern"] = pattern
        z = torch.einsum("bhqk,bkhd->bqhd", pattern, v_full)
        hooks[pre + "hook_z"] = z
        # Per-head output: z_h @ W_O[h], W_O[h] = rows h*dh:(h+1)*dh of W_O, without b_O.
        W_O = layer["W_O"].reshape(H, dh, a["d_model"])
        result = torch.einsum("bqhd,hdm->bqhm", z, W_O)
        hooks[pre + "hook_result"] = result
        return result.sum(dim=2) + layer["b_O"]

    def _mlp(self, x_normed, layer, L, hooks):
        a = self.arch
        pre = f"blocks.{L}.mlp."
        act = ACTIVATIONS[a["act"]]
        if a["gated"]:
            gate = x_normed @ layer["W_gate"]
            up = x_normed @ layer["W_in"]
            hooks[pre + "hook_pre"] = gate
            hooks[pre + "hook_pre_linear"] = up
            post = act(gate) * up
            hooks[pre + "hook_post"] = post
            return post @ layer["W_out"]
        pre_act = x_normed @ layer["W_in"] + layer["b_in"]
        hooks[pre + "hook_pre"] = pre_act
        post = act(pre_act)
        hooks[pre + "hook_post"] = post
        return post @ layer["W_out"] + layer["b_out"]

    def forward(self, tokens, cache=None):
        """tokens: LongTensor [b, p].  With a cache, positions continue after the
        cached ones and the cache is extended.  Returns (logits, hooks)."""
        a = self.arch
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        b, p = tokens.shape
        offset = 0 if cache is None else cache.length
        positions = torch.arange(offset, offset + p)
        hooks = {}
        embed = self.params["embed"][tokens]
        if a["embed_scale"] is not None:
            embed = embed * a["embed_scale"]
        hooks["hook_embed"] = embed
        resid = embed
        if a["positional"] == "learned":
            pos = self.params["pos"][positions][None].expand(b, p, a["d_model"])
            hooks["hook_pos_embed"] = pos
            resid = embed + pos
        for L, layer in enumerate(self.params["layers"]):
            blk = f"blocks.{L}."
            hooks[blk + "hook_resid_pre"] = resid
            attn_out = self._branch(resid, "ln1", layer, blk, hooks,
                                    lambda x: self._attention(x, layer, L, positions, cache, hooks))
            hooks[blk + "hook_attn_out"] = attn_out
            if a["parallel"]:
                # GPT-NeoX use_parallel_residual: x + attn(ln1(x)) + mlp(ln2(x))
                mlp_out = self._branch(resid, "ln2", layer, blk, hooks, lambda x: self._mlp(x, layer, L, hooks))
                hooks[blk + "hook_mlp_out"] = mlp_out
                resid = resid + attn_out + mlp_out
            else:
                mid = resid + attn_out
                hooks[blk + "hook_resid_mid"] = mid
                mlp_out = self._branch(mid, "ln2", layer, blk, hooks, lambda x: self._mlp(x, layer, L, hooks))
                hooks[blk + "hook_mlp_out"] = mlp_out
                resid = mid + mlp_out
            hooks[blk + "hook_resid_post"] = resid
        xf, sf, nf = self._norm(resid, "lnf")
        hooks["ln_final.hook_scale"] = sf
        hooks["ln_final.hook_normalized"] = nf
        logits = xf @ self.params["unembed"]
        if a["final_softcap"]:
            logits = a["final_softcap"] * torch.tanh(logits / a["final_softcap"])
        return logits, hooks

    def _branch(self, x, ln, layer, blk, hooks, fn):
        """Pre-norm (unless the family has none), the branch, its post-norm (Gemma 2/3, OLMo 2)."""
        a = self.arch
        if a["pre_norm"]:
            x, scale, normalized = self._norm(x, ln, layer)
            hooks[blk + ln + ".hook_scale"] = scale
            hooks[blk + ln + ".hook_normalized"] = normalized
        out = fn(x)
        if a["post_norm"]:
            out, scale, normalized = self._norm(out, ln + "_post", layer)
            hooks[blk + ln + "_post.hook_scale"] = scale
            hooks[blk + ln + "_post.hook_normalized"] = normalized
        return out


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    weights = safetensors_io.read_checkpoint(model_dir)
    return Model(config, weights)


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 2
    model = load_model(argv[1])
    with open(argv[2]) as f:
        tokens = json.load(f)["input_ids"]
    logits, hooks = model.forward(torch.tensor(tokens))
    print("logits", tuple(logits.shape), "min %.4f max %.4f" % (logits.min(), logits.max()))
    print(len(hooks), "hooks:", ", ".join(sorted(hooks)[:6]), "...")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
