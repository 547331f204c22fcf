"""Float64 reference of direct feature attribution by head (hook_z SAEs), and the fixtures it writes.

    /usr/bin/python3 scripts/reference/make_sae_heads_fixtures.py [--out tests/fixtures/sae_heads] [--check]

Reads the SAE fixtures of make_sae_fixtures.py (tests/fixtures/sae/: SAELens folders written
from SAELens 6.x semantics) and, for every SAE (not transcoder) among them, treats its d_in = 16
inputs as 4 heads of d_head 4, the way an SAE on blocks.L.attn.hook_z sees its concatenated heads.
The pre-activation of the activation's path (gated: the magnitude path) is written, in float64 from
the float32 weights, as a sum over heads plus a constant:

    h = x (* s for expected_average_only_in), then the runtime norm (constant_norm_rescale,
        layer_norm): per position affine, so it is applied to the whole x first
    pre[f] = sum_h h[h-slice] . W[h-slice, f]  +  (b - b_dec . W[:, f])

with W = W_enc (gated: W_enc * exp(r_mag)), b = b_enc (gated: b_mag), and the b_dec term only when
apply_b_dec_to_input. It writes per case:

    per_head.npy  float64 [n, d_sae, 4]   each head's part
    bias.npy      float64 [d_sae]         the constant

and checks that parts + constant equal the fixture's own acts.npy where a feature is active (to
1e-12 relative: both are float64 from the same float32 weights). Written independently of
mechscope's C++ (core/features/sae_heads.cpp), which tests/unit/test_sae_heads.cpp checks against
these files. Reruns are byte-identical (--check).
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixture_dirs  # noqa: E402
import safetensors_io  # noqa: E402

N_HEADS = 4
SAE_FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "sae")
CASES = ["hook_z", "standard", "standard_no_bdec", "standard_constant_norm", "standard_layer_norm",
         "standard_expected_average", "gated", "jumprelu", "topk"]


def split(case_dir):
    with open(os.path.join(case_dir, "cfg.json")) as f:
        cfg = json.load(f)
    w = {k: v.to(torch.float64) for k, v in safetensors_io.read_file(os.path.join(case_dir, "sae_weights.safetensors")).items()}
    x = torch.from_numpy(np.load(os.path.join(case_dir, "x.npy"))).to(torch.float64)
    n = x.shape[0]
    x = x.reshape(n, -1)
    d_in = x.shape[1]
    h = x
    norm = cfg.get("normalize_activations", "none")
    if norm == "expected_average_only_in":
        with open(os.path.join(case_dir, "activation_scaler.json")) as f:
            h = h * float(json.load(f)["scaling_factor"])
    elif norm == "constant_norm_rescale":
        h = h * (math.sqrt(d_in) / torch.linalg.vector_norm(h, dim=-1, keepdim=True))
    elif norm == "layer_norm":
        h = h - h.mean(-1, keepdim=True)
        h = h / (h.std(-1, keepdim=True, unbiased=True) + 1e-5)
    arch = cfg["architecture"]
    if arch == "gated":
        W = w["W_enc"] * torch.exp(w["r_mag"])
        b = w["b_mag"].clone()
    else:
        W = w["W_enc"]
        b = w["b_enc"].clone()
    if cfg.get("apply_b_dec_to_input", True):
        b = b - fixture_dirs.ordered_matmul(w["b_dec"], W)
    d_head = d_in // N_HEADS
    per_head = torch.stack([fixture_dirs.ordered_matmul(h[:, i * d_head:(i + 1) * d_head], W[i * d_head:(i + 1) * d_head, :])
                            for i in range(N_HEADS)], dim=-1)  # [n, d_sae, heads]
    acts = torch.from_numpy(np.load(os.path.join(case_dir, "acts.npy")))
    pre = per_head.sum(-1) + b
    on = acts > 0
    err = ((pre - acts).abs() / acts.abs().clamp(min=1e-30))[on].max().item()
    if err > 1e-12:
        raise SystemExit(f"{case_dir}: parts + constant differ from acts.npy by {err:.3g} relative")
    return per_head, b


def write_all(out_dir):
    for name in CASES:
        per_head, b = split(os.path.join(SAE_FIXTURES, name))
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "per_head.npy"), per_head.numpy())
        np.save(os.path.join(d, "bias.npy"), b.numpy())
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("# Head-attribution fixtures\n\nWritten by `scripts/reference/make_sae_heads_fixtures.py` (float64 "
                "reference of direct feature attribution by head) from the SAEs of `tests/fixtures/sae/`, their 16 "
                "inputs read as 4 heads of 4; do not edit by hand. `per_head.npy` [n, d_sae, heads] and `bias.npy` "
                "[d_sae]; `tests/unit/test_sae_heads.cpp` checks mechscope's split against them.\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "tests", "fixtures", "sae_heads"))
    ap.add_argument("--check", action="store_true", help="regenerate into a temp folder and compare with --out")
    args = ap.parse_args()
    return fixture_dirs.regenerate_or_check(write_all, args.out, args.check, "sae_heads fixtures")

if __name__ == "__main__":
    sys.exit(main())
