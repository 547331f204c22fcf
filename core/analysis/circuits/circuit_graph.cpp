// The circuit graph and the edge-level forward pass. Each target's input is recomputed from the
// residual stream plus its offset inside hooks: q/k/v through ln1 and that head's rows of W_qkv,
// MLP inputs through ln2, the logits' input at the last hook_resid_post. Models without pre-norms
// (OLMo 2) project the offset input directly; with a norm after attention (OLMo 2, Gemma 2/3) a
// head's output is what it writes through that norm: result * ln1_post weight / the norm's scale
// in the same run, so a layer's heads sum to its hook_attn_out (exactly, without an output bias).
#include "core/analysis/circuits/circuit_graph.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <stdexcept>

#include "core/model/norm.h"
#include "hooks/activation_cache.h"
#include "hooks/hook_names.h"

namespace ms {

const char* target_kind_name(TargetKind k) {
  switch (k) {
    case TargetKind::kQ: return "q";
    case TargetKind::kK: return "k";
    case TargetKind::kV: return "v";
    case TargetKind::kMlp: return "mlp";
    case TargetKind::kLogits: return "logits";
  }
  return "?";
}

CircuitGraph::CircuitGraph(const ModelConfig& cfg) : m_cfg(cfg) {
  const int L = static_cast<int>(cfg.n_layers), H = static_cast<int>(cfg.n_heads),
            KV = static_cast<int>(cfg.n_kv_heads);
  const bool mlp = !cfg.attn_only();
  m_sources.push_back({"input", -1, -1});
  for (int l = 0; l < L; ++l) {
    for (int h = 0; h < H; ++h) m_sources.push_back({"a" + std::to_string(l) + "." + std::to_string(h), l, h});
    if (mlp) m_sources.push_back({"m" + std::to_string(l), l, -1});
  }
  const int per_layer = H + (mlp ? 1 : 0);
  for (int l = 0; l < L; ++l) {
    const int up = 1 + l * per_layer;
    auto add_group = [&](TargetKind kind, int count) {
      TargetGroup g{kind, l, static_cast<int>(m_targets.size()), count};
      for (int i = 0; i < count; ++i) {
        std::string name = kind == TargetKind::kMlp
                               ? "m" + std::to_string(l)
                               : "a" + std::to_string(l) + "." + std::to_string(i) + "<" + target_kind_name(kind) + ">";
        int n_up = kind == TargetKind::kMlp && !cfg.parallel_attn_mlp ? up + H : up;
        m_targets.push_back({name, kind, l, kind == TargetKind::kMlp ? -1 : i, n_up});
      }
      m_groups.push_back(g);
    };
    add_group(TargetKind::kQ, H);
    add_group(TargetKind::kK, KV);
    add_group(TargetKind::kV, KV);
    if (mlp) add_group(TargetKind::kMlp, 1);
  }
  m_groups.push_back({TargetKind::kLogits, L, static_cast<int>(m_targets.size()), 1});
  m_targets.push_back({"logits", TargetKind::kLogits, L, -1, static_cast<int>(m_sources.size())});
}

int CircuitGraph::head_source(int layer, int head) const {
  const int per_layer = static_cast<int>(m_cfg.n_heads) + (m_cfg.attn_only() ? 0 : 1);
  return 1 + layer * per_layer + head;
}

int CircuitGraph::mlp_source(int layer) const {
  if (m_cfg.attn_only()) return -1;
  return head_source(layer, static_cast<int>(m_cfg.n_heads));
}

int CircuitGraph::target_owner(int t) const {
  const GraphTarget& x = m_targets[static_cast<size_t>(t)];
  const int G = static_cast<int>(m_cfg.n_heads / m_cfg.n_kv_heads);
  switch (x.kind) {
    case TargetKind::kQ: return head_source(x.layer, x.head);
    case TargetKind::kK:
    case TargetKind::kV: return head_source(x.layer, x.head * G);
    case TargetKind::kMlp: return mlp_source(x.layer);
    case TargetKind::kLogits: return -1;
  }
  return -1;
}

int64_t CircuitGraph::n_edges() const {
  int64_t n = 0;
  for (const auto& t : m_targets) n += t.n_upstream;
  return n;
}

std::vector<std::pair<int, int>> CircuitGraph::edges() const {
  std::vector<std::pair<int, int>> out;
  for (int t = 0; t < n_targets(); ++t)
    for (int s = 0; s < m_targets[static_cast<size_t>(t)].n_upstream; ++s) out.emplace_back(t, s);
  return out;
}

const TargetGroup& CircuitGraph::group_of(TargetKind kind, int layer) const {
  for (const auto& g : m_groups)
    if (g.kind == kind && g.layer == layer) return g;
  throw std::out_of_range(std::string("no target group ") + target_kind_name(kind) + " in layer " + std::to_string(layer));
}

at::Tensor through_post_norm(const Model& model, int layer, const at::Tensor& result, const at::Tensor& scale) {
  const at::Tensor& w = model.weights().layers[static_cast<size_t>(layer)].ln1_post_w;
  at::Tensor r = result.to(at::kFloat) / scale.to(at::kFloat).unsqueeze(2);  // scale (B, T, 1) -> (B, T, 1, 1)
  return w.defined() ? r * w.to(at::kFloat) : r;
}

at::Tensor collect_source_outputs(const Model& model, const CircuitGraph& g, const at::Tensor& tokens) {
  at::NoGradGuard no_grad;
  ActivationCache cache;
  HookRegistry reg;
  for (const char* n : {"hook_embed", "hook_pos_embed", "blocks.*.attn.hook_result", "blocks.*.hook_mlp_out",
                        "blocks.*.ln1_post.hook_scale"})
    reg.add_forward(n, cache_hook(cache));
  ForwardOptions fo;
  fo.hooks = &reg;
  fo.last_logits_only = true;  // only the node outputs are wanted
  model.forward(tokens, fo);
  const ModelConfig& c = model.config();
  std::vector<at::Tensor> out;
  at::Tensor in = cache.at("hook_embed").to(at::kFloat);
  if (cache.contains("hook_pos_embed")) in = in + cache.at("hook_pos_embed").to(at::kFloat);
  out.push_back(in);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    at::Tensor r = cache.at(get_act_name("result", static_cast<int>(l))).to(at::kFloat);  // (B, T, H, d)
    if (c.post_norm)
      r = through_post_norm(model, static_cast<int>(l), r, cache.at("blocks." + std::to_string(l) + ".ln1_post.hook_scale"));
    for (int64_t h = 0; h < c.n_heads; ++h) out.push_back(r.select(2, h));
    if (!c.attn_only()) out.push_back(cache.at(get_act_name("mlp_out", static_cast<int>(l))).to(at::kFloat));
  }
  MS_ASSERT(static_cast<int>(out.size()) == g.n_sources());
  return at::stack(out);  // (S, B, T, d)
}

