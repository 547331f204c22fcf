"""Independent float64 edge attribution patching (EAP, EAP-IG) for GPT-2-layout checkpoints.

Written from the method's definition (Syed et al.; Hanna et al.), not from mechscope's C++: every
target (each head's q, k, v input, each MLP input, the logits' input) reads the residual stream
plus its own zero offset, autograd gives d metric / d offset, and
score(u -> v) = sum over pairs, positions and d_model of (a_u(corrupted) - a_u(clean)) * grad_v.
Graph order as mechscope's CircuitGraph: sources = input, then per layer its heads and its MLP;
targets = per layer q (n_heads), k, v, mlp, then the logits.

Usage:
  /usr/bin/python3 scripts/reference/eap_reference.py MODEL_DIR TASK.json OUT.json [IG_STEPS]
TASK.json: {"clean": [[ids]], "corrupted": [[ids]], "answer_pos": [..], "answer": [..],
"distractor": [..]}. OUT.json: {"scores": [[float or null]], "metric_clean", "metric_corrupted"}.
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402

DT = torch.float64


def split_forward(model, tokens, offsets, embed=None):
    """Logits and source outputs with per-target offsets {(layer, 'q'|'k'|'v'|'mlp') or 'logits'}."""
    a, P = model.arch, model.params
    if a["model_type"] != "gpt2" or a["parallel"]:
        raise SystemExit("eap_reference: only sequential gpt2 checkpoints")
    b, p = tokens.shape
    H, dh, d = a["n_heads"], a["d_head"], a["d_model"]
    e = P["embed"][tokens] if embed is None else embed
    x0 = e + P["pos"][:p][None]
    outs = [x0]
    resid = x0
    causal = torch.ones(p, p, dtype=torch.bool).tril()
    for L, layer in enumerate(P["layers"]):
        def heads(kind):
            x = resid[:, :, None, :] + offsets[(L, kind)]  # [b, p, H, d]
            xn, _, _ = rm.layer_norm(x, layer["ln1_w"], layer["ln1_b"], a["eps"])
            W = layer["W_" + kind.upper()].reshape(d, H, dh)
            return torch.einsum("bphd,dhk->bphk", xn, W) + layer["b_" + kind.upper()].reshape(H, dh)
        q, k, v = heads("q"), heads("k"), heads("v")
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
        scores = torch.where(causal[None, None], scores, torch.tensor(float("-inf"), dtype=DT))
        z = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(scores, dim=-1), v)
        result = torch.einsum("bqhd,hdm->bqhm", z, layer["W_O"].reshape(H, dh, d))
        outs.extend(result[:, :, h] for h in range(H))
        mid = resid + result.sum(dim=2) + layer["b_O"]
        x2, _, _ = rm.layer_norm(mid + offsets[(L, "mlp")], layer["ln2_w"], layer["ln2_b"], a["eps"])
        mlp_out = model._mlp(x2, layer, L, {})
        outs.append(mlp_out)
        resid = mid + mlp_out
    xf, _, _ = model._norm(resid + offsets["logits"], "lnf")
    return xf @ P["unembed"], outs


def metric(logits, task):
    rows = torch.arange(logits.shape[0])
    last = logits[rows, torch.tensor(task["answer_pos"])]
    return (last[rows, torch.tensor(task["answer"])] - last[rows, torch.tensor(task["distractor"])]).mean()


def zero_offsets(model, b, p, grad):
    a = model.arch
    offs = {}
    for L in range(a["n_layers"]):
        for kind in ("q", "k", "v"):
            offs[(L, kind)] = torch.zeros(b, p, a["n_heads"], a["d_model"], dtype=DT, requires_grad=grad)
        offs[(L, "mlp")] = torch.zeros(b, p, a["d_model"], dtype=DT, requires_grad=grad)
    offs["logits"] = torch.zeros(b, p, a["d_model"], dtype=DT, requires_grad=grad)
    return offs


def eap(model, task, ig_steps=0):
    a = model.arch
    clean, corrupted = torch.tensor(task["clean"]), torch.tensor(task["corrupted"])
    b, p = clean.shape
    H, n_layers = a["n_heads"], a["n_layers"]
    with torch.no_grad():
        lc, clean_out = split_forward(model, clean, zero_offsets(model, b, p, False))
        lx, corr_out = split_forward(model, corrupted, zero_offsets(model, b, p, False))
    steps = [1.0] if ig_steps <= 0 else [k / ig_steps for k in range(1, ig_steps + 1)]
    e_clean, e_corr = model.params["embed"][clean], model.params["embed"][corrupted]
    grads = None
    for alpha in steps:
        offs = zero_offsets(model, b, p, True)
        embed = None if ig_steps <= 0 else e_corr + alpha * (e_clean - e_corr)
        logits, _ = split_forward(model, clean, offs, embed)
        keys = list(offs)
        g = torch.autograd.grad(metric(logits, task), [offs[k] for k in keys], allow_unused=True)
        g = {k: (x if x is not None else torch.zeros_like(offs[k])) / len(steps) for k, x in zip(keys, g)}
        grads = g if grads is None else {k: grads[k] + g[k] for k in keys}
    delta = [c - x for c, x in zip(corr_out, clean_out)]
    n_src = 1 + n_layers * (H + 1)
    rows = []

    def add(grad, n_up):
        rows.append([float((grad * delta[s]).sum()) if s < n_up else None for s in range(n_src)])

    for L in range(n_layers):
        up = 1 + L * (H + 1)
        for kind in ("q", "k", "v"):
            for h in range(H):
                add(grads[(L, kind)][:, :, h], up)
        add(grads[(L, "mlp")], up + H)
    add(grads["logits"], n_src)
    return {"scores": rows, "metric_clean": float(metric(lc, task)), "metric_corrupted": float(metric(lx, task))}


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__)
        return 2
    model = rm.load_model(argv[1])
    with open(argv[2]) as f:
        task = json.load(f)
    out = eap(model, task, int(argv[4]) if len(argv) == 5 else 0)
    with open(argv[3], "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
