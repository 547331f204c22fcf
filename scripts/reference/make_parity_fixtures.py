"""Write the parity fixtures under tests/fixtures/parity/ (deterministic).

    /usr/bin/python3 scripts/reference/make_parity_fixtures.py [--out DIR]

For every case a folder <out>/<case>/ is written in the Hugging Face layout
(config.json + model.safetensors, or two shards + model.safetensors.index.json)
plus reference/tokens.json and reference/<hook name>.npy, reference/logits.npy.
Weights are drawn from fixed-seed torch generators, rounded to the storage
dtype (F32 or BF16), and the reference activations are computed in float64 from
exactly the stored (rounded) values, then saved as float32 .npy files.
Running the script twice produces byte-identical files.
"""

import argparse
import math
import json
import os
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_models as rm  # noqa: E402
import safetensors_io  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "parity")

VOCAB = 97
BATCH = 2
SEQ = 9
D_MODEL = 32
N_LAYERS = 2
N_HEADS = 4
# 2 x d_model rather than the usual 4x (or 8/3 x for SwiGLU): keeps the whole
# fixture set near 2 MB while d_mlp still differs from d_model and vocab.
D_MLP = 2 * D_MODEL

# Cases that exist to exercise a loading path (key prefix, dtype, sharding) store
# a reduced reference: logits plus the residual stream and the final norm.
LOADER_VARIANTS = ("gpt2-noprefix", "llama-bf16", "llama-sharded")


# ---------------------------------------------------------------------------
# Configs (HF field names)
# ---------------------------------------------------------------------------

def gpt2_config():
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": VOCAB,
        "n_embd": D_MODEL,
        "n_layer": N_LAYERS,
        "n_head": N_HEADS,
        "n_positions": 16,
        "n_ctx": 16,
        "n_inner": D_MLP,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "torch_dtype": "float32",
    }


def neox_config(rotary_pct, parallel, rotary_base):
    return {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "vocab_size": VOCAB,
        "hidden_size": D_MODEL,
        "num_hidden_layers": N_LAYERS,
        "num_attention_heads": N_HEADS,
        "intermediate_size": D_MLP,
        "hidden_act": "gelu",
        "rotary_pct": rotary_pct,
        "rotary_emb_base": rotary_base,
        "use_parallel_residual": parallel,
        "layer_norm_eps": 1e-5,
        "max_position_embeddings": 64,
        "attention_bias": True,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "torch_dtype": "float32",
    }


def llama_family_config(model_type, n_kv_heads, tied, rope_theta, d_mlp, head_dim=None,
                        torch_dtype="float32", extra=None):
    arch = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
            "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "phi3": "Phi3ForCausalLM",
            "olmo2": "Olmo2ForCausalLM", "gemma2": "Gemma2ForCausalLM",
            "gemma3_text": "Gemma3ForCausalLM"}[model_type]
    cfg = {
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": VOCAB,
        "hidden_size": D_MODEL,
        "num_hidden_layers": N_LAYERS,
        "num_attention_heads": N_HEADS,
        "num_key_value_heads": n_kv_heads,
        "intermediate_size": d_mlp,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "rope_theta": rope_theta,
        "rope_scaling": None,
        "max_position_embeddings": 64,
        "tie_word_embeddings": tied,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": torch_dtype,
    }
    if model_type == "llama":
        cfg["attention_bias"] = False
        cfg["mlp_bias"] = False
    if head_dim is not None:
        cfg["head_dim"] = head_dim
    if extra:
        cfg.update(extra)
    return cfg


# ---------------------------------------------------------------------------
# Weights (HF names), float64 before rounding to the storage dtype
# ---------------------------------------------------------------------------

class Draw:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std, mean=0.0):
        return mean + std * torch.randn(*shape, generator=self.g, dtype=torch.float64)

    def norm_weight(self, n):
        # Around 1 with some spread, as trained norms look.
        return self.normal((n,), 0.2, mean=1.0)


