"""Float64 reference of sparse-autoencoder encode / decode, and the fixtures it writes.

    /usr/bin/python3 scripts/reference/make_sae_fixtures.py [--out tests/fixtures/sae] [--check]

For each case it WRITES an SAE on disk the way SAELens lays it out (cfg.json +
sae_weights.safetensors, optionally sparsity.safetensors and activation_scaler.json) or Gemma
Scope does (params.npz), then computes, in float64 from the float32 weights it wrote, the
feature activations and the reconstruction of a few input positions:

    x.npy       float32 [n, d_in]  (hook_z: [n, heads, d_head])   the input activations
    acts.npy    float64 [n, d_sae]                                 hook_sae_acts_post
    recons.npy  float64 [n, d_out] (hook_z: [n, heads, d_head])   the output in x's units

The semantics are written from SAELens 6.x (saes/sae.py, standard_sae.py, gated_sae.py,
jumprelu_sae.py, topk_sae.py, transcoder.py; pretrained_sae_loaders.py for the pre-6.0 config
fields and Gemma Scope) independently of mechscope's C++: expected_average_only_in is applied as
a scale of the input and an unscale of the output (not folded), so the C++ fold is checked.

Inputs are resampled until no pre-activation sits within 1e-3 of a discontinuity (JumpReLU
threshold, gate, top-k boundary), so float32 rounding cannot flip a feature. Everything is
seeded; a rerun writes byte-identical files (--check verifies that against --out).
"""

import argparse
import io
import json
import math
import os
import sys
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixture_dirs  # noqa: E402
from fixture_dirs import ordered_matmul  # noqa: E402
import safetensors_io  # noqa: E402

D_IN, D_SAE, D_OUT, N = 16, 32, 24, 6
MARGIN = 1e-3


def f32(t):
    """Round to float32 (what the files hold), back to float64 for the arithmetic."""
    return t.to(torch.float32).to(torch.float64)


# ---------------------------------------------------------------------------------------------
# The reference pass (float64)


def relu(x):
    return torch.clamp(x, min=0.0)


def encode_decode(case, w, x):
    """x: [n, d_in] float64 -> (acts [n, d_sae], out [n, d_out]); also the discontinuity margin."""
    arch = case["arch"]
    transcoder = arch.endswith("transcoder")
    h = x
    scale = case.get("scaling_factor")
    if scale is not None:  # expected_average_only_in: the SAE was trained on x * s
        h = h * scale
    norm = case.get("norm", "none")
    if norm == "constant_norm_rescale":
        coeff = math.sqrt(D_IN) / torch.linalg.vector_norm(h, dim=-1, keepdim=True)
        h = h * coeff
    elif norm == "layer_norm":
        mu = h.mean(-1, keepdim=True)
        h = h - mu
        std = h.std(-1, keepdim=True, unbiased=True)
        h = h / (std + 1e-5)
    if not transcoder and case.get("apply_b_dec", True):
        h = h - w["b_dec"]
    margin = float("inf")
    if arch == "gated":
        gate = ordered_matmul(h, w["W_enc"]) + w["b_gate"]
        mag = ordered_matmul(h, w["W_enc"] * torch.exp(w["r_mag"])) + w["b_mag"]
        acts = (gate > 0).to(h.dtype) * relu(mag)
        margin = gate.abs().min().item()
    else:
        pre = ordered_matmul(h, w["W_enc"]) + w["b_enc"]
        if arch in ("jumprelu", "jumprelu_transcoder"):
            acts = relu(pre) * (pre > w["threshold"]).to(h.dtype)
            margin = (pre - w["threshold"]).abs().min().item()
        elif arch == "topk":
            k = case["k"]
            srt = torch.sort(pre, dim=-1, descending=True).values
            margin = (srt[:, k - 1] - srt[:, k]).min().item()
            kth = srt[:, k - 1 : k]
            acts = torch.where(pre >= kth, relu(pre), torch.zeros_like(pre))
        else:
            acts = relu(pre)
    w_dec = w["W_dec"]
    if "scaling_factor_tensor" in w:  # SAELens' finetuning scaling factor: acts scaled before W_dec
        w_dec = w_dec * w["scaling_factor_tensor"][:, None]
    out = ordered_matmul(acts, w_dec) + w["b_dec"]
    if not transcoder:
        if norm == "constant_norm_rescale":
            out = out / coeff
        elif norm == "layer_norm":
            out = out * std + mu
        if scale is not None:
            out = out / scale
    if arch == "skip_transcoder":
        out = out + ordered_matmul(x, w["W_skip"].T)
    return acts, out, margin


