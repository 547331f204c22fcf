"""Independent float64 code-overlap score of discrete-SAE circuit identification.

Follows the method's definition (O'Neill and Bui, arXiv 2405.12522 v1), not mechscope's C++: each
head's output (hook_result, the head's write to the residual stream) of the positive (clean) and
negative (corrupted) prompts, averaged over positions 0..answer_pos (or taken at answer_pos),
divided by the RMS of all these vectors; its code is the index of the largest ReLU(x W_enc + b_enc)
(d_sae when no feature is active); per head, the number of codes seen on positives and never on
negatives, and that number over the codes seen on either; heads ranked by the count, then the
fraction, then head index. The SAE's encoder comes from the C++ run (training is not checked here).

Usage:
  /usr/bin/python3 scripts/reference/dsae_reference.py MODEL_DIR CASE.json OUT.json
CASE.json: {"clean": [[ids]], "corrupted": [[ids]], "answer_pos": [..], "positives": [..],
"negatives": [..], "mean_positions": bool, "w_enc": [[d x F]], "b_enc": [F]}.
OUT.json: {"unique": [..], "fraction": [..], "ranking": [..], "codes": [[..]], "scale": float}.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402

DT = torch.float64


def head_vectors(model, tokens, answer_pos, mean_positions):
    """[n, n_layers * n_heads, d_model] head outputs of each prompt (layer-major)."""
    _, hooks = model.forward(torch.tensor(tokens, dtype=torch.long))
    n_layers = len(model.params["layers"])
    rows = []
    for i, p in enumerate(answer_pos):
        per_layer = []
        for L in range(n_layers):
            r = hooks[f"blocks.{L}.attn.hook_result"][i].to(DT)  # [pos, H, d]
            per_layer.append(r[: p + 1].mean(0) if mean_positions else r[p])
        rows.append(torch.cat(per_layer, 0))
    return torch.stack(rows)


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__)
    model = rm.load_model(argv[1])
    with open(argv[2]) as f:
        case = json.load(f)
    pos, neg = case["positives"], case["negatives"]
    ap = case["answer_pos"]
    xp = head_vectors(model, [case["clean"][i] for i in pos], [ap[i] for i in pos], case["mean_positions"])
    xn = head_vectors(model, [case["corrupted"][i] for i in neg], [ap[i] for i in neg], case["mean_positions"])
    x = torch.cat([xp, xn], 0)
    scale = float(x.pow(2).mean().sqrt())
    x = x / scale
    w = torch.tensor(case["w_enc"], dtype=DT)
    b = torch.tensor(case["b_enc"], dtype=DT)
    act = torch.relu(x @ w + b)  # [n, heads, F]
    best, idx = act.max(-1)
    codes = torch.where(best > 0, idx, torch.full_like(idx, w.shape[1]))
    n_pos = len(pos)
    unique, fraction = [], []
    for h in range(codes.shape[1]):
        p = set(codes[:n_pos, h].tolist())
        q = set(codes[n_pos:, h].tolist())
        u = len(p - q)
        unique.append(u)
        fraction.append(u / len(p | q) if p | q else 0.0)
    ranking = sorted(range(len(unique)), key=lambda h: (-unique[h], -fraction[h], h))
    with open(argv[3], "w") as f:
        json.dump({"unique": unique, "fraction": fraction, "ranking": ranking, "codes": codes.tolist(),
                   "scale": scale}, f)


if __name__ == "__main__":
    main(sys.argv)