def gpt2_weights(cfg, seed, prefix):
    r = Draw(seed)
    d, f = cfg["n_embd"], cfg["n_inner"]
    w = {
        prefix + "wte.weight": r.normal((cfg["vocab_size"], d), 0.5),
        prefix + "wpe.weight": r.normal((cfg["n_positions"], d), 0.3),
    }
    for L in range(cfg["n_layer"]):
        h = f"{prefix}h.{L}."
        q = r.normal((d, d), 0.25)
        k = r.normal((d, d), 0.25)
        v = r.normal((d, d), 0.25)
        w[h + "ln_1.weight"] = r.norm_weight(d)
        w[h + "ln_1.bias"] = r.normal((d,), 0.1)
        w[h + "attn.c_attn.weight"] = torch.cat([q, k, v], dim=1)  # Conv1D: [in, out]
        w[h + "attn.c_attn.bias"] = r.normal((3 * d,), 0.1)
        w[h + "attn.c_proj.weight"] = r.normal((d, d), 0.2)
        w[h + "attn.c_proj.bias"] = r.normal((d,), 0.1)
        w[h + "ln_2.weight"] = r.norm_weight(d)
        w[h + "ln_2.bias"] = r.normal((d,), 0.1)
        w[h + "mlp.c_fc.weight"] = r.normal((d, f), 0.25)
        w[h + "mlp.c_fc.bias"] = r.normal((f,), 0.1)
        w[h + "mlp.c_proj.weight"] = r.normal((f, d), 0.12)
        w[h + "mlp.c_proj.bias"] = r.normal((d,), 0.1)
    w[prefix + "ln_f.weight"] = r.norm_weight(d)
    w[prefix + "ln_f.bias"] = r.normal((d,), 0.1)
    return w


def neox_weights(cfg, seed):
    r = Draw(seed)
    d, f, H = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"]
    dh = d // H
    w = {"gpt_neox.embed_in.weight": r.normal((cfg["vocab_size"], d), 0.5)}
    for L in range(cfg["num_hidden_layers"]):
        h = f"gpt_neox.layers.{L}."
        q = r.normal((H, dh, d), 0.25)
        k = r.normal((H, dh, d), 0.25)
        v = r.normal((H, dh, d), 0.25)
        # nn.Linear [out, in] with the output dim laid out [H, 3 (q,k,v), dh].
        qkv = torch.stack([q, k, v], dim=1).reshape(3 * d, d)
        w[h + "input_layernorm.weight"] = r.norm_weight(d)
        w[h + "input_layernorm.bias"] = r.normal((d,), 0.1)
        w[h + "post_attention_layernorm.weight"] = r.norm_weight(d)
        w[h + "post_attention_layernorm.bias"] = r.normal((d,), 0.1)
        w[h + "attention.query_key_value.weight"] = qkv
        w[h + "attention.query_key_value.bias"] = r.normal((3 * d,), 0.1)
        w[h + "attention.dense.weight"] = r.normal((d, d), 0.2)
        w[h + "attention.dense.bias"] = r.normal((d,), 0.1)
        w[h + "mlp.dense_h_to_4h.weight"] = r.normal((f, d), 0.25)
        w[h + "mlp.dense_h_to_4h.bias"] = r.normal((f,), 0.1)
        w[h + "mlp.dense_4h_to_h.weight"] = r.normal((d, f), 0.12)
        w[h + "mlp.dense_4h_to_h.bias"] = r.normal((d,), 0.1)
    w["gpt_neox.final_layer_norm.weight"] = r.norm_weight(d)
    w["gpt_neox.final_layer_norm.bias"] = r.normal((d,), 0.1)
    w["embed_out.weight"] = r.normal((cfg["vocab_size"], d), 0.3)
    return w