# ---------------------------------------------------------------------------------------------
# The cases


def saelens_cfg(case):
    """cfg.json as SAELens 6 writes it (or the pre-6.0 form for case["legacy"])."""
    arch = case["arch"]
    d_out = D_OUT if arch.endswith("transcoder") else D_IN
    if case.get("legacy"):
        return {
            "model_name": "tiny",
            "hook_point": case["hook"],
            "hook_point_layer": 0,
            "hook_point_head_index": None,
            "d_in": D_IN,
            "d_sae": D_SAE,
            "activation_fn_str": "topk",
            "activation_fn_kwargs": {"k": case["k"]},
            "normalize_activations": False,
            "apply_b_dec_to_input": True,
            "dtype": "float32",
            "device": "cpu",
            "sae_lens_training_version": "3.13.0",
        }
    cfg = {
        "architecture": arch,
        "d_in": D_IN,
        "d_sae": D_SAE,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": case.get("apply_b_dec", True),
        "normalize_activations": case.get("norm_name", case.get("norm", "none")),
        "reshape_activations": "hook_z" if case.get("hook_z") else "none",
        "metadata": {
            "model_name": "tiny",
            "hook_name": case["hook"],
            "hook_head_index": None,
            "prepend_bos": True,
            "sae_lens_version": "6.5.1",
        },
    }
    if arch == "topk":
        cfg["k"] = case["k"]
    if arch.endswith("transcoder"):
        cfg["d_out"] = d_out
        cfg["hook_name_out"] = case["hook_out"]
    return cfg


CASES = [
    {"name": "standard", "arch": "standard", "hook": "blocks.0.hook_resid_pre"},
    {"name": "standard_no_bdec", "arch": "standard", "hook": "blocks.1.hook_resid_post", "apply_b_dec": False},
    {"name": "standard_constant_norm", "arch": "standard", "hook": "blocks.0.hook_resid_pre",
     "norm": "constant_norm_rescale"},
    {"name": "standard_layer_norm", "arch": "standard", "hook": "blocks.0.hook_resid_pre", "norm": "layer_norm"},
    {"name": "standard_expected_average", "arch": "standard", "hook": "blocks.0.hook_resid_mid",
     "norm_name": "expected_average_only_in", "scaling_factor": 0.37},
    {"name": "standard_finetuning_scale", "arch": "standard", "hook": "blocks.0.hook_mlp_out", "finetune": True},
    {"name": "gated", "arch": "gated", "hook": "blocks.0.hook_resid_pre"},
    {"name": "jumprelu", "arch": "jumprelu", "hook": "blocks.2.hook_resid_post"},
    {"name": "topk", "arch": "topk", "hook": "blocks.0.hook_resid_pre", "k": 4, "sparsity": True},
    {"name": "topk_legacy_cfg", "arch": "topk", "hook": "blocks.0.hook_resid_pre", "k": 3, "legacy": True},
    {"name": "hook_z", "arch": "standard", "hook": "blocks.1.attn.hook_z", "hook_z": True},
    {"name": "transcoder", "arch": "transcoder", "hook": "blocks.0.ln2.hook_normalized", "hook_out": "blocks.0.hook_mlp_out"},
    {"name": "skip_transcoder", "arch": "skip_transcoder", "hook": "blocks.0.ln2.hook_normalized",
     "hook_out": "blocks.0.hook_mlp_out"},
    {"name": "jumprelu_transcoder", "arch": "jumprelu_transcoder", "hook": "blocks.0.ln2.hook_normalized",
     "hook_out": "blocks.0.hook_mlp_out"},
    {"name": "gemma_scope_npz", "arch": "jumprelu", "hook": "blocks.0.hook_resid_post", "npz": True,
     "apply_b_dec": False},
]