namespace {

// One projection (q, k or v) of per-head inputs x [B, T, n, d] -> [B, T, n, d_head].
// The rows of w_qkv (and b_qkv) that one projection's heads use: [row0, row0 + n * d_head).
struct QkvRows {
  int64_t row0 = 0, n = 0;
};
QkvRows qkv_rows(const ModelConfig& c, TargetKind kind) {
  if (kind == TargetKind::kK) return {c.n_heads * c.d_head, c.n_kv_heads};
  if (kind == TargetKind::kV) return {(c.n_heads + c.n_kv_heads) * c.d_head, c.n_kv_heads};
  return {0, c.n_heads};
}
// That projection's weights per head, [n, d_head, d_model] float32.
at::Tensor head_weights(const ModelConfig& c, const LayerWeights& lw, const QkvRows& r) {
  return lw.w_qkv.narrow(0, r.row0, r.n * c.d_head).to(at::kFloat).view({r.n, c.d_head, c.d_model});
}

at::Tensor project_heads(const Model& m, int layer, TargetKind kind, const at::Tensor& x) {
  const ModelConfig& c = m.config();
  const LayerWeights& lw = m.weights().layers[static_cast<size_t>(layer)];
  const QkvRows r = qkv_rows(c, kind);
  at::Tensor xn = c.pre_norm ? apply_norm_f32(c, x, lw.ln1_w, lw.ln1_b) : x.to(at::kFloat);  // (B, T, n, d)
  at::Tensor out = at::einsum("btnd,nkd->btnk", {xn, head_weights(c, lw, r)});
  if (lw.b_qkv.defined()) out = out + lw.b_qkv.narrow(0, r.row0, r.n * c.d_head).to(at::kFloat).view({r.n, c.d_head});
  return out.to(m.dtype());
}

// Zero in the forward pass; backward: d/d eps of proj_h(norm(x + eps)) at eps = 0, i.e.
// J_norm(x)^T (W_h^T grad_h), for every head at once. Inputs: eps [B, T, n, d]; xhat [B, T, 1, d]
// (normalised x, before the weight); inv_scale [B, T, 1, 1]; w [d] (the norm's weight);
// W [n, dh, d]. layer_norm: whether the norm centres (LayerNorm) or not (RMSNorm).
// With gw = (W_h^T grad_h) * w: gx = inv_scale * (gw - xhat * mean(gw * xhat) [- mean(gw)]).
// Computed so that the [B, T, n, d] gradient is written once and updated once: inv_scale is
// folded into grad_h and the centring into W (mean_d of grad . W w = grad . mean_d(W w)), and
// mean(gw * xhat) = grad . (W w) xhat is a [B, T, n, dh] product, small next to d. (Issue 18:
// under glibc's default malloc policy, where every fresh [B, T, n, d] tensor is page-faulted in,
// the element-wise passes were half of EAP's time; under mechscope's, a few per cent.)
struct LinearizedHeadInput : public torch::autograd::Function<LinearizedHeadInput> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor eps, at::Tensor xhat,
                            at::Tensor inv_scale, at::Tensor w, at::Tensor W, bool layer_norm) {
    ctx->save_for_backward({xhat, inv_scale, w, W});
    ctx->saved_data["ln"] = layer_norm;
    return at::zeros({eps.size(0), eps.size(1), eps.size(2), W.size(1)}, eps.options());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &xhat = saved[0], &inv_scale = saved[1], &w = saved[2], &W = saved[3];
    const int64_t B = xhat.size(0), T = xhat.size(1), d = xhat.size(3), n = W.size(0), dh = W.size(1);
    at::Tensor ww = W * w;                                            // (n, dh, d): W_h with the norm's weight
    at::Tensor g = grads[0].to(at::kFloat) * inv_scale;               // (B, T, n, dh)
    at::Tensor p = at::matmul(xhat.reshape({B * T, d}), ww.view({n * dh, d}).t()).view({B, T, n, dh});
    at::Tensor c = (g * p).sum(-1, true).div_(static_cast<double>(d));  // (B, T, n, 1): mean(gw * xhat)
    at::Tensor wc = ctx->saved_data["ln"].toBool() ? ww - ww.mean(-1, true) : ww;
    // (n, B*T, dh) x (n, dh, d) -> (n, B*T, d), seen as (B, T, n, d): each head's rows contiguous,
    // as the products in edge_attribution read them.
    at::Tensor gx = at::bmm(g.permute({2, 0, 1, 3}).reshape({n, B * T, dh}), wc).view({n, B, T, d}).permute({1, 2, 0, 3});
    gx.addcmul_(xhat, c, -1.0);
    return {gx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// The linearized offset term of one q/k/v group (see EdgeRunOptions::linearized_heads).
at::Tensor linearized_heads(const Model& m, int layer, TargetKind kind, const at::Tensor& resid, const at::Tensor& eps) {
  const ModelConfig& c = m.config();
  const LayerWeights& lw = m.weights().layers[static_cast<size_t>(layer)];
  at::Tensor W = head_weights(c, lw, qkv_rows(c, kind));
  at::Tensor x = norm_centre(c, resid.detach().to(at::kFloat));
  const bool ln = c.norm == NormKind::kLayerNorm;
  at::Tensor inv_scale = norm_inv_scale(c, x);
  at::Tensor xhat = (x * inv_scale).unsqueeze(2);
  return LinearizedHeadInput::apply(eps, xhat, inv_scale.unsqueeze(2), lw.ln1_w.to(at::kFloat), W, ln);
}

}  // namespace

at::Tensor run_edge_forward(const Model& model, const CircuitGraph& g, const at::Tensor& tokens,
                            const EdgeRunOptions& opts) {
  const ModelConfig& c = model.config();
  const int L = static_cast<int>(c.n_layers);
  std::vector<at::Tensor> outputs(static_cast<size_t>(g.n_sources()));
  std::vector<at::Tensor> resid_pre(static_cast<size_t>(L)), resid_mid(static_cast<size_t>(L));
  HookRegistry reg;
  reg.add_forward("hook_embed", [&](const at::Tensor& a, const HookContext&) {
    at::Tensor e = opts.embed_override.defined() ? opts.embed_override.to(a.scalar_type()) : a;
    outputs[0] = e.to(at::kFloat);
    return opts.embed_override.defined() ? e : at::Tensor();
  });
  reg.add_forward("hook_pos_embed", [&](const at::Tensor& a, const HookContext&) {
    outputs[0] = outputs[0] + a.to(at::kFloat);
    return at::Tensor();
  });
  for (int l = 0; l < L; ++l) {
    reg.add_forward(get_act_name("resid_pre", l), [&, l](const at::Tensor& a, const HookContext&) {
      resid_pre[static_cast<size_t>(l)] = a;
      return at::Tensor();
    });
    for (TargetKind kind : {TargetKind::kQ, TargetKind::kK, TargetKind::kV}) {
      const TargetGroup& grp = g.group_of(kind, l);
      const char* hook = kind == TargetKind::kQ ? "q" : kind == TargetKind::kK ? "k" : "v";
      reg.add_forward(get_act_name(hook, l), [&, l, kind, grp](const at::Tensor& act, const HookContext&) {
        at::Tensor off = opts.offsets ? opts.offsets(grp, outputs) : at::Tensor();
        if (!off.defined()) return at::Tensor();
        if (opts.linearized_heads && c.pre_norm)
          return act + linearized_heads(model, l, kind, resid_pre[static_cast<size_t>(l)], off).to(act.scalar_type());
        at::Tensor x = resid_pre[static_cast<size_t>(l)].to(at::kFloat).unsqueeze(2) + off;  // (B, T, n, d)
        return project_heads(model, l, kind, x);
      });
    }
    reg.add_forward(get_act_name("result", l), [&, l](const at::Tensor& a, const HookContext&) {
      for (int64_t h = 0; h < c.n_heads; ++h)
        outputs[static_cast<size_t>(g.head_source(l, static_cast<int>(h)))] = a.select(2, h).to(at::kFloat);
      return at::Tensor();
    });
    if (c.post_norm)  // the heads' outputs as they reach the residual stream, once the norm's scale is known
      reg.add_forward("blocks." + std::to_string(l) + ".ln1_post.hook_scale", [&, l](const at::Tensor& scale, const HookContext&) {
        for (int64_t h = 0; h < c.n_heads; ++h) {
          at::Tensor& o = outputs[static_cast<size_t>(g.head_source(l, static_cast<int>(h)))];
          o = through_post_norm(model, l, o.unsqueeze(2), scale).squeeze(2);
        }
        return at::Tensor();
      });
    if (c.attn_only()) continue;
    if (!c.parallel_attn_mlp)
      reg.add_forward(get_act_name("resid_mid", l), [&, l](const at::Tensor& a, const HookContext&) {
        resid_mid[static_cast<size_t>(l)] = a;
        return at::Tensor();
      });
    const TargetGroup& mg = g.group_of(TargetKind::kMlp, l);
    if (c.pre_norm) {
      reg.add_forward(get_act_name("normalized", l, "ln2"), [&, l, mg](const at::Tensor&, const HookContext&) {
        at::Tensor off = opts.offsets ? opts.offsets(mg, outputs) : at::Tensor();
        if (!off.defined()) return at::Tensor();
        const LayerWeights& lw = model.weights().layers[static_cast<size_t>(l)];
        at::Tensor in = c.parallel_attn_mlp ? resid_pre[static_cast<size_t>(l)] : resid_mid[static_cast<size_t>(l)];
        return norm_normalized_f32(c, in.to(at::kFloat) + off, lw.ln2_w, lw.ln2_b);
      });
    } else {
      // No norm before the MLP (OLMo 2): its input is the residual stream itself, so the offset
      // enters through W_in, exactly: hook_pre (the gate half when gated) and hook_pre_linear.
      auto mlp_in_offset = [&, l](const at::Tensor& off, int64_t first, int64_t rows) {
        const LayerWeights& lw = model.weights().layers[static_cast<size_t>(l)];
        return at::matmul(off, lw.w_in.narrow(0, first, rows).to(at::kFloat).t());
      };
      reg.add_forward(get_act_name("pre", l), [&, mg, mlp_in_offset](const at::Tensor& a, const HookContext&) {
        at::Tensor off = opts.offsets ? opts.offsets(mg, outputs) : at::Tensor();
        if (!off.defined()) return at::Tensor();
        return (a.to(at::kFloat) + mlp_in_offset(off, 0, c.d_mlp)).to(a.scalar_type());
      });
      if (c.gated_mlp)
        reg.add_forward(get_act_name("pre_linear", l), [&, mg, mlp_in_offset](const at::Tensor& a, const HookContext&) {
          at::Tensor off = opts.offsets ? opts.offsets(mg, outputs) : at::Tensor();
          if (!off.defined()) return at::Tensor();
          return (a.to(at::kFloat) + mlp_in_offset(off, c.d_mlp, c.d_mlp)).to(a.scalar_type());
        });
    }
    reg.add_forward(get_act_name("mlp_out", l), [&, l](const at::Tensor& a, const HookContext&) {
      outputs[static_cast<size_t>(g.mlp_source(l))] = a.to(at::kFloat);
      return at::Tensor();
    });
  }
  const TargetGroup& lg = g.groups().back();
  reg.add_forward(get_act_name("resid_post", L - 1), [&, lg](const at::Tensor& a, const HookContext&) {
    at::Tensor off = opts.offsets ? opts.offsets(lg, outputs) : at::Tensor();
    if (!off.defined()) return at::Tensor();
    return (a.to(at::kFloat) + off).to(a.scalar_type());
  });
  ForwardOptions fo;
  fo.hooks = &reg;
  fo.last_logits_only = opts.last_logits_only;
  at::Tensor logits = model.forward(tokens, fo);
  if (opts.outputs) *opts.outputs = std::move(outputs);
  return logits;
}

OffsetFn patch_edges_offsets(const CircuitGraph& g, const at::Tensor& removed, const at::Tensor& corrupted) {
  at::Tensor rem = removed.to(at::kFloat);
  return [&g, rem, corrupted](const TargetGroup& grp, const std::vector<at::Tensor>& outputs) -> at::Tensor {
    const int n_up = g.targets()[static_cast<size_t>(grp.first)].n_upstream;
    at::Tensor r = rem.narrow(0, grp.first, grp.count).narrow(1, 0, n_up);  // (n, S)
    at::Tensor cols = r.sum(0).nonzero().view(-1);
    if (cols.numel() == 0) return at::Tensor();
    std::vector<at::Tensor> cur;
    auto acc = cols.accessor<int64_t, 1>();
    for (int64_t i = 0; i < cols.numel(); ++i) cur.push_back(outputs[static_cast<size_t>(acc[i])]);
    at::Tensor diff = corrupted.index_select(0, cols) - at::stack(cur);  // (k, B, T, d)
    at::Tensor off = at::einsum("nk,kbtd->btnd", {r.index_select(1, cols), diff});
    return grp.kind == TargetKind::kMlp || grp.kind == TargetKind::kLogits ? off.squeeze(2) : off;
  };
}

}  // namespace ms