def llama_family_weights(cfg, seed, qkv_bias=False):
    r = Draw(seed)
    d, f = cfg["hidden_size"], cfg["intermediate_size"]
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    dh = cfg.get("head_dim") or d // H
    w = {"model.embed_tokens.weight": r.normal((cfg["vocab_size"], d), 0.5)}
    for L in range(cfg["num_hidden_layers"]):
        h = f"model.layers.{L}."
        w[h + "input_layernorm.weight"] = r.norm_weight(d)
        w[h + "self_attn.q_proj.weight"] = r.normal((H * dh, d), 0.25)
        w[h + "self_attn.k_proj.weight"] = r.normal((Hkv * dh, d), 0.25)
        w[h + "self_attn.v_proj.weight"] = r.normal((Hkv * dh, d), 0.25)
        w[h + "self_attn.o_proj.weight"] = r.normal((d, H * dh), 0.2)
        if qkv_bias:
            w[h + "self_attn.q_proj.bias"] = r.normal((H * dh,), 0.2)
            w[h + "self_attn.k_proj.bias"] = r.normal((Hkv * dh,), 0.4)
            w[h + "self_attn.v_proj.bias"] = r.normal((Hkv * dh,), 0.2)
        w[h + "post_attention_layernorm.weight"] = r.norm_weight(d)
        w[h + "mlp.gate_proj.weight"] = r.normal((f, d), 0.25)
        w[h + "mlp.up_proj.weight"] = r.normal((f, d), 0.25)
        w[h + "mlp.down_proj.weight"] = r.normal((d, f), 0.15)
    w["model.norm.weight"] = r.norm_weight(d)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = r.normal((cfg["vocab_size"], d), 0.3)
    return w