def make_weights(case, gen):
    arch = case["arch"]
    d_out = D_OUT if arch.endswith("transcoder") else D_IN

    def rnd(*shape, std=1.0):
        return f32(torch.randn(*shape, generator=gen, dtype=torch.float64) * std)

    w = {
        "W_enc": rnd(D_IN, D_SAE, std=0.4),
        "W_dec": rnd(D_SAE, d_out, std=0.3),
        "b_dec": rnd(d_out, std=0.2),
    }
    if arch == "gated":
        w["b_gate"] = rnd(D_SAE, std=0.3)
        w["r_mag"] = rnd(D_SAE, std=0.2)
        w["b_mag"] = rnd(D_SAE, std=0.3)
    else:
        w["b_enc"] = rnd(D_SAE, std=0.3)
    if arch in ("jumprelu", "jumprelu_transcoder"):
        w["threshold"] = f32(torch.rand(D_SAE, generator=gen, dtype=torch.float64) * 0.8)
    if arch == "skip_transcoder":
        w["W_skip"] = rnd(d_out, D_IN, std=0.1)
    if case.get("finetune"):
        w["scaling_factor_tensor"] = f32(0.5 + torch.rand(D_SAE, generator=gen, dtype=torch.float64))
    return w


def make_inputs(case, w, gen):
    """Inputs whose pre-activations keep MARGIN from every discontinuity."""
    for _ in range(1000):
        x = f32(torch.randn(N, D_IN, generator=gen, dtype=torch.float64) * 1.5 + 0.3)
        acts, out, margin = encode_decode(case, w, x)
        if margin > MARGIN:
            return x, acts, out
    raise RuntimeError(case["name"] + ": no input with a safe margin")


def npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def write_npz(path, arrays):
    """np.savez_compressed's layout (NAME.npy members), with a fixed timestamp for byte-identical reruns."""
    with zipfile.ZipFile(path, "w") as z:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, npy_bytes(arrays[name]))


def write_case(case, out_dir, seed):
    gen = torch.Generator().manual_seed(seed)
    w = make_weights(case, gen)
    x, acts, out = make_inputs(case, w, gen)
    d = os.path.join(out_dir, case["name"])
    os.makedirs(d, exist_ok=True)
    as32 = {k: v.to(torch.float32) for k, v in w.items()}
    if "scaling_factor_tensor" in as32:
        as32["scaling_factor"] = as32.pop("scaling_factor_tensor")
    if case.get("npz"):
        write_npz(os.path.join(d, "params.npz"), {k: v.numpy() for k, v in as32.items()})
    else:
        with open(os.path.join(d, "cfg.json"), "w") as f:
            json.dump(saelens_cfg(case), f, indent=2, sort_keys=True)
            f.write("\n")
        safetensors_io.write_file(os.path.join(d, "sae_weights.safetensors"), as32)
        if case.get("scaling_factor") is not None:
            with open(os.path.join(d, "activation_scaler.json"), "w") as f:
                json.dump({"scaling_factor": case["scaling_factor"]}, f)
                f.write("\n")
        if case.get("sparsity"):
            sp = torch.linspace(-4, -1, D_SAE, dtype=torch.float32)
            safetensors_io.write_file(os.path.join(d, "sparsity.safetensors"), {"sparsity": sp})
    xs = x.to(torch.float32).numpy()
    outs = out.numpy()
    if case.get("hook_z"):  # the activation as the hook sees it: [n, heads, d_head]
        xs = xs.reshape(N, 4, 4)
        outs = outs.reshape(N, 4, 4)
    np.save(os.path.join(d, "x.npy"), xs)
    np.save(os.path.join(d, "acts.npy"), acts.numpy())
    np.save(os.path.join(d, "recons.npy"), outs)


# ---------------------------------------------------------------------------------------------
# circuit-tracer's per-layer transcoder folder (TranscoderSet.to_safetensors at commit 196e2ce):
# layer_{i}.safetensors with W_enc [d_transcoder, d_model] (F.linear's orientation), W_dec
# [d_transcoder, d_model], b_enc, b_dec, optional activation_function.threshold (JumpReLU:
# h * (h > threshold)) and W_skip [d_model, d_model] (added as x @ W_skip.T); a config.yaml names
# the hook points relative to the block.

TC_LAYERS = [  # (jumprelu, skip) per layer
    (False, False),
    (True, False),
    (False, True),
    (True, True),
]

TC_CONFIG = """# circuit-tracer transcoder set (written by scripts/reference/make_sae_fixtures.py)
model_name: tiny
model_kind: transcoder_set
feature_input_hook: "mlp.hook_in"
feature_output_hook: mlp.hook_out  # the MLP's output
scan: tiny-transcoders
transcoders:
  - layer_0.safetensors
  - layer_1.safetensors
  - 'layer_2.safetensors'
  - layer_3.safetensors
"""


def circuit_tracer_pass(w, x):
    """circuit-tracer's SingleLayerTranscoder.forward in float64: x [n, d_model] -> (acts, out, margin)."""
    pre = ordered_matmul(x, w["W_enc"].T) + w["b_enc"]
    margin = float("inf")
    if "activation_function.threshold" in w:
        thr = w["activation_function.threshold"]
        acts = pre * (pre > thr).to(pre.dtype)
        margin = (pre - thr).abs().min().item()
    else:
        acts = relu(pre)
        margin = pre.abs().min().item()
    out = ordered_matmul(acts, w["W_dec"]) + w["b_dec"]
    if "W_skip" in w:
        out = out + ordered_matmul(x, w["W_skip"].T)
    return acts, out, margin


def write_transcoder_set(out_dir, seed):
    d = os.path.join(out_dir, "circuit_tracer_set")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.yaml"), "w") as f:
        f.write(TC_CONFIG)
    gen = torch.Generator().manual_seed(seed)
    for layer, (jump, skip) in enumerate(TC_LAYERS):

        def rnd(*shape, std=1.0):
            return f32(torch.randn(*shape, generator=gen, dtype=torch.float64) * std)

        w = {
            "W_enc": rnd(D_SAE, D_IN, std=0.4),
            "W_dec": rnd(D_SAE, D_IN, std=0.3),
            "b_enc": rnd(D_SAE, std=0.3),
            "b_dec": rnd(D_IN, std=0.2),
        }
        if jump:
            w["activation_function.threshold"] = f32(torch.rand(D_SAE, generator=gen, dtype=torch.float64) * 0.8)
        if skip:
            w["W_skip"] = rnd(D_IN, D_IN, std=0.1)
        for _ in range(1000):
            x = f32(torch.randn(N, D_IN, generator=gen, dtype=torch.float64) * 1.5 + 0.3)
            acts, out, margin = circuit_tracer_pass(w, x)
            if margin > MARGIN:
                break
        else:
            raise RuntimeError("circuit_tracer_set layer %d: no input with a safe margin" % layer)
        safetensors_io.write_file(os.path.join(d, "layer_%d.safetensors" % layer),
                                  {k: v.to(torch.float32) for k, v in w.items()})
        np.save(os.path.join(d, "x_%d.npy" % layer), x.to(torch.float32).numpy())
        np.save(os.path.join(d, "acts_%d.npy" % layer), acts.numpy())
        np.save(os.path.join(d, "recons_%d.npy" % layer), out.numpy())


def write_all(out_dir):
    for i, case in enumerate(CASES):
        write_case(case, out_dir, 1000 + i)
    write_transcoder_set(out_dir, 2000)
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("# SAE fixtures\n\nWritten by `scripts/reference/make_sae_fixtures.py` (float64 reference of "
                "SAELens 6.x encode/decode); do not edit by hand. One folder per case: the SAE as SAELens or "
                "Gemma Scope lays it out, `x.npy` (input, float32), `acts.npy` (feature activations) and "
                "`recons.npy` (reconstruction), float64. `circuit_tracer_set/` is a per-layer transcoder folder "
                "as circuit-tracer saves it (config.yaml + layer_{i}.safetensors) with `x_{i}.npy`, `acts_{i}.npy` "
                "and `recons_{i}.npy` per layer. `tests/unit/test_sae.cpp` checks mechscope against "
                "them to 1e-4 relative.\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "tests", "fixtures", "sae"))
    ap.add_argument("--check", action="store_true", help="regenerate into a temp folder and compare with --out")
    args = ap.parse_args()
    return fixture_dirs.regenerate_or_check(write_all, args.out, args.check, "sae fixtures")

if __name__ == "__main__":
    sys.exit(main())