def family_weights(cfg, seed, qkv_bias=False):
    """Qwen3, Phi-3, OLMo 2, Gemma 2 / 3: their tensor names, fused or split, norms where each
    family has them. Gemma's norm weights w scale by (1 + w): drawn around 0, not 1."""
    r = Draw(seed)
    mt = cfg["model_type"]
    gemma = mt.startswith("gemma")
    d, f = cfg["hidden_size"], cfg["intermediate_size"]
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    dh = cfg.get("head_dim") or d // H
    norm = (lambda n: r.normal((n,), 0.2)) if gemma else r.norm_weight
    w = {"model.embed_tokens.weight": r.normal((cfg["vocab_size"], d), 0.5 if not gemma else 0.5 / math.sqrt(d))}
    for L in range(cfg["num_hidden_layers"]):
        h = f"model.layers.{L}."
        if mt != "olmo2":
            w[h + "input_layernorm.weight"] = norm(d)
        q = r.normal((H * dh, d), 0.25)
        k = r.normal((Hkv * dh, d), 0.25)
        v = r.normal((Hkv * dh, d), 0.25)
        if mt == "phi3":
            w[h + "self_attn.qkv_proj.weight"] = torch.cat([q, k, v], dim=0)
        else:
            w[h + "self_attn.q_proj.weight"] = q
            w[h + "self_attn.k_proj.weight"] = k
            w[h + "self_attn.v_proj.weight"] = v
        if qkv_bias:
            w[h + "self_attn.q_proj.bias"] = r.normal((H * dh,), 0.2)
            w[h + "self_attn.k_proj.bias"] = r.normal((Hkv * dh,), 0.4)
            w[h + "self_attn.v_proj.bias"] = r.normal((Hkv * dh,), 0.2)
        if mt in ("qwen3", "gemma3_text"):
            w[h + "self_attn.q_norm.weight"] = norm(dh)
            w[h + "self_attn.k_norm.weight"] = norm(dh)
        elif mt == "olmo2":
            w[h + "self_attn.q_norm.weight"] = norm(H * dh)
            w[h + "self_attn.k_norm.weight"] = norm(Hkv * dh)
        w[h + "self_attn.o_proj.weight"] = r.normal((d, H * dh), 0.2)
        if qkv_bias:
            w[h + "self_attn.o_proj.bias"] = r.normal((d,), 0.1)
        w[h + "post_attention_layernorm.weight"] = norm(d)
        if gemma:
            w[h + "pre_feedforward_layernorm.weight"] = norm(d)
        if mt == "phi3":
            w[h + "mlp.gate_up_proj.weight"] = torch.cat([r.normal((f, d), 0.25), r.normal((f, d), 0.25)], dim=0)
        else:
            w[h + "mlp.gate_proj.weight"] = r.normal((f, d), 0.25)
            w[h + "mlp.up_proj.weight"] = r.normal((f, d), 0.25)
        w[h + "mlp.down_proj.weight"] = r.normal((d, f), 0.15)
        if gemma or mt == "olmo2":
            w[h + "post_feedforward_layernorm.weight"] = norm(d)
    w["model.norm.weight"] = norm(d)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = r.normal((cfg["vocab_size"], d), 0.3)
    return w


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def build_cases():
    """name -> (config, float64 weights, storage dtype, shards or None, token seed)."""
    cases = {}
    cfg = gpt2_config()
    cases["gpt2"] = (cfg, gpt2_weights(cfg, 101, "transformer."), torch.float32, None)
    cfg = gpt2_config()
    cfg["architectures"] = ["GPT2Model"]
    cases["gpt2-noprefix"] = (cfg, gpt2_weights(cfg, 102, ""), torch.float32, None)
    cfg = neox_config(0.25, True, 10000)
    cases["gpt_neox-parallel"] = (cfg, neox_weights(cfg, 103), torch.float32, None)
    cfg = neox_config(0.5, False, 10000)
    cases["gpt_neox-sequential"] = (cfg, neox_weights(cfg, 104), torch.float32, None)
    d_mlp = D_MLP
    cfg = llama_family_config("llama", 2, False, 10000.0, d_mlp)
    cases["llama-gqa"] = (cfg, llama_family_weights(cfg, 105), torch.float32, None)
    cfg = llama_family_config("llama", 2, True, 10000.0, d_mlp, head_dim=12)
    cases["llama-headdim"] = (cfg, llama_family_weights(cfg, 106), torch.float32, None)
    cfg = llama_family_config("mistral", 2, False, 10000.0, d_mlp, extra={"sliding_window": 4})
    cases["mistral-window"] = (cfg, llama_family_weights(cfg, 107), torch.float32, None)
    cfg = llama_family_config("qwen2", 2, True, 1000000.0, d_mlp,
                              extra={"use_sliding_window": False, "sliding_window": 32768,
                                     "max_window_layers": N_LAYERS})
    cases["qwen2"] = (cfg, llama_family_weights(cfg, 108, qkv_bias=True), torch.float32, None)
    cfg = llama_family_config("llama", 1, False, 10000.0, d_mlp, torch_dtype="bfloat16")
    cases["llama-bf16"] = (cfg, llama_family_weights(cfg, 109), torch.bfloat16, None)
    cfg = llama_family_config("llama", 2, False, 10000.0, d_mlp)
    weights = llama_family_weights(cfg, 110)
    shard1 = sorted(n for n in weights if n.startswith("model.embed_tokens.") or n.startswith("model.layers.0."))
    shard2 = sorted(n for n in weights if n not in shard1)
    cases["llama-sharded"] = (cfg, weights, torch.float32, [shard1, shard2])
    # Families of issue [3/7]. Windows of 4 keys are shorter than the 9-token prompts; soft-caps
    # are small enough (5, 3) that tanh bends the scores and logits these weights give.
    cfg = llama_family_config("qwen3", 2, False, 1000000.0, d_mlp, head_dim=12)
    cases["qwen3"] = (cfg, family_weights(cfg, 111), torch.float32, None)
    cfg = llama_family_config("qwen3", 4, True, 10000.0, d_mlp, head_dim=8, extra={"attention_bias": True})
    cases["qwen3-tied-bias"] = (cfg, family_weights(cfg, 112, qkv_bias=True), torch.float32, None)
    cfg = llama_family_config("phi3", 2, False, 10000.0, d_mlp,
                              extra={"partial_rotary_factor": 0.5, "sliding_window": 4, "rms_norm_eps": 1e-5})
    cases["phi3"] = (cfg, family_weights(cfg, 113), torch.float32, None)
    cfg = llama_family_config("olmo2", 2, False, 500000.0, d_mlp, extra={"rms_norm_eps": 1e-6})
    cases["olmo2"] = (cfg, family_weights(cfg, 114), torch.float32, None)
    gemma2 = {"hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": 24, "sliding_window": 4,
              "attn_logit_softcapping": 5.0, "final_logit_softcapping": 3.0, "head_dim": 16}
    cfg = llama_family_config("gemma2", 2, True, 10000.0, d_mlp, extra=gemma2)
    del cfg["hidden_act"]
    cases["gemma2"] = (cfg, family_weights(cfg, 115), torch.float32, None)
    gemma3 = {"hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": 16, "sliding_window": 4,
              "layer_types": ["sliding_attention", "full_attention"], "rope_local_base_freq": 10000.0,
              "attn_logit_softcapping": None, "final_logit_softcapping": None, "head_dim": 8}
    cfg = llama_family_config("gemma3_text", 1, False, 1000000.0, d_mlp, extra=gemma3)
    del cfg["hidden_act"]
    cases["gemma3"] = (cfg, family_weights(cfg, 116), torch.float32, None)
    return cases


def case_tokens(index):
    g = torch.Generator().manual_seed(9000 + index)
    return torch.randint(0, VOCAB, (BATCH, SEQ), generator=g)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def write_npy(path, tensor):
    arr = np.ascontiguousarray(tensor.detach().cpu().numpy().astype("<f4"))
    np.save(path, arr, allow_pickle=False)


def loader_variant_hooks(names):
    """The reduced set kept for loader-variant cases."""
    keep = []
    for n in names:
        if n in ("hook_embed", "hook_pos_embed", "ln_final.hook_scale", "ln_final.hook_normalized"):
            keep.append(n)
        elif n.startswith("blocks.") and n.endswith(".hook_resid_post"):
            keep.append(n)
    return keep


def attention_stats(hooks, n_layers):
    """Mean (over rows with >= 3 visible keys) of the largest attention weight,
    and of the row entropy divided by log(#visible keys): 1.0 means uniform."""
    maxes, ents = [], []
    for L in range(n_layers):
        pat = hooks[f"blocks.{L}.attn.hook_pattern"]
        scores = hooks[f"blocks.{L}.attn.hook_attn_scores"]
        visible = torch.isfinite(scores).sum(-1)  # [b, h, q]
        rows = visible >= 3
        plogp = torch.where(pat > 0, pat * pat.log(), torch.zeros_like(pat)).sum(-1)
        ents.append((-plogp / visible.double().log())[rows])
        maxes.append(pat.max(-1).values[rows])
    return float(torch.cat(maxes).mean()), float(torch.cat(ents).mean())


def write_case(out_dir, name, index, cfg, weights64, dtype, shards):
    case_dir = os.path.join(out_dir, name)
    if os.path.exists(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(os.path.join(case_dir, "reference"))
    stored = {n: t.to(dtype) for n, t in weights64.items()}
    write_json(os.path.join(case_dir, "config.json"), cfg)
    meta = {"format": "pt"}
    if shards is None:
        safetensors_io.write_file(os.path.join(case_dir, "model.safetensors"), stored, meta)
    else:
        n = len(shards)
        weight_map = {}
        total = 0
        for i, names in enumerate(shards):
            fname = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            part = {k: stored[k] for k in names}
            safetensors_io.write_file(os.path.join(case_dir, fname), part, meta)
            for k in names:
                weight_map[k] = fname
                total += part[k].numel() * part[k].element_size()
        write_json(os.path.join(case_dir, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total},
                    "weight_map": {k: weight_map[k] for k in sorted(weight_map)}})

    # Reference: computed from exactly what the file holds.
    model = rm.load_model(case_dir)
    tokens = case_tokens(index)
    logits, hooks = model.forward(tokens)
    names = rm.hook_names(cfg)
    assert sorted(names) == sorted(hooks), set(names) ^ set(hooks)
    if name in LOADER_VARIANTS:
        names = loader_variant_hooks(names)
    write_json(os.path.join(case_dir, "reference", "tokens.json"),
               {"input_ids": tokens.tolist()})
    for hname in names:
        write_npy(os.path.join(case_dir, "reference", hname + ".npy"), hooks[hname])
    write_npy(os.path.join(case_dir, "reference", "logits.npy"), logits)
    return logits, hooks


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: tests/fixtures/parity)")
    ap.add_argument("--quiet", action="store_true", help="do not print per-case statistics")
    ap.add_argument("--cases", nargs="*", help="write only these cases (default: all)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # fixed reduction order for reproducible bits
    os.makedirs(args.out, exist_ok=True)
    for index, (name, (cfg, weights, dtype, shards)) in enumerate(build_cases().items()):
        if args.cases and name not in args.cases:
            continue
        logits, hooks = write_case(args.out, name, index, cfg, weights, dtype, shards)
        if args.quiet:
            continue
        n_layers = cfg.get("n_layer", cfg.get("num_hidden_layers"))
        mean_max, rel_ent = attention_stats(hooks, n_layers)
        print(f"{name:20s} logits |max| {float(logits.abs().max()):5.2f} std {float(logits.std()):4.2f}"
              f" | attention: mean max weight {mean_max:.2f}, entropy/uniform {rel_ent:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
